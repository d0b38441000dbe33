"""Bounding the client strings in a log event before anything formats it.

A client chooses its authid, realm, URIs, authmethods and request paths, and the router logs them; without a bound,
100 failed logins with 1 MB authids grow the log by 100 MB. `truncate_event` is the one place that cuts them: every
string field longer than the bound is cut and marked `…(+N chars)`, so the text and JSON observers (and the repeat
filter's keys) only ever see bounded values. Containers are bounded too (their items, and how many are shown), since
a client can offer a thousand authmethods as easily as one long one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CLIENT_FIELD_CHARS = 200  # strings in client-caused (info) lines
ROUTER_FIELD_CHARS = 2000  # strings in the router's own warnings and errors: a config problem on reload stays whole
MAX_ITEMS = 20  # items of a tuple, list or dict field that are shown
MAX_DEPTH = 3  # containers nested deeper are shown as their type and size only

# Written by our code, never by a client, and needed intact: cutting a format string would break its braces.
_CODE_FIELDS = frozenset({"log_format", "log_namespace"})


def truncate_event(event: Mapping[str, Any], limit: int) -> Mapping[str, Any]:
    """`event` with every string field cut to `limit` characters; the same object when nothing needed cutting (the
    common case costs no copy), else a shallow copy (the caller's dict is never changed)."""
    copy: dict[str, Any] | None = None
    for name, value in event.items():
        if name in _CODE_FIELDS:
            continue
        bounded = bound_value(value, limit)
        if bounded is not value:
            if copy is None:
                copy = dict(event)
            copy[name] = bounded
    return event if copy is None else copy


def bound_value(value: Any, limit: int, depth: int = MAX_DEPTH) -> Any:
    """`value` itself when it is within bounds; otherwise a bounded stand-in of the same kind. Objects that are not
    strings, bytes or plain containers (a Failure, a Path, a number) are left alone: their text is ours."""
    if isinstance(value, str):
        return value if len(value) <= limit else f"{value[:limit]}…(+{len(value) - limit} chars)"
    if isinstance(value, bytes | bytearray):
        if len(value) <= limit:
            return value
        return bytes(value[:limit]) + f"…(+{len(value) - limit} bytes)".encode()
    if isinstance(value, tuple | list | Mapping):
        if depth <= 0:
            return f"<{type(value).__name__} of {len(value)} items>" if value else value
        return _bound_container(value, limit, depth - 1)
    return value


def _bound_container(value: tuple | list | Mapping, limit: int, depth: int) -> Any:
    if isinstance(value, Mapping):
        shown = list(value.items())[:MAX_ITEMS]
        items = {bound_value(k, limit, depth): bound_value(v, limit, depth) for k, v in shown}
        changed = len(shown) < len(value) or any(
            bk is not k or bv is not v for (k, v), (bk, bv) in zip(shown, items.items()))
        if len(shown) < len(value):
            items["…"] = f"(+{len(value) - len(shown)} items)"
        return items if changed else value
    shown = value[:MAX_ITEMS]
    items = [bound_value(item, limit, depth) for item in shown]
    changed = len(shown) < len(value) or any(b is not i for b, i in zip(items, shown))
    if not changed:
        return value
    if len(shown) < len(value):
        items.append(f"…(+{len(value) - len(shown)} items)")
    return tuple(items) if isinstance(value, tuple) else items
