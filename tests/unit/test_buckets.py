"""Token buckets and fixed-window quotas (wampgate.buckets) with the clock passed in: every test drives time by
hand, so nothing sleeps and every number is exact."""

from __future__ import annotations

import pytest

from wampgate.buckets import TokenBucket, WindowQuota

# -- TokenBucket ---------------------------------------------------------------------------------------------------


def test_a_new_bucket_is_full_and_admits_its_burst_at_once():
    """A bucket starts with `burst` tokens: that many single takes at the same instant are admitted (0.0), the
    next one is refused with the time until one token is back."""
    bucket = TokenBucket(rate=10.0, burst=5.0, now=100.0)
    assert [bucket.take(1, 100.0) for _ in range(5)] == [0.0] * 5
    assert bucket.take(1, 100.0) == pytest.approx(0.1)


def test_refused_take_takes_nothing():
    """A refused take leaves the tokens as they were: a later take of what is there still succeeds."""
    bucket = TokenBucket(rate=1.0, burst=3.0, now=0.0)
    assert bucket.take(3, 0.0) == 0.0
    assert bucket.take(1, 0.5) == pytest.approx(0.5)  # 0.5 tokens there, 1 asked
    assert bucket.tokens == pytest.approx(0.5)
    assert bucket.take(1, 1.0) == 0.0  # 1.0 token after a full second: admitted


def test_tokens_refill_at_the_rate():
    """After emptying, `rate * elapsed` tokens come back: 2 tokens/s for 1.5 s gives 3 takes, not 4."""
    bucket = TokenBucket(rate=2.0, burst=10.0, now=0.0)
    assert bucket.take(10, 0.0) == 0.0
    admitted = [bucket.take(1, 1.5) for _ in range(4)]
    assert admitted[:3] == [0.0, 0.0, 0.0]
    assert admitted[3] == pytest.approx(0.5)


def test_refill_is_capped_at_the_burst():
    """However long a bucket sits idle, it holds at most `burst` tokens."""
    bucket = TokenBucket(rate=100.0, burst=4.0, now=0.0)
    bucket.take(4, 0.0)
    assert bucket.full(3600.0)
    assert [bucket.take(1, 3600.0) for _ in range(4)] == [0.0] * 4
    assert bucket.take(1, 3600.0) == pytest.approx(0.01)


@pytest.mark.parametrize(
    "rate, burst, taken, asked, expected",
    [
        (10.0, 10.0, 10, 1, 0.1),  # one token at 10/s
        (10.0, 10.0, 10, 5, 0.5),  # five tokens at 10/s
        (2.0, 4.0, 3, 3, 1.0),  # 1 left, 2 missing at 2/s
        (1024.0, 4096.0, 4096, 2048, 2.0),  # a byte bucket: 2 KiB at 1 KiB/s
    ],
)
def test_retry_after_is_the_exact_time_until_enough_tokens(rate, burst, taken, asked, expected):
    """The refusal's value is (missing tokens) / rate, in seconds; taking again after exactly that long succeeds."""
    bucket = TokenBucket(rate, burst, now=0.0)
    assert bucket.take(taken, 0.0) == 0.0
    wait = bucket.take(asked, 0.0)
    assert wait == pytest.approx(expected)
    assert bucket.take(asked, wait + 1e-9) == 0.0


def test_rate_zero_is_unlimited():
    """A rate of 0 admits every take of any size, and the bucket always counts as full (forgettable)."""
    bucket = TokenBucket(rate=0.0, burst=1.0, now=0.0)
    assert all(bucket.take(10**9, 0.0) == 0.0 for _ in range(1000))
    assert bucket.full(0.0)


def test_full_reports_an_idle_refilled_bucket():
    """`full` is false while tokens are missing and true once the refill has reached the burst."""
    bucket = TokenBucket(rate=1.0, burst=2.0, now=0.0)
    assert bucket.full(0.0)
    bucket.take(2, 0.0)
    assert not bucket.full(1.0)
    assert bucket.full(2.0)


def test_fractional_takes_add_up():
    """Byte buckets take arbitrary amounts; takes that add up to the burst pass, one more byte is refused."""
    bucket = TokenBucket(rate=1000.0, burst=1000.0, now=0.0)
    assert [bucket.take(250, 0.0) for _ in range(4)] == [0.0] * 4
    assert bucket.take(1, 0.0) == pytest.approx(0.001)


# -- WindowQuota ---------------------------------------------------------------------------------------------------


def test_quota_admits_its_limit_within_a_window_then_refuses_until_the_window_ends():
    """`limit` units per window; the next is refused with the seconds left in the window."""
    quota = WindowQuota(limit=3, window=60.0, now=1000.0)
    assert [quota.take(1, 1000.0 + i) for i in range(3)] == [0.0] * 3
    assert quota.take(1, 1010.0) == pytest.approx(50.0)
    assert quota.take(1, 1059.5) == pytest.approx(0.5)


def test_quota_resets_when_the_window_is_over():
    """At `start + window` a fresh window begins with nothing used; the new window starts at that take."""
    quota = WindowQuota(limit=2, window=10.0, now=0.0)
    quota.take(2, 0.0)
    assert quota.take(1, 9.999) > 0
    assert quota.take(1, 10.0) == 0.0
    assert quota.take(1, 15.0) == 0.0
    assert quota.take(1, 15.0) == pytest.approx(5.0)  # the window that began at 10.0 ends at 20.0


def test_quota_refused_take_uses_nothing():
    """A refused take does not count towards the window: after the reset, the full limit is available."""
    quota = WindowQuota(limit=1, window=5.0, now=0.0)
    quota.take(1, 0.0)
    for t in range(5):
        assert quota.take(1, float(t)) > 0
    assert quota.used == 1
    assert quota.take(1, 5.0) == 0.0


def test_quota_of_zero_is_unlimited_and_always_idle():
    """A limit of 0 admits everything and never holds state worth keeping."""
    quota = WindowQuota(limit=0, window=1.0, now=0.0)
    assert all(quota.take(1, 0.0) == 0.0 for _ in range(1000))
    assert quota.idle(0.0)


def test_quota_idle_once_unused_or_its_window_is_over():
    """`idle` is true for an unused quota, false while units are used in the current window, true after it."""
    quota = WindowQuota(limit=5, window=10.0, now=0.0)
    assert quota.idle(0.0)
    quota.take(1, 1.0)
    assert not quota.idle(9.0)
    assert quota.idle(10.0)


def test_quota_take_larger_than_the_limit_is_refused():
    """A single take of more units than the limit can never pass within a window."""
    quota = WindowQuota(limit=3, window=10.0, now=0.0)
    assert quota.take(4, 0.0) == pytest.approx(10.0)
    assert quota.take(3, 0.0) == 0.0
