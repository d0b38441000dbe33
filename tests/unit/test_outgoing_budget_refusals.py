"""OutgoingBudget: a frame refused because it does not fit (a PONG, an INVOCATION, a RESULT) puts the connection
over budget just as a written one would, so a peer that never reads is no longer read and is closed after the stall
timeout; an EVENT dropped under the "drop" policy does not; the socket taking its data clears it all."""

from __future__ import annotations

from autobahn.wamp import message as wamp
from twisted.internet.task import Clock

from wampgate.tx.channel import DROP, PAUSED_FOR_OUTGOING, OutgoingBudget

LIMIT = 1000
STALL = 2.0


class Owner:
    """What the budget tells its channel."""

    def __init__(self):
        self.paused: list[str] = []
        self.resumed: list[str] = []
        self.stalls = 0

    def pause_reading(self, reason: str) -> None:
        self.paused.append(reason)

    def resume_reading(self, reason: str) -> None:
        self.resumed.append(reason)

    def stalled(self) -> None:
        self.stalls += 1


def paused_budget(held: int = LIMIT - 10) -> tuple[OutgoingBudget, Owner, Clock]:
    """A budget whose socket asked it to pause and that holds `held` bytes (just under its limit)."""
    owner, clock = Owner(), Clock()
    budget = OutgoingBudget(owner, LIMIT, clock=clock, stall_timeout=STALL)
    budget.pauseProducing()
    budget.charge(held)
    return budget, owner, clock


def test_a_refused_pong_puts_the_connection_over_budget_and_starts_the_stall_timer():
    """refuse(): the connection is over budget, reading pauses once, and after the stall timeout it is closed."""
    budget, owner, clock = paused_budget()
    budget.refuse(20)
    assert budget.over
    assert owner.paused == [PAUSED_FOR_OUTGOING]
    budget.refuse(20)  # already over: nothing more to pause
    assert owner.paused == [PAUSED_FOR_OUTGOING]
    clock.advance(STALL - 0.01)
    assert owner.stalls == 0
    clock.advance(0.02)
    assert owner.stalls == 1


def test_a_refused_invocation_or_result_counts_as_held():
    """refuses() for an INVOCATION or RESULT that does not fit: True, and the connection is over budget."""
    for msg in (wamp.Invocation(1, 2, args=["x"]), wamp.Result(1, args=["x"])):
        budget, owner, _ = paused_budget()
        assert budget.refuses(msg, 20)
        assert budget.over and owner.paused == [PAUSED_FOR_OUTGOING]


def test_a_dropped_event_does_not_put_the_connection_over_budget():
    """Under "drop" an EVENT that does not fit is dropped and counted; the connection keeps being read."""
    budget, owner, clock = paused_budget()
    assert budget.policy == DROP
    assert budget.refuses(wamp.Event(1, 2, args=["x"]), 20)
    assert budget.dropped == 1
    assert not budget.over and owner.paused == []
    clock.advance(STALL * 2)
    assert owner.stalls == 0


def test_the_socket_taking_its_data_clears_a_refusal():
    """resumeProducing after a refusal: reading resumes and the stall timer is cancelled."""
    budget, owner, clock = paused_budget()
    budget.refuse(20)
    budget.resumeProducing()
    assert not budget.over and owner.resumed == [PAUSED_FOR_OUTGOING]
    clock.advance(STALL * 2)
    assert owner.stalls == 0
