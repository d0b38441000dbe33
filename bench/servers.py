"""The servers under test, each started as its own process with an equivalent configuration, measured, and always
stopped: Wampgate (`twistd -n wampgate`), Crossbar.io (from its own virtualenv under bench/.crossbar-venv) and the
ceiling server (bench/ceiling.py).

Every server listens on two loopback ports: plain TCP and TLS (the run's self-signed certificate). The routers serve
realm `realm1`, where anonymous clients may do everything, with WebSocket (path /ws) and RawSocket on each port and
JSON, MessagePack and CBOR on both.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from bench import procfs

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
CROSSBAR_VENV = BENCH / ".crossbar-venv"
CROSSBAR_NODE = BENCH / ".crossbar-node"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 15.0

# Wampgate's built-in `limits` flow control is on by default (about 1,000 messages/s per session, 5,000 per authid,
# 10,000 per peer address, 100 connections per peer): every limit is raised far above the benchmark's load, so the
# numbers measure the router's work, not its throttling. The plugin stays in the chain (its per-message checks are
# part of the cost being measured).
UNLIMITED_RATE = 'messages = 1e9\nburst = 1e9\nbytes = 1e12\nbyte_burst = 1e12'
WAMPGATE_FLOW = f"""
[[flow]]
plugin = "limits"
max_connections = 1000000
max_connections_per_peer = 1000000
max_sessions_per_authid = 1000000
quotas = [{{ per = "authid", messages = 1000000000000, window = 3600.0 }}]

[flow.rates.session]
{UNLIMITED_RATE}

[flow.rates.authid]
{UNLIMITED_RATE}

[flow.rates.authrole]
{UNLIMITED_RATE}

[flow.rates.peer]
{UNLIMITED_RATE}
"""
FLOW_NOTE = ("Wampgate's `limits` flow-control plugin stays on, with every rate, quota and connection limit raised "
             "far above the load (1e9 messages/s per session, authid, role and peer; 1e6 connections): its defaults "
             "(~1,000 messages/s per session, 100 connections per peer) would throttle the benchmark.")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.02)
    return False


class ServerError(Exception):
    pass


class Server:
    """A server process: started with its output in a log file, ready when `ready_lines` lines with `ready_text`
    appear; `pid` is the process whose CPU and memory are measured."""

    name = "server"
    ready_text = ""
    ready_lines = 1

    def __init__(self, workdir: Path, certificate: Path, private_key: Path):
        self.workdir = workdir
        self.certificate = certificate
        self.private_key = private_key
        self.process: subprocess.Popen | None = None
        self.pid: int | None = None
        self.extra_pids: list[int] = []
        self.port = self.tls_port = 0
        self.startup_seconds: list[float] = []
        self.log_path = workdir / f"{self.name}.log"
        self.config: Path | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write the config for the current ports."""

    def find_pid(self) -> int:
        return self.process.pid

    def start(self) -> float:
        """Start on fresh ports; return the seconds from spawn to ready (the log lines that say it listens)."""
        self.port, self.tls_port = free_port(), free_port()
        self.prepare()
        self.log_path = self.workdir / f"{self.name}-{len(self.startup_seconds) + 1}.log"
        with open(self.log_path, "wb") as log:
            started = time.monotonic()
            self.process = subprocess.Popen(self.command(), cwd=self.cwd(), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True,
                                            env=self.environment(), preexec_fn=procfs.die_with_parent)
        self._wait_ready(started)
        elapsed = time.monotonic() - started
        self.startup_seconds.append(elapsed)
        for port in (self.port, self.tls_port):
            if not wait_for_port(port, 10.0):
                self.stop()
                raise ServerError(f"{self.name}: nothing listens on {port}; see {self.log_path}")
        self.pid = self.find_pid()
        return elapsed

    def cwd(self) -> Path:
        return self.workdir

    def environment(self) -> dict:
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        return env

    def _wait_ready(self, started: float) -> None:
        deadline = started + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._log_text().count(self.ready_text) >= self.ready_lines:
                return
            if self.process.poll() is not None:
                raise ServerError(f"{self.name} exited with {self.process.returncode} before it was ready:\n"
                                  + self._log_tail())
            time.sleep(0.005)
        self.stop()
        raise ServerError(f"{self.name} not ready within {START_TIMEOUT:.0f} s:\n" + self._log_tail())

    def _log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def _log_tail(self, lines: int = 30) -> str:
        return "\n".join(self._log_text().splitlines()[-lines:])

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT; also any child process it left (Crossbar's workers)."""
        process, self.process = self.process, None
        if process is None:
            return
        pids = [p for p in [self.pid, *self.extra_pids] if p and p != process.pid]
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)
        deadline = time.monotonic() + 5.0
        for pid in pids:
            while procfs.alive(pid) and time.monotonic() < deadline:
                time.sleep(0.05)
            if procfs.alive(pid):
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self.pid = None
        self.extra_pids = []

    def restart(self) -> float:
        self.stop()
        return self.start()

    def rss_kib(self) -> int:
        return procfs.rss_kib(self.pid)

    def cpu_seconds(self) -> float:
        return procfs.cpu_seconds(self.pid)


class Wampgate(Server):
    name = "wampgate"
    ready_text = "listening on"
    ready_lines = 2

    def prepare(self) -> None:
        self.config = self.workdir / "wampgate.toml"
        schema = self.workdir / "bench-schema.json"
        schema.write_text(json.dumps(VALIDATED_SCHEMA))
        self.config.write_text(wampgate_config(self.port, self.tls_port, self.certificate, self.private_key)
                               + VALIDATORS.format(topic=VALIDATED_TOPIC, schema=schema))

    def command(self) -> list[str]:
        return [str(Path(sys.executable).parent / "twistd"), "-n", "--pidfile=", "wampgate", "--config",
                str(self.config)]

    def versions(self) -> dict:
        from importlib.metadata import version

        return {"wampgate": version("wampgate"), "autobahn": version("autobahn"), "twisted": version("twisted")}


# The fan-out scenario's second topic (bench/scenarios.py): the same load, with a small JSON schema checked on every
# PUBLISH (what the publisher sends: one string argument, no kwargs), so the table shows what validation costs.
VALIDATED_TOPIC = "bench.validated"
VALIDATED_SCHEMA = {
    "type": "object",
    "properties": {
        "args": {"type": "array", "minItems": 1, "maxItems": 1, "items": {"type": "string", "maxLength": 4096}},
        "kwargs": {"type": "object", "maxProperties": 0},
    },
}
VALIDATORS = """
[[realms.validators]]
plugin = "jsonschema"
schemas = [{{ uri = "{topic}", action = "publish", schema_file = "{schema}" }}]
"""

# The HTTP bridge on the plain listener (the `bridge` scenario): POST /publish, unauthenticated from loopback.
BRIDGE = """
[[listeners.paths]]
path = "/publish"
kind = "publish"
bridge = "bench"

[[listeners.bridges]]
name = "bench"
realm = "realm1"
authentication = "none"
authrole = "anonymous"
"""


def wampgate_config(port: int, tls_port: int, certificate: Path, private_key: Path, flow: str = WAMPGATE_FLOW,
                    websocket: str = "") -> str:
    """The benchmark's Wampgate config; `flow` replaces the flow-control tables, `websocket` adds
    `[listeners.websocket]` keys."""
    listeners = ""
    for name, endpoint_port, tls in (("plain", port, False), ("tls", tls_port, True)):
        listeners += f"""
[[listeners]]
name = "{name}"
endpoint = "tcp:{endpoint_port}:interface=127.0.0.1"
transports = ["websocket", "rawsocket"]
serializers = ["json", "msgpack", "cbor"]
"""
        if tls:
            listeners += f"""
[listeners.tls]
certificate = "{certificate}"
private_key = "{private_key}"
"""
        listeners += f"""
[listeners.websocket]
path = "/ws"
{websocket}
[listeners.auth.anonymous]
role = "anonymous"
{BRIDGE if not tls else ""}"""
    return f"""# Generated by bench/servers.py for one benchmark run: loopback only, anonymous may do everything.
{listeners}
[[realms]]
name = "realm1"

[[realms.roles]]
name = "anonymous"

[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["publish", "subscribe", "call", "register"]
{flow}"""


class AbuseWampgate(Wampgate):
    """Wampgate as the abuse scenario runs it: the budgets under attack set explicitly, flow control with a rate per
    session (and none per authid, role or address: every client of the benchmark is an anonymous 127.0.0.1, so those
    would make the victim pay for the flooder), and an admin endpoint whose /metrics is the router's own accounting."""

    def __init__(self, workdir: Path, certificate: Path, private_key: Path, limits: dict, tag: str):
        self.name = f"wampgate-abuse-{tag}"
        super().__init__(workdir, certificate, private_key)
        self.limits = limits
        self.admin_port = 0

    def prepare(self) -> None:
        self.admin_port = free_port()
        self.config = self.workdir / f"{self.name}.toml"
        limits = self.limits
        rate = limits["session_rate"]
        flow = ABUSE_FLOW.format(rate=rate, burst=2 * rate, unlimited=UNLIMITED_RATE)
        self.config.write_text(wampgate_config(self.port, self.tls_port, self.certificate, self.private_key, flow,
                                               f"max_fragments = {limits['max_fragments']}\n") + f"""
[limits]
max_outgoing_buffer = {limits["max_outgoing_buffer"]}
outgoing_stall_timeout = {limits["outgoing_stall_timeout"]}

[admin]
endpoint = "tcp:{self.admin_port}:interface=127.0.0.1"
""")

    def command(self) -> list[str]:
        """With the router's own log observer, as `make run` has it: what clients make it log is budgeted too."""
        command = super().command()
        return command[:3] + ["--logger", "wampgate.tx.logs.text"] + command[3:]

    @property
    def metrics_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}/metrics"


ABUSE_FLOW = """
[[flow]]
plugin = "limits"
max_connections = 1000000
max_connections_per_peer = 1000000
max_sessions_per_authid = 1000000
quotas = []

[flow.rates.session]
messages = {rate}
burst = {burst}
bytes = 0

[flow.rates.authid]
{unlimited}

[flow.rates.authrole]
{unlimited}

[flow.rates.peer]
{unlimited}
"""


class Crossbar(Server):
    """Crossbar.io: a controller process and one router worker (a child process); the worker is what is measured."""

    name = "crossbar"
    ready_text = "local node configuration ran successfully"

    def cwd(self) -> Path:
        return CROSSBAR_NODE

    def prepare(self) -> None:
        cbdir = CROSSBAR_NODE / ".crossbar"
        cbdir.mkdir(parents=True, exist_ok=True)
        (cbdir / "config.json").write_text(json.dumps(
            crossbar_config(self.port, self.tls_port, self.certificate, self.private_key), indent=2))

    def command(self) -> list[str]:
        return [str(CROSSBAR_VENV / "bin" / "crossbar"), "start", "--cbdir", str(CROSSBAR_NODE / ".crossbar"),
                "--loglevel", "info"]

    def find_pid(self) -> int:
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            workers = [pid for pid in procfs.children(self.process.pid)
                       if "RouterController" in procfs.command_line(pid)]
            if workers:
                self.extra_pids = workers
                return workers[0]
            time.sleep(0.05)
        raise ServerError("crossbar: no router worker process found under the controller")

    def versions(self) -> dict:
        out = subprocess.run([str(CROSSBAR_VENV / "bin" / "python"), "-c",
                              "from importlib.metadata import version as v; "
                              "print(v('crossbar'), v('autobahn'), v('twisted'))"],
                             capture_output=True, text=True, timeout=60)
        crossbar, autobahn, twisted = (out.stdout.split() + ["?"] * 3)[:3]
        return {"crossbar": crossbar, "autobahn": autobahn, "twisted": twisted}


def crossbar_config(port: int, tls_port: int, certificate: Path, private_key: Path) -> dict:
    auth = {"anonymous": {"type": "static", "role": "anonymous"}}
    serializers = ["json", "msgpack", "cbor"]

    def transport(endpoint_port: int, tls: bool) -> dict:
        endpoint = {"type": "tcp", "port": endpoint_port, "interface": "127.0.0.1"}
        if tls:
            endpoint["tls"] = {"certificate": str(certificate), "key": str(private_key)}
        return {
            "type": "universal",
            "endpoint": endpoint,
            "rawsocket": {"serializers": serializers, "auth": auth},
            "websocket": {"ws": {"type": "websocket", "serializers": serializers, "auth": auth,
                                 "options": {"enable_webstatus": False}}},
        }

    return {
        "version": 2,
        "controller": {},
        "workers": [{
            "type": "router",
            "realms": [{
                "name": "realm1",
                "roles": [{
                    "name": "anonymous",
                    "permissions": [{
                        "uri": "", "match": "prefix",
                        "allow": {"call": True, "register": True, "publish": True, "subscribe": True},
                        "disclose": {"caller": False, "publisher": False},
                        "cache": True,
                    }],
                }],
            }],
            "transports": [transport(port, False), transport(tls_port, True)],
        }],
    }


class Ceiling(Server):
    name = "ceiling"
    ready_text = "ceiling listening"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "bench.ceiling", "--port", str(self.port), "--tls-port", str(self.tls_port),
                "--certificate", str(self.certificate), "--private-key", str(self.private_key)]

    def cwd(self) -> Path:
        return REPO


def crossbar_installed() -> tuple[bool, str]:
    """Create bench/.crossbar-venv and `pip install crossbar` there unless it already works; (ok, why not)."""
    crossbar = CROSSBAR_VENV / "bin" / "crossbar"
    if not crossbar.exists():
        print(f"installing Crossbar.io from PyPI into {CROSSBAR_VENV} (its own virtualenv) ...", flush=True)
        base = getattr(sys, "_base_executable", None) or sys.executable
        python = str(CROSSBAR_VENV / "bin" / "python")
        steps = [[base, "-m", "venv", str(CROSSBAR_VENV)], [python, "-m", "pip", "install", "--quiet", "crossbar"]]
        for step in steps:
            try:
                result = subprocess.run(step, capture_output=True, text=True, timeout=1800)
            except (OSError, subprocess.TimeoutExpired) as e:
                return False, f"{' '.join(step[-2:])}: {e}"
            if result.returncode != 0:
                tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
                return False, f"`{' '.join(step[1:])}` failed (exit {result.returncode}):\n{tail}"
    try:
        result = subprocess.run([str(crossbar), "version"], capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        return False, f"`crossbar version` did not run: {e}"
    if result.returncode != 0:
        return False, "`crossbar version` failed:\n" + "\n".join((result.stdout + result.stderr).splitlines()[-15:])
    return True, ""
