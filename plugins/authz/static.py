"""The built-in static authorizer: per role, rules of URI + match policy + allowed actions; no rule means deny."""

from __future__ import annotations

from collections.abc import Mapping

from zope.interface import implementer

from router.config import Permission, RoleConfig
from router.core.uri import EXACT, PREFIX, WILDCARD, UriIndex
from router.interfaces import IAuthorizer
from router.model import DENY, AuthorizationRequest, Decision


def _leading_text(pattern: str, match: str) -> str:
    """The fixed text every URI a pattern can match starts with."""
    if match == PREFIX:
        return pattern
    parts = pattern.split(".")
    fixed = next((i for i, part in enumerate(parts) if not part), len(parts))
    return ".".join(parts[:fixed]) + "." if fixed else ""


@implementer(IAuthorizer)
class StaticAuthorizer:
    """The most specific rule wins: exact, then the longest prefix, then the wildcard with the fewest wildcards.

    A pattern subscription or registration needs a rule that covers every URI the pattern can match: a prefix rule
    its fixed leading text starts with, or a wildcard rule identical to it.
    """

    def __init__(self, roles: Mapping[str, RoleConfig]):
        self._rules: dict[str, UriIndex[Permission]] = {}
        for name, role in roles.items():
            index: UriIndex[Permission] = UriIndex()
            for permission in role.permissions:
                index.add(permission.uri, permission.match, permission)
            self._rules[name] = index

    def authorize(self, request: AuthorizationRequest) -> Decision:
        index = self._rules.get(request.identity.authrole)
        if index is None:
            return DENY
        rule = self._rule_for(index, request.uri, request.match)
        if rule is None or request.action not in rule.allow:
            return DENY
        return Decision(allow=True, disclose=rule.disclose)

    @staticmethod
    def _rule_for(index: UriIndex[Permission], uri: str, match: str) -> Permission | None:
        if match == EXACT:
            return index.best(uri)
        same = index.get(uri, match) if match == WILDCARD else None
        if same is not None:
            return same
        lead = _leading_text(uri, match)
        return next((rule for rule in index.matching(lead) if rule.match == PREFIX), None)
