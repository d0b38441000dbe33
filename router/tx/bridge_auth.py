"""How an HTTP bridge request proves who it acts as: Crossbar's signed requests, a bearer JWT verified by the
listener's `jwt` authenticator, or nothing (a configured identity, for loopback clients).

Signed requests, as Crossbar's HTTP bridge defines them, so its client libraries work unchanged: the query carries
`key`, `timestamp` (UTC, ISO 8601: "2011-10-14T16:59:51.123Z"), `seq` and `nonce` (integers) and `signature`,
which is base64url (with padding) of HMAC-SHA256(secret, key | timestamp | seq | nonce | body), the parts as sent,
concatenated. Beyond Crossbar, a nonce is accepted once per key (remembered while its timestamp is in the window, in
a bounded store), and a timestamp outside the window is an authentication failure.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
from datetime import datetime, timezone

from twisted.internet import defer

from wampgate.config import BridgeConfig
from wampgate.core import errors
from wampgate.model import AuthRequest, Challenge, Identity, TransportInfo

BAD_REQUEST = "wampgate.error.bad_request"
SIGNED_PARAMETERS = (b"key", b"timestamp", b"seq", b"nonce", b"signature")
SIGNATURE_METHOD = "http-signature"
ANONYMOUS = "anonymous"
PROVIDER = "http-bridge"
MAX_PARAMETER = 256  # bytes of one signing parameter


class AuthRefused(Exception):
    """The request is refused before it is authorized: HTTP `status`, WAMP-style `error` URI, `text` for the client;
    `reason` is for our log only."""

    def __init__(self, status: int, error: str, text: str, reason: str = ""):
        super().__init__(text)
        self.status = status
        self.error = error
        self.text = text
        self.reason = reason or text


def _failed(reason: str) -> AuthRefused:
    return AuthRefused(401, errors.AUTHENTICATION_FAILED, "authentication failed", reason)


def parse_timestamp(text: str) -> float | None:
    """Seconds since the epoch of a UTC ISO 8601 timestamp ending in "Z", with or without a fraction."""
    for form in ("%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%dT%H:%M:%SZ"):
        try:
            return datetime.strptime(text, form).replace(tzinfo=timezone.utc).timestamp()
        except ValueError:
            continue
    return None


def signature(secret: bytes, key: bytes, timestamp: bytes, seq: bytes, nonce: bytes, body: bytes) -> bytes:
    """The signature a client sends for these parts (Crossbar's construction)."""
    digest = hmac.new(secret, key + timestamp + seq + nonce + body, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest)


class NonceStore:
    """Nonces seen, each until its timestamp leaves the window: a replay is refused, and a full store refuses new
    requests (HTTP 503) rather than forgetting a nonce that could still be replayed. Keys are fixed-size digests."""

    def __init__(self, limit: int):
        self._limit = limit
        self._expiry: dict[bytes, float] = {}
        self._heap: list[tuple[float, bytes]] = []

    def __len__(self) -> int:
        return len(self._expiry)

    def admit(self, key: bytes, nonce: bytes, expires: float, now: float) -> None:
        """Raises AuthRefused for a nonce seen before (under this key) or when the store is full."""
        self._forget_expired(now)
        digest = hashlib.sha256(len(key).to_bytes(4, "big") + key + nonce).digest()[:16]
        if digest in self._expiry:
            raise _failed("the nonce was used before")
        if len(self._expiry) >= self._limit:
            raise AuthRefused(503, errors.UNAVAILABLE, "too many signed requests; retry later",
                              "the nonce store is full (max_nonces)")
        self._expiry[digest] = expires
        heapq.heappush(self._heap, (expires, digest))

    def _forget_expired(self, now: float) -> None:
        heap = self._heap
        while heap and heap[0][0] <= now:
            _, digest = heapq.heappop(heap)
            self._expiry.pop(digest, None)


class SignatureCheck:
    """Verifies one bridge's signed requests."""

    def __init__(self, config: BridgeConfig):
        self._key = config.key.encode("utf-8")
        self._secret = config.secret.encode("utf-8")
        self._window = config.timestamp_window
        self._identity = Identity(config.authid, config.authrole, SIGNATURE_METHOD, PROVIDER)
        self.nonces = NonceStore(config.max_nonces)

    def verify(self, query: dict[bytes, list[bytes]], body: bytes, now: float) -> Identity:
        parts = {}
        for name in SIGNED_PARAMETERS:
            values = query.get(name, [])
            if len(values) != 1 or not values[0] or len(values[0]) > MAX_PARAMETER:
                raise AuthRefused(400, BAD_REQUEST, f"a signed request needs exactly one {name.decode()!r} query "
                                  f"parameter of at most {MAX_PARAMETER} bytes")
            parts[name] = values[0]
        for name in (b"seq", b"nonce"):
            if not parts[name].isdigit():
                raise AuthRefused(400, BAD_REQUEST, f"the {name.decode()!r} query parameter must be an integer")
        timestamp = parse_timestamp(parts[b"timestamp"].decode("ascii", "replace"))
        if timestamp is None:
            raise AuthRefused(400, BAD_REQUEST, "the 'timestamp' query parameter must be UTC ISO 8601, e.g. "
                                                "2011-10-14T16:59:51.123Z")
        expected = signature(self._secret, parts[b"key"], parts[b"timestamp"], parts[b"seq"], parts[b"nonce"], body)
        key_known = hmac.compare_digest(parts[b"key"], self._key)
        if not (hmac.compare_digest(parts[b"signature"], expected) and key_known):
            raise _failed("unknown key" if not key_known else "wrong signature")
        if abs(timestamp - now) > self._window:
            raise AuthRefused(401, errors.AUTHENTICATION_FAILED, "the timestamp is outside the allowed window; "
                              "check the client's clock", f"timestamp {abs(timestamp - now):.0f} s from now")
        self.nonces.admit(parts[b"key"], parts[b"nonce"], timestamp + self._window, now)
        return self._identity


def bearer_token(authorization: bytes | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not authorization:
        return None
    scheme, _, value = authorization.decode("latin-1").strip().partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


async def verify_jwt(method, token: str | None, realm: str, transport: TransportInfo, *, new_id, clock,
                     timeout: float) -> Identity:
    """The identity the listener's `jwt` authenticator gives `token` (its `finish`, as for a WAMP client's
    AUTHENTICATE), within `timeout` seconds; raises AuthRefused."""
    if token is None:
        raise AuthRefused(401, errors.AUTHENTICATION_FAILED, "an 'Authorization: Bearer <JWT>' header is required",
                          "no bearer token")
    if method is None or not method.serves(realm):
        raise _failed("the listener's jwt authenticator does not serve the bridge's realm")
    request = AuthRequest(session_id=new_id(), realm=realm, authid=None, authmethods=("jwt",), authextra={},
                          transport=transport)
    d = defer.maybeDeferred(method.authenticator.finish, request, Challenge("jwt"), token, {})
    d.addTimeout(timeout, clock)
    try:
        answer = await d
    except defer.TimeoutError:
        raise AuthRefused(503, errors.UNAVAILABLE, "authentication is not available; retry later",
                          "the jwt authenticator did not answer in time") from None
    except Exception as e:
        raise _failed(f"the jwt authenticator raised {type(e).__name__}") from None
    if not isinstance(answer, Identity):
        raise _failed(getattr(answer, "reason", "the token was refused"))
    return answer


def configured_identity(config: BridgeConfig) -> Identity:
    """`authentication = "none"`: every request is the bridge's configured identity."""
    return Identity(config.authid, config.authrole, ANONYMOUS, PROVIDER)
