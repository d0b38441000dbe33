"""The `tls` authenticator: the client is who its TLS client certificate says, with no challenge.

Two ways to name a principal:

- by a name of a certificate the listener verified against its `client_ca`. `authid_from` picks which name is the
  authid: "cn" (default: the subject's common name, compared exactly), "dns" (a DNS name of the subjectAltName,
  compared without regard to case; authids are lower-cased) or "email" (an e-mail address of the subjectAltName,
  compared exactly);
- by pinning the certificate itself: `fingerprints` lists its SHA-256 (or, as Crossbar configs do, SHA-1)
  fingerprints, hex as `openssl x509 -fingerprint` prints them ("AA:BB:..."; case and colons do not matter). A pinned
  certificate need not chain to `client_ca`: the TLS handshake proved the client holds its key, and the pin is the
  trust. (The listener asks for client certificates only when it has a `client_ca`.)

A certificate may match several principals (several DNS names or e-mails, or a pin and a name): the pinned
principal wins; otherwise the first name listed in `principals` decides, and if two different listed principals
match by name, the attempt is refused as ambiguous rather than guessing which role applies. A verified certificate
whose names are not listed gets `default_role` (its first name as authid), or is refused when there is none. An
absent certificate, or an unverified one that is not pinned, is always refused.

    [listeners.auth.tls]
    authid_from = "cn"
    default_role = "device"           # optional
    [[listeners.auth.tls.principals]]
    authid = "backend.example.com"
    role = "backend"
    [[listeners.auth.tls.principals]]
    authid = "sensor-7"
    role = "device"
    fingerprints = ["5A:9C:...:E1"]   # SHA-256 (64 hex digits) or SHA-1 (40)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from wampgate.plugins.authn.principals import Principal, principal_realms, principal_roles, read_principals
from wampgate.plugin import (
    AuthRequest,
    ClientCertificate,
    Denied,
    Identity,
    OneStepAuthenticator,
    PluginConfigError,
    PluginContext,
    Table,
)

_SOURCES = ("cn", "dns", "email")
_FINGERPRINT = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def normalize_fingerprint(text: str) -> str | None:
    """"AA:BB:..." (any case, colons optional) as lower-case hex; None unless it is 40 (SHA-1) or 64 (SHA-256) hex
    digits."""
    digits = text.replace(":", "").lower()
    if ":" in text and not re.fullmatch(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2})+", text):
        return None
    return digits if _FINGERPRINT.fullmatch(digits) else None


class TlsAuthenticator(OneStepAuthenticator):
    """Maps a client certificate to a principal, in `begin`: no challenge (the base class refuses a stray
    AUTHENTICATE)."""

    authmethod = "tls"

    def __init__(self, config: Mapping[str, Any], *, reactor: Any = None, context: PluginContext | None = None):
        table = Table(config, "", ("authid_from", "principals", "default_role"))
        self._source = table.string("authid_from", default="cn", choices=_SOURCES)
        normalize = str.lower if self._source == "dns" else None
        rows = read_principals(table, ("fingerprints",), required=False, normalize=normalize)
        self._principals: dict[str, Principal] = {}  # by certificate name
        self._pinned: dict[str, Principal] = {}  # by fingerprint (lower-case hex)
        self._all = [principal for principal, _ in rows]
        for principal, row in rows:
            pins = _read_fingerprints(row, self._pinned)
            self._pinned.update((pin, principal) for pin in pins)
            if not pins:
                self._principals[principal.authid] = principal
        self._default_role = table.string("default_role")
        if not self._all and self._default_role is None:
            raise table.fail("principals", "missing; expected [[principals]] or a default_role (nobody could join)")

    def roles(self) -> dict[str, str]:
        """The principals' roles and the default role, by key: the router checks that the realms it serves define
        them."""
        roles = principal_roles(self._all)
        if self._default_role is not None:
            roles["default_role"] = self._default_role
        return roles

    def realms(self) -> dict[str, str]:
        """The realms principals are bound to, by key: the router checks that they exist and are served."""
        return principal_realms(self._all)

    def begin(self, request: AuthRequest) -> Identity | Denied:
        """An identity from the certificate right away, or a refusal."""
        certificate = request.transport.peer_certificate
        if not isinstance(certificate, ClientCertificate):
            return Denied("no TLS client certificate")
        pinned = self._pinned.get(certificate.sha256) or (self._pinned.get(certificate.sha1)
                                                           if certificate.sha1 else None)
        if pinned is not None:
            return _identity(pinned.authid, pinned.role, pinned.realm, certificate)
        if certificate.verified is not True:
            return Denied(f"TLS client certificate not verified and not pinned (subject {certificate.subject!r})")
        names = self._names(certificate)
        if not names:
            return Denied(f"TLS client certificate has no {self._source} name (subject {certificate.subject!r})")
        listed = list(dict.fromkeys(self._principals[name] for name in names if name in self._principals))
        if len(listed) > 1:
            return Denied(f"TLS client certificate names several principals: {', '.join(p.authid for p in listed)}")
        if listed:
            return _identity(listed[0].authid, listed[0].role, listed[0].realm, certificate)
        if self._default_role is not None:
            return _identity(names[0], self._default_role, None, certificate)
        return Denied(f"no principal for certificate name {names[0]!r} and no default_role")

    def _names(self, certificate: ClientCertificate) -> list[str]:
        if self._source == "cn":
            return [certificate.common_name] if certificate.common_name else []
        if self._source == "dns":
            return [name.lower() for name in certificate.dns_names if name]
        return [email for email in certificate.emails if email]


def _identity(authid: str, role: str, realm: str | None, certificate: ClientCertificate) -> Identity:
    return Identity(authid=authid, authrole=role, authmethod="tls", authprovider="tls",
                    authextra={"cert_sha256": certificate.sha256}, realm=realm)


def _read_fingerprints(row: Table, taken: Mapping[str, Principal]) -> tuple[str, ...]:
    """A principal's `fingerprints`, normalized; each pins one principal only."""
    pins: list[str] = []
    for index, text in enumerate(row.strings("fingerprints")):
        where = f"{row.key('fingerprints')}[{index}]"
        pin = normalize_fingerprint(text)
        if pin is None:
            raise PluginConfigError(where, 'expected a SHA-256 or SHA-1 certificate fingerprint: 64 or 40 hex '
                                           'digits, optionally in pairs separated by colons ("AB:CD:...")', text)
        if pin in taken or pin in pins:
            owner = taken[pin].authid if pin in taken else row.string("authid")
            raise PluginConfigError(where, f"fingerprint already pins authid {owner!r}; a certificate names one "
                                           "principal", text)
        pins.append(pin)
    return tuple(pins)
