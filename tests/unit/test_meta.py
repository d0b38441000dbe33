"""The WAMP meta API in the sans-I/O core (`wampgate.core.meta` through `wampgate.core.realm`): procedures, their
argument checks and errors, the Kick effects of the kill procedures, and the meta events of sessions, subscriptions
and registrations, with exact ids from a deterministic id source.

Autobahn's message classes do not compare their payload in `==`, so effects are compared through `marshal()`: the
exact list that would go on the wire.
"""

from __future__ import annotations

import itertools

import pytest
from autobahn.wamp import message as wamp
from autobahn.wamp.role import RoleCalleeFeatures, RoleCallerFeatures
from hypothesis import given, settings
from hypothesis import strategies as st

from wampgate.config import LimitsConfig
from wampgate.core import errors
from wampgate.core.effects import Kick, Send
from wampgate.core.meta import NO_SUCH_SESSION, iso_8601
from wampgate.core.peer import Peer
from wampgate.core.realm import Realm
from wampgate.uri import EXACT, PREFIX, WILDCARD, UriPolicy

CALL = wamp.Call.MESSAGE_TYPE
FIRST_ID = 1000
T0 = 1_700_000_000.25  # the `now` given with SUBSCRIBE / REGISTER: 2023-11-14T22:13:20.250Z


# -- helpers -----------------------------------------------------------------------------------------------------


class Ids:
    """A deterministic id source that also tells how many ids were drawn."""

    def __init__(self) -> None:
        self._counter = itertools.count(FIRST_ID)
        self.drawn = 0

    def __call__(self) -> int:
        self.drawn += 1
        return next(self._counter)

    def peek(self) -> int:
        """The id the next draw returns."""
        return FIRST_ID + self.drawn


def make_peer(session_id: int, authid: str, authrole: str, *, authextra=None) -> Peer:
    roles = {"caller": RoleCallerFeatures(), "callee": RoleCalleeFeatures()}
    return Peer(session_id, "realm1", authid=authid, authrole=authrole, authmethod="ticket",
                authprovider="static", authextra=authextra, roles=roles)


ADMIN = make_peer(1, "root", "admin")
ALICE = make_peer(2, "alice", "user", authextra={"team": "blue"})
BOB = make_peer(3, "bob", "user")
ALICE2 = make_peer(4, "alice", "guest")


def details(peer: Peer) -> dict:
    return {"session": peer.session_id, "authid": peer.authid, "authrole": peer.authrole, "authmethod": "ticket",
            "authprovider": "static", "authextra": dict(peer.authextra)}


def first(candidates):
    return candidates[0]


@pytest.fixture
def ids() -> Ids:
    return Ids()


@pytest.fixture
def realm(ids) -> Realm:
    """realm1 with ADMIN, ALICE and BOB joined, in that order; nobody watches the meta topics yet."""
    realm = Realm("realm1", UriPolicy(), ids, first, limits=LimitsConfig())
    for peer in (ADMIN, ALICE, BOB):
        assert realm.join(peer) == []
    return realm


def wire(effects) -> list:
    """Effects with each Send as ("send", recipient ids, marshalled message) and each Kick as a tuple."""
    out = []
    for effect in effects:
        if isinstance(effect, Send):
            out.append(("send", tuple(p.session_id for p in effect.recipients), effect.message.marshal()))
        elif isinstance(effect, Kick):
            out.append(("kick", effect.peer.session_id, effect.reason, effect.message))
        else:
            out.append(effect)
    return out


def call(realm: Realm, peer: Peer, procedure: str, *args, request: int = 7, **kwargs) -> list:
    """CALL a procedure through the realm, as the session does once the call is authorized; the effects on the wire."""
    msg = wamp.Call(request, procedure, args=list(args), kwargs=kwargs or None)
    assert realm.check(peer, msg) is None
    return wire(realm.receive(peer, msg, now=T0))


def result(peer: Peer, *args, request: int = 7) -> tuple:
    return ("send", (peer.session_id,), wamp.Result(request, args=list(args) or None).marshal())


def error_uri(effects: list) -> str | None:
    """The URI of the single ERROR in `effects`, compared without its text."""
    [(kind, _, message)] = effects
    assert kind == "send" and message[0] == wamp.Error.MESSAGE_TYPE and message[1] == CALL
    return message[4]


def answer_of(effects: list):
    """The single positional result of a single RESULT."""
    [(kind, _, message)] = effects
    assert kind == "send" and message[0] == wamp.Result.MESSAGE_TYPE, message
    return message[3][0]


def subscribe(realm: Realm, peer: Peer, topic: str, match: str = EXACT, request: int = 1) -> list:
    return wire(realm.receive(peer, wamp.Subscribe(request, topic, match=match), now=T0))


def subscribed_id(effects: list) -> int:
    kind, _, message = effects[0]
    assert message[0] == wamp.Subscribed.MESSAGE_TYPE
    return message[2]


def register(realm: Realm, peer: Peer, procedure: str, match: str = EXACT, invoke: str = "single",
             request: int = 1) -> list:
    return wire(realm.receive(peer, wamp.Register(request, procedure, match=match, invoke=invoke), now=T0))


def registered_id(effects: list) -> int:
    kind, _, message = effects[0]
    assert message[0] == wamp.Registered.MESSAGE_TYPE
    return message[2]


def event(peers, subscription: int, publication: int, args: list, topic: str | None = None) -> tuple:
    recipients = tuple(p.session_id for p in peers)
    return ("send", recipients, wamp.Event(subscription, publication, args=args, topic=topic).marshal())


# -- announcement ------------------------------------------------------------------------------------------------


def test_welcome_announces_the_meta_api_features(realm):
    """WELCOME's broker role announces session_meta_api and subscription_meta_api, the dealer role
    registration_meta_api, next to the features that were there before."""
    roles = realm.router_roles()
    assert roles["broker"].session_meta_api is True
    assert roles["broker"].subscription_meta_api is True
    assert roles["broker"].pattern_based_subscription is True
    assert roles["dealer"].registration_meta_api is True
    assert roles["dealer"].shared_registration is True


# -- session procedures ------------------------------------------------------------------------------------------


def test_session_count_and_list_with_and_without_an_authrole_filter(realm):
    """count and list cover every joined session in join order; a filter keeps only the listed authroles, and an
    empty filter keeps none."""
    assert call(realm, ADMIN, "wamp.session.count") == [result(ADMIN, 3)]
    assert call(realm, ADMIN, "wamp.session.list") == [result(ADMIN, [1, 2, 3])]
    assert call(realm, ADMIN, "wamp.session.count", ["user"]) == [result(ADMIN, 2)]
    assert call(realm, ADMIN, "wamp.session.list", ["user", "nobody"]) == [result(ADMIN, [2, 3])]
    assert call(realm, ADMIN, "wamp.session.list", []) == [result(ADMIN, [])]
    assert call(realm, ADMIN, "wamp.session.list", None) == [result(ADMIN, [1, 2, 3])]


def test_session_get_answers_the_identity_of_a_session(realm):
    """get answers session, authid, authrole, authmethod, authprovider and authextra of the named session."""
    expected = {"session": 2, "authid": "alice", "authrole": "user", "authmethod": "ticket",
                "authprovider": "static", "authextra": {"team": "blue"}}
    assert call(realm, BOB, "wamp.session.get", 2) == [result(BOB, expected)]


def test_session_get_of_an_unknown_session_is_no_such_session(realm):
    """An id no joined session has is wamp.error.no_such_session; so is one that has left."""
    assert error_uri(call(realm, ADMIN, "wamp.session.get", 99)) == NO_SUCH_SESSION
    realm.leave(BOB)
    assert error_uri(call(realm, ADMIN, "wamp.session.get", 3)) == NO_SUCH_SESSION


@pytest.mark.parametrize("value", ["2", 2.0, True, None, 0, -1, 2**53 + 1, [2], {"session": 2}])
def test_a_session_id_of_the_wrong_type_or_range_is_invalid_argument(realm, value):
    """A session id must be an integer from 1 to 2**53: a string, a float, a bool, null, zero, a negative, a larger
    integer, a list or a dict is wamp.error.invalid_argument, for get and for kill."""
    assert error_uri(call(realm, ADMIN, "wamp.session.get", value)) == errors.INVALID_ARGUMENT
    assert error_uri(call(realm, ADMIN, "wamp.session.kill", value)) == errors.INVALID_ARGUMENT


@pytest.mark.parametrize("value", ["user", ["user", 1], [None], {"user": True}, 3])
def test_an_authrole_filter_that_is_not_a_list_of_strings_is_invalid_argument(realm, value):
    """The optional filter of count and list must be a list of strings."""
    assert error_uri(call(realm, ADMIN, "wamp.session.count", value)) == errors.INVALID_ARGUMENT
    assert error_uri(call(realm, ADMIN, "wamp.session.list", value)) == errors.INVALID_ARGUMENT


@pytest.mark.parametrize("procedure,args,kwargs", [
    ("wamp.session.count", (["user"], ["admin"]), {}),
    ("wamp.session.get", (), {}),
    ("wamp.session.get", (2, 3), {}),
    ("wamp.session.get", (2,), {"verbose": True}),
    ("wamp.session.kill", (2,), {"why": "x"}),
    ("wamp.session.kill_all", (2,), {}),
    ("wamp.subscription.list", (1,), {}),
    ("wamp.subscription.lookup", (), {}),
    ("wamp.subscription.lookup", ("com.t", {}, 3), {}),
    ("wamp.registration.match", ("com.p",), {"match": "prefix"}),
])
def test_wrong_argument_counts_and_unknown_keywords_are_invalid_argument(realm, procedure, args, kwargs):
    """Each procedure takes a fixed range of positional arguments and only its own keyword arguments; anything
    else is wamp.error.invalid_argument and changes nothing."""
    assert error_uri(call(realm, ADMIN, procedure, *args, **kwargs)) == errors.INVALID_ARGUMENT
    assert list(realm.sessions) == [1, 2, 3]


def test_a_transparent_payload_is_invalid_argument(realm):
    """Meta procedures read plain arguments; a CALL carrying an end-to-end encrypted payload is invalid_argument."""
    msg = wamp.Call(7, "wamp.session.count", payload=b"opaque", enc_algo="cryptobox", enc_serializer="json")
    assert error_uri(wire(realm.receive(ADMIN, msg))) == errors.INVALID_ARGUMENT


def test_a_meta_call_is_answered_by_the_router_and_never_pending_in_the_dealer(realm):
    """A meta procedure is answered at once by the realm: the dealer holds no call for it afterwards."""
    assert call(realm, ADMIN, "wamp.session.count", request=42) == [result(ADMIN, 3, request=42)]
    assert realm.dealer.pending_calls() == []
    assert realm.dealer.table_sizes()["caller_sessions"] == 0


def test_an_unknown_procedure_under_wamp_is_no_such_procedure(realm):
    """Only the listed meta procedures are the router's; any other `wamp.` procedure finds no callee."""
    assert error_uri(call(realm, ADMIN, "wamp.session.frobnicate")) == errors.NO_SUCH_PROCEDURE


# -- kill --------------------------------------------------------------------------------------------------------


def test_kill_asks_for_goodbye_before_the_result(realm):
    """kill answers a Kick for the named session (reason wamp.close.normal, no message, by default) ahead of an
    empty RESULT; the core itself changes nothing until the session leaves."""
    assert call(realm, ADMIN, "wamp.session.kill", 2) == [("kick", 2, errors.CLOSE_NORMAL, None), result(ADMIN)]
    assert list(realm.sessions) == [1, 2, 3]


def test_kill_passes_the_reason_and_message_on(realm):
    """The reason URI and message keyword arguments become the GOODBYE's reason and message."""
    effects = call(realm, ADMIN, "wamp.session.kill", 3, reason="com.example.kicked", message="bye, bob")
    assert effects == [("kick", 3, "com.example.kicked", "bye, bob"), result(ADMIN)]


def test_killing_oneself_or_an_unknown_session_is_no_such_session(realm):
    """The caller's own id is wamp.error.no_such_session (the spec: no *other* session has it), as is an unknown id."""
    assert error_uri(call(realm, ALICE, "wamp.session.kill", 2)) == NO_SUCH_SESSION
    assert error_uri(call(realm, ALICE, "wamp.session.kill", 77)) == NO_SUCH_SESSION


@pytest.mark.parametrize("kwargs,uri", [
    ({"reason": "not a uri"}, errors.INVALID_URI),
    ({"reason": ""}, errors.INVALID_URI),
    ({"reason": "com..x"}, errors.INVALID_URI),
    ({"reason": "x" * 600}, errors.INVALID_URI),
    ({"reason": 5}, errors.INVALID_ARGUMENT),
    ({"message": 5}, errors.INVALID_ARGUMENT),
    ({"message": "m" * 1001}, errors.INVALID_ARGUMENT),
])
def test_kill_refuses_a_bad_reason_or_message(realm, kwargs, uri):
    """A reason that is not a valid URI is wamp.error.invalid_uri (the spec's rule); a reason that is not a string,
    or a message that is not a string of at most 1000 characters, is invalid_argument. Nobody is kicked."""
    for procedure, target in (("wamp.session.kill", 2), ("wamp.session.kill_by_authid", "alice"),
                              ("wamp.session.kill_by_authrole", "user")):
        assert error_uri(call(realm, ADMIN, procedure, target, **kwargs)) == uri
    assert error_uri(call(realm, ADMIN, "wamp.session.kill_all", **kwargs)) == uri


def test_kill_by_authid_kicks_every_other_session_with_that_authid(realm):
    """kill_by_authid kicks every session with the authid but the caller's own, and answers how many."""
    realm.join(ALICE2)
    effects = call(realm, ALICE, "wamp.session.kill_by_authid", "alice", message="dup")
    assert effects == [("kick", 4, errors.CLOSE_NORMAL, "dup"), result(ALICE, 1)]
    effects = call(realm, ADMIN, "wamp.session.kill_by_authid", "alice")
    assert effects == [("kick", 2, errors.CLOSE_NORMAL, None), ("kick", 4, errors.CLOSE_NORMAL, None),
                       result(ADMIN, 2)]
    assert call(realm, ADMIN, "wamp.session.kill_by_authid", "nobody") == [result(ADMIN, 0)]


def test_kill_by_authrole_and_kill_all_spare_the_caller(realm):
    """kill_by_authrole kicks the role's sessions but the caller; kill_all kicks every other session."""
    effects = call(realm, BOB, "wamp.session.kill_by_authrole", "user", reason="wamp.close.system_shutdown")
    assert effects == [("kick", 2, "wamp.close.system_shutdown", None), result(BOB, 1)]
    effects = call(realm, BOB, "wamp.session.kill_all")
    assert effects == [("kick", 1, errors.CLOSE_NORMAL, None), ("kick", 2, errors.CLOSE_NORMAL, None),
                       result(BOB, 2)]


def test_kill_by_authid_of_a_non_string_is_invalid_argument(realm):
    """The authid and authrole to kill must be strings."""
    assert error_uri(call(realm, ADMIN, "wamp.session.kill_by_authid", 2)) == errors.INVALID_ARGUMENT
    assert error_uri(call(realm, ADMIN, "wamp.session.kill_by_authrole", ["user"])) == errors.INVALID_ARGUMENT


# -- subscription procedures -------------------------------------------------------------------------------------


def test_subscription_procedures_describe_what_sessions_subscribed(realm, ids):
    """list, lookup, match, get, list_subscribers and count_subscribers answer the broker's exact ids and details."""
    exact = subscribed_id(subscribe(realm, ALICE, "com.app.news"))
    subscribe(realm, BOB, "com.app.news", request=2)
    prefix = subscribed_id(subscribe(realm, BOB, "com.app.", PREFIX, request=3))
    wildcard = subscribed_id(subscribe(realm, ALICE, "com..news", WILDCARD, request=4))
    assert answer_of(call(realm, ADMIN, "wamp.subscription.list")) == {
        "exact": [exact], "prefix": [prefix], "wildcard": [wildcard]}
    assert answer_of(call(realm, ADMIN, "wamp.subscription.lookup", "com.app.news")) == exact
    assert answer_of(call(realm, ADMIN, "wamp.subscription.lookup", "com.app.", {"match": "prefix"})) == prefix
    assert answer_of(call(realm, ADMIN, "wamp.subscription.lookup", "com.app.", {"match": "wildcard"})) is None
    assert answer_of(call(realm, ADMIN, "wamp.subscription.match", "com.app.news")) == [exact, prefix, wildcard]
    assert answer_of(call(realm, ADMIN, "wamp.subscription.match", "org.other")) is None
    assert answer_of(call(realm, ADMIN, "wamp.subscription.get", prefix)) == {
        "id": prefix, "created": "2023-11-14T22:13:20.250Z", "uri": "com.app.", "match": "prefix"}
    assert answer_of(call(realm, ADMIN, "wamp.subscription.list_subscribers", exact)) == [2, 3]
    assert answer_of(call(realm, ADMIN, "wamp.subscription.count_subscribers", exact)) == 2


def test_subscription_procedures_refuse_unknown_ids_and_bad_arguments(realm):
    """An unknown subscription id is wamp.error.no_such_subscription; a wrong type is invalid_argument; an invalid
    topic is invalid_uri; options must be a dict whose match is a known policy."""
    for procedure in ("get", "list_subscribers", "count_subscribers"):
        assert error_uri(call(realm, ADMIN, f"wamp.subscription.{procedure}", 5)) == errors.NO_SUCH_SUBSCRIPTION
        assert error_uri(call(realm, ADMIN, f"wamp.subscription.{procedure}", "5")) == errors.INVALID_ARGUMENT
    assert error_uri(call(realm, ADMIN, "wamp.subscription.match", "com..x")) == errors.INVALID_URI
    assert error_uri(call(realm, ADMIN, "wamp.subscription.match", 3)) == errors.INVALID_ARGUMENT
    assert error_uri(call(realm, ADMIN, "wamp.subscription.lookup", "com.x", "prefix")) == errors.INVALID_ARGUMENT
    lookup = "wamp.subscription.lookup"
    assert error_uri(call(realm, ADMIN, lookup, "com.x", {"match": "regex"})) == errors.INVALID_ARGUMENT
    assert error_uri(call(realm, ADMIN, lookup, "com.x", {"match": ["exact"]})) == errors.INVALID_ARGUMENT
    assert error_uri(call(realm, ADMIN, lookup, "com..x", {"match": "exact"})) == errors.INVALID_URI
    assert answer_of(call(realm, ADMIN, lookup, "com..x", {"match": "wildcard"})) is None


def test_meta_subscriptions_are_invisible_to_the_subscription_procedures(realm):
    """A subscription to a `wamp.` topic (someone watching the meta API) is not listed, matched, looked up or
    found: the meta API describes application subscriptions only."""
    watcher = subscribed_id(subscribe(realm, ADMIN, "wamp.session.on_join"))
    assert answer_of(call(realm, ADMIN, "wamp.subscription.list")) == {"exact": [], "prefix": [], "wildcard": []}
    assert answer_of(call(realm, ADMIN, "wamp.subscription.lookup", "wamp.session.on_join")) is None
    assert answer_of(call(realm, ADMIN, "wamp.subscription.match", "wamp.session.on_join")) is None
    assert error_uri(call(realm, ADMIN, "wamp.subscription.get", watcher)) == errors.NO_SUCH_SUBSCRIPTION


# -- registration procedures -------------------------------------------------------------------------------------


def test_registration_procedures_describe_what_callees_registered(realm):
    """list, lookup, match, get, list_callees and count_callees answer the dealer's exact ids and details; match is
    the one registration a CALL would reach."""
    shared = registered_id(register(realm, ALICE, "com.app.add", invoke="roundrobin"))
    register(realm, BOB, "com.app.add", invoke="roundrobin", request=2)
    prefix = registered_id(register(realm, BOB, "com.app.", PREFIX, request=3))
    assert answer_of(call(realm, ADMIN, "wamp.registration.list")) == {
        "exact": [shared], "prefix": [prefix], "wildcard": []}
    assert answer_of(call(realm, ADMIN, "wamp.registration.lookup", "com.app.add")) == shared
    assert answer_of(call(realm, ADMIN, "wamp.registration.lookup", "com.app.", {"match": "prefix"})) == prefix
    assert answer_of(call(realm, ADMIN, "wamp.registration.match", "com.app.add")) == shared
    assert answer_of(call(realm, ADMIN, "wamp.registration.match", "com.app.sub")) == prefix
    assert answer_of(call(realm, ADMIN, "wamp.registration.match", "org.none")) is None
    assert answer_of(call(realm, ADMIN, "wamp.registration.get", shared)) == {
        "id": shared, "created": "2023-11-14T22:13:20.250Z", "uri": "com.app.add", "match": "exact",
        "invoke": "roundrobin"}
    assert answer_of(call(realm, ADMIN, "wamp.registration.list_callees", shared)) == [2, 3]
    assert answer_of(call(realm, ADMIN, "wamp.registration.count_callees", prefix)) == 1


def test_registration_match_never_names_a_client_pattern_for_a_wamp_uri(realm):
    """A client's prefix "" registration matches any application URI, but match of a `wamp.` URI is null: a CALL
    there never reaches a client (the dealer's own rule)."""
    everything = registered_id(register(realm, ALICE, "", PREFIX))
    assert answer_of(call(realm, ADMIN, "wamp.registration.match", "com.x")) == everything
    assert answer_of(call(realm, ADMIN, "wamp.registration.match", "wamp.session.get")) is None
    assert call(realm, ADMIN, "wamp.session.count") == [result(ADMIN, 3)]


def test_registration_procedures_refuse_unknown_ids_and_bad_arguments(realm):
    """An unknown registration id is wamp.error.no_such_registration; a non-id is invalid_argument; an invalid
    procedure URI is invalid_uri."""
    for procedure in ("get", "list_callees", "count_callees"):
        assert error_uri(call(realm, ADMIN, f"wamp.registration.{procedure}", 5)) == errors.NO_SUCH_REGISTRATION
        assert error_uri(call(realm, ADMIN, f"wamp.registration.{procedure}", 5.0)) == errors.INVALID_ARGUMENT
    assert error_uri(call(realm, ADMIN, "wamp.registration.match", "a b")) == errors.INVALID_URI
    assert error_uri(call(realm, ADMIN, "wamp.registration.lookup", None)) == errors.INVALID_ARGUMENT


# -- session events ----------------------------------------------------------------------------------------------


def test_on_join_reaches_watchers_with_the_session_details(realm, ids):
    """A session joining publishes wamp.session.on_join with its details to the watchers; the publication id is
    drawn from the realm's id source."""
    watch = subscribed_id(subscribe(realm, ADMIN, "wamp.session.on_join"))
    publication = ids.peek()
    assert wire(realm.join(ALICE2)) == [event([ADMIN], watch, publication, [details(ALICE2)])]


def test_on_leave_comes_after_the_leaving_sessions_subscriptions_are_reported(realm, ids):
    """A leaving session's subscriptions are reported in the order it made them (on_unsubscribe, and on_delete for
    one it held alone) before wamp.session.on_leave (session, authid, authrole); the leaving session, though it
    watched on_leave itself, is sent nothing; leaving twice changes nothing."""
    on_unsubscribe = subscribed_id(subscribe(realm, ADMIN, "wamp.subscription.on_unsubscribe"))
    on_delete = subscribed_id(subscribe(realm, ADMIN, "wamp.subscription.on_delete", request=2))
    on_leave = subscribed_id(subscribe(realm, ADMIN, "wamp.session.on_leave", request=3))
    subscribe(realm, BOB, "wamp.session.on_leave")
    shared = subscribed_id(subscribe(realm, BOB, "com.shared", request=2))
    subscribe(realm, ALICE, "com.shared")
    own = subscribed_id(subscribe(realm, BOB, "com.own", request=3))
    first = ids.peek()
    assert wire(realm.leave(BOB)) == [
        event([ADMIN], on_unsubscribe, first, [3, shared]),
        event([ADMIN], on_unsubscribe, first + 1, [3, own]),
        event([ADMIN], on_delete, first + 2, [3, own]),
        event([ADMIN], on_leave, first + 3, [3, "bob", "user"]),
    ]
    assert realm.leave(BOB) == []


def test_leave_reports_unsubscribe_then_delete_per_subscription_in_order(realm, ids):
    """For one subscription the leaving session held alone, on_unsubscribe comes before on_delete, then on_leave."""
    topics = ["wamp.subscription.on_unsubscribe", "wamp.subscription.on_delete", "wamp.session.on_leave"]
    watches = [subscribed_id(subscribe(realm, ADMIN, topic, request=n)) for n, topic in enumerate(topics, 1)]
    own = subscribed_id(subscribe(realm, BOB, "com.own"))
    first = ids.peek()
    assert wire(realm.leave(BOB)) == [
        event([ADMIN], watches[0], first, [3, own]),
        event([ADMIN], watches[1], first + 1, [3, own]),
        event([ADMIN], watches[2], first + 2, [3, "bob", "user"]),
    ]


# -- subscription events -----------------------------------------------------------------------------------------


def test_subscription_events_follow_the_subscription_lifecycle(realm, ids):
    """First subscriber: SUBSCRIBED, on_create (session, details), on_subscribe (session, id). Another subscriber:
    on_subscribe only. The same session again: nothing. Unsubscribe: on_unsubscribe; the last one also on_delete."""
    topics = ["on_create", "on_subscribe", "on_unsubscribe", "on_delete"]
    watch = {t: subscribed_id(subscribe(realm, ADMIN, f"wamp.subscription.{t}", request=n))
             for n, t in enumerate(topics, 1)}
    new_subscription, publication = ids.peek(), ids.peek() + 1
    created = {"id": new_subscription, "uri": "com.news", "match": "exact", "created": "2023-11-14T22:13:20.250Z"}
    assert subscribe(realm, ALICE, "com.news", request=5) == [
        ("send", (2,), wamp.Subscribed(5, new_subscription).marshal()),
        event([ADMIN], watch["on_create"], publication, [2, created]),
        event([ADMIN], watch["on_subscribe"], publication + 1, [2, new_subscription]),
    ]
    assert subscribe(realm, BOB, "com.news", request=6)[1:] == [
        event([ADMIN], watch["on_subscribe"], publication + 2, [3, new_subscription])]
    assert subscribe(realm, BOB, "com.news", request=7)[1:] == []
    for peer, expected in ((ALICE, ["on_unsubscribe"]), (BOB, ["on_unsubscribe", "on_delete"])):
        first = ids.peek()
        effects = wire(realm.receive(peer, wamp.Unsubscribe(8, new_subscription)))
        assert effects == [("send", (peer.session_id,), wamp.Unsubscribed(8).marshal())] + [
            event([ADMIN], watch[t], first + n, [peer.session_id, new_subscription]) for n, t in enumerate(expected)]


def test_pattern_watchers_get_the_meta_topic_in_the_event(realm, ids):
    """A prefix subscription to `wamp.subscription.` receives the meta events with the concrete topic named."""
    watch = subscribed_id(subscribe(realm, ADMIN, "wamp.subscription.", PREFIX))
    subscription, publication = ids.peek(), ids.peek() + 1
    effects = subscribe(realm, ALICE, "com.news")
    topic = "wamp.subscription.on_subscribe"
    assert effects[2] == event([ADMIN], watch, publication + 1, [2, subscription], topic=topic)


def test_subscriptions_to_meta_topics_fire_no_meta_events(realm, ids):
    """Subscribing to or leaving a `wamp.` topic fires no subscription meta events, even for watchers of all."""
    subscribe(realm, ADMIN, "wamp.subscription.", PREFIX)
    drawn = ids.drawn
    effects = subscribe(realm, ALICE, "wamp.session.on_join")
    assert len(effects) == 1 and effects[0][2][0] == wamp.Subscribed.MESSAGE_TYPE
    assert ids.drawn == drawn + 1  # the subscription id, no publication id


def test_nobody_watching_costs_no_publication_ids(realm, ids):
    """With no watcher, subscribe, join and leave publish nothing and draw no publication ids."""
    drawn = ids.drawn
    subscribe(realm, ALICE, "com.news")
    assert ids.drawn == drawn + 1
    assert realm.join(ALICE2) == [] and realm.leave(ALICE2) == []
    assert ids.drawn == drawn + 1


# -- registration events -----------------------------------------------------------------------------------------


def test_registration_events_follow_the_registration_lifecycle(realm, ids):
    """First callee: REGISTERED, on_create (session, details), on_register. A second callee of a shared registration:
    on_register. Unregister: on_unregister; the last callee also on_delete; a callee leaving likewise."""
    topics = ["on_create", "on_register", "on_unregister", "on_delete"]
    watch = {t: subscribed_id(subscribe(realm, ADMIN, f"wamp.registration.{t}", request=n))
             for n, t in enumerate(topics, 1)}
    registration, publication = ids.peek(), ids.peek() + 1
    created = {"id": registration, "uri": "com.add", "match": "exact", "invoke": "first",
               "created": "2023-11-14T22:13:20.250Z"}
    assert register(realm, ALICE, "com.add", invoke="first", request=5) == [
        ("send", (2,), wamp.Registered(5, registration).marshal()),
        event([ADMIN], watch["on_create"], publication, [2, created]),
        event([ADMIN], watch["on_register"], publication + 1, [2, registration]),
    ]
    assert register(realm, BOB, "com.add", invoke="first", request=6)[1:] == [
        event([ADMIN], watch["on_register"], publication + 2, [3, registration])]
    first = ids.peek()
    assert wire(realm.receive(ALICE, wamp.Unregister(7, registration))) == [
        ("send", (2,), wamp.Unregistered(7).marshal()),
        event([ADMIN], watch["on_unregister"], first, [2, registration])]
    first = ids.peek()
    assert wire(realm.leave(BOB)) == [
        event([ADMIN], watch["on_unregister"], first, [3, registration]),
        event([ADMIN], watch["on_delete"], first + 1, [3, registration])]


def test_a_refused_register_fires_no_event(realm, ids):
    """A REGISTER refused (procedure already registered) answers ERROR and tells the watchers nothing."""
    subscribe(realm, ADMIN, "wamp.registration.", PREFIX)
    register(realm, ALICE, "com.add")
    drawn = ids.drawn
    effects = register(realm, BOB, "com.add")
    assert len(effects) == 1 and effects[0][2][0] == wamp.Error.MESSAGE_TYPE
    assert ids.drawn == drawn


# -- formats and hostile input -----------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds,text", [
    (0.0, "1970-01-01T00:00:00.000Z"),
    (T0, "2023-11-14T22:13:20.250Z"),
    (1.9999, "1970-01-01T00:00:01.999Z"),
])
def test_created_is_iso_8601_utc_with_milliseconds(seconds, text):
    """`created` is the POSIX time in ISO 8601, UTC, milliseconds truncated, with a Z."""
    assert iso_8601(seconds) == text


_JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**64), max_value=2**64) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3),
    max_leaves=8,
)
_ANSWERS = {errors.INVALID_ARGUMENT, errors.INVALID_URI, NO_SUCH_SESSION, errors.NO_SUCH_SUBSCRIPTION,
            errors.NO_SUCH_REGISTRATION}


@settings(max_examples=300, deadline=None)
@given(procedure=st.sampled_from(sorted(Realm("r", UriPolicy(), Ids(), first, limits=LimitsConfig()).meta.procedures)),
       args=st.lists(_JSONISH, max_size=3), kwargs=st.dictionaries(st.text(max_size=8), _JSONISH, max_size=2))
def test_any_arguments_get_a_result_or_a_wamp_error(procedure, args, kwargs):
    """Whatever a hostile client sends to any meta procedure, the answer is a RESULT, Kicks and a RESULT, or one
    ERROR with a spec URI, never an exception; nobody but the named targets is ever kicked."""
    realm = Realm("realm1", UriPolicy(), Ids(), first, limits=LimitsConfig())
    for peer in (ADMIN, ALICE, BOB):
        realm.join(peer)
    effects = wire(realm.receive(ADMIN, wamp.Call(7, procedure, args=args, kwargs=kwargs or None)))
    *kicks, (kind, recipients, message) = effects
    assert kind == "send" and recipients == (1,)
    if message[0] == wamp.Error.MESSAGE_TYPE:
        assert message[4] in _ANSWERS and kicks == []
    else:
        assert message[0] == wamp.Result.MESSAGE_TYPE
        assert all(kick[0] == "kick" and kick[1] != 1 for kick in kicks)
