"""Inbound bytes -> validated autobahn messages, with every failure classified as the peer's fault.

Autobahn's own unserialize turns an invalid URI into a connection failure, counts statistics on every call, reads
JSON with a pure-Python scanner (~0.35 s for 1 MiB) and lets CBOR tags and MessagePack extension types through; here
the decoders are configured by us (the stdlib's C JSON scanner, tags and extension types replaced by a marker), every
value is checked once to be one every serializer can write (router/tx/payload.py), an invalid URI in a request
becomes an ERROR reply, an unencodable value a PayloadRefusal, and everything else malformed a ProtocolViolation
(ABORT). A payload in the spec's passthrough form (ppt_* options) is checked and kept with its options
(router/tx/passthru.py); a broken one is a ProtocolViolation, like any other malformed option.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType

import cbor2
import msgpack
from autobahn.wamp import message as wamp
from autobahn.wamp.exception import InvalidUriError
from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer, Serializer

from wampgate.core import errors
from wampgate.core.peer import PASSTHRU_FEATURE
from wampgate.tx.framing import FrameKey
from wampgate.tx.passthru import PassthruViolation, adopt, uses_passthru
from wampgate.tx.payload import DEFAULT_MAX_NESTING, InvalidValue, MalformedValue, Unsupported, check_message

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
# Requests that get ERROR wamp.error.invalid_argument when their payload is refused (PUBLISH only if acknowledged).
_ANSWERED_REQUESTS = frozenset(
    (wamp.Publish, wamp.Subscribe, wamp.Unsubscribe, wamp.Call, wamp.Register, wamp.Unregister)
)
# Deeper than this the decoders stop by themselves (a protocol violation); MessagePack's own stack is 1,024 levels
# and the JSON scanner stops near the interpreter's recursion limit (1,000): CBOR is set to match, instead of its
# default of 400, so a message nested a few hundred levels is refused the same way (`max_nesting`) by all three.
CBOR_MAX_DEPTH = 1024


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


class PayloadRefusal:
    """A well-formed message carrying a value not every serializer of the router can write (payload.py says which
    values pass). Nothing of it is routed.

    A request is answered with `answer`, ERROR wamp.error.invalid_argument (None for an unacknowledged PUBLISH,
    which is dropped). A callee's YIELD or ERROR cannot be answered (WAMP has no reply to them), so it ends its call
    instead: `invocation` is the INVOCATION it answered and `final` whether the callee is done with it (a
    progressive YIELD is not); see Dealer.refuse_answer."""

    __slots__ = ("message_type", "detail", "answer", "invocation", "final")

    def __init__(self, message_type: int, detail: str, *, answer: wamp.Error | None = None,
                 invocation: int | None = None, final: bool = True):
        self.message_type = message_type
        self.detail = detail
        self.answer = answer
        self.invocation = invocation
        self.final = final


Inbound = tuple[wamp.Message, bool] | UriRefusal | PayloadRefusal


def parse(serializer: Serializer, payload: bytes, is_binary: bool | None, max_size: int | None = None,
          max_nesting: int = DEFAULT_MAX_NESTING) -> list[Inbound]:
    """Decode one transport message into a list of one (message, disclose_me) pair, UriRefusal or PayloadRefusal.

    `max_size` is the largest payload the session may send in its current state (`max_hello_size` until WELCOME;
    None: only the transport's own limit): a larger one is refused before any decoding is paid for. Batched
    serializers are never offered, so a payload is exactly one message (anything after it is a violation)."""
    objects = serializer._serializer
    if is_binary is not None and is_binary != objects.BINARY:
        raise ProtocolViolation(f"{'binary' if is_binary else 'text'} message on a {serializer.SERIALIZER_ID} session")
    if max_size is not None and len(payload) > max_size:
        raise ProtocolViolation(f"a message of {len(payload)} bytes before WELCOME (max_hello_size is {max_size})")
    decode = DECODERS.get(serializer.SERIALIZER_ID)
    if decode is None:  # our own bug: a serializer (e.g. a batched one) offered without a decoder here
        raise ValueError(f"no decoder for serializer {serializer.SERIALIZER_ID!r}")
    try:
        raw = decode(payload)
    except Exception as e:  # every decoder has its own exception types: all mean the bytes are not valid
        raise ProtocolViolation(f"cannot decode {serializer.SERIALIZER_ID}: {type(e).__name__}: {e}") from None
    return [_parse_one(raw, max_nesting, serializer.SERIALIZER_ID == "json")]


# -- decoders: bytes -> one plain value, configured so foreign values cannot cost more than plain ones -----------


def decode_json(payload: bytes) -> object:
    """The stdlib's C scanner; Autobahn's binary strings become bytes later, in payload.check_message (one pass)."""
    return json.loads(payload.decode("utf-8"))


def decode_msgpack(payload: bytes) -> object:
    """Like Autobahn (`raw=False`); extension types become Unsupported (timestamps, ext type -1, are decoded by
    msgpack itself, never passed to the hook, and refused by the walk as their own class). Map keys other than
    str and bytes are refused by msgpack (`strict_map_key`), before a dict is built: no hash flooding."""
    return msgpack.unpackb(payload, raw=False, strict_map_key=True, ext_hook=_unsupported_ext)


def decode_cbor(payload: bytes) -> object:
    """Every tag becomes Unsupported without its semantic decoder running (a regex compile, a MIME parse, shared
    references that make cycles cost before any check could refuse them); map keys other than str and bytes are
    refused while decoding (no hash flooding); bytes after the first item are a violation (cbor2 would drop them)."""
    stream = io.BytesIO(payload)
    decoder = cbor2.CBORDecoder(stream, semantic_decoders=_EVERY_TAG, tag_hook=_unsupported_tag,
                                max_depth=CBOR_MAX_DEPTH, strict_hashable_types=True)
    value = decoder.decode()
    if stream.tell() != len(payload):
        raise ValueError(f"{len(payload) - stream.tell()} bytes after the message")
    return value


def _unsupported_ext(code: int, data: bytes) -> Unsupported:
    return Unsupported(f"MessagePack extension type {code}")


def _unsupported_tag(decoder: object, tag: cbor2.CBORTag) -> Unsupported:
    return Unsupported(f"CBOR tag {tag.tag}")


class _EveryTag(Mapping):
    """cbor2's `semantic_decoders` for every tag number: each one decodes to Unsupported. cbor2 looks a tag up here
    before its built-in decoders, so none of those runs; a unit test pins that for the tags it knows."""

    def __getitem__(self, tag: int) -> Callable[..., Unsupported]:
        what = f"CBOR tag {tag}"
        return lambda value, immutable=False: Unsupported(what)

    def __iter__(self) -> Iterator[int]:
        return iter(())

    def __len__(self) -> int:
        return 0


_EVERY_TAG = _EveryTag()
DECODERS: Mapping[str, Callable[[bytes], object]] = MappingProxyType(
    {"json": decode_json, "msgpack": decode_msgpack, "cbor": decode_cbor}
)


# -- one decoded message -> an Inbound --------------------------------------------------------------------------


def parse_value(raw: object, max_nesting: int = DEFAULT_MAX_NESTING) -> Inbound:
    """A message built from JSON values elsewhere (the HTTP bridge's request bodies), checked exactly like one
    that came over the wire as JSON; raises ProtocolViolation where the wire would."""
    return _parse_one(raw, max_nesting, True)


def _parse_one(raw: object, max_nesting: int, from_json: bool) -> Inbound:
    if type(raw) is not list or not raw:
        raise ProtocolViolation("a WAMP message must be a non-empty array")
    message_type = raw[0]
    cls = INBOUND.get(message_type) if type(message_type) is int else None
    if cls is None:
        raise ProtocolViolation(f"message type {message_type!r} is not one a client may send")
    try:
        check_message(raw, max_nesting, from_json)
    except MalformedValue as e:
        raise ProtocolViolation(f"{cls.__name__.upper()} holds {e}") from None
    except InvalidValue as e:
        parsed = _parse_fields(cls, raw)  # a malformed message stays a violation, an invalid URI an invalid_uri
        return parsed if type(parsed) is UriRefusal else _payload_refusal(parsed[0], str(e))
    parsed = _parse_fields(cls, raw)
    if type(parsed) is tuple and uses_passthru(raw):
        try:
            adopt(parsed[0], raw)  # autobahn's parser dropped the ppt_* options: the payload keeps them
        except PassthruViolation as e:
            raise ProtocolViolation(f"{cls.__name__.upper()} in payload passthrough form: {e}") from None
    elif message_type == wamp.Hello.MESSAGE_TYPE and type(parsed) is tuple:
        _keep_passthru_announcement(parsed[0], raw)
    return parsed


def _parse_fields(cls: type[wamp.Message], raw: list) -> Inbound:
    message_type = raw[0]
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


def _keep_passthru_announcement(hello: wamp.Hello, raw: list) -> None:
    """Put the client's `payload_passthru_mode` (a bool) back onto the role features autobahn parsed from its HELLO
    (its parser drops the features it does not know), so the core sees it like any other feature (WELCOME answers
    it: Realm.router_roles); any other type is malformed, as for autobahn's own features."""
    for role, features in hello.roles.items():
        announced = raw[2]["roles"][role].get("features", {}).get(PASSTHRU_FEATURE)
        if announced is None:
            continue
        if type(announced) is not bool:
            raise ProtocolViolation(f"HELLO: {PASSTHRU_FEATURE} of role {role} must be a bool")
        setattr(features, PASSTHRU_FEATURE, announced)


def _payload_refusal(msg: wamp.Message, detail: str) -> PayloadRefusal:
    """How a well-formed message with a refused value is answered; HELLO, AUTHENTICATE, GOODBYE, ABORT and CANCEL
    have no answer that could say so, and an unencodable value there is a protocol violation."""
    kind = type(msg)
    if kind is wamp.Yield:
        return PayloadRefusal(kind.MESSAGE_TYPE, detail, invocation=msg.request, final=not msg.progress)
    if kind is wamp.Error and msg.request_type == wamp.Invocation.MESSAGE_TYPE:
        return PayloadRefusal(kind.MESSAGE_TYPE, detail, invocation=msg.request)
    if kind in _ANSWERED_REQUESTS:
        answer = None
        if kind is not wamp.Publish or msg.acknowledge:
            answer = wamp.Error(kind.MESSAGE_TYPE, msg.request, errors.INVALID_ARGUMENT,
                                args=[f"payload refused: {detail}, which not every client of this router can read"])
        return PayloadRefusal(kind.MESSAGE_TYPE, detail, answer=answer)
    raise ProtocolViolation(f"{kind.__name__.upper()} holds {detail}")
