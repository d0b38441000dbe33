"""Cookie authentication's glue between the WebSocket upgrade and the session: the listener's cookie issuer (an
authenticator providing ISessionCookies, the built-in `cookie`) is asked for a cookie on every upgrade; the session
later reports the login and the logout of that connection. The cookie goes out in the upgrade response, before any
WAMP message, which is why binding it to an identity waits for the WELCOME."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from twisted.logger import Logger

from wampgate.interfaces import ISessionCookies
from wampgate.model import Identity
from wampgate.tx.runtime import ListenerRuntime

log = Logger()


@dataclass(frozen=True, slots=True)
class ConnectionCookie:
    """One connection's cookie: who issued it, its value, and whether this connection's upgrade response set it."""

    issuer: Any  # ISessionCookies
    listener: str
    token: str
    issued: bool

    def logged_in(self, identity: Identity, realm: str) -> None:
        try:
            self.issuer.remember(self.listener, self.token, self.issued, identity, realm)
        except Exception:
            log.failure("cookie issuer failed to remember a login")

    def logged_out(self) -> None:
        try:
            self.issuer.forget(self.listener, self.token)
        except Exception:
            log.failure("cookie issuer failed to forget a login")


def upgrade_cookie(listener: ListenerRuntime, cookies: Mapping[str, str], is_secure: bool,
                   path: str) -> tuple[ConnectionCookie | None, dict[str, str]]:
    """The connection's cookie and the headers to add to the upgrade response; (None, {}) on a listener without
    cookie authentication."""
    issuer = next((m.authenticator for m in listener.methods.values() if ISessionCookies.providedBy(m.authenticator)),
                  None)
    if issuer is None:
        return None, {}
    try:
        token, header = issuer.upgrade_cookie(listener.config.name, cookies, is_secure, path)
    except Exception:
        log.failure("cookie issuer failed on a WebSocket upgrade")
        return None, {}
    cookie = ConnectionCookie(issuer, listener.config.name, token, issued=header is not None)
    return cookie, ({"Set-Cookie": header} if header is not None else {})
