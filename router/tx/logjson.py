"""One log event as one JSON object, in the shape log collectors (Loki, ELK, Vector) take as it is:

    {"time": "2026-11-21T12:02:40.123Z", "level": "info", "namespace": "wampgate.tx.opening.Opening",
     "message": "HELLO from tcp4:127.0.0.1:50312 for unknown realm 'realm2'", "peer": "tcp4:127.0.0.1:50312",
     "realm": "realm2"}

`time` is ISO-8601 in UTC (milliseconds), `level` twisted.logger's level name, `message` the rendered text (with the
traceback appended when the event carries a failure), and then the event's own structured fields, nothing else:
no `log_*` internals (format string, epoch float, logger object, class uuids), no keys that twisted.python.log adds
to a legacy `log.msg` line (`message` tuple, `time`, `isError`, `system`, ...). Field values JSON cannot hold
(a Path, an exception, bytes, NaN) are written as their repr. A field that has one of the four names above is
written as `field_<name>`, so it can never overwrite them.

Client strings are already cut by the time an event gets here (wampgate.tx.logtruncate runs first in the chain).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any

from twisted.logger import LogLevel, eventAsText

RESERVED = ("time", "level", "namespace", "message")
# Added by twisted.python.log.msg/err to every legacy line (then converted to a twisted.logger event).
LEGACY_FIELDS = frozenset({"message", "time", "isError", "system", "format", "why", "failure", "printed",
                           "logLevel"})
MAX_DEPTH = 8  # containers nested deeper are written as their repr (logtruncate already cuts them at 3)


def json_line(event: Mapping[str, Any], *, wall_clock: Callable[[], float] = time.time) -> str:
    """The event as one line of JSON (without the newline). Lone surrogates a client smuggled into a string are
    written as `\\udXXX` escapes, so the line always encodes as UTF-8."""
    line = json.dumps(json_record(event, wall_clock=wall_clock), ensure_ascii=False, allow_nan=False,
                      separators=(",", ":"))
    return line if line.isascii() else line.encode("utf-8", "backslashreplace").decode("utf-8")


def json_record(event: Mapping[str, Any], *, wall_clock: Callable[[], float] = time.time) -> dict[str, Any]:
    """The object `json_line` writes."""
    stamp = event.get("log_time")
    record: dict[str, Any] = {
        "time": iso_time(stamp if isinstance(stamp, int | float) else wall_clock()),
        "level": _level_name(event.get("log_level")),
        "namespace": event.get("log_namespace") or "-",
        "message": eventAsText(event, includeTraceback=True, includeTimestamp=False, includeSystem=False),
    }
    legacy = "isError" in event and "time" in event  # twisted.python.log.msg always sets both
    for name, value in event.items():
        if name.startswith("log_") or (legacy and name in LEGACY_FIELDS):
            continue
        record[f"field_{name}" if name in RESERVED else str(name)] = jsonable(value)
    return record


def iso_time(seconds: float) -> str:
    """Epoch seconds as ISO-8601 UTC with milliseconds: 1796584041.4855 -> "2026-12-06T19:07:21.485Z"."""
    try:
        moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    except (OverflowError, OSError, ValueError):
        moment = datetime.fromtimestamp(0, tz=timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


_LEVELS = frozenset(LogLevel.iterconstants())


def _level_name(level: Any) -> str:
    return level.name if level in _LEVELS else "info"


def jsonable(value: Any, depth: int = MAX_DEPTH) -> Any:
    """`value` as JSON holds it: strings, finite numbers, booleans, None, lists and string-keyed objects as they
    are; anything else as its repr."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if depth > 0 and isinstance(value, list | tuple):
        return [jsonable(item, depth - 1) for item in value]
    if depth > 0 and isinstance(value, Mapping):
        return {(key if isinstance(key, str) else _repr(key)): jsonable(item, depth - 1) for key, item in value.items()}
    return _repr(value)


def _repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:  # a broken __repr__ must not cost the line
        return f"<{type(value).__name__} object>"
