"""One authentication attempt, from HELLO to an identity or a refusal: the authenticator is asked within a bounded
time, failures are counted per authid and per peer address, and refusals are slowed down, then locked out."""

from __future__ import annotations

import inspect
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from router.core.lockout import AuthFailures
from router.counters import Counters
from router.model import AuthRequest, Challenge, Denied, Identity


def failure_keys(request: AuthRequest) -> tuple[tuple | None, tuple]:
    """What failures are counted against: the authid in its realm (when given) and the peer's address."""
    host = request.transport.peer.rsplit(":", 1)[0]
    authid = ("authid", request.realm, request.authid) if request.authid else None
    return authid, ("peer", host)


class Authentication:
    """Drives `authenticator` for one HELLO and reports to the session: `authenticated(identity)`,
    `challenge(challenge)` or `refused()`. Nothing here ever tells the client why."""

    log = Logger()

    def __init__(self, session: Any, authenticator: Any, method: str, request: AuthRequest, *, clock: Any,
                 timeout: float, failures: AuthFailures, counters: Counters):
        self._session = session
        self._authenticator = authenticator
        self._method = method
        self.request = request
        self._clock = clock
        self._timeout = timeout
        self._failures = failures
        self._counters = counters
        self._challenge: Challenge | None = None
        self._pending: defer.Deferred | None = None
        self._delayed = None
        self._cancelled = False

    def start(self) -> None:
        now = self._clock.seconds()
        if self._failures.locked(*failure_keys(self.request), now):
            self._log_failure("locked out after repeated failures")
            self._session.refused()
            return
        self._ask(self._authenticator.begin, self.request)

    def answer(self, signature: Any, extra: dict) -> None:
        """The client's AUTHENTICATE for the challenge it was sent."""
        self._ask(self._authenticator.finish, self.request, self._challenge, signature, extra)

    def cancel(self) -> None:
        """The session is gone: drop whatever is still pending."""
        self._cancelled = True
        if self._pending is not None:
            self._pending.cancel()
        if self._delayed is not None and self._delayed.active():
            self._delayed.cancel()

    def _ask(self, method, *args) -> None:
        """Call the authenticator; an answer that is not ready now is awaited for at most the timeout."""
        try:
            answer = method(*args)
        except Exception:
            self._on_error(Failure())
            return
        if inspect.isawaitable(answer):
            answer = defer.ensureDeferred(answer)
        if not isinstance(answer, defer.Deferred):
            self._on_answer(answer)
            return
        answer.addTimeout(self._timeout, self._clock)
        self._pending = answer
        answer.addCallbacks(self._on_answer, self._on_error)

    def _on_answer(self, answer: Any) -> None:
        self._pending = None
        if self._cancelled:
            return
        if isinstance(answer, Identity):
            self._failures.record_success(failure_keys(self.request)[0])
            self._counters.increment("authentication_success", method=self._method)
            self._session.authenticated(answer)
        elif isinstance(answer, Challenge) and self._challenge is None:
            self._challenge = answer
            self._session.challenge(answer)
        else:
            reason = answer.reason if isinstance(answer, Denied) else f"unexpected answer {type(answer).__name__}"
            self._fail(reason, counts=not isinstance(answer, Denied) or answer.counts_as_failure)

    def _on_error(self, failure) -> None:
        self._pending = None
        if self._cancelled:
            return
        if failure.check(defer.TimeoutError, defer.CancelledError):
            self._fail(f"the authenticator did not answer within {self._timeout} s")
        else:
            self.log.failure("authenticator {method} raised", failure=failure, method=self._method)
            self._fail("the authenticator raised an error")

    def _fail(self, reason: str, counts: bool = True) -> None:
        self._log_failure(reason)
        now = self._clock.seconds()
        if not counts:
            self._session.refused()
            return
        delay = self._failures.record_failure(*failure_keys(self.request), now)
        if delay > 0:
            self._delayed = self._clock.callLater(delay, self._session.refused)
        else:
            self._session.refused()

    def _log_failure(self, reason: str) -> None:
        self._counters.increment("authentication_failure", method=self._method)
        self.log.info(
            "authentication failed: method {method}, authid {authid!r}, realm {realm}, peer {peer}: {reason}",
            method=self._method,
            authid=self.request.authid,
            realm=self.request.realm,
            peer=self.request.transport.peer,
            reason=reason,
        )
