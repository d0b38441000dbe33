"""The public plugin API, `wampgate.plugin`: what it exports, the base classes' harmless defaults (a flow-control
plugin that limits one thing is one class with one method; a method without a challenge writes no `finish`), the
start-up check that still holds with base classes, and the documentation that quotes plugins word for word."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from zope.interface.verify import verifyObject

import wampgate.plugin as api
from wampgate.plugins.authn.anonymous import AnonymousAuthenticator
from wampgate.plugins.authn.tls import TlsAuthenticator
from wampgate import loader
from wampgate.core import errors
from wampgate.plugin import (
    ADMIT,
    REJECT_KIND,
    AuthRequest,
    Denied,
    FlowControl,
    FlowSession,
    IAuthenticator,
    IFlowControl,
    Identity,
    OneStepAuthenticator,
    PluginConfigError,
    TransportInfo,
    Verdict,
)
from tests.support.telemetry_cap import TelemetryCap

ROOT = Path(__file__).resolve().parents[2]
TELEMETRY_CAP = "tests.support.telemetry_cap:TelemetryCap"
SESSION = FlowSession(session_id=1, realm="realm1", authid="alice", authrole="user", peer="tcp4:127.0.0.1",
                      listener="main")
REQUEST = AuthRequest(session_id=1, realm="realm1", authid=None, authmethods=("anonymous",), authextra={},
                      transport=TransportInfo(listener="main", kind="websocket", peer="tcp4:127.0.0.1:5000",
                                              is_secure=False, serializer="json"))


def test_every_public_name_exists_once():
    """`__all__` lists each public name once, and each resolves: `from wampgate.plugin import *` is the whole API."""
    assert len(api.__all__) == len(set(api.__all__))
    assert [name for name in api.__all__ if not hasattr(api, name)] == []


def test_router_call_errors_are_the_cores():
    """ROUTER_CALL_ERRORS spells the same URIs as wampgate.core.errors (which plugins may not import): the refusals of
    a `context.call` that are the router's doing, not the backend's answer."""
    assert api.ROUTER_CALL_ERRORS == {errors.NO_SUCH_REALM, errors.NO_SUCH_PROCEDURE, errors.TIMEOUT,
                                      errors.CANCELED}


@pytest.mark.parametrize("error,router_made", [
    (errors.NO_SUCH_REALM, True),
    (errors.NO_SUCH_PROCEDURE, True),
    (errors.TIMEOUT, True),
    (errors.CANCELED, True),
    (errors.TOO_MANY_CALLS, True),
    (errors.RATE_LIMITED, True),
    (errors.NOT_AUTHORIZED, False),
    ("com.example.error.no_such_user", False),
])
def test_call_failed_in_router(error, router_made):
    """The router's refusals (its no-such / timeout / canceled URIs and every `wampgate.` URI) are told apart from
    what a backend answers, which may be any URI, `wamp.error.not_authorized` included."""
    assert api.call_failed_in_router(error) is router_made


# -- FlowControl ----------------------------------------------------------------------------------------------------


def test_flow_control_base_admits_everything():
    """Every hook of FlowControl is harmless: connections, sessions and messages are admitted, closings ignored; and
    it passes the start-up check for IFlowControl as it is."""
    flow = FlowControl()
    assert verifyObject(IFlowControl, flow)
    assert flow.admit_connection("tcp4:127.0.0.1", "main", 0.0) is ADMIT
    assert flow.admit_session(SESSION, 0.0) is ADMIT
    assert flow.admit(SESSION, "publish", "com.example.topic", 10**9, 0.0) is ADMIT
    assert flow.connection_closed("tcp4:127.0.0.1", "main") is None
    assert flow.session_closed(SESSION) is None


def test_one_method_flow_plugin_builds_and_decides():
    """The docs' one-class, one-method TelemetryCap, built by the loader as start-up builds it (verifyObject
    included): a publish over 4 KiB under `telemetry.` is rejected with its reason, anything else admitted by the
    base class's defaults."""
    cap = loader.build(loader.FLOW, TELEMETRY_CAP, IFlowControl, {}, reactor=None,
                       context=api.PluginContext(base_dir=ROOT))
    assert isinstance(cap, TelemetryCap)
    assert cap.admit(SESSION, "publish", "telemetry.temp", 4097, 0.0) == Verdict(REJECT_KIND, "telemetry_too_big")
    assert cap.admit(SESSION, "publish", "telemetry.temp", 4096, 0.0) is ADMIT
    assert cap.admit(SESSION, "publish", "com.example.topic", 4097, 0.0) is ADMIT
    assert cap.admit(SESSION, "call", "telemetry.read", 4097, 0.0) is ADMIT
    assert cap.admit_session(SESSION, 0.0) is ADMIT


def test_flow_plugin_without_settings_refuses_a_key():
    """FlowControl's constructor takes a table without keys: a key stops start-up naming it, with the value redacted
    as for every unknown key."""
    with pytest.raises(PluginConfigError) as caught:
        loader.build(loader.FLOW, TELEMETRY_CAP, IFlowControl, {"max_bytes": 10}, reactor=None)
    assert str(caught.value) == "max_bytes: unknown key; TelemetryCap takes no settings"
    assert caught.value.line("flow[1]") == ("flow[1].max_bytes = <redacted integer>: unknown key; TelemetryCap takes "
                                            "no settings")


# -- OneStepAuthenticator -------------------------------------------------------------------------------------------


class _Greeter(OneStepAuthenticator):
    authmethod = "greeting"

    def __init__(self, config, *, reactor=None):
        pass

    def begin(self, request):
        return Identity("someone", "user", "greeting", "test")


def test_one_step_authenticator_refuses_a_stray_authenticate():
    """A method without a challenge writes `authmethod` and `begin` only; the base class's `finish` refuses an
    AUTHENTICATE, naming the method; the object passes the start-up check for IAuthenticator."""
    authenticator = _Greeter({})
    assert verifyObject(IAuthenticator, authenticator)
    assert authenticator.finish(REQUEST, None, "sig", {}) == Denied("greeting authentication has no challenge")


class _NoBegin(OneStepAuthenticator):
    authmethod = "nothing"

    def __init__(self, config, *, reactor=None):
        pass


class _NoMethod(OneStepAuthenticator):
    def __init__(self, config, *, reactor=None):
        pass

    def begin(self, request):
        return Denied("never")


@pytest.mark.parametrize("factory,missing", [(_NoBegin, "begin"), (_NoMethod, "authmethod")])
def test_start_up_still_checks_what_the_base_class_leaves_out(monkeypatch, factory, missing):
    """The base class provides `finish` only: an authenticator without `begin` or `authmethod` still fails the
    verifyObject check at start-up, naming the missing member."""
    monkeypatch.setattr(loader, "resolve", lambda group, name: factory)
    with pytest.raises(loader.PluginError, match=f"does not implement IAuthenticator: .*{missing}"):
        loader.build(loader.AUTHENTICATORS, "broken", IAuthenticator, {}, reactor=None)


def _testtoken():
    path = ROOT / "tests" / "support" / "authplugin" / "wampgate_testtoken" / "__init__.py"
    spec = importlib.util.spec_from_file_location("wampgate_testtoken_for_unit_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.TokenAuthenticator({"role": "user"})


@pytest.mark.parametrize("build,reason", [
    (lambda: AnonymousAuthenticator({"role": "guest"}), "anonymous authentication has no challenge"),
    (lambda: TlsAuthenticator({"default_role": "device"}), "tls authentication has no challenge"),
    (_testtoken, "testtoken authentication has no challenge"),
])
def test_one_step_methods_refuse_authenticate_as_before(build, reason):
    """anonymous, tls and the docs' test authenticator lost their own `finish`: the base class refuses an
    AUTHENTICATE with the words they used, and each still passes the start-up check."""
    authenticator = build()
    assert verifyObject(IAuthenticator, authenticator)
    assert authenticator.finish(REQUEST, None, "sig", {}) == Denied(reason)


# -- the documentation quotes the plugins word for word ------------------------------------------------------------


def _blocks(document: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", (ROOT / document).read_text(encoding="utf-8"), re.S)


def _from_router_import(path: str) -> str:
    """A plugin's source from its `from wampgate.plugin import` line on: what the docs quote."""
    text = (ROOT / path).read_text(encoding="utf-8")
    return text[text.index("from wampgate.plugin import"):]


PLUGINS_PAGE = "docs/writing-plugins.md"


def test_docs_quote_the_example_authorizer():
    """The worked example in the docs is the shipped example, whole (source and pyproject.toml), so the docs show
    exactly what the layer test checks: imports from wampgate.plugin only."""
    source = (ROOT / "examples/quota_authorizer/quota_authorizer/__init__.py").read_text(encoding="utf-8")
    pyproject = (ROOT / "examples/quota_authorizer/pyproject.toml").read_text(encoding="utf-8")
    assert source in _blocks(PLUGINS_PAGE, "python")
    assert pyproject in _blocks(PLUGINS_PAGE, "toml")


@pytest.mark.parametrize("path", ["tests/support/telemetry_cap.py",
                                  "tests/support/authplugin/wampgate_testtoken/__init__.py"])
def test_docs_quote_the_plugins(path):
    """The plugins page's flow-control and authenticator examples are these plugins' code, word for word."""
    assert _from_router_import(path) in _blocks(PLUGINS_PAGE, "python")
