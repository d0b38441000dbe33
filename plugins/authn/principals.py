"""The principal table most authentication methods share: `[[principals]]` with a unique `authid`, a `role`, an
optional `realm` and the method's own secret fields, which each plugin reads from the row it is handed (with
wampgate.plugin's Table).

A principal's `realm` binds it to that realm: a HELLO without a realm joins it (as Crossbar does), a HELLO naming
another realm is refused. The router checks at start-up that the realm exists and that the method serves it.
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
    realm: str | None = None  # None: whichever realm the HELLO names


def read_principals(config: Table, secret_keys: Iterable[str], *, required: bool = True,
                    normalize=None) -> list[tuple[Principal, Table]]:
    """The `[[principals]]` rows: each with a unique `authid` and a `role`, plus the method's `secret_keys`, which
    the caller reads from the row returned beside each principal. `normalize(authid)` (e.g. lower-casing DNS names)
    applies before the uniqueness check."""
    rows = config.tables("principals", ("authid", "role", "realm", *secret_keys), required=required)
    seen: dict[str, str] = {}
    result = []
    for row in rows:
        authid = row.string("authid", required=True)
        if normalize is not None:
            authid = normalize(authid)
        if authid in seen:
            raise row.fail("authid", f"duplicate authid; already used by {seen[authid]}")
        seen[authid] = row.path
        result.append((Principal(authid, row.string("role", required=True), row.string("realm")), row))
    return result


def principal_roles(principals: Iterable[Principal]) -> dict[str, str]:
    """{key path: role} of the `[[principals]]` rows, in the order `read_principals` returned them: what the
    authenticator's `roles()` reports, so the router can check each role is defined."""
    return {f"principals[{index}].role": principal.role for index, principal in enumerate(principals)}


def principal_realms(principals: Iterable[Principal]) -> dict[str, str]:
    """{key path: realm} of the `[[principals]]` rows that name a realm: what the authenticator's `realms()` reports,
    so the router can check each realm exists and is served by the method."""
    return {f"principals[{index}].realm": principal.realm for index, principal in enumerate(principals)
            if principal.realm is not None}


def most_common(values: Iterable[Any]) -> Any:
    """The most frequent value (the first seen among equals); what decoys for unknown users imitate."""
    counts: dict[Any, int] = {}
    for value in values:
        counts[value] = counts.get(value, 0) + 1
    return max(counts, key=counts.__getitem__) if counts else None
