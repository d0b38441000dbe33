"""Transport-level limits end to end, against a real router in the test process: message and frame sizes,
messages that are cheap to send but expensive to decode, opening handshakes that never finish, half-open
connections, the HTTP side of the WebSocket upgrade (Origin allow-list, request head limits, methods and versions,
permessage-deflate and compression bombs, the Server header) and socket options. Each refusal is checked with its
exact close code, ABORT reason or HTTP status, beside a client that keeps being served.

Every wait is bounded in time, every loop in count; only 127.0.0.1 is used.
"""

from __future__ import annotations

import json
import resource
import socket

import pytest
import pytest_twisted
from twisted.internet import defer

from tests.support import raw
from tests.support.flow import (
    HALF_REQUEST,
    PROTOCOL_VIOLATION,
    count,
    eventually,
    exchange,
    joined_rawsocket,
    joined_ws,
    main_listener,
    now,
    publish,
    round_trip,
    running,
    sleep,
    split,
    toml,
    upgrade,
)
from tests.support.raw import bounded, http_request


# -- message and frame sizes --------------------------------------------------------------------------------------

SMALL = "max_message_size = 4096"


@pytest_twisted.ensureDeferred
async def test_oversized_websocket_message_closes_with_1009(tmp_path):
    """max_message_size = 4096: a 5000-byte WebSocket message closes the connection with code 1009 (message too
    big); another client is served."""
    async with running(tmp_path, listeners=main_listener(extra=SMALL)) as (router, clients):
        port = router.port("main")
        client = await joined_ws(clients, port)
        client.send(publish(1, payload="x" * 5000))
        was_clean, code, _ = await client.wait_closed(3.0)
        assert await round_trip(port) < 2.0
        assert code == 1009


@pytest_twisted.ensureDeferred
async def test_oversized_websocket_message_closes_the_connection(tmp_path):
    """max_message_size = 4096: a 5000-byte WebSocket message ends the connection at once (whatever the code),
    and another client is served."""
    async with running(tmp_path, listeners=main_listener(extra=SMALL)) as (router, clients):
        port = router.port("main")
        client = await joined_ws(clients, port)
        fits = split(await exchange(client, [publish(1, payload="x" * 3000)]), raw.PUBLISHED)[0]
        assert fits
        client.send(publish(2, payload="x" * 5000))
        await client.wait_closed(3.0)
        assert not [m for m in client.messages if m[0] == raw.PUBLISHED and m[1] == 2]
        assert await round_trip(port) < 2.0


@pytest_twisted.ensureDeferred
async def test_oversized_rawsocket_frame_closes_the_connection(tmp_path):
    """max_message_size = 4096: the RawSocket handshake reply announces 2**(9+3) = 4096, and a frame header
    announcing 5000 bytes closes the connection before the payload is read; another client is served."""
    async with running(tmp_path, listeners=main_listener(extra=SMALL)) as (router, clients):
        port = router.port("main")
        client = await joined_rawsocket(clients, port)
        assert client.handshake_reply[1] >> 4 == 3
        client.tcp.write(bytes((0,)) + (5000).to_bytes(3, "big"))
        await client.wait_lost(3.0)
        assert await round_trip(port, transport="rawsocket") < 2.0


@pytest.mark.parametrize("fragmented", [True, False], ids=["fragments-within-max-frame-size", "one-big-frame"])
@pytest_twisted.ensureDeferred
async def test_websocket_frame_over_max_frame_size(tmp_path, fragmented):
    """max_frame_size = 1024, max_message_size = 4096: a 3000-byte message in 1000-byte fragments is accepted
    (PUBLISHED), the same message as one 3000-byte frame ends the connection; another client is served."""
    listeners = main_listener(extra=SMALL, websocket="max_frame_size = 1024")
    async with running(tmp_path, listeners=listeners) as (router, clients):
        port = router.port("main")
        client = await joined_ws(clients, port)
        payload = json.dumps(publish(1, payload="x" * 2950)).encode()
        assert 2900 < len(payload) < 4096
        if fragmented:
            client.protocol.sendMessage(payload, False, fragmentSize=1000)
            replies = await client.wait_messages(2, 3.0)
            assert replies[1][0] == raw.PUBLISHED
        else:
            client.send_raw(payload)
            await client.wait_closed(3.0)
            assert len(client.messages) == 1
        assert await round_trip(port) < 2.0


# -- cheap to send, expensive to decode ---------------------------------------------------------------------------

EXPENSIVE = {
    "json-nested-100000": ("json", b"[" * 100_000 + b"]" * 100_000),
    "json-100000-digits": ("json", b'[16, 1, {}, "com.example.t", [' + b"7" * 100_000 + b"]]"),
    "msgpack-nested-100000": ("msgpack", b"\x91" * 100_000 + b"\xc0"),
    "cbor-nested-100000": ("cbor", b"\x81" * 100_000 + b"\xf6"),
}


@pytest.mark.parametrize("name", list(EXPENSIVE))
@pytest_twisted.ensureDeferred
async def test_expensive_to_decode_message_is_refused_quickly(tmp_path, name):
    """A message within max_message_size but built to be expensive to decode (100,000 nesting levels, a
    100,000-digit number) is refused with ABORT wamp.error.protocol_violation and close 1002 within 2 s, and a
    publish round trip of another client, started at the same moment, completes within 3 s."""
    serializer, payload = EXPENSIVE[name]
    async with running(tmp_path) as (router, clients):
        port = router.port("main")
        attackers = [await joined_ws(clients, port, serializer) for _ in range(3)]
        started = now()
        for attacker in attackers:
            attacker.send_raw(payload)
        trip = await bounded(round_trip(port), 5.0)
        for attacker in attackers:
            _, code, _ = await attacker.wait_closed(2.0)
            assert code == 1002
            assert [m[2] for m in attacker.messages if isinstance(m, list) and m[0] == raw.ABORT] == [
                PROTOCOL_VIOLATION]
        refused_after = now() - started
        print(f"{name}: refused within {refused_after:.3f} s; concurrent round trip {trip:.3f} s")
        assert trip < 3.0 and refused_after < 2.5


@pytest_twisted.ensureDeferred
async def test_deeply_nested_msgpack_over_rawsocket_is_refused(tmp_path):
    """The same over RawSocket: 100,000 nested msgpack arrays get ABORT protocol_violation and the connection is
    closed; another RawSocket client is served."""
    async with running(tmp_path) as (router, clients):
        port = router.port("main")
        attacker = await joined_rawsocket(clients, port)
        attacker.tcp.write(raw.frame(EXPENSIVE["msgpack-nested-100000"][1]))
        await attacker.wait_lost(2.0)
        assert [m[2] for m in attacker.messages if isinstance(m, list) and m[0] == raw.ABORT] == [PROTOCOL_VIOLATION]
        assert await round_trip(port, transport="rawsocket") < 2.0


# -- connections that never finish -------------------------------------------------------------------------------


TRANSPORTS = pytest.mark.parametrize("transports", [("websocket",), ("websocket", "rawsocket")],
                                     ids=["websocket", "universal"])


@TRANSPORTS
@pytest_twisted.ensureDeferred
async def test_stalled_websocket_opening_handshake_is_dropped(tmp_path, transports):
    """A client that connects and sends half an upgrade request is dropped once open_handshake_timeout (2 s) is
    over: after more than 1 s (autobahn's timers run in whole seconds) and within 3 s; a client beside it
    joins and completes a round trip meanwhile."""
    listeners = main_listener(transports=transports, websocket="open_handshake_timeout = 2.0")
    async with running(tmp_path, listeners=listeners) as (router, clients):
        port = router.port("main")
        stalled = clients(await raw.open_tcp(port))
        started = now()
        stalled.write(HALF_REQUEST)
        assert await round_trip(port) < 2.0
        await stalled.wait_lost(3.5)
        assert 0.9 <= now() - started < 3.0


@pytest_twisted.ensureDeferred
async def test_stalled_request_on_a_static_files_listener_is_dropped(tmp_path):
    """A listener with static_dir (twisted.web in front of the WebSocket) drops a client that sends half a request
    head and stalls, within open_handshake_timeout / hello_timeout (1 s) plus slack, like a plain WebSocket
    listener does."""
    (tmp_path / "static").mkdir()
    listeners = main_listener(transports=("websocket",),
                              websocket='static_dir = "static"\nopen_handshake_timeout = 1.0')
    async with running(tmp_path, listeners=listeners, limits={"hello_timeout": 1.0}) as (router, clients):
        stalled = clients(await raw.open_tcp(router.port("main")))
        stalled.write(HALF_REQUEST)
        await stalled.wait_lost(3.5)


async def _at_fraction(low: float, high: float) -> None:
    """Wait (at most ~1 s) until the clock's fractional second is within [low, high)."""
    for _ in range(200):
        if low <= now() % 1.0 < high:
            return
        await sleep(0.005)
    raise AssertionError("clock never reached the wanted fraction")


@TRANSPORTS
@pytest_twisted.ensureDeferred
async def test_a_client_within_open_handshake_timeout_is_not_dropped(tmp_path, transports):
    """open_handshake_timeout = 0.5: a client that sends half its upgrade request, then the rest 0.3 s later,
    is upgraded (101) — it was within its time — whatever the clock's fractional second when it connected."""
    listeners = main_listener(transports=transports, websocket="open_handshake_timeout = 0.5")
    async with running(tmp_path, listeners=listeners) as (router, clients):
        port = router.port("main")
        await _at_fraction(0.05, 0.3)
        slow = clients(await raw.open_tcp(port))
        slow.write(HALF_REQUEST)
        await sleep(0.3)
        assert not slow.lost, "dropped while still within open_handshake_timeout"
        slow.write(b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: wamp.2.json\r\n\r\n")
        response = await slow.until(lambda: b"\r\n\r\n" in slow.received and bytes(slow.received), 2.0)
        assert response.startswith(b"HTTP/1.1 101")


@pytest_twisted.ensureDeferred
async def test_a_thousand_half_open_connections_do_not_keep_a_client_out(tmp_path):
    """1000 TCP connections that send nothing (max_connections and max_connections_per_peer raised to 5000) do
    not stop a new client from joining and completing a round trip within 5 s, and the router drops them all
    once hello_timeout (1.5 s) has passed."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096 and (hard == resource.RLIM_INFINITY or hard >= 4096):
        resource.setrlimit(resource.RLIMIT_NOFILE, (4096, hard))
    if resource.getrlimit(resource.RLIMIT_NOFILE)[0] < 4096:
        pytest.skip(f"needs 4096 file descriptors; RLIMIT_NOFILE is {soft}/{hard}")
    flow = {"max_connections": 5000, "max_connections_per_peer": 5000}
    async with running(tmp_path, flow=flow, limits={"hello_timeout": 1.5}) as (router, clients):
        port = router.port("main")
        idle = []
        for _ in range(20):  # in batches of 50: the listen backlog is 50
            batch = await bounded(defer.DeferredList([defer.ensureDeferred(raw.open_tcp(port)) for _ in range(50)],
                                                     consumeErrors=True), 10.0)
            idle.extend(clients(tcp) for ok, tcp in batch if ok)
        assert len(idle) == 1000 and not any(tcp.lost for tcp in idle)
        started = now()
        trip = await bounded(round_trip(port), 5.0)
        print(f"join + round trip beside 1000 idle connections: {now() - started:.3f} s (trip {trip:.3f} s)")
        await eventually(lambda: all(tcp.lost for tcp in idle), timeout=5.0)
        assert count(router, "flow_reject") == 0


# -- the HTTP opening handshake -----------------------------------------------------------------------------------



@pytest_twisted.ensureDeferred
async def test_origin_allow_list(tmp_path):
    """allowed_origins = ["http://app.example"]: an upgrade with Origin http://evil.example or "null" is refused
    with HTTP 403 (handshake_refused reason origin counts both); http://app.example (any case) and no Origin
    header at all are upgraded (101); a listener that lists "null" accepts it."""
    listeners = main_listener(websocket='allowed_origins = ["http://app.example"]') + main_listener(
        "nullok", websocket='allowed_origins = ["null"]')
    async with running(tmp_path, listeners=listeners) as (router, _):
        port = router.port("main")
        for origin, expected in [("http://evil.example", 403), ("null", 403), ("http://app.example", 101),
                                 ("HTTP://App.Example", 101), (None, 101), ("http://app.example.evil.example", 403),
                                 ("http://app.example:8080", 403)]:
            extra = {"Origin": origin} if origin is not None else {}
            status, _, _ = await http_request(port, upgrade(extra=extra))
            assert status == expected, (origin, status)
        assert count(router, "handshake_refused", reason="origin", listener="main") == 4
        status, _, _ = await http_request(router.port("nullok"), upgrade(extra={"Origin": "null"}))
        assert status == 101
        assert await round_trip(port) < 2.0


@pytest.mark.parametrize(
    "request_bytes, expected",
    [
        (upgrade("/ws?" + "a" * 9000), 414),
        (upgrade(extra={f"X-Filler-{i}": "b" * 1000 for i in range(20)}), 431),
        (upgrade(extra={f"X-H{i}": "1" for i in range(70)}), 431),
    ],
    ids=["request-line-over-8KiB", "header-block-over-16KiB", "70-headers"],
)
@pytest_twisted.ensureDeferred
async def test_oversized_request_head_is_refused(tmp_path, request_bytes, expected):
    """A request line over max_request_line (8 KiB) gets 414; a header block over max_header_size or more than
    max_headers (64) headers get 431; the router keeps serving."""
    async with running(tmp_path) as (router, _):
        port = router.port("main")
        status, _, _ = await http_request(port, request_bytes)
        assert status == expected
        assert await round_trip(port) < 2.0


@pytest.mark.parametrize("method, version, expected", [("POST", "HTTP/1.1", 405), ("GET", "HTTP/1.0", 505)])
@pytest_twisted.ensureDeferred
async def test_only_get_http_1_1_upgrades(tmp_path, method, version, expected):
    """An upgrade request with POST is refused with 405, one over HTTP/1.0 with 505."""
    async with running(tmp_path) as (router, _):
        status, _, _ = await http_request(router.port("main"), upgrade(method=method, version=version))
        assert status == expected


@pytest.mark.parametrize("compression", [False, True])
@pytest_twisted.ensureDeferred
async def test_permessage_deflate_only_when_enabled(tmp_path, compression):
    """A client offering permessage-deflate gets a 101 without Sec-WebSocket-Extensions by default, and with
    permessage-deflate when the listener has compression = true."""
    listeners = main_listener(websocket=f"compression = {toml(compression)}")
    async with running(tmp_path, listeners=listeners) as (router, _):
        offer = {"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"}
        status, headers, _ = await http_request(router.port("main"), upgrade(extra=offer))
        assert status == 101
        if compression:
            assert headers["sec-websocket-extensions"][0].startswith("permessage-deflate")
        else:
            assert "sec-websocket-extensions" not in headers


@pytest_twisted.ensureDeferred
async def test_compression_bomb_closes_with_1009(tmp_path):
    """compression = true, max_message_size = 4096: a ~1 KiB compressed frame inflating to 1 MiB closes the
    connection with 1009."""
    listeners = main_listener(extra=SMALL, websocket="compression = true")
    async with running(tmp_path, listeners=listeners) as (router, clients):
        client = await joined_ws(clients, router.port("main"), compression=True)
        client.send_raw(b"[" + b" " * (1024 * 1024) + b"]")
        _, code, _ = await client.wait_closed(3.0)
        assert code == 1009


@pytest_twisted.ensureDeferred
async def test_compression_bomb_is_refused(tmp_path):
    """compression = true, max_message_size = 4096: a compressed client joins and publishes normally, but a
    small compressed frame that inflates to 1 MiB ends its connection within 2 s; another client is served."""
    listeners = main_listener(extra=SMALL, websocket="compression = true")
    async with running(tmp_path, listeners=listeners) as (router, clients):
        port = router.port("main")
        client = await joined_ws(clients, port, compression=True)
        assert client.protocol._perMessageCompress is not None
        assert split(await exchange(client, [publish(1, payload="y" * 3000)]), raw.PUBLISHED)[0]
        started = now()
        client.send_raw(b"[" + b" " * (1024 * 1024) + b"]")
        await client.wait_closed(3.0)
        assert now() - started < 2.0
        assert await round_trip(port) < 2.0


@pytest_twisted.ensureDeferred
async def test_server_header_is_configurable_and_removable(tmp_path):
    """server_header = "Gatekeeper" puts exactly that in the 101's Server header; server_header = "" sends none
    (and no refusal names a library either)."""
    listeners = main_listener(websocket='server_header = "Gatekeeper"') + main_listener(
        "bare", websocket='server_header = ""')
    async with running(tmp_path, listeners=listeners) as (router, _):
        status, headers, _ = await http_request(router.port("main"), upgrade())
        assert status == 101 and headers["server"] == ["Gatekeeper"]
        status, headers, _ = await http_request(router.port("bare"), upgrade())
        assert status == 101 and "server" not in headers
        status, headers, body = await http_request(router.port("bare"), upgrade("/elsewhere"))
        assert status == 404 and "server" not in headers
        assert b"autobahn" not in body.lower()


# -- transport options -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["websocket", "rawsocket"])
@pytest_twisted.ensureDeferred
async def test_wamp_connections_disable_nagle(tmp_path, transport):
    """Every WAMP connection's socket has TCP_NODELAY set, so a small reply (PUBLISHED, RESULT) written right after
    another is sent at once instead of waiting up to 40 ms for the client's delayed ACK."""
    async with running(tmp_path) as (router, clients):
        port = router.port("main")
        client = await (joined_ws(clients, port) if transport == "websocket" else joined_rawsocket(clients, port))
        assert client is not None
        [peer] = list(router.realm().sessions.values())
        handle = peer.channel.transport.getHandle()
        assert handle.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
