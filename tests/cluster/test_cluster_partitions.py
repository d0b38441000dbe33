"""One node cut off from Redis, and a slow node Redis cuts off itself; churn leaves Redis as it found it.

* Partition (the node's connections to Redis cut): the node serves its own clients, REGISTER there fails with
  `wamp.error.unavailable`; the other nodes take it for gone after node_timeout (its sessions leave); once healed it
  writes and announces its sessions again and events cross again.
* Slow node: Redis's `client-output-buffer-limit pubsub` cuts the node's subscriber while it does not read; once it
  reads again it reconnects, re-subscribes and receives again; what it missed is lost (at most once), not replayed.
* Churn: after many subscribe / unsubscribe cycles on several nodes, Redis holds no pattern and no channel beyond the
  nodes' own two each.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, SubscribeOptions
from twisted.internet import reactor, task

from tests.cluster.test_cluster_pubsub import at
from tests.support.chaos_proxy import ChaosProxy
from tests.support.clients import Collector, connect, leave_all
from tests.support.wait import bounded, eventually
from wampgate.tx.cluster.redis import RedisAddress, RedisConnection


async def _redis(url: str):
    connection = RedisConnection(reactor, RedisAddress.parse(url), name="test")
    connection.start()
    await eventually(lambda: connection.connected, "the test's Redis connection")
    return connection


@pytest_twisted.ensureDeferred
async def test_a_partitioned_node_serves_locally_and_rejoins_when_healed(nodes, redis_server):
    proxy = ChaosProxy(reactor, int(redis_server.url.rsplit(":", 1)[1])).start()
    try:
        (a,) = await nodes(1)
        (b,) = await nodes(1, url=proxy.url, cluster="reply_timeout = 0.5")
        watcher, cut_off = await connect(at(a)), await connect(at(b))
        local = Collector()
        await cut_off.subscribe(local, "com.local")
        await eventually(lambda: len(a.realm().remote_sessions) == 1, "a sees b's session")
        await proxy.cut()
        await eventually(lambda: not b.service.cluster.healthy, "b misses Redis")
        await cut_off.publish("com.local", 1, options=PublishOptions(acknowledge=True, exclude_me=False))
        assert (await bounded(local.done))[0][0] == (1,)
        with pytest.raises(ApplicationError) as refused:
            await bounded(cut_off.register(lambda: 1, "com.during"))
        assert refused.value.error == "wamp.error.unavailable"
        await eventually(lambda: not a.realm().remote_sessions, "a took b for gone", timeout=5)
        proxy.heal()
        await eventually(lambda: b.service.cluster.healthy, "b is back", timeout=10)
        await eventually(lambda: len(a.realm().remote_sessions) == 1, "a sees b's session again", timeout=5)
        across = Collector()
        await cut_off.subscribe(across, "com.across")
        await watcher.publish("com.across", 2, options=PublishOptions(acknowledge=True))
        assert (await bounded(across.done))[0][0] == (2,)
        await leave_all(watcher, cut_off)
    finally:
        await proxy.stop()


async def _drained(redis, attempts: int = 20) -> None:
    """A PING answered on `redis`: everything written before it was read by Redis (bounded in attempts and time)."""
    for _ in range(attempts):
        try:
            await bounded(redis.execute(b"PING"), 5)
            return
        except Exception:  # over its unsent bound, or the reply is slow: try again a little later
            await task.deferLater(reactor, 0.1, lambda: None)
    raise AssertionError("the connection's backlog never drained")


async def _pubsub_clients(probe) -> int:
    listing = (await bounded(probe.execute(b"CLIENT", b"LIST", b"TYPE", b"pubsub"))).decode()
    return len([line for line in listing.splitlines() if line.strip()])


@pytest_twisted.ensureDeferred
async def test_a_slow_node_cut_by_redis_recovers_and_the_loss_is_not_replayed(nodes, redis_servers):
    redis = redis_servers("--client-output-buffer-limit", "pubsub 256kb 64kb 1")
    proxy = ChaosProxy(reactor, int(redis.url.rsplit(":", 1)[1])).start()
    try:
        (a,) = await nodes(1, url=redis.url)
        (b,) = await nodes(1, url=proxy.url, cluster="reply_timeout = 30")
        publisher, slow = await connect(at(a)), await connect(at(b, "rawsocket", "msgpack"))
        seen = []
        flood = await slow.subscribe(lambda n, blob: seen.append(n), "com.flood")
        probe = await _redis(redis.url)
        subscribers = await _pubsub_clients(probe)
        assert subscribers == 2  # a's and b's
        proxy.blackhole()
        blob = "x" * 16384  # within the default flow limits: 2,000 messages and 32 MiB of burst per session
        for n in range(1500):
            publisher.publish("com.flood", n, blob)
            if n % 100 == 99 and await _pubsub_clients(probe) < subscribers:
                break
        cut = False
        for _ in range(100):  # the router takes a moment to pass the flood on; bounded: 100 round trips
            if await _pubsub_clients(probe) < subscribers:
                cut = True
                break
            await bounded(probe.execute(b"PING"))
        assert cut, "Redis did not cut the slow subscriber"
        assert "output buffer limits" in redis.log_tail(20000)
        # the flood a could not send yet is still on its way: b stops listening to it first, or on a loaded machine
        # the rest of the flood would overrun b's new subscriber connection too
        await flood.unsubscribe()
        flood_channel = b"wg:realm1:t:com.flood"
        await eventually(lambda: flood_channel not in b.service.cluster.subscriber.channels, "b let go of the flood")
        proxy.heal()
        await eventually(lambda: b.service.cluster.subscriber.stats["reconnects"] >= 1, "b's subscriber reconnected",
                         timeout=10)
        await eventually(lambda: b.service.cluster.healthy, "b is healthy again", timeout=20)
        # a's connection to Redis may still hold flood it could not write (publications beyond its unsent bound are
        # dropped, not queued): a PING answered means it has drained
        await _drained(a.service.cluster.redis)
        fresh, fresh_publisher = await connect(at(b)), await connect(at(a))  # the flooded ones may still be busy
        after = Collector()
        await fresh.subscribe(after, "com.after")
        # at most once across nodes: that b receives again is what matters. On a loaded machine the first event after
        # the recovery is sometimes lost (seen with two busy loops hogging both cores): hence a few tries
        for attempt in range(20):
            await fresh_publisher.publish("com.after", attempt, options=PublishOptions(acknowledge=True))
            try:
                await eventually(lambda: after.events, "b received again", timeout=1)
                break
            except AssertionError:
                continue
        assert after.events, "b never received again"
        assert len(seen) < n + 1 and seen == sorted(seen)  # lost, never replayed, never reordered
        await leave_all(publisher, slow, fresh, fresh_publisher)
        await probe.stop()
    finally:
        await proxy.stop()


@pytest_twisted.ensureDeferred
async def test_churn_leaves_no_pattern_and_no_channel_in_redis(nodes, redis_server):
    a, b = await nodes(2, cluster="unsubscribe_linger = 0")
    probe = await _redis(redis_server.url)
    baseline = sorted(await bounded(probe.execute(b"PUBSUB", b"CHANNELS", b"wg:*")))
    assert len(baseline) == 3  # wg:ctl and the two nodes' inboxes
    sessions = [await connect(at(node)) for node in (a, b, a, b)]
    for cycle in range(150):
        for index, session in enumerate(sessions):
            options = [None, SubscribeOptions(match="prefix"), SubscribeOptions(match="wildcard")][cycle % 3]
            topic = [f"com.churn.{index}.{cycle % 7}", f"com.churn.{index}.", f"com..{cycle % 5}"][cycle % 3]
            subscription = await bounded(session.subscribe(lambda *a, **k: None, topic, options=options))
            await bounded(subscription.unsubscribe())
    await leave_all(*sessions)
    assert await bounded(probe.execute(b"PUBSUB", b"NUMPAT")) == 0
    assert sorted(await bounded(probe.execute(b"PUBSUB", b"CHANNELS", b"wg:*"))) == baseline
    await probe.stop()
