"""Cookie authentication over real sockets with Autobahn (Twisted) clients: the WebSocket upgrade response sets the
cookie (HttpOnly, SameSite=Strict, the WebSocket path, Max-Age; Secure on TLS), a ticket login binds it, a later
connection bringing it joins with authmethod `cookie` and no credentials (also without a realm in HELLO), GOODBYE
wamp.close.logout ends it, and unknown cookies, other realms and an overfull store admit nobody. (Expiry is pinned
in tests/plugins/test_cookie.py with a fake clock: the shortest max_age is a minute.) The browser side is in
tests/integration/test_cookie_browser.py."""

from __future__ import annotations

import pytest
import pytest_twisted

from wampgate.passwords import hash_secret
from tests.support import auth_clients as auth
from tests.support.clients import Target
from tests.support.router import listener

NO_AUTH_METHOD = "wamp.error.no_auth_method"
AUTHENTICATION_FAILED = "wamp.error.authentication_failed"
SECRETS = {"alice": "alice-ticket", "bob": "bob-ticket", "carol": "carol-ticket"}


def realm(name: str) -> str:
    return f"""
[[realms]]
name = "{name}"
[[realms.roles]]
name = "user"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["publish", "subscribe", "call", "register"]
"""


@pytest.fixture(scope="module")
def tickets() -> str:
    return "".join(f"""
[[listeners.auth.ticket.principals]]
authid = "{authid}"
role = "user"
secret_hash = "{hash_secret(secret)}"
""" for authid, secret in SECRETS.items())


@pytest_twisted.async_yield_fixture()
async def router(tmp_path, certs, tickets, stoppable):
    cookie = "[listeners.auth.cookie]\nmax_age = 600\nmax_entries = 2\n"
    text = (listener("web", ("websocket",), auth=cookie + tickets)
            + listener("tls", ("websocket",), tls=certs, auth="[listeners.auth.cookie]\n" + tickets)
            + listener("plain", ("websocket",), auth=tickets)
            + realm("realm1") + realm("realm2"))
    yield await stoppable(text, tmp_path)


def at(router, name: str, certs=None) -> Target:
    return Target(port=router.port(name), tls_ca=certs.ca if certs is not None else None)


def set_cookie(session) -> str | None:
    """The Set-Cookie header of the upgrade response the client got."""
    return session._transport.http_headers.get("set-cookie")


def value_of(header: str) -> str:
    return header.split(";", 1)[0].split("=", 1)[1]


async def ticket_login(router, authid: str = "alice", cookie: str | None = None, realm: str = "realm1"):
    """Join `web` with a ticket (bringing `cookie` if given); the session and the cookie set on its upgrade."""
    headers = {"Cookie": f"wampgate_auth={cookie}"} if cookie else None
    session = await auth.join(at(router, "web"), realm, authmethods=["ticket"], authid=authid,
                              answer=auth.ticket(SECRETS[authid]), headers=headers)
    return session, set_cookie(session)


async def cookie_attempt(router, cookie: str, realm: str | None = "realm1", methods=("cookie",), authid=None):
    return await auth.attempt(at(router, "web"), realm, authmethods=list(methods), authid=authid,
                              headers={"Cookie": f"other=1; wampgate_auth={cookie}"})


@pytest_twisted.ensureDeferred
async def test_upgrade_sets_a_safe_cookie(router, certs):
    """Plain: HttpOnly, SameSite=Strict, Path=/ws, Max-Age from the config, no Secure; TLS: Secure as well. A
    listener without cookie authentication sets none."""
    session, header = await ticket_login(router)
    token = value_of(header)
    assert header == f"wampgate_auth={token}; Max-Age=600; Path=/ws; HttpOnly; SameSite=Strict"
    await auth.leave(session)
    secure = await auth.join(at(router, "tls", certs), authmethods=["ticket"], authid="bob",
                             answer=auth.ticket(SECRETS["bob"]))
    assert set_cookie(secure).endswith("; Max-Age=86400; Path=/ws; HttpOnly; SameSite=Strict; Secure")
    await auth.leave(secure)
    plain = await auth.join(at(router, "plain"), authmethods=["ticket"], authid="bob",
                            answer=auth.ticket(SECRETS["bob"]))
    assert set_cookie(plain) is None
    await auth.leave(plain)


@pytest_twisted.ensureDeferred
async def test_cookie_readmits_without_credentials(router):
    """After a ticket login, a connection bringing the cookie and offering ["cookie", "ticket"] joins as alice with
    authmethod cookie, without a challenge and without a realm in HELLO; its upgrade sets no new cookie."""
    first, header = await ticket_login(router)
    await auth.leave(first)
    session, refusal = await cookie_attempt(router, value_of(header), realm=None, methods=("cookie", "ticket"))
    assert refusal is None
    welcome = session.welcome
    assert (welcome.realm, welcome.authid, welcome.authrole, welcome.authmethod, welcome.authprovider) == (
        "realm1", "alice", "user", "cookie", "cookie")
    assert session.challenges == [] and set_cookie(session) is None
    await auth.leave(session)


@pytest_twisted.ensureDeferred
async def test_logout_revokes_the_cookie(router):
    """GOODBYE wamp.close.logout: the cookie admits nobody afterwards (offering only cookie: no_auth_method; with
    ticket too: the ticket challenge comes instead). A plain GOODBYE keeps it."""
    session, header = await ticket_login(router)
    token = value_of(header)
    session.leave()  # wamp.close.normal
    await session.on_gone
    again, refusal = await cookie_attempt(router, token)
    assert refusal is None
    again.leave("wamp.close.logout")
    await again.on_gone
    _, refusal = await cookie_attempt(router, token)
    assert refusal.reason == NO_AUTH_METHOD
    session, refusal = await cookie_attempt(router, token, methods=("cookie", "ticket"), authid="alice")
    assert refusal is not None and [c.method for c in session.challenges] == ["ticket"]


@pytest.mark.parametrize("cookie", ["A" * 43, "not-a-cookie", "x" * 5000])
@pytest_twisted.ensureDeferred
async def test_unknown_cookie_admits_nobody_and_is_replaced(router, cookie):
    """A cookie the router never bound (well-formed or not) is not a way in: no_auth_method, and the upgrade
    response replaces it with a fresh one."""
    session, refusal = await cookie_attempt(router, cookie)
    assert refusal.reason == NO_AUTH_METHOD
    assert value_of(set_cookie(session)) != cookie


@pytest_twisted.ensureDeferred
async def test_cookie_for_another_realm_is_refused(router):
    """A cookie bound in realm1 does not admit to realm2: the generic authentication failure."""
    session, header = await ticket_login(router)
    await auth.leave(session)
    _, refusal = await cookie_attempt(router, value_of(header), realm="realm2")
    assert refusal.reason == AUTHENTICATION_FAILED


@pytest_twisted.ensureDeferred
async def test_store_bound_evicts_the_oldest_login(router):
    """max_entries = 2: after three logins the first cookie admits nobody, the other two still do."""
    tokens = []
    for authid in ("alice", "bob", "carol"):
        session, header = await ticket_login(router, authid)
        tokens.append(value_of(header))
        await auth.leave(session)
    outcomes = []
    for token in tokens:
        session, refusal = await cookie_attempt(router, token)
        outcomes.append(refusal.reason if refusal else session.welcome.authid)
        if refusal is None:
            await auth.leave(session)
    assert outcomes == [NO_AUTH_METHOD, "bob", "carol"]


@pytest_twisted.ensureDeferred
async def test_a_login_over_a_brought_cookie_does_not_rebind_it(router):
    """bob logs in by ticket over a connection that brought alice's valid cookie: the cookie is unbound, not
    handed to bob (a planted cookie never takes over the next login)."""
    session, header = await ticket_login(router)
    await auth.leave(session)
    token = value_of(header)
    bob, _ = await ticket_login(router, "bob", cookie=token)
    await auth.leave(bob)
    _, refusal = await cookie_attempt(router, token)
    assert refusal.reason == NO_AUTH_METHOD


class _LaterClock:
    """The reactor's time plus `offset` seconds: what the cookie authenticator sees once a test moves it on."""

    def __init__(self, offset: float = 0.0):
        from twisted.internet import reactor

        self._reactor = reactor
        self.offset = offset

    def seconds(self) -> float:
        return self._reactor.seconds() + self.offset


@pytest_twisted.ensureDeferred
async def test_expired_cookie_admits_nobody_and_is_replaced(router):
    """max_age = 600: 599 s after the login the cookie still admits; at 600 s it does not (no_auth_method), and the
    upgrade response of that connection sets a fresh cookie."""
    session, header = await ticket_login(router)
    await auth.leave(session)
    clock = _LaterClock()
    router.service.listener_runtimes["web"].methods["cookie"].authenticator._reactor = clock
    clock.offset = 599.0
    again, refusal = await cookie_attempt(router, value_of(header))
    assert refusal is None and again.welcome.authmethod == "cookie"
    await auth.leave(again)
    clock.offset = 600.0
    late, refusal = await cookie_attempt(router, value_of(header))
    assert refusal.reason == NO_AUTH_METHOD
    assert value_of(set_cookie(late)) != value_of(header)
