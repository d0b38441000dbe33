"""Per-authid limits that hold across the cluster, for flow-control plugins (wampgate.interfaces.IClusterLimits).

Rates: a token bucket per key lives in Redis (LEASE below: refilled by Redis's own clock, so the nodes' clocks do not
matter), and each node spends a *lease* of tokens locally, asking for the next one when half is spent. Redis sees
one script call per lease, never one per message; a node that has spent its lease and was granted nothing waits.
While a lease it asked for is on its way, a node admits up to one lease more on credit (so neither the first message
of an authid nor a Redis round trip makes a client wait), and repays it from the next grant: beyond the rate, the
cluster admits at most one lease per node per key.

Session counts: how many sessions an authid holds on the other nodes, from the sessions they announced (router/tx/
cluster/realm_link.py): eventually consistent, so two logins at the same instant on two nodes may both pass.

When Redis cannot be reached, `when_redis_down` decides: "local" (each node goes on with its own limits only) or
"refuse" (rates refuse until Redis is back).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from twisted.logger import Logger

from wampgate.tx.cluster.redis import Script

LEASE = Script("""
local now = redis.call('TIME')
local t = tonumber(now[1]) + tonumber(now[2]) / 1000000
local rate, burst, want = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or t
tokens = math.min(burst, tokens + math.max(0, t - at) * rate)
local grant = math.max(0, math.min(want, math.floor(tokens)))
tokens = tokens - grant
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(t))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return grant
""")

MAX_POOLS = 100_000  # keys a node keeps leases for; the least recently used goes first
LOCAL = "local"
REFUSE = "refuse"
WHEN_REDIS_DOWN = (LOCAL, REFUSE)


class _Pool:
    __slots__ = ("tokens", "lease", "pending", "next_refill")

    def __init__(self, lease: float):
        self.tokens = 0.0  # below 0: spent on credit, repaid from the next grant
        self.lease = lease
        self.pending = False
        self.next_refill = 0.0


class ClusterLimits:
    """One per node; flow plugins get it as `PluginContext.cluster`."""

    log = Logger()

    def __init__(self, node: Any, *, lease_seconds: float, when_redis_down: str):
        self._node = node
        self._lease_seconds = lease_seconds
        self._refuse_when_down = when_redis_down == REFUSE
        self._pools: OrderedDict[str, _Pool] = OrderedDict()

    def sessions_elsewhere(self, realm: str, authid: str) -> int:
        """How many sessions `authid` holds in `realm` on the other nodes."""
        link = self._node.links.get(realm)
        return 0 if link is None else link.remote_sessions_of(authid)

    def take(self, key: str, rate: float, burst: float, cost: float, now: float) -> float:
        """Spend `cost` tokens of the cluster-wide bucket `key` (refilled at `rate` per second up to `burst`):
        0.0 when admitted, else how long to wait."""
        if rate <= 0:
            return 0.0
        if not self._node.redis.connected:
            return 1.0 if self._refuse_when_down else 0.0
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = _Pool(max(1.0, min(burst, rate * self._lease_seconds)))
            if len(self._pools) > MAX_POOLS:
                self._pools.popitem(last=False)
        else:
            self._pools.move_to_end(key)
        if pool.tokens >= cost:
            pool.tokens -= cost
            if pool.tokens < pool.lease / 2:
                self._refill(key, pool, rate, burst, now)
            return 0.0
        self._refill(key, pool, rate, burst, now)
        if pool.pending and pool.tokens - cost >= -pool.lease:
            pool.tokens -= cost  # on credit while a lease is on its way: a Redis round trip is no reason to refuse
            return 0.0
        return max(cost - pool.tokens, 1.0) / rate

    def refund(self, key: str, cost: float) -> None:
        pool = self._pools.get(key)
        if pool is not None:
            pool.tokens += cost

    def _refill(self, key: str, pool: _Pool, rate: float, burst: float, now: float) -> None:
        if pool.pending or now < pool.next_refill:
            return
        pool.pending = True

        def granted(grant: Any) -> None:
            pool.pending = False
            pool.tokens += int(grant or 0)
            if not grant:  # the cluster's bucket is empty: ask again once half a lease has refilled
                pool.next_refill = now + pool.lease / rate / 2

        def failed(failure: Any) -> None:
            pool.pending = False
            pool.next_refill = now + 0.5
            self._node.count("cluster_lease_failed")

        want = math.ceil(pool.lease - pool.tokens)  # a full lease, and what was spent on credit
        arguments = [repr(float(rate)), repr(float(burst)), str(want)]  # RESP carries text, not floats
        self._node.redis.evalsha(LEASE, [f"wg:rl:{key}".encode()], arguments).addCallbacks(granted, failed)

    def pools(self) -> int:
        return len(self._pools)
