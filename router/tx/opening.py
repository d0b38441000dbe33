"""The opening of a session, from HELLO to WELCOME: pick the realm and the authentication method, run the
authenticator, admit the session through flow control, join the realm.

A HELLO without a realm (absent or null, as Crossbar allows) joins the realm the authenticated principal is bound to
(`Identity.realm`, a principal's `realm` in the config), else the one realm the method serves; with neither, or with
several to choose from, it is refused with wamp.error.no_such_realm. A HELLO naming a realm other than its
principal's is refused like any failed login.

The session's life (which message is allowed when) is the table in router/core/handshake.py; this module does the
work of its OPEN and ANSWER_CHALLENGE actions and reports back to the session: `challenge`, `welcome` or `refuse`.
"""

from __future__ import annotations

from typing import Any

from autobahn.wamp import message as wamp
from twisted.logger import Logger

from wampgate.core import errors
from wampgate.core.peer import Peer
from wampgate.model import ADMIT_KIND, AuthRequest, Challenge, FlowSession, Identity
from wampgate.tx.authentication import Authentication
from wampgate.tx.runtime import ListenerRuntime, RealmRuntime, RouterContext


class Refusal(Exception):
    """The HELLO cannot go on: ABORT with `reason` and the generic `text`."""

    def __init__(self, reason: str, text: str):
        super().__init__(text)
        self.reason = reason
        self.text = text


def host_of(address: str) -> str:
    """A transport address without its port: "tcp4:127.0.0.1:50312" -> "tcp4:127.0.0.1" (what limits key on)."""
    return address.rsplit(":", 1)[0]


class Opening:
    """One HELLO's way to a joined session. `session` is told `challenge(challenge)`, `welcome(...)` or
    `refuse(reason, text)`; nothing here writes to the client itself."""

    log = Logger()
    __slots__ = ("_session", "_context", "realm", "hello", "_auth", "_method_served")

    def __init__(self, session: Any, context: RouterContext, listener: ListenerRuntime, hello: wamp.Hello):
        """Raises Refusal when the realm or every offered method is unknown."""
        self._session = session
        self._context = context
        self.hello = hello
        self.realm = self._realm_of(hello) if hello.realm is not None else None  # None: decided by the principal
        offered = tuple(hello.authmethods or ("anonymous",))
        request = AuthRequest(
            session_id=context.new_id(),
            realm=hello.realm,
            authid=hello.authid,
            authmethods=offered,
            authextra=hello.authextra or {},
            transport=session.transport_info(),
        )
        chosen, method = self._method(listener, offered, request)
        self._method_served = method
        self._auth = Authentication(self, method.authenticator, chosen, request,
                                    clock=context.clock, timeout=context.limits.auth_timeout,
                                    failures=context.failures, counters=context.counters)

    def _realm_of(self, hello: wamp.Hello) -> RealmRuntime:
        realm = self._context.realms.get(hello.realm)
        if realm is None:
            self.log.info("HELLO from {peer} for unknown realm {realm!r}", peer=self._session.address,
                          realm=hello.realm)
            raise Refusal(errors.NO_SUCH_REALM, "no such realm")
        return realm

    def _method(self, listener: ListenerRuntime, offered: tuple, request: AuthRequest) -> tuple:
        """The first offered method this listener allows for the realm (any realm when HELLO names none: checked
        once the principal is known) and that can serve this connection (a method with an `offers(request)` says:
        `cookie` only with a known cookie), as (name, AuthMethod)."""
        methods = listener.methods
        for name in offered:
            method = methods.get(name) if type(name) is str else None
            if method is None or (request.realm is not None and not method.serves(request.realm)):
                continue
            offers = getattr(method.authenticator, "offers", None)
            if offers is None or offers(request):
                return name, method
        self.log.info("no acceptable authmethod from {peer}: offered {offered}", peer=self._session.address,
                      offered=offered)
        raise Refusal(errors.NO_AUTH_METHOD, "none of the offered authentication methods is allowed here")

    def start(self) -> None:
        self._auth.start()

    def answer(self, msg: wamp.Authenticate) -> None:
        self._auth.answer(msg.signature, msg.extra or {})

    def cancel(self) -> None:
        self._auth.cancel()

    # -- reports from Authentication --------------------------------------------------------------------------------

    def challenge(self, challenge: Challenge) -> None:
        self._session.challenge(wamp.Challenge(challenge.method, dict(challenge.extra)))

    def refused(self) -> None:
        self._session.refuse(errors.AUTHENTICATION_FAILED, "authentication failed")

    def _joined_realm(self, identity: Identity) -> RealmRuntime | None:
        """The realm the session joins: HELLO's, which must be the principal's if it has one; without one in HELLO,
        the principal's or the one realm the method serves. None after refusing."""
        request = self._auth.request
        if request.realm is not None:
            if identity.realm is not None and identity.realm != request.realm:
                self.log.info("{authid!r} is bound to realm {bound!r}, not {realm!r}", authid=identity.authid,
                              bound=identity.realm, realm=request.realm)
                self.refused()
                return None
            return self.realm
        name = identity.realm or self._only_realm()
        realm = self._context.realms.get(name) if name is not None else None
        if realm is None or not self._method_served.serves(name):
            why = "ambiguous: no realm in HELLO, none bound to the principal, several served" if name is None else (
                f"realm {name!r} unknown or not served by the method")
            self.log.info("HELLO from {peer} without a realm for {authid!r}: {why}", peer=self._session.address,
                          authid=identity.authid, why=why)
            self._session.refuse(errors.NO_SUCH_REALM, "no realm given, and none is known for this principal")
            return None
        self.realm = realm
        return realm

    def _only_realm(self) -> str | None:
        served = self._method_served.realms
        names = tuple(served) if served is not None else tuple(self._context.realms)
        return names[0] if len(names) == 1 else None

    def authenticated(self, identity: Identity) -> None:
        """Check the realm and the role, admit the session through flow control, and hand the session what it needs
        to join."""
        realm, request = self._joined_realm(identity), self._auth.request
        if realm is None:
            return
        if identity.authrole not in realm.config.roles:
            self.log.warn("authenticated {authid!r} has role {role!r}, which realm {realm!r} does not define",
                          authid=identity.authid, role=identity.authrole, realm=realm.config.name)
            self.refused()
            return
        flow_session = FlowSession(
            session_id=request.session_id,
            realm=realm.config.name,
            authid=identity.authid,
            authrole=identity.authrole,
            authmethod=identity.authmethod,
            peer=host_of(request.transport.peer),
            listener=request.transport.listener,
        )
        verdict = self._context.flow.admit_session(flow_session)
        if verdict.kind != ADMIT_KIND:
            self.log.info("session for {authid!r} refused by flow control: {reason}", authid=identity.authid,
                          reason=verdict.reason)
            self._session.refuse(verdict.error or errors.TOO_MANY_SESSIONS, "too many sessions")
            return
        peer = Peer(request.session_id, realm.config.name, authid=identity.authid, authrole=identity.authrole,
                    authmethod=identity.authmethod, authprovider=identity.authprovider,
                    authextra=identity.authextra, roles=self.hello.roles, channel=self._session.channel)
        self._session.welcome(realm, peer, identity, flow_session)


def welcome_message(realm: RealmRuntime, peer: Peer, identity: Identity) -> wamp.Welcome:
    return wamp.Welcome(
        peer.session_id,
        realm.core.router_roles(peer.roles),
        realm=realm.config.name,
        authid=identity.authid,
        authrole=identity.authrole,
        authmethod=identity.authmethod,
        authprovider=identity.authprovider,
        authextra=dict(identity.authextra) or None,
    )
