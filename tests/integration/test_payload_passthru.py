"""Payload passthrough in the WAMP spec's ppt_* form end to end: a real router and real Autobahn (Twisted) clients
over WebSocket and RawSocket, each serializer.

Autobahn Python has no API for this form (it reads and writes only its own `enc_algo` form, and its parser drops the
ppt_* options), so the clients here send it the way a client of the spec would put it on the wire: the payload is
the one argument of an ordinary publish / call / yield / error, and the outgoing message is written with its ppt_*
options (`speaks_ppt`); what arrives is read from the wire, before Autobahn's parser drops the options (`raw_inbound`).

Pins down: PUBLISH -> EVENT, CALL -> INVOCATION, progressive and final YIELD -> RESULT and a callee's ERROR -> ERROR
carry the sender's ppt_* options and bytes unchanged, between different serializers too; a retained event keeps
them; a payload schema on the topic does not apply to them; a session not allowed to subscribe gets nothing; a bad
ppt option ends the session with wamp.error.protocol_violation; WELCOME announces payload_passthru_mode to a client
that announced it.
"""

from __future__ import annotations

import copy
import json
import textwrap

import pytest
import pytest_twisted
from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.role import DEFAULT_CLIENT_ROLES
from autobahn.wamp.types import CallOptions, PublishOptions, RegisterOptions, SubscribeOptions

from tests.integration.conftest import target
from tests.integration.test_protocol_violations import (  # noqa: F401  `clients` is a fixture
    CLOSE_PROTOCOL_ERROR,
    PROTOCOL_VIOLATION,
    clients,
    expect_abort,
    open_client,
)
from tests.support.clients import Collector, connect, leave_all
from tests.support.raw import bounded, open_rawsocket
from tests.support.router import REALM1_ANONYMOUS_ALL, listener, start_router
from tests.support.wait import eventually, still_serves

EVENT, RESULT, ERROR, INVOCATION, WELCOME = 36, 50, 8, 68, 2
# (sender's listener, transport, serializer), (receiver's ...): every serializer sends, and receives from another
PAIRS = [
    (("universal", "websocket", "json"), ("rawsocket", "rawsocket", "msgpack")),
    (("websocket", "websocket", "msgpack"), ("universal", "rawsocket", "cbor")),
    (("rawsocket", "rawsocket", "cbor"), ("universal", "websocket", "json")),
    (("universal", "rawsocket", "json"), ("websocket", "websocket", "cbor")),
]
PAIR_IDS = ["ws-json>raw-msgpack", "ws-msgpack>raw-cbor", "raw-cbor>ws-json", "raw-json>ws-cbor"]
E2EE = {"ppt_scheme": "wamp", "ppt_serializer": "cbor", "ppt_cipher": "xsalsa20poly1305", "ppt_keyid": "a2V5LTE="}
MQTT = {"ppt_scheme": "mqtt"}
CUSTOM = {"ppt_scheme": "x_acme", "ppt_serializer": "x_protobuf", "ppt_keyid": "acme-key-7"}


class Ppt(bytes):
    """A payload a test client sends in the ppt_* form, with the options it goes with."""

    def __new__(cls, data: bytes, options: dict) -> Ppt:
        payload = super().__new__(cls, data)
        payload.options = options
        return payload


class _PptForm:
    """Mixed into Autobahn's message classes: the one Ppt argument goes out as plain bytes, its options added."""

    __slots__ = ()
    DETAILS_AT = 2

    def marshal(self):
        raw = super().marshal()
        raw[self.DETAILS_AT] = {**raw[self.DETAILS_AT], **self.args[0].options}
        raw[-1] = [bytes(self.args[0])]
        return raw


class _PptPublish(_PptForm, message.Publish):
    __slots__ = ()


class _PptCall(_PptForm, message.Call):
    __slots__ = ()


class _PptYield(_PptForm, message.Yield):
    __slots__ = ()


class _PptError(_PptForm, message.Error):
    __slots__ = ()
    DETAILS_AT = 3


_PPT_FORMS = {message.Publish: _PptPublish, message.Call: _PptCall, message.Yield: _PptYield,
              message.Error: _PptError}


def speaks_ppt(session) -> None:
    """Whatever the session sends with a Ppt as its only argument goes out in the spec's form."""
    send = session._transport.send

    def sending(msg):
        form = _PPT_FORMS.get(type(msg))
        if form is not None and type(msg.args) in (list, tuple) and len(msg.args) == 1 and type(msg.args[0]) is Ppt:
            msg.__class__ = form
        return send(msg)

    session._transport.send = sending


class _Recording:
    """Autobahn's object serializer, recording every raw message it decodes."""

    def __init__(self, inner, seen: list):
        self._inner = inner
        self._seen = seen

    def unserialize(self, payload):
        raw = self._inner.unserialize(payload)
        self._seen.extend(copy.deepcopy(raw))
        return raw

    def __getattr__(self, name):
        return getattr(self._inner, name)


def raw_inbound(session) -> list:
    """Every message the session receives from now on, as decoded from the wire (ppt_* options included)."""
    seen: list = []
    serializer = session._transport._serializer
    serializer._serializer = _Recording(serializer._serializer, seen)
    return seen


def of_type(seen: list, kind: int) -> list:
    return [raw for raw in seen if raw[0] == kind]


async def ppt_client(where):
    session = await bounded(connect(where))
    speaks_ppt(session)
    return session


@pytest.mark.parametrize("pair", PAIRS, ids=PAIR_IDS)
@pytest_twisted.ensureDeferred
async def test_publish_reaches_the_subscriber_in_the_ppt_form(router, pair):
    """An acknowledged PUBLISH in the ppt_* form (each scheme: the spec's E2EE "wamp", "mqtt", a custom one) reaches
    a subscriber on another serializer as EVENTs with the same options in the details and the same bytes as the only
    argument; Autobahn hands the subscriber the bytes as they are."""
    publisher = await ppt_client(target(router, *pair[0]))
    subscriber = await bounded(connect(target(router, *pair[1])))
    seen = raw_inbound(subscriber)
    got = Collector(expected=3)
    await bounded(subscriber.subscribe(got, "com.example.ppt"))
    payloads = [(Ppt(b"\x00\xffsealed", E2EE)), Ppt(b"mqtt\x01\x02", MQTT), Ppt(b"", CUSTOM)]

    for payload in payloads:
        await bounded(publisher.publish("com.example.ppt", payload, options=PublishOptions(acknowledge=True)))
    events = await bounded(got.done)

    assert [args for args, _ in events] == [(bytes(p),) for p in payloads]
    assert [(raw[3], raw[4:]) for raw in of_type(seen, EVENT)] == [(p.options, [[bytes(p)]]) for p in payloads]
    await leave_all(publisher, subscriber)


@pytest.mark.parametrize("pair", PAIRS, ids=PAIR_IDS)
@pytest_twisted.ensureDeferred
async def test_call_invocation_progress_result_and_error_keep_the_ppt_form(router, pair):
    """A CALL in the ppt_* form reaches the callee (another serializer) as an INVOCATION with the caller's options and
    bytes; the callee's progressive and final YIELDs reach the caller as RESULTs with the callee's options and bytes
    (progress marked), and a callee's ERROR in the form reaches the caller as ERROR with them."""
    caller = await ppt_client(target(router, *pair[0]))
    callee = await ppt_client(target(router, *pair[1]))
    at_caller, at_callee = raw_inbound(caller), raw_inbound(callee)
    reply = {"ppt_scheme": "wamp", "ppt_serializer": "json", "ppt_keyid": "callee-key"}

    def answer(payload, details):
        if payload == b"fail":
            raise ApplicationError("com.example.refused", Ppt(b"\x07why", reply))
        details.progress(Ppt(b"\x01part", {**reply, "ppt_cipher": "aes256gcm"}))
        return Ppt(b"\x02all", reply)

    await bounded(callee.register(answer, "com.example.secret", options=RegisterOptions(details_arg="details")))
    progress = Collector()
    result = await bounded(caller.call("com.example.secret", Ppt(b"\x00ask", E2EE),
                                       options=CallOptions(on_progress=progress)))
    with pytest.raises(ApplicationError) as refused:
        await bounded(caller.call("com.example.secret", Ppt(b"fail", MQTT)))

    assert result == b"\x02all" and progress.events == [((b"\x01part",), {})]
    assert refused.value.error == "com.example.refused" and refused.value.args == (b"\x07why",)
    invocations = of_type(at_callee, INVOCATION)
    assert [(raw[3].get("ppt_scheme"), raw[4:]) for raw in invocations] == [("wamp", [[b"\x00ask"]]),
                                                                              ("mqtt", [[b"fail"]])]
    assert {k: v for k, v in invocations[0][3].items() if k.startswith("ppt_")} == E2EE
    assert {k: v for k, v in invocations[1][3].items() if k.startswith("ppt_")} == MQTT
    results = of_type(at_caller, RESULT)
    assert [raw[2:] for raw in results] == [[{**reply, "ppt_cipher": "aes256gcm", "progress": True}, [b"\x01part"]],
                                            [reply, [b"\x02all"]]]
    [error] = of_type(at_caller, ERROR)
    assert error[3:] == [reply, "com.example.refused", [b"\x07why"]]
    await leave_all(caller, callee)


@pytest.mark.parametrize("pair", PAIRS[:2], ids=PAIR_IDS[:2])
@pytest_twisted.ensureDeferred
async def test_a_retained_ppt_event_keeps_its_options(router, pair):
    """A retained PUBLISH in the ppt_* form is delivered to a later subscriber (get_retained) with the same options
    and bytes, marked retained."""
    publisher = await ppt_client(target(router, *pair[0]))
    await bounded(publisher.publish("com.example.kept", Ppt(b"\x05state", CUSTOM),
                                    options=PublishOptions(acknowledge=True, retain=True)))
    subscriber = await bounded(connect(target(router, *pair[1])))
    seen = raw_inbound(subscriber)
    got = Collector()
    await bounded(subscriber.subscribe(got, "com.example.kept", options=SubscribeOptions(get_retained=True)))

    assert await bounded(got.done) == [((b"\x05state",), {})]
    [event] = of_type(seen, EVENT)
    assert event[3:] == [{**CUSTOM, "retained": True}, [b"\x05state"]]
    await leave_all(publisher, subscriber)


BAD_OPTIONS = {
    "scheme-integer": {"ppt_scheme": 7},
    "scheme-empty": {"ppt_scheme": ""},
    "keyid-list": {"ppt_scheme": "mqtt", "ppt_keyid": ["k"]},
    "no-scheme": {"ppt_serializer": "cbor"},
}


@pytest.mark.parametrize("via", [("universal", "websocket", "json"), ("rawsocket", "rawsocket", "msgpack")],
                         ids=["websocket-json", "rawsocket-msgpack"])
@pytest.mark.parametrize("case", list(BAD_OPTIONS))
@pytest_twisted.ensureDeferred
async def test_a_bad_ppt_option_is_a_protocol_violation(router, clients, via, case):
    """A ppt_* option that is not a non-empty string, or ppt_* options without ppt_scheme, get ABORT
    wamp.error.protocol_violation and the transport closes, like any other malformed option."""
    client = await open_client(router, via, clients)
    await client.join()
    payload = "\x00eA==" if via[2] == "json" else b"x"  # the byte "x" as each serializer carries it
    client.send([16, 1, {**BAD_OPTIONS[case], "acknowledge": True}, "com.example.ppt", [payload]])
    await expect_abort(client, PROTOCOL_VIOLATION, CLOSE_PROTOCOL_ERROR)
    await still_serves(router)


VALIDATED_CONFIG = listener("main") + textwrap.dedent("""
    [[realms]]
    name = "realm1"

    [[realms.roles]]
    name = "anonymous"

    [[realms.roles.permissions]]
    uri = "com."
    match = "prefix"
    allow = ["publish"]

    [[realms.roles.permissions]]
    uri = "com.open."
    match = "prefix"
    allow = ["publish", "subscribe"]

    [[realms.validators]]
    plugin = "jsonschema"
    schemas = [{ uri = "com.", match = "prefix", action = "publish", schema_file = "amount.json" }]
    """)
AMOUNT = {"properties": {"kwargs": {"type": "object", "required": ["amount"]}}}


@pytest.mark.parametrize("transport, serializer", [("websocket", "msgpack"), ("rawsocket", "json")])
@pytest_twisted.ensureDeferred
async def test_schemas_skip_ppt_payloads_and_unauthorized_subscribers_get_nothing(tmp_path, transport, serializer):
    """A payload schema on the topic does not apply to a ppt_* payload (the router cannot read it): it is delivered
    where a plain PUBLISH failing the schema is refused with invalid_argument. A session not allowed to subscribe to
    com.secret.t is refused (not_authorized) and receives no EVENT, retained or live; the allowed one gets it."""
    (tmp_path / "amount.json").write_text(json.dumps(AMOUNT))
    running = await start_router(VALIDATED_CONFIG, tmp_path)
    try:
        where = target(running, "main", transport, serializer)
        publisher, outsider, insider = (await ppt_client(where), await bounded(connect(where)),
                                        await bounded(connect(where)))
        seen = raw_inbound(outsider)
        with pytest.raises(ApplicationError) as refused:
            await bounded(publisher.publish("com.open.t", "plain", options=PublishOptions(acknowledge=True)))
        assert refused.value.error == "wamp.error.invalid_argument"
        await bounded(publisher.publish("com.secret.t", Ppt(b"early", MQTT),
                                        options=PublishOptions(acknowledge=True, retain=True)))
        with pytest.raises(ApplicationError) as denied:
            await bounded(outsider.subscribe(lambda *a: None, "com.secret.t",
                                             options=SubscribeOptions(get_retained=True)))
        assert denied.value.error == "wamp.error.not_authorized"
        got = Collector()
        await bounded(insider.subscribe(got, "com.open.t"))
        await bounded(publisher.publish("com.secret.t", Ppt(b"late", MQTT), options=PublishOptions(acknowledge=True)))
        await bounded(publisher.publish("com.open.t", Ppt(b"open", MQTT), options=PublishOptions(acknowledge=True)))

        assert await bounded(got.done) == [((b"open",), {})]
        # the outsider's connection is in order: the insider's event was sent after any the outsider could get
        await bounded(outsider.publish("com.open.marker", amount=1, options=PublishOptions(acknowledge=True)))
        assert of_type(seen, EVENT) == []
        await leave_all(publisher, outsider, insider)
    finally:
        await running.stop()


@pytest_twisted.ensureDeferred
async def test_welcome_announces_payload_passthru_mode_to_a_client_that_announced_it(router):
    """A HELLO announcing payload_passthru_mode as publisher and callee gets a WELCOME whose broker and dealer both
    announce it; an Autobahn client (which cannot announce it) joins as before, and its WELCOME does not."""
    client = await open_rawsocket(router.port("rawsocket"), "msgpack")
    roles = {"publisher": {"features": {"payload_passthru_mode": True}},
             "callee": {"features": {"payload_passthru_mode": True}}}
    welcome = await client.join(roles=roles)
    features = {role: welcome[2]["roles"][role]["features"] for role in ("broker", "dealer")}
    assert features["broker"]["payload_passthru_mode"] is True and features["dealer"]["payload_passthru_mode"] is True
    client.close()

    plain = await open_rawsocket(router.port("rawsocket"), "msgpack")
    welcome = await plain.join(roles={name: {"features": {}} for name in DEFAULT_CLIENT_ROLES})
    assert all("payload_passthru_mode" not in welcome[2]["roles"][role]["features"] for role in ("broker", "dealer"))
    plain.close()
    await eventually(lambda: not router.realm().sessions, "both sessions gone")
