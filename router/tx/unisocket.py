"""One port for WebSocket (or plain HTTP) and RawSocket, told apart by the first octet (RawSocket's is 0x7F).

Clients and tools written for Crossbar's "universal" transport expect both on port 8080.
"""

from __future__ import annotations

from twisted.internet.protocol import Factory, Protocol

from wampgate.tx.rawsocket import MAGIC


class SniffingProtocol(Protocol):
    """Builds the real protocol from the first octet, then forwards every event to it. A client that sends
    nothing is dropped after the first-byte timeout."""

    def __init__(self, factory: UniSocketFactory, address):
        self._factory = factory
        self._address = address
        self._inner: Protocol | None = None
        self._timer = None

    def connectionMade(self) -> None:
        self._timer = self._factory.clock.callLater(self._factory.first_byte_timeout, self._on_timeout)

    def _on_timeout(self) -> None:
        self._timer = None
        if self._inner is None:
            self.transport.abortConnection()

    def _cancel_timer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None

    def dataReceived(self, data: bytes) -> None:
        inner = self._inner
        if inner is None:
            if not data:
                return
            self._cancel_timer()
            factory = self._factory.rawsocket if data[0] == MAGIC else self._factory.web
            inner = factory.buildProtocol(self._address)
            if inner is None:
                self.transport.loseConnection()
                return
            self._inner = inner
            inner.makeConnection(self.transport)
        inner.dataReceived(data)

    def connectionLost(self, reason) -> None:
        self._cancel_timer()
        if self._inner is not None:
            self._inner.connectionLost(reason)


class UniSocketFactory(Factory):
    """Serves RawSocket and WebSocket/HTTP on one listening port."""

    noisy = False

    def __init__(self, rawsocket: Factory, web: Factory, *, clock, first_byte_timeout: float):
        self.rawsocket = rawsocket
        self.web = web
        self.clock = clock
        self.first_byte_timeout = first_byte_timeout

    def doStart(self) -> None:
        super().doStart()
        self.rawsocket.doStart()
        self.web.doStart()

    def doStop(self) -> None:
        self.rawsocket.doStop()
        self.web.doStop()
        super().doStop()

    def buildProtocol(self, addr) -> SniffingProtocol:
        return SniffingProtocol(self, addr)
