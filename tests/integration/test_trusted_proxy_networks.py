"""`trusted_proxies` with CIDR networks, end to end: a real router on 127.0.0.1, raw WebSocket clients sending
X-Forwarded-For, and flow control's per-peer rate (1 message/s, burst 3) showing which address the router took as the
client's: two clients it tells apart each publish 3 times unrefused; two it takes for one share the burst."""

from __future__ import annotations

import pytest_twisted

from tests.support import raw
from tests.support.flow import count, exchange, joined_ws, main_listener, publish, running, split

FLOW = {"rates": {"peer": {"messages": 1, "burst": 3}}, "disconnect_after": 0}


async def outcomes(clients, port: int, forwarded: tuple[str, ...]) -> list[tuple[int, int]]:
    """One client per X-Forwarded-For value, each sending 3 acknowledged publishes; (published, refused) each."""
    results = []
    for header in forwarded:
        client = await joined_ws(clients, port, headers={"X-Forwarded-For": header})
        ok, errors = split(await exchange(client, [publish(i) for i in range(1, 4)]), raw.PUBLISHED)
        results.append((len(ok), len(errors)))
    return results


@pytest_twisted.ensureDeferred
async def test_a_proxy_inside_a_trusted_network_names_the_client(tmp_path):
    """trusted_proxies = ["127.0.0.0/8", "10.0.0.0/8"]: the connection from 127.0.0.1 is a trusted proxy, and the hop
    10.0.0.5 it forwards from is one too, so the clients are 192.0.2.1 and 192.0.2.2: each gets its own budget."""
    listeners = main_listener(websocket='trusted_proxies = ["127.0.0.0/8", "10.0.0.0/8"]')
    async with running(tmp_path, flow=FLOW, listeners=listeners) as (router, clients):
        forwarded = ("192.0.2.1, 10.0.0.5", "192.0.2.2, 10.0.0.5")
        assert await outcomes(clients, router.port("main"), forwarded) == [(3, 0), (3, 0)]
        assert count(router, "flow_reject") == 0


@pytest_twisted.ensureDeferred
async def test_a_hop_outside_the_trusted_networks_is_the_client(tmp_path):
    """trusted_proxies = ["127.0.0.0/8"] only: 10.0.0.5 is not trusted, so it is the client for both connections,
    which share one budget: the second client's publishes beyond the burst are refused."""
    listeners = main_listener(websocket='trusted_proxies = ["127.0.0.0/8"]')
    async with running(tmp_path, flow=FLOW, listeners=listeners) as (router, clients):
        (ok_first, _), (ok_second, refused_second) = await outcomes(
            clients, router.port("main"), ("192.0.2.1, 10.0.0.5", "192.0.2.2, 10.0.0.5"))
        assert ok_first == 3 and ok_second <= 1 and refused_second >= 2


@pytest_twisted.ensureDeferred
async def test_a_peer_outside_the_trusted_networks_is_not_believed(tmp_path):
    """trusted_proxies = ["10.0.0.0/8"]: the connection from 127.0.0.1 is no trusted proxy, so its X-Forwarded-For is
    ignored and both clients are 127.0.0.1, sharing one budget."""
    listeners = main_listener(websocket='trusted_proxies = ["10.0.0.0/8"]')
    async with running(tmp_path, flow=FLOW, listeners=listeners) as (router, clients):
        (ok_first, _), (ok_second, refused_second) = await outcomes(
            clients, router.port("main"), ("192.0.2.1", "192.0.2.2"))
        assert ok_first == 3 and ok_second <= 1 and refused_second >= 2
