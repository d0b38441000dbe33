"""Inbound payload checks (`wampgate.tx.wire.parse`, `wampgate.tx.payload.check_message`): every value a serializer can
decode but not every serializer can encode is refused on the way in, the same way for JSON, MessagePack and CBOR.

The bytes are built by hand per serializer (the libraries refuse to encode most of these values), wrapped in an
acknowledged PUBLISH; the expected outcome is a PayloadRefusal answered with wamp.error.invalid_argument, or a
ProtocolViolation where the value breaks WAMP's data model or the decoder itself refuses the bytes.
"""

from __future__ import annotations

import json
import struct

import autobahn.twisted  # noqa: F401  selects Twisted for txaio before autobahn's serializers are first imported
import cbor2
import msgpack
import pytest

from wampgate.core import errors
from wampgate.tx import wire
from wampgate.tx.payload import DEFAULT_MAX_NESTING, MAX_INT, MIN_INT, InvalidValue, MalformedValue, check_message

PUBLISH, SUBSCRIBE, CALL, REGISTER, YIELD, ERROR, INVOCATION = 16, 32, 48, 64, 70, 8, 68
CODECS = wire.make_codecs()
SERIALIZERS = ("json", "msgpack", "cbor")
REFUSED = "refused"  # PayloadRefusal with ERROR wamp.error.invalid_argument
VIOLATION = "violation"  # ProtocolViolation: ABORT


# -- building the bytes of one acknowledged PUBLISH whose only argument is a hand-encoded value -----------------


def publish_prefix(serializer: str) -> bytes:
    """The encoding of [16, 1, {"acknowledge": true}, "com.example.t", [ ... with one element still to come."""
    head = [PUBLISH, 1, {"acknowledge": True}, "com.example.t"]
    if serializer == "msgpack":
        return b"\x95" + b"".join(msgpack.packb(item) for item in head) + b"\x91"
    return b"\x85" + b"".join(cbor2.dumps(item) for item in head) + b"\x81"


def publish_of(serializer: str, value: bytes) -> bytes:
    """`value` is JSON text or the item's encoded bytes in MessagePack/CBOR."""
    if serializer == "json":
        return b'[16,1,{"acknowledge":true},"com.example.t",[' + value + b"]]"
    return publish_prefix(serializer) + value


def nested(serializer: str, depth: int) -> bytes:
    """`depth` arrays inside one another around the integer 1."""
    if serializer == "json":
        return b"[" * depth + b"1" + b"]" * depth
    return (b"\x91" if serializer == "msgpack" else b"\x81") * depth + b"\x01"


LONE_SURROGATE_UTF8 = b"\xed\xa0\x80"  # U+D800 written as if it were a character: invalid UTF-8

# kind -> {serializer: (encoded value, outcome)}; a serializer that cannot express the kind is left out.
BAD_VALUES = {
    "int above 2^64-1": {
        "json": (b"18446744073709551616", REFUSED),
        "cbor": (cbor2.dumps(2**64), REFUSED),  # a bignum: CBOR tag 2
    },
    "int below -2^63": {
        "json": (b"-9223372036854775809", REFUSED),
        "cbor": (cbor2.dumps(-(2**63) - 1), REFUSED),  # CBOR's own negative integers reach -2^64
    },
    "float overflowing to infinity": {
        "json": (b"1e99999", REFUSED),
        "msgpack": (msgpack.packb(float("inf")), REFUSED),
        "cbor": (cbor2.dumps(float("inf")), REFUSED),
    },
    "negative infinity": {
        "json": (b"-Infinity", REFUSED),
        "msgpack": (msgpack.packb(float("-inf")), REFUSED),
        "cbor": (cbor2.dumps(float("-inf")), REFUSED),
    },
    "NaN": {
        "json": (b"NaN", REFUSED),
        "msgpack": (msgpack.packb(float("nan")), REFUSED),
        "cbor": (cbor2.dumps(float("nan")), REFUSED),
    },
    "lone surrogate in a string": {
        "json": (b'"a\\ud800b"', REFUSED),
        "msgpack": (b"\xa3" + LONE_SURROGATE_UTF8, VIOLATION),  # not UTF-8: the decoder refuses the bytes
        "cbor": (b"\x63" + LONE_SURROGATE_UTF8, VIOLATION),
    },
    "lone surrogate in a map key": {
        "json": (b'{"\\udc00":1}', REFUSED),
        "msgpack": (b"\x81\xa3" + LONE_SURROGATE_UTF8 + b"\x01", VIOLATION),
        "cbor": (b"\xa1\x63" + LONE_SURROGATE_UTF8 + b"\x01", VIOLATION),
    },
    "string starting with NUL from a binary serializer": {
        "msgpack": (msgpack.packb("\x00AQI="), REFUSED),
        "cbor": (cbor2.dumps("\x00AQI="), REFUSED),
    },
    "NUL-prefixed JSON string that is not base64": {
        "json": (b'"\\u0000AQI"', REFUSED),
    },
    "integer map key": {
        "msgpack": (b"\x81\x01\x01", VIOLATION),
        "cbor": (b"\xa1\x01\x01", VIOLATION),
    },
    "byte-string map key": {
        "msgpack": (msgpack.packb({b"k": 1}), VIOLATION),
        "cbor": (cbor2.dumps({b"k": 1}), VIOLATION),
    },
    "array as map key": {
        "cbor": (b"\xa1\x81\x01\x01", VIOLATION),
    },
    "CBOR tag 1 (epoch datetime)": {"cbor": (b"\xc1\x01", REFUSED)},
    "CBOR tag 35 (regex) that would not compile": {"cbor": (b"\xd8\x23\x61(", REFUSED)},
    "CBOR tag 36 (MIME)": {"cbor": (b"\xd8\x24\x61x", REFUSED)},
    "CBOR tag 29 (shared reference) to nothing": {"cbor": (b"\xd8\x1d\x00", REFUSED)},
    "CBOR tag 28 (shareable)": {"cbor": (b"\xd8\x1c\x80", REFUSED)},
    "CBOR tag 55799 (self-describe)": {"cbor": (b"\xd9\xd9\xf7\x01", REFUSED)},
    "CBOR tag 258 (set)": {"cbor": (b"\xd9\x01\x02\x80", REFUSED)},
    "CBOR unknown tag 99999": {"cbor": (b"\xda\x00\x01\x86\x9f\x01", REFUSED)},
    "CBOR undefined": {"cbor": (b"\xf7", REFUSED)},
    "CBOR simple value 16": {"cbor": (b"\xf0", REFUSED)},
    "MessagePack extension type 5": {"msgpack": (msgpack.packb(msgpack.ExtType(5, b"ab")), REFUSED)},
    "MessagePack timestamp": {"msgpack": (msgpack.packb(msgpack.Timestamp(1, 0)), REFUSED)},
    f"nested {DEFAULT_MAX_NESTING} levels below args": {
        name: (nested(name, DEFAULT_MAX_NESTING), REFUSED) for name in SERIALIZERS
    },
    "nested 450 levels": {name: (nested(name, 450), REFUSED) for name in SERIALIZERS},
    "nested 2000 levels (beyond what the decoders read)": {
        name: (nested(name, 2000), VIOLATION) for name in SERIALIZERS
    },
}
BAD_CASES = [
    pytest.param(serializer, encoded, outcome, id=f"{kind}-{serializer}")
    for kind, per_serializer in BAD_VALUES.items()
    for serializer, (encoded, outcome) in per_serializer.items()
]

GOOD_VALUES = {
    "largest unsigned 64-bit int": ({"json": b"18446744073709551615"}, MAX_INT),
    "smallest signed 64-bit int": ({"json": b"-9223372036854775808"}, MIN_INT),
    "largest finite float": ({"json": b"1.7976931348623157e308"}, 1.7976931348623157e308),
    "non-ASCII text": ({"json": '"grüße ✓ 😀"'.encode()}, "grüße ✓ 😀"),
    "a surrogate pair (one astral character)": ({"json": b'"\\ud83d\\ude00"'}, "😀"),
    "bytes": ({"json": b'"\\u0000AQI="'}, b"\x01\x02"),
    "nested exactly max_nesting levels below the PUBLISH": (
        {name: nested(name, DEFAULT_MAX_NESTING - 1) for name in SERIALIZERS}, None
    ),
}


def good_encodings(value) -> dict[str, bytes]:
    """The value as each serializer writes it (JSON via Autobahn's encoder, so bytes take its NUL form)."""
    return {name: CODECS.serializers[name]._serializer.serialize(value) for name in SERIALIZERS}


def parse(serializer: str, payload: bytes, **limits):
    codec = CODECS.serializers[serializer]
    return wire.parse(codec, payload, None, **limits)


def outcome_of(serializer: str, payload: bytes) -> str:
    try:
        (item,) = parse(serializer, payload)
    except wire.ProtocolViolation:
        return VIOLATION
    if type(item) is wire.PayloadRefusal:
        assert item.answer.marshal()[:5] == [ERROR, PUBLISH, 1, {}, errors.INVALID_ARGUMENT]
        return REFUSED
    return "accepted"


# -- the table --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("serializer", "encoded", "outcome"), BAD_CASES)
def test_every_value_not_every_serializer_can_write_is_refused(serializer, encoded, outcome):
    """Each kind of foreign value is refused on the way in, by every serializer that can express it: with ERROR
    wamp.error.invalid_argument when the message is well-formed, as a violation when the value breaks WAMP's data
    model (map keys) or the decoder cannot read the bytes at all."""
    assert outcome_of(serializer, publish_of(serializer, encoded)) == outcome


@pytest.mark.parametrize(("kind", "value"), [(k, v) for k, (_, v) in GOOD_VALUES.items()], ids=list(GOOD_VALUES))
def test_values_at_the_edges_pass(kind, value):
    """The boundaries themselves pass, from JSON text and from every serializer's own encoding of them."""
    encodings, expected = GOOD_VALUES[kind]
    for serializer, encoded in encodings.items():
        (item,) = parse(serializer, publish_of(serializer, encoded))
        assert type(item) is tuple, (serializer, item)
        if expected is not None:
            assert item[0].args == [expected]
    if expected is not None:
        message = [PUBLISH, 1, {"acknowledge": True}, "com.example.t", [expected]]
        for serializer, payload in good_encodings(message).items():
            (item,) = parse(serializer, payload)
            assert type(item) is tuple and item[0].args == [expected], serializer


def test_max_nesting_is_the_same_for_every_serializer_and_counts_from_args():
    """args, kwargs and options are level 1: with max_nesting 3, args [[[1]]] passes and [[[[1]]]] does not, from
    every serializer."""
    for serializer in SERIALIZERS:
        payload = publish_of(serializer, nested(serializer, 2))  # args + 2 = 3 levels
        assert type(parse(serializer, payload, max_nesting=3)[0]) is tuple
        payload = publish_of(serializer, nested(serializer, 3))
        (item,) = parse(serializer, payload, max_nesting=3)
        assert type(item) is wire.PayloadRefusal and item.detail == "containers nested deeper than max_nesting"
    (item,) = parse("json", publish_of("json", b"[[[]]]"), max_nesting=3)  # an empty one counts too
    assert type(item) is wire.PayloadRefusal


def test_the_refusal_names_the_kind_of_value_but_never_the_value():
    """The ERROR text says what kind of value was refused (it is safe to send: it holds nothing the client sent)."""
    (item,) = parse("json", publish_of("json", b'"\\u0000zq7leak"'))
    assert item.detail == "a NUL-prefixed string that is not base64"
    assert "zq7leak" not in repr(item.answer.marshal())
    (item,) = parse("cbor", publish_of("cbor", b"\xd8\x23\x61("))
    assert item.detail == "CBOR tag 35"


# -- how each kind of message is answered ----------------------------------------------------------------------

BIG = 2**64  # refused from JSON


def json_message(message: list) -> bytes:
    return json.dumps(message).encode()


def test_a_request_is_answered_with_invalid_argument_carrying_its_request_id():
    """SUBSCRIBE, CALL and REGISTER with a refused value in their options or args are answered with ERROR
    wamp.error.invalid_argument for their request type and id."""
    for message in (
        [SUBSCRIBE, 11, {"x": BIG}, "com.example.t"],
        [CALL, 12, {}, "com.example.p", [1, BIG]],
        [CALL, 13, {}, "com.example.p", [], {"k": {"deep": BIG}}],
        [REGISTER, 14, {"x": [BIG]}, "com.example.p"],
    ):
        (item,) = parse("json", json_message(message))
        assert type(item) is wire.PayloadRefusal
        assert item.answer.marshal()[:5] == [ERROR, message[0], message[1], {}, errors.INVALID_ARGUMENT]
        assert item.invocation is None


def test_an_unacknowledged_publish_is_refused_without_an_answer():
    """A PUBLISH that did not ask for acknowledgement gets no ERROR (the spec answers it only when asked)."""
    (item,) = parse("json", json_message([PUBLISH, 3, {}, "com.example.t", [BIG]]))
    assert type(item) is wire.PayloadRefusal and item.answer is None and item.invocation is None


def test_a_callee_answer_ends_its_call_instead():
    """A YIELD or a callee's ERROR has no reply in WAMP: the refusal names the invocation it answered and whether
    the callee is done with it (a progressive YIELD is not)."""
    cases = [
        ([YIELD, 5, {}, [BIG]], True),
        ([YIELD, 6, {"progress": True}, [BIG]], False),
        ([ERROR, INVOCATION, 7, {}, "com.example.oops", [BIG]], True),
    ]
    for message, final in cases:
        (item,) = parse("json", json_message(message))
        assert type(item) is wire.PayloadRefusal
        assert (item.answer, item.invocation, item.final) == (None, message[1] if message[0] == YIELD else 7, final)


def test_both_passthrough_forms_are_parsed_not_refused():
    """The spec's passthrough form (`ppt_scheme` ... in the options, the payload as the only argument) is parsed into
    one argument that keeps its ppt_* options (router/tx/passthru.py; tests/unit/test_passthru.py for its rules);
    Autobahn's own cryptobox form (`enc_algo`) passes as before."""
    ppt = {"ppt_scheme": "x_custom", "ppt_serializer": "native"}
    (publish,) = parse("json", json_message([PUBLISH, 3, {**ppt, "acknowledge": True}, "com.example.t", ["\u0000AAEC"]]))
    assert type(publish) is tuple and publish[0].args == [b"\x00\x01\x02"] and publish[0].payload is None
    assert publish[0].args[0].options == (("ppt_scheme", "x_custom"), ("ppt_serializer", "native"))
    cryptobox = {"enc_algo": "cryptobox", "enc_key": "k", "enc_serializer": "json"}
    (encrypted,) = parse("msgpack", msgpack.packb([PUBLISH, 7, cryptobox, "com.example.t", b"\x01\x02"]))
    assert type(encrypted) is tuple and encrypted[0].payload == b"\x01\x02"
    assert type(encrypted[0].payload) is bytes


@pytest.mark.parametrize(
    "message",
    [
        [1, "realm1", {"roles": {"subscriber": {}}, "authextra": {"n": BIG}}],
        [5, "signature", {"n": BIG}],
        [6, {"n": BIG}, "wamp.close.normal"],
        [3, {"n": BIG}, "wamp.close.normal"],
        [49, 3, {"n": BIG}],
        [ERROR, CALL, 7, {}, "com.example.oops", [BIG]],
    ],
    ids=["hello", "authenticate", "goodbye", "abort", "cancel", "error-for-a-call"],
)
def test_messages_without_an_answer_are_violations(message):
    """HELLO, AUTHENTICATE, GOODBYE, ABORT and CANCEL have no reply that could carry the refusal, and a client's
    ERROR is only valid for an INVOCATION: a refused value in them is a protocol violation."""
    with pytest.raises(wire.ProtocolViolation):
        parse("json", json_message(message))


def test_a_malformed_message_stays_a_violation_and_an_invalid_uri_stays_invalid_uri():
    """A refused value does not turn a malformed message into an ERROR (a request id that is not an id), and an
    invalid URI is still answered as one."""
    with pytest.raises(wire.ProtocolViolation):
        parse("json", json_message([CALL, BIG, {}, "com.example.p", [BIG]]))
    with pytest.raises(wire.ProtocolViolation):
        parse("json", json_message([PUBLISH, 1, [], "com.example.t", [BIG]]))
    (item,) = parse("json", json_message([CALL, 4, {}, "com..p", [BIG]]))
    assert type(item) is wire.UriRefusal and item.request == 4


# -- decoders ---------------------------------------------------------------------------------------------------


def test_json_binary_strings_decode_exactly_as_autobahn_reads_them():
    """Autobahn's JSON convention: a string value starting with NUL is base64 for bytes (lenient base64, like its
    decoder); map keys are never converted; a lone NUL is empty bytes."""
    autobahn_json = CODECS.serializers["json"]._serializer
    message = [
        PUBLISH, 1, {"acknowledge": True}, "com.example.t",
        ["\x00AQI=", "\x00", "plain", ["\x00/w=="], {"\x00key": "\x00AAEC"}, "\x00A Q I =", "ok\x00"],
        {"\x00AQI=": {"inner": ["\x00AQI="]}},
    ]
    payload = json.dumps(message).encode()
    (item,) = parse("json", payload)
    (expected,) = autobahn_json.unserialize(payload)
    assert [PUBLISH, 1, {"acknowledge": True}, "com.example.t", item[0].args, item[0].kwargs] == expected
    assert item[0].args[0] == b"\x01\x02" and item[0].args[1] == b"" and item[0].args[5] == b"\x01\x02"
    assert list(item[0].kwargs) == ["\x00AQI="]


def test_json_binary_strings_round_trip_through_autobahns_encoder():
    """Bytes from any serializer reach a JSON peer as Autobahn writes them and come back as the same bytes."""
    value = [bytes(range(256)), b"", {"k": b"\xff" * 3}]
    message = [PUBLISH, 1, {"acknowledge": True}, "com.example.t", value]
    for serializer, payload in good_encodings(message).items():
        (item,) = parse(serializer, payload)
        assert item[0].args == value, serializer


def test_a_payload_holds_exactly_one_message():
    """Batched serializers are never offered, so a second message in the same payload (JSON's batch separator,
    concatenated MessagePack or CBOR) is a violation, never silently dropped."""
    one = [PUBLISH, 1, {}, "com.example.t", [1]]
    for serializer, payload in good_encodings(one).items():
        for extra in (payload, b"\x18" + payload + b"\x18", b"\x00"):
            with pytest.raises(wire.ProtocolViolation):
                parse(serializer, payload + extra)
    assert all(s.SERIALIZER_ID in wire.DECODERS for s in CODECS.serializers.values())


def test_cbor_tag_decoders_never_run():
    """Each tag becomes a marker before its own decoder could run: content that would make that decoder fail (a
    regex that does not compile, a shared reference to nothing, a bignum that is not bytes) still yields the
    refusal rather than a decode error, for every tag number cbor2 knows and some it does not."""
    for tag in (0, 1, 2, 3, 4, 5, 21, 22, 23, 24, 25, 28, 29, 30, 32, 33, 34, 35, 36, 37, 38, 52, 54, 256, 258, 260,
                261, 1004, 55799, 100, 12345, 2**32 + 1):
        payload = publish_prefix("cbor") + cbor2.dumps(cbor2.CBORTag(tag, "(")) if tag != 2**32 + 1 else \
            publish_prefix("cbor") + b"\xdb" + struct.pack(">Q", tag) + b"\x61("
        (item,) = parse("cbor", payload)
        assert type(item) is wire.PayloadRefusal and item.detail == f"CBOR tag {tag}", tag


# -- the size limit before WELCOME ------------------------------------------------------------------------------


def test_max_size_refuses_before_decoding():
    """With a `max_size` (max_hello_size before WELCOME), a payload over it is a violation whatever it holds, and
    nothing is decoded; at the limit it is read as usual."""
    hello = json_message([1, "realm1", {"roles": {"subscriber": {}}}])
    assert type(parse("json", hello, max_size=len(hello))[0]) is tuple
    with pytest.raises(wire.ProtocolViolation, match="before WELCOME"):
        parse("json", hello + b" ", max_size=len(hello))
    with pytest.raises(wire.ProtocolViolation, match="before WELCOME"):
        parse("json", b"\xff" * 100, max_size=99)  # not even valid UTF-8: never looked at


# -- the walk on its own ----------------------------------------------------------------------------------------


def test_the_walk_refuses_python_values_no_decoder_makes():
    """Anything outside the plain types is refused, including a tuple, a set and a bool subclass's sibling types;
    non-string keys are MalformedValue."""
    for value in ((1,), {1}, 1j, bytearray(b"x"), object()):
        with pytest.raises(InvalidValue):
            check_message([PUBLISH, 1, {}, "t", [value]], DEFAULT_MAX_NESTING, False)
    for key in (1, b"k", None, 1.5, True):
        with pytest.raises(MalformedValue):
            check_message([PUBLISH, 1, {}, "t", [], {key: 1}], DEFAULT_MAX_NESTING, False)


def test_the_walk_stops_at_a_cycle():
    """Even a self-containing list (no decoder can make one once tags are refused) ends at max_nesting."""
    loop: list = []
    loop.append(loop)
    with pytest.raises(InvalidValue, match="nested deeper"):
        check_message([PUBLISH, 1, {}, "t", loop], DEFAULT_MAX_NESTING, False)
