"""Transport frames built once per message and serializer, then written as they are to every recipient.

A server's WebSocket frames are unmasked, so without per-connection compression one EVENT's frame is byte-identical
for every subscriber on the same serializer; the same holds for RawSocket. The frame is cached on the message next to
autobahn's own per-serializer cache, under a key that names the framing.

A message whose payload arrived in the spec's passthrough form is written in that form (router/tx/passthru.py), which
autobahn's own marshalling does not know.
"""

from __future__ import annotations

from autobahn.wamp.message import Message

from wampgate.tx.passthru import spec_form


def websocket_frame(payload: bytes, binary: bool) -> bytes:
    """One final, unfragmented, unmasked WebSocket data frame (RFC 6455 section 5.2)."""
    first = 0x82 if binary else 0x81
    size = len(payload)
    if size < 126:
        header = bytes((first, size))
    elif size < 65536:
        header = bytes((first, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((first, 127)) + size.to_bytes(8, "big")
    return header + payload


def rawsocket_frame(payload: bytes) -> bytes:
    """A RawSocket message frame: type 0 and a 24-bit length, then the payload."""
    return len(payload).to_bytes(4, "big") + payload


class FrameKey:
    """Names one (framing, serializer) pair in a message's cache; one instance per pair, shared by all listeners."""

    __slots__ = ("kind", "serializer", "binary")

    def __init__(self, kind: str, serializer) -> None:
        self.kind = kind
        self.serializer = serializer  # autobahn's object serializer (shared, autobahn's own cache key)
        self.binary = serializer.BINARY

    def frame(self, msg: Message) -> bytes:
        """The framed bytes of `msg`, built at most once per message."""
        cache = msg._serialized
        framed = cache.get(self)
        if framed is None:
            raw = spec_form(msg)
            payload = msg.serialize(self.serializer) if raw is None else self.serializer.serialize(raw)
            framed = websocket_frame(payload, self.binary) if self.kind == "websocket" else rawsocket_frame(payload)
            cache[self] = framed
        return framed
