"""What a cluster does when Redis or a node fails, each outcome written down first (docs/cluster.md, "Failures").

* Redis restarted empty: local traffic goes on; cross-node events meanwhile are lost and counted; once Redis is back
  every node re-subscribes, writes its sessions and registrations again, and events, calls and the session count are
  right again, with no duplicates.
* Redis hung (SIGSTOP): detected within reply_timeout (the node reports degraded); after SIGCONT it recovers.
* A node killed (SIGKILL): a call waiting on its callee fails within a heartbeat (`wamp.error.canceled`), new calls
  no longer reach it, its sessions leave (`wamp.session.on_leave`) within node_timeout.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions

from tests.cluster.conftest import cluster_config
from tests.cluster.test_cluster_pubsub import at
from tests.support.clients import Collector, connect, leave_all
from tests.support.wait import bounded, eventually, free_port

TWISTD = Path(sys.executable).parent / "twistd"


@pytest_twisted.ensureDeferred
async def test_after_redis_restarts_empty_events_calls_and_counts_cross_nodes_again(nodes, redis_server):
    a, b = await nodes(2)
    publisher, subscriber = await connect(at(a)), await connect(at(b))
    local = await connect(at(a))
    before, during, after = Collector(), Collector(), Collector()
    await subscriber.subscribe(before, "com.before")
    await subscriber.register(lambda: "b", "com.where")
    await publisher.publish("com.before", 1, options=PublishOptions(acknowledge=True))
    await bounded(before.done)

    redis_server.stop()
    await eventually(lambda: not a.service.cluster.healthy and not b.service.cluster.healthy, "Redis is missed")
    await local.subscribe(during, "com.local")
    await publisher.publish("com.local", "still served", options=PublishOptions(acknowledge=True))
    assert (await bounded(during.done))[0][0] == ("still served",)
    await publisher.publish("com.before", 2, options=PublishOptions(acknowledge=True))  # lost: Redis is away

    redis_server.restart()
    await eventually(lambda: a.service.cluster.healthy and b.service.cluster.healthy, "both nodes reconnected",
                     timeout=10)
    await subscriber.subscribe(after, "com.after")
    await publisher.publish("com.before", 3, options=PublishOptions(acknowledge=True))
    await publisher.publish("com.after", 4, options=PublishOptions(acknowledge=True))
    assert (await bounded(after.done))[0][0] == (4,)
    assert [event[0] for event in before.events] == [(1,), (3,)]  # 2 was lost, nothing came twice
    assert await bounded(publisher.call("com.where")) == "b"
    assert await bounded(subscriber.call("wamp.session.count")) == 3
    assert await bounded(publisher.call("wamp.session.count")) == 3
    await leave_all(publisher, subscriber, local)


@pytest_twisted.ensureDeferred
async def test_a_hung_redis_is_detected_and_survived(nodes, redis_server):
    a, b = await nodes(2, cluster="reply_timeout = 0.5")
    publisher, subscriber = await connect(at(a)), await connect(at(b))
    got = Collector(expected=2)
    await subscriber.subscribe(got, "com.hang")
    redis_server.pause()
    try:
        await eventually(lambda: not a.service.cluster.healthy, "the hang is detected", timeout=3)
    finally:
        redis_server.resume()
    await eventually(lambda: a.service.cluster.healthy and b.service.cluster.healthy, "recovered", timeout=10)
    await publisher.publish("com.hang", 1, options=PublishOptions(acknowledge=True))
    await publisher.publish("com.hang", 2, options=PublishOptions(acknowledge=True))
    assert [event[0] for event in await bounded(got.done)] == [(1,), (2,)]
    await leave_all(publisher, subscriber)


CALLEE_CLIENT = textwrap.dedent("""
    import asyncio, sys
    from autobahn.asyncio.wamp import ApplicationRunner, ApplicationSession
    class Callee(ApplicationSession):
        async def onJoin(self, details):
            await self.register(lambda: asyncio.get_running_loop().create_future(), "com.never")
            await self.register(lambda: "alive", "com.alive")
            print("READY", details.session, flush=True)
    ApplicationRunner(sys.argv[1], "realm1").run(Callee)
""")


@pytest_twisted.ensureDeferred
async def test_a_killed_node_fails_its_calls_and_its_sessions_leave(nodes, redis_server, tmp_path):
    (a,) = await nodes(1)
    port = free_port()
    config = tmp_path / "killed.toml"
    config.write_text(cluster_config(redis_server.url).replace('endpoint = "tcp:0:', f'endpoint = "tcp:{port}:'))
    node = subprocess.Popen([str(TWISTD), "-n", "--pidfile=", "wampgate", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, cwd=tmp_path)
    callee = None
    try:
        await eventually(lambda: _listening(port), "the second node listens", timeout=15)
        callee = subprocess.Popen([sys.executable, "-c", CALLEE_CLIENT, f"ws://127.0.0.1:{port}/ws"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        caller = await connect(at(a))
        watcher_left = Collector()
        await caller.subscribe(watcher_left, "wamp.session.on_leave")
        await eventually(lambda: a.realm().dealer.find("com.alive", "exact") is not None, "the callee registered",
                         timeout=15)
        assert await bounded(caller.call("com.alive")) == "alive"
        pending = caller.call("com.never")
        await eventually(lambda: a.realm().dealer.table_sizes()["calls"] == 1, "the call is pending")
        node.send_signal(signal.SIGKILL)
        node.wait(5)
        with pytest.raises(ApplicationError) as failed:
            await bounded(pending, 3)
        assert failed.value.error == "wamp.error.canceled"
        await bounded(watcher_left.done, 5)  # node_timeout is 1 s in these tests
        assert await bounded(caller.call("wamp.session.count")) == 1
        with pytest.raises(ApplicationError) as gone:
            await bounded(caller.call("com.alive"))
        assert gone.value.error == "wamp.error.no_such_procedure"
        await leave_all(caller)
    finally:
        for process in (callee, node):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait(5)


def _listening(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
        return True
    except OSError:
        return False

