"""The `anonymous` authenticator: anyone may join, with the configured role. For development and public realms."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from wampgate.plugin import AuthRequest, Identity, OneStepAuthenticator, PluginConfigError

_KEYS = ("role",)


class AnonymousAuthenticator(OneStepAuthenticator):
    """Accepts every HELLO; the authid is random (never the client's claim), the role is fixed by config. No
    challenge: the base class refuses a stray AUTHENTICATE."""

    authmethod = "anonymous"

    def __init__(self, config: Mapping[str, Any], *, reactor: Any = None):
        for key in config:
            if key not in _KEYS:
                raise PluginConfigError(key, f"unknown key; allowed: {', '.join(_KEYS)}")
        if "role" not in config:
            raise PluginConfigError("role", "missing; expected the role name anonymous clients get")
        role = config["role"]
        if not isinstance(role, str) or not role:
            raise PluginConfigError("role", "expected the role name anonymous clients get", role)
        self.role = role

    def roles(self) -> dict[str, str]:
        """The one role it assigns, by key: the router checks that the realms it serves define it."""
        return {"role": self.role}

    def begin(self, request: AuthRequest) -> Identity:
        return Identity(
            authid=f"anonymous-{secrets.token_hex(8)}",
            authrole=self.role,
            authmethod="anonymous",
            authprovider="static",
        )
