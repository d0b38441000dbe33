"""Slowing down and then locking out repeated authentication failures, per key (an authid, a peer address).

Sans-I/O: the caller passes `now`. Memory is bounded: at most `max_tracked` keys, the stalest forgotten first.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, replace


@dataclass(frozen=True)
class LockoutPolicy:
    delay_after: int = 3  # failures (within `window`) answered at once; later ones are slowed down
    delay: float = 0.5  # seconds of the first slowed answer; doubles with each further failure
    max_delay: float = 8.0
    lockout_after: int = 10  # failures (within `window`) before the key is locked out
    lockout: float = 300.0  # seconds a lockout lasts
    window: float = 600.0  # failures older than this no longer count
    max_tracked: int = 100_000
    # A peer address may stand for many users (NAT, a proxy), so its thresholds are higher than an authid's.
    peer_delay_after: int = 30
    peer_lockout_after: int = 100


class _Record:
    __slots__ = ("failures", "first", "locked_until")

    def __init__(self, now: float):
        self.failures = 0
        self.first = now
        self.locked_until = 0.0


class FailureTracker:
    """Counts failures per key; answers how long to delay the refusal and whether a key is locked out."""

    def __init__(self, policy: LockoutPolicy):
        self.policy = policy
        self._records: OrderedDict[Hashable, _Record] = OrderedDict()

    def locked(self, key: Hashable, now: float) -> bool:
        record = self._records.get(key)
        return record is not None and record.locked_until > now

    def record_failure(self, key: Hashable, now: float) -> float:
        """Count one failure; return the seconds to wait before answering it."""
        policy = self.policy
        record = self._records.get(key)
        if record is None or now - record.first > policy.window and record.locked_until <= now:
            record = _Record(now)
        self._records[key] = record
        self._records.move_to_end(key)
        while len(self._records) > policy.max_tracked:
            self._records.popitem(last=False)
        record.failures += 1
        if record.failures >= policy.lockout_after:
            record.locked_until = now + policy.lockout
            record.failures = 0
            record.first = now
        if record.locked_until > now:
            return 0.0  # locked out: every attempt is refused anyway, so answering slowly gains nothing
        extra = record.failures - policy.delay_after - 1
        if extra < 0:
            return 0.0
        return min(policy.max_delay, policy.delay * (2**extra))

    def record_success(self, key: Hashable) -> None:
        self._records.pop(key, None)

    def __len__(self) -> int:
        return len(self._records)


class AuthFailures:
    """Failures counted twice: per authid (in its realm) and per peer address, each with its own thresholds."""

    def __init__(self, policy: LockoutPolicy):
        self.by_authid = FailureTracker(policy)
        self.by_peer = FailureTracker(
            replace(policy, delay_after=policy.peer_delay_after, lockout_after=policy.peer_lockout_after)
        )

    def locked(self, authid_key: Hashable | None, peer_key: Hashable, now: float) -> bool:
        return self.by_peer.locked(peer_key, now) or (authid_key is not None and self.by_authid.locked(authid_key, now))

    def record_failure(self, authid_key: Hashable | None, peer_key: Hashable, now: float) -> float:
        """Count the failure against both keys; the longer of the two delays applies."""
        delay = self.by_peer.record_failure(peer_key, now)
        if authid_key is not None:
            delay = max(delay, self.by_authid.record_failure(authid_key, now))
        return delay

    def record_success(self, authid_key: Hashable | None) -> None:
        """A success clears the authid's count, not the peer's: interleaving a valid login must not hide guessing."""
        if authid_key is not None:
            self.by_authid.record_success(authid_key)
