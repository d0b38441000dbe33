"""Carries out what a realm's core asks for: deliveries, aborts, and the dealer's call timers."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from twisted.logger import Logger

from autobahn.wamp import message as wamp

from wampgate.core.effects import Abort, Callee, CancelTimer, Interest, Joined, Kick, Left, Published, Send, StartTimer
from wampgate.core.errors import INVALID_ARGUMENT, PAYLOAD_SIZE_EXCEEDED, UNAVAILABLE
from wampgate.core.peer import Peer
from wampgate.core.realm import Realm
from wampgate.tx.channel import CONGESTED, TOO_LARGE
from wampgate.tx.traffic import Traffic

# What a caller is told when its call cannot reach the callee, and what a recipient is told when a reply cannot
# reach it, by the channel's refusal (see router/tx/channel.py).
_REFUSED_INVOCATION = {
    TOO_LARGE: (PAYLOAD_SIZE_EXCEEDED, "the invocation is larger than the callee announced it can receive"),
    CONGESTED: (UNAVAILABLE, "the callee is not reading its messages"),
}
_UNENCODABLE_INVOCATION = (INVALID_ARGUMENT, "the arguments cannot be encoded for the callee")
_REFUSED_REPLY = {
    TOO_LARGE: (PAYLOAD_SIZE_EXCEEDED, "the message is larger than the client announced it can receive"),
}
_UNENCODABLE_REPLY = (INVALID_ARGUMENT, "the result cannot be encoded for this client")
# What a clustered realm tells the other nodes: carried by its cluster link (router/tx/cluster/realm_link.py).
_CLUSTER_EFFECTS = (Published, Joined, Left, Interest, Callee)


class EffectRunner:
    """One per realm. Timers live here, not in a session: another session's message (a callee leaving) may cancel
    a timer that a caller's CALL started."""

    log = Logger()

    def __init__(self, realm: Realm, clock: Any, traffic: Traffic | None = None):
        self._realm = realm
        self._clock = clock
        self._traffic = traffic or Traffic()
        self._timers: dict[Hashable, Any] = {}
        self.cluster: Any = None  # the realm's cluster link, when the router is a node of a cluster

    def run(self, effects: list) -> None:
        """Apply effects in order."""
        for effect in effects:
            kind = type(effect)
            if kind is Send:
                message = effect.message
                if type(message) is wamp.Event:
                    self._traffic.deliveries += len(effect.recipients)
                for recipient in effect.recipients:
                    refusal = recipient.channel.send_message(message)
                    if refusal is not None:
                        self._undeliverable(recipient, message, refusal)
            elif kind is Abort:
                session = getattr(effect.peer.channel, "session", None)
                if session is not None:
                    session.abort(effect.reason, effect.message)
            elif kind is Kick:
                if effect.peer.node is not None and self.cluster is not None:
                    self.cluster.kick_remote(effect.peer, effect.reason, effect.message)
                    continue
                session = getattr(effect.peer.channel, "session", None)
                if session is not None and session.peer is effect.peer:
                    session.goodbye(effect.reason, effect.message)
            elif kind is StartTimer:
                self._timers[effect.key] = self._clock.callLater(effect.delay, self._fire, effect.key)
            elif kind is CancelTimer:
                timer = self._timers.pop(effect.key, None)
                if timer is not None and timer.active():
                    timer.cancel()
            elif kind in _CLUSTER_EFFECTS:
                if self.cluster is not None:
                    self.cluster.apply(effect)
            else:
                raise TypeError(f"unknown effect {effect!r}")

    def _undeliverable(self, recipient: Peer, message: wamp.Message, refusal: str) -> None:
        """A message the recipient's channel refused (too large for it, over its outgoing budget, or not encodable
        by its serializer). Nothing may hang on it, and a call ends exactly once: an INVOCATION is answered to its
        caller as if the callee had refused it; a RESULT or ERROR becomes an ERROR to the caller when that can
        still reach it, else the caller's connection ends (the dealer then interrupts the callee); an EVENT is
        skipped for that subscriber; anything else ends the recipient's connection."""
        kind = type(message)
        if kind is wamp.Event:
            return
        if kind is wamp.Invocation:
            error, text = _REFUSED_INVOCATION.get(refusal, _UNENCODABLE_INVOCATION)
            answer = wamp.Error(wamp.Invocation.MESSAGE_TYPE, message.request, error, args=[text])
            self.run(self._realm.dealer.error(recipient, answer))
            return
        reason = _REFUSED_REPLY.get(refusal) if refusal != CONGESTED else None
        if reason is None and refusal != CONGESTED:
            reason = _UNENCODABLE_REPLY
        if kind in (wamp.Result, wamp.Error) and reason is not None:
            answer = wamp.Error(wamp.Call.MESSAGE_TYPE, message.request, reason[0], args=[reason[1]])
            if recipient.channel.send_message(answer) is None:
                return
        self._end(recipient, refusal)

    def _end(self, recipient: Peer, refusal: str) -> None:
        session = getattr(recipient.channel, "session", None)
        if session is None:
            return
        if refusal == CONGESTED:
            self.log.info("session {session} disconnected: a reply could not be queued within its outgoing budget",
                          session=recipient.session_id)
            recipient.channel.abort_transport()
        else:
            error, text = _REFUSED_REPLY.get(refusal, _UNENCODABLE_REPLY)
            session.abort(error, text)

    @property
    def pending_timers(self) -> int:
        return len(self._timers)

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        try:
            self.run(self._realm.dealer.on_timeout(key, self._clock.seconds()))
        except Exception:
            self.log.failure("error while handling a call timeout")
