"""The meters of the `limits` flow-control plugin and the bounded table of those shared by sessions.

A shared meter (per authid, role or peer address) lives while a live session uses it; once its last session has
left it is kept only while it carries information (a bucket not yet refilled, a quota used in its window), so a
client cannot refill its budget by reconnecting. The table holds at most `capacity` meters: at the cap the stalest
meter no live session uses gives way to a new key, so new sessions always get meters of their own.
"""

from __future__ import annotations

import hashlib
from itertools import islice
from collections.abc import Callable, Hashable
from dataclasses import dataclass

from wampgate.plugin import TokenBucket, WindowQuota

MAX_KEY_LENGTH = 256  # characters of a client string kept as a key; longer ones are kept as a 16-byte digest
SWEEP = 4  # released meters looked at (stalest first) each time one is released: forgotten once they carry nothing


@dataclass(frozen=True)
class Rate:
    messages: float  # per second (0: unlimited)
    burst: float
    bytes: float  # per second (0: unlimited)
    byte_burst: float


@dataclass(frozen=True)
class Quota:
    scope: str
    messages: int
    window: float


def bounded_key(text: str) -> str | tuple[str, bytes]:
    """A client string as a table key of bounded size: itself up to MAX_KEY_LENGTH characters, else its digest
    (a tuple, so it can never equal a short string)."""
    if len(text) <= MAX_KEY_LENGTH:
        return text
    return ("blake2b", hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest())


class Meter:
    """The buckets and quotas of one key (a session, an authid, ...)."""

    __slots__ = ("messages", "bytes", "quotas")

    def __init__(self, rate: Rate, quotas: list[Quota], now: float):
        self.messages = TokenBucket(rate.messages, rate.burst, now)
        self.bytes = TokenBucket(rate.bytes, rate.byte_burst, now)
        self.quotas = [WindowQuota(q.messages, q.window, now) for q in quotas]

    def take(self, size: int, now: float, counted: bool = True) -> float:
        """Charge one message of `size` bytes (and, when `counted`, one unit of each quota): 0.0 when every limit
        admits it, else the wait, with nothing charged (limits already charged are refunded)."""
        wait = self.messages.take(1, now)
        if wait:
            return wait
        wait = self.bytes.take(size, now)
        if wait:
            self.messages.refund(1)
            return wait
        if counted:
            for index, quota in enumerate(self.quotas):
                wait = quota.take(1, now)
                if wait:
                    self.refund(size, self.quotas[:index])
                    return wait
        return 0.0

    def refund(self, size: int, quotas: list[WindowQuota] | None = None) -> None:
        """Give back one message: its bucket tokens and one unit of `quotas` (default: all of them)."""
        self.messages.refund(1)
        self.bytes.refund(size)
        for quota in self.quotas if quotas is None else quotas:
            quota.refund(1)

    def idle(self, now: float) -> bool:
        """Whether the meter carries no information: forgetting it and starting afresh would change nothing."""
        return self.messages.full(now) and self.bytes.full(now) and all(q.idle(now) for q in self.quotas)


class _Entry:
    __slots__ = ("meter", "users")

    def __init__(self, meter: Meter):
        self.meter = meter
        self.users = 0  # live sessions using the meter


class SharedMeters:
    """Meters shared by sessions, at most `capacity` of them (see the module docstring)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._entries: dict[Hashable, _Entry] = {}
        self._released: dict[Hashable, None] = {}  # keys no live session uses, stalest first

    def __len__(self) -> int:
        return len(self._entries)

    def released(self) -> int:
        """How many meters are kept for sessions that have left."""
        return len(self._released)

    def acquire(self, key: Hashable, make: Callable[[], Meter]) -> Meter | None:
        """The meter of `key` for one more live session (made with `make()` if there is none); None when the table
        is at its capacity and every meter in it is in use."""
        entry = self._entries.get(key)
        if entry is None:
            if len(self._entries) >= self.capacity:
                if not self._released:
                    return None
                stalest = next(iter(self._released))
                del self._released[stalest]
                del self._entries[stalest]
            entry = self._entries[key] = _Entry(make())
        elif not entry.users:
            del self._released[key]
        entry.users += 1
        return entry.meter

    def release(self, key: Hashable, now: float) -> None:
        """One live session of `key` has left: with the last one gone, keep the meter only while it carries
        information. A few of the stalest kept ones are looked at again too."""
        entry = self._entries.get(key)
        if entry is None or not entry.users:
            return
        entry.users -= 1
        if entry.users:
            return
        if entry.meter.idle(now):
            del self._entries[key]
        else:
            self._released[key] = None
        self.sweep(now)

    def sweep(self, now: float, limit: int = SWEEP) -> None:
        """Forget kept meters that have come to carry nothing, stalest first, looking at `limit` of them at most
        and stopping at the first that still carries something (the rest are younger)."""
        for key in list(islice(self._released, limit)):
            if not self._entries[key].meter.idle(now):
                return
            del self._released[key]
            del self._entries[key]
