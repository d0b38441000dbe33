"""The RPC dealer: REGISTER / UNREGISTER / CALL / CANCEL / YIELD / ERROR in, effects out. No I/O, no clock, no dice.

The realm wires it (core/realm.py: construction from the config's limits, check then action per message, every
leaving session through ``remove_session``, the features in WELCOME); the effect runner (tx/effect_runner.py) runs its
``StartTimer``/``CancelTimer`` effects on the realm's timer table and feeds expiries back through ``on_timeout``.

Choices
-------
* Cancel modes: ``skip`` answers the caller at once and tells the callee nothing; ``killnowait`` (also the mode
  when CANCEL names none, which is what Autobahn clients send) interrupts the callee and answers the caller at
  once; ``kill`` interrupts the callee and answers the caller only when the callee answers, as the spec says: a
  final YIELD still reaches the caller as RESULT (the callee finished first; Crossbar turns it into an error), an
  ERROR reaches it as ``wamp.error.canceled``; progressive results after the CANCEL are dropped. A ``kill`` waits
  for the callee, so it ends by the callee's answer, the call's timeout, or the callee leaving. Without the
  callee's ``call_canceling`` feature every mode is ``skip``.
* Late answers: INVOCATION ids count up per callee session (spec: router's session scope), so an id the router
  never issued to that callee is recognisable and aborts it with ``wamp.error.protocol_violation``; ids of calls the
  router ended early are kept in a bounded per-callee record (see ``CalleeLedger``) and their answers dropped.
* Timeouts: the CALL option ``timeout`` is in milliseconds; the router enforces ``min(timeout, max_call_timeout)``
  and forwards that value in INVOCATION details. ``default_call_timeout`` (off by default) applies to calls without
  one. On expiry the caller gets ``wamp.error.timeout`` and a canceling-capable callee an INTERRUPT.
* ``wamp.`` is reserved: clients cannot register under it, and a call to a ``wamp.`` URI never reaches a client's
  pattern registration (a prefix ``""`` or a wildcard ``.session.get`` would otherwise capture meta procedures).
  The realm answers the meta procedures itself (meta.py) before a CALL reaches the dealer.
* ``on_change(change, session_id, registration)`` hears of each registration created, joined, left and deleted
  (calls.CREATE / REGISTER / UNREGISTER / DELETE) and answers with effects: the registration meta events.
* UNREGISTER does not touch calls already sent to that callee: they finish normally.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from autobahn.wamp import message as wamp
from autobahn.wamp.role import RoleDealerFeatures

from wampgate.core import errors
from wampgate.core.calls import (
    CREATE,
    DEFAULT_MAX_RETIRED_PER_CALLEE,
    DELETE,
    REGISTER,
    SINGLE,
    UNREGISTER,
    CalleeLedger,
    CallInfo,
    CallTimer,
    OnChange,
    PendingCall,
    Registration,
    forwarded_error,
    invocation_for,
    join_problem,
    result_for,
    router_error,
    unobserved,
)
from wampgate.core.effects import Abort, CancelTimer, Effect, Send, StartTimer, reply
from wampgate.core.peer import Peer
from wampgate.uri import EXACT, UriIndex, UriPolicy, is_reserved

_SKIP = wamp.Cancel.SKIP
_KILL = wamp.Cancel.KILL
_KILLNOWAIT = wamp.Cancel.KILLNOWAIT


class Dealer:
    """Routes calls from callers to the callees of one realm and their answers back."""

    def __init__(
        self,
        policy: UriPolicy,
        new_id: Callable[[], int],
        *,
        choose: Callable[[Sequence[Peer]], Peer],
        max_call_timeout: float,  # [limits]: declared in router/configtables.py, passed in by the realm
        max_registrations_per_session: int,
        max_pending_calls_per_session: int,
        max_wildcard_shapes: int,
        default_call_timeout: float | None = None,
        max_retired_per_callee: int = DEFAULT_MAX_RETIRED_PER_CALLEE,
        on_change: OnChange = unobserved,
    ):
        if not max_call_timeout > 0:
            raise ValueError(f"max_call_timeout: expected a positive number of seconds, found {max_call_timeout!r}")
        if default_call_timeout is not None and not default_call_timeout > 0:
            found = f"found {default_call_timeout!r}"
            raise ValueError(f"default_call_timeout: expected a positive number of seconds or None, {found}")
        if max_retired_per_callee < 1:
            raise ValueError(f"max_retired_per_callee: expected at least 1, found {max_retired_per_callee!r}")
        self._policy = policy
        self._new_id = new_id
        self._choose = choose
        self._max_timeout_ms = max(1, int(max_call_timeout * 1000))
        self._default_timeout_ms = None if default_call_timeout is None else max(1, int(default_call_timeout * 1000))
        self._max_retired = max_retired_per_callee
        self._max_registrations = max_registrations_per_session
        self._max_pending_calls = max_pending_calls_per_session
        self._on_change = on_change  # hears of registrations created, joined, left, deleted (the meta API)
        self._index: UriIndex[Registration] = UriIndex(max_wildcard_shapes)
        self._by_id: dict[int, Registration] = {}
        self._by_session: dict[int, dict[int, None]] = {}  # callee session -> its registration ids, in order
        self._callers: dict[int, dict[int, PendingCall]] = {}  # caller session -> CALL request id -> call
        self._ledgers: dict[int, CalleeLedger] = {}  # callee session -> its invocations

    def set_limits(
        self, *, max_registrations_per_session: int, max_pending_calls_per_session: int, max_call_timeout: float,
        max_wildcard_shapes: int | None = None,
    ) -> None:
        self._max_registrations = max_registrations_per_session
        if max_wildcard_shapes is not None:
            self._index.max_wildcard_shapes = max_wildcard_shapes  # shapes already held stay
        self._max_pending_calls = max_pending_calls_per_session
        self._max_timeout_ms = max(1, int(max_call_timeout * 1000))

    def router_features(self) -> RoleDealerFeatures:
        """The dealer features WELCOME announces: exactly those implemented here."""
        return RoleDealerFeatures(
            caller_identification=True,
            pattern_based_registration=True,
            shared_registration=True,
            call_timeout=True,
            call_canceling=True,
            progressive_call_results=True,
            payload_transparency=True,
        )

    # -- introspection (tests, meta API) --------------------------------------------------------------------

    def registration(self, registration_id: int) -> Registration | None:
        return self._by_id.get(registration_id)

    def registrations(self) -> list[Registration]:
        return list(self._by_id.values())

    def registrations_of(self, session_id: int) -> list[Registration]:
        return [self._by_id[rid] for rid in self._by_session.get(session_id, ())]

    def lookup(self, procedure: str) -> Registration | None:
        """The registration a CALL to `procedure` would go to."""
        return self._route(procedure)

    def find(self, procedure: str, match: str) -> Registration | None:
        """The registration for exactly this (procedure, match) pair."""
        return self._index.get(procedure, match)

    def wildcard_shapes(self) -> int:
        return self._index.wildcard_shapes()

    def pending_call(self, callee_session: int, invocation: int) -> PendingCall | None:
        """The call behind one INVOCATION sent to `callee_session` (the cluster link reads where it goes)."""
        ledger = self._ledgers.get(callee_session)
        return None if ledger is None else ledger.pending.get(invocation)

    def pending_calls(self) -> list[CallInfo]:
        return [call.info() for calls in self._callers.values() for call in calls.values()]

    def table_sizes(self) -> dict[str, int]:
        """The size of every internal table: all zero once every session has left (tests assert this)."""
        return {
            "registrations": len(self._by_id),
            "index": len(self._index),
            "callee_sessions": len(self._by_session),
            "caller_sessions": len(self._callers),
            "calls": sum(len(calls) for calls in self._callers.values()),
            "ledgers": len(self._ledgers),
            "invocations": sum(len(ledger.pending) for ledger in self._ledgers.values()),
            "retired": sum(len(ledger) for ledger in self._ledgers.values()),
        }

    # -- validation, before authorization ----------------------------------------------------------------------

    def check_register(self, peer: Peer, msg: wamp.Register) -> list[Effect] | None:
        problem = self._policy.problem(msg.procedure, msg.match or EXACT)
        if problem is None and is_reserved(msg.procedure):
            problem = "the 'wamp.' prefix is reserved for the router"
        if problem is not None:
            error = router_error(wamp.Register, msg.request, errors.INVALID_URI, f"invalid procedure: {problem}")
            return reply(peer, error)
        return None

    def check_call(self, peer: Peer, msg: wamp.Call) -> list[Effect] | None:
        if msg.request in self._callers.get(peer.session_id, ()):
            return _reused_request(peer, msg.request)
        problem = self._policy.problem(msg.procedure, EXACT)
        if problem is not None:
            error = router_error(wamp.Call, msg.request, errors.INVALID_URI, f"invalid procedure: {problem}")
            return reply(peer, error)
        return None

    # -- registrations -----------------------------------------------------------------------------------------

    def register(self, peer: Peer, msg: wamp.Register, *, now: float | None = None) -> list[Effect]:
        """Create the (procedure, match) registration or join a shared one with the same invoke policy."""
        if len(self._by_session.get(peer.session_id, ())) >= self._max_registrations:
            text = f"at most {self._max_registrations} registrations per session"
            return reply(peer, router_error(wamp.Register, msg.request, errors.TOO_MANY_REGISTRATIONS, text))
        match = msg.match or EXACT
        invoke = msg.invoke or SINGLE
        registration = self._index.get(msg.procedure, match)
        created = registration is None
        if created and not self._index.has_room_for(msg.procedure, match):
            text = f"at most {self._index.max_wildcard_shapes} distinct wildcard shapes in this realm"
            return reply(peer, router_error(wamp.Register, msg.request, errors.TOO_MANY_PATTERNS, text))
        if created:
            registration = Registration(self._unused_id(), msg.procedure, match, invoke, now)
            self._index.add(msg.procedure, match, registration)
            self._by_id[registration.id] = registration
        else:
            problem = join_problem(registration, peer.session_id, invoke)
            if problem is not None:
                error = router_error(wamp.Register, msg.request, errors.PROCEDURE_ALREADY_EXISTS, problem)
                return reply(peer, error)
        registration.callees.append(peer)
        self._by_session.setdefault(peer.session_id, {})[registration.id] = None
        effects = reply(peer, wamp.Registered(msg.request, registration.id))
        if created:
            effects += self._on_change(CREATE, peer.session_id, registration)
        return effects + self._on_change(REGISTER, peer.session_id, registration)

    def add_remote_callee(self, peer: Peer, uri: str, match: str, invoke: str,
                          now: float | None = None) -> tuple[list[Effect], str | None]:
        """A session of another cluster node joined the (uri, match) registration there (the cluster's directory
        already decided it may): this node's calls can now reach it. Answers (effects, problem): a problem (this
        node's registration disagrees, which the directory should have prevented) leaves everything unchanged."""
        registration = self._index.get(uri, match)
        created = registration is None
        if created:
            registration = Registration(self._unused_id(), uri, match, invoke, now)
        elif registration.has(peer.session_id):
            return [], None
        elif registration.invoke != invoke or invoke == SINGLE:
            return [], join_problem(registration, peer.session_id, invoke)
        if created:
            self._index.add(uri, match, registration)
            self._by_id[registration.id] = registration
        registration.callees.append(peer)
        self._by_session.setdefault(peer.session_id, {})[registration.id] = None
        effects = self._on_change(CREATE, peer.session_id, registration) if created else []
        return effects + self._on_change(REGISTER, peer.session_id, registration), None

    def remove_remote_callee(self, peer: Peer, uri: str, match: str) -> list[Effect]:
        """A session of another node left the (uri, match) registration there; calls it already has finish."""
        registration = self._index.get(uri, match)
        if registration is None:
            return []
        return self.revoke_registration(peer, registration.id, errors.CALLEE_LOST)

    def unregister(self, peer: Peer, msg: wamp.Unregister) -> list[Effect]:
        registration = self._by_id.get(msg.registration)
        if registration is None or not registration.has(peer.session_id):
            text = "no such registration for this session"
            return reply(peer, router_error(wamp.Unregister, msg.request, errors.NO_SUCH_REGISTRATION, text))
        mine = self._by_session[peer.session_id]
        del mine[registration.id]
        if not mine:
            del self._by_session[peer.session_id]
        return reply(peer, wamp.Unregistered(msg.request)) + self._leave_registration(peer.session_id, registration)

    def revoke_registration(self, peer: Peer, registration_id: int, reason: str) -> list[Effect]:
        """End one callee's registration on the router's own initiative (its permission was withdrawn): no new call
        reaches it through this registration; calls it already received finish normally, as after UNREGISTER. A
        callee that announced `registration_revocation` is told with UNREGISTERED(0, {registration, reason}); one
        that did not is not sent a message it does not expect. No effects when the callee no longer holds it."""
        registration = self._by_id.get(registration_id)
        mine = self._by_session.get(peer.session_id)
        if registration is None or mine is None or registration_id not in mine:
            return []
        del mine[registration_id]
        if not mine:
            del self._by_session[peer.session_id]
        effects: list[Effect] = []
        if peer.supports("callee", "registration_revocation"):
            effects = reply(peer, wamp.Unregistered(0, registration=registration_id, reason=reason))
        return effects + self._leave_registration(peer.session_id, registration)

    # -- calls ---------------------------------------------------------------------------------------------------

    def call(self, peer: Peer, msg: wamp.Call, *, disclose: bool = False, now: float = 0.0) -> list[Effect]:
        """Send one CALL on to a callee as INVOCATION, and start its timer when it has a timeout."""
        calls = self._callers.get(peer.session_id)
        if calls is not None and msg.request in calls:
            return _reused_request(peer, msg.request)
        if calls is not None and len(calls) >= self._max_pending_calls:
            text = f"at most {self._max_pending_calls} calls may be pending per session"
            return reply(peer, router_error(wamp.Call, msg.request, errors.TOO_MANY_CALLS, text))
        registration = self._route(msg.procedure)
        if registration is None:
            text = "no callee registered for procedure"
            return reply(peer, router_error(wamp.Call, msg.request, errors.NO_SUCH_PROCEDURE, text))
        return self._invoke(peer, msg, registration, registration.pick(self._choose), disclose, now)

    def call_callee(self, peer: Peer, msg: wamp.Call, uri: str, match: str, callee_session: int, *,
                    disclose: bool = False, now: float = 0.0) -> list[Effect]:
        """A call another cluster node's dealer sent to one of this node's callees (it chose the callee): it goes to
        that session under its (uri, match) registration, tracked here like any call. When that callee left meanwhile,
        the caller is answered as if it had left after the INVOCATION (`wamp.error.canceled`, "callee left")."""
        calls = self._callers.get(peer.session_id)
        if calls is not None and msg.request in calls:
            return _reused_request(peer, msg.request)
        registration = self._index.get(uri, match)
        callee = None
        if registration is not None:
            callee = next((c for c in registration.callees if c.session_id == callee_session and c.node is None),
                          None)
        if callee is None:
            return reply(peer, router_error(wamp.Call, msg.request, errors.CALLEE_LOST, "callee left"))
        return self._invoke(peer, msg, registration, callee, disclose, now)

    def _invoke(self, peer: Peer, msg: wamp.Call, registration: Registration, callee: Peer, disclose: bool,
                now: float) -> list[Effect]:
        ledger = self._ledger(callee.session_id)
        call = PendingCall(peer, msg.request, callee, ledger.issue(), registration.id, msg.procedure)
        call.progress = bool(msg.receive_progress) and callee.supports("callee", "progressive_call_results")
        call.started = now
        timeout_ms = self._timeout_ms(msg)
        ledger.pending[call.invocation] = call
        self._callers.setdefault(peer.session_id, {})[msg.request] = call
        invocation = invocation_for(msg, call, registration, disclose=disclose, timeout_ms=timeout_ms)
        effects: list[Effect] = [Send((callee,), invocation)]
        if timeout_ms is not None:
            call.timed = True
            call.deadline = now + timeout_ms / 1000
            effects.append(StartTimer(call.timer, timeout_ms / 1000))
        return effects

    def call_trusted(
        self, peer: Peer, msg: wamp.Call, trusted: Callable[[Peer], bool], *, now: float = 0.0
    ) -> list[Effect]:
        """A call the router makes itself (the dynamic authenticator and authorizer ask their backend): it goes only
        to the EXACT registration of the procedure, and only when every callee of it is `trusted` (the configured
        backend). A prefix or wildcard registration never answers it, nor a shared registration some other session
        joined; the caller then gets `wamp.error.no_such_procedure`, which the router's caller turns into a deny."""
        registration = self._index.get(msg.procedure, EXACT)
        if registration is None or not all(trusted(callee) for callee in registration.callees):
            text = "no trusted callee registered for procedure"
            return reply(peer, router_error(wamp.Call, msg.request, errors.NO_SUCH_PROCEDURE, text))
        return self.call(peer, msg, now=now)

    def cancel(self, peer: Peer, msg: wamp.Cancel) -> list[Effect]:
        """Cancel a pending call; a CANCEL for a call already answered (a race) or already killed is ignored."""
        call = self._callers.get(peer.session_id, {}).get(msg.request)
        if call is None or call.interrupted:
            return []
        mode = msg.mode or _KILLNOWAIT
        if not call.callee.supports("callee", "call_canceling"):
            mode = _SKIP
        if mode == _KILL:
            call.interrupted = True
            return [Send((call.callee,), wamp.Interrupt(call.invocation, mode=_KILL, reason=errors.CANCELED))]
        return self._abandon(call, errors.CANCELED, "call canceled", interrupt=mode == _KILLNOWAIT)

    def on_timeout(self, key: CallTimer, now: float) -> list[Effect]:
        """A call's timer fired: the caller gets `wamp.error.timeout`; a timer whose call already ended is a no-op."""
        ledger = self._ledgers.get(key.callee)
        call = None if ledger is None else ledger.pending.get(key.invocation)
        if call is None:
            return []
        call.timed = False  # it has fired: nothing left to cancel
        interrupt = call.callee.supports("callee", "call_canceling")
        return self._abandon(call, errors.TIMEOUT, "call timed out", interrupt=interrupt)

    # -- answers from callees ------------------------------------------------------------------------------------

    def yield_(self, peer: Peer, msg: wamp.Yield) -> list[Effect]:
        """Pass a callee's result on: progressive ones only when the caller asked, the final one ends the call."""
        call = self._answered(peer, msg.request)
        if call is None:
            return self._unmatched(peer, "YIELD", msg.request, final=not msg.progress)
        if msg.progress:
            if call.progress and not call.interrupted:
                return [Send((call.caller,), result_for(call, msg))]
            return []
        return self._end(call) + [Send((call.caller,), result_for(call, msg))]

    def error(self, peer: Peer, msg: wamp.Error) -> list[Effect]:
        """Pass a callee's ERROR on with its own URI and payload; ERROR is only valid as an answer to INVOCATION."""
        if msg.request_type != wamp.Invocation.MESSAGE_TYPE:
            return [Abort(peer, errors.PROTOCOL_VIOLATION, "ERROR is only valid as an answer to INVOCATION")]
        call = self._answered(peer, msg.request)
        if call is None:
            return self._unmatched(peer, "ERROR", msg.request, final=True)
        if call.interrupted:
            answer = router_error(wamp.Call, call.request, errors.CANCELED, "call canceled")
        else:
            answer = forwarded_error(call, msg)
        return self._end(call) + [Send((call.caller,), answer)]

    def refuse_answer(self, peer: Peer, invocation: int, *, final: bool, error: str = errors.INVALID_ARGUMENT,
                      text: str = "the callee's answer held a value the router cannot pass on") -> list[Effect]:
        """A callee's YIELD or ERROR the router refused (a value not every client can read, or over the callee's
        rate): WAMP has no reply to either, so the call ends here, once: its caller gets `error`. A callee that is
        still working (the refused YIELD was progressive) is interrupted where it can be; whatever it sends later
        for this invocation is dropped as late."""
        call = self._answered(peer, invocation)
        if call is None:
            return self._unmatched(peer, "YIELD or ERROR", invocation, final=final)
        if call.interrupted:
            uri, text = errors.CANCELED, "call canceled"  # as any answer to a call in kill mode
        else:
            uri = error
        if final:
            return self._end(call) + [Send((call.caller,), router_error(wamp.Call, call.request, uri, text))]
        interrupt = call.callee.supports("callee", "call_canceling")
        return self._abandon(call, uri, text, interrupt=interrupt)

    # -- sessions leaving ------------------------------------------------------------------------------------------

    def remove_session(self, peer: Peer) -> list[Effect]:
        """Forget everything a session held: its calls (interrupting their callees), the calls pending on it
        (answering their callers), its registrations, and every timer of those calls."""
        effects = self._drop_calls_of_caller(peer)
        effects += self._drop_calls_on_callee(peer)
        for registration_id in self._by_session.pop(peer.session_id, ()):
            effects += self._leave_registration(peer.session_id, self._by_id[registration_id])
        return effects

    def _drop_calls_of_caller(self, peer: Peer) -> list[Effect]:
        effects: list[Effect] = []
        for call in self._callers.pop(peer.session_id, {}).values():
            ledger = self._ledgers[call.callee.session_id]
            del ledger.pending[call.invocation]
            if call.timed:
                effects.append(CancelTimer(call.timer))
            if call.callee is peer:
                continue
            ledger.retire(call.invocation)
            if not call.interrupted and call.callee.supports("callee", "call_canceling"):
                interrupt = wamp.Interrupt(call.invocation, mode=_KILLNOWAIT, reason=errors.CANCELED)
                effects.append(Send((call.callee,), interrupt))
        return effects

    def _drop_calls_on_callee(self, peer: Peer) -> list[Effect]:
        ledger = self._ledgers.pop(peer.session_id, None)
        if ledger is None:
            return []
        effects: list[Effect] = []
        for call in ledger.pending.values():
            self._forget_caller_side(call)
            if call.timed:
                effects.append(CancelTimer(call.timer))
            error = router_error(wamp.Call, call.request, errors.CALLEE_LOST, "callee left")
            effects.append(Send((call.caller,), error))
        return effects

    # -- internals ---------------------------------------------------------------------------------------------

    def _route(self, procedure: str) -> Registration | None:
        """The most specific registration; a `wamp.` URI is never served by a client's pattern."""
        registration = self._index.best(procedure)
        if registration is not None and is_reserved(procedure) and not is_reserved(registration.uri):
            return None
        return registration

    def _timeout_ms(self, msg: wamp.Call) -> int | None:
        """The timeout the router enforces, in ms; compared as ints, so a huge value cannot overflow a float."""
        if msg.timeout:
            return min(msg.timeout, self._max_timeout_ms)
        return self._default_timeout_ms

    def _ledger(self, session_id: int) -> CalleeLedger:
        ledger = self._ledgers.get(session_id)
        if ledger is None:
            ledger = self._ledgers[session_id] = CalleeLedger(self._max_retired)
        return ledger

    def _answered(self, peer: Peer, invocation: int) -> PendingCall | None:
        ledger = self._ledgers.get(peer.session_id)
        return None if ledger is None else ledger.pending.get(invocation)

    def _unmatched(self, peer: Peer, kind: str, invocation: int, *, final: bool) -> list[Effect]:
        """An answer for no pending invocation: a late one is dropped, anything else breaks the protocol."""
        ledger = self._ledgers.get(peer.session_id)
        if ledger is not None and ledger.is_late(invocation, final):
            return []
        return [Abort(peer, errors.PROTOCOL_VIOLATION, f"{kind} for an invocation that is not pending")]

    def _end(self, call: PendingCall) -> list[Effect]:
        """Forget a call in both tables; returns the CancelTimer its timer needs, if any."""
        self._forget_caller_side(call)
        del self._ledgers[call.callee.session_id].pending[call.invocation]
        return [CancelTimer(call.timer)] if call.timed else []

    def _abandon(self, call: PendingCall, uri: str, text: str, *, interrupt: bool) -> list[Effect]:
        """End a call before its callee answered: answer the caller now, maybe interrupt the callee."""
        effects = self._end(call)
        self._ledgers[call.callee.session_id].retire(call.invocation)
        if interrupt and not call.interrupted:
            effects.append(Send((call.callee,), wamp.Interrupt(call.invocation, mode=_KILLNOWAIT, reason=uri)))
        effects.append(Send((call.caller,), router_error(wamp.Call, call.request, uri, text)))
        return effects

    def _forget_caller_side(self, call: PendingCall) -> None:
        calls = self._callers[call.caller.session_id]
        del calls[call.request]
        if not calls:
            del self._callers[call.caller.session_id]

    def _leave_registration(self, session_id: int, registration: Registration) -> list[Effect]:
        """Take the callee off the registration, deleting it with its last callee; the changes as effects."""
        registration.remove(session_id)
        effects = self._on_change(UNREGISTER, session_id, registration)
        if not registration.callees:
            self._index.remove(registration.uri, registration.match)
            del self._by_id[registration.id]
            effects += self._on_change(DELETE, session_id, registration)
        return effects

    def _unused_id(self) -> int:
        while True:
            candidate = self._new_id()
            if candidate not in self._by_id:
                return candidate


def _reused_request(peer: Peer, request: int) -> list[Effect]:
    return [Abort(peer, errors.PROTOCOL_VIOLATION, f"CALL request id {request} is still pending in this session")]
