"""A realm's authorizer chain behind its decision cache.

Every authorizer that applies to the session's role must allow (the first deny wins and later ones are not asked,
and the deny names its link, `authorizers[<index>] (<plugin>)`, for the router's log line);
identities are disclosed only when every one of them says so; the answer is cached for the shortest TTL any of them
gave, and for the whole role only when all of them said it holds for the whole role. An authorizer may answer with a
Decision, a Deferred or a coroutine; an exception, a timeout or anything but a Decision is a deny.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from wampgate.core.decisions import DecisionCache
from wampgate.model import DENY, AuthorizationRequest, Decision


@dataclass(frozen=True)
class ChainLink:
    name: str
    authorizer: Any  # IAuthorizer
    roles: frozenset[str] | None  # None: every role

    def applies(self, role: str) -> bool:
        return self.roles is None or role in self.roles


def combine(first: Decision, second: Decision) -> Decision:
    return Decision(
        allow=first.allow and second.allow,
        disclose=first.disclose and second.disclose,
        cache_ttl=min(first.cache_ttl, second.cache_ttl),
        per_role=first.per_role and second.per_role,
        denied_by=first.denied_by or second.denied_by,
    )


class RealmAuthorization:
    """`decide(request)` returns a Decision at once when it can (cache, synchronous authorizers), else a Deferred
    that always fires with a Decision (never fails)."""

    log = Logger()

    def __init__(self, chain: Sequence[ChainLink], *, clock: Any, timeout: float, cache: DecisionCache):
        self._chain = tuple(chain)
        self._clock = clock
        self._timeout = timeout
        self.cache = cache

    def decide(self, request: AuthorizationRequest) -> Decision | defer.Deferred:
        identity = request.identity
        cached = self.cached(identity, request.action, request.uri, request.match)
        return cached if cached is not None else self.ask(request)

    def cached(self, identity, action: str, uri: str, match: str) -> Decision | None:
        """The hot path: a cached answer, looked up without building a request."""
        return self.cache.get(identity.authrole, identity.authid, identity.authmethod, action, uri, match,
                              self._clock.seconds())

    def ask(self, request: AuthorizationRequest) -> Decision | defer.Deferred:
        """Ask the chain (no cached answer)."""
        links = [link for link in self._chain if link.applies(request.identity.authrole)]
        if not links:
            return replace(DENY, denied_by=f"no authorizer for role {request.identity.authrole!r}")
        return self._run(links, 0, request, None)

    def _run(self, links, index, request, so_far: Decision | None):
        while index < len(links):
            answer = self._ask(links[index], request)
            if isinstance(answer, defer.Deferred):
                return answer.addCallback(self._continue, links, index, request, so_far)
            so_far = answer if so_far is None else combine(so_far, answer)
            if not so_far.allow:
                break
            index += 1
        self._remember(request, so_far)
        return so_far

    def _continue(self, answer: Decision, links, index, request, so_far):
        so_far = answer if so_far is None else combine(so_far, answer)
        if not so_far.allow:
            self._remember(request, so_far)
            return so_far
        return self._run(links, index + 1, request, so_far)

    def _ask(self, link: ChainLink, request: AuthorizationRequest) -> Decision | defer.Deferred:
        try:
            answer = link.authorizer.authorize(request)
        except Exception:
            self.log.failure("authorizer {name} raised on {action} {uri}", name=link.name, action=request.action,
                             uri=request.uri)
            return self._denied(link)
        if inspect.isawaitable(answer):
            answer = defer.ensureDeferred(answer)
        if isinstance(answer, defer.Deferred):
            answer.addTimeout(self._timeout, self._clock)
            return answer.addCallbacks(self._checked, self._failed, callbackArgs=(link,), errbackArgs=(link, request))
        return self._checked(answer, link)

    def _checked(self, answer: Any, link: ChainLink) -> Decision:
        if isinstance(answer, Decision) and type(answer.allow) is bool:
            return answer if answer.allow else self._denied(link, answer)
        self.log.warn("authorizer {name} answered {kind}, not a Decision: denied", name=link.name,
                      kind=type(answer).__name__)
        return self._denied(link)

    def _denied(self, link: ChainLink, answer: Decision = DENY) -> Decision:
        """The deny, naming the link as the config does: its index in the realm's `authorizers` and its plugin."""
        index = next(i for i, candidate in enumerate(self._chain) if candidate is link)
        return Decision(allow=False, disclose=answer.disclose, cache_ttl=answer.cache_ttl, per_role=answer.per_role,
                        denied_by=f"authorizers[{index}] ({link.name})")

    def _failed(self, failure, link: ChainLink, request: AuthorizationRequest) -> Decision:
        if failure.check(defer.TimeoutError, defer.CancelledError):
            self.log.warn("authorizer {name} did not answer on {action} {uri} within {timeout} s: denied",
                          name=link.name, action=request.action, uri=request.uri, timeout=self._timeout)
        else:
            self.log.failure("authorizer {name} failed on {action} {uri}", failure=failure, name=link.name,
                             action=request.action, uri=request.uri)
        return self._denied(link)

    def _remember(self, request: AuthorizationRequest, decision: Decision) -> None:
        identity = request.identity
        self.cache.put(identity.authrole, identity.authid, identity.authmethod, request.action, request.uri,
                       request.match, decision, self._clock.seconds())
