"""Helpers for the flow-control and transport-limit tests: a router built from TOML tables for the `limits`
flow plugin and [limits], raw WebSocket / RawSocket clients that join and exchange requests, bounded waits, and the
router's counters. Everything talks to 127.0.0.1 only, and every wait has a timeout."""

from __future__ import annotations

import contextlib
import json
import textwrap

from autobahn.twisted.websocket import WebSocketClientFactory
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions
from autobahn.websocket.compress import (
    PerMessageDeflateOffer,
    PerMessageDeflateResponse,
    PerMessageDeflateResponseAccept,
)
from twisted.internet import defer, endpoints, task

from tests.support import auth_clients as auth
from tests.support import raw
from tests.support.clients import Collector, Target, connect, leave
from tests.support.router import REALM1_ANONYMOUS_ALL, listener, start_router
from tests.support.wait import bounded, eventually  # noqa: F401 (eventually: re-exported for the flow tests)

RATE_LIMITED = "wampgate.error.rate_limited"
OVERLOADED = "wampgate.close.rate_limited"
TOO_MANY_SESSIONS = "wampgate.error.too_many_sessions"
PROTOCOL_VIOLATION = "wamp.error.protocol_violation"
RAWSOCKET_TOO_MANY = bytes((0x7F, 0x40, 0, 0))
CALL, RESULT, REGISTER, REGISTERED = 48, 50, 64, 65
ALICE_TICKET = "alice-flow-ticket"

REALM = REALM1_ANONYMOUS_ALL + textwrap.dedent("""
    [[realms.roles]]
    name = "user"

    [[realms.roles.permissions]]
    uri = ""
    match = "prefix"
    allow = ["publish", "subscribe", "call", "register"]
    """)


def _reactor():
    from twisted.internet import reactor

    return reactor


def now() -> float:
    return _reactor().seconds()


def sleep(seconds: float) -> defer.Deferred:
    return task.deferLater(_reactor(), seconds, lambda: None)


def toml(value) -> str:
    """A Python value as a TOML (inline) value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return "{ " + ", ".join(f"{k} = {toml(v)}" for k, v in value.items()) + " }"


def flow_table(**options) -> str:
    """A top-level [[flow]] table for the `limits` plugin with these keys."""
    return "[[flow]]\nplugin = \"limits\"\n" + "".join(f"{k} = {toml(v)}\n" for k, v in options.items())


def limits_table(**options) -> str:
    return "[limits]\n" + "".join(f"{k} = {toml(v)}\n" for k, v in options.items())


def main_listener(name: str = "main", *, extra: str = "", websocket: str = "", auth: str | None = None,
                  transports=("websocket", "rawsocket")) -> str:
    kwargs = {"auth": auth} if auth is not None else {}
    return listener(name, transports, extra=extra, websocket=websocket, **kwargs)


@contextlib.asynccontextmanager
async def running(tmp_path, *, flow: dict | None = None, limits: dict | None = None, listeners: str | None = None):
    """A router with one [[flow]] limits table (when given), [limits] and the listeners (default: one universal
    listener "main"); realm1 open to anonymous and to role "user". Raw clients registered with the yielded
    tracker are dropped, and the router stopped, however the test ends."""
    text = (flow_table(**flow) if flow is not None else "") + (limits_table(**limits) if limits else "")
    text += (listeners if listeners is not None else main_listener()) + REALM
    router = await start_router(text, tmp_path)
    tracker = raw.Tracker()
    try:
        yield router, tracker
    finally:
        tracker.close_all()
        await router.stop()


def count(router, name: str, **labels) -> int:
    return router.service.context.counters.value(name, **labels)


def publish(request: int, topic: str = "com.example.topic", ack: bool = True, payload=None) -> list:
    return [raw.PUBLISH, request, {"acknowledge": True} if ack else {}, topic, [payload if payload is not None
                                                                               else request]]


async def exchange(client, messages: list, timeout: float = 5.0) -> list:
    """Send requests that each get exactly one reply; return the replies in order of arrival."""
    seen = len(client.messages)
    for message in messages:
        client.send(message)
    replies = await client.wait_messages(seen + len(messages), timeout)
    return replies[seen:]


def split(replies: list, ok_type: int) -> tuple[list, list]:
    """(successful replies, ERRORs); fails on anything else."""
    ok = [r for r in replies if r[0] == ok_type]
    errors = [r for r in replies if r[0] == raw.ERROR]
    assert len(ok) + len(errors) == len(replies), replies
    return ok, errors


def assert_rate_limited(error: list, request_type: int) -> float:
    """An ERROR as flow control sends it: wampgate.error.rate_limited with the same positive retry_after in its
    details and its kwargs; returns retry_after."""
    assert error[0] == raw.ERROR and error[1] == request_type, error
    assert error[4] == RATE_LIMITED, error
    retry_after = error[3]["retry_after"]
    assert retry_after > 0, error
    assert len(error) == 7 and error[6]["retry_after"] == retry_after, error
    return retry_after


async def ws_client(tracker, port: int, serializer: str = "json", *, headers: dict | None = None,
                    compression: bool = False, timeout: float = 5.0) -> raw.RawWebSocket:
    """A raw WebSocket client (see tests.support.raw.RawWebSocket) that may send handshake headers and offer
    permessage-deflate (then compressing what it sends)."""
    client = tracker(raw.RawWebSocket(serializer))
    factory = WebSocketClientFactory(f"ws://127.0.0.1:{port}/ws", protocols=[f"wamp.2.{serializer}"],
                                     headers=headers or {})
    factory.protocol = raw._RawWebSocketProtocol
    factory.client = client
    factory.noisy = False
    options = {"openHandshakeTimeout": timeout, "closeHandshakeTimeout": 1.0, "tcpNoDelay": True}
    if compression:
        options["perMessageCompressionOffers"] = [PerMessageDeflateOffer()]
        options["perMessageCompressionAccept"] = (
            lambda response: PerMessageDeflateResponseAccept(response)
            if isinstance(response, PerMessageDeflateResponse) else None)
    factory.setProtocolOptions(**options)
    await bounded(endpoints.TCP4ClientEndpoint(_reactor(), "127.0.0.1", port, timeout=timeout).connect(factory),
                  timeout)
    await bounded(client._opened_d, timeout)
    return client


async def joined_ws(tracker, port: int, serializer: str = "json", **options) -> raw.RawWebSocket:
    client = await ws_client(tracker, port, serializer, **options)
    await client.join()
    return client


async def joined_rawsocket(tracker, port: int, serializer: str = "msgpack", length: int = 15) -> raw.RawSocketWamp:
    client = tracker(await raw.open_rawsocket(port, serializer, length))
    await client.join()
    return client


async def round_trip(port: int, topic: str = "com.example.calm", transport: str = "websocket") -> float:
    """A fresh subscriber and publisher (real Autobahn clients) complete one acknowledged publish -> event;
    returns the seconds from PUBLISH to the event's arrival."""
    target = Target(port=port, transport=transport, serializer="json" if transport == "websocket" else "msgpack")
    subscriber = await bounded(connect(target))
    publisher = await bounded(connect(target))
    try:
        events = Collector()
        await bounded(subscriber.subscribe(events, topic))
        started = now()
        await bounded(publisher.publish(topic, "calm", options=PublishOptions(acknowledge=True)))
        assert await bounded(events.done) == [(("calm",), {})]
        return now() - started
    finally:
        await bounded(leave(subscriber))
        await bounded(leave(publisher))


def ticket_auth(secret_hash: str) -> str:
    principal = {"authid": "alice", "role": "user", "secret_hash": secret_hash}
    return 'anonymous = { role = "anonymous" }\n' + f"ticket = {toml({'principals': [principal]})}"


async def alice(port: int) -> auth.AuthSession:
    return await auth.join(Target(port=port), authmethods=["ticket"], authid="alice",
                           answer=auth.ticket(ALICE_TICKET))


async def publish_outcomes(session, count_: int, topic: str = "com.example.topic") -> tuple[int, list]:
    """Acknowledged publishes from an Autobahn session: (how many succeeded, the ApplicationErrors)."""
    results = await bounded(defer.DeferredList(
        [defer.ensureDeferred(session.publish(topic, i, options=PublishOptions(acknowledge=True)))
         for i in range(count_)], consumeErrors=True))
    errors = [result.value for ok, result in results if not ok]
    assert all(isinstance(e, ApplicationError) for e in errors), errors
    return sum(ok for ok, _ in results), errors


HALF_REQUEST = b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"


def upgrade(path: str = "/ws", *, method: str = "GET", version: str = "HTTP/1.1", extra: dict | None = None) -> bytes:
    headers = {
        "Host": "127.0.0.1",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Protocol": "wamp.2.json",
        **(extra or {}),
    }
    lines = [f"{method} {path} {version}"] + [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

