"""The built-in flow control: connection and session admission, token-bucket rate limits (messages/s and bytes/s
per session, authid, authrole, peer address and URI prefix) and fixed-window quotas. Every limit is on by default.

State is bounded: per-session state goes when the session leaves; shared buckets (authid, role, peer, prefix) are
forgotten once idle and full, and their number is capped (`max_tracked`), refusing new keys beyond it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from zope.interface import implementer

from router.core.buckets import TokenBucket, WindowQuota
from router.interfaces import IFlowControl, PluginConfigError
from router.model import ADMIT, DISCONNECT_KIND, REJECT_KIND, FlowSession, Verdict

RATE_LIMITED = "wampgate.error.rate_limited"
TOO_MANY_CONNECTIONS = "too_many_connections"
TOO_MANY_SESSIONS = "wampgate.error.too_many_sessions"
OVERLOADED = "wampgate.close.rate_limited"
SCOPES = ("session", "authid", "authrole", "peer")
QUIET = 0.5  # seconds without a refusal (and past its retry_after) that end a spell of overload


@dataclass(frozen=True)
class Rate:
    messages: float  # per second (0: unlimited)
    burst: float
    bytes: float  # per second (0: unlimited)
    byte_burst: float


@dataclass(frozen=True)
class Quota:
    scope: str
    messages: int
    window: float


DEFAULT_RATES = {
    "session": Rate(1000.0, 2000.0, 16 * 2**20, 32 * 2**20),
    "authid": Rate(5000.0, 10000.0, 64 * 2**20, 128 * 2**20),
    "authrole": Rate(100_000.0, 200_000.0, 0.0, 0.0),
    "peer": Rate(10000.0, 20000.0, 128 * 2**20, 256 * 2**20),
}
DEFAULT_QUOTAS = (Quota("authid", 10_000_000, 3600.0),)


class _Config:
    """The plugin's table, validated; every problem raises PluginConfigError naming the key."""

    KEYS = ("max_connections", "max_connections_per_peer", "max_sessions_per_authid", "disconnect_after",
            "max_tracked", "rates", "uri_rates", "quotas")

    def __init__(self, raw: Mapping[str, Any]):
        for key in raw:
            if key not in self.KEYS:
                raise PluginConfigError(key, f"unknown key; allowed: {', '.join(self.KEYS)}", raw[key])
        self.max_connections = _int(raw, "max_connections", 10_000, 1, 10_000_000)
        self.max_connections_per_peer = _int(raw, "max_connections_per_peer", 100, 1, 10_000_000)
        self.max_sessions_per_authid = _int(raw, "max_sessions_per_authid", 100, 1, 10_000_000)
        self.disconnect_after = _number(raw, "disconnect_after", 10.0, 0.0, 3600.0)
        self.max_tracked = _int(raw, "max_tracked", 100_000, 100, 10_000_000)
        rates = _table(raw, "rates")
        for key in rates:
            if key not in SCOPES:
                raise PluginConfigError(f"rates.{key}", f"unknown scope; allowed: {', '.join(SCOPES)}", rates[key])
        self.rates = {scope: _rate(rates.get(scope), f"rates.{scope}", DEFAULT_RATES[scope]) for scope in SCOPES}
        self.uri_rates = tuple(_uri_rate(entry, f"uri_rates[{i}]") for i, entry in enumerate(_list(raw, "uri_rates")))
        prefixes = [prefix for prefix, _ in self.uri_rates]
        for i, prefix in enumerate(prefixes):
            if prefix in prefixes[:i]:
                raise PluginConfigError(f"uri_rates[{i}].prefix", "expected each prefix once; this one is repeated",
                                        prefix)
        quotas = raw.get("quotas")
        self.quotas = DEFAULT_QUOTAS if quotas is None else tuple(
            _quota(entry, f"quotas[{i}]") for i, entry in enumerate(_list(raw, "quotas")))


def _int(raw, key, default, low, high) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise PluginConfigError(key, f"expected an integer from {low} to {high}", value)
    return value


def _number(raw, key, default, low, high) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise PluginConfigError(key, f"expected a number from {low} to {high}", value)
    return float(value)


def _table(raw, key) -> Mapping:
    value = raw.get(key, {})
    if not isinstance(value, Mapping):
        raise PluginConfigError(key, "expected a table", value)
    return value


def _list(raw, key) -> list:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, Mapping) for item in value):
        raise PluginConfigError(key, "expected an array of tables", value)
    return value


def _prefixed(error: PluginConfigError, path: str) -> PluginConfigError:
    return PluginConfigError(f"{path}.{error.key}", error.problem, error.value)


def _rate(raw, path: str, default: Rate, extra: tuple[str, ...] = ()) -> Rate:
    if raw is None:
        return default
    if not isinstance(raw, Mapping):
        raise PluginConfigError(path, "expected a table", raw)
    allowed = ("messages", "burst", "bytes", "byte_burst") + extra
    for key in raw:
        if key not in allowed:
            raise PluginConfigError(f"{path}.{key}", f"unknown key; allowed: {', '.join(allowed)}", raw[key])
    try:
        messages = _number(raw, "messages", default.messages, 0.0, 1e9)
        size = _number(raw, "bytes", default.bytes, 0.0, 1e12)
        return Rate(messages, _number(raw, "burst", max(messages, 1.0), 1.0, 1e9), size,
                    _number(raw, "byte_burst", max(size, 1.0), 1.0, 1e12))
    except PluginConfigError as e:
        raise _prefixed(e, path) from None


def _uri_rate(raw, path: str) -> tuple[str, Rate]:
    prefix = raw.get("prefix")
    if not isinstance(prefix, str) or (prefix and not prefix.endswith(".")):
        raise PluginConfigError(f"{path}.prefix", 'expected the URI prefix the rate applies to, ending in "."', prefix)
    return prefix, _rate(raw, path, Rate(0.0, 1.0, 0.0, 1.0), ("prefix",))


def _quota(raw, path: str) -> Quota:
    for key in raw:
        if key not in ("per", "messages", "window"):
            raise PluginConfigError(f"{path}.{key}", "unknown key; allowed: per, messages, window", raw[key])
    scope = raw.get("per")
    if scope not in SCOPES:
        raise PluginConfigError(f"{path}.per", f"expected one of {', '.join(SCOPES)}", scope)
    try:
        return Quota(scope, _int(raw, "messages", 0, 1, 10**12), _number(raw, "window", 3600.0, 1.0, 30 * 86400.0))
    except PluginConfigError as e:
        raise _prefixed(e, path) from None


class _Meter:
    """The buckets and quotas of one key (a session, an authid, ...)."""

    __slots__ = ("messages", "bytes", "quotas")

    def __init__(self, rate: Rate, quotas: list[Quota], now: float):
        self.messages = TokenBucket(rate.messages, rate.burst, now)
        self.bytes = TokenBucket(rate.bytes, rate.byte_burst, now)
        self.quotas = [WindowQuota(q.messages, q.window, now) for q in quotas]

    def take(self, size: int, now: float) -> float:
        """Charge one message of `size` bytes: 0.0 when every limit admits it, else the wait, with nothing
        charged (limits already charged are refunded)."""
        wait = self.messages.take(1, now)
        if wait:
            return wait
        wait = self.bytes.take(size, now)
        if wait:
            self.messages.refund(1)
            return wait
        for index, quota in enumerate(self.quotas):
            wait = quota.take(1, now)
            if wait:
                self.refund(size, self.quotas[:index])
                return wait
        return 0.0

    def refund(self, size: int, quotas=None) -> None:
        self.messages.refund(1)
        self.bytes.refund(size)
        for quota in self.quotas if quotas is None else quotas:
            quota.refund(1)

    def idle(self, now: float) -> bool:
        return self.messages.full(now) and self.bytes.full(now) and all(q.idle(now) for q in self.quotas)


@implementer(IFlowControl)
class LimitsFlowControl:
    """The `limits` plugin."""

    def __init__(self, config: Mapping[str, Any], *, reactor: Any = None):
        self.config = _Config(config)
        self._connections: dict[str, int] = {}
        self._total_connections = 0
        self._sessions_per_authid: dict[tuple[str, str], int] = {}
        self._session_meters: dict[int, tuple[_Meter, ...]] = {}
        self._shared: dict[tuple, _Meter] = {}
        self._over_since: dict[int, tuple[float, float, float]] = {}  # session -> (spell start, last refusal, retry at)
        self._overflow: dict[str, _Meter] = {}  # per scope: shared by new keys beyond max_tracked
        self._closed_recently: dict[int, None] = {}  # bounded: late messages of these get no new state
        self._quotas = {scope: [q for q in self.config.quotas if q.scope == scope] for scope in SCOPES}

    # -- connections and sessions --------------------------------------------------------------------------------

    def admit_connection(self, peer: str, listener: str, now: float) -> Verdict:
        if self._total_connections >= self.config.max_connections:
            return Verdict(REJECT_KIND, "max_connections", TOO_MANY_CONNECTIONS)
        if self._connections.get(peer, 0) >= self.config.max_connections_per_peer:
            return Verdict(REJECT_KIND, "max_connections_per_peer", TOO_MANY_CONNECTIONS)
        self._connections[peer] = self._connections.get(peer, 0) + 1
        self._total_connections += 1
        return ADMIT

    def connection_closed(self, peer: str, listener: str) -> None:
        count = self._connections.get(peer, 0) - 1
        if count > 0:
            self._connections[peer] = count
        else:
            self._connections.pop(peer, None)
        self._total_connections = max(0, self._total_connections - 1)

    def admit_session(self, session: FlowSession, now: float) -> Verdict:
        key = (session.realm, session.authid)
        if self._sessions_per_authid.get(key, 0) >= self.config.max_sessions_per_authid:
            return Verdict(DISCONNECT_KIND, "max_sessions_per_authid", TOO_MANY_SESSIONS)
        self._sessions_per_authid[key] = self._sessions_per_authid.get(key, 0) + 1
        return ADMIT

    def _meters(self, session: FlowSession, now: float) -> tuple[_Meter, ...]:
        """A session's meters, made at its first message: an idle session holds none."""
        if len(self._shared) + 3 > self.config.max_tracked:
            self._forget_idle(now)  # once, before: never between this session's own new meters
        meters = (
            _Meter(self.config.rates["session"], self._quotas["session"], now),
            *(self._shared_meter(scope, value, now, evict=False) for scope, value in
              (("authid", (session.realm, session.authid)), ("authrole", (session.realm, session.authrole)),
               ("peer", session.peer))),
        )
        self._session_meters[session.session_id] = meters
        return meters

    def session_closed(self, session: FlowSession) -> None:
        self._closed_recently[session.session_id] = None
        while len(self._closed_recently) > 1000:
            del self._closed_recently[next(iter(self._closed_recently))]
        key = (session.realm, session.authid)
        count = self._sessions_per_authid.get(key, 0) - 1
        if count > 0:
            self._sessions_per_authid[key] = count
        else:
            self._sessions_per_authid.pop(key, None)
        self._session_meters.pop(session.session_id, None)
        self._over_since.pop(session.session_id, None)

    # -- messages ------------------------------------------------------------------------------------------------

    def admit(self, session: FlowSession, action: str, uri: str, size: int, now: float) -> Verdict:
        meters = self._session_meters.get(session.session_id)
        if meters is None:
            if session.session_id in self._closed_recently:
                return ADMIT  # a late message of a session that left: it holds no state, and gets none
            meters = self._meters(session, now)
        wait = 0.0
        charged = 0
        for meter in meters:
            wait = meter.take(size, now)
            if wait:
                break
            charged += 1
        if not wait and self.config.uri_rates:
            wait = self._take_uri(uri, size, now)
            if wait:
                charged = len(meters)
        if not wait:
            return ADMIT
        for meter in meters[:charged]:
            meter.refund(size)
        return self._over(session.session_id, wait, now)

    def _over(self, session_id: int, wait: float, now: float) -> Verdict:
        """Refused. A spell of overload goes on while refusals come before the last one's retry_after was up, or
        within QUIET seconds of it; a spell of `disconnect_after` seconds ends the session. A client that waits
        as told is never disconnected; a flood is, even if a refilled token lets a message through now and then."""
        since, last, retry_at = self._over_since.get(session_id, (now, -QUIET - 1.0, 0.0))
        if now >= retry_at and now - last > QUIET:
            since = now
        retry_after = max(0.001, math.ceil(wait * 1000) / 1000)
        self._over_since[session_id] = (since, now, now + retry_after)
        if self.config.disconnect_after and now - since >= self.config.disconnect_after:
            return Verdict(DISCONNECT_KIND, "rate_limit_sustained", OVERLOADED)
        return Verdict(REJECT_KIND, "rate_limited", RATE_LIMITED, retry_after=retry_after)

    def _take_uri(self, uri: str, size: int, now: float) -> float:
        taken = []
        for prefix, rate in self.config.uri_rates:
            if uri.startswith(prefix):
                meter = self._shared_meter("uri", prefix, now, rate)
                wait = meter.take(size, now)
                if wait:
                    for earlier in taken:
                        earlier.refund(size)
                    return wait
                taken.append(meter)
        return 0.0

    def _shared_meter(self, scope: str, value: Any, now: float, rate: Rate | None = None, *,
                      evict: bool = True) -> _Meter:
        """The meter of a shared key; past `max_tracked` keys (none idle to forget), new keys of a scope share one
        overflow meter: memory stays bounded and the limit still applies, if coarsely."""
        key = (scope, value)
        meter = self._shared.get(key)
        if meter is None:
            if evict and len(self._shared) >= self.config.max_tracked:
                self._forget_idle(now)
            if len(self._shared) >= self.config.max_tracked:
                return self._overflow_meter(scope, rate, now)
            meter = _Meter(rate or self.config.rates[scope], self._quotas.get(scope, []), now)
            self._shared[key] = meter
        return meter

    def _overflow_meter(self, scope: str, rate: Rate | None, now: float) -> _Meter:
        meter = self._overflow.get(scope)
        if meter is None:
            meter = self._overflow[scope] = _Meter(rate or self.config.rates[scope], self._quotas.get(scope, []), now)
        return meter

    def _forget_idle(self, now: float) -> None:
        live = {id(m) for meters in self._session_meters.values() for m in meters}
        for key in [k for k, m in self._shared.items() if id(m) not in live and m.idle(now)]:
            del self._shared[key]

    # -- introspection (tests, /metrics) ---------------------------------------------------------------------------

    def rate_meters(self) -> int:
        """The meters held: one per metered session, plus the shared and overflow ones."""
        return len(self._session_meters) + len(self._shared) + len(self._overflow)

    def tracked(self) -> dict[str, int]:
        return {
            "connections": self._total_connections,
            "peers": len(self._connections),
            "sessions": sum(self._sessions_per_authid.values()),
            "metered_sessions": len(self._session_meters),
            "shared_meters": len(self._shared),
        }

