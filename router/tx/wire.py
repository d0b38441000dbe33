"""Inbound bytes -> validated autobahn messages, with every failure classified as the peer's fault.

Autobahn's own unserialize turns an invalid URI into a connection failure and counts statistics on every call; here
an invalid URI in a request becomes an ERROR reply, everything else malformed a ProtocolViolation (ABORT), and the
hot path does only decode + parse.
"""

from __future__ import annotations

from dataclasses import dataclass

from autobahn.wamp import message as wamp
from autobahn.wamp.exception import InvalidUriError
from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer, Serializer

from router.tx.framing import FrameKey

# The messages a client may send to a router; anything else is a protocol violation.
INBOUND: dict[int, type[wamp.Message]] = {
    cls.MESSAGE_TYPE: cls
    for cls in (
        wamp.Hello,
        wamp.Abort,
        wamp.Authenticate,
        wamp.Goodbye,
        wamp.Error,
        wamp.Publish,
        wamp.Subscribe,
        wamp.Unsubscribe,
        wamp.Call,
        wamp.Cancel,
        wamp.Register,
        wamp.Unregister,
        wamp.Yield,
    )
}
# Requests whose URI, when invalid, is answered with ERROR wamp.error.invalid_uri rather than ABORT.
_URI_REQUESTS = frozenset(cls.MESSAGE_TYPE for cls in (wamp.Publish, wamp.Subscribe, wamp.Call, wamp.Register))
# Requests whose options may carry the spec's `disclose_me`, which autobahn's parser drops.
_DISCLOSABLE = frozenset((wamp.Publish.MESSAGE_TYPE, wamp.Call.MESSAGE_TYPE))


@dataclass(frozen=True)
class Codecs:
    """The serializers and frame keys, one of each per format and framing, shared by every listener, so a message
    is serialized and framed once for all its recipients."""

    serializers: dict[str, Serializer]
    frames: dict[tuple[str, str], FrameKey]  # (framing, serializer name) -> key


def make_codecs() -> Codecs:
    serializers = {"json": JsonSerializer(), "msgpack": MsgPackSerializer(), "cbor": CBORSerializer()}
    frames = {
        (kind, name): FrameKey(kind, serializer._serializer)
        for name, serializer in serializers.items()
        for kind in ("websocket", "rawsocket")
    }
    return Codecs(serializers, frames)


class ProtocolViolation(Exception):
    """The peer sent something no conforming client sends; `detail` is for our log, never for the peer."""


class UriRefusal:
    """A request whose URI autobahn's parser refused: answered with ERROR (or ABORT for HELLO); an unacknowledged
    PUBLISH gets no answer at all, as the spec says."""

    __slots__ = ("request_type", "request", "detail", "wants_answer")

    def __init__(self, request_type: int, request: int | None, detail: str, wants_answer: bool = True):
        self.request_type = request_type
        self.request = request
        self.detail = detail
        self.wants_answer = wants_answer


Inbound = tuple[wamp.Message, bool] | UriRefusal


def parse(serializer: Serializer, payload: bytes, is_binary: bool | None) -> list[Inbound]:
    """Decode one transport message into (message, disclose_me) pairs or UriRefusals."""
    objects = serializer._serializer
    if is_binary is not None and is_binary != objects.BINARY:
        raise ProtocolViolation(f"{'binary' if is_binary else 'text'} message on a {serializer.SERIALIZER_ID} session")
    try:
        raw_messages = objects.unserialize(payload)
    except Exception as e:  # every decoder has its own exception types: all mean the bytes are not valid
        raise ProtocolViolation(f"cannot decode {serializer.SERIALIZER_ID}: {type(e).__name__}: {e}") from None
    return [_parse_one(raw) for raw in raw_messages]


def _parse_one(raw: object) -> Inbound:
    if type(raw) is not list or not raw:
        raise ProtocolViolation("a WAMP message must be a non-empty array")
    message_type = raw[0]
    cls = INBOUND.get(message_type) if type(message_type) is int else None
    if cls is None:
        raise ProtocolViolation(f"message type {message_type!r} is not one a client may send")
    try:
        msg = cls.parse(raw)
    except InvalidUriError as e:
        uri = raw[1] if message_type == wamp.Hello.MESSAGE_TYPE else (raw[3] if len(raw) > 3 else None)
        if not isinstance(uri, str):  # autobahn says "invalid URI" for a wrong type too: that is malformed
            raise ProtocolViolation(f"{cls.__name__.upper()}: {e}") from None
        if message_type in _URI_REQUESTS:
            wants_answer = message_type != wamp.Publish.MESSAGE_TYPE or raw[2].get("acknowledge") is True
            return UriRefusal(message_type, raw[1], str(e), wants_answer)
        if message_type == wamp.Hello.MESSAGE_TYPE:
            return UriRefusal(message_type, None, str(e))
        raise ProtocolViolation(f"{cls.__name__.upper()}: {e}") from None
    except Exception as e:  # autobahn raises ProtocolError, and TypeError/ValueError for odd values
        raise ProtocolViolation(f"malformed {cls.__name__.upper()}: {type(e).__name__}: {e}") from None
    disclose_me = message_type in _DISCLOSABLE and raw[2].get("disclose_me") is True
    return msg, disclose_me
