"""What the converter could not carry over: one line per Crossbar key, naming it and saying why."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class Notes(list):
    """Lines of the form `workers[0].transports[1].options.fail_by_drop: no such option ...`."""

    def add(self, where: str, why: str) -> None:
        self.append(f"{where}: {why}")

    def unknown(self, where: str, table: Mapping[str, Any], known: Iterable[str], why: str) -> None:
        """One line per key of `table` not in `known`."""
        known = set(known)
        for key in table:
            if key not in known:
                self.add(f"{where}.{key}", why)


def mapping(item: Any) -> Mapping[str, Any]:
    """`item` when it is a JSON object, else an empty one (the caller notes what it expected)."""
    return item if isinstance(item, Mapping) else {}
