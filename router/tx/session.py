"""The router side of one WAMP connection: handshake, routing through the core, and an orderly end.

The transport protocols (WebSocket, RawSocket) hand this class raw payloads; it never raises back into them.
A peer's mistakes become ABORT or ERROR with a generic text (details go to our log); our own bugs are logged with a
traceback and end the session with a generic reason.
"""

from __future__ import annotations

from collections import deque
from time import perf_counter
from typing import Any

from autobahn.wamp import message as wamp
from twisted.logger import Logger

from router.core import errors
from router.core.peer import Peer
from router.core.realm import ACTIONS, match_of, uri_of
from router.model import (
    ADMIT_KIND,
    DISCONNECT_KIND,
    REJECT_KIND,
    AuthorizationRequest,
    AuthRequest,
    Challenge,
    Decision,
    FlowSession,
    Identity,
    TransportInfo,
)
from router.tx import wire
from router.tx.authentication import Authentication
from router.tx.messages import RateLimited
from router.tx.sendwindow import DISCONNECT, SendWindow
from router.tx.runtime import ListenerRuntime, RealmRuntime, RouterContext

AWAIT_HELLO = "await-hello"
ENDED = "ended"  # GOODBYE done: a new HELLO may follow; late messages of the old session are dropped
AUTHENTICATING = "authenticating"
CHALLENGED = "challenged"
ESTABLISHED = "established"
CLOSING = "closing"
CLOSED = "closed"

# Close codes for the WebSocket side (RawSocket simply closes).
CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1002
CLOSE_POLICY = 1008
CLOSE_INTERNAL_ERROR = 1011

# A session may call this to learn how many events were not delivered to it because it read too slowly.
DROPPED_EVENTS = "wampgate.session.dropped_events"

# Messages held while one awaits an asynchronous authorization decision before the transport stops being read.
MAX_QUEUED = 256


class RouterSession:
    """One connection's session state machine; `channel` is the transport protocol it talks through."""

    log = Logger()
    # Slots: an idle session should cost as little memory as it can (sessions per GiB is a headline figure).
    __slots__ = ("_context", "_listener", "_channel", "_state", "_realm", "_peer", "_identity", "_auth", "_transport",
                 "_hello_roles", "_flow_session", "_waiting", "_queue", "_paused", "_hello_timer", "_goodbye_timer")

    def __init__(self, context: RouterContext, listener: ListenerRuntime, channel: Any):
        self._context = context
        self._listener = listener
        self._channel = channel
        self._state = AWAIT_HELLO
        self._realm: RealmRuntime | None = None
        self._peer: Peer | None = None
        self._identity: Identity | None = None
        self._auth: Authentication | None = None
        self._transport: TransportInfo | None = None
        self._hello_roles: dict = {}
        self._flow_session: FlowSession | None = None
        self._waiting = False  # an authorization decision is pending; inbound messages queue meanwhile
        self._queue: deque | None = None  # made when first needed: most sessions never wait
        self._paused = False
        self._hello_timer = context.clock.callLater(context.limits.hello_timeout, self._on_hello_timeout)
        self._goodbye_timer = None

    # -- called by the transport protocol --------------------------------------------------------------------

    @property
    def state(self) -> str:
        return self._state

    @property
    def peer(self) -> Peer | None:
        return self._peer

    @property
    def flow_session(self) -> FlowSession | None:
        return self._flow_session

    def on_payload(self, payload: bytes, is_binary: bool | None) -> None:
        """One transport message in; nothing escapes to the transport."""
        started = perf_counter()
        traffic = self._context.traffic
        size = len(payload)
        traffic.bytes_in += size
        try:
            items = wire.parse(self._channel.serializer, payload, is_binary)
        except wire.ProtocolViolation as e:
            self._violation(str(e))
            return
        try:
            for item in items:
                if self._state == CLOSED:
                    break
                traffic.messages_in[type(item[0]).__name__ if type(item) is tuple else "invalid"] += 1
                self._arrive(item, size)
            traffic.observe_latency(perf_counter() - started)
        except Exception:
            self.log.failure("internal error while handling a message from {peer}", peer=self._peer_address())
            self._close("internal error", CLOSE_INTERNAL_ERROR)

    def on_close(self) -> None:
        """The transport is gone: leave the realm, cancel timers and pending authentication. Idempotent."""
        if self._state == CLOSED:
            return
        self._state = CLOSED
        self._cancel_timers()
        if self._auth is not None:
            self._auth.cancel()
            self._auth = None
        self._leave_realm()

    # -- dispatch -----------------------------------------------------------------------------------------------

    def _arrive(self, item: wire.Inbound, size: int) -> None:
        """A message as it comes off the wire: flow control first, then in order behind any pending decision."""
        if self._state == ESTABLISHED and type(item) is tuple and not self._admitted(item[0], size):
            return
        if self._waiting:
            self._queue_while_waiting(item)
            return
        self._handle(item)

    def _admitted(self, msg: wamp.Message, size: int) -> bool:
        action = ACTIONS.get(type(msg))
        if action is None:
            return True
        flow = self._context.flow
        verdict = flow.admit(self._flow_session, action, uri_of(msg), size)
        kind = verdict.kind
        if kind == ADMIT_KIND:
            return True
        labels = {"listener": self._flow_session.listener, "realm": self._flow_session.realm}
        answered = type(msg) is not wamp.Publish or msg.acknowledge
        if kind == DISCONNECT_KIND:
            flow.count("flow_disconnect", verdict.reason, **labels)
            self.log.info("session {session} disconnected by flow control: {reason}",
                          session=self._peer.session_id, reason=verdict.reason)
            self._abort(verdict.error or "wampgate.close.rate_limited", "rate limit exceeded for too long")
        elif answered:
            # a request that expects an answer gets one, even for a plugin's "drop": nothing may hang
            flow.count("flow_reject", verdict.reason, **labels)
            self._send(RateLimited(msg.MESSAGE_TYPE, msg.request, verdict.error or "wampgate.error.rate_limited",
                                   verdict.retry_after))
        else:
            reason = "unacknowledged_publish_rate_limited" if kind == REJECT_KIND else verdict.reason
            flow.count("flow_drop", reason, **labels)
        return False

    def _handle(self, item: wire.Inbound) -> None:
        if type(item) is wire.UriRefusal:
            self._on_uri_refusal(item)
            return
        msg, disclose_me = item
        kind = type(msg)
        state = self._state
        if state == ESTABLISHED:
            if kind is wamp.Goodbye:
                self._on_goodbye(msg)
            elif kind is wamp.Hello or kind is wamp.Authenticate:
                self._violation(f"{kind.__name__.upper()} in an established session")
            elif kind is wamp.Abort:
                self._close(None, CLOSE_NORMAL)
            else:
                self._on_request(msg, disclose_me)
        elif state in (AWAIT_HELLO, ENDED) and kind is wamp.Hello:
            self._on_hello(msg)
        elif state == CHALLENGED and kind is wamp.Authenticate:
            self._on_authenticate(msg)
        elif state in (AWAIT_HELLO, CHALLENGED, ENDED) and kind is wamp.Abort:
            self._close(None, CLOSE_NORMAL)
        elif state == CLOSING:
            if kind is wamp.Goodbye:
                self._close(None, CLOSE_NORMAL)
        elif state == ENDED and kind is not wamp.Abort:
            self.log.debug("dropping a late {kind} after GOODBYE", kind=kind.__name__.upper())
        else:
            self._violation(f"{kind.__name__.upper()} while {state}")

    def _on_uri_refusal(self, refusal: wire.UriRefusal) -> None:
        self.log.info("invalid URI from {peer}: {detail}", peer=self._peer_address(), detail=refusal.detail)
        if refusal.request_type == wamp.Hello.MESSAGE_TYPE:
            if self._state in (AWAIT_HELLO, ENDED):
                self._abort(errors.INVALID_URI, "the realm is not a valid URI")
            else:
                self._violation("HELLO while " + self._state)
        elif self._state == ESTABLISHED:
            if refusal.wants_answer:
                self._send(wamp.Error(refusal.request_type, refusal.request, errors.INVALID_URI, args=["invalid URI"]))
        else:
            self._violation(f"request before the session is established ({self._state})")

    # -- opening handshake ---------------------------------------------------------------------------------------

    def _on_hello(self, hello: wamp.Hello) -> None:
        realm = self._context.realms.get(hello.realm) if hello.realm is not None else None
        if realm is None:
            self._abort(errors.NO_SUCH_REALM, "no such realm")
            return
        offered = tuple(hello.authmethods or ("anonymous",))
        methods = self._listener.methods
        chosen = next((m for m in offered if m in methods and methods[m].serves(realm.config.name)), None)
        if chosen is None:
            self.log.info(
                "no acceptable authmethod from {peer}: offered {offered}", peer=self._peer_address(), offered=offered
            )
            self._abort(errors.NO_AUTH_METHOD, "none of the offered authentication methods is allowed here")
            return
        self._realm = realm
        self._hello_roles = hello.roles
        request = AuthRequest(
            session_id=self._context.new_id(),
            realm=realm.config.name,
            authid=hello.authid,
            authmethods=offered,
            authextra=hello.authextra or {},
            transport=self._transport_info(),
        )
        self._state = AUTHENTICATING
        self._auth = Authentication(
            self,
            methods[chosen].authenticator,
            chosen,
            request,
            clock=self._context.clock,
            timeout=self._context.limits.auth_timeout,
            failures=self._context.failures,
            counters=self._context.counters,
        )
        self._auth.start()

    def _on_authenticate(self, msg: wamp.Authenticate) -> None:
        self._state = AUTHENTICATING
        self._auth.answer(msg.signature, msg.extra or {})

    # -- called by Authentication ------------------------------------------------------------------------------

    def challenge(self, challenge: Challenge) -> None:
        if self._state == AUTHENTICATING:
            self._state = CHALLENGED
            self._send(wamp.Challenge(challenge.method, dict(challenge.extra)))

    def authenticated(self, identity: Identity) -> None:
        if self._state == AUTHENTICATING:
            self._welcome(self._auth.request, identity)

    def refused(self) -> None:
        if self._state == AUTHENTICATING:
            self._abort(errors.AUTHENTICATION_FAILED, "authentication failed")

    def _welcome(self, request: AuthRequest, identity: Identity) -> None:
        realm = self._realm
        if identity.authrole not in realm.config.roles:
            self.log.warn(
                "authenticated {authid!r} has role {role!r}, which realm {realm!r} does not define",
                authid=identity.authid,
                role=identity.authrole,
                realm=realm.config.name,
            )
            self._abort(errors.AUTHENTICATION_FAILED, "authentication failed")
            return
        peer = Peer(
            request.session_id,
            realm.config.name,
            authid=identity.authid,
            authrole=identity.authrole,
            authmethod=identity.authmethod,
            authprovider=identity.authprovider,
            authextra=identity.authextra,
            roles=self._hello_roles,
            channel=self._channel,
        )
        flow_session = FlowSession(
            session_id=peer.session_id,
            realm=peer.realm,
            authid=peer.authid,
            authrole=peer.authrole,
            peer=self._transport_info().peer.rsplit(":", 1)[0],
            listener=self._listener.config.name,
        )
        verdict = self._context.flow.admit_session(flow_session)
        if verdict.kind != ADMIT_KIND:
            self.log.info("session for {authid!r} refused by flow control: {reason}", authid=peer.authid,
                          reason=verdict.reason)
            self._abort(verdict.error or "wampgate.error.too_many_sessions", "too many sessions")
            return
        self._flow_session = flow_session
        self._channel.send_window.policy = realm.config.slow_consumer_policy(identity.authrole)
        self._peer, self._identity, self._auth = peer, identity, None
        self._state = ESTABLISHED
        self._cancel_hello_timer()
        self._apply(realm.core.join(peer))
        self._send(
            wamp.Welcome(
                peer.session_id,
                realm.core.router_roles(),
                realm=realm.config.name,
                authid=identity.authid,
                authrole=identity.authrole,
                authmethod=identity.authmethod,
                authprovider=identity.authprovider,
                authextra=dict(identity.authextra) or None,
            )
        )
        self.log.info(
            "session {session} joined {realm} as {authid!r}/{authrole!r} from {peer}",
            session=peer.session_id,
            realm=peer.realm,
            authid=peer.authid,
            authrole=peer.authrole,
            peer=self._peer_address(),
        )

    # -- established session ----------------------------------------------------------------------------------

    def slow_consumer(self, window: SendWindow) -> None:
        """Called by the channel when this session is over its outgoing buffer limit and an EVENT is due."""
        labels = {"listener": self._listener.config.name, "realm": self._realm.config.name if self._realm else ""}
        if window.policy == DISCONNECT:
            self.log.info("session {session} disconnected: a slow consumer over {limit} buffered bytes",
                          session=self._peer.session_id if self._peer else None, limit=window.limit)
            self._context.counters.increment("slow_consumer_disconnect", **labels)
            self.on_close()
            self._channel.abort_transport()
        else:
            self._context.counters.increment("slow_consumer_drop", **labels)

    def _on_request(self, msg: wamp.Message, disclose_me: bool) -> None:
        if type(msg) is wamp.Call and msg.procedure == DROPPED_EVENTS:
            self._send(wamp.Result(msg.request, args=[self._channel.send_window.dropped]))
            return
        realm, peer = self._realm.core, self._peer
        effects = realm.check(peer, msg)
        if effects is not None:
            self._apply(effects)
            return
        action = ACTIONS.get(type(msg))
        if action is None:
            self._route(msg, disclose_me)
            return
        authorization = self._realm.authorization
        decision = authorization.cached(self._identity, action, uri_of(msg), match_of(msg))
        if decision is None:
            decision = authorization.ask(self._authorization_request(action, msg))
        if type(decision) is Decision:
            self._decided(decision, msg, action, disclose_me)
        else:
            self._waiting = True  # keep this session's order: later messages queue until this one is decided
            decision.addCallback(self._on_decision, msg, action, disclose_me)

    def _on_decision(self, decision: Decision, msg: wamp.Message, action: str, disclose_me: bool) -> None:
        self._waiting = False
        if self._state != ESTABLISHED:
            return
        try:
            self._decided(decision, msg, action, disclose_me)
            self._drain()
        except Exception:
            self.log.failure("internal error after an authorization decision for {peer}", peer=self._peer_address())
            self._close("internal error", CLOSE_INTERNAL_ERROR)

    def _decided(self, decision: Decision, msg: wamp.Message, action: str, disclose_me: bool) -> None:
        if not decision.allow:
            self._deny(action, msg)
        else:
            self._route(msg, disclose_me or decision.disclose)

    def _route(self, msg: wamp.Message, disclose: bool) -> None:
        self._apply(self._realm.core.receive(self._peer, msg, disclose=disclose, now=self._context.clock.seconds()))

    def _queue_while_waiting(self, item: wire.Inbound) -> None:
        """Hold a message that arrived while an earlier one awaits its decision; stop reading when many wait."""
        if self._queue is None:
            self._queue = deque()
        self._queue.append(item)
        if len(self._queue) >= MAX_QUEUED and not self._paused:
            self._paused = True
            self._channel.pause_reading()

    def _drain(self) -> None:
        while self._queue and not self._waiting and self._state != CLOSED:
            self._handle(self._queue.popleft())
        if self._paused and (not self._queue or self._state == CLOSED):
            self._paused = False
            self._channel.resume_reading()

    def _authorization_request(self, action: str, msg: wamp.Message) -> AuthorizationRequest:
        return AuthorizationRequest(
            session_id=self._peer.session_id,
            realm=self._peer.realm,
            identity=self._identity,
            transport=self._transport_info(),
            action=action,
            uri=uri_of(msg),
            match=match_of(msg),
        )

    def _deny(self, action: str, msg: wamp.Message) -> None:
        uri = uri_of(msg)
        self.log.info(
            "denied {action} on {uri} to session {session} ({authid!r}/{authrole!r})",
            action=action,
            uri=uri,
            session=self._peer.session_id,
            authid=self._peer.authid,
            authrole=self._peer.authrole,
        )
        if type(msg) is wamp.Publish and not msg.acknowledge:
            self._context.counters.increment("authorization_denied", realm=self._peer.realm, action=action)
            return  # the spec answers a PUBLISH only when it asked for acknowledgement
        text = f"session is not authorized to {action} on '{uri}'"
        self._context.counters.increment("authorization_denied", realm=self._peer.realm, action=action)
        self._send(wamp.Error(msg.MESSAGE_TYPE, msg.request, errors.NOT_AUTHORIZED, args=[text]))

    def _apply(self, effects: list) -> None:
        if effects:
            self._realm.effects.run(effects)

    # -- closing ---------------------------------------------------------------------------------------------

    def _on_goodbye(self, msg: wamp.Goodbye) -> None:
        """Client-initiated close: reply like Crossbar does (`wamp.close.normal`), then await a new HELLO."""
        self._send(wamp.Goodbye(reason=errors.CLOSE_NORMAL))
        self._leave_realm()
        self._state = ENDED
        self._hello_timer = self._context.clock.callLater(self._context.limits.hello_timeout, self._on_hello_timeout)

    def goodbye(self, reason: str, message: str | None = None) -> None:
        """Router-initiated close: GOODBYE, then wait for the client's reply (bounded) before closing."""
        if self._state != ESTABLISHED:
            self._close(None, CLOSE_NORMAL)
            return
        self._send(wamp.Goodbye(reason=reason, message=message))
        self._leave_realm()
        self._state = CLOSING
        self._goodbye_timer = self._context.clock.callLater(
            self._context.limits.goodbye_timeout, self._close, None, CLOSE_NORMAL
        )

    def abort(self, reason: str, message: str) -> None:
        """End the session with ABORT and close the transport (used by effects aimed at this session)."""
        self._abort(reason, message)

    def _abort(self, reason: str, message: str, code: int = CLOSE_NORMAL) -> None:
        if self._state == CLOSED:
            return
        self._send(wamp.Abort(reason, message))
        self._close(None, code)

    def _violation(self, detail: str) -> None:
        self.log.info("protocol violation by {peer}: {detail}", peer=self._peer_address(), detail=detail)
        self._abort(errors.PROTOCOL_VIOLATION, "protocol violation", CLOSE_PROTOCOL_ERROR)

    def _on_hello_timeout(self) -> None:
        self._hello_timer = None
        if self._state in (AWAIT_HELLO, AUTHENTICATING, CHALLENGED, ENDED):
            self.log.info("{peer} did not finish the opening handshake in time", peer=self._peer_address())
            self._close("session not established in time", CLOSE_POLICY)

    def _close(self, reason: str | None, code: int) -> None:
        """Close the transport and forget the session now; the transport's own close is then a no-op here."""
        if self._state == CLOSED:
            return
        self.on_close()
        self._channel.close_transport(code, reason)

    def _leave_realm(self) -> None:
        peer, realm = self._peer, self._realm
        self._peer = None
        if self._flow_session is not None:
            self._context.flow.session_closed(self._flow_session)
            self._flow_session = None
        if peer is not None and realm is not None:
            self._apply(realm.core.leave(peer))
            self.log.info("session {session} left {realm}", session=peer.session_id, realm=peer.realm)

    def _cancel_timers(self) -> None:
        self._cancel_hello_timer()
        if self._goodbye_timer is not None and self._goodbye_timer.active():
            self._goodbye_timer.cancel()
        self._goodbye_timer = None

    def _cancel_hello_timer(self) -> None:
        if self._hello_timer is not None and self._hello_timer.active():
            self._hello_timer.cancel()
        self._hello_timer = None

    # -- helpers ----------------------------------------------------------------------------------------------

    def _send(self, msg: wamp.Message) -> None:
        """Answer this session; a reply the client cannot take (over its announced size) ends the connection."""
        if not self._channel.send_message(msg):
            self._close(None, CLOSE_POLICY)

    def _transport_info(self) -> TransportInfo:
        if self._transport is None:
            self._transport = self._channel.transport_info()
        return self._transport

    def _peer_address(self) -> str:
        """For logs: never raises, so error handlers can use it."""
        try:
            return self._transport_info().peer
        except Exception:
            return "unknown peer"
