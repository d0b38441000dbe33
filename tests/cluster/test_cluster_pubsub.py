"""Pub/sub across cluster nodes: every match kind and publish option, as on one node, through a real Redis."""

from __future__ import annotations

import pytest_twisted
from autobahn.wamp.types import PublishOptions, SubscribeOptions

from tests.support.clients import Collector, Target, connect, leave_all
from tests.support.wait import bounded


def at(node, transport: str = "websocket", serializer: str = "json") -> Target:
    return Target(port=node.port("universal"), transport=transport, serializer=serializer)


@pytest_twisted.ensureDeferred
async def test_an_event_published_on_one_node_reaches_exact_prefix_and_wildcard_subscribers_on_another(nodes):
    a, b = await nodes(2)
    publisher = await connect(at(a))
    subscriber = await connect(at(b, "rawsocket", "msgpack"))
    exact, prefix, wildcard = Collector(), Collector(), Collector()
    await subscriber.subscribe(exact, "com.app.sensor.temp")
    await subscriber.subscribe(prefix, "com.app.", options=SubscribeOptions(match="prefix", details_arg="details"))
    await subscriber.subscribe(wildcard, "com..sensor.temp",
                               options=SubscribeOptions(match="wildcard", details_arg="details"))
    await publisher.publish("com.app.sensor.temp", 21.5, unit="C", options=PublishOptions(acknowledge=True))
    for collector in (exact, prefix, wildcard):
        events = await bounded(collector.done)
        assert events[0][0][0] == 21.5 and events[0][1]["unit"] == "C"
        assert len(events) == 1
    assert prefix.events[0][1]["details"].topic == "com.app.sensor.temp"
    await leave_all(publisher, subscriber)


DISCLOSED = """
[[realms.roles.permissions]]
uri = "com.t"
allow = ["publish", "subscribe"]
disclose = true
"""


@pytest_twisted.ensureDeferred
async def test_exclusion_eligibility_and_disclosure_hold_across_nodes(nodes):
    a, b = await nodes(2, extra=DISCLOSED)
    publisher = await connect(at(a))
    first, second = await connect(at(b)), await connect(at(b))
    got_first, got_second = Collector(), Collector()
    await first.subscribe(got_first, "com.t", options=SubscribeOptions(details_arg="details"))
    await second.subscribe(got_second, "com.t", options=SubscribeOptions(details_arg="details"))
    await publisher.publish("com.t", 1, options=PublishOptions(exclude=[first._session_id], acknowledge=True))
    await publisher.publish("com.t", 2, options=PublishOptions(eligible=[first._session_id], acknowledge=True))
    assert [e[0][0] for e in await bounded(got_second.done)] == [1]
    assert [e[0][0] for e in await bounded(got_first.done)] == [2]
    assert got_second.events[0][1]["details"].publisher == publisher._session_id
    assert got_first.events[0][1]["details"].publisher_authrole == "anonymous"
    await leave_all(publisher, first, second)


@pytest_twisted.ensureDeferred
async def test_subscribe_here_then_publish_there_always_arrives(nodes):
    a, b = await nodes(2)
    publisher = await connect(at(a))
    subscriber = await connect(at(b))
    for round_ in range(200):
        got = Collector()
        subscription = await subscriber.subscribe(got, f"com.causal.{round_}")
        await publisher.publish(f"com.causal.{round_}", round_, options=PublishOptions(acknowledge=True))
        assert (await bounded(got.done))[0][0][0] == round_
        await subscription.unsubscribe()
    await leave_all(publisher, subscriber)


@pytest_twisted.ensureDeferred
async def test_order_per_publisher_holds_across_topics_and_match_kinds(nodes):
    a, b = await nodes(2)
    publisher = await connect(at(a))
    subscriber = await connect(at(b))
    seen = []
    count = 300
    done = Collector(expected=count + count // 3)  # "com.order.one" reaches two subscriptions

    def record(n, **kwargs):
        seen.append(n)
        done(n)

    await subscriber.subscribe(record, "com.order.one")
    await subscriber.subscribe(record, "com.order.", options=SubscribeOptions(match="prefix"))
    await subscriber.subscribe(record, "com..three", options=SubscribeOptions(match="wildcard"))
    topics = ["com.order.one", "com.order.two", "com.x.three"]
    for n in range(count):
        publisher.publish(topics[n % 3], n)
    await bounded(done.done, 10)
    assert seen == sorted(seen) and sorted(set(seen)) == list(range(count))
    await leave_all(publisher, subscriber)
