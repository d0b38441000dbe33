"""The dealer's records: registrations, pending calls, per-callee invocation ledgers, and the messages built from them.

Split from dealer.py so that the dealer reads as the protocol (what happens on each message) and this module as the
bookkeeping it relies on. Nothing here performs I/O or reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from autobahn.wamp import message as wamp

from wampgate.core.effects import Effect
from wampgate.core.peer import Peer
from wampgate.uri import EXACT

SINGLE = "single"
FIRST = "first"
LAST = "last"
ROUNDROBIN = "roundrobin"
RANDOM = "random"
INVOKE_POLICIES = (SINGLE, FIRST, LAST, ROUNDROBIN, RANDOM)

DEFAULT_MAX_RETIRED_PER_CALLEE = 1000

# What the dealer's `on_change(change, session_id, registration)` is told, in the order the registration meta API's
# events fire: CREATE before the first REGISTER, UNREGISTER before DELETE.
CREATE = "create"
REGISTER = "register"
UNREGISTER = "unregister"
DELETE = "delete"

OnChange = Callable[[str, int, "Registration"], list[Effect]]


def unobserved(change: str, session_id: int, registration: Registration) -> list[Effect]:
    """The default `on_change`: nobody listens, nothing to do."""
    return []


class Registration:
    """One (procedure, match) pair and its callees, in the order they registered (`first` / `last` read it).
    `created` is the `now` of the REGISTER that created it (the meta API reports it), or None when not given."""

    __slots__ = ("id", "uri", "match", "invoke", "callees", "created", "_turn")

    def __init__(self, registration_id: int, uri: str, match: str, invoke: str, created: float | None = None):
        self.id = registration_id
        self.uri = uri
        self.match = match
        self.invoke = invoke
        self.callees: list[Peer] = []
        self.created = created
        self._turn = 0  # roundrobin: index of the callee that gets the next call

    def has(self, session_id: int) -> bool:
        return any(callee.session_id == session_id for callee in self.callees)

    def remove(self, session_id: int) -> None:
        """Drop one callee; a roundrobin turn past it moves back so the rotation skips nobody."""
        for index, callee in enumerate(self.callees):
            if callee.session_id == session_id:
                del self.callees[index]
                if index < self._turn:
                    self._turn -= 1
                return

    def pick(self, choose: Callable[[Sequence[Peer]], Peer]) -> Peer:
        """The callee for the next call under this registration's invoke policy; there is at least one."""
        if self.invoke == ROUNDROBIN:
            index = self._turn % len(self.callees)
            self._turn = index + 1
            return self.callees[index]
        if self.invoke == LAST:
            return self.callees[-1]
        if self.invoke == RANDOM:
            return choose(tuple(self.callees))
        return self.callees[0]  # single, first


def join_problem(registration: Registration, session_id: int, invoke: str) -> str | None:
    """Why the session may not join an existing registration, or None when it may (a shared one, same policy)."""
    if registration.invoke != invoke:
        return (
            f"procedure already registered with invoke policy '{registration.invoke}';"
            f" this request asked for '{invoke}'"
        )
    if invoke == SINGLE:
        return "procedure already registered"
    if registration.has(session_id):
        return "this session already registered the procedure"
    return None


@dataclass(frozen=True, slots=True)
class CallTimer:
    """The key of a call's timeout timer: invocation ids never repeat within a callee session, so neither do keys."""

    callee: int
    invocation: int


class PendingCall:
    """A CALL that has been sent on as an INVOCATION and whose caller has not had its final answer yet."""

    __slots__ = (
        "caller",
        "request",
        "callee",
        "invocation",
        "registration",
        "procedure",
        "progress",
        "timed",
        "interrupted",
        "started",
        "deadline",
    )

    def __init__(self, caller: Peer, request: int, callee: Peer, invocation: int, registration: int, procedure: str):
        self.caller = caller
        self.request = request
        self.callee = callee
        self.invocation = invocation
        self.registration = registration
        self.procedure = procedure
        self.progress = False  # forward progressive results (the caller asked and the callee can)
        self.timed = False  # a StartTimer is outstanding for this call
        self.interrupted = False  # cancelled in `kill` mode: waiting for the callee's answer
        self.started = 0.0
        self.deadline: float | None = None

    @property
    def timer(self) -> CallTimer:
        return CallTimer(self.callee.session_id, self.invocation)

    def info(self) -> CallInfo:
        return CallInfo(
            caller=self.caller.session_id,
            request=self.request,
            callee=self.callee.session_id,
            invocation=self.invocation,
            registration=self.registration,
            procedure=self.procedure,
            started=self.started,
            deadline=self.deadline,
            interrupted=self.interrupted,
        )


@dataclass(frozen=True, slots=True)
class CallInfo:
    """A read-only snapshot of a pending call, for tests and the meta API."""

    caller: int
    request: int
    callee: int
    invocation: int
    registration: int
    procedure: str
    started: float
    deadline: float | None
    interrupted: bool


class CalleeLedger:
    """The invocations of one callee session: what is pending, and what it may still answer late.

    INVOCATION request ids are in the router's session scope, so they count up from 1 per callee (as the spec
    asks). Any id at or above the next one was never issued: an answer carrying it is a protocol violation.
    Ids of invocations the router gave up on (cancelled, timed out, caller left) are kept in a bounded record
    until the callee's final answer arrives, so that answer is dropped quietly. When the record overflows, the
    oldest ids are forgotten and every id up to the highest forgotten one is treated as possibly late: we would
    rather drop a duplicate answer than abort a callee that was merely slow.
    """

    __slots__ = ("pending", "_next", "_retired", "_limit", "_forgotten_upto")

    def __init__(self, limit: int = DEFAULT_MAX_RETIRED_PER_CALLEE):
        self.pending: dict[int, PendingCall] = {}
        self._next = 1
        self._retired: dict[int, None] = {}  # insertion-ordered: the oldest is forgotten first
        self._limit = limit
        self._forgotten_upto = 0

    def __len__(self) -> int:
        """How many ids are still waiting for a late answer."""
        return len(self._retired)

    def issue(self) -> int:
        invocation = self._next
        self._next += 1
        return invocation

    def retire(self, invocation: int) -> None:
        """The router ended this invocation's call; an answer may still arrive and must be dropped."""
        self._retired[invocation] = None
        if len(self._retired) > self._limit:
            oldest = next(iter(self._retired))
            del self._retired[oldest]
            self._forgotten_upto = max(self._forgotten_upto, oldest)

    def is_late(self, invocation: int, final: bool) -> bool:
        """Whether an answer for a non-pending id is a late one (drop it) rather than a protocol violation."""
        if invocation in self._retired:
            if final:
                del self._retired[invocation]
            return True
        return 0 < invocation <= self._forgotten_upto


def invocation_for(
    msg: wamp.Call,
    call: PendingCall,
    registration: Registration,
    *,
    disclose: bool,
    timeout_ms: int | None,
) -> wamp.Invocation:
    """The INVOCATION for one CALL. `forward_for` is never copied: nobody poses as another session."""
    caller = call.caller
    return wamp.Invocation(
        call.invocation,
        registration.id,
        args=msg.args,
        kwargs=msg.kwargs,
        payload=msg.payload,
        timeout=timeout_ms,
        receive_progress=True if call.progress else None,
        caller=caller.session_id if disclose else None,
        caller_authid=caller.authid if disclose else None,
        caller_authrole=caller.authrole if disclose else None,
        procedure=msg.procedure if registration.match != EXACT else None,
        enc_algo=msg.enc_algo,
        enc_key=msg.enc_key,
        enc_serializer=msg.enc_serializer,
    )


def result_for(call: PendingCall, msg: wamp.Yield) -> wamp.Result:
    """The RESULT for one YIELD: the application payload passes through untouched."""
    return wamp.Result(
        call.request,
        args=msg.args,
        kwargs=msg.kwargs,
        payload=msg.payload,
        progress=True if msg.progress else None,
        enc_algo=msg.enc_algo,
        enc_key=msg.enc_key,
        enc_serializer=msg.enc_serializer,
    )


def forwarded_error(call: PendingCall, msg: wamp.Error) -> wamp.Error:
    """The callee's ERROR, re-addressed to the caller's CALL with its own URI and payload."""
    return wamp.Error(
        wamp.Call.MESSAGE_TYPE,
        call.request,
        msg.error,
        args=msg.args,
        kwargs=msg.kwargs,
        payload=msg.payload,
        enc_algo=msg.enc_algo,
        enc_key=msg.enc_key,
        enc_serializer=msg.enc_serializer,
    )


def router_error(request_type: type, request: int, uri: str, text: str) -> wamp.Error:
    """An ERROR the router itself raises: a URI and a generic text, never internal detail."""
    return wamp.Error(request_type.MESSAGE_TYPE, request, uri, args=[text])
