"""This router as a node of a cluster: its two Redis connections, its liveness, and the realm links it serves.

Connections: `redis` carries every command and every PUBLISH, in order, pipelined (events, calls, announcements);
`subscriber` holds the channels: the shared control channel, this node's inbox, and the event channels its local
subscriptions need (router/core/interest.py). Nothing is queued while Redis is away: publications are dropped and
counted, SUBSCRIBEs are re-sent on reconnect, and after every reconnect the node writes its sessions and
registrations again and announces them (Redis may have restarted empty).

Liveness: the node renews `wg:node:{name}` every heartbeat_interval with a time-to-live of node_timeout. Every node
runs the janitor script each heartbeat: it removes what expired nodes wrote and names them, once, to one node, which
announces it; every node then ends those nodes' sessions (`on_leave`) and calls. A call waiting on a node whose
inbox lost its listener (the process died) fails within one heartbeat.
"""

from __future__ import annotations

import json
import secrets
import socket
from typing import Any

from twisted.application import service
from twisted.internet import defer, task
from twisted.logger import Logger

from wampgate.core.meta import session_details
from wampgate.tx.cluster import envelope, scripts
from wampgate.tx.cluster.limits import ClusterLimits
from wampgate.tx.cluster.realm_link import RealmLink
from wampgate.tx.cluster.redis import RedisAddress, RedisConnection, RedisSubscriber, RedisUnavailable, Script

_CLAIM = Script(scripts.CLAIM)
_RELEASE = Script(scripts.RELEASE)
_JANITOR = Script(scripts.JANITOR)


def node_name(configured: str) -> str:
    """The configured name (or the host's) with a random suffix: a restarted node never takes up the old one's state."""
    base = configured or socket.gethostname().split(".")[0] or "node"
    return f"{base}-{secrets.token_hex(3)}"


class ClusterNode(service.Service):
    """Built from `[cluster]` and the router's realms (router/tx/service.py)."""

    log = Logger()

    def __init__(self, config: Any, realms: dict, reactor: Any, counters: Any, *, name: str | None = None):
        self.config = config
        self.name = name or node_name(config.node)
        self._reactor = reactor
        self._counters = counters
        self.address = RedisAddress.parse(config.redis)
        self.ctl_channel = scripts.CTL_CHANNEL
        self.inbox = scripts.inbox(self.name)
        self.redis = RedisConnection(reactor, self.address, name=f"{self.name}/commands",
                                     reply_timeout=config.reply_timeout, max_pending=config.max_pending,
                                     on_up=self._redis_up, on_down=self._redis_down)
        self.subscriber = RedisSubscriber(reactor, self.address, name=f"{self.name}/subscriber",
                                          on_message=self._message, reply_timeout=config.reply_timeout,
                                          on_up=self._subscriber_up, on_down=self._redis_down)
        self.links = {name: RealmLink(self, runtime, depth=config.bucket_depth, linger=config.unsubscribe_linger,
                                      clock=reactor) for name, runtime in realms.items()}
        self.limits = ClusterLimits(self, lease_seconds=config.rate_lease, when_redis_down=config.when_redis_down)
        self._channels: dict[bytes, tuple[RealmLink, str, str | None]] = {}
        self._heartbeat = task.LoopingCall(self._beat)
        self._heartbeat.clock = reactor
        self._syncs: dict[bytes, defer.Deferred] = {}
        self.up_since: float | None = None
        self.stats = {"events_out": 0, "events_in": 0, "dropped": 0, "bad_envelopes": 0, "nodes_gone": 0}

    # -- life ----------------------------------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        self.log.info("cluster node {node} joining through {redis}", node=self.name, redis=self.address.redacted())
        self.subscriber.subscribe(self.ctl_channel).addErrback(lambda _: None)
        self.subscriber.subscribe(self.inbox).addErrback(lambda _: None)
        self.redis.start()
        self.subscriber.start()
        self._heartbeat.start(self.config.heartbeat_interval, now=False)

    def stopService(self) -> defer.Deferred:
        super().stopService()
        if self._heartbeat.running:
            self._heartbeat.stop()
        leaving = defer.succeed(None)
        if self.redis.connected:  # leave at once rather than after node_timeout
            leaving = self._say_goodbye()
        leaving.addBoth(lambda _: defer.gatherResults([self.redis.stop(), self.subscriber.stop()],
                                                      consumeErrors=True))
        return leaving.addErrback(lambda _: None)

    def _say_goodbye(self) -> defer.Deferred:
        """Remove this node's liveness key and let the janitor take its entries out now, telling the other nodes."""
        self.redis.execute(b"DEL", scripts.node_key(self.name)).addErrback(lambda _: None)
        return self.redis.evalsha(_JANITOR, [scripts.NODES], [b""]).addCallback(self._gone)

    @property
    def healthy(self) -> bool:
        return self.redis.connected and self.subscriber.connected

    def health(self) -> dict:
        return {"node": self.name, "redis": self.address.redacted(),
                "state": "ok" if self.healthy else "degraded", "commands_connected": self.redis.connected,
                "subscriber_connected": self.subscriber.connected,
                "remote_sessions": sum(len(link.core.remote_sessions) for link in self.links.values()),
                "channels": len(self.subscriber.channels)}

    def _redis_up(self) -> None:
        self.log.info("cluster node {node}: Redis commands connection up", node=self.name)
        self._beat()
        self._reassert()

    def _subscriber_up(self) -> None:
        self.log.info("cluster node {node}: Redis subscriber up ({channels} channels)", node=self.name,
                      channels=len(self.subscriber.channels))
        if self.redis.connected:
            self._load()

    def _redis_down(self, reason: str) -> None:
        self.count("cluster_redis_down")
        self.log.warn("cluster node {node}: a Redis connection is down ({reason}); local traffic goes on, "
                      "events to and from other nodes are lost until it is back", node=self.name, reason=reason)

    def count(self, name: str, **labels: str) -> None:
        self._counters.increment(name, **labels)

    # -- what the realm links use -------------------------------------------------------------------------------

    def publish(self, channel: bytes, data: bytes) -> None:
        if not self.redis.publish(channel, data):
            self.count("cluster_dropped", reason="redis_unavailable")

    def send_to(self, node: str, data: bytes, on_count: Any = None) -> None:
        if not self.redis.publish(scripts.inbox(node), data, on_count):
            self.count("cluster_dropped", reason="redis_unavailable")
            if on_count is not None:
                on_count(0)

    def listen(self, channel: bytes, link: RealmLink) -> defer.Deferred | None:
        """Listen on an event channel of `link`'s realm; the Deferred fires once Redis confirmed (a failure is
        logged and counted, and the SUBSCRIBE is re-sent on reconnect: local subscribers are served meanwhile)."""
        if channel not in self._channels:
            kind, key = _channel_kind(channel, link.name)
            self._channels[channel] = (link, kind, key)
        d = self.subscriber.subscribe(channel).addErrback(self._not_listening, channel)
        return None if d.called else d

    def _not_listening(self, failure: Any, channel: bytes) -> None:
        self.count("cluster_subscribe_unconfirmed")
        self.log.info("cluster: SUBSCRIBE {channel} not confirmed ({error}); it is re-sent when Redis is back",
                      channel=channel.decode(errors="replace"), error=failure.getErrorMessage())

    def unlisten(self, channel: bytes) -> None:
        self._channels.pop(channel, None)
        self.subscriber.unsubscribe(channel)

    def sync(self) -> defer.Deferred:
        """Fires once everything Redis had sent this node before now was handled: a marker published to this node's
        own inbox comes back behind it (Redis keeps order on the subscriber connection)."""
        token = secrets.token_bytes(8)
        d = defer.Deferred()
        self._syncs[token] = d
        if not self.redis.publish(self.inbox, envelope.sync(self.name, token)):
            del self._syncs[token]
            return defer.succeed(None)
        self._reactor.callLater(self.config.reply_timeout, self._sync_expired, token)
        return d

    def _sync_expired(self, token: bytes) -> None:
        d = self._syncs.pop(token, None)
        if d is not None:
            d.callback(None)

    def claim_registration(self, realm: str, uri: str, match: str, invoke: str, field: str,
                           value: str) -> defer.Deferred:
        keys = [scripts.registration_key(realm, uri, match), scripts.registration_keys(realm),
                scripts.node_index(self.name)]
        d = self.redis.evalsha(_CLAIM, keys, [field, invoke, value, realm])
        return d.addCallback(lambda answer: None if answer is None else _text(answer))

    def release_registration(self, realm: str, uri: str, match: str, field: str) -> None:
        keys = [scripts.registration_key(realm, uri, match), scripts.registration_keys(realm),
                scripts.node_index(self.name)]
        self.redis.evalsha(_RELEASE, keys, [field, realm]).addErrback(self._write_failed, "release a registration")

    def session_joined(self, realm: str, session: int, details: dict) -> None:
        key = scripts.sessions_key(realm)
        self.redis.execute(b"HSET", key, session, json.dumps([self.name, details])).addErrback(
            self._write_failed, "record a session")
        entry = f"{realm}\n{key.decode()}\n{session}"
        self.redis.execute(b"SADD", scripts.node_index(self.name), entry).addErrback(
            self._write_failed, "index a session")

    def session_left(self, realm: str, session: int) -> None:
        key = scripts.sessions_key(realm)
        self.redis.execute(b"HDEL", key, session).addErrback(self._write_failed, "remove a session")
        entry = f"{realm}\n{key.decode()}\n{session}"
        self.redis.execute(b"SREM", scripts.node_index(self.name), entry).addErrback(
            self._write_failed, "unindex a session")

    def _write_failed(self, failure: Any, what: str) -> None:
        self.count("cluster_write_failed")
        if not failure.check(RedisUnavailable):
            self.log.warn("cluster: could not {what} in Redis: {error}", what=what, error=failure.getErrorMessage())

    # -- heartbeat and janitor -------------------------------------------------------------------------------------

    def _beat(self) -> None:
        if not self.redis.connected:
            return
        ttl = int(self.config.node_timeout * 1000)
        self.redis.execute(b"SET", scripts.node_key(self.name), b"1", b"PX", ttl).addErrback(
            self._write_failed, "renew this node's liveness")
        self.redis.execute(b"SADD", scripts.NODES, self.name).addErrback(self._write_failed, "announce this node")
        self.redis.evalsha(_JANITOR, [scripts.NODES], [self.name]).addCallbacks(self._gone, self._write_failed,
                                                                               errbackArgs=("run the janitor",))
        for link in self.links.values():
            for node in link.nodes_called():
                self.redis.execute(b"PUBSUB", b"NUMSUB", scripts.inbox(node)).addCallbacks(
                    self._probed, lambda _: None, callbackArgs=(node,))

    def _gone(self, nodes: Any) -> None:
        for node in nodes or ():
            gone = _text(node)
            self.publish(self.ctl_channel, envelope.node_gone(self.name, gone))
            self._node_gone(gone)

    def _probed(self, reply: Any, node: str) -> None:
        """PUBSUB NUMSUB of a node's inbox: nobody listening means the node's process is gone."""
        if isinstance(reply, list) and len(reply) == 2 and reply[1] == 0:
            for link in self.links.values():
                link.fail_calls_to(node, "the callee's router node is gone")

    def _node_gone(self, gone: str) -> None:
        if gone == self.name:
            return
        self.stats["nodes_gone"] += 1
        self.count("cluster_nodes_gone")
        self.log.warn("cluster node {gone} is gone: its sessions leave, its registrations and calls end", gone=gone)
        for link in self.links.values():
            link.node_gone(gone)

    # -- after a (re)connect ------------------------------------------------------------------------------------

    def _reassert(self) -> None:
        """Write this node's sessions and registrations again (Redis may have restarted empty), and announce them
        to the other nodes (which may have taken this node for gone)."""
        for name, link in self.links.items():
            for peer in link.local_sessions():
                self.session_joined(name, peer.session_id, session_details(peer))
            for uri, match, invoke, field, value in link.reasserted():
                session = int(field.rsplit("\0", 1)[1])
                self.claim_registration(name, uri, match, invoke, field, value).addCallbacks(
                    lambda problem, link=link, session=session, uri=uri, match=match:
                        problem and link.revoke_claim(session, uri, match),
                    self._write_failed, errbackArgs=("claim a registration again",))
            link.announce_all()

    def _load(self) -> None:
        """Learn the sessions and registrations other nodes hold (on start, and after every reconnect)."""
        for name, link in self.links.items():
            self.redis.execute(b"HGETALL", scripts.sessions_key(name)).addCallbacks(
                self._loaded_sessions, self._write_failed, callbackArgs=(link,),
                errbackArgs=("load the sessions",))
            self.redis.execute(b"SMEMBERS", scripts.registration_keys(name)).addCallbacks(
                self._loaded_registration_keys, self._write_failed, callbackArgs=(link,),
                errbackArgs=("load the registrations",))

    def _loaded_sessions(self, reply: list, link: RealmLink) -> None:
        for index in range(0, len(reply or ()), 2):
            try:
                node, details = json.loads(reply[index + 1])
            except (ValueError, TypeError):
                continue
            if node != self.name:
                link.remote_joined(node, details)

    def _loaded_registration_keys(self, keys: list, link: RealmLink) -> None:
        for key in keys or ():
            self.redis.execute(b"HGETALL", key).addCallbacks(self._loaded_registration, lambda _: None,
                                                             callbackArgs=(link, _text(key)))

    def _loaded_registration(self, reply: list, link: RealmLink, key: str) -> None:
        _, _, _, match, uri = key.split(":", 4)
        for index in range(0, len(reply or ()), 2):
            node, _, session = _text(reply[index]).rpartition("\0")
            if node == self.name:
                continue
            try:
                value = json.loads(reply[index + 1])
                link.remote_callee(node, True, int(session), uri, match, value["invoke"], value["features"],
                                   {"authid": value.get("authid"), "authrole": value.get("authrole")})
            except (ValueError, TypeError, KeyError):
                continue

    # -- what arrives ----------------------------------------------------------------------------------------------

    def _message(self, channel: bytes, data: bytes) -> None:
        try:
            if channel == self.ctl_channel or channel == self.inbox:
                self._control(envelope.unpack(data))
                return
            target = self._channels.get(channel)
            if target is None:
                return
            items = envelope.unpack(data)
            if items[1] == self.name:
                return  # this node's own publication: its subscribers had it already
            link, kind, key = target
            self.stats["events_in"] += 1
            link.on_event(kind, key, items)
        except envelope.BadEnvelope as e:
            self.stats["bad_envelopes"] += 1
            self.count("cluster_bad_envelope")
            self.log.warn("cluster: unreadable message on {channel}: {error}",
                          channel=channel.decode(errors="replace"), error=e)
        except Exception:
            self.log.failure("cluster: error handling a message on {channel}",
                             channel=channel.decode(errors="replace"))

    def _control(self, items: list) -> None:
        kind, origin = items[0], items[1]
        if kind == envelope.SYNC:
            d = self._syncs.pop(items[2], None) if origin == self.name else None
            if d is not None:
                d.callback(None)
            return
        if kind == envelope.NODE_GONE:
            self._node_gone(items[3])
            return
        if origin == self.name:
            return
        link = self.links.get(items[2])
        if link is None:
            return
        if kind == envelope.JOIN:
            link.remote_joined(origin, items[3])
        elif kind == envelope.LEAVE:
            link.remote_left(items[3])
        elif kind in (envelope.REGISTER, envelope.UNREGISTER):
            _, _, _, session, uri, match, invoke, features = items
            link.remote_callee(origin, kind == envelope.REGISTER, session, uri, match, invoke, features)
        elif kind == envelope.INVOCATION:
            link.remote_invocation(origin, items)
        elif kind in (envelope.RESULT, envelope.ERROR):
            link.remote_answer(items)
        elif kind == envelope.INTERRUPT:
            link.remote_interrupt(origin, items)
        elif kind == envelope.KILL:
            link.kill(items[3], items[4], items[5])


def _channel_kind(channel: bytes, realm: str) -> tuple[str, str | None]:
    """("t", topic) or ("p", bucket or None for the catch-all) of one of the realm's event channels."""
    rest = channel.decode()[len(f"wg:{realm}:"):]
    if rest == "a":
        return "p", None
    kind, _, key = rest.partition(":")
    return kind, key


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
