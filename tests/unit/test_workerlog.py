"""A worker's output relayed into its parent's log (wampgate.tx.workerlog): JSON lines become events again with
their level, namespace and fields, labelled with the worker's node; anything else is still logged, never dropped or
buffered without bound."""

from __future__ import annotations

import json

from twisted.logger import LogLevel, formatEvent

from wampgate.tx.workerlog import MAX_LINE, LogRelay


def relay_events():
    events, records = [], []
    return LogRelay("web-w0-abc123", events.append, records.append, wall_clock=lambda: 1000.0), events, records


def test_a_json_line_becomes_an_event_with_its_level_namespace_fields_and_the_worker_label():
    """The level, namespace, time and extra fields survive; the text is prefixed with the node name; the record is
    shown to on_record (readiness) first."""
    relay, events, records = relay_events()
    line = json.dumps({"time": "2026-12-06T19:07:21.485Z", "level": "warn", "namespace": "wampgate.tx.opening",
                       "message": "HELLO for unknown realm", "peer": "tcp4:127.0.0.1:5000"})
    relay.stdout.feed(line.encode()[:10])
    assert events == []  # half a line waits for the rest
    relay.stdout.feed(line.encode()[10:] + b"\n")
    [event] = events
    assert event["log_level"] is LogLevel.warn and event["log_namespace"] == "wampgate.tx.opening"
    assert event["peer"] == "tcp4:127.0.0.1:5000"
    assert formatEvent(event) == "[web-w0-abc123] HELLO for unknown realm"
    assert abs(event["log_time"] - 1796584041.485) < 0.01
    assert records[0]["peer"] == "tcp4:127.0.0.1:5000"


def test_stderr_lines_and_non_json_stdout_are_logged_as_text():
    """A traceback on stderr is relayed as warnings line by line; a stray print on stdout as info."""
    relay, events, _ = relay_events()
    relay.stderr.feed(b"Traceback (most recent call last):\n  boom\n")
    relay.stdout.feed(b"not json\n[1, 2]\n")
    assert [(e["log_level"], formatEvent(e)) for e in events] == [
        (LogLevel.warn, "[web-w0-abc123] Traceback (most recent call last):"),
        (LogLevel.warn, "[web-w0-abc123]   boom"),
        (LogLevel.info, "[web-w0-abc123] not json"),
        (LogLevel.info, "[web-w0-abc123] [1, 2]"),
    ]
    assert all(e["log_time"] == 1000.0 for e in events)


def test_an_unknown_level_is_info_and_an_endless_line_is_cut_not_buffered():
    relay, events, _ = relay_events()
    relay.stdout.feed(json.dumps({"level": "shouting", "message": "x"}).encode() + b"\n")
    assert events[0]["log_level"] is LogLevel.info
    relay.stderr.feed(b"y" * (MAX_LINE + 10))
    assert len(events) == 2 and len(events[1]["worker_text"]) == MAX_LINE
    relay.stderr.feed(b"tail")
    relay.flush()
    assert events[-1]["worker_text"] == "tail"
