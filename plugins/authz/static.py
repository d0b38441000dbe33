"""The built-in static authorizer: per role, rules of URI + match policy + allowed actions; no rule means deny.

Rules may name `{authid}` and `{authrole}` as whole URI components (`app.user.{authid}.inbox`). They are filled in
only with a value that is itself one valid component: an authid such as "a.b", "*", "" or "x#y" makes the rule not
apply at all, so no identity can widen a rule (or even look like it could).

The router's reserved space (`wamp.`, the meta API) is reached only by a rule that names it as written: a rule that
starts with a placeholder never grants a URI whose first component is reserved, and an authid or role equal to a
reserved first component ("wamp") never fills a placeholder in first place, so `{authid}.` cannot become `wamp.`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from zope.interface import implementer

from wampgate.plugin import (
    EXACT,
    PREFIX,
    WILDCARD,
    AuthorizationRequest,
    Decision,
    IAuthorizer,
    PluginConfigError,
    PluginContext,
    UriIndex,
    is_reserved,
    pattern_matches,
    specificity,
)

# Static answers hold until the config is reloaded (which drops every cached decision).
CACHE_TTL = 3600.0
_COMPONENT = re.compile(r"[^\s.#{}*\x00-\x1f\x7f]+\Z")


def _leading_text(pattern: str, match: str) -> str:
    """The fixed text every URI a pattern can match starts with."""
    if match == PREFIX:
        return pattern
    parts = pattern.split(".")
    fixed = next((i for i, part in enumerate(parts) if not part), len(parts))
    return ".".join(parts[:fixed]) + "." if fixed else ""


def _may_overlap(pattern: str, match: str, rule: Rule) -> bool:
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


@dataclass(frozen=True, slots=True)
class Rule:
    """One permission of a role, as this authorizer keeps it; `written` is the URI as the config wrote it (for a rule
    with placeholders filled in for one identity, `uri` is the filled one)."""

    uri: str
    match: str
    allow: frozenset[str]
    disclose: bool
    written: str

    @classmethod
    def from_permission(cls, permission: Any) -> Rule:
        """A realm role's permission (anything with `uri`, `match`, `allow` and `disclose`, as wampgate.config reads
        them), copied into this plugin's own frozen value."""
        return cls(permission.uri, permission.match, frozenset(permission.allow), bool(permission.disclose),
                   permission.uri)


def _reserved_component(value: str) -> bool:
    """Whether a URI whose first component is `value` lies in the router's reserved space."""
    return is_reserved(value + ".")


def _fill(rule: Rule, authid: str, authrole: str) -> Rule | None:
    """The rule for this identity, or None when a value is not one safe URI component, or would make the rule's first
    component a reserved one."""
    uri = rule.uri
    first = uri.split(".", 1)[0]
    for placeholder, value in (("{authid}", authid), ("{authrole}", authrole)):
        if placeholder in uri:
            if not isinstance(value, str) or not _COMPONENT.match(value):
                return None
            if first == placeholder and _reserved_component(value):
                return None
            uri = uri.replace(placeholder, value)
    return replace(rule, uri=uri)


class _RoleRules:
    """One role's rules: plain ones in an index, templated ones filled in per identity."""

    def __init__(self, permissions: Iterable[Any]):
        rules = [Rule.from_permission(permission) for permission in permissions]
        self.index: UriIndex[Rule] = UriIndex()
        self.templated: list[Rule] = []
        for rule in rules:
            if "{" in rule.uri:
                self.templated.append(rule)
            else:
                self.index.add(rule.uri, rule.match, rule)
        self.plain = tuple(rule for rule in rules if "{" not in rule.uri)

    def for_identity(self, authid: str, authrole: str) -> list[Rule]:
        filled = (_fill(rule, authid, authrole) for rule in self.templated)
        return [rule for rule in filled if rule is not None]


@implementer(IAuthorizer)
class StaticAuthorizer:
    """The most specific rule wins: exact, then the longest prefix, then the wildcard with the fewest wildcards.

    A prefix or wildcard pattern (subscription or registration) is allowed only when a prefix rule covers every URI
    the pattern can match and allows the action, and no other rule that could apply to one of those URIs withholds
    it: a pattern can never reach a topic an exact request would be refused.
    """

    def __init__(self, roles: Mapping[str, Any]):
        """`roles`: role name -> the realm's role config (its `permissions`), as wampgate.config reads them."""
        self._roles = {name: _RoleRules(role.permissions) for name, role in roles.items()}

    @classmethod
    def from_config(cls, config: Mapping[str, Any], *, reactor: Any, context: PluginContext) -> StaticAuthorizer:
        """The plugin factory: the rules are the realm's roles and permissions."""
        for key in config:
            raise PluginConfigError(key, "unknown key; the static authorizer reads the realm's [[realms.roles]]",
                                    config[key])
        realm = context.realm
        if realm is None:
            raise PluginConfigError("plugin", "the static authorizer belongs in a realm's [[realms.authorizers]]")
        return cls(realm.roles)

    def authorize(self, request: AuthorizationRequest) -> Decision:
        identity = request.identity
        rules = self._roles.get(identity.authrole)
        if rules is None:
            return Decision(allow=False, cache_ttl=CACHE_TTL, per_role=True)
        personal = rules.for_identity(identity.authid, identity.authrole) if rules.templated else []
        if request.match == EXACT or (request.match == WILDCARD and "" not in request.uri.split(".")):
            # a wildcard pattern without a wildcard matches exactly one URI: judge it as that URI
            rule = self._best(rules.index.best(request.uri), personal, request.uri)
        else:
            rule = self._pattern_rule(request, rules, personal)
        if rule is not None and is_reserved(request.uri) and not is_reserved(rule.written):
            rule = None  # the router's own `wamp.` API needs a rule that names it as written; nothing else reaches it
        per_role = not rules.templated  # with {authid} rules, answers are this identity's own
        if rule is None or request.action not in rule.allow:
            return Decision(allow=False, cache_ttl=CACHE_TTL, per_role=per_role)
        return Decision(allow=True, disclose=rule.disclose, cache_ttl=CACHE_TTL, per_role=per_role)

    @staticmethod
    def _best(indexed: Rule | None, personal: list[Rule], uri: str) -> Rule | None:
        candidates = [rule for rule in personal if pattern_matches(rule.uri, rule.match, uri)]
        if indexed is not None:
            candidates.append(indexed)
        return min(candidates, key=lambda rule: specificity(rule.uri, rule.match), default=None)

    @staticmethod
    def _pattern_rule(request: AuthorizationRequest, rules: _RoleRules, personal: list[Rule]) -> Rule | None:
        """The prefix rule covering the whole pattern, or None when none does or another rule withholds the action."""
        lead = _leading_text(request.uri, request.match)
        covers = [rule for rule in rules.index.matching(lead) if rule.match == PREFIX]
        covers += [rule for rule in personal if rule.match == PREFIX and lead.startswith(rule.uri)]
        if request.match != PREFIX:
            same = rules.index.get(request.uri, request.match)
            covers += [same] if same is not None else []
        cover = min(covers, key=lambda rule: specificity(rule.uri, rule.match), default=None)
        if cover is None or request.action not in cover.allow:
            return None
        cover_rank = specificity(cover.uri, cover.match)
        for rule in (*rules.plain, *personal):
            # only rules more specific than the cover can override it for some URI the pattern reaches
            if specificity(rule.uri, rule.match) >= cover_rank:
                continue
            if request.action not in rule.allow and _may_overlap(request.uri, request.match, rule):
                return None
        return cover
