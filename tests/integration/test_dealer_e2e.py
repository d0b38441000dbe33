"""End-to-end RPC against a real router and real Autobahn clients (Twisted in-process, asyncio in a subprocess).

Pins down: register / call round trips with untouched payloads on WebSocket and RawSocket with JSON and
MessagePack; the router's error URIs; callee errors passed through; exact / prefix / wildcard registrations and the
reserved `wamp.` space; shared registrations and every invoke policy; progressive results; cancelling in each mode;
call timeouts; caller disclosure and forward_for stripping; callees and callers vanishing mid-call; the dealer
features WELCOME announces; authorization of call and register; an asyncio client talking to a Twisted one; and
RESULT / INVOCATION messages over a RawSocket peer's announced maximum length (answered with an ERROR).

Requests Autobahn's client API cannot express (`disclose_me`, `forward_for`, a CANCEL with a mode, an UNREGISTER for
an id the client no longer holds) are built by hand and sent on the session's transport with a pending-request entry
registered in the session first, so Autobahn's own reply handling turns RESULT / ERROR into a value or an
ApplicationError. Inbound messages are recorded by wrapping the session's `onMessage`, which every Autobahn
transport looks up per message.

Every test that routes calls ends with the dealer's tables empty (all sessions gone) and no call timer left in the
realm's effect runner: a leak anywhere fails the test that caused it. Waits are bounded (`within`, `eventually`):
a missing answer fails the test in seconds instead of hanging it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import pytest_twisted
import txaio
from autobahn.exception import PayloadExceededError
from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.request import CallRequest, UnregisterRequest
from autobahn.wamp.types import CallOptions, CallResult, RegisterOptions
from twisted.internet import defer, task, utils

from tests.integration.conftest import target
from tests.support import raw
from tests.support.clients import connect, leave_all, record_inbound
from tests.support.router import listener, start_router
from tests.support.wait import eventually

NO_SUCH_PROCEDURE = "wamp.error.no_such_procedure"
PROCEDURE_ALREADY_EXISTS = "wamp.error.procedure_already_exists"
NO_SUCH_REGISTRATION = "wamp.error.no_such_registration"
INVALID_URI = "wamp.error.invalid_uri"
NOT_AUTHORIZED = "wamp.error.not_authorized"
CANCELED = "wamp.error.canceled"
TIMEOUT = "wamp.error.timeout"
PAYLOAD_SIZE_EXCEEDED = ApplicationError.PAYLOAD_SIZE_EXCEEDED  # "wamp.error.payload_size_exceeded"

# WAMP message type codes for hand-written messages.
ERROR, CALL, RESULT, REGISTER, REGISTERED = 8, 48, 50, 64, 65

COMBINATIONS = [
    ("websocket", "json"),
    ("websocket", "msgpack"),
    ("rawsocket", "json"),
    ("rawsocket", "msgpack"),
]

DEALER_FEATURES = {
    "caller_identification": True,
    "pattern_based_registration": True,
    "shared_registration": True,
    "call_timeout": True,
    "call_canceling": True,
    "progressive_call_results": True,
    "payload_transparency": True,
    "registration_meta_api": True,
}

EMPTY_TABLES = {
    "registrations": 0,
    "index": 0,
    "callee_sessions": 0,
    "caller_sessions": 0,
    "calls": 0,
    "ledgers": 0,
    "invocations": 0,
    "retired": 0,
}

ASYNCIO_SCRIPT = Path(__file__).resolve().parents[1] / "support" / "asyncio_rpc_client.py"


# -- helpers -----------------------------------------------------------------------------------------------------


def _reactor():
    from twisted.internet import reactor

    return reactor


def within(awaitable, seconds: float = 3.0) -> defer.Deferred:
    """A Deferred for a coroutine or Deferred that fails with defer.TimeoutError after `seconds`: nothing hangs."""
    d = awaitable if isinstance(awaitable, defer.Deferred) else defer.ensureDeferred(awaitable)
    d.addTimeout(seconds, _reactor())
    return d


async def join(router, count: int = 1, *, transport: str = "websocket", serializer: str = "json",
               listener_name: str = "universal") -> list:
    """`count` Autobahn Twisted sessions joined to realm1 through one listener."""
    where = target(router, listener_name, transport, serializer)
    return [await within(connect(where)) for _ in range(count)]




async def assert_all_clean(router) -> None:
    """Every dealer table is empty and the realm's effect runner holds no call timer."""
    dealer = router.realm().dealer
    effects = router.service.context.realms["realm1"].effects
    await eventually(lambda: dealer.table_sizes() == EMPTY_TABLES and effects.pending_timers == 0,
                     "the dealer forgot every session")
    assert dealer.table_sizes() == EMPTY_TABLES
    assert effects.pending_timers == 0


def session_id(session) -> int:
    return session.welcome.session




def of_type(messages: list, kind: type) -> list:
    return [m for m in messages if isinstance(m, kind)]


def send_call(session, msg: message.Call, options: CallOptions | None = None) -> defer.Deferred:
    """Send a hand-built CALL; Autobahn resolves the returned Deferred from the RESULT or ERROR as usual."""
    reply = txaio.create_future()
    session._call_reqs[msg.request] = CallRequest(msg.request, msg.procedure, reply, options)
    session._transport.send(msg)
    return reply


def send_unregister(session, registration_id: int) -> defer.Deferred:
    """An UNREGISTER for any id, even one Autobahn would refuse locally; returns the reply Deferred."""
    request = session._request_id_gen.next()
    reply = txaio.create_future()
    session._unregister_reqs[request] = UnregisterRequest(request, reply, registration_id)
    session._transport.send(message.Unregister(request, registration_id))
    return reply


def send_cancel(session, procedure: str, mode: str) -> None:
    """A CANCEL with an explicit mode for the session's pending call to `procedure` (Autobahn sends no mode)."""
    [request] = [r for r, call in session._call_reqs.items() if call.procedure == procedure]
    session._transport.send(message.Cancel(request, mode=mode))


class DisclosingCall(message.Call):
    """A CALL carrying the spec's `disclose_me`, which Autobahn's CallOptions cannot send."""

    def marshal(self):
        raw = super().marshal()
        raw[2]["disclose_me"] = True
        return raw


async def error_of(d, seconds: float = 3.0) -> ApplicationError:
    """The ApplicationError a Deferred fails with (bounded); fails the test if it succeeds instead."""
    try:
        result = await within(d, seconds)
    except ApplicationError as e:
        return e
    raise AssertionError(f"expected an ApplicationError, got the result {result!r}")


class Held:
    """A callee handler that never answers by itself: each invocation gets a Deferred the test may fire, and the
    handler records when Autobahn cancels that Deferred (which it does on INTERRUPT)."""

    def __init__(self):
        self.calls: list = []  # (args, kwargs, Deferred) per invocation
        self.cancelled: list[int] = []  # indices of invocations whose Deferred was cancelled
        self._arrivals: dict[int, defer.Deferred] = {}

    def __call__(self, *args, **kwargs):
        index = len(self.calls)
        d = defer.Deferred(lambda _: self.cancelled.append(index))
        self.calls.append((args, kwargs, d))
        waiting = self._arrivals.setdefault(index, defer.Deferred())
        waiting.callback(None)
        return d

    def arrival(self, index: int = 0) -> defer.Deferred:
        """Fires once invocation `index` has reached the handler."""
        if index not in self._arrivals:
            self._arrivals[index] = defer.Deferred()
            if index < len(self.calls):
                self._arrivals[index].callback(None)
        return self._arrivals[index]


def stubborn():
    """A handler that is interrupted (INTERRUPT cancels what it awaits) but answers anyway once released, so its
    YIELD reaches the router after the call has ended there. Returns (handler, started, interrupted, release)."""
    started, interrupted, release = defer.Deferred(), defer.Deferred(), defer.Deferred()

    async def handler(*args, **kwargs):
        started.callback(args)
        try:
            await defer.Deferred()  # only an INTERRUPT ends this wait
        except defer.CancelledError:
            interrupted.callback(None)
            await release
        return "answered anyway"

    return handler, started, interrupted, release


# -- 1. round trips ------------------------------------------------------------------------------------------------

ARGS = (
    {"nested": [1, {"deep": [None, True, False, 1.5, -7]}], "empty": {}, "list": []},
    "héllo ☃ 𝄞 — ünïcode",
    2**53,
    -(2**53),
    [[["three levels"]]],
)
KWARGS = {"ключ": "значение", "big": 2**53, "none": None, "map": {"a": [1, 2, {"b": "c"}]}}


@pytest.mark.parametrize("transport,serializer", COMBINATIONS)
@pytest_twisted.ensureDeferred
async def test_register_and_call_round_trip(router, transport, serializer):
    """A CALL's args and kwargs (nested data, unicode, 2**53, and bytes over MessagePack) reach the callee
    untouched, and the callee's YIELD reaches the caller as a RESULT with exactly that payload, on every
    transport x serializer combination."""
    callee, caller = await join(router, 2, transport=transport, serializer=serializer)
    args = ARGS + ((b"\x00\x01\xfe\xffbinary",) if serializer == "msgpack" else ())
    kwargs = dict(KWARGS, **({"blob": b"\x00" * 3 + b"\xff"} if serializer == "msgpack" else {}))
    received = []

    def echo(*a, **kw):
        received.append((a, kw))
        return CallResult(*a, echoed=True, **kw)

    registration = await within(callee.register(echo, "com.example.echo"))
    result = await within(caller.call("com.example.echo", *args, **kwargs))
    assert received == [(args, kwargs)]
    assert isinstance(result, CallResult)
    assert tuple(result.results) == args
    assert result.kwresults == dict(kwargs, echoed=True)
    empty = await within(caller.call("com.example.echo"))  # a CALL without payload arrives without one
    assert received[1] == ((), {})
    assert (tuple(empty.results), empty.kwresults) == ((), {"echoed": True})
    await within(registration.unregister())
    await leave_all(callee, caller)
    await assert_all_clean(router)


@pytest_twisted.ensureDeferred
async def test_payload_crosses_serializers_and_transports(router):
    """A JSON WebSocket caller reaches a MessagePack RawSocket callee and back: the router re-serializes the
    payload without changing a value (bytes included, carried in JSON by Autobahn's base64 convention)."""
    [callee] = await join(router, transport="rawsocket", serializer="msgpack", listener_name="rawsocket")
    [caller] = await join(router, transport="websocket", serializer="json", listener_name="websocket")
    received = []

    def echo(*a, **kw):
        received.append((a, kw))
        return CallResult(*a, **kw)

    await within(callee.register(echo, "com.example.cross"))
    result = await within(caller.call("com.example.cross", "ü", 2**53, b"\x00\xff", flag=[True, None]))
    assert received == [(("ü", 2**53, b"\x00\xff"), {"flag": [True, None]})]
    assert (tuple(result.results), result.kwresults) == (("ü", 2**53, b"\x00\xff"), {"flag": [True, None]})
    await leave_all(callee, caller)
    await assert_all_clean(router)


# -- 2. router errors ------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_call_to_unregistered_procedure_is_no_such_procedure(router):
    """A CALL nobody registered is answered with wamp.error.no_such_procedure and leaves no call behind."""
    [caller] = await join(router, transport="rawsocket", serializer="msgpack")
    error = await error_of(caller.call("com.example.nobody", 1, a=2))
    assert error.error == NO_SUCH_PROCEDURE
    assert router.realm().dealer.table_sizes() == EMPTY_TABLES
    await leave_all(caller)


@pytest_twisted.ensureDeferred
async def test_second_register_by_another_session_is_procedure_already_exists(router):
    """A second REGISTER of the same URI (single policy) by another session is refused with
    wamp.error.procedure_already_exists; the first registration keeps serving."""
    first, second, caller = await join(router, 3, transport="websocket", serializer="msgpack")
    await within(first.register(lambda: "first", "com.example.once"))
    error = await error_of(second.register(lambda: "second", "com.example.once"))
    assert error.error == PROCEDURE_ALREADY_EXISTS
    assert await within(caller.call("com.example.once")) == "first"
    await leave_all(first, second, caller)
    await assert_all_clean(router)


@pytest.mark.parametrize("procedure,match", [
    ("com..x", None),  # an empty component is only valid in a wildcard pattern
    ("wamp.anything", None),  # the wamp. space belongs to the router
    ("wamp.", "prefix"),
    ("wamp..get", "wildcard"),
])
@pytest_twisted.ensureDeferred
async def test_register_invalid_or_reserved_uri_is_invalid_uri(router, procedure, match):
    """REGISTER of an invalid URI or one in the reserved `wamp.` space is refused with wamp.error.invalid_uri."""
    [callee] = await join(router, transport="rawsocket", serializer="json")
    options = RegisterOptions(match=match) if match else None
    error = await error_of(callee.register(lambda: None, procedure, options=options))
    assert error.error == INVALID_URI
    assert router.realm().dealer.table_sizes() == EMPTY_TABLES
    await leave_all(callee)


@pytest_twisted.ensureDeferred
async def test_client_pattern_never_serves_wamp_procedures(router):
    """A client's wildcard registration `.session.peek` serves `com.session.peek` but never `wamp.session.peek`:
    the broad "" grant of the test realm does not reach the router's reserved `wamp.` space (not_authorized; the
    dealer's own refusal to route `wamp.` calls to client patterns is pinned in the unit tests)."""
    callee, caller = await join(router, 2, transport="websocket", serializer="json")
    await within(callee.register(lambda: "client", ".session.peek", options=RegisterOptions(match="wildcard")))
    assert await within(caller.call("com.session.peek")) == "client"
    error = await error_of(caller.call("wamp.session.peek"))
    assert error.error == "wamp.error.not_authorized"
    await leave_all(callee, caller)
    await assert_all_clean(router)


@pytest_twisted.ensureDeferred
async def test_unregister_unknown_registration_is_no_such_registration(router):
    """UNREGISTER of an id already unregistered, of an id that never existed, and of another session's
    registration is answered with wamp.error.no_such_registration; the other session's registration survives."""
    owner, other, caller = await join(router, 3, transport="rawsocket", serializer="msgpack")
    registration = await within(owner.register(lambda: "mine", "com.example.owned"))
    kept = await within(owner.register(lambda: "kept", "com.example.kept"))
    await within(registration.unregister())
    assert (await error_of(send_unregister(owner, registration.id))).error == NO_SUCH_REGISTRATION
    assert (await error_of(send_unregister(owner, 999))).error == NO_SUCH_REGISTRATION
    assert (await error_of(send_unregister(other, kept.id))).error == NO_SUCH_REGISTRATION
    assert await within(caller.call("com.example.kept")) == "kept"
    assert (await error_of(caller.call("com.example.owned"))).error == NO_SUCH_PROCEDURE
    assert owner.is_attached() and other.is_attached()
    await leave_all(owner, other, caller)
    await assert_all_clean(router)


@pytest_twisted.ensureDeferred
async def test_unregister_leaves_calls_in_flight_to_finish(router):
    """UNREGISTER while a call to that registration is pending: new calls get wamp.error.no_such_procedure, but
    the call already sent to the callee finishes normally with the callee's result."""
    [callee] = await join(router, transport="websocket", serializer="json", listener_name="websocket")
    [caller] = await join(router, transport="rawsocket", serializer="json", listener_name="rawsocket")
    held = Held()
    registration = await within(callee.register(held, "com.example.leaving"))
    d = caller.call("com.example.leaving", "x")
    await within(held.arrival(0))
    await within(registration.unregister())
    assert (await error_of(caller.call("com.example.leaving"))).error == NO_SUCH_PROCEDURE
    held.calls[0][2].callback("finished")
    assert await within(d) == "finished"
    assert held.cancelled == []
    await leave_all(callee, caller)
    await assert_all_clean(router)


# -- 3. callee errors ------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_callee_error_reaches_caller_unchanged(router):
    """A callee raising ApplicationError("com.example.error.oops", 1, 2, reason="x") makes the caller's call fail
    with exactly that URI, args (1, 2) and kwargs {"reason": "x"}."""
    [callee] = await join(router, transport="rawsocket", serializer="json", listener_name="rawsocket")
    [caller] = await join(router, transport="websocket", serializer="msgpack")

    def oops():
        raise ApplicationError("com.example.error.oops", 1, 2, reason="x")

    await within(callee.register(oops, "com.example.oops"))
    error = await error_of(caller.call("com.example.oops"))
    assert error.error == "com.example.error.oops"
    assert error.args == (1, 2)
    assert error.kwargs == {"reason": "x"}
    await leave_all(callee, caller)
    await assert_all_clean(router)


# -- 4. pattern registrations -----------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_exact_beats_prefix_beats_wildcard(router):
    """With prefix "com.p.", wildcard "com..x" and exact "com.p.x" registered: "com.p.x" reaches the exact one,
    "com.p.y" the prefix one, "com.q.x" the wildcard one; pattern callees see the called URI in
    CallDetails.procedure, and the exact callee sees its own URI."""
    callee, caller = await join(router, 2, transport="websocket", serializer="msgpack")
    hits = []

    def handler(name):
        def handle(details):
            hits.append((name, details.procedure))
            return name

        return handle

    with_details = {"details_arg": "details"}
    await within(callee.register(handler("prefix"), "com.p.", options=RegisterOptions(match="prefix", **with_details)))
    await within(callee.register(handler("wildcard"), "com..x",
                                 options=RegisterOptions(match="wildcard", **with_details)))
    await within(callee.register(handler("exact"), "com.p.x", options=RegisterOptions(**with_details)))
    assert await within(caller.call("com.p.x")) == "exact"
    assert await within(caller.call("com.p.y")) == "prefix"
    assert await within(caller.call("com.q.x")) == "wildcard"
    assert await within(caller.call("com.p.deeper.x")) == "prefix"  # the prefix is longer than the wildcard's lead
    assert hits == [
        ("exact", "com.p.x"),
        ("prefix", "com.p.y"),
        ("wildcard", "com.q.x"),
        ("prefix", "com.p.deeper.x"),
    ]
    assert (await error_of(caller.call("com.q.y"))).error == NO_SUCH_PROCEDURE
    await leave_all(callee, caller)
    await assert_all_clean(router)


# -- 5. shared registrations -------------------------------------------------------------------------------------


async def shared(router, policy: str, *, transport: str, serializer: str):
    """Three callees sharing "com.example.shared" under `policy` (each answers its index), and a caller."""
    sessions = await join(router, 4, transport=transport, serializer=serializer)
    callees, caller = sessions[:3], sessions[3]
    registrations = []
    for index, callee in enumerate(callees):
        registrations.append(await within(
            callee.register(lambda i=index: i, "com.example.shared", options=RegisterOptions(invoke=policy))))
    assert len({r.id for r in registrations}) == 1  # one registration, three callees
    return callees, caller, registrations


async def call_many(caller, count: int) -> list:
    return [await within(caller.call("com.example.shared")) for _ in range(count)]


@pytest_twisted.ensureDeferred
async def test_roundrobin_rotates_through_callees_in_order(router):
    """invoke="roundrobin" with three callees: six calls land on callee 0, 1, 2, 0, 1, 2; when callee 1 leaves,
    the rotation goes on over the remaining two without skipping anyone."""
    callees, caller, _ = await shared(router, "roundrobin", transport="rawsocket", serializer="msgpack")
    assert await call_many(caller, 6) == [0, 1, 2, 0, 1, 2]
    assert await call_many(caller, 1) == [0]
    await leave_all(callees[1])
    await eventually(lambda: len(router.realm().dealer.registrations()[0].callees) == 2, "callee 1 is gone")
    assert await call_many(caller, 4) == [2, 0, 2, 0]
    await leave_all(callees[0], callees[2], caller)
    await assert_all_clean(router)


@pytest.mark.parametrize("policy,expected,leaver,then", [("first", 0, 0, 1), ("last", 2, 2, 1)])
@pytest_twisted.ensureDeferred
async def test_first_and_last_pick_by_registration_order(router, policy, expected, leaver, then):
    """invoke="first" always uses the earliest registered callee and "last" the latest; when that callee
    unregisters, the next in line (callee 1 of 0, 1, 2) takes over."""
    callees, caller, registrations = await shared(router, policy, transport="websocket", serializer="json")
    assert await call_many(caller, 4) == [expected] * 4
    await within(registrations[leaver].unregister())
    assert await call_many(caller, 3) == [then] * 3
    await leave_all(*callees, caller)
    await assert_all_clean(router)


@pytest_twisted.ensureDeferred
async def test_random_lands_on_registered_callees_only(router):
    """invoke="random": every one of 60 calls lands on one of the three callees, and each callee gets at least
    one (the chance that one gets none by luck is 3 * (2/3)**60, about 1e-10)."""
    callees, caller, _ = await shared(router, "random", transport="rawsocket", serializer="json")
    answers = await within(defer.gatherResults([caller.call("com.example.shared") for _ in range(60)]))
    assert set(answers) == {0, 1, 2}
    assert len(answers) == 60
    await leave_all(*callees, caller)
    await assert_all_clean(router)


@pytest_twisted.ensureDeferred
async def test_single_and_mismatched_policies_are_refused(router):
    """invoke="single" refuses a second callee; a second REGISTER asking for another invoke policy than the
    existing registration's is refused too; both with wamp.error.procedure_already_exists. A session cannot join
    a shared registration twice either."""
    first, second, caller = await join(router, 3, transport="websocket", serializer="msgpack",
                                       listener_name="websocket")
    single = RegisterOptions(invoke="single")
    await within(first.register(lambda: "first", "com.example.single", options=single))
    assert (await error_of(second.register(lambda: "x", "com.example.single", options=single))).error \
        == PROCEDURE_ALREADY_EXISTS
    assert (await error_of(second.register(lambda: "x", "com.example.single",
                                           options=RegisterOptions(invoke="roundrobin")))).error \
        == PROCEDURE_ALREADY_EXISTS
    await within(first.register(lambda: "rr", "com.example.rr", options=RegisterOptions(invoke="roundrobin")))
    for policy in ("random", "first", "last", "single"):
        error = await error_of(second.register(lambda: "x", "com.example.rr", options=RegisterOptions(invoke=policy)))
        assert error.error == PROCEDURE_ALREADY_EXISTS, policy
    error = await error_of(first.register(lambda: "x", "com.example.rr", options=RegisterOptions(invoke="roundrobin")))
    assert error.error == PROCEDURE_ALREADY_EXISTS
    assert await within(caller.call("com.example.single")) == "first"
    assert await within(caller.call("com.example.rr")) == "rr"
    assert router.realm().dealer.table_sizes()["registrations"] == 2
    await leave_all(first, second, caller)
    await assert_all_clean(router)


# -- 6. progressive results ----------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_progressive_results_arrive_in_order_before_the_final_result(router):
    """A callee sending three progressive results then a final one: the caller's on_progress gets the three in
    order, with their args and kwargs, before the final RESULT; a caller that did not ask gets only the final."""
    [callee] = await join(router, transport="rawsocket", serializer="msgpack")
    [caller] = await join(router, transport="websocket", serializer="json")
    order = []

    async def countdown(n, details=None):
        if details.progress is not None:
            for i in range(n):
                details.progress(i, step=f"#{i}")
                await task.deferLater(_reactor(), 0, lambda: None)
        return "final"

    await within(callee.register(countdown, "com.example.countdown", options=RegisterOptions(details_arg="details")))
    on_progress = lambda *args, **kwargs: order.append(("progress", args, kwargs))  # noqa: E731
    d = caller.call("com.example.countdown", 3, options=CallOptions(on_progress=on_progress))
    d.addCallback(lambda result: order.append(("final", result)))
    await within(d)
    assert order == [
        ("progress", (0,), {"step": "#0"}),
        ("progress", (1,), {"step": "#1"}),
        ("progress", (2,), {"step": "#2"}),
        ("final", "final"),
    ]
    assert await within(caller.call("com.example.countdown", 3)) == "final"
    await leave_all(callee, caller)
    await assert_all_clean(router)


# -- 7. cancelling --------------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_cancel_interrupts_callee_and_answers_caller_at_once(router):
    """Twisted's d.cancel() on a pending call sends CANCEL without a mode (killnowait): the router answers the
    caller with ERROR wamp.error.canceled at once (the Deferred itself fails locally with CancelledError) and
    sends INTERRUPT, which cancels the callee's Deferred; the callee's ERROR that follows is dropped and the callee
    stays joined."""
    [callee] = await join(router, transport="websocket", serializer="json")
    [caller] = await join(router, transport="rawsocket", serializer="msgpack")
    held = Held()
    await within(callee.register(held, "com.example.slow"))
    inbound = record_inbound(caller)
    d = caller.call("com.example.slow", 1)
    await within(held.arrival(0))
    d.cancel()
    with pytest.raises(defer.CancelledError):
        await d
    await eventually(lambda: of_type(inbound, message.Error), "the router answered the CANCEL")
    [error] = of_type(inbound, message.Error)
    assert (error.request_type, error.error) == (message.Call.MESSAGE_TYPE, CANCELED)
    await eventually(lambda: held.cancelled == [0], "the callee's Deferred was cancelled")
    await eventually(lambda: router.realm().dealer.table_sizes()["retired"] == 0, "the callee's ERROR was dropped")
    # the callee still serves
    second = caller.call("com.example.slow", 2)
    await within(held.arrival(1))
    held.calls[1][2].callback("done")
    assert await within(second) == "done"
    assert callee.is_attached() and caller.is_attached()
    await leave_all(callee, caller)
    await assert_all_clean(router)


@pytest_twisted.ensureDeferred
async def test_cancel_skip_answers_caller_and_drops_the_late_yield(router):
    """CANCEL with mode "skip": the caller gets wamp.error.canceled at once, the callee is not interrupted, and
    its YIELD, when it comes, is dropped without error: the callee stays joined and serves the next call."""
    [callee] = await join(router, transport="rawsocket", serializer="json")
    [caller] = await join(router, transport="websocket", serializer="msgpack")
    held = Held()
    await within(callee.register(held, "com.example.slow"))
    d = caller.call("com.example.slow")
    await within(held.arrival(0))
    send_cancel(caller, "com.example.slow", "skip")
    assert (await error_of(d)).error == CANCELED
    assert held.cancelled == []
    assert router.realm().dealer.table_sizes()["retired"] == 1
    held.calls[0][2].callback("too late")  # the late YIELD
    second = caller.call("com.example.slow")
    await within(held.arrival(1))
    held.calls[1][2].callback("in time")
    assert await within(second) == "in time"
    assert held.cancelled == []
    assert router.realm().dealer.table_sizes()["retired"] == 0
    assert callee.is_attached() and caller.is_attached()
    await leave_all(callee, caller)
    await assert_all_clean(router)


@pytest_twisted.ensureDeferred
async def test_cancel_kill_waits_for_the_callee(router):
    """CANCEL with mode "kill": the callee is interrupted and the caller is answered only when the callee answers.
    A callee that still finishes sends a final YIELD, which reaches the caller as RESULT; a callee whose work is
    cancelled answers with ERROR, which reaches the caller as wamp.error.canceled."""
    callee, caller = await join(router, 2, transport="websocket", serializer="msgpack")
    handler, started, interrupted, release = stubborn()
    await within(callee.register(handler, "com.example.stubborn"))
    await within(callee.register(lambda: "pong", "com.example.ping"))
    d = caller.call("com.example.stubborn")
    await within(started)
    send_cancel(caller, "com.example.stubborn", "kill")
    await within(interrupted)
    assert await within(caller.call("com.example.ping")) == "pong"  # anything sent to the caller came before this
    assert not d.called
    release.callback(None)
    assert await within(d) == "answered anyway"

    held = Held()
    await within(callee.register(held, "com.example.held"))
    d = caller.call("com.example.held")
    await within(held.arrival(0))
    send_cancel(caller, "com.example.held", "kill")
    assert (await error_of(d)).error == CANCELED
    assert held.cancelled == [0]
    await leave_all(callee, caller)
    await assert_all_clean(router)


# -- 8. timeouts -------------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_call_timeout_answers_timeout_and_interrupts_callee(router):
    """CallOptions(timeout=300) is milliseconds: the callee's INVOCATION carries timeout=300, a callee that never
    answers makes the caller fail with wamp.error.timeout after about 0.3 s (well within 1 s), and the callee is
    interrupted (its Deferred cancelled). Once the callee leaves, no table entry and no timer is left."""
    [callee] = await join(router, transport="rawsocket", serializer="msgpack", listener_name="rawsocket")
    [caller] = await join(router, transport="websocket", serializer="json")
    held = Held()
    await within(callee.register(held, "com.example.never"))
    inbound = record_inbound(callee)
    clock = _reactor()
    started = clock.seconds()
    error = await error_of(caller.call("com.example.never", options=CallOptions(timeout=300)))
    elapsed = clock.seconds() - started
    assert error.error == TIMEOUT
    assert 0.25 <= elapsed < 1.0, elapsed
    [invocation] = of_type(inbound, message.Invocation)
    assert invocation.timeout == 300
    await eventually(lambda: held.cancelled == [0], "the callee was interrupted")
    [interrupt] = of_type(inbound, message.Interrupt)
    assert interrupt.request == invocation.request
    assert router.service.context.realms["realm1"].effects.pending_timers == 0
    await leave_all(callee)
    await assert_all_clean(router)
    await leave_all(caller)


@pytest_twisted.ensureDeferred
async def test_answered_call_cancels_its_timer(router):
    """A call with a timeout that is answered in time leaves no timer running in the realm's effect runner."""
    callee, caller = await join(router, 2, transport="rawsocket", serializer="msgpack")
    await within(callee.register(lambda x: x * 2, "com.example.double"))
    assert await within(caller.call("com.example.double", 21, options=CallOptions(timeout=5000))) == 42
    assert router.service.context.realms["realm1"].effects.pending_timers == 0
    await leave_all(callee, caller)
    await assert_all_clean(router)


# -- 9. caller identification --------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_caller_disclosed_only_on_request_and_forward_for_stripped(router):
    """With `disclose_me` the callee sees the caller's session id, authid and authrole in CallDetails; without it
    all three are None. A CALL claiming forward_for=[{session 1, admin}] reaches the callee without forward_for
    (and without a caller), so no client can pose as another session."""
    [callee] = await join(router, transport="websocket", serializer="json")
    [caller] = await join(router, transport="rawsocket", serializer="msgpack")
    seen = []

    def who(details):
        seen.append((details.caller, details.caller_authid, details.caller_authrole, details.forward_for))
        return "ok"

    await within(callee.register(who, "com.example.who", options=RegisterOptions(details_arg="details")))
    inbound = record_inbound(callee)

    disclosed = DisclosingCall(caller._request_id_gen.next(), "com.example.who")
    assert await within(send_call(caller, disclosed)) == "ok"
    assert await within(caller.call("com.example.who")) == "ok"
    forged = message.Call(caller._request_id_gen.next(), "com.example.who",
                          forward_for=[{"session": 1, "authid": "admin", "authrole": "admin"}])
    assert await within(send_call(caller, forged)) == "ok"

    authid, authrole = caller.welcome.authid, caller.welcome.authrole
    assert authrole == "anonymous"
    assert seen == [
        (session_id(caller), authid, authrole, None),
        (None, None, None, None),
        (None, None, None, None),
    ]
    invocations = of_type(inbound, message.Invocation)
    assert [(i.caller, i.caller_authid, i.caller_authrole, i.forward_for) for i in invocations] == [
        (session_id(caller), authid, authrole, None),
        (None, None, None, None),
        (None, None, None, None),
    ]
    await leave_all(callee, caller)
    await assert_all_clean(router)


# -- 10. sessions vanishing mid-call -------------------------------------------------------------------------------


@pytest.mark.parametrize("transport,serializer", [("websocket", "json"), ("rawsocket", "msgpack")])
@pytest_twisted.ensureDeferred
async def test_callee_lost_mid_call_cancels_the_call(router, transport, serializer):
    """A callee whose connection drops (TCP abort, no GOODBYE) while a call with a timeout is pending: the caller
    gets wamp.error.canceled at once, the call's timer is cancelled, and the dealer forgets the callee."""
    [callee] = await join(router, transport=transport, serializer=serializer)
    [caller] = await join(router, transport="websocket", serializer="msgpack")
    held = Held()
    await within(callee.register(held, "com.example.fragile"))
    d = caller.call("com.example.fragile", options=CallOptions(timeout=5000))
    await within(held.arrival(0))
    assert router.service.context.realms["realm1"].effects.pending_timers == 1
    callee._transport.transport.abortConnection()
    error = await error_of(d)
    assert error.error == CANCELED
    await within(callee.on_gone)
    assert router.service.context.realms["realm1"].effects.pending_timers == 0
    await assert_all_clean(router)  # the caller holds nothing in the dealer
    assert (await error_of(caller.call("com.example.fragile"))).error == NO_SUCH_PROCEDURE
    await leave_all(caller)
    await assert_all_clean(router)


@pytest_twisted.ensureDeferred
async def test_caller_lost_mid_call_interrupts_callee_and_drops_its_answer(router):
    """A caller whose connection drops while its call is pending: the callee (which announced call_canceling)
    gets INTERRUPT; its YIELD, sent anyway afterwards, is dropped without error and the callee keeps serving."""
    [callee] = await join(router, transport="websocket", serializer="msgpack")
    [caller, other] = await join(router, 2, transport="rawsocket", serializer="json")
    handler, started, interrupted, release = stubborn()
    await within(callee.register(handler, "com.example.stubborn"))
    await within(callee.register(lambda: "pong", "com.example.ping"))
    caller.call("com.example.stubborn", options=CallOptions(timeout=5000)).addErrback(lambda _: None)
    await within(started)
    caller._transport.transport.abortConnection()
    await within(interrupted)
    assert router.realm().dealer.pending_calls() == []
    assert router.service.context.realms["realm1"].effects.pending_timers == 0
    release.callback(None)  # the late YIELD
    assert await within(other.call("com.example.ping")) == "pong"
    assert callee.is_attached()
    assert router.realm().dealer.table_sizes() == dict(
        EMPTY_TABLES, registrations=2, index=2, callee_sessions=1, ledgers=1
    )
    await leave_all(callee, other)
    await assert_all_clean(router)


# -- 11. WELCOME ---------------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_welcome_announces_exactly_the_dealer_features(router):
    """WELCOME's roles.dealer.features is exactly the seven implemented features, all true, nothing else: on the
    wire (RawSocket, MessagePack, a hand-written HELLO announcing no features) and as Autobahn parses it (WebSocket,
    JSON), where `registration_revocation` is announced too because Autobahn's callee announces it, and with it
    `testament_meta_api`."""
    client = await within(raw.open_rawsocket(router.port("rawsocket"), "msgpack"))
    try:
        welcome = await within(client.join(roles={"caller": {}, "callee": {}}))
    finally:
        client.close()
    assert welcome[0] == raw.WELCOME
    assert welcome[2]["roles"]["dealer"] == {"features": DEALER_FEATURES}

    [session] = await join(router, transport="websocket", serializer="json")
    features = session._router_roles["dealer"]
    announced = {k: v for k, v in vars(features).items() if not k.startswith("_") and v is not None}
    assert announced == {**DEALER_FEATURES, "registration_revocation": True, "testament_meta_api": True}
    await leave_all(session)
    await eventually(lambda: not router.realm().sessions, "both sessions left")


# -- 12. authorization ---------------------------------------------------------------------------------------------

AUTHZ_REALM = """
[[realms]]
name = "realm1"

[[realms.roles]]
name = "anonymous"

[[realms.roles.permissions]]
uri = "com.ok."
match = "prefix"
allow = ["call"]

[[realms.roles.permissions]]
uri = "com.ok.proc"
allow = ["register", "call"]
"""


@pytest_twisted.ensureDeferred
async def test_call_and_register_are_authorized(tmp_path):
    """A role that may call under "com.ok." and register only "com.ok.proc": registering "com.other", another
    URI under "com.ok." or the pattern "com.ok." is wamp.error.not_authorized, as is calling "com.other"; the
    allowed register and call work, and an allowed call to an unregistered URI is wamp.error.no_such_procedure."""
    running = await start_router(listener("main") + AUTHZ_REALM, tmp_path)
    try:
        where = target(running, "main", "rawsocket", "msgpack")
        callee = await within(connect(where))
        caller = await within(connect(target(running, "main", "websocket", "json")))
        await within(callee.register(lambda x: x + 1, "com.ok.proc"))
        for procedure, options in (("com.other", None), ("com.ok.another", None),
                                   ("com.ok.", RegisterOptions(match="prefix"))):
            error = await error_of(callee.register(lambda: None, procedure, options=options))
            assert error.error == NOT_AUTHORIZED, procedure
        assert (await error_of(caller.call("com.other"))).error == NOT_AUTHORIZED
        assert await within(caller.call("com.ok.proc", 41)) == 42
        assert (await error_of(caller.call("com.ok.missing"))).error == NO_SUCH_PROCEDURE
        assert [r.uri for r in running.realm().dealer.registrations()] == ["com.ok.proc"]
        await leave_all(callee, caller)
        await eventually(lambda: running.realm().dealer.table_sizes() == EMPTY_TABLES, "the dealer is empty")
    finally:
        await running.stop()


# -- 13. an asyncio client --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport,serializer", [("websocket", "json"), ("rawsocket", "msgpack")])
@pytest_twisted.ensureDeferred
async def test_asyncio_client_registers_calls_and_reaches_a_twisted_callee(router, transport, serializer):
    """An Autobahn asyncio client (a subprocess: one txaio framework per process) registers a procedure, calls it
    with progressive results (2, 1, 0, then "liftoff"), and calls a procedure an in-process Twisted callee
    registered, getting its args and kwargs back exactly; afterwards its registration is gone."""
    [callee] = await join(router, transport="rawsocket", serializer="json")
    calls = []

    def greet(who, n):
        calls.append((who, n))
        return CallResult(f"hello {who}", n=n, via="twisted")

    await within(callee.register(greet, "com.twisted.greet"))
    port = router.port("universal")
    out, err, code = await within(utils.getProcessOutputAndValue(
        sys.executable, [str(ASYNCIO_SCRIPT), str(port), transport, serializer, "com.twisted.greet"],
        env=dict(os.environ), reactor=_reactor()), 12.0)
    assert code == 0, (out, err)
    lines = out.decode().splitlines()
    assert len(lines) == 1, (out, err)
    assert json.loads(lines[0]) == {
        "authrole": "anonymous",
        "progress": [2, 1, 0],
        "final": "liftoff",
        "twisted": [["hello from asyncio"], {"n": 2**53, "via": "twisted"}],
    }
    assert calls == [("from asyncio", 2**53)]
    await eventually(lambda: [r.uri for r in router.realm().dealer.registrations()] == ["com.twisted.greet"],
                     "the asyncio client's registration is gone")
    await leave_all(callee)
    await assert_all_clean(router)


# -- 14. answers that do not fit the peer's RawSocket limit ---------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_result_over_the_callers_rawsocket_limit_is_answered_with_an_error(router):
    """A RawSocket caller that announced a 512-byte maximum calls a procedure whose result is 2000 bytes: the
    router cannot deliver that RESULT, so it answers the CALL with ERROR wamp.error.payload_size_exceeded instead
    of leaving the caller waiting forever; the connection stays open and the next (small) result arrives."""
    [callee] = await join(router, transport="rawsocket", serializer="msgpack")
    await within(callee.register(lambda n: "x" * n, "com.example.sized"))
    small = await within(raw.open_rawsocket(router.port("rawsocket"), "msgpack", length=0))
    try:
        await within(small.join(roles={"caller": {}}))
        small.send([CALL, 1, {}, "com.example.sized", [2000]])
        small.send([CALL, 2, {}, "com.example.sized", [10]])
        messages = await within(small.wait_messages(3, timeout=1.0))
        assert messages[1][:5] == [ERROR, CALL, 1, {}, PAYLOAD_SIZE_EXCEEDED]
        assert messages[2] == [RESULT, 2, {}, ["x" * 10]]
        assert not small.tcp.lost
    finally:
        small.close()
    await leave_all(callee)
    await assert_all_clean(router)


@pytest_twisted.ensureDeferred
async def test_invocation_over_the_callees_rawsocket_limit_is_answered_with_an_error(router):
    """A callee that announced a 512-byte RawSocket maximum is called with a 2000-byte argument: the router cannot
    deliver the INVOCATION, so the caller gets wamp.error.payload_size_exceeded instead of hanging, the dealer holds
    no pending call, and the callee (sent nothing) stays connected."""
    [caller] = await join(router, transport="websocket", serializer="json")
    small = await within(raw.open_rawsocket(router.port("rawsocket"), "msgpack", length=0))
    try:
        await within(small.join(roles={"callee": {}}))
        small.send([REGISTER, 1, {}, "com.example.small"])
        assert (await within(small.wait_messages(2)))[1][:2] == [REGISTERED, 1]
        inbound = record_inbound(caller)
        with pytest.raises(PayloadExceededError):  # the exception Autobahn maps this error URI to
            await within(caller.call("com.example.small", "x" * 2000), 1.0)
        [error] = of_type(inbound, message.Error)
        assert (error.request_type, error.error) == (message.Call.MESSAGE_TYPE, PAYLOAD_SIZE_EXCEEDED)
        assert router.realm().dealer.pending_calls() == []
        assert len(small.messages) == 2
        assert not small.tcp.lost
    finally:
        small.close()
    await leave_all(caller)
    await assert_all_clean(router)
