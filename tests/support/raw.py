"""Raw clients for attacking the router: a WebSocket client that sends arbitrary frames, and a plain TCP client.

Both record everything they receive and offer bounded waits (every wait has a timeout; a timeout fails the test
with `defer.TimeoutError`). The RawSocket helpers speak the spec's handshake and framing byte by byte:

    handshake (4 octets): 0x7F, LENGTH << 4 | SERIALIZER, 0, 0   (max message length 2**(9+LENGTH))
    frame header (4 octets): 5 reserved bits + 3-bit type (0 message, 1 PING, 2 PONG), then a 24-bit length
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import msgpack
from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from autobahn.wamp.serializer import CBORObjectSerializer, JsonObjectSerializer, MsgPackObjectSerializer
from twisted.internet import defer, endpoints
from twisted.internet.protocol import Factory, Protocol

# Re-exported: tests import them from here too.
from tests.support.wait import DEFAULT_TIMEOUT, assert_router_serves, bounded  # noqa: F401


# WAMP message type codes used by the tests.
HELLO, WELCOME, ABORT, GOODBYE, ERROR = 1, 2, 3, 6, 8
PUBLISH, PUBLISHED, SUBSCRIBE, SUBSCRIBED, EVENT = 16, 17, 32, 33, 36

# The roles a minimal client announces in HELLO.
CLIENT_ROLES = {"publisher": {}, "subscriber": {}}

MAGIC = 0x7F
RAWSOCKET_SERIALIZERS = {"json": 1, "msgpack": 2, "cbor": 3}
FRAME_MESSAGE, FRAME_PING, FRAME_PONG = 0, 1, 2


def _reactor():
    from twisted.internet import reactor

    return reactor


class ConnectionClosed(Exception):
    """The connection ended before what a test waited for arrived."""


class _Waiters:
    """Deferreds that fire once a condition over the recorded state holds; each bounded by a timeout."""

    def __init__(self):
        self._pending: list[tuple[Callable[[], Any], defer.Deferred]] = []

    def until(self, condition: Callable[[], Any], timeout: float) -> defer.Deferred:
        """Fire with condition()'s first truthy value; errback with defer.TimeoutError after `timeout` seconds."""
        d = defer.Deferred()
        try:
            value = condition()
        except Exception as e:
            d.errback(e)
            return d
        if value:
            d.callback(value)
            return d
        entry = (condition, d)
        self._pending.append(entry)

        def forget(result):
            if entry in self._pending:
                self._pending.remove(entry)
            return result

        d.addTimeout(timeout, _reactor())
        d.addBoth(forget)
        return d

    def check(self) -> None:
        for entry in list(self._pending):
            condition, d = entry
            if d.called:
                continue
            try:
                value = condition()
            except Exception as e:  # the condition can no longer hold (e.g. the connection closed): fail now
                self._pending.remove(entry)
                d.errback(e)
                continue
            if value:
                self._pending.remove(entry)
                d.callback(value)


def hello(realm: str = "realm1", **details) -> list:
    """A HELLO message as a plain list; `details` are merged over the default roles."""
    return [HELLO, realm, {"roles": CLIENT_ROLES, **details}]


# -- WebSocket ----------------------------------------------------------------------------------------------------


OBJECT_SERIALIZERS = {"json": JsonObjectSerializer, "msgpack": MsgPackObjectSerializer, "cbor": CBORObjectSerializer}


class _RawWebSocketProtocol(WebSocketClientProtocol):
    """Forwards every event to the RawWebSocket that owns the factory."""

    def onOpen(self):
        self.factory.client._opened(self)

    def onMessage(self, payload, isBinary):
        self.factory.client._received(payload, isBinary)

    def onClose(self, wasClean, code, reason):
        self.factory.client._closed(wasClean, code, reason)


class RawWebSocket:
    """A WebSocket client speaking one WAMP subprotocol, sending whatever it is told to.

    `messages` holds every received message decoded with the serializer (or the raw payload when it does not
    decode); `close` is (wasClean, code, reason) once the connection is gone.
    """

    def __init__(self, serializer: str = "json"):
        self.serializer_name = serializer
        self._objects = OBJECT_SERIALIZERS[serializer]()
        self.binary = self._objects.BINARY
        self.protocol: _RawWebSocketProtocol | None = None
        self.messages: list = []
        self.raw: list[tuple[bytes, bool]] = []
        self.close: tuple[bool, int | None, str | None] | None = None
        self._opened_d: defer.Deferred = defer.Deferred()
        self._waiters = _Waiters()

    # -- events from the protocol

    def _opened(self, protocol) -> None:
        self.protocol = protocol
        if not self._opened_d.called:
            self._opened_d.callback(self)

    def _received(self, payload: bytes, is_binary: bool) -> None:
        self.raw.append((payload, is_binary))
        try:
            self.messages.extend(self._objects.unserialize(payload))
        except Exception:
            self.messages.append(payload)
        self._waiters.check()

    def _closed(self, was_clean: bool, code, reason) -> None:
        self.close = (was_clean, code, reason)
        if not self._opened_d.called:
            self._opened_d.errback(ConnectionError(f"WebSocket not opened: {code} {reason}"))
        self._waiters.check()

    # -- what a test does

    def send_raw(self, payload: bytes, is_binary: bool | None = None) -> None:
        """Send one WebSocket message; text or binary as the serializer would unless told otherwise."""
        self.protocol.sendMessage(payload, self.binary if is_binary is None else is_binary)

    def send(self, message: list) -> None:
        """Serialize a WAMP message (a plain list, possibly malformed) and send it."""
        self.send_raw(self._objects.serialize(message))

    def wait_messages(self, count: int, timeout: float = DEFAULT_TIMEOUT) -> defer.Deferred:
        """Fires with the first `count` messages once that many have arrived; fails at once if the connection
        closes with fewer."""

        def enough():
            if len(self.messages) >= count:
                return self.messages[:count]
            if self.close is not None:
                raise ConnectionClosed(f"closed {self.close} after {self.messages!r}")
            return None

        return self._waiters.until(enough, timeout)

    def wait_closed(self, timeout: float = DEFAULT_TIMEOUT) -> defer.Deferred:
        """Fires with (wasClean, code, reason) once the connection has closed."""
        return self._waiters.until(lambda: self.close, timeout)

    def until(self, condition: Callable[[], Any], timeout: float = DEFAULT_TIMEOUT) -> defer.Deferred:
        """Fires with condition()'s first truthy value, checked on each message and on the close."""
        return self._waiters.until(condition, timeout)

    async def join(self, realm: str = "realm1", timeout: float = DEFAULT_TIMEOUT, **details) -> list:
        """Send HELLO and return the WELCOME (as a list); fails the test on anything else."""
        seen = len(self.messages)
        self.send(hello(realm, **details))
        messages = await self.wait_messages(seen + 1, timeout)
        reply = messages[seen]
        assert reply[0] == WELCOME, f"expected WELCOME, got {reply!r}"
        return reply

    def disconnect(self) -> None:
        if self.protocol is not None and self.close is None:
            self.protocol.dropConnection(abort=True)


async def open_websocket(
    port: int,
    serializer: str = "json",
    *,
    path: str = "/ws",
    protocols: list[str] | None = None,
    host: str = "127.0.0.1",
    timeout: float = DEFAULT_TIMEOUT,
) -> RawWebSocket:
    """Open a WebSocket offering `protocols` (default: wamp.2.<serializer>); returns once the handshake is done."""
    client = RawWebSocket(serializer)
    factory = WebSocketClientFactory(
        f"ws://{host}:{port}{path}", protocols=protocols or [f"wamp.2.{serializer}"]
    )
    factory.protocol = _RawWebSocketProtocol
    factory.client = client
    factory.noisy = False
    factory.setProtocolOptions(openHandshakeTimeout=timeout, closeHandshakeTimeout=1.0, tcpNoDelay=True)
    endpoint = endpoints.TCP4ClientEndpoint(_reactor(), host, port, timeout=timeout)
    await endpoint.connect(factory)
    opened = client._opened_d
    opened.addTimeout(timeout, _reactor())
    await opened
    return client


# -- plain TCP ---------------------------------------------------------------------------------------------------


class RawTcp(Protocol):
    """A TCP client that writes arbitrary bytes and records everything it receives and when the connection ends."""

    def __init__(self):
        self.received = bytearray()
        self.lost = False
        self.lost_reason = None
        self._waiters = _Waiters()

    def connectionMade(self) -> None:
        self.transport.setTcpNoDelay(True)

    def dataReceived(self, data: bytes) -> None:
        self.received += data
        self._waiters.check()

    def connectionLost(self, reason) -> None:
        self.lost = True
        self.lost_reason = reason
        self._waiters.check()

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    def until(self, condition: Callable[[], Any], timeout: float = DEFAULT_TIMEOUT) -> defer.Deferred:
        return self._waiters.until(condition, timeout)

    def wait_bytes(self, count: int, timeout: float = DEFAULT_TIMEOUT) -> defer.Deferred:
        """Fires with everything received once at least `count` bytes have arrived."""
        return self.until(lambda: len(self.received) >= count and bytes(self.received), timeout)

    def wait_lost(self, timeout: float = DEFAULT_TIMEOUT) -> defer.Deferred:
        """Fires with everything received once the connection is gone."""
        return self.until(lambda: self.lost and (bytes(self.received) or b"<nothing>"), timeout)

    def close(self) -> None:
        if not self.lost:
            self.transport.abortConnection()


async def open_tcp(port: int, host: str = "127.0.0.1", timeout: float = DEFAULT_TIMEOUT, *,
                   tls_ca=None) -> RawTcp:
    """A RawTcp connected to `port`; over TLS (trusting the CA file `tls_ca`, server name localhost) when given."""
    endpoint = endpoints.TCP4ClientEndpoint(_reactor(), host, port, timeout=timeout)
    if tls_ca is not None:
        from twisted.internet import ssl

        trust = ssl.Certificate.loadPEM(open(tls_ca, "rb").read())
        endpoint = endpoints.wrapClientTLS(ssl.optionsForClientTLS("localhost", trustRoot=trust), endpoint)
    return await endpoint.connect(Factory.forProtocol(RawTcp))


# -- RawSocket ---------------------------------------------------------------------------------------------------


def handshake(serializer: int, length: int = 15, reserved: bytes = b"\x00\x00") -> bytes:
    """The client's opening handshake: 0x7F, LENGTH << 4 | SERIALIZER, then the two reserved octets."""
    return bytes((MAGIC, (length << 4) | serializer)) + reserved


def frame(payload: bytes, kind: int = FRAME_MESSAGE, reserved: int = 0) -> bytes:
    """One RawSocket frame; `reserved` sets the upper 5 header bits (which must be zero)."""
    return bytes(((reserved << 3) | kind,)) + len(payload).to_bytes(3, "big") + payload


def unframe(data: bytes) -> tuple[list[tuple[int, bytes]], bytes]:
    """Split a byte stream into complete (type, payload) frames and the incomplete rest."""
    frames = []
    offset = 0
    while len(data) - offset >= 4:
        length = int.from_bytes(data[offset + 1 : offset + 4], "big")
        end = offset + 4 + length
        if end > len(data):
            break
        frames.append((data[offset] & 0x07, bytes(data[offset + 4 : end])))
        offset = end
    return frames, bytes(data[offset:])


class RawSocketWamp:
    """WAMP over RawSocket by hand: the handshake, then framed messages (msgpack or JSON) over a RawTcp."""

    def __init__(self, tcp: RawTcp, serializer: str = "msgpack"):
        self.tcp = tcp
        self.serializer = serializer
        self.handshake_reply: bytes | None = None

    def encode(self, message: Any) -> bytes:
        if self.serializer == "msgpack":
            return msgpack.packb(message, use_bin_type=True)
        return json.dumps(message).encode()

    def decode(self, payload: bytes) -> Any:
        try:
            if self.serializer == "msgpack":
                return msgpack.unpackb(payload, raw=False)
            return json.loads(payload)
        except Exception:
            return payload

    async def handshake(self, length: int = 15, timeout: float = DEFAULT_TIMEOUT) -> bytes:
        """Send the opening handshake and return the router's 4-octet reply."""
        self.tcp.write(handshake(RAWSOCKET_SERIALIZERS[self.serializer], length))
        received = await self.tcp.wait_bytes(4, timeout)
        self.handshake_reply = received[:4]
        return self.handshake_reply

    def frames(self) -> list[tuple[int, bytes]]:
        """Every complete frame received after the handshake reply."""
        return unframe(bytes(self.tcp.received[4:]))[0]

    @property
    def messages(self) -> list:
        return [self.decode(payload) for kind, payload in self.frames() if kind == FRAME_MESSAGE]

    def send(self, message: Any) -> None:
        self.tcp.write(frame(self.encode(message)))

    def wait_messages(self, count: int, timeout: float = DEFAULT_TIMEOUT) -> defer.Deferred:
        """Fires with the first `count` messages; fails at once if the connection is lost with fewer."""

        def enough():
            messages = self.messages
            if len(messages) >= count:
                return messages[:count]
            if self.tcp.lost:
                raise ConnectionClosed(f"connection lost after {messages!r}")
            return None

        return self.tcp.until(enough, timeout)

    def wait_frames(self, count: int, timeout: float = DEFAULT_TIMEOUT) -> defer.Deferred:
        return self.tcp.until(lambda: len(self.frames()) >= count and self.frames()[:count], timeout)

    def wait_lost(self, timeout: float = DEFAULT_TIMEOUT) -> defer.Deferred:
        return self.tcp.wait_lost(timeout)

    async def join(self, realm: str = "realm1", timeout: float = DEFAULT_TIMEOUT, **details) -> list:
        seen = len(self.messages)
        self.send(hello(realm, **details))
        messages = await self.wait_messages(seen + 1, timeout)
        reply = messages[seen]
        assert reply[0] == WELCOME, f"expected WELCOME, got {reply!r}"
        return reply

    def close(self) -> None:
        self.tcp.close()


async def open_rawsocket(port: int, serializer: str = "msgpack", length: int = 15,
                         timeout: float = DEFAULT_TIMEOUT, *, tls_ca=None) -> RawSocketWamp:
    """Connect (over TLS when `tls_ca` is given) and complete the RawSocket handshake (asserting the router
    accepted the serializer)."""
    client = RawSocketWamp(await open_tcp(port, timeout=timeout, tls_ca=tls_ca), serializer)
    reply = await client.handshake(length, timeout)
    assert reply[0] == MAGIC and reply[1] & 0x0F == RAWSOCKET_SERIALIZERS[serializer], reply.hex()
    return client


# -- plain HTTP over TCP --------------------------------------------------------------------------------------------


def _dechunk(body: bytes) -> bytes | None:
    """The body of a chunked transfer encoding, or None while the last chunk has not arrived."""
    out = bytearray()
    rest = body
    while True:
        size_line, sep, rest = rest.partition(b"\r\n")
        if not sep:
            return None
        size = int(size_line.split(b";")[0].strip() or b"0", 16)
        if size == 0:
            return bytes(out)
        if len(rest) < size + 2:
            return None
        out += rest[:size]
        rest = rest[size + 2 :]


def parse_http_response(data: bytes) -> tuple[int, dict[str, list[str]], bytes]:
    """(status, headers by lower-case name, body) from a raw HTTP/1.1 response (Content-Length, chunked, or
    ended by the close)."""
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, list[str]] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), []).append(value.strip())
    if "content-length" in headers:
        body = body[: int(headers["content-length"][0])]
    elif "chunked" in ",".join(headers.get("transfer-encoding", [])).lower():
        body = _dechunk(body) or b""
    return status, headers, body


def _response_complete(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name, value = name.strip().lower(), value.strip()
        if name == b"content-length":
            return len(body) >= int(value)
        if name == b"transfer-encoding" and b"chunked" in value.lower():
            return _dechunk(body) is not None
    status = head.split(b" ", 2)[1] if b" " in head else b""
    return status == b"101"  # no body follows a 101; otherwise wait for the connection to close


async def http_request(port: int, request: bytes, timeout: float = DEFAULT_TIMEOUT):
    """Send raw request bytes; return (status, headers, body) once the response is complete or the peer closed."""
    tcp = await open_tcp(port, timeout=timeout)
    tcp.write(request)
    try:
        await tcp.until(lambda: tcp.lost or _response_complete(bytes(tcp.received)), timeout)
    finally:
        tcp.close()
    return parse_http_response(bytes(tcp.received))


def get(path: str, host: str = "127.0.0.1", headers: dict[str, str] | None = None) -> bytes:
    """A raw HTTP/1.1 GET request."""
    lines = [f"GET {path} HTTP/1.1", f"Host: {host}"] + [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def websocket_upgrade(path: str = "/ws", protocols: str | None = "wamp.2.json", host: str = "127.0.0.1") -> bytes:
    """A raw WebSocket opening handshake request (RFC 6455 sample key)."""
    headers = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
    }
    if protocols is not None:
        headers["Sec-WebSocket-Protocol"] = protocols
    return get(path, host, headers)


class Tracker:
    """Raw clients opened by a test, dropped at teardown so no connection outlives its test."""

    def __init__(self):
        self._clients: list = []

    def __call__(self, client):
        self._clients.append(client)
        return client

    def close_all(self) -> None:
        for client in self._clients:
            if isinstance(client, RawWebSocket):
                client.disconnect()
            else:
                client.close()
