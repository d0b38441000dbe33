"""The `dynamic` authenticator and authorizer, called directly with a fake `call`: the backend identity they require
(`backend_authrole`, optionally `backend_authid`), how a bad value stops start-up naming the key, and that every call
they make names that identity (the router's caller refuses a call that does not)."""

from __future__ import annotations

from pathlib import Path

import pytest
from twisted.internet import defer

from wampgate.plugins.authn.dynamic import DynamicAuthenticator
from wampgate.plugins.authz.dynamic import DynamicAuthorizer
from wampgate.config import RealmConfig, RoleConfig
from wampgate.uri import UriPolicy
from wampgate.interfaces import PluginContext
from wampgate.model import AuthorizationRequest, Decision, Identity, TransportInfo
from tests.plugins import auth_request, config_error, transport

REALM = RealmConfig(name="realm1", uri_policy=UriPolicy(),
                    roles={"backend": RoleConfig("backend", ()), "user": RoleConfig("user", ())})


class FakeCall:
    """Records each call's arguments and keywords, and answers with `answer`."""

    def __init__(self, answer=("user",)):
        self.answer = answer
        self.calls: list[tuple[tuple, dict]] = []

    def __call__(self, *args, **keywords):
        self.calls.append((args, keywords))
        return defer.succeed((list(self.answer), {}))


def context(call=None, realm=REALM) -> PluginContext:
    return PluginContext(base_dir=Path("."), call=call or FakeCall(), realm=realm)


AUTHZ = {"procedure": "com.example.authorize", "backend_authrole": "backend"}
AUTHN = {"procedure": "com.example.authenticate", "authmethod": "dynamic", "backend_authrole": "backend"}


def authorizer(config, call=None, realm=REALM) -> DynamicAuthorizer:
    return DynamicAuthorizer(config, reactor=None, context=context(call, realm))


def authenticator(config, call=None) -> DynamicAuthenticator:
    return DynamicAuthenticator(config, reactor=None, context=context(call, None))


def request() -> AuthorizationRequest:
    identity = Identity(authid="alice", authrole="user", authmethod="ticket", authprovider="static")
    return AuthorizationRequest(session_id=1, realm="realm1", identity=identity,
                                transport=TransportInfo(listener="main", kind="websocket", peer="tcp4:127.0.0.1:1",
                                                        is_secure=False, serializer="json"),
                                action="publish", uri="app.x")


def answer(d: defer.Deferred):
    seen = []
    d.addBoth(seen.append)
    (result,) = seen
    return result


@pytest.mark.parametrize("build,config", [(authorizer, AUTHZ), (authenticator, AUTHN)])
def test_backend_authrole_is_required(build, config):
    """Without backend_authrole start-up stops with a line naming the key (no value: it is missing)."""
    error = config_error(build, {k: v for k, v in config.items() if k != "backend_authrole"})
    assert error.key == "backend_authrole" and error.problem.startswith("missing; expected the role of the backend")


@pytest.mark.parametrize("build,config", [(authorizer, AUTHZ), (authenticator, AUTHN)])
@pytest.mark.parametrize("key,value", [("backend_authrole", ""), ("backend_authrole", 7), ("backend_authrole", None),
                                       ("backend_authid", ""), ("backend_authid", ["a"])])
def test_bad_backend_identities_are_refused_naming_key_and_value(build, config, key, value):
    """An empty or non-string role or authid stops start-up naming the key and the value found."""
    error = config_error(build, {**config, key: value})
    assert (error.key, error.value) == (key, value)


def test_the_authorizers_backend_role_must_exist_in_its_realm():
    """When the procedure is registered in the authorizer's own realm (no `realm`, or that realm's name), the role
    must be one of that realm's roles: the error lists them. For another realm the router cannot tell here."""
    for config in (AUTHZ, {**AUTHZ, "realm": "realm1"}):
        error = config_error(authorizer, {**config, "backend_authrole": "bakend"})
        assert (error.key, error.value) == ("backend_authrole", "bakend")
        assert error.problem.endswith("one of backend, user")
    authorizer({**AUTHZ, "backend_authrole": "auditor", "realm": "backend-realm"})


def test_the_authorizer_names_the_backend_in_every_call():
    """The authorizer's call carries backend_authrole and backend_authid (None when not configured, else its
    value); the backend's answer decides."""
    for extra, authid in (({}, None), ({"backend_authid": "authz-service"}, "authz-service")):
        call = FakeCall(answer=(True,))
        decision = answer(authorizer({**AUTHZ, **extra}, call).authorize(request()))
        assert decision == Decision(allow=True)
        ((args, keywords),) = call.calls
        assert args[:2] == ("realm1", "com.example.authorize")
        assert keywords == {"backend_authrole": "backend", "backend_authid": authid}


def test_the_authenticator_names_the_backend_in_every_call():
    """The authenticator's call carries backend_authrole and backend_authid, and the answer is the identity."""
    call = FakeCall(answer=("user",))
    identity = answer(authenticator({**AUTHN, "backend_authid": "login-service"}, call).begin(
        auth_request("carol", method="dynamic", via=transport())))
    assert (identity.authid, identity.authrole, identity.authmethod) == ("carol", "user", "dynamic")
    ((args, keywords),) = call.calls
    assert args[1] == "com.example.authenticate"
    assert keywords == {"backend_authrole": "backend", "backend_authid": "login-service"}
