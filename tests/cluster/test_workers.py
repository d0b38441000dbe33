"""`[cluster] workers = 2` under the real `twistd wampgate`: one process opens the port, two worker processes serve
it as two nodes of one cluster (through a real Redis), the parent restarts a killed worker and stops them all on
SIGTERM with status 0. Which worker holds a client's connection is read from /proc (the server side of the TCP
connection is a socket descriptor of exactly one worker)."""

from __future__ import annotations

import os
import re
import socket
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import pytest_twisted
from autobahn.wamp.types import PublishOptions

from tests.cluster.conftest import REALM_WITH_META
from tests.integration.test_twistd import Output, twistd_command, wait_for_lines
from tests.support.clients import Collector, Target, connect, leave_all
from tests.support.redis_fixtures import redis_server, redis_servers  # noqa: F401
from tests.support.wait import bounded, eventually, free_port

START_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
MAX_CLIENTS = 60
WORKER_LINE = re.compile(r"worker (\d+) started: node (\S+), pid (\d+)")


def workers_config(directory: Path, redis_url: str, port: int, admin: int, *, endpoint: str | None = None) -> Path:
    """Anonymous may do everything in realm1 (and read the meta API); the admin endpoint; two workers."""
    config = directory / "router.toml"
    config.write_text(f"""
[[listeners]]
name = "universal"
endpoint = "{endpoint or f'tcp:{port}:interface=127.0.0.1'}"
transports = ["websocket", "rawsocket"]
[listeners.auth]
anonymous = {{ role = "anonymous" }}
{REALM_WITH_META}
[admin]
endpoint = "tcp:{admin}:interface=127.0.0.1"

[cluster]
redis = "{redis_url}"
workers = 2
heartbeat_interval = 0.2
node_timeout = 1.0
""")
    return config


class Workers:
    """The twistd parent and what its log says about its workers."""

    def __init__(self, config: Path, port: int, admin: int):
        self.port, self.admin = port, admin
        self.process = subprocess.Popen(twistd_command(config), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        text=True)
        self.output = Output(self.process.stdout)

    def wait_ready(self) -> None:
        wait_for_lines(self.process, self.output, "all 2 workers ready", 1, START_TIMEOUT)
        wait_for_lines(self.process, self.output, "Redis subscriber up", 2, START_TIMEOUT)

    def pids(self) -> dict[int, int]:
        """Worker index -> pid of its latest process, from the parent's log."""
        found = {}
        for line in self.output.lines:
            match = WORKER_LINE.search(line)
            if match:
                found[int(match.group(1))] = int(match.group(3))
        return found

    def health(self) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.admin}/healthz", timeout=2) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def stop(self) -> None:
        """Teardown: whatever the test left running is stopped, the workers by their own pids."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=STOP_TIMEOUT)
        for pid in self.pids().values():
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
        self.output.join()


def alive(pid: int) -> bool:
    """Running (a zombie waiting to be reaped is not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def server_socket_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the router's end of the loopback connection from `client_port`."""
    local, remote = f"0100007F:{server_port:04X}", f"0100007F:{client_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == local and fields[2] == remote:
            return fields[9]
    return None


def owner(pids: dict[int, int], server_port: int, client_port: int) -> int | None:
    """The index of the worker whose descriptors include the router's end of that connection."""
    inode = server_socket_inode(server_port, client_port)
    if inode is None:
        return None
    wanted = f"socket:[{inode}]"
    for index, pid in pids.items():
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{pid}/fd/{fd}") == wanted:
                    return index
            except OSError:
                continue
    return None


def client_port(session) -> int:
    return session._transport.transport.getHost().port


@pytest.fixture
def workers(tmp_path, redis_server):
    started = []

    def start(**options) -> Workers:
        port, admin = free_port(), free_port()
        running = Workers(workers_config(tmp_path, redis_server.url, port, admin, **options), port, admin)
        started.append(running)
        running.wait_ready()
        return running

    yield start
    for running in started:
        running.stop()


async def sessions_on_both(running: Workers) -> tuple[list, dict[int, list]]:
    """Clients connect to the one port until each worker holds at least one."""
    clients, by_worker = [], {0: [], 1: []}
    pids = running.pids()
    target = Target(port=running.port)
    while not (by_worker[0] and by_worker[1]):
        assert len(clients) < MAX_CLIENTS, f"{MAX_CLIENTS} clients and one worker still has none: {pids}"
        session = await connect(target)
        clients.append(session)
        index = await eventually(lambda s=session: owner(pids, running.port, client_port(s)) is not None and
                                 (owner(pids, running.port, client_port(s)),), "the connection's worker found")
        by_worker[index[0]].append(session)
    return clients, by_worker


async def until(check, what: str, timeout: float = 10.0):
    """Await `check()` (a coroutine function) every 0.1 s until it returns something truthy; fail after `timeout`."""
    from twisted.internet import reactor, task

    deadline = time.monotonic() + timeout
    while True:
        value = await bounded(check())
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError(f"{what} did not hold within {timeout} s")
        await task.deferLater(reactor, 0.1, lambda: None)


async def crosses(a, b, topic: str, procedure: str) -> None:
    """An event published on `a` reaches `b`, and `a` calls a procedure `b` registered."""
    received = Collector()
    await b.subscribe(received, topic)
    await b.register(lambda x: x * 2, procedure)

    async def delivered():  # the subscription reaches a's node through Redis a moment after SUBSCRIBED
        await a.publish(topic, "hello", options=PublishOptions(acknowledge=True))
        return received.events

    events = await until(delivered, "an event crossed from one worker to the other")
    assert events[0][0] == ("hello",)
    assert await bounded(a.call(procedure, 21)) == 42


async def counts(session, expected: int) -> None:
    async def counted():
        return await session.call("wamp.session.count") == expected

    await until(counted, f"wamp.session.count == {expected}")


@pytest_twisted.ensureDeferred
async def test_two_workers_share_one_port_and_serve_one_realm_together(workers):
    """Both workers accept on the one port; an event and a call cross from one to the other, and
    wamp.session.count (on either side) counts every client; /healthz on the parent lists both workers ready."""
    running = workers()
    clients, by_worker = await sessions_on_both(running)
    a, b = by_worker[0][0], by_worker[1][0]
    await crosses(a, b, "com.test.news", "com.test.double")
    await crosses(b, a, "com.test.back", "com.test.twice")
    await counts(a, len(clients))
    await counts(b, len(clients))
    status, body = running.health()
    assert status == 200 and body.startswith("ok\n") and body.count(", ready,") == 2
    await leave_all(*clients)


@pytest_twisted.ensureDeferred
async def test_a_killed_worker_is_started_again_and_the_port_keeps_serving(workers):
    """SIGKILL on worker 0: its clients are cut, the parent starts a new worker 0 (a new pid and node), /healthz
    says degraded until it is ready, and clients on the port reach worker 1's procedures and each other again."""
    running = workers()
    clients, by_worker = await sessions_on_both(running)
    survivor = by_worker[1][0]
    await survivor.register(lambda x: x * 2, "com.test.double")
    old = running.pids()[0]
    os.kill(old, signal.SIGKILL)
    wait_for_lines(running.process, running.output, "starting it again", 1, START_TIMEOUT)
    wait_for_lines(running.process, running.output, "worker 0 started", 2, START_TIMEOUT)
    assert running.pids()[0] != old and not alive(old)
    await eventually(lambda: running.health()[0] == 200, "the new worker 0 ready", timeout=START_TIMEOUT)
    again, _ = await sessions_on_both(running)
    await counts(survivor, len(by_worker[1]) + len(again))  # worker 0's old sessions left within node_timeout
    for session in again:
        assert await bounded(session.call("com.test.double", 4)) == 8
    await leave_all(*again, *by_worker[1])


def test_sigterm_stops_every_worker_and_the_parent_exits_0(workers):
    """SIGTERM on the parent: each worker drains and exits, then the parent exits with status 0 and the port is
    closed."""
    running = workers()
    pids = running.pids()
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(timeout=STOP_TIMEOUT) == 0
    assert not any(alive(pid) for pid in pids.values())
    from tests.integration.test_twistd import port_is_free

    assert port_is_free(running.port)
    assert "stopping the workers gracefully" in running.output.text()


def test_sighup_reaches_every_worker(workers):
    """SIGHUP on the parent: each worker reloads the config file (its 'reloaded' line is in the parent's log)."""
    running = workers()
    running.process.send_signal(signal.SIGHUP)
    lines = wait_for_lines(running.process, running.output, "] reloaded ", 2, START_TIMEOUT)
    assert {line.split("] [", 1)[1].split("]")[0] for line in lines} == {
        line.split("node ")[1].split(",")[0] for line in running.output.lines if "started: node" in line}


def rawsocket_handshake(path: str) -> bytes:
    with socket.socket(socket.AF_UNIX) as client:
        client.settimeout(5)
        client.connect(path)
        client.sendall(bytes([0x7F, 0xF2, 0, 0]))  # RawSocket: max length 2**24, MessagePack
        return client.recv(4)


def test_a_unix_socket_listener_is_shared_by_the_workers(workers, tmp_path):
    """A Unix-socket listener: the parent creates the path, both workers accept on it (every RawSocket handshake is
    answered, by whichever worker), and the parent removes the path when it stops."""
    path = tmp_path / "wg.sock"
    running = workers(endpoint=f"unix:{path}")
    for _ in range(10):
        assert rawsocket_handshake(str(path))[0] == 0x7F
    running.process.send_signal(signal.SIGTERM)
    assert running.process.wait(timeout=STOP_TIMEOUT) == 0
    assert not path.exists()


def test_a_port_the_parent_cannot_open_stops_start_up_with_one_line(tmp_path, redis_server):
    """The parent opens the sockets before any worker starts: a port in use ends start-up with status 1 and one
    line naming the listener and the endpoint, and no worker is started."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = workers_config(tmp_path, redis_server.url, port, free_port())
        result = subprocess.run(twistd_command(config), capture_output=True, text=True, timeout=START_TIMEOUT)
    output = result.stdout + result.stderr  # twistd sends stderr to its log (stdout with -n) once logging is up
    assert result.returncode == 1
    assert f"listener universal cannot listen on tcp:{port}:interface=127.0.0.1: " in output
    assert "Address already in use" in output and "worker 0 started" not in output
