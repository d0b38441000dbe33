"""The sessions of one realm and the routing of their messages to the broker (and dealer)."""

from __future__ import annotations

from collections.abc import Callable

from autobahn.wamp import message as wamp
from autobahn.wamp.role import RoleBrokerFeatures

from router.core import errors
from router.core.broker import Broker
from router.core.effects import Abort, Effect
from router.core.peer import Peer
from router.core.uri import UriPolicy

# What each client request asks permission for; messages not listed need no authorization.
ACTIONS: dict[type, str] = {
    wamp.Publish: "publish",
    wamp.Subscribe: "subscribe",
}


def uri_of(msg: wamp.Message) -> str:
    """The URI an authorizable message acts on."""
    return msg.topic


def match_of(msg: wamp.Message) -> str:
    return getattr(msg, "match", None) or "exact"


class Realm:
    """One realm: its joined sessions, its broker, and the features WELCOME announces for them."""

    def __init__(self, name: str, policy: UriPolicy, new_id: Callable[[], int]):
        self.name = name
        self.policy = policy
        self.sessions: dict[int, Peer] = {}
        self.broker = Broker(policy, new_id)
        self._checks = {
            wamp.Subscribe: self.broker.check_subscribe,
            wamp.Publish: self.broker.check_publish,
        }
        self._handlers = {
            wamp.Subscribe: self.broker.subscribe,
            wamp.Unsubscribe: self.broker.unsubscribe,
        }

    def router_roles(self) -> dict:
        """The roles and features announced in WELCOME: exactly what works."""
        return {
            "broker": RoleBrokerFeatures(
                publisher_identification=True,
                pattern_based_subscription=True,
                subscriber_blackwhite_listing=True,
                publisher_exclusion=True,
                payload_transparency=True,
            )
        }

    def join(self, peer: Peer) -> list[Effect]:
        self.sessions[peer.session_id] = peer
        return []

    def leave(self, peer: Peer) -> list[Effect]:
        """Remove the session and everything it held; idempotent."""
        if self.sessions.pop(peer.session_id, None) is None:
            return []
        return self.broker.remove_session(peer)

    def check(self, peer: Peer, msg: wamp.Message) -> list[Effect] | None:
        """Validate a request before it is authorized: the answer when it is refused, else None."""
        check = self._checks.get(type(msg))
        return None if check is None else check(peer, msg)

    def receive(self, peer: Peer, msg: wamp.Message, *, disclose: bool = False) -> list[Effect]:
        """Route a checked and authorized request."""
        if type(msg) is wamp.Publish:
            return self.broker.publish(peer, msg, disclose=disclose)
        handler = self._handlers.get(type(msg))
        if handler is None:
            return [Abort(peer, errors.PROTOCOL_VIOLATION, f"unexpected {type(msg).__name__.upper()} message")]
        return handler(peer, msg)
