"""A TCP proxy between a client and a server on loopback, to break the network on purpose: `cut()` closes every
connection and refuses new ones, `blackhole()` keeps connections open but stops moving bytes (as a partition that
drops packets: the bytes wait in the kernel and nothing arrives), `heal()` undoes either. Twisted, in the test's
reactor.
"""

from __future__ import annotations

from twisted.internet import defer, protocol
from twisted.internet.endpoints import TCP4ClientEndpoint


class _Downstream(protocol.Protocol):
    """The client's side of one proxied connection."""

    def __init__(self, proxy: ChaosProxy):
        self.proxy = proxy
        self.upstream: _Upstream | None = None
        self.buffered: list[bytes] = []  # what the client sent before the upstream connection was made

    def connectionMade(self) -> None:
        self.proxy.connections.add(self)
        if self.proxy.mode == "blackhole":
            self.transport.pauseProducing()
            return
        self.connect_upstream()

    def connect_upstream(self) -> None:
        endpoint = TCP4ClientEndpoint(self.proxy.reactor, "127.0.0.1", self.proxy.target_port, timeout=5)
        factory = protocol.Factory.forProtocol(lambda: _Upstream(self))
        factory.noisy = False
        endpoint.connect(factory).addErrback(lambda _: self.transport.abortConnection())

    def dataReceived(self, data: bytes) -> None:
        if self.upstream is None:
            self.buffered.append(data)
        else:
            self.upstream.transport.write(data)

    def connectionLost(self, reason=None) -> None:
        self.proxy.connections.discard(self)
        if self.upstream is not None:
            self.upstream.transport.abortConnection()

    def pause(self) -> None:
        self.transport.pauseProducing()
        if self.upstream is not None:
            self.upstream.transport.pauseProducing()

    def resume(self) -> None:
        self.transport.resumeProducing()
        if self.upstream is not None:
            self.upstream.transport.resumeProducing()
        elif self.transport.connected:
            self.connect_upstream()

    def abort(self) -> None:
        self.transport.abortConnection()


class _Upstream(protocol.Protocol):
    def __init__(self, downstream: _Downstream):
        self.downstream = downstream

    def connectionMade(self) -> None:
        if not self.downstream.transport.connected:
            self.transport.abortConnection()
            return
        self.downstream.upstream = self
        for data in self.downstream.buffered:
            self.transport.write(data)
        self.downstream.buffered = []
        if self.downstream.proxy.mode == "blackhole":
            self.transport.pauseProducing()

    def dataReceived(self, data: bytes) -> None:
        self.downstream.transport.write(data)

    def connectionLost(self, reason=None) -> None:
        self.downstream.transport.abortConnection()


class ChaosProxy:
    """Listens on 127.0.0.1 (a free port: `port`), forwarding each connection to 127.0.0.1:`target_port`."""

    def __init__(self, reactor, target_port: int):
        self.reactor = reactor
        self.target_port = target_port
        self.port: int | None = None
        self.mode = "forward"
        self.connections: set[_Downstream] = set()
        self._listening = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> ChaosProxy:
        self._listen(0)
        return self

    def cut(self) -> defer.Deferred:
        """Close every connection (abruptly) and refuse new ones; fires once the port is closed."""
        self.mode = "cut"
        for connection in list(self.connections):
            connection.abort()
        listening, self._listening = self._listening, None
        return defer.maybeDeferred(listening.stopListening) if listening is not None else defer.succeed(None)

    def blackhole(self) -> None:
        """Accept connections but move no bytes, in either direction, on new and open connections alike."""
        self.mode = "blackhole"
        for connection in list(self.connections):
            connection.pause()

    def heal(self) -> None:
        """Forward again: listen again on the same port after a cut; move the held bytes after a blackhole."""
        was, self.mode = self.mode, "forward"
        if self._listening is None:
            self._listen(self.port)
        if was == "blackhole":
            for connection in list(self.connections):
                connection.resume()

    def stop(self) -> defer.Deferred:
        for connection in list(self.connections):
            connection.abort()
        listening, self._listening = self._listening, None
        return defer.maybeDeferred(listening.stopListening) if listening is not None else defer.succeed(None)

    def _listen(self, port: int) -> None:
        factory = protocol.Factory.forProtocol(lambda: _Downstream(self))
        factory.noisy = False
        self._listening = self.reactor.listenTCP(port, factory, interface="127.0.0.1")
        self.port = self._listening.getHost().port
