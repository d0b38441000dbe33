"""The RawSocket transport byte by byte, as the WAMP spec defines it, on the RawSocket-only and universal listeners.

Handshake: the client sends 0x7F, LENGTH << 4 | SERIALIZER, 0, 0; the router answers 0x7F, its own LENGTH << 4 |
SERIALIZER, 0, 0, or 0x7F, ERROR << 4, 0, 0 and closes. Frames: a header octet (5 reserved bits, 3-bit type:
0 message, 1 PING, 2 PONG) and a 24-bit big-endian length.
"""

from __future__ import annotations

from functools import partial

import msgpack
import pytest
import pytest_twisted
from autobahn.wamp.types import PublishOptions
from twisted.internet import task

from tests.support import raw, wait
from tests.support.clients import Target, connect, leave
from tests.support.raw import (
    EVENT,
    FRAME_MESSAGE,
    FRAME_PING,
    FRAME_PONG,
    PUBLISH,
    PUBLISHED,
    SUBSCRIBE,
    SUBSCRIBED,
    WELCOME,
    bounded,
    frame,
    handshake,
    hello,
)

LISTENERS = pytest.mark.parametrize("listener_name", ["rawsocket", "universal"])
DEFAULT_LENGTH_NIBBLE = 11  # the default max_message_size is 1 MiB = 2**(9+11)
SERIALIZER_IDS = {"json": 1, "msgpack": 2, "cbor": 3}


def _reactor():
    from twisted.internet import reactor

    return reactor


def sleep(seconds: float):
    return task.deferLater(_reactor(), seconds, lambda: None)


def publish_of_size(size: int) -> bytes:
    """An acknowledged PUBLISH (request 1) encoded with MessagePack in exactly `size` bytes (size > 2**16)."""
    padding = 2**16

    def packed(length: int) -> bytes:
        return msgpack.packb([PUBLISH, 1, {"acknowledge": True}, "com.example.big", ["x" * length]])

    payload = packed(size - (len(packed(padding)) - padding))
    assert len(payload) == size
    return payload


@pytest.fixture
def clients():
    tracker = raw.Tracker()
    yield tracker
    tracker.close_all()


# After each test: WebSocket on the universal listener, RawSocket on the RawSocket-only one.
still_serves = partial(wait.still_serves, rawsocket_listener="rawsocket")


# -- opening handshake -------------------------------------------------------------------------------------------


@LISTENERS
@pytest.mark.parametrize("serializer", ["json", "msgpack", "cbor"])
@pytest_twisted.ensureDeferred
async def test_handshake_reply_announces_serializer_and_max_length(router, clients, listener_name, serializer):
    """The handshake reply is exactly 7F, (11 << 4) | serializer, 00, 00: the router echoes the serializer and
    announces 2**(9+11) = 1 MiB, the default max_message_size; the connection stays open (a PING sent after the
    handshake is answered with its PONG, and nothing came before it)."""
    tcp = clients(await raw.open_tcp(router.port(listener_name)))
    tcp.write(handshake(SERIALIZER_IDS[serializer], length=15))
    reply = await tcp.wait_bytes(4)
    assert reply == bytes((0x7F, (DEFAULT_LENGTH_NIBBLE << 4) | SERIALIZER_IDS[serializer], 0, 0))
    tcp.write(frame(b"marker", kind=FRAME_PING))
    received = await tcp.wait_bytes(4 + 4 + len(b"marker"))
    assert received[4:] == frame(b"marker", kind=FRAME_PONG)
    assert not tcp.lost
    await still_serves(router)


@LISTENERS
@pytest.mark.parametrize("serializer_id", [0, 4, 5, 0x0F])
@pytest_twisted.ensureDeferred
async def test_unsupported_serializer_is_refused(router, clients, listener_name, serializer_id):
    """A serializer id the listener does not serve (0, 4 UBJSON, 5 FlatBuffers, 15) is answered with exactly
    7F 10 00 00 (error 1: serializer unsupported), and the router closes the connection."""
    tcp = clients(await raw.open_tcp(router.port(listener_name)))
    tcp.write(handshake(serializer_id))
    assert await tcp.wait_lost() == bytes.fromhex("7f100000")
    await still_serves(router)


@LISTENERS
@pytest.mark.parametrize("reserved", [b"\x00\x01", b"\x01\x00", b"\xff\xff"])
@pytest_twisted.ensureDeferred
async def test_nonzero_reserved_octets_are_refused(router, clients, listener_name, reserved):
    """Non-zero reserved octets in the handshake are answered with exactly 7F 30 00 00 (error 3: use of reserved
    bits), and the router closes the connection."""
    tcp = clients(await raw.open_tcp(router.port(listener_name)))
    tcp.write(handshake(SERIALIZER_IDS["msgpack"], reserved=reserved))
    assert await tcp.wait_lost() == bytes.fromhex("7f300000")
    await still_serves(router)


@pytest.mark.parametrize("first", [b"\x7e\xf2\x00\x00", b"\x00\x00\x00\x00", b"GET / HTTP/1.1\r\n\r\n"])
@pytest_twisted.ensureDeferred
async def test_wrong_magic_on_rawsocket_listener_is_closed_without_reply(router, clients, first):
    """On the RawSocket-only listener, a first octet other than 0x7F closes the connection with no reply at all."""
    tcp = clients(await raw.open_tcp(router.port("rawsocket")))
    tcp.write(first)
    await tcp.wait_lost()
    assert bytes(tcp.received) == b""
    await still_serves(router)


@LISTENERS
@pytest_twisted.ensureDeferred
async def test_handshake_and_hello_in_one_write(router, clients, listener_name):
    """Bytes that follow the handshake in the same TCP segment are the first frame: HELLO there gets WELCOME."""
    client = raw.RawSocketWamp(clients(await raw.open_tcp(router.port(listener_name))))
    client.tcp.write(handshake(SERIALIZER_IDS["msgpack"]) + frame(msgpack.packb(hello())))
    welcome = (await client.wait_messages(1))[0]
    assert welcome[0] == WELCOME
    assert bytes(client.tcp.received[:4]) == bytes.fromhex("7fb20000")
    await still_serves(router)


# -- frames ------------------------------------------------------------------------------------------------------


@LISTENERS
@pytest.mark.parametrize("joined", [False, True], ids=["before-hello", "established"])
@pytest_twisted.ensureDeferred
async def test_ping_is_answered_with_pong_and_same_payload(router, clients, listener_name, joined):
    """A PING frame (type 1) with payload b"abc" is answered with exactly the PONG frame 02 000003 'abc', before
    HELLO and in an established session; the session is unaffected."""
    client = clients(await raw.open_rawsocket(router.port(listener_name)))
    if joined:
        await client.join()
    seen = len(client.frames())
    client.tcp.write(frame(b"abc", kind=FRAME_PING))
    frames = await client.wait_frames(seen + 1)
    assert frames[seen] == (FRAME_PONG, b"abc")
    assert bytes(client.tcp.received[-7:]) == b"\x02\x00\x00\x03abc"
    if not joined:
        await client.join()
    client.send([SUBSCRIBE, 1, {}, "com.example.pinged"])
    assert (await client.wait_messages(2))[1][:2] == [SUBSCRIBED, 1]
    await still_serves(router)


@LISTENERS
@pytest_twisted.ensureDeferred
async def test_empty_ping_and_client_pong_are_handled(router, clients, listener_name):
    """An empty PING gets an empty PONG; an unsolicited PONG from the client is ignored (no reply, no close)."""
    client = clients(await raw.open_rawsocket(router.port(listener_name)))
    client.tcp.write(frame(b"", kind=FRAME_PONG) + frame(b"", kind=FRAME_PING))
    assert (await client.wait_frames(1)) == [(FRAME_PONG, b"")]
    welcome = await client.join()
    assert welcome[0] == WELCOME
    assert [kind for kind, _ in client.frames()] == [FRAME_PONG, FRAME_MESSAGE]
    await still_serves(router)


@LISTENERS
@pytest.mark.parametrize(
    "header",
    [0x08, 0x80, 0xF8, 0x03, 0x07],
    ids=["reserved-bit-3", "reserved-bit-7", "all-reserved", "type-3", "type-7"],
)
@pytest_twisted.ensureDeferred
async def test_frame_with_reserved_bits_or_type_closes_connection(router, clients, listener_name, header):
    """A frame header with any of the 5 reserved bits set, or a reserved frame type (3-7), closes the connection;
    the router sends nothing in reply."""
    client = clients(await raw.open_rawsocket(router.port(listener_name)))
    payload = msgpack.packb(hello())
    client.tcp.write(bytes((header,)) + len(payload).to_bytes(3, "big") + payload)
    await client.wait_lost()
    assert client.frames() == []
    await still_serves(router)


@LISTENERS
@pytest_twisted.ensureDeferred
async def test_frame_longer_than_announced_max_closes_before_payload(router, clients, listener_name):
    """A frame header declaring more than the router announced (2**20 + 1 > 1 MiB) closes the connection as soon
    as the header arrives, before any payload is sent."""
    client = clients(await raw.open_rawsocket(router.port(listener_name)))
    client.tcp.write(bytes((FRAME_MESSAGE,)) + (2**20 + 1).to_bytes(3, "big"))
    await client.wait_lost()
    assert client.frames() == []
    await still_serves(router)


@LISTENERS
@pytest_twisted.ensureDeferred
async def test_frame_of_exactly_announced_max_is_accepted(router, clients, listener_name):
    """A frame header declaring exactly the announced maximum (2**20) does not close the connection: the router
    waits for the payload, and the message of exactly 2**20 bytes that follows (an acknowledged PUBLISH) is
    answered with PUBLISHED."""
    client = clients(await raw.open_rawsocket(router.port(listener_name)))
    await client.join()
    client.tcp.write(bytes((FRAME_MESSAGE,)) + (2**20).to_bytes(3, "big"))
    payload = publish_of_size(2**20)
    client.tcp.write(payload)
    messages = await client.wait_messages(2)
    assert messages[1][:2] == [PUBLISHED, 1]
    assert not client.tcp.lost
    await still_serves(router)


@LISTENERS
@pytest_twisted.ensureDeferred
async def test_router_honours_client_max_length(router, clients, listener_name):
    """A client announcing LENGTH nibble 0 (512 bytes) joins and subscribes; a 2000-byte event published by another
    client is not sent to it (the router never exceeds the client's maximum), the connection stays open, and a
    small marker event published afterwards arrives."""
    small = clients(await raw.open_rawsocket(router.port(listener_name), length=0))
    await small.join()
    small.send([SUBSCRIBE, 1, {}, "com.example.sized"])
    assert (await small.wait_messages(2))[1][:2] == [SUBSCRIBED, 1]
    publisher = await bounded(connect(Target(port=router.port("universal"))))
    acknowledged = PublishOptions(acknowledge=True)
    await bounded(publisher.publish("com.example.sized", "x" * 2000, options=acknowledged))
    await bounded(publisher.publish("com.example.sized", "marker", options=acknowledged))
    messages = await small.wait_messages(3)
    event = messages[2]
    assert event[0] == EVENT and event[4:] == [["marker"]], event
    assert [message[0] for message in small.messages] == [WELCOME, SUBSCRIBED, EVENT]
    assert all(len(payload) <= 512 for _, payload in small.frames())
    assert not small.tcp.lost
    await bounded(leave(publisher))
    await still_serves(router)


@LISTENERS
@pytest_twisted.ensureDeferred
async def test_message_split_into_one_byte_writes_is_reassembled(router, clients, listener_name):
    """A handshake and a HELLO written one octet at a time (each in its own reactor turn, TCP_NODELAY) are
    reassembled: the router answers the handshake and then WELCOME."""
    client = raw.RawSocketWamp(clients(await raw.open_tcp(router.port(listener_name))))
    data = handshake(SERIALIZER_IDS["msgpack"]) + frame(msgpack.packb(hello()))
    for octet in data:
        client.tcp.write(bytes((octet,)))
        await sleep(0.001)
    welcome = (await client.wait_messages(1))[0]
    assert welcome[0] == WELCOME
    await still_serves(router)


@LISTENERS
@pytest_twisted.ensureDeferred
async def test_two_messages_in_one_write_are_both_handled(router, clients, listener_name):
    """HELLO and SUBSCRIBE framed back to back in a single write are both handled, in order: WELCOME, then
    SUBSCRIBED; two SUBSCRIBEs in one write later both get SUBSCRIBED."""
    client = clients(await raw.open_rawsocket(router.port(listener_name)))
    client.tcp.write(frame(msgpack.packb(hello())) + frame(msgpack.packb([SUBSCRIBE, 1, {}, "com.example.a"])))
    messages = await client.wait_messages(2)
    assert messages[0][0] == WELCOME
    assert messages[1][:2] == [SUBSCRIBED, 1]
    client.tcp.write(
        frame(msgpack.packb([SUBSCRIBE, 2, {}, "com.example.b"]))
        + frame(msgpack.packb([SUBSCRIBE, 3, {}, "com.example.c"]))
    )
    messages = await client.wait_messages(4)
    assert [m[:2] for m in messages[2:]] == [[SUBSCRIBED, 2], [SUBSCRIBED, 3]]
    await still_serves(router)
