"""Log observers for `twistd --logger`: `wampgate.tx.logs.text` (readable, the default of `make run`) and
`wampgate.tx.logs.json` (one JSON object per line, for log collectors: wampgate.tx.logjson). Both write where twistd
would have written: `--logfile`, twistd.log in daemon mode, stdout with `-n` (wampgate.tx.logdestination).

No client decides how fast the log grows, and client mistakes are not warnings:

0. autobahn's warn lines about ordinary client mistakes are lowered to info, or to debug (`logrelevel`);
1. debug events are dropped;
2. every string field is cut to a bound (`logtruncate`: 200 characters in client-caused lines, 2000 in the router's
   own warnings and errors), so a 1 MB authid costs a line, not a megabyte;
3. identical lines are rate-limited (RepeatFilter: after `burst` in a window the rest are counted and summarised);
4. client-caused lines draw on a per-peer and an overall budget of lines/s and bytes/s (`logbudget`), with one
   summary warning per interval of what was suppressed. Warnings and errors never draw on it.

`text()` and `json()` take the file to write to (twistd passes none: then twistd's `--logfile` choice is used) and
keyword arguments to change the bounds; twistd calls them without any, so the defaults are what runs unless an
operator points `--logger` at their own `functools.partial` of them (docs/operations.md, Logs).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import IO, Any

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    FileLogObserver,
    LogLevelFilterPredicate,
    formatEvent,
    formatEventAsClassicLogText,
    formatTime,
    timeFormatRFC3339,
)
from zope.interface import implementer

from wampgate.tx.logbudget import OVERALL, PER_PEER, SUMMARY_INTERVAL, Budget, LogBudget, is_client_caused
from wampgate.tx.logdestination import twistd_log_file
from wampgate.tx.logjson import json_line
from wampgate.tx.logrelevel import Relevel
from wampgate.tx.logtruncate import CLIENT_FIELD_CHARS, ROUTER_FIELD_CHARS, truncate_event

DEFAULT_WINDOW = 10.0
DEFAULT_BURST = 5
MAX_KEYS = 10_000


@implementer(ILogObserver)
class RepeatFilter:
    """Passes at most `burst` identical events (same namespace, level and formatted text) per `window` seconds."""

    def __init__(self, observer, *, window: float = DEFAULT_WINDOW, burst: int = DEFAULT_BURST,
                 clock: Callable[[], float] = time.monotonic):
        self._observer = observer
        self._window = window
        self._burst = burst
        self._clock = clock
        self._started = clock()
        self._seen: dict[tuple, int] = {}

    def __call__(self, event: dict) -> None:
        now = self._clock()
        if now - self._started >= self._window:
            self._summarise()
            self._started = now
        try:
            text = formatEvent(event)
        except Exception:  # a broken format string must not stop logging
            text = repr(event.get("log_format"))
        key = (event.get("log_namespace"), event.get("log_level"), text)
        count = self._seen.get(key, 0) + 1
        if count <= self._burst or len(self._seen) >= MAX_KEYS and key not in self._seen:
            self._observer(event)
        if key in self._seen or len(self._seen) < MAX_KEYS:
            self._seen[key] = count

    def _summarise(self) -> None:
        for (namespace, level, text), count in self._seen.items():
            if count > self._burst:
                self._observer({
                    "log_namespace": namespace or "router.logs",
                    "log_level": level or LogLevel.info,
                    "log_format": "suppressed {count} more identical lines: {text}",
                    "count": count - self._burst,
                    "text": text,
                    "log_time": time.time(),
                })
        self._seen.clear()


@implementer(ILogObserver)
class Truncating:
    """Cuts every string field before the rest of the chain formats anything (see wampgate.tx.logtruncate)."""

    def __init__(self, observer, *, client_chars: int = CLIENT_FIELD_CHARS, router_chars: int = ROUTER_FIELD_CHARS):
        self._observer = observer
        self._client_chars = client_chars
        self._router_chars = router_chars

    def __call__(self, event: dict) -> None:
        limit = self._client_chars if is_client_caused(event) else self._router_chars
        self._observer(truncate_event(event, limit))


def _filtered(observer, measure: Callable[[dict], int], *, per_peer: Budget = PER_PEER, overall: Budget = OVERALL,
              interval: float = SUMMARY_INTERVAL, client_chars: int = CLIENT_FIELD_CHARS,
              router_chars: int = ROUTER_FIELD_CHARS, clock: Callable[[], float] = time.monotonic,
              schedule: Callable[[float, Callable[[], None]], Any] | None = None) -> ILogObserver:
    """The chain both observers share. Client mistakes are relevelled first, so the level filter and the budget see
    their real level; debug events are dropped next, so they cost nothing further; strings are cut before the repeat
    filter keys on the text; lines the repeat filter folds never use up a budget."""
    budget = LogBudget(observer, measure=measure, clock=clock, per_peer=per_peer, overall=overall, interval=interval,
                       schedule=schedule)
    chain = Truncating(RepeatFilter(budget, clock=clock), client_chars=client_chars, router_chars=router_chars)
    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)
    return Relevel(FilteringLogObserver(chain, [predicate]))


def _reactor_schedule() -> Callable[[float, Callable[[], None]], None]:
    """Timers on the reactor twistd installed before it built the logger; callFromThread because a line may be
    logged from a thread of the reactor's pool."""
    from twisted.internet import reactor

    def schedule(delay: float, function: Callable[[], None]) -> None:
        reactor.callFromThread(reactor.callLater, delay, function)

    return schedule


def text_line(event: dict) -> str:
    """The line `text()` writes: twisted's classic text (RFC 3339 local time, [namespace#level], the message, a
    traceback when there is one), its lone surrogates escaped so that it always encodes as UTF-8."""
    line = formatEventAsClassicLogText(event, formatTime=lambda stamp: formatTime(stamp, timeFormatRFC3339)) or ""
    return line if line.isascii() else line.encode("utf-8", "backslashreplace").decode("utf-8")


def text_size(event: dict) -> int:
    """Bytes of the line `text()` writes for `event`."""
    return len(text_line(event).encode("utf-8"))


def json_size(event: dict) -> int:
    """Bytes of the line `json()` writes for `event`."""
    return len(json_line(event).encode("utf-8")) + 1


def text(log_file: IO[Any] | None = None, **options: Any) -> ILogObserver:
    """Readable lines in `log_file` (by default where twistd's command line says: see wampgate.tx.logdestination).
    `options`: per_peer, overall (Budget), interval, client_chars, router_chars, clock, schedule."""
    if "schedule" not in options:
        options["schedule"] = _reactor_schedule()
    out = log_file if log_file is not None else twistd_log_file()
    return _filtered(FileLogObserver(out, text_line), text_size, **options)


def json(log_file: IO[Any] | None = None, **options: Any) -> ILogObserver:
    """JSON lines in `log_file` (wampgate.tx.logjson: time, level, namespace, message and the event's fields); the
    same destination and options as `text()`."""
    if "schedule" not in options:
        options["schedule"] = _reactor_schedule()
    out = log_file if log_file is not None else twistd_log_file()
    return _filtered(FileLogObserver(out, lambda event: json_line(event) + "\n"), json_size, **options)
