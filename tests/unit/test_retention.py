"""Event retention in the broker: PUBLISH with `retain` keeps the topic's last event (bounded per realm by count and
estimated bytes, least recently retained forgotten first); SUBSCRIBE with `get_retained` delivers what its
subscription covers, honouring the original publish options at delivery time; WELCOME announces `event_retention`."""

from __future__ import annotations

import itertools

import pytest
from autobahn.wamp import message as wamp
from autobahn.wamp.role import RoleSubscriberFeatures
from autobahn.wamp.serializer import MsgPackObjectSerializer

from wampgate.config import LimitsConfig
from wampgate.core.broker import Broker
from wampgate.core.effects import Send
from wampgate.core.peer import Peer
from wampgate.core.realm import Realm, broker_limits
from wampgate.core.retention import ENTRY_OVERHEAD, RetainedEvent, estimated_size
from wampgate.uri import EXACT, PREFIX, WILDCARD, UriPolicy


def make_peer(session_id: int, authid: str = "user", authrole: str = "user") -> Peer:
    return Peer(session_id, "realm1", authid=authid, authrole=authrole, authmethod="anonymous", authprovider="static")


def make_broker(**limits) -> Broker:
    return Broker(UriPolicy(), itertools.count(1000).__next__, **broker_limits(LimitsConfig(**limits)))


PUBLISHER = make_peer(1, "pub", "publisher")
ALICE = make_peer(2, "alice", "user")
BOB = make_peer(3, "bob", "admin")


def publish(broker: Broker, topic: str, *args, peer: Peer = PUBLISHER, disclose: bool = False, **options):
    options.setdefault("retain", True)
    return broker.publish(peer, wamp.Publish(7, topic, args=list(args) or None, **options), disclose=disclose)


def subscribe(broker: Broker, peer: Peer, topic: str, match: str = EXACT, get_retained: bool = True):
    """(subscription id, the retained EVENTs sent to `peer` after SUBSCRIBED)."""
    effects = broker.subscribe(peer, wamp.Subscribe(5, topic, match=match, get_retained=get_retained))
    sends = [e for e in effects if isinstance(e, Send) and peer in e.recipients]
    assert isinstance(sends[0].message, wamp.Subscribed)
    for send in sends[1:]:
        assert list(send.recipients) == [peer]
    return sends[0].message.subscription, [send.message for send in sends[1:]]


def retained_args(broker: Broker, peer: Peer, topic: str, match: str = EXACT) -> list:
    return [event.args for event in subscribe(broker, peer, topic, match)[1]]


def test_a_retained_event_is_delivered_to_a_later_subscriber_marked_retained():
    """A retaining PUBLISH with nobody subscribed is kept; a later SUBSCRIBE with get_retained gets SUBSCRIBED, then
    one EVENT on its subscription with the original publication id, args and kwargs, `retained` true and no
    publisher (the publication was not disclosed)."""
    broker = make_broker()
    assert publish(broker, "com.t", 1, kwargs={"k": "v"}, acknowledge=True)[0].message.publication == 1000
    subscription, [event] = subscribe(broker, ALICE, "com.t")
    assert (event.subscription, event.publication, event.args, event.kwargs) == (subscription, 1000, [1], {"k": "v"})
    assert event.retained is True and event.publisher is None and event.topic is None
    assert len(broker.retained) == 1


def test_no_retained_event_without_get_retained_or_without_retain():
    """A SUBSCRIBE without get_retained gets only SUBSCRIBED; a PUBLISH without retain keeps nothing and leaves
    the topic's retained event as it was."""
    broker = make_broker()
    publish(broker, "com.t", "kept")
    assert subscribe(broker, ALICE, "com.t", get_retained=False)[1] == []
    publish(broker, "com.t", "live", retain=False)
    publish(broker, "com.other", "live", retain=None)
    assert retained_args(broker, BOB, "com.t") == [["kept"]]
    assert broker.retained.get("com.other") is None and len(broker.retained) == 1


def test_each_retaining_publish_replaces_the_last_one_an_empty_one_too():
    """The topic keeps only its last retained event; a retaining PUBLISH without args or kwargs is an event too
    and replaces it."""
    broker = make_broker()
    publish(broker, "com.t", "first")
    publish(broker, "com.t", "second")
    assert retained_args(broker, ALICE, "com.t") == [["second"]]
    publish(broker, "com.t")
    [event] = subscribe(broker, BOB, "com.t")[1]
    assert (event.args, event.kwargs, event.retained) == (None, None, True)
    assert len(broker.retained) == 1


def test_pattern_subscriptions_get_every_retained_topic_they_match():
    """A prefix subscription gets the retained events of every topic under it, a wildcard one those its pattern
    matches, each with its concrete `topic`, least recently retained first; other topics are not sent."""
    broker = make_broker()
    for topic in ("com.a.x", "com.b.x", "com.a.y", "org.a.x"):
        publish(broker, topic, topic)
    prefix = subscribe(broker, ALICE, "com.a.", PREFIX)[1]
    assert [(e.topic, e.args) for e in prefix] == [("com.a.x", ["com.a.x"]), ("com.a.y", ["com.a.y"])]
    wildcard = subscribe(broker, ALICE, "com..x", WILDCARD)[1]
    assert [e.topic for e in wildcard] == ["com.a.x", "com.b.x"]
    assert all(e.retained for e in prefix + wildcard)


def test_subscribing_again_with_get_retained_delivers_again():
    """A session that subscribes again to the subscription it holds gets the same id and the retained event again."""
    broker = make_broker()
    publish(broker, "com.t", 1)
    first, [_] = subscribe(broker, ALICE, "com.t")
    again, [event] = subscribe(broker, ALICE, "com.t")
    assert again == first and event.subscription == first


def test_the_count_bound_forgets_the_topic_retained_least_recently():
    """Beyond max_retained_events the topic retained least recently goes; retaining on a topic again makes it the
    most recent."""
    broker = make_broker(max_retained_events=2)
    publish(broker, "com.a", "a")
    publish(broker, "com.b", "b")
    publish(broker, "com.a", "a2")  # com.b is now the least recently retained
    publish(broker, "com.c", "c")
    assert sorted(event.topic for event in broker.retained.matching("com.", PREFIX)) == ["com.a", "com.c"]
    assert len(broker.retained) == 2


def test_the_byte_bound_forgets_the_least_recent_and_refuses_one_too_large():
    """Beyond max_retained_bytes (estimated) the topic retained least recently goes; an event larger than the bound
    by itself is not retained and the topic's earlier event goes too (it is no longer the last)."""
    one = RetainedEvent("com.a", 1, args=["x" * 400], kwargs=None).size
    broker = make_broker(max_retained_bytes=2 * one + 10)
    publish(broker, "com.a", "x" * 400)
    publish(broker, "com.b", "x" * 400)
    assert broker.retained.bytes == 2 * one
    publish(broker, "com.c", "x" * 400)
    assert [event.topic for event in broker.retained.matching("", PREFIX)] == ["com.b", "com.c"]
    publish(broker, "com.c", "x" * 10_000)
    assert broker.retained.get("com.c") is None and len(broker.retained) == 1
    assert broker.retained.bytes == one


def test_a_reload_with_lower_bounds_evicts_at_once_and_zero_retains_nothing():
    """set_limits with a lower count evicts the least recent at once; max_retained_events 0 keeps nothing."""
    broker = make_broker()
    for topic in ("com.a", "com.b", "com.c"):
        publish(broker, topic, topic)
    broker.set_limits(**broker_limits(LimitsConfig(max_retained_events=1)))
    assert [event.topic for event in broker.retained.matching("", PREFIX)] == ["com.c"]
    broker.set_limits(**broker_limits(LimitsConfig(max_retained_events=0)))
    publish(broker, "com.d", "d")
    assert len(broker.retained) == 0 and broker.retained.bytes == 0


@pytest.mark.parametrize("options, reaches", [
    ({"exclude": [2]}, {3}),
    ({"eligible": [2]}, {2}),
    ({"exclude_authid": ["bob"]}, {2}),
    ({"eligible_authid": ["bob"]}, {3}),
    ({"exclude_authrole": ["user"]}, {3}),
    ({"eligible_authrole": ["user"]}, {2}),
    ({}, {2, 3}),
])
def test_exclusion_and_eligibility_are_checked_at_delivery(options, reaches):
    """The original PUBLISH's exclude / eligible lists (session id, authid, authrole) decide which later subscriber
    gets the retained event."""
    broker = make_broker()
    publish(broker, "com.t", 1, **options)
    got = {peer.session_id for peer in (ALICE, BOB) if subscribe(broker, peer, "com.t")[1]}
    assert got == reaches


def test_the_publisher_is_excluded_unless_it_published_with_exclude_me_false():
    """Publisher exclusion applies to the retained event: the publishing session gets it only with exclude_me
    false."""
    broker = make_broker()
    publish(broker, "com.t", 1)
    publish(broker, "com.u", 1, exclude_me=False)
    assert retained_args(broker, PUBLISHER, "com.t") == []
    assert retained_args(broker, PUBLISHER, "com.u") == [[1]]


def test_the_publisher_is_disclosed_only_when_the_publication_was():
    """A disclosed publication's retained event names the publisher (session, authid, authrole); an undisclosed
    one does not."""
    broker = make_broker()
    publish(broker, "com.d", 1, disclose=True)
    publish(broker, "com.n", 1)
    [disclosed] = subscribe(broker, ALICE, "com.d")[1]
    assert (disclosed.publisher, disclosed.publisher_authid, disclosed.publisher_authrole) == (1, "pub", "publisher")
    [hidden] = subscribe(broker, ALICE, "com.n")[1]
    assert (hidden.publisher, hidden.publisher_authid, hidden.publisher_authrole) == (None, None, None)


def test_a_passthrough_payload_is_retained_untouched():
    """A transparent payload (payload_transparency) is retained and delivered as it was, with its encoding
    fields, and counted by its length."""
    broker = make_broker()
    payload = b"\x01" * 100
    broker.publish(PUBLISHER, wamp.Publish(7, "com.t", payload=payload, enc_algo="cryptobox", enc_key="k",
                                           enc_serializer="json", retain=True))
    [event] = subscribe(broker, ALICE, "com.t")[1]
    assert (event.payload, event.enc_algo, event.enc_key, event.enc_serializer) == (payload, "cryptobox", "k", "json")
    assert broker.retained.get("com.t").size >= ENTRY_OVERHEAD + 100


def test_the_size_estimate_counts_strings_numbers_and_containers():
    """Strings count by UTF-8 length, numbers 9 bytes, containers and items at least one each."""
    assert estimated_size("é") == 4
    assert estimated_size([1, "ab"]) == (2 + 2) + 9 + 4
    assert estimated_size({"k": None}) == (2 + 1) + 3 + 1


def make_realm() -> Realm:
    return Realm("realm1", UriPolicy(), itertools.count(1).__next__, lambda c: c[0], limits=LimitsConfig())


def test_welcome_announces_event_retention_to_a_client_that_announced_subscriber_features():
    """event_retention is announced to a client that announced a subscriber feature; a client with bare roles (or
    none given) is not told, and its MessagePack WELCOME stays within 512 bytes."""
    realm = make_realm()
    assert realm.router_roles({"subscriber": RoleSubscriberFeatures(pattern_based_subscription=True)})[
        "broker"].event_retention is True
    for client_roles in (None, {"subscriber": RoleSubscriberFeatures(), "publisher": None}):
        roles = realm.router_roles(client_roles)
        assert roles["broker"].event_retention is None
        welcome = wamp.Welcome(2**53, roles, realm="realm1", authid="anonymous-0123456789abcdef",
                               authrole="anonymous", authmethod="anonymous", authprovider="static")
        assert len(MsgPackObjectSerializer().serialize(welcome.marshal())) <= 512


def test_the_realm_passes_the_retention_limits_and_a_reload_applies_them():
    """The realm builds its broker with [limits] max_retained_events / max_retained_bytes and update_limits lowers
    them live."""
    realm = Realm("realm1", UriPolicy(), itertools.count(1).__next__, lambda c: c[0],
                  limits=LimitsConfig(max_retained_events=3, max_retained_bytes=5000))
    assert (realm.broker.retained.max_events, realm.broker.retained.max_bytes) == (3, 5000)
    realm.update_limits(LimitsConfig(max_retained_events=1, max_retained_bytes=100))
    assert (realm.broker.retained.max_events, realm.broker.retained.max_bytes) == (1, 100)
