"""A log budget for client-caused lines, so that no client decides how fast the log grows.

Which lines are client-caused: every line below `warn` (the router logs refusals, denials, protocol violations,
failed logins, joins and leaves, and twisted.web's access lines at `info`), except the router's own life-cycle lines
(listening, ready, reload, signals: ROUTER_NAMESPACES). Warnings and errors are the router's own business (a reload
refused, an authorizer that fails, a bug) and never count against the budget. The rule fails closed: a new `info`
line is budgeted unless someone decides it is the router's own.

Whose budget a line uses: the peer address in its `peer` field (`tcp4:203.0.113.9:50312` -> `203.0.113.9`), else
its `session` id, else one shared "unattributed" key. Every line also takes from the overall budget. A budget is two
token buckets, lines/s and bytes/s, each holding `burst_seconds` of its rate; a line passes only when every bucket it
draws on has room. Suppressed lines are counted; one warning per `interval` says how many lines and bytes were
suppressed, for how many peers, and which peer had most.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from twisted.logger import ILogObserver, LogLevel
from zope.interface import implementer

from wampgate.buckets import TokenBucket

ROUTER_NAMESPACES = ("wampgate.tx.router_service", "wampgate.tx.service")
UNATTRIBUTED = "unattributed"
OTHER_PEERS = "other peers"  # the shared key once MAX_PEERS peers are tracked
SUMMARY_INTERVAL = 10.0
MAX_PEERS = 10_000
UNMEASURED_SIZE = 1024  # bytes charged for an event whose line cannot be measured


@dataclass(frozen=True)
class Budget:
    """Lines and bytes per second (0 means unlimited), with room for a burst of `burst_seconds` of each (a line
    longer than the bytes burst never passes: with strings cut to 200 characters, lines stay far shorter)."""

    lines_per_second: float
    bytes_per_second: float
    burst_seconds: float = 10.0


PER_PEER = Budget(lines_per_second=2.0, bytes_per_second=2048.0)
OVERALL = Budget(lines_per_second=25.0, bytes_per_second=25_600.0)


def is_client_caused(event: Mapping[str, Any]) -> bool:
    """Below `warn` and not from the router's own life cycle (an event without a level counts as client-caused)."""
    level = event.get("log_level")
    if level is not None and level >= LogLevel.warn:
        return False
    namespace = event.get("log_namespace") or ""
    return not any(namespace == name or namespace.startswith(name + ".") for name in ROUTER_NAMESPACES)


def budget_key(event: Mapping[str, Any]) -> str:
    """Whose budget a client-caused line draws on: its peer's address, else its session, else UNATTRIBUTED."""
    peer = event.get("peer")
    if peer is not None:
        return peer_address(str(peer))
    session = event.get("session")
    if isinstance(session, int) and not isinstance(session, bool):
        return f"session {session}"
    return UNATTRIBUTED


def peer_address(peer: str) -> str:
    """`tcp4:203.0.113.9:50312` -> `203.0.113.9` (every connection from one address shares a budget)."""
    kind, separator, rest = peer.partition(":")
    if separator and kind in ("tcp4", "tcp6"):
        return rest.rsplit(":", 1)[0]
    return peer


class _Buckets:
    """One budget's two buckets."""

    __slots__ = ("lines", "bytes", "burst_seconds")

    def __init__(self, budget: Budget, now: float):
        self.lines = TokenBucket(budget.lines_per_second, budget.lines_per_second * budget.burst_seconds, now)
        self.bytes = TokenBucket(budget.bytes_per_second, budget.bytes_per_second * budget.burst_seconds, now)
        self.burst_seconds = budget.burst_seconds

    def take(self, size: int, now: float) -> bool:
        if self.lines.take(1, now) > 0:
            return False
        if self.bytes.take(size, now) > 0:
            self.lines.refund(1)
            return False
        return True

    def refund(self, size: int) -> None:
        self.lines.refund(1)
        self.bytes.refund(size)

    def idle(self, now: float) -> bool:
        """Both buckets would be full again: forgetting them changes nothing."""
        return now - max(self.lines.stamp, self.bytes.stamp) >= self.burst_seconds


@dataclass
class _Suppressed:
    """What was suppressed since `since` (the first suppression of this summary interval)."""

    since: float
    window: int
    lines: int = 0
    bytes: int = 0
    per_key: dict[str, int] = field(default_factory=dict)  # suppressed lines per budget key


@implementer(ILogObserver)
class LogBudget:
    """Passes client-caused events to `observer` within the per-peer and overall budgets; every other event passes.

    `measure(event)` is the size in bytes of the line the event becomes (the observers pass their own formatter's);
    `clock()` reads monotonic seconds; `schedule(delay, f)`, when given, runs `f` later so the summary of a flood is
    written at the end of its interval even if nothing else is logged (without it, with the next line after it).
    """

    def __init__(self, observer: Callable[[Mapping[str, Any]], None], *, measure: Callable[[Mapping[str, Any]], int],
                 clock: Callable[[], float] = time.monotonic, per_peer: Budget = PER_PEER, overall: Budget = OVERALL,
                 interval: float = SUMMARY_INTERVAL, max_peers: int = MAX_PEERS,
                 schedule: Callable[[float, Callable[[], None]], Any] | None = None,
                 wall_clock: Callable[[], float] = time.time):
        self._observer = observer
        self._measure = measure
        self._clock = clock
        self._per_peer = per_peer
        self._interval = interval
        self._max_peers = max_peers
        self._schedule = schedule
        self._wall_clock = wall_clock
        now = clock()
        self._overall = _Buckets(overall, now)
        self._peers: dict[str, _Buckets] = {}
        self._pruned = now
        self._suppressed: _Suppressed | None = None
        self._windows = 0
        self._lock = threading.Lock()  # events may come from threads other than the reactor's

    def __call__(self, event: Mapping[str, Any]) -> None:
        if not is_client_caused(event):
            self._emit(self._due_summary(), event)
            return
        size = self._size(event)
        key = budget_key(event)
        with self._lock:
            now = self._clock()
            summary = self._summary_if_due(now)
            passed = self._take(key, size, now)
            if not passed:
                self._count(key, size, now)
        self._emit(summary, event if passed else None)

    def _size(self, event: Mapping[str, Any]) -> int:
        try:
            return self._measure(event)
        except Exception:  # an event the formatter cannot write still costs a line; never lose the count
            return UNMEASURED_SIZE

    def flush(self, window: int | None = None) -> None:
        """Write the pending summary now (only if it is still the one of `window`, when given: the timer's)."""
        with self._lock:
            pending = self._suppressed
            if pending is None or (window is not None and pending.window != window):
                return
            summary = self._summary(pending, self._clock())
        self._observer(summary)

    # -- budget ------------------------------------------------------------------------------------------------

    def _take(self, key: str, size: int, now: float) -> bool:
        peer = self._peer_buckets(key, now)
        if not peer.take(size, now):
            return False
        if not self._overall.take(size, now):
            peer.refund(size)
            return False
        return True

    def _peer_buckets(self, key: str, now: float) -> _Buckets:
        buckets = self._peers.get(key)
        if buckets is not None:
            return buckets
        if len(self._peers) >= self._max_peers:
            self._prune(now)
            if len(self._peers) >= self._max_peers:
                key = OTHER_PEERS
                buckets = self._peers.get(key)
                if buckets is not None:
                    return buckets
        buckets = self._peers[key] = _Buckets(self._per_peer, now)
        return buckets

    def _prune(self, now: float) -> None:
        """Forget peers whose buckets are full again; at most once per interval, so a full table stays cheap."""
        if now - self._pruned < self._interval:
            return
        self._pruned = now
        for key in [key for key, buckets in self._peers.items() if buckets.idle(now)]:
            del self._peers[key]

    # -- summary -----------------------------------------------------------------------------------------------

    def _count(self, key: str, size: int, now: float) -> None:
        pending = self._suppressed
        if pending is None:
            self._windows += 1
            pending = self._suppressed = _Suppressed(since=now, window=self._windows)
            if self._schedule is not None:
                window = pending.window
                self._schedule(self._interval, lambda: self.flush(window))
        pending.lines += 1
        pending.bytes += size
        if key not in pending.per_key and key not in self._peers:
            key = OTHER_PEERS  # keys counted here are bounded by the peer table
        pending.per_key[key] = pending.per_key.get(key, 0) + 1

    def _due_summary(self) -> dict | None:
        with self._lock:
            return self._summary_if_due(self._clock())

    def _summary_if_due(self, now: float) -> dict | None:
        pending = self._suppressed
        if pending is None or now - pending.since < self._interval:
            return None
        return self._summary(pending, now)

    def _summary(self, pending: _Suppressed, now: float) -> dict:
        self._suppressed = None
        busiest = max(pending.per_key, key=pending.per_key.__getitem__)
        return {
            "log_namespace": "wampgate.tx.logs",
            "log_level": LogLevel.warn,
            "log_format": "log budget: suppressed {suppressed_lines} client-caused lines ({suppressed_bytes} bytes) "
                          "in {seconds:.1f} s from {suppressed_peers} peer(s), "
                          "most from {busiest} ({busiest_lines} lines)",
            "suppressed_lines": pending.lines,
            "suppressed_bytes": pending.bytes,
            "suppressed_peers": len(pending.per_key),
            "seconds": max(now - pending.since, 0.0),
            "busiest": busiest,
            "busiest_lines": pending.per_key[busiest],
            "log_time": self._wall_clock(),
        }

    def _emit(self, summary: dict | None, event: Mapping[str, Any] | None) -> None:
        if summary is not None:
            self._observer(summary)
        if event is not None:
            self._observer(event)
