"""The channel contract: what a transport gives a session, and the one outgoing budget every transport shares.

A session never touches a socket. It talks to its channel (`IChannel`): send a prepared WAMP message, pause or resume
reading, close, abort, and describe the transport. WebSocket and RawSocket implement it with `BudgetedChannel`; the
router's own in-process caller implements it too; a long-poll or HTTP-bridge transport would.

Every byte a channel writes (WAMP messages, PONGs, close frames, handshake replies) is counted against one
`OutgoingBudget`. Twisted tells the budget (a registered push producer) when the socket's send buffer passes its
high-water mark; from then on written bytes are held. Past `limit` the connection is over budget:
- reading stops, so the peer cannot make the router write more replies until it reads what it was sent;
- an EVENT follows the slow-consumer policy (dropped and counted, or the connection is closed);
- an INVOCATION is refused with CONGESTED and its caller gets ERROR `wamp.error.unavailable`; a RESULT (final or
  progressive) for a caller that does not read ends the caller's connection, and the dealer then interrupts the
  callee: nobody waits for an answer that cannot come;
- replies to the peer's own requests (and at most one ERROR per pending call) are still written: reading has
  stopped, so there can be only a few.
A PONG, INVOCATION or RESULT refused because it does not fit counts as held: the connection is over budget as if it
had been written (else a peer that never reads would stay just under the limit, be read forever, never be closed).
A connection that stays over budget for `stall_timeout` seconds is closed.
"""

from __future__ import annotations

from typing import Any

from autobahn.wamp import message as wamp
from twisted.internet.interfaces import IPushProducer
from twisted.logger import Logger
from zope.interface import Attribute, Interface, implementer

# Slow-consumer policies (per realm or role): what happens to an EVENT for a connection over its budget.
DROP = "drop"
DISCONNECT = "disconnect"

# Why `send_message` did not deliver a message; None means it went out (or was an EVENT dropped by policy).
TOO_LARGE = "too_large"  # larger than the client announced it can receive (RawSocket)
CONGESTED = "congested"  # the connection is over its outgoing budget
UNENCODABLE = "unencodable"  # the recipient's serializer cannot encode the message

# Why reading is paused; reading resumes when no reason is left.
PAUSED_FOR_OUTGOING = "outgoing"  # over the outgoing budget
PAUSED_FOR_FLOW = "flow"  # flow control refused a message: wait until the allowance refills
PAUSED_FOR_ORDER = "order"  # many messages wait behind an authorization decision

# Messages another session causes without bound (a callee's progressive results, callers' invocations): never
# written over budget; the other side is answered instead. Everything else a connection receives is bounded by its
# own requests (one reply each, at most one ERROR per pending call), and its requests stop when reading does.
_ANSWERED_ELSEWHERE = (wamp.Invocation, wamp.Result)


class IChannel(Interface):
    """What a session may ask of its transport."""

    serializer = Attribute("the autobahn serializer of this connection (None before the transport's handshake)")
    budget = Attribute("the OutgoingBudget of this connection")

    def send_message(msg):
        """Write one WAMP message within the outgoing budget; None when it went out (or an EVENT was dropped by
        the slow-consumer policy), else TOO_LARGE, CONGESTED or UNENCODABLE and nothing was written."""

    def pause_reading(reason):
        """Stop reading from the peer for `reason` (one of the PAUSED_FOR_* names)."""

    def resume_reading(reason):
        """`reason` no longer holds; reading resumes once no reason is left."""

    def close_transport(code, reason):
        """Close in the transport's own orderly way (a WebSocket close frame with `code`); idempotent."""

    def abort_transport():
        """Drop the connection now, writing nothing more."""

    def transport_info():
        """A TransportInfo value describing this connection for authenticators and authorizers."""


@implementer(IPushProducer)
class OutgoingBudget:
    """Bytes written to one connection that its socket has not taken yet, and what to do when there are too many."""

    __slots__ = ("paused", "held", "dropped", "limit", "policy", "_owner", "_clock", "_stall_timeout", "_stall")

    def __init__(self, owner: BudgetedChannel, limit: int, *, clock: Any, stall_timeout: float):
        self.paused = False  # the socket asked us to stop producing
        self.held = 0  # bytes written since then
        self.dropped = 0  # events not delivered to this connection, ever
        self.limit = limit
        self.policy = DROP
        self._owner = owner
        self._clock = clock
        self._stall_timeout = stall_timeout
        self._stall = None  # the timer that closes a connection staying over budget

    @property
    def over(self) -> bool:
        return self.held > self.limit

    def pauseProducing(self) -> None:
        self.paused = True

    def resumeProducing(self) -> None:
        """The socket took what it had: the connection is within budget again."""
        was_over = self.over
        self.paused = False
        self.held = 0
        self._cancel_stall()
        if was_over:
            self._owner.resume_reading(PAUSED_FOR_OUTGOING)

    def stopProducing(self) -> None:
        self.paused = True
        self._cancel_stall()

    def charge(self, size: int) -> None:
        """Count bytes that are being written; going over budget stops reading and starts the stall timer."""
        if not self.paused:
            return
        was_over = self.over
        self.held += size
        if not was_over and self.over:
            self._owner.pause_reading(PAUSED_FOR_OUTGOING)
            self._stall = self._clock.callLater(self._stall_timeout, self._on_stall)

    def refuse(self, size: int) -> None:
        """A frame of `size` bytes the peer caused (a PONG, an INVOCATION, a RESULT) is not written: it would pass
        the limit. Counted as if held, so the connection is over budget: reading stops and the stall timer runs."""
        self.charge(size)

    def refuses(self, msg: wamp.Message, size: int) -> bool:
        """Whether `msg` (framed as `size` bytes) must not be written now: over budget, it is an EVENT or a
        message whose sender is answered instead (see `refuse`). Replies to the peer's own requests always pass."""
        if not self.paused or self.held + size <= self.limit:
            return False
        if type(msg) is wamp.Event:
            if self.policy == DROP:
                self.dropped += 1
            return True
        if type(msg) in _ANSWERED_ELSEWHERE:
            self.refuse(size)
            return True
        return False

    def _on_stall(self) -> None:
        self._stall = None
        if self.over:
            self._owner.stalled()

    def _cancel_stall(self) -> None:
        if self._stall is not None and self._stall.active():
            self._stall.cancel()
        self._stall = None


class BudgetedChannel:
    """What WebSocket and RawSocket channels share: writing within the budget, traffic counts, the reasons reading
    is paused, and ending the session when the connection goes. A subclass provides `transport`, `factory`,
    `session`, `send_message`, `close_transport`, `transport_info` and `_close_now(abort)`."""

    router_log = Logger()
    session: Any = None
    serializer = None
    budget: OutgoingBudget | None = None
    _pause_reasons: frozenset = frozenset()

    def _start_budget(self) -> None:
        context = self.factory.context
        self.budget = OutgoingBudget(self, context.limits.max_outgoing_buffer, clock=context.clock,
                                     stall_timeout=context.limits.outgoing_stall_timeout)
        register_producer(self.transport, self.budget)
        set_no_delay(self.transport)

    def _emit(self, msg: wamp.Message, data: bytes, write, charge: bool = True) -> str | None:
        """Write `data` (the frame of `msg`) within the budget; see the module docstring for what is refused.
        `charge=False` when `write` charges the budget itself."""
        budget = self.budget
        size = len(data)
        if budget.paused:  # the socket has a backlog: only then is anything counted or refused
            if budget.refuses(msg, size):
                if type(msg) is wamp.Event:
                    self._slow_consumer(budget)
                    return None
                return CONGESTED
            if charge:
                budget.charge(size)
        traffic = self.factory.context.traffic
        traffic.messages_out += 1
        traffic.bytes_out += size
        write(data)
        return None

    def _write_control(self, data: bytes) -> bool:
        """A frame the protocol itself sends (PONG): written only within budget, so a peer that pings without
        reading cannot grow what we hold. Returns whether it was written."""
        budget = self.budget
        if budget is not None and budget.paused and budget.held + len(data) > budget.limit:
            budget.refuse(len(data))
            return False
        if budget is not None:
            budget.charge(len(data))
        self.transport.write(data)
        return True

    def _slow_consumer(self, budget: OutgoingBudget) -> None:
        labels = self._labels()
        counters = self.factory.context.counters
        if budget.policy == DISCONNECT:
            self.router_log.info("{peer} disconnected: a slow consumer over {limit} buffered bytes",
                                 peer=self._peer_name(), limit=budget.limit)
            counters.increment("slow_consumer_disconnect", **labels)
            self.abort_transport()
        else:
            counters.increment("slow_consumer_drop", **labels)

    def stalled(self) -> None:
        """Over budget for the whole stall timeout: the peer is not reading."""
        self.router_log.info("{peer} disconnected: over its outgoing budget for too long", peer=self._peer_name())
        self.factory.context.counters.increment("outgoing_stall_disconnect", **self._labels())
        self.abort_transport()

    def pause_reading(self, reason: str) -> None:
        if not self._pause_reasons:
            self.transport.pauseProducing()
        self._pause_reasons = self._pause_reasons | {reason}

    def resume_reading(self, reason: str) -> None:
        if reason not in self._pause_reasons:
            return
        self._pause_reasons = self._pause_reasons - {reason}
        if not self._pause_reasons:
            self.transport.resumeProducing()

    @property
    def reading_paused(self) -> bool:
        return bool(self._pause_reasons)

    def abort_transport(self) -> None:
        """Drop now. The budget is unregistered first: a TLS transport does not close while a producer is
        registered."""
        self._end_session()
        self._unregister_budget()
        self._close_now(abort=True)

    def _unregister_budget(self) -> None:
        budget = self.budget
        if budget is not None:
            budget.stopProducing()
            try:
                self.transport.unregisterProducer()
            except Exception:
                pass  # nothing registered, or the transport is gone

    def _labels(self) -> dict:
        session = self.session
        realm = session.realm_name if session is not None else ""
        return {"listener": self.factory.listener.config.name, "realm": realm}

    def _peer_name(self) -> str:
        try:
            return self.transport_info().peer
        except Exception:
            return "unknown peer"

    def _end_session(self) -> None:
        session, self.session = self.session, None
        if session is not None:
            try:
                session.on_close()
            except Exception:
                self.router_log.failure("error while ending a session")


def register_producer(transport, budget: OutgoingBudget) -> None:
    """Register the budget on the transport, replacing the HTTP protocol's producer when a static-files listener
    handed the connection over to WebSocket."""
    try:
        transport.registerProducer(budget, True)
    except RuntimeError:
        transport.unregisterProducer()
        transport.registerProducer(budget, True)


def set_no_delay(transport) -> None:
    """Turn Nagle's algorithm off: small WAMP messages must not wait for the peer's delayed ACK (about 40 ms).
    (Autobahn's own attempt runs before its options are set and silently fails.)"""
    try:
        transport.setTcpNoDelay(True)
    except (AttributeError, OSError, NotImplementedError):
        pass  # not a TCP socket (a UNIX socket, or a test transport)
