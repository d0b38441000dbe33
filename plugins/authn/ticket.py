"""The `ticket` authenticator: the client sends a shared secret (a password or an API token) in AUTHENTICATE.

The router stores only scrypt hashes of the tickets (`secret_hash`, made with `wampgate hash-secret`), so the config
file reveals none. The ticket itself crosses the wire in the clear: use this method on TLS listeners only.

Existence of an authid is never revealed: known and unknown authids get the same empty challenge, and an unknown one
is checked against a dummy hash with the same scrypt parameters, so both refusals cost the same time. The reason in
the log says which it was ("unknown authid" / "wrong ticket"); the ticket is never logged.

scrypt is slow on purpose (about 0.1 s and 32 MiB per check with the defaults), so on a real reactor the checks run
in its thread pool, a few at a time with a bounded queue: a flood of AUTHENTICATEs can neither stall the event loop
nor exhaust memory; when the queue is full the attempt is refused (fail closed), and not held against the client
(the router's overload is not a wrong ticket). The queue is one for the whole router (the plugin context's
SharedState): every ticket listener, and the authenticators a reload builds, share its bound.

    [listeners.auth.ticket]
    [[listeners.auth.ticket.principals]]
    authid = "alice"
    role = "user"
    secret_hash = "scrypt$ln=15,r=8,p=1$...$..."
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from typing import Any

from twisted.internet import defer, threads
from twisted.internet.interfaces import IReactorThreads
from zope.interface import implementer

from wampgate.plugins.authn.principals import Principal, most_common, principal_realms, principal_roles, read_principals
from wampgate.plugin import (
    AuthRequest,
    Challenge,
    Denied,
    IAuthenticator,
    Identity,
    PluginContext,
    Table,
    check_hash_format,
    dummy_hash,
    verify_secret,
)

MAX_TICKET_BYTES = 4096
MAX_RUNNING = 4  # concurrent scrypt checks: 4 x 32 MiB with the default parameters
MAX_WAITING = 256  # queued checks beyond that; more is a flood, refused


@implementer(IAuthenticator)
class TicketAuthenticator:
    """Checks a ticket against the principal's scrypt hash."""

    authmethod = "ticket"

    def __init__(self, config: Mapping[str, Any], *, reactor: Any = None, context: PluginContext | None = None):
        table = Table(config, "", ("principals",))
        self._principals: dict[str, tuple[Principal, str]] = {}
        for principal, row in read_principals(table, ("secret_hash",)):
            encoded = row.string("secret_hash", required=True)
            problem = check_hash_format(encoded)
            if problem:
                raise row.fail("secret_hash", problem)
            self._principals[principal.authid] = (principal, encoded)
        self._dummy = _dummy_like([encoded for _, encoded in self._principals.values()])
        self._checks = _check_queue(reactor, context) if IReactorThreads.providedBy(reactor) else None

    def roles(self) -> dict[str, str]:
        """The principals' roles, by key: the router checks that the realms it serves define them."""
        return principal_roles(principal for principal, _ in self._principals.values())

    def realms(self) -> dict[str, str]:
        """The realms principals are bound to, by key: the router checks that they exist and are served."""
        return principal_realms(principal for principal, _ in self._principals.values())

    def begin(self, request: AuthRequest) -> Challenge | Denied:
        """The same empty challenge whether or not the authid is known."""
        if not request.authid:
            return Denied("ticket authentication needs an authid in HELLO")
        return Challenge("ticket", {})

    def finish(self, request: AuthRequest, challenge: Challenge, signature: Any, extra: Any):
        """Identity when the ticket matches the authid's hash; Denied otherwise (after the same amount of work)."""
        if not isinstance(signature, str) or _utf8_size(signature) > MAX_TICKET_BYTES:
            return Denied(f"malformed ticket: expected a string of at most {MAX_TICKET_BYTES} bytes")
        entry = self._principals.get(request.authid or "")
        encoded = entry[1] if entry else self._dummy
        if self._checks is None:  # no thread pool (a test clock): check inline
            return self._conclude(verify_secret(signature, encoded), entry)
        verdict = self._checks.verify(signature, encoded)
        if isinstance(verdict, defer.Deferred):
            return verdict.addCallback(self._conclude, entry)
        return self._conclude(verdict, entry)

    def _conclude(self, matched: Any, entry: tuple[Principal, str] | None) -> Identity | Denied:
        if matched is _FULL:
            return Denied(f"more than {MAX_WAITING} ticket checks waiting: refused unchecked", counts_as_failure=False)
        if entry is None:
            return Denied("unknown authid")
        if matched is not True:
            return Denied("wrong ticket")
        principal = entry[0]
        return Identity(authid=principal.authid, authrole=principal.role, authmethod="ticket", authprovider="static",
                        realm=principal.realm)


def _utf8_size(text: str) -> int:
    """Bytes of `text` in UTF-8, without encoding a huge string just to find it is too long."""
    return len(text) if len(text) > MAX_TICKET_BYTES else len(text.encode("utf-8", "surrogatepass"))


def _dummy_like(hashes: list[str]) -> str:
    """What unknown authids are checked against: a hash with the most common configured scrypt parameters, so a
    miss costs what checking most real users costs."""
    parameters = most_common(encoded.split("$")[1] for encoded in hashes)
    return dummy_hash(next(encoded for encoded in hashes if encoded.split("$")[1] == parameters))


_FULL = object()  # the answer of a check that was refused because the queue was full
CHECK_QUEUE = "ticket.check_queue"  # its name in the router's SharedState


def _check_queue(reactor: Any, context: PluginContext | None) -> _CheckQueue:
    """The router's one queue of scrypt checks, or a queue of this authenticator's own when built without a
    context."""
    if context is None:
        return _CheckQueue(reactor)
    return context.shared.get(CHECK_QUEUE, lambda: _CheckQueue(reactor))


class _CheckQueue:
    """Runs `verify_secret` in the reactor's thread pool, at most MAX_RUNNING at once and MAX_WAITING queued. A
    slot is freed only when its thread is done, even if the caller stopped waiting (timeout, disconnect)."""

    def __init__(self, reactor: Any):
        self._reactor = reactor
        self._running = 0
        self._waiting: deque[tuple[str, str, defer.Deferred]] = deque()

    def verify(self, secret: str, encoded: str) -> defer.Deferred | object:
        if len(self._waiting) >= MAX_WAITING:
            return _FULL
        result: defer.Deferred = defer.Deferred()
        self._waiting.append((secret, encoded, result))
        self._start_next()
        return result

    def _start_next(self) -> None:
        while self._running < MAX_RUNNING and self._waiting:
            secret, encoded, result = self._waiting.popleft()
            if result.called:  # cancelled while queued
                continue
            self._running += 1
            pool = self._reactor.getThreadPool()
            done = threads.deferToThreadPool(self._reactor, pool, verify_secret, secret, encoded)
            done.addBoth(self._finished, result)

    def _finished(self, matched: Any, result: defer.Deferred) -> None:
        self._running -= 1
        if not result.called:
            result.callback(matched is True)
        self._start_next()
