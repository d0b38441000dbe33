"""Cluster fixtures: a real redis-server and router nodes in this process (each a full router with its own
listeners, all nodes of one cluster through that Redis). Process-level nodes (kill -9) are in test_cluster_faults."""

from __future__ import annotations

import pytest_twisted

from tests.support.redis_fixtures import redis_server, redis_servers  # noqa: F401
from tests.support.router import REALM1_ANONYMOUS_ALL, listener, start_router
from tests.support.wait import eventually

REALM_WITH_META = REALM1_ANONYMOUS_ALL + """
[[realms.roles.permissions]]
uri = "wamp."
match = "prefix"
allow = ["call", "subscribe"]
"""


# Quick to notice a node gone, quick to let go of a topic: the tests stay short.
TEST_CLUSTER_KEYS = {"heartbeat_interval": "0.2", "node_timeout": "1.0", "unsubscribe_linger": "0.2"}


def cluster_config(redis_url: str, *, extra: str = "", cluster: str = "") -> str:
    """`cluster`: more `[cluster]` lines ("key = value"), which replace the tests' defaults."""
    keys = dict(TEST_CLUSTER_KEYS)
    for line in cluster.splitlines():
        if line.strip():
            key, _, value = line.partition("=")
            keys[key.strip()] = value.strip()
    table = "".join(f"{key} = {value}\n" for key, value in keys.items())
    return listener("universal") + REALM_WITH_META + extra + f'\n[cluster]\nredis = "{redis_url}"\n' + table


@pytest_twisted.async_yield_fixture()
async def nodes(tmp_path, redis_server):
    """`await nodes(count, **config)`: that many router nodes on one Redis, each ready (both connections up)."""
    started = []

    async def start(count: int = 2, *, extra: str = "", cluster: str = "", url: str | None = None):
        made = []
        for index in range(count):
            directory = tmp_path / f"node{len(started)}"
            directory.mkdir()
            running = await start_router(cluster_config(url or redis_server.url, extra=extra, cluster=cluster),
                                         directory)
            started.append(running)
            made.append(running)
        for running in made:
            await eventually(lambda r=running: r.service.cluster.healthy, "the node connected to Redis")
        return made

    yield start
    for running in started:
        await running.stop()
