"""One authentication attempt, from HELLO to an identity or a refusal: the HELLO is bounded, the peer's login rate
checked, the authenticator asked within a bounded time; failures are counted per identity (method, realm, authid)
and per peer address, and refusals are slowed down, then locked out."""

from __future__ import annotations

import inspect
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from wampgate.core.authbounds import size_over, utf8_length_over
from wampgate.core.lockout import AuthFailures, identity_key, peer_key
from wampgate.counters import Counters
from wampgate.model import AuthRequest, Challenge, Denied, Identity

ANONYMOUS = "anonymous"
LOGGED_AUTHID_CHARS = 100  # of a longer authid, log lines show this much and its length


def failure_keys(method: str, request: AuthRequest) -> tuple[bytes | None, bytes]:
    """What failures are counted against: the identity the HELLO claims for this method (when it names an authid)
    and the peer's address."""
    host = request.transport.peer.rsplit(":", 1)[0]
    identity = identity_key(method, request.realm or "", request.authid) if request.authid else None  # "": none
    return identity, peer_key(host)


def shown_authid(authid: str | None) -> str | None:
    """An authid as log lines show it: whole when short, else its start and its length."""
    if authid is None or len(authid) <= LOGGED_AUTHID_CHARS:
        return authid
    return f"{authid[:LOGGED_AUTHID_CHARS]}... ({len(authid)} characters)"


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
        """Refuse at once what is too big to keep, a locked-out identity or peer, or a peer over its login rate;
        only then ask the authenticator."""
        oversized = self._oversized()
        if oversized is not None:
            self._counters.increment("authentication_oversized", method=self._method, field=oversized)
            self._refuse(f"HELLO {oversized} over its bound")
            return
        identity, peer = failure_keys(self._method, self.request)
        now = self._clock.seconds()
        if self._failures.locked(identity, peer, now):
            self._refuse("locked out after repeated failures")
            return
        if self._method != ANONYMOUS and not self._failures.admit_login(peer, now):
            self._counters.increment("authentication_rate_limited", method=self._method)
            self._refuse("over logins_per_peer_rate for this address")
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

    def _oversized(self) -> str | None:
        """Which part of the HELLO is over its bound ("authid", "authextra"), if any."""
        policy = self._failures.policy
        authid = self.request.authid
        if isinstance(authid, str) and utf8_length_over(authid, policy.max_authid_length):
            return "authid"
        if size_over(self.request.authextra, policy.max_authextra_size):
            return "authextra"
        return None

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
            self._succeeded(answer)
        elif isinstance(answer, Challenge) and self._challenge is None:
            self._challenge = answer
            self._session.challenge(answer)
        else:
            reason = answer.reason if isinstance(answer, Denied) else f"unexpected answer {type(answer).__name__}"
            self._fail(reason, counts=not isinstance(answer, Denied) or answer.counts_as_failure)

    def _succeeded(self, identity: Identity) -> None:
        """Clear the failures of the identity that really authenticated, and only that one: the HELLO must have
        named it, and it must be the authenticator's own answer for this method. Anonymous logins prove nothing, so
        they clear nothing."""
        request = self.request
        if self._method != ANONYMOUS and request.authid and request.authid == identity.authid:
            self._failures.record_success(identity_key(self._method, request.realm or "", identity.authid))
        self._counters.increment("authentication_success", method=self._method)
        self._session.authenticated(identity)

    def _on_error(self, failure) -> None:
        self._pending = None
        if self._cancelled:
            return
        if failure.check(defer.TimeoutError, defer.CancelledError):
            # The router's (or its authenticator's) slowness, not the client's doing: never held against the client.
            self._fail(f"the authenticator did not answer within {self._timeout} s", counts=False)
        else:
            self.log.failure("authenticator {method} raised", failure=failure, method=self._method)
            self._fail("the authenticator raised an error")

    def _fail(self, reason: str, counts: bool = True) -> None:
        if not counts:
            self._refuse(reason)
            return
        self._log_failure(reason)
        delay = self._failures.record_failure(*failure_keys(self._method, self.request), self._clock.seconds())
        if delay > 0:
            self._delayed = self._clock.callLater(delay, self._session.refused)
        else:
            self._session.refused()

    def _refuse(self, reason: str) -> None:
        """Refuse at once, counting nothing against the identity or the peer."""
        self._log_failure(reason)
        self._session.refused()

    def _log_failure(self, reason: str) -> None:
        self._counters.increment("authentication_failure", method=self._method)
        self.log.info(
            "authentication failed: method {method}, authid {authid!r}, realm {realm}, peer {peer}: {reason}",
            method=self._method,
            authid=shown_authid(self.request.authid),
            realm=self.request.realm,
            peer=self.request.transport.peer,
            reason=reason,
        )
