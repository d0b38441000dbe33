"""The built-in static authorizer: per role, rules of URI + match policy + allowed actions; no rule means deny."""

from __future__ import annotations

from collections.abc import Mapping

from zope.interface import implementer

from router.config import Permission, RoleConfig
from router.core.uri import EXACT, PREFIX, UriIndex, pattern_matches
from router.interfaces import IAuthorizer
from router.model import DENY, AuthorizationRequest, Decision


def _leading_text(pattern: str, match: str) -> str:
    """The fixed text every URI a pattern can match starts with."""
    if match == PREFIX:
        return pattern
    parts = pattern.split(".")
    fixed = next((i for i, part in enumerate(parts) if not part), len(parts))
    return ".".join(parts[:fixed]) + "." if fixed else ""


def _may_overlap(pattern: str, match: str, rule: Permission) -> bool:
    """Whether some URI could match both the pattern and the rule. Errs towards True: a wrong True refuses a
    subscription, a wrong False would leak events."""
    if rule.match == EXACT:
        return pattern_matches(pattern, match, rule.uri)
    if rule.match == PREFIX:
        lead = _leading_text(pattern, match)
        return lead.startswith(rule.uri) or rule.uri.startswith(lead)
    if match == PREFIX:
        rule_lead = _leading_text(rule.uri, rule.match)
        return rule_lead.startswith(pattern) or pattern.startswith(rule_lead)
    ours, theirs = pattern.split("."), rule.uri.split(".")
    return len(ours) == len(theirs) and all(not a or not b or a == b for a, b in zip(ours, theirs))


@implementer(IAuthorizer)
class StaticAuthorizer:
    """The most specific rule wins: exact, then the longest prefix, then the wildcard with the fewest wildcards.

    A prefix or wildcard pattern (subscription or registration) is allowed only when a prefix rule covers every URI
    the pattern can match and allows the action, and no other rule that could apply to one of those URIs withholds
    it: a pattern can never reach a topic an exact request would be refused.
    """

    def __init__(self, roles: Mapping[str, RoleConfig]):
        self._rules: dict[str, UriIndex[Permission]] = {}
        self._permissions: dict[str, tuple[Permission, ...]] = {}
        for name, role in roles.items():
            index: UriIndex[Permission] = UriIndex()
            for permission in role.permissions:
                index.add(permission.uri, permission.match, permission)
            self._rules[name] = index
            self._permissions[name] = role.permissions

    def authorize(self, request: AuthorizationRequest) -> Decision:
        role = request.identity.authrole
        index = self._rules.get(role)
        if index is None:
            return DENY
        if request.match == EXACT:
            rule = index.best(request.uri)
            if rule is None or request.action not in rule.allow:
                return DENY
            return Decision(allow=True, disclose=rule.disclose)
        return self._authorize_pattern(request, index, self._permissions[role])

    @staticmethod
    def _authorize_pattern(
        request: AuthorizationRequest, index: UriIndex[Permission], permissions: tuple[Permission, ...]
    ) -> Decision:
        lead = _leading_text(request.uri, request.match)
        cover = next((rule for rule in index.matching(lead) if rule.match == PREFIX), None)
        if cover is None or request.action not in cover.allow:
            return DENY
        for rule in permissions:
            if request.action not in rule.allow and _may_overlap(request.uri, request.match, rule):
                return DENY
        return Decision(allow=True, disclose=cover.disclose)
