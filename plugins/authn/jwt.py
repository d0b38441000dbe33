"""The `jwt` authenticator: the client presents a JSON Web Token issued by a trusted identity provider.

Flow as for `ticket`: CHALLENGE("jwt", {}) and the token as the AUTHENTICATE signature. When a handshake source is
enabled (`from_header`: `Authorization: Bearer`, `from_cookie`, `from_query`) and the WebSocket handshake carried a
token, it is verified at HELLO and there is no challenge. `from_query` is off unless named, and best left off: URLs
end up in proxy and access logs, and the token with them.

Verification is strict and fails closed:
- the token's `alg` must be one of `algorithms` (HS256, RS256, ES256, EdDSA; never "none"), and each algorithm has
  its own key: HS256 the bytes of `secret_file` (at least 32), the others the PEM `public_key`, whose type must fit
  every asymmetric algorithm listed. So a token "signed" HS256 with the public key as the secret (the classic
  confusion) is refused unless HS256 is listed, and then checked against the real shared secret;
- `exp` is required; `exp` and `nbf` are checked against the reactor's clock with `leeway` seconds; `iss` must equal
  `issuer` and `aud` must be (or list) `audience`, compared exactly;
- the authid is the `authid_claim` (default "sub"); the role the `authrole_claim` (default "role"), else
  `default_role`, else refused; `roles` limits which roles a token may claim. A HELLO authid must match the token's;
- with `single_use`, each token's `jti` is remembered until the token expires, and a replay is refused. The memory
  is one for the whole router (the plugin context's SharedState): a token used on one listener is refused on every
  other and after a reload, which builds new authenticators. It is bounded in entries by `max_replay_cache` and in
  bytes by keying each entry with a fixed-size digest of (issuer, jti); when full, new single-use tokens are refused
  rather than forgetting unexpired ones (which would let them be replayed).
"""

from __future__ import annotations

import hashlib
import heapq
import math
from collections.abc import Mapping
from typing import Any

import jwt as pyjwt
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from zope.interface import implementer

from wampgate.plugin import (
    AuthRequest,
    Challenge,
    Denied,
    IAuthenticator,
    Identity,
    PluginContext,
    SharedState,
    Table,
    TransportInfo,
)

ALGORITHMS = ("HS256", "RS256", "ES256", "EdDSA")
MAX_TOKEN_BYTES = 16 * 1024
MAX_JTI_CHARS = 256
REPLAY_CACHE = "jwt.replay_cache"  # its name in the router's SharedState
_KEYS = ("algorithms", "secret_file", "public_key", "issuer", "audience", "leeway", "authid_claim", "authrole_claim",
         "roles", "default_role", "single_use", "max_replay_cache", "from_header", "from_cookie", "from_query")
_KEY_TYPES = {"RS256": (rsa.RSAPublicKey, "an RSA"), "ES256": (ec.EllipticCurvePublicKey, "a P-256 EC"),
              "EdDSA": (ed25519.Ed25519PublicKey, "an Ed25519")}
_DECODE_OPTIONS = {"require": ["exp"], "verify_exp": False, "verify_nbf": False, "verify_iat": False,
                   "verify_aud": False, "verify_iss": False}


@implementer(IAuthenticator)
class JwtAuthenticator:
    """Verifies JWTs from one issuer for one audience."""

    authmethod = "jwt"

    def __init__(self, config: Mapping[str, Any], *, reactor: Any, context: PluginContext | None = None):
        self._reactor = reactor
        table = Table(config, "", _KEYS)
        self._algorithms = table.strings("algorithms", required=True, choices=ALGORITHMS)
        self._keys = _read_keys(table, self._algorithms, context)
        self._issuer = table.string("issuer", required=True)
        self._audience = table.string("audience", required=True)
        self._leeway = table.number("leeway", default=30, minimum=0, maximum=300)
        self._authid_claim = table.string("authid_claim", default="sub")
        self._authrole_claim = table.string("authrole_claim", default="role")
        self._allowed_roles = table.strings("roles")
        self._roles = frozenset(self._allowed_roles) or None
        self._default_role = table.string("default_role")
        self._replay, self._replay_limit = _read_replay_cache(table, context)
        self._from_header = table.boolean("from_header", False)
        self._from_cookie = table.string("from_cookie")
        self._from_query = table.string("from_query")

    def roles(self) -> dict[str, str]:
        """The roles its table names (the `roles` a token may claim, the `default_role`), by key: the router checks
        that the realms it serves define them. A token may claim others when `roles` is not set; those are checked
        at login only."""
        named = {f"roles[{index}]": role for index, role in enumerate(self._allowed_roles)}
        if self._default_role is not None:
            named["default_role"] = self._default_role
        return named

    @property
    def replay_cache_size(self) -> int:
        """How many unexpired single-use tokens are remembered now (0 when single_use is off): for metrics, tests."""
        if self._replay is None:
            return 0
        self._replay.forget_expired(self._reactor.seconds())
        return len(self._replay)

    def begin(self, request: AuthRequest) -> Identity | Challenge | Denied:
        """Verify a token from the WebSocket handshake, when an enabled source has one; else ask for one."""
        token = self._handshake_token(request.transport)
        if isinstance(token, Denied):
            return token
        if token is not None:
            return self._authenticate(request, token)
        return Challenge("jwt", {})

    def finish(self, request: AuthRequest, challenge: Challenge, signature: Any, extra: Any) -> Identity | Denied:
        """The AUTHENTICATE signature is the token."""
        return self._authenticate(request, signature)

    def _handshake_token(self, transport: TransportInfo) -> str | Denied | None:
        """The token from the first enabled source that has one: header, then cookie, then query."""
        if self._from_header:
            scheme, _, value = transport.http_headers.get("authorization", "").strip().partition(" ")
            if scheme.lower() == "bearer" and value.strip():
                return value.strip()
        if self._from_cookie is not None and transport.cookies.get(self._from_cookie):
            return transport.cookies[self._from_cookie]
        if self._from_query is not None:
            values = transport.http_query.get(self._from_query, ())
            if len(values) > 1:
                return Denied(f"query parameter {self._from_query!r} given {len(values)} times")
            if values and values[0]:
                return values[0]
        return None

    def _authenticate(self, request: AuthRequest, token: Any) -> Identity | Denied:
        claims = self._verified_claims(token)
        if isinstance(claims, Denied):
            return claims
        identity = self._identity(claims)
        if isinstance(identity, Denied):
            return identity
        if request.authid and request.authid != identity.authid:
            return Denied(f"HELLO authid differs from the token's {self._authid_claim!r} claim")
        if self._replay is not None:
            refused = self._remember(claims)
            if refused:
                return Denied(refused)
        return identity

    def _verified_claims(self, token: Any) -> dict[str, Any] | Denied:
        """The claims of a token whose signature, algorithm, times, issuer and audience are right."""
        if not isinstance(token, str) or len(token.encode("utf-8", "surrogatepass")) > MAX_TOKEN_BYTES:
            return Denied(f"malformed token: expected a string of at most {MAX_TOKEN_BYTES} bytes")
        try:
            algorithm = pyjwt.get_unverified_header(token).get("alg")
            if algorithm not in self._algorithms:
                return Denied(f"token algorithm {str(algorithm)[:20]!r} is not one of {', '.join(self._algorithms)}")
            claims = pyjwt.decode(token, self._keys[algorithm], algorithms=[algorithm], options=_DECODE_OPTIONS)
        except pyjwt.PyJWTError as e:
            return Denied(f"invalid token: {type(e).__name__}: {str(e)[:200]}")
        problem = self._time_problem(claims) or self._audience_problem(claims)
        return Denied(problem) if problem else claims

    def _time_problem(self, claims: Mapping[str, Any]) -> str | None:
        now = self._reactor.seconds()
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not _is_number(exp):
            return "token exp is not a number"
        if now > exp + self._leeway:
            return f"token expired {now - exp:.0f} s ago"
        if nbf is not None and not _is_number(nbf):
            return "token nbf is not a number"
        if nbf is not None and now + self._leeway < nbf:
            return f"token not valid for another {nbf - now:.0f} s"
        return None

    def _audience_problem(self, claims: Mapping[str, Any]) -> str | None:
        if claims.get("iss") != self._issuer or not isinstance(claims.get("iss"), str):
            return "token issuer is not the configured issuer"
        audience = claims.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if not any(isinstance(a, str) and a == self._audience for a in audiences):
            return "token audience does not include the configured audience"
        return None

    def _identity(self, claims: Mapping[str, Any]) -> Identity | Denied:
        authid = claims.get(self._authid_claim)
        if not isinstance(authid, str) or not authid:
            return Denied(f"token has no string {self._authid_claim!r} claim")
        role = claims.get(self._authrole_claim, self._default_role)
        if role is None:
            return Denied(f"token has no {self._authrole_claim!r} claim and there is no default_role")
        if not isinstance(role, str) or not role:
            return Denied(f"token's {self._authrole_claim!r} claim is not a string")
        if self._roles is not None and role not in self._roles:
            return Denied(f"token claims role {role[:100]!r}, which roles does not allow")
        return Identity(authid=authid, authrole=role, authmethod="jwt", authprovider="jwt")

    def _remember(self, claims: Mapping[str, Any]) -> str | None:
        """Record a single-use token's jti until it expires; why it is refused, or None."""
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti or len(jti) > MAX_JTI_CHARS:
            return f"single_use requires a jti claim (a string of 1 to {MAX_JTI_CHARS} characters)"
        key = _replay_key(self._issuer, jti)
        return self._replay.admit(key, claims["exp"] + self._leeway, self._reactor.seconds(), self._replay_limit)


class ReplayCache:
    """Every single-use token seen and not yet expired, for the whole router, bounded: full means refuse, never
    forget. Keys are fixed-size digests (`_replay_key`), so each entry costs the same whatever the token held."""

    def __init__(self) -> None:
        self._until: dict[bytes, float] = {}
        self._expiries: list[tuple[float, bytes]] = []  # a heap: the next to expire first

    def __len__(self) -> int:
        return len(self._until)

    def admit(self, key: bytes, until: float, now: float, limit: int) -> str | None:
        """None (and remember `key` until `until`) for a first use; else why the token is refused. `limit` is the
        asking authenticator's `max_replay_cache`."""
        self.forget_expired(now)
        if key in self._until:
            return "token replayed: its jti was already used"
        if len(self._until) >= limit:
            return f"replay cache full ({limit} unexpired single-use tokens): refused"
        self._until[key] = until
        heapq.heappush(self._expiries, (until, key))
        return None

    def forget_expired(self, now: float) -> None:
        """Drop the tokens past their expiry (plus leeway): they are refused as expired from now on anyway."""
        while self._expiries and self._expiries[0][0] < now:
            _, expired = heapq.heappop(self._expiries)
            del self._until[expired]


def _replay_key(issuer: str, jti: str) -> bytes:
    """A jti is unique per issuer: the cache key names both, in 16 bytes."""
    digest = hashlib.blake2b(digest_size=16)
    for part in (issuer, jti):
        data = part.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.digest()


def _read_replay_cache(table: Table, context: PluginContext | None) -> tuple[ReplayCache | None, int]:
    """The router's one replay cache (from the context's SharedState) when single_use is on, and this
    authenticator's bound on it."""
    single_use = table.boolean("single_use", False)
    limit = table.integer("max_replay_cache", default=100_000, minimum=1, maximum=10_000_000)
    if table.has("max_replay_cache") and not single_use:
        raise table.fail("max_replay_cache", "only with single_use = true")
    if not single_use:
        return None, limit
    shared = context.shared if context is not None else SharedState()
    cache = shared.get(REPLAY_CACHE, ReplayCache)
    if not isinstance(cache, ReplayCache):
        raise TypeError(f"SharedState {REPLAY_CACHE!r} holds a {type(cache).__name__}, not a ReplayCache")
    return cache, limit


def _read_keys(table: Table, algorithms: tuple[str, ...], context: PluginContext | None) -> dict[str, Any]:
    """Each listed algorithm's verification key: the shared secret for HS256, the public key for the others."""
    keys: dict[str, Any] = {}
    if "HS256" in algorithms:
        secret = table.file_bytes("secret_file", context, required=True)
        if len(secret) < 32:
            raise table.fail("secret_file", f"HS256 needs a secret of at least 32 bytes; the file has {len(secret)}")
        if secret.lstrip().startswith((b"-----BEGIN", b"ssh-")):
            raise table.fail("secret_file", "looks like a key file; HS256 needs a random shared secret")
        keys["HS256"] = secret
    elif table.has("secret_file"):
        raise table.fail("secret_file", "only with HS256 in algorithms")
    asymmetric = [a for a in algorithms if a != "HS256"]
    if not asymmetric:
        if table.has("public_key"):
            raise table.fail("public_key", "only with RS256, ES256 or EdDSA in algorithms")
        return keys
    public_key = _load_public_key(table, context)
    for algorithm in asymmetric:
        kind, describe = _KEY_TYPES[algorithm]
        if not isinstance(public_key, kind) or not _strong_enough(public_key):
            raise table.fail("public_key", f"{algorithm} in algorithms needs {describe} public key "
                                           "(RSA: at least 2048 bits); this key does not fit")
        keys[algorithm] = public_key
    return keys


def _load_public_key(table: Table, context: PluginContext | None) -> Any:
    data = table.file_bytes("public_key", context, required=True)
    try:
        return load_pem_public_key(data)
    except (ValueError, TypeError):
        raise table.fail("public_key", "expected a PEM file with a PUBLIC KEY") from None


def _strong_enough(key: Any) -> bool:
    if isinstance(key, rsa.RSAPublicKey):
        return key.key_size >= 2048
    if isinstance(key, ec.EllipticCurvePublicKey):
        return isinstance(key.curve, ec.SECP256R1)
    return True


def _is_number(value: Any) -> bool:
    """A finite JSON number (JSON parsers accept NaN and Infinity, and integers too large for a float)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False
