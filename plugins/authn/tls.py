"""The `tls` authenticator: the client is who its verified TLS client certificate says, with no challenge.

The listener verifies the certificate chain against its `client_ca`; this plugin only maps a verified certificate
to an identity. `authid_from` picks which name of the certificate is the authid:

- "cn" (default): the subject's common name, compared exactly;
- "dns": a DNS name of the subjectAltName, compared without regard to case (authids are lower-cased);
- "email": an e-mail address of the subjectAltName, compared exactly.

A certificate may carry several DNS names or e-mails: the first one listed in `principals` decides, and if two
different listed principals match, the attempt is refused as ambiguous rather than guessing which role applies. A
verified certificate whose names are not listed gets `default_role` (its first name as authid), or is refused when
there is none. An absent or unverified certificate is always refused.

    [listeners.auth.tls]
    authid_from = "cn"
    default_role = "device"           # optional
    [[listeners.auth.tls.principals]]
    authid = "backend.example.com"
    role = "backend"
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wampgate.plugins.authn.principals import Principal, principal_roles, read_principals
from wampgate.plugin import AuthRequest, ClientCertificate, Denied, Identity, OneStepAuthenticator, PluginContext, Table

_SOURCES = ("cn", "dns", "email")


class TlsAuthenticator(OneStepAuthenticator):
    """Maps a verified client certificate to a principal, in `begin`: no challenge (the base class refuses a stray
    AUTHENTICATE)."""

    authmethod = "tls"

    def __init__(self, config: Mapping[str, Any], *, reactor: Any = None, context: PluginContext | None = None):
        table = Table(config, "", ("authid_from", "principals", "default_role"))
        self._source = table.string("authid_from", default="cn", choices=_SOURCES)
        normalize = str.lower if self._source == "dns" else None
        rows = read_principals(table, (), required=False, normalize=normalize)
        self._principals: dict[str, Principal] = {principal.authid: principal for principal, _ in rows}
        self._default_role = table.string("default_role")
        if not self._principals and self._default_role is None:
            raise table.fail("principals", "missing; expected [[principals]] or a default_role (nobody could join)")

    def roles(self) -> dict[str, str]:
        """The principals' roles and the default role, by key: the router checks that the realms it serves define
        them."""
        roles = principal_roles(self._principals.values())
        if self._default_role is not None:
            roles["default_role"] = self._default_role
        return roles

    def begin(self, request: AuthRequest) -> Identity | Denied:
        """An identity from the certificate right away, or a refusal."""
        certificate = request.transport.peer_certificate
        if not isinstance(certificate, ClientCertificate):
            return Denied("no TLS client certificate")
        if certificate.verified is not True:
            return Denied(f"TLS client certificate not verified (subject {certificate.subject!r})")
        names = self._names(certificate)
        if not names:
            return Denied(f"TLS client certificate has no {self._source} name (subject {certificate.subject!r})")
        listed = list(dict.fromkeys(self._principals[name] for name in names if name in self._principals))
        if len(listed) > 1:
            return Denied(f"TLS client certificate names several principals: {', '.join(p.authid for p in listed)}")
        if listed:
            authid, role = listed[0].authid, listed[0].role
        elif self._default_role is not None:
            authid, role = names[0], self._default_role
        else:
            return Denied(f"no principal for certificate name {names[0]!r} and no default_role")
        return Identity(authid=authid, authrole=role, authmethod="tls", authprovider="tls",
                        authextra={"cert_sha256": certificate.sha256})

    def _names(self, certificate: ClientCertificate) -> list[str]:
        if self._source == "cn":
            return [certificate.common_name] if certificate.common_name else []
        if self._source == "dns":
            return [name.lower() for name in certificate.dns_names if name]
        return [email for email in certificate.emails if email]
