"""A worker's output into its parent's log (`[cluster] workers`): one log stream for the whole machine.

A worker writes its log as JSON lines on stdout (wampgate.tx.logjson: time, level, namespace, message, fields);
each becomes an event of the parent's log again, with its level, namespace and fields, the text prefixed by the
worker's node name, so the parent's `--logger` (text or JSON, file or stdout) writes every process's lines alike.
Whatever a worker writes on stderr (a traceback before its log is set up, a refused config) is relayed line by line
as warnings. A worker's lines were already cut and budgeted by its own log chain; the parent's applies once more.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from twisted.logger import InvalidLogLevelError, LogLevel

MAX_LINE = 64 * 1024  # a longer line (none of ours) is cut rather than buffered without bound
_RECORD_KEYS = ("time", "level", "namespace", "message")
NAMESPACE = "wampgate.tx.workers"


class LineBuffer:
    """Bytes in, complete lines out; a line longer than MAX_LINE is passed on cut."""

    def __init__(self, on_line: Callable[[str], None]):
        self._on_line = on_line
        self._pending = b""

    def feed(self, data: bytes) -> None:
        self._pending += data
        *lines, self._pending = self._pending.split(b"\n")
        if len(self._pending) > MAX_LINE:
            lines.append(self._pending[:MAX_LINE])
            self._pending = b""
        for line in lines:
            self._on_line(line[:MAX_LINE].decode("utf-8", "backslashreplace").rstrip("\r"))

    def flush(self) -> None:
        if self._pending:
            pending, self._pending = self._pending, b""
            self._on_line(pending.decode("utf-8", "backslashreplace"))


class LogRelay:
    """One worker's stdout and stderr into `observer` (the parent's log publisher). `on_record` sees every JSON
    record first (the parent reads the worker's readiness from it)."""

    def __init__(self, node: str, observer: Callable[[dict], None], on_record: Callable[[dict], None] = lambda r: None,
                 *, wall_clock: Callable[[], float] = time.time):
        self.node = node
        self._observer = observer
        self._on_record = on_record
        self._wall_clock = wall_clock
        self.stdout = LineBuffer(self._json_line)
        self.stderr = LineBuffer(self._text_line)

    def flush(self) -> None:
        self.stdout.flush()
        self.stderr.flush()

    def _json_line(self, line: str) -> None:
        if not line.strip():
            return
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):  # not one of our JSON lines: something printed to stdout
            self._emit(LogLevel.info, NAMESPACE, line, {})
            return
        self._on_record(record)
        fields = {str(key): value for key, value in record.items()
                  if key not in _RECORD_KEYS and not str(key).startswith("log_")}
        self._emit(_level(record.get("level")), str(record.get("namespace") or NAMESPACE),
                   str(record.get("message", "")), fields, _epoch(record.get("time")))

    def _text_line(self, line: str) -> None:
        if line.strip():
            self._emit(LogLevel.warn, NAMESPACE, line, {})

    def _emit(self, level: LogLevel, namespace: str, text: str, fields: dict[str, Any],
              stamp: float | None = None) -> None:
        event = dict(fields)
        event.update(log_level=level, log_namespace=namespace, log_time=stamp or self._wall_clock(),
                     log_format="[{worker}] {worker_text}", worker=self.node, worker_text=text)
        self._observer(event)


def _level(name: Any) -> LogLevel:
    try:
        return LogLevel.levelWithName(str(name))
    except InvalidLogLevelError:
        return LogLevel.info


def _epoch(stamp: Any) -> float | None:
    """logjson's ISO-8601 UTC time back to epoch seconds; None when it is not one."""
    try:
        return datetime.fromisoformat(str(stamp)).timestamp()
    except ValueError:
        return None
