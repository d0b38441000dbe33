"""Twisted server endpoint strings: checked without listening, and compared for address clashes."""

from __future__ import annotations

from twisted.internet import endpoints

# Endpoint types that do their own TLS: refused, because TLS is configured in the listener's [tls] table
# where its minimum version, ciphers and client-certificate checks are explicit.
_TLS_ENDPOINT_TYPES = ("ssl", "tls")
_WILDCARD_INTERFACES = ("", "0.0.0.0", "::")


class _NoReactor:
    """Stands in for the reactor while parsing: endpoint constructors only store it."""


def endpoint_problem(description: str) -> str | None:
    """Why a server endpoint string is unusable, or None."""
    args, _ = _split(description)
    kinds = [a.strip().lower() for a in args[:2]]
    if kinds and (kinds[0] in _TLS_ENDPOINT_TYPES or (kinds[0] == "haproxy" and kinds[1:] and kinds[1] in _TLS_ENDPOINT_TYPES)):
        return 'expected a plain endpoint such as "tcp:8443"; configure TLS in the listener\'s [tls] table'
    try:
        endpoints.serverFromString(_NoReactor(), description)
    except Exception as e:  # Twisted raises ValueError, KeyError, TypeError... for bad strings
        return f'expected a Twisted server endpoint such as "tcp:8080:interface=127.0.0.1" ({type(e).__name__}: {e})'
    address = endpoint_address(description)
    if address is not None and address[0] in ("tcp4", "tcp6") and not 0 <= address[1] <= 65535:
        return "expected a port from 0 to 65535"
    return None


def _split(description: str) -> tuple[list[str], dict[str, str]]:
    """Split on unescaped colons into positional and keyword parts, as Twisted does."""
    parts, current, escaped = [], "", False
    for ch in description:
        if escaped:
            current, escaped = current + ch, False
        elif ch == "\\":
            escaped = True
        elif ch == ":":
            parts.append(current)
            current = ""
        else:
            current += ch
    parts.append(current)
    args = [p for p in parts if "=" not in p]
    kwargs = dict(p.split("=", 1) for p in parts if "=" in p)
    return args, kwargs


def endpoint_address(description: str) -> tuple | None:
    """(family, port, interface) for TCP ("tcp4" or "tcp6"), ("unix", path) for UNIX sockets, None when unknown."""
    args, kwargs = _split(description)
    kind = args[0].lower() if args else ""
    if kind in ("tcp", "tcp6"):
        port = kwargs.get("port", args[1] if len(args) > 1 else None)
        interface = kwargs.get("interface", args[2] if len(args) > 2 else "")
        try:
            return ("tcp4" if kind == "tcp" else "tcp6", int(port), interface)
        except (TypeError, ValueError):
            return None
    if kind == "unix":
        path = kwargs.get("address", args[1] if len(args) > 1 else None)
        return ("unix", path) if path else None
    return None


def addresses_clash(a: tuple, b: tuple) -> bool:
    """Whether two listeners would try to bind the same address. An IPv6 wildcard is dual-stack on Linux, so it
    also takes the port on IPv4."""
    if a[0] == "unix" or b[0] == "unix":
        return a == b
    if a[1] != b[1] or a[1] == 0:
        return False
    if a[0] != b[0]:
        v6 = a if a[0] == "tcp6" else b
        return v6[2] in _WILDCARD_INTERFACES
    return a[2] == b[2] or a[2] in _WILDCARD_INTERFACES or b[2] in _WILDCARD_INTERFACES
