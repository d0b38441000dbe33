"""A peer that breaks the WAMP protocol gets ABORT wamp.error.protocol_violation with a generic text, then the
transport closes (WebSocket close code 1002); refused HELLOs get the specific ABORT reason; an invalid URI in an
established session is an ERROR and the session goes on. After every attack a fresh client still works.

Every case runs over WebSocket with JSON (on the universal listener) and over RawSocket with MessagePack (on the
RawSocket-only listener), except where the case only exists for one (a binary frame on a JSON WebSocket session).
"""

from __future__ import annotations

import json
from functools import partial

import msgpack
import pytest
import pytest_twisted

from tests.support import raw, wait
from tests.support.raw import ABORT, ERROR, EVENT, PUBLISH, SUBSCRIBE, SUBSCRIBED, hello

PROTOCOL_VIOLATION = "wamp.error.protocol_violation"
CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1002

# A token put into offending input wherever it fits; the router's reply must never contain it.
MARKER = "zq7leak"
TOPIC = f"com.example.{MARKER}"

WEBSOCKET = ("universal", "websocket", "json")
RAWSOCKET = ("rawsocket", "rawsocket", "msgpack")
TRANSPORTS = pytest.mark.parametrize("via", [WEBSOCKET, RAWSOCKET], ids=["websocket-json", "rawsocket-msgpack"])


class Raw:
    """Bytes sent as they are, not serialized; `binary` picks the WebSocket frame type (None: the serializer's)."""

    def __init__(self, data: bytes, binary: bool | None = None):
        self.data = data
        self.binary = binary


@pytest.fixture
def clients():
    tracker = raw.Tracker()
    yield tracker
    tracker.close_all()


async def open_client(router, via, clients):
    listener, transport, serializer = via
    port = router.port(listener)
    if transport == "websocket":
        return clients(await raw.open_websocket(port, serializer))
    return clients(await raw.open_rawsocket(port, serializer))


def send(client, item) -> None:
    if isinstance(item, Raw):
        if isinstance(client, raw.RawWebSocket):
            client.send_raw(item.data, item.binary)
        else:
            client.tcp.write(raw.frame(item.data))
    else:
        client.send(item)


async def assert_closed(client, websocket_code: int) -> None:
    """The transport ends: a WebSocket close with `websocket_code`, or the RawSocket connection is lost."""
    if isinstance(client, raw.RawWebSocket):
        _clean, code, _reason = await client.wait_closed()
        assert code == websocket_code
    else:
        await client.wait_lost()


def assert_generic(message) -> None:
    """Nothing the client sent comes back in the router's text."""
    text = json.dumps(message, default=repr)
    assert MARKER not in text, f"the router echoed client input: {text}"


async def expect_abort(client, reason: str, websocket_code: int) -> list:
    """The next message is ABORT with `reason` and a generic text, and then the transport closes."""
    seen = len(client.messages)
    messages = await client.wait_messages(seen + 1)
    abort = messages[seen]
    assert abort[0] == ABORT and abort[2] == reason, abort
    assert isinstance(abort[1], dict) and isinstance(abort[1].get("message", ""), str)
    assert_generic(abort)
    await assert_closed(client, websocket_code)
    assert client.messages[seen:] == [abort], "nothing may follow ABORT"
    return abort


# After each test: WebSocket on the universal listener, RawSocket on the RawSocket-only one.
still_serves = partial(wait.still_serves, rawsocket_listener="rawsocket")


# -- violations: ABORT wamp.error.protocol_violation, then close --------------------------------------------------

BEFORE_HELLO = "before-hello"
ESTABLISHED = "established"

VIOLATIONS = {
    "subscribe-before-hello": (BEFORE_HELLO, [SUBSCRIBE, 1, {}, TOPIC]),
    "publish-before-hello": (BEFORE_HELLO, [PUBLISH, 1, {}, TOPIC, [MARKER]]),
    "second-hello": (ESTABLISHED, hello("realm1", authid=MARKER)),
    "unknown-type-before-hello": (BEFORE_HELLO, [999, MARKER, {}]),
    "unknown-type-established": (ESTABLISHED, [999, MARKER, {}]),
    "welcome-from-client": (BEFORE_HELLO, [2, 1, {}]),
    "welcome-from-client-established": (ESTABLISHED, [2, 1, {MARKER: 1}]),
    "event-from-client": (ESTABLISHED, [EVENT, 1, 2, {}, [MARKER]]),
    "message-type-not-an-integer": (BEFORE_HELLO, ["1", "realm1", {"roles": raw.CLIENT_ROLES}]),
    "hello-without-roles": (BEFORE_HELLO, [1, "realm1", {"authid": MARKER}]),
    "hello-too-short": (BEFORE_HELLO, [1]),
    "hello-empty-roles": (BEFORE_HELLO, [1, "realm1", {"roles": {}, "authid": MARKER}]),
    "hello-unknown-role": (BEFORE_HELLO, [1, "realm1", {"roles": {MARKER: {}}}]),
    "hello-roles-not-a-dict": (BEFORE_HELLO, [1, "realm1", {"roles": [MARKER]}]),
    "hello-authmethods-not-a-list": (BEFORE_HELLO, [1, "realm1", {"roles": raw.CLIENT_ROLES, "authmethods": MARKER}]),
    "hello-authid-not-a-string": (BEFORE_HELLO, [1, "realm1", {"roles": raw.CLIENT_ROLES, "authid": 5}]),
    "subscribe-request-id-not-an-integer": (ESTABLISHED, [SUBSCRIBE, MARKER, {}, "com.example.topic"]),
    "publish-options-not-a-dict": (ESTABLISHED, [PUBLISH, 1, [MARKER], "com.example.topic"]),
    "empty-array-before-hello": (BEFORE_HELLO, []),
    "empty-array-established": (ESTABLISHED, []),
    "non-array-object": (BEFORE_HELLO, {MARKER: [1, "realm1", {}]}),
    "non-array-number": (ESTABLISHED, 42),
    "non-array-string": (ESTABLISHED, MARKER),
}


@TRANSPORTS
@pytest.mark.parametrize("case", list(VIOLATIONS))
@pytest_twisted.ensureDeferred
async def test_violation_is_aborted(router, clients, via, case):
    """Each malformed or out-of-place message gets ABORT wamp.error.protocol_violation with a text that does not
    echo the input, then the transport closes (WebSocket: 1002, RawSocket: connection lost)."""
    phase, message = VIOLATIONS[case]
    client = await open_client(router, via, clients)
    if phase == ESTABLISHED:
        await client.join()
    send(client, message)
    await expect_abort(client, PROTOCOL_VIOLATION, CLOSE_PROTOCOL_ERROR)
    await still_serves(router)


WRONG_TYPE_URIS = {
    "hello-realm-integer": (BEFORE_HELLO, [1, 42, {"roles": raw.CLIENT_ROLES}]),
    "publish-topic-integer": (ESTABLISHED, [PUBLISH, 1, {"acknowledge": True}, 42]),
    "subscribe-topic-integer": (ESTABLISHED, [SUBSCRIBE, 1, {}, 42]),
    "subscribe-topic-list": (ESTABLISHED, [SUBSCRIBE, 1, {}, [MARKER]]),
}


@TRANSPORTS
@pytest.mark.parametrize("case", list(WRONG_TYPE_URIS))
@pytest_twisted.ensureDeferred
async def test_uri_field_of_wrong_type_is_a_protocol_violation(router, clients, via, case):
    """A realm or topic that is not a string at all (the integer 42, a list) is malformed, not merely an invalid
    URI: ABORT wamp.error.protocol_violation, then close with 1002."""
    phase, message = WRONG_TYPE_URIS[case]
    client = await open_client(router, via, clients)
    if phase == ESTABLISHED:
        await client.join()
    send(client, message)
    await expect_abort(client, PROTOCOL_VIOLATION, CLOSE_PROTOCOL_ERROR)
    await still_serves(router)


WEBSOCKET_MSGPACK = ("universal", "websocket", "msgpack")

UNDECODABLE = {
    "websocket-json": [
        ("truncated-json", Raw(b'[1, "realm1", {"' + MARKER.encode())),
        ("not-json-at-all", Raw(MARKER.encode() + b" hello")),
        ("binary-frame-on-json-session", Raw(json.dumps(hello()).encode(), binary=True)),
        ("two-json-values", Raw(json.dumps(hello()).encode() * 2)),
    ],
    "rawsocket-msgpack": [
        ("never-used-msgpack-octet", Raw(b"\xc1" + MARKER.encode())),
        ("truncated-msgpack", Raw(msgpack.packb(hello())[:-3])),
        ("trailing-bytes-after-msgpack", Raw(msgpack.packb(hello()) + MARKER.encode())),
        ("empty-payload", Raw(b"")),
    ],
}


@pytest.mark.parametrize(
    "via,case,payload",
    [(WEBSOCKET, case, payload) for case, payload in UNDECODABLE["websocket-json"]]
    + [(RAWSOCKET, case, payload) for case, payload in UNDECODABLE["rawsocket-msgpack"]]
    + [(WEBSOCKET_MSGPACK, "text-frame-on-msgpack-session", Raw(json.dumps(hello()).encode(), binary=False))],
    ids=[f"websocket-json-{c}" for c, _ in UNDECODABLE["websocket-json"]]
    + [f"rawsocket-msgpack-{c}" for c, _ in UNDECODABLE["rawsocket-msgpack"]]
    + ["websocket-msgpack-text-frame-on-msgpack-session"],
)
@pytest_twisted.ensureDeferred
async def test_undecodable_payload_is_aborted(router, clients, via, case, payload):
    """Bytes the session's serializer cannot decode (or a binary frame on a JSON WebSocket session, a text frame
    on a MessagePack one) are a protocol violation: ABORT wamp.error.protocol_violation with a generic text, then
    close (1002)."""
    client = await open_client(router, via, clients)
    send(client, payload)
    await expect_abort(client, PROTOCOL_VIOLATION, CLOSE_PROTOCOL_ERROR)
    await still_serves(router)


# -- refused HELLOs: specific reasons -------------------------------------------------------------------------------

REFUSED_HELLOS = {
    "unknown-realm": (hello(f"com.{MARKER}.realm"), "wamp.error.no_such_realm"),
    "only-ticket-on-anonymous-listener": (
        hello("realm1", authmethods=["ticket"], authid=MARKER),
        "wamp.error.no_auth_method",
    ),
    "realm-not-a-uri": (hello(f"realm {MARKER}"), "wamp.error.invalid_uri"),
    "realm-with-empty-component": (hello(f"realm1..{MARKER}"), "wamp.error.invalid_uri"),
}


@TRANSPORTS
@pytest.mark.parametrize("case", list(REFUSED_HELLOS))
@pytest_twisted.ensureDeferred
async def test_refused_hello_is_aborted_with_its_reason(router, clients, via, case):
    """A well-formed HELLO the router cannot accept gets ABORT with the specific reason (unknown realm, no
    acceptable authmethod, realm not a valid URI) and a text that does not echo the input; then the transport
    closes normally (WebSocket 1000)."""
    message, reason = REFUSED_HELLOS[case]
    client = await open_client(router, via, clients)
    send(client, message)
    await expect_abort(client, reason, CLOSE_NORMAL)
    await still_serves(router)


# -- invalid URIs in an established session: ERROR, and the session goes on -----------------------------------------


async def assert_session_goes_on(client, request: int = 900) -> None:
    """The session still answers: SUBSCRIBE gets SUBSCRIBED for the same request id as the next message."""
    seen = len(client.messages)
    client.send([SUBSCRIBE, request, {}, "com.example.after"])
    messages = await client.wait_messages(seen + 1)
    assert messages[seen][:2] == [SUBSCRIBED, request], messages[seen:]
    assert isinstance(messages[seen][2], int)


INVALID_URI_REQUESTS = {
    "publish-empty-component": [PUBLISH, 7, {"acknowledge": True}, f"a..{MARKER}"],
    "publish-with-space": [PUBLISH, 7, {"acknowledge": True}, f"com.example.{MARKER} x"],
    "subscribe-empty-component-exact": [SUBSCRIBE, 7, {}, f"a..{MARKER}"],
}


@TRANSPORTS
@pytest.mark.parametrize("case", list(INVALID_URI_REQUESTS))
@pytest_twisted.ensureDeferred
async def test_invalid_uri_in_established_session_is_an_error(router, clients, via, case):
    """A PUBLISH (acknowledged) or SUBSCRIBE whose URI autobahn's parser rejects gets ERROR wamp.error.invalid_uri
    for that request, not ABORT; the text does not echo the URI, and the same session then works normally."""
    message = INVALID_URI_REQUESTS[case]
    client = await open_client(router, via, clients)
    await client.join()
    client.send(message)
    error = (await client.wait_messages(2))[1]
    assert error[:5] == [ERROR, message[0], 7, {}, "wamp.error.invalid_uri"], error
    assert_generic(error)
    await assert_session_goes_on(client)
    await still_serves(router)


@TRANSPORTS
@pytest_twisted.ensureDeferred
async def test_unacknowledged_publish_with_invalid_uri_gets_no_error(router, clients, via):
    """A PUBLISH without acknowledge=true whose topic is invalid gets no reply at all (WAMP: ERROR for PUBLISH
    only when acknowledged); the next reply the client sees is the SUBSCRIBED for its next request."""
    client = await open_client(router, via, clients)
    await client.join()
    client.send([PUBLISH, 7, {}, f"a..{MARKER}"])
    await assert_session_goes_on(client)
    await still_serves(router)


@pytest_twisted.ensureDeferred
async def test_unacknowledged_publish_refused_by_broker_keeps_autobahn_client(router):
    """An Autobahn client that publishes without acknowledge to a topic the broker refuses (the reserved
    'wamp.' prefix) stays attached: the router sends nothing back, and the client's next round trip works."""
    from autobahn.wamp.types import PublishOptions

    from tests.support.clients import Collector, Target, connect, leave

    where = Target(port=router.port("universal"))
    client = await raw.bounded(connect(where))
    events = Collector()
    await raw.bounded(client.subscribe(events, "com.example.after"))
    client.publish("wamp.reserved.topic", "x")
    await raw.bounded(client.publish("com.example.after", "ok", options=PublishOptions(acknowledge=True,
                                                                                       exclude_me=False)))
    assert await raw.bounded(events.done) == [(("ok",), {})]
    assert client.is_attached()
    await raw.bounded(leave(client))
    await still_serves(router)
