"""What travels between cluster nodes: every kind round-trips, payloads untouched, damage refused."""

from __future__ import annotations

import pytest
from autobahn.wamp import message as wamp

from wampgate.core.passthru import PassthruPayload
from wampgate.core.peer import Peer
from wampgate.tx.cluster import envelope

PUBLISHER = Peer(7, "realm1", authid="alice", authrole="user", authmethod="ticket", authprovider="static")


def test_an_event_keeps_payload_options_and_identity():
    publish = wamp.Publish(3, "com.t", args=[1, b"\x00bin", {"x": [1.5, None]}], kwargs={"k": "v"},
                           exclude=[1, 2], eligible_authrole=["user"], exclude_me=False)
    msg, publication, publisher, disclose = envelope.publish_of(
        envelope.unpack(envelope.event("n1", "realm1", PUBLISHER, publish, 99, True)))
    assert (msg.topic, msg.args, msg.kwargs) == ("com.t", [1, b"\x00bin", {"x": [1.5, None]}], {"k": "v"})
    assert (msg.exclude, msg.eligible_authrole, msg.exclude_me, msg.eligible) == ([1, 2], ["user"], False, None)
    assert (publication, publisher, disclose) == (99, [7, "alice", "user"], True)


def test_a_passthrough_payload_keeps_its_options():
    payload = PassthruPayload(b"\x01\x02", (("ppt_scheme", "mqtt"), ("ppt_serializer", "native")))
    publish = wamp.Publish(3, "com.t", args=[payload])
    msg, *_ = envelope.publish_of(envelope.unpack(envelope.event("n1", "r", PUBLISHER, publish, 1, False)))
    (arrived,) = msg.args
    assert type(arrived) is PassthruPayload and arrived == b"\x01\x02" and arrived.options == payload.options


def test_a_call_and_its_answers_round_trip():
    invocation = wamp.Invocation(5, 77, args=[1], kwargs={"a": 2}, timeout=1500, receive_progress=True)
    items = envelope.unpack(envelope.invocation("n1", "r", 42, 9, PUBLISHER, True, "com.p.", "prefix", invocation,
                                                "com.p.x"))
    rid, callee, caller, disclose, uri, match, call = envelope.call_of(items)
    assert (rid, callee, caller, disclose, uri, match) == (42, 9, [7, "alice", "user"], True, "com.p.", "prefix")
    assert (call.request, call.procedure, call.args, call.kwargs, call.timeout, call.receive_progress) == (
        42, "com.p.x", [1], {"a": 2}, 1500, True)
    result = envelope.yield_of(envelope.unpack(envelope.result("n2", "r", 42, wamp.Result(42, args=[3],
                                                                                          progress=True))), 5)
    assert (result.request, result.args, result.progress) == (5, [3], True)
    error = envelope.invocation_error_of(envelope.unpack(envelope.error(
        "n2", "r", 42, wamp.Error(wamp.Call.MESSAGE_TYPE, 42, "com.err", args=["no"]))), 5)
    assert (error.request_type, error.request, error.error, error.args) == (wamp.Invocation.MESSAGE_TYPE, 5,
                                                                            "com.err", ["no"])


@pytest.mark.parametrize("data", [b"", b"\xc1", envelope.pack({"not": "a list"}), envelope.pack([]),
                                  envelope.pack(["1", "n"]), envelope.pack([99, "n"]),
                                  envelope.pack([envelope.LEAVE, "n", "realm1"]),
                                  envelope.pack([envelope.JOIN, 7, "realm1", {}]),
                                  envelope.pack([envelope.EVENT, "n", "r", "com.t", 1])])
def test_damaged_envelopes_are_refused(data):
    with pytest.raises(envelope.BadEnvelope):
        envelope.unpack(data)


def test_every_kind_this_node_writes_has_the_length_it_is_read_with():
    publish = wamp.Publish(1, "com.t", args=[1])
    invocation = wamp.Invocation(5, 77, args=[1])
    written = [envelope.event("n", "r", PUBLISHER, publish, 1, False),
               envelope.invocation("n", "r", 1, 9, PUBLISHER, False, "com.p", "exact", invocation, "com.p"),
               envelope.result("n", "r", 1, wamp.Result(1)), envelope.error("n", "r", 1, wamp.Error(48, 1, "e")),
               envelope.interrupt("n", "r", 1, 7, None), envelope.join("n", "r", {}), envelope.leave("n", "r", 7),
               envelope.callee("n", "r", True, 7, "com.p", "exact", "single", {}),
               envelope.callee("n", "r", False, 7, "com.p", "exact", "single", {}),
               envelope.node_gone("n", "m"), envelope.kill("n", "r", 7, "wamp.close.killed", None),
               envelope.sync("n", b"token")]
    assert sorted(envelope.unpack(data)[0] for data in written) == sorted(envelope.LENGTHS)
