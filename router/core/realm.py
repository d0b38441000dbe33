"""The sessions of one realm and the routing of their messages to the broker, the dealer and the meta API."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from autobahn.wamp import message as wamp
from autobahn.wamp.role import RoleBrokerFeatures

from router.core import errors
from router.core.broker import Broker
from router.core.dealer import Dealer
from router.core.effects import Abort, Effect
from router.core.meta import MetaApi
from router.core.peer import Peer
from router.core.uri import DEFAULT_MAX_WILDCARD_SHAPES, EXACT, UriPolicy

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


@dataclass(frozen=True)
class RealmLimits:
    max_subscriptions_per_session: int = 1000
    max_registrations_per_session: int = 100
    max_pending_calls_per_session: int = 1000
    max_call_timeout: float = 3600.0  # seconds
    max_wildcard_shapes: int = DEFAULT_MAX_WILDCARD_SHAPES  # per index: subscriptions, registrations


def realm_limits_of(limits) -> RealmLimits:
    """The per-session limits of the router's [limits] table (any object with those attributes)."""
    return RealmLimits(
        max_subscriptions_per_session=limits.max_subscriptions_per_session,
        max_registrations_per_session=limits.max_registrations_per_session,
        max_pending_calls_per_session=limits.max_pending_calls_per_session,
        max_call_timeout=limits.max_call_timeout,
        max_wildcard_shapes=limits.max_wildcard_shapes,
    )


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
        limits: RealmLimits = RealmLimits(),
    ):
        self.name = name
        self.policy = policy
        self.sessions: dict[int, Peer] = {}
        self._roles: dict | None = None
        self.meta = MetaApi(self, new_id)  # reads the broker and dealer below when asked, never before
        self.broker = Broker(
            policy,
            new_id,
            max_subscriptions_per_session=limits.max_subscriptions_per_session,
            max_wildcard_shapes=limits.max_wildcard_shapes,
            on_change=self.meta.subscription_changed,
        )
        self.dealer = Dealer(
            policy,
            new_id,
            choose=choose,
            max_call_timeout=limits.max_call_timeout,
            max_registrations_per_session=limits.max_registrations_per_session,
            max_pending_calls_per_session=limits.max_pending_calls_per_session,
            max_wildcard_shapes=limits.max_wildcard_shapes,
            on_change=self.meta.registration_changed,
        )
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

    def update_limits(self, limits: RealmLimits) -> None:
        """A reload's new per-session limits, for live sessions too (what they already hold is kept)."""
        self.broker.set_limits(
            max_subscriptions_per_session=limits.max_subscriptions_per_session,
            max_wildcard_shapes=limits.max_wildcard_shapes,
        )
        self.dealer.set_limits(
            max_registrations_per_session=limits.max_registrations_per_session,
            max_pending_calls_per_session=limits.max_pending_calls_per_session,
            max_call_timeout=limits.max_call_timeout,
            max_wildcard_shapes=limits.max_wildcard_shapes,
        )

    def router_roles(self) -> dict:
        """The roles and features announced in WELCOME: exactly what works (built once; WELCOME only reads them).
        The spec would have the dealer announce `session_meta_api` too; the broker's announcement stands for both,
        which keeps a WELCOME (MessagePack, an anonymous authid) within the 512 bytes a RawSocket client may
        announce as its maximum."""
        if self._roles is None:
            dealer = self.dealer.router_features()
            dealer.registration_meta_api = True
            self._roles = {
                "broker": RoleBrokerFeatures(
                    publisher_identification=True,
                    pattern_based_subscription=True,
                    session_meta_api=True,
                    subscription_meta_api=True,
                    subscriber_blackwhite_listing=True,
                    publisher_exclusion=True,
                    payload_transparency=True,
                ),
                "dealer": dealer,
            }
        return self._roles

    def join(self, peer: Peer) -> list[Effect]:
        """Add the session; the answer is `wamp.session.on_join` for whoever watches."""
        self.sessions[peer.session_id] = peer
        return self.meta.on_join(peer)

    def leave(self, peer: Peer) -> list[Effect]:
        """Remove the session and everything it held or was doing, then tell `wamp.session.on_leave`; idempotent."""
        if self.sessions.pop(peer.session_id, None) is None:
            return []
        effects = self.broker.remove_session(peer) + self.dealer.remove_session(peer)
        return effects + self.meta.on_leave(peer)

    def check(self, peer: Peer, msg: wamp.Message) -> list[Effect] | None:
        """Validate a request before it is authorized: the answer when it is refused, else None."""
        check = self._checks.get(type(msg))
        return None if check is None else check(peer, msg)

    def receive(self, peer: Peer, msg: wamp.Message, *, disclose: bool = False, now: float = 0.0) -> list[Effect]:
        """Route a checked and authorized request."""
        kind = type(msg)
        if kind is wamp.Publish:
            return self.broker.publish(peer, msg, disclose=disclose)
        if kind is wamp.Call:
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
