"""Revocation and trusted calls in the sans-I/O core: `Broker.revoke_subscription`, `Dealer.revoke_registration`
(what a reload that withdraws a permission does to live grants), `Dealer.call_trusted` (the router's own calls to a
dynamic backend) and the revocation features `Realm.router_roles` announces in WELCOME.

Autobahn's message classes do not compare their payload in `==`, so messages are compared through `marshal()`: the
exact list that would go on the wire.
"""

from __future__ import annotations

import itertools

import pytest
from autobahn.wamp import message as wamp
from autobahn.wamp.role import RoleCalleeFeatures, RoleCallerFeatures, RoleSubscriberFeatures
from autobahn.wamp.serializer import MsgPackObjectSerializer

from wampgate.config import LimitsConfig
from wampgate.core import errors
from wampgate.core.broker import Broker
from wampgate.core.dealer import Dealer
from wampgate.core.effects import Send
from wampgate.core.peer import Peer
from wampgate.core.realm import Realm
from wampgate.core.realm import broker_limits, dealer_limits
from wampgate.uri import EXACT, PREFIX, WILDCARD, UriPolicy

REVOKED = errors.AUTHORIZATION_REVOKED


def make_peer(session_id: int, *, authrole: str = "user", revocation: bool = True) -> Peer:
    """A session announcing (or not) subscription_revocation and registration_revocation in HELLO."""
    flag = True if revocation else None
    roles = {
        "subscriber": RoleSubscriberFeatures(subscription_revocation=flag, pattern_based_subscription=True),
        "callee": RoleCalleeFeatures(registration_revocation=flag, call_canceling=True),
        "caller": RoleCallerFeatures(call_canceling=True),
    }
    return Peer(session_id, "realm1", authid=f"user{session_id}", authrole=authrole, authmethod="ticket",
                authprovider="static", roles=roles)


ALICE = make_peer(1)
BOB = make_peer(2)
PLAIN = make_peer(3, revocation=False)
PUBLISHER = make_peer(9)


def wire(effects) -> list:
    """Each Send as (recipient session ids, the message as marshalled for the wire); other effects as they are."""
    return [("send", tuple(p.session_id for p in e.recipients), e.message.marshal()) if isinstance(e, Send) else e
            for e in effects]


class Changes:
    """An on_change hook that records what it hears (the meta API's view)."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, int, int]] = []

    def __call__(self, change, session_id, grant) -> list:
        self.heard.append((change, session_id, grant.id))
        return []


def make_broker(changes=None) -> Broker:
    return Broker(UriPolicy(), itertools.count(1000).__next__, **broker_limits(LimitsConfig()),
                  on_change=changes or Changes())


def make_dealer(changes=None) -> Dealer:
    return Dealer(UriPolicy(), itertools.count(5000).__next__, choose=lambda c: c[0], **dealer_limits(LimitsConfig()),
                  on_change=changes or Changes())


def subscribe(broker: Broker, peer: Peer, topic: str, match: str = EXACT) -> int:
    (reply, *_) = broker.subscribe(peer, wamp.Subscribe(1, topic, match=match))
    return reply.message.subscription


def register(dealer: Dealer, peer: Peer, procedure: str, match: str = EXACT, invoke: str | None = None) -> int:
    (reply, *_) = dealer.register(peer, wamp.Register(1, procedure, match=match, invoke=invoke))
    return reply.message.registration


def event_receivers(effects) -> set[int]:
    return {p.session_id for e in effects if isinstance(e.message, wamp.Event) for p in e.recipients}


# -- subscriptions -------------------------------------------------------------------------------------------------


def test_revoking_a_subscription_tells_a_subscriber_that_announced_the_feature():
    """The subscriber gets exactly [35, 0, {"subscription": id, "reason": "wamp.authorization.revoked"}], and the
    next publish on the topic reaches nobody."""
    broker = make_broker()
    sub = subscribe(broker, ALICE, "com.news")
    effects = broker.revoke_subscription(ALICE, sub, REVOKED)
    assert wire(effects) == [("send", (1,), [35, 0, {"subscription": sub, "reason": REVOKED}])]
    assert broker.publish(PUBLISHER, wamp.Publish(7, "com.news")) == []
    assert broker.subscription(sub) is None and broker.subscriptions_of(ALICE.session_id) == []


def test_a_subscriber_without_the_feature_is_not_sent_unsubscribed_but_receives_nothing_more():
    """The spec forbids UNSUBSCRIBED(0) to a subscriber that did not announce subscription_revocation: it is sent
    nothing at all, and is off the subscription all the same."""
    broker = make_broker()
    sub = subscribe(broker, PLAIN, "com.news")
    assert broker.revoke_subscription(PLAIN, sub, REVOKED) == []
    assert broker.publish(PUBLISHER, wamp.Publish(7, "com.news")) == []
    assert broker.subscriptions() == []


def test_revoking_one_subscriber_keeps_the_shared_subscription_for_the_others():
    """Alice and Bob share a prefix subscription; revoking Alice's leaves Bob receiving under the same id, and the
    meta API hears unsubscribe (not delete) for Alice, then unsubscribe and delete when Bob's goes too."""
    changes = Changes()
    broker = make_broker(changes)
    sub = subscribe(broker, ALICE, "com.", PREFIX)
    assert subscribe(broker, BOB, "com.", PREFIX) == sub
    changes.heard.clear()
    broker.revoke_subscription(ALICE, sub, REVOKED)
    assert event_receivers(broker.publish(PUBLISHER, wamp.Publish(7, "com.x"))) == {BOB.session_id}
    assert changes.heard == [("unsubscribe", ALICE.session_id, sub)]
    broker.revoke_subscription(BOB, sub, REVOKED)
    assert changes.heard[1:] == [("unsubscribe", BOB.session_id, sub), ("delete", BOB.session_id, sub)]
    assert len(broker._index) == 0  # white-box: nothing left behind in the URI index


def test_revoking_keeps_the_sessions_other_subscriptions():
    """Only the named subscription goes; the session's others keep receiving."""
    broker = make_broker()
    revoked, kept = subscribe(broker, ALICE, "com.secret"), subscribe(broker, ALICE, "com..status", WILDCARD)
    broker.revoke_subscription(ALICE, revoked, REVOKED)
    assert [s.id for s in broker.subscriptions_of(ALICE.session_id)] == [kept]
    assert event_receivers(broker.publish(PUBLISHER, wamp.Publish(7, "com.a.status"))) == {ALICE.session_id}


def test_revoking_a_subscription_the_session_does_not_hold_does_nothing():
    """An unknown id, another session's subscription, or one already revoked: no effects, nothing changes."""
    broker = make_broker()
    sub = subscribe(broker, ALICE, "com.news")
    assert broker.revoke_subscription(BOB, sub, REVOKED) == []
    assert broker.revoke_subscription(ALICE, 424242, REVOKED) == []
    assert broker.revoke_subscription(ALICE, sub, REVOKED) != []
    assert broker.revoke_subscription(ALICE, sub, REVOKED) == []
    assert broker.remove_session(ALICE) == []


# -- registrations -------------------------------------------------------------------------------------------------


def test_revoking_a_registration_tells_a_callee_that_announced_the_feature():
    """The callee gets exactly [67, 0, {"registration": id, "reason": ...}]; a caller then gets no_such_procedure."""
    dealer = make_dealer()
    reg = register(dealer, ALICE, "com.add")
    effects = dealer.revoke_registration(ALICE, reg, REVOKED)
    assert wire(effects) == [("send", (1,), [67, 0, {"registration": reg, "reason": REVOKED}])]
    (answer,) = dealer.call(BOB, wamp.Call(7, "com.add"))
    assert answer.message.error == errors.NO_SUCH_PROCEDURE
    assert dealer.table_sizes()["registrations"] == 0 and dealer.table_sizes()["callee_sessions"] == 0


def test_a_callee_without_the_feature_is_not_sent_unregistered():
    """A callee that did not announce registration_revocation is sent nothing; its registration is gone."""
    dealer = make_dealer()
    reg = register(dealer, PLAIN, "com.add")
    assert dealer.revoke_registration(PLAIN, reg, REVOKED) == []
    assert dealer.registrations() == []


def test_calls_already_sent_to_a_revoked_callee_finish_normally():
    """As after UNREGISTER, an invocation the callee already received is answered: its YIELD reaches the caller as
    RESULT; only new calls are refused."""
    dealer = make_dealer()
    reg = register(dealer, ALICE, "com.add")
    (invocation,) = dealer.call(BOB, wamp.Call(7, "com.add", args=[1, 2]))
    dealer.revoke_registration(ALICE, reg, REVOKED)
    (result,) = dealer.yield_(ALICE, wamp.Yield(invocation.message.request, args=[3]))
    assert wire([result]) == [("send", (2,), [wamp.Result.MESSAGE_TYPE, 7, {}, [3]])]
    assert dealer.table_sizes()["calls"] == 0


def test_revoking_one_callee_of_a_shared_registration_keeps_the_others_serving():
    """With a shared registration, calls go on to the remaining callee; the meta API hears unregister (no
    delete)."""
    changes = Changes()
    dealer = make_dealer(changes)
    reg = register(dealer, ALICE, "com.add", invoke="roundrobin")
    register(dealer, BOB, "com.add", invoke="roundrobin")
    changes.heard.clear()
    dealer.revoke_registration(ALICE, reg, REVOKED)
    assert changes.heard == [("unregister", ALICE.session_id, reg)]
    for request in (7, 8):
        (invocation,) = dealer.call(PUBLISHER, wamp.Call(request, "com.add"))
        assert invocation.recipients == (BOB,)


def test_revoking_a_registration_the_session_does_not_hold_does_nothing():
    """An unknown id, another session's registration, or one already revoked: no effects."""
    dealer = make_dealer()
    reg = register(dealer, ALICE, "com.add")
    assert dealer.revoke_registration(BOB, reg, REVOKED) == []
    assert dealer.revoke_registration(ALICE, 424242, REVOKED) == []
    assert dealer.revoke_registration(ALICE, reg, REVOKED) != []
    assert dealer.revoke_registration(ALICE, reg, REVOKED) == []


# -- the router's own calls ----------------------------------------------------------------------------------------

BACKEND = make_peer(20, authrole="backend")
INTRUDER = make_peer(21, authrole="user")
ROUTER = make_peer(99, authrole="wampgate.router")


def is_backend(peer: Peer) -> bool:
    return peer.authrole == "backend"


def trusted_call(dealer: Dealer, request: int = 7) -> list:
    return dealer.call_trusted(ROUTER, wamp.Call(request, "com.example.authenticate"), is_backend, now=1.0)


@pytest.mark.parametrize("uri,match", [("com.example.", PREFIX), ("", PREFIX), ("com.example.", WILDCARD),
                                       ("..", WILDCARD), ("com..authenticate", WILDCARD)])
def test_a_pattern_registration_never_answers_a_trusted_call(uri, match):
    """A prefix or wildcard registration that matches the procedure, even one held by the backend's own role, does
    not get the router's call: no INVOCATION, the router gets no_such_procedure, and no call is left pending."""
    dealer = make_dealer()
    register(dealer, BACKEND, uri, match)
    register(dealer, INTRUDER, "com.other")
    (answer,) = trusted_call(dealer)
    assert isinstance(answer.message, wamp.Error) and answer.message.error == errors.NO_SUCH_PROCEDURE
    assert answer.recipients == (ROUTER,)
    assert dealer.pending_calls() == []


def test_an_exact_registration_by_another_role_never_answers_a_trusted_call():
    """The exact registration of the procedure by a session without the backend's role: refused the same way."""
    dealer = make_dealer()
    register(dealer, INTRUDER, "com.example.authenticate")
    (answer,) = trusted_call(dealer)
    assert answer.message.error == errors.NO_SUCH_PROCEDURE
    assert dealer.pending_calls() == []


def test_a_shared_registration_with_an_untrusted_callee_refuses_a_trusted_call():
    """A shared exact registration that another role joined answers none of the router's calls (whichever callee
    the invoke policy would pick): the mix is refused as a whole."""
    dealer = make_dealer()
    register(dealer, BACKEND, "com.example.authenticate", invoke="roundrobin")
    register(dealer, INTRUDER, "com.example.authenticate", invoke="roundrobin")
    for request in (7, 8, 9):
        (answer,) = trusted_call(dealer, request)
        assert answer.message.error == errors.NO_SUCH_PROCEDURE


def test_the_exact_registration_of_the_backend_answers_a_trusted_call():
    """The backend's own exact registration gets the INVOCATION, even next to a more general pattern registration
    of another role, and its YIELD reaches the router as RESULT."""
    dealer = make_dealer()
    register(dealer, INTRUDER, "com.example.", PREFIX)
    reg = register(dealer, BACKEND, "com.example.authenticate")
    (invocation,) = trusted_call(dealer)
    assert invocation.recipients == (BACKEND,) and invocation.message.registration == reg
    (result,) = dealer.yield_(BACKEND, wamp.Yield(invocation.message.request, args=["user"]))
    assert result.recipients == (ROUTER,) and result.message.args == ["user"]


# -- WELCOME -------------------------------------------------------------------------------------------------------


def make_realm() -> Realm:
    return Realm("realm1", UriPolicy(), itertools.count(1).__next__, lambda c: c[0], limits=LimitsConfig())


def test_welcome_announces_the_revocation_features_a_client_announced():
    """Given the client's HELLO roles, the broker announces subscription_revocation and the dealer
    registration_revocation exactly when the client announced them (as subscriber / callee), next to the features
    that were there before; each variant is built once."""
    realm = make_realm()
    full = realm.router_roles(ALICE.roles)
    assert (full["broker"].subscription_revocation, full["dealer"].registration_revocation) == (True, True)
    assert full["broker"].subscription_meta_api is True and full["dealer"].registration_meta_api is True
    subscriber_only = realm.router_roles({"subscriber": RoleSubscriberFeatures(subscription_revocation=True)})
    assert (subscriber_only["broker"].subscription_revocation, subscriber_only["dealer"].registration_revocation) == (
        True, None)
    assert realm.router_roles(ALICE.roles) is full


@pytest.mark.parametrize("client_roles", [None, {"subscriber": RoleSubscriberFeatures(), "publisher": None}])
def test_a_client_that_announced_no_revocation_keeps_a_welcome_within_512_bytes(client_roles):
    """A client that announced neither feature (or whose roles are not given) is not told of them, and its
    MessagePack WELCOME (anonymous authid) stays within the 512 bytes of the smallest RawSocket receive limit."""
    roles = make_realm().router_roles(client_roles)
    assert (roles["broker"].subscription_revocation, roles["dealer"].registration_revocation) == (None, None)
    welcome = wamp.Welcome(2**53, roles, realm="realm1", authid="anonymous-0123456789abcdef", authrole="anonymous",
                           authmethod="anonymous", authprovider="static")
    assert len(MsgPackObjectSerializer().serialize(welcome.marshal())) <= 512
