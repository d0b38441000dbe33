"""Authorization end to end: a real router (tests/support/router.py) and real Autobahn Twisted clients.

Pins down, beyond the static-rule tests of test_broker_options.py: each action (publish, subscribe, call, register)
allowed and refused per role with ERROR wamp.error.not_authorized naming the action and URI; {authid} inboxes that
other users cannot subscribe to; wildcard subscriptions that never deliver a forbidden topic; the `dynamic` authorizer
(allow, deny, no answer = deny after [limits] authorization_timeout, cached answers per identity or per role, and
per-session order kept while a decision is pending); the example `quota` plugin loaded through its entry point;
misbehaving plugins that deny without harming the router; and invalid authorizer config stopping start-up with a
line naming realms[i].authorizers[n].<key>.

Roles are given by listeners (`anonymous = { role = ... }` per listener). Anonymous authids are random, so tests
read them from the WELCOME. Negative delivery checks use a marker: the same publisher publishes an allowed marker
after the forbidden topic, and once the marker arrived an earlier event that did not arrive was never sent.
"""

from __future__ import annotations

import textwrap
import time
from importlib.metadata import entry_points

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, SubscribeOptions
from twisted.internet import defer, task

from wampgate.config import ConfigError
from tests.support.clients import Collector, Target, connect, leave_all
from tests.support.raw import (
    GOODBYE,
    PUBLISH,
    PUBLISHED,
    SUBSCRIBE,
    SUBSCRIBED,
    WELCOME,
    assert_router_serves,
    bounded,
    hello,
    open_websocket,
)
from tests.support.router import listener, start_router

NOT_AUTHORIZED = "wamp.error.not_authorized"
ACK = PublishOptions(acknowledge=True)
WAIT = 5.0  # the bound on every wait for something that must happen


def _reactor():
    from twisted.internet import reactor

    return reactor


# -- config building -------------------------------------------------------------------------------------------


def permission(uri: str, match: str, allow: list[str]) -> str:
    actions = ", ".join(f'"{a}"' for a in allow)
    return f'\n[[realms.roles.permissions]]\nuri = "{uri}"\nmatch = "{match}"\nallow = [{actions}]\n'


def realm_toml(roles: dict[str, str], authorizers: str = "", name: str = "realm1") -> str:
    """A realm with {role: permissions TOML} and, optionally, [[realms.authorizers]] tables."""
    text = f'\n[[realms]]\nname = "{name}"\n'
    for role, permissions in roles.items():
        text += f'\n[[realms.roles]]\nname = "{role}"\n{permissions}\n'
    return text + textwrap.dedent(authorizers)


def role_listeners(*roles: str) -> str:
    """One WebSocket listener per role, named after it, giving anonymous clients that role."""
    return "".join(listener(role, ("websocket",), auth=f'anonymous = {{ role = "{role}" }}') for role in roles)


async def join(running, role: str):
    """A session of `role` (through the listener of that name)."""
    return await bounded(connect(Target(port=running.port(role))))




async def refused(deferred) -> tuple:
    """Await a request that must fail; return (error URI, args)."""
    with pytest.raises(ApplicationError) as caught:
        await bounded(deferred)
    return caught.value.error, caught.value.args


def not_authorized(action: str, uri: str) -> tuple:
    return NOT_AUTHORIZED, (f"session is not authorized to {action} on '{uri}'",)


# -- 1. every action, per role -----------------------------------------------------------------------------------

TWO_ROLES = role_listeners("writer", "reader") + realm_toml({
    "writer": permission("app.news.", "prefix", ["publish"]) + permission("app.rpc.add", "exact", ["call"]),
    "reader": permission("app.news.", "prefix", ["subscribe"]) + permission("app.rpc.add", "exact", ["register"]),
})


@pytest_twisted.ensureDeferred
async def test_publish_is_allowed_and_refused_per_role(tmp_path, stoppable):
    """writer may publish under app.news. (the event is delivered); reader may not, and neither may publish outside
    the rule: ERROR not_authorized naming the action and URI, and no event is delivered for the refused ones."""
    running = await stoppable(TWO_ROLES, tmp_path)
    writer, reader = await join(running, "writer"), await join(running, "reader")
    events = Collector(expected=2)
    await bounded(reader.subscribe(events, "app.news.", options=SubscribeOptions(match="prefix")))
    assert await refused(reader.publish("app.news.x", "from reader", options=ACK)) == not_authorized(
        "publish", "app.news.x")
    assert await refused(writer.publish("app.other", "outside", options=ACK)) == not_authorized(
        "publish", "app.other")
    publication = await bounded(writer.publish("app.news.x", "from writer", options=ACK))
    assert isinstance(publication.id, int)
    await bounded(writer.publish("app.news.y", "marker", options=ACK))
    assert await bounded(events.done) == [(("from writer",), {}), (("marker",), {})]
    await leave_all(writer, reader)


@pytest_twisted.ensureDeferred
async def test_subscribe_is_allowed_and_refused_per_role(tmp_path, stoppable):
    """reader may subscribe under app.news.; writer may not (ERROR not_authorized naming subscribe and the URI),
    and the router holds no subscription for the refused request."""
    running = await stoppable(TWO_ROLES, tmp_path)
    writer, reader = await join(running, "writer"), await join(running, "reader")
    assert await refused(writer.subscribe(Collector(), "app.news.x")) == not_authorized("subscribe", "app.news.x")
    assert await refused(reader.subscribe(Collector(), "app.rpc.add")) == not_authorized("subscribe", "app.rpc.add")
    subscription = await bounded(reader.subscribe(Collector(), "app.news.x"))
    assert subscription.active is True
    assert [(s.uri, len(s.subscribers)) for s in running.realm().broker.subscriptions()] == [("app.news.x", 1)]
    await leave_all(writer, reader)


@pytest_twisted.ensureDeferred
async def test_register_is_allowed_and_refused_per_role(tmp_path, stoppable):
    """reader may register app.rpc.add; writer may not (ERROR not_authorized naming register and the URI), nor may
    reader register another procedure."""
    running = await stoppable(TWO_ROLES, tmp_path)
    writer, reader = await join(running, "writer"), await join(running, "reader")
    assert await refused(writer.register(lambda a, b: a + b, "app.rpc.add")) == not_authorized(
        "register", "app.rpc.add")
    assert await refused(reader.register(lambda: None, "app.rpc.other")) == not_authorized(
        "register", "app.rpc.other")
    registration = await bounded(reader.register(lambda a, b: a + b, "app.rpc.add"))
    assert registration.active is True
    await leave_all(writer, reader)


@pytest_twisted.ensureDeferred
async def test_call_is_allowed_and_refused_per_role(tmp_path, stoppable):
    """writer may call app.rpc.add (and gets the callee's result); reader, the callee itself, may not call it:
    ERROR not_authorized naming call and the URI, and the callee is not invoked for the refused call."""
    running = await stoppable(TWO_ROLES, tmp_path)
    writer, reader = await join(running, "writer"), await join(running, "reader")
    invocations = []

    def add(a, b):
        invocations.append((a, b))
        return a + b

    await bounded(reader.register(add, "app.rpc.add"))
    assert await refused(reader.call("app.rpc.add", 1, 2)) == not_authorized("call", "app.rpc.add")
    assert await refused(writer.call("app.rpc.sub", 1, 2)) == not_authorized("call", "app.rpc.sub")
    assert await bounded(writer.call("app.rpc.add", 2, 3)) == 5
    assert invocations == [(2, 3)]
    await leave_all(writer, reader)


# -- 2. {authid} inboxes -----------------------------------------------------------------------------------------

INBOXES = role_listeners("user") + realm_toml({
    "user": permission("app.user.{authid}.inbox", "exact", ["subscribe"]) + permission("app.user.", "prefix",
                                                                                       ["publish"]),
})


@pytest_twisted.ensureDeferred
async def test_authid_inboxes_are_private(tmp_path, stoppable):
    """Each user may subscribe to app.user.<own authid>.inbox only: bob's subscribe to alice's inbox, exact or by
    pattern, is not_authorized; what bob publishes to alice's inbox reaches alice, and alice's reply reaches bob."""
    running = await stoppable(INBOXES, tmp_path)
    alice, bob = await join(running, "user"), await join(running, "user")
    alice_inbox = f"app.user.{alice.welcome.authid}.inbox"
    bob_inbox = f"app.user.{bob.welcome.authid}.inbox"
    assert alice_inbox != bob_inbox
    to_alice, to_bob = Collector(), Collector()
    await bounded(alice.subscribe(to_alice, alice_inbox))
    await bounded(bob.subscribe(to_bob, bob_inbox))
    assert await refused(bob.subscribe(Collector(), alice_inbox)) == not_authorized("subscribe", alice_inbox)
    assert await refused(alice.subscribe(Collector(), bob_inbox)) == not_authorized("subscribe", bob_inbox)
    for pattern, match in (("app.user.", "prefix"), ("app.user..inbox", "wildcard"),
                           (f".user.{alice.welcome.authid}.inbox", "wildcard")):
        assert await refused(bob.subscribe(Collector(), pattern, options=SubscribeOptions(match=match))) == (
            not_authorized("subscribe", pattern))
    await bounded(bob.publish(alice_inbox, "hello alice", options=ACK))
    assert await bounded(to_alice.done) == [(("hello alice",), {})]
    await bounded(alice.publish(bob_inbox, "hello bob", options=ACK))
    assert await bounded(to_bob.done) == [(("hello bob",), {})]
    assert (to_alice.events, to_bob.events) == ([(("hello alice",), {})], [(("hello bob",), {})])
    await leave_all(alice, bob)


# -- 3. wildcard subscribers never see a forbidden topic ---------------------------------------------------------

CARVED = role_listeners("reader", "writer") + realm_toml({
    "reader": permission("app.news.", "prefix", ["subscribe"]) + permission("app.news.secret", "exact", []),
    "writer": permission("", "prefix", ["publish", "subscribe"]),
})


@pytest.mark.parametrize("pattern,forbidden", [
    ("app.news.", "app.news.secret"),
    (".news.secret", "app.news.secret"),
    ("app..secret", "app.news.secret"),
    pytest.param("app.news", "app.news"),
])
@pytest_twisted.ensureDeferred
async def test_a_wildcard_subscriber_never_receives_a_forbidden_topic(tmp_path, stoppable, pattern, forbidden):
    """reader may subscribe under app.news. except app.news.secret, and not to app.news itself. A wildcard
    subscription that could match the forbidden topic is refused or receives nothing of it: after the forbidden
    publish, the writer publishes a marker on app.news.marker and, once it arrived, nothing else had."""
    running = await stoppable(CARVED, tmp_path)
    reader, writer = await join(running, "reader"), await join(running, "writer")
    assert await refused(reader.subscribe(Collector(), forbidden)) == not_authorized("subscribe", forbidden)
    leaked, marker = Collector(), Collector()
    await bounded(reader.subscribe(marker, "app.news.marker"))
    try:
        await bounded(reader.subscribe(leaked, pattern, options=SubscribeOptions(match="wildcard")))
    except ApplicationError as e:
        assert (e.error, e.args) == not_authorized("subscribe", pattern)
    await bounded(writer.publish(forbidden, "secret", options=ACK))
    await bounded(writer.publish("app.news.marker", "marker", options=ACK))
    assert await bounded(marker.done) == [(("marker",), {})]
    assert leaked.events == []
    await leave_all(reader, writer)


# -- 4. the dynamic authorizer -----------------------------------------------------------------------------------

AUTHORIZE = "com.example.authorize"

DYNAMIC = "[limits]\nauthorization_timeout = 0.5\n" + role_listeners("backend", "user", "watcher") + realm_toml(
    {
        "backend": permission(AUTHORIZE, "exact", ["register"]),
        "user": permission("app.", "prefix", ["publish"]),
        "watcher": permission("app.", "prefix", ["subscribe"]),
    },
    f"""
    [[realms.authorizers]]
    plugin = "static"

    [[realms.authorizers]]
    plugin = "dynamic"
    roles = ["user"]
    procedure = "{AUTHORIZE}"
    backend_authrole = "backend"
    """,
)


class Backend:
    """The trusted backend's authorize procedure: answers by topic, counting its calls."""

    def __init__(self):
        self.calls: list[tuple] = []  # (session details, uri, action, options)

    def authorize(self, session, uri, action, options):
        self.calls.append((session, uri, action, options))
        if uri == "app.slow":
            return task.deferLater(_reactor(), 0.2, lambda: {"allow": True})
        if uri == "app.silent":
            return defer.Deferred()  # never answers
        return {
            "app.allowed": True,
            "app.denied": False,
            "app.cached": {"allow": True, "cache_ttl": 60},
            "app.cached_role": {"allow": True, "cache_ttl": 60, "per_role": True},
            "app.fast": {"allow": True, "cache_ttl": 60},
        }.get(uri, False)

    def count(self, uri: str) -> int:
        return sum(1 for _, called_uri, _, _ in self.calls if called_uri == uri)


async def dynamic_router(stoppable, directory):
    running = await stoppable(DYNAMIC, directory)
    backend_session, backend = await join(running, "backend"), Backend()
    await bounded(backend_session.register(backend.authorize, AUTHORIZE))
    return running, backend_session, backend


@pytest_twisted.ensureDeferred
async def test_dynamic_authorizer_allows_and_denies(tmp_path, stoppable):
    """The backend's true allows (the event is delivered), false denies (not_authorized, nothing delivered); it is
    called with the session's details, the URI, the action and the options."""
    running, backend_session, backend = await dynamic_router(stoppable, tmp_path)
    user, watcher = await join(running, "user"), await join(running, "watcher")
    events = Collector()
    await bounded(watcher.subscribe(events, "app.", options=SubscribeOptions(match="prefix")))
    assert await refused(user.publish("app.denied", "no", options=ACK)) == not_authorized("publish", "app.denied")
    await bounded(user.publish("app.allowed", "yes", options=ACK))
    assert await bounded(events.done) == [(("yes",), {})]
    session, uri, action, options = backend.calls[0]
    assert (uri, action, options) == ("app.denied", "publish", {"match": "exact"})
    assert {key: session[key] for key in ("realm", "session", "authid", "authrole", "authmethod")} == {
        "realm": "realm1", "session": user.welcome.session, "authid": user.welcome.authid, "authrole": "user",
        "authmethod": "anonymous"}
    assert [(c[1], c[2]) for c in backend.calls] == [("app.denied", "publish"), ("app.allowed", "publish")]
    await leave_all(user, watcher, backend_session)


@pytest_twisted.ensureDeferred
async def test_dynamic_authorizer_that_never_answers_denies_after_the_timeout(tmp_path, stoppable):
    """A backend that never answers: the publish is not_authorized once [limits] authorization_timeout (0.5 s) has
    passed, not before, and the session goes on working (the next allowed publish succeeds)."""
    running, backend_session, backend = await dynamic_router(stoppable, tmp_path)
    user = await join(running, "user")
    started = time.monotonic()
    assert await refused(user.publish("app.silent", "lost", options=ACK)) == not_authorized("publish", "app.silent")
    assert time.monotonic() - started >= 0.45
    await bounded(user.publish("app.allowed", "yes", options=ACK))
    assert (backend.count("app.silent"), backend.count("app.allowed")) == (1, 1)
    await leave_all(user, backend_session)


@pytest.mark.parametrize("topic,second_identity_calls", [("app.cached", 2), ("app.cached_role", 1)])
@pytest_twisted.ensureDeferred
async def test_dynamic_answers_are_cached_per_identity_or_per_role(tmp_path, stoppable, topic, second_identity_calls):
    """With {"allow": true, "cache_ttl": 60} two publishes by one session call the backend once; a second authid of
    the same role calls it again unless the answer said per_role = true."""
    running, backend_session, backend = await dynamic_router(stoppable, tmp_path)
    first, second = await join(running, "user"), await join(running, "user")
    assert first.welcome.authid != second.welcome.authid
    await bounded(first.publish(topic, 1, options=ACK))
    await bounded(first.publish(topic, 2, options=ACK))
    assert backend.count(topic) == 1
    await bounded(second.publish(topic, 3, options=ACK))
    assert backend.count(topic) == second_identity_calls
    await leave_all(first, second, backend_session)


@pytest_twisted.ensureDeferred
async def test_order_is_kept_while_a_decision_is_pending(tmp_path, stoppable):
    """A is published on a topic whose decision takes 0.2 s, then B on a topic whose allow is cached: the
    subscriber receives A before B, and B's decision came from the cache (one backend call for it)."""
    running, backend_session, backend = await dynamic_router(stoppable, tmp_path)
    user, watcher = await join(running, "user"), await join(running, "watcher")
    await bounded(user.publish("app.fast", "warm-up", options=ACK))
    events = Collector(expected=2)
    await bounded(watcher.subscribe(events, "app.slow"))
    await bounded(watcher.subscribe(events, "app.fast"))
    replies = [user.publish("app.slow", "A", options=ACK), user.publish("app.fast", "B", options=ACK)]
    await bounded(defer.gatherResults(replies))
    assert await bounded(events.done) == [(("A",), {}), (("B",), {})]
    assert (backend.count("app.slow"), backend.count("app.fast")) == (1, 1)
    await leave_all(user, watcher, backend_session)


QUEUED_HELLO_BUG = (
    "BUG: router/tx/session.py RouterSession._drain stops as soon as the state is no longer ESTABLISHED, so after a "
    "queued GOODBYE (state ENDED) the queued HELLO is never handled: the client gets no WELCOME (and is closed at "
    "hello_timeout); with MAX_QUEUED messages queued, reading would also stay paused")


@pytest.mark.parametrize("role,request_,reply", [
    pytest.param("watcher", [SUBSCRIBE, 7, {}, "app.x"], SUBSCRIBED, id="decided-at-once"),
    pytest.param("user", [PUBLISH, 7, {"acknowledge": True}, "app.slow", ["A"]], PUBLISHED, id="pending-decision"),
])
@pytest_twisted.ensureDeferred
async def test_messages_queued_behind_a_decision_survive_a_goodbye(tmp_path, stoppable, role, request_, reply):
    """A request, GOODBYE and a new HELLO sent back to back on one WebSocket get, in order, the request's reply,
    GOODBYE and WELCOME for the new session, whether the request's decision is immediate (static rules) or pending
    (the dynamic backend takes 0.2 s)."""
    running, backend_session, backend = await dynamic_router(stoppable, tmp_path)
    client = await open_websocket(running.port(role))
    try:
        await client.join()
        client.send(request_)
        client.send([GOODBYE, {}, "wamp.close.normal"])
        client.send(hello())
        messages = await client.wait_messages(4, 2.0)  # the slow decision takes 0.2 s
        assert [m[0] for m in messages] == [WELCOME, reply, GOODBYE, WELCOME]
        assert messages[1][1] == 7
    finally:
        client.disconnect()
    await leave_all(backend_session)


@pytest_twisted.ensureDeferred
async def test_dynamic_authorizer_without_a_registered_procedure_denies(tmp_path, stoppable):
    """Before any backend has registered the procedure, every request the dynamic authorizer decides is
    not_authorized (the router's call fails with no_such_procedure, which is a deny)."""
    running = await stoppable(DYNAMIC, tmp_path)
    user = await join(running, "user")
    assert await refused(user.publish("app.allowed", options=ACK)) == not_authorized("publish", "app.allowed")
    await leave_all(user)


# -- 5. the example plugin ---------------------------------------------------------------------------------------

TOPICS_FILE = """\
# topics a device may publish
dev.telemetry.temp
   dev.telemetry.humidity   # trailing comment, surrounding spaces

"""

QUOTA = role_listeners("device", "watcher") + realm_toml(
    {
        "device": permission("dev.", "prefix", ["publish", "subscribe"]),
        "watcher": permission("dev.", "prefix", ["subscribe", "publish"]),
    },
    """
    [[realms.authorizers]]
    plugin = "static"

    [[realms.authorizers]]
    plugin = "quota"
    roles = ["device"]
    role = "device"
    topics_file = "topics.txt"
    """,
)


def require_quota_plugin() -> None:
    if not any(e.name == "quota" for e in entry_points(group="wampgate.authorizers")):
        pytest.fail("the example plugin is not installed in the test environment: `make test` installs it into "
                    ".venv-test (by hand: pip install ./examples/quota_authorizer)")


@pytest_twisted.ensureDeferred
async def test_example_quota_plugin_limits_device_publishing(tmp_path, stoppable):
    """The `quota` entry point (examples/quota_authorizer) loads from the config, and role device may publish only
    the topics listed in topics.txt (even where the static rules allow more); its other actions and other roles are
    unaffected."""
    require_quota_plugin()
    (tmp_path / "topics.txt").write_text(TOPICS_FILE)
    running = await stoppable(QUOTA, tmp_path)
    device, watcher = await join(running, "device"), await join(running, "watcher")
    events = Collector(expected=3)
    await bounded(watcher.subscribe(events, "dev.", options=SubscribeOptions(match="prefix")))
    for topic in ("dev.telemetry.pressure", "dev.telemetry.temp.x", "dev.telemetry", "dev.other"):
        assert await refused(device.publish(topic, "no", options=ACK)) == not_authorized("publish", topic)
    await bounded(device.publish("dev.telemetry.temp", 21.5, options=ACK))
    await bounded(device.publish("dev.telemetry.humidity", 40, options=ACK))
    await bounded(device.subscribe(Collector(), "dev.commands"))  # other actions: the static rules decide
    # Other roles are not restricted (exclude_me=False: the watcher is its own subscriber here).
    await bounded(watcher.publish("dev.anything", "watcher", options=PublishOptions(acknowledge=True,
                                                                                   exclude_me=False)))
    assert await bounded(events.done) == [((21.5,), {}), ((40,), {}), (("watcher",), {})]
    await leave_all(device, watcher)


# -- 6. misbehaving plugins --------------------------------------------------------------------------------------


@pytest.mark.parametrize("plugin", ["Raising", "RaisingCoroutine", "WrongAnswer"])
@pytest_twisted.ensureDeferred
async def test_a_failing_plugin_denies_and_the_router_keeps_serving(tmp_path, stoppable, plugin):
    """An authorizer that raises (plainly or in a coroutine) or answers something other than a Decision: every
    request of the role it decides for is not_authorized, again on a second try, the session stays attached, and
    other sessions go on working."""
    text = role_listeners("anonymous", "flaky") + realm_toml(
        {
            "anonymous": permission("", "prefix", ["publish", "subscribe", "call", "register"]),
            "flaky": permission("", "prefix", ["publish", "subscribe", "call", "register"]),
        },
        f"""
        [[realms.authorizers]]
        plugin = "static"

        [[realms.authorizers]]
        plugin = "tests.support.failing_authorizer:{plugin}"
        roles = ["flaky"]
        """,
    )
    running = await stoppable(text, tmp_path)
    flaky = await join(running, "flaky")
    for _ in range(2):
        assert await refused(flaky.publish("com.example.x", options=ACK)) == not_authorized("publish", "com.example.x")
        assert await refused(flaky.subscribe(Collector(), "com.example.x")) == not_authorized(
            "subscribe", "com.example.x")
    assert flaky.is_attached() is True
    await bounded(assert_router_serves(running.port("anonymous")))
    await leave_all(flaky)


# -- 7. invalid authorizer config stops start-up -----------------------------------------------------------------

BASE_ROLES = {"device": permission("dev.", "prefix", ["publish"])}


def chain_config(*tables: str, realm_name: str = "realm1") -> str:
    authorizers = "".join(f"\n[[realms.authorizers]]\n{textwrap.dedent(t)}\n" for t in tables)
    return realm_toml(BASE_ROLES, authorizers, name=realm_name)


def missing_file_line(tmp_path) -> str:
    path = tmp_path / "nope.txt"
    try:
        path.read_text()
    except OSError as e:
        error = e
    return f'realms[0].authorizers[1].topics_file = "nope.txt": cannot read {path}: {error}'


BAD_CHAINS = [
    pytest.param(('plugin = "static"', 'plugin = "quota"\ntopics_file = "topics.txt"'),
                 lambda tmp: ["realms[0].authorizers[1].role: missing; expected the name of the role to restrict"],
                 id="quota-missing-role"),
    pytest.param(('plugin = "static"', 'plugin = "quota"\nrole = ""\ntopics_file = "topics.txt"'),
                 lambda tmp: ['realms[0].authorizers[1].role = "": expected the name of the role to restrict'],
                 id="quota-empty-role"),
    pytest.param(('plugin = "static"', 'plugin = "quota"\nrole = "device"\ntopics_file = "topics.txt"\nlimit = 3'),
                 lambda tmp: ["realms[0].authorizers[1].limit = <redacted integer>: unknown key; allowed: role, "
                              "topics_file"],
                 id="quota-unknown-key"),
    pytest.param(('plugin = "static"', 'plugin = "quota"\nrole = "device"\ntopics_file = "nope.txt"'),
                 lambda tmp: [missing_file_line(tmp)], id="quota-missing-file"),
    pytest.param(('plugin = "static"', 'plugin = "quota"\nrole = "device"\ntopics_file = "bad.txt"'),
                 lambda tmp: ['realms[0].authorizers[1].topics_file = "bad.txt": line 2: \'dev.bad topic\' is not a '
                              'valid topic URI'], id="quota-bad-topic"),
    pytest.param(('plugin = "static"\nrules = 1',),
                 lambda tmp: ["realms[0].authorizers[0].rules = <redacted integer>: unknown key; the static authorizer "
                              "reads the realm's [[realms.roles]]"], id="static-own-key"),
    pytest.param(('plugin = "static"', 'plugin = "tests.support.failing_authorizer:Raising"',
                  'plugin = "tests.support.failing_authorizer:Raising"\ncolour = "red"'),
                 lambda tmp: ['realms[0].authorizers[2].colour = <redacted string>: unknown key; the failing test '
                              'authorizers take none'], id="third-link"),
    pytest.param(('plugin = "dynamic"\nprocedure = "com.example.authorize"\ntimeout = 0',),
                 lambda tmp: ["realms[0].authorizers[0].timeout = 0: expected a number from 0.1 to 60.0"],
                 id="dynamic-timeout"),
    pytest.param(('plugin = "static"', 'plugin = "dynamic"'),
                 lambda tmp: ["realms[0].authorizers[1].procedure: missing; expected the URI of the backend's "
                              "authorize procedure"], id="dynamic-missing-procedure"),
]


@pytest.mark.parametrize("tables,expected", BAD_CHAINS)
@pytest_twisted.ensureDeferred
async def test_invalid_authorizer_config_stops_start_up(tmp_path, tables, expected):
    """An authorizer refusing its config table stops start-up (make_service raises ConfigError before any port
    opens) with exactly one line naming realms[i].authorizers[n].<key>, the value and the problem."""
    (tmp_path / "topics.txt").write_text("dev.a\n")
    (tmp_path / "bad.txt").write_text("dev.ok\ndev.bad topic\n")
    text = role_listeners("device") + chain_config(*tables)
    with pytest.raises(ConfigError) as caught:
        await start_router(text, tmp_path)
    assert caught.value.problems == expected(tmp_path)


@pytest_twisted.ensureDeferred
async def test_invalid_authorizer_config_in_a_second_realm_names_that_realm(tmp_path):
    """The realm's index in the line is its position in the file: realms[1] for the second realm."""
    text = role_listeners("device") + chain_config('plugin = "static"') + chain_config(
        'plugin = "static"', 'plugin = "quota"\nrole = "device"', realm_name="realm2")
    with pytest.raises(ConfigError) as caught:
        await start_router(text, tmp_path)
    assert caught.value.problems == ["realms[1].authorizers[1].topics_file: missing; expected a file of topic URIs, "
                                     "one a line"]
