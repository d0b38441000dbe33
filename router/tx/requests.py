"""An established session's requests, in order: flow control, then authorization, then the realm's core.

Order: WAMP keeps each session's messages in order. When an authorizer answers later (a Deferred), the session
holds every message behind it (see RouterSession.await_decision) until this request is decided.

Inbound backpressure: a request flow control refuses pauses reading from the connection until its allowance
refills (at most MAX_READ_PAUSE seconds at a time), so a flooder costs no decoding while it waits; what was already
read waits in the session (see RouterSession.on_payload) and is handled, in order, when reading resumes.

Testaments (router/core/testaments.py): `wamp.session.add_testament` and `flush_testaments` act only on the caller's
own session, so their CALL needs no "call" permission (the `wamp.` space stays closed to every other procedure
without an explicit rule). Adding one needs the right to PUBLISH on its topic, which the core cannot ask for: it is
asked here, through the same cached path as a PUBLISH, after the core checked the topic. A client's GOODBYE is told
to the realm before the session leaves, so its `destroyed` testaments are not published.

Payload validators (wampgate.interfaces.IPayloadValidator, per realm) are asked after the authorizer allowed a
PUBLISH or CALL and before the realm routes it: an invalid one is refused with invalid_argument (an unacknowledged
PUBLISH is dropped) and counted in `payload_invalid`, so it is never delivered. A testament is checked as a PUBLISH
on its topic when it is added. A payload in passthrough form (opaque bytes) is exempt: the router cannot read it.

`wamp.subscription.get_events` needs no "call" permission either: it answers only a session that holds the
subscription, with the events that subscription covers (router/core/meta.py), and the right to subscribe was
checked when it subscribed (and a reload that withdraws it ends the subscription).
"""

from __future__ import annotations

from typing import Any

from autobahn.wamp import message as wamp
from twisted.logger import Logger

from wampgate.core import errors
from wampgate.core.meta import GET_EVENTS
from wampgate.core.passthru import is_opaque
from wampgate.core.peer import Peer
from wampgate.core.realm import ACTIONS, match_of, uri_of
from wampgate.core.replies import refusal, wants_answer
from wampgate.core.testaments import ADD_TESTAMENT, PROCEDURES as TESTAMENT_PROCEDURES
from wampgate.model import ADMIT_KIND, DISCONNECT_KIND, REJECT_KIND, AuthorizationRequest, Decision, FlowSession, Identity
from wampgate.tx import wire
from wampgate.tx.channel import PAUSED_FOR_FLOW
from wampgate.tx.messages import RateLimited
from wampgate.tx.runtime import RealmRuntime, RouterContext
from wampgate.uri import EXACT

# The longest reading stays paused for one flow-control refusal (an hourly quota's retry_after may be an hour; a
# connection not read that long could not even say GOODBYE).
MAX_READ_PAUSE = 2.0
# A session may call this to learn how many events were not delivered to it because it read too slowly.
DROPPED_EVENTS = "wampgate.session.dropped_events"
# Metered like a CALL: answers to INVOCATIONs (a YIELD, progressive or final, or an ERROR).
YIELD_ACTION = "yield"


def _metered(msg: wamp.Message) -> tuple[str, str] | None:
    """(action, uri) flow control meters this message under, or None for messages it does not meter."""
    kind = type(msg)
    action = ACTIONS.get(kind)
    if action is not None:
        return action, uri_of(msg)
    if kind is wamp.Yield or (kind is wamp.Error and msg.request_type == wamp.Invocation.MESSAGE_TYPE):
        return YIELD_ACTION, ""
    return None


def _own_session_permission(msg: wamp.Call) -> tuple[str, str, str] | None:
    """What a CALL to a procedure acting on the caller's own session must be allowed: adding a testament is judged
    as a publish on its topic; flushing testaments and reading one's own subscription's history need nothing (see
    the module's docstring)."""
    return ("publish", msg.args[0], EXACT) if msg.procedure == ADD_TESTAMENT else None


# CALLs answered for, or acting only on, the caller's own session: no "call" permission on them is needed.
_OWN_SESSION_PROCEDURES = frozenset({DROPPED_EVENTS, GET_EVENTS, *TESTAMENT_PROCEDURES})


class RequestQueue:
    """The requests of one established session. `session` is the RouterSession (send, abort, close)."""

    log = Logger()
    __slots__ = ("_session", "_context", "_realm", "peer", "identity", "flow_session", "_resume_timer", "_closed",
                 "_dropping")

    def __init__(self, session: Any, context: RouterContext, realm: RealmRuntime, peer: Peer, identity: Identity,
                 flow_session: FlowSession):
        self._session = session
        self._context = context
        self._realm = realm
        self.peer = peer
        self.identity = identity
        self.flow_session = flow_session
        self._resume_timer = None
        self._closed = False
        self._dropping = False  # in a spell of unacknowledged publishes dropped by flow control (logged once)

    @property
    def realm(self) -> RealmRuntime:
        return self._realm

    def receive(self, item: wire.Inbound, size: int) -> None:
        """One request off the wire (the session keeps it in order behind any pending decision): flow control,
        then authorization, then the realm."""
        if type(item) is tuple:
            item = self._admitted(item, size)
            if item is None:
                return
        self._handle(item)

    def close(self) -> None:
        """The session leaves: flow control forgets it and timers stop; a decision arriving later is ignored."""
        self._closed = True
        if self._resume_timer is not None and self._resume_timer.active():
            self._resume_timer.cancel()
        self._resume_timer = None
        self._context.flow.session_closed(self.flow_session)

    # -- flow control ----------------------------------------------------------------------------------------------

    def _admitted(self, item: tuple, size: int) -> tuple | None:
        """The request if flow control admits it; None when it was refused (and answered, when it wants an
        answer; a refused YIELD or callee ERROR ends its call with the refusal)."""
        msg = item[0]
        metered = _metered(msg)
        if metered is None:
            return item
        flow = self._context.flow
        verdict = flow.admit(self.flow_session, metered[0], metered[1], size)
        kind = verdict.kind
        if kind == ADMIT_KIND:
            if self._dropping and type(msg) is wamp.Publish:
                self._dropping = False  # the spell is over: the next drop is logged again
            return item
        labels = {"listener": self.flow_session.listener, "realm": self.flow_session.realm}
        error = verdict.error or errors.RATE_LIMITED
        if kind == DISCONNECT_KIND:
            flow.count("flow_disconnect", verdict.reason, **labels)
            self.log.info("session {session} disconnected by flow control: {reason}",
                          session=self.peer.session_id, reason=verdict.reason)
            self._session.abort(verdict.error or errors.RATE_LIMITED_CLOSE, "rate limit exceeded for too long")
            return None
        self._pause_for(verdict.retry_after)
        if metered[0] == YIELD_ACTION:
            # an answer cannot be dropped (its caller would wait forever): the call ends with the refusal instead,
            # and a callee still sending progressive results is interrupted (its later answers are dropped as late)
            flow.count("flow_reject", verdict.reason, **labels)
            final = type(msg) is not wamp.Yield or not msg.progress
            self._session.apply(self._realm.core.dealer.refuse_answer(
                self.peer, msg.request, final=final, error=error, text="the callee exceeded its rate limit"))
            return None
        if wants_answer(msg):
            # a request that expects an answer gets one, even for a plugin's "drop": nothing may hang
            flow.count("flow_reject", verdict.reason, **labels)
            self._session.send(RateLimited(msg.MESSAGE_TYPE, msg.request, error, verdict.retry_after))
        else:
            reason = "unacknowledged_publish_rate_limited" if kind == REJECT_KIND else verdict.reason
            flow.count("flow_drop", reason, **labels)
            self._log_drop(metered[1], reason)
        return None

    def _log_drop(self, uri: str, reason: str) -> None:
        """The first unacknowledged publish flow control drops in a spell is logged; the rest of the spell (until
        one is admitted again) is only counted, in wampgate_flow_drop_total."""
        if self._dropping:
            return
        self._dropping = True
        self.log.info("unacknowledged publish on {uri} from session {session} ({authid!r}, {peer}) dropped by flow "
                      "control: {reason}; further drops are counted, not logged, until one is admitted again",
                      uri=uri, session=self.peer.session_id, authid=self.peer.authid, peer=self._session.address,
                      reason=reason)

    def _pause_for(self, retry_after: float | None) -> None:
        """Stop reading until the allowance refills: a flooder's further messages are not even decoded."""
        if not retry_after or self._resume_timer is not None:
            return
        channel = self._session.channel
        channel.pause_reading(PAUSED_FOR_FLOW)
        self._resume_timer = self._context.clock.callLater(min(retry_after, MAX_READ_PAUSE), self._resume)

    def _resume(self) -> None:
        """The allowance refilled: first what the session already holds (it was read earlier), then the channel."""
        self._resume_timer = None
        self._session.read_held()
        if self._resume_timer is None:  # not paused again by a held message
            self._session.channel.resume_reading(PAUSED_FOR_FLOW)

    @property
    def reading_paused(self) -> bool:
        return self._resume_timer is not None

    # -- order and authorization -----------------------------------------------------------------------------------

    def _handle(self, item: wire.Inbound) -> None:
        if type(item) is wire.UriRefusal:
            self._refuse_uri(item)
            return
        if type(item) is wire.PayloadRefusal:
            self._refuse_payload(item)
            return
        msg, disclose_me = item
        kind = type(msg)
        own_session = kind is wamp.Call and msg.procedure in _OWN_SESSION_PROCEDURES
        if own_session and msg.procedure == DROPPED_EVENTS:
            self._session.send(wamp.Result(msg.request, args=[self._session.channel.budget.dropped]))
            return
        effects = self._realm.core.check(self.peer, msg)
        if effects is not None:
            self._session.apply(effects)
            return
        if own_session:
            permission = _own_session_permission(msg)
            disclose_me = False  # a testament: the CALL's own disclose_me says nothing about its event
        else:
            action = ACTIONS.get(kind)
            permission = None if action is None else (action, uri_of(msg), match_of(msg))
        if permission is None:
            self._route(msg, disclose_me)
            return
        authorization = self._realm.authorization
        decision = authorization.cached(self.identity, *permission)
        if decision is None:
            decision = authorization.ask(self._authorization_request(*permission))
        if type(decision) is Decision:
            self._decided(decision, msg, permission, disclose_me)
        else:
            self._session.await_decision()  # keep this session's order: later messages wait for this one
            decision.addCallback(self._on_decision, msg, permission, disclose_me)

    def _refuse_uri(self, item: wire.UriRefusal) -> None:
        self.log.info("invalid URI from {peer}: {detail}", peer=self._session.address, detail=item.detail)
        if item.wants_answer:
            self._session.send(wamp.Error(item.request_type, item.request, errors.INVALID_URI, args=["invalid URI"]))

    def _refuse_payload(self, item: wire.PayloadRefusal) -> None:
        """A value not every client can read: the request is answered with invalid_argument (an unacknowledged
        PUBLISH is dropped); a callee's answer ends its call (see Dealer.refuse_answer)."""
        self.log.info("refused payload from {peer}: {detail}", peer=self._session.address, detail=item.detail)
        if item.invocation is not None:
            self._session.apply(self._realm.core.dealer.refuse_answer(self.peer, item.invocation, final=item.final))
        elif item.answer is not None:
            self._session.send(item.answer)

    def _on_decision(self, decision: Decision, msg: wamp.Message, permission: tuple, disclose_me: bool) -> None:
        if self._closed:
            return
        try:
            if not self._decided(decision, msg, permission, disclose_me):
                self._session.decision_done()
        except Exception:
            self.log.failure("internal error after an authorization decision for {peer}", peer=self._session.address)
            self._session.fail()

    def _decided(self, decision: Decision, msg: wamp.Message, permission: tuple, disclose_me: bool) -> bool:
        """Act on the decision; True when routing waits for the cluster (which then ends the wait)."""
        if not decision.allow:
            self._deny(permission[0], permission[1], msg, decision.denied_by)
        elif self._realm.validators and self._payload_invalid(msg, permission):
            return False
        else:
            return self._route(msg, disclose_me or decision.disclose)
        return False

    def _payload_invalid(self, msg: wamp.Message, permission: tuple) -> bool:
        """Whether a validator refused this request's payload (and the refusal was answered and counted)."""
        kind = type(msg)
        if (kind is not wamp.Publish and kind is not wamp.Call) or is_opaque(msg):
            return False  # nothing to check, or a passthrough payload (either form) the router cannot read
        action, uri = permission[0], permission[1]
        args, kwargs = msg.args, msg.kwargs
        if kind is wamp.Call and action == "publish":  # a testament: its event's payload
            args = msg.args[1] if len(msg.args) > 1 and type(msg.args[1]) is list else None
            kwargs = msg.args[2] if len(msg.args) > 2 and type(msg.args[2]) is dict else None
        problem = self._validation_problem(action, uri, args, kwargs)
        if problem is None:
            return False
        peer = self.peer
        self.log.info("invalid {action} payload on {uri} from session {session} ({authid!r}): {problem}",
                      action=action, uri=uri, session=peer.session_id, authid=peer.authid, problem=problem)
        self._context.counters.increment("payload_invalid", realm=peer.realm, action=action)
        answer = refusal(msg, errors.INVALID_ARGUMENT, problem)
        if answer is not None:
            self._session.send(answer)
        return True

    def _validation_problem(self, action: str, uri: str, args: Any, kwargs: Any) -> str | None:
        """The first validator's objection, or None. A validator that fails or answers oddly refuses (fail closed)."""
        for validator in self._realm.validators:
            try:
                problem = validator.validate(action, uri, args, kwargs)
            except Exception:
                self.log.failure("payload validator {validator} failed on {uri}", validator=type(validator).__name__,
                                 uri=uri)
                return "the payload could not be validated"
            if problem is not None:
                return problem if type(problem) is str else "the payload could not be validated"
        return None

    def _route(self, msg: wamp.Message, disclose: bool) -> bool:
        """Hand the request to the realm; True when it first waits for the cluster (see router/tx/cluster)."""
        link = self._realm.effects.cluster
        if link is not None:
            kind = type(msg)
            if kind is wamp.Subscribe or kind is wamp.Register or kind is wamp.Call:
                waiting = link.before(self.peer, msg)
                if waiting is not None:
                    self._session.await_decision()  # this session's later messages wait behind this one
                    waiting.addCallback(self._route_after_cluster, msg, disclose, link)
                    return True
                self._route_now(msg, disclose)
                link.after(self.peer, msg)
                return False
        self._route_now(msg, disclose)
        return False

    def _route_now(self, msg: wamp.Message, disclose: bool) -> None:
        self._session.apply(self._realm.core.receive(self.peer, msg, disclose=disclose,
                                                     now=self._context.clock.seconds()))

    def _route_after_cluster(self, answer: wamp.Message | None, msg: wamp.Message, disclose: bool, link: Any) -> None:
        """The cluster answered: a refusal (`answer`, an ERROR) goes to the client, else the request is routed."""
        try:
            if not self._closed:
                if answer is not None:
                    self._session.send(answer)
                else:
                    self._route_now(msg, disclose)
            link.after(self.peer, msg)
            if not self._closed:
                self._session.decision_done()
        except Exception:
            self.log.failure("internal error routing a request after the cluster answered, for {peer}",
                             peer=self._session.address)
            self._session.fail()

    def _authorization_request(self, action: str, uri: str, match: str) -> AuthorizationRequest:
        return AuthorizationRequest(
            session_id=self.peer.session_id,
            realm=self.peer.realm,
            identity=self.identity,
            transport=self._session.transport_info(),
            action=action,
            uri=uri,
            match=match,
        )

    def _deny(self, action: str, uri: str, msg: wamp.Message, denied_by: str = "") -> None:
        peer = self.peer
        self.log.info("denied {action} on {uri} to session {session} ({authid!r}/{authrole!r}) by {denied_by}",
                      action=action, uri=uri, session=peer.session_id, authid=peer.authid, authrole=peer.authrole,
                      denied_by=denied_by or "the authorizer chain")
        self._context.counters.increment("authorization_denied", realm=peer.realm, action=action)
        answer = refusal(msg, errors.NOT_AUTHORIZED, f"session is not authorized to {action} on '{uri}'")
        if answer is not None:
            self._session.send(answer)
