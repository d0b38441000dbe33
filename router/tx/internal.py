"""Calls from the router itself to procedures that trusted backend sessions registered (the dynamic authenticator
and authorizer delegate their decisions this way). The router's caller is a Peer whose channel resolves Deferreds
instead of writing to a socket, so the call takes the dealer's normal path, timeouts included."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from autobahn.wamp import message as wamp
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.role import RoleCallerFeatures
from twisted.internet import defer

from router.core.peer import Peer
from router.tx.runtime import RealmRuntime

ROUTER_AUTHID = "wampgate"
ROUTER_AUTHROLE = "wampgate.router"


class _ResultChannel:
    """Stands in for a transport: RESULT and ERROR for the router's own calls resolve their Deferreds."""

    session = None  # no WAMP session to abort

    def __init__(self) -> None:
        self.pending: dict[int, defer.Deferred] = {}

    def send_message(self, msg: wamp.Message) -> None:
        """IChannel.send_message: always taken (None)."""
        kind = type(msg)
        if kind is wamp.Result:
            d = self.pending.pop(msg.request, None)
            if d is not None:
                d.callback((list(msg.args or ()), dict(msg.kwargs or {})))
        elif kind is wamp.Error:
            d = self.pending.pop(msg.request, None)
            if d is not None:
                d.errback(ApplicationError(msg.error, *(msg.args or ()), **(msg.kwargs or {})))


class RouterCaller:
    """`call(realm, procedure, args, kwargs, timeout)`: a Deferred firing with (args, kwargs) of the RESULT, or
    failing with ApplicationError (no such procedure, the callee's own error, wamp.error.timeout)."""

    def __init__(self, realms: Mapping[str, RealmRuntime], clock: Any, new_id):
        self.realms = realms  # set once the realms are built (plugins get `call` before that)
        self._clock = clock
        self._new_id = new_id
        self._callers: dict[str, tuple[Peer, _ResultChannel]] = {}
        self._next_request = 0

    def call(
        self, realm: str, procedure: str, args: Sequence = (), kwargs: Mapping | None = None, timeout: float = 5.0
    ) -> defer.Deferred:
        runtime = self.realms.get(realm)
        if runtime is None:
            return defer.fail(ApplicationError("wamp.error.no_such_realm", f"no realm {realm!r}"))
        peer, channel = self._caller(runtime)
        self._next_request += 1
        request = self._next_request
        d = defer.Deferred()
        channel.pending[request] = d
        msg = wamp.Call(request, procedure, args=list(args), kwargs=dict(kwargs or {}), timeout=int(timeout * 1000))
        effects = runtime.core.check(peer, msg)
        if effects is None:
            effects = runtime.core.receive(peer, msg, now=self._clock.seconds())
        runtime.effects.run(effects)
        return d

    def _caller(self, runtime: RealmRuntime) -> tuple[Peer, _ResultChannel]:
        name = runtime.config.name
        if name not in self._callers:
            channel = _ResultChannel()
            peer = Peer(
                self._new_id(),
                name,
                authid=ROUTER_AUTHID,
                authrole=ROUTER_AUTHROLE,
                authmethod="internal",
                authprovider="wampgate",
                roles={"caller": RoleCallerFeatures(call_canceling=True, call_timeout=True)},
                channel=channel,
            )
            self._callers[name] = (peer, channel)
        return self._callers[name]
