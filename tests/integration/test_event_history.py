"""Event history end to end: a real router and real Autobahn (Twisted) clients, over WebSocket JSON and RawSocket
MessagePack.

Pins down: `[[realms.history]]` rules keep the last events of their topics whether or not anyone subscribed; a
session that subscribes later calls `wamp.subscription.get_events(subscription id, limit)` and gets exactly the last
events, newest first, without a `call` permission on `wamp.`; another session (not holding it) gets
`wamp.error.no_such_subscription`; WELCOME announces event_history; a reload follows the new rules.
"""

from __future__ import annotations

import textwrap

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, SubscribeOptions

from tests.integration.conftest import target
from tests.support.clients import connect, leave_all
from tests.support.raw import bounded
from tests.support.router import listener, start_router

GET_EVENTS = "wamp.subscription.get_events"
ACK = PublishOptions(acknowledge=True)

# No rule names `wamp.`: get_events must work without a "call" permission on it.
CONFIG = listener("main", ("websocket", "rawsocket")) + textwrap.dedent("""
    [[realms]]
    name = "realm1"

    [[realms.history]]
    uri = "com.hist."
    match = "prefix"
    limit = 5

    [[realms.history]]
    uri = "com.exact"
    limit = 2

    [[realms.roles]]
    name = "anonymous"

    [[realms.roles.permissions]]
    uri = "com."
    match = "prefix"
    allow = ["publish", "subscribe"]
    """)


def event_args(events: list) -> list:
    return [event["args"] for event in events]


@pytest.mark.parametrize("transport, serializer", [("websocket", "json"), ("rawsocket", "msgpack")])
@pytest_twisted.ensureDeferred
async def test_a_later_subscriber_gets_the_last_events_newest_first(tmp_path, transport, serializer):
    """7 events on com.hist.a (rule limit 5) before anyone subscribes: get_events with the later subscription's id
    answers the last 5 newest first (limit 3: the newest 3), each with its publication id, topic, args and kwargs and
    no publisher; an event on an uncovered topic is not kept; a second session that does not hold the subscription
    gets no_such_subscription, and calling another wamp. procedure is still not_authorized."""
    running = await start_router(CONFIG, tmp_path)
    try:
        where = target(running, "main", transport, serializer)
        publisher = await bounded(connect(where))
        publications = []
        for n in range(7):
            published = await bounded(publisher.publish("com.hist.a", n, kwargs_n=n, options=ACK))
            publications.append(published.id)
        await bounded(publisher.publish("com.other", "x", options=ACK))
        subscriber = await bounded(connect(where))
        assert subscriber._router_roles["broker"].event_history is True
        subscription = await bounded(subscriber.subscribe(lambda *a, **k: None, "com.hist.a"))

        events = await bounded(subscriber.call(GET_EVENTS, subscription.id, 10))
        assert events == [
            {"publication": publications[n], "topic": "com.hist.a", "args": [n], "kwargs": {"kwargs_n": n}}
            for n in (6, 5, 4, 3, 2)
        ]
        assert event_args(await bounded(subscriber.call(GET_EVENTS, subscription.id, 3))) == [[6], [5], [4]]
        assert len(running.realm().broker.history) == 5

        stranger = await bounded(connect(where))
        with pytest.raises(ApplicationError) as refused:
            await bounded(stranger.call(GET_EVENTS, subscription.id, 10))
        assert refused.value.error == "wamp.error.no_such_subscription"
        with pytest.raises(ApplicationError) as refused:
            await bounded(stranger.call("wamp.subscription.list"))
        assert refused.value.error == "wamp.error.not_authorized"
        await leave_all(publisher, subscriber, stranger)
    finally:
        await running.stop()


@pytest_twisted.ensureDeferred
async def test_a_prefix_subscription_and_the_publish_options(tmp_path):
    """A prefix subscription's history covers every kept topic under it; an event published with exclude naming the
    subscriber is not in its history; exclude_me (default) keeps the publisher's own events out of its history."""
    running = await start_router(CONFIG, tmp_path)
    try:
        where = target(running, "main", "websocket", "json")
        publisher, subscriber = [await bounded(connect(where)) for _ in range(2)]
        await bounded(publisher.publish("com.hist.a", "a", options=ACK))
        await bounded(publisher.publish("com.hist.b", "hidden", options=PublishOptions(
            acknowledge=True, exclude=[subscriber.session_id])))
        await bounded(publisher.publish("com.hist.b", "b", options=ACK))
        mine = await bounded(subscriber.subscribe(lambda *a: None, "com.hist.", options=SubscribeOptions(
            match="prefix")))
        events = await bounded(subscriber.call(GET_EVENTS, mine.id))
        assert [(e["topic"], e["args"]) for e in events] == [("com.hist.b", ["b"]), ("com.hist.a", ["a"])]
        own = await bounded(publisher.subscribe(lambda *a: None, "com.hist.", options=SubscribeOptions(
            match="prefix")))
        assert await bounded(publisher.call(GET_EVENTS, own.id)) == []
        await leave_all(publisher, subscriber)
    finally:
        await running.stop()


@pytest_twisted.ensureDeferred
async def test_a_reload_follows_the_new_rules(tmp_path):
    """After a reload that drops the prefix rule and keeps com.exact, the prefix's events are gone and com.exact's
    are kept; events on the dropped prefix are no longer recorded."""
    running = await start_router(CONFIG, tmp_path)
    try:
        where = target(running, "main", "rawsocket", "msgpack")
        client = await bounded(connect(where))
        for topic in ("com.hist.a", "com.exact", "com.exact", "com.exact"):
            await bounded(client.publish(topic, topic, options=ACK))
        assert len(running.realm().broker.history) == 3  # com.exact keeps 2
        reloaded = CONFIG.replace('uri = "com.hist."\nmatch = "prefix"\nlimit = 5', 'uri = "com.kept"')
        assert reloaded != CONFIG
        (tmp_path / "router.toml").write_text(reloaded)
        assert running.service.reload() is True
        assert len(running.realm().broker.history) == 2
        await bounded(client.publish("com.hist.a", "after", options=ACK))
        assert len(running.realm().broker.history) == 2
        watcher = await bounded(connect(where))
        subscription = await bounded(watcher.subscribe(lambda *a: None, "com.exact"))
        assert event_args(await bounded(watcher.call(GET_EVENTS, subscription.id))) == [["com.exact"], ["com.exact"]]
        await leave_all(client, watcher)
    finally:
        await running.stop()
