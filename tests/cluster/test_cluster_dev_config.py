"""The cluster table as an operator writes it: two nodes from conf/dev.toml, with only the ports changed and exactly
`[cluster]` + `redis = "redis://HOST:PORT"` appended, share events, calls and the session count."""

from __future__ import annotations

import pytest_twisted
from autobahn.wamp.types import PublishOptions
from twisted.logger import LogLevel

from tests.integration.test_dev_config import dev_config_on_free_ports
from tests.support.clients import Collector, Target, connect, leave_all
from tests.support.logcapture import captured_log
from tests.support.router import start_router
from tests.support.wait import bounded, eventually


@pytest_twisted.ensureDeferred
async def test_two_nodes_from_the_dev_config_share_events_calls_and_the_session_count(tmp_path, redis_server):
    text = dev_config_on_free_ports() + f'\n[cluster]\nredis = "{redis_server.url}"\n'
    nodes = []
    try:
        for name in ("one", "two"):
            directory = tmp_path / name
            directory.mkdir()
            nodes.append(await start_router(text, directory))
        for node in nodes:
            await eventually(lambda node=node: node.service.cluster.healthy, "the node reached Redis")
        one = await connect(Target(port=nodes[0].port("universal")))
        two = await connect(Target(port=nodes[1].port("rawsocket"), transport="rawsocket", serializer="cbor"))
        got = Collector()
        await two.subscribe(got, "com.example.tick")
        await two.register(lambda x: x + 1, "com.example.add_one")
        await one.publish("com.example.tick", 1, options=PublishOptions(acknowledge=True))
        assert (await bounded(got.done))[0][0] == (1,)
        assert await bounded(one.call("com.example.add_one", 41)) == 42
        assert await bounded(one.call("wamp.session.count")) == 2
        assert await bounded(two.call("wamp.session.count")) == 2
        await leave_all(one, two)
    finally:
        for node in nodes:
            await node.stop()


@pytest_twisted.ensureDeferred
async def test_a_reload_that_changes_the_cluster_table_says_it_needs_a_restart(nodes, tmp_path):
    """SIGHUP's reload applies what it can; the [cluster] table (Redis, node name, workers, ...) is not among it."""
    (node,) = await nodes(1)
    path = node.config.source
    path.write_text(path.read_text().replace("heartbeat_interval = 0.2", "heartbeat_interval = 0.3"))
    with captured_log() as log:
        assert node.service.reload() is True
    warnings = [text for level, text in log if level == LogLevel.warn]
    assert any("the [cluster] table needs a restart" in text for text in warnings), warnings
