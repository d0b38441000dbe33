"""One port for WebSocket (or plain HTTP) and RawSocket, told apart by the first octet (RawSocket's is 0x7F).

Clients and tools written for Crossbar's "universal" transport expect both on port 8080.
"""

from __future__ import annotations

from twisted.internet.protocol import Factory, Protocol

from router.tx.rawsocket import MAGIC


class SniffingProtocol(Protocol):
    """Builds the real protocol from the first octet, then forwards every event to it."""

    def __init__(self, rawsocket: Factory, web: Factory, address):
        self._factories = (rawsocket, web)
        self._address = address
        self._inner: Protocol | None = None

    def dataReceived(self, data: bytes) -> None:
        inner = self._inner
        if inner is None:
            if not data:
                return
            rawsocket, web = self._factories
            inner = (rawsocket if data[0] == MAGIC else web).buildProtocol(self._address)
            if inner is None:
                self.transport.loseConnection()
                return
            self._inner = inner
            inner.makeConnection(self.transport)
        inner.dataReceived(data)

    def connectionLost(self, reason) -> None:
        if self._inner is not None:
            self._inner.connectionLost(reason)


class UniSocketFactory(Factory):
    """Serves RawSocket and WebSocket/HTTP on one listening port."""

    noisy = False

    def __init__(self, rawsocket: Factory, web: Factory):
        self.rawsocket = rawsocket
        self.web = web

    def doStart(self) -> None:
        super().doStart()
        self.rawsocket.doStart()
        self.web.doStart()

    def doStop(self) -> None:
        self.rawsocket.doStop()
        self.web.doStop()
        super().doStop()

    def buildProtocol(self, addr) -> SniffingProtocol:
        return SniffingProtocol(self.rawsocket, self.web, addr)
