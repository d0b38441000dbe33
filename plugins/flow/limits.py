"""The built-in flow control: connection and session admission, token-bucket rate limits (messages/s and bytes/s
per session, authid, authrole, peer address and URI prefix) and fixed-window quotas. Every limit is on by default.

Requests (publish, subscribe, call, register) are charged to every limit. Answers a callee sends (YIELD,
progressive results, an ERROR for an INVOCATION: action "yield") are charged to the session, authid, role and peer
buckets only: quotas count what a client asks for, and URI rates what is asked of a URI.

State is bounded: a session's own meter goes when it leaves; shared meters (authid, role, peer) are kept while a
live session uses them or they carry information, at most `max_tracked` of them (see wampgate.plugins.flow.meters).
Anonymous authids are made up afresh for each session, so their per-authid limits are kept per peer address: a
client cannot refill them by reconnecting.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping
from functools import partial
from typing import Any

from zope.interface import implementer

from wampgate.plugins.flow.meters import Meter, Quota, Rate, SharedMeters, bounded_key
from wampgate.plugin import ADMIT, DISCONNECT_KIND, REJECT_KIND, FlowSession, IFlowControl, PluginConfigError, Verdict

RATE_LIMITED = "wampgate.error.rate_limited"
TOO_MANY_CONNECTIONS = "too_many_connections"
TOO_MANY_SESSIONS = "wampgate.error.too_many_sessions"
OVERLOADED = "wampgate.close.rate_limited"
SCOPES = ("session", "authid", "authrole", "peer")
ANSWER = "yield"  # the action of a callee's YIELD or INVOCATION ERROR
ANONYMOUS = "anonymous"  # the authmethod whose authids are per session, not per client
QUIET = 0.5  # seconds without a refusal (and past its retry_after) that end a spell of overload
CLOSED_REMEMBERED = 1000  # ids of sessions that left, whose late messages get no new state


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


class _Joined:
    """What the plugin holds for one live session: its meters (its own first), the keys of the shared ones, and
    the key it is counted under for `max_sessions_per_authid` (None when it never joined through admit_session)."""

    __slots__ = ("meters", "shared_keys", "count_key")

    def __init__(self, meters: tuple[Meter, ...], shared_keys: tuple[Hashable, ...]):
        self.meters = meters
        self.shared_keys = shared_keys
        self.count_key: Hashable | None = None


class ClusterMeter:
    """An authid's meter on a cluster node: its local buckets and quotas, then the cluster's buckets of the authid's
    messages and bytes (wampgate.interfaces.IClusterLimits), so the authid's rate holds across every node."""

    __slots__ = ("local", "_cluster", "_rate", "_messages", "_bytes")

    def __init__(self, local: Meter, cluster: Any, rate: Rate, name: str):
        self.local = local
        self._cluster = cluster
        self._rate = rate
        self._messages = f"{name}:messages"
        self._bytes = f"{name}:bytes"

    def take(self, size: int, now: float, counted: bool = True) -> float:
        wait = self.local.take(size, now, counted)
        if wait:
            return wait
        rate, cluster = self._rate, self._cluster
        wait = cluster.take(self._messages, rate.messages, rate.burst, 1, now)
        if not wait:
            wait = cluster.take(self._bytes, rate.bytes, rate.byte_burst, size, now)
            if wait:
                cluster.refund(self._messages, 1)
        if wait:
            self.local.refund(size, None if counted else [])
        return wait

    def refund(self, size: int, quotas: list | None = None) -> None:
        self.local.refund(size, quotas)
        self._cluster.refund(self._messages, 1)
        self._cluster.refund(self._bytes, size)

    def idle(self, now: float) -> bool:
        return self.local.idle(now)


@implementer(IFlowControl)
class LimitsFlowControl:
    """The `limits` plugin."""

    def __init__(self, config: Mapping[str, Any], *, reactor: Any = None, context: Any = None):
        self.config = _Config(config)
        # IClusterLimits when the router is a cluster node: per-authid rates and session counts hold cluster-wide
        self._cluster = getattr(context, "cluster", None)
        self._connections: dict[str, int] = {}
        self._total_connections = 0
        self._sessions_per_authid: dict[Hashable, int] = {}
        self._joined: dict[int, _Joined] = {}
        self._shared = SharedMeters(self.config.max_tracked)
        self._uri_meters = tuple((prefix, Meter(rate, [], 0.0)) for prefix, rate in self.config.uri_rates)
        self._over_since: dict[int, tuple[float, float, float]] = {}  # session -> (spell start, last refusal, retry at)
        self._closed_recently: dict[int, None] = {}
        self._quotas = {scope: [q for q in self.config.quotas if q.scope == scope] for scope in SCOPES}
        self._now = 0.0  # the latest time seen: session_closed is not given one

    # -- connections ---------------------------------------------------------------------------------------------

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

    # -- sessions ------------------------------------------------------------------------------------------------

    def admit_session(self, session: FlowSession, now: float) -> Verdict:
        """Count the session against its authid and give it its meters now, so its first message is metered like
        any other; refused when the meter table is full of meters that live sessions use."""
        self._now = now
        if session.session_id in self._joined:
            return ADMIT  # told twice: it holds its meters already, and is counted once
        count_key = (session.realm, bounded_key(session.authid))
        held = self._sessions_per_authid.get(count_key, 0)
        if self._cluster is not None and session.authmethod != ANONYMOUS:
            held += self._cluster.sessions_elsewhere(session.realm, session.authid)
        if held >= self.config.max_sessions_per_authid:
            return Verdict(DISCONNECT_KIND, "max_sessions_per_authid", TOO_MANY_SESSIONS)
        self._shared.sweep(now)
        joined = self._join(session, now)
        if joined is None:
            return Verdict(DISCONNECT_KIND, "max_tracked", TOO_MANY_SESSIONS)
        joined.count_key = count_key
        self._sessions_per_authid[count_key] = self._sessions_per_authid.get(count_key, 0) + 1
        return ADMIT

    def session_closed(self, session: FlowSession) -> None:
        """Forget the session: its own meter goes, and each shared one is released (kept only while it carries
        information: see SharedMeters.release)."""
        self._closed_recently[session.session_id] = None
        while len(self._closed_recently) > CLOSED_REMEMBERED:
            del self._closed_recently[next(iter(self._closed_recently))]
        self._over_since.pop(session.session_id, None)
        joined = self._joined.pop(session.session_id, None)
        if joined is None:
            return
        for key in joined.shared_keys:
            self._shared.release(key, self._now)
        if joined.count_key is not None:
            count = self._sessions_per_authid.get(joined.count_key, 0) - 1
            if count > 0:
                self._sessions_per_authid[joined.count_key] = count
            else:
                self._sessions_per_authid.pop(joined.count_key, None)

    def _join(self, session: FlowSession, now: float) -> _Joined | None:
        """The session's meters: its own, and the shared ones of its authid (or, anonymous, its address), role
        and address; None, holding nothing, when the shared table has no room for them."""
        keys = self._shared_keys(session)
        meters = []
        for key in keys:
            meter = self._shared.acquire(key, partial(self._shared_meter, key, now))
            if meter is None:
                for taken in keys[:len(meters)]:
                    self._shared.release(taken, now)
                return None
            meters.append(meter)
        own = self._new_meter("session", now)
        joined = self._joined[session.session_id] = _Joined((own, *meters), keys)
        return joined

    @staticmethod
    def _shared_keys(session: FlowSession) -> tuple[Hashable, ...]:
        """Keys of bounded size; an anonymous session's authid key is its address (a 4-tuple: it cannot equal any
        real authid's key)."""
        realm, peer = session.realm, bounded_key(session.peer)
        if session.authmethod == ANONYMOUS:
            authid = ("authid", realm, ANONYMOUS, peer)
        else:
            authid = ("authid", realm, bounded_key(session.authid))
        return authid, ("authrole", realm, bounded_key(session.authrole)), ("peer", peer)

    def _new_meter(self, scope: str, now: float) -> Meter:
        return Meter(self.config.rates[scope], self._quotas[scope], now)

    def _shared_meter(self, key: tuple, now: float) -> Meter | ClusterMeter:
        """A shared meter; an authid's (not an anonymous one's, which is per address) also draws on the cluster's
        bucket for that authid when the router is a cluster node."""
        meter = self._new_meter(key[0], now)
        if self._cluster is None or key[0] != "authid" or len(key) != 3:
            return meter
        name = f"{key[1]}:{key[2] if isinstance(key[2], str) else key[2][1].hex()}"
        return ClusterMeter(meter, self._cluster, self.config.rates["authid"], name)

    # -- messages ------------------------------------------------------------------------------------------------

    def admit(self, session: FlowSession, action: str, uri: str, size: int, now: float) -> Verdict:
        """ADMIT, or a refusal with `retry_after` (REJECT; DISCONNECT after a sustained overload). Requests and
        answers (action "yield") get the same verdicts: the router answers or drops the message, or stops reading
        from the connection until retry_after."""
        self._now = now
        joined = self._joined.get(session.session_id)
        if joined is None:
            if session.session_id in self._closed_recently:
                return ADMIT  # a late message of a session that left: it holds no state, and gets none
            joined = self._join(session, now)
            if joined is None:
                return Verdict(DISCONNECT_KIND, "max_tracked", TOO_MANY_SESSIONS)
        request = action != ANSWER
        meters = joined.meters
        wait = 0.0
        charged = 0
        for meter in meters:
            wait = meter.take(size, now, request)
            if wait:
                break
            charged += 1
        if not wait and request and self._uri_meters:
            wait = self._take_uri(uri, size, now)
            if wait:
                charged = len(meters)
        if not wait:
            return ADMIT
        for meter in meters[:charged]:
            meter.refund(size, None if request else [])
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
            return Verdict(DISCONNECT_KIND, "rate_limit_sustained", OVERLOADED, retry_after=retry_after)
        return Verdict(REJECT_KIND, "rate_limited", RATE_LIMITED, retry_after=retry_after)

    def _take_uri(self, uri: str, size: int, now: float) -> float:
        taken = []
        for prefix, meter in self._uri_meters:
            if uri.startswith(prefix):
                wait = meter.take(size, now)
                if wait:
                    for earlier in taken:
                        earlier.refund(size)
                    return wait
                taken.append(meter)
        return 0.0

    # -- introspection ---------------------------------------------------------------------------------------------

    def tracked(self) -> int:
        """How many meters the plugin holds (each live session's own, the shared ones, one per URI prefix)."""
        return len(self._joined) + len(self._shared) + len(self._uri_meters)

    def rate_meters(self) -> int:
        """The count /metrics exports (router/tx/flow.py sums it over the flow-control chain)."""
        return self.tracked()

    def sizes(self) -> dict[str, int]:
        """Every table's size, for tests and diagnostics."""
        return {
            "connections": self._total_connections,
            "peers": len(self._connections),
            "sessions": sum(self._sessions_per_authid.values()),
            "metered_sessions": len(self._joined),
            "shared_meters": len(self._shared),
            "released_meters": self._shared.released(),
            "uri_meters": len(self._uri_meters),
        }
