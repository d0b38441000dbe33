"""A subscriber that stops reading cannot make the router hold unbounded memory: the router runs as a real
`twistd wampgate` subprocess (so its resident memory can be read from /proc), a RawSocket subscriber written by hand
on a plain socket joins, subscribes and then stops reading, and a publisher (also by hand) pushes 200 MiB of events
(3200 x 64 KiB, acknowledged, so the round trips pace it). The router's RSS must stay within 100 MiB of its
baseline, and the realm's `slow_consumer` policy must be applied: "drop" keeps the session and counts what it
missed (the subscriber asks `wampgate.session.dropped_events` once it reads again), "disconnect" closes it.

Two more tests run the router in process, where its counters can be read: slow_consumer_drop counts each dropped
event (the number dropped_events reports), slow_consumer_disconnect the one disconnect.

Every socket operation has a timeout, every loop a bound; the router process is always killed in a finally.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import msgpack
import pytest
import pytest_twisted

from tests.support import raw
from tests.support.flow import count, eventually, exchange, flow_table, limits_table, publish
from tests.support.router import listener, realm_anonymous_all, start_router
from tests.support.wait import free_port

BIN = Path(sys.executable).parent
TWISTD = BIN / "twistd"
START_TIMEOUT = 15.0
EVENT_SIZE = 64 * 1024
EVENTS = 3200  # 200 MiB
IN_FLIGHT = 32  # acknowledged publishes outstanding at once (fewer make the 40 ms RawSocket Nagle stalls dominate)
MAX_GROWTH_MIB = 100
MAX_OUTGOING_BUFFER = 1024 * 1024

HELLO, WELCOME, ABORT = 1, 2, 3
ERROR, PUBLISH, PUBLISHED, SUBSCRIBE, SUBSCRIBED, EVENT = 8, 16, 17, 32, 33, 36
CALL, RESULT = 48, 50
DROPPED_EVENTS = "wampgate.session.dropped_events"


def router_config(port: int, policy: str) -> str:
    """One universal listener; realm1 open to anonymous with the given slow_consumer policy; flow limits opened
    up (every rate unlimited, no quota) so the publisher is paced only by its round trips."""
    return textwrap.dedent(f"""
        [[flow]]
        plugin = "limits"
        disconnect_after = 0
        quotas = []

        [flow.rates]
        session = {{ messages = 0, bytes = 0 }}
        authid = {{ messages = 0, bytes = 0 }}
        authrole = {{ messages = 0, bytes = 0 }}
        peer = {{ messages = 0, bytes = 0 }}

        [limits]
        max_outgoing_buffer = {MAX_OUTGOING_BUFFER}

        [[listeners]]
        name = "main"
        endpoint = "tcp:{port}:interface=127.0.0.1"
        transports = ["websocket", "rawsocket"]

        [listeners.auth.anonymous]
        role = "anonymous"
        """) + realm_anonymous_all(slow_consumer=policy)


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of a process from /proc/PID/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")


class _Lines:
    """Collects a pipe's lines in a thread, so start-up can be polled without blocking or filling the pipe."""

    def __init__(self, pipe):
        self.lines: list[str] = []
        threading.Thread(target=self._read, args=(pipe,), daemon=True).start()

    def _read(self, pipe) -> None:
        for line in pipe:
            self.lines.append(line.rstrip("\n"))


@contextlib.contextmanager
def twistd_router(tmp_path: Path, policy: str):
    """Start `twistd -n --pidfile= wampgate --config ...` on a free loopback port; yield (process, port); always
    kill it afterwards."""
    port = free_port()
    config = tmp_path / "router.toml"
    config.write_text(router_config(port, policy))
    process = subprocess.Popen([str(TWISTD), "-n", "--pidfile=", "wampgate", "--config", str(config)], cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        output = _Lines(process.stdout)
        deadline = time.monotonic() + START_TIMEOUT
        while not any("listening on" in line for line in output.lines):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail("twistd did not start:\n" + "\n".join(output.lines))
            time.sleep(0.02)
        yield process, port
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


class RawSocketPeer:
    """WAMP over RawSocket (msgpack) on a blocking socket, by hand: the 4-octet handshake, then frames of a type
    octet and a 24-bit length. Every read has a deadline."""

    def __init__(self, port: int, *, receive_buffer: int | None = None, timeout: float = 10.0):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if receive_buffer is not None:  # before connect, so the window is small from the start
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no 40 ms Nagle/delayed-ACK stalls
        self.sock.settimeout(timeout)
        self.sock.connect(("127.0.0.1", port))
        self._inbox = bytearray()
        self.sock.sendall(bytes((0x7F, 0xF2, 0, 0)))  # max length 2**24, msgpack
        reply = self._exactly(4, time.monotonic() + timeout)
        assert reply[0] == 0x7F and reply[1] & 0x0F == 2, reply.hex()

    def _exactly(self, count: int, deadline: float) -> bytes:
        while len(self._inbox) < count:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"waited for {count} bytes, have {len(self._inbox)}")
            self.sock.settimeout(remaining)
            chunk = self.sock.recv(max(65536, count - len(self._inbox)))
            if not chunk:
                raise ConnectionError("closed by the router")
            self._inbox += chunk
        data = bytes(self._inbox[:count])
        del self._inbox[:count]
        return data

    def send(self, message: list) -> None:
        payload = msgpack.packb(message, use_bin_type=True)
        self.sock.sendall(bytes((0,)) + len(payload).to_bytes(3, "big") + payload)

    def receive(self, timeout: float = 10.0) -> list:
        """The next WAMP message (PINGs are answered and skipped)."""
        deadline = time.monotonic() + timeout
        for _ in range(1000):
            header = self._exactly(4, deadline)
            payload = self._exactly(int.from_bytes(header[1:4], "big"), deadline)
            if header[0] & 0x07 == 0:
                return msgpack.unpackb(payload, raw=False)
            if header[0] & 0x07 == 1:
                self.sock.sendall(bytes((2,)) + header[1:4] + payload)
        raise AssertionError("only PINGs")

    def join(self) -> int:
        self.send([HELLO, "realm1", {"roles": {"subscriber": {}, "publisher": {}, "caller": {}}}])
        welcome = self.receive()
        assert welcome[0] == WELCOME, welcome
        return welcome[1]

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def publish_flood(publisher: RawSocketPeer, pid: int) -> tuple[int, float]:
    """Publish EVENTS x EVENT_SIZE bytes, acknowledged, IN_FLIGHT at a time; every PUBLISHED must come back.
    Returns (the peak RSS in KiB sampled along the way, seconds taken)."""
    payload = b"\xab" * EVENT_SIZE
    started = time.monotonic()
    peak = 0
    request = 0
    for _ in range(EVENTS // IN_FLIGHT):
        for _ in range(IN_FLIGHT):
            request += 1
            publisher.send([PUBLISH, request, {"acknowledge": True}, "com.example.firehose", [payload]])
        for _ in range(IN_FLIGHT):
            reply = publisher.receive(timeout=10.0)
            assert reply[0] == PUBLISHED, reply[:5]
        if request % 400 == 0:
            peak = max(peak, rss_kib(pid))
        assert time.monotonic() - started < 60, "the flood took over 60 s"
    return peak, time.monotonic() - started


def stalled_subscriber(port: int) -> RawSocketPeer:
    """Joins, subscribes to com.example.firehose, and from then on reads nothing (with a 64 KiB receive buffer
    so the router's socket fills quickly)."""
    subscriber = RawSocketPeer(port, receive_buffer=64 * 1024)
    subscriber.join()
    subscriber.send([SUBSCRIBE, 1, {}, "com.example.firehose"])
    assert subscriber.receive()[0] == SUBSCRIBED
    return subscriber


def report(policy: str, baseline: int, sampled_peak: int, high_water: int, seconds: float) -> int:
    growth = max(sampled_peak, high_water) - baseline
    print(f"\nslow consumer ({policy}): router RSS baseline {baseline / 1024:.1f} MiB, sampled peak "
          f"{sampled_peak / 1024:.1f} MiB, high-water mark {high_water / 1024:.1f} MiB, growth "
          f"{growth / 1024:.1f} MiB over {EVENTS * EVENT_SIZE / 2**20:.0f} MiB published in {seconds:.1f} s",
          flush=True)
    return growth


def test_slow_consumer_drop_bounds_memory_and_counts_what_was_dropped(tmp_path):
    """slow_consumer = "drop": while a RawSocket subscriber reads nothing, 200 MiB of events are published
    (all acknowledged); the router's RSS grows by less than 100 MiB; once the subscriber reads again it
    receives the events the router had buffered, and `wampgate.session.dropped_events` answers a positive
    count that, with the events it received, accounts for every publication."""
    with twistd_router(tmp_path, "drop") as (process, port):
        subscriber = publisher = None
        try:
            subscriber = stalled_subscriber(port)
            publisher = RawSocketPeer(port)
            publisher.join()
            baseline = rss_kib(process.pid)
            sampled_peak, seconds = publish_flood(publisher, process.pid)
            growth = report("drop", baseline, sampled_peak, rss_kib(process.pid, "VmHWM"), seconds)
            assert growth < MAX_GROWTH_MIB * 1024

            subscriber.send([CALL, 2, {}, DROPPED_EVENTS, []])
            received = 0
            deadline = time.monotonic() + 30
            while True:
                message = subscriber.receive(timeout=max(0.1, deadline - time.monotonic()))
                if message[0] == EVENT:
                    received += 1
                    continue
                assert message[0] == RESULT and message[1] == 2, message[:5]
                dropped = message[3][0]
                break
            print(f"subscriber received {received} events after resuming; dropped_events = {dropped}")
            assert dropped > 0
            assert received + dropped == EVENTS
            assert received * EVENT_SIZE < 16 * 2**20  # only what the buffers held
        finally:
            for peer in (subscriber, publisher):
                if peer is not None:
                    peer.close()


def test_slow_consumer_disconnect_bounds_memory_and_closes_the_subscriber(tmp_path):
    """slow_consumer = "disconnect": while a RawSocket subscriber reads nothing, 200 MiB of events are published
    (all acknowledged: the publisher is never held up); the router's RSS grows by less than 100 MiB, and the
    stalled subscriber's connection is closed by the router (its socket reaches EOF or a reset after the events
    that were already in flight)."""
    with twistd_router(tmp_path, "disconnect") as (process, port):
        subscriber = publisher = None
        try:
            subscriber = stalled_subscriber(port)
            publisher = RawSocketPeer(port)
            publisher.join()
            baseline = rss_kib(process.pid)
            sampled_peak, seconds = publish_flood(publisher, process.pid)
            growth = report("disconnect", baseline, sampled_peak, rss_kib(process.pid, "VmHWM"), seconds)
            assert growth < MAX_GROWTH_MIB * 1024

            closed = False
            received = 0
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline:
                try:
                    message = subscriber.receive(timeout=max(0.1, deadline - time.monotonic()))
                except TimeoutError:
                    break
                except OSError:  # EOF (ConnectionError), or a reset from abortConnection
                    closed = True
                    break
                assert message[0] == EVENT, message[:5]
                received += 1
            print(f"stalled subscriber read {received} events before the router's close")
            assert closed, "the router did not close the stalled subscriber"
            assert received < EVENTS
        finally:
            for peer in (subscriber, publisher):
                if peer is not None:
                    peer.close()


# -- the same policies in process, where the router's counters can be read ----------------------------------------


def _in_process_config(policy: str) -> str:
    unlimited = {"messages": 0, "bytes": 0}
    flow = flow_table(disconnect_after=0, quotas=[], rates={scope: unlimited for scope in
                                                            ("session", "authid", "authrole", "peer")})
    realm = realm_anonymous_all(slow_consumer=policy)
    return flow + limits_table(max_outgoing_buffer=64 * 1024) + listener("main") + realm


@pytest.mark.parametrize("policy", ["drop", "disconnect"])
@pytest_twisted.ensureDeferred
async def test_slow_consumer_policy_is_counted(tmp_path, policy):
    """In process (max_outgoing_buffer = 64 KiB): a RawSocket subscriber that stops reading while 64 KiB events are
    published makes the router count slow_consumer_drop (once per dropped event, the same number
    wampgate.session.dropped_events answers once the subscriber reads again) or slow_consumer_disconnect (once,
    and the subscriber's connection is closed), labelled with listener and realm; the publisher is never
    refused."""
    labels = {"listener": "main", "realm": "realm1"}
    name = f"slow_consumer_{policy}"
    router = await start_router(_in_process_config(policy), tmp_path)
    tracker = raw.Tracker()
    try:
        port = router.port("main")
        subscriber = tracker(await raw.open_rawsocket(port))
        await subscriber.join()
        subscriber.send([SUBSCRIBE, 1, {}, "com.example.firehose"])
        assert (await subscriber.wait_messages(2))[1][0] == SUBSCRIBED
        subscriber.tcp.transport.pauseProducing()  # stop reading
        publisher = tracker(await raw.open_rawsocket(port))
        await publisher.join()
        payload = b"\xcd" * EVENT_SIZE
        published = 0
        for batch in range(40):  # at most 640 events (40 MiB)
            replies = await exchange(publisher, [publish(published + i + 1, "com.example.firehose", payload=payload)
                                                 for i in range(16)], timeout=10.0)
            assert all(reply[0] == PUBLISHED for reply in replies)
            published += 16
            if count(router, name, **labels) and batch >= 2:
                break
        counted = count(router, name, **labels)
        print(f"\n{policy}: {published} events published, {name} = {counted}")
        assert counted > 0
        subscriber.tcp.transport.resumeProducing()  # read again
        if policy == "disconnect":
            assert counted == 1
            await subscriber.wait_lost(5.0)
        else:
            subscriber.send([CALL, 2, {}, DROPPED_EVENTS, []])
            result = await eventually(lambda: next((m for m in subscriber.messages if m[0] == RESULT), None),
                                      timeout=10.0, step=0.1)
            assert result[1] == 2 and result[3] == [counted]
            events = [m for m in subscriber.messages if m[0] == EVENT]
            assert len(events) + counted == published
    finally:
        tracker.close_all()
        await router.stop()
