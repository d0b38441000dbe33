"""Autobahn's warn lines about ordinary client mistakes come out of the observer chain at info (and draw on the log
budget like the router's own client-caused lines) or not at all; nothing else autobahn or anyone logs is touched.

The events are built as autobahn's txaio logger emits them (namespace of the protocol class, its format string and
fields); the chain's clock is a fake one, so budgets are exact."""

from __future__ import annotations

from twisted.logger import LogLevel, formatEvent

from wampgate.tx import logs
from wampgate.tx.logbudget import Budget
from wampgate.tx.logrelevel import Relevel

AUTOBAHN = "autobahn.twisted.websocket.WebSocketServerProtocol"
DROPPING = "dropping connection to peer {peer} with abort={abort}: {reason}"
FAILING_HANDSHAKE = "failing WebSocket opening handshake ('{reason}')"


class FakeClock:
    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def autobahn_event(log_format: str, level: LogLevel = LogLevel.warn, namespace: str = AUTOBAHN, **fields) -> dict:
    return {"log_format": log_format, "log_level": level, "log_namespace": namespace, "log_time": 0.0, **fields}


def dropping(peer: str = "tcp4:198.51.100.7:40000", reason: str = "Forbidden", abort: bool = False) -> dict:
    return autobahn_event(DROPPING, peer=peer, abort=abort, reason=reason)


def chain(per_peer: Budget = Budget(lines_per_second=100.0, bytes_per_second=0.0)):
    """(the observers' chain, what it writes, its clock)."""
    written: list[dict] = []
    clock = FakeClock()
    observer = logs._filtered(written.append, logs.text_size, clock=clock, per_peer=per_peer,
                              schedule=lambda delay, f: None)
    return observer, written, clock


def test_a_refused_handshake_is_one_info_line_naming_the_peer_and_reason():
    """A refused Origin makes autobahn log "failing WebSocket opening handshake" (info) then "dropping connection
    ... Forbidden" (warn): one line comes out, at info, naming the peer and the reason."""
    observer, written, _ = chain()
    observer(autobahn_event(FAILING_HANDSHAKE, LogLevel.info, reason="Forbidden"))
    observer(dropping())
    assert [(formatEvent(e), e["log_level"]) for e in written] == [
        ("dropping connection to peer tcp4:198.51.100.7:40000 with abort=False: Forbidden", LogLevel.info)]


def test_a_plain_get_and_a_ping_timeout_are_logged_at_info():
    """The 426 for a plain HTTP GET and a client that stopped answering pings: info, not warn."""
    observer, written, _ = chain()
    observer(autobahn_event(FAILING_HANDSHAKE, LogLevel.info, reason="HTTP Upgrade header missing"))
    observer(dropping(reason="HTTP Upgrade header missing"))
    observer(dropping(reason="WebSocket ping timeout (peer did not respond with pong in time)", abort=True))
    observer(autobahn_event('failing WebSocket connection (code={code}): "{reason}"', code=1009,
                            reason="message too big"))
    assert [e["log_level"] for e in written] == [LogLevel.info] * 3
    assert [formatEvent(e).rsplit(": ", 1)[-1] for e in written] == [
        "HTTP Upgrade header missing", "WebSocket ping timeout (peer did not respond with pong in time)",
        '"message too big"']


def test_an_unsolicited_pong_is_not_logged():
    """RFC 6455 allows an unsolicited pong: autobahn's warn line about it does not reach the log."""
    observer, written, _ = chain()
    observer(autobahn_event("Auto ping/pong: received non-pending pong"))
    assert written == []


def test_lowered_lines_draw_on_the_peers_log_budget():
    """Lowered to info, autobahn's lines are client-caused: a flood of refused handshakes from one address gets the
    address's burst (2 lines) and is then suppressed, and a summary warning accounts for the rest."""
    observer, written, clock = chain(per_peer=Budget(lines_per_second=1.0, bytes_per_second=0.0, burst_seconds=2.0))
    for port in range(40_000, 40_010):
        observer(dropping(peer=f"tcp4:198.51.100.7:{port}"))
    assert len(written) == 2
    clock.now = 11.0
    observer(autobahn_event("something else entirely", LogLevel.warn))
    summary = formatEvent(written[2])
    assert summary.startswith("log budget: suppressed 8 client-caused lines"), summary
    assert "most from 198.51.100.7 (8 lines)" in summary


def test_only_autobahns_known_lines_are_touched():
    """The same format from another namespace, another autobahn warn line, and a listed line already below its
    target level keep their level; the caller's event dict is never changed."""
    observer, written, _ = chain()
    ours = dropping(peer="x")
    ours["log_namespace"] = "wampgate.tx.something"
    other = autobahn_event("Unexpected exception in onConnect ['{err.value}']", err=None)
    quiet = {**dropping(), "log_level": LogLevel.debug}
    sent = dropping()
    observer(ours)
    observer(other)
    observer(quiet)
    observer(sent)
    assert [(e["log_namespace"], e["log_level"]) for e in written] == [
        ("wampgate.tx.something", LogLevel.warn), (AUTOBAHN, LogLevel.warn), (AUTOBAHN, LogLevel.info)]
    assert sent["log_level"] == LogLevel.warn


def test_relevel_alone_passes_every_event():
    """Relevel never drops anything itself (the level filter after it does): a lowered event still reaches its
    observer, at the lower level."""
    seen: list[dict] = []
    relevel = Relevel(seen.append)
    relevel(autobahn_event("Auto ping/pong: received non-pending pong"))
    relevel({"log_format": None, "log_namespace": AUTOBAHN})
    assert [e.get("log_level") for e in seen] == [LogLevel.debug, None]
