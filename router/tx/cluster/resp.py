"""The RESP2 wire protocol on one TCP (or TLS) connection: commands out as RESP arrays, replies in through
`hiredis.Reader`, matched to their commands in FIFO order (Redis answers a connection's commands in order).

Why not a Redis library: the cross-node hot path is one PUBLISH per event, and a Deferred plus queue per command
costs ten times the CPU of this codec (docs: research/scaleout.md 3.2). Here a command is one bytes formatting and one
`write`; its reply slot is `None` (ignored), a callable or a Deferred. Nothing is buffered without bound: the owner
refuses a command when `max_pending` replies are outstanding or when more than `max_unsent` bytes wait in the
transport.

Liveness: while replies are outstanding, a reply (or any data) must arrive within `reply_timeout`, and each
Deferred command (`execute`) must be answered within `reply_timeout` of being sent; otherwise the connection is
aborted (a SIGSTOPped server keeps TCP open forever). An idle connection sends a PING every `reply_timeout / 2`, so a
hang is found without traffic too.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

import hiredis
from twisted.internet import defer
from twisted.internet.interfaces import IPushProducer
from twisted.internet.protocol import Protocol
from twisted.logger import Logger
from twisted.python.failure import Failure
from zope.interface import implementer

__all__ = ["RedisError", "RedisUnavailable", "RespProtocol", "encode"]

_PING = b"*1\r\n$4\r\nPING\r\n"
_MIN_WAKE = 0.001  # seconds: the liveness check never re-arms itself sooner than this


class RedisUnavailable(Exception):
    """No answer can come: not connected, the connection was lost, no reply within the reply timeout, or too much
    outstanding. Never queued across a reconnect: the caller decides whether to retry."""


class RedisError(Exception):
    """An error reply from the server (`-ERR ...`, `-NOSCRIPT ...`, `-WRONGTYPE ...`); `message` is its text."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    @property
    def code(self) -> str:
        """The first word of the reply, such as "ERR", "NOSCRIPT" or "WRONGPASS"."""
        return self.message.split(" ", 1)[0]


def encode(args) -> bytes:
    """One command as a RESP array of bulk strings; arguments are bytes, str (UTF-8) or int."""
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, bytes):
            data = arg
        elif isinstance(arg, str):
            data = arg.encode("utf-8")
        elif isinstance(arg, int) and not isinstance(arg, bool):
            data = b"%d" % arg
        else:
            raise TypeError(f"a Redis command argument must be bytes, str or int, not {type(arg).__name__}")
        out.append(b"$%d\r\n%b\r\n" % (len(data), data))
    return b"".join(out)


@implementer(IPushProducer)
class RespProtocol(Protocol):
    """One connection. The owner (RedisConnection / RedisSubscriber) writes with `send`, reads replies through the
    slots it queued, and learns of the end through `on_lost(reason)`.

    A slot is None (reply ignored), a Deferred (fired with the reply, or failed with RedisError) or a callable
    (called with the reply, which may be a RedisError). `on_push`, when set, receives the pub/sub messages
    (`[b"message", channel, payload]`), which answer no command.
    """

    log = Logger()

    def __init__(self, clock, *, reply_timeout: float, max_unsent: int, on_lost: Callable[[str], None],
                 on_push: Callable[[bytes, bytes], None] | None = None):
        self._clock = clock
        self._timeout = reply_timeout
        self._max_unsent = max_unsent
        self._on_lost = on_lost
        self.on_push = on_push
        self._reader = hiredis.Reader(replyError=RedisError)
        self.pending: deque = deque()  # reply slots, oldest first
        self._deadlines: deque = deque()  # (deadline, Deferred) of the Deferred slots, oldest first
        self._progress = 0.0  # when data last arrived, or when `pending` last stopped being empty
        self._timer = None
        self.paused = False  # the transport said its buffer is full
        self._unsent = 0  # bytes written since then (it holds at least its buffer size besides)
        self._lost_reason: str | None = None
        self.replies = 0
        self.errors = 0
        self.timed_out = False
        self._stray_error_logged = False

    # --- the connection

    def connectionMade(self) -> None:
        self.transport.registerProducer(self, True)
        self._progress = self._clock.seconds()
        self._arm(self._timeout / 2)

    def connectionLost(self, reason: Failure = None) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        why = self._lost_reason or _describe(reason)
        self._lost_reason = why
        pending, self.pending = self.pending, deque()
        self._deadlines.clear()
        self._on_lost(why)  # first, so that whoever a failure below wakes finds the link down
        for slot in pending:
            if isinstance(slot, defer.Deferred) and not slot.called:
                slot.errback(RedisUnavailable(f"connection lost before the reply: {why}"))

    def abort(self, reason: str) -> None:
        """Close at once, not waiting for unsent data (a hung server never takes it); `reason` reaches on_lost."""
        if self._lost_reason is None:
            self._lost_reason = reason
        if self.transport is not None:
            self.transport.abortConnection()

    # --- writing

    def writable(self) -> bool:
        """False when a command must be refused instead of buffered: more than `max_unsent` bytes are waiting."""
        return not self.paused or self._unsent <= self._max_unsent

    def send(self, data: bytes, *slots) -> None:
        """Write one or more commands (already encoded) and queue one reply slot per expected reply."""
        if not self.pending:
            self._progress = self._clock.seconds()
        self.pending.extend(slots)
        if self.paused:
            self._unsent += len(data)
        self.transport.write(data)

    def send_command(self, data: bytes) -> defer.Deferred:
        """Write one command whose reply fires the returned Deferred within the reply timeout."""
        d = defer.Deferred()
        self._deadlines.append((self._clock.seconds() + self._timeout, d))
        self.send(data, d)
        return d

    def pauseProducing(self) -> None:
        if not self.paused:  # Twisted calls it again on every write while its buffer is full
            self.paused = True
            self._unsent = 0

    def resumeProducing(self) -> None:
        self.paused = False
        self._unsent = 0

    def stopProducing(self) -> None:
        pass

    # --- reading

    def dataReceived(self, data: bytes) -> None:
        self._progress = self._clock.seconds()
        reader = self._reader
        reader.feed(data)
        pending = self.pending
        count = 0
        try:
            while (reply := reader.gets()) is not False:
                if (type(reply) is list and self.on_push is not None and len(reply) == 3
                        and reply[0] == b"message"):
                    try:
                        self.on_push(reply[1], reply[2])
                    except Exception:
                        self.log.failure("the Redis message callback failed")
                    continue
                count += 1
                if not pending:
                    self.abort("protocol error: a reply that answers no command")
                    return
                slot = pending.popleft()
                if type(reply) is RedisError:
                    self._error_reply(reply, slot)
                if slot is None:
                    continue
                if type(slot) is defer.Deferred:
                    self._deadlines.popleft()
                    if not slot.called:  # the caller may have cancelled it
                        slot.errback(reply) if type(reply) is RedisError else slot.callback(reply)
                    continue
                try:
                    slot(reply)
                except Exception:
                    self.log.failure("a Redis reply callback failed")
        except hiredis.ProtocolError as e:
            self.abort(f"protocol error: {e}")
        finally:
            self.replies += count

    def _error_reply(self, error: RedisError, slot) -> None:
        """Count it; an error nobody waits for (a fire-and-forget command's) is logged once per connection."""
        self.errors += 1
        if slot is None and not self._stray_error_logged:
            self._stray_error_logged = True
            self.log.warn("Redis answered a command with an error nobody waits for: {error} (further ones on this "
                          "connection are only counted)", error=error.message)

    # --- liveness

    def _arm(self, delay: float) -> None:
        self._timer = self._clock.callLater(max(delay, _MIN_WAKE), self._check)

    def _check(self) -> None:
        """The one timer: abort a hung connection, PING an idle one, and come back when the next of those is due."""
        self._timer = None
        now = self._clock.seconds()
        if self.pending:
            due = self._progress + self._timeout
            if self._deadlines:
                due = min(due, self._deadlines[0][0])
            if now >= due:
                self.timed_out = True
                self.abort(f"no reply within {self._timeout:g} s (the server is hung or unreachable)")
                return
            self._arm(due - now)
            return
        idle_until = self._progress + self._timeout / 2
        if now >= idle_until:
            self.send(_PING, None)
            self._arm(self._timeout / 2)
        else:
            self._arm(idle_until - now)


def _describe(reason: Failure | None) -> str:
    if reason is None:
        return "connection closed"
    message = reason.getErrorMessage()
    return f"connection lost: {message}" if message else "connection lost"
