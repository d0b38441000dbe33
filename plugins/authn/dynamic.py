"""The `dynamic` authenticator: a trusted backend decides, through a WAMP procedure it registered.

The router calls `procedure(realm, authid, details)`, where details holds the authmethod, the secret the client
sent (for `authmethod = "ticket"`), the session id and the transport (peer, headers, cookies, client certificate).
The procedure returns the role as a string, or a dict with `role` and optionally `authid` and `extra`; raising an
error, timing out, or the procedure not being registered denies. Only an error the backend raised counts as the
client's failure (lockout); a timeout or a missing backend is the router's side and does not. Whoever answers the
procedure decides who joins, so the router's call goes only to an exact registration held by sessions of the
configured `backend_authrole` (and `backend_authid`, when set): a prefix or wildcard registration, or anybody
else's, never answers it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autobahn.wamp.exception import ApplicationError
from zope.interface import implementer

from wampgate.plugins.backend import KEYS as BACKEND_KEYS
from wampgate.plugins.backend import backend_identity
from wampgate.plugin import (
    AuthRequest,
    Challenge,
    Denied,
    IAuthenticator,
    Identity,
    PluginConfigError,
    PluginContext,
    TransportInfo,
    call_failed_in_router,
)

_KEYS = ("procedure", "realm", "timeout", "authmethod", *BACKEND_KEYS)
_AUTHMETHODS = ("ticket", "dynamic")
_MAX_SECRET = 16 * 1024


def _transport_details(transport: TransportInfo) -> dict:
    certificate = transport.peer_certificate
    return {
        "listener": transport.listener,
        "kind": transport.kind,
        "peer": transport.peer,
        "is_secure": transport.is_secure,
        "http_headers": dict(transport.http_headers),
        "cookies": dict(transport.cookies),
        "client_certificate": None
        if certificate is None
        else {"verified": certificate.verified, "subject": certificate.subject, "sha256": certificate.sha256},
    }


@implementer(IAuthenticator)
class DynamicAuthenticator:
    """`authmethod = "ticket"` (default): the client is challenged for a ticket, which the backend checks;
    `authmethod = "dynamic"`: no challenge, the backend decides from the HELLO and the transport alone."""

    def __init__(self, config: Mapping[str, Any], *, reactor: Any, context: PluginContext):
        for key in config:
            if key not in _KEYS:
                raise PluginConfigError(key, f"unknown key; allowed: {', '.join(_KEYS)}", config[key])
        procedure = config.get("procedure")
        if not isinstance(procedure, str) or not procedure:
            raise PluginConfigError("procedure", "expected the URI of the backend's authenticate procedure", procedure)
        realm = config.get("realm")
        if realm is not None and not isinstance(realm, str):
            raise PluginConfigError("realm", "expected the realm where the backend registers the procedure", realm)
        timeout = config.get("timeout", 5.0)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not 0.1 <= timeout <= 60:
            raise PluginConfigError("timeout", "expected seconds from 0.1 to 60", timeout)
        authmethod = config.get("authmethod", "ticket")
        if authmethod not in _AUTHMETHODS:
            raise PluginConfigError("authmethod", f"expected one of {', '.join(_AUTHMETHODS)}", authmethod)
        if context.call is None:
            raise PluginConfigError("procedure", "the router offers no way to call procedures here")
        self._backend_authrole, self._backend_authid = backend_identity(config)
        self.authmethod = authmethod
        self._procedure = procedure
        self._realm = realm
        self._timeout = float(timeout)
        self._call = context.call

    def begin(self, request: AuthRequest):
        if self.authmethod == "ticket":
            return Challenge("ticket", {})
        return self._ask(request, None)

    def finish(self, request: AuthRequest, challenge: Challenge, signature: Any, extra: Mapping):
        if not isinstance(signature, str) or len(signature) > _MAX_SECRET:
            return Denied("malformed ticket")
        return self._ask(request, signature)

    def _ask(self, request: AuthRequest, ticket: str | None):
        details = {
            "authmethod": self.authmethod,
            "authextra": dict(request.authextra),
            "session": request.session_id,
            "transport": _transport_details(request.transport),
        }
        if ticket is not None:
            details["ticket"] = ticket
        d = self._call(self._realm or request.realm, self._procedure, [request.realm, request.authid, details],
                       {}, self._timeout, backend_authrole=self._backend_authrole, backend_authid=self._backend_authid)
        d.addCallbacks(self._identity, self._denied, callbackArgs=(request,))
        return d

    def _identity(self, result: tuple, request: AuthRequest):
        args, kwargs = result
        answer = args[0] if args else (kwargs or None)
        if isinstance(answer, str) and answer and request.authid:
            return Identity(request.authid, answer, self.authmethod, "dynamic")
        if isinstance(answer, dict) and isinstance(answer.get("role"), str) and answer["role"]:
            authid = answer.get("authid", request.authid)
            extra = answer.get("extra") or {}
            if isinstance(authid, str) and authid and isinstance(extra, dict):
                return Identity(authid, answer["role"], self.authmethod, "dynamic", extra)
        return Denied(f"the backend procedure {self._procedure} gave no usable role")

    def _denied(self, failure):
        error = failure.value.error if isinstance(failure.value, ApplicationError) else None
        backend_said_no = error is not None and not call_failed_in_router(error)
        return Denied(f"the backend procedure {self._procedure} refused or failed: {failure.getErrorMessage()[:200]}",
                      counts_as_failure=backend_said_no)
