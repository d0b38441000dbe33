"""Autobahn's end-to-end encryption (WAMP-cryptobox) through a real router, over WebSocket JSON and RawSocket
MessagePack.

Pins down: a PUBLISH whose args Autobahn's KeyRing encrypted arrives as an EVENT with the very same opaque payload
bytes and encoding options (`enc_algo` "cryptobox", `enc_serializer`, no args/kwargs), which the subscriber's
KeyRing decrypts; the same for CALL -> INVOCATION and YIELD -> RESULT. The router holds no key: what the clients
see on the wire proves it forwarded the payload without decoding it.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp import message
from autobahn.wamp.cryptobox import KeyRing
from autobahn.wamp.types import PublishOptions

from tests.integration.conftest import target
from tests.support.clients import Collector, connect, leave_all
from tests.support.raw import bounded

VIAS = [("universal", "websocket", "json"), ("rawsocket", "rawsocket", "msgpack")]
VIA_IDS = ["websocket-json", "rawsocket-msgpack"]


def shared_keyring() -> KeyRing:
    """One symmetric cryptobox key for everything under com.secret., as two parties sharing a secret would hold."""
    keyring = KeyRing()
    private_key, _ = keyring.generate_key()
    keyring.set_key("com.secret.", private_key)
    return keyring


def wire_fields(msg) -> tuple:
    """What a payload-carrying message holds as it crosses the wire (Autobahn decrypts into the same object later,
    so the fields are copied when it is seen)."""
    return msg.payload, msg.enc_algo, msg.enc_key, msg.enc_serializer, msg.args, msg.kwargs


def sent_by(session, kind: type) -> list:
    """The wire fields of every message of `kind` the session sends, as it goes onto the wire."""
    sent: list = []
    send = session._transport.send

    def recording_send(msg):
        if isinstance(msg, kind):
            sent.append(wire_fields(msg))
        return send(msg)

    session._transport.send = recording_send
    return sent


def received_by(session, kind: type) -> list:
    """The wire fields of every message of `kind` the session receives, before Autobahn handles (decrypts) it."""
    received: list = []
    handle = session.onMessage

    def recording_handle(msg):
        if isinstance(msg, kind):
            received.append(wire_fields(msg))
        return handle(msg)

    session.onMessage = recording_handle
    return received


@pytest.mark.parametrize("via", VIAS, ids=VIA_IDS)
@pytest_twisted.ensureDeferred
async def test_an_encrypted_event_passes_through_unchanged(router, via):
    """The publisher's encrypted PUBLISH reaches the subscriber as an EVENT with the same payload bytes, enc_algo
    and enc_serializer and no args or kwargs; the subscriber's KeyRing decrypts it to the published args/kwargs."""
    where = target(router, *via)
    keyring = shared_keyring()
    publisher, subscriber = await bounded(connect(where)), await bounded(connect(where))
    publisher.set_payload_codec(keyring)
    subscriber.set_payload_codec(keyring)
    published = sent_by(publisher, message.Publish)
    events = received_by(subscriber, message.Event)
    got = Collector()
    await bounded(subscriber.subscribe(got, "com.secret.news"))

    await bounded(publisher.publish("com.secret.news", "hello", b"\x00\xff", n=7,
                                    options=PublishOptions(acknowledge=True)))
    [(args, kwargs)] = await bounded(got.done)

    assert (args, kwargs) == (("hello", b"\x00\xff"), {"n": 7})
    [publish], [event] = published, events
    assert type(publish[0]) is bytes and publish[1] == "cryptobox" and publish[4:] == (None, None)
    assert event == publish
    await leave_all(publisher, subscriber)


@pytest.mark.parametrize("via", VIAS, ids=VIA_IDS)
@pytest_twisted.ensureDeferred
async def test_an_encrypted_call_and_result_pass_through_unchanged(router, via):
    """An encrypted CALL reaches the callee as an INVOCATION with the caller's payload bytes and encoding options,
    and the callee's encrypted YIELD reaches the caller as a RESULT with the callee's; both sides decrypt."""
    where = target(router, *via)
    keyring = shared_keyring()
    caller, callee = await bounded(connect(where)), await bounded(connect(where))
    caller.set_payload_codec(keyring)
    callee.set_payload_codec(keyring)
    calls, yields = sent_by(caller, message.Call), sent_by(callee, message.Yield)
    invocations, results = received_by(callee, message.Invocation), received_by(caller, message.Result)
    await bounded(callee.register(lambda a, b, scale=1: {"sum": (a + b) * scale}, "com.secret.add"))

    result = await bounded(caller.call("com.secret.add", 2, 3, scale=10))

    assert result == {"sum": 50}
    [call], [yield_], [invocation], [answer] = calls, yields, invocations, results
    for sent in (call, yield_):
        assert type(sent[0]) is bytes and sent[1] == "cryptobox" and sent[4:] == (None, None)
    assert invocation == call and answer == yield_
    await leave_all(caller, callee)
