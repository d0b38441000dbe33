"""The Redis client of cluster mode against a real redis-server on loopback (tests/support/redis_server.py).

Pinned here: commands and their replies (error replies as RedisError), EVALSHA reloading a flushed script, 10,000
publishes received in order with none lost, receiver counts, SUBSCRIBE confirmation, re-subscription after a Redis
restart (messages flow again, none twice), a hung (SIGSTOPped) server detected within the reply timeout, publishes
dropped and counted while Redis is away, AUTH with and without a user name (a wrong password is reported as such and
never logged), SELECT, and a network cut, blackhole and heal through a chaos proxy. Every wait is bounded.
"""

from __future__ import annotations

import pytest
import pytest_twisted
from twisted.internet import defer

from tests.support.chaos_proxy import ChaosProxy
from tests.support.logcapture import captured_log
from tests.support.wait import bounded, eventually
from wampgate.tx.cluster.redis import (RedisAddress, RedisConnection, RedisError, RedisSubscriber, RedisUnavailable,
                                       Script)

TIMEOUT = 0.5  # reply_timeout of the clients under test: a hang is found in half a second


def _reactor():
    from twisted.internet import reactor

    return reactor


class Events:
    """What on_up / on_down / on_message reported."""

    def __init__(self):
        self.up = 0
        self.down: list[str] = []
        self.messages: list[tuple[bytes, bytes]] = []

    def on_up(self):
        self.up += 1

    def on_down(self, reason):
        self.down.append(reason)

    def on_message(self, channel, payload):
        self.messages.append((channel, payload))


@pytest_twisted.async_yield_fixture()
async def links():
    """`connection(url, **options)` and `subscriber(url, **options)`: started clients with their Events, all stopped at
    teardown."""
    started = []

    def make(kind, url, **options):
        events = Events()
        options.setdefault("reply_timeout", TIMEOUT)
        extra = {"on_message": events.on_message} if kind is RedisSubscriber else {}
        link = kind(_reactor(), RedisAddress.parse(url), name=f"test-{len(started)}", on_up=events.on_up,
                    on_down=events.on_down, **extra, **options)
        link.events = events
        started.append(link)
        link.start()
        return link

    class Links:
        def connection(self, url, **options) -> RedisConnection:
            return make(RedisConnection, url, **options)

        def subscriber(self, url, **options) -> RedisSubscriber:
            return make(RedisSubscriber, url, **options)

    yield Links()
    for link in started:
        await bounded(link.stop())


async def up(link, count: int = 1):
    """Wait until `link` has announced itself up `count` times."""
    await eventually(lambda: link.events.up >= count and link.connected, f"{link.name} up ({count})")


async def failure_of(d: defer.Deferred, timeout: float = 5.0) -> Exception:
    """The exception `d` fails with (bounded)."""
    try:
        result = await bounded(d, timeout)
    except Exception as e:  # noqa: BLE001 - returned for the test to check its type
        return e
    raise AssertionError(f"expected a failure, got {result!r}")


# --- commands


@pytest_twisted.ensureDeferred
async def test_commands_and_replies(redis_server, links):
    """SET/GET/INCR/list commands fire with the decoded reply (bytes, int, list, None for a missing key); str and
    int arguments are sent as their text; an error reply fails with RedisError carrying the server's message."""
    redis = links.connection(redis_server.url)
    await up(redis)
    assert await bounded(redis.execute("SET", "k", b"v\x00\xff")) == b"OK"
    assert await bounded(redis.execute(b"GET", "k")) == b"v\x00\xff"
    assert await bounded(redis.execute("GET", "missing")) is None
    assert await bounded(redis.execute("INCR", "n")) == 1
    assert await bounded(redis.execute("INCRBY", "n", 41)) == 42
    assert await bounded(redis.execute("RPUSH", "l", "a", "b", "ü")) == 3
    assert await bounded(redis.execute("LRANGE", "l", 0, -1)) == [b"a", b"b", "ü".encode()]
    assert await bounded(redis.execute("LRANGE", "nothing", 0, -1)) == []
    wrongtype = await failure_of(redis.execute("INCR", "l"))
    assert isinstance(wrongtype, RedisError) and wrongtype.code == "WRONGTYPE"
    unknown = await failure_of(redis.execute("NOSUCHCOMMAND"))
    assert isinstance(unknown, RedisError) and unknown.message.startswith("ERR unknown command")
    assert await bounded(redis.execute("PING")) == b"PONG"  # still in step after the errors
    stats = redis.stats
    assert stats["commands"] == 11 and stats["errors"] == 2 and stats["replies"] >= 11
    with pytest.raises(TypeError, match="must be bytes, str or int, not float"):
        redis.execute("SET", "x", 1.5)


@pytest_twisted.ensureDeferred
async def test_pipelined_commands_answer_in_order(redis_server, links):
    """Many commands sent without waiting each get their own reply."""
    redis = links.connection(redis_server.url)
    await up(redis)
    replies = await bounded(defer.gatherResults([redis.execute("INCR", "seq") for _ in range(1000)]))
    assert replies == list(range(1, 1001))


@pytest_twisted.ensureDeferred
async def test_evalsha_loads_a_flushed_script_again(redis_server, links):
    """EVALSHA runs the script by its locally computed SHA1; after SCRIPT FLUSH (as after a Redis restart) the
    NOSCRIPT reply makes the client load it and run it again, transparently. A script that does not compile fails
    with Redis's compile error."""
    redis = links.connection(redis_server.url)
    await up(redis)
    add = Script("return redis.call('INCRBY', KEYS[1], ARGV[1])")
    assert await bounded(redis.evalsha(add, ["counter"], [5])) == 5
    loaded = await bounded(redis.execute("SCRIPT", "EXISTS", add.sha))
    assert loaded == [1]
    assert await bounded(redis.execute("SCRIPT", "FLUSH")) == b"OK"
    assert await bounded(redis.evalsha(add, [b"counter"], [b"2"])) == 7
    assert await bounded(redis.evalsha(add, ["counter"], [1])) == 8
    broken = await failure_of(redis.evalsha(Script("return +"), [], []))
    assert isinstance(broken, RedisError) and "Error compiling script" in broken.message
    failing = await failure_of(redis.evalsha(Script("return redis.error_reply('MINE nope')"), [], []))
    assert isinstance(failing, RedisError) and failing.message == "MINE nope"


# --- publish and subscribe


@pytest_twisted.ensureDeferred
async def test_ten_thousand_publishes_arrive_in_order(redis_server, links):
    """10,000 pipelined PUBLISHes reach the subscriber, all of them, in the order published."""
    subscriber = links.subscriber(redis_server.url)
    publisher = links.connection(redis_server.url)
    await up(subscriber)
    await up(publisher)
    await bounded(subscriber.subscribe(b"wg:e"))
    sent = [b"%d" % n for n in range(10_000)]
    assert all(publisher.publish(b"wg:e", payload) for payload in sent)
    await eventually(lambda: len(subscriber.events.messages) >= len(sent), "10,000 messages", timeout=20)
    assert subscriber.events.messages == [(b"wg:e", payload) for payload in sent]
    assert subscriber.stats["received"] == 10_000
    assert publisher.stats["dropped_publishes"] == 0


@pytest_twisted.ensureDeferred
async def test_publish_reports_the_receiver_count(redis_server, links):
    """on_count gets the number of subscribers that received the message: 2, 1, then 0 for a channel nobody holds."""
    first = links.subscriber(redis_server.url)
    second = links.subscriber(redis_server.url)
    publisher = links.connection(redis_server.url)
    for link in (first, second, publisher):
        await up(link)
    await bounded(first.subscribe(b"both"))
    await bounded(second.subscribe(b"both"))
    await bounded(second.subscribe(b"one"))
    counts = []
    assert publisher.publish(b"both", b"x", on_count=counts.append)
    assert publisher.publish(b"one", b"x", on_count=counts.append)
    assert publisher.publish(b"none", b"x", on_count=counts.append)
    assert publisher.publish(b"both", b"no callback")
    await eventually(lambda: len(counts) == 3, "three receiver counts")
    assert counts == [2, 1, 0]


@pytest_twisted.ensureDeferred
async def test_subscribe_is_confirmed_and_unsubscribe_stops_delivery(redis_server, links):
    """subscribe() fires once Redis confirmed it (PUBSUB NUMSUB counts it then); again for a held channel it fires
    at once; after unsubscribe() nothing of that channel is passed on and Redis forgets the subscription."""
    subscriber = links.subscriber(redis_server.url)
    redis = links.connection(redis_server.url)
    await up(subscriber)
    await up(redis)
    assert await bounded(subscriber.subscribe(b"a")) is None
    assert await bounded(redis.execute("PUBSUB", "NUMSUB", "a")) == [b"a", 1]
    again = subscriber.subscribe(b"a")
    assert again.called and again.result is None
    await bounded(subscriber.subscribe(b"b"))
    assert subscriber.channels == frozenset({b"a", b"b"})
    subscriber.unsubscribe(b"a")
    subscriber.unsubscribe(b"never held")  # nothing to do
    assert subscriber.channels == frozenset({b"b"})
    redis.publish(b"a", b"after unsubscribe")
    redis.publish(b"b", b"marker")
    await eventually(lambda: subscriber.events.messages, "the marker")
    assert subscriber.events.messages == [(b"b", b"marker")]
    assert await bounded(redis.execute("PUBSUB", "NUMSUB", "a", "b")) == [b"a", 0, b"b", 1]


@pytest_twisted.ensureDeferred
async def test_unsubscribe_then_subscribe_again_before_the_replies(redis_server, links):
    """SUBSCRIBE, UNSUBSCRIBE, SUBSCRIBE of one channel sent back to back: the channel is confirmed only by the last
    acknowledgement, and is subscribed once at the end."""
    subscriber = links.subscriber(redis_server.url)
    redis = links.connection(redis_server.url)
    await up(subscriber)
    await up(redis)
    first = subscriber.subscribe(b"c")
    subscriber.unsubscribe(b"c")
    assert isinstance(await failure_of(first), RedisUnavailable)
    await bounded(subscriber.subscribe(b"c"))
    assert await bounded(redis.execute("PUBSUB", "NUMSUB", "c")) == [b"c", 1]
    redis.publish(b"c", b"once")
    await eventually(lambda: subscriber.events.messages, "the message")
    assert subscriber.events.messages == [(b"c", b"once")]


@pytest_twisted.ensureDeferred
async def test_channels_survive_a_redis_restart(redis_server, links):
    """Redis restarts empty on the same port: both clients report the outage and reconnect, the subscriber sends
    every channel it holds again before announcing itself up, and messages flow again, each received once."""
    subscriber = links.subscriber(redis_server.url)
    publisher = links.connection(redis_server.url)
    await up(subscriber)
    await up(publisher)
    await bounded(subscriber.subscribe(b"x"))
    await bounded(subscriber.subscribe(b"y"))
    redis_server.restart()
    await up(subscriber, 2)
    await up(publisher, 2)
    assert len(subscriber.events.down) == 1 and len(publisher.events.down) == 1
    assert subscriber.stats["reconnects"] == 1 and subscriber.stats["resubscribed"] == 2
    assert await bounded(publisher.execute("PUBSUB", "NUMSUB", "x", "y")) == [b"x", 1, b"y", 1]
    publisher.publish(b"x", b"1")
    publisher.publish(b"y", b"2")
    publisher.publish(b"x", b"3")
    await eventually(lambda: len(subscriber.events.messages) >= 3, "three messages")
    assert subscriber.events.messages == [(b"x", b"1"), (b"y", b"2"), (b"x", b"3")]
    assert publisher.stats["reconnects"] == 1


@pytest_twisted.ensureDeferred
async def test_subscribe_while_down_holds_the_channel(redis_server, links):
    """Before the first connect subscribe() fails at once with RedisUnavailable, but the channel is held and
    subscribed as soon as the subscriber connects."""
    subscriber = RedisSubscriber(_reactor(), RedisAddress.parse(redis_server.url), name="early",
                                 on_message=lambda channel, payload: None, reply_timeout=TIMEOUT)
    early = subscriber.subscribe(b"early")
    assert early.called and isinstance(await failure_of(early), RedisUnavailable)
    assert subscriber.channels == frozenset({b"early"})
    redis = links.connection(redis_server.url)
    subscriber.start()
    try:
        await eventually(lambda: subscriber.connected, "the subscriber up")
        assert await bounded(redis.execute("PUBSUB", "NUMSUB", "early")) == [b"early", 1]
        assert subscriber.subscribe(b"early").called
    finally:
        await bounded(subscriber.stop())


# --- outages


@pytest_twisted.ensureDeferred
async def test_a_hung_server_is_detected_within_the_reply_timeout(redis_server, links):
    """SIGSTOP keeps the TCP connections open but nothing answers: a command fails with RedisUnavailable, both links
    report the hang, and an idle subscriber finds it by its own PING; publishes are then refused. After SIGCONT both
    reconnect and messages flow again, none twice."""
    subscriber = links.subscriber(redis_server.url)
    redis = links.connection(redis_server.url)
    await up(subscriber)
    await up(redis)
    await bounded(subscriber.subscribe(b"h"))
    redis_server.pause()
    try:
        hung = await failure_of(redis.execute("PING"), timeout=TIMEOUT * 6)
        assert isinstance(hung, RedisUnavailable)
        assert "no reply within 0.5 s" in str(hung)
        await eventually(lambda: subscriber.events.down, "the subscriber's on_down", timeout=TIMEOUT * 6)
        assert redis.events.down[0].startswith("no reply within 0.5 s")
        assert subscriber.events.down[0].startswith("no reply within 0.5 s")
        assert not redis.publish(b"h", b"while hung")
        assert redis.stats["timeouts"] >= 1 and redis.stats["dropped_publishes"] == 1
    finally:
        redis_server.resume()
    await up(subscriber, 2)
    await up(redis, 2)
    redis.publish(b"h", b"after")
    await eventually(lambda: subscriber.events.messages, "a message after SIGCONT")
    assert subscriber.events.messages == [(b"h", b"after")]


@pytest_twisted.ensureDeferred
async def test_while_redis_is_down_nothing_is_queued(redis_server, links):
    """Redis stopped: on_down once (not once per retry), commands fail at once, publishes return False and are
    counted; nothing waits for the reconnect. When Redis is back, the link is up again."""
    redis = links.connection(redis_server.url)
    await up(redis)
    port = redis_server.port
    redis_server.stop()
    await eventually(lambda: not redis.connected, "the link down")
    assert [redis.publish(b"c", b"%d" % n) for n in range(5)] == [False] * 5
    refused = redis.execute("GET", "k")
    assert refused.called and isinstance(await failure_of(refused), RedisUnavailable)
    assert redis.stats["dropped_publishes"] == 5 and redis.stats["unavailable"] == 1
    await eventually(lambda: redis._attempt >= 3, "three failed reconnects")
    assert len(redis.events.down) == 1
    redis_server.restart()
    assert redis_server.port == port
    await up(redis, 2)
    assert await bounded(redis.execute("PING")) == b"PONG"


@pytest_twisted.ensureDeferred
async def test_max_pending_bounds_outstanding_replies(redis_server, links):
    """With max_pending replies outstanding (Redis hung), further publishes are dropped and commands refused."""
    redis = links.connection(redis_server.url, max_pending=3, reply_timeout=5.0)
    await up(redis)
    redis_server.pause()
    try:
        assert [redis.publish(b"c", b"x") for _ in range(3)] == [True] * 3
        assert not redis.publish(b"c", b"x")
        refused = await failure_of(redis.execute("PING"))
        assert isinstance(refused, RedisUnavailable) and "3 replies outstanding (max_pending)" in str(refused)
        assert redis.stats["dropped_publishes"] == 1
    finally:
        redis_server.resume()


# --- authentication and database


@pytest_twisted.ensureDeferred
async def test_password_user_and_database(redis_servers, links):
    """AUTH with the URL's password (and user name, for an ACL user), SELECT of its database: a key written through
    db 3 is not in db 0."""
    server = redis_servers("--requirepass", "s3cret")
    default_user = links.connection(f"redis://:s3cret@127.0.0.1:{server.port}")
    await up(default_user)
    assert await bounded(default_user.execute("ACL", "SETUSER", "alice", "on", ">al1ce", "~*", "&*", "+@all")) == b"OK"
    alice = links.connection(f"redis://alice:al1ce@127.0.0.1:{server.port}/3")
    await up(alice)
    assert await bounded(alice.execute("ACL", "WHOAMI")) == b"alice"
    assert await bounded(default_user.execute("ACL", "WHOAMI")) == b"default"
    assert await bounded(alice.execute("SET", "where", "db3")) == b"OK"
    assert await bounded(default_user.execute("GET", "where")) is None
    assert await bounded(default_user.execute("SELECT", 3)) == b"OK"
    assert await bounded(default_user.execute("GET", "where")) == b"db3"


@pytest_twisted.ensureDeferred
async def test_wrong_or_missing_password(redis_servers, links):
    """A wrong password: on_down says authentication failed (Redis's WRONGPASS), the link keeps retrying and never
    comes up, and the password appears in no log line. No password where one is needed: on_down says so."""
    server = redis_servers("--requirepass", "s3cret")
    with captured_log() as log:
        wrong = links.connection(f"redis://:wr0ng-pa55@127.0.0.1:{server.port}")
        missing = links.subscriber(f"redis://127.0.0.1:{server.port}")
        await eventually(lambda: wrong.events.down and missing.events.down, "both down")
        await eventually(lambda: wrong._attempt >= 2, "a retry")
    assert wrong.events.down == ["authentication failed: WRONGPASS invalid username-password pair or user is "
                                 "disabled."]
    assert missing.events.down[0].startswith("authentication required: the server wants a password and the URL "
                                             "gives none (NOAUTH")
    assert wrong.events.up == 0 and not wrong.connected
    text = "\n".join(line for _, line in log)
    assert "WRONGPASS" in text and ":***@127.0.0.1" in text
    assert "wr0ng-pa55" not in text


# --- the network


@pytest_twisted.ensureDeferred
async def test_cut_and_heal(redis_server, links):
    """The chaos proxy cuts the network (connections closed, new ones refused): commands fail at once and the
    subscriber reports the loss; after heal both reconnect and the subscriber's channel works again."""
    proxy = ChaosProxy(_reactor(), redis_server.port).start()
    try:
        subscriber = links.subscriber(proxy.url)
        redis = links.connection(proxy.url)
        direct = links.connection(redis_server.url)
        for link in (subscriber, redis, direct):
            await up(link)
        await bounded(subscriber.subscribe(b"p"))
        await bounded(proxy.cut())
        await eventually(lambda: redis.events.down and subscriber.events.down, "both down")
        assert redis.events.down[0].startswith("connection lost")
        assert isinstance(await failure_of(redis.execute("PING")), RedisUnavailable)
        assert direct.publish(b"p", b"lost in the cut")
        proxy.heal()
        await up(subscriber, 2)
        await up(redis, 2)
        assert direct.publish(b"p", b"after heal")
        await eventually(lambda: subscriber.events.messages, "a message after heal")
        assert subscriber.events.messages == [(b"p", b"after heal")]
    finally:
        await bounded(proxy.stop())


@pytest_twisted.ensureDeferred
async def test_blackhole_is_found_by_the_reply_timeout(redis_server, links):
    """A blackhole (connection open, no bytes moving) is found like a hung server: the command fails with
    RedisUnavailable and the link reconnects once the network heals."""
    proxy = ChaosProxy(_reactor(), redis_server.port).start()
    try:
        redis = links.connection(proxy.url)
        await up(redis)
        proxy.blackhole()
        hung = await failure_of(redis.execute("PING"), timeout=TIMEOUT * 6)
        assert isinstance(hung, RedisUnavailable) and "no reply within" in str(hung)
        assert redis.events.down == [redis.events.down[0]] and redis.events.down[0].startswith("no reply within")
        proxy.heal()
        await up(redis, 2)
        assert await bounded(redis.execute("PING")) == b"PONG"
    finally:
        await bounded(proxy.stop())


@pytest_twisted.ensureDeferred
async def test_a_full_socket_drops_publishes(redis_server, links):
    """Once the transport reports its buffer full, at most `max_unsent` more bytes are written: a further publish
    is dropped and counted (and a command refused) instead of buffered; once the socket drained, publishing works
    again."""
    redis = links.connection(redis_server.url, max_unsent=1024 * 1024)
    await up(redis)
    payload = b"p" * (1024 * 1024)
    assert [redis.publish(b"big", payload) for _ in range(3)] == [True, True, False]
    refused = await failure_of(redis.execute("PING"))
    assert isinstance(refused, RedisUnavailable) and "more than 1048576 bytes unsent" in str(refused)
    assert redis.stats["dropped_publishes"] == 1
    await eventually(lambda: redis.publish(b"big", b"small"), "publishing again after the socket drained")
    assert await bounded(redis.execute("PING")) == b"PONG"


@pytest_twisted.ensureDeferred
async def test_tls(redis_servers, links, certs):
    """rediss:// speaks TLS: with the test CA as trust root (tls_options) commands work; with the default options
    (the system's trust roots) the server's certificate is refused and on_down says why."""
    from twisted.internet import ssl

    from tests.support.wait import free_port

    tls_port = free_port()
    redis_servers("--tls-port", str(tls_port), "--tls-cert-file", str(certs.server_chain), "--tls-key-file",
                  str(certs.server_key), "--tls-ca-cert-file", str(certs.ca), "--tls-auth-clients", "no")
    trust = ssl.Certificate.loadPEM(certs.ca.read_bytes())
    secure = links.connection(f"rediss://localhost:{tls_port}",
                              tls_options=ssl.optionsForClientTLS("localhost", trustRoot=trust))
    await up(secure)
    assert await bounded(secure.execute("PING")) == b"PONG"
    untrusted = links.connection(f"rediss://localhost:{tls_port}")
    await eventually(lambda: untrusted.events.down, "the untrusted connection down")
    assert "certificate verify failed" in untrusted.events.down[0]
    assert untrusted.events.up == 0


@pytest_twisted.ensureDeferred
async def test_stop_closes_for_good(redis_server, links):
    """stop() fires once the connection is closed; on_down is not called for it, and nothing reconnects, even when
    Redis restarts. Stopping again, or a link that never connected, fires at once."""
    redis = links.connection(redis_server.url)
    subscriber = links.subscriber(redis_server.url)
    await up(redis)
    await up(subscriber)
    await bounded(subscriber.subscribe(b"s"))
    await bounded(redis.stop())
    await bounded(subscriber.stop())
    assert not redis.connected and not subscriber.connected
    assert redis.events.down == [] and subscriber.events.down == []
    assert subscriber.channels == frozenset({b"s"})
    assert redis.stop().called
    redis_server.restart()
    probe = links.connection(redis_server.url)
    await up(probe)
    assert (await bounded(probe.execute("CLIENT", "LIST"))).count(b"\n") == 1  # the probe alone
    assert redis.events.up == 1 and subscriber.events.up == 1
