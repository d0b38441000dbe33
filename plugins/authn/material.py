"""A dynamic backend's answer for a method that needs the router to do cryptography (wampcra, cryptosign, scram,
tls): the backend returns the principal's *material* (the keys a static `[[principals]]` row would hold), and the
router builds a one-principal authenticator of that method from it, through the very same constructor, so the
answer is validated exactly as the static config is, and the same code then challenges and checks the client.

    wampcra:    {"role": ..., "secret": ...} or {"role": ..., "derived_key": ..., "salt": ..., "iterations": ...,
                 "keylen": ...}
    cryptosign: {"role": ..., "public_keys": [...], "channel_binding"?: ...}
    scram:      {"role": ..., "kdf": ..., "salt": ..., "iterations": ..., "memory"?: ..., "stored_key": ...,
                 "server_key": ..., "channel_binding"?: ...}
    tls:        {"role": ..., "authid_from"?: "cn" | "dns" | "email"}: the verified certificate must name the authid

Every answer may carry `authid` (default: the HELLO's); for wampcra and scram it must be the HELLO's, since the
client computes its answer with it.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from wampgate.plugins.authn.cryptosign import CryptosignAuthenticator
from wampgate.plugins.authn.scram import PRINCIPAL_KEYS as SCRAM_KEYS
from wampgate.plugins.authn.scram import ScramAuthenticator
from wampgate.plugins.authn.tls import TlsAuthenticator
from wampgate.plugins.authn.wampcra import WampCraAuthenticator
from wampgate.plugin import PluginConfigError, PluginContext, scramkeys

# method -> (the static authenticator, the keys of its principal row a backend may return)
METHODS: Mapping[str, tuple[type, tuple[str, ...]]] = {
    "wampcra": (WampCraAuthenticator, ("secret", "derived_key", "salt", "iterations", "keylen")),
    "cryptosign": (CryptosignAuthenticator, ("public_keys", "channel_binding")),
    "scram": (ScramAuthenticator, SCRAM_KEYS),
    "tls": (TlsAuthenticator, ()),
}
CHALLENGED = ("wampcra", "cryptosign", "scram")  # methods whose refusals must come after a challenge, like static


class InvalidMaterial(Exception):
    """The backend's answer is not usable material: the text names the key and what is allowed, for the log."""


def authenticator_for(method: str, authid: str | None, answer: Any, *, reactor: Any,
                      context: PluginContext | None) -> tuple[Any, str]:
    """(a one-principal authenticator of `method`, the principal's authid) from the backend's answer; raises
    InvalidMaterial."""
    if not isinstance(answer, Mapping):
        raise InvalidMaterial(f"expected a dict with role and the {method} material; found {type(answer).__name__}")
    cls, keys = METHODS[method]
    table_keys = ("authid_from",) if method == "tls" else ()
    allowed = ("role", "authid", *keys, *table_keys)
    for key in answer:
        if key not in allowed:
            raise InvalidMaterial(f"{key}: unknown key; allowed: {', '.join(allowed)}")
    principal_authid = answer.get("authid", authid)
    row = {} if principal_authid is None else {"authid": principal_authid}
    row.update((key, answer[key]) for key in ("role", *keys) if key in answer)
    config: dict[str, Any] = {"principals": [row]}
    config.update((key, answer[key]) for key in table_keys if key in answer)
    try:
        return cls(config, reactor=reactor, context=context), principal_authid
    except PluginConfigError as e:
        raise InvalidMaterial(str(e).replace("principals[0].", "")) from None


def decoy_for(method: str, *, reactor: Any, context: PluginContext | None) -> Any:
    """An authenticator of `method` that knows nobody, to challenge a client the backend refused exactly like one
    it knows (a refusal at HELLO would tell who exists)."""
    nobody = f"\x00decoy-{secrets.token_hex(8)}"
    rows = {
        "wampcra": {"secret": secrets.token_urlsafe(32)},
        "cryptosign": {"public_keys": [_random_public_key()]},
        "scram": {**_scram_defaults(), "salt": scramkeys.b64(secrets.token_bytes(scramkeys.SALT_BYTES)),
                  "stored_key": scramkeys.b64(secrets.token_bytes(32)),
                  "server_key": scramkeys.b64(secrets.token_bytes(32))},
    }
    config = {"principals": [{"authid": nobody, "role": "nobody", **rows[method]}]}
    return METHODS[method][0](config, reactor=reactor, context=context)


def _random_public_key() -> str:
    key = Ed25519PrivateKey.generate().public_key()
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()


def _scram_defaults() -> dict[str, Any]:
    iterations, memory = scramkeys.DEFAULTS[scramkeys.ARGON2ID13]
    return {"kdf": scramkeys.ARGON2ID13, "iterations": iterations, "memory": memory}
