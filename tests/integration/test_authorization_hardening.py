"""Authorization hardening against a real router on loopback (issue 12, items 5 and 9):

- a placeholder rule never reaches the reserved `wamp.` space: the authid "wamp" with the rule "{authid}." (prefix)
  does not get the meta API;
- a reload that withdraws `subscribe` / `register` ends the live subscriptions and registrations it granted, with
  UNSUBSCRIBED / UNREGISTERED (request 0, reason `wamp.authorization.revoked`) to a client that announced the
  revocation feature, silently for one that did not; absence of later events is proven with a marker event that the
  same publisher sends afterwards (WAMP keeps per-publisher order);
- the router's own calls to a dynamic backend (authenticator and authorizer) reach only the exact registration held
  by the configured backend role: a prefix or wildcard registration by another role never answers them (the login
  is refused or the request denied, its handler never runs), and the refusal is logged once.
"""

from __future__ import annotations

import textwrap
from functools import partial

import pytest_twisted
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions, RegisterOptions

from tests.support import auth_clients as auth
from tests.support import wait
from tests.support.clients import Collector, Target, connect, leave_all
from tests.support.raw import EVENT, SUBSCRIBE, SUBSCRIBED, bounded, open_websocket
from tests.support.router import listener
from tests.support.logcapture import captured_warnings

NOT_AUTHORIZED = "wamp.error.not_authorized"
NO_SUCH_PROCEDURE = "wamp.error.no_such_procedure"
AUTHENTICATION_FAILED = "wamp.error.authentication_failed"
REVOKED = "wamp.authorization.revoked"
ACK = PublishOptions(acknowledge=True)
UNSUBSCRIBED, REGISTER, REGISTERED, UNREGISTERED, INVOCATION, YIELD = 35, 64, 65, 67, 68, 70
ALL = '["publish", "subscribe", "call", "register"]'


def permission(uri: str, match: str, allow: str) -> str:
    return f'\n[[realms.roles.permissions]]\nuri = "{uri}"\nmatch = "{match}"\nallow = {allow}\n'


def role(name: str, *permissions: str) -> str:
    return f'\n[[realms.roles]]\nname = "{name}"\n' + "".join(permissions)


def anonymous_listener(name: str) -> str:
    """A WebSocket listener giving anonymous clients the role of its name."""
    return listener(name, ("websocket",), auth=f'anonymous = {{ role = "{name}" }}')


# Every config also has the listener "alive" whose role may use com.example. (for still_serves).
ALIVE = role("alive", permission("com.example.", "prefix", '["publish", "subscribe"]'))


still_serves = partial(wait.still_serves, listener="alive", transports=("websocket",))


# -- 1. placeholders never reach the reserved space ------------------------------------------------------------------

RESERVED = (
    listener("cra", ("websocket",), auth='wampcra = { principals = [{ authid = "wamp", role = "user", '
             'secret = "wamp-secret" }, { authid = "alice", role = "user", secret = "alice-secret" }] }')
    + anonymous_listener("alive")
    + '\n[[realms]]\nname = "realm1"\n' + role("user", permission("{authid}.", "prefix", ALL)) + ALIVE
)


async def refusal(deferred) -> tuple:
    try:
        await bounded(deferred)
    except ApplicationError as e:
        return e.error, e.args
    raise AssertionError("expected an ERROR")


@pytest_twisted.ensureDeferred
async def test_the_authid_wamp_with_an_authid_prefix_rule_gets_no_meta_api(tmp_path, stoppable):
    """The user whose authid is "wamp" under the rule "{authid}." (prefix, every action) calling wamp.session.list
    or wamp.session.kill_all, or subscribing to wamp.session.on_join, gets ERROR wamp.error.not_authorized; alice,
    under the same rule, keeps her own space, and a fresh client is served."""
    router = await stoppable(RESERVED, tmp_path)
    target = Target(port=router.port("cra"))
    wamp_user = await auth.join(target, authmethods=["wampcra"], authid="wamp", answer=auth.wampcra("wamp-secret"))
    alice = await auth.join(target, authmethods=["wampcra"], authid="alice", answer=auth.wampcra("alice-secret"))
    for procedure in ("wamp.session.list", "wamp.session.kill_all", "wamp.session.count"):
        assert await refusal(wamp_user.call(procedure)) == (
            NOT_AUTHORIZED, (f"session is not authorized to call on '{procedure}'",))
    assert await refusal(wamp_user.subscribe(Collector(), "wamp.session.on_join")) == (
        NOT_AUTHORIZED, ("session is not authorized to subscribe on 'wamp.session.on_join'",))
    assert alice.is_attached() and wamp_user.is_attached()  # kill_all never ran
    inbox = Collector()
    await bounded(alice.subscribe(inbox, "alice.inbox"))
    await bounded(alice.publish("alice.inbox", "mine", options=PublishOptions(acknowledge=True, exclude_me=False)))
    assert await bounded(inbox.done) == [(("mine",), {})]
    await leave_all(wamp_user, alice)
    await still_serves(router)


# -- 2. a reload revokes what it no longer allows ----------------------------------------------------------------------


def revocation_config(reader_topics: tuple[str, ...], callee_procedures: tuple[str, ...]) -> str:
    """reader may subscribe under each of `reader_topics` (prefixes), callee may register each of
    `callee_procedures`; writer may publish and call under app.; listeners named after the roles."""
    reader = role("reader", *(permission(uri, "prefix", '["subscribe"]') for uri in reader_topics))
    callee = role("callee", *(permission(uri, "exact", '["register"]') for uri in callee_procedures))
    writer = role("writer", permission("app.", "prefix", '["publish", "call"]'))
    listeners = "".join(anonymous_listener(name) for name in ("reader", "callee", "writer", "alive"))
    return listeners + '\n[[realms]]\nname = "realm1"\n' + reader + callee + writer + ALIVE


SUBSCRIBER_ROLES = {"subscriber": {"features": {"subscription_revocation": True}}, "publisher": {}}
CALLEE_ROLES = {"callee": {"features": {"registration_revocation": True}}, "caller": {}}


async def raw_request(client, message: list, reply_type: int) -> list:
    """Send a request and return its reply (the next message), which must be of `reply_type`."""
    seen = len(client.messages)
    client.send(message)
    reply = (await client.wait_messages(seen + 1))[seen]
    assert reply[0] == reply_type and reply[1] == message[1], reply
    return reply


def reload(router, directory, text: str) -> None:
    (directory / "router.toml").write_text(text)
    assert router.service.reload() is True


@pytest_twisted.ensureDeferred
async def test_a_reload_that_withdraws_subscribe_revokes_the_live_subscription(tmp_path, stoppable):
    """reader holds app.secret.x and app.public.marker; the reload keeps only app.public.: reader gets
    [35, 0, {"subscription": id, "reason": "wamp.authorization.revoked"}], and of the writer's two later publishes
    (app.secret.x, then the marker) only the marker arrives. The subscription is gone from the broker, the revocation
    is counted, and a fresh client is served."""
    text = revocation_config(("app.secret.", "app.public."), ())
    router = await stoppable(text, tmp_path)
    reader = await open_websocket(router.port("reader"))
    writer = await bounded(connect(Target(port=router.port("writer"))))
    try:
        await reader.join(roles=SUBSCRIBER_ROLES)
        secret = (await raw_request(reader, [SUBSCRIBE, 1, {}, "app.secret.x"], SUBSCRIBED))[2]
        marker = (await raw_request(reader, [SUBSCRIBE, 2, {}, "app.public.marker"], SUBSCRIBED))[2]
        reload(router, tmp_path, revocation_config(("app.public.",), ()))
        seen = len(reader.messages)
        revoked = (await reader.wait_messages(seen + 1))[seen]
        assert revoked == [UNSUBSCRIBED, 0, {"subscription": secret, "reason": REVOKED}]
        await bounded(writer.publish("app.secret.x", "leak", options=ACK))
        await bounded(writer.publish("app.public.marker", "marker", options=ACK))
        event = (await reader.wait_messages(seen + 2))[seen + 1]
        assert event[0] == EVENT and event[1] == marker and event[4] == ["marker"], event
        assert [m for m in reader.messages[seen:] if m[0] == EVENT and m[1] == secret] == []
        assert router.realm().broker.subscription(secret) is None
        counters = router.service.context.counters
        assert counters.value("authorization_revoked", realm="realm1", action="subscribe") == 1
    finally:
        reader.disconnect()
    await leave_all(writer)
    await still_serves(router)


@pytest_twisted.ensureDeferred
async def test_a_subscriber_that_did_not_announce_revocation_is_sent_nothing_and_receives_nothing(tmp_path, stoppable):
    """A subscriber whose HELLO did not announce subscription_revocation is not sent UNSUBSCRIBED (the spec forbids
    it): after the reload the first message it gets is the marker event, never the event on the revoked topic."""
    router = await stoppable(revocation_config(("app.secret.", "app.public."), ()), tmp_path)
    reader = await open_websocket(router.port("reader"))
    writer = await bounded(connect(Target(port=router.port("writer"))))
    try:
        await reader.join()  # roles without features
        await raw_request(reader, [SUBSCRIBE, 1, {}, "app.secret.x"], SUBSCRIBED)
        marker = (await raw_request(reader, [SUBSCRIBE, 2, {}, "app.public.marker"], SUBSCRIBED))[2]
        seen = len(reader.messages)
        reload(router, tmp_path, revocation_config(("app.public.",), ()))
        await bounded(writer.publish("app.secret.x", "leak", options=ACK))
        await bounded(writer.publish("app.public.marker", "marker", options=ACK))
        event = (await reader.wait_messages(seen + 1))[seen]
        assert event[0] == EVENT and event[1] == marker and event[4] == ["marker"], reader.messages[seen:]
        assert router.realm().broker.subscriptions_of(reader_session(router, "reader")) != []
    finally:
        reader.disconnect()
    await leave_all(writer)
    await still_serves(router)


def reader_session(router, authrole: str) -> int:
    (peer,) = [peer for peer in router.realm().sessions.values() if peer.authrole == authrole]
    return peer.session_id


@pytest_twisted.ensureDeferred
async def test_a_reload_that_withdraws_register_revokes_the_live_registration(tmp_path, stoppable):
    """callee registered app.rpc.add and app.rpc.keep; writer's call to app.rpc.add is pending at the callee when
    the reload withdraws app.rpc.add. The callee gets [67, 0, {"registration": id, "reason": ...}]; its YIELD for the
    pending call still reaches the writer as the result; a new call to app.rpc.add gets no_such_procedure, and one to
    app.rpc.keep (the marker) is the next INVOCATION the callee sees."""
    router = await stoppable(revocation_config((), ("app.rpc.add", "app.rpc.keep")), tmp_path)
    callee = await open_websocket(router.port("callee"))
    writer = await bounded(connect(Target(port=router.port("writer"))))
    try:
        await callee.join(roles=CALLEE_ROLES)
        add = (await raw_request(callee, [REGISTER, 1, {}, "app.rpc.add"], REGISTERED))[2]
        keep = (await raw_request(callee, [REGISTER, 2, {}, "app.rpc.keep"], REGISTERED))[2]
        seen = len(callee.messages)
        pending = writer.call("app.rpc.add", 1, 2)
        invocation = (await callee.wait_messages(seen + 1))[seen]
        assert invocation[0] == INVOCATION and invocation[2] == add
        reload(router, tmp_path, revocation_config((), ("app.rpc.keep",)))
        revoked = (await callee.wait_messages(seen + 2))[seen + 1]
        assert revoked == [UNREGISTERED, 0, {"registration": add, "reason": REVOKED}]
        callee.send([YIELD, invocation[1], {}, [3]])
        assert await bounded(pending) == 3
        assert await refusal(writer.call("app.rpc.add", 1, 2)) == (
            NO_SUCH_PROCEDURE, ("no callee registered for procedure",))
        kept = writer.call("app.rpc.keep", "marker")
        marker = (await callee.wait_messages(seen + 3))[seen + 2]
        assert marker[0] == INVOCATION and marker[2] == keep and marker[4] == ["marker"], callee.messages[seen:]
        callee.send([YIELD, marker[1], {}, ["kept"]])
        assert await bounded(kept) == "kept"
        assert router.realm().dealer.registration(add) is None
    finally:
        callee.disconnect()
    await leave_all(writer)
    await still_serves(router)


# -- 3. the router's own calls reach only the backend's exact registration --------------------------------------------

AUTHENTICATE = "com.example.authenticate"


def internal_call_config() -> str:
    """Listener "dynamic" authenticates through AUTHENTICATE, answered only by role backend; role intruder may
    register anything under com. (prefix and wildcard patterns, and AUTHENTICATE itself)."""
    dynamic = (f'dynamic = {{ procedure = "{AUTHENTICATE}", authmethod = "dynamic", timeout = 1.0, '
               'backend_authrole = "backend" }')
    listeners = listener("dynamic", ("websocket",), auth=dynamic) + "".join(
        anonymous_listener(name) for name in ("backend", "intruder", "alive"))
    realm = '\n[[realms]]\nname = "realm1"\n' + role("backend", permission(AUTHENTICATE, "exact", '["register"]'))
    realm += role("intruder", permission("com.", "prefix", '["register"]'))
    realm += role("admin", permission("", "prefix", ALL)) + role("user", permission("app.", "prefix", ALL)) + ALIVE
    return listeners + realm


class Handler:
    """A backend procedure that gives a fixed answer (a role, or an allow) and counts its calls."""

    def __init__(self, answer):
        self.answer = answer
        self.calls = 0

    def __call__(self, *args):
        self.calls += 1
        return self.answer


@pytest_twisted.ensureDeferred
async def test_only_the_backends_exact_registration_answers_the_routers_call(tmp_path, stoppable):
    """While the backend is down, an intruder's prefix and wildcard registrations that match the procedure (and
    would make everyone an admin) never get the router's call: two logins are refused with authentication_failed,
    the handlers never run, and one warning says why. Once the backend registers the procedure exactly, a login
    succeeds with the backend's answer, still without the intruder's handlers; a fresh client is served."""
    router = await stoppable(internal_call_config(), tmp_path)
    intruder = await bounded(connect(Target(port=router.port("intruder"))))
    prefix, wildcard = Handler("admin"), Handler("admin")
    await bounded(intruder.register(prefix, "com.example.", options=RegisterOptions(match="prefix")))
    await bounded(intruder.register(wildcard, "com..authenticate", options=RegisterOptions(match="wildcard")))
    target = Target(port=router.port("dynamic"))
    with captured_warnings() as warnings:
        for _ in range(2):
            refused = await auth.refused(target, authmethods=["dynamic"], authid="mallory")
            assert refused.reason == AUTHENTICATION_FAILED
    assert (prefix.calls, wildcard.calls) == (0, 0)
    refusals = [text for text in warnings if text.startswith(f"router-internal call to {AUTHENTICATE}")]
    assert len(refusals) == 1, warnings
    assert "only the prefix registration 'com.example.' matches it" in refusals[0]
    backend = await bounded(connect(Target(port=router.port("backend"))))
    real = Handler("user")
    await bounded(backend.register(real, AUTHENTICATE))
    session = await auth.join(target, authmethods=["dynamic"], authid="carol")
    welcome = session.welcome
    assert (welcome.authid, welcome.authrole, welcome.authmethod) == ("carol", "user", "dynamic")
    assert (real.calls, prefix.calls, wildcard.calls) == (1, 0, 0)
    await auth.leave(session)
    await leave_all(intruder, backend)
    await still_serves(router)


@pytest_twisted.ensureDeferred
async def test_an_exact_registration_by_another_role_does_not_answer_the_routers_call(tmp_path, stoppable):
    """The intruder's role may register the exact procedure too: its registration does not answer the router's call
    either (the login is refused, the handler never runs), and the warning names the intruding session's role."""
    router = await stoppable(internal_call_config(), tmp_path)
    intruder = await bounded(connect(Target(port=router.port("intruder"))))
    exact = Handler("admin")
    await bounded(intruder.register(exact, AUTHENTICATE))
    with captured_warnings() as warnings:
        refused = await auth.refused(Target(port=router.port("dynamic")), authmethods=["dynamic"], authid="mallory")
    assert refused.reason == AUTHENTICATION_FAILED and exact.calls == 0
    assert any("registered by a session that is not the backend (role 'backend')" in text and "'intruder'" in text
               for text in warnings), warnings
    await leave_all(intruder)
    await still_serves(router)


AUTHORIZE = "com.example.authorize"


def dynamic_authorizer_config() -> str:
    """Role user's publishes are decided by AUTHORIZE, answered only by role backend; role intruder may register
    anything under com."""
    listeners = "".join(anonymous_listener(name) for name in ("user", "backend", "intruder", "alive"))
    realm = '\n[[realms]]\nname = "realm1"\n' + role("backend", permission(AUTHORIZE, "exact", '["register"]'))
    realm += role("intruder", permission("com.", "prefix", '["register"]'))
    realm += role("user", permission("app.", "prefix", '["publish"]')) + ALIVE
    realm += textwrap.dedent(f"""
        [[realms.authorizers]]
        plugin = "static"

        [[realms.authorizers]]
        plugin = "dynamic"
        roles = ["user"]
        procedure = "{AUTHORIZE}"
        backend_authrole = "backend"
        """)
    return listeners + realm


@pytest_twisted.ensureDeferred
async def test_a_wildcard_registration_never_answers_the_dynamic_authorizer(tmp_path, stoppable):
    """The dynamic authorizer's call is not answered by the intruder's wildcard registration that would allow
    everything: the publish is not_authorized and the handler never runs; once the backend registers the procedure
    exactly, its answer decides."""
    router = await stoppable(dynamic_authorizer_config(), tmp_path)
    intruder = await bounded(connect(Target(port=router.port("intruder"))))
    allow_all = Handler(True)
    await bounded(intruder.register(allow_all, "com..authorize", options=RegisterOptions(match="wildcard")))
    user = await bounded(connect(Target(port=router.port("user"))))
    assert await refusal(user.publish("app.x", options=ACK)) == (
        NOT_AUTHORIZED, ("session is not authorized to publish on 'app.x'",))
    assert allow_all.calls == 0
    backend = await bounded(connect(Target(port=router.port("backend"))))
    decided = Handler(True)
    await bounded(backend.register(decided, AUTHORIZE))
    await bounded(user.publish("app.y", options=ACK))
    assert (decided.calls, allow_all.calls) == (1, 0)
    await leave_all(intruder, user, backend)
    await still_serves(router)
