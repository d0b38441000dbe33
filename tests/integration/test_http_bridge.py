"""The HTTP bridge on a universal listener, driven by plain HTTP clients: publish, call and webhook endpoints, each
request authenticated (signed like Crossbar's clients sign, a bearer JWT, or not at all from loopback), then flow
controlled and authorized exactly as a WAMP session's message; every refusal with its exact status and JSON error."""

from __future__ import annotations

import json
import time

import jwt as pyjwt
import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer

from tests.support.clients import Collector, connect, leave
from tests.support.http_bridge import request, signed_query, timestamp
from tests.support.raw import open_tcp
from tests.support.router import listener, start_router
from tests.support.wait import bounded, eventually, still_serves
from tests.integration.conftest import target

KEY, SECRET = "backend-key", "a-bridge-secret-of-32-bytes-long"
JWT_SECRET = b"j" * 32

PATHS = """
[[listeners.paths]]
path = "/publish"
kind = "publish"
bridge = "open"

[[listeners.paths]]
path = "/call"
kind = "call"
bridge = "open"

[[listeners.paths]]
path = "/signed/publish"
kind = "publish"
bridge = "signed"

[[listeners.paths]]
path = "/signed/call"
kind = "call"
bridge = "signed"

[[listeners.paths]]
path = "/jwt/publish"
kind = "publish"
bridge = "jwt"

[[listeners.paths]]
path = "/hooks/github"
kind = "webhook"
bridge = "open"
topic = "com.example.github"
headers = ["content-type", "x-github-event"]

[[listeners.paths]]
path = "/tls/publish"
kind = "publish"
bridge = "tls_only"

[[listeners.paths]]
path = "/far/publish"
kind = "publish"
bridge = "far"

[[listeners.bridges]]
name = "open"
realm = "realm1"
authentication = "none"
authrole = "anonymous"
max_body_size = 1024

[[listeners.bridges]]
name = "signed"
realm = "realm1"
authid = "backend"
authrole = "backend"
key = "backend-key"
secret = "a-bridge-secret-of-32-bytes-long"
timestamp_window = 60.0

[[listeners.bridges]]
name = "jwt"
realm = "realm1"
authentication = "jwt"

[[listeners.bridges]]
name = "tls_only"
realm = "realm1"
authentication = "none"
authrole = "anonymous"
require_tls = true

[[listeners.bridges]]
name = "far"
realm = "realm1"
authentication = "none"
authrole = "anonymous"
allowed_addresses = ["10.0.0.0/8"]
allow_unauthenticated_remote = true
"""

REALM = """
[[flow]]
plugin = "limits"

[[flow.uri_rates]]
prefix = "com.limited."
messages = 0.001
burst = 2

[[realms]]
name = "realm1"

[[realms.roles]]
name = "anonymous"

[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["publish", "subscribe", "call", "register"]

[[realms.roles]]
name = "backend"

[[realms.roles.permissions]]
uri = "com.example."
match = "prefix"
allow = ["publish", "call"]
"""


def config(tmp_path) -> str:
    (tmp_path / "jwt.secret").write_bytes(JWT_SECRET)
    auth = ('anonymous = { role = "anonymous" }\n'
            'jwt = { algorithms = ["HS256"], secret_file = "jwt.secret", issuer = "idp", audience = "wampgate" }')
    universal = listener("universal", auth=auth, websocket='trusted_proxies = ["127.0.0.1"]')
    universal = universal.replace("[listeners.websocket]", PATHS + "\n[listeners.websocket]")
    return universal + listener("rawsocket", ("rawsocket",)) + REALM


@pytest_twisted.async_yield_fixture()
async def bridge_router(tmp_path):
    running = await start_router(config(tmp_path), tmp_path)
    yield running
    await running.stop()


def port(router) -> int:
    return router.port("universal")


async def post(router, path, body=b"", **kw):
    return await bounded(request(port(router), path, body, **kw))


def refused(response, status: int, error: str) -> None:
    assert (response.status, response.json["error"]) == (status, error), (response.status, response.body)
    assert isinstance(response.json["message"], str) and response.json["message"]
    assert response.headers["content-type"] == "application/json"


# -- publish ---------------------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_publish_reaches_websocket_and_rawsocket_subscribers(bridge_router):
    """POST /publish answers {"id": publication} and the event, args and kwargs intact, reaches a WebSocket and a
    RawSocket subscriber through the normal broker; the publisher is the bridge's identity."""
    ws = await connect(target(bridge_router, "universal", "websocket"))
    rs = await connect(target(bridge_router, "rawsocket", "rawsocket", "msgpack"))
    ws_events, rs_events = Collector(), Collector()
    await ws.subscribe(ws_events, "com.example.news")
    await rs.subscribe(rs_events, "com.example.news")
    response = await post(bridge_router, "/publish", {"topic": "com.example.news", "args": [1, "two"],
                                                      "kwargs": {"three": [3]}})
    assert response.status == 200
    assert set(response.json) == {"id"} and isinstance(response.json["id"], int)
    expected = [((1, "two"), {"three": [3]})]
    assert await bounded(ws_events.done) == expected
    assert await bounded(rs_events.done) == expected
    await leave(ws)
    await leave(rs)


@pytest_twisted.ensureDeferred
async def test_signed_publish_is_accepted_and_acts_as_the_bridge_identity(bridge_router):
    """A request signed as Crossbar's clients sign it (HMAC-SHA256 over key, timestamp, seq, nonce and body,
    base64url) is accepted; the event is disclosed as published by authid "backend" when asked."""
    ws = await connect(target(bridge_router, "universal", "websocket"))
    events = Collector()
    from autobahn.wamp.types import SubscribeOptions
    await ws.subscribe(events, "com.example.signed", options=SubscribeOptions(details_arg="details"))
    body = json.dumps({"topic": "com.example.signed", "args": ["hi"], "options": {"disclose_me": True}}).encode()
    response = await post(bridge_router, "/signed/publish", body, query=signed_query(KEY, SECRET, body))
    assert response.status == 200, response.body
    (args, kwargs), = await bounded(events.done)
    assert args == ("hi",) and kwargs["details"].publisher_authid == "backend"
    await leave(ws)


@pytest.mark.parametrize("case,status,error", [
    ("no signature", 400, "wampgate.error.bad_request"),
    ("wrong secret", 401, "wamp.error.authentication_failed"),
    ("unknown key", 401, "wamp.error.authentication_failed"),
    ("body changed", 401, "wamp.error.authentication_failed"),
    ("stale timestamp", 401, "wamp.error.authentication_failed"),
    ("future timestamp", 401, "wamp.error.authentication_failed"),
    ("bad timestamp", 400, "wampgate.error.bad_request"),
    ("nonce not a number", 400, "wampgate.error.bad_request"),
])
@pytest_twisted.ensureDeferred
async def test_bad_signed_requests_are_refused(bridge_router, case, status, error):
    """Every way a signed request can be wrong gets its exact status and error, and nothing is published."""
    body = json.dumps({"topic": "com.example.x"}).encode()
    query = {
        "no signature": lambda: {k: v for k, v in signed_query(KEY, SECRET, body).items() if k != "signature"},
        "wrong secret": lambda: signed_query(KEY, "another-secret-of-enough-length!", body),
        "unknown key": lambda: signed_query("other-key", SECRET, body),
        "body changed": lambda: signed_query(KEY, SECRET, body + b" "),
        "stale timestamp": lambda: signed_query(KEY, SECRET, body, when=timestamp(-120)),
        "future timestamp": lambda: signed_query(KEY, SECRET, body, when=timestamp(+120)),
        "bad timestamp": lambda: signed_query(KEY, SECRET, body, when="yesterday"),
        "nonce not a number": lambda: {**signed_query(KEY, SECRET, body), "nonce": "abc"},
    }[case]()
    refused(await post(bridge_router, "/signed/publish", body, query=query), status, error)


@pytest_twisted.ensureDeferred
async def test_replayed_nonce_is_refused(bridge_router):
    """The same signed request sent twice: the first is accepted, the replay gets 401."""
    body = json.dumps({"topic": "com.example.once"}).encode()
    query = signed_query(KEY, SECRET, body, nonce=12345)
    assert (await post(bridge_router, "/signed/publish", body, query=query)).status == 200
    refused(await post(bridge_router, "/signed/publish", body, query=query), 401, "wamp.error.authentication_failed")


@pytest_twisted.ensureDeferred
async def test_signed_identity_is_authorized_like_a_session(bridge_router):
    """The signed bridge's role may publish under com.example. only: elsewhere 403 wamp.error.not_authorized."""
    body = json.dumps({"topic": "com.secret.x"}).encode()
    refused(await post(bridge_router, "/signed/publish", body, query=signed_query(KEY, SECRET, body)),
            403, "wamp.error.not_authorized")


@pytest_twisted.ensureDeferred
async def test_bearer_jwt_names_the_identity(bridge_router):
    """A bearer JWT verified by the listener's jwt authenticator gives the identity; a bad or missing one is 401."""
    ws = await connect(target(bridge_router, "universal", "websocket"))
    events = Collector()
    from autobahn.wamp.types import SubscribeOptions
    await ws.subscribe(events, "com.example.jwt", options=SubscribeOptions(details_arg="details"))
    claims = {"sub": "svc", "role": "backend", "iss": "idp", "aud": "wampgate", "exp": int(time.time()) + 60}
    token = pyjwt.encode(claims, JWT_SECRET, algorithm="HS256")
    body = {"topic": "com.example.jwt", "options": {"disclose_me": True}}
    response = await post(bridge_router, "/jwt/publish", body, headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200, response.body
    (_, kwargs), = await bounded(events.done)
    assert (kwargs["details"].publisher_authid, kwargs["details"].publisher_authrole) == ("svc", "backend")
    refused(await post(bridge_router, "/jwt/publish", body), 401, "wamp.error.authentication_failed")
    forged = pyjwt.encode(claims, b"x" * 32, algorithm="HS256")
    refused(await post(bridge_router, "/jwt/publish", body, headers={"Authorization": f"Bearer {forged}"}),
            401, "wamp.error.authentication_failed")
    await leave(ws)


@pytest.mark.parametrize("body,error", [
    (b"not json", "wampgate.error.bad_request"),
    (b"[1, 2]", "wampgate.error.bad_request"),
    (b'{"args": []}', "wampgate.error.bad_request"),
    (b'{"topic": 5}', "wampgate.error.bad_request"),
    (b'{"topic": "com.example.x", "args": {"a": 1}}', "wampgate.error.bad_request"),
    (b'{"topic": "com.example.x", "kwargs": [1]}', "wampgate.error.bad_request"),
    (b'{"topic": "com.example.x", "color": "red"}', "wampgate.error.bad_request"),
    (b'{"topic": "com.example.x", "options": {"acknowledge": false}}', "wampgate.error.bad_request"),
    (b'{"topic": "com.example.x", "options": {"exclude": "all"}}', "wampgate.error.bad_request"),
    (b'{"topic": "com..bad uri"}', "wamp.error.invalid_uri"),
    (b'{"topic": "com.example.x", "args": ' + b"[" * 80 + b"]" * 80 + b"}", "wamp.error.invalid_argument"),
])
@pytest_twisted.ensureDeferred
async def test_malformed_publish_bodies_are_400(bridge_router, body, error):
    """Bodies that are not a publish request of the right shape and types get HTTP 400 and the exact error."""
    refused(await post(bridge_router, "/publish", body), 400, error)


@pytest_twisted.ensureDeferred
async def test_http_level_refusals(bridge_router):
    """GET: 405 with Allow: POST; a body over max_body_size: 413 before it is read; a non-JSON media type: 415;
    TLS-only on plain HTTP: 403; a client outside allowed_addresses: 403."""
    response = await post(bridge_router, "/publish", method="GET", content_type=None)
    refused(response, 405, "wampgate.error.method_not_allowed")
    assert response.headers["allow"] == "POST"
    big = json.dumps({"topic": "com.example.x", "args": ["x" * 2000]}).encode()
    refused(await post(bridge_router, "/publish", big), 413, "wamp.error.payload_size_exceeded")
    refused(await post(bridge_router, "/publish", b"a=b", content_type="application/x-www-form-urlencoded"),
            415, "wampgate.error.unsupported_media_type")
    refused(await post(bridge_router, "/tls/publish", {"topic": "com.example.x"}), 403, "wampgate.error.tls_required")
    refused(await post(bridge_router, "/far/publish", {"topic": "com.example.x"}),
            403, "wampgate.error.address_not_allowed")


@pytest_twisted.ensureDeferred
async def test_body_on_a_websocket_or_static_path_is_still_refused(bridge_router):
    """Only bridge paths take a body: a POST with a body to the WebSocket path gets the plain 400 as before."""
    response = await post(bridge_router, "/ws", {"topic": "com.example.x"})
    assert response.status == 400 and response.body == b""


@pytest_twisted.ensureDeferred
async def test_flow_control_rate_limits_bridge_requests(bridge_router):
    """The URI rate for com.limited. (burst 2) is charged by bridge publishes as by WAMP ones: the third gets 429
    wampgate.error.rate_limited with Retry-After."""
    for _ in range(2):
        response = await post(bridge_router, "/publish", {"topic": "com.limited.x"})
        assert response.status == 200, response.body
    response = await post(bridge_router, "/publish", {"topic": "com.limited.x"})
    refused(response, 429, "wampgate.error.rate_limited")
    assert int(response.headers["retry-after"]) >= 1


# -- call --------------------------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_call_is_answered_by_a_websocket_callee(bridge_router):
    """POST /call reaches a WebSocket callee and answers {"args", "kwargs"}; the callee's error comes back as JSON
    with status 500, the router's errors with their own statuses (404 no_such_procedure, 504 timeout)."""
    callee = await connect(target(bridge_router, "universal", "websocket"))

    def add(a, b, scale=1):
        return (a + b) * scale

    def fail():
        raise ApplicationError("com.example.error.oops", "it broke", code=7)

    def never():
        return defer.Deferred()

    await callee.register(add, "com.example.add")
    await callee.register(fail, "com.example.fail")
    await callee.register(never, "com.example.never")
    response = await post(bridge_router, "/call", {"procedure": "com.example.add", "args": [1, 2],
                                                   "kwargs": {"scale": 10}})
    assert (response.status, response.json) == (200, {"args": [30], "kwargs": {}})
    response = await post(bridge_router, "/call", {"procedure": "com.example.fail"})
    assert response.status == 500
    assert response.json == {"error": "com.example.error.oops", "message": "it broke", "args": ["it broke"],
                             "kwargs": {"code": 7}}
    refused(await post(bridge_router, "/call", {"procedure": "com.example.nobody"}),
            404, "wamp.error.no_such_procedure")
    refused(await post(bridge_router, "/call", {"procedure": "com.example.never", "options": {"timeout": 0.2}}),
            504, "wamp.error.timeout")
    refused(await post(bridge_router, "/call", {"procedure": "com.example.add", "options": {"timeout": -1}}),
            400, "wampgate.error.bad_request")
    await leave(callee)


@pytest_twisted.ensureDeferred
async def test_signed_call_is_authorized(bridge_router):
    """The signed bridge may call com.example. procedures only: another gets 403 before reaching any callee."""
    body = json.dumps({"procedure": "com.other.proc"}).encode()
    refused(await post(bridge_router, "/signed/call", body, query=signed_query(KEY, SECRET, body)),
            403, "wamp.error.not_authorized")


# -- webhook -----------------------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_webhook_publishes_any_body_with_selected_headers(bridge_router):
    """Any POST body (here form data) becomes one event on the configured topic: {"body": text, "headers": only
    the configured ones}; the response is 202 with the publication id."""
    ws = await connect(target(bridge_router, "universal", "websocket"))
    events = Collector()
    await ws.subscribe(events, "com.example.github")
    response = await post(bridge_router, "/hooks/github", b"a=1&b=2", content_type="application/x-www-form-urlencoded",
                          headers={"X-GitHub-Event": "push", "X-Secret": "not copied"})
    assert response.status == 202 and isinstance(response.json["id"], int)
    (args, kwargs), = await bounded(events.done)
    assert args == ({"body": "a=1&b=2", "headers": {"content-type": ["application/x-www-form-urlencoded"],
                                                    "x-github-event": ["push"]}},)
    await leave(ws)


# -- after the attacks -------------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_router_serves_fresh_clients_after_bad_requests(bridge_router):
    """After malformed, oversized and unauthenticated requests, fresh WAMP clients still complete a round trip,
    and the bridge still answers."""
    for body in (b"{", b"x" * 5000, b'{"topic": 1}'):
        await post(bridge_router, "/publish", body)
    await post(bridge_router, "/signed/publish", b"{}")
    await still_serves(bridge_router)
    assert (await post(bridge_router, "/publish", {"topic": "com.example.ok"})).status == 200


@pytest_twisted.ensureDeferred
async def test_bridge_sessions_leave_with_the_router(bridge_router):
    """A bridge request joins one router-side session for its identity and address; it is listed in the realm
    like any session and leaves when the router stops."""
    assert (await post(bridge_router, "/publish", {"topic": "com.example.a"})).status == 200
    assert (await post(bridge_router, "/publish", {"topic": "com.example.b"})).status == 200
    bridged = [p for p in bridge_router.realm().sessions.values() if p.authid == "http-bridge"]
    assert len(bridged) == 1
    await bridge_router.stop()
    await eventually(lambda: not bridge_router.realm().sessions, "bridge sessions gone")


@pytest_twisted.ensureDeferred
async def test_forwarded_client_address_is_checked(bridge_router):
    """Behind a trusted proxy (127.0.0.1 here) the client is the X-Forwarded-For address: an unauthenticated
    bridge refuses a forwarded non-loopback client (403); one allowing remote clients refuses a client outside its
    allowed_addresses (403) and serves one inside (10.1.2.3)."""
    forwarded = {"X-Forwarded-For": "203.0.113.5"}
    refused(await post(bridge_router, "/publish", {"topic": "com.example.x"}, headers=forwarded),
            403, "wampgate.error.address_not_allowed")
    refused(await post(bridge_router, "/far/publish", {"topic": "com.example.x"}, headers=forwarded),
            403, "wampgate.error.address_not_allowed")
    inside = {"X-Forwarded-For": "10.1.2.3"}
    response = await post(bridge_router, "/far/publish", {"topic": "com.example.x"}, headers=inside)
    assert response.status == 200, response.body


@pytest_twisted.ensureDeferred
async def test_chunked_body_is_refused_with_411(bridge_router):
    """A body without Content-Length (chunked) is refused before it is read: 411 and the JSON error, then close."""
    client = await open_tcp(port(bridge_router))
    client.write(b"POST /publish HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n")
    head, _, body = (await client.wait_lost()).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 411 ")
    assert json.loads(body)["error"] == "wampgate.error.length_required"


@pytest_twisted.ensureDeferred
async def test_client_going_away_cancels_its_call(bridge_router):
    """An HTTP client that disconnects while its call runs: the call is canceled (the callee is interrupted), so
    nothing stays pending in the dealer."""
    callee = await connect(target(bridge_router, "universal", "websocket"))
    started = defer.Deferred()

    def slow():
        started.callback(None)
        return defer.Deferred()

    await callee.register(slow, "com.example.slow")
    body = json.dumps({"procedure": "com.example.slow", "options": {"timeout": 60}}).encode()
    client = await open_tcp(port(bridge_router))
    client.write(b"POST /call HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (len(body), body))
    await bounded(started)
    assert bridge_router.realm().dealer.pending_calls()
    client.close()
    await eventually(lambda: not bridge_router.realm().dealer.pending_calls(), "the call canceled")
    await leave(callee)


@pytest_twisted.ensureDeferred
async def test_webhook_body_that_is_not_utf8(bridge_router):
    """A binary webhook body is given as base64 (body_base64) instead of text."""
    ws = await connect(target(bridge_router, "universal", "websocket"))
    events = Collector()
    await ws.subscribe(events, "com.example.github")
    response = await post(bridge_router, "/hooks/github", b"\xff\x00\xfe", content_type="application/octet-stream")
    assert response.status == 202
    (args, _), = await bounded(events.done)
    assert args == ({"body_base64": "/wD+", "headers": {"content-type": ["application/octet-stream"]}},)
    await leave(ws)
