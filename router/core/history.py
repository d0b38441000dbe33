"""Event history: the last events published on configured topics, per realm, for `wamp.subscription.get_events`.

A realm's config names the topics (exact URIs or prefixes) whose events are kept, each rule with its own count; all
of them together are bounded by an estimate of the bytes held (the estimate event retention uses), and beyond it the
oldest event of the realm goes first. An event is kept under one rule: an exact rule before a prefix, a longer prefix
before a shorter one. Entries are RetainedEvents: what was published, the publisher only when disclosed, and the
publish options that decide who may see it. Events with a transparent payload are not kept: a meta procedure's
answer cannot carry them. Sans-I/O; the broker records, the meta API reads.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from itertools import count
from typing import NamedTuple

from wampgate.core.passthru import is_opaque
from wampgate.core.retention import RetainedEvent
from wampgate.uri import EXACT, pattern_matches


class HistoryRule(NamedTuple):
    """`[[realms.history]]`: keep the last `limit` events whose topic is `uri` (exact) or starts with it (prefix)."""

    uri: str
    match: str
    limit: int


class _Kept(NamedTuple):
    sequence: int  # realm-wide order of recording
    event: RetainedEvent


class EventHistory:
    """The kept events of one realm, per rule, oldest first."""

    def __init__(self, rules: Iterable[HistoryRule], max_bytes: int):
        self.max_bytes = max_bytes
        self._bytes = 0
        self._sequence = count()
        self._exact: dict[str, tuple[HistoryRule, deque[_Kept]]] = {}
        self._prefixes: list[tuple[HistoryRule, deque[_Kept]]] = []  # longest first
        self.set_rules(rules)

    def __len__(self) -> int:
        return sum(len(kept) for _, kept in self._queues())

    @property
    def bytes(self) -> int:
        """The estimated bytes held (what `max_bytes` bounds)."""
        return self._bytes

    @property
    def rules(self) -> tuple[HistoryRule, ...]:
        return tuple(rule for rule, _ in self._queues())

    def set_rules(self, rules: Iterable[HistoryRule], max_bytes: int | None = None) -> None:
        """New rules (a reload): a rule kept with the same URI and match keeps its events, cut to its new limit;
        the events of removed rules are dropped."""
        if max_bytes is not None:
            self.max_bytes = max_bytes
        old = {(rule.uri, rule.match): kept for rule, kept in self._queues()}
        self._exact, self._prefixes, self._bytes = {}, [], 0
        for rule in rules:
            kept = old.pop((rule.uri, rule.match), deque())
            while len(kept) > rule.limit:
                kept.popleft()
            self._bytes += sum(item.event.size for item in kept)
            if rule.match == EXACT:
                self._exact[rule.uri] = (rule, kept)
            else:
                self._prefixes.append((rule, kept))
        self._prefixes.sort(key=lambda pair: -len(pair[0].uri))
        self._evict()

    def covers(self, topic: str) -> bool:
        """Whether a rule keeps events on `topic` (checked before the broker builds the entry)."""
        return self._rule_for(topic) is not None

    def _rule_for(self, topic: str) -> tuple[HistoryRule, deque[_Kept]] | None:
        found = self._exact.get(topic)
        if found is None:
            found = next((pair for pair in self._prefixes if topic.startswith(pair[0].uri)), None)
        return found

    def record(self, event: RetainedEvent) -> None:
        """Keep `event` if a rule covers its topic; it pushes out its rule's oldest beyond the rule's limit, then the
        realm's oldest beyond the byte bound. An event larger than the byte bound alone is not kept."""
        found = self._rule_for(event.topic)
        if found is None or is_opaque(event) or event.size > self.max_bytes:
            return
        rule, kept = found
        kept.append(_Kept(next(self._sequence), event))
        self._bytes += event.size
        if len(kept) > rule.limit:
            self._bytes -= kept.popleft().event.size
        self._evict()

    def matching(self, uri: str, match: str, limit: int, admits: Callable[[RetainedEvent], bool]) -> list[RetainedEvent]:
        """At most `limit` kept events a (uri, match) subscription covers and `admits` lets through, newest first
        (Crossbar's order). Walks every kept event, which the rules' limits and the byte bound bound."""
        found = [
            item
            for _, kept in self._queues()
            for item in kept
            if pattern_matches(uri, match, item.event.topic) and admits(item.event)
        ]
        found.sort(key=lambda item: -item.sequence)
        return [item.event for item in found[:limit]]

    def _queues(self) -> list[tuple[HistoryRule, deque[_Kept]]]:
        return [*self._exact.values(), *self._prefixes]

    def _evict(self) -> None:
        """Drop the realm's oldest events until the bytes fit: the oldest is the head of one rule's queue."""
        while self._bytes > self.max_bytes:
            heads = [kept for _, kept in self._queues() if kept]
            if not heads:
                return
            oldest = min(heads, key=lambda kept: kept[0].sequence)
            self._bytes -= oldest.popleft().event.size

