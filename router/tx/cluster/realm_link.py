"""One realm's side of the cluster: what its local sessions do goes out to the other nodes, what theirs do comes in.

* Pub/sub: a local PUBLISH (the core's `Published` effect) goes to the engine channels of router/core/interest.py;
  an event arriving on a channel this node listens on is delivered to the local subscriptions that channel feeds,
  with the publish options honoured by the broker exactly as for a local publisher. SUBSCRIBE is answered only once
  Redis confirmed the node listens for it, so "subscribed here, then published there" always arrives.
* RPC: every node's dealer holds the cluster's registrations, other nodes' callees as remote peers. A call the
  local dealer routes to a remote callee goes to that callee's node, which runs it through its own dealer on that
  very callee; results, errors and interrupts travel back and forth by request id (`rid`, unique per origin node).
  Registrations are claimed in Redis first (router/tx/cluster/scripts.py), so `single` holds cluster-wide.
* Presence: sessions joining and leaving are written to Redis and announced to the other nodes, whose meta API then
  lists them and tells `wamp.session.on_join` / `on_leave` watchers.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from autobahn.wamp import message as wamp
from twisted.internet import defer
from twisted.logger import Logger

from wampgate.core import errors
from wampgate.core.effects import Callee, Interest, Joined, Left, Published
from wampgate.core.interest import interest_channel, pattern_bucket, publication_channels
from wampgate.core.meta import session_details
from wampgate.core.peer import Peer
from wampgate.core.testaments import PROCEDURES as TESTAMENT_PROCEDURES
from wampgate.tx.cluster import envelope
from wampgate.uri import EXACT

# Meta procedures that read the cluster's sessions: answered once the announcements already sent to this node are in.
SYNCED_META = frozenset({"wamp.session.count", "wamp.session.list", "wamp.session.get"})
# The callee features a remote callee's peer carries, so this node's dealer treats it as its own node would.
CALLEE_FEATURES = ("progressive_call_results", "call_canceling", "caller_identification", "call_timeout",
                   "shared_registration", "pattern_based_registration", "registration_revocation")


def callee_features(peer: Peer) -> dict:
    return {name: True for name in CALLEE_FEATURES if peer.supports("callee", name)}


def directory_entry(peer: Peer, invoke: str) -> str:
    """What the registration directory holds for one callee (the CLAIM script reads its `invoke`)."""
    return json.dumps({"invoke": invoke, "features": callee_features(peer), "authid": peer.authid,
                       "authrole": peer.authrole})


class RemoteChannel:
    """How this node reaches a session of another node: INVOCATION and INTERRUPT when it is a callee here, RESULT
    and ERROR when it called a callee here. Anything else is never addressed to a remote peer."""

    __slots__ = ("_link", "node", "session_id", "session")

    def __init__(self, link: RealmLink, node: str, session_id: int):
        self._link = link
        self.node = node
        self.session_id = session_id
        self.session = None  # not a local session: Abort and Kick effects pass it by

    def send_message(self, message: wamp.Message) -> str | None:
        self._link.to_remote(self.node, self.session_id, message)
        return None


class RealmLink:
    """The cluster link of one realm; built and driven by the ClusterNode (router/tx/cluster/node.py)."""

    log = Logger()

    def __init__(self, node: Any, runtime: Any, *, depth: int, linger: float, clock: Any):
        self._node = node
        self._runtime = runtime  # RealmRuntime: .core (Realm), .effects (EffectRunner)
        self.name = runtime.config.name if hasattr(runtime, "config") else runtime.core.name
        self._depth = depth
        self._linger = linger
        self._clock = clock
        self._interest: dict[bytes, int] = {}  # channel -> local subscriptions (and SUBSCRIBEs on their way) it feeds
        self._unsubscribe_timers: dict[bytes, Any] = {}
        self._buckets: dict[tuple[str, str], str | None] = {}  # (uri, match) -> bucket, for dispatching bucket traffic
        self._next_rid = 0
        self._outbound: dict[int, tuple[Peer, int, int]] = {}  # rid -> (remote callee, invocation id, caller)
        self._outbound_by_callee: dict[tuple[int, int], int] = {}  # (callee session, invocation) -> rid
        self._claims: dict[tuple[int, str, str], str] = {}  # (local session, uri, match) -> directory field
        self._callees: dict[int, set[tuple[str, str]]] = {}  # local session -> its (uri, match) in the directory
        self._authids: dict[str, int] = {}  # authid -> its sessions on other nodes
        self._counted_sessions: dict[int, str] = {}  # remote session -> the authid it is counted under
        runtime.core.share()
        runtime.effects.cluster = self

    @property
    def core(self) -> Any:
        return self._runtime.core

    def run(self, effects: list) -> None:
        if effects:
            self._runtime.effects.run(effects)

    # -- effects from the core (EffectRunner.run) -----------------------------------------------------------------

    def apply(self, effect: Any) -> None:
        kind = type(effect)
        if kind is Published:
            self.published(effect)
        elif kind is Joined:
            self._joined(effect.peer)
        elif kind is Left:
            self._left(effect.peer)
        elif kind is Interest:
            self._interest_changed(effect)
        elif kind is Callee:
            self._callee_changed(effect)

    def published(self, effect: Published) -> None:
        node = self._node
        try:
            data = envelope.event(node.name, self.name, effect.publisher, effect.publish, effect.publication,
                                  effect.disclose)
        except Exception as e:  # a value MessagePack cannot carry (an integer beyond 64 bits)
            node.count("cluster_dropped", reason="unencodable")
            self.log.info("event on {topic} not sent to other nodes: {error}", topic=effect.publish.topic, error=e)
            return
        for channel in publication_channels(self.name, effect.publish.topic, self._depth):
            node.publish(channel, data)
        node.count("cluster_events_out")

    # -- pub/sub -----------------------------------------------------------------------------------------------------

    def before(self, peer: Peer, msg: wamp.Message) -> defer.Deferred | None:
        """What a SUBSCRIBE, REGISTER or CALL waits for before the realm routes it (None: nothing); the Deferred
        fires with None (route it) or the ERROR to answer instead. `after` is called once it was routed (or not)."""
        kind = type(msg)
        if kind is wamp.Subscribe:
            return self._before_subscribe(msg)
        if kind is wamp.Register:
            return self.before_register(peer, msg)
        procedure = msg.procedure
        if procedure in SYNCED_META or (procedure not in self.core.meta.procedures
                                        and procedure not in TESTAMENT_PROCEDURES and self.needs_sync(msg)):
            return self._node.sync()
        return None

    def after(self, peer: Peer, msg: wamp.Message) -> None:
        kind = type(msg)
        if kind is wamp.Subscribe:
            self._release(interest_channel(self.name, msg.topic, msg.match or EXACT, self._depth))
        elif kind is wamp.Register:
            self.after_register(peer, msg)

    def _before_subscribe(self, msg: wamp.Subscribe) -> defer.Deferred | None:
        """Listen for the subscription's events before SUBSCRIBED goes out (None: already listening). The
        reference taken here keeps the channel until `after`; the subscription holds its own (Interest effect)."""
        channel = interest_channel(self.name, msg.topic, msg.match or EXACT, self._depth)
        self._hold(channel)
        return self._node.listen(channel, self)

    def _interest_changed(self, effect: Interest) -> None:
        channel = interest_channel(self.name, effect.uri, effect.match, self._depth)
        if effect.held:
            if effect.match != EXACT:
                self._buckets[(effect.uri, effect.match)] = pattern_bucket(effect.uri, effect.match, self._depth)
            self._hold(channel)
            self._node.listen(channel, self)  # a subscription made without before_subscribe (tests, testaments)
        else:
            self._buckets.pop((effect.uri, effect.match), None)
            self._release(channel)

    def _hold(self, channel: bytes) -> None:
        self._interest[channel] = self._interest.get(channel, 0) + 1
        timer = self._unsubscribe_timers.pop(channel, None)
        if timer is not None and timer.active():
            timer.cancel()

    def _release(self, channel: bytes) -> None:
        count = self._interest.get(channel, 0) - 1
        if count > 0:
            self._interest[channel] = count
            return
        self._interest.pop(channel, None)
        if self._linger <= 0:
            self._node.unlisten(channel)
        elif channel not in self._unsubscribe_timers:
            self._unsubscribe_timers[channel] = self._clock.callLater(self._linger, self._lingered, channel)

    def _lingered(self, channel: bytes) -> None:
        self._unsubscribe_timers.pop(channel, None)
        if channel not in self._interest:
            self._node.unlisten(channel)

    def on_event(self, channel_kind: str, key: str | None, items: list) -> None:
        """An event from another node on one of this realm's channels: `channel_kind` "t" (key: the topic) feeds the
        exact subscription, "p" (key: the bucket, None for the catch-all) the pattern subscriptions of that bucket."""
        topic = items[3]
        broker = self.core.broker
        if channel_kind == "t":
            subscription = broker.find(topic, EXACT)
            subscriptions = () if subscription is None else (subscription,)
        else:
            buckets = self._buckets
            subscriptions = [s for s in broker.matching(topic)
                             if s.match != EXACT and buckets.get((s.uri, s.match), "\0") == key]
        if not subscriptions:
            return  # the last local subscriber left while the channel lingers
        msg, publication, publisher, disclose = envelope.publish_of(items)
        peer = Peer(publisher[0], self.name, authid=publisher[1], authrole=publisher[2], authmethod="",
                    authprovider="", node=items[1])
        self.run(broker.publish_remote(peer, msg, publication, disclose, subscriptions))

    # -- presence ----------------------------------------------------------------------------------------------------

    def _joined(self, peer: Peer) -> None:
        details = session_details(peer)
        self._node.session_joined(self.name, peer.session_id, details)
        self._node.publish(self._node.ctl_channel, envelope.join(self._node.name, self.name, details))

    def _left(self, peer: Peer) -> None:
        node = self._node
        for uri, match in self._callees.pop(peer.session_id, ()):
            field = self._claims.pop((peer.session_id, uri, match), None)
            if field is not None:
                node.release_registration(self.name, uri, match, field)
        node.session_left(self.name, peer.session_id)
        node.publish(node.ctl_channel, envelope.leave(node.name, self.name, peer.session_id))

    def remote_joined(self, origin: str, details: dict) -> None:
        session = details.get("session")
        if type(session) is not int or session in self.core.remote_sessions:
            return
        self.run(self.core.join_remote(self._remote_peer(origin, details)))
        self._counted(session, True)

    def _remote_peer(self, origin: str, details: dict) -> Peer:
        return Peer(details["session"], self.name, authid=details.get("authid") or "",
                    authrole=details.get("authrole") or "", authmethod=details.get("authmethod") or "",
                    authprovider=details.get("authprovider") or "", authextra=details.get("authextra") or {},
                    channel=RemoteChannel(self, origin, details["session"]), node=origin)

    def remote_left(self, session: int) -> None:
        self._forget_outbound(lambda callee: callee.session_id == session)
        self.run(self.core.leave_remote(session))
        self._counted(session, False)

    def node_gone(self, gone: str) -> None:
        """Every session of a node that is gone leaves; calls it served or made end."""
        self._forget_outbound(lambda callee: callee.node == gone)
        for session, peer in list(self.core.remote_sessions.items()):
            if peer.node == gone:
                self.run(self.core.leave_remote(session))
                self._counted(session, False)

    def remote_sessions_of(self, authid: str) -> int:
        """Sessions of `authid` on the other nodes (for per-authid session limits across the cluster)."""
        return self._authids.get(authid, 0)

    def _counted(self, session: int, added: bool) -> None:
        """Keep `_authids` in step with the core's remote sessions (called after each change to them)."""
        if added:
            peer = self.core.remote_sessions.get(session)
            if peer is not None and session not in self._counted_sessions:
                self._counted_sessions[session] = peer.authid
                self._authids[peer.authid] = self._authids.get(peer.authid, 0) + 1
            return
        authid = self._counted_sessions.pop(session, None)
        if authid is not None:
            count = self._authids[authid] - 1
            if count:
                self._authids[authid] = count
            else:
                del self._authids[authid]

    def local_sessions(self) -> list[Peer]:
        return list(self.core.sessions.values())

    def kill(self, session: int, reason: str, message: str | None) -> None:
        """Another node's `wamp.session.kill*` named a session of this node."""
        peer = self.core.sessions.get(session)
        runner_session = getattr(getattr(peer, "channel", None), "session", None)
        if runner_session is not None and runner_session.peer is peer:
            runner_session.goodbye(reason, message)

    def kick_remote(self, peer: Peer, reason: str, message: str | None) -> None:
        self._node.send_to(peer.node, envelope.kill(self._node.name, self.name, peer.session_id, reason, message))

    # -- RPC: the directory ----------------------------------------------------------------------------------------

    def before_register(self, peer: Peer, msg: wamp.Register) -> defer.Deferred:
        """Claim the registration in the cluster's directory; fires with None (go on) or the ERROR to answer."""
        match = msg.match or EXACT
        invoke = msg.invoke or "single"
        field = f"{self._node.name}\0{peer.session_id}"
        value = directory_entry(peer, invoke)
        d = self._node.claim_registration(self.name, msg.procedure, match, invoke, field, value)

        def claimed(problem: str | None) -> wamp.Error | None:
            if problem is None:
                self._claims[(peer.session_id, msg.procedure, match)] = field
                return None
            return wamp.Error(wamp.Register.MESSAGE_TYPE, msg.request, errors.PROCEDURE_ALREADY_EXISTS,
                              args=[problem])

        def unavailable(failure: Any) -> wamp.Error:
            self.log.info("REGISTER of {uri} refused: the cluster's directory cannot be reached ({error})",
                          uri=msg.procedure, error=failure.getErrorMessage())
            return wamp.Error(wamp.Register.MESSAGE_TYPE, msg.request, errors.UNAVAILABLE,
                              args=["the cluster's registration directory cannot be reached; try again"])

        return d.addCallbacks(claimed, unavailable)

    def after_register(self, peer: Peer, msg: wamp.Register) -> None:
        """The local dealer refused what the directory granted (limits): give the claim back."""
        match = msg.match or EXACT
        registration = self.core.dealer.find(msg.procedure, match)
        if registration is not None and registration.has(peer.session_id):
            return
        field = self._claims.pop((peer.session_id, msg.procedure, match), None)
        if field is not None:
            self._node.release_registration(self.name, msg.procedure, match, field)

    def _callee_changed(self, effect: Callee) -> None:
        node = self._node
        peer = effect.peer
        key = (effect.uri, effect.match)
        if effect.held:
            self._callees.setdefault(peer.session_id, set()).add(key)
        else:
            held = self._callees.get(peer.session_id)
            if held is not None:
                held.discard(key)
                if not held:
                    del self._callees[peer.session_id]
            field = self._claims.pop((peer.session_id, effect.uri, effect.match), None)
            if field is not None:
                node.release_registration(self.name, effect.uri, effect.match, field)
        node.publish(node.ctl_channel, envelope.callee(node.name, self.name, effect.held, peer.session_id,
                                                       effect.uri, effect.match, effect.invoke,
                                                       callee_features(peer)))

    def remote_callee(self, origin: str, held: bool, session: int, uri: str, match: str, invoke: str,
                      features: dict, identity: dict | None = None) -> None:
        """A session of another node joined or left a registration there."""
        peer = self.core.remote_sessions.get(session)
        if not held:
            if peer is not None:
                self.run(self.core.dealer.remove_remote_callee(peer, uri, match))
            return
        if peer is None:
            peer = self._remote_peer(origin, {"session": session, **(identity or {})})
            self.core.remote_sessions[session] = peer  # its JOIN is on its way (or was before this node started)
            self._counted(session, True)
        peer.roles = {"callee": SimpleNamespace(**features)}
        effects, problem = self.core.dealer.add_remote_callee(peer, uri, match, invoke, self._clock.seconds())
        if problem is not None:
            self.log.warn("registration of {uri} by session {session} on node {node} conflicts with this node's: "
                          "{problem}", uri=uri, session=session, node=origin, problem=problem)
        self.run(effects)

    def _held_claims(self):
        """(session, peer, uri, match, registration, field) of every claim a local session still holds."""
        for (session, uri, match), field in list(self._claims.items()):
            peer = self.core.sessions.get(session)
            registration = self.core.dealer.find(uri, match)
            if peer is not None and registration is not None:
                yield session, peer, uri, match, registration, field

    def reasserted(self) -> list[tuple[str, str, str, str, str]]:
        """(uri, match, invoke, field, value) of every registration a local session holds, to write again after
        Redis lost its data."""
        return [(uri, match, registration.invoke, field, directory_entry(peer, registration.invoke))
                for _, peer, uri, match, registration, field in self._held_claims()]

    def announce_all(self) -> None:
        """Tell the other nodes again of every local session and registration (after Redis came back): they may
        have dropped them as gone. Receivers ignore what they already know."""
        node = self._node
        for peer in self.core.sessions.values():
            node.publish(node.ctl_channel, envelope.join(node.name, self.name, session_details(peer)))
        for session, peer, uri, match, registration, _ in self._held_claims():
            node.publish(node.ctl_channel, envelope.callee(node.name, self.name, True, session, uri, match,
                                                           registration.invoke, callee_features(peer)))

    def revoke_claim(self, session: int, uri: str, match: str) -> None:
        """Redis came back and another node now holds what this session registered (`single`): the directory wins,
        the local registration ends (UNREGISTERED with a reason, to a callee that announced revocation)."""
        self._claims.pop((session, uri, match), None)
        peer = self.core.sessions.get(session)
        registration = self.core.dealer.find(uri, match)
        if peer is not None and registration is not None:
            self.log.warn("registration of {uri} by session {session} revoked: another node holds it", uri=uri,
                          session=session)
            self.run(self.core.dealer.revoke_registration(peer, registration.id, "wampgate.cluster.conflict"))

    # -- RPC: calls across nodes -------------------------------------------------------------------------------------

    def needs_sync(self, msg: wamp.Call) -> bool:
        """A CALL no local registration serves may name one another node registered a moment ago: its
        announcement may still be in flight, so the node first reads everything Redis already sent it."""
        return self.core.dealer.lookup(msg.procedure) is None

    def to_remote(self, node: str, session: int, message: wamp.Message) -> None:
        kind = type(message)
        if kind is wamp.Invocation:
            self._invoke_remote(node, session, message)
        elif kind is wamp.Interrupt:
            rid = self._outbound_by_callee.get((session, message.request))
            if rid is not None:
                caller = self._outbound[rid][2]
                self._node.send_to(node, envelope.interrupt(self._node.name, self.name, rid, caller, message.mode))
        elif kind is wamp.Result:
            self._node.send_to(node, envelope.result(self._node.name, self.name, message.request, message))
        elif kind is wamp.Error:
            self._node.send_to(node, envelope.error(self._node.name, self.name, message.request, message))

    def _invoke_remote(self, node: str, session: int, invocation: wamp.Invocation) -> None:
        dealer = self.core.dealer
        call = dealer.pending_call(session, invocation.request)
        registration = dealer.registration(invocation.registration)
        if call is None or registration is None:
            return
        self._next_rid += 1
        rid = self._next_rid
        callee = call.callee
        self._outbound[rid] = (callee, invocation.request, call.caller.session_id)
        self._outbound_by_callee[(session, invocation.request)] = rid
        disclose = invocation.caller is not None
        procedure = invocation.procedure or registration.uri
        data = envelope.invocation(self._node.name, self.name, rid, session, call.caller, disclose,
                                   registration.uri, registration.match, invocation, procedure)
        self._node.send_to(node, data, on_count=lambda receivers: self._delivered(rid, receivers))

    def _delivered(self, rid: int, receivers: int) -> None:
        """PUBLISH to a node's inbox answered with its receiver count: 0 means that node is gone."""
        if receivers > 0 or rid not in self._outbound:
            return
        self._fail_outbound(rid, "the callee's router node is gone")

    def _fail_outbound(self, rid: int, text: str) -> None:
        callee, invocation, _ = self._outbound.pop(rid)
        self._outbound_by_callee.pop((callee.session_id, invocation), None)
        error = wamp.Error(wamp.Invocation.MESSAGE_TYPE, invocation, errors.CANCELED, args=[text])
        self.run(self.core.dealer.error(callee, error))

    def fail_calls_to(self, node: str, text: str) -> int:
        """End every call waiting on a callee of `node` (its inbox has no listener: the node is gone)."""
        rids = [rid for rid, entry in self._outbound.items() if entry[0].node == node]
        for rid in rids:
            if rid in self._outbound:
                self._fail_outbound(rid, text)
        return len(rids)

    def nodes_called(self) -> set[str]:
        return {entry[0].node for entry in self._outbound.values()}

    def _forget_outbound(self, gone: Callable[[Peer], bool]) -> None:
        for rid, (callee, invocation, _) in list(self._outbound.items()):
            if gone(callee):
                del self._outbound[rid]
                self._outbound_by_callee.pop((callee.session_id, invocation), None)

    def remote_invocation(self, origin: str, items: list) -> None:
        """Another node's dealer chose a callee of this node."""
        rid, callee, caller, disclose, uri, match, msg = envelope.call_of(items)
        peer = Peer(caller[0], self.name, authid=caller[1] or "", authrole=caller[2] or "", authmethod="",
                    authprovider="", channel=RemoteChannel(self, origin, caller[0]), node=origin)
        self.run(self.core.dealer.call_callee(peer, msg, uri, match, callee, disclose=disclose,
                                              now=self._clock.seconds()))

    def remote_answer(self, items: list) -> None:
        """A RESULT or ERROR for a call this node sent to another node's callee."""
        rid = items[3]
        entry = self._outbound.get(rid)
        if entry is None:
            return  # the call ended here already (timeout, cancel, caller gone): a late answer
        callee, invocation, _ = entry
        if items[0] == envelope.RESULT:
            msg = envelope.yield_of(items, invocation)
            if msg.progress:
                self.run(self.core.dealer.yield_(callee, msg))
                return
            effects = self.core.dealer.yield_(callee, msg)
        else:
            effects = self.core.dealer.error(callee, envelope.invocation_error_of(items, invocation))
        del self._outbound[rid]
        self._outbound_by_callee.pop((callee.session_id, invocation), None)
        self.run(effects)

    def remote_interrupt(self, origin: str, items: list) -> None:
        _, _, _, rid, caller, mode = items
        peer = Peer(caller, self.name, authid="", authrole="", authmethod="", authprovider="",
                    channel=RemoteChannel(self, origin, caller), node=origin)
        self.run(self.core.dealer.cancel(peer, wamp.Cancel(rid, mode=mode)))
