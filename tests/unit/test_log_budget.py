"""The log budget (wampgate.tx.logbudget) and the truncation of client strings (wampgate.tx.logtruncate).

LogBudget takes its clock and its timer as arguments, so these tests drive time by hand and every count is exact:
a flood from one peer gets its burst through and then one summary; other peers, the router's own warnings and its
life-cycle lines are unaffected; the overall budget bounds many peers together.
"""

from __future__ import annotations

import io
import json
import sys

import pytest
from twisted.logger import LogLevel, formatEvent

from wampgate.tx import logbudget, logs
from wampgate.tx.logbudget import Budget, LogBudget
from wampgate.tx.logtruncate import bound_value, truncate_event

PER_PEER = Budget(lines_per_second=2.0, bytes_per_second=10_000.0, burst_seconds=10.0)  # bursts of 20 lines
OVERALL = Budget(lines_per_second=10.0, bytes_per_second=100_000.0, burst_seconds=10.0)  # bursts of 100 lines


class FakeClock:
    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeTimers:
    """What `schedule` was asked to run, and when; tests fire them by hand."""

    def __init__(self):
        self.pending: list[tuple[float, object]] = []

    def __call__(self, delay: float, function) -> None:
        self.pending.append((delay, function))

    def fire_all(self) -> None:
        pending, self.pending = self.pending, []
        for _, function in pending:
            function()


def refused(peer: str = "tcp4:203.0.113.9:50312", i: int = 0, **fields) -> dict:
    """A client-caused line as the router logs one (info, with the peer's transport address)."""
    return {"log_format": "protocol violation by {peer}: {detail}", "peer": peer, "detail": f"attempt {i}",
            "log_level": LogLevel.info, "log_namespace": "wampgate.tx.session.RouterSession", "log_time": 0.0, **fields}


def warning(text: str = "authorizer quota did not answer: denied") -> dict:
    return {"log_format": "{text}", "text": text, "log_level": LogLevel.warn,
            "log_namespace": "wampgate.tx.authorization.Authorization", "log_time": 0.0}


def budget(per_peer: Budget = PER_PEER, overall: Budget = OVERALL, **options):
    """(budget, what passed it, clock at 0, timers)."""
    passed: list[dict] = []
    clock, timers = FakeClock(), FakeTimers()
    gate = LogBudget(passed.append, measure=lambda e: len(formatEvent(e)), clock=clock, per_peer=per_peer,
                     overall=overall, schedule=timers, wall_clock=lambda: 1234.0, **options)
    return gate, passed, clock, timers


def summaries(passed: list[dict]) -> list[dict]:
    return [e for e in passed if e.get("log_namespace") == "wampgate.tx.logs"]


def test_a_flood_from_one_peer_yields_its_burst_and_then_one_summary():
    """10,000 client-caused lines from one peer at one instant: exactly the peer's burst (20 lines) passes; once the
    interval is over, one summary warning says 9,980 lines and their bytes were suppressed, from 1 peer, most of
    them from that address."""
    gate, passed, clock, timers = budget()
    flood = [refused(i=i) for i in range(10_000)]
    for event in flood:
        gate(event)
    assert passed == flood[:20]
    suppressed_bytes = sum(len(formatEvent(e)) for e in flood[20:])

    clock.now = 10.0
    timers.fire_all()
    assert len(passed) == 21
    summary = passed[20]
    assert summary["log_level"] == LogLevel.warn
    assert (summary["suppressed_lines"], summary["suppressed_bytes"], summary["suppressed_peers"]) == (
        9_980, suppressed_bytes, 1)
    assert formatEvent(summary) == (
        f"log budget: suppressed 9980 client-caused lines ({suppressed_bytes} bytes) in 10.0 s from 1 peer(s), "
        "most from 203.0.113.9 (9980 lines)")


def test_the_summary_also_comes_with_the_next_line_after_the_interval_and_only_once():
    """Without a timer firing, the first line after the interval brings the summary (before itself); the timer that
    fires later finds nothing left to say, so there is exactly one summary."""
    gate, passed, clock, timers = budget()
    for i in range(30):
        gate(refused(i=i))
    clock.now = 10.5
    gate(refused("tcp4:198.51.100.1:1"))
    assert [formatEvent(e).split(":")[0] for e in passed[20:]] == ["log budget", "protocol violation by tcp4"]
    timers.fire_all()
    assert len(summaries(passed)) == 1


def test_another_peer_is_still_logged_during_a_flood():
    """While one address floods (all its ports share a budget), a line from a second address passes."""
    gate, passed, _, _ = budget()
    for i in range(500):
        gate(refused(f"tcp4:203.0.113.9:{40000 + i}", i))
    other = refused("tcp4:198.51.100.1:5555")
    gate(other)
    assert len(passed) == 21 and passed[-1] is other


def test_a_router_warning_during_a_flood_is_logged():
    """Warnings and errors never draw on the budget: one in the middle of a flood passes, unchanged."""
    gate, passed, _, _ = budget()
    for i in range(100):
        gate(refused(i=i))
    alarm = warning()
    gate(alarm)
    failure = {**warning("internal error"), "log_level": LogLevel.error}
    gate(failure)
    for i in range(100):
        gate(refused(i=i))
    assert passed[20:] == [alarm, failure]


def test_life_cycle_lines_never_draw_on_the_budget():
    """The router's own info lines (ready, reloaded, listening) pass even when the overall budget is spent."""
    gate, passed, _, _ = budget()
    for i in range(2_000):
        gate(refused(f"tcp4:10.0.{i // 250}.{i % 250}:1", i))
    assert len(passed) == 100
    reloaded = {"log_format": "reloaded {file}", "file": "router.toml", "log_level": LogLevel.info,
                "log_namespace": "wampgate.tx.router_service.RouterService"}
    listening = {"log_format": "listening", "log_level": LogLevel.info,
                 "log_namespace": "wampgate.tx.service.ListenerService"}
    gate(reloaded)
    gate(listening)
    assert passed[-2:] == [reloaded, listening]


def test_many_peers_together_are_bounded_by_the_overall_budget():
    """2,000 peers, each within its own budget, get only the overall burst (100 lines) through together; the
    summary counts the rest and how many peers were suppressed."""
    gate, passed, clock, timers = budget()
    for i in range(2_000):
        gate(refused(f"tcp4:10.0.{i // 250}.{i % 250}:1", i))
    assert len(passed) == 100
    clock.now = 10.0
    timers.fire_all()
    summary = summaries(passed)[0]
    assert (summary["suppressed_lines"], summary["suppressed_peers"]) == (1_900, 1_900)


def test_the_budget_refills_at_its_rate():
    """After the burst, a peer gets `lines_per_second` lines per second: 5 s later, 10 more of a flood pass."""
    gate, passed, clock, _ = budget()
    for i in range(100):
        gate(refused(i=i))
    clock.now = 5.0
    for i in range(100):
        gate(refused(i=i))
    assert len(passed) == 30


def test_bytes_per_second_bound_long_lines():
    """The bytes bucket limits too: with 1,000 bytes of burst per peer, 10 lines of ~300 bytes give 3."""
    gate, passed, _, _ = budget(per_peer=Budget(lines_per_second=100.0, bytes_per_second=100.0, burst_seconds=10.0))
    for i in range(10):
        gate(refused(i=i, detail="x" * 250))
    assert len(passed) == 3


def test_a_line_refused_by_the_overall_budget_costs_its_peer_nothing():
    """When the overall budget refuses a line, the peer's tokens are given back: the peer is not charged for
    lines that never reached the log."""
    slow_peer = Budget(lines_per_second=0.001, bytes_per_second=0, burst_seconds=20_000.0)  # 20 lines, no refill
    gate, passed, clock, _ = budget(per_peer=slow_peer,
                                    overall=Budget(lines_per_second=1.0, bytes_per_second=0, burst_seconds=1.0))
    gate(refused("tcp4:198.51.100.1:1"))  # uses the only overall token
    for i in range(50):
        gate(refused(i=i))  # all refused by the overall budget
    assert len(passed) == 1
    for i in range(25):
        clock.now += 1.0  # one overall token per second; the peer still has its whole burst of 20
        gate(refused(i=i))
    assert len(passed) - len(summaries(passed)) == 1 + 20


def test_a_line_that_cannot_be_measured_is_still_budgeted():
    """When the formatter raises on an event, it is charged a fixed size and still counted: no exception escapes."""
    passed: list[dict] = []

    def broken(event):
        raise ValueError("cannot format")

    per_peer = Budget(lines_per_second=100.0, bytes_per_second=1_000.0, burst_seconds=10.0)
    gate = LogBudget(passed.append, measure=broken, clock=FakeClock(), per_peer=per_peer, overall=OVERALL)
    for i in range(30):
        gate(refused(i=i))
    assert len(passed) == 9  # 10,000 bytes of burst at UNMEASURED_SIZE (1,024) each


def test_lines_are_attributed_to_peer_then_session_then_unattributed():
    """The key: the address of `peer` (tcp4/tcp6, port dropped), else `session N`, else one shared key."""
    assert logbudget.budget_key({"peer": "tcp4:203.0.113.9:50312"}) == "203.0.113.9"
    assert logbudget.budget_key({"peer": "tcp6:2001:db8::1:50312"}) == "2001:db8::1"
    assert logbudget.budget_key({"peer": "unknown peer"}) == "unknown peer"
    assert logbudget.budget_key({"session": 42, "authid": "x"}) == "session 42"
    assert logbudget.budget_key({"log_io": '"127.0.0.1" - - "GET / HTTP/1.1" 200'}) == logbudget.UNATTRIBUTED


def test_unattributed_lines_share_one_peer_budget():
    """Lines naming no peer or session (e.g. twisted.web's access lines) share one per-peer budget: a flood of them
    gets that burst through, and a line from a real peer still passes."""
    gate, passed, _, _ = budget()
    for i in range(100):
        gate({"log_format": "{log_io}", "log_io": f'"127.0.0.1" - - "GET /{i} HTTP/1.1" 404 145',
              "log_level": LogLevel.info, "log_namespace": "twisted.python.log"})
    gate(refused())
    assert len(passed) == 21


def test_the_peer_table_is_bounded():
    """Past `max_peers` tracked addresses, new peers share one "other peers" budget; idle peers are forgotten when
    the table is full and an interval has passed."""
    gate, passed, clock, _ = budget(overall=Budget(0, 0), max_peers=50)
    for i in range(200):
        gate(refused(f"tcp4:10.0.0.{i}:1"))
    assert len(gate._peers) == 51  # 50 addresses and the shared key (internal state: nothing outside shows it)
    assert len(passed) == 50 + 20
    clock.now = 20.0
    gate(refused("tcp4:192.0.2.1:1"))
    assert set(gate._peers) == {"192.0.2.1"}


def test_a_one_megabyte_authid_is_truncated_in_the_text_line(monkeypatch):
    """A failed login with a 1 MB authid becomes one line of a few hundred bytes, the authid cut to 200 characters
    and marked with how much was cut."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    observer = logs.text(schedule=FakeTimers())
    authid = "A" * 1_000_000
    observer({"log_format": "authentication failed: method {method}, authid {authid!r}, peer {peer}: {reason}",
              "method": "ticket", "authid": authid, "peer": "tcp4:203.0.113.9:1", "reason": "bad ticket",
              "log_level": LogLevel.info, "log_namespace": "wampgate.tx.authentication.Authentication",
              "log_time": 0.0})
    line = out.getvalue()
    assert f"authid '{'A' * 200}…(+999800 chars)', peer" in line
    assert len(line.encode()) < 500


def test_a_one_megabyte_authid_is_truncated_in_the_json_line(monkeypatch):
    """In the JSON observer the field itself (and its flattened copy) is cut the same way."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    observer = logs.json(schedule=FakeTimers())
    observer({"log_format": "authentication failed: authid {authid!r}", "authid": "A" * 1_000_000,
              "peer": "tcp4:203.0.113.9:1", "log_level": LogLevel.info, "log_namespace": "tests", "log_time": 0.0})
    record = json.loads(out.getvalue())
    assert record["authid"] == "A" * 200 + "…(+999800 chars)"
    assert len(out.getvalue().encode()) < 2_000


def test_truncation_cuts_strings_bytes_and_containers_and_leaves_the_rest():
    """Every string field over the bound is cut (log_io included); bytes likewise; a tuple of 1,000 offered
    authmethods shows 20 bounded items and how many more; the format string, numbers and other objects are kept;
    the caller's event is not changed, and an event within bounds is returned as is (no copy)."""
    failure = object()
    event = {"log_format": "{offered} " + "{x}" * 100, "log_io": "y" * 300, "raw": b"z" * 300,
             "offered": tuple(f"m{i}" * 100 for i in range(1_000)), "session": 10**15, "log_failure": failure}
    cut = truncate_event(event, 200)
    assert cut["log_format"] == event["log_format"]
    assert cut["log_io"] == "y" * 200 + "…(+100 chars)"
    assert cut["raw"] == b"z" * 200 + "…(+100 bytes)".encode()
    assert len(cut["offered"]) == 21 and cut["offered"][-1] == "…(+980 items)"
    assert cut["offered"][0] == "m0" * 100  # 200 characters: within the bound
    assert cut["offered"][10] == ("m10" * 100)[:200] + "…(+100 chars)"
    assert cut["session"] == 10**15 and cut["log_failure"] is failure
    assert len(event["log_io"]) == 300
    small = {"log_format": "{a}", "a": "short", "b": ("x", "y")}
    assert truncate_event(small, 200) is small


def test_nested_containers_are_bounded_by_depth():
    """Containers nested deeper than MAX_DEPTH are shown by their type and size only."""
    deep = [[[["secret" * 100]]]]
    assert bound_value(deep, 200) == [[["<list of 1 items>"]]]


@pytest.mark.parametrize("level, limit", [(LogLevel.info, 200), (LogLevel.error, 2000)])
def test_router_errors_keep_longer_strings_than_client_lines(level, limit):
    """A config problem logged by a refused reload (error) keeps up to 2,000 characters; client lines 200."""
    passed: list[dict] = []
    observer = logs._filtered(passed.append, lambda e: 0, schedule=FakeTimers())
    observer({"log_format": "{problem}", "problem": "p" * 5_000, "log_level": level, "log_namespace": "tests"})
    assert passed[0]["problem"] == "p" * limit + f"…(+{5_000 - limit} chars)"
