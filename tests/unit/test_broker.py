"""The pub/sub broker: SUBSCRIBE / UNSUBSCRIBE / PUBLISH in, effects out."""

from __future__ import annotations

import itertools

import pytest
from autobahn.wamp import message as wamp
from hypothesis import given, settings
from hypothesis import strategies as st

from wampgate.config import LimitsConfig
from wampgate.core import errors
from wampgate.core.broker import Broker
from wampgate.core.effects import Send
from wampgate.core.peer import Peer
from wampgate.core.realm import broker_limits
from wampgate.uri import EXACT, MATCH_POLICIES, PREFIX, WILDCARD, UriPolicy, pattern_matches


def make_peer(session_id: int, authid: str, authrole: str) -> Peer:
    return Peer(session_id, "realm1", authid=authid, authrole=authrole, authmethod="anonymous", authprovider="static")


def make_broker(strict: bool = False, ids=None) -> Broker:
    return Broker(UriPolicy(strict=strict), ids or itertools.count(1000).__next__, **broker_limits(LimitsConfig()))


ALICE = make_peer(1, "alice", "user")
BOB = make_peer(2, "bob", "user")
CAROL = make_peer(3, "carol", "admin")
ALICE_ADMIN = make_peer(4, "alice", "admin")
DAVE = make_peer(5, "dave", "guest")
ERIN = make_peer(9, "erin", "user")  # publisher, not subscribed unless a test says so
SUBSCRIBERS = [ALICE, BOB, CAROL, ALICE_ADMIN, DAVE]


def only_send(effects) -> Send:
    assert len(effects) == 1
    (effect,) = effects
    assert isinstance(effect, Send)
    return effect


def subscribe(broker: Broker, peer: Peer, topic: str, match: str = EXACT, request: int = 1) -> int:
    send = only_send(broker.subscribe(peer, wamp.Subscribe(request, topic, match=match)))
    assert isinstance(send.message, wamp.Subscribed)
    return send.message.subscription


def publish(broker: Broker, peer: Peer, topic: str = "com.t", *, disclose: bool = False, **options):
    return broker.publish(peer, wamp.Publish(7, topic, **options), disclose=disclose)


def events_by_subscription(effects) -> dict[int, tuple[set[int], wamp.Event]]:
    """{subscription id: (receiver session ids, the one Event)}; fails if a subscription got two EVENTs."""
    found: dict[int, tuple[set[int], wamp.Event]] = {}
    for effect in effects:
        assert isinstance(effect, Send)
        if isinstance(effect.message, wamp.Event):
            event = effect.message
            assert event.subscription not in found, "more than one EVENT for a subscription"
            receivers = [peer.session_id for peer in effect.recipients]
            assert len(receivers) == len(set(receivers)), "a receiver listed twice"
            assert receivers, "a Send with nobody to send to"
            found[event.subscription] = (set(receivers), event)
    return found


def receivers(effects) -> set[int]:
    return set().union(*(ids for ids, _ in events_by_subscription(effects).values()))


def assert_error(effects, peer: Peer, request_type: type, request: int, uri: str) -> None:
    send = only_send(effects)
    assert list(send.recipients) == [peer]
    error = send.message
    assert isinstance(error, wamp.Error)
    assert error.request_type == request_type.MESSAGE_TYPE
    assert error.request == request
    assert error.error == uri


# --------------------------------------------------------------------------------------------------------------
# subscribe / unsubscribe
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("match", MATCH_POLICIES)
def test_subscribe_replies_subscribed(match):
    """SUBSCRIBE is answered with SUBSCRIBED to the subscriber only, echoing the request id, and the
    subscription is recorded with its topic, match policy and subscriber."""
    broker = make_broker()
    topic = {EXACT: "com.t", PREFIX: "com.", WILDCARD: "com..t"}[match]
    send = only_send(broker.subscribe(ALICE, wamp.Subscribe(42, topic, match=match)))
    assert list(send.recipients) == [ALICE]
    assert isinstance(send.message, wamp.Subscribed)
    assert send.message.request == 42
    subscription = broker.subscription(send.message.subscription)
    assert subscription is not None
    assert (subscription.uri, subscription.match) == (topic, match)
    assert set(subscription.subscribers) == {ALICE.session_id}
    assert [s.id for s in broker.subscriptions_of(ALICE.session_id)] == [subscription.id]


def test_two_sessions_share_a_subscription():
    """Two sessions subscribing to the same (topic, match) get the same subscription id."""
    broker = make_broker()
    first = subscribe(broker, ALICE, "com.t")
    second = subscribe(broker, BOB, "com.t", request=2)
    assert first == second
    assert len(broker.subscriptions()) == 1
    assert set(broker.subscription(first).subscribers) == {1, 2}


def test_same_session_subscribing_twice_gets_same_id():
    """A session subscribing twice to one (topic, match) gets the same id and is recorded once."""
    broker = make_broker()
    first = subscribe(broker, ALICE, "com.t", request=1)
    second = subscribe(broker, ALICE, "com.t", request=2)
    assert first == second
    assert [s.id for s in broker.subscriptions_of(ALICE.session_id)] == [first]
    assert list(broker.subscription(first).subscribers) == [ALICE.session_id]
    assert len(receivers(publish(broker, ERIN))) == 1


def test_different_match_policy_is_a_different_subscription():
    """The same topic string under different match policies gives distinct subscriptions."""
    broker = make_broker()
    ids = {match: subscribe(broker, ALICE, "com.t", match) for match in MATCH_POLICIES}
    assert len(set(ids.values())) == 3
    assert len(broker.subscriptions()) == 3


def test_subscription_ids_in_use_are_never_reused():
    """A new subscription skips ids the id source returns again while they are still in use."""
    broker = make_broker(ids=iter([5, 5, 5, 6]).__next__)
    assert subscribe(broker, ALICE, "com.a") == 5
    assert subscribe(broker, ALICE, "com.b") == 6


def test_unsubscribe_replies_unsubscribed_and_keeps_others():
    """UNSUBSCRIBED echoes the request id; the subscription stays while another session holds it and goes when
    the last one leaves."""
    broker = make_broker()
    sub = subscribe(broker, ALICE, "com.t")
    subscribe(broker, BOB, "com.t")
    send = only_send(broker.unsubscribe(ALICE, wamp.Unsubscribe(11, sub)))
    assert list(send.recipients) == [ALICE]
    assert isinstance(send.message, wamp.Unsubscribed)
    assert send.message.request == 11
    assert broker.subscriptions_of(ALICE.session_id) == []
    assert set(broker.subscription(sub).subscribers) == {BOB.session_id}
    assert receivers(publish(broker, ERIN)) == {BOB.session_id}

    only_send(broker.unsubscribe(BOB, wamp.Unsubscribe(12, sub)))
    assert broker.subscription(sub) is None
    assert broker.subscriptions() == []
    assert publish(broker, ERIN) == []


def test_unsubscribe_unknown_is_an_error():
    """Unsubscribing an unknown id, somebody else's subscription, or twice answers ERROR
    wamp.error.no_such_subscription for request type 34 (UNSUBSCRIBE), and changes nothing."""
    broker = make_broker()
    assert wamp.Unsubscribe.MESSAGE_TYPE == 34
    assert_error(broker.unsubscribe(ALICE, wamp.Unsubscribe(5, 123456)), ALICE, wamp.Unsubscribe, 5,
                 "wamp.error.no_such_subscription")
    assert errors.NO_SUCH_SUBSCRIPTION == "wamp.error.no_such_subscription"

    sub = subscribe(broker, BOB, "com.t")
    assert_error(broker.unsubscribe(ALICE, wamp.Unsubscribe(6, sub)), ALICE, wamp.Unsubscribe, 6,
                 errors.NO_SUCH_SUBSCRIPTION)
    assert set(broker.subscription(sub).subscribers) == {BOB.session_id}

    only_send(broker.unsubscribe(BOB, wamp.Unsubscribe(7, sub)))
    assert_error(broker.unsubscribe(BOB, wamp.Unsubscribe(8, sub)), BOB, wamp.Unsubscribe, 8,
                 errors.NO_SUCH_SUBSCRIPTION)


# --------------------------------------------------------------------------------------------------------------
# publish: fan-out
# --------------------------------------------------------------------------------------------------------------

def test_one_event_per_subscription_shared_by_its_receivers():
    """PUBLISH yields one Send per matching subscription, carrying one Event object for all its receivers;
    non-matching subscriptions get nothing."""
    broker = make_broker()
    exact = subscribe(broker, ALICE, "com.a.b")
    subscribe(broker, BOB, "com.a.b")
    prefix = subscribe(broker, CAROL, "com.a", PREFIX)
    subscribe(broker, ALICE, "com.a", PREFIX)
    wildcard = subscribe(broker, DAVE, "com..b", WILDCARD)
    subscribe(broker, ALICE, "com.x.b")
    subscribe(broker, BOB, "org.", PREFIX)
    subscribe(broker, CAROL, "com..c", WILDCARD)

    effects = publish(broker, ERIN, "com.a.b", args=[1])
    sends = [e for e in effects if isinstance(e.message, wamp.Event)]
    assert len(sends) == 3
    found = events_by_subscription(effects)
    assert {sub: ids for sub, (ids, _) in found.items()} == {exact: {1, 2}, prefix: {1, 3}, wildcard: {5}}
    events = [send.message for send in sends]
    assert len({id(event) for event in events}) == 3  # distinct per subscription
    publications = {event.publication for event in events}
    assert len(publications) == 1
    for send in sends:
        assert send.message.subscription in found
    assert len(effects) == 3  # no PUBLISHED without acknowledge


def test_topic_in_event_only_for_pattern_subscriptions():
    """The concrete topic is in EVENT.Details for prefix and wildcard subscriptions, and absent for exact ones."""
    broker = make_broker()
    subs = {match: subscribe(broker, ALICE, topic, match)
            for match, topic in [(EXACT, "com.a.b"), (PREFIX, "com.a"), (WILDCARD, "com..b")]}
    found = events_by_subscription(publish(broker, ERIN, "com.a.b"))
    exact_event = found[subs[EXACT]][1]
    assert exact_event.topic is None
    assert "topic" not in exact_event.marshal()[3]
    for match in (PREFIX, WILDCARD):
        event = found[subs[match]][1]
        assert event.topic == "com.a.b"
        assert event.marshal()[3]["topic"] == "com.a.b"


def test_publisher_excluded_by_default():
    """The publisher does not receive its own event unless it sets exclude_me=False."""
    broker = make_broker()
    subscribe(broker, ALICE, "com.t")
    subscribe(broker, BOB, "com.t")
    subscribe(broker, ALICE, "com.", PREFIX)
    assert receivers(publish(broker, ALICE)) == {2}
    assert receivers(publish(broker, ALICE, exclude_me=True)) == {2}
    found = events_by_subscription(publish(broker, ALICE, exclude_me=False))
    assert sorted(ids for ids, _ in found.values()) == sorted([{1, 2}, {1}])


def test_only_subscriber_is_publisher_gives_no_effects():
    """A publication whose only subscriber is the excluded publisher produces no Send at all."""
    broker = make_broker()
    subscribe(broker, ALICE, "com.t")
    assert publish(broker, ALICE) == []


def test_acknowledge_replies_published_with_the_event_publication_id():
    """acknowledge=True adds PUBLISHED to the publisher, echoing the request and carrying the same
    publication id as the events; without it there is no PUBLISHED."""
    broker = make_broker()
    subscribe(broker, ALICE, "com.t")
    effects = publish(broker, ERIN, acknowledge=True)
    published = [e for e in effects if isinstance(e.message, wamp.Published)]
    assert len(published) == 1
    assert list(published[0].recipients) == [ERIN]
    assert published[0].message.request == 7
    (_, event), = events_by_subscription(effects).values()
    assert published[0].message.publication == event.publication
    assert not any(isinstance(e.message, wamp.Published) for e in publish(broker, ERIN))
    assert not any(isinstance(e.message, wamp.Published) for e in publish(broker, ERIN, acknowledge=False))


def test_acknowledge_without_subscribers():
    """A publication nobody receives is still acknowledged when asked."""
    broker = make_broker()
    send = only_send(publish(broker, ERIN, acknowledge=True))
    assert isinstance(send.message, wamp.Published)
    assert list(send.recipients) == [ERIN]


def test_args_and_kwargs_passed_through_untouched():
    """The event carries the publisher's args and kwargs objects themselves: no copy, no re-encoding."""
    broker = make_broker()
    subscribe(broker, ALICE, "com.t")
    subscribe(broker, BOB, "com.", PREFIX)
    args = [1, "two", {"three": [3]}]
    kwargs = {"k": ["v"], "n": None}
    found = events_by_subscription(publish(broker, ERIN, args=args, kwargs=kwargs))
    assert len(found) == 2
    for _, event in found.values():
        assert event.args is args
        assert event.kwargs is kwargs
    assert args == [1, "two", {"three": [3]}] and kwargs == {"k": ["v"], "n": None}


def test_a_transparent_payload_passes_through_untouched():
    """An end-to-end encrypted PUBLISH (payload + enc_algo / enc_key / enc_serializer, Autobahn's cryptobox form)
    becomes EVENTs, exact and pattern, carrying the same payload object and encoding options and no args/kwargs: the
    broker never looks inside."""
    broker = make_broker()
    subscribe(broker, ALICE, "com.t")
    subscribe(broker, BOB, "com.", PREFIX)
    payload = b"\x00opaque\xff"
    found = events_by_subscription(publish(broker, ERIN, payload=payload, enc_algo="cryptobox", enc_key="key-1",
                                           enc_serializer="msgpack"))
    assert len(found) == 2
    for _, event in found.values():
        assert event.payload is payload
        assert (event.enc_algo, event.enc_key, event.enc_serializer) == ("cryptobox", "key-1", "msgpack")
        assert event.args is None and event.kwargs is None
        assert event.marshal()[4] == payload  # on the wire in the payload's place, as Autobahn's subscribers read it


# --------------------------------------------------------------------------------------------------------------
# publish: black/white listing
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "options, expected",
    [
        ({}, {1, 2, 3, 4, 5}),
        ({"exclude": [2, 5]}, {1, 3, 4}),
        ({"exclude": [99]}, {1, 2, 3, 4, 5}),
        ({"eligible": [2, 3, 99]}, {2, 3}),
        ({"eligible": []}, set()),
        ({"exclude_authid": ["alice"]}, {2, 3, 5}),
        ({"eligible_authid": ["alice"]}, {1, 4}),
        ({"eligible_authid": ["nobody"]}, set()),
        ({"exclude_authrole": ["admin"]}, {1, 2, 5}),
        ({"eligible_authrole": ["admin", "guest"]}, {3, 4, 5}),
        # combinations: every condition must hold, and exclusion wins over eligibility
        ({"exclude": [1], "eligible": [1, 2]}, {2}),
        ({"exclude_authid": ["alice"], "eligible": [1, 4, 3]}, {3}),
        ({"exclude_authrole": ["user"], "eligible_authid": ["alice"]}, {4}),
        ({"exclude_authid": ["alice"], "eligible_authrole": ["admin"]}, {3}),
        ({"exclude_authrole": ["admin"], "eligible": [3, 4]}, set()),
        ({"eligible": [1, 2, 3], "eligible_authrole": ["user"]}, {1, 2}),
        ({"eligible_authid": ["alice", "bob"], "eligible_authrole": ["admin"]}, {4}),
        ({"eligible": [1, 2, 4], "eligible_authid": ["alice"], "eligible_authrole": ["admin"]}, {4}),
        ({"exclude": [3], "exclude_authid": ["bob"], "exclude_authrole": ["guest"]}, {1, 4}),
        ({"exclude": [1, 2, 3, 4, 5], "eligible": [1, 2, 3, 4, 5]}, set()),
    ],
    ids=repr,
)
def test_black_and_white_listing(options, expected):
    """Each of exclude / eligible / exclude_authid / eligible_authid / exclude_authrole / eligible_authrole
    narrows the receivers to exactly the sessions that pass every given condition."""
    broker = make_broker()
    for peer in SUBSCRIBERS:
        subscribe(broker, peer, "com.t")
        subscribe(broker, peer, "com.", PREFIX)
    found = events_by_subscription(publish(broker, ERIN, **options))
    for ids, _ in found.values():
        assert ids == expected
    assert len(found) == (2 if expected else 0)


@pytest.mark.parametrize(
    "options, expected",
    [
        ({"eligible": [1, 2]}, {2}),
        ({"eligible": [1, 2], "exclude_me": False}, {1, 2}),
        ({"exclude_me": False, "exclude": [1]}, {2, 3}),
        ({"exclude_me": False, "eligible_authid": ["bob"]}, {2}),
        ({"exclude_me": False, "exclude_authrole": ["user"]}, {3}),
        ({"exclude_authrole": ["admin"]}, {2}),
    ],
    ids=repr,
)
def test_listing_combined_with_publisher_exclusion(options, expected):
    """A subscribed publisher is left out by default even when eligible, and otherwise obeys the lists."""
    broker = make_broker()
    for peer in (ALICE, BOB, CAROL):
        subscribe(broker, peer, "com.t")
    assert receivers(publish(broker, ALICE, **options)) == expected


# --------------------------------------------------------------------------------------------------------------
# publish: identity disclosure and forward_for
# --------------------------------------------------------------------------------------------------------------

def test_disclose_puts_publisher_identity_into_event():
    """disclose=True sets publisher, publisher_authid and publisher_authrole from the publishing session."""
    broker = make_broker()
    subscribe(broker, ALICE, "com.t")
    (_, event), = events_by_subscription(publish(broker, ERIN, disclose=True)).values()
    assert (event.publisher, event.publisher_authid, event.publisher_authrole) == (9, "erin", "user")
    details = event.marshal()[3]
    assert (details["publisher"], details["publisher_authid"], details["publisher_authrole"]) == (9, "erin", "user")


def test_no_disclosure_by_default():
    """disclose=False (the default) leaves the publisher fields None and out of EVENT.Details."""
    broker = make_broker()
    subscribe(broker, ALICE, "com.t")
    for effects in (publish(broker, ERIN), publish(broker, ERIN, disclose=False)):
        (_, event), = events_by_subscription(effects).values()
        assert (event.publisher, event.publisher_authid, event.publisher_authrole) == (None, None, None)
        details = event.marshal()[3]
        assert not {"publisher", "publisher_authid", "publisher_authrole"} & set(details)


@pytest.mark.parametrize("disclose", [False, True])
def test_forward_for_never_reaches_the_event(disclose):
    """A forward_for chain in a client's PUBLISH is never copied into the EVENT: nobody poses as another."""
    broker = make_broker()
    subscribe(broker, ALICE, "com.t")
    subscribe(broker, BOB, "com.", PREFIX)
    forged = [{"session": 2, "authid": "bob", "authrole": "admin"}]
    found = events_by_subscription(publish(broker, ERIN, disclose=disclose, forward_for=forged))
    assert len(found) == 2
    for _, event in found.values():
        assert event.forward_for is None
        assert "forward_for" not in event.marshal()[3]
        if disclose:
            assert (event.publisher, event.publisher_authid) == (9, "erin")


# --------------------------------------------------------------------------------------------------------------
# validation before authorization
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "topic",
    ["wamp.foo", "wamp.session.on_join", "", "com..t", "com.t.", ".com", "com.a b", "com.a#b", "com.\u200bt",
     "com.\u202et", "com.\x00", "com.t\u2028", "a" * 513],
)
def test_check_publish_refuses_reserved_and_invalid_topics(topic):
    """PUBLISH to a 'wamp.' topic or to a topic that is not a valid exact URI is refused with ERROR
    wamp.error.invalid_uri for request type 16 (PUBLISH)."""
    broker = make_broker()
    assert_error(broker.check_publish(ALICE, wamp.Publish(3, topic, acknowledge=True)), ALICE, wamp.Publish, 3,
                 "wamp.error.invalid_uri")
    # Without acknowledge the spec sends no answer: refused, but silently.
    assert broker.check_publish(ALICE, wamp.Publish(4, topic)) == []


@pytest.mark.parametrize("topic", ["com.t", "com.example.topic", "wampx.t", "com.wamp.t"])
def test_check_publish_accepts_valid_topics(topic):
    """A valid, unreserved exact topic passes the check."""
    assert make_broker().check_publish(ALICE, wamp.Publish(3, topic)) is None


def test_check_publish_applies_strict_mode():
    """Under a strict policy, a topic that is only loosely valid is refused."""
    broker = make_broker(strict=True)
    assert_error(broker.check_publish(ALICE, wamp.Publish(3, "com.Example", acknowledge=True)), ALICE, wamp.Publish,
                 3, errors.INVALID_URI)
    assert broker.check_publish(ALICE, wamp.Publish(3, "com.example")) is None


@pytest.mark.parametrize(
    "topic, match",
    [
        ("com.", EXACT), ("", EXACT), ("com..t", EXACT),
        ("com..", PREFIX), (".com", PREFIX), ("com..t", PREFIX),
        ("com.a b", WILDCARD), ("com.#", WILDCARD), ("com..\u200b", WILDCARD),
        ("a" * 513, PREFIX),
    ],
)
def test_check_subscribe_refuses_invalid_pattern_for_its_match(topic, match):
    """SUBSCRIBE with a pattern invalid for its match policy is refused with ERROR wamp.error.invalid_uri for
    request type 32 (SUBSCRIBE)."""
    broker = make_broker()
    assert_error(broker.check_subscribe(ALICE, wamp.Subscribe(4, topic, match=match)), ALICE, wamp.Subscribe, 4,
                 "wamp.error.invalid_uri")


@pytest.mark.parametrize(
    "topic, match",
    [("com.t", EXACT), ("com.", PREFIX), ("", PREFIX), ("com..t", WILDCARD), ("wamp.session.on_join", EXACT)],
)
def test_check_subscribe_accepts_valid_patterns(topic, match):
    """Valid patterns pass, including router meta topics under 'wamp.' (reserved for publishing only)."""
    assert make_broker().check_subscribe(ALICE, wamp.Subscribe(4, topic, match=match)) is None


# --------------------------------------------------------------------------------------------------------------
# sessions leaving
# --------------------------------------------------------------------------------------------------------------

def test_remove_session_drops_its_subscriptions():
    """remove_session forgets every subscription of the session, deletes subscriptions left empty, and keeps
    shared ones for the remaining subscribers."""
    broker = make_broker()
    only_alice = [subscribe(broker, ALICE, topic, match) for topic, match in
                  [("com.a", EXACT), ("com.", PREFIX), ("com..c", WILDCARD), ("", PREFIX)]]
    shared = subscribe(broker, ALICE, "com.t")
    subscribe(broker, BOB, "com.t")

    assert broker.remove_session(ALICE) == []
    for sub in only_alice:
        assert broker.subscription(sub) is None
    assert [s.id for s in broker.subscriptions()] == [shared]
    assert set(broker.subscription(shared).subscribers) == {BOB.session_id}
    assert broker.subscriptions_of(ALICE.session_id) == []
    assert receivers(publish(broker, ERIN)) == {BOB.session_id}

    broker.remove_session(BOB)
    assert broker.subscriptions() == []
    assert len(broker._index) == 0  # white-box: nothing left behind in the URI index
    for topic in ("com.t", "com.a", "com.b.c", "x"):
        assert publish(broker, ERIN, topic) == []


def test_remove_session_is_idempotent():
    """Removing a session twice, or one that never subscribed, does nothing."""
    broker = make_broker()
    subscribe(broker, BOB, "com.t")
    assert broker.remove_session(ALICE) == []
    subscribe(broker, ALICE, "com.t")
    broker.remove_session(ALICE)
    assert broker.remove_session(ALICE) == []
    assert receivers(publish(broker, ERIN)) == {BOB.session_id}


def test_resubscribe_after_removal_works():
    """A topic whose subscription was deleted can be subscribed again and receives events."""
    broker = make_broker()
    subscribe(broker, ALICE, "com.", PREFIX)
    broker.remove_session(ALICE)
    sub = subscribe(broker, BOB, "com.", PREFIX)
    assert {s: ids for s, (ids, _) in events_by_subscription(publish(broker, ERIN)).items()} == {sub: {2}}


# --------------------------------------------------------------------------------------------------------------
# property: random histories against a model
# --------------------------------------------------------------------------------------------------------------

MODEL_PEERS = {
    1: make_peer(1, "alice", "user"),
    2: make_peer(2, "bob", "user"),
    3: make_peer(3, "alice", "admin"),
    4: make_peer(4, "carol", "guest"),
}
LOOSE = UriPolicy()

model_patterns = st.tuples(
    st.lists(st.sampled_from(["a", "b", ""]), min_size=1, max_size=3).map(".".join),
    st.sampled_from(MATCH_POLICIES),
).filter(lambda entry: LOOSE.problem(*entry) is None)
session_ids = st.sampled_from(sorted(MODEL_PEERS))
operations = st.one_of(
    st.tuples(st.just("subscribe"), session_ids, model_patterns),
    st.tuples(st.just("unsubscribe"), session_ids, st.integers(0, 5)),
    st.tuples(st.just("leave"), session_ids, st.none()),
)


def optional_subset(values):
    return st.one_of(st.none(), st.lists(st.sampled_from(values), unique=True, max_size=len(values)))


filters = st.fixed_dictionaries(
    {},
    optional={
        "exclude": optional_subset(sorted(MODEL_PEERS)),
        "eligible": optional_subset(sorted(MODEL_PEERS)),
        "exclude_authid": optional_subset(["alice", "bob", "carol"]),
        "eligible_authid": optional_subset(["alice", "bob", "carol"]),
        "exclude_authrole": optional_subset(["user", "admin", "guest"]),
        "eligible_authrole": optional_subset(["user", "admin", "guest"]),
        "exclude_me": st.sampled_from([None, True, False]),
    },
)


def admitted(peer: Peer, publisher: Peer, options: dict) -> bool:
    """The spec's rules, restated: every given list must admit the receiver; the publisher only on request."""
    if peer.session_id == publisher.session_id and options.get("exclude_me") is not False:
        return False
    checks = [("exclude", "eligible", peer.session_id), ("exclude_authid", "eligible_authid", peer.authid),
              ("exclude_authrole", "eligible_authrole", peer.authrole)]
    for exclude, eligible, value in checks:
        if options.get(exclude) is not None and value in options[exclude]:
            return False
        if options.get(eligible) is not None and value not in options[eligible]:
            return False
    return True


def apply(broker: Broker, model: dict, ids: dict, op) -> None:
    """Run one operation on the broker and the model, checking the broker's immediate answer."""
    kind, session, arg = op
    peer = MODEL_PEERS[session]
    if kind == "subscribe":
        sub = subscribe(broker, peer, *arg)
        assert ids.setdefault(arg, sub) == sub, "an existing (topic, match) must keep its id"
        model.setdefault(arg, set()).add(session)
    elif kind == "unsubscribe":
        mine = sorted(key for key, sessions in model.items() if session in sessions)
        if arg < len(mine):
            key = mine[arg]
            send = only_send(broker.unsubscribe(peer, wamp.Unsubscribe(1, ids[key])))
            assert isinstance(send.message, wamp.Unsubscribed)
            model[key].discard(session)
        else:
            others = [ids[key] for key in model if key not in mine]
            target = others[arg % len(others)] if others and arg % 2 else 987654321
            assert_error(broker.unsubscribe(peer, wamp.Unsubscribe(1, target)), peer, wamp.Unsubscribe, 1,
                         errors.NO_SUCH_SUBSCRIPTION)
    else:
        assert broker.remove_session(peer) == []
        for sessions in model.values():
            sessions.discard(session)
    for key in [key for key, sessions in model.items() if not sessions]:
        del model[key]
        del ids[key]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(operations, max_size=30),
    session_ids,
    st.lists(st.sampled_from(["a", "b", "ab"]), min_size=1, max_size=3).map(".".join),
    filters,
)
def test_random_histories_deliver_to_model_receivers(ops, publisher, topic, options):
    """After any subscribe / unsubscribe / leave history, a publish reaches exactly the sessions the model
    computes by brute force, grouped by the subscriptions the model says match, and the broker's bookkeeping
    (subscriptions, subscriptions_of) agrees with the model."""
    broker = make_broker()
    model: dict[tuple[str, str], set[int]] = {}
    ids: dict[tuple[str, str], int] = {}
    for op in ops:
        apply(broker, model, ids, op)

    assert {s.id: (s.uri, s.match) for s in broker.subscriptions()} == {sub: key for key, sub in ids.items()}
    for session in MODEL_PEERS:
        expected_ids = {ids[key] for key, sessions in model.items() if session in sessions}
        assert {s.id for s in broker.subscriptions_of(session)} == expected_ids

    publisher_peer = MODEL_PEERS[publisher]
    expected = {}
    for key, sessions in model.items():
        if pattern_matches(key[0], key[1], topic):
            chosen = {s for s in sessions if admitted(MODEL_PEERS[s], publisher_peer, options)}
            if chosen:
                expected[ids[key]] = chosen
    effects = publish(broker, publisher_peer, topic, **options)
    found = events_by_subscription(effects)
    assert {sub: ids_ for sub, (ids_, _) in found.items()} == expected
    assert len({event.publication for _, event in found.values()}) <= 1
