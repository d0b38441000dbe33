"""Carries out what a realm's core asks for: deliveries, aborts, and the dealer's call timers."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from twisted.logger import Logger

from router.core.effects import Abort, CancelTimer, Send, StartTimer
from router.core.realm import Realm


class EffectRunner:
    """One per realm. Timers live here, not in a session: another session's message (a callee leaving) may cancel
    a timer that a caller's CALL started."""

    log = Logger()

    def __init__(self, realm: Realm, clock: Any):
        self._realm = realm
        self._clock = clock
        self._timers: dict[Hashable, Any] = {}

    def run(self, effects: list) -> None:
        """Apply effects in order."""
        for effect in effects:
            kind = type(effect)
            if kind is Send:
                message = effect.message
                for recipient in effect.recipients:
                    recipient.channel.send_message(message)
            elif kind is Abort:
                session = getattr(effect.peer.channel, "session", None)
                if session is not None:
                    session.abort(effect.reason, effect.message)
            elif kind is StartTimer:
                self._timers[effect.key] = self._clock.callLater(effect.delay, self._fire, effect.key)
            elif kind is CancelTimer:
                timer = self._timers.pop(effect.key, None)
                if timer is not None and timer.active():
                    timer.cancel()
            else:
                raise TypeError(f"unknown effect {effect!r}")

    @property
    def pending_timers(self) -> int:
        return len(self._timers)

    def _fire(self, key: Hashable) -> None:
        self._timers.pop(key, None)
        try:
            self.run(self._realm.dealer.on_timeout(key, self._clock.seconds()))
        except Exception:
            self.log.failure("error while handling a call timeout")
