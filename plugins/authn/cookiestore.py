"""The server side of cookie authentication: which cookie stands for which login, kept only as the SHA-256 of the
cookie's value (a copy of the store, or a log of it, admits nobody), bounded in size with the oldest login evicted
first, and each entry expiring. No clock and no randomness here: the caller passes `now` and the cookie values."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Login:
    """What a cookie admits as: the identity it was bound to, in its realm, until `expires`."""

    realm: str
    authid: str
    authrole: str
    authmethod: str  # the method that logged in, e.g. "ticket"
    expires: float


def digest(token: str) -> str:
    """What the store keys on: the SHA-256 of the cookie value, hex."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class CookieStore:
    """At most `max_entries` logins by cookie digest; binding one more evicts the oldest."""

    def __init__(self, max_entries: int):
        self.max_entries = max_entries
        self._logins: OrderedDict[str, Login] = OrderedDict()

    def __len__(self) -> int:
        return len(self._logins)

    def bind(self, token: str, login: Login) -> None:
        key = digest(token)
        self._logins.pop(key, None)
        self._logins[key] = login
        while len(self._logins) > self.max_entries:
            self._logins.popitem(last=False)

    def lookup(self, token: str, now: float) -> Login | None:
        """The login `token` stands for, if bound and not expired (an expired one is dropped)."""
        key = digest(token)
        login = self._logins.get(key)
        if login is not None and login.expires <= now:
            del self._logins[key]
            return None
        return login

    def revoke(self, token: str) -> bool:
        return self._logins.pop(digest(token), None) is not None
