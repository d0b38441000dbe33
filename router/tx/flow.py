"""Flow control in the router: the configured plugins as one chain, connection admission in front of every
listener, and the counters of every refusal, drop and disconnect."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from twisted.internet.protocol import Factory, Protocol
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory
from twisted.logger import Logger

from wampgate.counters import Counters
from wampgate.model import ADMIT, ADMIT_KIND, FlowSession, Verdict

# RawSocket's handshake error 4: "maximum connection count reached".
RAWSOCKET_TOO_MANY = bytes((0x7F, 4 << 4, 0, 0))
REFUSAL_GRACE = 1.0  # seconds a refused connection has to read its refusal
HTTP_TOO_MANY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nRetry-After: 5\r\nConnection: close\r\n\r\n"
)


def address_of(addr: Any) -> str:
    """A connecting peer's address without the port, in the form transports use: "tcp4:127.0.0.1"."""
    kind = getattr(addr, "type", "")
    host = getattr(addr, "host", None)
    if kind == "TCP" and host is not None:
        return f"tcp6:{host}" if ":" in host else f"tcp4:{host}"
    return "unix" if kind == "UNIX" else str(kind or "unknown").lower()


class FlowControl:
    """The plugins asked in order: the first verdict that is not ADMIT decides."""

    log = Logger()

    def __init__(self, plugins: Sequence[Any], *, clock: Any, counters: Counters):
        self._plugins = tuple(plugins)
        self._clock = clock
        self.clock = clock
        self.counters = counters

    def replace_plugins(self, plugins: Sequence[Any]) -> None:
        """A reload's new plugins (which have already adopted the live connections and sessions)."""
        self._plugins = tuple(plugins)

    def admit_connection(self, peer: str, listener: str) -> Verdict:
        now = self._clock.seconds()
        for index, plugin in enumerate(self._plugins):
            verdict = plugin.admit_connection(peer, listener, now)
            if verdict.kind != ADMIT_KIND:
                for earlier in self._plugins[:index]:
                    earlier.connection_closed(peer, listener)
                self._count(verdict, listener=listener)
                return verdict
        return ADMIT

    def connection_closed(self, peer: str, listener: str) -> None:
        for plugin in self._plugins:
            plugin.connection_closed(peer, listener)

    def admit_session(self, session: FlowSession) -> Verdict:
        now = self._clock.seconds()
        for index, plugin in enumerate(self._plugins):
            verdict = plugin.admit_session(session, now)
            if verdict.kind != ADMIT_KIND:
                for earlier in self._plugins[:index]:
                    earlier.session_closed(session)
                self._count(verdict, listener=session.listener, realm=session.realm)
                return verdict
        return ADMIT

    def admit(self, session: FlowSession, action: str, uri: str, size: int) -> Verdict:
        """The hot path: one clock read and one call per plugin while nothing is near a limit. The caller counts
        what it does with a refusal (answered, dropped, disconnected), so each message is counted once."""
        now = self._clock.seconds()
        for plugin in self._plugins:
            verdict = plugin.admit(session, action, uri, size, now)
            if verdict.kind != ADMIT_KIND:
                return verdict
        return ADMIT

    def count(self, name: str, reason: str, **labels: str) -> None:
        self.counters.increment(name, reason=reason, **labels)

    def session_closed(self, session: FlowSession) -> None:
        for plugin in self._plugins:
            plugin.session_closed(session)

    def rate_meters(self) -> int:
        """How many rate meters the plugins hold, for /metrics. Optional for a plugin: one without a
        `rate_meters()` method counts 0."""
        return sum(plugin.rate_meters() for plugin in self._plugins if hasattr(plugin, "rate_meters"))

    def _count(self, verdict: Verdict, **labels: str) -> None:
        self.counters.increment(f"flow_{verdict.kind}", reason=verdict.reason, **labels)


class _Refusal(Protocol):
    """Answers a refused connection in its own protocol's terms, then closes: RawSocket gets its handshake error,
    HTTP/WebSocket a 503. A TLS listener's refused connection is simply closed."""

    def __init__(self, secure: bool, clock: Any):
        self._secure = secure
        self._clock = clock
        self._timer = None

    def connectionMade(self) -> None:
        if self._secure:
            self.transport.abortConnection()
        else:
            # a refused client that sends nothing must not keep its socket either
            self._timer = self._clock.callLater(REFUSAL_GRACE, self.transport.abortConnection)

    def connectionLost(self, reason) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()

    def dataReceived(self, data: bytes) -> None:
        self.transport.write(RAWSOCKET_TOO_MANY if data[:1] == b"\x7f" else HTTP_TOO_MANY)
        self.transport.loseConnection()


class _Admitted(ProtocolWrapper):
    """Wraps an admitted connection's protocol. A wrapper rather than a hook on the protocol: serving static files
    hands the connection from the HTTP protocol to the WebSocket one by replacing `wrappedProtocol`, and the
    wrapper must still see the connection close. Only reads and the close pass through it: the wrapped protocol
    writes to the real transport."""

    peer = ""

    def makeConnection(self, transport) -> None:
        Protocol.makeConnection(self, transport)
        self.factory.registerProtocol(self)
        self.wrappedProtocol.makeConnection(transport)


class AdmittingFactory(WrappingFactory):
    """In front of a listener's factory: asks flow control before building a protocol, and tells it when an
    admitted connection closes."""

    noisy = False
    protocol = _Admitted

    def __init__(self, wrapped: Factory, flow: FlowControl, listener: str, *, secure: bool):
        super().__init__(wrapped)
        self._flow = flow
        self._listener = listener
        self._secure = secure

    def buildProtocol(self, addr) -> Protocol | None:
        peer = address_of(addr)
        if self._flow.admit_connection(peer, self._listener).kind != ADMIT_KIND:
            return _Refusal(self._secure, self._flow.clock)
        protocol = super().buildProtocol(addr)
        if protocol is None:
            self._flow.connection_closed(peer, self._listener)
            return None
        protocol.peer = peer
        return protocol

    def unregisterProtocol(self, protocol: _Admitted) -> None:
        super().unregisterProtocol(protocol)
        self._flow.connection_closed(protocol.peer, self._listener)
