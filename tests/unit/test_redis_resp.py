"""The RESP codec's own rules, on a fake clock and transport: commands encoded exactly; a hung server found exactly
at the reply timeout (a command's own deadline, or no data at all while replies are outstanding); an idle connection
PINGed every half timeout; protocol errors and stray replies end the connection; a full socket refuses writes; and
the reconnect backoff grows from 0.1 s to 2 s with jitter."""

from __future__ import annotations

import pytest
from twisted.internet import defer, task
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from tests.support.logcapture import captured_warnings
from wampgate.tx.cluster.redis import RedisAddress, RedisConnection
from wampgate.tx.cluster.resp import RedisError, RedisUnavailable, RespProtocol, encode

PING = b"*1\r\n$4\r\nPING\r\n"


class Transport(StringTransport):
    """Aborting ends the connection at once, as a real transport soon does."""

    def abortConnection(self):
        super().abortConnection()
        self.protocol.connectionLost(Failure(ConnectionError("aborted")))


def connected(clock, *, reply_timeout=2.0, max_unsent=1000):
    lost = []
    protocol = RespProtocol(clock, reply_timeout=reply_timeout, max_unsent=max_unsent, on_lost=lost.append)
    transport = Transport()
    transport.protocol = protocol
    protocol.makeConnection(transport)
    return protocol, transport, lost


def outcome(d: defer.Deferred):
    results = []
    d.addBoth(results.append)
    return results[0] if results else None


def test_encode():
    """bytes as they are, str as UTF-8, int as its decimal text; anything else is refused."""
    assert encode(("SET", b"k\r\n", 42, "ü")) == b"*4\r\n$3\r\nSET\r\n$3\r\nk\r\n\r\n$2\r\n42\r\n$2\r\n\xc3\xbc\r\n"
    for bad in (1.5, None, True, ["x"]):
        with pytest.raises(TypeError, match="must be bytes, str or int"):
            encode(("SET", bad))


def test_an_unanswered_command_fails_exactly_at_the_reply_timeout():
    """No reply 2 s after sending: the connection is aborted, the command fails with RedisUnavailable, and the owner
    hears why; a moment earlier nothing has happened."""
    clock = task.Clock()
    protocol, transport, lost = connected(clock)
    clock.advance(0.3)
    d = protocol.send_command(encode(("GET", "k")))
    clock.advance(1.99)
    assert not d.called and lost == []
    clock.advance(0.01)
    failure = outcome(d)
    assert failure.check(RedisUnavailable)
    assert lost == ["no reply within 2 s (the server is hung or unreachable)"]
    assert str(failure.value) == "connection lost before the reply: " + lost[0]
    assert protocol.timed_out and transport.disconnected


def test_a_command_behind_a_slow_stream_still_has_its_deadline():
    """Fire-and-forget replies trickling in keep the connection alive past the reply timeout, but a command waiting
    behind them fails at its own deadline."""
    clock = task.Clock()
    protocol, _, lost = connected(clock)
    protocol.send(b"x", *[None] * 5)
    for _ in range(3):
        clock.advance(0.9)
        protocol.dataReceived(b":1\r\n")
    assert lost == []  # 2.7 s of slow progress: the stream is alive
    d = protocol.send_command(encode(("GET", "k")))  # deadline 4.7
    for _ in range(2):
        clock.advance(0.9)
        protocol.dataReceived(b":1\r\n")
    clock.advance(0.19)
    assert lost == [] and not d.called
    clock.advance(0.01)  # 0.2 s after the last reply, 2 s after the GET was sent
    assert outcome(d).check(RedisUnavailable) and lost[0].startswith("no reply within 2 s")


def test_an_idle_connection_pings_and_a_silent_one_is_dropped():
    """Idle for half the timeout: PING. Answered: idle again, next PING a half timeout later. Unanswered for the
    timeout: dropped."""
    clock = task.Clock()
    protocol, transport, lost = connected(clock)
    clock.advance(0.99)
    assert transport.value() == b""
    clock.advance(0.01)
    assert transport.value() == PING
    transport.clear()
    clock.advance(0.5)
    protocol.dataReceived(b"+PONG\r\n")
    clock.advance(0.99)
    assert transport.value() == b""
    clock.advance(0.01)
    assert transport.value() == PING
    clock.advance(1.99)
    assert lost == []
    clock.advance(0.01)
    assert lost == ["no reply within 2 s (the server is hung or unreachable)"]


def test_replies_go_to_their_commands_in_order():
    """Deferreds fire with their own reply (error replies fail with RedisError); callables get theirs; a cancelled
    command's late reply is skipped without upsetting the others."""
    clock = task.Clock()
    protocol, _, _ = connected(clock)
    first = protocol.send_command(b"")
    cancelled = protocol.send_command(b"")
    got = []
    protocol.send(b"", got.append, None)
    last = protocol.send_command(b"")
    cancelled.cancel()
    cancelled.addErrback(lambda f: f.trap(defer.CancelledError))
    protocol.dataReceived(b"$1\r\na\r\n:2\r\n:3\r\n-ERR ignored\r\n-WRONGTYPE no\r\n")
    assert outcome(first) == b"a"
    assert got == [3]
    error = outcome(last)
    assert error.check(RedisError) and error.value.message == "WRONGTYPE no" and error.value.code == "WRONGTYPE"
    assert protocol.replies == 5 and protocol.errors == 2


def test_an_error_nobody_waits_for_is_logged_once():
    clock = task.Clock()
    protocol, _, _ = connected(clock)
    protocol.send(b"", None, None)
    with captured_warnings() as warnings:
        protocol.dataReceived(b"-OOM first\r\n-OOM second\r\n")
    assert warnings == ["Redis answered a command with an error nobody waits for: OOM first (further ones on this "
                        "connection are only counted)"]
    assert protocol.errors == 2


@pytest.mark.parametrize("data, reason", [
    (b"!what\r\n", 'protocol error: Protocol error, got "!" as reply type byte'),
    (b"+OK\r\n", "protocol error: a reply that answers no command"),
])
def test_garbage_ends_the_connection(data, reason):
    """Bytes that are not RESP, or a reply to no command: the stream cannot be trusted any more."""
    clock = task.Clock()
    protocol, transport, lost = connected(clock)
    protocol.dataReceived(data)
    assert lost == [reason] and transport.disconnected


def test_a_full_socket_takes_at_most_max_unsent_more_bytes():
    """After the transport says it is full, writes are counted; past max_unsent the protocol is not writable until
    the transport has drained."""
    clock = task.Clock()
    protocol, _, _ = connected(clock, max_unsent=1000)
    assert protocol.writable()
    protocol.pauseProducing()
    protocol.send(b"x" * 600, None)
    protocol.pauseProducing()  # Twisted repeats it on each write while full: the count goes on
    assert protocol.writable()
    protocol.send(b"x" * 600, None)
    assert not protocol.writable()
    protocol.resumeProducing()
    assert protocol.writable()


@pytest.mark.parametrize("random, delays", [
    (1.0, [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]),
    (0.0, [0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]),
])
def test_backoff(random, delays):
    """Retries wait 0.1 s doubling up to 2 s, each scaled by a random factor from 0.5 to 1."""
    clock = task.Clock()
    link = RedisConnection(clock, RedisAddress.parse("redis://127.0.0.1:1"), name="t", random=lambda: random)
    seen = []
    for _ in delays:
        link._schedule()
        call = link._retry
        seen.append(round(call.getTime() - clock.seconds(), 6))
        call.cancel()
    assert seen == delays


@pytest.mark.parametrize("options, problem", [
    ({"reply_timeout": 0}, "reply_timeout must be more than 0 seconds, not 0"),
    ({"max_pending": 0}, "max_pending must be 1 or more, not 0"),
])
def test_bad_options(options, problem):
    with pytest.raises(ValueError, match=problem):
        RedisConnection(task.Clock(), RedisAddress.parse("redis://h"), name="t", **options)
