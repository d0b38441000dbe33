"""Log observers for `twistd --logger`: `router.tx.logs.text` (readable, the default of `make run`) and
`router.tx.logs.json` (one JSON object per line, for machines). Both drop debug events and rate-limit repeated
identical lines, so a flood of refusals cannot fill the disk: after `burst` identical lines in a window, the rest are
counted and summarised once the window ends."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

from twisted.logger import (
    FilteringLogObserver,
    ILogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEvent,
    jsonFileLogObserver,
    textFileLogObserver,
)
from zope.interface import implementer

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


def _filtered(observer) -> ILogObserver:
    """Debug events are dropped first, so they never cost formatting or a place in the repeat filter."""
    predicate = LogLevelFilterPredicate(defaultLogLevel=LogLevel.info)
    return FilteringLogObserver(RepeatFilter(observer), [predicate])


def text() -> ILogObserver:
    """Readable lines on stdout."""
    return _filtered(textFileLogObserver(sys.stdout))


def json() -> ILogObserver:
    """JSON lines on stdout (twisted.logger's event format)."""
    return _filtered(jsonFileLogObserver(sys.stdout, recordSeparator=""))
