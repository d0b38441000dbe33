"""Where a node finds Redis: a `redis://` or `rediss://` (TLS) URL read into a frozen value.

The URL carries the password, so the password never appears in a repr, a log line or an error message: logs and the
health page show `redacted()`, and a URL that does not parse is quoted with everything before its last `@` hidden.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import quote, unquote

__all__ = ["DEFAULT_PORT", "RedisAddress"]

DEFAULT_PORT = 6379
EXPECTED = '"redis://[USER:PASSWORD@]HOST[:PORT][/DB]" or "rediss://..." (TLS)'
_SCHEMES = {"redis": False, "rediss": True}
_HOSTNAME = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")
_IPV6 = re.compile(r"[0-9A-Fa-f:.]+")
_DIGITS = re.compile(r"[0-9]+")
_MAX_DB = 2**31 - 1  # Redis's `databases` is an int


@dataclass(frozen=True)
class RedisAddress:
    """A parsed Redis URL. `password` (and `username`) are already percent-decoded; `password` is kept out of
    repr()."""

    host: str
    port: int
    db: int = 0
    password: str | None = field(default=None, repr=False)
    username: str | None = None
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> RedisAddress:
        """Read `redis://[USER:PASSWORD@]HOST[:PORT][/DB]` (TLS with `rediss://`); the port defaults to 6379 and
        the database to 0. Raises ValueError saying what is wrong and what is allowed, never quoting the password."""
        if not isinstance(url, str) or not url.strip():
            raise ValueError(f"the Redis URL is empty; expected {EXPECTED}")
        shown = _hide_credentials(url)
        if url != url.strip() or any(c.isspace() or ord(c) < 32 for c in url):
            raise _problem(shown, "it contains white space or control characters")
        scheme, sep, rest = url.partition("://")
        if not sep:
            raise _problem(shown, "it has no scheme")
        if scheme.lower() not in _SCHEMES:
            raise _problem(shown, f'the scheme "{_hide_credentials(scheme)}" is not supported (only "redis" and '
                                  '"rediss")')
        # The last "@" ends the credentials, so a password may hold "/", "?" or "#" unencoded.
        userinfo, at, location = rest.rpartition("@")
        if "?" in location:
            raise _problem(shown, "query parameters are not supported (give the database as /DB)")
        if "#" in location:
            raise _problem(shown, 'a fragment ("#...") is not allowed')
        username, password = _credentials(userinfo, shown) if at else (None, None)
        hostport, _, database = location.partition("/")
        host, port = _host_and_port(hostport, shown)
        return cls(host=host, port=port, db=_database(database, shown), password=password, username=username,
                   tls=_SCHEMES[scheme.lower()])

    def redacted(self) -> str:
        """The URL with the password shown as `***`: for logs and the health page."""
        userinfo = ""
        if self.password is not None:
            userinfo = f"{quote(self.username, safe='') if self.username else ''}:***@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        db = f"/{self.db}" if self.db else ""
        return f"{'rediss' if self.tls else 'redis'}://{userinfo}{host}:{self.port}{db}"

    def __str__(self) -> str:
        return self.redacted()


def _problem(shown: str, what: str) -> ValueError:
    return ValueError(f"invalid Redis URL {shown!r}: {what}; expected {EXPECTED}")


def _hide_credentials(url: str) -> str:
    """`url` with everything between `://` and the last `@` replaced by `***`: safe to quote in an error even when it
    does not parse (a password may contain `/`, `:` or `#`)."""
    if "@" not in url:
        return url
    scheme, sep, rest = url.partition("://")
    head = f"{scheme}{sep}" if sep else ""
    return f"{head}***@{(rest if sep else url).rpartition('@')[2]}"


def _credentials(userinfo: str, shown: str) -> tuple[str | None, str | None]:
    user, colon, password = userinfo.partition(":")
    if not colon:
        raise _problem(shown, "a user name needs a password (USER:PASSWORD@; a password alone is :PASSWORD@)")
    if not password:
        raise _problem(shown, "the password is empty")
    return (unquote(user) or None), unquote(password)


def _host_and_port(hostport: str, shown: str) -> tuple[str, int]:
    if hostport.startswith("["):
        host, bracket, rest = hostport[1:].partition("]")
        if not bracket or not _IPV6.fullmatch(host) or ":" not in host:
            raise _problem(shown, "the IPv6 address in [...] is malformed")
        if rest and not rest.startswith(":"):
            raise _problem(shown, "only :PORT may follow the IPv6 address")
        port_text = rest[1:] if rest else None
    else:
        host, colon, port_text = hostport.partition(":")
        port_text = port_text if colon else None
        if not host:
            raise _problem(shown, "the host is missing")
        if not _HOSTNAME.fullmatch(host):
            raise _problem(shown, f'the host "{host}" is not a host name or address')
    return host, _port(port_text, shown)


def _port(text: str | None, shown: str) -> int:
    if text is None:
        return DEFAULT_PORT
    if not _DIGITS.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise _problem(shown, f'the port "{text}" is not a number from 1 to 65535')
    return int(text)


def _database(text: str, shown: str) -> int:
    if not text:
        return 0
    if not _DIGITS.fullmatch(text) or int(text) > _MAX_DB:
        raise _problem(shown, f'the database "{text}" is not a number from 0 to {_MAX_DB}')
    return int(text)
