"""Bounding what the router holds for a slow subscriber.

Twisted tells a registered producer to pause once a socket's send buffer passes its high-water mark. From then on
the channel counts the bytes it writes anyway; past `limit`, EVENTs for that session are dropped (and counted, so the
subscriber can ask how many it missed) or the session is disconnected, as its realm or role says. Replies to the
session's own requests are always written: flow control already bounds how many it can ask for.
"""

from __future__ import annotations

from autobahn.wamp import message as wamp
from twisted.internet.interfaces import IPushProducer
from zope.interface import implementer

DROP = "drop"
DISCONNECT = "disconnect"


@implementer(IPushProducer)
class SendWindow:
    __slots__ = ("paused", "held", "dropped", "limit", "policy")

    def __init__(self, limit: int):
        self.paused = False
        self.held = 0  # bytes written since the socket asked us to pause
        self.dropped = 0  # events not delivered to this session, ever
        self.limit = limit
        self.policy = DROP

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        self.paused = False
        self.held = 0

    def stopProducing(self) -> None:
        self.paused = True

    def admit(self, msg: wamp.Message, size: int) -> str | None:
        """None to write the message; DROP or DISCONNECT when the session is over its limit."""
        if self.held + size > self.limit and type(msg) is wamp.Event:
            if self.policy == DROP:
                self.dropped += 1
            return self.policy
        self.held += size
        return None


def register_producer(transport, window: SendWindow) -> None:
    """Register the window on the transport, replacing the HTTP protocol's producer when a static-files listener
    handed the connection over to WebSocket."""
    try:
        transport.registerProducer(window, True)
    except RuntimeError:
        transport.unregisterProducer()
        transport.registerProducer(window, True)


def set_no_delay(transport) -> None:
    """Turn Nagle's algorithm off: small WAMP messages must not wait for the peer's delayed ACK (about 40 ms).
    (Autobahn's own attempt runs before its options are set and silently fails.)"""
    try:
        transport.setTcpNoDelay(True)
    except (AttributeError, OSError, NotImplementedError):
        pass  # not a TCP socket (a UNIX socket, or a test transport)


class OutgoingChannel:
    """What WebSocket and RawSocket channels share on the way out: the slow-consumer check, traffic counting, and
    ending the session when the connection goes."""

    def _emit(self, msg: wamp.Message, data: bytes, write) -> bool:
        """Write `data` (the frame of `msg`) unless this session is over its outgoing limit, in which case the
        session applies its slow-consumer policy. Always True: nothing for the caller to undo."""
        window = self._window
        if window.paused and window.admit(msg, len(data)) is not None:
            self.session.slow_consumer(window)
            return True
        traffic = self.factory.context.traffic
        traffic.messages_out += 1
        traffic.bytes_out += len(data)
        write(data)
        return True

    def _end_session(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            try:
                session.on_close()
            except Exception:
                self.router_log.failure("error while ending a session")
