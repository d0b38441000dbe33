"""The router-side sessions of the HTTP bridge: each HTTP request is one WAMP request of a session joined to the
bridge's realm, so it takes the very path a WebSocket session's PUBLISH or CALL takes (RequestQueue: flow control,
authorization, payload validation, the realm's core) and its events reach subscribers through the normal broker.

One session per identity (authid, authrole, authmethod) and client address, so flow control charges an HTTP client
as it charges a WAMP client: its session, authid, role and peer-address meters. The sessions of a bridge are bounded
(`max_sessions`: beyond it the one idle longest leaves) and leave after `session_idle_timeout` without requests.

A session's channel writes nothing: the answer to each request (PUBLISHED, RESULT, ERROR) resolves that request's
Deferred, as the router's own caller does (router/tx/router_caller.py).
"""

from __future__ import annotations

from collections import OrderedDict

import autobahn.twisted  # noqa: F401  selects Twisted for txaio before autobahn's serializers are imported (wire)
from autobahn.wamp import message as wamp
from autobahn.wamp.role import RoleCallerFeatures, RolePublisherFeatures
from twisted.internet import defer
from twisted.logger import Logger
from zope.interface import implementer

from wampgate.config import BridgeConfig
from wampgate.core import errors
from wampgate.core.peer import Peer
from wampgate.model import ADMIT_KIND, FlowSession, Identity, TransportInfo
from wampgate.tx import wire
from wampgate.tx.channel import IChannel
from wampgate.tx.requests import RequestQueue
from wampgate.tx.runtime import RealmRuntime, RouterContext

ROLES = {"publisher": RolePublisherFeatures(publisher_exclusion=True, subscriber_blackwhite_listing=True,
                                            publisher_identification=True),
         "caller": RoleCallerFeatures(call_canceling=True, call_timeout=True, caller_identification=True)}


class Refused(Exception):
    """The request cannot be taken: `error` (a WAMP URI) with `text`; `retry_after` for a flow-control refusal."""

    def __init__(self, error: str, text: str, retry_after: float = 0.0):
        super().__init__(text)
        self.error = error
        self.text = text
        self.retry_after = retry_after


class _Budget:
    """What the router reads of a channel's outgoing budget (reload, `dropped_events`): nothing is ever held."""

    dropped = 0
    limit = 0
    policy = "drop"


@implementer(IChannel)
class BridgeChannel:
    """A bridge session's channel: each answer resolves the Deferred of the request it answers."""

    serializer = None

    def __init__(self, info: TransportInfo):
        self.session: BridgeSession | None = None
        self.budget = _Budget()
        self.pending: dict[int, defer.Deferred] = {}
        self._info = info

    def send_message(self, msg: wamp.Message) -> None:
        d = self.pending.pop(getattr(msg, "request", None), None)
        if d is not None:
            d.callback(msg)
        return None

    def pause_reading(self, reason: str) -> None:
        """Nothing to pause: every HTTP request meets flow control on its own."""

    def resume_reading(self, reason: str) -> None:
        pass

    def close_transport(self, code: int, reason: str | None) -> None:
        if self.session is not None:
            self.session.leave()

    def abort_transport(self) -> None:
        self.close_transport(0, None)

    def transport_info(self) -> TransportInfo:
        return self._info

    def fail_pending(self, error: str, text: str) -> None:
        pending, self.pending = self.pending, {}
        for d in pending.values():
            d.errback(Refused(error, text))


class BridgeSession:
    """What RequestQueue asks of its session (send, apply, abort, address, ...) for one bridge identity."""

    log = Logger()

    def __init__(self, context: RouterContext, realm: RealmRuntime, peer: Peer, identity: Identity,
                 flow_session: FlowSession, channel: BridgeChannel, on_leave):
        self._context = context
        self.channel = channel
        channel.session = self
        self.peer = peer
        self.flow_session = flow_session
        self.address = channel.transport_info().peer
        self._requests = RequestQueue(self, context, realm, peer, identity, flow_session)
        self._next_request = 0
        self._on_leave = on_leave
        self._idle_timer = None
        self.left = False

    @property
    def busy(self) -> bool:
        return bool(self.channel.pending)

    def request(self, build, size: int) -> tuple[int, defer.Deferred]:
        """Send the request `build(request_id)` makes (a raw WAMP message: a list) through the session's
        RequestQueue: its id, and a Deferred firing with the answer (PUBLISHED, RESULT or ERROR) or failing with
        Refused. Raises wire.ProtocolViolation for a message the wire would refuse as malformed."""
        self._next_request += 1
        request_id = self._next_request
        item = wire.parse_value(build(request_id), self._context.limits.max_nesting)
        d = defer.Deferred()
        self.channel.pending[request_id] = d
        try:
            self._requests.receive(item, size)
        except Exception:
            self.log.failure("internal error while handling a bridge request from {peer}", peer=self.address)
            self.channel.pending.pop(request_id, None)
            return request_id, defer.fail(Refused("wampgate.error.internal", "internal error"))
        return request_id, d

    def cancel(self, request_id: int) -> None:
        """The HTTP client went away: cancel its call (the dealer interrupts the callee)."""
        if request_id in self.channel.pending and not self.left:
            self._requests.receive((wamp.Cancel(request_id, mode="killnowait"), False), 0)

    # -- what RequestQueue and the effect runner call -------------------------------------------------------------

    def send(self, msg: wamp.Message) -> None:
        self.channel.send_message(msg)

    def apply(self, effects: list) -> None:
        if effects:
            self._requests.realm.effects.run(effects)

    def transport_info(self) -> TransportInfo:
        return self.channel.transport_info()

    def abort(self, reason: str, message: str) -> None:
        """Flow control ended the session (over its limits for too long): its requests are refused alike."""
        self.channel.fail_pending(reason if reason != errors.RATE_LIMITED_CLOSE else errors.RATE_LIMITED, message)
        self.leave()

    def goodbye(self, reason: str, message: str | None = None) -> None:
        """The router ends the session (shutdown, `wamp.session.kill`): its requests in flight get 503."""
        self.channel.fail_pending(errors.UNAVAILABLE, "the bridge session was closed; retry")
        self.leave()

    def fail(self) -> None:
        self.channel.fail_pending("wampgate.error.internal", "internal error")
        self.leave()

    def await_decision(self) -> None:
        """HTTP requests have no order among them: nothing waits behind a pending authorization."""

    def decision_done(self) -> None:
        pass

    def read_held(self) -> None:
        pass

    # -- life ---------------------------------------------------------------------------------------------------

    def touch(self, timeout: float) -> None:
        if self._idle_timer is not None and self._idle_timer.active():
            self._idle_timer.reset(timeout)
        else:
            self._idle_timer = self._context.clock.callLater(timeout, self._on_idle, timeout)

    def _on_idle(self, timeout: float) -> None:
        self._idle_timer = None
        if self.busy:
            self.touch(timeout)
        else:
            self.leave()

    def leave(self) -> None:
        if self.left:
            return
        self.left = True
        if self._idle_timer is not None and self._idle_timer.active():
            self._idle_timer.cancel()
        self._idle_timer = None
        self.channel.fail_pending(errors.CANCELED, "the bridge session ended")
        requests = self._requests
        requests.close()
        requests.realm.effects.run(requests.realm.core.leave(self.peer))
        self._on_leave(self)


class BridgeSessions:
    """The sessions of one bridge, by (identity, client address), the one used longest ago first."""

    log = Logger()

    def __init__(self, context: RouterContext, config: BridgeConfig, listener: str, secure_listener: bool):
        self._context = context
        self._config = config
        self._listener = listener
        self._secure = secure_listener
        self._sessions: OrderedDict[tuple, BridgeSession] = OrderedDict()

    def __len__(self) -> int:
        return len(self._sessions)

    def session(self, identity: Identity, host: str) -> BridgeSession:
        """The session acting for `identity` from `host` (e.g. "tcp4:127.0.0.1"); raises Refused."""
        key = (identity.authid, identity.authrole, identity.authmethod, host)
        session = self._sessions.get(key)
        if session is None or session.left:
            self._make_room()
            session = self._join(key, identity, host)
            self._sessions[key] = session
        else:
            self._sessions.move_to_end(key)
        session.touch(self._config.session_idle_timeout)
        return session

    def _make_room(self) -> None:
        if len(self._sessions) < self._config.max_sessions:
            return
        for key, session in self._sessions.items():
            if not session.busy:
                session.leave()
                return
        raise Refused(errors.UNAVAILABLE, "the bridge is busy; retry later", 1.0)

    def _join(self, key: tuple, identity: Identity, host: str) -> BridgeSession:
        context = self._context
        realm = context.realms.get(self._config.realm)
        if realm is None:  # the config checks it; a realm is never removed without a restart
            raise Refused(errors.NO_SUCH_REALM, "no such realm")
        if identity.authrole not in realm.config.roles:
            self.log.warn("bridge {bridge}: role {role!r} of {authid!r} is not a role of realm {realm!r}",
                          bridge=self._config.name, role=identity.authrole, authid=identity.authid,
                          realm=realm.config.name)
            raise Refused(errors.AUTHENTICATION_FAILED, "authentication failed")
        session_id = context.new_id()
        flow_session = FlowSession(session_id=session_id, realm=realm.config.name, authid=identity.authid,
                                   authrole=identity.authrole, authmethod=identity.authmethod, peer=host,
                                   listener=self._listener)
        verdict = context.flow.admit_session(flow_session)
        if verdict.kind != ADMIT_KIND:
            raise Refused(verdict.error or errors.TOO_MANY_SESSIONS, "too many sessions", verdict.retry_after or 1.0)
        info = TransportInfo(listener=self._listener, kind="http", peer=host, is_secure=self._secure,
                             serializer="json")
        channel = BridgeChannel(info)
        peer = Peer(session_id, realm.config.name, authid=identity.authid, authrole=identity.authrole,
                    authmethod=identity.authmethod, authprovider=identity.authprovider,
                    authextra=identity.authextra, roles=ROLES, channel=channel)
        session = BridgeSession(context, realm, peer, identity, flow_session, channel, self._forget)
        realm.effects.run(realm.core.join(peer))
        self.log.info("bridge {bridge}: session {session} joined {realm} as {authid!r}/{authrole!r} for {peer}",
                      bridge=self._config.name, session=session_id, realm=realm.config.name, authid=identity.authid,
                      authrole=identity.authrole, peer=host)
        return session

    def _forget(self, session: BridgeSession) -> None:
        for key, held in list(self._sessions.items()):
            if held is session:
                del self._sessions[key]

    def close(self) -> None:
        for session in list(self._sessions.values()):
            session.leave()
