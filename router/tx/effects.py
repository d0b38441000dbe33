"""Carries out what a realm's core asks for: deliveries, aborts, and the dealer's call timers."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from twisted.logger import Logger

from autobahn.wamp import message as wamp

from router.core.effects import Abort, CancelTimer, Kick, Send, StartTimer
from router.core.errors import PAYLOAD_SIZE_EXCEEDED
from router.core.peer import Peer
from router.core.realm import Realm
from router.tx.traffic import Traffic

_TOO_LARGE = "the message is larger than the client announced it can receive"
_TOO_LARGE_FOR_CALLEE = "the invocation is larger than the callee announced it can receive"


class EffectRunner:
    """One per realm. Timers live here, not in a session: another session's message (a callee leaving) may cancel
    a timer that a caller's CALL started."""

    log = Logger()

    def __init__(self, realm: Realm, clock: Any, traffic: Traffic | None = None):
        self._realm = realm
        self._clock = clock
        self._traffic = traffic or Traffic()
        self._timers: dict[Hashable, Any] = {}

    def run(self, effects: list) -> None:
        """Apply effects in order."""
        for effect in effects:
            kind = type(effect)
            if kind is Send:
                message = effect.message
                if type(message) is wamp.Event:
                    self._traffic.deliveries += len(effect.recipients)
                for recipient in effect.recipients:
                    if not recipient.channel.send_message(message):
                        self._undeliverable(recipient, message)
            elif kind is Abort:
                session = getattr(effect.peer.channel, "session", None)
                if session is not None:
                    session.abort(effect.reason, effect.message)
            elif kind is Kick:
                session = getattr(effect.peer.channel, "session", None)
                if session is not None and session.peer is effect.peer:
                    session.goodbye(effect.reason, effect.message)
            elif kind is StartTimer:
                self._timers[effect.key] = self._clock.callLater(effect.delay, self._fire, effect.key)
            elif kind is CancelTimer:
                timer = self._timers.pop(effect.key, None)
                if timer is not None and timer.active():
                    timer.cancel()
            else:
                raise TypeError(f"unknown effect {effect!r}")

    def _undeliverable(self, recipient: Peer, message: wamp.Message) -> None:
        """A message too large for what the recipient announced it can take (RawSocket). Nothing may hang on it: an
        INVOCATION is answered to its caller as if the callee had refused it, a RESULT becomes an ERROR to the
        caller, an EVENT is skipped for that subscriber, and anything else ends the recipient's session."""
        kind = type(message)
        if kind is wamp.Event:
            return
        if kind is wamp.Invocation:
            refusal = wamp.Error(
                wamp.Invocation.MESSAGE_TYPE, message.request, PAYLOAD_SIZE_EXCEEDED, args=[_TOO_LARGE_FOR_CALLEE]
            )
            self.run(self._realm.dealer.error(recipient, refusal))
        elif kind is wamp.Result:
            refusal = wamp.Error(wamp.Call.MESSAGE_TYPE, message.request, PAYLOAD_SIZE_EXCEEDED, args=[_TOO_LARGE])
            if not recipient.channel.send_message(refusal):
                self._end(recipient)
        else:
            self._end(recipient)

    @staticmethod
    def _end(recipient: Peer) -> None:
        session = getattr(recipient.channel, "session", None)
        if session is not None:
            session.abort(PAYLOAD_SIZE_EXCEEDED, _TOO_LARGE)

    @property
    def pending_timers(self) -> int:
        return len(self._timers)

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        try:
            self.run(self._realm.dealer.on_timeout(key, self._clock.seconds()))
        except Exception:
            self.log.failure("error while handling a call timeout")
