"""Against a real router on loopback: the cap on distinct wildcard shapes (a client cannot make every publish and
call slower by subscribing to ever more shapes), and the /metrics gauges for what clients make the router hold
(subscriptions, registrations, pending calls, wildcard shapes, rate meters)."""

from __future__ import annotations

import textwrap

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import RegisterOptions, SubscribeOptions
from twisted.internet import defer

from tests.integration.test_operations import admin_port, http_get
from tests.support.clients import Target, connect, leave
from tests.support.raw import assert_router_serves, bounded
from tests.support.router import REALM1_ANONYMOUS_ALL, listener, start_router

TOO_MANY_PATTERNS = "wampgate.error.too_many_patterns"
MAX_SHAPES = 20

# Agent's response transport has no abortConnection; readBody warns about it on every request.
pytestmark = pytest.mark.filterwarnings("ignore:Using readBody with a transport:DeprecationWarning")


def shape(n: int) -> str:
    """A wildcard pattern of n + 3 components ending in a wildcard: each n is a shape of its own."""
    return "com.shape" + ".x" * n + "."


def ignore(*args, **kwargs) -> None:
    return None


@pytest_twisted.async_yield_fixture()
async def capped_router(tmp_path):
    running = await start_router(f"[limits]\nmax_wildcard_shapes = {MAX_SHAPES}\n" + listener("main")
                                 + REALM1_ANONYMOUS_ALL, tmp_path)
    yield running
    await running.stop()


@pytest_twisted.ensureDeferred
async def test_one_session_cannot_add_wildcard_shapes_beyond_the_cap(capped_router):
    """One session subscribes to max_wildcard_shapes distinct wildcard shapes, then one more: that SUBSCRIBE gets
    ERROR wampgate.error.too_many_patterns, and the same for REGISTER; the router holds exactly the cap, the session
    may still subscribe to a pattern of a shape it holds, and a fresh client is served."""
    router = capped_router
    port = router.port("main")
    wildcard = SubscribeOptions(match="wildcard")
    attacker = await bounded(connect(Target(port=port, transport="rawsocket", serializer="msgpack")))
    try:
        for n in range(MAX_SHAPES):
            await bounded(attacker.subscribe(ignore, shape(n), options=wildcard))
        with pytest.raises(ApplicationError) as refused:
            await bounded(attacker.subscribe(ignore, shape(MAX_SHAPES), options=wildcard))
        assert refused.value.error == TOO_MANY_PATTERNS
        assert refused.value.args == (f"at most {MAX_SHAPES} distinct wildcard shapes in this realm",)

        for n in range(MAX_SHAPES):
            await bounded(attacker.register(ignore, shape(n), options=RegisterOptions(match="wildcard")))
        with pytest.raises(ApplicationError) as refused:
            await bounded(attacker.register(ignore, shape(MAX_SHAPES), options=RegisterOptions(match="wildcard")))
        assert refused.value.error == TOO_MANY_PATTERNS

        realm = router.realm()
        assert (realm.broker.wildcard_shapes(), realm.dealer.wildcard_shapes()) == (MAX_SHAPES, MAX_SHAPES)
        assert (len(realm.broker.subscriptions()), len(realm.dealer.registrations())) == (MAX_SHAPES, MAX_SHAPES)
        await bounded(attacker.subscribe(ignore, shape(0).replace("shape", "other"), options=wildcard))
        assert realm.broker.wildcard_shapes() == MAX_SHAPES

        await assert_router_serves(port)
    finally:
        await bounded(leave(attacker))
    assert (router.realm().broker.wildcard_shapes(), router.realm().dealer.wildcard_shapes()) == (0, 0)


METRICS_CONFIG = textwrap.dedent("""
    [admin]
    endpoint = "tcp:0:interface=127.0.0.1"
    """) + listener("main") + REALM1_ANONYMOUS_ALL


@pytest_twisted.async_yield_fixture()
async def metrics_router(tmp_path):
    running = await start_router(METRICS_CONFIG, tmp_path)
    yield running
    await running.stop()


async def scrape_lines(router) -> set[str]:
    status, _, body = await http_get(admin_port(router), "/metrics")
    assert status == 200, body
    return set(body.decode("utf-8").splitlines())


def table_lines(subscriptions, registrations, calls, subscription_shapes, registration_shapes) -> set[str]:
    return {
        f'wampgate_subscriptions{{realm="realm1"}} {subscriptions}.0',
        f'wampgate_registrations{{realm="realm1"}} {registrations}.0',
        f'wampgate_pending_calls{{realm="realm1"}} {calls}.0',
        f'wampgate_wildcard_shapes{{index="subscriptions",realm="realm1"}} {subscription_shapes}.0',
        f'wampgate_wildcard_shapes{{index="registrations",realm="realm1"}} {registration_shapes}.0',
    }


@pytest_twisted.ensureDeferred
async def test_metrics_export_what_clients_make_the_router_hold(metrics_router):
    """After one session registers an exact and a wildcard procedure, subscribes with a wildcard pattern and has a
    call pending on its own registration, /metrics has exactly these sample lines: 1 subscription, 2
    registrations, 1 pending call, 1 wildcard shape in each index, and 4 rate meters (the limits plugin's meter of
    that session and its shared authid, authrole and peer meters); the table gauges fall back to 0 when it leaves,
    and the rate-meter gauge always equals the plugin's own count."""
    router = metrics_router
    assert table_lines(0, 0, 0, 0, 0) | {"wampgate_rate_meters 0.0"} <= await scrape_lines(router)

    client = await bounded(connect(Target(port=router.port("main"))))
    invoked = defer.Deferred()
    never_answered = defer.Deferred()

    def slow(*args):
        invoked.callback(None)
        return never_answered

    await bounded(client.register(slow, "com.example.slow"))
    await bounded(client.register(ignore, "com..wild", options=RegisterOptions(match="wildcard")))
    await bounded(client.subscribe(ignore, "com..event", options=SubscribeOptions(match="wildcard")))
    pending = client.call("com.example.slow")
    pending.addErrback(lambda failure: None)  # ends as canceled when the session leaves
    await bounded(invoked)  # the INVOCATION arrived: the call is pending in the router
    try:
        lines = await scrape_lines(router)
        assert table_lines(1, 2, 1, 1, 1) <= lines, sorted(line for line in lines if not line.startswith("#"))
        assert "wampgate_rate_meters 4.0" in lines
        assert router.service.context.flow.rate_meters() == 4
    finally:
        await bounded(leave(client))
    lines = await scrape_lines(router)
    assert table_lines(0, 0, 0, 0, 0) <= lines
    assert f"wampgate_rate_meters {router.service.context.flow.rate_meters()}.0" in lines
