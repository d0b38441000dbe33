"""The sessions of one realm and the routing of their messages to the broker, the dealer and the meta API."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from autobahn.wamp import message as wamp
from autobahn.wamp.role import RoleBrokerFeatures

from wampgate.core import errors
from wampgate.core.broker import Broker
from wampgate.core.dealer import Dealer
from wampgate.core.effects import Abort, Callee, Effect, Interest, Joined, Left
from wampgate.core.history import HistoryRule
from wampgate.core.meta import MetaApi
from wampgate.core.peer import PASSTHRU_FEATURE as PASSTHRU
from wampgate.core.peer import Peer
from wampgate.core.testaments import PROCEDURES as TESTAMENT_PROCEDURES
from wampgate.core.testaments import Testaments
from wampgate.uri import EXACT, UriPolicy

# What each client request asks permission for; messages not listed need no authorization (they only act on what
# the same session created or was sent, which the broker and dealer verify).
ACTIONS: dict[type, str] = {
    wamp.Publish: "publish",
    wamp.Subscribe: "subscribe",
    wamp.Call: "call",
    wamp.Register: "register",
}


def uri_of(msg: wamp.Message) -> str:
    """The URI an authorizable message acts on."""
    return msg.topic if type(msg) in (wamp.Publish, wamp.Subscribe) else msg.procedure


def match_of(msg: wamp.Message) -> str:
    return getattr(msg, "match", None) or EXACT


class SessionLimits(Protocol):
    """The per-session limits a realm enforces: the router's `[limits]` table (wampgate.configtables.LimitsConfig),
    where each is declared once with its default; the core has no defaults of its own that could disagree."""

    max_subscriptions_per_session: int
    max_registrations_per_session: int
    max_pending_calls_per_session: int
    max_call_timeout: float  # seconds
    max_wildcard_shapes: int  # per index: subscriptions, registrations
    max_retained_events: int  # per realm
    max_retained_bytes: int  # per realm
    max_history_bytes: int  # per realm
    max_testaments_per_session: int
    max_testament_bytes: int


# Which limits each part of a realm takes, as keyword arguments of its constructor and of its `set_limits`.
BROKER_LIMITS = ("max_subscriptions_per_session", "max_wildcard_shapes", "max_retained_events", "max_retained_bytes",
                 "max_history_bytes")
DEALER_LIMITS = ("max_call_timeout", "max_registrations_per_session", "max_pending_calls_per_session",
                 "max_wildcard_shapes")
TESTAMENT_LIMITS = ("max_testaments_per_session", "max_testament_bytes")


def _picked(limits: SessionLimits, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(limits, name) for name in names}


def broker_limits(limits: SessionLimits) -> dict[str, Any]:
    """The Broker's keyword arguments (and `set_limits`'s) from the limits."""
    return _picked(limits, BROKER_LIMITS)


def dealer_limits(limits: SessionLimits) -> dict[str, Any]:
    """The Dealer's keyword arguments (and `set_limits`'s) from the limits."""
    return _picked(limits, DEALER_LIMITS)


def testament_limits(limits: SessionLimits) -> dict[str, Any]:
    """Testaments' keyword arguments (and `set_limits`'s) from the limits."""
    return _picked(limits, TESTAMENT_LIMITS)


def _announced(client_roles: Mapping[str, Any] | None, role: str, feature: str) -> bool:
    """Whether the client announced `feature` as `role` in its HELLO (unknown: no)."""
    features = (client_roles or {}).get(role)
    return features is not None and getattr(features, feature, None) is True


def _announced_any(client_roles: Mapping[str, Any] | None, role: str) -> bool:
    """Whether the client announced at least one feature as `role` in its HELLO."""
    features = (client_roles or {}).get(role)
    return features is not None and any(value is True for value in vars(features).values())


class Realm:
    """One realm: its joined sessions, its broker and dealer, the meta API that describes them, and the features
    WELCOME announces for them."""

    def __init__(
        self,
        name: str,
        policy: UriPolicy,
        new_id: Callable[[], int],
        choose: Callable[[Sequence[Peer]], Peer],
        *,
        limits: SessionLimits,
        history: tuple[HistoryRule, ...] = (),
    ):
        self.name = name
        self.policy = policy
        self.sessions: dict[int, Peer] = {}
        self.remote_sessions: dict[int, Peer] = {}  # clustered: the sessions joined on the other nodes
        self.shared = False  # clustered (router/tx/cluster): see `share`
        self._roles: dict[tuple[bool, bool, bool], dict] = {}  # WELCOME roles, by the variant announced
        self.meta = MetaApi(self, new_id)  # reads the broker and dealer below when asked, never before
        self.broker = Broker(policy, new_id, **broker_limits(limits), history=history, on_change=self._subscription_changed)
        self.dealer = Dealer(policy, new_id, choose=choose, **dealer_limits(limits), on_change=self._registration_changed)
        self.testaments = Testaments(policy, self.broker, **testament_limits(limits))
        self._checks = {
            wamp.Subscribe: self.broker.check_subscribe,
            wamp.Publish: self.broker.check_publish,
            wamp.Register: self.dealer.check_register,
            wamp.Call: self.dealer.check_call,
        }
        self._handlers = {
            wamp.Unsubscribe: self.broker.unsubscribe,
            wamp.Unregister: self.dealer.unregister,
            wamp.Cancel: self.dealer.cancel,
            wamp.Yield: self.dealer.yield_,
            wamp.Error: self.dealer.error,
        }

    def share(self) -> None:
        """Serve this realm together with the other nodes of a cluster: sessions joining and leaving, local
        publications, subscription interests and registrations become effects the cluster link carries to them."""
        self.shared = True
        self.broker.shared = True

    @property
    def all_sessions(self) -> Mapping[int, Peer]:
        """The realm's sessions on every node (the meta API's view): this node's, then the others'."""
        if not self.remote_sessions:
            return self.sessions
        return {**self.sessions, **self.remote_sessions}

    def join_remote(self, peer: Peer) -> list[Effect]:
        """A session joined on another node: the meta API lists it and `on_join` reaches local watchers."""
        if peer.session_id in self.remote_sessions or peer.session_id in self.sessions:
            return []
        self.remote_sessions[peer.session_id] = peer
        return self.meta.on_join(peer)

    def leave_remote(self, session_id: int) -> list[Effect]:
        """A session of another node left (or its node is gone): calls it made or served here end as when a local
        one leaves, its registrations here go, and `on_leave` reaches local watchers. Idempotent."""
        peer = self.remote_sessions.pop(session_id, None)
        if peer is None:
            return []
        return self.dealer.remove_session(peer) + self.meta.on_leave(peer)

    def _subscription_changed(self, change: str, session_id: int, subscription: Any) -> list[Effect]:
        effects = self.meta.subscription_changed(change, session_id, subscription)
        if self.shared and change in ("create", "delete"):
            effects.append(Interest(subscription.uri, subscription.match, change == "create"))
        return effects

    def _registration_changed(self, change: str, session_id: int, registration: Any) -> list[Effect]:
        effects = self.meta.registration_changed(change, session_id, registration)
        if self.shared and change in ("register", "unregister"):
            peer = self.sessions.get(session_id)
            if peer is not None:
                held = change == "register"
                effects.append(Callee(peer, registration.uri, registration.match, registration.invoke, held))
        return effects

    def update_limits(self, limits: SessionLimits) -> None:
        """A reload's new per-session limits, for live sessions too (what they already hold is kept)."""
        self.broker.set_limits(**broker_limits(limits))
        self.dealer.set_limits(**dealer_limits(limits))
        self.testaments.set_limits(**testament_limits(limits))

    def router_roles(self, client_roles: Mapping[str, Any] | None = None) -> dict:
        """The roles and features announced in WELCOME: exactly what works (built once per variant; WELCOME only
        reads them). The spec would have the dealer announce `session_meta_api` too; the broker's announcement
        stands for both, which keeps a WELCOME (MessagePack, an anonymous authid) within the 512 bytes a RawSocket
        client may announce as its maximum.

        `subscription_revocation` and `registration_revocation` (a reload that withdraws a permission ends the live
        subscriptions and registrations it granted) are announced to a client that announced them itself in HELLO
        (as subscriber / callee): only such a client is ever sent a revocation, and the two would push the WELCOME of
        the smallest clients past those 512 bytes. Without the client's HELLO roles (`client_roles` None) they are
        not announced; revocation itself works either way.

        `event_retention` is announced, for the same 512 bytes, to a client that announced at least one subscriber
        feature (Autobahn, Crossbar clients); a client that announced bare roles gets the smallest WELCOME.
        Retention itself works for every client. `event_history` goes with it, for the same reason; history
        (`wamp.subscription.get_events`) too works for every client.

        `testament_meta_api` (the dealer's, as the spec has it) goes with them: it too would push the smallest
        WELCOME past 512 bytes, and no client role has a feature of that name to announce (Autobahn keeps only the
        features it knows), so it is announced to a client that announced either revocation feature, which has shown
        it takes the larger WELCOME (Autobahn's clients do). The testament procedures work for every client.

        `payload_passthru_mode` (the spec's passthrough form, ppt_* options) is announced by the broker to a client
        that announced it as publisher or subscriber, and by the dealer to one that announced it as caller or callee:
        the spec has the feature work only between peers that all announced it, and the two (about 50 bytes) would
        push the smallest WELCOME past 512 bytes. The router forwards the form whoever sends it."""
        subscription_revocation = _announced(client_roles, "subscriber", "subscription_revocation")
        registration_revocation = _announced(client_roles, "callee", "registration_revocation")
        event_retention = _announced_any(client_roles, "subscriber")
        broker_passthru = _announced(client_roles, "publisher", PASSTHRU) or _announced(client_roles, "subscriber",
                                                                                           PASSTHRU)
        dealer_passthru = _announced(client_roles, "caller", PASSTHRU) or _announced(client_roles, "callee", PASSTHRU)
        variant = (subscription_revocation, registration_revocation, event_retention, broker_passthru,
                   dealer_passthru)
        roles = self._roles.get(variant)
        if roles is None:
            dealer = self.dealer.router_features()
            dealer.registration_meta_api = True
            dealer.registration_revocation = registration_revocation or None
            dealer.testament_meta_api = (subscription_revocation or registration_revocation) or None
            if dealer_passthru:
                setattr(dealer, PASSTHRU, True)  # autobahn's feature classes have no such attribute
            roles = self._roles[variant] = {
                "broker": RoleBrokerFeatures(
                    publisher_identification=True,
                    pattern_based_subscription=True,
                    session_meta_api=True,
                    subscription_meta_api=True,
                    subscriber_blackwhite_listing=True,
                    publisher_exclusion=True,
                    payload_transparency=True,
                    subscription_revocation=subscription_revocation or None,
                    event_retention=event_retention or None,
                    event_history=event_retention or None,
                ),
                "dealer": dealer,
            }
            if broker_passthru:
                setattr(roles["broker"], PASSTHRU, True)
        return roles

    def join(self, peer: Peer) -> list[Effect]:
        """Add the session; the answer is `wamp.session.on_join` for whoever watches."""
        self.sessions[peer.session_id] = peer
        effects = self.meta.on_join(peer)
        if self.shared:
            effects.append(Joined(peer))
        return effects

    def leave(self, peer: Peer) -> list[Effect]:
        """Remove the session and everything it held or was doing, then tell `wamp.session.on_leave`; idempotent."""
        if self.sessions.pop(peer.session_id, None) is None:
            return []
        effects = self.broker.remove_session(peer) + self.dealer.remove_session(peer)
        effects += self.testaments.publish(peer)  # after its subscriptions are gone: it is not sent its own
        effects += self.meta.on_leave(peer)
        if self.shared:
            effects.append(Left(peer))
        return effects


    def check(self, peer: Peer, msg: wamp.Message) -> list[Effect] | None:
        """Validate a request before it is authorized: the answer when it is refused, else None. A testament CALL
        is checked in full here, so what is then authorized (publish on its topic) is a valid topic."""
        check = self._checks.get(type(msg))
        refused = None if check is None else check(peer, msg)
        if refused is None and type(msg) is wamp.Call and msg.procedure in TESTAMENT_PROCEDURES:
            refused = self.testaments.check(peer, msg)
        return refused

    def receive(self, peer: Peer, msg: wamp.Message, *, disclose: bool = False, now: float = 0.0) -> list[Effect]:
        """Route a checked and authorized request. `disclose`: the permission says to disclose the caller or
        publisher (for a testament CALL, the permission to publish on its topic)."""
        kind = type(msg)
        if kind is wamp.Publish:
            return self.broker.publish(peer, msg, disclose=disclose)
        if kind is wamp.Call:
            if msg.procedure in TESTAMENT_PROCEDURES:
                return self.testaments.call(peer, msg, disclose=disclose)
            if msg.procedure in self.meta.procedures:
                return self.meta.call(peer, msg)
            return self.dealer.call(peer, msg, disclose=disclose, now=now)
        if kind is wamp.Subscribe:
            return self.broker.subscribe(peer, msg, now=now)
        if kind is wamp.Register:
            return self.dealer.register(peer, msg, now=now)
        handler = self._handlers.get(kind)
        if handler is None:
            return [Abort(peer, errors.PROTOCOL_VIOLATION, f"unexpected {kind.__name__.upper()} message")]
        return handler(peer, msg)
