"""Guarding authentication: failures slowed down and then locked out, per identity and per peer address, and login
attempts rate-limited per peer address.

Sans-I/O: the caller passes `now`. Memory is bounded in entries and in bytes: each table holds at most `max_tracked`
keys, the stalest forgotten first, and every key is a fixed-size digest (`identity_key`, `peer_key`), so what a
client sends (a long authid, an odd address) never makes an entry bigger.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, replace

from wampgate.buckets import TokenBucket

KEY_BYTES = 16  # the size of every key the tables hold


@dataclass(frozen=True)
class LockoutPolicy:
    """How the router guards authentication. The failure thresholds are `[limits.auth_failures]` keys; the login rate
    and the HELLO bounds are `[limits]` keys, kept here because the same guard enforces them before any authenticator
    is asked."""

    delay_after: int = 3  # failures (within `window`) answered at once; later ones are slowed down
    delay: float = 0.5  # seconds of the first slowed answer; doubles with each further failure
    max_delay: float = 8.0
    lockout_after: int = 10  # failures (within `window`) before the key is locked out
    lockout: float = 300.0  # seconds a lockout lasts
    window: float = 600.0  # failures older than this no longer count
    max_tracked: int = 100_000
    # A peer address may stand for many users (NAT, a proxy), so its thresholds are higher than an identity's.
    peer_delay_after: int = 30
    peer_lockout_after: int = 100
    # Login attempts (successful or not, every method but anonymous) per second and burst, per peer address: one
    # valid account must not keep the password checks busy for everyone. A rate of 0 means unlimited.
    logins_per_peer_rate: float = 10.0
    logins_per_peer_burst: int = 20
    max_authid_length: int = 256  # UTF-8 bytes of a HELLO authid
    max_authextra_size: int = 4096  # estimated serialized bytes of a HELLO authextra


def identity_key(method: str, realm: str, authid: str) -> bytes:
    """What an identity's failures count under: who claimed to be `authid` in `realm` with `method`. Failures of one
    method never lock another out (ten bogus tickets must not lock a cryptosign device out)."""
    return _digest("identity", method, realm, authid)


def peer_key(host: str) -> bytes:
    """What a peer address's failures and login attempts count under."""
    return _digest("peer", host)


def _digest(*parts: str) -> bytes:
    """A fixed-size, collision-resistant name for `parts` (each length-prefixed, so no two tuples share one)."""
    digest = hashlib.blake2b(digest_size=KEY_BYTES)
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.digest()


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


class LoginRate:
    """Login attempts per key (a peer address): a token bucket each, at most `max_tracked` buckets, the stalest
    forgotten first (a forgotten bucket starts full again, as an idle one would be)."""

    def __init__(self, rate: float, burst: int, max_tracked: int):
        self._rate = rate
        self._burst = burst
        self._max_tracked = max_tracked
        self._buckets: OrderedDict[Hashable, TokenBucket] = OrderedDict()

    def admit(self, key: Hashable, now: float) -> bool:
        """Take one attempt from `key`'s bucket: False (nothing taken) when it is empty."""
        if self._rate <= 0:
            return True
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self._rate, self._burst, now)
            while len(self._buckets) > self._max_tracked:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(1, now) == 0.0

    def __len__(self) -> int:
        return len(self._buckets)


class AuthFailures:
    """The router-wide guard: failures counted per identity (method, realm, authid) and per peer address, each with
    its own thresholds, and login attempts rate-limited per peer address. Keys come from `identity_key` and
    `peer_key`."""

    def __init__(self, policy: LockoutPolicy):
        self.policy = policy
        self.by_identity = FailureTracker(policy)
        self.by_peer = FailureTracker(
            replace(policy, delay_after=policy.peer_delay_after, lockout_after=policy.peer_lockout_after)
        )
        self.logins = LoginRate(policy.logins_per_peer_rate, policy.logins_per_peer_burst, policy.max_tracked)

    def locked(self, identity: bytes | None, peer: bytes, now: float) -> bool:
        return self.by_peer.locked(peer, now) or (identity is not None and self.by_identity.locked(identity, now))

    def admit_login(self, peer: bytes, now: float) -> bool:
        """One login attempt from `peer`: False when it is over `logins_per_peer_rate`."""
        return self.logins.admit(peer, now)

    def record_failure(self, identity: bytes | None, peer: bytes, now: float) -> float:
        """Count the failure against both keys; the longer of the two delays applies."""
        delay = self.by_peer.record_failure(peer, now)
        if identity is not None:
            delay = max(delay, self.by_identity.record_failure(identity, now))
        return delay

    def record_success(self, identity: bytes) -> None:
        """A success clears the identity's count, not the peer's: interleaving a valid login must not hide guessing.
        The caller passes only the identity that really authenticated (see wampgate.tx.authentication)."""
        self.by_identity.record_success(identity)
