"""The router side of one WAMP connection: a thin adapter between a channel and the router.

bytes -> wire.parse -> the session's life (router/core/handshake.py says what each message means now) ->
opening (router/tx/opening.py: HELLO to WELCOME) or requests (router/tx/requests.py: flow control, order,
authorization, the realm's core) -> effects (router/tx/effect_runner.py) -> channels.

Nothing raised here reaches the transport. A peer's mistakes become ABORT or ERROR with a generic text (details go
to our log); our own bugs are logged with a traceback and end the session with a generic reason.
"""

from __future__ import annotations

from collections import deque
from time import perf_counter
from typing import Any

from autobahn.wamp import message as wamp
from twisted.logger import Logger

from wampgate.core import errors, handshake
from wampgate.core.handshake import Lifecycle
from wampgate.core.peer import Peer
from wampgate.model import FlowSession, Identity, TransportInfo
from wampgate.tx import wire
from wampgate.tx.channel import PAUSED_FOR_ORDER, TOO_LARGE
from wampgate.tx.opening import Opening, Refusal, welcome_message
from wampgate.tx.requests import RequestQueue
from wampgate.tx.runtime import ListenerRuntime, RealmRuntime, RouterContext

# WebSocket close codes (RawSocket simply closes). Not to be confused with the WAMP close reasons in core/errors.py.
WS_CLOSE_NORMAL = 1000
WS_CLOSE_PROTOCOL_ERROR = 1002
WS_CLOSE_POLICY = 1008
WS_CLOSE_INTERNAL_ERROR = 1011

# Messages held behind a pending authorization decision before the connection stops being read.
MAX_PENDING = 256


class RouterSession:
    """One connection's session; `channel` is the IChannel it talks through."""

    log = Logger()
    # Slots: an idle session should cost as little memory as it can (sessions per GiB is a headline figure).
    __slots__ = ("_context", "_listener", "channel", "_life", "_opening", "_requests", "_transport_info",
                 "_held", "_pending", "_waiting", "_hello_timer", "_goodbye_timer", "_ended")

    def __init__(self, context: RouterContext, listener: ListenerRuntime, channel: Any):
        self._context = context
        self._listener = listener
        self.channel = channel
        self._life = Lifecycle()
        self._opening: Opening | None = None
        self._requests: RequestQueue | None = None  # while established
        self._transport_info: TransportInfo | None = None
        self._held: deque | None = None  # payloads read before a reading pause took effect
        self._pending: deque | None = None  # messages behind a pending authorization decision, in order
        self._waiting = False  # an authorization decision is pending
        self._hello_timer = context.clock.callLater(context.limits.hello_timeout, self._on_hello_timeout)
        self._goodbye_timer = None
        self._ended = False  # the connection is being closed: nothing more is sent or handled

    # -- what others read ---------------------------------------------------------------------------------------

    @property
    def state(self) -> str:
        return self._life.state

    @property
    def established(self) -> bool:
        return self._life.established

    @property
    def peer(self) -> Peer | None:
        return self._requests.peer if self._requests is not None else None

    @property
    def flow_session(self) -> FlowSession | None:
        return self._requests.flow_session if self._requests is not None else None

    @property
    def realm_name(self) -> str:
        if self._requests is not None:
            return self._requests.peer.realm
        opening = self._opening
        return opening.realm.config.name if opening is not None and opening.realm is not None else ""

    @property
    def address(self) -> str:
        """The peer's address for logs; never raises, so error handlers can use it."""
        try:
            return self.transport_info().peer
        except Exception:
            return "unknown peer"

    def transport_info(self) -> TransportInfo:
        if self._transport_info is None:
            self._transport_info = self.channel.transport_info()
        return self._transport_info

    # -- called by the channel -----------------------------------------------------------------------------------

    def on_payload(self, payload: bytes, is_binary: bool | None) -> None:
        """One transport message in; nothing escapes to the transport. While reading is paused for flow control,
        what the transport still delivers waits here, in order, for `read_held`."""
        if self._held is not None or (self._requests is not None and self._requests.reading_paused):
            if self._held is None:
                self._held = deque()
            self._held.append((payload, is_binary))
            return
        self._read(payload, is_binary)

    def read_held(self) -> None:
        """Reading resumed: handle what waited, until it pauses again."""
        held = self._held
        while held and not self._life.closed and not (self._requests is not None and self._requests.reading_paused):
            self._read(*held.popleft())
        if not held:
            self._held = None

    def on_close(self) -> None:
        """The transport is gone: leave the realm, cancel timers and pending authentication. Idempotent."""
        self._end()

    def _read(self, payload: bytes, is_binary: bool | None) -> None:
        started = perf_counter()
        traffic = self._context.traffic
        size = len(payload)
        traffic.bytes_in += size
        limits = self._context.limits
        max_size = None if self._life.established else limits.max_hello_size
        try:
            items = wire.parse(self.channel.serializer, payload, is_binary, max_size, limits.max_nesting)
        except wire.ProtocolViolation as e:
            self._violation(str(e))
            return
        try:
            for item in items:
                if self._life.closed:
                    break
                kind = type(item[0]) if type(item) is tuple else None
                traffic.messages_in[kind.__name__ if kind else "invalid"] += 1
                if self._pending is not None or self._waiting:
                    self._hold(item, kind, size)
                else:
                    self._dispatch(item, kind, size)
            traffic.observe_latency(perf_counter() - started)
        except Exception:
            self.log.failure("internal error while handling a message from {peer}", peer=self.address)
            self.fail()

    # -- the session's life ----------------------------------------------------------------------------------------

    def _dispatch(self, item: wire.Inbound, kind: type | None, size: int) -> None:
        """Carry out what the lifecycle table says this message means in the current state."""
        event = handshake.event_of(kind) if kind is not None else _refusal_event(item)
        before = self._life.state
        action = self._life.on(event)
        if action == handshake.ROUTE:
            self._requests.receive(item, size)
        elif action == handshake.OPEN:
            self._open(item)
        elif action == handshake.ANSWER_CHALLENGE:
            self._opening.answer(item[0])
        elif action == handshake.REPLY_GOODBYE:
            self._logout_cookie(item[0])
            self._reply_goodbye()
        elif action == handshake.CLOSE:
            self._close(None, WS_CLOSE_NORMAL)
        elif action == handshake.VIOLATION:
            name = kind.__name__.upper() if kind is not None else "an invalid request"
            self._violation(f"{name} while {before}")
        # DROP: a late message of a session that said GOODBYE, or anything while our GOODBYE awaits its reply

    def _open(self, item: wire.Inbound) -> None:
        if type(item) is wire.UriRefusal:
            self.log.info("invalid URI from {peer}: {detail}", peer=self.address, detail=item.detail)
            self.refuse(errors.INVALID_URI, "the realm is not a valid URI")
            return
        try:
            self._opening = Opening(self, self._context, self._listener, item[0])
        except Refusal as refusal:
            self.refuse(refusal.reason, refusal.text)
            return
        self._opening.start()

    # -- called by Opening ------------------------------------------------------------------------------------------

    def challenge(self, message: wamp.Challenge) -> None:
        if self._life.on(handshake.CHALLENGE_SENT) == handshake.PROCEED:
            self.send(message)

    def refuse(self, reason: str, text: str) -> None:
        if self._life.on(handshake.REFUSED) == handshake.PROCEED:
            self._abort(reason, text)

    def welcome(self, realm: RealmRuntime, peer: Peer, identity: Identity, flow_session: FlowSession) -> None:
        if self._life.on(handshake.WELCOMED) != handshake.PROCEED:
            self._context.flow.session_closed(flow_session)
            return
        self._opening = None
        self.channel.budget.policy = realm.config.slow_consumer_policy(identity.authrole)
        self._requests = RequestQueue(self, self._context, realm, peer, identity, flow_session)
        self._cancel_timer("_hello_timer")
        self.apply(realm.core.join(peer))
        self.send(welcome_message(realm, peer, identity))
        cookie = getattr(self.channel, "auth_cookie", None)
        if cookie is not None:
            cookie.logged_in(identity, peer.realm)
        self.log.info("session {session} joined {realm} as {authid!r}/{authrole!r} from {peer}",
                      session=peer.session_id, realm=peer.realm, authid=peer.authid, authrole=peer.authrole,
                      peer=self.address)

    # -- order behind a pending decision ---------------------------------------------------------------------------

    def await_decision(self) -> None:
        """An authorizer answers later: every message after this one waits, GOODBYE and HELLO included."""
        self._waiting = True

    def decision_done(self) -> None:
        self._waiting = False
        pending = self._pending
        while pending and not self._waiting and not self._ended:
            self._dispatch(*pending.popleft())
        if not pending:
            self._pending = None
            self.channel.resume_reading(PAUSED_FOR_ORDER)

    def _hold(self, item: wire.Inbound, kind: type | None, size: int) -> None:
        if self._pending is None:
            self._pending = deque()
        self._pending.append((item, kind, size))
        if len(self._pending) >= MAX_PENDING:
            self.channel.pause_reading(PAUSED_FOR_ORDER)

    # -- called by RequestQueue and the effect runner ---------------------------------------------------------------

    def send(self, msg: wamp.Message) -> None:
        """Answer this session. A reply the client cannot take ends the connection: over its announced size (an
        ABORT saying so still fits), or not encodable for it, or over its outgoing budget."""
        refusal = self.channel.send_message(msg)
        if refusal is None:
            return
        if refusal == TOO_LARGE and type(msg) is not wamp.Abort:
            self._abort(errors.PAYLOAD_SIZE_EXCEEDED, "the reply is larger than the client announced it can receive")
        else:
            self._close(None, WS_CLOSE_POLICY)

    def apply(self, effects: list) -> None:
        if effects:
            realm = self._requests.realm if self._requests is not None else self._opening.realm
            realm.effects.run(effects)

    def goodbye(self, reason: str, message: str | None = None) -> None:
        """Router-initiated close: GOODBYE, then wait for the client's reply (bounded) before closing."""
        if self._life.on(handshake.ROUTER_GOODBYE) != handshake.PROCEED:
            self._close(None, WS_CLOSE_NORMAL)
            return
        self.send(wamp.Goodbye(reason=reason, message=message))
        self._leave_realm()
        self._goodbye_timer = self._context.clock.callLater(self._context.limits.goodbye_timeout,
                                                            self._on_goodbye_timeout)

    def abort(self, reason: str, message: str) -> None:
        """End the session with ABORT and close the transport."""
        self._abort(reason, message)

    def fail(self) -> None:
        """Our own bug: the session ends with a generic reason (the traceback is already logged)."""
        self._close("internal error", WS_CLOSE_INTERNAL_ERROR)

    # -- endings ----------------------------------------------------------------------------------------------------

    def _logout_cookie(self, goodbye: wamp.Goodbye) -> None:
        """GOODBYE wamp.close.logout also ends the connection's cookie login (cookie authentication)."""
        cookie = getattr(self.channel, "auth_cookie", None)
        if cookie is not None and goodbye.reason == errors.CLOSE_LOGOUT:
            cookie.logged_out()

    def _reply_goodbye(self) -> None:
        """Client-initiated close: reply like Crossbar does (`wamp.close.normal`), then await a new HELLO."""
        self.send(wamp.Goodbye(reason=errors.CLOSE_NORMAL))
        self._leave_realm()
        self._hello_timer = self._context.clock.callLater(self._context.limits.hello_timeout, self._on_hello_timeout)

    def _abort(self, reason: str, message: str, code: int = WS_CLOSE_NORMAL) -> None:
        if self._ended:
            return
        self.send(wamp.Abort(reason, message))
        self._close(None, code)

    def _violation(self, detail: str) -> None:
        self.log.info("protocol violation by {peer}: {detail}", peer=self.address, detail=detail)
        self._abort(errors.PROTOCOL_VIOLATION, "protocol violation", WS_CLOSE_PROTOCOL_ERROR)

    def _on_hello_timeout(self) -> None:
        self._hello_timer = None
        if self._life.on(handshake.TIMEOUT) == handshake.PROCEED:
            self.log.info("{peer} did not finish the opening handshake in time", peer=self.address)
            self._close("session not established in time", WS_CLOSE_POLICY)

    def _on_goodbye_timeout(self) -> None:
        self._goodbye_timer = None
        if self._life.on(handshake.TIMEOUT) == handshake.PROCEED:
            self._close(None, WS_CLOSE_NORMAL)

    def _close(self, reason: str | None, code: int) -> None:
        """Close the transport and forget the session now; the transport's own close is then a no-op here."""
        if self._ended:
            return
        self._end()
        self.channel.close_transport(code, reason)

    def _end(self) -> None:
        """Forget the session: timers, pending authentication, the realm. Idempotent."""
        if self._ended:
            return
        self._ended = True
        self._life.on(handshake.LOST)
        self._cancel_timer("_hello_timer")
        self._cancel_timer("_goodbye_timer")
        self._held = self._pending = None
        self._waiting = False
        if self._opening is not None:
            self._opening.cancel()
        self._leave_realm()

    def _leave_realm(self) -> None:
        requests, self._requests = self._requests, None
        if requests is None:
            return
        requests.close()
        peer = requests.peer
        requests.realm.effects.run(requests.realm.core.leave(peer))
        self.log.info("session {session} left {realm}", session=peer.session_id, realm=peer.realm)

    def _cancel_timer(self, name: str) -> None:
        timer = getattr(self, name)
        if timer is not None and timer.active():
            timer.cancel()
        setattr(self, name, None)


def _refusal_event(refusal: wire.UriRefusal | wire.PayloadRefusal) -> str:
    """A message the parser refused (an invalid URI, a value not every client can read) is still a HELLO or a
    request, as far as the session's life goes."""
    kind = refusal.request_type if type(refusal) is wire.UriRefusal else refusal.message_type
    return handshake.HELLO if kind == wamp.Hello.MESSAGE_TYPE else handshake.REQUEST
