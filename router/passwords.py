"""Storing and checking shared secrets (tickets, passwords) as scrypt hashes, so a leaked config reveals no secret.

A hash is one self-describing string, `scrypt$ln=15,r=8,p=1$<salt>$<key>`: `ln` is log2 of scrypt's N, salt and key
are unpadded standard base64. Storing the parameters with the hash lets an operator raise the cost later without
invalidating old hashes. Parameters come from the config, which we treat as possibly hostile (a copied or templated
file), so they are bounded: memory per check at most 256 MiB, total work at most that of 256 MiB, at least that of
16 MiB (weaker hashes are refused at load, not silently accepted).

Standard library only (hashlib.scrypt, OpenSSL): no Twisted here; callers that must not block the reactor run
`verify_secret` in a thread.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

DEFAULT_LN = 15  # N = 32768: with r = 8, 32 MiB and about 0.1 s per check on a current CPU
DEFAULT_R = 8
DEFAULT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32

_MIN_WORK = 1 << 24  # 128 * r * N * p, in bytes: 16 MiB, i.e. ln=14, r=8, p=1
_MAX_WORK = 1 << 28  # 256 MiB of total work, whatever the split between memory and parallelism
_MAX_MEMORY = 1 << 28  # 128 * r * N: what one check holds at once
_MAX_R = 32
_MAX_P = 16

_FORMAT = re.compile(
    r"scrypt\$ln=(0|[1-9][0-9]?),r=([1-9][0-9]?),p=([1-9][0-9]?)\$([A-Za-z0-9+/]{1,100})\$([A-Za-z0-9+/]{1,100})"
)
_EXPECTED = "expected scrypt$ln=<log2 N>,r=<r>,p=<p>$<salt, base64>$<key, base64> (see `wampgate hash-secret`)"


@dataclass(frozen=True, slots=True)
class _Scrypt:
    """A parsed hash: the parameters to recompute it and the key to compare with."""

    ln: int
    r: int
    p: int
    salt: bytes
    key: bytes


def hash_secret(secret: str, *, ln: int = DEFAULT_LN, r: int = DEFAULT_R, p: int = DEFAULT_P) -> str:
    """The hash to store for `secret`, with a fresh random salt. Raises ValueError for an empty secret or
    parameters outside the bounds `verify_secret` accepts (a hash we would refuse to load is never produced)."""
    if not isinstance(secret, str) or not secret:
        raise ValueError("the secret must be a non-empty string")
    problem = _parameter_problem(ln, r, p)
    if problem:
        raise ValueError(problem)
    salt = secrets.token_bytes(SALT_BYTES)
    key = _derive(secret.encode("utf-8"), salt, ln, r, p, KEY_BYTES)
    return _encode(_Scrypt(ln, r, p, salt, key))


def verify_secret(secret: str, encoded: str) -> bool:
    """Whether `secret` matches the stored hash `encoded`; False (never an exception) for a malformed or
    out-of-bounds hash or a secret that is not a string. The final comparison is constant-time."""
    parsed = _parse(encoded)
    if parsed is None or not isinstance(secret, str):
        return False
    try:
        data = secret.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: cannot match any stored secret
        return False
    key = _derive(data, parsed.salt, parsed.ln, parsed.r, parsed.p, len(parsed.key))
    return hmac.compare_digest(key, parsed.key)


def check_hash_format(encoded: object) -> str | None:
    """What is wrong with a configured hash (one line, for the operator), or None when it is usable."""
    if not isinstance(encoded, str) or not _FORMAT.fullmatch(encoded):
        return _EXPECTED
    ln, r, p = (int(group) for group in _FORMAT.fullmatch(encoded).groups()[:3])
    problem = _parameter_problem(ln, r, p)
    if problem:
        return problem
    if _parse(encoded) is None:
        return f"salt must be {SALT_BYTES} to 64 bytes and key 16 to 64 bytes, in unpadded base64"
    return None


def dummy_hash(like: str | None = None) -> str:
    """A hash that no secret is known to match, with the parameters of `like` (a valid hash) or the defaults: what
    an unknown user is checked against, so that a miss costs as much as a check of a real user's hash."""
    parsed = _parse(like) if like is not None else None
    ln, r, p, size = (parsed.ln, parsed.r, parsed.p, len(parsed.key)) if parsed else (DEFAULT_LN, DEFAULT_R, DEFAULT_P,
                                                                                       KEY_BYTES)
    return _encode(_Scrypt(ln, r, p, secrets.token_bytes(SALT_BYTES), secrets.token_bytes(size)))


DUMMY_HASH = "scrypt$ln=15,r=8,p=1$d2FtcGdhdGUgZHVtbXkgc2FsdA$/0nec2F9aTLJDd+S6+DSHeYtKeVUggisFJVinp2UrXg"
"""A hash with the default parameters that no secret is known to match (its key is not an scrypt output)."""


def verify_dummy(secret: str, like: str | None = None) -> bool:
    """Spend what checking `secret` against `like` (default: DUMMY_HASH) would cost, and return False: for unknown
    users, so their refusal takes as long as a wrong secret for a known one."""
    verify_secret(secret if isinstance(secret, str) else "", like if _parse(like) is not None else DUMMY_HASH)
    return False


# -- internals ---------------------------------------------------------------------------------------------------


def _parameter_problem(ln: int, r: int, p: int) -> str | None:
    if not (1 <= ln <= 30 and 1 <= r <= _MAX_R and 1 <= p <= _MAX_P):
        return f"scrypt parameters out of range: ln 1..30, r 1..{_MAX_R}, p 1..{_MAX_P}"
    memory = 128 * r * (1 << ln)
    work = memory * p
    if memory > _MAX_MEMORY or work > _MAX_WORK:
        return "scrypt parameters too costly: 128*r*2^ln*p must be at most 256 MiB (default ln=15, r=8, p=1)"
    if work < _MIN_WORK:
        return "scrypt parameters too weak: 128*r*2^ln*p must be at least 16 MiB (default ln=15, r=8, p=1)"
    return None


def _parse(encoded: object) -> _Scrypt | None:
    if not isinstance(encoded, str):
        return None
    match = _FORMAT.fullmatch(encoded)
    if match is None:
        return None
    ln, r, p = (int(group) for group in match.groups()[:3])
    if _parameter_problem(ln, r, p):
        return None
    salt, key = _unbase64(match.group(4)), _unbase64(match.group(5))
    if salt is None or key is None or not SALT_BYTES <= len(salt) <= 64 or not 16 <= len(key) <= 64:
        return None
    return _Scrypt(ln, r, p, salt, key)


def _derive(data: bytes, salt: bytes, ln: int, r: int, p: int, size: int) -> bytes:
    n = 1 << ln
    # OpenSSL refuses above `maxmem` (default 32 MiB, just under our default's need): allow what the bounded
    # parameters need, plus slack for OpenSSL's own bookkeeping.
    maxmem = 128 * r * (n + p + 2) + (1 << 20)
    return hashlib.scrypt(data, salt=salt, n=n, r=r, p=p, maxmem=maxmem, dklen=size)


def _encode(parsed: _Scrypt) -> str:
    salt = base64.b64encode(parsed.salt).decode("ascii").rstrip("=")
    key = base64.b64encode(parsed.key).decode("ascii").rstrip("=")
    return f"scrypt$ln={parsed.ln},r={parsed.r},p={parsed.p}${salt}${key}"


def _unbase64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
