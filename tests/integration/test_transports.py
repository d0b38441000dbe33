"""Every transport x serializer x plain/TLS combination joins, publishes and receives, against a real router."""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.types import PublishOptions

from tests.integration.conftest import target
from tests.support.clients import Collector, connect, leave

COMBINATIONS = [
    (listener, transport, serializer)
    for listener, transports in (
        ("universal", ("websocket", "rawsocket")),
        ("websocket", ("websocket",)),
        ("rawsocket", ("rawsocket",)),
        ("tls", ("websocket", "rawsocket")),
    )
    for transport in transports
    for serializer in ("json", "msgpack", "cbor")
]


@pytest.mark.parametrize("listener_name,transport,serializer", COMBINATIONS)
@pytest_twisted.ensureDeferred
async def test_publish_and_receive(router, certs, listener_name, transport, serializer):
    """A subscriber and a publisher on the same transport and serializer exchange an event with args and kwargs."""
    tls = certs if listener_name == "tls" else None
    where = target(router, listener_name, transport, serializer, certs=tls)
    subscriber = await connect(where)
    publisher = await connect(where)
    events = Collector()
    await subscriber.subscribe(events, "com.example.topic")
    await publisher.publish("com.example.topic", 1, "two", {"three": [3]}, flag=True,
                            options=PublishOptions(acknowledge=True))
    received = await events.done
    assert received == [((1, "two", {"three": [3]}), {"flag": True})]
    assert subscriber.welcome.authmethod == "anonymous"
    assert subscriber.welcome.authrole == "anonymous"
    assert subscriber.welcome.realm == "realm1"
    await leave(subscriber)
    await leave(publisher)


@pytest_twisted.ensureDeferred
async def test_json_publisher_reaches_msgpack_and_cbor_subscribers(router):
    """One PUBLISH in JSON reaches subscribers on MessagePack (WebSocket) and CBOR (RawSocket) unchanged."""
    msgpack_sub = await connect(target(router, "universal", "websocket", "msgpack"))
    cbor_sub = await connect(target(router, "rawsocket", "rawsocket", "cbor"))
    publisher = await connect(target(router, "websocket", "websocket", "json"))
    msgpack_events, cbor_events = Collector(), Collector()
    await msgpack_sub.subscribe(msgpack_events, "com.example.mixed")
    await cbor_sub.subscribe(cbor_events, "com.example.mixed")
    await publisher.publish("com.example.mixed", "héllo", 2**40, 1.5, None, options=PublishOptions(acknowledge=True))
    expected = [(("héllo", 2**40, 1.5, None), {})]
    assert await msgpack_events.done == expected
    assert await cbor_events.done == expected
    for session in (msgpack_sub, cbor_sub, publisher):
        await leave(session)
