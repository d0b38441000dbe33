"""Payload schemas end to end: a real router with the built-in `jsonschema` validator and real Autobahn (Twisted)
clients, over WebSocket JSON and RawSocket MessagePack.

Pins down: an acknowledged PUBLISH whose kwargs fail the schema gets ERROR wamp.error.invalid_argument naming the
schema path (never the value); a valid one is delivered; an invalid unacknowledged PUBLISH is never delivered (proven
by a marker event the same publisher sends after it: WAMP keeps each connection's order) and is counted in
`payload_invalid`; a CALL with invalid args gets the ERROR and never reaches the callee (proven by a valid call
answered after it, the callee having seen only that one); a testament is checked as a PUBLISH on its topic; a reload
that makes a schema invalid is refused and the running schemas are kept.
"""

from __future__ import annotations

import json
import textwrap

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions

from tests.integration.conftest import target
from tests.support.clients import Collector, connect, leave_all
from tests.support.raw import assert_router_serves, bounded
from tests.support.router import REALM1_ANONYMOUS_ALL, listener, start_router

INVALID_ARGUMENT = "wamp.error.invalid_argument"
ACK = PublishOptions(acknowledge=True)
TRANSPORTS = [("websocket", "json"), ("rawsocket", "msgpack")]

ORDER_EVENT = {
    "type": "object",
    "properties": {
        "args": {"maxItems": 0},
        "kwargs": {"type": "object", "required": ["amount"], "properties": {"amount": {"type": "integer"}}},
    },
}
ADD_CALL = {
    "properties": {
        "args": {"type": "array", "minItems": 2, "maxItems": 2, "items": {"type": "integer"}},
        "kwargs": {"maxProperties": 0},
    },
}
VALIDATORS = textwrap.dedent("""
    [[realms.validators]]
    plugin = "jsonschema"
    schemas = [
        { uri = "com.shop.", match = "prefix", action = "publish", schema_file = "order_event.json" },
        { uri = "com.math.add", action = "call", schema_file = "add_call.json" },
    ]
    """)


async def _start(tmp_path):
    (tmp_path / "order_event.json").write_text(json.dumps(ORDER_EVENT))
    (tmp_path / "add_call.json").write_text(json.dumps(ADD_CALL))
    return await start_router(listener("main") + REALM1_ANONYMOUS_ALL + VALIDATORS, tmp_path)


def _invalid(running, action: str) -> int:
    return running.service.context.counters.value("payload_invalid", realm="realm1", action=action)


@pytest.mark.parametrize("transport, serializer", TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_invalid_publishes_are_refused_or_dropped_and_never_delivered(tmp_path, transport, serializer):
    """Acknowledged and invalid: ERROR invalid_argument naming `kwargs.amount` and the rule, not the value.
    Unacknowledged and invalid: no answer, counted, not delivered (the marker after it is the first event the
    subscriber gets). Valid: delivered."""
    running = await _start(tmp_path)
    try:
        where = target(running, "main", transport, serializer)
        subscriber, publisher = [await bounded(connect(where)) for _ in range(2)]
        events = Collector(expected=2)
        await bounded(subscriber.subscribe(events, "com.shop.order"))

        with pytest.raises(ApplicationError) as refused:
            await bounded(publisher.publish("com.shop.order", amount="SECRET-VALUE", options=ACK))
        assert refused.value.error == INVALID_ARGUMENT
        assert refused.value.args == ("payload fails schema at kwargs.amount: type",)
        assert _invalid(running, "publish") == 1

        publisher.publish("com.shop.order", amount="unacknowledged")  # dropped: no answer to wait for
        await bounded(publisher.publish("com.shop.order", amount=1, options=ACK))  # valid: the marker
        await bounded(publisher.publish("com.shop.order", amount=2, options=ACK))
        assert await bounded(events.done) == [((), {"amount": 1}), ((), {"amount": 2})]
        assert _invalid(running, "publish") == 2

        await bounded(publisher.publish("com.other", amount="anything", options=ACK))  # no rule covers it
        await leave_all(subscriber, publisher)
        await assert_router_serves(running.port("main"))
    finally:
        await running.stop()


@pytest.mark.parametrize("transport, serializer", TRANSPORTS)
@pytest_twisted.ensureDeferred
async def test_an_invalid_call_never_reaches_the_callee(tmp_path, transport, serializer):
    """A CALL whose args fail the schema gets ERROR invalid_argument naming `args.1`; the callee is not invoked
    (a valid call after it is answered, and the callee saw only that one); the refusal is counted."""
    running = await _start(tmp_path)
    try:
        where = target(running, "main", transport, serializer)
        callee, caller = [await bounded(connect(where)) for _ in range(2)]
        invocations = []

        def add(a, b):
            invocations.append((a, b))
            return a + b

        await bounded(callee.register(add, "com.math.add"))
        with pytest.raises(ApplicationError) as refused:
            await bounded(caller.call("com.math.add", 1, "two"))
        assert refused.value.error == INVALID_ARGUMENT
        assert refused.value.args == ("payload fails schema at args.1: type",)
        with pytest.raises(ApplicationError) as refused:
            await bounded(caller.call("com.math.add", 1, 2, c=3))
        assert refused.value.args == ("payload fails schema at kwargs: maxProperties",)
        assert await bounded(caller.call("com.math.add", 1, 2)) == 3
        assert invocations == [(1, 2)]
        assert _invalid(running, "call") == 2
        await leave_all(callee, caller)
    finally:
        await running.stop()


@pytest_twisted.ensureDeferred
async def test_a_reload_with_a_bad_schema_is_refused_and_the_old_schemas_kept(tmp_path):
    """Schemas are read again on reload: a schema file made invalid makes the reload fail and the running
    validators stay in force."""
    running = await _start(tmp_path)
    try:
        (tmp_path / "order_event.json").write_text('{"type": 12}')
        assert running.service._reload_config() is False
        publisher = await bounded(connect(target(running, "main", "websocket", "json")))
        with pytest.raises(ApplicationError) as refused:
            await bounded(publisher.publish("com.shop.order", amount="x", options=ACK))
        assert refused.value.error == INVALID_ARGUMENT
        (tmp_path / "order_event.json").write_text("{}")
        assert running.service._reload_config() is True
        await bounded(publisher.publish("com.shop.order", amount="x", options=ACK))
        await leave_all(publisher)
    finally:
        await running.stop()


@pytest_twisted.ensureDeferred
async def test_a_testament_is_checked_as_a_publish_on_its_topic(tmp_path):
    """wamp.session.add_testament with a payload its topic's publish schema refuses gets invalid_argument (its
    event could otherwise be delivered later, unchecked); a valid one is added."""
    running = await _start(tmp_path)
    try:
        session = await bounded(connect(target(running, "main", "websocket", "json")))
        with pytest.raises(ApplicationError) as refused:
            await bounded(session.call("wamp.session.add_testament", "com.shop.order", [], {"amount": "x"}))
        assert refused.value.error == INVALID_ARGUMENT
        assert refused.value.args == ("payload fails schema at kwargs.amount: type",)
        await bounded(session.call("wamp.session.add_testament", "com.shop.order", [], {"amount": 1}))
        assert _invalid(running, "publish") == 1
        await leave_all(session)
    finally:
        await running.stop()
