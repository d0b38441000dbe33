"""Repeated authentication failures slow down, then lock out, per key; login attempts are rate-limited per peer;
memory stays bounded in entries and in bytes (fixed-size keys)."""

from wampgate.core.lockout import (KEY_BYTES, AuthFailures, FailureTracker, LockoutPolicy, LoginRate, identity_key,
                                 peer_key)

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


# -- keys, the router-wide guard, the login rate ---------------------------------------------------------------------


def test_keys_have_a_fixed_size_whatever_the_client_sent():
    """Table keys are 16-byte digests: a megabyte authid makes an entry no bigger than a short one."""
    assert len(identity_key("ticket", "realm1", "a")) == KEY_BYTES == 16
    assert len(identity_key("ticket", "realm1", "x" * 1_000_000)) == KEY_BYTES
    assert len(peer_key("tcp6:" + "f" * 10_000)) == KEY_BYTES


def test_identity_keys_differ_by_method_realm_and_authid():
    """(method, realm, authid) each matter, and the parts cannot run into each other."""
    keys = {identity_key("ticket", "realm1", "erin"), identity_key("cryptosign", "realm1", "erin"),
            identity_key("ticket", "realm2", "erin"), identity_key("ticket", "realm1", "erin2"),
            identity_key("ticket", "realm1e", "rin"), peer_key("erin")}
    assert len(keys) == 6


def test_failures_of_one_method_do_not_lock_out_another():
    """Ten wrong tickets for erin lock out (ticket, erin), not (cryptosign, erin)."""
    guard = AuthFailures(POLICY)
    peer = peer_key("tcp4:127.0.0.1")
    for _ in range(10):
        guard.record_failure(identity_key("ticket", "realm1", "erin"), peer, now=0.0)
    assert guard.locked(identity_key("ticket", "realm1", "erin"), peer, now=1.0)
    assert not guard.locked(identity_key("cryptosign", "realm1", "erin"), peer, now=1.0)


def test_success_clears_the_identity_not_the_peer():
    """record_success forgets the identity's failures; the peer's stay counted."""
    guard = AuthFailures(LockoutPolicy(peer_lockout_after=3, lockout_after=3))
    identity, peer = identity_key("ticket", "realm1", "alice"), peer_key("tcp4:10.0.0.1")
    for _ in range(2):
        guard.record_failure(identity, peer, now=0.0)
    guard.record_success(identity)
    assert len(guard.by_identity) == 0 and len(guard.by_peer) == 1
    guard.record_failure(None, peer, now=0.0)
    assert guard.locked(None, peer, now=0.0)


def test_login_rate_admits_the_burst_then_the_rate():
    """burst 3 at 2/s: three attempts at once, the fourth refused; half a second later one more."""
    guard = AuthFailures(LockoutPolicy(logins_per_peer_rate=2.0, logins_per_peer_burst=3))
    peer = peer_key("tcp4:10.0.0.1")
    assert [guard.admit_login(peer, now=0.0) for _ in range(4)] == [True, True, True, False]
    assert guard.admit_login(peer_key("tcp4:10.0.0.2"), now=0.0)
    assert guard.admit_login(peer, now=0.5)
    assert not guard.admit_login(peer, now=0.5)


def test_login_rate_zero_means_unlimited():
    """logins_per_peer_rate = 0 admits everything and keeps no bucket."""
    rate = LoginRate(0.0, 1, 100)
    assert all(rate.admit("peer", now=0.0) for _ in range(1000))
    assert len(rate) == 0


def test_login_rate_memory_is_bounded_by_max_tracked():
    """A flood of distinct addresses never makes the guard hold more than max_tracked buckets."""
    rate = LoginRate(1.0, 1, 100)
    for i in range(1000):
        rate.admit(("peer", i), now=0.0)
    assert len(rate) == 100
