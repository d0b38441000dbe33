"""The `cookie` authenticator: a browser that logged in once by another method on this WebSocket listener is let
in again by an HTTP cookie, without its credentials, until the cookie expires or the session logs out.

How it goes (as Crossbar's cookie authentication, whose authmethod name it keeps):
1. every WebSocket upgrade on the listener that does not carry a valid cookie gets a new one in the upgrade response
   (`Set-Cookie: <name>=<32 random bytes>; HttpOnly; SameSite=Strict; Path=<the WebSocket path>; Max-Age=...`, plus
   `Secure` on TLS). The upgrade response goes out before any WAMP login, so the cookie is handed out first;
2. when that connection's session is WELCOMEd by another method (ticket, wampcra, ...; not anonymous, which proves
   nothing), the router binds the cookie to the identity and realm. Only a cookie the router made for that very
   connection is bound: a login over a connection that came with an already-bound cookie unbinds that one (so a
   cookie planted in a browser never takes on the next user's identity);
3. a later HELLO offering `cookie` over a connection with a bound, unexpired cookie joins as that identity
   (authmethod "cookie", authprovider "cookie"), in its realm (also when HELLO names none; a HELLO naming another
   realm is refused). Without a valid cookie the method is skipped and the next offered one is tried, so clients
   offer `["cookie", "ticket"]`;
4. GOODBYE with reason `wamp.close.logout` unbinds the connection's cookie.

The store keeps only SHA-256 digests of cookie values, in memory (a restart logs everybody out), at most
`max_entries` of them: binding one more evicts the oldest login. It is the router's for as long as it runs (SharedState,
per listener), so a reload keeps the logins.

Why `SameSite=Strict` by default: it differs from `Lax` only for top-level navigations, which a WebSocket upgrade
never is, so it costs a WAMP page nothing, and a page of another site that opens a WebSocket to the router
(cross-site WebSocket hijacking) does not get the cookie sent along. `Lax` is allowed for setups where the page and
the router are different sites but the operator still wants cookies on direct navigations; `None` is refused.

    [listeners.auth.cookie]
    max_age = 86400          # seconds a login lasts (default 1 day)
    same_site = "Strict"     # or "Lax"
    name = "wampgate_auth"   # give each cookie listener on a host its own name: cookies ignore ports
    max_entries = 10000
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Mapping
from typing import Any

from zope.interface import implementer

from wampgate.plugins.authn.cookiestore import CookieStore, Login
from wampgate.plugin import (
    AuthRequest,
    Denied,
    Identity,
    ISessionCookies,
    OneStepAuthenticator,
    PluginContext,
    SharedState,
    Table,
)

STORES = "cookie.stores"  # its name in the router's SharedState: {listener name: CookieStore}
_NAME = re.compile(r"[A-Za-z0-9_\-]{1,64}")
_TOKEN = re.compile(r"[A-Za-z0-9_\-]{43}")  # 32 random bytes, URL-safe base64 without padding
_NOT_AGAIN = ("cookie", "anonymous")  # logins a cookie is never bound to


@implementer(ISessionCookies)
class CookieAuthenticator(OneStepAuthenticator):
    """Admits the identity a valid cookie is bound to, in `begin`; no challenge."""

    authmethod = "cookie"

    def __init__(self, config: Mapping[str, Any], *, reactor: Any, context: PluginContext | None = None):
        table = Table(config, "", ("name", "max_age", "same_site", "max_entries"))
        self.name = table.string("name", default="wampgate_auth")
        if not _NAME.fullmatch(self.name):
            raise table.fail("name", "expected 1 to 64 letters, digits, '_' or '-'")
        self._max_age = table.integer("max_age", default=86400, minimum=60, maximum=366 * 86400)
        self._same_site = table.string("same_site", default="Strict", choices=("Strict", "Lax"))
        self._max_entries = table.integer("max_entries", default=10000, minimum=1, maximum=1_000_000)
        self._reactor = reactor
        shared = context.shared if context is not None else SharedState()
        self._stores: dict[str, CookieStore] = shared.get(STORES, dict)

    def _store(self, listener: str) -> CookieStore:
        store = self._stores.setdefault(listener, CookieStore(self._max_entries))
        store.max_entries = self._max_entries  # a reload may have changed it
        return store

    def _valid(self, listener: str, token: Any) -> Login | None:
        if not isinstance(token, str) or not _TOKEN.fullmatch(token):
            return None
        return self._store(listener).lookup(token, self._reactor.seconds())

    # -- IAuthenticator -------------------------------------------------------------------------------------------

    def offers(self, request: AuthRequest) -> bool:
        """Whether this connection carries a valid cookie: without one, the next offered method is tried."""
        return self._valid(request.transport.listener, request.transport.cookies.get(self.name)) is not None

    def begin(self, request: AuthRequest) -> Identity | Denied:
        login = self._valid(request.transport.listener, request.transport.cookies.get(self.name))
        if login is None:
            return Denied("no valid authentication cookie")
        if request.realm is not None and request.realm != login.realm:
            return Denied(f"the cookie is for realm {login.realm!r}")
        return Identity(authid=login.authid, authrole=login.authrole, authmethod="cookie", authprovider="cookie",
                        authextra={"logged_in_by": login.authmethod}, realm=login.realm)

    # -- ISessionCookies ------------------------------------------------------------------------------------------

    def upgrade_cookie(self, listener: str, cookies: Mapping[str, str], is_secure: bool,
                       path: str) -> tuple[str, str | None]:
        presented = cookies.get(self.name)
        if self._valid(listener, presented) is not None:
            return presented, None
        token = secrets.token_urlsafe(32)
        attributes = [f"{self.name}={token}", f"Max-Age={self._max_age}", f"Path={path}", "HttpOnly",
                      f"SameSite={self._same_site}"]
        if is_secure:
            attributes.append("Secure")
        return token, "; ".join(attributes)

    def remember(self, listener: str, token: str, issued: bool, identity: Identity, realm: str) -> None:
        if identity.authmethod in _NOT_AGAIN:
            return
        store = self._store(listener)
        if not issued:
            store.revoke(token)  # the connection came with a bound cookie: never rebind it to someone else
            return
        store.bind(token, Login(realm, identity.authid, identity.authrole, identity.authmethod,
                                self._reactor.seconds() + self._max_age))

    def forget(self, listener: str, token: str) -> None:
        self._store(listener).revoke(token)
