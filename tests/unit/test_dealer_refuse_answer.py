"""`Dealer.refuse_answer`: a callee's YIELD or ERROR whose payload the router refused (router/tx/wire.py) ends its
call exactly once, with wamp.error.invalid_argument for the caller; a callee still producing progressive results
is interrupted, and what it sends later for that invocation is dropped as late."""

from __future__ import annotations

from autobahn.wamp import message as wamp

from wampgate.core import errors
from wampgate.core.calls import CallTimer
from wampgate.core.effects import Abort
from tests.unit.test_dealer import (
    CALL,
    INVOCATION,
    assert_effects,
    assert_empty,
    call,
    make_dealer,
    make_peer,
    register,
    send,
)

TEXT = "the callee's answer held a value the router cannot pass on"


def pending(dealer, caller, callee, **options) -> None:
    register(dealer, callee, "com.example.p")
    call(dealer, caller, "com.example.p", **options)


def test_a_refused_final_answer_ends_the_call_with_invalid_argument():
    """A refused final YIELD (or callee ERROR): the caller gets ERROR wamp.error.invalid_argument for its CALL, the
    callee is told nothing (it is done), and the call is gone from every table."""
    dealer, caller, callee = make_dealer(), make_peer(1), make_peer(2)
    pending(dealer, caller, callee)
    effects = dealer.refuse_answer(callee, 1, final=True)
    assert_effects(effects, send(caller, wamp.Error(CALL, 7, errors.INVALID_ARGUMENT, args=[TEXT])))
    assert dealer.pending_calls() == []
    dealer.remove_session(callee)
    dealer.remove_session(caller)
    assert_empty(dealer)


def test_a_refused_progressive_result_interrupts_the_callee_and_its_later_answers_are_dropped():
    """A refused progressive YIELD: the callee (which announced call_canceling) gets INTERRUPT killnowait with
    reason wamp.error.invalid_argument, the caller its ERROR; later YIELDs and ERRORs for the invocation are late
    answers, dropped without aborting the callee."""
    dealer, caller, callee = make_dealer(), make_peer(1), make_peer(2)
    pending(dealer, caller, callee, receive_progress=True)
    effects = dealer.refuse_answer(callee, 1, final=False)
    assert_effects(
        effects,
        send(callee, wamp.Interrupt(1, mode="killnowait", reason=errors.INVALID_ARGUMENT)),
        send(caller, wamp.Error(CALL, 7, errors.INVALID_ARGUMENT, args=[TEXT])),
    )
    assert dealer.yield_(callee, wamp.Yield(1, args=[2], progress=True)) == []
    assert dealer.yield_(callee, wamp.Yield(1, args=["done"])) == []
    assert dealer.pending_calls() == []


def test_a_callee_without_call_canceling_is_not_interrupted():
    """A callee that did not announce call_canceling gets no INTERRUPT; its caller is answered all the same."""
    dealer, caller, callee = make_dealer(), make_peer(1), make_peer(3, canceling=False)
    pending(dealer, caller, callee, receive_progress=True)
    effects = dealer.refuse_answer(callee, 1, final=False)
    assert_effects(effects, send(caller, wamp.Error(CALL, 7, errors.INVALID_ARGUMENT, args=[TEXT])))
    assert dealer.yield_(callee, wamp.Yield(1, args=["done"])) == []


def test_an_interrupted_call_still_ends_as_canceled():
    """After a caller's CANCEL (kill mode waits for the callee), a refused answer ends the call as any answer would:
    the caller gets wamp.error.canceled."""
    dealer, caller, callee = make_dealer(), make_peer(1), make_peer(2)
    pending(dealer, caller, callee)
    dealer.cancel(caller, wamp.Cancel(7, mode="kill"))
    effects = dealer.refuse_answer(callee, 1, final=True)
    assert_effects(effects, send(caller, wamp.Error(CALL, 7, errors.CANCELED, args=["call canceled"])))
    assert dealer.pending_calls() == []


def test_an_answer_for_no_pending_invocation_is_handled_like_any_answer():
    """A refused answer for an invocation that is not pending is treated as that answer would be: an id never
    issued aborts the callee; a late one (the router already ended the call: a timeout) is dropped; after a
    refused final answer the invocation is over, as after any final answer."""
    dealer, caller, callee = make_dealer(), make_peer(1), make_peer(2)
    pending(dealer, caller, callee, timeout=1000)
    (abort,) = dealer.refuse_answer(callee, 99, final=True)
    assert isinstance(abort, Abort) and abort.reason == errors.PROTOCOL_VIOLATION
    dealer.on_timeout(CallTimer(callee.session_id, 1), 200.0)
    assert dealer.refuse_answer(callee, 1, final=True) == []
    call(dealer, caller, "com.example.p", request=8)
    dealer.refuse_answer(callee, 2, final=True)
    (abort,) = dealer.error(callee, wamp.Error(INVOCATION, 2, "com.example.again"))
    assert isinstance(abort, Abort) and abort.reason == errors.PROTOCOL_VIOLATION
