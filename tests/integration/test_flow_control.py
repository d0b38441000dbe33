"""Flow control end to end, against a real router in the test process (the `limits` plugin configured through
top-level [[flow]] tables, and the per-session limits of [limits]): every limit engages with its exact error URI,
ABORT reason or HTTP status, a well-behaved client beside the offender keeps being served, and the router's counters
(`router.service.context.counters`) move.

The offending side is a raw client (tests.support.raw) so every WAMP message and status is seen as sent; the
well-behaved side is usually a real Autobahn client. Every wait is bounded in time, every loop in count; only
127.0.0.1 is used. Transport-level limits (sizes, decoding, handshakes) are in test_transport_limits.py.
"""

from __future__ import annotations

import msgpack
import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions
from twisted.internet import defer

from wampgate.passwords import hash_secret
from tests.support import auth_clients as auth
from tests.support import raw
from tests.support.clients import Collector, Target, connect, leave
from tests.support.flow import (
    ALICE_TICKET,
    CALL,
    OVERLOADED,
    RATE_LIMITED,
    RAWSOCKET_TOO_MANY,
    RESULT,
    TOO_MANY_SESSIONS,
    alice,
    assert_rate_limited,
    count,
    eventually,
    exchange,
    joined_rawsocket,
    joined_ws,
    main_listener,
    now,
    publish,
    publish_outcomes,
    round_trip,
    running,
    sleep,
    split,
    ticket_auth,
)
from tests.support.budget import channels
from tests.support.raw import bounded, http_request, websocket_upgrade


@pytest.fixture(scope="module")
def alice_hash():
    """alice's ticket hash at the cheapest work factor the router accepts (ln=14)."""
    return hash_secret(ALICE_TICKET, ln=14)


# -- message rates -----------------------------------------------------------------------------------------------


def decoded(router, kind: str = "Publish") -> int:
    """How many messages of `kind` the router has decoded so far."""
    return router.service.context.traffic.messages_in[kind]


def kinds(replies: list) -> list:
    return [reply[0] for reply in replies]


@pytest_twisted.ensureDeferred
async def test_session_message_rate_rejects_acknowledged_publishes_then_stops_reading(tmp_path):
    """rates.session = 1/s, burst 5: of 7 acknowledged publishes sent at once the first 5 are PUBLISHED, the 6th
    gets ERROR wampgate.error.rate_limited with retry_after > 0 in details and kwargs (counted as flow_reject), and
    the router then stops reading that connection until the allowance has refilled: the 7th, sent at once too, is
    PUBLISHED (were it read straight away it would be refused). Another session is served throughout."""
    flow = {"rates": {"session": {"messages": 1, "burst": 5}}, "disconnect_after": 0}
    async with running(tmp_path, flow=flow) as (router, clients):
        port = router.port("main")
        flooder = await joined_ws(clients, port)
        replies = await exchange(flooder, [publish(i) for i in range(1, 8)])
        assert kinds(replies) == [raw.PUBLISHED] * 5 + [raw.ERROR, raw.PUBLISHED]
        assert [reply[2 if reply[0] == raw.ERROR else 1] for reply in replies] == list(range(1, 8))
        assert assert_rate_limited(replies[5], raw.PUBLISH) > 0
        assert count(router, "flow_reject", reason="rate_limited", listener="main", realm="realm1") == 1
        assert await round_trip(port) < 2.0


@pytest_twisted.ensureDeferred
async def test_unacknowledged_publishes_over_the_rate_are_dropped_and_counted(tmp_path):
    """Unacknowledged publishes over rates.session (1/s, burst 5) get no answer: of 7 sent at once the subscriber
    sees 1-5, the 6th is dropped and counted as flow_drop reason unacknowledged_publish_rate_limited, and the 7th,
    read only once the allowance refilled, arrives too; another publisher's events still reach the subscriber."""
    flow = {"rates": {"session": {"messages": 1, "burst": 5}}, "disconnect_after": 0}
    async with running(tmp_path, flow=flow) as (router, clients):
        port = router.port("main")
        target = Target(port=port)
        subscriber = await bounded(connect(target))
        events = Collector(expected=10_000)
        await bounded(subscriber.subscribe(events, "com.example.flood"))
        flooder = await joined_ws(clients, port)
        for i in range(1, 8):
            flooder.send(publish(i, "com.example.flood", ack=False))
        await eventually(lambda: len(events.events) >= 6)
        assert [args[0] for args, _ in events.events] == [1, 2, 3, 4, 5, 7]
        assert count(router, "flow_drop", reason="unacknowledged_publish_rate_limited", listener="main",
                     realm="realm1") == 1
        assert flooder.close is None and not [m for m in flooder.messages[1:] if m[0] == raw.ERROR]
        polite = await bounded(connect(target))
        await bounded(polite.publish("com.example.flood", "polite", options=PublishOptions(acknowledge=True)))
        await eventually(lambda: len(events.events) == 7 and events.events[-1] == (("polite",), {}))
        await bounded(leave(polite))
        await bounded(leave(subscriber))


@pytest_twisted.ensureDeferred
async def test_a_flood_from_one_session_does_not_hold_up_another(tmp_path):
    """One session writes 20,000 unacknowledged publishes (rates.session 200/s) as fast as it can; the router reads
    it only as fast as its allowance refills (it decodes no more than the burst plus the rate, plus one refused
    message per pause, over the time elapsed), so another publisher's ten acknowledged publishes each reach their
    subscriber within 2 s and the flooder stays connected."""
    flow = {"rates": {"session": {"messages": 200, "burst": 200}}, "disconnect_after": 0}
    async with running(tmp_path, flow=flow) as (router, clients):
        port = router.port("main")
        flooder = await joined_rawsocket(clients, port)
        frames = [raw.frame(msgpack.packb(publish(i, "com.example.flood", ack=False, payload="x" * 50)))
                  for i in range(1, 20_001)]
        started_flood = now()
        for start in range(0, len(frames), 500):
            flooder.tcp.write(b"".join(frames[start:start + 500]))
        target = Target(port=port)
        subscriber, publisher = await bounded(connect(target)), await bounded(connect(target))
        events = Collector(expected=10)
        await bounded(subscriber.subscribe(events, "com.example.calm"))
        trips = []
        for i in range(10):
            started = now()
            await bounded(publisher.publish("com.example.calm", i, options=PublishOptions(acknowledge=True)))
            await eventually(lambda i=i: len(events.events) > i, timeout=5.0, step=0.01)
            trips.append(now() - started)
            await sleep(0.05)
        assert max(trips) < 2.0
        elapsed = now() - started_flood
        assert 200 <= decoded(router) <= 200 + 2 * 200 * elapsed + 50, (decoded(router), elapsed)
        assert flooder.tcp.lost is False
        await bounded(leave(subscriber))
        await bounded(leave(publisher))


@pytest_twisted.ensureDeferred
async def test_a_websocket_flooders_frames_wait_unparsed_while_it_is_paused(tmp_path):
    """A WebSocket client writes 3,000 unacknowledged publishes at once (rates.session 100/s, burst 100): once flow
    control refuses one, the router stops parsing that connection's frames at the next frame boundary (they wait in
    its buffer) instead of parsing every frame of each read; the frames it parsed stay within the burst plus the
    rate over the time elapsed, plus one refused frame per pause, and the flooder stays connected."""
    flow = {"rates": {"session": {"messages": 100, "burst": 100}}, "disconnect_after": 0}
    async with running(tmp_path, flow=flow) as (router, clients):
        port = router.port("main")
        flooder = await joined_ws(clients, port)
        [channel] = [c for c in channels(router, "main") if getattr(c, "session", None) is not None]
        parsed_before = channel.trafficStats.incomingWebSocketFrames
        started = now()
        for i in range(1, 3001):
            flooder.send(publish(i, "com.example.flood", ack=False, payload="x" * 20))
        await sleep(0.5)
        parsed = channel.trafficStats.incomingWebSocketFrames - parsed_before
        elapsed = now() - started
        assert 100 <= parsed <= 100 + 2 * 100 * elapsed + 50, (parsed, elapsed)
        assert flooder.close is None
        assert await round_trip(port) < 2.0


@pytest_twisted.ensureDeferred
async def test_calls_and_their_answers_are_rate_limited(tmp_path):
    """rates.session = 1/s, burst 4, for the caller and the callee alike. Of 5 CALLs sent at once the caller's 5th
    is refused (ERROR wampgate.error.rate_limited for CALL, retry_after > 0). The callee spent one message on its
    REGISTER, so its YIELDs for calls 1-3 pass and the one for call 4 is refused: that call ends with ERROR
    wampgate.error.rate_limited ("the callee exceeded its rate limit") instead of hanging. Another caller's call is
    answered once the callee's allowance refilled."""
    flow = {"rates": {"session": {"messages": 1, "burst": 4}}, "disconnect_after": 0}
    async with running(tmp_path, flow=flow) as (router, clients):
        port = router.port("main")
        callee = await bounded(connect(Target(port=port)))
        await bounded(callee.register(lambda x: x, "com.example.echo"))
        caller = await joined_ws(clients, port)
        replies = await exchange(caller, [[CALL, i, {}, "com.example.echo", [i]] for i in range(1, 6)])
        ok, errors = split(replies, RESULT)
        assert sorted(reply[1] for reply in ok) == [1, 2, 3]
        assert sorted(error[2] for error in errors) == [4, 5]
        by_call = {error[2]: error for error in errors}
        assert assert_rate_limited(by_call[5], CALL) > 0
        assert by_call[4][4] == RATE_LIMITED and by_call[4][5] == ["the callee exceeded its rate limit"]
        assert count(router, "flow_reject", reason="rate_limited", listener="main", realm="realm1") == 2
        polite = await bounded(connect(Target(port=port)))
        assert await bounded(polite.call("com.example.echo", "polite")) == "polite"
        await bounded(leave(polite))
        await bounded(leave(callee))


@pytest_twisted.ensureDeferred
async def test_peer_rate_is_shared_by_every_session_from_one_address(tmp_path):
    """rates.peer = 1/s, burst 6 (all clients are 127.0.0.1): two sessions share the 6 — after A's 4 publishes,
    B gets at most 3 of 4 through and the rest are rate-limited (flow_reject); once retry_after has passed B is
    served again."""
    flow = {"rates": {"peer": {"messages": 1, "burst": 6}}, "disconnect_after": 0}
    async with running(tmp_path, flow=flow) as (router, clients):
        port = router.port("main")
        a, b = await joined_ws(clients, port), await joined_rawsocket(clients, port)
        ok_a, errors_a = split(await exchange(a, [publish(i) for i in range(1, 5)]), raw.PUBLISHED)
        assert (len(ok_a), errors_a) == (4, [])
        ok_b, errors_b = split(await exchange(b, [publish(i) for i in range(1, 5)]), raw.PUBLISHED)
        assert len(ok_b) <= 3 and len(errors_b) >= 1
        waits = [assert_rate_limited(error, raw.PUBLISH) for error in errors_b]
        assert count(router, "flow_reject", reason="rate_limited", listener="main", realm="realm1") == len(errors_b)
        await sleep(min(max(waits), 2.0) + 0.05)
        assert split(await exchange(b, [publish(10)]), raw.PUBLISHED)[0]


@pytest_twisted.ensureDeferred
async def test_authid_rate_is_shared_by_the_sessions_of_one_authid(tmp_path, alice_hash):
    """rates.authid = 1/s, burst 4: alice's two ticket sessions share 4 publishes (the second session's surplus
    gets ApplicationError wampgate.error.rate_limited with kwargs retry_after > 0), while an anonymous session
    (its own authid) publishes 4 unhindered."""
    flow = {"rates": {"authid": {"messages": 1, "burst": 4}}, "disconnect_after": 0}
    async with running(tmp_path, flow=flow, listeners=main_listener(auth=ticket_auth(alice_hash))) as (router, _):
        port = router.port("main")
        first, second = await alice(port), await alice(port)
        assert first.welcome.authid == second.welcome.authid == "alice"
        assert (await publish_outcomes(first, 3))[0] == 3
        ok, errors = await publish_outcomes(second, 3)
        assert ok <= 2 and len(errors) >= 1
        assert all(e.error == RATE_LIMITED and e.kwargs["retry_after"] > 0 for e in errors)
        anonymous = await bounded(connect(Target(port=port)))
        assert await publish_outcomes(anonymous, 4) == (4, [])
        assert count(router, "flow_reject", reason="rate_limited", listener="main", realm="realm1") == len(errors)
        for session in (first, second, anonymous):
            await bounded(leave(session))


@pytest_twisted.ensureDeferred
async def test_uri_prefix_rate_limits_only_its_prefix(tmp_path):
    """uri_rates = [{prefix = "com.slow.", messages = 1, burst = 2}]: of 4 publishes to com.slow.a sent at once 2 pass,
    the 3rd is rate-limited, and the 4th (read once the allowance refilled) passes; the same session's publishes to
    com.fast.a all pass, and so do another session's."""
    flow = {"uri_rates": [{"prefix": "com.slow.", "messages": 1, "burst": 2}], "disconnect_after": 0}
    async with running(tmp_path, flow=flow) as (router, clients):
        port = router.port("main")
        client = await joined_ws(clients, port)
        replies = await exchange(client, [publish(i, "com.slow.a") for i in range(1, 5)])
        assert kinds(replies) == [raw.PUBLISHED, raw.PUBLISHED, raw.ERROR, raw.PUBLISHED]
        ok, errors = split(replies, raw.PUBLISHED)
        for error in errors:
            assert_rate_limited(error, raw.PUBLISH)
        ok, errors = split(await exchange(client, [publish(i, "com.fast.a") for i in range(5, 9)]), raw.PUBLISHED)
        assert (len(ok), errors) == (4, [])
        assert await round_trip(port, "com.fast.other") < 2.0
        assert count(router, "flow_reject", reason="rate_limited", listener="main", realm="realm1") == 1


@pytest_twisted.ensureDeferred
async def test_session_quota_refuses_for_the_rest_of_the_window(tmp_path):
    """quotas = [{per = "session", messages = 3, window = 60}]: a session's 4th and 5th publishes are refused
    with retry_after of nearly the whole window (55..60 s); another session still publishes."""
    flow = {"quotas": [{"per": "session", "messages": 3, "window": 60}], "disconnect_after": 0}
    async with running(tmp_path, flow=flow) as (router, clients):
        port = router.port("main")
        client = await joined_ws(clients, port)
        ok, errors = split(await exchange(client, [publish(i) for i in range(1, 6)]), raw.PUBLISHED)
        assert len(ok) == 3 and len(errors) == 2
        assert all(55 <= assert_rate_limited(error, raw.PUBLISH) <= 60 for error in errors)
        other = await joined_ws(clients, port)
        assert len(split(await exchange(other, [publish(1), publish(2)]), raw.PUBLISHED)[0]) == 2
        assert count(router, "flow_reject", reason="rate_limited", listener="main", realm="realm1") == 2


# -- sustained overload ------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_refused_for_longer_than_disconnect_after_ends_in_abort(tmp_path):
    """A session whose quota is spent and that keeps publishing (every 100 ms) is refused with rate_limited ERRORs
    and, once refused for disconnect_after = 0.5 s, gets ABORT wampgate.close.rate_limited and the connection
    closes; flow_disconnect counts reason rate_limit_sustained; another session is served."""
    flow = {"quotas": [{"per": "session", "messages": 2, "window": 3600}], "disconnect_after": 0.5}
    async with running(tmp_path, flow=flow) as (router, clients):
        port = router.port("main")
        client = await joined_ws(clients, port)
        assert len(split(await exchange(client, [publish(1), publish(2)]), raw.PUBLISHED)[0]) == 2
        for i in range(3, 40):  # at most ~4 s
            if client.close is not None:
                break
            client.send(publish(i))
            await sleep(0.1)
        await client.wait_closed(2.0)
        replies = client.messages[3:]
        aborts = [m for m in replies if m[0] == raw.ABORT]
        assert len(aborts) == 1 and aborts[0][2] == OVERLOADED and replies[-1] == aborts[0], replies
        assert all(m[0] == raw.ERROR and m[4] == RATE_LIMITED for m in replies[:-1])
        assert 2 <= len(replies) <= 12  # about 0.5 s of refusals at 10/s, then the ABORT
        assert count(router, "flow_disconnect", reason="rate_limit_sustained", listener="main", realm="realm1") == 1
        assert await round_trip(port) < 2.0


@pytest_twisted.ensureDeferred
async def test_a_flood_far_over_the_rate_is_disconnected(tmp_path):
    """rates.session = 20/s and disconnect_after = 1: a session sending 200 unacknowledged publishes/s (10x) is
    sustained overload and gets ABORT wampgate.close.rate_limited within about 2 s (bounded here at 4 s)."""
    flow = {"rates": {"session": {"messages": 20, "burst": 20}}, "disconnect_after": 1.0}
    async with running(tmp_path, flow=flow) as (router, clients):
        client = await joined_ws(clients, router.port("main"))
        for i in range(1, 81):  # 80 x 10 messages, every 50 ms: 4 s
            if client.close is not None:
                break
            for j in range(10):
                client.send(publish(i * 10 + j, ack=False))
            await sleep(0.05)
        assert client.close is not None
        assert [m[2] for m in client.messages if m[0] == raw.ABORT] == [OVERLOADED]


# -- connections and sessions ------------------------------------------------------------------------------------


async def _fill_connections(router, clients, count_: int) -> list:
    port = router.port("main")
    return [await joined_ws(clients, port) for _ in range(count_)]


async def _refused_connections(port: int, clients) -> None:
    """A WebSocket upgrade gets HTTP 503 (with Retry-After); a RawSocket handshake gets 7F 40 00 00 and the
    connection closes."""
    status, headers, _ = await http_request(port, websocket_upgrade())
    assert status == 503 and headers.get("retry-after")
    tcp = clients(await raw.open_tcp(port))
    tcp.write(raw.handshake(raw.RAWSOCKET_SERIALIZERS["msgpack"]))
    assert await tcp.wait_lost(5.0) == RAWSOCKET_TOO_MANY


async def _still_served(first: raw.RawWebSocket, second: raw.RawWebSocket) -> None:
    """Two admitted sessions still talk: a subscription on one receives the other's publication."""
    seen = len(first.messages)
    first.send([raw.SUBSCRIBE, 1, {}, "com.example.kept"])
    await first.wait_messages(seen + 1)
    assert split(await exchange(second, [publish(7, "com.example.kept")]), raw.PUBLISHED)[0]
    messages = await first.wait_messages(seen + 2)
    assert messages[-1][0] == raw.EVENT and messages[-1][4] == [7]


async def _joins_after_release(port: int, clients, closing) -> None:
    closing.disconnect()
    await closing.wait_closed()
    for _ in range(40):  # up to ~2 s for the router to see the close
        try:
            await joined_ws(clients, port)
            return
        except Exception:
            await sleep(0.05)
    raise AssertionError("no slot was released after a connection closed")


@pytest_twisted.ensureDeferred
async def test_max_connections_refuses_websocket_with_503_and_rawsocket_with_error_4(tmp_path):
    """max_connections = 3: with three sessions connected, a WebSocket upgrade is answered HTTP 503 and a RawSocket
    handshake 7F 40 00 00 (error 4, connection count); flow_reject counts reason max_connections; the admitted
    sessions keep working, and once one closes a new client joins."""
    async with running(tmp_path, flow={"max_connections": 3}) as (router, clients):
        port = router.port("main")
        first, second, third = await _fill_connections(router, clients, 3)
        await _refused_connections(port, clients)
        assert count(router, "flow_reject", reason="max_connections", listener="main") == 2
        await _still_served(first, second)
        await _joins_after_release(port, clients, third)


@pytest_twisted.ensureDeferred
async def test_max_connections_per_peer_refuses_with_503_and_rawsocket_error_4(tmp_path):
    """max_connections_per_peer = 3 (max_connections far higher): the 4th and 5th connection from 127.0.0.1 get
    HTTP 503 / RawSocket 7F 40 00 00; flow_reject counts reason max_connections_per_peer; the admitted sessions
    keep working, and a slot frees when one closes."""
    async with running(tmp_path, flow={"max_connections_per_peer": 3}) as (router, clients):
        port = router.port("main")
        first, second, third = await _fill_connections(router, clients, 3)
        await _refused_connections(port, clients)
        assert count(router, "flow_reject", reason="max_connections_per_peer", listener="main") == 2
        await _still_served(first, second)
        await _joins_after_release(port, clients, third)


@pytest_twisted.ensureDeferred
async def test_a_refused_silent_connection_is_closed(tmp_path):
    """A connection refused by max_connections that never sends a byte is closed by the router within a bounded
    time (here: within hello_timeout = 1 s plus slack), just as an admitted silent one is."""
    async with running(tmp_path, flow={"max_connections": 1}, limits={"hello_timeout": 1.0}) as (router, clients):
        port = router.port("main")
        admitted = clients(await raw.open_tcp(port))
        refused = clients(await raw.open_tcp(port))
        await admitted.wait_lost(4.0)  # the admitted silent connection goes after the first-byte timeout
        await refused.wait_lost(1.0)


@pytest_twisted.ensureDeferred
async def test_max_sessions_per_authid_aborts_the_extra_session(tmp_path, alice_hash):
    """max_sessions_per_authid = 2: alice's third ticket session is refused with ABORT
    wampgate.error.too_many_sessions (flow_disconnect reason max_sessions_per_authid); an anonymous session joins
    meanwhile; once one of alice's sessions leaves, she can join again."""
    flow = {"max_sessions_per_authid": 2}
    async with running(tmp_path, flow=flow, listeners=main_listener(auth=ticket_auth(alice_hash))) as (router, _):
        port = router.port("main")
        first, second = await alice(port), await alice(port)
        refusal = await auth.refused(Target(port=port), authmethods=["ticket"], authid="alice",
                                     answer=auth.ticket(ALICE_TICKET))
        assert refusal.reason == TOO_MANY_SESSIONS
        assert count(router, "flow_disconnect", reason="max_sessions_per_authid", listener="main",
                     realm="realm1") == 1
        anonymous = await bounded(connect(Target(port=port)))
        await auth.leave(first)
        third = await alice(port)
        for session in (second, third, anonymous):
            await bounded(leave(session))


@pytest_twisted.ensureDeferred
async def test_max_subscriptions_per_session(tmp_path):
    """[limits] max_subscriptions_per_session = 3: the 4th SUBSCRIBE gets wampgate.error.too_many_subscriptions;
    another session subscribes 3 times; after unsubscribing one, the first may subscribe again."""
    async with running(tmp_path, limits={"max_subscriptions_per_session": 3}) as (router, _):
        target = Target(port=router.port("main"))
        session, other = await bounded(connect(target)), await bounded(connect(target))
        subscriptions = [await bounded(session.subscribe(lambda: None, f"com.example.t{i}")) for i in range(3)]
        with pytest.raises(ApplicationError) as refused:
            await bounded(session.subscribe(lambda: None, "com.example.t3"))
        assert refused.value.error == "wampgate.error.too_many_subscriptions"
        for i in range(3):
            await bounded(other.subscribe(lambda: None, f"com.example.t{i}"))
        await bounded(subscriptions[0].unsubscribe())
        await bounded(session.subscribe(lambda: None, "com.example.t3"))
        await bounded(leave(session))
        await bounded(leave(other))


@pytest_twisted.ensureDeferred
async def test_max_registrations_per_session(tmp_path):
    """[limits] max_registrations_per_session = 2: the 3rd REGISTER gets wampgate.error.too_many_registrations;
    another session registers its own; after unregistering one, the first may register again."""
    async with running(tmp_path, limits={"max_registrations_per_session": 2}) as (router, _):
        target = Target(port=router.port("main"))
        session, other = await bounded(connect(target)), await bounded(connect(target))
        registrations = [await bounded(session.register(lambda: i, f"com.example.p{i}")) for i in range(2)]
        with pytest.raises(ApplicationError) as refused:
            await bounded(session.register(lambda: None, "com.example.p2"))
        assert refused.value.error == "wampgate.error.too_many_registrations"
        await bounded(other.register(lambda: None, "com.example.q0"))
        await bounded(other.register(lambda: None, "com.example.q1"))
        await bounded(registrations[0].unregister())
        await bounded(session.register(lambda: None, "com.example.p2"))
        await bounded(leave(session))
        await bounded(leave(other))


@pytest_twisted.ensureDeferred
async def test_max_pending_calls_per_session(tmp_path):
    """[limits] max_pending_calls_per_session = 2: with two calls awaiting a slow callee, the caller's 3rd CALL
    gets wampgate.error.too_many_pending_calls; another caller still gets its call through; once the callee
    answers, the first caller may call again."""
    async with running(tmp_path, limits={"max_pending_calls_per_session": 2}) as (router, _):
        target = Target(port=router.port("main"))
        callee, caller, other = [await bounded(connect(target)) for _ in range(3)]
        held: list[defer.Deferred] = []

        def slow(x):
            d = defer.Deferred()
            held.append(d)
            return d

        await bounded(callee.register(slow, "com.example.slow"))
        first = defer.ensureDeferred(caller.call("com.example.slow", 1))
        second = defer.ensureDeferred(caller.call("com.example.slow", 2))
        await eventually(lambda: len(held) == 2)
        with pytest.raises(ApplicationError) as refused:
            await bounded(caller.call("com.example.slow", 3))
        assert refused.value.error == "wampgate.error.too_many_pending_calls"
        third = defer.ensureDeferred(other.call("com.example.slow", 4))
        await eventually(lambda: len(held) == 3)
        for i, d in enumerate(held):
            d.callback(i)
        assert sorted([await bounded(first), await bounded(second), await bounded(third)]) == [0, 1, 2]
        fourth = defer.ensureDeferred(caller.call("com.example.slow", 5))
        await eventually(lambda: len(held) == 4)
        held[3].callback("again")
        assert await bounded(fourth) == "again"
        for session in (callee, caller, other):
            await bounded(leave(session))


# -- X-Forwarded-For -----------------------------------------------------------------------------------------------


async def _forwarded_publishes(router, clients, port: int) -> list[tuple[int, int]]:
    """Two clients claiming X-Forwarded-For 192.0.2.1 and 192.0.2.2 each send 3 acknowledged publishes one after
    the other; (published, refused) for each."""
    outcomes = []
    for address in ("192.0.2.1", "192.0.2.2"):
        client = await joined_ws(clients, port, headers={"X-Forwarded-For": address})
        ok, errors = split(await exchange(client, [publish(i) for i in range(1, 4)]), raw.PUBLISHED)
        outcomes.append((len(ok), len(errors)))
    return outcomes


@pytest_twisted.ensureDeferred
async def test_x_forwarded_for_from_an_untrusted_peer_is_ignored(tmp_path):
    """Without trusted_proxies, X-Forwarded-For is not believed: two clients from 127.0.0.1 claiming different
    addresses share one per-peer budget (rates.peer 1/s, burst 3) and the second is rate-limited."""
    flow = {"rates": {"peer": {"messages": 1, "burst": 3}}, "disconnect_after": 0}
    async with running(tmp_path, flow=flow) as (router, clients):
        (ok_first, _), (ok_second, refused_second) = await _forwarded_publishes(router, clients, router.port("main"))
        assert ok_first == 3 and ok_second <= 1 and refused_second >= 2
        assert count(router, "flow_reject", reason="rate_limited", listener="main", realm="realm1") >= 2


@pytest_twisted.ensureDeferred
async def test_x_forwarded_for_from_a_trusted_proxy_gives_each_client_its_budget(tmp_path):
    """With trusted_proxies = ["127.0.0.1"], X-Forwarded-For names the client: the two clients each get their own
    per-peer budget of 3 (none refused), and the proxy's own address keeps its budget too."""
    flow = {"rates": {"peer": {"messages": 1, "burst": 3}}, "disconnect_after": 0}
    listeners = main_listener(websocket='trusted_proxies = ["127.0.0.1"]')
    async with running(tmp_path, flow=flow, listeners=listeners) as (router, clients):
        port = router.port("main")
        assert await _forwarded_publishes(router, clients, port) == [(3, 0), (3, 0)]
        direct = await joined_ws(clients, port)
        assert split(await exchange(direct, [publish(i) for i in range(1, 4)]), raw.PUBLISHED)[1] == []
        assert count(router, "flow_reject") == 0
