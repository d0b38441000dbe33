"""The pub/sub broker: SUBSCRIBE / UNSUBSCRIBE / PUBLISH in, effects out. No I/O, no clock, no randomness."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

from autobahn.wamp import message as wamp

from wampgate.core import errors
from wampgate.core.replies import refusal
from wampgate.core.effects import Effect, Published, Send, reply
from wampgate.core.history import EventHistory, HistoryRule
from wampgate.core.peer import Peer
from wampgate.core.retention import RetainedEvent, RetainedEvents
from wampgate.uri import EXACT, UriIndex, UriPolicy, is_reserved


# What `on_change(change, session_id, subscription)` is told, in the order the subscription meta API's events fire:
# CREATE before the first SUBSCRIBE, UNSUBSCRIBE before DELETE.
CREATE = "create"
SUBSCRIBE = "subscribe"
UNSUBSCRIBE = "unsubscribe"
DELETE = "delete"

OnChange = Callable[[str, int, "Subscription"], list[Effect]]


def _unobserved(change: str, session_id: int, subscription: Subscription) -> list[Effect]:
    return []


class Subscription:
    """One (topic, match) pair; every session subscribed to it shares its id. `created` is the `now` of the
    SUBSCRIBE that created it (the meta API reports it), or None when the caller passed no time."""

    __slots__ = ("id", "uri", "match", "subscribers", "created")

    def __init__(self, subscription_id: int, uri: str, match: str, created: float | None = None):
        self.id = subscription_id
        self.uri = uri
        self.match = match
        self.subscribers: dict[int, Peer] = {}
        self.created = created


class _Filter:
    """The black/white-listing options of one PUBLISH, checked per candidate receiver."""

    __slots__ = ("exclude", "eligible", "exclude_authid", "eligible_authid", "exclude_authrole", "eligible_authrole")

    def __init__(self, publish: wamp.Publish):
        self.exclude = frozenset(publish.exclude or ())
        self.exclude_authid = frozenset(publish.exclude_authid or ())
        self.exclude_authrole = frozenset(publish.exclude_authrole or ())
        self.eligible = None if publish.eligible is None else frozenset(publish.eligible)
        self.eligible_authid = None if publish.eligible_authid is None else frozenset(publish.eligible_authid)
        self.eligible_authrole = None if publish.eligible_authrole is None else frozenset(publish.eligible_authrole)

    def admits(self, peer: Peer) -> bool:
        if peer.session_id in self.exclude or peer.authid in self.exclude_authid:
            return False
        if peer.authrole in self.exclude_authrole:
            return False
        if self.eligible is not None and peer.session_id not in self.eligible:
            return False
        if self.eligible_authid is not None and peer.authid not in self.eligible_authid:
            return False
        return self.eligible_authrole is None or peer.authrole in self.eligible_authrole


def _has_filter(publish: wamp.Publish) -> bool:
    return (
        publish.exclude is not None
        or publish.eligible is not None
        or publish.exclude_authid is not None
        or publish.eligible_authid is not None
        or publish.exclude_authrole is not None
        or publish.eligible_authrole is not None
    )


class Broker:
    """Routes events from publishers to subscribers of one realm.

    `on_change` hears of every subscription created, joined, left or deleted and answers with effects (the realm
    turns them into meta events); it is never called on the publish path.
    """

    def __init__(
        self,
        policy: UriPolicy,
        new_id: Callable[[], int],
        *,
        max_subscriptions_per_session: int,  # [limits]: declared in router/configtables.py, passed in by the realm
        max_wildcard_shapes: int,
        max_retained_events: int,
        max_retained_bytes: int,
        max_history_bytes: int = 0,
        history: tuple[HistoryRule, ...] = (),
        on_change: OnChange = _unobserved,
    ):
        self._policy = policy
        self._new_id = new_id
        self._max_subscriptions = max_subscriptions_per_session
        self._on_change = on_change
        self._index: UriIndex[Subscription] = UriIndex(max_wildcard_shapes)
        self._by_id: dict[int, Subscription] = {}
        self._by_session: dict[int, dict[int, None]] = {}  # session -> its subscription ids, in order
        self._retained = RetainedEvents(max_retained_events, max_retained_bytes)
        self._history = EventHistory(history, max_history_bytes)
        self._recording = bool(history)  # the publish path's one check when no history is configured
        self.shared = False  # clustered: every local PUBLISH also becomes a Published effect for the other nodes

    def set_limits(
        self,
        *,
        max_subscriptions_per_session: int,
        max_wildcard_shapes: int | None = None,
        max_retained_events: int | None = None,
        max_retained_bytes: int | None = None,
        max_history_bytes: int | None = None,
    ) -> None:
        self._max_subscriptions = max_subscriptions_per_session
        if max_wildcard_shapes is not None:
            self._index.max_wildcard_shapes = max_wildcard_shapes  # shapes already held stay
        if max_retained_events is not None and max_retained_bytes is not None:
            self._retained.set_limits(max_retained_events, max_retained_bytes)  # lower bounds evict at once
        if max_history_bytes is not None:
            self._history.set_rules(self._history.rules, max_history_bytes)

    def set_history(self, rules: tuple[HistoryRule, ...]) -> None:
        """A reload's history rules: kept rules keep their events (cut to their new limit), removed ones drop them."""
        self._history.set_rules(rules)
        self._recording = bool(rules)

    # -- introspection (tests, meta API) --------------------------------------------------------------------

    def subscription(self, subscription_id: int) -> Subscription | None:
        return self._by_id.get(subscription_id)

    def subscriptions(self) -> list[Subscription]:
        return list(self._by_id.values())

    def subscriptions_of(self, session_id: int) -> list[Subscription]:
        return [self._by_id[sid] for sid in self._by_session.get(session_id, ())]

    def find(self, topic: str, match: str) -> Subscription | None:
        """The subscription for exactly this (topic, match) pair."""
        return self._index.get(topic, match)

    def wildcard_shapes(self) -> int:
        return self._index.wildcard_shapes()

    def matching(self, topic: str) -> Iterator[Subscription]:
        """Every subscription an event on `topic` would reach."""
        return self._index.matching(topic)

    @property
    def retained(self) -> RetainedEvents:
        """The realm's retained events (read-only use: metrics, tests)."""
        return self._retained

    @property
    def history(self) -> EventHistory:
        """The realm's event history (read-only use: metrics, tests)."""
        return self._history

    def history_of(self, peer: Peer, subscription: Subscription, limit: int) -> list[dict]:
        """`wamp.subscription.get_events`: at most `limit` kept events `subscription` covers, newest first, as
        dicts; only those the original publish options let reach `peer` now (exclusion, eligibility, exclude_me)."""
        events = self._history.matching(subscription.uri, subscription.match, limit, lambda e: e.may_reach(peer))
        return [_history_entry(event) for event in events]

    # -- validation, before authorization ----------------------------------------------------------------------

    def check_subscribe(self, peer: Peer, msg: wamp.Subscribe) -> list[Effect] | None:
        problem = self._policy.problem(msg.topic, msg.match)
        if problem is not None:
            return _error(peer, wamp.Subscribe, msg.request, errors.INVALID_URI, f"invalid topic: {problem}")
        return None

    def check_publish(self, peer: Peer, msg: wamp.Publish) -> list[Effect] | None:
        problem = self._policy.problem(msg.topic, EXACT)
        if problem is None and is_reserved(msg.topic):
            problem = "the 'wamp.' prefix is reserved for the router"
        if problem is not None:
            answer = refusal(msg, errors.INVALID_URI, f"invalid topic: {problem}")
            return [] if answer is None else reply(peer, answer)
        return None

    # -- actions ---------------------------------------------------------------------------------------------

    def subscribe(self, peer: Peer, msg: wamp.Subscribe, *, now: float | None = None) -> list[Effect]:
        """Add the session to the (topic, match) subscription, creating it if needed; subscribing again to the same
        pair answers the same id and changes nothing. With `get_retained`, SUBSCRIBED is followed by the retained
        events the subscription covers (again on every such SUBSCRIBE, whether or not it created anything)."""
        subscription = self._index.get(msg.topic, msg.match)
        held = self._by_session.get(peer.session_id, ())
        if len(held) >= self._max_subscriptions and (subscription is None or subscription.id not in held):
            text = f"at most {self._max_subscriptions} subscriptions per session"
            return _error(peer, wamp.Subscribe, msg.request, errors.TOO_MANY_SUBSCRIPTIONS, text)
        created = subscription is None
        if created and not self._index.has_room_for(msg.topic, msg.match):
            text = f"at most {self._index.max_wildcard_shapes} distinct wildcard shapes in this realm"
            return _error(peer, wamp.Subscribe, msg.request, errors.TOO_MANY_PATTERNS, text)
        if created:
            subscription = Subscription(self._unused_id(), msg.topic, msg.match, now)
            self._index.add(msg.topic, msg.match, subscription)
            self._by_id[subscription.id] = subscription
        joined = peer.session_id not in subscription.subscribers
        subscription.subscribers[peer.session_id] = peer
        self._by_session.setdefault(peer.session_id, {})[subscription.id] = None
        effects = reply(peer, wamp.Subscribed(msg.request, subscription.id))
        if created:
            effects += self._on_change(CREATE, peer.session_id, subscription)
        if joined:
            effects += self._on_change(SUBSCRIBE, peer.session_id, subscription)
        if msg.get_retained:
            effects += self._retained_for(peer, subscription)
        return effects

    def unsubscribe(self, peer: Peer, msg: wamp.Unsubscribe) -> list[Effect]:
        subscription = self._by_id.get(msg.subscription)
        if subscription is None or peer.session_id not in subscription.subscribers:
            return _error(
                peer, wamp.Unsubscribe, msg.request, errors.NO_SUCH_SUBSCRIPTION, "no such subscription for this session"
            )
        deleted = self._drop(peer.session_id, subscription)
        self._by_session[peer.session_id].pop(subscription.id, None)
        return reply(peer, wamp.Unsubscribed(msg.request)) + self._left(peer.session_id, subscription, deleted)

    def publish(self, peer: Peer, msg: wamp.Publish, *, disclose: bool = False) -> list[Effect]:
        """Fan one PUBLISH out: one EVENT per matching subscription, shared by all its receivers."""
        publication = self._new_id()
        effects = self._fan_out(peer, msg, publication, disclose, self._index.matching(msg.topic))
        if self.shared:
            effects.append(Published(peer, msg, publication, disclose))
        if msg.retain:
            filter_ = _Filter(msg) if _has_filter(msg) else None
            self._retained.retain(_retained(publication, peer, msg, disclose, filter_, msg.exclude_me is not False))
        if self._recording and self._history.covers(msg.topic):
            filter_ = _Filter(msg) if _has_filter(msg) else None
            self._history.record(_retained(publication, peer, msg, disclose, filter_, msg.exclude_me is not False))
        if msg.acknowledge:
            effects.append(Send((peer,), wamp.Published(msg.request, publication)))
        return effects

    def publish_remote(self, publisher: Peer, msg: wamp.Publish, publication: int, disclose: bool,
                       subscriptions: Iterable[Subscription]) -> list[Effect]:
        """An event another node's session published, delivered to the local `subscriptions` the cluster fed it to
        (each is fed from exactly one engine channel, so none sees it twice); its options are honoured as here."""
        return self._fan_out(publisher, msg, publication, disclose, subscriptions)

    def _fan_out(self, peer: Peer, msg: wamp.Publish, publication: int, disclose: bool,
                 subscriptions: Iterable[Subscription]) -> list[Effect]:
        effects: list[Effect] = []
        exclude_me = msg.exclude_me is not False
        filter_ = _Filter(msg) if _has_filter(msg) else None
        me = peer.session_id
        for subscription in subscriptions:
            subscribers = subscription.subscribers
            if filter_ is not None:
                receivers = [
                    p for p in subscribers.values() if filter_.admits(p) and not (exclude_me and p.session_id == me)
                ]
            elif exclude_me and me in subscribers:
                receivers = [p for p in subscribers.values() if p.session_id != me]
            else:
                receivers = list(subscribers.values())
            if receivers:
                effects.append(Send(receivers, _event(subscription, publication, peer, msg, disclose)))
        return effects

    def deliver(self, topic: str, event_for: Callable[[Subscription], wamp.Event]) -> list[Effect]:
        """Deliver an event that did not come from a local session (router-originated, or another node).

        Router events under `wamp.` reach only subscriptions that name `wamp.` themselves: a broad pattern such as
        the prefix "" never receives meta events by accident."""
        reserved = is_reserved(topic)
        effects: list[Effect] = []
        for subscription in self._index.matching(topic):
            if reserved and not is_reserved(subscription.uri):
                continue
            if subscription.subscribers:
                effects.append(Send(list(subscription.subscribers.values()), event_for(subscription)))
        return effects

    def revoke_subscription(self, peer: Peer, subscription_id: int, reason: str) -> list[Effect]:
        """End one session's subscription on the router's own initiative (its permission was withdrawn): the
        session stops receiving its events at once. A subscriber that announced `subscription_revocation` is told
        with UNSUBSCRIBED(0, {subscription, reason}); the spec forbids sending it to one that did not, which then
        simply receives nothing more. Nothing happens (no effects) when the session no longer holds it."""
        subscription = self._by_id.get(subscription_id)
        held = self._by_session.get(peer.session_id)
        if subscription is None or held is None or subscription_id not in held:
            return []
        del held[subscription_id]
        if not held:
            del self._by_session[peer.session_id]
        deleted = self._drop(peer.session_id, subscription)
        effects: list[Effect] = []
        if peer.supports("subscriber", "subscription_revocation"):
            effects = reply(peer, wamp.Unsubscribed(0, subscription=subscription_id, reason=reason))
        return effects + self._left(peer.session_id, subscription, deleted)

    def remove_session(self, peer: Peer) -> list[Effect]:
        """Forget every subscription of a session that left. All of them go before any change is reported, so a
        session that watched the meta topics is never sent an event about its own leaving."""
        dropped = []
        for subscription_id in self._by_session.pop(peer.session_id, ()):
            subscription = self._by_id.get(subscription_id)
            if subscription is not None:
                dropped.append((subscription, self._drop(peer.session_id, subscription)))
        effects: list[Effect] = []
        for subscription, deleted in dropped:
            effects += self._left(peer.session_id, subscription, deleted)
        return effects

    # -- internals ---------------------------------------------------------------------------------------------

    def _drop(self, session_id: int, subscription: Subscription) -> bool:
        """Take the session off the subscription; True when that deleted the subscription."""
        del subscription.subscribers[session_id]
        if subscription.subscribers:
            return False
        self._index.remove(subscription.uri, subscription.match)
        del self._by_id[subscription.id]
        return True

    def _left(self, session_id: int, subscription: Subscription, deleted: bool) -> list[Effect]:
        effects = self._on_change(UNSUBSCRIBE, session_id, subscription)
        if deleted:
            effects += self._on_change(DELETE, session_id, subscription)
        return effects

    def _retained_for(self, peer: Peer, subscription: Subscription) -> list[Effect]:
        """The retained events `subscription` covers that their publish options let reach `peer` now."""
        return [
            Send((peer,), _retained_event(subscription, retained))
            for retained in self._retained.matching(subscription.uri, subscription.match)
            if retained.may_reach(peer)
        ]

    def _unused_id(self) -> int:
        while True:
            candidate = self._new_id()
            if candidate not in self._by_id:
                return candidate


def _event(
    subscription: Subscription, publication: int, publisher: Peer, msg: wamp.Publish, disclose: bool
) -> wamp.Event:
    """The EVENT for one subscription. `forward_for` from the PUBLISH is never copied: nobody poses as another."""
    return wamp.Event(
        subscription.id,
        publication,
        args=msg.args,
        kwargs=msg.kwargs,
        payload=msg.payload,
        publisher=publisher.session_id if disclose else None,
        publisher_authid=publisher.authid if disclose else None,
        publisher_authrole=publisher.authrole if disclose else None,
        topic=msg.topic if subscription.match != EXACT else None,
        enc_algo=msg.enc_algo,
        enc_key=msg.enc_key,
        enc_serializer=msg.enc_serializer,
    )


def _retained(
    publication: int, publisher: Peer, msg: wamp.Publish, disclose: bool, filter_: _Filter | None, exclude_me: bool
) -> RetainedEvent:
    """What a retaining PUBLISH leaves behind: the publisher's identity only when it was disclosed."""
    return RetainedEvent(
        msg.topic,
        publication,
        args=msg.args,
        kwargs=msg.kwargs,
        payload=msg.payload,
        enc_algo=msg.enc_algo,
        enc_key=msg.enc_key,
        enc_serializer=msg.enc_serializer,
        publisher=(publisher.session_id, publisher.authid, publisher.authrole) if disclose else None,
        excluded_session=publisher.session_id if exclude_me else None,
        admits=None if filter_ is None else filter_.admits,
    )


def _retained_event(subscription: Subscription, retained: RetainedEvent) -> wamp.Event:
    """A retained event as an EVENT of `subscription`, marked `retained`."""
    publisher = retained.publisher or (None, None, None)
    return wamp.Event(
        subscription.id,
        retained.publication,
        args=retained.args,
        kwargs=retained.kwargs,
        payload=retained.payload,
        publisher=publisher[0],
        publisher_authid=publisher[1],
        publisher_authrole=publisher[2],
        topic=retained.topic if subscription.match != EXACT else None,
        retained=True,
        enc_algo=retained.enc_algo,
        enc_key=retained.enc_key,
        enc_serializer=retained.enc_serializer,
    )


def _history_entry(event: RetainedEvent) -> dict:
    """One kept event as `wamp.subscription.get_events` answers it: what was published, and the publisher only
    when the publication disclosed it."""
    entry = {"publication": event.publication, "topic": event.topic, "args": event.args, "kwargs": event.kwargs}
    if event.publisher is not None:
        entry["publisher"], entry["publisher_authid"], entry["publisher_authrole"] = event.publisher
    return entry


def _error(peer: Peer, request_type: type, request: int, uri: str, text: str) -> list[Effect]:
    return reply(peer, wamp.Error(request_type.MESSAGE_TYPE, request, uri, args=[text]))
