"""Capturing what the router logs while a test runs, at the twisted.logger level (no observer chain, no budget)."""

from __future__ import annotations

import contextlib

from twisted.logger import LogLevel, formatEvent, globalLogPublisher


@contextlib.contextmanager
def _observing(keep):
    """`keep(event)` for every log event emitted meanwhile; what it returns (when not None) is collected."""
    collected: list = []

    def observe(event):
        item = keep(event)
        if item is not None:
            collected.append(item)

    globalLogPublisher.addObserver(observe)
    try:
        yield collected
    finally:
        globalLogPublisher.removeObserver(observe)


def captured_log():
    """Every log event emitted meanwhile, as (level, formatted text); the observer is removed afterwards."""
    return _observing(lambda event: (event.get("log_level"), formatEvent(event)))


def captured_warnings():
    """The text of every warning logged meanwhile."""
    return _observing(lambda event: formatEvent(event) if event.get("log_level") == LogLevel.warn else None)
