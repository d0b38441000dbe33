"""The `cookie` authenticator and its store, without sockets: cookies are issued with the safe attributes, bound
only to a login over the connection that got them, admit until they expire, never beyond the store's bound, and are
kept server-side only as SHA-256 digests."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest
from twisted.internet import task
from zope.interface.verify import verifyObject

from wampgate.interfaces import IAuthenticator, ISessionCookies, PluginContext
from wampgate.model import Denied, Identity
from wampgate.plugins.authn.cookie import STORES, CookieAuthenticator
from wampgate.shared import SharedState
from tests.plugins import auth_request, config_error, transport

ALICE = Identity("alice", "user", "ticket", "static")


def build(clock=None, shared=None, **config):
    context = PluginContext(base_dir=None, shared=shared or SharedState())
    return CookieAuthenticator(config, reactor=clock or task.Clock(), context=context)


def hello(authenticator, token, realm="realm1"):
    via = transport(cookies={authenticator.name: token} if token is not None else {})
    return replace(auth_request(None, method="cookie", via=via), realm=realm)


def login(authenticator, identity=ALICE, realm="realm1") -> str:
    """A connection upgrade (a new cookie) and a login over it; the cookie value."""
    token, header = authenticator.upgrade_cookie("main", {}, False, "/ws")
    assert header is not None
    authenticator.remember("main", token, True, identity, realm)
    return token


def test_provides_both_interfaces():
    authenticator = build()
    assert verifyObject(IAuthenticator, authenticator) and verifyObject(ISessionCookies, authenticator)


@pytest.mark.parametrize("config, key", [
    ({"max_age": 10}, "max_age"),
    ({"max_age": 400 * 86400}, "max_age"),
    ({"same_site": "None"}, "same_site"),
    ({"same_site": "strict"}, "same_site"),
    ({"max_entries": 0}, "max_entries"),
    ({"name": "a b"}, "name"),
    ({"name": "x;y"}, "name"),
    ({"secure": True}, "secure"),
])
def test_bad_config_names_the_key(config, key):
    assert config_error(CookieAuthenticator, config, reactor=task.Clock()).key == key


def test_set_cookie_attributes():
    """HttpOnly, SameSite=Strict by default (Lax when configured), the WebSocket path, Max-Age, and Secure only on
    TLS; the value is 32 random bytes, different every time."""
    authenticator = build(max_age=3600)
    token, header = authenticator.upgrade_cookie("main", {}, False, "/ws")
    assert header == f"wampgate_auth={token}; Max-Age=3600; Path=/ws; HttpOnly; SameSite=Strict"
    other, secure = build(same_site="Lax", name="app").upgrade_cookie("main", {}, True, "/wamp")
    assert secure == f"app={other}; Max-Age=86400; Path=/wamp; HttpOnly; SameSite=Lax; Secure"
    assert len(token) == 43 and token != other


def test_login_then_cookie_admits_in_its_realm():
    """After a ticket login over the connection that got the cookie, a HELLO with it joins as alice (authmethod
    cookie), in realm1 also when HELLO names none; another realm is refused."""
    authenticator = build()
    token = login(authenticator)
    request = hello(authenticator, token)
    assert authenticator.offers(request)
    assert authenticator.begin(request) == Identity("alice", "user", "cookie", "cookie", {"logged_in_by": "ticket"},
                                                    realm="realm1")
    assert authenticator.begin(hello(authenticator, token, realm=None)).realm == "realm1"
    assert isinstance(authenticator.begin(hello(authenticator, token, realm="realm2")), Denied)


def test_a_valid_cookie_is_kept_an_unknown_one_replaced():
    """A connection with a valid cookie gets no new one; with an unknown, malformed or no cookie it gets a fresh
    one (a client never chooses its cookie's value)."""
    authenticator = build()
    token = login(authenticator)
    assert authenticator.upgrade_cookie("main", {"wampgate_auth": token}, False, "/ws") == (token, None)
    for presented in ("A" * 43, "short", ""):
        fresh, header = authenticator.upgrade_cookie("main", {"wampgate_auth": presented}, False, "/ws")
        assert header is not None and fresh != presented
        assert not authenticator.offers(hello(authenticator, presented))


@pytest.mark.parametrize("method", ["anonymous", "cookie"])
def test_anonymous_and_cookie_logins_bind_nothing(method):
    authenticator = build()
    token, _ = authenticator.upgrade_cookie("main", {}, False, "/ws")
    authenticator.remember("main", token, True, Identity("x", "user", method, "static"), "realm1")
    assert not authenticator.offers(hello(authenticator, token))


def test_a_login_over_a_brought_cookie_unbinds_it():
    """A connection that came with a bound cookie (not issued to it) logs in by ticket as bob: the cookie is not
    rebound to bob (a planted cookie never takes on the next user), and no longer admits alice either."""
    authenticator = build()
    token = login(authenticator)
    authenticator.remember("main", token, False, Identity("bob", "user", "ticket", "static"), "realm1")
    assert not authenticator.offers(hello(authenticator, token))


def test_cookie_expires_after_max_age():
    clock = task.Clock()
    authenticator = build(clock, max_age=60)
    token = login(authenticator)
    clock.advance(59.9)
    assert authenticator.offers(hello(authenticator, token))
    clock.advance(0.1)
    assert not authenticator.offers(hello(authenticator, token))
    assert isinstance(authenticator.begin(hello(authenticator, token)), Denied)


def test_logout_revokes():
    authenticator = build()
    token = login(authenticator)
    authenticator.forget("main", token)
    assert not authenticator.offers(hello(authenticator, token))


def test_store_is_bounded_oldest_evicted_and_holds_only_digests():
    """max_entries 2: a third login evicts the first; the store's keys are SHA-256 digests, never cookie values."""
    shared = SharedState()
    authenticator = build(shared=shared, max_entries=2)
    first, second, third = login(authenticator), login(authenticator), login(authenticator)
    assert [authenticator.offers(hello(authenticator, t)) for t in (first, second, third)] == [False, True, True]
    store = shared.get(STORES, dict)["main"]
    assert len(store) == 2
    assert set(store._logins) == {hashlib.sha256(t.encode()).hexdigest() for t in (second, third)}


def test_logins_survive_a_rebuilt_authenticator():
    """A reload builds a new authenticator with the router's same SharedState: logins are kept."""
    shared = SharedState()
    token = login(build(shared=shared))
    assert build(shared=shared).offers(hello(build(shared=shared), token))


def test_listeners_have_separate_stores():
    authenticator = build()
    token = login(authenticator)
    request = auth_request(None, method="cookie", via=transport(listener="other", cookies={"wampgate_auth": token}))
    assert not authenticator.offers(request)
