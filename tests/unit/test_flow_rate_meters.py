"""The flow-control chain's count of rate meters (exported by /metrics as wampgate_rate_meters)."""

from __future__ import annotations

from twisted.internet.task import Clock

from wampgate.plugins.flow.limits import LimitsFlowControl
from wampgate.counters import Counters
from wampgate.model import ADMIT, FlowSession
from wampgate.tx.flow import FlowControl


class AdmitsEverything:
    """A flow plugin with no `rate_meters()` method: the optional method is absent."""

    def admit(self, session, action, uri, size, now):
        return ADMIT

    def session_closed(self, session):
        pass


def flow_session(session_id: int, authid: str) -> FlowSession:
    return FlowSession(session_id=session_id, realm="realm1", authid=authid, authrole="user", peer="tcp4:127.0.0.1",
                       listener="main")


def test_rate_meters_sum_the_plugins_that_count_and_the_others_count_zero():
    """FlowControl.rate_meters() adds up each plugin's rate_meters(); a plugin without the method counts 0. The
    limits plugin holds one meter per metered session and one per shared key (authid, authrole, peer): two
    sessions of different authids from one address that each sent a message hold 2 + 2 + 1 + 1 meters."""
    limits = LimitsFlowControl({})
    flow = FlowControl([AdmitsEverything(), limits], clock=Clock(), counters=Counters())
    assert flow.rate_meters() == 0
    alice, bob = flow_session(1, "alice"), flow_session(2, "bob")
    for session in (alice, bob):
        assert flow.admit(session, "publish", "com.example.topic", 10) == ADMIT
    assert (flow.rate_meters(), limits.rate_meters()) == (6, 6)
    flow.session_closed(alice)
    assert flow.rate_meters() == 5  # alice's own meter goes with her; shared ones stay until idle
    assert FlowControl([AdmitsEverything()], clock=Clock(), counters=Counters()).rate_meters() == 0
