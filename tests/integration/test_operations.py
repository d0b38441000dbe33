"""Operating the router: the admin listener's /metrics and /healthz, reloading the config of a running router, and
the signals an operator sends to `twistd wampgate` (SIGHUP reloads, SIGTERM shuts down gracefully with status 0),
plus the JSON log format.

The metrics and reload tests run a real router in the test process (tests.support.router) and fetch over HTTP with
twisted.web's Agent, so the reactor keeps running while they wait; the signal tests run the real twistd in a
subprocess on free loopback ports and talk to it with a blocking RawSocket client whose every read has a timeout.
Every wait is bounded, and every process a test starts is killed however the test ends.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
import textwrap
import threading
import time
from pathlib import Path

import msgpack
import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions
from prometheus_client.parser import text_string_to_metric_families
from twisted.internet import defer, task
from twisted.logger import LogLevel
from twisted.web.client import Agent, readBody

from wampgate.passwords import hash_secret
from wampgate.tx.metrics import RouterCollector
from wampgate.tx.traffic import LATENCY_BUCKETS
from tests.integration.test_twistd import TWISTD, Output, port_is_free
from tests.support import raw
from tests.support.clients import Collector, Target, connect, leave
from tests.support.raw import bounded
from tests.support.router import listener, start_router
from tests.support.wait import eventually, free_port
from tests.support.logcapture import captured_log

NOT_AUTHORIZED = "wamp.error.not_authorized"
RATE_LIMITED = "wampgate.error.rate_limited"
SYSTEM_SHUTDOWN = "wamp.close.system_shutdown"
ALICE_TICKET = "alice-ops-ticket"
TIMEOUT = 5.0  # any single wait in the in-process tests
START_TIMEOUT = 10.0  # twistd start-up
SIGNAL_TIMEOUT = 10.0  # a log line or an exit after a signal


# Agent's response transport has no abortConnection; readBody warns about it on every request.
pytestmark = pytest.mark.filterwarnings("ignore:Using readBody with a transport:DeprecationWarning")


def _reactor():
    from twisted.internet import reactor

    return reactor


def sleep(seconds: float) -> defer.Deferred:
    return task.deferLater(_reactor(), seconds, lambda: None)


# -- HTTP and the Prometheus text format ------------------------------------------------------------------------


async def http_get(port: int, path: str) -> tuple[int, dict, bytes]:
    """GET http://127.0.0.1:<port><path> with twisted.web's Agent; (status, headers, body), bounded."""
    agent = Agent(_reactor(), connectTimeout=TIMEOUT)
    response = await bounded(agent.request(b"GET", f"http://127.0.0.1:{port}{path}".encode()))
    body = await bounded(readBody(response))
    headers = {name.decode().lower(): [v.decode() for v in values]
               for name, values in response.headers.getAllRawHeaders()}
    return response.code, headers, body


def admin_port(router) -> int:
    return router.service.getServiceNamed("admin").port.getHost().port


def parse_metrics(body: bytes) -> tuple[dict[str, object], dict[tuple, float]]:
    """(families by name, {(sample name, frozenset of label items): value}) via prometheus_client's own parser."""
    families = {family.name: family for family in text_string_to_metric_families(body.decode("utf-8"))}
    samples = {}
    for family in families.values():
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in samples, f"duplicate sample {key}"
            samples[key] = sample.value
    return families, samples


async def scrape(router) -> dict[tuple, float]:
    status, headers, body = await http_get(admin_port(router), "/metrics")
    assert status == 200, body
    assert headers["content-type"][0].startswith("text/plain"), headers
    return parse_metrics(body)[1]


def value(samples: dict, name: str, **labels: str) -> float:
    """A sample's value; 0 when the series does not exist (a counter that never moved is not exported)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: dict, name: str) -> float:
    return sum(v for (sample, _), v in samples.items() if sample == name)


# -- /metrics and /healthz --------------------------------------------------------------------------------------

REALM_ANONYMOUS_COM_EXAMPLE = """
[[realms]]
name = "realm1"

[[realms.roles]]
name = "anonymous"

[[realms.roles.permissions]]
uri = "com.example."
match = "prefix"
allow = ["publish", "subscribe", "call", "register"]

[[realms.roles]]
name = "user"

[[realms.roles.permissions]]
uri = "com.example."
match = "prefix"
allow = ["publish", "subscribe", "call", "register"]
"""

FLOW_BURST = 20  # per-session message budget; it refills at 0.01/s, i.e. not at all within a test


def metrics_config(secret_hash: str) -> str:
    """A universal listener "main" (anonymous), a WebSocket listener "secure" with ticket authentication only, the
    limits plugin with a tiny per-session budget, and the admin listener on a port the OS picks."""
    ticket = f'ticket = {{ principals = [{{ authid = "alice", role = "user", secret_hash = "{secret_hash}" }}] }}'
    return (
        textwrap.dedent(f"""
            [[flow]]
            plugin = "limits"
            disconnect_after = 0
            rates = {{ session = {{ messages = 0.01, burst = {FLOW_BURST} }} }}

            [admin]
            endpoint = "tcp:0:interface=127.0.0.1"
            """)
        + listener("main")
        + listener("secure", ("websocket",), auth=ticket)
        + REALM_ANONYMOUS_COM_EXAMPLE
    )


@pytest.fixture(scope="module")
def alice_hash() -> str:
    return hash_secret(ALICE_TICKET)


@pytest_twisted.async_yield_fixture()
async def metrics_router(tmp_path, alice_hash):
    running = await start_router(metrics_config(alice_hash), tmp_path)
    yield running
    await running.stop()


async def failed_ticket_login(port: int) -> list:
    """alice offers ticket, gets the CHALLENGE, answers with a wrong ticket; the ABORT, once the socket is closed."""
    client = await raw.open_websocket(port)
    try:
        client.send(raw.hello(authmethods=["ticket"], authid="alice"))
        challenge = (await client.wait_messages(1))[0]
        assert challenge[:2] == [4, "ticket"], challenge
        client.send([5, "not-alices-ticket", {}])
        abort = (await client.wait_messages(2, timeout=TIMEOUT))[1]
        await client.wait_closed()
        return abort
    finally:
        client.disconnect()


@pytest_twisted.ensureDeferred
async def test_metrics_count_exactly_what_clients_did(metrics_router):
    """/metrics parses with prometheus_client's parser, and after a known set of actions the series move by exactly
    that much: 3 anonymous sessions (sessions{realm}, connections{listener}, authentication_success{anonymous}),
    25 PUBLISH messages received (3 delivered to one subscriber, 1 denied, 21 from a flooder of which 1 is
    rate-limited), one CALL and YIELD, one failed ticket login; the routing-latency histogram counts every routed
    transport message and is cumulative; and the gauges fall back to 0 when the clients leave."""
    router = metrics_router
    before = await scrape(router)
    port = router.port("main")

    subscriber = await bounded(connect(Target(port=port, transport="websocket", serializer="json")))
    publisher = await bounded(connect(Target(port=port, transport="rawsocket", serializer="msgpack")))
    events = Collector(expected=3)
    await bounded(subscriber.subscribe(events, "com.example.topic"))
    await bounded(subscriber.register(lambda a, b: a + b, "com.example.add"))
    for n in range(3):
        await bounded(publisher.publish("com.example.topic", n, options=PublishOptions(acknowledge=True)))
    assert len(await bounded(events.done)) == 3
    assert await bounded(publisher.call("com.example.add", 2, 3)) == 5
    with pytest.raises(ApplicationError) as denied:
        await bounded(publisher.publish("com.other.topic", options=PublishOptions(acknowledge=True)))
    assert denied.value.error == NOT_AUTHORIZED

    abort = await failed_ticket_login(router.port("secure"))
    assert abort[0] == raw.ABORT and abort[2] == "wamp.error.authentication_failed", abort

    flooder = await raw.open_websocket(port)
    try:
        await flooder.join()
        seen = len(flooder.messages)
        for request in range(1, FLOW_BURST + 2):
            flooder.send([raw.PUBLISH, request, {"acknowledge": True}, "com.example.flood", [request]])
        replies = (await flooder.wait_messages(seen + FLOW_BURST + 1))[seen:]
        published = [r for r in replies if r[0] == raw.PUBLISHED]
        refused = [r for r in replies if r[0] == raw.ERROR]
        assert (len(published), len(refused)) == (FLOW_BURST, 1), replies
        assert refused[0][4] == RATE_LIMITED, refused

        await eventually(lambda: router.listener("secure").open_connections() == 0, what="the refused login closed")
        after = await scrape(router)

        def delta(name: str, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        assert value(after, "wampgate_sessions", realm="realm1") == 3
        assert value(after, "wampgate_connections", listener="main") == 3
        assert value(after, "wampgate_connections", listener="secure") == 0
        received = {kind: delta("wampgate_messages_received_total", type=kind)
                    for kind in ("Hello", "Authenticate", "Subscribe", "Register", "Publish", "Call", "Yield")}
        assert received == {"Hello": 4, "Authenticate": 1, "Subscribe": 1, "Register": 1, "Publish": 25,
                            "Call": 1, "Yield": 1}
        assert delta("wampgate_deliveries_total") == 3
        assert delta("wampgate_authorization_denied_total", realm="realm1", action="publish") == 1
        denied_total = "wampgate_authorization_denied_total"
        assert total(after, denied_total) - total(before, denied_total) == 1
        assert delta("wampgate_flow_reject_total", reason="rate_limited", listener="main", realm="realm1") == 1
        assert delta("wampgate_authentication_success_total", method="anonymous") == 3
        assert delta("wampgate_authentication_failure_total", method="ticket") == 1

        routed = total(after, "wampgate_messages_received_total") - total(before, "wampgate_messages_received_total")
        assert delta("wampgate_routing_seconds_count") == routed
        assert delta("wampgate_routing_seconds_sum") > 0
        buckets = [(float(dict(labels)["le"]), v) for (name, labels), v in after.items()
                   if name == "wampgate_routing_seconds_bucket"]
        buckets.sort()
        assert [le for le, _ in buckets] == [*LATENCY_BUCKETS, float("inf")]
        counts = [v for _, v in buckets]
        assert counts == sorted(counts) and counts[-1] == value(after, "wampgate_routing_seconds_count")
    finally:
        flooder.disconnect()
        await bounded(leave(subscriber))
        await bounded(leave(publisher))

    await eventually(lambda: router.listener("main").open_connections() == 0, what="every client gone")
    gone = await scrape(router)
    assert value(gone, "wampgate_sessions", realm="realm1") == 0
    assert value(gone, "wampgate_connections", listener="main") == 0


@pytest_twisted.ensureDeferred
async def test_healthz_is_ok_while_listening_and_503_naming_a_stopped_listener(metrics_router):
    """/healthz answers 200 "ok\\n" (text/plain) while every listener listens; once one listener service is stopped
    it answers 503 and names that listener (and only it)."""
    router = metrics_router
    status, headers, body = await http_get(admin_port(router), "/healthz")
    assert (status, body) == (200, b"ok\n")
    assert headers["content-type"] == ["text/plain; charset=utf-8"]

    await bounded(defer.maybeDeferred(router.listener("secure").stopService))
    status, _, body = await http_get(admin_port(router), "/healthz")
    assert (status, body) == (503, b"listeners down: secure\n")


@pytest_twisted.ensureDeferred
async def test_metrics_are_collected_on_the_reactor_thread(metrics_router, monkeypatch):
    """The collector reads the router's live, unsynchronised state (session tables, counters, the latency
    histogram), so a scrape must run it on the reactor's thread, never on a worker thread."""
    threads = []
    original = RouterCollector.collect

    def recording(self):
        threads.append(threading.get_ident())
        yield from original(self)

    monkeypatch.setattr(RouterCollector, "collect", recording)
    await scrape(metrics_router)
    assert threads and set(threads) == {threading.get_ident()}


# -- reload (in-process) ----------------------------------------------------------------------------------------


def reload_config(*allowed: str, endpoint: str | None = None, limits: str = "", extra: str = "") -> str:
    """One universal listener "main" (anonymous) and realm1 where role anonymous may publish and subscribe to
    exactly the `allowed` URIs."""
    text = extra + limits + listener("main")
    if endpoint is not None:
        text = text.replace('endpoint = "tcp:0:interface=127.0.0.1"', f'endpoint = "{endpoint}"')
    text += '\n[[realms]]\nname = "realm1"\n\n[[realms.roles]]\nname = "anonymous"\n'
    for uri in allowed:
        text += f'\n[[realms.roles.permissions]]\nuri = "{uri}"\nallow = ["publish", "subscribe"]\n'
    return text




async def may_publish(session, topic: str) -> bool:
    """True when an acknowledged publish is accepted, False when it is refused as not authorized."""
    try:
        await bounded(session.publish(topic, options=PublishOptions(acknowledge=True)))
    except ApplicationError as e:
        assert e.error == NOT_AUTHORIZED, e
        return False
    return True


@pytest_twisted.async_yield_fixture()
async def reload_router(tmp_path):
    """A router from tmp_path/router.toml where anonymous may publish to com.a only, and one connected client."""
    running = await start_router(reload_config("com.a"), tmp_path)
    client = await bounded(connect(Target(port=running.port("main"))))
    yield running, client, tmp_path / "router.toml"
    if client.is_attached():
        await bounded(leave(client))
    await running.stop()


@pytest_twisted.ensureDeferred
async def test_reload_applies_permissions_to_a_connected_session_and_drops_cached_decisions(reload_router):
    """After the file is rewritten (com.b allowed, com.a no longer) reload() returns True and logs "reloaded"; the
    SAME session, never reconnected, may now publish to com.b, and its previously allowed (and cached) com.a is
    now denied: the realm's decision cache starts empty."""
    router, client, path = reload_router
    session_id = client.session_id
    assert await may_publish(client, "com.a")
    assert not await may_publish(client, "com.b")
    realm = router.service.context.realms["realm1"]
    assert len(realm.authorization.cache) > 0

    path.write_text(reload_config("com.b"))
    with captured_log() as log:
        assert router.service.reload() is True
    assert len(realm.authorization.cache) == 0
    assert any(level == LogLevel.info and text == f"reloaded {path}" for level, text in log), log
    assert not [text for level, text in log if level in (LogLevel.warn, LogLevel.error, LogLevel.critical)], log

    assert await may_publish(client, "com.b")
    assert not await may_publish(client, "com.a")
    assert client.is_attached() and client.session_id == session_id
    assert list(router.realm().sessions) == [session_id]


@pytest_twisted.ensureDeferred
async def test_reload_refuses_a_broken_file_and_keeps_the_running_config(reload_router):
    """A file with problems (an unknown top-level key, an unknown [limits] key) makes reload() return False, logs one
    error line per problem naming the file and the key path, and changes nothing: the same config object, the same
    authorizer, and the client is still allowed and denied exactly as before."""
    router, client, path = reload_router
    running_config = router.service.config
    authorization = router.service.context.realms["realm1"].authorization
    path.write_text(reload_config("com.b", limits="[limits]\nbogus = 1\n", extra="colour = 1\n"))
    with captured_log() as log:
        assert router.service.reload() is False
    errors = [text for level, text in log if level == LogLevel.error]
    prefix = f"reload refused, keeping the running config: {path}: "
    assert len(errors) == 2, log
    assert all(text.startswith(prefix) for text in errors), errors
    problems = sorted(text[len(prefix):] for text in errors)
    assert problems[0].startswith("colour: unknown key"), problems
    assert problems[1].startswith("limits.bogus: unknown key"), problems
    assert not any(text.startswith("reloaded") for _, text in log)

    assert router.service.config is running_config
    assert router.service.context.realms["realm1"].authorization is authorization
    assert await may_publish(client, "com.a")
    assert not await may_publish(client, "com.b")


@pytest_twisted.ensureDeferred
async def test_reload_reports_a_listener_endpoint_change_as_needing_a_restart(reload_router):
    """Changing a listener's endpoint cannot take effect without a restart: reload() warns that listener 'main'
    needs a restart, keeps listening where it was (the new port stays closed), and still applies the rest (the
    connected client may now publish to com.b)."""
    router, client, path = reload_router
    old_port = router.port("main")
    new_port = free_port()
    path.write_text(reload_config("com.b", endpoint=f"tcp:{new_port}:interface=127.0.0.1"))
    with captured_log() as log:
        assert router.service.reload() is True
    warnings = [text for level, text in log if level == LogLevel.warn]
    assert len(warnings) == 1, log
    assert "listener 'main'" in warnings[0] and "needs a restart" in warnings[0], warnings

    assert router.port("main") == old_port
    assert port_is_free(new_port)
    assert await may_publish(client, "com.b")
    assert not await may_publish(client, "com.a")


@pytest_twisted.ensureDeferred
async def test_reload_applies_per_session_limits_to_live_sessions(reload_router):
    """router_service.py promises that limits apply to live sessions on reload: lowering [limits]
    max_subscriptions_per_session to 1 makes the connected client's second subscription fail with
    wamp.error.too_many_subscriptions (or any refusal), without reconnecting."""
    router, client, path = reload_router
    path.write_text(reload_config("com.a", "com.b", limits="[limits]\nmax_subscriptions_per_session = 1\n"))
    assert router.service.reload() is True
    assert router.service.context.limits.max_subscriptions_per_session == 1
    await bounded(client.subscribe(lambda *a: None, "com.a"))
    with pytest.raises(ApplicationError):
        await bounded(client.subscribe(lambda *a: None, "com.b"))


# -- graceful shutdown (in-process) -------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_stop_lets_a_pending_call_finish_then_says_goodbye_to_every_session(tmp_path):
    """stopService stops listening at once, lets a CALL that is in progress finish (its caller gets the RESULT),
    then sends GOODBYE wamp.close.system_shutdown to every session, and completes."""
    text = "[limits]\nshutdown_timeout = 5\ngoodbye_timeout = 2\n" + reload_config("com.a")
    text = text.replace('allow = ["publish", "subscribe"]', 'allow = ["publish", "subscribe", "call", "register"]')
    router = await start_router(text, tmp_path)
    stopping = None
    try:
        port = router.port("main")
        callee = await bounded(connect(Target(port=port)))
        caller = await bounded(connect(Target(port=port, transport="rawsocket", serializer="msgpack")))
        await bounded(callee.register(lambda: sleep(0.5).addCallback(lambda _: "done"), "com.a"))
        result = caller.call("com.a")
        await eventually(lambda: len(router.realm().dealer.pending_calls()) == 1, what="the call is pending")

        stopping = defer.ensureDeferred(router.service.stopService())
        await eventually(lambda: port_is_free(port), what="the listener stopped")
        assert callee.is_attached() and caller.is_attached()
        assert await bounded(result) == "done"
        left = await bounded(defer.gatherResults([callee.on_left, caller.on_left]))
        assert [details.reason for details in left] == [SYSTEM_SHUTDOWN, SYSTEM_SHUTDOWN]
        await bounded(stopping, 10)
    finally:
        if stopping is not None and not stopping.called:
            await bounded(stopping, 10)
        await router.stop()


# -- under twistd: signals and log formats --------------------------------------------------------------------------


class BlockingRawSocket:
    """A WAMP client over RawSocket/msgpack on a plain blocking socket; every read times out."""

    def __init__(self, port: int, timeout: float = TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.request = 0
        self.sock.sendall(raw.handshake(raw.RAWSOCKET_SERIALIZERS["msgpack"]))
        reply = self._exactly(4)
        assert reply[0] == raw.MAGIC and reply[1] & 0x0F == raw.RAWSOCKET_SERIALIZERS["msgpack"], reply.hex()

    def _exactly(self, count: int) -> bytes:
        data = b""
        while len(data) < count:
            chunk = self.sock.recv(count - len(data))
            if not chunk:
                raise raw.ConnectionClosed(f"closed after {data!r}")
            data += chunk
        return data

    def send(self, message: list) -> None:
        self.sock.sendall(raw.frame(msgpack.packb(message, use_bin_type=True)))

    def receive(self) -> list:
        """The next WAMP message (answering PINGs on the way)."""
        while True:
            header = self._exactly(4)
            payload = self._exactly(int.from_bytes(header[1:4], "big"))
            kind = header[0] & 0x07
            if kind == raw.FRAME_PING:
                self.sock.sendall(raw.frame(payload, raw.FRAME_PONG))
            elif kind == raw.FRAME_MESSAGE:
                return msgpack.unpackb(payload, raw=False)

    def closed(self) -> bool:
        """True once the router has closed the connection (reads until EOF; times out otherwise)."""
        try:
            while self.sock.recv(4096):
                pass
        except ConnectionResetError:
            pass
        return True

    def join(self, realm: str = "realm1") -> list:
        self.send(raw.hello(realm))
        welcome = self.receive()
        assert welcome[0] == raw.WELCOME, welcome
        return welcome

    def publish(self, topic: str) -> list:
        """An acknowledged PUBLISH; the reply (PUBLISHED or ERROR)."""
        self.request += 1
        self.send([raw.PUBLISH, self.request, {"acknowledge": True}, topic, []])
        return self.receive()

    def close(self) -> None:
        self.sock.close()


def allowed(reply: list) -> bool:
    if reply[0] == raw.PUBLISHED:
        return True
    assert reply[0] == raw.ERROR and reply[4] == NOT_AUTHORIZED, reply
    return False


def twistd_config(port: int, *allowed_uris: str, limits: str = "") -> str:
    return limits + reload_config(*allowed_uris, endpoint=f"tcp:{port}:interface=127.0.0.1")


def wait_for_line(process, output: Output, needle: str, start: int, timeout: float = SIGNAL_TIMEOUT) -> list[str]:
    """Lines from index `start` on containing `needle`, once there is one; fail if the process exits first or
    `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [line for line in output.lines[start:] if needle in line]
        if found:
            return found
        if process.poll() is not None:
            pytest.fail(f"twistd exited with {process.returncode} before {needle!r}:\n{output.text()}")
        time.sleep(0.02)
    pytest.fail(f"no {needle!r} line within {timeout} s:\n{output.text()}")


@contextlib.contextmanager
def twistd(config: Path, logger: str = "wampgate.tx.logs.text"):
    """Spawn `twistd -n --logger <logger> wampgate --config <config>`, wait (bounded) until it listens, yield
    (process, stdout, stderr); kill it afterwards if it is still running."""
    command = [str(TWISTD), "-n", "--pidfile=", "--logger", logger, "wampgate", "--config", str(config)]
    process = subprocess.Popen(command, cwd=config.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = Output(process.stdout), Output(process.stderr)
        # "ready" comes once the router's signal handlers are in place (a SIGTERM before that is twistd's own)
        wait_for_line(process, stdout, "ready: SIGHUP reloads", 0, START_TIMEOUT)
        yield process, stdout, stderr
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=SIGNAL_TIMEOUT)


def test_sighup_reloads_for_a_connected_client_and_refuses_a_broken_file(tmp_path):
    """Under twistd, SIGHUP after allowing com.b lets the already connected client publish there without
    reconnecting; SIGHUP with a broken file (an unknown key) logs that the reload was refused, naming the key,
    and the running config stays (com.b still allowed); the process keeps running and serving throughout."""
    port = free_port()
    config = tmp_path / "router.toml"
    config.write_text(twistd_config(port, "com.a"))
    with twistd(config) as (process, stdout, stderr):
        client = BlockingRawSocket(port)
        try:
            client.join()
            assert allowed(client.publish("com.a"))
            assert not allowed(client.publish("com.b"))

            config.write_text(twistd_config(port, "com.a", "com.b"))
            mark = len(stdout.lines)
            process.send_signal(signal.SIGHUP)
            wait_for_line(process, stdout, f"reloaded {config}", mark)
            assert allowed(client.publish("com.b"))

            config.write_text("colour = 1\n" + twistd_config(port, "com.a"))
            mark = len(stdout.lines)
            process.send_signal(signal.SIGHUP)
            refused = wait_for_line(process, stdout, "reload refused", mark)
            assert len(refused) == 1 and refused[0].endswith(f"{config}: colour: unknown key; allowed: admin, cluster, "
                                                            "flow, limits, listeners, realms"), refused
            assert allowed(client.publish("com.b"))
            assert allowed(client.publish("com.a"))
        finally:
            client.close()
        assert process.poll() is None
        assert "Traceback" not in stdout.text() + stderr.text()


def test_sigterm_says_goodbye_and_exits_with_status_0(tmp_path):
    """SIGTERM makes twistd send GOODBYE wamp.close.system_shutdown to every connected session; a client that
    answers GOODBYE is closed, one that stays silent only after [limits] goodbye_timeout (1 s), and
    the process exits with status 0 within a few seconds, having logged the signal and no traceback."""
    port = free_port()
    config = tmp_path / "router.toml"
    config.write_text(twistd_config(port, "com.a", limits="[limits]\ngoodbye_timeout = 1\n"))
    with twistd(config) as (process, stdout, stderr):
        polite, silent = BlockingRawSocket(port), BlockingRawSocket(port)
        try:
            polite.join()
            silent.join()
            started = time.monotonic()
            process.send_signal(signal.SIGTERM)
            goodbye = polite.receive()
            assert goodbye[0] == raw.GOODBYE and goodbye[2] == SYSTEM_SHUTDOWN, goodbye
            polite.send([raw.GOODBYE, {}, "wamp.close.goodbye_and_out"])
            assert polite.closed()
            goodbye = silent.receive()
            assert goodbye[0] == raw.GOODBYE and goodbye[2] == SYSTEM_SHUTDOWN, goodbye
            assert silent.closed()
            assert time.monotonic() - started >= 0.9  # held open for goodbye_timeout, waiting for its reply
            status = process.wait(timeout=SIGNAL_TIMEOUT)
            elapsed = time.monotonic() - started
            print(f"\nSIGTERM to exit: {elapsed:.3f} s (goodbye_timeout 1 s)", flush=True)
        finally:
            polite.close()
            silent.close()
        stdout.join()
        stderr.join()
        output = stdout.text() + stderr.text()
        assert status == 0, output
        assert elapsed < 5.0, (elapsed, output)
        assert "received signal 15: shutting down gracefully" in stdout.text()
        assert "Traceback" not in output
        assert port_is_free(port)


def test_json_logger_writes_one_json_object_per_line(tmp_path):
    """With `--logger wampgate.tx.logs.json` every line twistd writes to stdout is one JSON object (json.loads of
    the line itself), among them the listener's "listening on" event with its url field and the shutdown."""
    port = free_port()
    config = tmp_path / "router.toml"
    config.write_text(twistd_config(port, "com.a"))
    with twistd(config, logger="wampgate.tx.logs.json") as (process, stdout, stderr):
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=SIGNAL_TIMEOUT) == 0
        stdout.join()
        stderr.join()
    assert stdout.lines and stderr.text() == ""
    events = [json.loads(line) for line in stdout.lines]
    assert all(isinstance(event, dict) and {"time", "level", "namespace", "message"} <= set(event)
               for event in events)
    listening = [event for event in events if "listening on" in event["message"]]
    assert [event["url"] for event in listening] == [f"ws://127.0.0.1:{port}/ws + rawsocket://127.0.0.1:{port}"]
