"""One logical Redis connection that reconnects forever: connect, authenticate, select the database, prove the server
answers (PING), then hand the connection to its owner; on loss, retry with capped exponential backoff and jitter.

Nothing waits across a reconnect: while the link is down its owner refuses work (RedisConnection) or holds only
its intent (RedisSubscriber's channel set). `on_down(reason)` is called once per outage (the first failure after
start, or the loss of a ready connection), not again for each failed retry; `on_up()` after every connection that
became ready. Neither is called by stop(). Log lines name the link and its URL without the password.
"""

from __future__ import annotations

import random as random_module
from collections.abc import Callable

from twisted.internet import defer, ssl
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.protocol import Factory
from twisted.logger import Logger

from wampgate.tx.cluster.address import RedisAddress
from wampgate.tx.cluster.resp import RedisError, RespProtocol, encode

__all__ = ["INITIAL_DELAY", "MAX_DELAY", "MAX_UNSENT", "Link"]

INITIAL_DELAY = 0.1  # seconds before the first retry
MAX_DELAY = 2.0  # the backoff's cap
MAX_UNSENT = 8 * 1024 * 1024  # bytes a connection may hold unsent before it refuses commands


class _Factory(Factory):
    noisy = False  # no "Starting factory" line per reconnect

    def __init__(self, build: Callable[[], RespProtocol]):
        self._build = build

    def buildProtocol(self, addr) -> RespProtocol:
        return self._build()


class Link:
    """The reconnect loop and the handshake shared by RedisConnection and RedisSubscriber."""

    log = Logger()

    def __init__(self, reactor, address: RedisAddress, *, name: str, reply_timeout: float, on_up, on_down,
                 tls_options, max_unsent: int, random: Callable[[], float] | None):
        if reply_timeout <= 0:
            raise ValueError(f"reply_timeout must be more than 0 seconds, not {reply_timeout!r}")
        self._reactor = reactor
        self.address = address
        self.name = name
        self.reply_timeout = reply_timeout
        self._on_up = on_up
        self._on_down = on_down
        self._tls_options = tls_options
        self._max_unsent = max_unsent
        self._random = random or random_module.Random().random
        self._running = False
        self._attempt = 0  # failed attempts since the link was last ready: the backoff's exponent
        self._retry = None  # the DelayedCall of the next attempt
        self._connecting: defer.Deferred | None = None
        self._current: RespProtocol | None = None  # the open connection, ready or still in its handshake
        self._protocol: RespProtocol | None = None  # the connection once its handshake is done
        self._announced = False  # on_up called for the current connection
        self._ever_up = False
        self._down_reported = False
        self._last_reason: str | None = None
        self._stop_waiters: list[defer.Deferred] = []
        self._reconnects = 0
        self._timeouts = 0
        self._replies = 0  # of closed connections
        self._errors = 0

    # --- the owner's view

    @property
    def connected(self) -> bool:
        return self._protocol is not None

    def start(self) -> None:
        """Connect, and keep reconnecting until stop()."""
        if self._running:
            return
        self._running = True
        self._connect()

    def stop(self) -> defer.Deferred:
        """No more reconnecting; close the connection (waiting up to `reply_timeout` for unsent data to leave, then
        aborting). Fires once it is closed."""
        self._running = False
        if self._retry is not None and self._retry.active():
            self._retry.cancel()
        self._retry = None
        if self._connecting is not None:
            self._connecting.cancel()
        current = self._current
        if current is None:
            return defer.succeed(None)
        done = defer.Deferred()
        self._stop_waiters.append(done)
        if current.transport is not None:
            current.transport.loseConnection()
            force = self._reactor.callLater(self.reply_timeout, current.abort, "stopped")

            def closed(result):
                if force.active():
                    force.cancel()
                return result

            done.addBoth(closed)
        return done

    # --- connecting

    def _endpoint(self):
        tcp = HostnameEndpoint(self._reactor, self.address.host, self.address.port, timeout=self.reply_timeout)
        if not self.address.tls:
            return tcp
        if self._tls_options is None:
            self._tls_options = ssl.optionsForClientTLS(self.address.host)
        return wrapClientTLS(self._tls_options, tcp)

    def _build(self) -> RespProtocol:
        protocol = RespProtocol(self._reactor, reply_timeout=self.reply_timeout, max_unsent=self._max_unsent,
                                on_lost=lambda reason: self._lost(protocol, reason), on_push=self._push_handler())
        return protocol

    def _push_handler(self):
        """What receives pub/sub messages; None for a command connection."""
        return None

    def _connect(self) -> None:
        self._retry = None
        d = self._endpoint().connect(_Factory(self._build))
        d.addTimeout(self.reply_timeout * 2, self._reactor)
        self._connecting = d
        d.addCallbacks(self._made, self._not_made)

    def _made(self, protocol: RespProtocol) -> None:
        self._connecting = None
        self._current = protocol
        if not self._running:
            protocol.abort("stopped")
            return
        commands = []
        if self.address.password is not None:
            user = () if self.address.username is None else (self.address.username,)
            commands.append(("authentication failed", ("AUTH", *user, self.address.password)))
        if self.address.db:
            commands.append((f"SELECT {self.address.db} failed", ("SELECT", self.address.db)))
        commands.append(("the server does not answer PING", ("PING",)))
        replies = [self._handshake_step(protocol, what, command) for what, command in commands]
        defer.gatherResults(replies, consumeErrors=True).addCallbacks(
            lambda _: self._handshake_done(protocol), lambda _: None)

    def _handshake_step(self, protocol: RespProtocol, what: str, command: tuple) -> defer.Deferred:
        def refused(failure):
            if failure.check(RedisError):
                protocol.abort(_handshake_problem(what, failure.value))
            return failure

        return protocol.send_command(encode(command)).addErrback(refused)

    def _not_made(self, failure) -> None:
        self._connecting = None
        if not self._running:
            return
        if failure.check(defer.TimeoutError, defer.CancelledError):
            why = f"cannot connect: no connection within {self.reply_timeout * 2:g} s"
        else:
            why = f"cannot connect: {failure.getErrorMessage()}"
        self._went_down(why)
        self._schedule()

    def _handshake_done(self, protocol: RespProtocol) -> None:
        if protocol is not self._current or not self._running:
            return
        self._protocol = protocol
        self._ready(protocol)

    def _ready(self, protocol: RespProtocol) -> None:
        """The handshake is done: a subclass may first restore its state (re-subscribe), then announce."""
        self._announce_up()

    def _announce_up(self) -> None:
        if self._ever_up:
            self._reconnects += 1
            self.log.info("Redis {name}: connected again to {address}", name=self.name,
                          address=self.address.redacted())
        else:
            self.log.info("Redis {name}: connected to {address}", name=self.name, address=self.address.redacted())
        self._ever_up = True
        self._announced = True
        self._attempt = 0
        self._down_reported = False
        self._last_reason = None
        self._call(self._on_up)

    # --- losing it

    def _lost(self, protocol: RespProtocol, reason: str) -> None:
        self._replies += protocol.replies
        self._errors += protocol.errors
        self._timeouts += protocol.timed_out
        if protocol is not self._current:
            return
        self._current = None
        self._protocol = None
        self._announced = False
        self._connection_lost()
        if self._stop_waiters:
            waiters, self._stop_waiters = self._stop_waiters, []
            for waiter in waiters:
                waiter.callback(None)
        if not self._running:
            return
        self._went_down(reason)
        self._schedule()

    def _connection_lost(self) -> None:
        """For a subclass: forget what belonged to the lost connection."""

    def _went_down(self, reason: str) -> None:
        """Tell the owner once per outage; log when the reason changes (not each failed retry)."""
        if not self._down_reported:
            self._down_reported = True
            self.log.warn("Redis {name} ({address}) is down: {reason}; reconnecting", name=self.name,
                          address=self.address.redacted(), reason=reason)
            self._call(self._on_down, reason)
        elif reason != self._last_reason:
            self.log.warn("Redis {name} ({address}) is still down: {reason}", name=self.name,
                          address=self.address.redacted(), reason=reason)
        self._last_reason = reason

    def _schedule(self) -> None:
        delay = min(MAX_DELAY, INITIAL_DELAY * 2 ** min(self._attempt, 16)) * (0.5 + self._random() / 2)
        self._attempt += 1
        self._retry = self._reactor.callLater(delay, self._connect)

    def _call(self, callback, *args) -> None:
        if callback is None:
            return
        try:
            callback(*args)
        except Exception:
            self.log.failure("Redis {name}: the on_up/on_down callback failed", name=self.name)


def _handshake_problem(what: str, error: RedisError) -> str:
    if error.code == "NOAUTH":
        return f"authentication required: the server wants a password and the URL gives none ({error.message})"
    return f"{what}: {error.message}"
