"""The one outgoing budget per connection, attacked against a real router on loopback (plain and TLS).

A client that stops reading (its transport paused, its kernel receive buffer small) makes the router's socket stop
taking data; from then on everything the router writes to it is held in the router. Pinned here:
- PINGs (RawSocket, plain and TLS; WebSocket) from a connection that never reads, before any HELLO: the router
  stops answering and reading, holds at most the budget, and closes the connection after `outgoing_stall_timeout`
  (counted `outgoing_stall_disconnect`);
- a callee that stops reading: calls to it are answered `wamp.error.unavailable`, the callee is closed after the
  stall timeout, and every call made to it ends (none hangs);
- a caller that stops reading while a callee streams progressive results: the caller's connection is aborted, the
  callee is interrupted, the dealer forgets the call;
- RawSocket over TLS: an oversized frame, reserved bits, a stalled opening handshake or a missing HELLO close the
  connection within a bound;
- a RawSocket client whose announced receive limit (512 bytes) is smaller than its WELCOME gets ABORT
  `wamp.error.payload_size_exceeded`, then the close;
- a slow WebSocket subscriber under the "drop" policy is not disconnected by the router's own ping timeout while
  the router's backlog holds its ping; it learns how many events it missed.

The budget is the smallest allowed (64 KiB) and the stall timeout 1 s, so each attack reaches its end in about a
second. Assertions are on the router's own accounting (its counters, the bytes it holds for the connection, the
dealer's tables, its open connections), exact error URIs and close codes; after each attack a fresh client is
served. Every loop is bounded in count and time, every wait in time.
"""

from __future__ import annotations

from collections import Counter

import pytest
import pytest_twisted
from autobahn.wamp.types import CallOptions, PublishOptions, RegisterOptions
from twisted.internet import defer

from tests.support import raw
from tests.support.clients import Target, connect, leave
from tests.support.budget import channels, queued_bytes, read_again, stop_reading, the_channel
from tests.support.flow import count, eventually, flow_table, limits_table, now, sleep
from tests.support.raw import bounded
from tests.support.router import listener, realm_anonymous_all, start_router

LIMIT = 64 * 1024  # [limits] max_outgoing_buffer: the smallest allowed
STALL = 1.0  # [limits] outgoing_stall_timeout
HELLO_TIMEOUT = 0.5  # for the tests of connections that never join
TWISTED_BUFFER = 64 * 1024  # Twisted pauses the producer (the budget) once its own write buffer passes this

PAYLOAD_SIZE_EXCEEDED = "wamp.error.payload_size_exceeded"
UNAVAILABLE = "wamp.error.unavailable"
CALL, RESULT = 48, 50

# flow control opened up: the attacks must meet the outgoing budget, not a rate limit
UNLIMITED_FLOW = flow_table(disconnect_after=0, quotas=[], rates={
    scope: {"messages": 0, "bytes": 0} for scope in ("session", "authid", "authrole", "peer")})


def router_config(certs, *, hello_timeout: float | None = None, websocket: str = "",
                  slow_consumer: str | None = None, stall: float = STALL) -> str:
    """One listener per transport (so a listener's open connections are the attacker's), RawSocket also over TLS,
    and a universal listener for the Autobahn clients; the budget and stall timeout of this module."""
    limits = {"max_outgoing_buffer": LIMIT, "outgoing_stall_timeout": stall}
    if hello_timeout is not None:
        limits["hello_timeout"] = hello_timeout
    return (UNLIMITED_FLOW + limits_table(**limits)
            + listener("raw", ("rawsocket",))
            + listener("rawtls", ("rawsocket",), tls=certs)
            + listener("ws", ("websocket",), websocket=websocket)
            + listener("universal")
            + realm_anonymous_all(slow_consumer=slow_consumer))


@pytest_twisted.async_yield_fixture()
async def started(tmp_path):
    """Start a router with `router_config(...)` keywords; everything is stopped and dropped at the end."""
    routers = []
    tracker = raw.Tracker()

    async def start(certs, **options):
        router = await start_router(router_config(certs, **options), tmp_path)
        routers.append(router)
        return router

    yield start, tracker
    tracker.close_all()
    for router in routers:
        await router.stop()


def stalls(router, listener_name: str, realm: str = "") -> int:
    return count(router, "outgoing_stall_disconnect", listener=listener_name, realm=realm)


# -- 1, 2. PINGs from a connection that never reads ------------------------------------------------------------------

PING_SIZE = 64 * 1024
MAX_PINGS = 400  # 25 MiB of PINGs at most
FLOOD_SECONDS = 3.0
# What the router may hold for a connection: Twisted's own buffer before it pauses the budget, the budget, and the
# frame that passes it (with TLS record overhead to spare).
HOLD_BOUND = TWISTED_BUFFER + LIMIT + 2 * (PING_SIZE + 4) + 16 * 1024


async def ping_flood(router, listener_name: str, write_ping) -> tuple[float, int]:
    """Write PINGs (a bounded number, for a bounded time) until the router stops reading the connection; sample
    what it holds for it meanwhile. Returns (when reading stopped, the most bytes held)."""
    [channel] = await eventually(lambda: channels(router, listener_name))
    held = 0
    started = now()
    for sent in range(MAX_PINGS):
        write_ping()
        await sleep(0)
        held = max(held, queued_bytes(channel.transport))
        if getattr(channel, "reading_paused", False):
            return now(), held
        assert now() - started < FLOOD_SECONDS, f"still reading after {sent + 1} PINGs, holding {held} bytes"
    raise AssertionError(f"still reading after {MAX_PINGS} PINGs, holding {held} bytes")


@pytest.mark.parametrize("listener_name", ["raw", "rawtls"])
@pytest_twisted.ensureDeferred
async def test_rawsocket_ping_flood_without_reading_is_bounded_and_closed(started, certs, listener_name):
    """An unauthenticated RawSocket connection (handshake done, no HELLO, 16 MiB receive limit announced) sends
    64 KiB PINGs and never reads: the router stops answering and reading it while holding at most the budget (plus
    Twisted's buffer and one frame), and closes it after the stall timeout, counted outgoing_stall_disconnect.
    Over TLS too. A fresh client is served afterwards."""
    start, track = started
    router = await start(certs)
    tls_ca = certs.ca if listener_name == "rawtls" else None
    client = track(await raw.open_rawsocket(router.port(listener_name), length=15, tls_ca=tls_ca)).tcp
    stop_reading(client.transport)
    ping = raw.frame(b"p" * PING_SIZE, kind=raw.FRAME_PING)
    over_at, held = await ping_flood(router, listener_name, lambda: client.write(ping))
    await eventually(lambda: router.listener(listener_name).open_connections() == 0, STALL + 2.0)
    assert now() - over_at < STALL + 1.0
    assert held <= HOLD_BOUND, held
    assert stalls(router, listener_name) == 1
    read_again(client.transport)
    await bounded(client.wait_lost(), 2.0)
    await raw.assert_router_serves(router.port(listener_name), "rawsocket", "msgpack", tls_ca=tls_ca)


WS_PING_PAYLOAD = 125  # the largest a WebSocket control frame may carry
WS_PINGS_PER_WRITE = 256


def masked_pings(count_: int) -> bytes:
    """`count_` client PING frames (masked, as a client must send them) with the largest payload allowed."""
    mask = b"\x01\x02\x03\x04"
    payload = bytes(b ^ mask[i % 4] for i, b in enumerate(b"p" * WS_PING_PAYLOAD))
    return (bytes((0x89, 0x80 | WS_PING_PAYLOAD)) + mask + payload) * count_


@pytest_twisted.ensureDeferred
async def test_websocket_ping_flood_without_reading_is_bounded_and_closed(started, certs):
    """A WebSocket connection (upgraded, no HELLO) sends PINGs and never reads: the router stops answering and
    reading it while holding at most the budget (plus Twisted's buffer and one write), and drops it after the
    stall timeout, counted outgoing_stall_disconnect. A fresh client is served afterwards."""
    start, track = started
    router = await start(certs)
    client = track(await raw.open_websocket(router.port("ws")))
    transport = client.protocol.transport
    stop_reading(transport)
    pings = masked_pings(WS_PINGS_PER_WRITE)
    over_at, held = await ping_flood(router, "ws", lambda: transport.write(pings))
    await eventually(lambda: router.listener("ws").open_connections() == 0, STALL + 2.0)
    assert now() - over_at < STALL + 1.0
    assert held <= TWISTED_BUFFER + LIMIT + len(pings), held
    assert stalls(router, "ws") == 1
    read_again(transport)
    was_clean, code, _ = await bounded(client.wait_closed(), 2.0)
    assert (was_clean, code) == (False, 1006)  # dropped, not closed with a close frame: the peer does not read
    await raw.assert_router_serves(router.port("ws"))


# -- 5. RawSocket over TLS: the router's own closes happen --------------------------------------------------------


async def tls_rawsocket_stalled(client: raw.RawTcp) -> None:
    client.write(bytes((raw.MAGIC,)))  # the opening handshake's first octet, and nothing more


async def tls_rawsocket_silent(client: raw.RawTcp) -> None:
    client.write(raw.handshake(raw.RAWSOCKET_SERIALIZERS["msgpack"]))  # a handshake, then no HELLO


async def tls_rawsocket_oversized(client: raw.RawTcp) -> None:
    await tls_rawsocket_silent(client)
    client.write(bytes((raw.FRAME_MESSAGE,)) + (2**24 - 1).to_bytes(3, "big"))  # over the router's announced limit


async def tls_rawsocket_reserved(client: raw.RawTcp) -> None:
    await tls_rawsocket_silent(client)
    client.write(raw.frame(b"\x91\x01", reserved=1))


@pytest.mark.parametrize("attack", [tls_rawsocket_oversized, tls_rawsocket_reserved, tls_rawsocket_stalled,
                                    tls_rawsocket_silent], ids=["oversized", "reserved", "handshake-stall", "no-hello"])
@pytest_twisted.ensureDeferred
async def test_rawsocket_over_tls_is_closed_by_the_router(started, certs, attack):
    """RawSocket over TLS (the shape of conf/production.toml): after an oversized frame, a frame with reserved bits,
    an opening handshake that never finishes (hello_timeout) or a handshake without HELLO (hello_timeout), the
    router closes the connection within a bound (it used to stay open: the TLS transport waited for the registered
    producer). The router holds no connection afterwards and a fresh TLS client is served."""
    start, track = started
    router = await start(certs, hello_timeout=HELLO_TIMEOUT)
    client = track(await raw.open_tcp(router.port("rawtls"), tls_ca=certs.ca))
    await attack(client)
    await bounded(client.wait_lost(), HELLO_TIMEOUT + 2.0)
    await eventually(lambda: router.listener("rawtls").open_connections() == 0, 2.0)
    await raw.assert_router_serves(router.port("rawtls"), "rawsocket", "msgpack", tls_ca=certs.ca)


# -- 6. a RawSocket receive limit smaller than the WELCOME ------------------------------------------------------------

# A HELLO announcing the revocation features: the router then announces them too, which makes its WELCOME (JSON)
# larger than 512 bytes.
REVOCATION_ROLES = {
    "subscriber": {"features": {"subscription_revocation": True}},
    "callee": {"features": {"registration_revocation": True}},
    "publisher": {},
    "caller": {},
}
SMALLEST_LENGTH = 0  # 2**9 = 512 bytes


@pytest_twisted.ensureDeferred
async def test_rawsocket_receive_limit_smaller_than_welcome_gets_abort(started, certs):
    """A RawSocket client announcing the smallest receive limit (2**9 = 512 bytes) whose WELCOME would be larger
    (shown by the same HELLO from a client with a large limit) gets ABORT wamp.error.payload_size_exceeded, not a
    silent drop, and the connection closes; the session is gone from the realm and a fresh client is served."""
    start, track = started
    router = await start(certs)
    port = router.port("raw")
    roomy = track(await raw.open_rawsocket(port, "json"))
    welcome = await roomy.join(roles=REVOCATION_ROLES)
    assert len(roomy.encode(welcome)) > 2**9, welcome
    roomy.close()
    small = track(await raw.open_rawsocket(port, "json", length=SMALLEST_LENGTH))
    small.send(raw.hello(roles=REVOCATION_ROLES))
    [abort] = await small.wait_messages(1)
    assert abort[0] == raw.ABORT and abort[2] == PAYLOAD_SIZE_EXCEEDED, abort
    await bounded(small.wait_lost(), 2.0)
    await eventually(lambda: not router.realm().sessions and router.listener("raw").open_connections() == 0, 2.0)
    await raw.assert_router_serves(port, "rawsocket", "json")


# -- 3, 4. RPC with a side that does not read -----------------------------------------------------------------------

ARG_SIZE = 32 * 1024
MAX_CALLS = 200  # 6.4 MiB of arguments at most
CANCELED = "wamp.error.canceled"  # what callers of a callee that is gone are told

EMPTY_TABLES = {"registrations": 0, "index": 0, "callee_sessions": 0, "caller_sessions": 0, "calls": 0,
                "ledgers": 0, "invocations": 0, "retired": 0}


def universal(router, transport: str = "websocket"):
    return Target(port=router.port("universal"), transport=transport,
                  serializer="json" if transport == "websocket" else "msgpack")


def outcome_of(d: defer.Deferred, outcomes: list) -> None:
    """Record how a call ended: ("result", value) or ("error", uri)."""
    d.addCallbacks(lambda value: outcomes.append(("result", value)),
                   lambda failure: outcomes.append(("error", getattr(failure.value, "error", repr(failure.value)))))


async def assert_dealer_clean(router) -> None:
    """Every dealer table empty and no call timer left: no call is remembered for a session that is gone."""
    dealer = router.realm().dealer
    effects = router.service.context.realms["realm1"].effects
    await eventually(lambda: dealer.table_sizes() == EMPTY_TABLES and effects.pending_timers == 0, 2.0)


@pytest_twisted.ensureDeferred
async def test_callee_that_stops_reading_gets_no_more_calls_and_is_closed(started, certs):
    """A callee registers, then stops reading. A caller keeps calling it with 32 KiB arguments (bounded in count and
    time): once the INVOCATIONs no longer fit the callee's budget the router answers ERROR wamp.error.unavailable,
    and the callee, over its budget from then on, is closed after the stall timeout (outgoing_stall_disconnect).
    Every call made to it ends: unavailable, or wamp.error.canceled for those the callee held when it went. None
    hangs, the dealer forgets them all, and a fresh client is served."""
    start, track = started
    router = await start(certs)
    callee = await bounded(connect(universal(router)))
    caller = await bounded(connect(universal(router)))
    await bounded(callee.register(lambda *args: defer.Deferred(), "com.example.deaf"))
    stop_reading(callee._transport.transport)
    outcomes: list = []
    started_at = now()
    for sent in range(MAX_CALLS):
        if stalls(router, "universal", "realm1"):
            break
        outcome_of(caller.call("com.example.deaf", "x" * ARG_SIZE), outcomes)
        # quickly until the router refuses, then slowly while the callee's stall timer runs
        await sleep(0.02 if ("error", UNAVAILABLE) in outcomes else 0.002)
        assert now() - started_at < 4.0, f"the callee is still open after {sent + 1} calls: {Counter(outcomes)}"
    else:
        raise AssertionError(f"the callee is still open after {MAX_CALLS} calls: {Counter(outcomes)}")
    assert stalls(router, "universal", "realm1") == 1
    await eventually(lambda: len(outcomes) == sent, 2.0)  # every call ended
    assert set(Counter(outcomes)) == {("error", UNAVAILABLE), ("error", CANCELED)}, Counter(outcomes)
    read_again(callee._transport.transport)
    await bounded(callee.on_gone, 2.0)
    await bounded(leave(caller))
    await assert_dealer_clean(router)
    await raw.assert_router_serves(router.port("universal"))


MAX_PROGRESS = 300  # 9.4 MiB of progressive results at most


class Streamer:
    """A callee handler sending 32 KiB progressive results in a bounded loop; it records its INTERRUPT (Autobahn
    cancels what the handler awaits) and how many results it sent."""

    def __init__(self):
        self.sent = 0
        self.interrupted = defer.Deferred()

    async def __call__(self, details=None):
        try:
            for _ in range(MAX_PROGRESS):
                details.progress("y" * ARG_SIZE)
                self.sent += 1
                await sleep(0.002)
        except defer.CancelledError:
            self.interrupted.callback(self.sent)
            raise
        return "all sent"


@pytest_twisted.ensureDeferred
async def test_caller_that_stops_reading_progressive_results_is_aborted(started, certs):
    """A caller asks for progressive results, then stops reading; the callee streams 32 KiB results. Once a result
    no longer fits the caller's budget the router aborts the caller's connection (at once: not the stall timer),
    the dealer interrupts the callee, which stops; the callee stays joined, the dealer forgets the call, and a
    fresh client is served."""
    start, track = started
    router = await start(certs)
    callee = await bounded(connect(universal(router)))
    caller = await bounded(connect(Target(port=router.port("ws"))))
    streamer = Streamer()
    await bounded(callee.register(streamer, "com.example.stream", options=RegisterOptions(details_arg="details")))
    caller.call("com.example.stream", options=CallOptions(on_progress=lambda *args: None))
    stop_reading(caller._transport.transport)
    sent = await bounded(streamer.interrupted, 4.0)
    assert 0 < sent < MAX_PROGRESS
    await eventually(lambda: router.listener("ws").open_connections() == 0, 1.0)  # the caller's connection went
    assert stalls(router, "ws", "realm1") == 0
    assert router.realm().dealer.table_sizes()["calls"] == 0
    read_again(caller._transport.transport)
    await bounded(caller.on_gone, 2.0)
    assert callee.is_attached()
    await bounded(leave(callee))
    await assert_dealer_clean(router)
    await raw.assert_router_serves(router.port("universal"))


# -- 7. the router's own ping timeout and a slow subscriber under "drop" ----------------------------------------------

AUTO_PING = "auto_ping_interval = 1.0\nauto_ping_timeout = 1.0"  # the shortest allowed
AUTO_PING_TIMEOUT = 1.0
MAX_PUBLISHES = 400  # 12.5 MiB of events at most
TOPIC = "com.example.firehose"
DROPPED_EVENTS = "wampgate.session.dropped_events"


@pytest_twisted.ensureDeferred
async def test_slow_subscriber_under_drop_is_not_closed_by_the_routers_ping_timeout(started, certs):
    """A WebSocket subscriber stops reading while 32 KiB events are published; the realm's policy is "drop" and the
    listener pings every second with a 1 s timeout. Events beyond its budget are dropped and counted
    (slow_consumer_drop), and while the router's own backlog holds its ping, the missing PONG does not close the
    connection: held past the ping's timeout, then reading again, the subscriber drains its backlog and
    wampgate.session.dropped_events answers the number the router counted (> 0). A fresh client is served."""
    start, track = started
    router = await start(certs, websocket=AUTO_PING, slow_consumer="drop", stall=30.0)
    subscriber = track(await raw.open_websocket(router.port("ws")))
    await subscriber.join()
    subscriber.send([raw.SUBSCRIBE, 1, {}, TOPIC])
    [_, subscribed] = await subscriber.wait_messages(2)
    assert subscribed[0] == raw.SUBSCRIBED, subscribed
    channel = the_channel(router, "ws")
    publisher = await bounded(connect(universal(router)))
    transport = subscriber.protocol.transport
    stop_reading(transport)

    def dropped() -> int:
        return count(router, "slow_consumer_drop", listener="ws", realm="realm1")

    async def publish() -> None:
        await bounded(publisher.publish(TOPIC, "z" * ARG_SIZE, options=PublishOptions(acknowledge=True)))

    for sent in range(MAX_PUBLISHES):
        if dropped():
            break
        await publish()
    else:
        raise AssertionError(f"no event dropped after {MAX_PUBLISHES} publishes")
    # keep it from reading (and events dropping) until a ping of the router's has been pending past its timeout
    ping_since = None
    started_at = now()
    while ping_since is None or now() - ping_since < AUTO_PING_TIMEOUT + 0.5:
        assert now() - started_at < 3.5, "the router sent no auto-ping"
        if ping_since is None and channel.autoPingPending is not None:
            ping_since = now()
        await publish()
        await sleep(0.05)
    assert subscriber.close is None and router.listener("ws").open_connections() == 1
    read_again(transport)
    seen = len(subscriber.messages)
    subscriber.send([CALL, 7, {}, DROPPED_EVENTS])
    [result] = await subscriber.until(
        lambda: [m for m in subscriber.messages[seen:] if isinstance(m, list) and m[:2] == [RESULT, 7]], 3.0)
    assert result[3] == [dropped()] and dropped() > 0, (result, dropped())
    assert subscriber.close is None
    await bounded(leave(publisher))
    subscriber.disconnect()
    await raw.assert_router_serves(router.port("ws"))
