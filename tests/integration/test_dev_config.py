"""conf/dev.toml (what `make run` serves) with real Autobahn (Twisted) clients: what a Crossbar client expects of an
open development realm works there.

The file is used as it is, except that its three fixed ports (8080, 8081, 8082) become free ones, so the test never
collides with a running `make run` or another test.

Pins down: PublishOptions(retain=True) and SubscribeOptions(get_retained=True) deliver the retained event (marked
retained) across the universal WebSocket and the RawSocket listener; `wamp.session.add_testament` is answered (no
`wamp.` grant needed) and its event is published when the session's transport is lost.
"""

from __future__ import annotations

from pathlib import Path

import pytest_twisted
from autobahn.wamp.types import PublishOptions, SubscribeOptions

from tests.support.clients import Collector, Target, connect, leave_all
from tests.support.raw import bounded
from tests.support.router import start_router

DEV_CONFIG = Path(__file__).resolve().parents[2] / "conf" / "dev.toml"
FIXED_PORTS = ("tcp:8080:", "tcp:8081:", "tcp:8082:")


def dev_config_on_free_ports() -> str:
    text = DEV_CONFIG.read_text()
    for endpoint in FIXED_PORTS:
        assert text.count(endpoint) == 1, f"conf/dev.toml no longer has exactly one {endpoint!r}: update this test"
        text = text.replace(endpoint, "tcp:0:")
    return text


@pytest_twisted.async_yield_fixture()
async def dev_router(tmp_path):
    running = await start_router(dev_config_on_free_ports(), tmp_path)
    yield running
    await running.stop()


@pytest_twisted.ensureDeferred
async def test_retain_and_get_retained_work_on_the_dev_config(dev_router):
    """A retained PUBLISH over the universal listener (WebSocket, JSON) reaches a later get_retained subscriber on the
    RawSocket listener (MessagePack), marked retained."""
    publisher = await bounded(connect(Target(port=dev_router.port("universal"))))
    await bounded(publisher.publish("com.example.status", "up", options=PublishOptions(retain=True,
                                                                                       acknowledge=True)))
    subscriber = await bounded(connect(Target(port=dev_router.port("rawsocket"), transport="rawsocket",
                                              serializer="msgpack")))
    got: list = []
    arrived = Collector()

    def on_event(*args, details):
        got.append((args, details.retained))
        arrived(*args)

    await bounded(subscriber.subscribe(on_event, "com.example.status",
                                       options=SubscribeOptions(get_retained=True, details=True)))
    await bounded(arrived.done)
    assert got == [(("up",), True)]
    await leave_all(publisher, subscriber)


@pytest_twisted.ensureDeferred
async def test_a_testament_is_published_when_the_session_is_lost_on_the_dev_config(dev_router):
    """wamp.session.add_testament is answered on the dev realm; when the session's transport is lost without
    GOODBYE, its testament reaches a subscriber."""
    watcher = await bounded(connect(Target(port=dev_router.port("universal"))))
    got = Collector()
    await bounded(watcher.subscribe(got, "com.example.presence"))
    leaver = await bounded(connect(Target(port=dev_router.port("rawsocket"), transport="rawsocket",
                                          serializer="cbor")))
    await bounded(leaver.call("wamp.session.add_testament", "com.example.presence", ["gone"], {"who": "leaver"}))

    leaver._transport.transport.abortConnection()
    await bounded(leaver.on_gone)

    assert await bounded(got.done) == [(("gone",), {"who": "leaver"})]
    await leave_all(watcher)
