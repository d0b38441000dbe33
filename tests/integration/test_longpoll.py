"""The WAMP long-poll transport (`[listeners.websocket] longpoll_path`) with plain HTTP requests written byte by byte
over TCP: open, send, receive and close as the WAMP spec and Autobahn|JS use them, every refusal with its exact
status and JSON error, the Origin allow-list and CORS, the bounds (body sizes, open transports, held sends, the
outgoing budget), the receive timeout and idle expiry, and sessions that meet WebSocket peers in the same realm.
"""

from __future__ import annotations

import json
import textwrap

import pytest
import pytest_twisted
from twisted.internet import defer

from tests.support.clients import Target, connect, leave
from tests.support.raw import http_request
from tests.support.router import listener, realm_anonymous_all
from tests.support.wait import bounded, eventually

HELLO = [1, "realm1", {"roles": {"subscriber": {}, "publisher": {}, "caller": {}, "callee": {}}}]
ORIGIN = "http://app.example"


def config(extra: str = "", limits: str = "", slow_consumer: str | None = None) -> str:
    """A WebSocket listener with long-poll at /lp, allowing ORIGIN; realm1 open to anonymous."""
    websocket = f'longpoll_path = "/lp"\nallowed_origins = ["{ORIGIN}"]\n{extra}'
    return (f"[limits]\n{limits}\n" + listener("web", ("websocket",), websocket=websocket)
            + realm_anonymous_all(slow_consumer=slow_consumer))


@pytest_twisted.async_fixture()
async def lp_router(stoppable, tmp_path):
    return await stoppable(config(), tmp_path)


def post(path: str, body: bytes = b"", headers: dict[str, str] | None = None, method: str = "POST") -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {len(body)}",
             "Content-Type: application/json; charset=utf-8"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class Client:
    """One long-poll transport, driven with raw requests."""

    def __init__(self, router, protocol: str = "wamp.2.json"):
        self.port = router.port("web")
        self.protocol = protocol
        self.transport = None

    async def request(self, path: str, body: bytes = b"", **kw):
        return await http_request(self.port, post(path, body, **kw))

    async def open(self, **kw) -> dict:
        status, headers, body = await self.request("/lp/open", json.dumps({"protocols": [self.protocol]}).encode(),
                                                   **kw)
        assert status == 200, (status, body)
        opened = json.loads(body)
        self.transport = opened["transport"]
        return opened

    async def send(self, message: list, **kw):
        return await self.request(f"/lp/{self.transport}/send", json.dumps(message).encode(), **kw)

    async def receive(self, **kw):
        return await self.request(f"/lp/{self.transport}/receive", **kw)

    async def receive_message(self) -> list:
        status, _, body = await self.receive()
        assert status == 200, (status, body)
        return json.loads(body)

    async def join(self) -> list:
        await self.open()
        status, _, _ = await self.send(HELLO)
        assert status == 204
        welcome = await self.receive_message()
        assert welcome[0] == 2, welcome
        return welcome


def error_of(body: bytes) -> str:
    return json.loads(body)["error"]


# -- the protocol ---------------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_open_answers_an_unguessable_transport_id_and_the_protocol(lp_router):
    """POST /lp/open with {"protocols": ["wamp.2.json"]} answers 200 JSON {"transport", "protocol"}: the id is 22
    URL-safe characters (128 random bits) and differs per transport; the answer is not cached (no-store)."""
    first, second = Client(lp_router), Client(lp_router)
    opened = await first.open()
    assert opened["protocol"] == "wamp.2.json"
    assert len(opened["transport"]) == 22 and opened["transport"].replace("-", "").replace("_", "").isalnum()
    assert (await second.open())["transport"] != opened["transport"]
    status, headers, _ = await first.request("/lp/open", b'{"protocols": ["wamp.2.json"]}')
    assert status == 200
    assert headers["cache-control"] == ["no-store"]
    assert headers["content-type"] == ["application/json; charset=utf-8"]


@pytest_twisted.ensureDeferred
async def test_session_joins_subscribes_and_gets_a_websocket_peers_event(lp_router):
    """Over long-poll: HELLO -> WELCOME (anonymous), SUBSCRIBE -> SUBSCRIBED; a WebSocket session publishes and the
    EVENT arrives at the long-poll receive with its args; the long-poll session's CALL reaches the WebSocket
    callee and its RESULT comes back; GOODBYE is answered with GOODBYE and close with 204, after which the
    transport is unknown (404) and the realm has only the WebSocket session."""
    client = Client(lp_router)
    welcome = await client.join()
    assert welcome[2]["authrole"] == "anonymous"
    assert (await client.send([32, 1, {}, "com.lp.topic"]))[0] == 204
    assert (await client.receive_message())[0:2] == [33, 1]
    peer = await connect(Target(port=lp_router.port("web"), transport="websocket"))
    try:
        await peer.publish("com.lp.topic", 1, "zwei", drei=3.5, options=_acknowledged())
        event = await client.receive_message()
        assert event[0] == 36 and event[4:] == [[1, "zwei"], {"drei": 3.5}]
        await peer.register(lambda x: x * 2, "com.lp.double")
        assert (await client.send([48, 7, {}, "com.lp.double", [21]]))[0] == 204
        assert await client.receive_message() == [50, 7, {}, [42]]
        assert (await client.send([6, {}, "wamp.close.close_realm"]))[0] == 204
        assert (await client.receive_message())[0] == 6
        status, _, _ = await client.request(f"/lp/{client.transport}/close")
        assert status == 204
        status, _, body = await client.receive()
        assert (status, error_of(body)) == (404, "no_such_transport")
        assert [p.channel.transport_info().kind for p in lp_router.realm().sessions.values()] == ["websocket"]
    finally:
        await leave(peer)


@pytest_twisted.ensureDeferred
async def test_transport_info_carries_the_open_requests_headers_and_cookies(lp_router):
    """Authenticators see a long-poll session as kind "longpoll", serializer json, with the open request's
    headers, path and cookies (as a WebSocket session's upgrade request)."""
    client = Client(lp_router)
    await client.open(headers={"Cookie": "token=abc; theme=dark", "X-Test": "yes"})
    await client.send(HELLO)
    await client.receive_message()
    (peer,) = lp_router.realm().sessions.values()
    info = peer.channel.transport_info()
    assert (info.kind, info.serializer, info.http_path) == ("longpoll", "json", "/lp/open")
    assert dict(info.cookies) == {"token": "abc", "theme": "dark"}
    assert info.http_headers["x-test"] == "yes"
    assert info.peer.startswith("tcp4:127.0.0.1:")


@pytest_twisted.ensureDeferred
async def test_batched_protocol_sends_and_receives_messages_ending_in_0x1e(lp_router):
    """With wamp.2.json.batched a send body holds several messages, each followed by 0x1E, and a receive answers
    every queued message the same way; a body without the final 0x1E is 400 bad_request."""
    client = Client(lp_router, "wamp.2.json.batched")
    assert (await client.open())["protocol"] == "wamp.2.json.batched"
    body = b"".join(json.dumps(m).encode() + b"\x1e" for m in (HELLO, [32, 1, {}, "com.lp.a"], [32, 2, {}, "com.lp.b"]))
    status, _, _ = await client.request(f"/lp/{client.transport}/send", body)
    assert status == 204
    status, _, received = await client.receive()
    assert status == 200 and received.endswith(b"\x1e")
    messages = [json.loads(part) for part in received[:-1].split(b"\x1e")]
    assert [m[0] for m in messages] == [2, 33, 33]
    status, _, answer = await client.request(f"/lp/{client.transport}/send", json.dumps([32, 3, {}, "x.y"]).encode())
    assert (status, error_of(answer)) == (400, "bad_request")


@pytest_twisted.ensureDeferred
async def test_a_second_receive_replaces_the_waiting_one(lp_router):
    """One receive waits at a time: a second one answers the first with 204 (empty) and gets the next message."""
    client = Client(lp_router)
    await client.open()
    first = defer.ensureDeferred(client.receive())
    await eventually(lambda: _channel(lp_router, client)._receiver is not None,
                     "the first receive waits")
    second = defer.ensureDeferred(client.receive())
    status, _, body = await bounded(first)
    assert (status, body) == (204, b"")
    await eventually(lambda: _channel(lp_router, client)._receiver is not None, "the second receive waits")
    await client.send(HELLO)
    status, _, body = await bounded(second)
    assert status == 200 and json.loads(body)[0] == 2


def _channel(router, client):
    return _resource(router).transports[client.transport]


def _resource(router):
    """The listener's LongPollResource (behind the admitting wrapper, on the twisted.web site)."""
    return router.listener("web")._factory.wrappedFactory.longpoll


# -- refusals -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["send", "receive", "close"])
@pytest_twisted.ensureDeferred
async def test_unknown_transport_is_404(lp_router, action):
    """A request for a transport id the router never gave (or forgot) is 404 no_such_transport."""
    status, headers, body = await Client(lp_router).request(f"/lp/AAAAAAAAAAAAAAAAAAAAAA/{action}", b"[1]")
    assert (status, error_of(body)) == (404, "no_such_transport")
    assert headers["cache-control"] == ["no-store"]


@pytest.mark.parametrize("path", ["/lp", "/lp/", "/lp/x", "/lp/open/more", "/lp/x/y/send"])
@pytest_twisted.ensureDeferred
async def test_other_paths_under_longpoll_are_404(lp_router, path):
    """Anything under the long-poll path but open and <id>/send|receive|close is 404."""
    status, _, _ = await Client(lp_router).request(path)
    assert status == 404


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
@pytest_twisted.ensureDeferred
async def test_other_methods_are_405(lp_router, method):
    """Only POST (and the CORS preflight OPTIONS): anything else is 405 method_not_allowed with Allow."""
    status, headers, body = await http_request(lp_router.port("web"), post("/lp/open", method=method))
    assert (status, error_of(body)) == (405, "method_not_allowed")
    assert headers["allow"] == ["POST, OPTIONS"]


@pytest.mark.parametrize("body,error", [
    (b"not json", "bad_request"),
    (b"[]", "bad_request"),
    (b'{"protocols": "wamp.2.json"}', "bad_request"),
    (b'{"protocols": []}', "bad_request"),
    (b'{"protocols": ["wamp.2.msgpack"]}', "unsupported_protocol"),
])
@pytest_twisted.ensureDeferred
async def test_malformed_or_unsupported_open_is_400(lp_router, body, error):
    """An open body that is not {"protocols": [strings]} is 400 bad_request; one naming no protocol the router
    speaks over long-poll (JSON only) is 400 unsupported_protocol. No transport is created."""
    status, _, answer = await Client(lp_router).request("/lp/open", body)
    assert (status, error_of(answer)) == (400, error)
    assert _resource(lp_router).transports == {}


@pytest_twisted.ensureDeferred
async def test_invalid_json_message_is_a_protocol_violation(lp_router):
    """A send whose body is not a WAMP message is read like a WebSocket message: ABORT
    wamp.error.protocol_violation goes to the next receive, after which the transport is gone (410, then 404)."""
    client = Client(lp_router)
    await client.open()
    status, _, _ = await client.request(f"/lp/{client.transport}/send", b"{not json")
    assert status == 204
    abort = await client.receive_message()
    assert abort[0:3] == [3, {"message": "protocol violation"}, "wamp.error.protocol_violation"]
    status, _, body = await client.receive()
    assert (status, error_of(body)) == (410, "transport_closed")
    status, _, _ = await client.receive()
    assert status == 404


@pytest_twisted.ensureDeferred
async def test_oversized_bodies_are_413(stoppable, tmp_path):
    """A send body over max_message_size and an open body over 4,096 bytes are refused with 413
    payload_too_large before they are read; the transport still works afterwards."""
    router = await stoppable(config().replace('transports = ["websocket"]',
                                              'transports = ["websocket"]\nmax_message_size = 4096'), tmp_path)
    client = Client(router)
    await client.open()
    status, _, body = await client.request(f"/lp/{client.transport}/send", b"[" + b" " * 5000 + b"]")
    assert (status, error_of(body)) == (413, "wamp.error.payload_size_exceeded")
    status, _, body = await client.request("/lp/open", b" " * 5000)
    assert (status, error_of(body)) == (413, "wamp.error.payload_size_exceeded")
    assert (await client.send(HELLO))[0] == 204
    assert (await client.receive_message())[0] == 2


@pytest_twisted.ensureDeferred
async def test_chunked_body_is_411_and_body_elsewhere_400(lp_router):
    """A long-poll request with a chunked body is 411 (a length is required); a body on any other path of the
    listener is still 400."""
    chunked = (b"POST /lp/open HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"2\r\n{}\r\n0\r\n\r\n")
    status, _, _ = await http_request(lp_router.port("web"), chunked)
    assert status == 411
    status, _, _ = await http_request(lp_router.port("web"), post("/elsewhere", b"{}"))
    assert status == 400


@pytest_twisted.ensureDeferred
async def test_too_many_transports_is_503(stoppable, tmp_path):
    """Beyond longpoll_max_transports open transports, open is 503 too_many_transports (and counted); once one
    closes, open works again."""
    router = await stoppable(config("longpoll_max_transports = 2\n"), tmp_path)
    first = Client(router)
    await first.open()
    await Client(router).open()
    status, _, body = await Client(router).request("/lp/open", b'{"protocols": ["wamp.2.json"]}')
    assert (status, error_of(body)) == (503, "too_many_transports")
    assert router.service.context.counters.value("longpoll_refused", reason="too_many_transports",
                                                 listener="web") == 1
    assert (await first.request(f"/lp/{first.transport}/close"))[0] == 204
    await Client(router).open()


# -- origins and CORS ---------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_refused_origin_is_403_on_every_request(lp_router):
    """A request whose Origin is not on allowed_origins is 403 origin_not_allowed, open and every request of an
    open transport alike, with no CORS header; the refusals are counted as handshake_refused reason origin."""
    client = Client(lp_router)
    evil = {"Origin": "http://evil.example"}
    status, headers, body = await client.request("/lp/open", b'{"protocols": ["wamp.2.json"]}', headers=evil)
    assert (status, error_of(body)) == (403, "origin_not_allowed")
    assert "access-control-allow-origin" not in headers
    await client.open()
    for action in ("send", "receive", "close"):
        status, _, body = await client.request(f"/lp/{client.transport}/{action}", b"[1]", headers=evil)
        assert (status, error_of(body)) == (403, "origin_not_allowed"), action
    counters = lp_router.service.context.counters
    assert counters.value("handshake_refused", reason="origin", listener="web") == 4


@pytest_twisted.ensureDeferred
async def test_allowed_origin_gets_cors_headers_and_preflight(lp_router):
    """An allowed Origin gets Access-Control-Allow-Origin (that origin) with credentials on every answer; the
    OPTIONS preflight is 204 allowing POST and Content-Type."""
    client = Client(lp_router)
    good = {"Origin": ORIGIN}
    await client.open(headers=good)
    status, headers, _ = await client.request(f"/lp/{client.transport}/send", json.dumps(HELLO).encode(),
                                              headers=good)
    assert status == 204
    assert headers["access-control-allow-origin"] == [ORIGIN]
    assert headers["access-control-allow-credentials"] == ["true"]
    preflight = post(f"/lp/{client.transport}/receive", method="OPTIONS",
                     headers={**good, "Access-Control-Request-Method": "POST",
                              "Access-Control-Request-Headers": "content-type"})
    status, headers, _ = await http_request(lp_router.port("web"), preflight)
    assert status == 204
    assert headers["access-control-allow-methods"] == ["POST, OPTIONS"]
    assert headers["access-control-allow-headers"] == ["Content-Type"]
    assert headers["access-control-allow-origin"] == [ORIGIN]


# -- time and bounds ---------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_receive_without_message_is_answered_empty_after_the_timeout(stoppable, tmp_path):
    """A receive with nothing to deliver is answered 204 with an empty body after longpoll_receive_timeout."""
    router = await stoppable(config("longpoll_receive_timeout = 1.0\n"), tmp_path)
    client = Client(router)
    await client.join()
    status, _, body = await bounded(defer.ensureDeferred(client.receive()), 10.0)
    assert (status, body) == (204, b"")


@pytest_twisted.ensureDeferred
async def test_idle_transport_expires_and_its_session_is_lost(stoppable, tmp_path):
    """A joined transport without any request for longpoll_idle_timeout expires: the session leaves the realm as
    if its connection were lost (counted as longpoll_expired), and the id is unknown afterwards (404)."""
    router = await stoppable(config("longpoll_idle_timeout = 1.0\n"), tmp_path)
    client = Client(router)
    await client.join()
    assert len(router.realm().sessions) == 1
    await eventually(lambda: not router.realm().sessions, "the idle session is gone", timeout=10.0)
    assert router.service.context.counters.value("longpoll_expired", listener="web") == 1
    status, _, body = await client.receive()
    assert (status, error_of(body)) == (404, "no_such_transport")


@pytest_twisted.ensureDeferred
async def test_waiting_receive_keeps_the_transport_alive(stoppable, tmp_path):
    """A receive waiting for longer than the idle timeout is activity: the transport does not expire under it."""
    router = await stoppable(config("longpoll_idle_timeout = 1.0\nlongpoll_receive_timeout = 3.0\n"), tmp_path)
    client = Client(router)
    await client.join()
    status, _, _ = await bounded(defer.ensureDeferred(client.receive()), 10.0)
    assert status == 204
    assert len(router.realm().sessions) == 1


@pytest_twisted.ensureDeferred
async def test_events_beyond_the_outgoing_budget_follow_the_slow_consumer_policy(stoppable, tmp_path):
    """Messages waiting for a receive count against max_outgoing_buffer like a socket's backlog: a subscriber
    that does not receive gets EVENTs dropped (slow_consumer_drop) once over it, and after draining its queue it
    gets new events again."""
    router = await stoppable(config(limits="max_outgoing_buffer = 65536"), tmp_path)
    client = Client(router)
    await client.join()
    await client.send([32, 1, {}, "com.lp.flood"])
    assert (await client.receive_message())[0] == 33
    peer = await connect(Target(port=router.port("web"), transport="websocket"))
    try:
        for _ in range(40):
            peer.publish("com.lp.flood", "x" * 4000)
        await peer.publish("com.lp.flood", "last", options=_acknowledged())
        counters = router.service.context.counters
        await eventually(lambda: counters.value("slow_consumer_drop", listener="web", realm="realm1") > 0,
                         "events dropped for the long-poll session")
        channel = _channel(router, client)
        assert channel.budget.held <= channel.budget.limit + 4100
        received = 0
        while channel._outbox:
            assert (await client.receive_message())[0] == 36
            received += 1
        assert 10 <= received < 41
        await peer.publish("com.lp.flood", "after", options=_acknowledged())
        assert (await client.receive_message())[4] == ["after"]
    finally:
        await leave(peer)


def _acknowledged():
    from autobahn.wamp.types import PublishOptions

    return PublishOptions(acknowledge=True)


@pytest_twisted.ensureDeferred
async def test_sends_while_reading_is_paused_are_held_and_bounded(lp_router):
    """While reading is paused a send is held (answered only once read), and sends beyond max_message_size held
    bytes get 429 too_many_requests; resuming reads the held one and answers it 204."""
    from wampgate.tx.channel import PAUSED_FOR_FLOW

    client = Client(lp_router)
    await client.join()
    channel = _channel(lp_router, client)
    channel.pause_reading(PAUSED_FOR_FLOW)
    held = defer.ensureDeferred(client.send([32, 1, {}, "com.lp.held"]))
    await eventually(lambda: channel._inbox, "the send is held")
    big = json.dumps([16, 2, {}, "com.lp.big", [""]]).encode()
    big = big.replace(b'""', b'"' + b"x" * (1024 * 1024 - 8 - len(big)) + b'"')  # 8 bytes under max_message_size
    status, _, body = await client.request(f"/lp/{client.transport}/send", big)
    assert (status, error_of(body)) == (429, "too_many_requests")
    assert not held.called
    channel.resume_reading(PAUSED_FOR_FLOW)
    assert (await bounded(held))[0] == 204
    assert (await client.receive_message())[0:2] == [33, 1]


def test_config_with_longpoll_renders(tmp_path):
    """The test config itself loads (a guard for the helpers above)."""
    from wampgate.config import load

    path = tmp_path / "r.toml"
    path.write_text(textwrap.dedent(config()))
    assert load(path).listeners[0].websocket.longpoll_path == "/lp"


@pytest_twisted.ensureDeferred
async def test_a_receive_whose_connection_closed_takes_nothing(lp_router):
    """A receive whose client went away (its connection closed) is forgotten: a message arriving afterwards stays
    queued and the next receive gets it."""
    from tests.support.raw import open_tcp

    client = Client(lp_router)
    await client.join()
    channel = _channel(lp_router, client)
    tcp = await open_tcp(client.port)
    tcp.write(post(f"/lp/{client.transport}/receive"))
    await eventually(lambda: channel._receiver is not None, "the receive waits")
    tcp.close()
    await eventually(lambda: channel._receiver is None, "the router noticed the closed connection")
    assert (await client.send([32, 1, {}, "com.lp.later"]))[0] == 204
    assert (await client.receive_message())[0:2] == [33, 1]


@pytest_twisted.ensureDeferred
async def test_forwarded_client_address_from_a_trusted_proxy(stoppable, tmp_path):
    """With trusted_proxies, the open request's X-Forwarded-For names the session's peer address, as for a
    WebSocket upgrade; from an untrusted peer the header is ignored."""
    router = await stoppable(config('trusted_proxies = ["127.0.0.1"]\n'), tmp_path)
    client = Client(router)
    await client.open(headers={"X-Forwarded-For": "203.0.113.7"})
    assert _channel(router, client).transport_info().peer == "tcp4:203.0.113.7:0"
    (tmp_path / "other").mkdir()
    untrusted = await stoppable(config(), tmp_path / "other")
    other = Client(untrusted)
    await other.open(headers={"X-Forwarded-For": "203.0.113.7"})
    assert _channel(untrusted, other).transport_info().peer.startswith("tcp4:127.0.0.1:")
