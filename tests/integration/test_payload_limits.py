"""Nothing lost on the way out: a value one serializer decodes but another cannot encode is refused on the way in,
where its sender can still be told, against a real router with real Autobahn clients.

Pins down: an integer of 2^64 published from JSON is refused with wamp.error.invalid_argument and a MessagePack
subscriber stays connected; a payload nested 450 deep is refused the same way from JSON, MessagePack and CBOR (a
CBOR subscriber used to be knocked off with 1002); a callee's YIELD or ERROR holding such a value ends the call
with wamp.error.invalid_argument for the caller, once (a progressive one also interrupts the callee); an
unacknowledged PUBLISH is dropped and counted; a HELLO holding such a value is a protocol violation; bytes cross
between JSON and the binary serializers unchanged; a message larger than `max_hello_size` before WELCOME is a
protocol violation, whatever it holds.
"""

from __future__ import annotations

import cbor2
import pytest
import pytest_twisted
from autobahn.wamp import message
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, PublishOptions, RegisterOptions
from twisted.internet import defer

from tests.integration.conftest import target
from tests.integration.test_dealer_e2e import assert_all_clean, error_of, eventually, of_type, within
from tests.support import raw
from tests.support.clients import Collector, connect, leave_all, record_inbound
from tests.support.raw import ABORT, assert_router_serves

INVALID_ARGUMENT = "wamp.error.invalid_argument"
PROTOCOL_VIOLATION = "wamp.error.protocol_violation"
CLOSE_PROTOCOL_ERROR = 1002
TOO_BIG = 2**64  # JSON and CBOR carry it; MessagePack cannot
ACK = PublishOptions(acknowledge=True)
SERIALIZERS = ("json", "msgpack", "cbor")


def deep(levels: int):
    value = 1
    for _ in range(levels):
        value = [value]
    return value


async def joined(router, serializer: str, transport: str = "websocket"):
    return await within(connect(target(router, "universal", transport, serializer)))


async def still_served(router) -> None:
    await assert_router_serves(router.port("universal"), "websocket", "json")
    await assert_router_serves(router.port("rawsocket"), "rawsocket", "msgpack")


# -- publish ------------------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_an_integer_no_msgpack_peer_can_read_is_refused_and_the_subscriber_stays(router):
    """A JSON client publishes 2^64 (acknowledged) to a topic a MessagePack client subscribes to: the publisher gets
    ERROR wamp.error.invalid_argument, the subscriber stays connected and gets the publisher's next event, and only
    that one (WAMP keeps a publisher's order, so a delivered 2^64 would have come first)."""
    subscriber = await joined(router, "msgpack", "rawsocket")
    publisher = await joined(router, "json")
    events = Collector()
    await within(subscriber.subscribe(events, "com.example.prices"))
    error = await error_of(publisher.publish("com.example.prices", TOO_BIG, options=ACK))
    assert error.error == INVALID_ARGUMENT
    await within(publisher.publish("com.example.prices", "next", options=ACK))
    assert await within(events.done) == [(("next",), {})]
    assert subscriber.is_attached() and publisher.is_attached()
    await leave_all(subscriber, publisher)
    await still_served(router)


@pytest.mark.parametrize("serializer", SERIALIZERS)
@pytest_twisted.ensureDeferred
async def test_a_payload_nested_450_deep_is_refused_the_same_way_by_every_serializer(router, serializer):
    """450 levels (past max_nesting, 64; past CBOR's own decoder limit of 400) published from any serializer: the
    publisher gets ERROR wamp.error.invalid_argument and a CBOR subscriber stays connected and gets the next event
    only."""
    subscriber = await joined(router, "cbor")
    publisher = await joined(router, serializer)
    events = Collector()
    await within(subscriber.subscribe(events, "com.example.deep"))
    error = await error_of(publisher.publish("com.example.deep", deep(450), options=ACK))
    assert error.error == INVALID_ARGUMENT
    await within(publisher.publish("com.example.deep", deep(10), options=ACK))
    assert await within(events.done) == [((deep(10),), {})]
    assert subscriber.is_attached() and publisher.is_attached()
    await leave_all(subscriber, publisher)
    await still_served(router)


@pytest_twisted.ensureDeferred
async def test_an_unacknowledged_publish_of_a_refused_value_is_dropped_and_counted(router):
    """Without acknowledgement the refused PUBLISH gets no answer (as the spec says) and reaches nobody; the router
    counts it among its invalid inbound messages; the publisher's session goes on."""
    subscriber = await joined(router, "msgpack")
    publisher = await joined(router, "json")
    events = Collector()
    await within(subscriber.subscribe(events, "com.example.t"))
    traffic = router.service.context.traffic
    invalid_before = traffic.messages_in["invalid"]
    publisher.publish("com.example.t", {"n": float("inf")})
    await within(publisher.publish("com.example.t", "marker", options=ACK))
    assert await within(events.done) == [(("marker",), {})]
    assert traffic.messages_in["invalid"] == invalid_before + 1
    await leave_all(subscriber, publisher)


@pytest_twisted.ensureDeferred
async def test_bytes_cross_between_json_and_the_binary_serializers_unchanged(router):
    """Bytes published from JSON (Autobahn's NUL + base64 strings, read by the router's own JSON decoder) reach
    MessagePack and CBOR subscribers as bytes, and bytes from them reach a JSON subscriber as bytes."""
    value = bytes(range(256))
    sessions = {name: await joined(router, name) for name in SERIALIZERS}
    for publisher_name in SERIALIZERS:
        collectors = {}
        for name, session in sessions.items():
            if name != publisher_name:
                collectors[name] = Collector()
                await within(session.subscribe(collectors[name], f"com.example.bytes.{publisher_name}"))
        await within(sessions[publisher_name].publish(f"com.example.bytes.{publisher_name}", value, k=[value],
                                                      options=ACK))
        for name, collector in collectors.items():
            assert await within(collector.done) == [((value,), {"k": [value]})], (publisher_name, name)
    await leave_all(*sessions.values())


# -- RPC ------------------------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_a_yield_no_caller_could_read_ends_the_call_with_invalid_argument(router):
    """A JSON callee's result holds 2^64 for a MessagePack caller: the caller gets ERROR wamp.error.invalid_argument
    (never a hang), the callee is told nothing and goes on serving (its next INVOCATION arrives with no INTERRUPT
    before it), and the dealer forgets the call."""
    callee = await joined(router, "json")
    caller = await joined(router, "msgpack", "rawsocket")
    await within(callee.register(lambda kind: TOO_BIG if kind == "bad" else kind, "com.example.answer"))
    inbound = record_inbound(callee)
    error = await error_of(caller.call("com.example.answer", "bad"))
    assert error.error == INVALID_ARGUMENT
    assert await within(caller.call("com.example.answer", "fine")) == "fine"
    assert of_type(inbound, message.Interrupt) == [] and len(of_type(inbound, message.Invocation)) == 2
    assert callee.is_attached() and caller.is_attached()
    await leave_all(callee, caller)
    await assert_all_clean(router)


@pytest_twisted.ensureDeferred
async def test_a_callee_error_no_caller_could_read_ends_the_call_with_invalid_argument(router):
    """A callee's ERROR whose args hold 2^64 ends the call with wamp.error.invalid_argument for the caller instead
    of the callee's own URI; both stay joined."""
    callee = await joined(router, "cbor")
    caller = await joined(router, "msgpack")

    def failing():
        raise ApplicationError("com.example.oops", TOO_BIG)

    await within(callee.register(failing, "com.example.failing"))
    error = await error_of(caller.call("com.example.failing"))
    assert error.error == INVALID_ARGUMENT
    assert callee.is_attached() and caller.is_attached()
    await leave_all(callee, caller)
    await assert_all_clean(router)


@pytest_twisted.ensureDeferred
async def test_a_refused_progressive_result_ends_the_call_once_and_interrupts_the_callee(router):
    """A progressive result holding NaN (JSON cannot carry it) after a good one: the caller gets the good progress,
    then ERROR wamp.error.invalid_argument and nothing more; the callee, still working, gets INTERRUPT (its pending
    Deferred is cancelled); its answer after that is dropped as late and it stays joined."""
    callee = await joined(router, "msgpack")
    caller = await joined(router, "json")
    interrupted = defer.Deferred()

    async def stream(details=None):
        details.progress(1)
        details.progress(float("nan"))
        try:
            await defer.Deferred()  # only the INTERRUPT ends this wait
        except defer.CancelledError:
            interrupted.callback(None)
            raise

    await within(callee.register(stream, "com.example.stream", options=RegisterOptions(details_arg="details")))
    progress = []
    error = await error_of(caller.call("com.example.stream", options=CallOptions(on_progress=progress.append)))
    assert error.error == INVALID_ARGUMENT
    assert progress == [1]
    await within(interrupted)
    await eventually(lambda: router.realm().dealer.table_sizes()["retired"] == 0, "the callee's late ERROR dropped")
    assert callee.is_attached() and caller.is_attached()
    await leave_all(callee, caller)
    await assert_all_clean(router)


# -- before WELCOME -------------------------------------------------------------------------------------------------


@pytest.fixture
def clients():
    tracker = raw.Tracker()
    yield tracker
    tracker.close_all()


async def expect_violation(client) -> None:
    """ABORT wamp.error.protocol_violation, then the WebSocket closes with 1002."""
    messages = await client.wait_messages(1)
    assert messages[0][0] == ABORT and messages[0][2] == PROTOCOL_VIOLATION, messages
    _clean, code, _reason = await client.wait_closed()
    assert code == CLOSE_PROTOCOL_ERROR


@pytest_twisted.ensureDeferred
async def test_a_hello_holding_a_refused_value_is_a_protocol_violation(router, clients):
    """HELLO has no answer that could carry a refusal: 2^64 in its authextra is a protocol violation (it used to be
    welcomed, and its authextra could reach MessagePack peers through the meta API)."""
    client = clients(await raw.open_websocket(router.port("universal"), "json"))
    client.send(raw.hello(authextra={"n": TOO_BIG}))
    await expect_violation(client)
    await still_served(router)


@pytest_twisted.ensureDeferred
async def test_a_cbor_tag_in_hello_and_bytes_after_a_cbor_message_are_protocol_violations(router, clients):
    """A CBOR tag (here a datetime) in HELLO is refused without its decoder running, and a CBOR message followed by
    more bytes is refused instead of silently losing them."""
    tagged = clients(await raw.open_websocket(router.port("universal"), "cbor"))
    tagged.send_raw(cbor2.dumps(raw.hello(authextra={"at": cbor2.CBORTag(1, 0)})))
    await expect_violation(tagged)
    trailing = clients(await raw.open_websocket(router.port("universal"), "cbor"))
    trailing.send_raw(cbor2.dumps(raw.hello()) + cbor2.dumps(raw.hello()))
    await expect_violation(trailing)
    await still_served(router)


@pytest_twisted.ensureDeferred
async def test_a_message_over_max_hello_size_before_welcome_is_a_protocol_violation(router, clients):
    """Before WELCOME a connection may send messages of at most `max_hello_size` (64 KiB): a 70 KiB HELLO is a
    protocol violation before it is decoded; the same bytes as a PUBLISH after WELCOME are routed as usual."""
    padding = "x" * (70 * 1024)
    big_hello = clients(await raw.open_websocket(router.port("universal"), "json"))
    big_hello.send(raw.hello(authextra={"padding": padding}))
    await expect_violation(big_hello)
    client = clients(await raw.open_websocket(router.port("universal"), "json"))
    await client.join()
    client.send([raw.PUBLISH, 1, {"acknowledge": True}, "com.example.big", [padding]])
    messages = await client.wait_messages(2)
    assert messages[1][0] == 17 and messages[1][1] == 1, messages  # PUBLISHED
    await still_served(router)
