"""Per-authid limits across cluster nodes: session counts and rates hold for an authid whichever node its sessions
are on; what happens to rates while Redis is away is configured (`when_redis_down`)."""

from __future__ import annotations

import pytest_twisted

from tests.support import auth_clients as auth
from tests.support.clients import Target, leave_all
from tests.support.flow import (
    ALICE_TICKET,
    REALM,
    TOO_MANY_SESSIONS,
    flow_table,
    main_listener,
    publish_outcomes,
    ticket_auth,
)
from tests.support.router import start_router
from tests.support.wait import eventually
from wampgate.plugin import hash_secret


async def _nodes(tmp_path, redis_url: str, flow: dict, cluster: str = "", count: int = 2):
    text = (flow_table(**flow) + main_listener(auth=ticket_auth(hash_secret(ALICE_TICKET, ln=14))) + REALM
            + f'\n[cluster]\nredis = "{redis_url}"\nheartbeat_interval = 0.2\nnode_timeout = 1.0\n{cluster}\n')
    started = []
    for index in range(count):
        directory = tmp_path / f"node{index}"
        directory.mkdir()
        started.append(await start_router(text, directory))
    for node in started:
        await eventually(lambda node=node: node.service.cluster.healthy, "the node reached Redis")
    return started


async def _alice(node):
    return await auth.join(Target(port=node.port("main")), authmethods=["ticket"], authid="alice",
                           answer=auth.ticket(ALICE_TICKET))


@pytest_twisted.ensureDeferred
async def test_sessions_per_authid_count_every_node(tmp_path, redis_server):
    a, b = await _nodes(tmp_path, redis_server.url, {"max_sessions_per_authid": 3})
    try:
        sessions = [await _alice(a), await _alice(a), await _alice(b)]
        await eventually(lambda: b.service.cluster.links["realm1"].remote_sessions_of("alice") == 2,
                         "b knows alice's sessions on a")
        refusal = await auth.refused(Target(port=b.port("main")), authmethods=["ticket"], authid="alice",
                                     answer=auth.ticket(ALICE_TICKET))
        assert refusal.reason == TOO_MANY_SESSIONS
        refusal = await auth.refused(Target(port=a.port("main")), authmethods=["ticket"], authid="alice",
                                     answer=auth.ticket(ALICE_TICKET))
        assert refusal.reason == TOO_MANY_SESSIONS
        await leave_all(sessions[0])
        await eventually(lambda: b.service.cluster.links["realm1"].remote_sessions_of("alice") == 1,
                         "b learnt that one left")
        sessions = sessions[1:] + [await _alice(b)]
        await leave_all(*sessions)
    finally:
        for node in (a, b):
            await node.stop()


@pytest_twisted.ensureDeferred
async def test_an_authid_rate_holds_across_nodes(tmp_path, redis_server):
    """rates.authid 1/s with a burst of 10, leases of 5 tokens. Alice spends the burst on node a; on node b, whose
    own meter alone would admit 10 more, she is refused before her seventh publish: at most one lease on credit (the
    cluster's bound per node) and what refilled meanwhile pass there."""
    flow = {"rates": {"authid": {"messages": 1, "burst": 10}}, "disconnect_after": 0}
    a, b = await _nodes(tmp_path, redis_server.url, flow, cluster="rate_lease = 5.0")
    try:
        on_a, on_b = await _alice(a), await _alice(b)
        passed = 0
        for _ in range(14):  # a refusal while a lease is slow to come (a loaded machine) is retried
            passed += (await publish_outcomes(on_a, 1))[0]
            if passed == 10:
                break
        assert passed == 10
        refused = False
        for _ in range(7):
            if (await publish_outcomes(on_b, 1))[0] == 0:
                refused = True
                break
        assert refused, "node b admitted a second burst of its own"
        await leave_all(on_a, on_b)
    finally:
        for node in (a, b):
            await node.stop()


@pytest_twisted.ensureDeferred
async def test_when_redis_is_down_rates_refuse_or_go_local_as_configured(tmp_path, redis_servers):
    flow = {"rates": {"authid": {"messages": 100, "burst": 100}}, "disconnect_after": 0}
    for policy, expect_refused in (("refuse", True), ("local", False)):
        redis = redis_servers()
        directory = tmp_path / policy
        directory.mkdir()
        (node,) = await _nodes(directory, redis.url, flow, cluster=f'when_redis_down = "{policy}"', count=1)
        try:
            alice = await _alice(node)
            assert (await publish_outcomes(alice, 3))[0] == 3
            redis.stop()
            await eventually(lambda: not node.service.cluster.healthy, "Redis is missed")
            passed, refused = await publish_outcomes(alice, 3)
            assert (passed, bool(refused)) == ((0, True) if expect_refused else (3, False))
            await leave_all(alice)
        finally:
            await node.stop()
