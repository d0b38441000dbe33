"""The log observers behind `twistd --logger wampgate.tx.logs.text` / `wampgate.tx.logs.json`: RepeatFilter lets the
first `burst` identical lines of a window through, counts the rest and summarises them once the window is over, with
a bounded key set; the observers `text()` and `json()` build drop debug events (their truncation and log budget are
pinned in test_log_budget.py).

RepeatFilter takes its clock as an argument, so these tests drive time by hand and every count is exact.
"""

from __future__ import annotations

import io
import json
import sys

from twisted.logger import LogLevel, formatEvent

from wampgate.tx import logs


class FakeClock:
    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def event(text: str, level: LogLevel = LogLevel.info, namespace: str = "tests.logs") -> dict:
    """A log event as twisted.logger.Logger would emit it; `text` is a field, so braces in it are harmless."""
    return {"log_format": "{text}", "text": text, "log_level": level, "log_namespace": namespace, "log_time": 0.0}


def texts(events: list[dict]) -> list[str]:
    return [formatEvent(e) for e in events]


def repeat_filter(burst: int = 3, window: float = 10.0):
    """(filter, what passed it, clock) with the clock starting at 0."""
    passed: list[dict] = []
    clock = FakeClock()
    return logs.RepeatFilter(passed.append, window=window, burst=burst, clock=clock), passed, clock


def test_first_burst_identical_events_pass_and_the_rest_are_suppressed():
    """Of 10 identical events in one window, exactly the first `burst` (3) reach the observer, unchanged."""
    repeat, passed, clock = repeat_filter(burst=3)
    sent = [event("denied publish on com.x") for _ in range(10)]
    clock.now = 1.0
    for e in sent:
        repeat(e)
    assert passed == sent[:3]
    assert all(p is s for p, s in zip(passed, sent))


def test_after_the_window_one_summary_says_how_many_were_suppressed():
    """When the first event after the window arrives, one summary event (same namespace and level) says how many
    identical lines were suppressed and which, then that event passes; the text is let through again afresh."""
    repeat, passed, clock = repeat_filter(burst=3, window=10.0)
    clock.now = 2.0
    for _ in range(10):
        repeat(event("denied publish on com.x", LogLevel.warn))
    clock.now = 10.5
    repeat(event("something else"))
    summary = passed[3]
    assert formatEvent(summary) == "suppressed 7 more identical lines: denied publish on com.x"
    assert summary["log_level"] == LogLevel.warn
    assert summary["log_namespace"] == "tests.logs"
    assert texts(passed[4:]) == ["something else"]

    for _ in range(4):
        repeat(event("denied publish on com.x", LogLevel.warn))
    assert texts(passed[5:]) == ["denied publish on com.x"] * 3


def test_no_summary_when_nothing_was_suppressed():
    """Exactly `burst` identical events in a window pass and leave no summary behind."""
    repeat, passed, clock = repeat_filter(burst=3)
    for _ in range(3):
        repeat(event("same"))
    clock.now = 11.0
    repeat(event("next"))
    assert texts(passed) == ["same"] * 3 + ["next"]


def test_within_the_window_nothing_is_summarised_yet():
    """Events arriving before the window ends keep being counted; no summary appears early."""
    repeat, passed, clock = repeat_filter(burst=2, window=10.0)
    for now in (0.0, 3.0, 6.0, 9.9):
        clock.now = now
        repeat(event("same"))
    assert texts(passed) == ["same"] * 2


def test_different_texts_levels_and_namespaces_are_independent():
    """Each (namespace, level, text) has its own budget: interleaved floods of two texts, and the same text at
    another level or from another namespace, each get `burst` lines through and their own summary."""
    repeat, passed, clock = repeat_filter(burst=2)
    for _ in range(5):
        repeat(event("alpha"))
        repeat(event("beta"))
        repeat(event("alpha", LogLevel.error))
        repeat(event("alpha", namespace="other.namespace"))
    assert sorted(texts(passed)) == sorted(["alpha"] * 6 + ["beta"] * 2)
    assert sorted((e["log_namespace"], e["log_level"].name) for e in passed if formatEvent(e) == "alpha") == sorted(
        [("tests.logs", "info")] * 2 + [("tests.logs", "error")] * 2 + [("other.namespace", "info")] * 2)

    del passed[:]
    clock.now = 10.0
    repeat(event("after"))
    assert sorted(texts(passed[:-1])) == sorted(["suppressed 3 more identical lines: alpha"] * 3
                                                + ["suppressed 3 more identical lines: beta"])
    assert texts(passed[-1:]) == ["after"]


def test_the_key_set_is_bounded():
    """A flood of distinct texts (more than MAX_KEYS in one window) never makes the filter track more than MAX_KEYS
    keys, and texts it tracked before the set filled up are still rate-limited; the next window starts empty."""
    repeat, passed, clock = repeat_filter(burst=2)
    for _ in range(5):
        repeat(event("tracked"))
    for i in range(logs.MAX_KEYS + 500):
        repeat(event(f"distinct {i}"))
    assert len(repeat._seen) == logs.MAX_KEYS  # the bound is on internal state: nothing outside shows its size
    for _ in range(5):
        repeat(event("tracked"))
    assert texts(passed).count("tracked") == 2

    clock.now = 10.0
    repeat(event("new window"))
    assert len(repeat._seen) == 1


def test_text_observer_drops_debug_events(monkeypatch):
    """`wampgate.tx.logs.text()` writes info, warn and error events to stdout and drops debug ones."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    observer = logs.text()
    for level in (LogLevel.debug, LogLevel.info, LogLevel.warn, LogLevel.error):
        observer(event(f"a {level.name} line", level))
    lines = out.getvalue().splitlines()
    assert len(lines) == 3, lines
    assert [line.split("] ", 1)[1] for line in lines] == ["a info line", "a warn line", "a error line"]
    assert "debug" not in out.getvalue()


def test_filtered_observer_drops_debug_and_rate_limits():
    """`_filtered`, the chain both observers share, drops debug events and lets DEFAULT_BURST identical lines
    through."""
    passed: list[dict] = []
    observer = logs._filtered(passed.append, logs.text_size, schedule=lambda delay, f: None)
    observer(event("hidden", LogLevel.debug))
    for _ in range(logs.DEFAULT_BURST + 3):
        observer(event("shown"))
    assert texts(passed) == ["shown"] * logs.DEFAULT_BURST


def test_debug_events_do_not_use_up_the_repeat_filters_key_set(monkeypatch):
    """Debug events are dropped before the repeat filter sees them: a burst of distinct debug lines (as many as the
    key set holds) does not stop a flood of identical info lines from being suppressed after DEFAULT_BURST."""
    monkeypatch.setattr(logs, "MAX_KEYS", 4)
    passed: list[dict] = []
    observer = logs._filtered(passed.append, logs.text_size, schedule=lambda delay, f: None)
    for i in range(4):
        observer(event(f"debug detail {i}", LogLevel.debug))
    for _ in range(logs.DEFAULT_BURST + 5):
        observer(event("refused"))
    assert texts(passed) == ["refused"] * logs.DEFAULT_BURST


def test_json_observer_writes_one_json_object_per_line(monkeypatch):
    """`wampgate.tx.logs.json()` writes each non-debug event as one line that json.loads parses on its own, with
    the level by name and the event's field beside the rendered message."""
    out = io.StringIO()
    monkeypatch.setattr(sys, "stdout", out)
    observer = logs.json()
    observer(event("first"))
    observer(event("hidden", LogLevel.debug))
    observer(event("second", LogLevel.warn))
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [(r["text"], r["message"], r["level"]) for r in records] == [("first", "first", "info"),
                                                                        ("second", "second", "warn")]


def test_observers_write_to_the_file_they_are_given(monkeypatch):
    """`text(f)` and `json(f)` write to `f` (as a twistd that passed its log file would have them do), not to
    stdout; the keyword options still apply alongside it."""
    stdout = io.StringIO()
    monkeypatch.setattr(sys, "stdout", stdout)
    text_file, json_file = io.StringIO(), io.StringIO()
    text_observer = logs.text(text_file, schedule=lambda delay, f: None)
    json_observer = logs.json(json_file, schedule=lambda delay, f: None, client_chars=5)
    text_observer(event("to the text file"))
    json_observer(event("to the json file"))
    assert text_file.getvalue().endswith("] to the text file\n")
    assert json.loads(json_file.getvalue())["text"] == "to th…(+11 chars)"
    assert stdout.getvalue() == ""
