"""The RPC dealer (`wampgate.core.dealer`): registrations, routing, answers, cancel, timeouts, sessions leaving.

Autobahn's message classes do not compare their payload in `==`, so effects are compared through `marshal()`: the
exact list that would go on the wire.
"""

from __future__ import annotations

import ast
import itertools
from pathlib import Path

import pytest
from autobahn.wamp import message as wamp
from autobahn.wamp.role import RoleCalleeFeatures, RoleCallerFeatures, RoleDealerFeatures
from hypothesis import example, given, settings
from hypothesis import strategies as st

from wampgate.config import LimitsConfig
from wampgate.core import errors
from wampgate.core.calls import CalleeLedger, CallTimer
from wampgate.core.dealer import Dealer
from wampgate.core.effects import Abort, CancelTimer, Send, StartTimer
from wampgate.core.peer import Peer
from wampgate.core.realm import dealer_limits
from wampgate.uri import EXACT, PREFIX, WILDCARD, UriPolicy

CALL = wamp.Call.MESSAGE_TYPE
INVOCATION = wamp.Invocation.MESSAGE_TYPE
REGISTER = wamp.Register.MESSAGE_TYPE
UNREGISTER = wamp.Unregister.MESSAGE_TYPE
FIRST_REGISTRATION_ID = 1000


# --------------------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------------------


def make_peer(session_id: int, *, canceling: bool = True, progressive: bool = True) -> Peer:
    callee = RoleCalleeFeatures(call_canceling=canceling or None, progressive_call_results=progressive or None)
    return Peer(
        session_id,
        "realm1",
        authid=f"user{session_id}",
        authrole="role",
        authmethod="anonymous",
        authprovider="static",
        roles={"callee": callee, "caller": RoleCallerFeatures(call_canceling=True, progressive_call_results=True)},
    )


def first_choice(candidates):
    return candidates[0]


def make_dealer(**options) -> Dealer:
    options.setdefault("choose", first_choice)
    return Dealer(UriPolicy(), itertools.count(FIRST_REGISTRATION_ID).__next__,
                  **{**dealer_limits(LimitsConfig()), **options})


def wire(effects) -> list:
    """Effects with each Send as (recipient session ids, the message as marshalled for the wire)."""
    out = []
    for effect in effects:
        if isinstance(effect, Send):
            out.append(("send", tuple(peer.session_id for peer in effect.recipients), effect.message.marshal()))
        else:
            out.append(effect)
    return out


def send(peer: Peer, message: wamp.Message) -> Send:
    return Send((peer,), message)


def assert_effects(actual, *expected) -> None:
    assert wire(actual) == wire(expected)


def assert_empty(dealer: Dealer) -> None:
    """Every internal table of the dealer is empty."""
    assert dealer.table_sizes() == dict.fromkeys(dealer.table_sizes(), 0)
    assert dealer.pending_calls() == []
    assert dealer.registrations() == []


class Timers:
    """Replays timer effects as the I/O layer would, so a test can assert that none is left running."""

    def __init__(self) -> None:
        self.running: dict = {}

    def apply(self, effects) -> list:
        for effect in effects:
            if isinstance(effect, StartTimer):
                assert effect.key not in self.running
                self.running[effect.key] = effect.delay
            elif isinstance(effect, CancelTimer):
                assert self.running.pop(effect.key, None) is not None, "CancelTimer for a timer that is not running"
        return effects

    def fire(self, dealer: Dealer, key, now: float = 0.0) -> list:
        del self.running[key]
        return self.apply(dealer.on_timeout(key, now))


def register(dealer: Dealer, peer: Peer, procedure: str, *, match=None, invoke=None, request: int = 1) -> int:
    """Register through the check and the action, as the realm will; returns the registration id."""
    msg = wamp.Register(request, procedure, match=match, invoke=invoke)
    assert dealer.check_register(peer, msg) is None
    (effect,) = dealer.register(peer, msg)
    assert isinstance(effect.message, wamp.Registered), effect
    return effect.message.registration


def call(dealer: Dealer, peer: Peer, procedure: str, request: int = 7, **options) -> list:
    """A CALL through the check and the action."""
    disclose = options.pop("disclose", False)
    msg = wamp.Call(request, procedure, **options)
    problem = dealer.check_call(peer, msg)
    return problem if problem is not None else dealer.call(peer, msg, disclose=disclose, now=100.0)


def invocation_of(effects) -> wamp.Invocation:
    (invocation,) = [e.message for e in effects if isinstance(e, Send) and isinstance(e.message, wamp.Invocation)]
    return invocation


@pytest.fixture
def dealer() -> Dealer:
    return make_dealer()


@pytest.fixture
def caller() -> Peer:
    return make_peer(1)


@pytest.fixture
def callee() -> Peer:
    return make_peer(2)


@pytest.fixture
def plain_callee() -> Peer:
    """A callee that announced neither call_canceling nor progressive_call_results."""
    return make_peer(3, canceling=False, progressive=False)


# --------------------------------------------------------------------------------------------------------------
# registering and unregistering
# --------------------------------------------------------------------------------------------------------------


def test_register_answers_registered_with_a_new_registration(dealer, callee):
    """REGISTER creates a registration with an id from the id source and answers REGISTERED with it."""
    effects = dealer.register(callee, wamp.Register(5, "com.example.add"))
    assert_effects(effects, send(callee, wamp.Registered(5, FIRST_REGISTRATION_ID)))
    (registration,) = dealer.registrations()
    assert (registration.id, registration.uri, registration.match, registration.invoke) == (
        FIRST_REGISTRATION_ID,
        "com.example.add",
        EXACT,
        "single",
    )
    assert dealer.registrations_of(callee.session_id) == [registration]
    assert dealer.registration(FIRST_REGISTRATION_ID) is registration


@pytest.mark.parametrize(
    ("procedure", "match"),
    [("com..add", EXACT), ("com.example.", EXACT), ("com.ex ample", EXACT), ("com..add", PREFIX), ("a.#", WILDCARD)],
)
def test_check_register_refuses_an_invalid_uri(dealer, callee, procedure, match):
    """A procedure URI that is invalid for its match policy is refused with wamp.error.invalid_uri, before authz."""
    effects = dealer.check_register(callee, wamp.Register(3, procedure, match=match))
    (effect,) = effects
    assert effect.message.marshal()[:4] == [wamp.Error.MESSAGE_TYPE, REGISTER, 3, {}]
    assert effect.message.error == errors.INVALID_URI


@pytest.mark.parametrize(
    ("procedure", "match"), [("wamp.session.get", EXACT), ("wamp.", PREFIX), ("wamp..get", WILDCARD)]
)
def test_check_register_refuses_the_reserved_wamp_prefix(dealer, callee, procedure, match):
    """Clients may not register under 'wamp.', whatever the match policy."""
    (effect,) = dealer.check_register(callee, wamp.Register(3, procedure, match=match))
    assert effect.message.error == errors.INVALID_URI
    assert "reserved" in effect.message.args[0]


def test_a_second_single_registration_is_refused(dealer, callee):
    """A second REGISTER for the same (uri, match) under `single` gets wamp.error.procedure_already_exists."""
    register(dealer, callee, "com.example.add")
    other = make_peer(9)
    (effect,) = dealer.register(other, wamp.Register(4, "com.example.add"))
    assert effect.recipients == (other,)
    assert effect.message.marshal()[:4] == [wamp.Error.MESSAGE_TYPE, REGISTER, 4, {}]
    assert effect.message.error == errors.PROCEDURE_ALREADY_EXISTS
    assert [r.callees for r in dealer.registrations()] == [[callee]]


def test_the_same_uri_under_another_match_policy_is_another_registration(dealer, callee):
    """(uri, match) is the key: an exact and a prefix registration of the same string coexist."""
    first = register(dealer, callee, "com.example", match=EXACT)
    second = register(dealer, make_peer(9), "com.example", match=PREFIX)
    assert first != second
    assert len(dealer.registrations()) == 2


def test_joining_with_a_different_invoke_policy_is_refused_naming_both(dealer, callee):
    """Joining a shared registration with another invoke policy is refused, and the text names both policies."""
    register(dealer, callee, "com.example.add", invoke="roundrobin")
    (effect,) = dealer.register(make_peer(9), wamp.Register(4, "com.example.add", invoke="random"))
    assert effect.message.error == errors.PROCEDURE_ALREADY_EXISTS
    assert "'roundrobin'" in effect.message.args[0] and "'random'" in effect.message.args[0]


def test_single_cannot_join_a_shared_registration(dealer, callee):
    """A `single` REGISTER on a procedure registered `first` is a policy mismatch too."""
    register(dealer, callee, "com.example.add", invoke="first")
    (effect,) = dealer.register(make_peer(9), wamp.Register(4, "com.example.add"))
    assert effect.message.error == errors.PROCEDURE_ALREADY_EXISTS
    assert "'first'" in effect.message.args[0] and "'single'" in effect.message.args[0]


def test_a_session_cannot_join_its_own_shared_registration_twice(dealer, callee):
    """The same session registering a shared procedure twice is refused: a callee appears once."""
    register(dealer, callee, "com.example.add", invoke="roundrobin")
    (effect,) = dealer.register(callee, wamp.Register(4, "com.example.add", invoke="roundrobin"))
    assert effect.message.error == errors.PROCEDURE_ALREADY_EXISTS
    assert dealer.registrations()[0].callees == [callee]


def test_shared_registration_shares_one_id(dealer, callee):
    """Callees joining a shared registration get the same registration id."""
    ids = {register(dealer, make_peer(sid), "com.example.add", invoke="first") for sid in (10, 11, 12)}
    assert ids == {FIRST_REGISTRATION_ID}


def test_unregister_removes_the_registration(dealer, caller, callee):
    """UNREGISTER answers UNREGISTERED, and the procedure is then unknown to callers."""
    registration = register(dealer, callee, "com.example.add")
    effects = dealer.unregister(callee, wamp.Unregister(8, registration))
    assert_effects(effects, send(callee, wamp.Unregistered(8)))
    assert_empty(dealer)
    (effect,) = call(dealer, caller, "com.example.add")
    assert effect.message.error == errors.NO_SUCH_PROCEDURE


def test_unregister_by_another_session_or_unknown_id_is_refused(dealer, callee):
    """Only a callee of the registration may unregister it; others (or unknown ids) get no_such_registration."""
    registration = register(dealer, callee, "com.example.add")
    for peer, registration_id in ((make_peer(9), registration), (callee, 424242)):
        (effect,) = dealer.unregister(peer, wamp.Unregister(8, registration_id))
        assert effect.message.marshal()[:4] == [wamp.Error.MESSAGE_TYPE, UNREGISTER, 8, {}]
        assert effect.message.error == errors.NO_SUCH_REGISTRATION
    assert dealer.registrations()[0].callees == [callee]


def test_unregister_from_a_shared_registration_keeps_it_for_the_others(dealer, caller):
    """One callee leaving a shared registration leaves the others serving it."""
    one, two = make_peer(10), make_peer(11)
    registration = register(dealer, one, "com.example.add", invoke="first")
    register(dealer, two, "com.example.add", invoke="first")
    dealer.unregister(one, wamp.Unregister(8, registration))
    assert dealer.registration(registration).callees == [two]
    assert dealer.registrations_of(one.session_id) == []
    assert invocation_of(call(dealer, caller, "com.example.add")).registration == registration


def test_unregister_lets_calls_in_flight_finish(dealer, caller, callee):
    """Calls already sent to a callee still get its answer after it unregistered."""
    registration = register(dealer, callee, "com.example.add")
    call(dealer, caller, "com.example.add")
    dealer.unregister(callee, wamp.Unregister(8, registration))
    effects = dealer.yield_(callee, wamp.Yield(1, args=[3]))
    assert_effects(effects, send(caller, wamp.Result(7, args=[3])))
    assert dealer.table_sizes()["calls"] == 0


# --------------------------------------------------------------------------------------------------------------
# calls, results and errors
# --------------------------------------------------------------------------------------------------------------


def test_call_yield_result_round_trip(dealer, caller, callee):
    """CALL -> INVOCATION (fresh id, args/kwargs untouched) -> YIELD -> RESULT to the caller; then nothing is left."""
    registration = register(dealer, callee, "com.example.add")
    effects = call(dealer, caller, "com.example.add", args=[1, 2], kwargs={"k": "v"})
    assert_effects(effects, send(callee, wamp.Invocation(1, registration, args=[1, 2], kwargs={"k": "v"})))
    assert [(c.caller, c.request, c.callee, c.invocation, c.started) for c in dealer.pending_calls()] == [
        (caller.session_id, 7, callee.session_id, 1, 100.0)
    ]
    effects = dealer.yield_(callee, wamp.Yield(1, args=[3], kwargs={"sum": 3}))
    assert_effects(effects, send(caller, wamp.Result(7, args=[3], kwargs={"sum": 3})))
    assert dealer.pending_calls() == []
    dealer.remove_session(callee)
    assert_empty(dealer)


def test_invocation_ids_count_up_per_callee(dealer, caller):
    """INVOCATION request ids are in the callee's session scope: 1, 2, 3 ... for each callee separately."""
    one, two = make_peer(10), make_peer(11)
    register(dealer, one, "com.example.one")
    register(dealer, two, "com.example.two")
    ids = [
        invocation_of(call(dealer, caller, procedure, request)).request
        for request, procedure in enumerate(["com.example.one", "com.example.one", "com.example.two"], start=1)
    ]
    assert ids == [1, 2, 1]


def test_payload_transparency_passes_encrypted_payloads_through(dealer, caller, callee):
    """payload/enc_algo/enc_key/enc_serializer pass through CALL->INVOCATION, YIELD->RESULT and ERROR untouched."""
    registration = register(dealer, callee, "com.example.secret")
    enc = {"enc_algo": "cryptobox", "enc_key": "key-1", "enc_serializer": "json"}
    effects = call(dealer, caller, "com.example.secret", payload=b"\x01sealed", **enc)
    assert_effects(effects, send(callee, wamp.Invocation(1, registration, payload=b"\x01sealed", **enc)))
    effects = dealer.yield_(callee, wamp.Yield(1, payload=b"\x02result", **enc))
    assert_effects(effects, send(caller, wamp.Result(7, payload=b"\x02result", **enc)))
    call(dealer, caller, "com.example.secret", request=8, payload=b"\x03")
    effects = dealer.error(callee, wamp.Error(INVOCATION, 2, "com.example.oops", payload=b"\x04", **enc))
    assert_effects(effects, send(caller, wamp.Error(CALL, 8, "com.example.oops", payload=b"\x04", **enc)))


def test_call_to_an_unregistered_procedure_gets_no_such_procedure(dealer, caller):
    """A CALL nobody serves is answered with wamp.error.no_such_procedure for that request."""
    (effect,) = call(dealer, caller, "com.example.nothing", request=12)
    assert effect.recipients == (caller,)
    assert effect.message.marshal()[:4] == [wamp.Error.MESSAGE_TYPE, CALL, 12, {}]
    assert effect.message.error == errors.NO_SUCH_PROCEDURE
    assert_empty(dealer)


def test_check_call_refuses_an_invalid_uri(dealer, caller):
    """A CALL to an invalid URI is answered with wamp.error.invalid_uri before authorization."""
    (effect,) = dealer.check_call(caller, wamp.Call(12, "com..x"))
    assert effect.message.error == errors.INVALID_URI
    assert effect.message.request == 12


def test_callee_error_reaches_the_caller_with_its_own_uri_args_and_kwargs(dealer, caller, callee):
    """A callee's ERROR becomes the caller's ERROR for its CALL, with the callee's URI, args and kwargs."""
    register(dealer, callee, "com.example.div")
    call(dealer, caller, "com.example.div", args=[1, 0])
    answer = wamp.Error(INVOCATION, 1, "com.example.division_by_zero", args=["no"], kwargs={"a": 1})
    effects = dealer.error(callee, answer)
    expected = wamp.Error(CALL, 7, "com.example.division_by_zero", args=["no"], kwargs={"a": 1})
    assert_effects(effects, send(caller, expected))
    assert dealer.pending_calls() == []


@pytest.mark.parametrize("request_type", [CALL, REGISTER, wamp.Subscribe.MESSAGE_TYPE, wamp.Interrupt.MESSAGE_TYPE])
def test_error_for_anything_but_invocation_is_a_protocol_violation(dealer, callee, request_type):
    """A client may send ERROR only as an answer to INVOCATION; any other request_type aborts the session."""
    effects = dealer.error(callee, wamp.Error(request_type, 1, "com.example.oops"))
    assert effects == [Abort(callee, errors.PROTOCOL_VIOLATION, "ERROR is only valid as an answer to INVOCATION")]


def test_caller_identification_is_disclosed_only_when_asked(dealer, caller, callee):
    """With disclose, INVOCATION carries caller, caller_authid and caller_authrole; without it, none of them."""
    registration = register(dealer, callee, "com.example.who")
    hidden = invocation_of(call(dealer, caller, "com.example.who", request=1))
    assert (hidden.caller, hidden.caller_authid, hidden.caller_authrole) == (None, None, None)
    shown = invocation_of(call(dealer, caller, "com.example.who", request=2, disclose=True))
    assert shown.marshal() == wamp.Invocation(
        2, registration, caller=1, caller_authid="user1", caller_authrole="role"
    ).marshal()


def test_forward_for_from_a_client_is_never_copied(dealer, caller, callee):
    """A client's forward_for (posing as another session) does not reach the callee."""
    register(dealer, callee, "com.example.who")
    forged = [{"session": 666, "authid": "admin", "authrole": "admin"}]
    invocation = invocation_of(call(dealer, caller, "com.example.who", forward_for=forged, disclose=True))
    assert invocation.forward_for is None
    assert invocation.caller == caller.session_id


def test_pattern_registration_tells_the_callee_the_procedure(dealer, caller, callee):
    """For prefix and wildcard registrations INVOCATION details carry the concrete procedure; for exact, not."""
    register(dealer, callee, "com.example.", match=PREFIX, request=1)
    register(dealer, callee, "org..get", match=WILDCARD, request=2)
    register(dealer, callee, "net.exact", request=3)
    assert invocation_of(call(dealer, caller, "com.example.add", request=1)).procedure == "com.example.add"
    assert invocation_of(call(dealer, caller, "org.user.get", request=2)).procedure == "org.user.get"
    assert invocation_of(call(dealer, caller, "net.exact", request=3)).procedure is None


def test_a_session_may_call_its_own_registration(dealer, callee):
    """Caller and callee may be the same session."""
    register(dealer, callee, "com.example.self")
    call(dealer, callee, "com.example.self")
    effects = dealer.yield_(callee, wamp.Yield(1, args=["me"]))
    assert_effects(effects, send(callee, wamp.Result(7, args=["me"])))


# --------------------------------------------------------------------------------------------------------------
# shared registrations: invoke policies
# --------------------------------------------------------------------------------------------------------------


def _callee_sequence(dealer: Dealer, invoke: str, rounds: int) -> list[int]:
    caller = make_peer(1)
    callees = [make_peer(sid) for sid in (10, 11, 12)]
    for peer in callees:
        register(dealer, peer, "com.example.shared", invoke=invoke)
    chosen = []
    for request in range(1, rounds + 1):
        (effect,) = call(dealer, caller, "com.example.shared", request)
        chosen.append(effect.recipients[0].session_id)
    return chosen


@pytest.mark.parametrize(
    ("invoke", "expected"),
    [
        ("first", [10, 10, 10, 10]),
        ("last", [12, 12, 12, 12]),
        ("roundrobin", [10, 11, 12, 10]),
    ],
)
def test_invoke_policy_choice_sequence(invoke, expected):
    """first always picks the earliest callee, last the latest, roundrobin rotates in registration order."""
    assert _callee_sequence(make_dealer(), invoke, 4) == expected


def test_invoke_random_uses_the_injected_choice():
    """random asks the injected choose() among all callees, in registration order, and uses its answer."""
    seen, picks = [], iter([2, 0, 1, 2])

    def choose(candidates):
        seen.append([peer.session_id for peer in candidates])
        return candidates[next(picks)]

    assert _callee_sequence(make_dealer(choose=choose), "random", 4) == [12, 10, 11, 12]
    assert seen == [[10, 11, 12]] * 4


def test_roundrobin_skips_nobody_when_a_callee_leaves():
    """When a callee earlier in the rotation leaves, roundrobin continues with the next one in line."""
    dealer, caller = make_dealer(), make_peer(1)
    callees = [make_peer(sid) for sid in (10, 11, 12)]
    for peer in callees:
        register(dealer, peer, "com.example.rr", invoke="roundrobin")
    assert call(dealer, caller, "com.example.rr", 1)[0].recipients == (callees[0],)
    assert call(dealer, caller, "com.example.rr", 2)[0].recipients == (callees[1],)
    dealer.remove_session(callees[0])
    assert call(dealer, caller, "com.example.rr", 3)[0].recipients == (callees[2],)
    assert call(dealer, caller, "com.example.rr", 4)[0].recipients == (callees[1],)


# --------------------------------------------------------------------------------------------------------------
# pattern-based registrations: the most specific match wins
# --------------------------------------------------------------------------------------------------------------


def test_most_specific_registration_wins(dealer, caller):
    """exact beats prefix, the longest prefix beats shorter ones, any prefix beats wildcards, and among wildcards
    fewer wildcards win, then those whose wildcards sit further right."""
    ids = {
        name: register(dealer, make_peer(sid), uri, match=match)
        for sid, (name, uri, match) in enumerate(
            [
                ("exact", "a.b.c", EXACT),
                ("short", "a.", PREFIX),
                ("long", "a.b.", PREFIX),
                ("two_wild", "x..", WILDCARD),
                ("left_wild", ".y.z", WILDCARD),
                ("right_wild", "x.y.", WILDCARD),
            ],
            start=10,
        )
    }
    expectations = {
        "a.b.c": "exact",
        "a.b.d": "long",
        "a.x": "short",
        "x.y.z": "right_wild",
        "q.y.z": "left_wild",
        "x.q.z": "two_wild",
    }
    for request, (uri, name) in enumerate(expectations.items(), start=1):
        assert invocation_of(call(dealer, caller, uri, request)).registration == ids[name], uri


@pytest.mark.parametrize(("pattern", "match"), [("", PREFIX), ("wamp", PREFIX), (".session.get", WILDCARD)])
def test_client_patterns_never_serve_reserved_uris(dealer, caller, callee, pattern, match):
    """A client's pattern that would match a 'wamp.' URI does not capture calls to it."""
    register(dealer, callee, pattern, match=match)
    (effect,) = call(dealer, caller, "wamp.session.get")
    assert effect.message.error == errors.NO_SUCH_PROCEDURE
    assert dealer.lookup("wamp.session.get") is None


COMPONENTS = st.sampled_from(["a", "b", "c"])
CONCRETE = st.lists(COMPONENTS, min_size=1, max_size=3).map(".".join)
PREFIXES = st.one_of(st.just(""), CONCRETE, CONCRETE.map(lambda uri: uri + "."))
WILDCARDS = st.lists(st.one_of(COMPONENTS, st.just("")), min_size=1, max_size=3).map(".".join)
PATTERNS = st.one_of(
    CONCRETE.map(lambda uri: (uri, EXACT)),
    PREFIXES.map(lambda uri: (uri, PREFIX)),
    WILDCARDS.map(lambda uri: (uri, WILDCARD)),
)


def _brute_force(patterns: list[tuple[str, str]], uri: str) -> tuple[str, str] | None:
    """The spec's rule written out plainly: exact, else the longest matching prefix, else the matching wildcard
    with the fewest wildcards, ties going to the pattern whose wildcard positions are further right."""
    if (uri, EXACT) in patterns:
        return (uri, EXACT)
    prefixes = [p for p in patterns if p[1] == PREFIX and uri.startswith(p[0])]
    if prefixes:
        return max(prefixes, key=lambda p: len(p[0]))
    parts = uri.split(".")

    def matches(pattern: str) -> bool:
        mine = pattern.split(".")
        return len(mine) == len(parts) and all(m in ("", u) for m, u in zip(mine, parts))

    def rank(pattern: str) -> tuple:
        holes = [i for i, component in enumerate(pattern.split(".")) if component == ""]
        return (-len(holes), holes)

    wildcards = [p for p in patterns if p[1] == WILDCARD and matches(p[0])]
    return max(wildcards, key=lambda p: rank(p[0])) if wildcards else None


def _check_routing(patterns: list[tuple[str, str]], uri: str) -> None:
    dealer, caller = make_dealer(), make_peer(1)
    ids = {
        pattern: register(dealer, make_peer(sid), pattern[0], match=pattern[1])
        for sid, pattern in enumerate(patterns, start=10)
    }
    expected = _brute_force(patterns, uri)
    effects = call(dealer, caller, uri)
    if expected is None:
        assert effects[0].message.error == errors.NO_SUCH_PROCEDURE
    else:
        assert invocation_of(effects).registration == ids[expected]


@settings(max_examples=300, deadline=None)
@given(patterns=st.lists(PATTERNS, max_size=12, unique=True), uri=CONCRETE)
def test_routing_agrees_with_a_brute_force_resolver(patterns, uri):
    """For any set of exact, prefix and wildcard registrations, a CALL goes to the registration the brute-force
    resolver picks, or gets no_such_procedure when it picks none."""
    _check_routing(patterns, uri)


@settings(max_examples=300, deadline=None)
@given(patterns=st.lists(WILDCARDS.map(lambda uri: (uri, WILDCARD)), max_size=8, unique=True), uri=CONCRETE)
@example(patterns=[("a.", WILDCARD), (".a", WILDCARD)], uri="a.a")
@example(patterns=[("..c", WILDCARD), (".b.", WILDCARD), ("a..", WILDCARD)], uri="a.b.c")
def test_wildcard_routing_agrees_with_a_brute_force_resolver(patterns, uri):
    """Among wildcard registrations alone (where ties in wildcard count are common), the choice agrees with the
    brute-force resolver: fewest wildcards, then wildcards further right."""
    _check_routing(patterns, uri)


# --------------------------------------------------------------------------------------------------------------
# progressive call results
# --------------------------------------------------------------------------------------------------------------


def test_progressive_results_reach_the_caller_in_order(dealer, caller, callee):
    """receive_progress reaches the callee; progressive YIELDs become progressive RESULTs in order; the final one
    ends the call."""
    register(dealer, callee, "com.example.stream")
    invocation = invocation_of(call(dealer, caller, "com.example.stream", receive_progress=True))
    assert invocation.receive_progress is True
    effects = []
    for n in (1, 2, 3):
        effects += dealer.yield_(callee, wamp.Yield(1, args=[n], progress=True))
    effects += dealer.yield_(callee, wamp.Yield(1, args=["done"]))
    assert_effects(
        effects,
        send(caller, wamp.Result(7, args=[1], progress=True)),
        send(caller, wamp.Result(7, args=[2], progress=True)),
        send(caller, wamp.Result(7, args=[3], progress=True)),
        send(caller, wamp.Result(7, args=["done"])),
    )
    assert dealer.pending_calls() == []


def test_progress_is_not_forwarded_when_the_caller_did_not_ask(dealer, caller, callee):
    """Without receive_progress, INVOCATION does not ask for progress and stray progressive YIELDs are dropped."""
    register(dealer, callee, "com.example.stream")
    assert invocation_of(call(dealer, caller, "com.example.stream")).receive_progress is None
    assert dealer.yield_(callee, wamp.Yield(1, args=[1], progress=True)) == []
    assert_effects(dealer.yield_(callee, wamp.Yield(1, args=[2])), send(caller, wamp.Result(7, args=[2])))


def test_progress_is_not_requested_from_a_callee_that_cannot_give_it(dealer, caller, plain_callee):
    """A callee that did not announce progressive_call_results is not asked for progress; its final result arrives."""
    register(dealer, plain_callee, "com.example.stream")
    assert invocation_of(call(dealer, caller, "com.example.stream", receive_progress=True)).receive_progress is None
    assert dealer.yield_(plain_callee, wamp.Yield(1, args=[1], progress=True)) == []
    assert_effects(dealer.yield_(plain_callee, wamp.Yield(1, args=[2])), send(caller, wamp.Result(7, args=[2])))


# --------------------------------------------------------------------------------------------------------------
# call canceling
# --------------------------------------------------------------------------------------------------------------


def _pending(dealer, caller, callee, **options):
    register(dealer, callee, "com.example.slow")
    return call(dealer, caller, "com.example.slow", **options)


def test_cancel_skip_answers_at_once_and_drops_the_late_yield(dealer, caller, callee):
    """skip: ERROR wamp.error.canceled to the caller at once, no INTERRUPT; the callee's late YIELD is dropped."""
    _pending(dealer, caller, callee)
    effects = dealer.cancel(caller, wamp.Cancel(7, mode="skip"))
    assert_effects(effects, send(caller, wamp.Error(CALL, 7, errors.CANCELED, args=["call canceled"])))
    assert dealer.yield_(callee, wamp.Yield(1, args=["late"])) == []
    dealer.remove_session(callee)
    assert_empty(dealer)


@pytest.mark.parametrize("mode", ["killnowait", None])
def test_cancel_killnowait_interrupts_and_answers_at_once(dealer, caller, callee, mode):
    """killnowait (also the mode when CANCEL names none): INTERRUPT to the callee and ERROR canceled to the caller
    at once; the callee's late ERROR is dropped."""
    _pending(dealer, caller, callee)
    effects = dealer.cancel(caller, wamp.Cancel(7, mode=mode))
    assert_effects(
        effects,
        send(callee, wamp.Interrupt(1, mode="killnowait", reason=errors.CANCELED)),
        send(caller, wamp.Error(CALL, 7, errors.CANCELED, args=["call canceled"])),
    )
    assert dealer.error(callee, wamp.Error(INVOCATION, 1, errors.CANCELED)) == []
    dealer.remove_session(callee)
    assert_empty(dealer)


def test_cancel_kill_waits_for_the_callee_error(dealer, caller, callee):
    """kill: INTERRUPT to the callee, nothing to the caller until the callee answers; its ERROR (whatever its URI)
    reaches the caller as wamp.error.canceled. Progressive results after the CANCEL are dropped."""
    _pending(dealer, caller, callee, receive_progress=True)
    effects = dealer.cancel(caller, wamp.Cancel(7, mode="kill"))
    assert_effects(effects, send(callee, wamp.Interrupt(1, mode="kill", reason=errors.CANCELED)))
    assert dealer.cancel(caller, wamp.Cancel(7, mode="kill")) == []  # pressing the button again does nothing
    assert dealer.yield_(callee, wamp.Yield(1, args=[1], progress=True)) == []
    assert [c.interrupted for c in dealer.pending_calls()] == [True]
    effects = dealer.error(callee, wamp.Error(INVOCATION, 1, "wamp.error.runtime_error", args=["CancelledError"]))
    assert_effects(effects, send(caller, wamp.Error(CALL, 7, errors.CANCELED, args=["call canceled"])))
    dealer.remove_session(callee)
    assert_empty(dealer)


def test_cancel_kill_still_delivers_a_result_that_won_the_race(dealer, caller, callee):
    """kill: when the callee finishes before it sees the INTERRUPT, its final YIELD reaches the caller as RESULT."""
    _pending(dealer, caller, callee)
    dealer.cancel(caller, wamp.Cancel(7, mode="kill"))
    assert_effects(dealer.yield_(callee, wamp.Yield(1, args=[42])), send(caller, wamp.Result(7, args=[42])))
    assert dealer.pending_calls() == []


@pytest.mark.parametrize("mode", ["kill", "killnowait", None])
def test_cancel_degrades_to_skip_without_callee_support(dealer, caller, plain_callee, mode):
    """A callee that did not announce call_canceling never gets an INTERRUPT: every mode behaves as skip."""
    _pending(dealer, caller, plain_callee)
    effects = dealer.cancel(caller, wamp.Cancel(7, mode=mode))
    assert_effects(effects, send(caller, wamp.Error(CALL, 7, errors.CANCELED, args=["call canceled"])))
    assert dealer.yield_(plain_callee, wamp.Yield(1)) == []
    dealer.remove_session(plain_callee)
    assert_empty(dealer)


def test_cancel_of_an_unknown_or_foreign_call_is_ignored(dealer, caller, callee):
    """CANCEL for a call that already finished (a race) or that belongs to another session changes nothing."""
    _pending(dealer, caller, callee)
    assert dealer.cancel(caller, wamp.Cancel(99, mode="skip")) == []
    assert dealer.cancel(make_peer(9), wamp.Cancel(7, mode="skip")) == []
    assert len(dealer.pending_calls()) == 1


def test_cancel_stops_the_call_timer(dealer, caller, callee):
    """Canceling a call with a timeout cancels its timer too."""
    timers = Timers()
    timers.apply(_pending(dealer, caller, callee, timeout=5000))
    timers.apply(dealer.cancel(caller, wamp.Cancel(7, mode="skip")))
    assert timers.running == {}


# --------------------------------------------------------------------------------------------------------------
# call timeouts
# --------------------------------------------------------------------------------------------------------------


def test_timeout_starts_a_timer_and_forwards_the_timeout(dealer, caller, callee):
    """CALL timeout (ms) becomes a StartTimer in seconds and INVOCATION details carry the timeout in ms."""
    registration = register(dealer, callee, "com.example.slow")
    effects = call(dealer, caller, "com.example.slow", timeout=1500)
    assert_effects(
        effects,
        send(callee, wamp.Invocation(1, registration, timeout=1500)),
        StartTimer(CallTimer(callee.session_id, 1), 1.5),
    )
    assert [c.deadline for c in dealer.pending_calls()] == [101.5]


def test_timeout_expiry_answers_the_caller_and_interrupts_the_callee(dealer, caller, callee):
    """On expiry the caller gets wamp.error.timeout and the callee an INTERRUPT (killnowait, reason timeout); a late
    YIELD is dropped and nothing is left."""
    timers = Timers()
    timers.apply(_pending(dealer, caller, callee, timeout=1000))
    effects = timers.fire(dealer, CallTimer(callee.session_id, 1), now=101.0)
    assert_effects(
        effects,
        send(callee, wamp.Interrupt(1, mode="killnowait", reason=errors.TIMEOUT)),
        send(caller, wamp.Error(CALL, 7, errors.TIMEOUT, args=["call timed out"])),
    )
    assert dealer.yield_(callee, wamp.Yield(1, args=["late"])) == []
    assert timers.running == {}
    dealer.remove_session(callee)
    assert_empty(dealer)


def test_timeout_without_callee_canceling_sends_no_interrupt(dealer, caller, plain_callee):
    """A callee that cannot be interrupted gets nothing on expiry; the caller still gets wamp.error.timeout."""
    timers = Timers()
    timers.apply(_pending(dealer, caller, plain_callee, timeout=1000))
    effects = timers.fire(dealer, CallTimer(plain_callee.session_id, 1))
    assert_effects(effects, send(caller, wamp.Error(CALL, 7, errors.TIMEOUT, args=["call timed out"])))


def test_completion_cancels_the_timer_and_a_stale_timer_does_nothing(dealer, caller, callee):
    """The final YIELD cancels the call's timer; a timer that fires anyway afterwards has no effect."""
    timers = Timers()
    timers.apply(_pending(dealer, caller, callee, timeout=1000))
    effects = timers.apply(dealer.yield_(callee, wamp.Yield(1)))
    assert effects[0] == CancelTimer(CallTimer(callee.session_id, 1))
    assert timers.running == {}
    assert dealer.on_timeout(CallTimer(callee.session_id, 1), 200.0) == []


def test_timeout_after_kill_does_not_interrupt_twice(dealer, caller, callee):
    """A call cancelled with kill that then times out answers the caller with timeout and sends no second INTERRUPT."""
    timers = Timers()
    timers.apply(_pending(dealer, caller, callee, timeout=1000))
    dealer.cancel(caller, wamp.Cancel(7, mode="kill"))
    effects = timers.fire(dealer, CallTimer(callee.session_id, 1))
    assert_effects(effects, send(caller, wamp.Error(CALL, 7, errors.TIMEOUT, args=["call timed out"])))
    assert dealer.error(callee, wamp.Error(INVOCATION, 1, errors.CANCELED)) == []


@pytest.mark.parametrize("requested", [60_001, 10**400])
def test_timeout_is_capped_by_the_router(caller, callee, requested):
    """A requested timeout above max_call_timeout is cut to it, even one too large for a float."""
    dealer = make_dealer(max_call_timeout=60.0)
    effects = _pending(dealer, caller, callee, timeout=requested)
    assert invocation_of(effects).timeout == 60_000
    assert effects[-1] == StartTimer(CallTimer(callee.session_id, 1), 60.0)


def test_default_timeout_applies_to_calls_without_one(caller, callee):
    """With default_call_timeout set, a CALL without timeout (or timeout 0) gets that timeout."""
    dealer = make_dealer(default_call_timeout=30.0)
    effects = _pending(dealer, caller, callee, timeout=0)
    assert invocation_of(effects).timeout == 30_000
    assert effects[-1] == StartTimer(CallTimer(callee.session_id, 1), 30.0)


def test_no_timeout_means_no_timer(dealer, caller, callee):
    """By default a CALL without timeout starts no timer and INVOCATION carries no timeout."""
    effects = _pending(dealer, caller, callee)
    assert [type(e) for e in effects] == [Send]
    assert invocation_of(effects).timeout is None


@pytest.mark.parametrize(
    "options", [{"max_call_timeout": 0}, {"default_call_timeout": -1.0}, {"max_retired_per_callee": 0}]
)
def test_bad_limits_are_refused_at_construction(options):
    """Limits that make no sense stop start-up with an error naming the option."""
    with pytest.raises(ValueError, match=next(iter(options))):
        make_dealer(**options)


# --------------------------------------------------------------------------------------------------------------
# sessions leaving
# --------------------------------------------------------------------------------------------------------------


def test_callee_leaving_mid_call_answers_the_caller_and_clears_everything(dealer, caller, callee):
    """When a callee leaves, each call pending on it gets ERROR wamp.error.canceled ("callee left"), its timers are
    cancelled and its registrations removed; no table keeps anything."""
    timers = Timers()
    register(dealer, callee, "com.example.slow")
    timers.apply(call(dealer, caller, "com.example.slow", 7, timeout=1000))
    timers.apply(call(dealer, caller, "com.example.slow", 8))
    effects = timers.apply(dealer.remove_session(callee))
    assert_effects(
        effects,
        CancelTimer(CallTimer(callee.session_id, 1)),
        send(caller, wamp.Error(CALL, 7, errors.CALLEE_LOST, args=["callee left"])),
        send(caller, wamp.Error(CALL, 8, errors.CALLEE_LOST, args=["callee left"])),
    )
    assert errors.CALLEE_LOST == "wamp.error.canceled"
    assert timers.running == {}
    assert_empty(dealer)
    dealer.remove_session(caller)
    assert_empty(dealer)


def test_caller_leaving_mid_call_interrupts_the_callee_and_drops_its_answer(dealer, caller, callee):
    """When a caller leaves, its pending invocations are interrupted, their timers cancelled, and the callee's late
    YIELD is dropped without error; afterwards no table keeps anything."""
    timers = Timers()
    timers.apply(_pending(dealer, caller, callee, timeout=1000))
    effects = timers.apply(dealer.remove_session(caller))
    assert_effects(
        effects,
        CancelTimer(CallTimer(callee.session_id, 1)),
        send(callee, wamp.Interrupt(1, mode="killnowait", reason=errors.CANCELED)),
    )
    assert dealer.yield_(callee, wamp.Yield(1, args=["progress"], progress=True)) == []
    assert dealer.yield_(callee, wamp.Yield(1, args=["late"])) == []
    sizes = dealer.table_sizes()
    assert (sizes["calls"], sizes["caller_sessions"], sizes["invocations"], sizes["retired"]) == (0, 0, 0, 0)
    dealer.remove_session(callee)
    assert_empty(dealer)
    assert timers.running == {}


def test_caller_leaving_does_not_interrupt_a_callee_without_canceling(dealer, caller, plain_callee):
    """A callee that cannot be interrupted gets no INTERRUPT when the caller leaves; its late YIELD is dropped."""
    _pending(dealer, caller, plain_callee)
    assert dealer.remove_session(caller) == []
    assert dealer.yield_(plain_callee, wamp.Yield(1)) == []


def test_session_calling_itself_leaves_cleanly(dealer, callee):
    """A session that is caller and callee of the same pending call leaves without messages to itself."""
    register(dealer, callee, "com.example.self")
    call(dealer, callee, "com.example.self", timeout=1000)
    assert dealer.remove_session(callee) == [CancelTimer(CallTimer(callee.session_id, 1))]
    assert_empty(dealer)


def test_many_sessions_leave_and_every_table_is_empty(dealer):
    """After a mix of registrations, shared registrations, answered and pending calls, every session leaving
    leaves every table empty and no timer running."""
    timers = Timers()
    peers = [make_peer(sid, canceling=sid % 2 == 0) for sid in range(10, 16)]
    for peer in peers[:3]:
        register(dealer, peer, "com.example.shared", invoke="roundrobin")
    register(dealer, peers[3], "com.example.", match=PREFIX)
    for request, peer in enumerate(peers, start=1):
        timers.apply(call(dealer, peer, "com.example.shared", request, timeout=1000 * request))
        timers.apply(call(dealer, peer, "com.example.other", request + 100, timeout=1000))
    timers.apply(dealer.yield_(peers[0], wamp.Yield(1)))
    timers.apply(dealer.cancel(peers[1], wamp.Cancel(2, mode="kill")))
    for peer in reversed(peers):
        timers.apply(dealer.remove_session(peer))
    assert_empty(dealer)
    assert timers.running == {}


# --------------------------------------------------------------------------------------------------------------
# request ids and protocol violations
# --------------------------------------------------------------------------------------------------------------


def test_reusing_a_pending_call_request_id_is_a_protocol_violation(dealer, caller, callee):
    """A CALL whose request id is still pending in the same session aborts it, in the check and in the action."""
    _pending(dealer, caller, callee)
    again = wamp.Call(7, "com.example.slow")
    expected = [Abort(caller, errors.PROTOCOL_VIOLATION, "CALL request id 7 is still pending in this session")]
    assert dealer.check_call(caller, again) == expected
    assert dealer.call(caller, again) == expected
    assert len(dealer.pending_calls()) == 1


def test_request_ids_may_be_reused_after_the_call_ended_or_by_another_session(dealer, caller, callee):
    """Request ids are per session and free again once the call was answered."""
    _pending(dealer, caller, callee)
    assert isinstance(invocation_of(call(dealer, make_peer(9), "com.example.slow", 7)), wamp.Invocation)
    dealer.yield_(callee, wamp.Yield(1))
    assert invocation_of(call(dealer, caller, "com.example.slow", 7)).request == 3


def test_yield_for_an_id_never_issued_is_a_protocol_violation(dealer, caller, callee):
    """A YIELD or ERROR for an invocation id the router never issued to that callee aborts the callee."""
    _pending(dealer, caller, callee)
    assert dealer.yield_(callee, wamp.Yield(2)) == [
        Abort(callee, errors.PROTOCOL_VIOLATION, "YIELD for an invocation that is not pending")
    ]
    assert dealer.error(callee, wamp.Error(INVOCATION, 5, "x.y")) == [
        Abort(callee, errors.PROTOCOL_VIOLATION, "ERROR for an invocation that is not pending")
    ]
    stranger = make_peer(9)
    assert dealer.yield_(stranger, wamp.Yield(1)) == [
        Abort(stranger, errors.PROTOCOL_VIOLATION, "YIELD for an invocation that is not pending")
    ]
    assert len(dealer.pending_calls()) == 1


def test_a_second_final_answer_is_a_protocol_violation(dealer, caller, callee):
    """After the final YIELD of a normally answered call, another YIELD or ERROR for it aborts the callee."""
    _pending(dealer, caller, callee)
    dealer.yield_(callee, wamp.Yield(1))
    assert dealer.yield_(callee, wamp.Yield(1)) == [
        Abort(callee, errors.PROTOCOL_VIOLATION, "YIELD for an invocation that is not pending")
    ]


def test_a_late_answer_is_dropped_once_then_a_duplicate_is_a_violation(dealer, caller, callee):
    """For a cancelled call, the callee's progressive and final answers are dropped; a second final one aborts."""
    _pending(dealer, caller, callee)
    dealer.cancel(caller, wamp.Cancel(7, mode="skip"))
    assert dealer.yield_(callee, wamp.Yield(1, progress=True)) == []
    assert dealer.yield_(callee, wamp.Yield(1)) == []
    assert dealer.error(callee, wamp.Error(INVOCATION, 1, "x.y")) == [
        Abort(callee, errors.PROTOCOL_VIOLATION, "ERROR for an invocation that is not pending")
    ]


def test_the_late_answer_record_is_bounded(caller, callee):
    """The record of abandoned invocations per callee keeps at most max_retired_per_callee ids; answers for ids
    forgotten beyond it are dropped quietly rather than aborting a slow callee."""
    dealer = make_dealer(max_retired_per_callee=2)
    register(dealer, callee, "com.example.slow")
    for request in (1, 2, 3):
        call(dealer, caller, "com.example.slow", request)
        dealer.cancel(caller, wamp.Cancel(request, mode="skip"))
    assert dealer.table_sizes()["retired"] == 2
    assert [dealer.yield_(callee, wamp.Yield(invocation)) for invocation in (1, 2, 3)] == [[], [], []]
    assert dealer.table_sizes()["retired"] == 0
    assert dealer.yield_(callee, wamp.Yield(4))[0].reason == errors.PROTOCOL_VIOLATION


def test_callee_ledger_counts_ids_and_classifies_answers():
    """CalleeLedger issues 1, 2, 3 ...; retired ids are late until their final answer; others are not late."""
    ledger = CalleeLedger(limit=10)
    assert [ledger.issue() for _ in range(3)] == [1, 2, 3]
    ledger.retire(2)
    assert ledger.is_late(2, final=False) and ledger.is_late(2, final=True)
    assert not ledger.is_late(2, final=True)
    assert not ledger.is_late(1, final=True) and not ledger.is_late(4, final=True) and not ledger.is_late(0, True)


# --------------------------------------------------------------------------------------------------------------
# features and purity
# --------------------------------------------------------------------------------------------------------------


def test_router_features_announce_exactly_what_works(dealer):
    """WELCOME's dealer role announces the implemented features and nothing else."""
    features = dealer.router_features()
    assert isinstance(features, RoleDealerFeatures)
    announced = {name for name, value in vars(features).items() if value}
    assert announced == {
        "caller_identification",
        "pattern_based_registration",
        "shared_registration",
        "call_timeout",
        "call_canceling",
        "progressive_call_results",
        "payload_transparency",
    }


@pytest.mark.parametrize("module", ["dealer.py", "calls.py"])
def test_dealer_modules_are_sans_io(module):
    """The dealer imports no I/O, clock or randomness: twisted, txaio, socket, time and random stay out."""
    import wampgate.core

    tree = ast.parse((Path(wampgate.core.__file__).parent / module).read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert imported.isdisjoint({"twisted", "txaio", "socket", "time", "random", "asyncio"})
