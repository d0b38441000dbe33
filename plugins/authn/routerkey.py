"""The router's own Ed25519 key, for cryptosign's router authentication: a client that sends
`authextra.challenge` (32 random bytes, hex) in HELLO gets the router's signature of it back in the CHALLENGE, with the
router's public key, and can check it against the key it trusts before proving anything itself (WAMP spec,
"Router Authentication").

The key file is one of: a PEM private key (`openssl genpkey -algorithm ed25519 -out router.key`), 64 hex characters
(the 32-byte seed), or Crossbar's `key.priv`, whose `private-key-ed25519: <hex>` line holds the seed.
"""

from __future__ import annotations

import re
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from wampgate.plugin import PluginConfigError

MAX_KEY_FILE = 64 * 1024
_SEED_LINE = re.compile(r"^\s*private-key-ed25519\s*:\s*([0-9a-fA-F]{64})\s*$", re.MULTILINE)
_SEED = re.compile(r"\s*([0-9a-fA-F]{64})\s*")
_FORMS = ("a PEM Ed25519 private key (openssl genpkey -algorithm ed25519), 64 hex characters (the seed), or "
          "Crossbar's key.priv with a private-key-ed25519 line")


def read_router_key(key: str, value: object, base_dir: Path) -> Ed25519PrivateKey:
    """The private key in the file `value` names (relative to the config file's directory); an error names `key`."""
    if not isinstance(value, str) or not value:
        raise PluginConfigError(key, "expected the path of the router's Ed25519 private key file", value)
    path = (base_dir / value).resolve()
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_KEY_FILE + 1)
    except OSError as e:
        raise PluginConfigError(key, f"cannot read {path}: {e.strerror}", value) from None
    if len(data) > MAX_KEY_FILE:
        raise PluginConfigError(key, f"{path} is larger than {MAX_KEY_FILE} bytes; expected {_FORMS}", value)
    private = _parse(data)
    if private is None:
        raise PluginConfigError(key, f"{path} holds no Ed25519 private key; expected {_FORMS}", value)
    return private


def _parse(data: bytes) -> Ed25519PrivateKey | None:
    if b"-----BEGIN" in data:
        try:
            private = serialization.load_pem_private_key(data, password=None)
        except (ValueError, TypeError):
            return None
        return private if isinstance(private, Ed25519PrivateKey) else None
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        return None
    found = _SEED_LINE.search(text) or _SEED.fullmatch(text)
    return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(found.group(1))) if found else None


def public_hex(private: Ed25519PrivateKey) -> str:
    raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return raw.hex()
