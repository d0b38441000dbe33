"""The `scram` authenticator (WAMP-SCRAM, SCRAM-SHA-256 over WAMP), interoperating with Autobahn's `AuthScram`.

The client sends a nonce in `HELLO.authextra.nonce`; the router answers CHALLENGE {nonce (the client's followed by
16 random bytes), salt, kdf, iterations, memory (argon2 only)}; the client answers with its proof, and the router
sends its own signature back in `WELCOME.authextra.scram_server_signature`, so the client knows the router holds
the principal's keys too. Neither the password nor anything a client could log in with is stored: only the salt,
StoredKey and ServerKey (`wampgate hash-secret --scram` prints them; see wampgate.scramkeys for the KDFs).

Channel binding (plugins/authn/binding.py): a client asking for one in `HELLO.authextra.channel_binding` sends in
AUTHENTICATE's extra `{nonce, channel_binding, cbind_data}` as the WAMP spec says; the router compares `cbind_data`
with its own side of this connection, and the proof covers `c=base64("p=<type>,," + data)`. Without a binding the
AuthMessage has `c=` with nothing after it, as Autobahn and Crossbar compute it.

Unknown authids get a challenge of the same shape as a known one's (a configured principal's KDF and parameters, a
salt derived from the authid under a per-process secret, so every probe of the authid sees the same) and are
refused after the same work.

    [[listeners.auth.scram.principals]]
    authid = "alice"
    role = "user"
    kdf = "argon2id13"
    iterations = 3
    memory = 65536
    salt = "..."
    stored_key = "..."
    server_key = "..."
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from zope.interface import implementer

from wampgate.plugins.authn import binding as channel
from wampgate.plugins.authn.principals import (Principal, most_common, principal_realms, principal_roles,
                                               read_principals)
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
    scramkeys,
)

PRINCIPAL_KEYS = ("kdf", "salt", "iterations", "memory", "stored_key", "server_key", "channel_binding")
MIN_NONCE_BYTES, MAX_NONCE_BYTES = 8, 64
SERVER_NONCE_BYTES = 16
MAX_BINDING_BYTES = 1024
DECOY_SECRET = "scram.decoy_secret"  # its name in the router's SharedState


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    credentials: scramkeys.ScramCredentials
    binding_policy: str


@dataclass(frozen=True, slots=True)
class _Pending:
    """What finish() needs (public values and the principal's stored keys), kept in Challenge.state."""

    entry: _Entry | None
    credentials: scramkeys.ScramCredentials
    client_first_bare: str
    server_first: str
    server_nonce: str
    binding: str | None
    binding_data: bytes | None


@implementer(IAuthenticator)
class ScramAuthenticator:
    """WAMP-SCRAM against stored credentials from the config."""

    authmethod = "scram"

    def __init__(self, config: Mapping[str, Any], *, reactor: Any = None, context: PluginContext | None = None):
        table = Table(config, "", ("principals", "channel_binding"))
        policy = channel.read_policy(table)
        self._entries = {p.authid: _Entry(p, read_credentials(row), channel.read_policy(row, default=policy))
                         for p, row in read_principals(table, PRINCIPAL_KEYS)}
        shared = context.shared if context is not None else SharedState()
        self._decoy_secret = shared.get(DECOY_SECRET, lambda: secrets.token_bytes(32))
        self._decoy_shape = most_common(
            (c.kdf, c.iterations, c.memory, len(c.salt)) for c in (e.credentials for e in self._entries.values()))

    def roles(self) -> dict[str, str]:
        """The principals' roles, by key: the router checks that the realms it serves define them."""
        return principal_roles(entry.principal for entry in self._entries.values())

    def realms(self) -> dict[str, str]:
        """The realms principals are bound to, by key: the router checks that they exist and are served."""
        return principal_realms(entry.principal for entry in self._entries.values())

    def begin(self, request: AuthRequest) -> Challenge | Denied:
        """The server-first message, of the same shape whether or not the authid is known."""
        if not request.authid:
            return Denied("scram needs an authid in HELLO")
        extra = request.authextra if isinstance(request.authextra, Mapping) else {}
        client_nonce = extra.get("nonce")
        raw_nonce = scramkeys.unb64(client_nonce, minimum=MIN_NONCE_BYTES, maximum=MAX_NONCE_BYTES)
        if raw_nonce is None:
            return Denied(f"scram needs authextra.nonce: {MIN_NONCE_BYTES} to {MAX_NONCE_BYTES} bytes in base64")
        try:
            name = scramkeys.saslprep(request.authid)
        except ValueError as e:
            return Denied(f"authid not usable with scram: {e}")
        binding, data, problem = channel.requested(request)
        if problem is not None:
            return Denied(problem)
        entry = self._entries.get(request.authid)
        credentials = entry.credentials if entry else self._decoy(request.authid)
        server_nonce = scramkeys.b64(raw_nonce + os.urandom(SERVER_NONCE_BYTES))
        salt = scramkeys.b64(credentials.salt)
        challenge: dict[str, Any] = {"nonce": server_nonce, "kdf": scramkeys.WIRE_NAMES[credentials.kdf],
                                     "salt": salt, "iterations": credentials.iterations}
        if credentials.memory is not None:
            challenge["memory"] = credentials.memory
        pending = _Pending(entry, credentials, f"n={name},r={client_nonce}",
                           f"r={server_nonce},s={salt},i={credentials.iterations}", server_nonce, binding, data)
        return Challenge("scram", challenge, state=pending)

    def finish(self, request: AuthRequest, challenge: Challenge, signature: Any, extra: Any) -> Identity | Denied:
        """Identity (with the server signature for WELCOME) when the client's proof recovers the StoredKey."""
        pending = challenge.state if isinstance(challenge, Challenge) else None
        if not isinstance(pending, _Pending):
            return Denied("no scram challenge was sent")
        proof = scramkeys.unb64(signature, minimum=scramkeys.KEY_BYTES, maximum=scramkeys.KEY_BYTES)
        if proof is None:
            return Denied("malformed scram proof: expected 32 bytes in base64")
        final, problem = _client_final(pending, extra if isinstance(extra, Mapping) else {})
        if problem is not None:
            return Denied(problem)
        keys = pending.credentials
        auth_message = f"{pending.client_first_bare},{pending.server_first},{final}".encode("utf-8")
        client_signature = hmac.new(keys.stored_key, auth_message, hashlib.sha256).digest()
        client_key = bytes(a ^ b for a, b in zip(proof, client_signature, strict=True))
        matched = hmac.compare_digest(hashlib.sha256(client_key).digest(), keys.stored_key)
        if pending.entry is None:
            return Denied("unknown authid")
        if not matched:
            return Denied("wrong scram proof")
        unbound = channel.refusal(pending.entry.binding_policy, pending.binding)
        if unbound is not None:
            return Denied(unbound)
        server_signature = scramkeys.b64(hmac.new(keys.server_key, auth_message, hashlib.sha256).digest())
        p = pending.entry.principal
        return Identity(authid=p.authid, authrole=p.role, authmethod="scram", authprovider="static",
                        authextra={"scram_server_signature": server_signature}, realm=p.realm)

    def _decoy(self, authid: str) -> scramkeys.ScramCredentials:
        """An unknown authid's credentials: a configured principal's shape, a salt fixed by the authid, keys that
        never match."""
        kdf, iterations, memory, salt_length = self._decoy_shape
        salt = hmac.new(self._decoy_secret, authid.encode("utf-8", "surrogatepass"), hashlib.sha512).digest()
        return scramkeys.ScramCredentials(kdf, salt[:salt_length], iterations, memory, secrets.token_bytes(32),
                                          secrets.token_bytes(32))


def _client_final(pending: _Pending, extra: Mapping) -> tuple[str, str | None]:
    """The client-final-message without proof, from what AUTHENTICATE's extra says, or a problem."""
    nonce = extra.get("nonce")
    if nonce is not None and nonce != pending.server_nonce:
        return "", "AUTHENTICATE names another nonce than the challenge's"
    if extra.get("channel_binding") != pending.binding:
        return "", "AUTHENTICATE names another channel binding than HELLO"
    cbind_data = extra.get("cbind_data")
    if pending.binding is None:
        if cbind_data is not None:
            return "", "cbind_data without a channel binding"
        return f"c=,r={pending.server_nonce}", None
    data = scramkeys.unb64(cbind_data, minimum=1, maximum=MAX_BINDING_BYTES)
    if data is None or not hmac.compare_digest(data, pending.binding_data):
        return "", "the channel binding data is not this connection's"
    header = f"p={pending.binding},,".encode("ascii")
    return f"c={scramkeys.b64(header + data)},r={pending.server_nonce}", None


def read_credentials(row: Table) -> scramkeys.ScramCredentials:
    """One principal's stored credentials, bounded (what `wampgate hash-secret --scram` prints)."""
    kdf_name = row.string("kdf", required=True, choices=scramkeys.KDF_NAMES)
    kdf = scramkeys.KDF_NAMES[kdf_name]
    low, high = scramkeys.ITERATIONS[kdf]
    iterations = row.integer("iterations", default=None, minimum=low, maximum=high)
    memory = None
    if kdf == scramkeys.ARGON2ID13:
        memory = row.integer("memory", default=None, minimum=scramkeys.MEMORY[0], maximum=scramkeys.MEMORY[1])
    elif row.has("memory"):
        raise row.fail("memory", f"only for argon2id13; {kdf} has no memory cost")
    salt = scramkeys.unb64(row.string("salt", required=True), minimum=scramkeys.MIN_SALT_BYTES,
                           maximum=scramkeys.MAX_SALT_BYTES)
    if salt is None:
        raise row.fail("salt", f"expected {scramkeys.MIN_SALT_BYTES} to {scramkeys.MAX_SALT_BYTES} random bytes in "
                               "base64 (see `wampgate hash-secret --scram`)")
    keys = []
    for name in ("stored_key", "server_key"):
        key = scramkeys.unb64(row.string(name, required=True), minimum=32, maximum=32)
        if key is None:
            raise PluginConfigError(row.key(name), "expected 32 bytes in base64 (see `wampgate hash-secret --scram`)")
        keys.append(key)
    return scramkeys.ScramCredentials(kdf, salt, iterations, memory, keys[0], keys[1])
