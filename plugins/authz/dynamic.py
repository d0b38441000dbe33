"""The `dynamic` authorizer: a trusted backend decides, through a WAMP procedure it registered (the Crossbar
pattern). The router calls `procedure(session, uri, action, options)` where session holds the realm, session id,
authid, authrole, authmethod, authprovider, authextra and the peer address. The answer is `true` / `false`, or a
dict with `allow` and optionally `disclose`, `cache_ttl` (seconds) and `per_role`. An error, a timeout, a missing
procedure or any other answer denies. Whoever answers the procedure decides, so the router's call goes only to an
exact registration held by sessions of the configured `backend_authrole` (and `backend_authid`, when set): a prefix
or wildcard registration, or anybody else's, never answers it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from zope.interface import implementer

from wampgate.plugins.backend import KEYS as BACKEND_KEYS
from wampgate.plugins.backend import backend_identity
from wampgate.plugin import DENY, AuthorizationRequest, Decision, IAuthorizer, PluginConfigError, PluginContext

_KEYS = ("procedure", "realm", "timeout", "cache_ttl", *BACKEND_KEYS)
MAX_CACHE_TTL = 86_400.0


def _number(config: Mapping, key: str, default: float, low: float, high: float) -> float:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise PluginConfigError(key, f"expected a number from {low} to {high}", value)
    return float(value)


@implementer(IAuthorizer)
class DynamicAuthorizer:
    """`cache_ttl` in the config is the default for answers that name none (0: ask every time)."""

    def __init__(self, config: Mapping[str, Any], *, reactor: Any, context: PluginContext):
        for key in config:
            if key not in _KEYS:
                raise PluginConfigError(key, f"unknown key; allowed: {', '.join(_KEYS)}", config[key])
        if "procedure" not in config:
            raise PluginConfigError("procedure", "missing; expected the URI of the backend's authorize procedure")
        procedure = config["procedure"]
        if not isinstance(procedure, str) or not procedure:
            raise PluginConfigError("procedure", "expected the URI of the backend's authorize procedure", procedure)
        realm = config.get("realm")
        if realm is not None and not isinstance(realm, str):
            raise PluginConfigError("realm", "expected the realm where the backend registers the procedure", realm)
        if context.call is None:
            raise PluginConfigError("procedure", "the router offers no way to call procedures here")
        self._procedure = procedure
        self._realm = realm
        self._timeout = _number(config, "timeout", 5.0, 0.1, 60.0)
        self._cache_ttl = _number(config, "cache_ttl", 0.0, 0.0, MAX_CACHE_TTL)
        own_realm = context.realm  # the backend's role can be checked when it registers in this same realm
        roles = own_realm.roles if own_realm is not None and realm in (None, own_realm.name) else None
        self._backend_authrole, self._backend_authid = backend_identity(config, roles)
        self._call = context.call

    def authorize(self, request: AuthorizationRequest):
        identity = request.identity
        session = {
            "realm": request.realm,
            "session": request.session_id,
            "authid": identity.authid,
            "authrole": identity.authrole,
            "authmethod": identity.authmethod,
            "authprovider": identity.authprovider,
            "authextra": dict(identity.authextra),
            "peer": request.transport.peer,
        }
        options = {"match": request.match, **dict(request.options)}
        d = self._call(self._realm or request.realm, self._procedure, [session, request.uri, request.action, options],
                       {}, self._timeout, backend_authrole=self._backend_authrole, backend_authid=self._backend_authid)
        d.addCallbacks(self._decision, lambda failure: DENY)
        return d

    def _decision(self, result: tuple) -> Decision:
        args, _ = result
        answer = args[0] if args else None
        if answer is True or answer is False:
            return Decision(allow=answer, cache_ttl=self._cache_ttl)
        if not isinstance(answer, dict) or answer.get("allow") is not True:
            return DENY
        ttl = answer.get("cache_ttl", self._cache_ttl)
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or ttl < 0:
            return DENY
        return Decision(
            allow=True,
            disclose=answer.get("disclose") is True,
            cache_ttl=min(float(ttl), MAX_CACHE_TTL),
            per_role=answer.get("per_role") is True,
        )
