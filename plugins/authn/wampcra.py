"""The `wampcra` authenticator (WAMP Challenge-Response Authentication), interoperating with Autobahn's clients.

The router sends a challenge string (JSON naming the authid, method, provider, a random nonce, a timestamp and the
session id); the client answers base64(HMAC-SHA256(key, challenge)). The secret never crosses the wire, but the
HMAC key is itself the credential: whoever holds it can log in. Two ways to configure a principal:

- `secret`: the key is the password itself, stored in the config in the clear. Allowed for compatibility; weaker,
  since a leaked config reveals the password, which users may reuse elsewhere.
- `derived_key` + `salt` + `iterations` + `keylen` (recommended): the challenge carries the salt and parameters, the
  client derives the key from its password with PBKDF2-HMAC-SHA256 exactly as `autobahn.wamp.auth.derive_key`
  does, and uses that key's base64 text as the HMAC key. The router stores only `derived_key` (that base64 text):
  a leaked config still lets an attacker log in here, but not recover the password to try elsewhere without
  brute-forcing PBKDF2. Compute it with
  `python -c 'from autobahn.wamp.auth import derive_key; print(derive_key("password", "salt", 100000, 32).decode())'`
  and make the salt random per principal, e.g. `python -c 'import secrets; print(secrets.token_urlsafe(16))'`.

Existence of an authid and a principal's role are not revealed. The challenge names no role (WELCOME does, once
the client has proved itself). An unknown authid gets a challenge of the same shape as a real principal's: a
deterministic fake derived by HMAC from a server secret and the authid, so repeated probes see the same answer, as
they would for a real user. The HMAC picks a configured principal's shape (plain, or salted with its iterations,
keylen and salt alphabet and length), so fakes are spread over the shapes as the real principals are, and then the
fake salt. The server secret is drawn once per router process (the plugin context's SharedState): the same on
every listener and after a reload. The fake is checked against a random key, so the refusal costs the same. Limit:
fake salts change when the router restarts, real ones do not.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
import string
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from zope.interface import implementer

from wampgate.plugins.authn.principals import Principal, principal_realms, principal_roles, read_principals
from wampgate.plugin import (
    AuthRequest,
    Challenge,
    Denied,
    IAuthenticator,
    Identity,
    PluginConfigError,
    PluginContext,
    SharedState,
    Table,
)

MAX_SIGNATURE_CHARS = 256  # the answer is 44 characters; anything much longer is not one
_DERIVED = ("derived_key", "salt", "iterations", "keylen")
_URLSAFE = string.ascii_letters + string.digits + "-_"
DECOY_SECRET = "wampcra.decoy_secret"  # its name in the router's SharedState


@dataclass(frozen=True, slots=True)
class _Salting:
    """What a salted principal's challenge tells the client, to derive its key."""

    salt: str
    iterations: int
    keylen: int


@dataclass(frozen=True, slots=True, order=True)
class _Shape:
    """What a principal's challenge looks like from outside: salted or not, its parameters, its salt's form."""

    iterations: int  # 0: a plain secret, no salt
    keylen: int
    alphabet: str
    salt_length: int


_PLAIN = _Shape(0, 0, "", 0)


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    key: bytes  # the HMAC key: the plain secret's or the derived key's base64 text, UTF-8 encoded
    salting: _Salting | None


@implementer(IAuthenticator)
class WampCraAuthenticator:
    """WAMP-CRA against principals from the config."""

    authmethod = "wampcra"

    def __init__(self, config: Mapping[str, Any], *, reactor: Any, context: PluginContext | None = None):
        self._reactor = reactor
        table = Table(config, "", ("principals",))
        self._entries = {p.authid: _read_entry(p, row) for p, row in read_principals(table, ("secret", *_DERIVED))}
        # One shape per principal (repeats kept, so a common shape is picked as often as it occurs), sorted so the
        # pick does not depend on the order of the config.
        self._shapes = tuple(sorted(_shape(entry.salting) for entry in self._entries.values()))
        shared = context.shared if context is not None else SharedState()
        self._decoy_secret = shared.get(DECOY_SECRET, lambda: secrets.token_bytes(32))
        self._decoy_hmac_key = secrets.token_bytes(32)  # never matches: what an unknown authid's answer is checked with

    def roles(self) -> dict[str, str]:
        """The principals' roles, by key: the router checks that the realms it serves define them."""
        return principal_roles(entry.principal for entry in self._entries.values())

    def realms(self) -> dict[str, str]:
        """The realms principals are bound to, by key: the router checks that they exist and are served."""
        return principal_realms(entry.principal for entry in self._entries.values())

    def begin(self, request: AuthRequest) -> Challenge | Denied:
        """A challenge for the authid, of the same shape whether or not it is known."""
        if not request.authid:
            return Denied("wampcra needs an authid in HELLO")
        entry = self._entries.get(request.authid)
        salting = entry.salting if entry else self._decoy_salting(request.authid)
        extra: dict[str, Any] = {"challenge": self._challenge_text(request)}
        if salting is not None:
            extra.update(salt=salting.salt, iterations=salting.iterations, keylen=salting.keylen)
        return Challenge("wampcra", extra)

    def finish(self, request: AuthRequest, challenge: Challenge, signature: Any, extra: Any) -> Identity | Denied:
        """Identity when the signature is the HMAC of the challenge we sent under the authid's key."""
        if not isinstance(signature, str) or len(signature) > MAX_SIGNATURE_CHARS:
            return Denied("malformed wampcra signature: expected a base64 string")
        sent = challenge.extra.get("challenge") if isinstance(challenge, Challenge) else None
        if not isinstance(sent, str):
            return Denied("no wampcra challenge was sent")
        entry = self._entries.get(request.authid or "")
        key = entry.key if entry else self._decoy_hmac_key
        expected = base64.b64encode(hmac.new(key, sent.encode("utf-8"), "sha256").digest())
        matched = hmac.compare_digest(expected, signature.encode("utf-8", "surrogatepass"))
        if entry is None:
            return Denied("unknown authid")
        if not matched:
            return Denied("wrong wampcra signature")
        p = entry.principal
        return Identity(authid=p.authid, authrole=p.role, authmethod="wampcra", authprovider="static",
                        realm=p.realm)

    def _challenge_text(self, request: AuthRequest) -> str:
        """The string the client signs: no role in it, so it tells nothing about the principal."""
        now = datetime.fromtimestamp(self._reactor.seconds(), timezone.utc)
        return json.dumps({
            "authid": request.authid,
            "authmethod": "wampcra",
            "authprovider": "static",
            "nonce": secrets.token_urlsafe(32),
            "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "session": request.session_id,
        })

    def _decoy_salting(self, authid: str) -> _Salting | None:
        """An unknown authid's fake: a configured principal's shape and a salt of its form, both picked by an HMAC
        of the authid under the server secret, so every probe of the authid sees the same."""
        stream = _hmac_stream(self._decoy_secret, authid, 8 + max(shape.salt_length for shape in self._shapes))
        shape = self._shapes[int.from_bytes(stream[:8], "big") % len(self._shapes)]
        if shape == _PLAIN:
            return None
        salt = "".join(shape.alphabet[byte % len(shape.alphabet)] for byte in stream[8:8 + shape.salt_length])
        return _Salting(salt, shape.iterations, shape.keylen)


def _hmac_stream(key: bytes, authid: str, length: int) -> bytes:
    """`length` pseudo-random bytes determined by `key` and `authid`: HMAC-SHA512 in counter mode."""
    stream, counter = b"", 0
    while len(stream) < length:
        message = counter.to_bytes(4, "big") + authid.encode("utf-8", "surrogatepass")
        stream += hmac.new(key, message, hashlib.sha512).digest()
        counter += 1
    return stream[:length]


def _shape(salting: _Salting | None) -> _Shape:
    if salting is None:
        return _PLAIN
    return _Shape(salting.iterations, salting.keylen, _salt_alphabet(salting.salt), len(salting.salt))


def _read_entry(principal: Principal, row: Table) -> _Entry:
    """One principal's key: a plain `secret`, or `derived_key` with the parameters the client derives it with."""
    if row.has("secret") and row.has("derived_key"):
        raise row.fail("secret", "give either secret or derived_key (with salt, iterations and keylen), not both")
    if row.has("secret"):
        for name in _DERIVED[1:]:
            if row.has(name):
                raise row.fail(name, "only with derived_key; a plain secret has no salt")
        return _Entry(principal, row.string("secret", required=True).encode("utf-8"), None)
    if not row.has("derived_key"):
        raise PluginConfigError(row.path, "expected a secret, or a derived_key with salt, iterations and keylen")
    salt = row.string("salt", required=True)
    if len(salt) > 256:
        raise row.fail("salt", "expected a string of at most 256 characters")
    iterations = row.integer("iterations", default=None, minimum=1000, maximum=10_000_000)
    keylen = row.integer("keylen", default=None, minimum=16, maximum=64)
    derived = row.string("derived_key", required=True)
    if not _is_derived_key(derived, keylen):
        raise row.fail("derived_key", f"expected the base64 text (with padding) of a {keylen}-byte key, as "
                                      "autobahn.wamp.auth.derive_key(password, salt, iterations, keylen) prints it")
    return _Entry(principal, derived.encode("ascii"), _Salting(salt, iterations, keylen))


def _is_derived_key(text: str, keylen: int) -> bool:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) == keylen and base64.b64encode(raw).decode("ascii") == text


def _salt_alphabet(salt: str) -> str:
    """The alphabet a fake of `salt` is drawn from: hex when it is hex, else URL-safe base64."""
    if re.fullmatch(r"[0-9a-f]+", salt):
        return "0123456789abcdef"
    if re.fullmatch(r"[0-9A-F]+", salt):
        return "0123456789ABCDEF"
    return _URLSAFE
