"""The cluster scenario: fan-out through Redis (`[cluster]`, docs/cluster.md), beside one process, in one run.

Three rows, each 1 publisher and `cluster_fanout` subscribers (100) on one topic, flow-controlled as in the fan-out
scenario (bench/scenarios.py), MessagePack over WebSocket, plain TCP:

- one process: the run's ordinary Wampgate (no [cluster], no Redis);
- workers = 2: one `twistd wampgate` with `[cluster] workers = 2` (two router processes on the one port, nodes of one
  cluster through a Redis started for the row); router CPU is the parent's and both workers' together;
- two nodes: two `twistd wampgate` nodes (workers = 1) on one Redis, the publisher on node A, every subscriber on
  node B: router CPU per delivered event at the publishing node and at the receiving node separately.

Redis CPU per event comes from /proc/<redis-server pid>/stat like every other CPU figure. The bench starts its own
redis-server (never the tests' fixtures); without one on PATH the scenario is skipped, saying so.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from bench import procfs
from bench.scenarios import TOPIC, Endpoint, Pool, fanout, run_fanout
from bench.servers import STOP_TIMEOUT, ServerError, Wampgate, free_port, wampgate_config

VARIANTS = ("one-process", "workers-2", "two-nodes")
TITLES = {"one-process": "one process", "workers-2": "workers = 2", "two-nodes": "2 nodes, pub A subs B"}
SETTLE = 1.0  # after the subscribers are ready, before publishing: their interest reaches Redis (bench only)
REDIS_HOW_TO = "install it (Debian: apt-get install redis-server) to measure the cluster"


def redis_executable() -> str | None:
    return shutil.which("redis-server") or next(
        (path for path in ("/usr/bin/redis-server", "/usr/sbin/redis-server") if Path(path).exists()), None)


class Redis:
    """A redis-server of the benchmark's own: loopback, a free port, nothing persisted."""

    def __init__(self, workdir: Path, executable: str):
        self.workdir, self.executable = workdir, executable
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> Redis:
        self.port = free_port()
        log = open(self.workdir / f"redis-{self.port}.log", "wb")
        self.process = subprocess.Popen(
            [self.executable, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.workdir)], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=procfs.die_with_parent)
        log.close()
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            if self._pong():
                return self
            if self.process.poll() is not None:
                break
            time.sleep(0.02)
        self.stop()
        raise ServerError(f"redis-server did not answer PING on {self.port}")

    def _pong(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def cpu_seconds(self) -> float:
        return procfs.cpu_seconds(self.process.pid)

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=STOP_TIMEOUT)


class ClusterWampgate(Wampgate):
    """The benchmark's Wampgate config plus a [cluster] table; its CPU is its own and its workers' together."""

    ready_text = "Redis subscriber up"

    def __init__(self, workdir: Path, certificate: Path, private_key: Path, redis_url: str, workers: int, tag: str):
        self.name = f"wampgate-{tag}"
        super().__init__(workdir, certificate, private_key)
        self.redis_url, self.workers, self.ready_lines = redis_url, workers, workers

    def prepare(self) -> None:
        self.config = self.workdir / f"{self.name}.toml"
        self.config.write_text(wampgate_config(self.port, self.tls_port, self.certificate, self.private_key)
                               + f'\n[cluster]\nredis = "{self.redis_url}"\nnode = "{self.name}"\n'
                                 f"workers = {self.workers}\n")

    def processes(self) -> list[int]:
        return [self.pid, *procfs.children(self.pid)] if self.pid else []

    def cpu_seconds(self) -> float:
        return procfs.total_cpu_seconds(self.processes())

    def stop(self) -> None:
        self.extra_pids = procfs.children(self.pid) if self.pid and procfs.alive(self.pid) else []
        super().stop()


def measured_fanout(publisher_at: dict, subscribers_at: dict, meters: dict, settings, subscribers: int) -> dict:
    """The fan-out scenario's run with the publisher and the subscribers on their own targets, and CPU read from
    every meter (name -> seconds) at both edges of the window."""
    return run_fanout(publisher_at, subscribers_at, settings, subscribers, TOPIC,
                      measure=lambda pool, counters: _sample(meters, pool, counters), figures=_figures, settle=SETTLE)


def _sample(meters: dict, pool: Pool, counters) -> dict:
    values = {name: meter() for name, meter in meters.items()}
    values.update(at=time.monotonic(), loadgen=procfs.total_cpu_seconds(pool.pids()), count=sum(counters),
                  busy=procfs.system_cpu()[0])
    return values


def _figures(a: dict, b: dict) -> dict:
    elapsed, work = b["at"] - a["at"], b["count"] - a["count"]
    figures = {"event_per_s": round(work / elapsed, 1) if elapsed > 0 else None, "events_in_window": work,
               "window_s": round(elapsed, 3),
               "machine_busy_percent": round(100 * (b["busy"] - a["busy"]) / elapsed, 1)}
    measured = 0.0
    for name in a:
        if name in ("at", "count", "busy"):
            continue
        cpu = b[name] - a[name]
        measured += cpu
        figures[f"{name}_cpu_us_per_event"] = round(cpu / work * 1e6, 2) if work else None
        figures[f"{name}_cpu_percent"] = round(100 * cpu / elapsed, 1)
    # CPU the machine spent on anything but the routers, Redis and the load generator: large means disturbed
    figures["other_cpu_percent"] = round(100 * ((b["busy"] - a["busy"]) - measured) / elapsed, 1)
    return figures


def run(endpoint: Endpoint, settings, variant: str, subscribers: int) -> dict:
    """One row; `endpoint` is the run's single-process Wampgate (its workdir and certificate serve the others)."""
    if variant == "one-process":
        return fanout(endpoint, settings, subscribers, False)
    executable = redis_executable()
    if executable is None:
        return {"ok": False, "errors": [f"redis-server is not installed; {REDIS_HOW_TO}"]}
    base = endpoint.server
    redis = Redis(base.workdir, executable).start()
    servers: list[ClusterWampgate] = []
    try:
        def node(workers: int, tag: str) -> ClusterWampgate:
            server = ClusterWampgate(base.workdir, base.certificate, base.private_key, redis.url, workers, tag)
            servers.append(server)
            server.start()
            return server

        if variant == "workers-2":
            both = node(2, "workers")
            at = Endpoint("wampgate", both).target(False)
            return measured_fanout(at, at, {"router": both.cpu_seconds, "redis": redis.cpu_seconds}, settings,
                                   subscribers)
        a, b = node(1, "a"), node(1, "b")
        result = measured_fanout(Endpoint("a", a).target(False), Endpoint("b", b).target(False),
                                 {"publishing_node": a.cpu_seconds, "receiving_node": b.cpu_seconds,
                                  "redis": redis.cpu_seconds}, settings, subscribers)
        if result.get("publishing_node_cpu_us_per_event") is not None:
            result["router_cpu_us_per_event"] = round(result["publishing_node_cpu_us_per_event"]
                                                      + result["receiving_node_cpu_us_per_event"], 2)
        return result
    finally:
        for server in servers:
            server.stop()
        redis.stop()
