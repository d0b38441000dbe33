"""Waiting in tests against a real router, always bounded: a timeout on a Deferred, polling for a condition that
must come true, the "still serves" check after an attack, and a free loopback port.

None of these proves that something did NOT happen. For that, send a marker the router must answer after it (WAMP
keeps each connection's order) and assert that nothing came before the marker's answer.
"""

from __future__ import annotations

import math
import socket
from collections.abc import Callable, Iterable
from typing import Any

from twisted.internet import defer, task

DEFAULT_TIMEOUT = 5.0
POLL_STEP = 0.01


def _reactor():
    from twisted.internet import reactor

    return reactor


def bounded(awaitable, timeout: float = DEFAULT_TIMEOUT) -> defer.Deferred:
    """A Deferred for a coroutine or Deferred that fails with defer.TimeoutError after `timeout` seconds."""
    d = defer.ensureDeferred(awaitable) if not isinstance(awaitable, defer.Deferred) else awaitable
    d.addTimeout(timeout, _reactor())
    return d


async def eventually(condition: Callable[[], Any], what: str = "condition", *, timeout: float = DEFAULT_TIMEOUT,
                     step: float = POLL_STEP) -> Any:
    """Poll `condition` every `step` seconds until it is truthy and return that value; fail naming `what` after
    `timeout` seconds (or as many polls as fit in it, whichever comes first). For bookkeeping no message reports
    (a table emptied, a connection counted closed), never to prove absence."""
    reactor = _reactor()
    deadline = reactor.seconds() + timeout
    polls = math.ceil(timeout / step) + 1
    for poll in range(polls):
        value = condition()
        if value:
            return value
        if poll == polls - 1 or reactor.seconds() >= deadline:
            break
        await task.deferLater(reactor, step, lambda: None)
    raise AssertionError(f"{what} did not hold within {timeout} s")


async def assert_router_serves(port: int, transport: str = "websocket", serializer: str = "json", *,
                               tls_ca=None) -> None:
    """A fresh Autobahn client joins and completes a publish/subscribe round trip: the router still works (over TLS
    when `tls_ca` is given)."""
    from autobahn.wamp.types import PublishOptions

    from tests.support.clients import Collector, Target, connect, leave

    target = Target(port=port, transport=transport, serializer=serializer, tls_ca=tls_ca)
    subscriber = await bounded(connect(target))
    publisher = await bounded(connect(target))
    events = Collector()
    await bounded(subscriber.subscribe(events, "com.example.alive"))
    await bounded(publisher.publish("com.example.alive", "still", n=1, options=PublishOptions(acknowledge=True)))
    assert await bounded(events.done) == [(("still",), {"n": 1})]
    await bounded(leave(subscriber))
    await bounded(leave(publisher))


SERIALIZER_PER_TRANSPORT = {"websocket": "json", "rawsocket": "msgpack"}


async def still_serves(router, listener: str = "universal", *, rawsocket_listener: str | None = None,
                       transports: Iterable[str] = ("websocket", "rawsocket")) -> None:
    """After an attack: fresh clients join `listener` and complete a round trip over each transport (WebSocket with
    JSON, RawSocket with MessagePack; RawSocket on `rawsocket_listener` when given)."""
    for transport in transports:
        name = rawsocket_listener if transport == "rawsocket" and rawsocket_listener else listener
        await assert_router_serves(router.port(name), transport, SERIALIZER_PER_TRANSPORT[transport])


def free_port() -> int:
    """A loopback port that was free a moment ago (bind to port 0, read it, close): for configs that must name
    their port before the router starts."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
