"""RPC and the meta API across cluster nodes, through a real Redis."""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallDetails, CallOptions, RegisterOptions
from twisted.internet import defer

from tests.cluster.test_cluster_pubsub import at
from tests.support.clients import Collector, connect, leave, leave_all
from tests.support.wait import bounded, eventually


@pytest_twisted.ensureDeferred
async def test_a_call_reaches_a_callee_on_another_node_with_progressive_results(nodes):
    a, b = await nodes(2)
    callee = await connect(at(b, "rawsocket", "cbor"))

    async def countdown(n, details: CallDetails):
        for i in range(n, 0, -1):
            if details.progress:
                details.progress(i)
        return "liftoff"

    await callee.register(countdown, "com.countdown", options=RegisterOptions(details_arg="details"))
    await callee.register(lambda x: x * 2, "com.double")
    caller = await connect(at(a))
    assert await bounded(caller.call("com.double", 21)) == 42
    progress = []
    result = await bounded(caller.call("com.countdown", 3, options=CallOptions(on_progress=progress.append)))
    assert (result, progress) == ("liftoff", [3, 2, 1])
    with pytest.raises(ApplicationError) as refused:
        await bounded(caller.call("com.nothing"))
    assert refused.value.error == "wamp.error.no_such_procedure"
    await leave_all(caller, callee)


@pytest_twisted.ensureDeferred
async def test_errors_timeouts_and_cancel_cross_nodes(nodes):
    a, b = await nodes(2)
    callee = await connect(at(b))
    hanging = []

    def fail():
        raise ApplicationError("com.error.broken", "it broke", code=7)

    def hang():
        d = defer.Deferred()
        hanging.append(d)
        return d

    await callee.register(fail, "com.fail")
    await callee.register(hang, "com.hang")
    caller = await connect(at(a))
    with pytest.raises(ApplicationError) as failed:
        await bounded(caller.call("com.fail"))
    assert (failed.value.error, failed.value.args, failed.value.kwargs) == ("com.error.broken", ("it broke",),
                                                                            {"code": 7})
    with pytest.raises(ApplicationError) as timed_out:
        await bounded(caller.call("com.hang", options=CallOptions(timeout=300)))
    assert timed_out.value.error == "wamp.error.timeout"
    call = caller.call("com.hang")
    await eventually(lambda: len(hanging) == 2, "the second call reached the callee")
    call.cancel()
    with pytest.raises(Exception):
        await bounded(call)
    await eventually(lambda: a.realm().dealer.table_sizes()["calls"] == 0, "the caller's node forgot the call")
    await eventually(lambda: b.realm().dealer.table_sizes()["calls"] == 0, "the callee's node forgot the call")
    await leave_all(caller, callee)


@pytest_twisted.ensureDeferred
async def test_single_registrations_are_unique_across_the_cluster_and_shared_ones_spread(nodes):
    a, b = await nodes(2)
    first, second = await connect(at(a)), await connect(at(b))
    await first.register(lambda: "a", "com.only")
    with pytest.raises(ApplicationError) as taken:
        await second.register(lambda: "b", "com.only")
    assert taken.value.error == "wamp.error.procedure_already_exists"
    with pytest.raises(ApplicationError) as mismatch:
        await second.register(lambda: "b", "com.only", options=RegisterOptions(invoke="roundrobin"))
    assert mismatch.value.error == "wamp.error.procedure_already_exists"
    await first.register(lambda: "a", "com.shared", options=RegisterOptions(invoke="roundrobin"))
    await second.register(lambda: "b", "com.shared", options=RegisterOptions(invoke="roundrobin"))
    caller = await connect(at(a))
    answers = {await bounded(caller.call("com.shared")) for _ in range(4)}
    assert answers == {"a", "b"}
    await leave(first)  # its single registration is released cluster-wide
    await eventually(lambda: b.realm().dealer.find("com.only", "exact") is None, "the registration was withdrawn")
    await second.register(lambda: "b", "com.only")
    assert await bounded(caller.call("com.only")) == "b"
    await leave_all(second, caller)


@pytest_twisted.ensureDeferred
async def test_register_here_then_call_there_always_works(nodes):
    a, b = await nodes(2)
    callee = await connect(at(b))
    caller = await connect(at(a))
    for round_ in range(100):
        registration = await callee.register(lambda n=round_: n, f"com.causal.{round_}")
        assert await bounded(caller.call(f"com.causal.{round_}")) == round_
        await registration.unregister()
    await leave_all(caller, callee)


@pytest_twisted.ensureDeferred
async def test_session_meta_api_sees_every_node(nodes):
    a, b = await nodes(2)
    watcher = await connect(at(a))
    joined, left = Collector(), Collector()
    await watcher.subscribe(joined, "wamp.session.on_join")
    await watcher.subscribe(left, "wamp.session.on_leave")
    remote = await connect(at(b))
    details = (await bounded(joined.done))[0][0][0]
    assert details["session"] == remote._session_id and details["authrole"] == "anonymous"
    assert await bounded(watcher.call("wamp.session.count")) == 2
    assert set(await bounded(watcher.call("wamp.session.list"))) == {watcher._session_id, remote._session_id}
    got = await bounded(watcher.call("wamp.session.get", remote._session_id))
    assert got["authid"] == remote._authid
    remote_id = remote._session_id
    await bounded(watcher.call("wamp.session.kill", remote_id, reason="com.kicked"))
    await bounded(remote.on_gone)
    assert (await bounded(left.done))[0][0][0] == remote_id
    assert await bounded(watcher.call("wamp.session.count")) == 1
    await leave_all(watcher)
