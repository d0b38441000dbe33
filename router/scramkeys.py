"""WAMP-SCRAM's stored credentials: what the router keeps for a principal (salt, StoredKey, ServerKey and the KDF's
parameters; never the password), how `wampgate hash-secret --scram` makes them, and the checks both the static
config and a dynamic backend's answer go through.

SaltedPassword is computed exactly as Autobahn's `AuthScram` client does, so its users log in unchanged:
- "argon2id13" (on the wire "argon2id-13"): Argon2id v1.3, parallelism 1, 32 bytes, the salt base64-decoded; the
  salted password is the *unpadded base64 text* of that hash (what Autobahn takes from argon2's encoded string);
- "pbkdf2": PBKDF2-HMAC-SHA256, 32 bytes, the salt base64-decoded (Autobahn 26.x's own PBKDF2 path fails on its
  text salt; other clients follow the spec).
The password is UTF-8 as typed (Autobahn applies no SASLprep to it); the authid is SASLprep'd in the AuthMessage.

Parameters come from a config or a backend, possibly hostile, and every client must pay for them: they are bounded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import stringprep
import unicodedata
from dataclasses import dataclass

ARGON2ID13, PBKDF2 = "argon2id13", "pbkdf2"
KDF_NAMES = {"argon2id13": ARGON2ID13, "argon2id-13": ARGON2ID13, "pbkdf2": PBKDF2}  # accepted spellings
WIRE_NAMES = {ARGON2ID13: "argon2id-13", PBKDF2: "pbkdf2"}  # what the CHALLENGE says (Autobahn, Crossbar)
KEY_BYTES = 32
SALT_BYTES = 16
MIN_SALT_BYTES, MAX_SALT_BYTES = 8, 64
# (minimum, maximum) per KDF; memory in KiB (argon2 only).
ITERATIONS = {ARGON2ID13: (1, 64), PBKDF2: (4096, 10_000_000)}
MEMORY = (8 * 1024, 1024 * 1024)  # 8 MiB .. 1 GiB
DEFAULTS = {ARGON2ID13: (3, 64 * 1024), PBKDF2: (600_000, None)}  # (iterations, memory): RFC 9106's second choice


@dataclass(frozen=True, slots=True)
class ScramCredentials:
    """One principal's stored SCRAM credentials."""

    kdf: str  # ARGON2ID13 or PBKDF2
    salt: bytes
    iterations: int
    memory: int | None  # KiB, argon2 only
    stored_key: bytes
    server_key: bytes


def parameter_problem(kdf: str, iterations: object, memory: object) -> tuple[str, str] | None:
    """(key, problem) for KDF parameters outside the bounds, else None."""
    low, high = ITERATIONS[kdf]
    if isinstance(iterations, bool) or not isinstance(iterations, int) or not low <= iterations <= high:
        return "iterations", f"expected an integer from {low} to {high} for {kdf}"
    if kdf == ARGON2ID13:
        if isinstance(memory, bool) or not isinstance(memory, int) or not MEMORY[0] <= memory <= MEMORY[1]:
            return "memory", f"expected KiB from {MEMORY[0]} to {MEMORY[1]} for {kdf}"
    elif memory is not None:
        return "memory", f"only for argon2id13; {kdf} has no memory cost"
    return None


def salted_password(password: str, kdf: str, salt: bytes, iterations: int, memory: int | None) -> bytes:
    """SaltedPassword as Autobahn's client computes it (see the module's docstring)."""
    secret = password.encode("utf-8")
    if kdf == PBKDF2:
        return hashlib.pbkdf2_hmac("sha256", secret, salt, iterations, KEY_BYTES)
    from argon2.low_level import Type, hash_secret_raw

    raw = hash_secret_raw(secret, salt, time_cost=iterations, memory_cost=memory, parallelism=1,
                          hash_len=KEY_BYTES, type=Type.ID, version=19)
    return base64.b64encode(raw).rstrip(b"=")


def derive(password: str, kdf: str = ARGON2ID13, *, iterations: int | None = None, memory: int | None = None,
           salt: bytes | None = None) -> ScramCredentials:
    """Fresh credentials for `password` (a random salt unless given); raises ValueError for bad parameters."""
    if kdf not in ITERATIONS:
        raise ValueError(f"kdf: expected one of {', '.join(ITERATIONS)}")
    default_iterations, default_memory = DEFAULTS[kdf]
    iterations = default_iterations if iterations is None else iterations
    memory = default_memory if memory is None and kdf == ARGON2ID13 else memory
    problem = parameter_problem(kdf, iterations, memory)
    if problem:
        raise ValueError(f"{problem[0]}: {problem[1]}")
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    salted = salted_password(password, kdf, salt, iterations, memory)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    return ScramCredentials(kdf, salt, iterations, memory, hashlib.sha256(client_key).digest(),
                            hmac.new(salted, b"Server Key", hashlib.sha256).digest())


def toml_lines(credentials: ScramCredentials) -> str:
    """The lines of a `[[principals]]` row of the scram authenticator (authid and role left to the operator)."""
    lines = [f'kdf = "{credentials.kdf}"', f"iterations = {credentials.iterations}"]
    if credentials.memory is not None:
        lines.append(f"memory = {credentials.memory}")
    lines += [f'salt = "{b64(credentials.salt)}"', f'stored_key = "{b64(credentials.stored_key)}"',
              f'server_key = "{b64(credentials.server_key)}"']
    return "\n".join(lines)


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: object, *, minimum: int = 0, maximum: int = 1 << 16) -> bytes | None:
    """Canonical padded base64 text -> bytes of a length within bounds; None for anything else."""
    if not isinstance(text, str) or len(text) > 4 * (maximum // 3 + 1):
        return None
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if not minimum <= len(raw) <= maximum or b64(raw) != text:
        return None
    return raw


def saslprep(text: str) -> str:
    """RFC 4013 SASLprep (stored strings: unassigned code points refused); raises ValueError for a prohibited
    string. ASCII printable text, the usual authid, comes back unchanged."""
    if text.isascii() and text.isprintable():
        return text
    mapped = "".join(" " if stringprep.in_table_c12(c) else c for c in text if not stringprep.in_table_b1(c))
    mapped = unicodedata.normalize("NFKC", mapped)
    for c in mapped:
        if (stringprep.in_table_c12(c) or stringprep.in_table_c21_c22(c) or stringprep.in_table_c3(c)
                or stringprep.in_table_c4(c) or stringprep.in_table_c5(c) or stringprep.in_table_c6(c)
                or stringprep.in_table_c7(c) or stringprep.in_table_c8(c) or stringprep.in_table_c9(c)
                or stringprep.in_table_a1(c)):
            raise ValueError("a character SASLprep prohibits")
    if any(stringprep.in_table_d1(c) for c in mapped):
        if any(stringprep.in_table_d2(c) for c in mapped) or not (
                stringprep.in_table_d1(mapped[0]) and stringprep.in_table_d1(mapped[-1])):
            raise ValueError("bidirectional text SASLprep prohibits")
    return mapped
