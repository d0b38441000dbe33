"""The cap on distinct wildcard shapes: the broker and the dealer refuse a SUBSCRIBE / REGISTER that would add a
shape beyond `[limits] max_wildcard_shapes` with an ERROR, the realm passes the key in and applies a reload's value."""

from __future__ import annotations

import itertools

import pytest
from autobahn.wamp import message as wamp

from wampgate.config import LimitsConfig, load
from wampgate.core import errors
from wampgate.core.broker import Broker
from wampgate.core.dealer import Dealer
from wampgate.core.effects import Send
from wampgate.core.peer import Peer
from wampgate.core.realm import Realm, broker_limits, dealer_limits
from wampgate.uri import DEFAULT_MAX_WILDCARD_SHAPES, EXACT, PREFIX, WILDCARD, UriPolicy

CAP = 3
NEW_SHAPES = ["com.a.", "com..b", ".a.b", "com.a.b."]  # four distinct shapes; the last one is over the cap
SAME_SHAPE_AS_FIRST = "org.z."


def make_peer(session_id: int) -> Peer:
    return Peer(session_id, "realm1", authid=f"user{session_id}", authrole="user", authmethod="anonymous",
                authprovider="static")


ALICE, BOB = make_peer(1), make_peer(2)


def only_message(effects) -> wamp.Message:
    sends = [effect for effect in effects if isinstance(effect, Send)]
    assert len(sends) == 1, effects
    return sends[0].message


def subscribe(broker: Broker, peer: Peer, topic: str, match: str = WILDCARD, request: int = 1) -> wamp.Message:
    return only_message(broker.subscribe(peer, wamp.Subscribe(request, topic, match=match)))


def register(dealer: Dealer, peer: Peer, procedure: str, match: str = WILDCARD, request: int = 1) -> wamp.Message:
    return only_message(dealer.register(peer, wamp.Register(request, procedure, match=match)))


def assert_too_many_patterns(message: wamp.Message, request_type: type, request: int) -> None:
    assert isinstance(message, wamp.Error), message
    assert (message.request_type, message.request, message.error) == (
        request_type.MESSAGE_TYPE, request, errors.TOO_MANY_PATTERNS)
    assert message.args == [f"at most {CAP} distinct wildcard shapes in this realm"]


def test_broker_refuses_a_subscription_that_would_add_a_shape_beyond_the_cap():
    """At the cap, a wildcard SUBSCRIBE of a new shape gets ERROR wampgate.error.too_many_patterns (with its
    request id) and creates nothing, not even a meta event; patterns of a held shape, exact and prefix
    subscriptions still succeed; an UNSUBSCRIBE that deletes a shape makes room again."""
    changes = []
    broker = Broker(UriPolicy(), itertools.count(100).__next__, **broker_limits(LimitsConfig(max_wildcard_shapes=CAP)),
                    on_change=lambda *change: changes.append(change) or [])
    ids = [subscribe(broker, ALICE, topic, request=n).subscription for n, topic in enumerate(NEW_SHAPES[:CAP])]
    seen = len(changes)
    assert_too_many_patterns(subscribe(broker, BOB, NEW_SHAPES[CAP], request=9), wamp.Subscribe, 9)
    assert (broker.wildcard_shapes(), len(broker.subscriptions()), len(changes)) == (CAP, CAP, seen)
    assert broker.find(NEW_SHAPES[CAP], WILDCARD) is None and broker.subscriptions_of(BOB.session_id) == []

    assert isinstance(subscribe(broker, BOB, SAME_SHAPE_AS_FIRST), wamp.Subscribed)
    assert isinstance(subscribe(broker, BOB, NEW_SHAPES[0]), wamp.Subscribed)  # joins a held pattern
    assert isinstance(subscribe(broker, BOB, NEW_SHAPES[CAP], EXACT), wamp.Subscribed)
    assert isinstance(subscribe(broker, BOB, NEW_SHAPES[CAP], PREFIX), wamp.Subscribed)
    assert broker.wildcard_shapes() == CAP

    broker.unsubscribe(ALICE, wamp.Unsubscribe(20, ids[1]))
    assert isinstance(subscribe(broker, BOB, NEW_SHAPES[CAP]), wamp.Subscribed)
    assert broker.wildcard_shapes() == CAP


def test_dealer_refuses_a_registration_that_would_add_a_shape_beyond_the_cap():
    """At the cap, a wildcard REGISTER of a new shape gets ERROR wampgate.error.too_many_patterns and creates
    nothing; a pattern of a held shape and exact registrations still succeed; leaving frees the shapes."""
    dealer = Dealer(UriPolicy(), itertools.count(100).__next__, choose=lambda callees: callees[0],
                    **dealer_limits(LimitsConfig(max_wildcard_shapes=CAP)))
    for n, procedure in enumerate(NEW_SHAPES[:CAP]):
        assert isinstance(register(dealer, ALICE, procedure, request=n), wamp.Registered)
    assert_too_many_patterns(register(dealer, BOB, NEW_SHAPES[CAP], request=9), wamp.Register, 9)
    assert (dealer.wildcard_shapes(), len(dealer.registrations())) == (CAP, CAP)
    assert dealer.find(NEW_SHAPES[CAP], WILDCARD) is None and dealer.registrations_of(BOB.session_id) == []

    assert isinstance(register(dealer, BOB, SAME_SHAPE_AS_FIRST), wamp.Registered)
    assert isinstance(register(dealer, BOB, "com.a.b.c", EXACT, request=2), wamp.Registered)
    dealer.remove_session(ALICE)
    dealer.remove_session(BOB)
    assert dealer.wildcard_shapes() == 0 and dealer.table_sizes()["index"] == 0


def test_realm_passes_the_cap_in_and_a_reload_changes_it():
    """The realm builds its broker and dealer with [limits] max_wildcard_shapes; update_limits (a reload) lowers
    it for new shapes only (the shapes held stay) and raising it admits new shapes again."""
    realm = Realm("realm1", UriPolicy(), itertools.count(100).__next__, lambda callees: callees[0],
                  limits=LimitsConfig(max_wildcard_shapes=CAP))
    realm.join(ALICE)
    for n, topic in enumerate(NEW_SHAPES[:CAP]):
        assert isinstance(subscribe(realm.broker, ALICE, topic, request=n), wamp.Subscribed)
        assert isinstance(register(realm.dealer, ALICE, topic, request=n), wamp.Registered)
    assert_too_many_patterns(subscribe(realm.broker, ALICE, NEW_SHAPES[CAP], request=5), wamp.Subscribe, 5)
    assert_too_many_patterns(register(realm.dealer, ALICE, NEW_SHAPES[CAP], request=5), wamp.Register, 5)

    realm.update_limits(LimitsConfig(max_wildcard_shapes=1))
    assert (realm.broker.wildcard_shapes(), realm.dealer.wildcard_shapes()) == (CAP, CAP)
    refused = subscribe(realm.broker, ALICE, NEW_SHAPES[CAP], request=6)
    assert (refused.error, refused.args) == (errors.TOO_MANY_PATTERNS, ["at most 1 distinct wildcard shapes in "
                                                                        "this realm"])
    realm.update_limits(LimitsConfig(max_wildcard_shapes=CAP + 1))
    assert isinstance(subscribe(realm.broker, ALICE, NEW_SHAPES[CAP], request=7), wamp.Subscribed)
    assert isinstance(register(realm.dealer, ALICE, NEW_SHAPES[CAP], request=7), wamp.Registered)
    realm.leave(ALICE)
    assert (realm.broker.wildcard_shapes(), realm.dealer.wildcard_shapes()) == (0, 0)


@pytest.mark.parametrize("limits, expected", [("", DEFAULT_MAX_WILDCARD_SHAPES), ("max_wildcard_shapes = 7", 7)])
def test_config_key_reaches_the_realm_limits(tmp_path, limits, expected):
    """[limits] max_wildcard_shapes (default 1000) is read from the file and handed to every realm."""
    path = tmp_path / "router.toml"
    path.write_text(f"[limits]\n{limits}\n"
                    '[[listeners]]\nendpoint = "tcp:0:interface=127.0.0.1"\n[listeners.auth]\n'
                    'anonymous = { role = "anonymous" }\n'
                    '[[realms]]\nname = "realm1"\n[[realms.roles]]\nname = "anonymous"\n')
    config = load(path)
    assert DEFAULT_MAX_WILDCARD_SHAPES == 1000
    assert config.limits.max_wildcard_shapes == expected
