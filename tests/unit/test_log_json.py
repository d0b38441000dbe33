"""The JSON log line (wampgate.tx.logjson, written by `twistd --logger wampgate.tx.logs.json`): exactly `time` (ISO-8601
UTC), `level`, `namespace`, the rendered `message` and the event's structured fields; no twisted.logger internals,
no legacy keys; values JSON cannot hold written as their repr; a line that always encodes as UTF-8."""

from __future__ import annotations

import io
import json
from pathlib import PurePosixPath

from twisted.logger import LogLevel, Logger
from twisted.python.failure import Failure

from wampgate.tx import logs
from wampgate.tx.logjson import iso_time, json_line, json_record

# 2026-11-21T12:02:40.123Z
STAMP = 1795262560.1234


def unknown_realm_event() -> dict:
    """The event Opening logs for a HELLO naming an unknown realm, as twisted.logger.Logger builds it."""
    captured: list[dict] = []
    log = Logger(namespace="wampgate.tx.opening.Opening", observer=captured.append)
    log.info("HELLO from {peer} for unknown realm {realm!r}", peer="tcp4:127.0.0.1:50312", realm="realm2")
    [event] = captured
    event["log_time"] = STAMP
    return event


def test_a_line_carries_exactly_time_level_namespace_message_and_the_fields():
    """A Logger event becomes an object whose keys are exactly time, level, namespace, message and its own fields
    (peer, realm): no log_format, log_time, log_level, log_logger, log_source or class uuid."""
    record = json.loads(json_line(unknown_realm_event()))
    assert set(record) == {"time", "level", "namespace", "message", "peer", "realm"}


def test_one_full_line():
    """The whole line, byte for byte: compact JSON, time in UTC with milliseconds and Z, the rendered message."""
    assert json_line(unknown_realm_event()) == (
        '{"time":"2026-11-21T12:02:40.123Z","level":"info","namespace":"wampgate.tx.opening.Opening",'
        '"message":"HELLO from tcp4:127.0.0.1:50312 for unknown realm \'realm2\'",'
        '"peer":"tcp4:127.0.0.1:50312","realm":"realm2"}')


def test_a_legacy_log_msg_line_keeps_only_the_four_keys():
    """A twisted.python.log.msg line ("Site starting on 9100", converted to a twisted.logger event) has no fields
    of its own: the legacy message tuple, time, isError and system are left out."""
    event = {"message": ("Site starting on 9100",), "time": STAMP, "isError": 0, "system": "-",
             "log_time": STAMP, "log_text": "Site starting on 9100", "log_format": "{log_text}",
             "log_level": LogLevel.info, "log_namespace": "log_legacy", "log_system": "-"}
    assert json_record(event) == {"time": "2026-11-21T12:02:40.123Z", "level": "info", "namespace": "log_legacy",
                                  "message": "Site starting on 9100"}


def test_values_json_cannot_hold_are_written_as_their_repr():
    """A path, bytes, an exception, NaN and a set become their repr; numbers, booleans, None, lists and dicts stay
    JSON (a tuple becomes a list, a non-string key its repr)."""
    event = {"log_format": "reloaded {file}", "log_level": LogLevel.info, "log_namespace": "tests", "log_time": STAMP,
             "file": PurePosixPath("/etc/wampgate/router.toml"), "raw": b"\x00ab", "error": ValueError("bad"),
             "ratio": float("nan"), "roles": {"b"}, "count": 3, "on": True, "none": None,
             "offered": ("ticket", "anonymous"), "limits": {"rate": 1.5, 7: "seven"}}
    record = json.loads(json_line(event))
    assert {key: record[key] for key in ("file", "raw", "error", "ratio", "roles")} == {
        "file": "PurePosixPath('/etc/wampgate/router.toml')", "raw": "b'\\x00ab'", "error": "ValueError('bad')",
        "ratio": "nan", "roles": "{'b'}"}
    assert (record["count"], record["on"], record["none"]) == (3, True, None)
    assert record["offered"] == ["ticket", "anonymous"]
    assert record["limits"] == {"rate": 1.5, "7": "seven"}


def test_a_failure_appends_its_traceback_to_the_message():
    """An event logged with a failure (log.failure) has the traceback after the message, in `message` itself."""
    try:
        raise RuntimeError("a bug")
    except RuntimeError:
        failure = Failure()
    event = {"log_format": "internal error for {peer}", "peer": "tcp4:127.0.0.1:1", "log_failure": failure,
             "log_level": LogLevel.critical, "log_namespace": "tests", "log_time": STAMP}
    record = json.loads(json_line(event))
    assert set(record) == {"time", "level", "namespace", "message", "peer"}
    assert record["level"] == "critical"
    assert record["message"].startswith("internal error for tcp4:127.0.0.1:1\nTraceback (most recent call last):")
    assert record["message"].rstrip().endswith("RuntimeError: a bug")


def test_a_field_with_a_reserved_name_cannot_overwrite_the_line():
    """Fields named time, level, namespace or message are written as field_<name>."""
    event = {"log_format": "{message}", "message": "client text", "time": 5, "level": "x", "namespace": "y",
             "log_level": LogLevel.warn, "log_namespace": "tests", "log_time": STAMP}
    record = json_record(event)
    assert record == {"time": "2026-11-21T12:02:40.123Z", "level": "warn", "namespace": "tests",
                      "message": "client text", "field_message": "client text", "field_time": 5,
                      "field_level": "x", "field_namespace": "y"}


def test_a_lone_surrogate_from_a_client_is_escaped():
    """A client string holding a lone surrogate (valid in a JSON-decoded HELLO) gives a line that encodes as UTF-8
    and parses back to the same string; other non-ASCII text stays as it is."""
    event = {"log_format": "unknown realm {realm!r}", "realm": "caf\u00e9\ud800", "log_level": LogLevel.info,
             "log_namespace": "tests", "log_time": STAMP}
    line = json_line(event)
    line.encode("utf-8")
    assert "café" in line
    assert json.loads(line)["realm"] == "caf\u00e9\ud800"


def test_time_is_utc_iso8601_with_milliseconds():
    """Epoch seconds become ISO-8601 in UTC, milliseconds and Z."""
    assert iso_time(0.0) == "1970-01-01T00:00:00.000Z"
    assert iso_time(STAMP) == "2026-11-21T12:02:40.123Z"


def test_the_json_observer_writes_the_truncated_fields_and_nothing_else():
    """Through the whole `json()` chain a client's 1,000-character authid arrives cut to 200 characters, and the
    line has exactly the four keys and the event's fields."""
    out = io.StringIO()
    observer = logs.json(out, schedule=lambda delay, f: None)
    captured: list[dict] = []
    Logger(namespace="wampgate.tx.authentication.Authentication", observer=captured.append).info(
        "authentication failed: authid {authid!r}, peer {peer}", authid="A" * 1_000, peer="tcp4:127.0.0.1:1")
    observer(captured[0])
    record = json.loads(out.getvalue())
    assert set(record) == {"time", "level", "namespace", "message", "authid", "peer"}
    assert record["authid"] == "A" * 200 + "…(+800 chars)"
    assert record["message"] == f"authentication failed: authid '{'A' * 200}…(+800 chars)', peer tcp4:127.0.0.1:1"
