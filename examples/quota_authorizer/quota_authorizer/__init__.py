"""An example Wampgate authorizer: sessions of one role may publish only on the topics listed in a file.

Chain it after the static rules; the chain's first deny wins, so for other roles and other actions this one allows
and leaves the decision to the rest of the chain. The file (one exact topic URI per line, `#` starts a comment) is
read once, at start-up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zope.interface import implementer

from wampgate.plugin import AuthorizationRequest, Decision, IAuthorizer, PluginConfigError, PluginContext, UriPolicy

_KEYS = ("role", "topics_file")
CACHE_TTL = 60.0  # the topics never change while the router runs; a minute keeps the cache small


def _required_string(config: Mapping[str, Any], key: str, what: str) -> str:
    if key not in config:
        raise PluginConfigError(key, f"missing; expected {what}")
    value = config[key]
    if not isinstance(value, str) or not value:
        raise PluginConfigError(key, f"expected {what}", value)
    return value


def read_topics(text: str, name: str) -> frozenset[str]:
    """The topics of a topics file; a line that is not one valid URI stops start-up, naming the line."""
    topics = set()
    for number, line in enumerate(text.splitlines(), start=1):
        topic = line.partition("#")[0].strip()
        if topic and UriPolicy().problem(topic) is not None:
            raise PluginConfigError("topics_file", f"line {number}: {topic!r} is not a valid topic URI", name)
        if topic:
            topics.add(topic)
    return frozenset(topics)


@implementer(IAuthorizer)
class QuotaAuthorizer:
    """Config: `role` (the role to restrict) and `topics_file` (relative to the config file's directory)."""

    def __init__(self, config: Mapping[str, Any], *, reactor: Any, context: PluginContext):
        for key in config:
            if key not in _KEYS:
                raise PluginConfigError(key, f"unknown key; allowed: {', '.join(_KEYS)}", config[key])
        self._role = _required_string(config, "role", "the name of the role to restrict")
        name = _required_string(config, "topics_file", "a file of topic URIs, one a line")
        path = context.base_dir / name
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise PluginConfigError("topics_file", f"cannot read {path}: {e}", name) from None
        self._topics = read_topics(text, name)

    def authorize(self, request: AuthorizationRequest) -> Decision:
        if request.identity.authrole != self._role or request.action != "publish":
            allow = True  # not ours to restrict: the rest of the chain decides
        else:
            allow = request.uri in self._topics
        # The answer depends only on the role, the action and the URI: cache it for every session of the role.
        return Decision(allow=allow, cache_ttl=CACHE_TTL, per_role=True)
