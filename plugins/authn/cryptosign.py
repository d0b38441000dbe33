"""The `cryptosign` authenticator: the client proves it holds an Ed25519 private key by signing a random challenge.

Interoperates with Autobahn's `AuthCryptoSign` / `CryptosignKey.sign_challenge`: the router sends
`{"challenge": <32 random bytes, hex>, "channel_binding": None}`; the client answers with the hex of its 64-byte
signature followed by the 32 bytes it signed (192 hex characters). The router stores only public keys, so its config
holds no secret at all.

A HELLO names the principal by authid, or by `authextra.pubkey` (hex) when it has no authid; when it has both, the
key must be one of that principal's. Unknown authids and keys still get a challenge of the same shape and are refused
only after a signature check against a decoy key, so probing does not reveal who exists.

Channel binding (plugins/authn/binding.py): with `authextra.channel_binding = "tls-unique"` (TLS 1.2) the client
signs the challenge XOR SHA-256 of the connection's `tls-unique` data, as Autobahn does; with "tls-exporter" (TLS 1.3)
the challenge XOR the 32 exported bytes. A signature made on another connection signs other bytes and is refused.
`channel_binding = "required"` (for the table, or on a principal) refuses logins without a binding.

    [[listeners.auth.cryptosign.principals]]
    authid = "backend-1"
    role = "backend"
    public_keys = ["545efb0a2192db8d43f118e9bf9aee081466e1ef36c708b96ee6f62dddad9122"]
    channel_binding = "required"      # optional; default "optional", or the table's own `channel_binding`
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from zope.interface import implementer

from wampgate.plugins.authn import binding as channel
from wampgate.plugins.authn.principals import Principal, principal_roles, read_principals
from wampgate.plugin import (
    AuthRequest,
    Challenge,
    Denied,
    IAuthenticator,
    Identity,
    PluginConfigError,
    PluginContext,
    Table,
)

_KEY_HEX = re.compile(r"[0-9a-fA-F]{64}")
_ANSWER_HEX = re.compile(r"[0-9a-fA-F]{192}")  # 64-byte signature + the 32-byte challenge it signs


@dataclass(frozen=True, slots=True)
class _Entry:
    principal: Principal
    keys: Mapping[str, Ed25519PublicKey]  # lower-case hex -> key
    binding_policy: str = channel.OPTIONAL


@dataclass(frozen=True, slots=True)
class _Pending:
    """What finish() needs, kept by the router in Challenge.state (public data only)."""

    challenge: bytes
    entry: _Entry | None
    candidates: tuple[str, ...]  # hex of the keys the answer may be signed with
    unknown: str | None  # why the HELLO matched no principal, for the log
    binding: str | None = None  # the channel binding type the client asked for
    signed: bytes = b""  # what a valid answer signs: the challenge, XOR the channel id when bound


@implementer(IAuthenticator)
class CryptosignAuthenticator:
    """Ed25519 challenge-response against public keys from the config."""

    authmethod = "cryptosign"

    def __init__(self, config: Mapping[str, Any], *, reactor: Any = None, context: PluginContext | None = None):
        table = Table(config, "", ("principals", "channel_binding"))
        listener_policy = channel.read_policy(table)
        self._by_authid: dict[str, _Entry] = {}
        self._by_key: dict[str, _Entry] = {}
        for principal, row in read_principals(table, ("public_keys", "channel_binding")):
            keys = _read_keys(row, self._by_key)
            entry = _Entry(principal, keys, channel.read_policy(row, default=listener_policy))
            self._by_authid[principal.authid] = entry
            self._by_key.update((key, entry) for key in keys)
        self._decoy = Ed25519PrivateKey.generate().public_key()

    def roles(self) -> dict[str, str]:
        """The principals' roles, by key: the router checks that the realms it serves define them."""
        return principal_roles(entry.principal for entry in self._by_authid.values())

    def begin(self, request: AuthRequest) -> Challenge | Denied:
        """A fresh random challenge, of the same shape whether or not the authid or key is known."""
        extra = request.authextra if isinstance(request.authextra, Mapping) else {}
        binding, data, problem = channel.requested(request)
        if problem is not None:
            return Denied(problem)
        pubkey = extra.get("pubkey")
        if pubkey is not None and not (isinstance(pubkey, str) and _KEY_HEX.fullmatch(pubkey)):
            return Denied("malformed authextra.pubkey: expected 64 hex characters")
        if not request.authid and pubkey is None:
            return Denied("cryptosign needs an authid or authextra.pubkey in HELLO")
        pending = self._match(request.authid, pubkey.lower() if pubkey else None, os.urandom(32))
        pending = replace(pending, binding=binding, signed=_bound(pending.challenge, binding, data))
        return Challenge("cryptosign", {"challenge": pending.challenge.hex(), "channel_binding": binding},
                         state=pending)

    def finish(self, request: AuthRequest, challenge: Challenge, signature: Any, extra: Any) -> Identity | Denied:
        """Identity when the answer is a valid signature of our challenge by one of the principal's keys."""
        pending = challenge.state if isinstance(challenge, Challenge) else None
        if not isinstance(pending, _Pending):
            return Denied("no cryptosign challenge was sent")
        if not isinstance(signature, str) or not _ANSWER_HEX.fullmatch(signature):
            return Denied("malformed cryptosign signature: expected 192 hex characters (signature + challenge)")
        answer = bytes.fromhex(signature)
        signed, message = answer[:64], answer[64:]
        if pending.entry is None:
            _verifies(self._decoy, signed, message)  # the same work as for a known principal
            return Denied(pending.unknown)
        keys = pending.entry.keys
        verified = next((h for h in pending.candidates if _verifies(keys[h], signed, message)), None)
        if not hmac.compare_digest(message, pending.signed):
            return Denied("the client signed something other than the challenge (with this connection's binding)")
        if verified is None:
            return Denied("wrong cryptosign signature")
        unbound = channel.refusal(pending.entry.binding_policy, pending.binding)
        if unbound is not None:
            return Denied(unbound)
        p = pending.entry.principal
        return Identity(authid=p.authid, authrole=p.role, authmethod="cryptosign", authprovider="static",
                        authextra={"pubkey": verified})

    def _match(self, authid: str | None, pubkey: str | None, challenge: bytes) -> _Pending:
        """The principal and candidate keys for a HELLO (None and a reason when nothing matches)."""
        if authid:
            entry = self._by_authid.get(authid)
            if entry is None:
                return _Pending(challenge, None, (), "unknown authid")
            if pubkey is None:
                return _Pending(challenge, entry, tuple(entry.keys), None)
            if pubkey not in entry.keys:
                return _Pending(challenge, None, (), "authextra.pubkey is not one of the authid's keys")
            return _Pending(challenge, entry, (pubkey,), None)
        entry = self._by_key.get(pubkey)
        if entry is None:
            return _Pending(challenge, None, (), "unknown public key")
        return _Pending(challenge, entry, (pubkey,), None)


def _read_keys(row: Table, taken: Mapping[str, _Entry]) -> dict[str, Ed25519PublicKey]:
    """A principal's `public_keys`: raw Ed25519 keys in hex, each used by one principal only."""
    keys: dict[str, Ed25519PublicKey] = {}
    texts = row.strings("public_keys", required=True)
    for index, found in enumerate(texts):
        where = f"{row.key('public_keys')}[{index}]"
        if not _KEY_HEX.fullmatch(found):
            raise PluginConfigError(where, "expected a raw Ed25519 public key: 64 hex characters", found)
        text = found.lower()
        if text in taken or text in keys:
            owner = taken[text].principal.authid if text in taken else row.string("authid")
            raise PluginConfigError(where, f"key already used by authid {owner!r}; a key names one principal", found)
        try:
            keys[text] = Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
        except ValueError:
            raise PluginConfigError(where, "not a valid Ed25519 public key", found) from None
    return keys


def _bound(challenge: bytes, binding: str | None, data: bytes | None) -> bytes:
    """What the client signs: the challenge, XOR the channel id when bound (Autobahn's `tls-unique` channel id is the
    SHA-256 of the binding data; `tls-exporter` data is 32 bytes already)."""
    if binding is None or data is None:
        return challenge
    channel_id = hashlib.sha256(data).digest() if binding == "tls-unique" else data
    return bytes(a ^ b for a, b in zip(challenge, channel_id, strict=True))


def _verifies(key: Ed25519PublicKey, signed: bytes, message: bytes) -> bool:
    try:
        key.verify(signed, message)
    except InvalidSignature:
        return False
    return True
