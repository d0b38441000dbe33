"""The router as an operator runs it: the real `twistd wampgate` and `wampgate check-config` commands, in subprocesses.

A good config starts, logs where it listens, serves a real Autobahn client and stops cleanly on SIGTERM; a bad config
stops start-up with one `<file>: <key path> ...` line per problem on stderr, no traceback, and nothing listening.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import tomllib
from functools import partial
from pathlib import Path

import pytest
from twisted.internet.testing import MemoryReactorClock

from wampgate.config import ConfigError, load
from wampgate.tx.plugins_from_config import plugin_problems
from tests.support.router import REALM1_ANONYMOUS_ALL
from tests.support.wait import free_port

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
TWISTD = BIN / "twistd"
WAMPGATE = BIN / "wampgate"
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
RUN_TIMEOUT = 30.0

REALM1 = REALM1_ANONYMOUS_ALL

# Joins realm1, subscribes, publishes to itself with acknowledge, prints "OK <args> <kwargs> <authrole>".
CLIENT = textwrap.dedent("""
    import asyncio, json, sys
    from autobahn.asyncio.wamp import ApplicationRunner, ApplicationSession
    from autobahn.wamp.types import PublishOptions

    class Probe(ApplicationSession):
        async def onJoin(self, details):
            received = asyncio.get_running_loop().create_future()
            def on_event(*args, **kwargs):
                if not received.done():
                    received.set_result((args, kwargs))
            await self.subscribe(on_event, "com.example.hello")
            await self.publish("com.example.hello", 1, "two", three=3,
                               options=PublishOptions(acknowledge=True, exclude_me=False))
            args, kwargs = await asyncio.wait_for(received, 5)
            print("OK", json.dumps(list(args)), json.dumps(kwargs), details.authrole, flush=True)
            self.leave()

        def onDisconnect(self):
            asyncio.get_event_loop().stop()

    ApplicationRunner(sys.argv[1], "realm1").run(Probe)
""")


def port_is_free(port: int) -> bool:
    """Nothing listens on the loopback port: a connection attempt is refused. (Binding would also fail on a port that
    some unrelated client socket happens to use as its ephemeral port.)"""
    with socket.socket() as s:
        s.settimeout(2)
        try:
            s.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
        except OSError:
            return False
        return False


def listener_toml(name: str, port: int, transports: str, auth: str = 'role = "anonymous"') -> str:
    return textwrap.dedent(f"""
        [[listeners]]
        name = "{name}"
        endpoint = "tcp:{port}:interface=127.0.0.1"
        transports = {transports}

        [listeners.auth.anonymous]
        {auth}
        """)


def twistd_command(config: Path) -> list[str]:
    return [str(TWISTD), "-n", "--pidfile=", "wampgate", "--config", str(config)]


class Output:
    """Collects a pipe's lines in a thread, so the test can poll for a line without blocking or filling the pipe."""

    def __init__(self, pipe):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe) -> None:
        for line in pipe:
            self.lines.append(line.rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)

    def join(self) -> None:
        self._thread.join(timeout=5)


def wait_for_lines(process, output: Output, needle: str, count: int, timeout: float) -> list[str]:
    """Poll until `count` lines contain `needle`; fail if the process exits or `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [line for line in output.lines if needle in line]
        if len(found) >= count:
            return found
        if process.poll() is not None:
            pytest.fail(f"twistd exited with {process.returncode} before listening:\n{output.text()}")
        time.sleep(0.02)
    pytest.fail(f"no {count} {needle!r} lines within {timeout} s:\n{output.text()}")


def run_client(url: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CLIENT, url], capture_output=True, text=True, timeout=RUN_TIMEOUT)


# --- (a) a good config: start, serve, stop ----------------------------------------------------------------------


def two_listener_config(tmp_path: Path) -> tuple[Path, int, int]:
    """A dev-like config on two free loopback ports: universal (ws + rawsocket) and rawsocket only."""
    universal, rawsocket = free_port(), free_port()
    config = tmp_path / "router.toml"
    config.write_text(
        listener_toml("universal", universal, '["websocket", "rawsocket"]')
        + listener_toml("rawsocket", rawsocket, '["rawsocket"]')
        + REALM1
    )
    return config, universal, rawsocket


@contextlib.contextmanager
def running_twistd(config: Path, cwd: Path):
    """Spawn twistd, wait (bounded) for both listeners, yield (process, stdout, stderr); always kill it afterwards."""
    started = time.monotonic()
    process = subprocess.Popen(twistd_command(config), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    try:
        stdout, stderr = Output(process.stdout), Output(process.stderr)
        wait_for_lines(process, stdout, "listening on", 2, START_TIMEOUT)
        wait_for_lines(process, stdout, "ready: SIGHUP reloads", 1, START_TIMEOUT)
        print(f"\ntwistd start-up: {time.monotonic() - started:.3f} s from spawn to both 'listening on' lines",
              flush=True)
        yield process, stdout, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


def stop(process, stdout: Output, stderr: Output) -> int:
    """SIGTERM, wait at most STOP_TIMEOUT, collect the rest of the output; the exit status."""
    process.send_signal(signal.SIGTERM)
    status = process.wait(timeout=STOP_TIMEOUT)
    stdout.join()
    stderr.join()
    return status


def test_twistd_serves_and_stops_cleanly(tmp_path):
    """`twistd -n wampgate --config` with a universal and a rawsocket listener logs both addresses, serves a real
    Autobahn client (subscribe + self-publish with acknowledge) on each, and stops cleanly within 10 s of SIGTERM.

    twistd deliberately ends a signalled run by re-raising the signal (twisted.application.app._exitWithSignal), so
    a clean stop is "terminated by SIGTERM" (-15), which systemd counts as a clean exit; 0 is accepted too."""
    config, universal, rawsocket = two_listener_config(tmp_path)
    with running_twistd(config, tmp_path) as (process, stdout, stderr):
        listening = [line for line in stdout.lines if "listening on" in line]
        assert any(line.endswith(f"listener universal listening on ws://127.0.0.1:{universal}/ws + "
                                 f"rawsocket://127.0.0.1:{universal}") for line in listening), listening
        assert any(line.endswith(f"listener rawsocket listening on rawsocket://127.0.0.1:{rawsocket}")
                   for line in listening), listening

        for url in (f"ws://127.0.0.1:{universal}/ws", f"rs://127.0.0.1:{universal}", f"rs://127.0.0.1:{rawsocket}"):
            client = run_client(url)
            assert client.returncode == 0, (url, client.stdout, client.stderr)
            answers = [line for line in client.stdout.splitlines() if line.startswith("OK ")]
            assert answers == ['OK [1, "two"] {"three": 3} anonymous'], (url, client.stdout, client.stderr)

        status = stop(process, stdout, stderr)
        output = stdout.text() + stderr.text()
        assert status in (0, -signal.SIGTERM), output
        assert "Server Shut Down." in stdout.text()
        # (autobahn's debug lines, see the next test, contain "Failure instance: Traceback (failure with no frames)")
        assert "Traceback (most recent call last)" not in output
        assert not [line for line in stdout.lines if "#error]" in line or "#critical]" in line]
        assert stderr.text() == ""
        assert port_is_free(universal) and port_is_free(rawsocket)


def test_twistd_never_logs_handshake_secrets(tmp_path):
    """With the default log settings, credentials a client sends in the WebSocket opening handshake (Authorization,
    Cookie) never appear in the router's output (house rule 9: not at debug either)."""
    config, universal, _ = two_listener_config(tmp_path)
    with running_twistd(config, tmp_path) as (process, stdout, stderr):
        with socket.create_connection(("127.0.0.1", universal), timeout=5) as client:
            client.sendall(
                b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                b"Sec-WebSocket-Protocol: wamp.2.json\r\nAuthorization: Bearer TOKEN-0f9e8d7c\r\n"
                b"Cookie: sid=COOKIE-1a2b3c4d\r\n\r\n"
            )
            assert client.recv(4096).startswith(b"HTTP/1.1 101 ")
        stop(process, stdout, stderr)
    output = stdout.text() + stderr.text()
    assert "TOKEN-0f9e8d7c" not in output
    assert "COOKIE-1a2b3c4d" not in output


# --- (b) bad configs: one line per problem, no traceback, nothing listens -----------------------------------------


def run_twistd(config: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(twistd_command(config), cwd=cwd, capture_output=True, text=True, timeout=RUN_TIMEOUT)


def assert_refused(result: subprocess.CompletedProcess, expected: list[str], port: int | None = None) -> None:
    """Exit non-zero, exactly the expected stderr lines, no traceback, no listening."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "Traceback" not in output, output
    assert result.stderr.splitlines() == expected
    assert "listening on" not in output
    if port is not None:
        assert port_is_free(port)


def unknown_key(tmp_path: Path, port: int) -> tuple[str, list[str]]:
    text = "colour = 1\n" + listener_toml("main", port, '["websocket"]') + REALM1
    return text, ["colour: unknown key; allowed: admin, cluster, flow, limits, listeners, realms"]


def duplicate_port(tmp_path: Path, port: int) -> tuple[str, list[str]]:
    text = listener_toml("one", port, '["websocket"]') + listener_toml("two", port, '["rawsocket"]') + REALM1
    return text, [f'listeners[1].endpoint = "tcp:{port}:interface=127.0.0.1": the address is already used by '
                  "listeners[0]; expected a port no other listener uses"]


def missing_certificate(tmp_path: Path, port: int) -> tuple[str, list[str]]:
    (tmp_path / "key.pem").write_text("")
    tls = '[listeners.tls]\ncertificate = "certs/missing.pem"\nprivate_key = "key.pem"\n'
    text = listener_toml("main", port, '["websocket"]') + tls + REALM1
    resolved = (tmp_path / "certs" / "missing.pem").resolve()
    return text, [f'listeners[0].tls.certificate = "certs/missing.pem": expected a readable file; '
                  f"{resolved} does not exist"]


def unknown_realm(tmp_path: Path, port: int) -> tuple[str, list[str]]:
    text = listener_toml("main", port, '["websocket"]', auth='role = "anonymous"\nrealms = ["nope"]') + REALM1
    return text, ['listeners[0].auth.anonymous.realms = ["nope"]: unknown realm "nope"; defined realms: realm1']


def no_authenticator(tmp_path: Path, port: int) -> tuple[str, list[str]]:
    text = textwrap.dedent(f"""
        [[listeners]]
        endpoint = "tcp:{port}:interface=127.0.0.1"
        """) + REALM1
    return text, ["listeners[0].auth: missing; expected at least one authentication method, e.g. [listeners[0].auth.anonymous] (nobody could join)"]


def not_toml(tmp_path: Path, port: int) -> tuple[str, list[str]]:
    text = f'[[listeners]\nendpoint = "tcp:{port}"\n'
    try:
        tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        return text, [f"not valid TOML: {e}"]
    raise AssertionError("the broken TOML parsed")


def plugin_unknown_key(tmp_path: Path, port: int) -> tuple[str, list[str]]:
    text = listener_toml("main", port, '["websocket"]', auth='role = "anonymous"\ncolour = 1') + REALM1
    return text, ["listeners[0].auth.anonymous.colour: unknown key; allowed: role"]


def core_and_plugin_at_once(tmp_path: Path, port: int) -> tuple[str, list[str]]:
    """A bad [limits] value and a misspelt anonymous role: both lines in one start, in file order."""
    text = "[limits]\nhello_timeout = -1\n" + listener_toml("main", port, '["websocket"]', auth='role = "anonymus"')
    return text + REALM1, [
        "limits.hello_timeout = -1: expected a number from 0.1 to 600.0",
        'listeners[0].auth.anonymous.role = "anonymus": undefined role; no realm this method serves (realm realm1) '
        "defines it; defined roles: anonymous",
    ]


def empty_endpoint(tmp_path: Path, port: int) -> tuple[str, list[str]]:
    text = '[[listeners]]\nendpoint = ""\n[listeners.auth.anonymous]\nrole = "anonymous"\n' + REALM1
    return text, ['listeners[0].endpoint = "": expected a Twisted server endpoint such as '
                  '"tcp:8080:interface=127.0.0.1" (ValueError: Unknown endpoint type: \'\')']


DOUBLED_PATH = ("BUG: router/config.py load() puts the file path into its unreadable/not-TOML problem line and "
                "router/tx/tap.py _fail() (and router/cli.py) prefix every line with the path again: "
                "'<file>: <file>: not valid TOML: ...'")

BAD_CONFIGS = [
    pytest.param(unknown_key, id="unknown-key"),
    pytest.param(duplicate_port, id="duplicate-port"),
    pytest.param(missing_certificate, id="missing-certificate"),
    pytest.param(unknown_realm, id="unknown-realm"),
    pytest.param(no_authenticator, id="no-authenticator"),
    pytest.param(not_toml, id="not-toml"),
    pytest.param(plugin_unknown_key, id="plugin-unknown-key"),
    pytest.param(empty_endpoint, id="empty-endpoint"),
    pytest.param(core_and_plugin_at_once, id="core-and-plugin-at-once"),
]


@pytest.mark.parametrize("make", BAD_CONFIGS)
def test_twistd_refuses_bad_config(tmp_path, make):
    """A broken config stops `twistd wampgate` before anything listens: exit non-zero, exactly one
    '<file>: <key path> ...' line per problem on stderr, and no traceback."""
    port = free_port()
    text, problems = make(tmp_path, port)
    config = tmp_path / "router.toml"
    config.write_text(text)
    result = run_twistd(config, tmp_path)
    assert_refused(result, [f"{config}: {problem}" for problem in problems], port)


def test_twistd_refuses_shipped_production_config(tmp_path):
    """conf/production.toml (its TLS and JWT key files are not installed here) is refused with exactly the lines
    `load` reports with the plugin check, all three at once (certificate, key, then the jwt authenticator's public
    key), each prefixed with the file, and the router never starts."""
    config = REPO / "conf" / "production.toml"
    with pytest.raises(ConfigError) as raised:
        load(config, plugin_check=partial(plugin_problems, reactor=MemoryReactorClock()))
    result = run_twistd(config, tmp_path)
    assert_refused(result, [f"{config}: {problem}" for problem in raised.value.problems])
    assert len(result.stderr.splitlines()) == 3
    assert "listeners[0].auth.jwt.public_key" in result.stderr.splitlines()[2]


def test_twistd_refuses_missing_config_file(tmp_path):
    """A config path that does not exist gives one line naming the file once, and a non-zero exit."""
    config = tmp_path / "absent.toml"
    result = run_twistd(config, tmp_path)
    assert_refused(result, [f"{config}: cannot read the config file: No such file or directory"])


# --- (c) the twistd command line --------------------------------------------------------------------------------


def test_twistd_help_lists_config_option(tmp_path):
    """`twistd wampgate --help` documents the --config option."""
    result = subprocess.run([str(TWISTD), "wampgate", "--help"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=RUN_TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert "--config" in result.stdout
    assert "TOML config file" in result.stdout


def test_twistd_without_config_is_refused(tmp_path):
    """`twistd wampgate` without --config exits non-zero and says --config is required, with no traceback.
    (twistd itself prints usage errors, after the usage text, on stdout.)"""
    result = subprocess.run([str(TWISTD), "-n", "--pidfile=", "wampgate"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=RUN_TIMEOUT)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "--config FILE is required" in output
    assert "Traceback" not in output
    assert "listening on" not in output


# --- (d) wampgate check-config ----------------------------------------------------------------------------------


def check_config(path: Path, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(WAMPGATE), "check-config", str(path)], cwd=cwd, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT)


def test_check_config_accepts_dev_config(tmp_path):
    """`wampgate check-config conf/dev.toml` exits 0 and summarises listeners, realms, plugins and the admin
    endpoint."""
    result = subprocess.run([str(WAMPGATE), "check-config", "conf/dev.toml"], cwd=REPO, capture_output=True,
                            text=True, timeout=RUN_TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "listener universal: tcp:8080:interface=127.0.0.1 (plain) websocket + rawsocket; authentication: anonymous",
        "listener rawsocket: tcp:8081:interface=127.0.0.1 (plain) rawsocket; authentication: anonymous",
        "realm realm1: roles anonymous; authorizers: static",
        "flow control: limits",
        "admin: tcp:8082:interface=127.0.0.1",
    ]
    assert result.stderr == ""


def test_check_config_refuses_bad_config(tmp_path):
    """On a broken file check-config exits 1 and prints the same '<file>: <key path> ...' lines as start-up."""
    text, problems = unknown_key(tmp_path, 0)
    config = tmp_path / "router.toml"
    config.write_text(text)
    result = check_config(config, tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"{config}: {problem}" for problem in problems]
    assert result.stdout == ""


def test_check_config_refuses_what_startup_refuses(tmp_path):
    """check-config reports plugin-table problems too, so it never passes a config start-up would refuse."""
    text, problems = plugin_unknown_key(tmp_path, 0)
    config = tmp_path / "router.toml"
    config.write_text(text)
    result = check_config(config, tmp_path)
    assert result.returncode == 1
    assert f"{config}: {problems[0]}" in result.stderr.splitlines()


def test_check_config_missing_file_names_it_once(tmp_path):
    """check-config on a missing file exits 1 with one line naming the file once."""
    config = tmp_path / "absent.toml"
    result = check_config(config, tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [f"{config}: cannot read the config file: No such file or directory"]


def test_env_has_commands():
    """The venv's twistd and wampgate scripts exist (the tests above run them, not in-process imports)."""
    assert TWISTD.is_file() and os.access(TWISTD, os.X_OK)
    assert WAMPGATE.is_file() and os.access(WAMPGATE, os.X_OK)
