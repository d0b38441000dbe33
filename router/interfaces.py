"""The plugin contracts. A plugin is a callable `(config: Mapping, *, reactor) -> provider` that validates its own
config table there, raising PluginConfigError naming the key; it is loaded and verified before any port opens."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from zope.interface import Attribute, Interface

from wampgate.shared import SharedState


_NO_VALUE = object()


class PluginConfigError(Exception):
    """A plugin's config table is wrong: `key` (relative to the plugin's table), the value, and what is allowed."""

    def __init__(self, key: str, problem: str, value: object = _NO_VALUE):
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem
        self.value = value

    def line(self, table_path: str) -> str:
        """The config error line, in the same form as the router's own: `path.key = value: problem`; the value is
        redacted when the key looks secret or is unknown (its problem starts "unknown key", as plugins word it)."""
        from wampgate.configreader import shown

        if self.value is _NO_VALUE:
            return f"{table_path}.{self.key}: {self.problem}"
        known = not self.problem.startswith("unknown key")
        return f"{table_path}.{self.key} = {shown(self.key, self.value, known=known)}: {self.problem}"


@dataclass(frozen=True)
class PluginContext:
    """What a plugin may use besides its config table; passed as the keyword `context` to plugin factories that
    accept it (`(config, *, reactor, context)`), so plain `(config, *, reactor)` factories keep working."""

    base_dir: Path  # relative paths in the plugin's table are relative to this: the config file's directory
    # call(realm, procedure, args, kwargs, timeout, *, backend_authrole, backend_authid=None) -> Deferred firing
    # with the result's args/kwargs; for plugins that delegate to a WAMP procedure registered by a trusted backend
    # (the dynamic authenticator and authorizer). Only an exact registration by that backend answers it.
    call: Callable[..., Any] | None = None
    realm: Any = None  # the RealmConfig, for plugins configured inside a realm (authorizers)
    # Kept for the life of the router process: the router builds its authenticators' context once and passes the
    # same one to every listener's authenticators and after every reload (see wampgate.shared).
    shared: SharedState = field(default_factory=SharedState)
    # IClusterLimits, for flow-control plugins, when the router is a node of a cluster ([cluster]); None otherwise.
    cluster: Any = None


class IClusterLimits(Interface):
    """Limits across every node of a cluster (wampgate.tx.cluster.limits), for flow-control plugins."""

    def sessions_elsewhere(realm, authid):
        """How many sessions `authid` holds in `realm` on the other nodes (eventually consistent)."""

    def take(key, rate, burst, cost, now):
        """Spend `cost` of the cluster-wide token bucket `key` (`rate` per second, up to `burst`): 0.0 when
        admitted, else the seconds to wait. Never blocks: the node spends leases it took from Redis."""

    def refund(key, cost):
        """Give back what `take` admitted for a message refused by another limit."""


class IAuthenticator(Interface):
    """Proves who a connecting client is."""

    authmethod = Attribute("the WAMP authmethod this implements, e.g. 'ticket'")

    def begin(request):
        """Given an AuthRequest, return (now or via Deferred/coroutine) an Identity, a Challenge or a Denied."""

    def finish(request, challenge, signature, extra):
        """Given the client's AUTHENTICATE answer to `challenge`, return an Identity or a Denied."""


class ISessionCookies(Interface):
    """An authenticator that also remembers logins in browser cookies (the built-in `cookie`): the WebSocket glue
    asks it for a cookie on every upgrade, tells it who logged in on that connection and who logged out. The
    upgrade response goes out before any WAMP login, so a cookie is handed out first and bound to an identity only
    after a WELCOME by another method. Called on the reactor thread; must not raise."""

    def upgrade_cookie(listener, cookies, is_secure, path):
        """For a WebSocket upgrade on `listener` carrying `cookies` (name -> value): (token, Set-Cookie value or
        None). `token` is what `remember` / `forget` later name this connection's cookie by."""

    def remember(listener, token, issued, identity, realm):
        """The connection whose cookie is `token` logged in as `identity` (Identity) in `realm`; `issued`: the
        cookie was made for this connection (its upgrade response set it), not brought along."""

    def forget(listener, token):
        """The session on that connection logged out (GOODBYE wamp.close.logout): the cookie no longer admits."""


class IAuthorizer(Interface):
    """Decides whether a session may publish, subscribe, call or register on a URI."""

    def authorize(request):
        """Given an AuthorizationRequest, return a Decision (now, or via Deferred/coroutine)."""


class IFlowControl(Interface):
    """Admits or refuses connections, sessions and messages. Synchronous: it sits on the hot path, so `admit`
    must be cheap (no allocation) while no limit is near. Verdicts are wampgate.model.Verdict values."""

    def admit_connection(peer, listener, now):
        """A new connection from `peer` (address without port) on `listener`."""

    def connection_closed(peer, listener):
        """A connection admitted earlier has closed."""

    def admit_session(session, now):
        """A session (FlowSession) is about to join."""

    def admit(session, action, uri, size, now):
        """An inbound "publish", "call", "subscribe" or "register" of `size` bytes on `uri`."""

    def session_closed(session):
        """A session admitted earlier has left: forget its state."""


class IPayloadValidator(Interface):
    """Checks the payload of a PUBLISH or CALL the authorizer allowed, before the realm routes it. Synchronous: it
    sits on the hot path, so `validate` must not block or return a Deferred. Payloads in passthrough form (opaque
    bytes) are never shown to it: the router cannot read them."""

    def validate(action, uri, args, kwargs):
        """`action` is "publish" or "call"; `args` a list (or None), `kwargs` a dict (or None). Return None when the
        payload is valid, else a short text naming what failed (a schema path), never echoing the client's values:
        the router sends it to the client in ERROR `wamp.error.invalid_argument`."""
