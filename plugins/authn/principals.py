"""The principal table most authentication methods share: `[[principals]]` with a unique `authid`, a `role` and the
method's own secret fields, which each plugin reads from the row it is handed (with wampgate.plugin's Table).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from wampgate.plugin import Table


@dataclass(frozen=True, slots=True)
class Principal:
    """A user known from the config."""

    authid: str
    role: str


def read_principals(config: Table, secret_keys: Iterable[str], *, required: bool = True,
                    normalize=None) -> list[tuple[Principal, Table]]:
    """The `[[principals]]` rows: each with a unique `authid` and a `role`, plus the method's `secret_keys`, which
    the caller reads from the row returned beside each principal. `normalize(authid)` (e.g. lower-casing DNS names)
    applies before the uniqueness check."""
    rows = config.tables("principals", ("authid", "role", *secret_keys), required=required)
    seen: dict[str, str] = {}
    result = []
    for row in rows:
        authid = row.string("authid", required=True)
        if normalize is not None:
            authid = normalize(authid)
        if authid in seen:
            raise row.fail("authid", f"duplicate authid; already used by {seen[authid]}")
        seen[authid] = row.path
        result.append((Principal(authid, row.string("role", required=True)), row))
    return result


def principal_roles(principals: Iterable[Principal]) -> dict[str, str]:
    """{key path: role} of the `[[principals]]` rows, in the order `read_principals` returned them: what the
    authenticator's `roles()` reports, so the router can check each role is defined."""
    return {f"principals[{index}].role": principal.role for index, principal in enumerate(principals)}


def most_common(values: Iterable[Any]) -> Any:
    """The most frequent value (the first seen among equals); what decoys for unknown users imitate."""
    counts: dict[Any, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return max(counts, key=counts.__getitem__) if counts else None
