"""The WebSocket edge against a real router: an upgrade request that carries a body or is followed by bytes before
the 101 (a smuggled HELLO) is refused with HTTP 400 on every kind of WebSocket listener, plain and TLS, with and
without static files; a message of more than max_fragments frames closes the connection with 1009. Frames and
requests are written byte-exact over raw sockets; after every attack a fresh client is served.

Every wait is bounded in time, every loop in count; only 127.0.0.1 is used.
"""

from __future__ import annotations

import json
import textwrap

import pytest
import pytest_twisted
from autobahn.twisted.websocket import WebSocketClientFactory
from autobahn.wamp.types import PublishOptions
from twisted.internet import endpoints, ssl
from twisted.internet.protocol import Factory

from tests.support import raw
from tests.support.clients import Target, connect, leave
from tests.support.flow import exchange, joined_ws, now, publish, running, split, upgrade
from tests.support.raw import bounded
from tests.support.router import REALM1_ANONYMOUS_ALL, listener, start_router

BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\n"
OP_CONTINUATION, OP_TEXT = 0x0, 0x1


def client_frame(payload: bytes, opcode: int = OP_TEXT, fin: bool = True) -> bytes:
    """One client-to-server frame, masked with the all-zero key (so the payload goes out as is), up to 64 KiB."""
    first = (0x80 if fin else 0) | opcode
    if len(payload) < 126:
        length = bytes((0x80 | len(payload),))
    else:
        length = bytes((0x80 | 126,)) + len(payload).to_bytes(2, "big")
    return bytes((first,)) + length + b"\x00\x00\x00\x00" + payload


def fragments(payload: bytes, count: int) -> bytes:
    """`payload` as one text message of exactly `count` frames (the last one carries the rest)."""
    size = max(1, len(payload) // count)
    pieces = [payload[i * size:(i + 1) * size] for i in range(count - 1)] + [payload[(count - 1) * size:]]
    assert len(pieces) == count and b"".join(pieces) == payload
    return b"".join(client_frame(piece, OP_TEXT if i == 0 else OP_CONTINUATION, fin=i == count - 1)
                    for i, piece in enumerate(pieces))


HELLO_FRAME = client_frame(json.dumps(raw.hello()).encode())
CHUNKED_HELLO = b"%x\r\n%s\r\n0\r\n\r\n" % (len(HELLO_FRAME), HELLO_FRAME)

SMUGGLES = {
    # the request head, then what follows it in the same write
    "frame-after-head": (upgrade(), HELLO_FRAME),
    "content-length-body": (upgrade(extra={"Content-Length": str(len(HELLO_FRAME))}), HELLO_FRAME),
    "content-length-0": (upgrade(extra={"Content-Length": "0"}), b""),
    "chunked-body": (upgrade(extra={"Transfer-Encoding": "chunked"}), CHUNKED_HELLO),
}
LISTENERS = ["websocket", "universal", "static", "tls", "static-tls"]


@pytest_twisted.async_yield_fixture()
async def edge_router(tmp_path, certs):
    """WebSocket only; WebSocket + RawSocket on one port; WebSocket with static files; universal over TLS;
    universal with static files over TLS."""
    static = tmp_path / "static"
    static.mkdir()
    (static / "index.html").write_bytes(b"<!doctype html><title>edge</title>\n")
    config = (listener("websocket", ("websocket",)) + listener("universal")
              + listener("static", ("websocket",), websocket='static_dir = "static"')
              + listener("tls", tls=certs)
              + listener("static-tls", tls=certs, websocket='static_dir = "static"') + REALM1_ANONYMOUS_ALL)
    running_router = await start_router(textwrap.dedent(config), tmp_path)
    yield running_router
    await running_router.stop()


async def open_raw(router, listener_name: str, certs) -> raw.RawTcp:
    """A raw TCP client, or a raw client over TLS (trusting the test CA) for the "tls" listener."""
    port = router.port(listener_name)
    if not listener_name.endswith("tls"):
        return await raw.open_tcp(port)
    return await bounded(tls_endpoint(port, certs).connect(Factory.forProtocol(raw.RawTcp)))


def tls_endpoint(port: int, certs):
    from twisted.internet import reactor

    trust = ssl.Certificate.loadPEM(certs.ca.read_bytes())
    return endpoints.wrapClientTLS(ssl.optionsForClientTLS("localhost", trustRoot=trust),
                                   endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=5))


async def assert_served(target: Target) -> None:
    """A fresh Autobahn client joins and completes an acknowledged publish."""
    session = await bounded(connect(target))
    try:
        await bounded(session.publish("com.example.alive", 1, options=PublishOptions(acknowledge=True)))
    finally:
        await bounded(leave(session))


# -- an upgrade request with a body, or with bytes after its head ------------------------------------------------


@pytest.mark.parametrize("listener_name", LISTENERS)
@pytest.mark.parametrize("smuggle", list(SMUGGLES))
@pytest_twisted.ensureDeferred
async def test_upgrade_with_a_body_or_early_frames_is_refused_with_400(edge_router, certs, listener_name, smuggle):
    """An upgrade request with Content-Length (any value, 0 included) or Transfer-Encoding, or followed in the same
    write by a WebSocket frame carrying HELLO, gets exactly `HTTP/1.1 400 Bad Request` and the router closes the
    connection: no 101, no WELCOME. A fresh client is then served on the same listener."""
    head, rest = SMUGGLES[smuggle]
    client = await open_raw(edge_router, listener_name, certs)
    try:
        client.write(head + rest)
        received = await client.wait_lost(5.0)
    finally:
        client.close()
    assert received.startswith(BAD_REQUEST), received[:200]
    assert b" 101 " not in received
    assert b'[2,' not in received and b"WELCOME" not in received
    await assert_served(Target(port=edge_router.port(listener_name),
                               tls_ca=certs.ca if listener_name.endswith("tls") else None))


@pytest.mark.parametrize("listener_name", LISTENERS)
@pytest_twisted.ensureDeferred
async def test_frame_sent_after_the_101_is_answered(edge_router, certs, listener_name):
    """The same HELLO frame sent after the 101 has arrived (as RFC 6455 4.1 requires) gets its WELCOME: only
    bytes sent before the 101 are refused."""
    client = await open_raw(edge_router, listener_name, certs)
    try:
        client.write(upgrade())
        head = await client.until(lambda: b"\r\n\r\n" in client.received and bytes(client.received), 5.0)
        assert head.startswith(b"HTTP/1.1 101 ")
        client.write(HELLO_FRAME)
        await client.until(lambda: b"[2," in client.received, 5.0)
    finally:
        client.close()


# -- fragments per message -----------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_message_of_max_fragments_is_accepted_one_more_closes_1009(tmp_path):
    """With the default max_fragments (64), a PUBLISH sent as 64 frames is acknowledged; the next one, sent as 65
    frames, closes the connection with 1009 and is not acknowledged. A fresh client is served."""
    async with running(tmp_path) as (router, clients):
        port = router.port("main")
        client = await joined_ws(clients, port)
        assert split(await exchange(client, [publish(1)]), raw.PUBLISHED)[0]  # a marker: the session works
        message = json.dumps(publish(2, payload="x" * 200)).encode()
        client.protocol.transport.write(fragments(message, 64))
        replies = await client.wait_messages(3, 5.0)
        assert replies[2][:2] == [raw.PUBLISHED, 2]
        client.protocol.transport.write(fragments(json.dumps(publish(3, payload="x" * 200)).encode(), 65))
        _, code, _ = await client.wait_closed(5.0)
        assert code == 1009
        assert [m for m in client.messages if m[0] == raw.PUBLISHED] == [replies[1], replies[2]]
        await raw.assert_router_serves(port)


@pytest_twisted.ensureDeferred
async def test_a_flood_of_one_byte_fragments_is_cut_off_at_once(tmp_path):
    """100,000 one-byte fragments of one message, written at once (700 KB), close the connection with 1009 within
    2 s, and the router's copy of the message never holds more than max_fragments (64) frames. A fresh client is
    served."""
    async with running(tmp_path) as (router, clients):
        port = router.port("main")
        client = await joined_ws(clients, port)
        [peer] = list(router.realm().sessions.values())
        channel = peer.channel
        flood = client_frame(b"[", OP_TEXT, fin=False) + client_frame(b" ", OP_CONTINUATION, fin=False) * 99_999
        started = now()
        client.protocol.transport.write(flood)
        _, code, _ = await client.wait_closed(5.0)
        assert code == 1009
        assert now() - started < 2.0
        assert channel._fragments == 65
        assert not channel.message_data or len(channel.message_data) <= 64
        await raw.assert_router_serves(port)


@pytest_twisted.ensureDeferred
async def test_max_fragments_is_configurable(tmp_path):
    """max_fragments = 2: a message in 2 frames is acknowledged, one in 3 frames closes with 1009; unfragmented
    messages are unaffected."""
    listeners = listener("main", websocket="max_fragments = 2")
    async with running(tmp_path, listeners=listeners) as (router, clients):
        client = await joined_ws(clients, router.port("main"))
        assert split(await exchange(client, [publish(1)]), raw.PUBLISHED)[0]
        client.protocol.transport.write(fragments(json.dumps(publish(2)).encode(), 2))
        replies = await client.wait_messages(3, 5.0)
        assert replies[2][:2] == [raw.PUBLISHED, 2]
        client.protocol.transport.write(fragments(json.dumps(publish(3)).encode(), 3))
        _, code, _ = await client.wait_closed(5.0)
        assert code == 1009


@pytest_twisted.ensureDeferred
async def test_too_many_fragments_over_tls_closes_with_1009(tmp_path, certs):
    """Over TLS too, a 65-frame message closes the connection with 1009 (the router does not wait on its own
    send window to let the connection go)."""
    listeners = listener("tls", tls=certs)
    async with running(tmp_path, listeners=listeners) as (router, clients):
        port = router.port("tls")
        client = clients(raw.RawWebSocket("json"))
        factory = WebSocketClientFactory(f"wss://127.0.0.1:{port}/ws", protocols=["wamp.2.json"])
        factory.protocol = raw._RawWebSocketProtocol
        factory.client = client
        factory.setProtocolOptions(openHandshakeTimeout=5, closeHandshakeTimeout=1.0)
        await bounded(tls_endpoint(port, certs).connect(factory))
        await bounded(client._opened_d)
        await client.join()
        started = now()
        client.protocol.transport.write(fragments(json.dumps(publish(1, payload="x" * 200)).encode(), 65))
        _, code, _ = await client.wait_closed(5.0)
        assert code == 1009
        assert now() - started < 2.0
        await assert_served(Target(port=port, tls_ca=certs.ca))
