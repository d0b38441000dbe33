"""Token buckets and fixed-window quotas, with the clock passed in. Taking from a bucket costs a few arithmetic
operations and allocates nothing. Shared by the core (login rate limits), the glue (the log budget) and flow-control
plugins (through wampgate.plugin), so it belongs to none of them."""

from __future__ import annotations


class TokenBucket:
    """`rate` tokens per second, holding at most `burst`. A rate of 0 means unlimited."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float, now: float):
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, amount: float, now: float) -> float:
        """Take `amount` tokens: 0.0 when admitted, else the seconds until they would be there (nothing taken)."""
        rate = self.rate
        if rate <= 0:
            return 0.0
        tokens = self.tokens + (now - self.stamp) * rate
        if tokens > self.burst:
            tokens = self.burst
        self.stamp = now
        if tokens >= amount:
            self.tokens = tokens - amount
            return 0.0
        self.tokens = tokens
        return (amount - tokens) / rate

    def refund(self, amount: float) -> None:
        """Give back tokens taken for a message that another limit then refused."""
        if self.rate > 0:
            self.tokens = min(self.burst, self.tokens + amount)

    def full(self, now: float) -> bool:
        """Whether the bucket has refilled completely: an idle bucket that may be forgotten."""
        return self.rate <= 0 or self.tokens + (now - self.stamp) * self.rate >= self.burst


class WindowQuota:
    """At most `limit` units per fixed window of `window` seconds (e.g. messages per hour). 0 means unlimited."""

    __slots__ = ("limit", "window", "used", "start")

    def __init__(self, limit: int, window: float, now: float):
        self.limit = limit
        self.window = window
        self.used = 0
        self.start = now

    def take(self, amount: int, now: float) -> float:
        if self.limit <= 0:
            return 0.0
        if now - self.start >= self.window:
            self.start = now
            self.used = 0
        if self.used + amount > self.limit:
            return self.start + self.window - now
        self.used += amount
        return 0.0

    def refund(self, amount: int) -> None:
        self.used = max(0, self.used - amount)

    def idle(self, now: float) -> bool:
        return self.limit <= 0 or now - self.start >= self.window or self.used == 0
