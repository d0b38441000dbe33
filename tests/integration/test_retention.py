"""Event retention end to end: a real router and real Autobahn (Twisted) clients, over WebSocket JSON and RawSocket
MessagePack.

Pins down: PublishOptions(retain=True) keeps the topic's last event and SubscribeOptions(get_retained=True) delivers
it (details.retained true), for patterns too; a session not authorized to subscribe gets not_authorized and no
event; the per-realm bounds [limits] max_retained_events and max_retained_bytes; the event_retention announcement
and the wampgate_retained_events gauge.

Retained EVENTs follow SUBSCRIBED on the subscriber's connection. "Nothing more came" is proven with a marker: the
subscriber then publishes (exclude_me false, acknowledged) to a marker topic it holds, and since the router keeps
each connection's order, an EVENT not received before the marker was never sent.
"""

from __future__ import annotations

import textwrap

import pytest
import pytest_twisted
from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, SubscribeOptions

from tests.integration.conftest import target
from tests.integration.test_operations import admin_port, http_get
from tests.support.clients import Collector, connect, leave_all, record_inbound
from tests.support.raw import bounded
from tests.support.router import REALM1_ANONYMOUS_ALL, listener, start_router

NOT_AUTHORIZED = "wamp.error.not_authorized"
RETAIN = PublishOptions(retain=True, acknowledge=True)
VIAS = [("universal", "websocket", "json"), ("rawsocket", "rawsocket", "msgpack")]
VIA_IDS = ["websocket-json", "rawsocket-msgpack"]


async def retained_on_subscribe(session, topic: str, match: str = "exact", marker: str = "test.marker") -> list:
    """Subscribe with get_retained and return [(args, details)] of the EVENTs that came for it before a marker."""
    got: list = []

    def on_event(*args, details):
        got.append((args, details))

    options = SubscribeOptions(match=match, get_retained=True, details=True)
    await bounded(session.subscribe(on_event, topic, options=options))
    await marker_round_trip(session, marker)
    return got


async def marker_round_trip(session, marker: str) -> None:
    """The session's own marker event: whatever the router sent it before has arrived."""
    arrived = Collector()
    subscription = await bounded(session.subscribe(arrived, marker))
    await bounded(session.publish(marker, "marker", options=PublishOptions(exclude_me=False, acknowledge=True)))
    await bounded(arrived.done)
    await bounded(subscription.unsubscribe())


@pytest.mark.parametrize("via", VIAS, ids=VIA_IDS)
@pytest_twisted.ensureDeferred
async def test_a_later_subscriber_gets_the_retained_event(router, via):
    """A publisher retains on a topic nobody subscribes to; a session that subscribes later with get_retained gets
    the last retained event once, with details.retained true; a pattern subscription gets every retained topic it
    matches, with its topic; WELCOME announced event_retention to these Autobahn clients."""
    where = target(router, *via)
    publisher = await bounded(connect(where))
    await bounded(publisher.publish("com.ret.a", "old", options=RETAIN))
    await bounded(publisher.publish("com.ret.a", "new", {"n": 1}, options=RETAIN))
    await bounded(publisher.publish("com.ret.b", "b", options=RETAIN))
    await bounded(publisher.publish("com.ret.a", "live", options=PublishOptions(acknowledge=True)))
    subscriber = await bounded(connect(where))
    assert subscriber._router_roles["broker"].event_retention is True

    [(args, details)] = await retained_on_subscribe(subscriber, "com.ret.a")
    assert args == ("new", {"n": 1}) and details.retained is True and details.publisher is None
    got = await retained_on_subscribe(subscriber, "com.ret.", "prefix")
    assert [(args, details.topic, details.retained) for args, details in got] == [
        (("new", {"n": 1}), "com.ret.a", True), (("b",), "com.ret.b", True)]
    assert len(router.realm().broker.retained) == 2
    await leave_all(publisher, subscriber)


@pytest_twisted.ensureDeferred
async def test_without_get_retained_nothing_is_sent(router):
    """A SUBSCRIBE without get_retained gets no retained event: nothing arrives before the subscriber's marker."""
    publisher = await bounded(connect(target(router, "universal", "websocket")))
    await bounded(publisher.publish("com.quiet", "kept", options=RETAIN))
    subscriber = await bounded(connect(target(router, "universal", "websocket")))
    inbound = record_inbound(subscriber)
    await bounded(subscriber.subscribe(lambda *a: None, "com.quiet"))
    await marker_round_trip(subscriber, "test.marker")
    assert [m.args for m in inbound if isinstance(m, message.Event)] == [["marker"]]
    await leave_all(publisher, subscriber)


@pytest.mark.parametrize("via", VIAS, ids=VIA_IDS)
@pytest_twisted.ensureDeferred
async def test_publish_options_apply_when_the_retained_event_is_delivered(router, via):
    """The original exclude / eligible lists decide at delivery who gets the retained event; the publisher gets its
    own only when it published with exclude_me false."""
    where = target(router, *via)
    publisher, a, b = [await bounded(connect(where)) for _ in range(3)]
    await bounded(publisher.publish("com.only.a", 1, options=PublishOptions(
        retain=True, acknowledge=True, eligible=[a.welcome.session])))
    await bounded(publisher.publish("com.mine", 2, options=RETAIN))
    await bounded(publisher.publish("com.mine.too", 3, options=PublishOptions(
        retain=True, acknowledge=True, exclude_me=False)))
    assert [args for args, _ in await retained_on_subscribe(a, "com.only.a")] == [(1,)]
    assert await retained_on_subscribe(b, "com.only.a") == []
    assert await retained_on_subscribe(publisher, "com.mine") == []
    assert [args for args, _ in await retained_on_subscribe(publisher, "com.mine.too")] == [(3,)]
    await leave_all(publisher, a, b)


AUTHZ_CONFIG = listener("main", ("websocket", "rawsocket")) + textwrap.dedent("""
    [[realms]]
    name = "realm1"

    [[realms.roles]]
    name = "anonymous"

    [[realms.roles.permissions]]
    uri = "com."
    match = "prefix"
    allow = ["publish"]

    [[realms.roles.permissions]]
    uri = "com.open."
    match = "prefix"
    allow = ["publish", "subscribe"]
    """)


@pytest.mark.parametrize("transport, serializer", [("websocket", "json"), ("rawsocket", "msgpack")])
@pytest_twisted.ensureDeferred
async def test_a_session_not_allowed_to_subscribe_gets_no_retained_event(tmp_path, transport, serializer):
    """Publishing (and retaining) on com.secret.t is allowed, subscribing to it is not: a SUBSCRIBE with
    get_retained, exact or a prefix covering it, gets ERROR wamp.error.not_authorized and no EVENT (nothing but
    the marker arrives); an allowed topic's retained event is still delivered."""
    running = await start_router(AUTHZ_CONFIG, tmp_path)
    try:
        where = target(running, "main", transport, serializer)
        publisher = await bounded(connect(where))
        await bounded(publisher.publish("com.secret.t", "secret", options=RETAIN))
        await bounded(publisher.publish("com.open.t", "open", options=RETAIN))
        assert len(running.realm().broker.retained) == 2
        subscriber = await bounded(connect(where))
        inbound = record_inbound(subscriber)
        for topic, match in (("com.secret.t", "exact"), ("com.", "prefix"), ("com..t", "wildcard")):
            with pytest.raises(ApplicationError) as refused:
                await bounded(subscriber.subscribe(lambda *a: None, topic,
                                                   options=SubscribeOptions(match=match, get_retained=True)))
            assert refused.value.error == NOT_AUTHORIZED
        got = await retained_on_subscribe(subscriber, "com.open.t", marker="com.open.marker")
        assert [args for args, _ in got] == [("open",)]
        assert [m.args for m in inbound if isinstance(m, message.Event)] == [["open"], ["marker"]]
        await leave_all(publisher, subscriber)
    finally:
        await running.stop()


BOUNDS_CONFIG = textwrap.dedent("""
    [limits]
    max_retained_events = 2
    max_retained_bytes = 2000

    [admin]
    endpoint = "tcp:0:interface=127.0.0.1"
    """) + listener("main", ("websocket", "rawsocket")) + REALM1_ANONYMOUS_ALL


@pytest_twisted.ensureDeferred
async def test_the_bounds_forget_the_topic_retained_least_recently(tmp_path):
    """With max_retained_events 2 a third retained topic pushes out the least recently retained one; an event over
    max_retained_bytes (2000) is not retained and its topic's earlier event is forgotten; /metrics reports the
    count as wampgate_retained_events."""
    running = await start_router(BOUNDS_CONFIG, tmp_path)
    try:
        where = target(running, "main", "rawsocket", "msgpack")
        publisher = await bounded(connect(where))
        for topic in ("com.b.one", "com.b.two", "com.b.three"):
            await bounded(publisher.publish(topic, topic, options=RETAIN))
        subscriber = await bounded(connect(where))
        got = await retained_on_subscribe(subscriber, "com.b.", "prefix")
        assert [details.topic for _, details in got] == ["com.b.two", "com.b.three"]

        await bounded(publisher.publish("com.b.three", "x" * 3000, options=RETAIN))
        assert [details.topic for _, details in await retained_on_subscribe(subscriber, "com.b.", "prefix")] == [
            "com.b.two"]
        status, _, body = await http_get(admin_port(running), "/metrics")
        assert status == 200 and 'wampgate_retained_events{realm="realm1"} 1.0' in body.decode().splitlines()
        await leave_all(publisher, subscriber)
    finally:
        await running.stop()
