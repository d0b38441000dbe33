"""End-to-end pub/sub against a real router and real Autobahn (Twisted) clients.

Pins down: exact / prefix / wildcard matching, one subscription id per (topic, match), publisher exclusion,
black- and white-listing by session, authid and authrole, publisher disclosure, forward_for stripping,
acknowledgement, unsubscription, cleanup when a session goes, URI checks, authorization, strict realms and payload
transparency across serializers.

Negative checks ("X did NOT receive") never rely on sleeping: the same publisher publishes a marker afterwards to
a topic every subscriber has, the test waits for the marker everywhere, and because the router keeps per-publisher
order on each connection, an event that did not arrive before the marker was not sent.

Requests Autobahn's client API cannot express (the spec's `disclose_me`, a PUBLISH to a URI Autobahn refuses
locally, an UNSUBSCRIBE for an id the client no longer holds) are sent raw on the session's transport, with a
pending-request entry registered in the session first, so Autobahn's own reply handling turns PUBLISHED/ERROR into
the usual result or ApplicationError.
"""

from __future__ import annotations

import pytest
import pytest_twisted
import txaio
from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.request import Handler, PublishRequest, SubscribeRequest, UnsubscribeRequest
from autobahn.wamp.types import PublishOptions, SubscribeOptions
from twisted.internet import defer

from tests.integration.conftest import target
from tests.support.clients import Collector, connect, leave, leave_all, record_inbound
from tests.support.router import listener, start_router
from tests.support.wait import eventually

INVALID_URI = "wamp.error.invalid_uri"
NOT_AUTHORIZED = "wamp.error.not_authorized"
NO_SUCH_SUBSCRIPTION = "wamp.error.no_such_subscription"
ACK = PublishOptions(acknowledge=True)
DETAILS = SubscribeOptions(details=True)


# -- helpers -----------------------------------------------------------------------------------------------------


async def join(router, count: int, *, serializer: str = "json", transport: str = "websocket",
               listener_name: str = "universal"):
    """`count` sessions on realm1 through one listener."""
    where = target(router, listener_name, transport, serializer)
    return [await connect(where) for _ in range(count)]




def session_id(session) -> int:
    return session.welcome.session


def event_args(collector: Collector) -> list:
    """Just the positional args of every event a Collector got (details stripped)."""
    return [args for args, _ in collector.events]


def event_details(collector: Collector) -> list:
    return [kwargs["details"] for _, kwargs in collector.events]




def send_publish(session, msg: message.Publish):
    """Send a hand-built PUBLISH; when it asks for acknowledge, return the Deferred for PUBLISHED / ERROR."""
    reply = None
    if msg.acknowledge:
        reply = txaio.create_future()
        session._publish_reqs[msg.request] = PublishRequest(msg.request, reply, was_encrypted=False)
    session._transport.send(msg)
    return reply


def raw_publish(session, topic: str, *args, cls=message.Publish, **options):
    """A PUBLISH built by hand (no client-side URI check), acknowledged unless acknowledge=None is given."""
    options.setdefault("acknowledge", True)
    msg = cls(session._request_id_gen.next(), topic, args=list(args) or None, **options)
    return send_publish(session, msg)


def raw_subscribe(session, handler, topic: str, match: str = "exact"):
    """A SUBSCRIBE built by hand (no client-side URI check); returns the Deferred for SUBSCRIBED / ERROR."""
    request = session._request_id_gen.next()
    reply = txaio.create_future()
    session._subscribe_reqs[request] = SubscribeRequest(request, topic, reply, Handler(handler))
    session._transport.send(message.Subscribe(request, topic, match=match))
    return reply


def raw_unsubscribe(session, subscription_id: int):
    """An UNSUBSCRIBE for any id, even one Autobahn would refuse locally; returns the reply Deferred."""
    request = session._request_id_gen.next()
    reply = txaio.create_future()
    session._unsubscribe_reqs[request] = UnsubscribeRequest(request, reply, subscription_id)
    session._transport.send(message.Unsubscribe(request, subscription_id))
    return reply


class DisclosingPublish(message.Publish):
    """A PUBLISH carrying the spec's `disclose_me`, which Autobahn's PublishOptions cannot send."""

    def marshal(self):
        raw = super().marshal()
        raw[2] = dict(raw[2], disclose_me=True)
        return raw


async def refused(deferred) -> str:
    """Await a request that must fail; return the WAMP error URI."""
    with pytest.raises(ApplicationError) as caught:
        await deferred
    return caught.value.error


async def published_then_marker(publisher, subscribers, topic: str, options: PublishOptions, payload="payload"):
    """Publish once on `topic` with `options`, then a marker; return each subscriber's events on `topic`.

    Every subscriber subscribes to `topic` and to `topic + ".marker"` first; the marker is published without
    filters (exclude_me=False), so waiting for it on every subscriber proves all earlier deliveries are done.
    """
    events = [Collector() for _ in subscribers]
    markers = [Collector() for _ in subscribers]
    subscriptions = []
    for session, on_event, on_marker in zip(subscribers, events, markers):
        subscriptions.append(await session.subscribe(on_event, topic))
        subscriptions.append(await session.subscribe(on_marker, topic + ".marker"))
    reply = publisher.publish(topic, payload, options=options)
    if reply is not None:
        await reply
    await publisher.publish(topic + ".marker", "marker", options=PublishOptions(acknowledge=True, exclude_me=False))
    await defer.gatherResults([m.done for m in markers])
    for subscription in subscriptions:
        await subscription.unsubscribe()
    return [event_args(c) for c in events]


async def events_for_topics(publisher, subscriber, pattern: str, match: str, topics: list[str]):
    """Subscribe one pattern, publish to each topic (its name as the payload), then a marker; return what came."""
    events, marker = Collector(), Collector()
    await subscriber.subscribe(events, pattern, options=SubscribeOptions(match=match))
    await subscriber.subscribe(marker, "com.test.marker")
    for topic in topics:
        publisher.publish(topic, topic)
    await publisher.publish("com.test.marker", "marker", options=ACK)
    await marker.done
    return event_args(events)


def realm(name: str, roles: dict[str, str], extra: str = "") -> str:
    """A realm whose roles are given as {role: permissions TOML}."""
    text = f'\n[[realms]]\nname = "{name}"\n{extra}\n'
    for role, permissions in roles.items():
        text += f'\n[[realms.roles]]\nname = "{role}"\n{permissions}\n'
    return text


ALLOW_ALL = """
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["publish", "subscribe", "call", "register"]
"""


# -- 1. matching -------------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_exact_subscription_receives_only_its_topic(router):
    """An exact subscription gets events for its topic only, not for longer or shorter topics."""
    subscriber, publisher = await join(router, 2)
    got = await events_for_topics(publisher, subscriber, "com.a", "exact",
                                            ["com.a", "com.a.b", "com.ab", "com"])
    assert got == [("com.a",)]
    await leave_all(subscriber, publisher)


@pytest_twisted.ensureDeferred
async def test_prefix_subscription_is_a_string_prefix(router):
    """Prefix matching is on the string: "com.a." gets "com.a.b" and "com.a.b.c" but not "com.a" or "com.ab"."""
    subscriber, publisher = await join(router, 2)
    got = await events_for_topics(publisher, subscriber, "com.a.", "prefix",
                                            ["com.a.b", "com.a.b.c", "com.a", "com.ab", "com.b.a"])
    assert got == [("com.a.b",), ("com.a.b.c",)]
    await leave_all(subscriber, publisher)


@pytest_twisted.ensureDeferred
async def test_prefix_without_trailing_dot_matches_longer_component(router):
    """Per the WAMP spec a prefix subscription "com.a" also receives "com.ab" (and "com.a" itself)."""
    subscriber, publisher = await join(router, 2)
    got = await events_for_topics(publisher, subscriber, "com.a", "prefix",
                                            ["com.a", "com.ab", "com.a.b", "com.b"])
    assert got == [("com.a",), ("com.ab",), ("com.a.b",)]
    await leave_all(subscriber, publisher)


@pytest_twisted.ensureDeferred
async def test_wildcard_matches_exactly_one_component_per_empty_slot(router):
    """Wildcard "com..c" gets "com.b.c" and "com.x.c"; not "com.b.d", "com.b.x.c", "com.c" nor "org.b.c"."""
    subscriber, publisher = await join(router, 2)
    got = await events_for_topics(publisher, subscriber, "com..c", "wildcard",
                                            ["com.b.c", "com.b.d", "com.b.x.c", "com.c", "org.b.c", "com.x.c"])
    assert got == [("com.b.c",), ("com.x.c",)]
    await leave_all(subscriber, publisher)


@pytest_twisted.ensureDeferred
async def test_pattern_events_carry_the_concrete_topic(router):
    """Events of prefix and wildcard subscriptions carry the published topic in details.topic, on the wire too."""
    subscriber, publisher = await join(router, 2)
    inbound = record_inbound(subscriber)
    by_prefix, by_wildcard = Collector(), Collector()
    prefix_sub = await subscriber.subscribe(by_prefix, "com.p.", options=SubscribeOptions(match="prefix", details=True))
    wildcard_sub = await subscriber.subscribe(by_wildcard, "com.p..z",
                                              options=SubscribeOptions(match="wildcard", details=True))
    publisher.publish("com.p.y.z", 1)
    await defer.gatherResults([by_prefix.done, by_wildcard.done])
    assert [(d.topic, d.subscription.id) for d in event_details(by_prefix)] == [("com.p.y.z", prefix_sub.id)]
    assert [(d.topic, d.subscription.id) for d in event_details(by_wildcard)] == [("com.p.y.z", wildcard_sub.id)]
    events = [m for m in inbound if isinstance(m, message.Event)]
    assert sorted((m.subscription, m.topic) for m in events) == sorted(
        [(prefix_sub.id, "com.p.y.z"), (wildcard_sub.id, "com.p.y.z")]
    )
    await leave_all(subscriber, publisher)


@pytest_twisted.ensureDeferred
async def test_exact_events_carry_no_topic_on_the_wire(router):
    """An EVENT for an exact subscription has no `topic` detail (Autobahn then fills in the subscription's topic)."""
    subscriber, publisher = await join(router, 2)
    inbound = record_inbound(subscriber)
    events = Collector()
    subscription = await subscriber.subscribe(events, "com.exact.t", options=DETAILS)
    publisher.publish("com.exact.t", 1)
    await events.done
    wire_events = [m for m in inbound if isinstance(m, message.Event)]
    assert [(m.subscription, m.topic) for m in wire_events] == [(subscription.id, None)]
    assert [d.topic for d in event_details(events)] == ["com.exact.t"]  # Autobahn's fallback, not the router's
    await leave_all(subscriber, publisher)


@pytest_twisted.ensureDeferred
async def test_one_event_per_matching_subscription(router):
    """A session with an exact, a prefix and a wildcard subscription that all match gets three EVENTs."""
    subscriber, publisher = await join(router, 2)
    exact, prefix, wildcard = Collector(), Collector(), Collector()
    await subscriber.subscribe(exact, "com.m.x")
    await subscriber.subscribe(prefix, "com.m.", options=SubscribeOptions(match="prefix"))
    await subscriber.subscribe(wildcard, "com..x", options=SubscribeOptions(match="wildcard"))
    await publisher.publish("com.m.x", "once", options=ACK)
    await defer.gatherResults([exact.done, prefix.done, wildcard.done])
    assert [event_args(c) for c in (exact, prefix, wildcard)] == [[("once",)]] * 3
    await leave_all(subscriber, publisher)


# -- 2. shared subscription ids ----------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_sessions_share_one_subscription_per_topic_and_match(router):
    """Two sessions subscribing to the same (topic, match) get the same id; the broker holds one entry for both."""
    first, second = await join(router, 2)
    sub1 = await first.subscribe(Collector(), "com.shared")
    sub2 = await second.subscribe(Collector(), "com.shared")
    assert sub1.id == sub2.id
    table = router.realm().broker.subscriptions()
    assert [(s.id, s.uri, s.match, sorted(s.subscribers)) for s in table] == [
        (sub1.id, "com.shared", "exact", sorted([session_id(first), session_id(second)]))
    ]
    other_match = await first.subscribe(Collector(), "com.shared", options=SubscribeOptions(match="prefix"))
    assert other_match.id != sub1.id
    assert len(router.realm().broker.subscriptions()) == 2
    await leave_all(first, second)


@pytest_twisted.ensureDeferred
async def test_a_shared_id_cannot_be_unsubscribed_by_a_session_that_does_not_hold_it(router):
    """Knowing a subscription id is not holding it: another session's UNSUBSCRIBE with it is no_such_subscription,
    and the holder keeps receiving."""
    holder, stranger, publisher = await join(router, 3)
    events = Collector()
    subscription = await holder.subscribe(events, "com.held")
    assert await refused(raw_unsubscribe(stranger, subscription.id)) == NO_SUCH_SUBSCRIPTION
    publisher.publish("com.held", "still here")
    assert await events.done == [(("still here",), {})]
    assert [sorted(s.subscribers) for s in router.realm().broker.subscriptions()] == [[session_id(holder)]]
    await leave_all(holder, stranger, publisher)


@pytest_twisted.ensureDeferred
async def test_realms_do_not_share_subscriptions_or_events(tmp_path):
    """The same topic in two realms is two subscriptions: an event published in one realm never reaches the other."""
    text = listener("anon", ("websocket",)) + realm("realm1", {"anonymous": ALLOW_ALL}) + realm(
        "realm2", {"anonymous": ALLOW_ALL})
    running = await start_router(text, tmp_path)
    try:
        where = target(running, "anon", "websocket")
        in_realm1, publisher = await connect(where, "realm1"), await connect(where, "realm1")
        in_realm2 = await connect(where, "realm2")
        events1, events2, marker2 = Collector(), Collector(), Collector()
        await in_realm1.subscribe(events1, "com.same")
        await in_realm2.subscribe(events2, "com.same")
        await in_realm2.subscribe(marker2, "com.marker")
        await publisher.publish("com.same", "realm1 only", options=ACK)
        assert await events1.done == [(("realm1 only",), {})]
        await in_realm2.publish("com.marker", "m", options=PublishOptions(exclude_me=False, acknowledge=True))
        await marker2.done
        assert events2.events == []
        assert [s.uri for s in running.realm("realm2").broker.subscriptions()] == ["com.same", "com.marker"]
        assert [sorted(s.subscribers) for s in running.realm("realm1").broker.subscriptions()] == [
            [session_id(in_realm1)]
        ]
        await leave_all(in_realm1, publisher, in_realm2)
    finally:
        await running.stop()


# -- 3. publisher exclusion --------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_publisher_is_excluded_by_default(router):
    """A subscribed publisher does not get its own event by default; another subscriber does."""
    publisher, other = await join(router, 2)
    got = await published_then_marker(publisher, [publisher, other], "com.excl", PublishOptions(acknowledge=True))
    assert got == [[], [("payload",)]]
    await leave_all(publisher, other)


@pytest_twisted.ensureDeferred
async def test_publisher_receives_its_own_event_with_exclude_me_false(router):
    """With exclude_me=False the subscribed publisher gets its own event too."""
    publisher, other = await join(router, 2)
    got = await published_then_marker(publisher, [publisher, other], "com.incl", PublishOptions(exclude_me=False))
    assert got == [[("payload",)], [("payload",)]]
    await leave_all(publisher, other)


# -- 4. black- and white-listing ---------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_exclude_and_eligible_by_session_id(router):
    """exclude / eligible take session ids; exclusion wins over eligibility; an empty eligible list reaches nobody."""
    a, b, c, publisher = await join(router, 4)
    subscribers = [a, b, c]
    ids = [session_id(s) for s in subscribers]
    cases = [
        (PublishOptions(exclude=[ids[0]]), [False, True, True]),
        (PublishOptions(eligible=[ids[0], ids[1]]), [True, True, False]),
        (PublishOptions(eligible=[ids[0], ids[1]], exclude=[ids[1]]), [True, False, False]),
        (PublishOptions(exclude=[ids[0], ids[1], ids[2]]), [False, False, False]),
        (PublishOptions(eligible=[]), [False, False, False]),
        (PublishOptions(eligible=[session_id(publisher)]), [False, False, False]),
    ]
    for n, (options, expected) in enumerate(cases):
        got = await published_then_marker(publisher, subscribers, f"com.sid.t{n}", options)
        assert got == [[("payload",)] if receives else [] for receives in expected], (n, options)
    await leave_all(*subscribers, publisher)


@pytest_twisted.ensureDeferred
async def test_eligible_does_not_override_publisher_exclusion(router):
    """A publisher listed in eligible still does not get its own event unless exclude_me=False."""
    publisher, other = await join(router, 2)
    me = session_id(publisher)
    got = await published_then_marker(publisher, [publisher, other], "com.elig.me", PublishOptions(eligible=[me]))
    assert got == [[], []]
    got = await published_then_marker(publisher, [publisher, other], "com.elig.me2",
                                      PublishOptions(eligible=[me], exclude_me=False))
    assert got == [[("payload",)], []]
    got = await published_then_marker(publisher, [publisher, other], "com.elig.me3",
                                      PublishOptions(exclude=[me], exclude_me=False))
    assert got == [[], [("payload",)]]
    await leave_all(publisher, other)


@pytest_twisted.ensureDeferred
async def test_exclude_and_eligible_by_authid(router):
    """exclude_authid / eligible_authid match the random authid anonymous sessions get in WELCOME."""
    a, b, c, publisher = await join(router, 4)
    subscribers = [a, b, c]
    authids = [s.welcome.authid for s in subscribers]
    assert len(set(authids)) == 3 and all(x.startswith("anonymous-") for x in authids)
    cases = [
        (PublishOptions(exclude_authid=[authids[1]]), [True, False, True]),
        (PublishOptions(eligible_authid=[authids[2]]), [False, False, True]),
        (PublishOptions(eligible_authid=[authids[0], authids[2]], exclude_authid=[authids[2]]), [True, False, False]),
        (PublishOptions(eligible_authid=authids, exclude=[session_id(a)]), [False, True, True]),
        (PublishOptions(eligible_authid=["anonymous"]), [False, False, False]),
    ]
    for n, (options, expected) in enumerate(cases):
        got = await published_then_marker(publisher, subscribers, f"com.aid.t{n}", options)
        assert got == [[("payload",)] if receives else [] for receives in expected], (n, options)
    await leave_all(*subscribers, publisher)


def two_role_config() -> str:
    """Listener "anon" gives role anonymous, listener "other" gives role other; both may do anything on realm1."""
    return (
        listener("anon", ("websocket",))
        + listener("other", ("websocket",), auth='anonymous = { role = "other" }')
        + realm("realm1", {"anonymous": ALLOW_ALL, "other": ALLOW_ALL})
    )


@pytest_twisted.ensureDeferred
async def test_exclude_and_eligible_by_authrole(tmp_path):
    """exclude_authrole / eligible_authrole select sessions by role; exclusion (any kind) wins over eligibility."""
    running = await start_router(two_role_config(), tmp_path)
    try:
        a = await connect(target(running, "anon", "websocket"))
        b = await connect(target(running, "other", "websocket"))
        c = await connect(target(running, "other", "websocket"))
        publisher = await connect(target(running, "anon", "websocket"))
        assert [s.welcome.authrole for s in (a, b, c, publisher)] == ["anonymous", "other", "other", "anonymous"]
        subscribers = [a, b, c]
        cases = [
            (PublishOptions(exclude_authrole=["other"]), [True, False, False]),
            (PublishOptions(eligible_authrole=["other"]), [False, True, True]),
            (PublishOptions(eligible_authrole=["anonymous", "other"], exclude_authrole=["other"]),
             [True, False, False]),
            (PublishOptions(eligible_authrole=["other"], exclude=[session_id(b)]), [False, False, True]),
            (PublishOptions(eligible_authrole=["other"], exclude_authid=[c.welcome.authid]), [False, True, False]),
            (PublishOptions(eligible=[session_id(a), session_id(b)], eligible_authrole=["other"]),
             [False, True, False]),
            (PublishOptions(eligible_authrole=["nobody"]), [False, False, False]),
        ]
        for n, (options, expected) in enumerate(cases):
            got = await published_then_marker(publisher, subscribers, f"com.role.t{n}", options)
            assert got == [[("payload",)] if receives else [] for receives in expected], (n, options)
        await leave_all(a, b, c, publisher)
    finally:
        await running.stop()


# -- 5. publisher identification ---------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_disclose_me_discloses_the_publisher(router):
    """A PUBLISH with disclose_me=true gives every EVENT the publisher's session id, authid and authrole."""
    subscriber, publisher = await join(router, 2)
    events = Collector()
    await subscriber.subscribe(events, "com.disclosed", options=DETAILS)
    await raw_publish(publisher, "com.disclosed", "hi", cls=DisclosingPublish)
    await events.done
    details = event_details(events)
    assert [(d.publisher, d.publisher_authid, d.publisher_authrole) for d in details] == [
        (session_id(publisher), publisher.welcome.authid, "anonymous")
    ]
    assert event_args(events) == [("hi",)]
    await leave_all(subscriber, publisher)


@pytest_twisted.ensureDeferred
async def test_publisher_is_not_disclosed_by_default(router):
    """Without disclose_me (and no disclosing rule) EVENT details carry no publisher, authid or authrole."""
    subscriber, publisher = await join(router, 2)
    events = Collector()
    await subscriber.subscribe(events, "com.hidden", options=DETAILS)
    await publisher.publish("com.hidden", "hi", options=ACK)
    await events.done
    assert [(d.publisher, d.publisher_authid, d.publisher_authrole) for d in event_details(events)] == [
        (None, None, None)
    ]
    await leave_all(subscriber, publisher)


@pytest_twisted.ensureDeferred
async def test_a_disclosing_permission_discloses_without_disclose_me(tmp_path):
    """A permission with disclose = true makes the router disclose the publisher even when it did not ask."""
    rules = ALLOW_ALL + "disclose = true\n"
    running = await start_router(listener("anon", ("websocket",)) + realm("realm1", {"anonymous": rules}), tmp_path)
    try:
        subscriber = await connect(target(running, "anon", "websocket"))
        publisher = await connect(target(running, "anon", "websocket"))
        events = Collector()
        await subscriber.subscribe(events, "com.audited", options=DETAILS)
        await publisher.publish("com.audited", "hi", options=ACK)
        await events.done
        assert [(d.publisher, d.publisher_authid, d.publisher_authrole) for d in event_details(events)] == [
            (session_id(publisher), publisher.welcome.authid, "anonymous")
        ]
        await leave_all(subscriber, publisher)
    finally:
        await running.stop()


# -- 6. forward_for ----------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_forward_for_from_a_client_is_stripped(router):
    """A client cannot pose as another: forward_for in its PUBLISH never reaches subscribers."""
    subscriber, publisher = await join(router, 2)
    inbound = record_inbound(subscriber)
    events = Collector()
    await subscriber.subscribe(events, "com.ff", options=DETAILS)
    forged = [{"session": 123, "authid": "admin", "authrole": "admin"}]
    await raw_publish(publisher, "com.ff", "hi", forward_for=forged)
    await events.done
    assert [(d.forward_for, d.publisher, d.publisher_authid) for d in event_details(events)] == [(None, None, None)]
    assert [m.forward_for for m in inbound if isinstance(m, message.Event)] == [None]
    await leave_all(subscriber, publisher)


@pytest_twisted.ensureDeferred
async def test_forward_for_does_not_change_the_disclosed_publisher(router):
    """With disclose_me and a forged forward_for, the disclosed publisher is the real session, not the forged one."""
    subscriber, publisher = await join(router, 2)
    events = Collector()
    await subscriber.subscribe(events, "com.ff2", options=DETAILS)
    forged = [{"session": 123, "authid": "admin", "authrole": "admin"}]
    await raw_publish(publisher, "com.ff2", "hi", cls=DisclosingPublish, forward_for=forged)
    await events.done
    assert [(d.publisher, d.publisher_authid, d.publisher_authrole, d.forward_for) for d in event_details(events)] == [
        (session_id(publisher), publisher.welcome.authid, "anonymous", None)
    ]
    await leave_all(subscriber, publisher)


# -- 7. acknowledge ----------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_acknowledged_publication_id_matches_the_event(router):
    """PUBLISHED carries the publication id that every subscriber (exact or pattern) sees in EventDetails;
    each publication gets its own id."""
    first, second, publisher = await join(router, 3)
    events1, events2 = Collector(expected=2), Collector(expected=2)
    await first.subscribe(events1, "com.ack", options=DETAILS)
    await second.subscribe(events2, "com.ac", options=SubscribeOptions(match="prefix", details=True))
    publication1 = await publisher.publish("com.ack", "x", options=ACK)
    publication2 = await publisher.publish("com.ack", "y", options=ACK)
    await defer.gatherResults([events1.done, events2.done])
    assert all(isinstance(p.id, int) and 1 <= p.id <= 2**53 for p in (publication1, publication2))
    assert publication1.id != publication2.id
    assert [d.publication for d in event_details(events1)] == [publication1.id, publication2.id]
    assert [d.publication for d in event_details(events2)] == [publication1.id, publication2.id]
    await leave_all(first, second, publisher)


@pytest_twisted.ensureDeferred
async def test_unacknowledged_publish_returns_none_and_gets_no_reply(router):
    """Without acknowledge, publish() returns None and the router sends no PUBLISHED."""
    subscriber, publisher = await join(router, 2)
    inbound = record_inbound(publisher)
    events = Collector()
    await subscriber.subscribe(events, "com.noack")
    assert publisher.publish("com.noack", "x") is None
    await events.done
    await publisher.publish("com.noack", "marker", options=ACK)  # its PUBLISHED comes after any for the first
    assert [type(m).__name__ for m in inbound] == ["Published"]
    await leave_all(subscriber, publisher)


# -- 8. unsubscribe ----------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_no_events_after_unsubscribe(router):
    """After UNSUBSCRIBED no more events arrive for that subscription; the broker forgets it."""
    subscriber, publisher = await join(router, 2)
    events, marker = Collector(expected=1), Collector()
    subscription = await subscriber.subscribe(events, "com.unsub")
    await subscriber.subscribe(marker, "com.unsub.marker")
    publisher.publish("com.unsub", "before")
    await events.done
    await subscription.unsubscribe()
    assert [s.uri for s in router.realm().broker.subscriptions()] == ["com.unsub.marker"]
    publisher.publish("com.unsub", "after")
    publisher.publish("com.unsub.marker", "marker")
    await marker.done
    assert event_args(events) == [("before",)]
    await leave_all(subscriber, publisher)


@pytest_twisted.ensureDeferred
async def test_unsubscribing_twice_is_no_such_subscription(router):
    """A second UNSUBSCRIBE for the same id gets ERROR wamp.error.no_such_subscription; the session stays usable.

    Autobahn refuses the second unsubscribe locally ("subscription no longer active"), so it is sent raw.
    """
    (session,) = await join(router, 1)
    subscription = await session.subscribe(Collector(), "com.twice")
    await subscription.unsubscribe()
    with pytest.raises(Exception, match="no longer active"):
        subscription.unsubscribe()
    assert await refused(raw_unsubscribe(session, subscription.id)) == NO_SUCH_SUBSCRIPTION
    assert await refused(raw_unsubscribe(session, 12345)) == NO_SUCH_SUBSCRIPTION
    own = Collector()
    await session.subscribe(own, "com.twice.after")
    await session.publish("com.twice.after", 1, options=PublishOptions(exclude_me=False, acknowledge=True))
    assert await own.done == [((1,), {})]
    await leave_all(session)


# -- 9. cleanup when a session goes ------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_leaving_removes_every_subscription_of_the_session(router):
    """GOODBYE removes the session and all its subscriptions (exact, prefix, wildcard) from the realm."""
    (subscriber,) = await join(router, 1)
    await subscriber.subscribe(Collector(), "com.gone")
    await subscriber.subscribe(Collector(), "com.gone.", options=SubscribeOptions(match="prefix"))
    await subscriber.subscribe(Collector(), "com..gone", options=SubscribeOptions(match="wildcard"))
    assert len(router.realm().broker.subscriptions()) == 3
    sid = session_id(subscriber)
    await leave(subscriber)
    assert router.realm().broker.subscriptions() == []
    assert router.realm().broker.subscriptions_of(sid) == []
    assert sid not in router.realm().sessions


@pytest_twisted.ensureDeferred
async def test_leaving_keeps_shared_subscriptions_of_others(router):
    """When one of two holders of a subscription leaves, the subscription stays, held by the other only."""
    stays, goes, publisher = await join(router, 3)
    events = Collector()
    subscription = await stays.subscribe(events, "com.kept")
    await goes.subscribe(Collector(), "com.kept")
    await leave(goes)
    assert [(s.id, sorted(s.subscribers)) for s in router.realm().broker.subscriptions()] == [
        (subscription.id, [session_id(stays)])
    ]
    publisher.publish("com.kept", "x")
    assert await events.done == [(("x",), {})]
    await leave_all(stays, publisher)


@pytest_twisted.ensureDeferred
async def test_dropped_connection_removes_session_and_subscriptions(router):
    """A subscriber whose TCP connection is aborted (no GOODBYE) is removed with all its subscriptions."""
    subscriber, other, publisher = await join(router, 3)
    await subscriber.subscribe(Collector(), "com.drop")
    await subscriber.subscribe(Collector(), "com.drop.", options=SubscribeOptions(match="prefix"))
    kept = Collector()
    await other.subscribe(kept, "com.other")
    sid = session_id(subscriber)
    subscriber._transport.transport.abortConnection()
    await subscriber.on_gone
    await eventually(lambda: sid not in router.realm().sessions, "the router forgot the aborted session")
    assert [s.uri for s in router.realm().broker.subscriptions()] == ["com.other"]
    assert router.realm().broker.subscriptions_of(sid) == []
    assert sorted(router.realm().sessions) == sorted([session_id(other), session_id(publisher)])
    await publisher.publish("com.drop", "nobody", options=ACK)  # publishing to the dead subscription's topic is fine
    publisher.publish("com.other", "x")
    assert await kept.done == [(("x",), {})]
    await leave_all(other, publisher)


# -- 10. invalid URIs --------------------------------------------------------------------------------------------

INVALID_PUBLISH_TOPICS = {
    "reserved": "wamp.foo",
    "empty component": "com..bad",
    "bidi override": "com.evil\u202etxt",
    "600 ascii bytes": "com." + "a" * 596,
    "600 utf-8 bytes in 300 characters": "com." + "\u00e9" * 298,
    "trailing dot": "com.bad.",
    "NUL": "com.a\x00b",
    "zero-width space": "com.a\u200bb",
    "invisible filler": "com.\u3164",
    "whitespace": "com.bad topic",
    "empty": "",
}


@pytest.mark.parametrize("topic", list(INVALID_PUBLISH_TOPICS.values()), ids=list(INVALID_PUBLISH_TOPICS))
@pytest_twisted.ensureDeferred
async def test_publish_to_invalid_topic_is_invalid_uri(router, topic):
    """An acknowledged PUBLISH to an invalid topic gets ERROR wamp.error.invalid_uri; the session stays usable.

    Sent raw, so the router (not Autobahn's client-side check) is what refuses it.
    """
    subscriber, publisher = await join(router, 2)
    events = Collector()
    await subscriber.subscribe(events, "com.valid")
    assert await refused(raw_publish(publisher, topic, "x")) == INVALID_URI
    await publisher.publish("com.valid", "ok", options=ACK)
    assert await events.done == [(("ok",), {})]
    await leave_all(subscriber, publisher)


@pytest_twisted.ensureDeferred
async def test_uri_length_limit_is_512_bytes(router):
    """A 512-byte topic is accepted, a 513-byte one is invalid_uri."""
    (session,) = await join(router, 1)
    longest = "com." + "a" * 508
    publication = await session.publish(longest, options=ACK)
    assert isinstance(publication.id, int)
    assert await refused(raw_publish(session, longest + "b")) == INVALID_URI
    await leave_all(session)


INVALID_SUBSCRIPTIONS = {
    "exact with empty component": ("com..x", "exact"),
    "prefix with empty component": ("com..x", "prefix"),
    "exact with bidi override": ("com.\u202ex", "exact"),
    "600-byte prefix": ("com." + "a" * 596, "prefix"),
    "exact empty": ("", "exact"),
    "wildcard with #": ("com.#.x", "wildcard"),
    "prefix with zero-width space": ("com.\u200b", "prefix"),
}


@pytest.mark.parametrize("topic,match", list(INVALID_SUBSCRIPTIONS.values()), ids=list(INVALID_SUBSCRIPTIONS))
@pytest_twisted.ensureDeferred
async def test_subscribe_to_invalid_pattern_is_invalid_uri(router, topic, match):
    """SUBSCRIBE with a pattern invalid for its match policy gets invalid_uri; subscribing and publishing still work.

    Sent raw, so the router (not Autobahn's client-side check) is what refuses it.
    """
    (session,) = await join(router, 1)
    assert await refused(raw_subscribe(session, Collector(), topic, match)) == INVALID_URI
    assert router.realm().broker.subscriptions() == []
    own = Collector()
    await session.subscribe(own, "com.after.invalid")
    await session.publish("com.after.invalid", 1, options=PublishOptions(exclude_me=False, acknowledge=True))
    assert await own.done == [((1,), {})]
    await leave_all(session)


@pytest.mark.parametrize("topic", ["wamp.foo", "com.evil\u202etxt", "com..bad"], ids=["reserved", "bidi", "empty-part"])
@pytest_twisted.ensureDeferred
async def test_refused_unacknowledged_publish_is_dropped_silently(router, topic):
    """An unacknowledged PUBLISH to an invalid topic gets no reply at all (WAMP: ERROR only if acknowledge=true),
    so the Autobahn publisher stays connected and its next publish works."""
    subscriber, publisher = await join(router, 2)
    inbound = record_inbound(publisher)
    events = Collector()
    await subscriber.subscribe(events, "com.valid")
    assert raw_publish(publisher, topic, "x", acknowledge=None) is None
    assert await _publish_or_gone(publisher, "com.valid") == "published"
    assert await events.done == [(("ok",), {})]
    assert [type(m).__name__ for m in inbound] == ["Published"]
    await leave_all(subscriber, publisher)


async def _publish_or_gone(session, topic: str) -> str:
    """Publish with acknowledge: 'published' when PUBLISHED arrives, 'gone' if the connection is lost first."""
    if not session.is_attached():
        return "gone"
    outcome = defer.Deferred()

    def settle(result, verdict):
        if not outcome.called:
            outcome.callback(verdict if verdict else f"failed: {result}")
        return result

    reply = session.publish(topic, "ok", options=ACK)
    reply.addBoth(lambda result: settle(result, "published" if hasattr(result, "id") else None))
    reply.addErrback(lambda failure: None)
    session.on_gone.addBoth(settle, "gone")
    return await outcome


# -- 11. authorization -------------------------------------------------------------------------------------------

RESTRICTED = """
[[realms.roles.permissions]]
uri = "com.read."
match = "prefix"
allow = ["subscribe"]

[[realms.roles.permissions]]
uri = "com.write.x"
match = "exact"
allow = ["publish"]
"""


def restricted_config(rules: str = RESTRICTED) -> str:
    """Listener "anon": role anonymous with `rules`; listener "admin": role other, allowed everything."""
    return (
        listener("anon", ("websocket",))
        + listener("admin", ("websocket",), auth='anonymous = { role = "other" }')
        + realm("realm1", {"anonymous": rules, "other": ALLOW_ALL})
    )


@pytest_twisted.ensureDeferred
async def test_authorization_by_static_rules(tmp_path):
    """Role anonymous may subscribe under prefix "com.read." and publish exactly "com.write.x", nothing else;
    a refused PUBLISH reaches no subscriber."""
    running = await start_router(restricted_config(), tmp_path)
    try:
        session = await connect(target(running, "anon", "websocket"))
        watcher = await connect(target(running, "admin", "websocket"))
        refused_topic, allowed_topic = Collector(), Collector()
        await watcher.subscribe(refused_topic, "com.read.x")
        await watcher.subscribe(allowed_topic, "com.write.x")
        assert await refused(session.subscribe(Collector(), "com.other")) == NOT_AUTHORIZED
        assert await refused(session.subscribe(Collector(), "com.write.x")) == NOT_AUTHORIZED
        assert await refused(session.publish("com.read.x", "no", options=ACK)) == NOT_AUTHORIZED
        assert await refused(session.publish("com.write.x.y", options=ACK)) == NOT_AUTHORIZED
        assert await refused(session.publish("com.write", options=ACK)) == NOT_AUTHORIZED
        own = Collector()
        await session.subscribe(own, "com.read.x")
        publication = await session.publish("com.write.x", "yes", options=ACK)
        assert isinstance(publication.id, int)
        assert await allowed_topic.done == [(("yes",), {})]  # the marker: same publisher, after the refused one
        assert refused_topic.events == []
        assert sorted((s.uri, len(s.subscribers)) for s in running.realm().broker.subscriptions()) == [
            ("com.read.x", 2), ("com.write.x", 1)
        ]
        await leave_all(session, watcher)
    finally:
        await running.stop()


def router_subscription_uris(running) -> list:
    return sorted(s.uri for s in running.realm().broker.subscriptions())


@pytest_twisted.ensureDeferred
async def test_pattern_subscriptions_need_a_rule_covering_every_match(tmp_path):
    """A prefix or wildcard subscription broader than the rules ("com.", "com.read", "com..x") is not_authorized;
    ones inside the granted prefix ("com.read.sub.", "com.read..x") are allowed and deliver."""
    # The exact rules also allow subscribe: a pattern covering a topic whose own rule withholds subscribe is refused.
    rules = RESTRICTED + '\n[[realms.roles.permissions]]\nuri = "com.read.x"\nmatch = "exact"\n'
    rules += 'allow = ["publish", "subscribe"]\n'
    rules += '\n[[realms.roles.permissions]]\nuri = "com.read.sub.y"\nmatch = "exact"\nallow = ["publish", "subscribe"]\n'
    running = await start_router(listener("anon", ("websocket",)) + realm("realm1", {"anonymous": rules}), tmp_path)
    try:
        session = await connect(target(running, "anon", "websocket"))
        for pattern, match in (("com.", "prefix"), ("com.read", "prefix"), ("", "prefix"), ("com..x", "wildcard"),
                               ("com.rea..x", "wildcard"), (".read.x", "wildcard")):
            options = SubscribeOptions(match=match)
            assert await refused(session.subscribe(Collector(), pattern, options=options)) == NOT_AUTHORIZED, pattern
        by_prefix, by_wildcard = Collector(), Collector()
        await session.subscribe(by_prefix, "com.read.sub.", options=SubscribeOptions(match="prefix"))
        await session.subscribe(by_wildcard, "com.read..y", options=SubscribeOptions(match="wildcard"))
        assert router_subscription_uris(running) == ["com.read..y", "com.read.sub."]
        await session.publish("com.read.sub.y", "deep", options=PublishOptions(exclude_me=False, acknowledge=True))
        assert await by_prefix.done == [(("deep",), {})]
        assert await by_wildcard.done == [(("deep",), {})]
        await leave_all(session)
    finally:
        await running.stop()


@pytest_twisted.ensureDeferred
async def test_a_role_without_rules_may_do_nothing(tmp_path):
    """A role defined with no permissions is denied every subscribe and publish (fail closed)."""
    running = await start_router(listener("anon", ("websocket",)) + realm("realm1", {"anonymous": ""}), tmp_path)
    try:
        session = await connect(target(running, "anon", "websocket"))
        assert await refused(session.subscribe(Collector(), "com.a")) == NOT_AUTHORIZED
        assert await refused(session.publish("com.a", options=ACK)) == NOT_AUTHORIZED
        await leave_all(session)
    finally:
        await running.stop()


PRIVATE_CARVE_OUT = RESTRICTED + """
[[realms.roles.permissions]]
uri = "com.read.private."
match = "prefix"
allow = []
"""


@pytest.mark.parametrize("pattern,match", [("com.read.", "prefix"), ("com.read..x", "wildcard")])
@pytest_twisted.ensureDeferred
async def test_pattern_subscription_cannot_reach_topics_a_more_specific_rule_denies(tmp_path, pattern, match):
    """When "com.read." may be subscribed but the more specific "com.read.private." may not, no subscription of
    that role (exact or pattern) receives events published on "com.read.private.x". Either refusing the pattern
    subscription or not delivering those events satisfies this."""
    running = await start_router(restricted_config(PRIVATE_CARVE_OUT), tmp_path)
    try:
        session = await connect(target(running, "anon", "websocket"))
        publisher = await connect(target(running, "admin", "websocket"))
        assert await refused(session.subscribe(Collector(), "com.read.private.x")) == NOT_AUTHORIZED
        leaked, marker = Collector(), Collector()
        await session.subscribe(marker, "com.read.open")
        try:
            await session.subscribe(leaked, pattern, options=SubscribeOptions(match=match))
        except ApplicationError as e:
            assert e.error == NOT_AUTHORIZED
        await publisher.publish("com.read.private.x", "secret", options=ACK)
        await publisher.publish("com.read.open", "marker", options=ACK)
        await marker.done
        assert leaked.events == []
        await leave_all(session, publisher)
    finally:
        await running.stop()


@pytest_twisted.ensureDeferred
async def test_unauthorized_unacknowledged_publish_is_dropped_silently(tmp_path):
    """An unacknowledged PUBLISH the authorizer refuses gets no reply, so the Autobahn publisher stays connected."""
    running = await start_router(restricted_config(), tmp_path)
    try:
        session = await connect(target(running, "anon", "websocket"))
        inbound = record_inbound(session)
        session.publish("com.read.x", "not allowed")
        assert await _publish_or_gone(session, "com.write.x") == "published"
        assert [type(m).__name__ for m in inbound] == ["Published"]
        await leave_all(session)
    finally:
        await running.stop()


# -- 12. strict URIs ---------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_strict_realm_refuses_loose_uris(tmp_path):
    """In a realm with uri_check = "strict", "com.Example" and "com.ex-ample" are invalid_uri; "com.example" works."""
    text = listener("anon", ("websocket",)) + realm("realm1", {"anonymous": ALLOW_ALL}, 'uri_check = "strict"')
    running = await start_router(text, tmp_path)
    try:
        session = await connect(target(running, "anon", "websocket"))
        assert await refused(session.publish("com.Example", options=ACK)) == INVALID_URI
        assert await refused(session.publish("com.ex-ample", options=ACK)) == INVALID_URI
        assert await refused(session.subscribe(Collector(), "com.Example")) == INVALID_URI
        own = Collector()
        await session.subscribe(own, "com.example")
        await session.publish("com.example", 1, options=PublishOptions(exclude_me=False, acknowledge=True))
        assert await own.done == [((1,), {})]
        await leave_all(session)
    finally:
        await running.stop()


@pytest_twisted.ensureDeferred
async def test_loose_realm_accepts_what_strict_refuses(router):
    """The default (loose) realm accepts "com.Example" and "com.ex-ample"."""
    subscriber, publisher = await join(router, 2)
    events = Collector(expected=2)
    await subscriber.subscribe(events, "com.", options=SubscribeOptions(match="prefix"))
    await publisher.publish("com.Example", 1, options=ACK)
    await publisher.publish("com.ex-ample", 2, options=ACK)
    assert await events.done == [((1,), {}), ((2,), {})]
    await leave_all(subscriber, publisher)


# -- 13. payload transparency ------------------------------------------------------------------------------------

PAYLOAD_ARGS = (
    {"nested": [1, [2, [3, {"deep": [None, True, False]}]]], "empty": {}, "list": []},
    "unicode: h\u00e9llo \u4e16\u754c \U0001f600 \u2028",
    2**53,
    -(2**53),
    0,
    1.5,
    -0.25,
    1e300,
    None,
    True,
    False,
    b"\x00\x01binary\xff",
    "",
)
PAYLOAD_KWARGS = {"k\u00eby": {"a": [1.25, "b", None]}, "bytes": b"\xde\xad\xbe\xef", "big": 2**53, "t": True}
SERIALIZER_PAIRS = [(p, s) for p in ("json", "msgpack", "cbor") for s in ("json", "msgpack", "cbor")]


@pytest.mark.parametrize("publisher_serializer,subscriber_serializer", SERIALIZER_PAIRS)
@pytest_twisted.ensureDeferred
async def test_payload_arrives_identical(router, publisher_serializer, subscriber_serializer):
    """Args and kwargs (nesting, unicode, 2**53, floats, None, booleans, bytes) arrive unchanged across serializers."""
    (subscriber,) = await join(router, 1, serializer=subscriber_serializer, transport="rawsocket")
    (publisher,) = await join(router, 1, serializer=publisher_serializer)
    events = Collector()
    await subscriber.subscribe(events, "com.payload")
    await publisher.publish("com.payload", *PAYLOAD_ARGS, options=ACK, **PAYLOAD_KWARGS)
    [(args, kwargs)] = await events.done
    assert args == PAYLOAD_ARGS
    assert kwargs == PAYLOAD_KWARGS
    assert [type(a) for a in args] == [type(a) for a in PAYLOAD_ARGS]
    assert type(kwargs["bytes"]) is bytes
    await leave_all(subscriber, publisher)
