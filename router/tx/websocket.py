"""WAMP over WebSocket: autobahn's protocol and factory with every option set explicitly, and a lean send path."""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie
from types import MappingProxyType

from autobahn.twisted.websocket import WampWebSocketServerFactory, WampWebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from twisted.logger import Logger

from router.config import ListenerConfig
from router.model import TransportInfo
from router.tx.clientcert import client_certificate
from router.tx.runtime import ListenerRuntime, RouterContext
from router.tx.session import RouterSession


class WebSocketChannel(WampWebSocketServerProtocol):
    """One WebSocket connection. Nothing raised here reaches the client: autobahn would put the text in the close."""

    # Not `log`: that is autobahn's level-filtered txaio logger, whose debug calls carry handshake headers.
    router_log = Logger()
    session: RouterSession | None = None
    serializer = None
    _request = None

    def dataReceived(self, data: bytes) -> None:
        # Skip the adapter's per-read debug log call, whose arguments are formatted even when debug is off.
        self._dataReceived(data)

    def onConnect(self, request):
        factory = self.factory
        if request.path != factory.wamp_path:
            raise ConnectionDeny(ConnectionDeny.NOT_FOUND, "Not Found")
        for subprotocol in request.protocols:
            serializer = factory.subprotocols.get(subprotocol)
            if serializer is not None:
                self.serializer = serializer
                self._binary = serializer._serializer.BINARY
                self._request = request
                return subprotocol, {}
        raise ConnectionDeny(
            ConnectionDeny.BAD_REQUEST, "expected one of the WebSocket subprotocols " + ", ".join(factory.subprotocols)
        )

    def onOpen(self) -> None:
        try:
            self.session = RouterSession(self.factory.context, self.factory.listener, self)
        except Exception:
            self.router_log.failure("cannot start a session")
            self.close_transport(1011, "internal error")

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        session = self.session
        if session is not None:
            session.on_payload(payload, isBinary)

    def onClose(self, wasClean: bool, code: int, reason: str | None) -> None:
        session, self.session = self.session, None
        if session is not None:
            try:
                session.on_close()
            except Exception:
                self.router_log.failure("error while ending a session")

    # -- the channel interface the session uses -----------------------------------------------------------------

    def send_message(self, msg) -> bool:
        """Serialize (cached per serializer on the message) and send, unless the connection is closing.

        True when the message went out or the connection is going away anyway (nothing to undo)."""
        if self.state == self.STATE_OPEN:
            self.sendMessage(msg.serialize(self.serializer._serializer), self._binary)
        return True

    def close_transport(self, code: int, reason: str | None) -> None:
        if self.state == self.STATE_OPEN:
            # sendClose only takes 1000 and application codes; 1002/1008/1011 are ours to send as well.
            self.sendCloseFrame(code=code, reasonUtf8=reason.encode("utf-8") if reason else None, isReply=False)
        elif self.state not in (self.STATE_CLOSING, self.STATE_CLOSED):
            self.dropConnection(abort=True)

    def pause_reading(self) -> None:
        self.transport.pauseProducing()

    def resume_reading(self) -> None:
        self.transport.resumeProducing()

    def transport_info(self) -> TransportInfo:
        details = self._transport_details
        request = self._request
        return TransportInfo(
            listener=self.factory.listener.config.name,
            kind="websocket",
            peer=details.peer if details else "unknown",
            is_secure=bool(details and details.is_secure),
            serializer=self.serializer.SERIALIZER_ID if self.serializer else "",
            http_headers=MappingProxyType(dict(request.headers)) if request else MappingProxyType({}),
            http_path=request.path if request else None,
            http_query=_query(request.params) if request else MappingProxyType({}),
            cookies=_cookies(request.headers.get("cookie", "")) if request else MappingProxyType({}),
            peer_certificate=client_certificate(self.transport),
        )


def _query(params: dict) -> MappingProxyType:
    return MappingProxyType({name: tuple(values) for name, values in params.items()})


def _cookies(header: str) -> MappingProxyType:
    """Cookies from the handshake's Cookie header; a malformed header yields none rather than an error."""
    jar = SimpleCookie()
    try:
        jar.load(header)
    except CookieError:
        return MappingProxyType({})
    return MappingProxyType({name: morsel.value for name, morsel in jar.items()})


class WebSocketFactory(WampWebSocketServerFactory):
    """Autobahn's WAMP WebSocket factory, configured from our listener config and nothing else."""

    protocol = WebSocketChannel
    noisy = False

    def __init__(self, context: RouterContext, listener: ListenerRuntime, serializers: dict):
        config: ListenerConfig = listener.config
        chosen = [serializers[name] for name in config.serializers]
        super().__init__(lambda: None, serializers=chosen, server=config.websocket.server_header or None)
        self.context = context
        self.listener = listener
        self.wamp_path = config.websocket.path
        self.subprotocols = {f"wamp.2.{s.SERIALIZER_ID}": s for s in chosen}
        ws = config.websocket
        self.setProtocolOptions(
            versions=[13],
            webStatus=False,
            utf8validateIncoming=True,
            maskServerFrames=False,
            requireMaskedClientFrames=True,
            applyMask=True,
            maxFramePayloadSize=ws.max_frame_size,
            maxMessagePayloadSize=config.max_message_size,
            autoFragmentSize=0,
            failByDrop=True,
            echoCloseCodeReason=False,
            openHandshakeTimeout=ws.open_handshake_timeout,
            closeHandshakeTimeout=ws.close_handshake_timeout,
            tcpNoDelay=True,
            perMessageCompressionAccept=lambda offers: None,
            autoPingInterval=ws.auto_ping_interval,
            autoPingTimeout=ws.auto_ping_timeout,
            serveFlashSocketPolicy=False,
            allowedOrigins=["*"],
            allowNullOrigin=True,
            maxConnections=0,
            trustXForwardedFor=0,
        )
