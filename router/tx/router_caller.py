"""Calls from the router itself to procedures that trusted backend sessions registered (the dynamic authenticator
and authorizer delegate their decisions this way). The router's caller is a Peer whose channel resolves Deferreds
instead of writing to a socket, so the call takes the dealer's normal path, timeouts included.

Whoever answers such a call decides who joins and what they may do, so it reaches only the EXACT registration of the
procedure, and only when every callee of it has the backend's configured authrole (and authid, when configured). A
prefix or wildcard registration, or an exact one by anybody else, never answers it: the call fails with
`wamp.error.no_such_procedure` (the plugins deny), and the router logs why, once, until a call to it succeeds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from autobahn.wamp import message as wamp
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.role import RoleCallerFeatures
from twisted.internet import defer

from twisted.logger import Logger
from zope.interface import implementer

from wampgate.core import errors
from wampgate.core.peer import Peer
from wampgate.uri import EXACT
from wampgate.model import TransportInfo
from wampgate.tx.channel import IChannel
from wampgate.tx.runtime import RealmRuntime

ROUTER_AUTHID = "wampgate"
ROUTER_AUTHROLE = "wampgate.router"
MAX_NOTED_REFUSALS = 1000  # (realm, procedure) pairs whose refusal was logged; past it, further ones go unlogged


@implementer(IChannel)
class _ResultChannel:
    """The router's own channel: RESULT and ERROR for its calls resolve their Deferreds. Nothing is written, so
    there is no budget, nothing to read, nothing to close."""

    session = None  # no WAMP session to abort
    serializer = None
    budget = None

    def __init__(self) -> None:
        self.pending: dict[int, defer.Deferred] = {}

    def pause_reading(self, reason: str) -> None:
        pass

    def resume_reading(self, reason: str) -> None:
        pass

    def close_transport(self, code: int, reason: str | None) -> None:
        pass

    def abort_transport(self) -> None:
        pass

    def transport_info(self) -> TransportInfo:
        return TransportInfo(listener="", kind="internal", peer="router", is_secure=True, serializer="")

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
    """`call(realm, procedure, args, kwargs, timeout, *, backend_authrole, backend_authid=None)`: a Deferred firing
    with (args, kwargs) of the RESULT, or failing with ApplicationError (no such procedure, or no trusted callee for
    it; the callee's own error; wamp.error.timeout). A call that names no backend_authrole is refused."""

    log = Logger()

    def __init__(self, realms: Mapping[str, RealmRuntime], clock: Any, new_id):
        self.realms = realms  # set once the realms are built (plugins get `call` before that)
        self._clock = clock
        self._new_id = new_id
        self._callers: dict[str, tuple[Peer, _ResultChannel]] = {}
        self._next_request = 0
        self._noted: set[tuple[str, str]] = set()  # refusals logged and not yet followed by a successful call

    def call(
        self, realm: str, procedure: str, args: Sequence = (), kwargs: Mapping | None = None, timeout: float = 5.0,
        *, backend_authrole: str | None = None, backend_authid: str | None = None,
    ) -> defer.Deferred:
        runtime = self.realms.get(realm)
        if runtime is None:
            return defer.fail(ApplicationError(errors.NO_SUCH_REALM, f"no realm {realm!r}"))
        if not backend_authrole:
            self._note(realm, procedure, "the caller named no backend_authrole")
            return defer.fail(ApplicationError(errors.NO_SUCH_PROCEDURE, "no trusted callee for this procedure"))
        backend = _Backend(backend_authrole, backend_authid)
        peer, channel = self._caller(runtime)
        self._next_request += 1
        request = self._next_request
        d = defer.Deferred()
        channel.pending[request] = d
        d.addCallbacks(self._succeeded, self._failed, callbackArgs=(realm, procedure),
                       errbackArgs=(runtime, procedure, backend))
        msg = wamp.Call(request, procedure, args=list(args), kwargs=dict(kwargs or {}), timeout=int(timeout * 1000))
        effects = runtime.core.check(peer, msg)
        if effects is None:
            effects = runtime.core.dealer.call_trusted(peer, msg, backend.holds, now=self._clock.seconds())
        runtime.effects.run(effects)
        return d

    def _succeeded(self, result, realm: str, procedure: str):
        self._noted.discard((realm, procedure))  # a later refusal is news again
        return result

    def _failed(self, failure, runtime: RealmRuntime, procedure: str, backend: _Backend):
        if failure.check(ApplicationError) and failure.value.error == errors.NO_SUCH_PROCEDURE:
            why = backend.why_not(runtime.core.dealer, procedure)
            if why is not None:  # None: the backend itself answered no_such_procedure
                self._note(runtime.config.name, procedure, why)
        return failure

    def _note(self, realm: str, procedure: str, why: str) -> None:
        """Log a refused internal call once per (realm, procedure) until a call to it succeeds again."""
        key = (realm, procedure)
        if key in self._noted or len(self._noted) >= MAX_NOTED_REFUSALS:
            return
        self._noted.add(key)
        self.log.warn("router-internal call to {procedure} in realm {realm} refused: {why}; the dynamic plugin that "
                      "asked denies until the backend registers it (logged once)", procedure=procedure, realm=realm,
                      why=why)

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


class _Backend:
    """The configured backend identity: every callee of the procedure's exact registration must have it."""

    __slots__ = ("authrole", "authid")

    def __init__(self, authrole: str, authid: str | None):
        self.authrole = authrole
        self.authid = authid

    def holds(self, peer: Peer) -> bool:
        return peer.authrole == self.authrole and (self.authid is None or peer.authid == self.authid)

    def describe(self) -> str:
        return f"role {self.authrole!r}" + (f" and authid {self.authid!r}" if self.authid is not None else "")

    def why_not(self, dealer: Any, procedure: str) -> str | None:
        """Why the dealer refused the router's call, for the log; None when it did not (the backend's own error)."""
        exact = dealer.find(procedure, EXACT)
        if exact is not None:
            others = [callee for callee in exact.callees if not self.holds(callee)]
            if not others:
                return None
            shown = ", ".join(f"{callee.authid[:64]!r}/{callee.authrole[:64]!r}" for callee in others[:3])
            return f"it is registered by a session that is not the backend ({self.describe()}): {shown}"
        pattern = dealer.lookup(procedure)
        if pattern is not None:
            return (f"only the {pattern.match} registration {pattern.uri!r} matches it, and the router's own calls "
                    f"go only to an exact registration by the backend ({self.describe()})")
        return f"it is not registered (the backend must register it exactly, as {self.describe()})"
