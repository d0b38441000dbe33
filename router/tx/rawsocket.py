"""WAMP over RawSocket, exactly as the spec's handshake and framing say.

Autobahn's RawSocket server is reused for its factory, serializers and transport details, but its framing (a plain
32-bit length) cannot see PING/PONG frames or reserved bits, and its handshake never answers errors; those two parts
are done here.

Handshake (4 octets each way): 0x7F, then LENGTH (high nibble: max length 2**(9+LENGTH)) | SERIALIZER (low nibble),
then two reserved zero octets. Errors are answered as 0x7F, ERROR << 4, 0, 0 and the connection closed.
Frames: one octet (5 reserved bits, 3 bits type: 0 message, 1 PING, 2 PONG), then a 24-bit big-endian length.
"""

from __future__ import annotations


from autobahn.twisted.rawsocket import WampRawSocketServerFactory, WampRawSocketServerProtocol
from twisted.logger import Logger

from wampgate.config import ListenerConfig
from wampgate.model import TransportInfo
from wampgate.tx.channel import TOO_LARGE, UNENCODABLE, BudgetedChannel, IChannel
from wampgate.tx.channelbinding import channel_bindings
from wampgate.tx.clientcert import client_certificate
from wampgate.tx.runtime import ListenerRuntime, RouterContext
from wampgate.tx.wire import Codecs
from wampgate.tx.session import RouterSession
from zope.interface import implementer

MAGIC = 0x7F
ERROR_SERIALIZER_UNSUPPORTED = 1
ERROR_LENGTH_UNACCEPTABLE = 2
ERROR_RESERVED_BITS = 3
ERROR_CONNECTION_COUNT = 4

FRAME_MESSAGE = 0
FRAME_PING = 1
FRAME_PONG = 2


def length_exponent(max_size: int) -> int:
    """The largest LENGTH nibble whose 2**(9+LENGTH) does not exceed `max_size` (we never announce more)."""
    exponent = max(0, min(15, max_size.bit_length() - 1 - 9))
    return exponent


def handshake_error(code: int) -> bytes:
    return bytes((MAGIC, code << 4, 0, 0))


@implementer(IChannel)
class RawSocketChannel(BudgetedChannel, WampRawSocketServerProtocol):
    """One RawSocket connection."""

    # Not `log`: that is autobahn's level-filtered txaio logger, whose debug calls carry handshake headers.
    router_log = Logger()
    session: RouterSession | None = None
    serializer = None

    def connectionMade(self) -> None:
        super().connectionMade()
        self._inbox = bytearray()
        self._receive_limit = 2 ** (9 + length_exponent(self.factory.listener.config.max_message_size))
        self._send_limit = 0
        self._closing = False
        self._reading = False
        self._start_budget()
        self._handshake_timer = self.factory.context.clock.callLater(
            self.factory.context.limits.hello_timeout, self._on_handshake_timeout
        )

    def _on_handshake_timeout(self) -> None:
        self._handshake_timer = None
        if not self._handshake_complete:
            self.router_log.info("RawSocket: {peer} did not finish the opening handshake in time", peer=self.peer)
            self._fail(None)

    def _cancel_handshake_timer(self) -> None:
        if self._handshake_timer is not None and self._handshake_timer.active():
            self._handshake_timer.cancel()
        self._handshake_timer = None

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        self._inbox += data
        if not self._handshake_complete and not self._read_handshake():
            return
        self._read_frames()

    def _read_handshake(self) -> bool:
        inbox = self._inbox
        if inbox[0] != MAGIC:
            self.router_log.info("RawSocket: first octet {octet:#x} from {peer}; closing", octet=inbox[0], peer=self.peer)
            self._fail(None)
            return False
        if len(inbox) < 4:
            return False
        octet = inbox[1]
        if inbox[2] or inbox[3]:
            self._fail(handshake_error(ERROR_RESERVED_BITS))
            return False
        serializer = self.factory._serializers.get(octet & 0x0F)
        if serializer is None:
            self._fail(handshake_error(ERROR_SERIALIZER_UNSUPPORTED))
            return False
        del inbox[:4]
        self.serializer = serializer
        self._frame_key = self.factory.frame_keys[serializer.RAWSOCKET_SERIALIZER_ID]
        self._binary = None  # RawSocket has no text/binary distinction
        self._send_limit = 2 ** (9 + (octet >> 4))
        exponent = length_exponent(self._receive_limit)
        self._write_control(bytes((MAGIC, (exponent << 4) | serializer.RAWSOCKET_SERIALIZER_ID, 0, 0)))
        self._handshake_complete = True
        self._cancel_handshake_timer()
        self._open_session()
        return True

    def _open_session(self) -> None:
        try:
            self.session = RouterSession(self.factory.context, self.factory.listener, self)
        except Exception:
            self.router_log.failure("cannot start a session")
            self._fail(None)

    def _read_frames(self) -> None:
        """Handle every complete frame in the inbox, stopping while reading is paused (what is left waits in the
        inbox for `resume_reading`)."""
        if self._reading:
            return  # re-entered from a frame's own handling; the outer loop goes on
        self._reading = True
        try:
            self._read_inbox()
        finally:
            self._reading = False

    def _read_inbox(self) -> None:
        inbox = self._inbox
        offset = 0
        size = len(inbox)
        while size - offset >= 4 and not self._closing and not self.reading_paused:
            header = inbox[offset]
            length = int.from_bytes(inbox[offset + 1 : offset + 4], "big")
            if header & 0xF8 or (header & 0x07) > FRAME_PONG:
                self.router_log.info("RawSocket: reserved bits or frame type {header:#x} from {peer}", header=header, peer=self.peer)
                self._fail(None)
                return
            if length > self._receive_limit:
                self.router_log.info(
                    "RawSocket: {length}-byte message from {peer} exceeds the announced {limit}",
                    length=length,
                    peer=self.peer,
                    limit=self._receive_limit,
                )
                self._fail(None)
                return
            end = offset + 4 + length
            if end > size:
                break
            payload = bytes(inbox[offset + 4 : end])
            offset = end
            self._on_frame(header & 0x07, payload)
        if offset:
            del inbox[:offset]

    def _on_frame(self, kind: int, payload: bytes) -> None:
        if kind == FRAME_MESSAGE:
            if self.session is not None:
                self.session.on_payload(payload, None)
        elif kind == FRAME_PING and len(payload) <= self._send_limit:
            # within the outgoing budget only: a peer that pings without reading gets no more PONGs
            self._write_control(bytes((FRAME_PONG,)) + len(payload).to_bytes(3, "big") + payload)

    def resume_reading(self, reason: str) -> None:
        super().resume_reading(reason)
        if not self.reading_paused and not self._closing and self._handshake_complete:
            self._read_frames()  # frames that arrived before the pause took effect

    def _fail(self, reply: bytes | None) -> None:
        if self._closing:
            return
        self._closing = True
        if reply:
            self.transport.write(reply)
        self._close_now(abort=False)

    def _close_now(self, abort: bool) -> None:
        """Close the connection; the budget is unregistered first, or a TLS transport would wait for it forever."""
        self._closing = True
        self._unregister_budget()
        if abort:
            self.transport.abortConnection()
        else:
            self.transport.loseConnection()

    def connectionLost(self, reason) -> None:
        self._closing = True
        self._cancel_handshake_timer()
        self._end_session()

    # -- the channel interface the session uses -----------------------------------------------------------------

    def send_message(self, msg) -> str | None:
        """Write the message's frame (built once per serializer, shared by every recipient) within the outgoing
        budget; TOO_LARGE when it is larger than the client announced it can take (see IChannel)."""
        if self._closing:
            return None
        try:
            frame = self._frame_key.frame(msg)
        except Exception as e:  # a value the serializer cannot encode
            self.router_log.info("RawSocket: cannot encode a {kind} for {peer}: {error}",
                                 kind=type(msg).__name__.upper(), peer=self.peer, error=e)
            return UNENCODABLE
        if len(frame) - 4 > self._send_limit:
            self.router_log.info(
                "RawSocket: a {size}-byte {kind} for {peer} is over the client's limit of {limit}",
                size=len(frame) - 4,
                kind=type(msg).__name__.upper(),
                peer=self.peer,
                limit=self._send_limit,
            )
            return TOO_LARGE
        return self._emit(msg, frame, self.transport.write)

    def close_transport(self, code: int, reason: str | None) -> None:
        if not self._closing:
            self._close_now(abort=False)

    def transport_info(self) -> TransportInfo:
        details = self._transport_details
        return TransportInfo(
            listener=self.factory.listener.config.name,
            kind="rawsocket",
            peer=details.peer if details else "unknown",
            is_secure=bool(details and details.is_secure),
            serializer=self.serializer.SERIALIZER_ID if self.serializer else "",
            peer_certificate=client_certificate(self.transport),
            channel_bindings=channel_bindings(self.transport),
        )


class RawSocketFactory(WampRawSocketServerFactory):
    """Autobahn's RawSocket factory with our protocol and the listener's serializers."""

    protocol = RawSocketChannel
    noisy = False

    def __init__(self, context: RouterContext, listener: ListenerRuntime, codecs: Codecs):
        config: ListenerConfig = listener.config
        super().__init__(lambda: None, serializers=[codecs.serializers[name] for name in config.serializers])
        self.frame_keys = {codecs.serializers[name].RAWSOCKET_SERIALIZER_ID: codecs.frames[("rawsocket", name)]
                           for name in config.serializers}
        self.context = context
        self.listener = listener
        self._max_message_size = config.max_message_size
