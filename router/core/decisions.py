"""Cached authorization decisions: keyed so that an answer never applies to an identity it was not made for, expired
after their TTL, and bounded in number (the oldest go first). Sans-I/O: `now` is passed in."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

DEFAULT_MAX_ENTRIES = 100_000


class DecisionCache:
    """Entries are keyed by (role, authid, authmethod, action, uri, match); an answer the authorizer said holds for
    the whole role is keyed with authid and authmethod left out, and only ever found by sessions of that role."""

    def __init__(self, max_entries: int = DEFAULT_MAX_ENTRIES):
        self._max = max_entries
        self._entries: dict[Hashable, tuple[float, Any]] = {}

    def get(self, role: str, authid: str, authmethod: str, action: str, uri: str, match: str, now: float):
        entry = self._entries.get((role, authid, authmethod, action, uri, match))
        if entry is None:
            entry = self._entries.get((role, None, None, action, uri, match))
        if entry is None:
            return None
        expires, decision = entry
        if expires <= now:
            return None
        return decision

    def put(self, role: str, authid: str, authmethod: str, action: str, uri: str, match: str, decision, now: float):
        if decision.cache_ttl <= 0 or self._max <= 0:
            return
        key = (role, None, None, action, uri, match) if decision.per_role else (role, authid, authmethod, action, uri,
                                                                                 match)
        entries = self._entries
        if key not in entries and len(entries) >= self._max:
            self._evict(now)
        entries[key] = (now + decision.cache_ttl, decision)

    def clear(self) -> None:
        self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def _evict(self, now: float) -> None:
        """Drop expired entries; when none are, drop the oldest tenth."""
        entries = self._entries
        expired = [key for key, (expires, _) in entries.items() if expires <= now]
        for key in expired:
            del entries[key]
        if len(entries) >= self._max:
            for key in list(entries)[: max(1, self._max // 10)]:
                del entries[key]
