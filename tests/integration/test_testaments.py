"""Session testaments end to end: a real router and Autobahn (Twisted) clients.

The role `user` may publish and subscribe under `com.`, only subscribe under `com.private.`, and has no `wamp.` rule
at all: the testament procedures need none. `[limits] max_testaments_per_session` is 2. Absence of an event is
proven with a marker event published after the leaver is gone (WAMP keeps each connection's order), never a sleep.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, SubscribeOptions

from tests.support.clients import Collector, Target, connect, leave_all
from tests.support.raw import bounded
from tests.support.router import listener, start_router
from tests.support.wait import assert_router_serves, eventually

ADD = "wamp.session.add_testament"
FLUSH = "wamp.session.flush_testaments"
TOPIC = "com.example.presence"
NOT_AUTHORIZED = "wamp.error.not_authorized"
TOO_MANY_TESTAMENTS = "wampgate.error.too_many_testaments"

CONFIG = (
    """
[limits]
max_testaments_per_session = 2
"""
    + listener("user", auth='anonymous = { role = "user" }')
    + """
[[realms]]
name = "realm1"

[[realms.roles]]
name = "user"

[[realms.roles.permissions]]
uri = "com."
match = "prefix"
allow = ["publish", "subscribe"]

[[realms.roles.permissions]]
uri = "com.private."
match = "prefix"
allow = ["subscribe"]
"""
)


@pytest_twisted.async_yield_fixture()
async def router(tmp_path):
    running = await start_router(CONFIG, tmp_path)
    yield running
    await running.stop()


async def join(router, transport: str = "websocket", serializer: str = "json"):
    return await bounded(connect(Target(port=router.port("user"), transport=transport, serializer=serializer)))


async def watcher(router, expected: int):
    """A session subscribed to TOPIC, and the Collector of its events (done after `expected`)."""
    session = await join(router)
    collector = Collector(expected=expected)
    await bounded(session.subscribe(collector, TOPIC))
    return session, collector


async def drop(session) -> None:
    """Lose the transport without GOODBYE, and wait until the client sees it gone."""
    session._transport.transport.abortConnection()
    await bounded(session.on_gone)


async def marker(session) -> None:
    """Publish the marker event on TOPIC (acknowledged, to the publisher itself too)."""
    await bounded(session.publish(TOPIC, "marker", options=PublishOptions(acknowledge=True, exclude_me=False)))


def args_of(collector: Collector) -> list[tuple]:
    return [args for args, _ in collector.events]


@pytest_twisted.ensureDeferred
async def test_a_lost_session_publishes_its_testament(router):
    """A RawSocket/MessagePack session adds a testament (scope destroyed, the default; the call needs no `wamp.`
    rule) and its transport is dropped without GOODBYE: the JSON WebSocket subscriber receives the event with its
    args and kwargs, and no publisher details; the router holds no testament afterwards. WELCOME announced
    `testament_meta_api` to the Autobahn client."""
    watching, events = await watcher(router, expected=1)
    leaver = await join(router, transport="rawsocket", serializer="msgpack")
    assert leaver._router_roles["dealer"].testament_meta_api is True
    assert await bounded(leaver.call(ADD, TOPIC, ["gone"], {"who": "leaver"})) is None
    await drop(leaver)
    [(args, kwargs)] = await bounded(events.done)
    assert args == ("gone",) and kwargs == {"who": "leaver"}
    await eventually(lambda: router.realm().testaments.sessions_holding() == 0, "testaments forgotten")
    await leave_all(watching)


@pytest_twisted.ensureDeferred
async def test_goodbye_publishes_both_scopes(router):
    """A session with one `destroyed` and one `detached` testament leaves with GOODBYE: the subscriber receives the
    detached one, then the destroyed one (as Crossbar publishes both on every leave), then the marker published after
    the leaver is gone, and nothing else."""
    watching, events = await watcher(router, expected=3)
    leaver = await join(router)
    await bounded(leaver.call(ADD, TOPIC, ["destroyed"], {}))
    await bounded(leaver.call(ADD, TOPIC, ["detached"], {}, scope="detached"))
    await leave_all(leaver)
    await marker(watching)
    await bounded(events.done)
    assert args_of(events) == [("detached",), ("destroyed",), ("marker",)]
    await leave_all(watching)


@pytest_twisted.ensureDeferred
async def test_flushed_testaments_are_not_published(router):
    """flush_testaments answers how many it removed (2); a transport dropped afterwards publishes nothing: the
    subscriber's first event is the marker."""
    watching, events = await watcher(router, expected=1)
    leaver = await join(router)
    await bounded(leaver.call(ADD, TOPIC, ["one"], {}))
    await bounded(leaver.call(ADD, TOPIC, ["two"], {}))
    assert await bounded(leaver.call(FLUSH)) == 2
    await drop(leaver)
    await eventually(lambda: len(router.realm().sessions) == 1, "the leaver is gone")
    await marker(watching)
    await bounded(events.done)
    assert args_of(events) == [("marker",)]
    await leave_all(watching)


@pytest_twisted.ensureDeferred
async def test_a_testament_on_a_topic_the_session_may_not_publish_to_is_not_authorized(router):
    """The role may subscribe to `com.private.` but not publish there: add_testament on it gets
    wamp.error.not_authorized and stores nothing, while one on a topic it may publish to is accepted (so the refusal
    is the topic's, not the procedure's). When the transport is dropped, a prefix `com.` subscriber receives the
    allowed testament, then the marker, and nothing on `com.private.`; a fresh client is served."""
    watching = await join(router)
    events = Collector(expected=2)
    await bounded(watching.subscribe(events, "com.", options=SubscribeOptions(match="prefix")))
    leaver = await join(router)
    with pytest.raises(ApplicationError) as raised:
        await bounded(leaver.call(ADD, "com.private.room", ["sneaky"], {}))
    assert raised.value.error == NOT_AUTHORIZED
    await bounded(leaver.call(ADD, TOPIC, ["allowed"], {}))
    assert [t.publish.topic for t in router.realm().testaments.held(leaver._session_id)] == [TOPIC]
    await drop(leaver)
    await eventually(lambda: len(router.realm().sessions) == 1, "the leaver is gone")
    await marker(watching)
    await bounded(events.done)
    assert args_of(events) == [("allowed",), ("marker",)]
    await leave_all(watching)
    await assert_router_serves(router.port("user"))


@pytest_twisted.ensureDeferred
async def test_the_per_session_bound(router):
    """With max_testaments_per_session = 2, the third add gets wampgate.error.too_many_testaments; the two held are
    published, in order, when the transport is dropped."""
    watching, events = await watcher(router, expected=2)
    leaver = await join(router)
    await bounded(leaver.call(ADD, TOPIC, ["first"], {}))
    await bounded(leaver.call(ADD, TOPIC, ["second"], {}))
    with pytest.raises(ApplicationError) as raised:
        await bounded(leaver.call(ADD, TOPIC, ["third"], {}))
    assert raised.value.error == TOO_MANY_TESTAMENTS
    await drop(leaver)
    await bounded(events.done)
    assert args_of(events) == [("first",), ("second",)]
    await leave_all(watching)
