"""Repeated authentication failures slow down, then lock out, per key; memory stays bounded."""

from router.core.lockout import FailureTracker, LockoutPolicy

POLICY = LockoutPolicy(delay_after=2, delay=0.5, max_delay=4.0, lockout_after=5, lockout=60.0, window=100.0,
                       max_tracked=100)


def test_first_failures_are_answered_at_once_then_slowed_down_doubling():
    """Failures up to delay_after cost nothing; each further one doubles the delay, capped at max_delay."""
    tracker = FailureTracker(POLICY)
    delays = [tracker.record_failure("alice", now=1.0) for _ in range(4)]
    assert delays == [0.0, 0.0, 0.5, 1.0]


def test_the_failure_that_locks_out_is_refused_at_once():
    """Once locked, answers are not delayed: every attempt is refused anyway."""
    tracker = FailureTracker(POLICY)
    delays = [tracker.record_failure("alice", now=1.0) for _ in range(5)]
    assert delays[-1] == 0.0 and tracker.locked("alice", now=1.0)


def test_lockout_engages_after_the_configured_failures_and_lifts_after_its_time():
    """The lockout_after-th failure locks the key for `lockout` seconds; then it is free again."""
    tracker = FailureTracker(POLICY)
    for _ in range(5):
        tracker.record_failure("alice", now=10.0)
    assert tracker.locked("alice", now=10.0)
    assert tracker.locked("alice", now=69.9)
    assert not tracker.locked("alice", now=70.1)
    assert not tracker.locked("bob", now=10.0)


def test_failures_outside_the_window_are_forgotten():
    """A failure older than `window` no longer counts towards delays or lockout."""
    tracker = FailureTracker(POLICY)
    tracker.record_failure("alice", now=0.0)
    tracker.record_failure("alice", now=0.0)
    assert tracker.record_failure("alice", now=200.0) == 0.0


def test_success_resets_the_key():
    """A successful authentication clears the key's failures."""
    tracker = FailureTracker(POLICY)
    for _ in range(3):
        tracker.record_failure("alice", now=0.0)
    tracker.record_success("alice")
    assert tracker.record_failure("alice", now=0.0) == 0.0


def test_memory_is_bounded_by_max_tracked():
    """A flood of distinct keys never makes the tracker hold more than max_tracked of them."""
    tracker = FailureTracker(POLICY)
    for i in range(1000):
        tracker.record_failure(("peer", i), now=0.0)
    assert len(tracker) == 100
