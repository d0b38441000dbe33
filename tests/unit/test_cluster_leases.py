"""Cluster-wide rates without Redis on the hot path: leases, credit while one is on its way, repayment, and what
happens when Redis is away. A fake node answers the lease script as the test says."""

from __future__ import annotations

from twisted.internet import defer

from wampgate.tx.cluster.limits import LEASE, ClusterLimits


class FakeRedis:
    def __init__(self):
        self.connected = True
        self.asked: list[tuple[bytes, list]] = []
        self.answers: list[defer.Deferred] = []

    def evalsha(self, script, keys, args):
        assert script is LEASE
        self.asked.append((keys[0], args))
        d = defer.Deferred()
        self.answers.append(d)
        return d


class FakeNode:
    def __init__(self):
        self.redis = FakeRedis()
        self.counted: list[str] = []
        self.links = {}

    def count(self, name, **labels):
        self.counted.append(name)


def limits(node, when_redis_down="local"):
    return ClusterLimits(node, lease_seconds=1.0, when_redis_down=when_redis_down)


def test_the_first_message_goes_on_credit_and_the_lease_repays_it():
    node = FakeNode()
    shared = limits(node)
    assert shared.take("alice", 10.0, 100.0, 1, 0.0) == 0.0  # on credit: no waiting for Redis
    assert node.redis.asked == [(b"wg:rl:alice", ["10.0", "100.0", "10"])]  # a lease: rate x 1 s
    for _ in range(9):
        assert shared.take("alice", 10.0, 100.0, 1, 0.0) == 0.0  # more credit while the lease is on its way
    assert shared.take("alice", 10.0, 100.0, 1, 0.0) > 0  # credit is one lease at most
    node.redis.answers[0].callback(10)  # repays the 10 spent on credit
    assert shared._pools["alice"].tokens == 0
    assert shared.take("alice", 10.0, 100.0, 1, 0.0) == 0.0
    assert len(node.redis.asked) == 2  # one script call per lease, not per message


def test_an_empty_cluster_bucket_refuses_and_is_not_asked_again_at_once():
    node = FakeNode()
    shared = limits(node)
    shared.take("bob", 2.0, 2.0, 1, 0.0)
    node.redis.answers[0].callback(0)  # the cluster's bucket is empty
    wait = shared.take("bob", 2.0, 2.0, 1, 0.1)
    assert wait > 0
    assert len(node.redis.asked) == 1  # backs off for half a lease's refill
    shared.take("bob", 2.0, 2.0, 1, 1.0)
    assert len(node.redis.asked) == 2


def test_a_refund_gives_tokens_back():
    node = FakeNode()
    shared = limits(node)
    shared.take("carol", 5.0, 5.0, 1, 0.0)
    node.redis.answers[0].callback(6)
    before = shared._pools["carol"].tokens
    shared.refund("carol", 1)
    assert shared._pools["carol"].tokens == before + 1


def test_without_redis_rates_go_local_or_refuse_as_configured():
    for policy, expected in (("local", 0.0), ("refuse", 1.0)):
        node = FakeNode()
        node.redis.connected = False
        assert limits(node, policy).take("dave", 1.0, 1.0, 1, 0.0) == expected
        assert node.redis.asked == []


def test_a_failed_lease_call_is_counted_and_retried_later():
    node = FakeNode()
    shared = limits(node)
    shared.take("erin", 1.0, 10.0, 1, 0.0)
    node.redis.answers[0].errback(RuntimeError("hung"))
    assert node.counted == ["cluster_lease_failed"]
    shared.take("erin", 1.0, 10.0, 1, 0.1)
    assert len(node.redis.asked) == 1
    shared.take("erin", 1.0, 10.0, 1, 0.6)
    assert len(node.redis.asked) == 2


def test_unlimited_rates_never_ask():
    node = FakeNode()
    assert limits(node).take("frank", 0.0, 0.0, 1, 0.0) == 0.0
    assert node.redis.asked == []
