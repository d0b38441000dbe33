"""The little of WAMP the load generator speaks, written by hand so that a client costs far less than the router.

Messages are plain lists; the three serializers of the routers under test (JSON, MessagePack, CBOR); WebSocket
client frames (masked, as RFC 6455 requires of a client) and RawSocket frames. No Autobahn here: a full Autobahn
client spends more CPU per event than the router it measures.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random

import cbor2
import msgpack

HELLO, WELCOME, ABORT, GOODBYE, ERROR = 1, 2, 3, 6, 8
PUBLISH, PUBLISHED, SUBSCRIBE, SUBSCRIBED, EVENT = 16, 17, 32, 33, 36
CALL, RESULT, REGISTER, REGISTERED, INVOCATION, YIELD = 48, 50, 64, 65, 68, 70

CLIENT_ROLES = {"publisher": {}, "subscriber": {}, "caller": {}, "callee": {}}
# A router passes progressive results only between a caller and a callee that announced the feature.
PROGRESSIVE_ROLES = {**CLIENT_ROLES, "caller": {"features": {"progressive_call_results": True}},
                     "callee": {"features": {"progressive_call_results": True}}}


class Serializer:
    """One WAMP serializer: its WebSocket subprotocol, RawSocket id, codec, and how an EVENT's bytes start."""

    def __init__(self, name: str, rawsocket_id: int, binary: bool, dumps, loads, event_prefix: bytes):
        self.name = name
        self.subprotocol = f"wamp.2.{name}"
        self.rawsocket_id = rawsocket_id
        self.binary = binary
        self.dumps = dumps
        self.loads = loads
        self.event_prefix = event_prefix  # the bytes every EVENT starts with (after the array header)

    def is_event(self, payload: bytes) -> bool:
        return payload[1:1 + len(self.event_prefix)] == self.event_prefix


def _json_dumps(msg) -> bytes:
    return json.dumps(msg, separators=(",", ":")).encode()


SERIALIZERS = {
    # MessagePack: a fixarray header, then positive fixint 36.
    "msgpack": Serializer("msgpack", 2, True, msgpack.packb, msgpack.unpackb, bytes((EVENT,))),
    # JSON: "[36," (index 0 is "[").
    "json": Serializer("json", 1, False, _json_dumps, json.loads, b"36,"),
    # CBOR: an array header, then uint8 (0x18) 36.
    "cbor": Serializer("cbor", 3, True, cbor2.dumps, cbor2.loads, bytes((0x18, EVENT))),
}


def hello(realm: str, roles: dict = CLIENT_ROLES) -> list:
    return [HELLO, realm, {"roles": roles}]


# -- WebSocket (client side) ------------------------------------------------------------------------------------

def ws_upgrade_request(host: str, port: int, path: str, subprotocol: str) -> tuple[bytes, bytes]:
    """The opening handshake request and the Sec-WebSocket-Accept value we expect back."""
    key = base64.b64encode(os.urandom(16))
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {key.decode()}\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Protocol: {subprotocol}\r\n\r\n"
    ).encode()
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    return request, accept


def ws_client_frame(payload: bytes, opcode: int) -> bytes:
    """One FIN frame, masked with a fresh random key (RFC 6455 section 5.3)."""
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, 0x80 | n))
    elif n < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + n.to_bytes(8, "big")
    key = random.getrandbits(32).to_bytes(4, "little")
    if not n:
        return header + key
    keystream = key * (n // 4 + 1)
    masked = (int.from_bytes(payload, "little") ^ int.from_bytes(keystream[:n], "little")).to_bytes(n, "little")
    return header + key + masked


def ws_server_frame(payload: bytes, opcode: int = 0x2) -> bytes:
    """An unmasked FIN frame, as a server sends it (used by the ceiling server's pre-framed variant)."""
    n = len(payload)
    if n < 126:
        return bytes((0x80 | opcode, n)) + payload
    if n < 65536:
        return bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x80 | opcode, 127)) + n.to_bytes(8, "big") + payload


class FrameError(Exception):
    """The server sent something a WAMP-over-WebSocket/RawSocket server never should."""


def ws_parse(buf: bytes, on_message, on_control) -> int:
    """Call on_message(payload) for each complete data frame in buf and on_control(opcode, payload) for control
    frames; return how many bytes were consumed. Servers do not fragment WAMP messages here (autoFragmentSize 0)."""
    offset, size = 0, len(buf)
    while size - offset >= 2:
        b0, b1 = buf[offset], buf[offset + 1]
        if b1 & 0x80:
            raise FrameError("masked frame from the server")
        n = b1
        start = offset + 2
        if n == 126:
            if size - offset < 4:
                break
            n = int.from_bytes(buf[offset + 2:offset + 4], "big")
            start = offset + 4
        elif n == 127:
            if size - offset < 10:
                break
            n = int.from_bytes(buf[offset + 2:offset + 10], "big")
            start = offset + 10
        end = start + n
        if end > size:
            break
        opcode = b0 & 0x0F
        if opcode == 1 or opcode == 2:
            if not b0 & 0x80:
                raise FrameError("fragmented message")
            on_message(buf[start:end])
        else:
            on_control(opcode, buf[start:end])
        offset = end
    return offset


# -- RawSocket --------------------------------------------------------------------------------------------------

def rawsocket_handshake(serializer: Serializer) -> bytes:
    """0x7F, max length 2**24 (nibble 15) | serializer id, two reserved zero octets."""
    return bytes((0x7F, 0xF0 | serializer.rawsocket_id, 0, 0))


def rawsocket_frame(payload: bytes, kind: int = 0) -> bytes:
    return bytes((kind,)) + len(payload).to_bytes(3, "big") + payload


def rawsocket_parse(buf: bytes, on_message, on_control) -> int:
    offset, size = 0, len(buf)
    while size - offset >= 4:
        kind = buf[offset]
        n = int.from_bytes(buf[offset + 1:offset + 4], "big")
        end = offset + 4 + n
        if end > size:
            break
        if kind == 0:
            on_message(buf[offset + 4:end])
        else:
            on_control(kind, buf[offset + 4:end])
        offset = end
    return offset
