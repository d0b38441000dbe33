"""The router's own calls (router/tx/router_caller.py RouterCaller) on a real realm core, without sockets: they reach only
the exact registration of the configured backend; a call naming no backend is refused; each refusal is logged once
per (realm, procedure) until a call to it succeeds, with the reason."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

from autobahn.wamp import message as wamp
from autobahn.wamp.exception import ApplicationError
from twisted.internet import task
from twisted.logger import Logger, LogLevel, formatEvent

from wampgate.config import LimitsConfig
from wampgate.core.peer import Peer
from wampgate.core.realm import Realm
from wampgate.uri import EXACT, PREFIX, UriPolicy
from wampgate.tx.effect_runner import EffectRunner
from wampgate.tx.router_caller import RouterCaller

PROCEDURE = "com.example.authenticate"


class Channel:
    """A callee's channel: records what the router sends it."""

    def __init__(self) -> None:
        self.sent: list = []

    def send_message(self, msg) -> None:
        """IChannel.send_message: taken (None)."""
        self.sent.append(msg)


def make_peer(session_id: int, authrole: str, authid: str | None = None) -> Peer:
    return Peer(session_id, "realm1", authid=authid or f"user{session_id}", authrole=authrole, authmethod="ticket",
                authprovider="static", channel=Channel())


def make_router():
    clock = task.Clock()
    core = Realm("realm1", UriPolicy(), itertools.count(1000).__next__, lambda c: c[0], limits=LimitsConfig())
    runtime = SimpleNamespace(core=core, config=SimpleNamespace(name="realm1"), effects=EffectRunner(core, clock))
    caller = RouterCaller({"realm1": runtime}, clock, itertools.count(1).__next__)
    warnings: list[str] = []
    caller.log = Logger(observer=lambda event: warnings.append(formatEvent(event))
                        if event["log_level"] == LogLevel.warn else None)
    return caller, runtime, warnings


def register(runtime, peer: Peer, procedure: str = PROCEDURE, match: str = EXACT) -> int:
    runtime.core.join(peer)
    (reply, *_) = runtime.core.dealer.register(peer, wamp.Register(1, procedure, match=match))
    return reply.message.registration


def outcome(d) -> object:
    seen: list = []
    d.addBoth(seen.append)
    (result,) = seen
    return result.value if hasattr(result, "value") else result


def call(caller, **backend):
    return caller.call("realm1", PROCEDURE, ["realm1", "carol", {}], {}, 1.0, **backend)


def test_a_call_naming_no_backend_is_refused_even_with_the_backend_registered():
    """Without backend_authrole the call fails with no_such_procedure and reaches nobody, however the procedure is
    registered; the refusal is logged once for two calls."""
    caller, runtime, warnings = make_router()
    backend = make_peer(1, "backend")
    register(runtime, backend)
    for _ in range(2):
        error = outcome(call(caller))
        assert isinstance(error, ApplicationError) and error.error == "wamp.error.no_such_procedure"
    assert backend.channel.sent == []
    assert warnings == [f"router-internal call to {PROCEDURE} in realm realm1 refused: the caller named no "
                        "backend_authrole; the dynamic plugin that asked denies until the backend registers it "
                        "(logged once)"]


def test_the_backends_exact_registration_answers_and_its_result_comes_back():
    """With backend_authrole (and a matching backend_authid) the backend's exact registration gets the INVOCATION,
    and its YIELD resolves the call with (args, kwargs); nothing is logged."""
    caller, runtime, warnings = make_router()
    backend = make_peer(1, "backend", authid="login-service")
    register(runtime, backend)
    d = call(caller, backend_authrole="backend", backend_authid="login-service")
    (invocation,) = backend.channel.sent
    assert isinstance(invocation, wamp.Invocation) and invocation.args == ["realm1", "carol", {}]
    runtime.effects.run(runtime.core.receive(backend, wamp.Yield(invocation.request, args=["user"])))
    assert outcome(d) == (["user"], {})
    assert warnings == []


def test_a_wrong_backend_authid_or_a_pattern_registration_is_refused_with_the_reason():
    """The backend's role with another authid than the configured one is refused (the warning names the session),
    as is a prefix registration of the right role; neither callee is sent anything."""
    caller, runtime, warnings = make_router()
    impostor = make_peer(1, "backend", authid="someone-else")
    register(runtime, impostor)
    assert outcome(call(caller, backend_authrole="backend", backend_authid="login-service")).error == (
        "wamp.error.no_such_procedure")
    assert "it is registered by a session that is not the backend (role 'backend' and authid 'login-service'): " \
           "'someone-else'/'backend'" in warnings[0]
    caller, runtime, warnings = make_router()  # a fresh router: a second refusal of the same procedure is not logged
    pattern = make_peer(2, "backend")
    register(runtime, pattern, "com.example.", PREFIX)
    assert outcome(call(caller, backend_authrole="backend")).error == "wamp.error.no_such_procedure"
    assert "only the prefix registration 'com.example.' matches it" in warnings[0]
    assert impostor.channel.sent == [] and pattern.channel.sent == []


def test_a_refusal_is_logged_again_only_after_a_call_succeeded():
    """Refused twice: one warning. The backend registers, a call succeeds, the backend leaves: the next refusal is
    logged again."""
    caller, runtime, warnings = make_router()
    for _ in range(2):
        call(caller, backend_authrole="backend")
    assert len(warnings) == 1 and "it is not registered" in warnings[0]
    backend = make_peer(1, "backend")
    register(runtime, backend)
    d = call(caller, backend_authrole="backend")
    (invocation,) = backend.channel.sent
    runtime.effects.run(runtime.core.receive(backend, wamp.Yield(invocation.request, args=["user"])))
    assert outcome(d) == (["user"], {})
    runtime.core.leave(backend)
    call(caller, backend_authrole="backend")
    assert len(warnings) == 2


def test_the_backends_own_no_such_procedure_error_is_not_logged_as_a_refusal():
    """When the backend itself answers with wamp.error.no_such_procedure, the call fails with it but no refusal is
    logged: the router did not refuse anything."""
    caller, runtime, warnings = make_router()
    backend = make_peer(1, "backend")
    register(runtime, backend)
    d = call(caller, backend_authrole="backend")
    (invocation,) = backend.channel.sent
    error = wamp.Error(wamp.Invocation.MESSAGE_TYPE, invocation.request, "wamp.error.no_such_procedure")
    runtime.effects.run(runtime.core.receive(backend, error))
    assert outcome(d).error == "wamp.error.no_such_procedure"
    assert warnings == []
