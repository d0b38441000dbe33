"""The `dynamic` authenticator's refusals: the backend's own "no" counts against the client; the router's side of
the call failing (no backend registered, a timeout) does not."""

from __future__ import annotations

import pytest
from autobahn.wamp.exception import ApplicationError
from twisted.internet import defer, task

from wampgate.plugins.authn.dynamic import DynamicAuthenticator
from wampgate.interfaces import PluginContext
from wampgate.model import Denied
from tests.plugins import auth_request


def built(outcome) -> DynamicAuthenticator:
    """A dynamic authenticator (authmethod "dynamic": no challenge) whose backend call ends with `outcome`."""
    def call(realm, procedure, args, kwargs, timeout, **backend):
        return defer.fail(outcome)

    context = PluginContext(base_dir=None, call=call)
    return DynamicAuthenticator({"procedure": "com.example.authenticate", "authmethod": "dynamic", "backend_authrole": "backend"},
                                reactor=task.Clock(), context=context)


def answer_of(authenticator: DynamicAuthenticator):
    results = []
    authenticator.begin(auth_request("alice", method="dynamic")).addBoth(results.append)
    return results[0]


@pytest.mark.parametrize("error", ["wamp.error.no_such_procedure", "wamp.error.timeout", "wamp.error.canceled",
                                   "wamp.error.no_such_realm", "wampgate.error.too_many_pending_calls"])
def test_router_side_failures_do_not_count(error):
    """No backend, a timeout, a cancelled call or the router's own limit: Denied, not counted as a failure."""
    answer = answer_of(built(ApplicationError(error, "x")))
    assert isinstance(answer, Denied) and answer.counts_as_failure is False


def test_a_non_wamp_error_does_not_count():
    """An exception that is not the backend's WAMP error is the router's trouble, not the client's."""
    answer = answer_of(built(RuntimeError("boom")))
    assert isinstance(answer, Denied) and answer.counts_as_failure is False


def test_the_backends_refusal_counts():
    """An error the backend raised (any other URI) is its answer "no": it counts towards the lockout."""
    answer = answer_of(built(ApplicationError("com.example.denied", "wrong ticket")))
    assert isinstance(answer, Denied) and answer.counts_as_failure is True
