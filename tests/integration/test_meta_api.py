"""The WAMP meta API end to end: a real router and Autobahn (Twisted) clients.

An "admin" listener lets anonymous clients in with the role `admin`, which the realm allows to call and subscribe
under `wamp.` (a prefix rule); the "user" listener gives the role `anonymous`, which may use `com.` only. What the
meta procedures answer and the meta events carry is compared with what the clients themselves did and were told
(their session ids, subscription and registration ids), exactly.
"""

from __future__ import annotations

import re

import pytest
import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import RegisterOptions, SubscribeOptions
from twisted.internet import defer
from twisted.python.failure import Failure

from tests.support.clients import Collector, Target, connect, leave_all
from tests.support.raw import bounded
from tests.support.router import listener, start_router

NOT_AUTHORIZED = "wamp.error.not_authorized"
NO_SUCH_SESSION = "wamp.error.no_such_session"
INVALID_ARGUMENT = "wamp.error.invalid_argument"
ISO_8601 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\Z")

CONFIG = (
    listener("admin", auth='anonymous = { role = "admin" }')
    + listener("user", auth='anonymous = { role = "anonymous" }')
    + """
[[realms]]
name = "realm1"

[[realms.roles]]
name = "admin"

[[realms.roles.permissions]]
uri = "wamp."
match = "prefix"
allow = ["call", "subscribe"]

[[realms.roles.permissions]]
uri = "com."
match = "prefix"
allow = ["publish", "subscribe", "call", "register"]

[[realms.roles]]
name = "anonymous"

[[realms.roles.permissions]]
uri = "com."
match = "prefix"
allow = ["publish", "subscribe", "call", "register"]
"""
)


@pytest_twisted.async_yield_fixture()
async def router(tmp_path):
    running = await start_router(CONFIG, tmp_path)
    yield running
    await running.stop()


async def join(router, listener_name: str, transport: str = "websocket", serializer: str = "json"):
    where = Target(port=router.port(listener_name), transport=transport, serializer=serializer)
    return await bounded(connect(where))


async def watch(session, *topics: str, counts: dict[str, int] | None = None) -> dict[str, Collector]:
    """Subscribe `session` to each meta topic; a Collector per topic, done after one event, or `counts[topic]`."""
    collectors = {}
    for topic in topics:
        collectors[topic] = Collector(expected=(counts or {}).get(topic, 1))
        await bounded(session.subscribe(collectors[topic], topic))
    return collectors


def settled(d: defer.Deferred, seconds: float = 5.0) -> defer.Deferred:
    """A Deferred with `d`'s outcome, or defer.TimeoutError after `seconds`. Unlike `bounded` it never cancels `d`:
    Autobahn's CALL canceller raises once the transport is gone, and the cancelled call would then never fire."""
    from twisted.internet import reactor

    outcome = defer.Deferred()

    def time_out() -> None:
        outcome.errback(defer.TimeoutError(f"no answer within {seconds} s"))

    timer = reactor.callLater(seconds, time_out)

    def settle(result):
        if timer.active():
            timer.cancel()
            (outcome.errback if isinstance(result, Failure) else outcome.callback)(result)
        return None

    d.addBoth(settle)
    return outcome


async def call(session, procedure: str, *args, **kwargs):
    return await settled(session.call(procedure, *args, **kwargs))


async def refusal(session, procedure: str, *args, **kwargs) -> str:
    """Call a procedure that must fail; the WAMP error URI."""
    with pytest.raises(ApplicationError) as raised:
        await call(session, procedure, *args, **kwargs)
    return raised.value.error


def args_of(events: list) -> list[tuple]:
    """The positional arguments of each event a Collector recorded (its `done` fires with that list)."""
    return [args for args, _ in events]


def identity(session) -> dict:
    """What the meta API says about a session joined through the "user" listener."""
    welcome = session.welcome
    return {"session": welcome.session, "authid": welcome.authid, "authrole": "anonymous",
            "authmethod": "anonymous", "authprovider": "static", "authextra": {}}




# -- announcement and authorization ------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_welcome_announces_the_meta_api(router):
    """An Autobahn client sees session_meta_api and subscription_meta_api on the broker role and
    registration_meta_api on the dealer role of WELCOME."""
    session = await join(router, "user")
    broker, dealer = session._router_roles["broker"], session._router_roles["dealer"]
    assert (broker.session_meta_api, broker.subscription_meta_api, dealer.registration_meta_api) == (True,) * 3
    await leave_all(session)


@pytest_twisted.ensureDeferred
async def test_a_role_without_permission_may_not_use_the_meta_api(router):
    """The meta API goes through the realm's authorizer like any URI: the role `anonymous`, with no rule for
    `wamp.`, is refused every meta procedure and meta topic with wamp.error.not_authorized; `admin` is served."""
    admin, user = await join(router, "admin"), await join(router, "user")
    for procedure, args in (("wamp.session.count", ()), ("wamp.session.get", (admin.welcome.session,)),
                            ("wamp.subscription.list", ()), ("wamp.registration.list", ()),
                            ("wamp.session.kill", (admin.welcome.session,))):
        assert await refusal(user, procedure, *args) == NOT_AUTHORIZED
    for topic in ("wamp.session.on_join", "wamp.subscription.on_create", "wamp.registration.on_register"):
        with pytest.raises(ApplicationError) as raised:
            await bounded(user.subscribe(lambda *a: None, topic))
        assert raised.value.error == NOT_AUTHORIZED
    with pytest.raises(ApplicationError) as raised:
        await bounded(user.subscribe(lambda *a: None, "wamp.", options=SubscribeOptions(match="prefix")))
    assert raised.value.error == NOT_AUTHORIZED
    assert await call(admin, "wamp.session.count") == 2
    await leave_all(admin, user)


# -- sessions ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport,serializer", [("websocket", "json"), ("rawsocket", "msgpack"),
                                                  ("rawsocket", "cbor")])
@pytest_twisted.ensureDeferred
async def test_join_and_leave_are_seen_by_a_watcher_with_exact_details(router, transport, serializer):
    """A session joining and leaving reaches an admin watching wamp.session.on_join / on_leave with exactly its
    details (session, authid, authrole, authmethod, authprovider, authextra) and (session, authid, authrole)."""
    admin = await join(router, "admin", transport, serializer)
    events = await watch(admin, "wamp.session.on_join", "wamp.session.on_leave")
    user = await join(router, "user")
    assert args_of(await bounded(events["wamp.session.on_join"].done)) == [(identity(user),)]
    expected_leave = (user.welcome.session, user.welcome.authid, "anonymous")
    await leave_all(user)
    assert args_of(await bounded(events["wamp.session.on_leave"].done)) == [expected_leave]
    await leave_all(admin)


@pytest_twisted.ensureDeferred
async def test_session_procedures_answer_what_joined(router):
    """count, list (with and without an authrole filter) and get answer the sessions that joined, by the ids their
    WELCOMEs carried; an unknown id is no_such_session; a wrongly typed id is invalid_argument."""
    admin = await join(router, "admin")
    first, second = await join(router, "user"), await join(router, "user")
    ids = [admin.welcome.session, first.welcome.session, second.welcome.session]
    assert await call(admin, "wamp.session.count") == 3
    assert await call(admin, "wamp.session.count", ["anonymous"]) == 2
    assert sorted(await call(admin, "wamp.session.list")) == sorted(ids)
    assert sorted(await call(admin, "wamp.session.list", ["anonymous"])) == sorted(ids[1:])
    assert await call(admin, "wamp.session.list", ["nobody"]) == []
    assert await call(admin, "wamp.session.get", first.welcome.session) == identity(first)
    unknown = next(i for i in range(1, 100) if i not in ids)
    assert await refusal(admin, "wamp.session.get", unknown) == NO_SUCH_SESSION
    assert await refusal(admin, "wamp.session.get", str(first.welcome.session)) == INVALID_ARGUMENT
    await leave_all(first, second, admin)


@pytest_twisted.ensureDeferred
async def test_kill_of_oneself_or_of_nobody_is_no_such_session(router):
    """wamp.session.kill of the caller's own id or of an id nobody has is wamp.error.no_such_session, and the caller
    stays joined."""
    admin = await join(router, "admin")
    assert await refusal(admin, "wamp.session.kill", admin.welcome.session) == NO_SUCH_SESSION
    assert await refusal(admin, "wamp.session.kill", 1 if admin.welcome.session != 1 else 2) == NO_SUCH_SESSION
    assert await call(admin, "wamp.session.count") == 1
    await leave_all(admin)


@pytest_twisted.ensureDeferred
async def test_kill_ends_the_session_with_goodbye(router):
    """wamp.session.kill sends the named session GOODBYE with the given reason and message; by the time the caller
    has its (empty) result the session has left the realm, and on_leave has told the watchers."""
    admin = await join(router, "admin")
    events = await watch(admin, "wamp.session.on_leave")
    user = await join(router, "user")
    user_id = user.welcome.session
    assert await call(admin, "wamp.session.kill", user_id, reason="com.example.kicked", message="bye") is None
    assert user_id not in await call(admin, "wamp.session.list")
    details = await bounded(user.on_left)
    assert (details.reason, details.message) == ("com.example.kicked", "bye")
    assert args_of(await bounded(events["wamp.session.on_leave"].done)) == [(user_id, user.welcome.authid,
                                                                             "anonymous")]
    await bounded(user.on_gone)
    await leave_all(admin)


# -- subscriptions -----------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_subscription_meta_api_reports_exactly_what_clients_subscribed(router):
    """Events on_create / on_subscribe / on_unsubscribe / on_delete carry the subscriber's session id and the
    subscription id its SUBSCRIBED carried; list, lookup, match, get, list_subscribers and count_subscribers answer
    those same ids (the admin's own meta subscriptions are not among them)."""
    admin = await join(router, "admin")
    topics = [f"wamp.subscription.on_{change}" for change in ("create", "subscribe", "unsubscribe", "delete")]
    events = await watch(admin, *topics, counts={topics[0]: 2, topics[1]: 2})
    user = await join(router, "user")
    user_id = user.welcome.session
    news = await bounded(user.subscribe(lambda *a: None, "com.example.news"))
    everything = await bounded(user.subscribe(lambda *a: None, "com.example.", options=SubscribeOptions(
        match="prefix")))
    created = args_of(await bounded(events["wamp.subscription.on_create"].done))
    assert all(ISO_8601.match(details.pop("created")) for _, details in created)
    assert created == [(user_id, {"id": news.id, "uri": "com.example.news", "match": "exact"}),
                       (user_id, {"id": everything.id, "uri": "com.example.", "match": "prefix"})]
    assert args_of(await bounded(events["wamp.subscription.on_subscribe"].done)) == [
        (user_id, news.id), (user_id, everything.id)]

    assert await call(admin, "wamp.subscription.list") == {"exact": [news.id], "prefix": [everything.id],
                                                           "wildcard": []}
    assert await call(admin, "wamp.subscription.lookup", "com.example.news") == news.id
    assert await call(admin, "wamp.subscription.lookup", "com.example.", {"match": "prefix"}) == everything.id
    assert await call(admin, "wamp.subscription.lookup", "com.example.other") is None
    assert await call(admin, "wamp.subscription.match", "com.example.news") == [news.id, everything.id]
    details = await call(admin, "wamp.subscription.get", everything.id)
    assert ISO_8601.match(details.pop("created"))
    assert details == {"id": everything.id, "uri": "com.example.", "match": "prefix"}
    assert await call(admin, "wamp.subscription.list_subscribers", news.id) == [user_id]
    assert await call(admin, "wamp.subscription.count_subscribers", news.id) == 1

    await bounded(news.unsubscribe())
    assert args_of(await bounded(events["wamp.subscription.on_unsubscribe"].done)) == [(user_id, news.id)]
    assert args_of(await bounded(events["wamp.subscription.on_delete"].done)) == [(user_id, news.id)]
    assert await refusal(admin, "wamp.subscription.get", news.id) == "wamp.error.no_such_subscription"
    await leave_all(user, admin)


# -- registrations -----------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_registration_meta_api_reports_exactly_what_callees_registered(router):
    """Events on_create / on_register carry the callee's session id and the id its REGISTERED carried; list,
    lookup, match, get, list_callees and count_callees answer those ids; callees leaving fire on_unregister for
    each and on_delete after the last."""
    admin = await join(router, "admin")
    topics = [f"wamp.registration.on_{change}" for change in ("create", "register", "unregister", "delete")]
    events = await watch(admin, *topics, counts={topics[1]: 2, topics[2]: 2})
    first, second = await join(router, "user"), await join(router, "user")
    shared = RegisterOptions(invoke="roundrobin")
    registration = await bounded(first.register(lambda: 1, "com.example.add", options=shared))
    assert (await bounded(second.register(lambda: 2, "com.example.add", options=shared))).id == registration.id
    [(session, created)] = args_of(await bounded(events["wamp.registration.on_create"].done))
    assert session == first.welcome.session and ISO_8601.match(created.pop("created"))
    assert created == {"id": registration.id, "uri": "com.example.add", "match": "exact", "invoke": "roundrobin"}

    assert await call(admin, "wamp.registration.list") == {"exact": [registration.id], "prefix": [], "wildcard": []}
    assert await call(admin, "wamp.registration.lookup", "com.example.add") == registration.id
    assert await call(admin, "wamp.registration.match", "com.example.add") == registration.id
    assert await call(admin, "wamp.registration.match", "com.example.sub") is None
    details = await call(admin, "wamp.registration.get", registration.id)
    assert ISO_8601.match(details.pop("created"))
    assert details == {"id": registration.id, "uri": "com.example.add", "match": "exact", "invoke": "roundrobin"}
    callees = [first.welcome.session, second.welcome.session]
    assert await call(admin, "wamp.registration.list_callees", registration.id) == callees
    assert await call(admin, "wamp.registration.count_callees", registration.id) == 2
    assert args_of(await bounded(events["wamp.registration.on_register"].done)) == [
        (callee, registration.id) for callee in callees]

    await leave_all(first, second)
    assert args_of(await bounded(events["wamp.registration.on_unregister"].done)) == [
        (callee, registration.id) for callee in callees]
    assert args_of(await bounded(events["wamp.registration.on_delete"].done)) == [(callees[1], registration.id)]
    assert await call(admin, "wamp.registration.list") == {"exact": [], "prefix": [], "wildcard": []}
    await leave_all(admin)

