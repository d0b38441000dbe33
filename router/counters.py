"""Counts of refusals, drops and disconnects, by name and labels (listener, realm, reason...), kept in the router for
the operations work to export. Labels come from the config and from fixed reason names, never from client data, so
the number of series stays bounded."""

from __future__ import annotations

from collections import Counter


class Counters:
    def __init__(self) -> None:
        self._counts: Counter = Counter()

    def increment(self, name: str, amount: int = 1, **labels: str) -> None:
        self._counts[(name, tuple(sorted(labels.items())))] += amount

    def value(self, name: str, **labels: str) -> int:
        """The count for exactly these labels, or the sum over all labels when none are given."""
        if labels:
            return self._counts[(name, tuple(sorted(labels.items())))]
        return sum(count for (counted, _), count in self._counts.items() if counted == name)

    def items(self) -> list[tuple[str, dict, int]]:
        return [(name, dict(labels), count) for (name, labels), count in sorted(self._counts.items())]
