"""Session testaments in the sans-I/O core (`wampgate.core.testaments` through `wampgate.core.realm`): adding and
flushing, which scopes a leave publishes (lost vs GOODBYE), their order, the publish options and disclosure applied
through the broker, the argument checks and the per-session bounds, and the WELCOME announcement.

Effects are compared through `marshal()` (Autobahn's messages do not compare payloads in `==`).
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from autobahn.wamp import message as wamp
from autobahn.wamp.role import RoleCalleeFeatures, RoleCallerFeatures, RoleSubscriberFeatures

from wampgate.config import LimitsConfig
from wampgate.core import errors
from wampgate.core.effects import Send
from wampgate.core.peer import Peer
from wampgate.core.realm import Realm
from wampgate.core.testaments import ADD_TESTAMENT, FLUSH_TESTAMENTS
from wampgate.uri import UriPolicy

CALL = wamp.Call.MESSAGE_TYPE
TOPIC = "com.example.presence"


def make_peer(session_id: int, authid: str, authrole: str = "user") -> Peer:
    roles = {"caller": RoleCallerFeatures(), "callee": RoleCalleeFeatures(), "subscriber": RoleSubscriberFeatures()}
    return Peer(session_id, "realm1", authid=authid, authrole=authrole, authmethod="anonymous",
                authprovider="static", roles=roles)


ALICE = make_peer(1, "alice")
BOB = make_peer(2, "bob")
CAROL = make_peer(3, "carol", "guest")


@pytest.fixture
def realm() -> Realm:
    """realm1 with ALICE, BOB and CAROL joined; BOB and CAROL subscribe to TOPIC (subscription id 1)."""
    realm = Realm("realm1", UriPolicy(), itertools.count(1).__next__, lambda c: c[0],
                  limits=dataclasses.replace(LimitsConfig(), max_testaments_per_session=3, max_testament_bytes=512))
    for peer in (ALICE, BOB, CAROL):
        realm.join(peer)
    realm.receive(BOB, wamp.Subscribe(1, TOPIC))
    realm.receive(CAROL, wamp.Subscribe(1, TOPIC))
    return realm


def call(realm: Realm, peer: Peer, procedure: str, *args, disclose: bool = False, **kwargs) -> list:
    """Check, then route, as the I/O layer does: the marshalled messages sent, and to whom (session ids)."""
    msg = wamp.Call(7, procedure, args=list(args), kwargs=kwargs or None)
    effects = realm.check(peer, msg)
    if effects is None:
        effects = realm.receive(peer, msg, disclose=disclose)
    return sent(effects)


def sent(effects: list) -> list:
    return [([p.session_id for p in e.recipients], e.message.marshal()) for e in effects if type(e) is Send]


def events(effects: list) -> list:
    """(receivers, args, kwargs, details) of every EVENT sent."""
    return [(to, m[4] if len(m) > 4 else None, m[5] if len(m) > 5 else None, m[3])
            for to, m in sent(effects) if m[0] == wamp.Event.MESSAGE_TYPE]


def error_of(answer: list) -> str:
    [(_, message)] = answer
    assert message[0] == wamp.Error.MESSAGE_TYPE and message[1] == CALL, message
    return message[4]


def test_a_lost_session_publishes_its_testaments_in_order_then_forgets_them(realm):
    """Testaments are not published when added (RESULT with no value); when the session is lost (no GOODBYE) the
    detached ones go first, then the destroyed ones, each in the order added, as events to the topic's subscribers;
    then the session holds none."""
    assert call(realm, ALICE, ADD_TESTAMENT, TOPIC, ["gone-1"], {}) == [([1], [wamp.Result.MESSAGE_TYPE, 7, {}])]
    call(realm, ALICE, ADD_TESTAMENT, TOPIC, ["left"], {"who": "alice"}, scope="detached")
    call(realm, ALICE, ADD_TESTAMENT, TOPIC, ["gone-2"], None, None, "destroyed")
    published = events(realm.leave(ALICE))
    assert [(to, args, kwargs) for to, args, kwargs, _ in published] == [
        ([2, 3], ["left"], {"who": "alice"}), ([2, 3], ["gone-1"], None), ([2, 3], ["gone-2"], None)]
    assert all(details == {} for *_, details in published)  # no publisher disclosed unless asked
    assert realm.testaments.held(ALICE.session_id) == [] and realm.testaments.sessions_holding() == 0


def test_every_leave_publishes_both_scopes_detached_first(realm):
    """A session that leaves (its own GOODBYE included: the core cannot tell, and Crossbar publishes both) publishes
    its `detached` testaments, then its `destroyed` ones."""
    call(realm, ALICE, ADD_TESTAMENT, TOPIC, ["destroyed"], {})
    call(realm, ALICE, ADD_TESTAMENT, TOPIC, ["detached"], {}, scope="detached")
    assert [args for _, args, _, _ in events(realm.leave(ALICE))] == [["detached"], ["destroyed"]]


def test_flush_removes_one_scope_and_answers_how_many(realm):
    """flush_testaments(scope) forgets that scope's testaments only and answers their number; the default scope is
    `destroyed`; the other scope is still published."""
    call(realm, ALICE, ADD_TESTAMENT, TOPIC, ["a"], {})
    call(realm, ALICE, ADD_TESTAMENT, TOPIC, ["b"], {})
    call(realm, ALICE, ADD_TESTAMENT, TOPIC, ["c"], {}, scope="detached")
    assert call(realm, ALICE, FLUSH_TESTAMENTS) == [([1], [wamp.Result.MESSAGE_TYPE, 7, {}, [2]])]
    assert call(realm, ALICE, FLUSH_TESTAMENTS, scope="destroyed")[0][1][3] == [0]
    assert [args for _, args, _, _ in events(realm.leave(ALICE))] == [["c"]]


def test_publish_options_and_disclosure_apply_through_the_broker(realm):
    """A testament's exclusion options are honoured when it is published (CAROL excluded by role), and the publisher
    is disclosed when its publish permission said so (`disclose` at add time) or when it asked with disclose_me."""
    call(realm, ALICE, ADD_TESTAMENT, TOPIC, ["one"], {}, publish_options={"exclude_authrole": ["guest"]},
         disclose=True)
    call(realm, ALICE, ADD_TESTAMENT, TOPIC, ["two"], {}, publish_options={"disclose_me": True, "acknowledge": True})
    call(realm, ALICE, ADD_TESTAMENT, TOPIC, ["three"], {}, publish_options={"eligible": [3], "exclude_me": False})
    disclosed = {"publisher": 1, "publisher_authid": "alice", "publisher_authrole": "user"}
    assert events(realm.leave(ALICE)) == [
        ([2], ["one"], None, disclosed), ([2, 3], ["two"], None, disclosed), ([3], ["three"], None, {})]


def test_nobody_subscribed_costs_nothing_and_the_leaver_is_not_sent_its_own(realm):
    """A testament on a topic nobody subscribes to sends nothing; a session subscribed to its own testament's topic
    is not sent it (its subscriptions are gone first)."""
    call(realm, BOB, ADD_TESTAMENT, "com.example.nobody", ["x"], {})
    call(realm, BOB, ADD_TESTAMENT, TOPIC, ["bob left"], {})
    assert [(to, args) for to, args, _, _ in events(realm.leave(BOB))] == [([3], ["bob left"])]


@pytest.mark.parametrize("args, kwargs, uri", [
    ((), {}, errors.INVALID_ARGUMENT),
    ((42, [], {}), {}, errors.INVALID_ARGUMENT),
    (("com..bad", [], {}), {}, errors.INVALID_URI),
    (("wamp.session.on_leave", [], {}), {}, errors.INVALID_URI),
    ((TOPIC, "not a list", {}), {}, errors.INVALID_ARGUMENT),
    ((TOPIC, [], ["not a dict"]), {}, errors.INVALID_ARGUMENT),
    ((TOPIC, [], {}), {"scope": "forever"}, errors.INVALID_ARGUMENT),
    ((TOPIC, [], {}, None, "destroyed"), {"scope": "destroyed"}, errors.INVALID_ARGUMENT),
    ((TOPIC, [], {}), {"publish_options": {"retain": True}}, errors.INVALID_ARGUMENT),
    ((TOPIC, [], {}), {"publish_options": {"exclude": ["x"]}}, errors.INVALID_ARGUMENT),
    ((TOPIC, [], {}), {"publish_options": {"disclose_me": 1}}, errors.INVALID_ARGUMENT),
    ((TOPIC, [], {}), {"other": 1}, errors.INVALID_ARGUMENT),
    ((TOPIC, [], {}, None, "destroyed", "extra"), {}, errors.INVALID_ARGUMENT),
])
def test_invalid_arguments_are_refused_and_nothing_is_stored(realm, args, kwargs, uri):
    """Wrong types, unknown keywords or options, a scope other than the two, an argument given twice: ERROR
    wamp.error.invalid_argument; an invalid or reserved topic: wamp.error.invalid_uri. Nothing is stored."""
    assert error_of(call(realm, ALICE, ADD_TESTAMENT, *args, **kwargs)) == uri
    assert realm.testaments.held(ALICE.session_id) == []


def test_flush_checks_its_scope(realm):
    """flush_testaments with an unknown scope or an extra argument is wamp.error.invalid_argument."""
    assert error_of(call(realm, ALICE, FLUSH_TESTAMENTS, scope="nope")) == errors.INVALID_ARGUMENT
    assert error_of(call(realm, ALICE, FLUSH_TESTAMENTS, "destroyed", "more")) == errors.INVALID_ARGUMENT


def test_the_per_session_bounds(realm):
    """At most max_testaments_per_session (3 here, both scopes together) per session, each within
    max_testament_bytes (512 here): beyond, wampgate.error.too_many_testaments / testament_too_large; another
    session has its own allowance; a flush makes room again."""
    assert error_of(call(realm, ALICE, ADD_TESTAMENT, TOPIC, ["x" * 600], {})) == errors.TESTAMENT_TOO_LARGE
    for n in range(3):
        call(realm, ALICE, ADD_TESTAMENT, TOPIC, [n], {}, scope="detached" if n else "destroyed")
    assert error_of(call(realm, ALICE, ADD_TESTAMENT, TOPIC, [3], {})) == errors.TOO_MANY_TESTAMENTS
    assert len(realm.testaments.held(ALICE.session_id)) == 3
    assert call(realm, BOB, ADD_TESTAMENT, TOPIC, [0], {})[0][1][0] == wamp.Result.MESSAGE_TYPE
    call(realm, ALICE, FLUSH_TESTAMENTS)
    assert call(realm, ALICE, ADD_TESTAMENT, TOPIC, [4], {})[0][1][0] == wamp.Result.MESSAGE_TYPE


def test_zero_turns_testaments_off(realm):
    """max_testaments_per_session = 0 (here by a reload's update_limits): every add is too_many_testaments."""
    realm.update_limits(dataclasses.replace(LimitsConfig(), max_testaments_per_session=0))
    assert error_of(call(realm, ALICE, ADD_TESTAMENT, TOPIC, [], {})) == errors.TOO_MANY_TESTAMENTS


def test_welcome_announces_testament_meta_api_with_the_revocation_features():
    """The dealer announces testament_meta_api to a client that announced a revocation feature (as Autobahn's
    clients do), and not to one that announced none, whose WELCOME must stay within 512 bytes."""
    realm = Realm("realm1", UriPolicy(), itertools.count(1).__next__, lambda c: c[0], limits=LimitsConfig())
    assert realm.router_roles({"callee": RoleCalleeFeatures(registration_revocation=True)})[
        "dealer"].testament_meta_api is True
    assert realm.router_roles({"caller": RoleCallerFeatures()})["dealer"].testament_meta_api is None
    assert realm.router_roles(None)["dealer"].testament_meta_api is None
