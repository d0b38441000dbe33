"""The `dynamic` authenticator: a trusted backend decides, through a WAMP procedure it registered.

The router calls `procedure(realm, authid, details)`, where details holds the authmethod, the secret the client
sent (for `authmethod = "ticket"`), the session id and the transport (peer, headers, cookies, client certificate).
The procedure returns the role as a string, or a dict with `role` and optionally `authid` and `extra`; raising an
error, timing out, or the procedure not being registered denies. Only an error the backend raised counts as the
client's failure (lockout); a timeout or a missing backend is the router's side and does not. Whoever answers the
procedure decides who joins, so the router's call goes only to an exact registration held by sessions of the
configured `backend_authrole` (and `backend_authid`, when set): a prefix or wildcard registration, or anybody
else's, never answers it.

With `authmethod = "wampcra"`, "cryptosign", "scram" or "tls" the procedure is called at HELLO (details without a
secret) and returns the principal's material instead of a verdict: the router validates it like the static config
of that method and does the cryptography itself (plugins/authn/material.py). An invalid answer is logged for the
operator and refused like any failure; a refusal by the backend still challenges the client (with a decoy), so
whether the backend knows the authid is not revealed before the client's answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from autobahn.wamp.exception import ApplicationError
from twisted.logger import Logger
from zope.interface import implementer

from wampgate.plugins.authn import material
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
_AUTHMETHODS = ("ticket", "dynamic", *material.METHODS)
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


@dataclass(frozen=True, slots=True)
class _Delegated:
    """Challenge.state of a material method: the one-principal authenticator built from the backend's answer (or
    the decoy), its own challenge, and the refusal to give whatever the client answers (None: let it decide)."""

    authenticator: Any
    challenge: Challenge
    refusal: Denied | None = None


@implementer(IAuthenticator)
class DynamicAuthenticator:
    """`authmethod = "ticket"` (default): the client is challenged for a ticket, which the backend checks;
    `authmethod = "dynamic"`: no challenge, the backend decides from the HELLO and the transport alone."""

    log = Logger()

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
        self._reactor = reactor
        self._context = context
        self._decoy = (material.decoy_for(authmethod, reactor=reactor, context=context)
                       if authmethod in material.CHALLENGED else None)

    def begin(self, request: AuthRequest):
        if self.authmethod == "ticket":
            return Challenge("ticket", {})
        if self.authmethod in material.METHODS:
            return self._ask_material(request)
        return self._ask(request, None)

    def finish(self, request: AuthRequest, challenge: Challenge, signature: Any, extra: Mapping):
        delegated = challenge.state if isinstance(challenge, Challenge) else None
        if isinstance(delegated, _Delegated):
            answer = delegated.authenticator.finish(request, delegated.challenge, signature, extra)
            if delegated.refusal is not None:
                return delegated.refusal
            return _dynamic(answer)
        if self.authmethod != "ticket":
            return Denied(f"no {self.authmethod} challenge was sent")
        if not isinstance(signature, str) or len(signature) > _MAX_SECRET:
            return Denied("malformed ticket")
        return self._ask(request, signature)

    def _ask_material(self, request: AuthRequest):
        """Ask the backend for the principal's material, then challenge (or, for tls, decide) with it."""
        d = self._request(request, None)
        d.addCallbacks(self._with_material, self._material_refused, callbackArgs=(request,), errbackArgs=(request,))
        return d

    def _with_material(self, result: tuple, request: AuthRequest):
        args, kwargs = result
        answer = args[0] if args else (kwargs or None)
        try:
            authenticator, _ = material.authenticator_for(self.authmethod, request.authid, answer,
                                                          reactor=self._reactor, context=self._context)
        except material.InvalidMaterial as e:
            reason = f"the backend procedure {self._procedure} returned invalid {self.authmethod} material: {e}"
            self.log.warn("{reason}", reason=reason)
            return self._refuse_after_challenge(request, Denied(reason, counts_as_failure=False))
        first = authenticator.begin(request)
        if isinstance(first, Challenge):
            return Challenge(first.method, first.extra, state=_Delegated(authenticator, first))
        return _dynamic(first)

    def _material_refused(self, failure, request: AuthRequest):
        return self._refuse_after_challenge(request, self._denied(failure))

    def _refuse_after_challenge(self, request: AuthRequest, refusal: Denied):
        """A challenge from the decoy for the challenge-response methods, so the refusal comes where a wrong
        answer's would; the refusal at once for tls, which has no challenge."""
        if self._decoy is None:
            return refusal
        first = self._decoy.begin(request)
        if not isinstance(first, Challenge):
            return refusal
        return Challenge(first.method, first.extra, state=_Delegated(self._decoy, first, refusal))

    def _request(self, request: AuthRequest, ticket: str | None):
        details = {
            "authmethod": self.authmethod,
            "authextra": dict(request.authextra),
            "session": request.session_id,
            "transport": _transport_details(request.transport),
        }
        if ticket is not None:
            details["ticket"] = ticket
        return self._call(self._realm or request.realm, self._procedure, [request.realm, request.authid, details],
                          {}, self._timeout, backend_authrole=self._backend_authrole,
                          backend_authid=self._backend_authid)

    def _ask(self, request: AuthRequest, ticket: str | None):
        d = self._request(request, ticket)
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


def _dynamic(answer: Any) -> Any:
    """The material method's own verdict, with the provider that says a backend supplied the principal."""
    return replace(answer, authprovider="dynamic") if isinstance(answer, Identity) else answer
