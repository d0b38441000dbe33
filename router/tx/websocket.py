"""WAMP over WebSocket: autobahn's protocol and factory with every option set explicitly, and a lean send path."""

from __future__ import annotations

import fnmatch
import inspect
import ipaddress
from http.cookies import CookieError, SimpleCookie
from types import MappingProxyType

from autobahn.twisted.util import create_transport_details
from autobahn.twisted.websocket import WampWebSocketServerFactory, WampWebSocketServerProtocol
from autobahn.wamp.types import TransportDetails
from autobahn.websocket.compress import PerMessageDeflateOffer, PerMessageDeflateOfferAccept
from autobahn.websocket.types import ConnectionDeny
from twisted.internet.protocol import connectionDone
from twisted.logger import Logger
from zope.interface import implementer

from wampgate.config import ListenerConfig, WebSocketConfig
from wampgate.model import TransportInfo
from wampgate.tx.channel import UNENCODABLE, BudgetedChannel, IChannel
from wampgate.tx.channelbinding import channel_bindings
from wampgate.tx.clientcert import client_certificate
from wampgate.tx.cookies import ConnectionCookie, upgrade_cookie
from wampgate.tx.runtime import ListenerRuntime, RouterContext
from wampgate.tx.wire import Codecs
from wampgate.tx.session import RouterSession


@implementer(IChannel)
class WebSocketChannel(BudgetedChannel, WampWebSocketServerProtocol):
    """One WebSocket connection. Nothing raised here reaches the client: autobahn would put the text in the close."""

    # Not `log`: that is autobahn's level-filtered txaio logger, whose debug calls carry handshake headers.
    router_log = Logger()
    session: RouterSession | None = None
    serializer = None
    auth_cookie: ConnectionCookie | None = None  # with cookie authentication on the listener
    _request = None

    _open_timer = None
    _head = 0  # bytes of the opening handshake seen so far
    _fragments = 0  # frames of the message being received
    max_fragments = WebSocketConfig.max_fragments  # set per listener by WebSocketFactory

    def connectionMade(self) -> None:
        # Autobahn's adapter does this too, then formats several debug-log arguments that are dropped unread.
        self._transport_details = create_transport_details(self.transport, True)
        self._transport_details.channel_framing = TransportDetails.CHANNEL_FRAMING_WEBSOCKET
        self.peer = self._transport_details.peer
        self._connectionMade()
        self._open_timer = self.factory.context.clock.callLater(
            self.factory.listener.config.websocket.open_handshake_timeout, self._on_open_timeout
        )
        self._start_budget()

    def _on_open_timeout(self) -> None:
        self._open_timer = None
        if self.state == self.STATE_CONNECTING:
            self.router_log.info("WebSocket: {peer} did not finish the opening handshake in time", peer=self.peer)
            self.dropConnection(abort=True)

    def _cancel_open_timer(self) -> None:
        if self._open_timer is not None and self._open_timer.active():
            self._open_timer.cancel()
        self._open_timer = None

    def connectionLost(self, reason=connectionDone) -> None:
        # As autobahn's adapter, without the debug log calls whose arguments it formats eagerly.
        self._cancel_open_timer()
        self._connectionLost(reason)

    def dataReceived(self, data: bytes) -> None:
        # Skip the adapter's per-read debug log call, whose arguments are formatted even when debug is off.
        if self.state == self.STATE_CONNECTING and not self._head_within_limits(data):
            return
        self._dataReceived(data)

    def _head_within_limits(self, data: bytes) -> bool:
        """Bound the opening handshake's request line, header block and header count before autobahn buffers it."""
        ws = self.factory.listener.config.websocket
        self._head += len(data)
        head = self.data + data if self.data else data
        end = head.find(b"\r\n\r\n")
        block = head if end < 0 else head[:end]
        line_end = block.find(b"\r\n")
        request_line = len(block) if line_end < 0 else line_end
        if request_line > ws.max_request_line:
            self.failHandshake("Request-URI Too Long", 414)
        elif len(block) > ws.max_request_line + ws.max_header_size or (end < 0 and self._head > 2 * 65536):
            self.failHandshake("Request Header Fields Too Large", 431)
        elif block.count(b"\r\n") > ws.max_headers:
            self.failHandshake("Request Header Fields Too Large", 431)
        elif 0 <= end < len(head) - 4:
            # RFC 6455 4.1: the client waits for the 101 before sending frames. Bytes after the head are a body
            # or frames sent early; autobahn would parse them as frames once the 101 is out (a smuggled HELLO).
            self.failHandshake("Bad Request", 400)
        else:
            return True
        return False

    def failHandshake(self, reason: str, code: int = 400, responseHeaders=None) -> None:
        headers = list(responseHeaders or ()) + [("X-Content-Type-Options", "nosniff")]
        super().failHandshake(reason, code, headers)

    def onConnect(self, request):
        factory = self.factory
        if request.path not in factory.wamp_paths:
            raise ConnectionDeny(ConnectionDeny.NOT_FOUND, "Not Found")
        if "content-length" in request.headers or "transfer-encoding" in request.headers:
            # an upgrade request has no body; one announced would be read as WebSocket frames
            raise ConnectionDeny(ConnectionDeny.BAD_REQUEST, "Bad Request")
        origin = request.headers.get("origin")
        if origin is not None and not origin_allowed(origin, factory.listener.config.websocket.allowed_origins):
            factory.context.counters.increment("handshake_refused", reason="origin",
                                               listener=factory.listener.config.name)
            self.router_log.info("WebSocket: refused Origin {origin!r} from {peer} on listener {listener!r} "
                                 "(HTTP 403); to allow it, add it to {key}", origin=origin, peer=self.peer,
                                 listener=factory.listener.config.name, key=_origins_key(factory.listener))
            raise ConnectionDeny(ConnectionDeny.FORBIDDEN, "Forbidden")
        for subprotocol in request.protocols:
            serializer = factory.subprotocols.get(subprotocol)
            if serializer is not None:
                self.serializer = serializer
                self._binary = serializer._serializer.BINARY
                self._frame_key = factory.frame_keys[serializer.SERIALIZER_ID]
                self._request = request
                self.auth_cookie, headers = upgrade_cookie(
                    factory.listener, _cookies(request.headers.get("cookie", "")),
                    bool(self._transport_details.is_secure), request.path)
                return subprotocol, headers
        raise ConnectionDeny(
            ConnectionDeny.BAD_REQUEST, "expected one of the WebSocket subprotocols " + ", ".join(factory.subprotocols)
        )

    def onOpen(self) -> None:
        self._cancel_open_timer()
        # The raw handshake texts are only needed while it runs; an idle session should not keep them.
        self.http_request_data = self.http_response_data = None
        try:
            self.session = RouterSession(self.factory.context, self.factory.listener, self)
        except Exception:
            self.router_log.failure("cannot start a session")
            self.close_transport(1011, "internal error")

    def onMessageFrameBegin(self, length: int) -> None:
        """Count the message's frames: each costs a parse and a list entry however small, so a message of a
        million 1-byte fragments would cost megabytes and seconds within max_message_size. Over max_fragments
        the close frame says 1009 (message too big: autobahn's code for an oversized frame too) and the
        connection ends at once, so frames already received or still coming are not parsed."""
        super().onMessageFrameBegin(length)
        self._fragments = self._fragments + 1 if self.current_frame.opcode == 0 else 1  # 0: a continuation
        if self._fragments > self.max_fragments and not self.failedByMe:
            self._fail_connection(self.CLOSE_STATUS_CODE_MESSAGE_TOO_BIG, "message has too many fragments")
            self.dropConnection(abort=False)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        session = self.session
        if session is not None:
            session.on_payload(payload, isBinary)

    def onClose(self, wasClean: bool, code: int, reason: str | None) -> None:
        self._end_session()

    # -- within the outgoing budget ------------------------------------------------------------------------------

    def sendData(self, data: bytes, sync: bool = False, chopsize: int | None = None) -> None:
        """Everything autobahn writes itself (handshake replies, close frames, PONGs, compressed messages) is
        charged to the budget too."""
        if self.budget is not None:
            self.budget.charge(len(data))
        super().sendData(data, sync, chopsize)

    def onPing(self, payload: bytes) -> None:
        """PONG only within the budget: a peer that pings without reading gets no more PONGs (and, over budget,
        is no longer read at all)."""
        budget = self.budget
        if budget is not None and budget.paused and budget.held + len(payload) + 4 > budget.limit:
            budget.refuse(len(payload) + 4)
            return
        super().onPing(payload)

    def onAutoPingTimeout(self) -> None:
        """While our own backlog holds the ping, or we are not reading (so its PONG waits unread), the missing PONG
        is not the peer's fault: wait another period. A peer that truly stops reading is closed by the budget's stall timer."""
        if self.reading_paused or (self.budget is not None and self.budget.paused):
            self.autoPingTimeoutCall = self.factory._batched_timer.call_later(
                self.autoPingTimeout, self.onAutoPingTimeout)
            return
        super().onAutoPingTimeout()

    # -- reading pauses ----------------------------------------------------------------------------------------------

    def processData(self) -> bool:
        """Autobahn parses every frame of a read in one loop; while reading is paused, stop at the next frame
        boundary and leave the rest in its buffer (a rate-limited flooder's 64 KiB read is not parsed at once)."""
        if self._pause_reasons and self.current_frame is None and self.state == self.STATE_OPEN:
            return False
        return super().processData()

    def resume_reading(self, reason: str) -> None:
        super().resume_reading(reason)
        if not self.reading_paused and self.state == self.STATE_OPEN and self.data:
            self.consumeData()  # frames that arrived before the pause took effect

    # -- the channel interface the session uses -----------------------------------------------------------------

    def send_message(self, msg) -> str | None:
        """Write the message's frame (built once per serializer and shared by every recipient) within the
        outgoing budget (see IChannel); nothing is written once the connection is closing."""
        if self.state != self.STATE_OPEN:
            return None
        try:
            if self._perMessageCompress is not None:
                # with permessage-deflate the frame differs per connection: autobahn's own send path, which
                # charges the budget in sendData
                return self._emit(msg, msg.serialize(self.serializer._serializer), self._send_data_message,
                                  charge=False)
            frame = self._frame_key.frame(msg)
        except Exception as e:  # a value the serializer cannot encode
            self.router_log.info("WebSocket: cannot encode a {kind} for {peer}: {error}",
                                 kind=type(msg).__name__.upper(), peer=self.peer, error=e)
            return UNENCODABLE
        return self._emit(msg, frame, self.transport.write)

    def _send_data_message(self, data: bytes) -> None:
        self.sendMessage(data, self._binary)

    def close_transport(self, code: int, reason: str | None) -> None:
        if self.state == self.STATE_OPEN:
            # sendClose only takes 1000 and application codes; 1002/1008/1011 are ours to send as well.
            self.sendCloseFrame(code=code, reasonUtf8=reason.encode("utf-8") if reason else None, isReply=False)
        elif self.state not in (self.STATE_CLOSING, self.STATE_CLOSED):
            self._close_now(abort=True)

    def _close_now(self, abort: bool) -> None:
        self.dropConnection(abort=abort)  # autobahn unregisters the producer first

    def _peer_address(self, details) -> str:
        peer = details.peer if details else "unknown"
        request = self._request
        if request is None:
            return peer
        return forwarded_client(peer, request.headers, self.factory.trusted_proxies)

    def transport_info(self) -> TransportInfo:
        details = self._transport_details
        request = self._request
        return TransportInfo(
            listener=self.factory.listener.config.name,
            kind="websocket",
            is_secure=bool(details and details.is_secure),
            serializer=self.serializer.SERIALIZER_ID if self.serializer else "",
            peer=self._peer_address(details),
            http_headers=MappingProxyType(request.headers) if request else MappingProxyType({}),
            http_path=request.path if request else None,
            http_query=_query(request.params) if request else MappingProxyType({}),
            cookies=_cookies(request.headers.get("cookie", "")) if request else MappingProxyType({}),
            peer_certificate=client_certificate(self.transport),
            channel_bindings=channel_bindings(self.transport),
        )


def _origins_key(listener: ListenerRuntime) -> str:
    """The config key an operator changes to allow a refused Origin."""
    if listener.index is None:
        return f"websocket.allowed_origins of listener {listener.config.name!r}"
    return f"listeners[{listener.index}].websocket.allowed_origins"


def origin_allowed(origin: str, allowed: tuple[str, ...]) -> bool:
    """Exact origins or patterns with `*` (case-insensitive); the opaque "null" origin only when listed."""
    origin = origin.strip().lower()
    if origin == "null":
        return "null" in allowed
    return any(fnmatch.fnmatchcase(origin, pattern) for pattern in allowed if pattern != "null")


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def proxy_networks(trusted: tuple[str, ...]) -> tuple[Network, ...]:
    """`trusted_proxies` (addresses and CIDR networks, validated by the config) as networks: parsed once per
    listener, not per request."""
    return tuple(ipaddress.ip_network(entry) for entry in trusted)


def forwarded_client(peer: str, headers: dict, trusted: tuple[Network, ...]) -> str:
    """The client's address: the right-most X-Forwarded-For entry not added by a trusted proxy, believed only when
    the connection itself comes from a trusted proxy (so a forged header cannot dodge peer-address limits)."""
    kind, _, rest = peer.partition(":")
    host = rest.rsplit(":", 1)[0] if rest else ""
    if not trusted or "x-forwarded-for" not in headers or not _is_trusted(_address(host), trusted):
        return peer
    hops = [hop.strip() for hop in headers["x-forwarded-for"].split(",") if hop.strip()]
    for hop in reversed(hops):
        address = _address(hop)
        if address is None:
            return peer
        if not _is_trusted(address, trusted):
            return f"{'tcp6' if address.version == 6 else 'tcp4'}:{address}:0"
    return peer


def _address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address, IPv4-mapped IPv6 ones (`::ffff:10.0.0.1`, from a dual-stack socket) as the IPv4 address they
    are; None when `text` is not an address."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return getattr(address, "ipv4_mapped", None) or address


def _is_trusted(address, trusted: tuple[Network, ...]) -> bool:
    return address is not None and any(address in network for network in trusted)


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


def _deflate_acceptor(enabled: bool, max_size: int):
    """permessage-deflate is off unless enabled; when on, a message may not inflate beyond `max_size` bytes."""

    def accept(offers):
        if not enabled:
            return None
        for offer in offers:
            if isinstance(offer, PerMessageDeflateOffer):
                return PerMessageDeflateOfferAccept(offer, max_message_size=max_size)
        return None

    return accept


class WebSocketFactory(WampWebSocketServerFactory):
    """Autobahn's WAMP WebSocket factory, configured from our listener config and nothing else."""

    protocol = WebSocketChannel
    noisy = False

    def __init__(self, context: RouterContext, listener: ListenerRuntime, codecs: Codecs):
        config: ListenerConfig = listener.config
        chosen = [codecs.serializers[name] for name in config.serializers]
        self.frame_keys = {codecs.serializers[name].SERIALIZER_ID: codecs.frames[("websocket", name)]
                           for name in config.serializers}
        super().__init__(lambda: None, serializers=chosen, server=config.websocket.server_header or None)
        self.context = context
        self.listener = listener
        self.trusted_proxies = proxy_networks(config.websocket.trusted_proxies)
        self.wamp_paths = frozenset(config.websocket_paths)
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
            failByDrop=False,  # refuse with a close frame (e.g. 1009 for an oversized message), then drop
            echoCloseCodeReason=False,
            openHandshakeTimeout=0,  # ours (WebSocketChannel): autobahn's timer rounds to whole seconds
            closeHandshakeTimeout=ws.close_handshake_timeout,
            tcpNoDelay=True,
            perMessageCompressionAccept=_deflate_acceptor(ws.compression, config.max_message_size),
            autoPingInterval=ws.auto_ping_interval,
            autoPingTimeout=ws.auto_ping_timeout,
            serveFlashSocketPolicy=False,
            allowedOrigins=["*"],
            allowNullOrigin=True,
            maxConnections=0,
            trustXForwardedFor=0,
        )
        self.protocol = self._channel_class(listener.config.name)

    def _channel_class(self, name: str) -> type:
        """A channel class for this listener whose options are class attributes. Autobahn copies each option the
        protocol does not have onto every connection, and formats them all for a debug log line it then drops; with
        the options on the class it does neither (less memory per session, less CPU per connection)."""
        options = {attr: getattr(self, attr) for attr in WebSocketChannel.CONFIG_ATTRS}
        # a function stored on a class would become a method: keep it a plain callable
        options = {attr: staticmethod(value) if inspect.isfunction(value) else value for attr, value in options.items()}
        options["max_fragments"] = self.listener.config.websocket.max_fragments
        return type(f"WebSocketChannel[{name}]", (WebSocketChannel,), {**options, "CONFIG_ATTRS": ()})
