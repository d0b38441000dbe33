"""The `testtoken` authenticator (tests only): a HELLO whose `authextra.token` equals the configured token joins with
the configured role, without a challenge; anything else is refused.

    [listeners.auth.testtoken]
    role = "user"
    token = "open-sesame"      # optional; this is the default
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from wampgate.plugin import AuthRequest, Denied, Identity, OneStepAuthenticator, PluginConfigError

_KEYS = ("role", "token")


class TokenAuthenticator(OneStepAuthenticator):
    """Compares `authextra.token` with the configured token (constant-time), in `begin`: no challenge, so the base
    class's `finish` refuses a stray AUTHENTICATE."""

    authmethod = "testtoken"

    def __init__(self, config: Mapping[str, Any], *, reactor: Any = None):
        for key in config:
            if key not in _KEYS:
                raise PluginConfigError(key, f"unknown key; allowed: {', '.join(_KEYS)}", config[key])
        role, token = config.get("role"), config.get("token", "open-sesame")
        if not isinstance(role, str) or not role:
            raise PluginConfigError("role", "expected the role name token holders get", role)
        if not isinstance(token, str) or not token:
            raise PluginConfigError("token", "expected a non-empty string", token)
        self._role = role
        self._token = token.encode("utf-8")

    def begin(self, request: AuthRequest) -> Identity | Denied:
        extra = request.authextra if isinstance(request.authextra, Mapping) else {}
        offered = extra.get("token")
        if not isinstance(offered, str) or not hmac.compare_digest(offered.encode("utf-8", "replace"), self._token):
            return Denied("missing or wrong authextra.token")
        return Identity(authid=request.authid or "token-holder", authrole=self._role, authmethod="testtoken",
                        authprovider="testtoken")
