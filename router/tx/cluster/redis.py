"""The Redis client of cluster mode: a command connection (`RedisConnection`: pipelined PUBLISH on the hot path,
`execute` and `evalsha` for the control plane) and a subscribe-only connection (`RedisSubscriber`).

Both speak RESP2 through a thin codec (wampgate.tx.cluster.resp), reconnect forever with backoff
(wampgate.tx.cluster.link), detect a hung server within `reply_timeout`, and never buffer without bound: while
Redis is away, commands fail at once with RedisUnavailable and publishes are dropped and counted. Whatever must
survive an outage is restored by its owner in `on_up` (the subscriber restores its own channels).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping

from twisted.internet import defer
from twisted.python.failure import Failure

from wampgate.tx.cluster.address import RedisAddress
from wampgate.tx.cluster.link import MAX_UNSENT, Link
from wampgate.tx.cluster.resp import RedisError, RedisUnavailable, RespProtocol, encode

__all__ = ["RedisAddress", "RedisConnection", "RedisError", "RedisSubscriber", "RedisUnavailable", "Script"]

_PUBLISH = b"*3\r\n$7\r\nPUBLISH\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n"
_SUBSCRIBE_BATCH = 1000  # channels per SUBSCRIBE command when re-subscribing


class Script:
    """A Lua script and its SHA1, computed here so EVALSHA needs no round trip to learn it."""

    def __init__(self, source: str):
        self.source = source
        self.sha = hashlib.sha1(source.encode("utf-8")).hexdigest()

    def __repr__(self) -> str:
        return f"Script(sha={self.sha})"


class RedisConnection(Link):
    """One logical command connection that reconnects forever (backoff from 0.1 s to 2 s, with jitter).

    `execute` is for the control plane (one Deferred per command); `publish` is the hot path (no Deferred, and a
    callback only when the receiver count matters). A command is refused, never queued, while the connection is
    down, when `max_pending` replies are outstanding, or when more than `max_unsent` bytes wait to be sent.
    """

    def __init__(self, reactor, address: RedisAddress, *, name: str, reply_timeout: float = 2.0,
                 max_pending: int = 10000, on_up: Callable[[], None] | None = None,
                 on_down: Callable[[str], None] | None = None, tls_options=None, max_unsent: int = MAX_UNSENT,
                 random: Callable[[], float] | None = None):
        super().__init__(reactor, address, name=name, reply_timeout=reply_timeout, on_up=on_up, on_down=on_down,
                         tls_options=tls_options, max_unsent=max_unsent, random=random)
        if max_pending < 1:
            raise ValueError(f"max_pending must be 1 or more, not {max_pending!r}")
        self.max_pending = max_pending
        self._commands = 0
        self._dropped = 0
        self._refused = 0

    @property
    def stats(self) -> Mapping[str, int]:
        """Counters since creation: commands sent, replies read, connections dropped for want of a reply
        (timeouts), reconnects, publishes dropped, error replies, and execute/evalsha calls refused (unavailable)."""
        current = self._current
        return {
            "commands": self._commands,
            "replies": self._replies + (current.replies if current else 0),
            "timeouts": self._timeouts,
            "reconnects": self._reconnects,
            "dropped_publishes": self._dropped,
            "errors": self._errors + (current.errors if current else 0),
            "unavailable": self._refused,
        }

    def execute(self, *args) -> defer.Deferred:
        """Send one command (arguments bytes, str or int); fires with the decoded reply (bytes, int, list or None),
        fails with RedisError for an error reply and RedisUnavailable when it cannot be answered (see the class)."""
        protocol = self._protocol
        problem = self._refusal(protocol)
        if problem is not None:
            self._refused += 1
            return defer.fail(RedisUnavailable(problem))
        data = encode(args)
        self._commands += 1
        return protocol.send_command(data)

    def publish(self, channel: bytes, payload: bytes, on_count: Callable[[int], None] | None = None) -> bool:
        """PUBLISH without waiting: True once written; False (and counted in `dropped_publishes`) when it cannot be
        sent now. `on_count(receivers)` is called with Redis's answer when given (not on an error reply)."""
        protocol = self._protocol
        if (protocol is None or len(protocol.pending) >= self.max_pending
                or (protocol.paused and not protocol.writable())):
            self._dropped += 1
            return False
        self._commands += 1
        protocol.send(_PUBLISH % (len(channel), channel, len(payload), payload),
                      None if on_count is None else _receivers(on_count))
        return True

    def evalsha(self, script: Script, keys: Iterable, args: Iterable) -> defer.Deferred:
        """EVALSHA; when Redis lost the script (NOSCRIPT: a restart, SCRIPT FLUSH, a failover), SCRIPT LOAD and
        EVALSHA again, pipelined. A script that does not compile fails with the SCRIPT LOAD error."""
        keys, args = list(keys), list(args)
        command = ("EVALSHA", script.sha, len(keys), *keys, *args)

        def reload(failure):
            failure.trap(RedisError)
            if failure.value.code != "NOSCRIPT":
                return failure
            loaded = self.execute("SCRIPT", "LOAD", script.source)
            again = self.execute(*command)
            return defer.gatherResults([loaded, again], consumeErrors=True).addCallbacks(
                lambda replies: replies[1], lambda failure: failure.value.subFailure)

        return self.execute(*command).addErrback(reload)

    def _refusal(self, protocol: RespProtocol | None) -> str | None:
        if protocol is None:
            return f"Redis {self.name} is not connected"
        if len(protocol.pending) >= self.max_pending:
            return f"Redis {self.name} has {self.max_pending} replies outstanding (max_pending)"
        if not protocol.writable():
            return f"Redis {self.name} has more than {self._max_unsent} bytes unsent"
        return None


def _receivers(on_count: Callable[[int], None]) -> Callable:
    def reply(value) -> None:
        if type(value) is int:
            on_count(value)

    return reply


class RedisSubscriber(Link):
    """The subscribe-only connection. It holds a set of channels (`channels`) and re-sends all of them on every
    reconnect; `on_up` is called once they are all confirmed again. Messages for channels it does not hold (in
    flight while unsubscribing) are not passed on.

    Only SUBSCRIBE on literal channels: PSUBSCRIBE patterns slow every PUBLISH on the server (research 3.3).
    """

    def __init__(self, reactor, address: RedisAddress, *, name: str, on_message: Callable[[bytes, bytes], None],
                 reply_timeout: float = 2.0, on_up: Callable[[], None] | None = None,
                 on_down: Callable[[str], None] | None = None, tls_options=None, max_unsent: int = MAX_UNSENT,
                 random: Callable[[], float] | None = None):
        super().__init__(reactor, address, name=name, reply_timeout=reply_timeout, on_up=on_up, on_down=on_down,
                         tls_options=tls_options, max_unsent=max_unsent, random=random)
        self._on_message = on_message
        self._held: set[bytes] = set()
        self._confirmed: set[bytes] = set()
        self._in_flight: dict[bytes, int] = {}  # channel -> SUBSCRIBE/UNSUBSCRIBE not yet acknowledged
        self._waiters: dict[bytes, list[defer.Deferred]] = {}
        self._resync_left = 0
        self._received = 0
        self._resubscribed = 0

    @property
    def connected(self) -> bool:
        """True once the connection is ready and every held channel is confirmed (after on_up)."""
        return self._announced

    @property
    def channels(self) -> frozenset[bytes]:
        return frozenset(self._held)

    @property
    def stats(self) -> Mapping[str, int]:
        """Messages passed on, reconnects, channels re-sent on reconnects, and connections dropped for want of a
        reply (timeouts)."""
        return {"received": self._received, "reconnects": self._reconnects, "resubscribed": self._resubscribed,
                "timeouts": self._timeouts}

    def subscribe(self, channel: bytes) -> defer.Deferred:
        """Hold `channel` from now until unsubscribe(channel), whatever the outcome, and subscribe it. Fires (None)
        once Redis confirmed it, at once if it already did; fails with RedisUnavailable when not connected or not
        confirmed within reply_timeout, and the channel is then subscribed on the next connect."""
        if channel in self._confirmed:
            return defer.succeed(None)
        protocol = self._protocol
        if channel not in self._held:
            self._held.add(channel)
            if protocol is not None:
                self._send(protocol, b"subscribe", [channel])
        if protocol is None:
            return defer.fail(RedisUnavailable(f"Redis {self.name} is not connected; the channel is subscribed "
                                               "when it reconnects"))
        return self._wait(channel)

    def unsubscribe(self, channel: bytes) -> None:
        """Stop holding `channel`; a subscribe() still waiting for it fails with RedisUnavailable."""
        if channel not in self._held:
            return
        self._held.discard(channel)
        self._confirmed.discard(channel)
        for waiter in self._waiters.pop(channel, ()):
            if not waiter.called:
                waiter.errback(RedisUnavailable(f"unsubscribed from {channel!r} before Redis confirmed it"))
        if self._protocol is not None:
            self._send(self._protocol, b"unsubscribe", [channel])

    # --- the connection's life

    def _push_handler(self):
        return self._message

    def _message(self, channel: bytes, payload: bytes) -> None:
        if channel in self._held:
            self._received += 1
            self._on_message(channel, payload)

    def _ready(self, protocol: RespProtocol) -> None:
        held = list(self._held)
        self._resync_left = len(held)
        if not held:
            self._announce_up()
            return
        if self._ever_up:
            self._resubscribed += len(held)
        for start in range(0, len(held), _SUBSCRIBE_BATCH):
            self._send(protocol, b"subscribe", held[start:start + _SUBSCRIBE_BATCH], resync=True)

    def _connection_lost(self) -> None:
        self._confirmed.clear()
        self._in_flight.clear()
        self._resync_left = 0
        waiters, self._waiters = self._waiters, {}
        for channel_waiters in waiters.values():
            for waiter in channel_waiters:
                if not waiter.called:
                    waiter.errback(RedisUnavailable(f"Redis {self.name}: the connection was lost before the "
                                                    "SUBSCRIBE was confirmed"))

    # --- SUBSCRIBE / UNSUBSCRIBE and their acknowledgements

    def _send(self, protocol: RespProtocol, kind: bytes, channels: list[bytes], *, resync: bool = False) -> None:
        for channel in channels:
            self._in_flight[channel] = self._in_flight.get(channel, 0) + 1
        slots = [self._acknowledgement(protocol, kind, channel, resync) for channel in channels]
        protocol.send(encode((kind.upper(), *channels)), *slots)

    def _acknowledgement(self, protocol: RespProtocol, kind: bytes, channel: bytes, resync: bool) -> Callable:
        def acknowledged(reply) -> None:
            if protocol is not self._protocol:
                return
            if type(reply) is not list or len(reply) != 3 or reply[0] != kind or reply[1] != channel:
                protocol.abort(f"protocol error: expected {kind.decode()} {channel!r}, got {_short(reply)}")
                return
            left = self._in_flight.pop(channel, 1) - 1
            if left:
                self._in_flight[channel] = left
            elif channel in self._held:
                self._confirmed.add(channel)
                for waiter in self._waiters.pop(channel, ()):
                    if not waiter.called:
                        waiter.callback(None)
            if resync:
                self._resync_left -= 1
                if self._resync_left == 0:
                    self._announce_up()

        return acknowledged

    def _wait(self, channel: bytes) -> defer.Deferred:
        waiter = defer.Deferred()
        self._waiters.setdefault(channel, []).append(waiter)

        def not_confirmed(result, timeout):
            return Failure(RedisUnavailable(f"Redis {self.name} did not confirm SUBSCRIBE {channel!r} within "
                                            f"{timeout:g} s"))

        waiter.addTimeout(self.reply_timeout, self._reactor, onTimeoutCancel=not_confirmed)
        return waiter


def _short(reply) -> str:
    text = repr(reply)
    return text if len(text) <= 80 else text[:77] + "..."
