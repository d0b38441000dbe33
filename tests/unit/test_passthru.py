"""Payload passthrough in the spec's ppt_* form (router/tx/passthru.py): parsed from the bytes a client sends, routed
by the real core, and written out again for each serializer.

Pins down: the payload and its ppt_* options reach the EVENT, INVOCATION, RESULT (progressive too), the caller's
ERROR and a retained EVENT unchanged, on JSON, MessagePack and CBOR alike, whatever the scheme (the spec's "wamp",
"mqtt", a custom "x_" one), the payload never read (any bytes, empty included); every broken form is a protocol
violation naming the option or part; HELLO's `payload_passthru_mode` is kept and WELCOME answers it within its
512-byte budget.
"""

from __future__ import annotations

import itertools
import json

import autobahn.twisted  # noqa: F401  selects Twisted for txaio before autobahn's serializers are first imported
import cbor2
import msgpack
import pytest
from autobahn.wamp import message as wamp
from autobahn.wamp.role import RoleCalleeFeatures, RoleCallerFeatures, RolePublisherFeatures, RoleSubscriberFeatures
from autobahn.wamp.serializer import MsgPackObjectSerializer

from wampgate.config import LimitsConfig
from wampgate.core.effects import Send
from wampgate.core.peer import Peer
from wampgate.core.realm import Realm
from wampgate.tx import wire
from wampgate.core.passthru import PassthruPayload, passthru_of
from wampgate.tx.passthru import MAX_OPTION_LENGTH, spec_form
from wampgate.uri import UriPolicy

HELLO, ERROR, PUBLISH, EVENT, SUBSCRIBE, CALL, RESULT, REGISTER, INVOCATION, YIELD = (
    1, 8, 16, 36, 32, 48, 50, 64, 68, 70)
CODECS = wire.make_codecs()
ENCODE = {"json": lambda raw: json.dumps(raw).encode(), "msgpack": msgpack.packb, "cbor": cbor2.dumps}
DECODE = {"json": lambda data: json.loads(data), "msgpack": lambda data: msgpack.unpackb(data, raw=False),
          "cbor": cbor2.loads}
SERIALIZERS = ("json", "msgpack", "cbor")
OPTIONS = [
    {"ppt_scheme": "wamp", "ppt_serializer": "cbor", "ppt_cipher": "xsalsa20poly1305", "ppt_keyid": "a2V5LTE="},
    {"ppt_scheme": "mqtt"},
    {"ppt_scheme": "x_acme", "ppt_serializer": "x_protobuf"},
]
PAYLOADS = [b"\x00\xff\x80binary", b""]


def binary(serializer: str, data: bytes):
    """How `data` travels in a message of `serializer` (Autobahn's JSON writes bytes as NUL + base64)."""
    if serializer != "json":
        return data
    import base64

    return "\x00" + base64.b64encode(data).decode()


def inbound(serializer: str, raw: list) -> wamp.Message:
    """The message the router makes of `raw` as a client would send it in `serializer`."""
    (item,) = wire.parse(CODECS.serializers[serializer], ENCODE[serializer](raw), None)
    assert type(item) is tuple, item
    return item[0]


def outbound(serializer: str, msg: wamp.Message) -> list:
    """The raw message a client of `serializer` receives for `msg` (framing stripped by decoding the bytes the
    shared frame cache holds; the frame's header is 2 to 10 bytes for WebSocket)."""
    key = CODECS.frames[("rawsocket", serializer)]
    framed = key.frame(msg)
    decoded = DECODE[serializer](framed[4:])
    if serializer == "json":  # back to bytes, as Autobahn's JSON reader does
        decoded = [[_unbinary(v) for v in item] if type(item) is list else item for item in decoded]
    return decoded


def _unbinary(value):
    import base64

    return base64.b64decode(value[1:]) if type(value) is str and value.startswith("\x00") else value


def peer(session_id: int, **roles) -> Peer:
    return Peer(session_id, "realm1", authid=f"user{session_id}", authrole="user", authmethod="anonymous",
                authprovider="static", roles=roles)


def make_realm() -> tuple[Realm, Peer, Peer]:
    realm = Realm("realm1", UriPolicy(), itertools.count(1).__next__, lambda c: c[0], limits=LimitsConfig())
    first = peer(1, caller=RoleCallerFeatures(progressive_call_results=True))
    second = peer(2, callee=RoleCalleeFeatures(progressive_call_results=True))
    realm.join(first)
    realm.join(second)
    return realm, first, second


def sent_to(effects, who: Peer, kind: type) -> wamp.Message:
    [message] = [e.message for e in effects if isinstance(e, Send) and who in e.recipients
                 and type(e.message) is kind]
    return message


@pytest.mark.parametrize("serializer", SERIALIZERS)
@pytest.mark.parametrize("options", OPTIONS, ids=["wamp", "mqtt", "custom"])
@pytest.mark.parametrize("data", PAYLOADS, ids=["bytes", "empty"])
def test_publish_to_event_and_retained_event_keep_payload_and_options(serializer, options, data):
    """A PUBLISH in the ppt_* form becomes an EVENT carrying the same options in its details and the same bytes as
    its only argument, and so does the retained copy a later subscriber gets (marked retained)."""
    realm, publisher, subscriber = make_realm()
    realm.receive(subscriber, wamp.Subscribe(1, "com.example.t"))
    publish = inbound(serializer, [PUBLISH, 2, {**options, "retain": True}, "com.example.t",
                                   [binary(serializer, data)]])
    assert type(passthru_of(publish.args)) is PassthruPayload and publish.kwargs is None and publish.payload is None

    event = sent_to(realm.receive(publisher, publish), subscriber, wamp.Event)
    raw = outbound(serializer, event)
    assert raw[:3] == [EVENT, event.subscription, event.publication]
    assert raw[3] == options and raw[4:] == [[data]]

    later = peer(3)
    realm.join(later)
    retained = sent_to(realm.receive(later, wamp.Subscribe(4, "com.example.t", get_retained=True)), later, wamp.Event)
    assert outbound(serializer, retained)[3:] == [{**options, "retained": True}, [data]]


@pytest.mark.parametrize("serializer", SERIALIZERS)
@pytest.mark.parametrize("options", OPTIONS, ids=["wamp", "mqtt", "custom"])
def test_call_yield_and_error_keep_payload_and_options(serializer, options):
    """CALL -> INVOCATION, progressive and final YIELD -> RESULT, and a callee's ERROR -> the caller's ERROR each
    carry the sender's ppt_* options and bytes unchanged, next to the router's own details."""
    realm, caller, callee = make_realm()
    realm.receive(callee, wamp.Register(1, "com.example.p"))
    call = inbound(serializer, [CALL, 7, {**options, "receive_progress": True}, "com.example.p",
                                [binary(serializer, b"\x01call")]])
    invocation = sent_to(realm.receive(caller, call), callee, wamp.Invocation)
    raw = outbound(serializer, invocation)
    assert raw[3] == {**options, "receive_progress": True} and raw[4:] == [[b"\x01call"]]

    answer = {**options, "ppt_keyid": "callee-key"}
    progress = inbound(serializer, [YIELD, invocation.request, {**answer, "progress": True},
                                    [binary(serializer, b"\x02part")]])
    result = sent_to(realm.receive(callee, progress), caller, wamp.Result)
    assert outbound(serializer, result) == [RESULT, 7, {**answer, "progress": True}, [b"\x02part"]]
    final = inbound(serializer, [YIELD, invocation.request, answer, [binary(serializer, b"\x03end")]])
    assert outbound(serializer, sent_to(realm.receive(callee, final), caller, wamp.Result)) == [
        RESULT, 7, answer, [b"\x03end"]]

    second = sent_to(realm.receive(caller, inbound(serializer, [CALL, 8, options, "com.example.p",
                                                                [binary(serializer, b"")]])), callee, wamp.Invocation)
    failed = inbound(serializer, [ERROR, INVOCATION, second.request, answer, "com.example.oops",
                                  [binary(serializer, b"\x04why")], {}])
    error = sent_to(realm.receive(callee, failed), caller, wamp.Error)
    assert outbound(serializer, error) == [ERROR, CALL, 8, answer, "com.example.oops", [b"\x04why"]]


def test_a_plain_message_is_not_touched():
    """Without ppt_* options nothing changes: args stay args, the payload stays Autobahn's, and spec_form leaves the
    message to Autobahn's own marshalling."""
    publish = inbound("msgpack", [PUBLISH, 1, {"acknowledge": True}, "com.example.t", [b"\x01", 2], {"k": 3}])
    assert (publish.args, publish.kwargs, publish.payload) == ([b"\x01", 2], {"k": 3}, None)
    assert spec_form(wamp.Event(1, 2, args=[1])) is None
    assert spec_form(wamp.Event(1, 2, payload=b"\x01", enc_algo="cryptobox")) is None


BROKEN = [
    ({"ppt_scheme": 7}, [b"x"], "ppt_scheme must be a non-empty string (got int)"),
    ({"ppt_scheme": ""}, [b"x"], "ppt_scheme must be a non-empty string (got str)"),
    ({"ppt_scheme": None}, [b"x"], "ppt_scheme must be a non-empty string (got NoneType)"),
    ({"ppt_scheme": "mqtt", "ppt_serializer": ["json"]}, [b"x"], "ppt_serializer must be a non-empty string"),
    ({"ppt_scheme": "mqtt", "ppt_cipher": True}, [b"x"], "ppt_cipher must be a non-empty string (got bool)"),
    ({"ppt_scheme": "mqtt", "ppt_keyid": {"id": 1}}, [b"x"], "ppt_keyid must be a non-empty string (got dict)"),
    ({"ppt_scheme": "m" * (MAX_OPTION_LENGTH + 1)}, [b"x"], f"at most {MAX_OPTION_LENGTH} characters"),
    ({"ppt_serializer": "cbor"}, [b"x"], "ppt_scheme is required"),
    ({"ppt_keyid": "k"}, [b"x"], "ppt_scheme is required"),
    ({"ppt_scheme": "mqtt"}, [], "exactly one binary payload (got 0 items)"),
    ({"ppt_scheme": "mqtt"}, [b"x", b"y"], "exactly one binary payload (got 2 items)"),
    ({"ppt_scheme": "mqtt"}, ["text"], "exactly one binary payload (got 1 items of type str)"),
    ({"ppt_scheme": "mqtt"}, [[1]], "of type list"),
    ({"ppt_scheme": "mqtt"}, None, "not missing or bare"),
    ({"ppt_scheme": "mqtt"}, b"bare", "not missing or bare"),
]


@pytest.mark.parametrize("serializer", ["msgpack", "cbor"])
@pytest.mark.parametrize(("options", "args", "problem"), BROKEN, ids=[str(i) for i in range(len(BROKEN))])
def test_a_broken_passthrough_form_is_a_protocol_violation(serializer, options, args, problem):
    """Every broken ppt_* form is refused like any other malformed option, with ABORT wamp.error.protocol_violation
    (here: a ProtocolViolation naming the message, the option or part and what is allowed), for PUBLISH, CALL and
    YIELD alike: routed on, its receivers could not tell how to read the payload."""
    tail = [] if args is None else [args]
    for raw in ([PUBLISH, 1, {**options, "acknowledge": True}, "com.example.t", *tail],
                [CALL, 2, options, "com.example.p", *tail],
                [YIELD, 3, options, *tail]):
        with pytest.raises(wire.ProtocolViolation, match="payload passthrough form") as refused:
            wire.parse(CODECS.serializers[serializer], ENCODE[serializer](raw), None)
        assert problem in str(refused.value)


def test_kwargs_must_be_missing_or_empty():
    """The spec's form has no kwargs: an empty dict is allowed, any key is a protocol violation."""
    inbound("msgpack", [PUBLISH, 1, {"ppt_scheme": "mqtt"}, "com.example.t", [b"x"], {}])
    with pytest.raises(wire.ProtocolViolation, match="kwargs must be missing or empty"):
        inbound("msgpack", [PUBLISH, 1, {"ppt_scheme": "mqtt"}, "com.example.t", [b"x"], {"k": 1}])


def test_a_json_payload_must_be_binary():
    """From JSON the payload must be Autobahn's binary string (NUL + base64): a plain string is not binary."""
    with pytest.raises(wire.ProtocolViolation, match="of type str"):
        inbound("json", [PUBLISH, 1, {"ppt_scheme": "mqtt"}, "com.example.t", ["plain text"]])


def test_hello_keeps_the_payload_passthru_mode_announcement():
    """Autobahn's HELLO parser drops features it does not know; the router keeps `payload_passthru_mode` on the
    parsed role features, and a value that is not a bool is malformed."""
    roles = {"publisher": {"features": {"payload_passthru_mode": True}}, "callee": {"features": {}},
             "subscriber": {}}
    hello = inbound("json", [HELLO, "realm1", {"roles": roles}])
    assert hello.roles["publisher"].payload_passthru_mode is True
    assert not hasattr(hello.roles["callee"], "payload_passthru_mode")
    with pytest.raises(wire.ProtocolViolation, match="payload_passthru_mode of role caller must be a bool"):
        inbound("json", [HELLO, "realm1", {"roles": {"caller": {"features": {"payload_passthru_mode": "yes"}}}}])


def announced(features) -> object:
    setattr(features, "payload_passthru_mode", True)
    return features


def welcome_size(roles) -> int:
    welcome = wamp.Welcome(2**53, roles, realm="realm1", authid="anonymous-0123456789abcdef", authrole="anonymous",
                           authmethod="anonymous", authprovider="static")
    return len(MsgPackObjectSerializer().serialize(welcome.marshal()))


def test_welcome_announces_payload_passthru_mode_to_a_client_that_announced_it():
    """The broker announces payload_passthru_mode to a client that announced it as publisher or subscriber, the
    dealer to one that announced it as caller or callee; a client that did not announce it is not told, and its
    smallest WELCOME stays within the 512 bytes of the smallest RawSocket receive limit."""
    realm, _, _ = make_realm()
    pubsub = realm.router_roles({"subscriber": announced(RoleSubscriberFeatures())})
    assert getattr(pubsub["broker"], "payload_passthru_mode", None) is True
    assert getattr(pubsub["dealer"], "payload_passthru_mode", None) is None
    both = realm.router_roles({"publisher": announced(RolePublisherFeatures()),
                               "callee": announced(RoleCalleeFeatures())})
    assert both["broker"].payload_passthru_mode is True and both["dealer"].payload_passthru_mode is True
    plain = realm.router_roles({"publisher": RolePublisherFeatures(), "callee": RoleCalleeFeatures()})
    assert not hasattr(plain["broker"], "payload_passthru_mode")
    assert not hasattr(plain["dealer"], "payload_passthru_mode")
    assert welcome_size(realm.router_roles(None)) <= 512
