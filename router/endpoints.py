"""Twisted server endpoint strings: checked without listening, compared for address clashes, and turned into
endpoints (a `systemd:` one adopts the socket systemd passed when it listens)."""

from __future__ import annotations

import os
import socket

from twisted.internet import defer, endpoints
from twisted.internet.interfaces import IStreamServerEndpoint
from twisted.protocols.haproxy import proxyEndpoint
from zope.interface import implementer

# Endpoint types that do their own TLS: refused, because TLS is configured in the listener's [tls] table
# where its minimum version, ciphers and client-certificate checks are explicit.
_TLS_ENDPOINT_TYPES = ("ssl", "tls")
_WILDCARD_INTERFACES = ("", "0.0.0.0", "::")
_SYSTEMD_DOMAINS = ("INET", "INET6", "UNIX")
_SYSTEMD_EXAMPLE = ('expected a socket systemd passes, such as "systemd:domain=INET:index=0" or '
                    '"systemd:domain=INET6:name=wampgate" (domain INET, INET6 or UNIX, and one of index= or name=)')


class _NoReactor:
    """Stands in for the reactor while parsing: endpoint constructors only store it."""


def endpoint_problem(description: str) -> str | None:
    """Why a server endpoint string is unusable, or None."""
    args, _ = _split(description)
    kinds = [a.strip().lower() for a in args[:2]]
    if kinds and (kinds[0] in _TLS_ENDPOINT_TYPES or (kinds[0] == "haproxy" and kinds[1:] and kinds[1] in _TLS_ENDPOINT_TYPES)):
        return 'expected a plain endpoint such as "tcp:8443"; configure TLS in the listener\'s [tls] table'
    systemd = _systemd_part(description)
    if systemd is not None:
        return _systemd_problem(systemd)
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


# -- systemd socket activation ---------------------------------------------------------------------------------------


def _systemd_part(description: str) -> str | None:
    """The `systemd:...` string, alone or inside `haproxy:`; None for any other endpoint."""
    kind, _, rest = description.partition(":")
    if kind.strip() == "haproxy":
        kind, _, rest = rest.partition(":")
    return f"systemd:{rest}" if kind.strip() == "systemd" else None


def _systemd_arguments(description: str) -> tuple[str | None, str | None, str | None, list[str]]:
    """(domain, index, name, unexpected parts) of a systemd: string; only the keyword form is taken."""
    args, kwargs = _split(description)
    domain, index, name = kwargs.pop("domain", None), kwargs.pop("index", None), kwargs.pop("name", None)
    return domain, index, name, args[1:] + [f"{key}=" for key in kwargs]


def _systemd_problem(description: str) -> str | None:
    """Checked from the string alone: check-config runs without the sockets systemd passes at start."""
    domain, index, name, unexpected = _systemd_arguments(description)
    if unexpected:
        return f"{_SYSTEMD_EXAMPLE}; unexpected: {', '.join(unexpected)}"
    if domain not in _SYSTEMD_DOMAINS:
        return _SYSTEMD_EXAMPLE
    if (index is None) == (name is None):
        return f"{_SYSTEMD_EXAMPLE}; give exactly one of index= and name="
    if index is not None and not (index.isdigit() and index.isascii()):
        return f"{_SYSTEMD_EXAMPLE}; index counts the sockets from 0"
    if name is not None and not name:
        return f"{_SYSTEMD_EXAMPLE}; name= is the socket unit's FileDescriptorName"
    return None


def server_endpoint(reactor, description: str):
    """The endpoint a listener listens on; a `systemd:` one finds its socket only when it listens, so building the
    router (check-config included) never needs the sockets."""
    systemd = _systemd_part(description)
    if systemd is None:
        return endpoints.serverFromString(reactor, description)
    endpoint = InheritedSocketEndpoint(reactor, systemd)
    return proxyEndpoint(endpoint) if systemd != description else endpoint


class NoInheritedSocket(Exception):
    """The socket a systemd: endpoint names was not passed to this process, or is not what the endpoint says."""


@implementer(IStreamServerEndpoint)
class InheritedSocketEndpoint:
    """A listening socket systemd opened and passed, adopted by Twisted's own systemd: endpoint once its family and
    type are checked against the endpoint string.

    Twisted reads LISTEN_FDS and LISTEN_PID once, when twisted.internet.endpoints is imported, and removes them from
    the environment (so nothing adopts a socket twice); its parser is therefore the only one that knows the
    sockets, and it is asked only here, when listening."""

    def __init__(self, reactor, description: str):
        self._reactor = reactor
        self._description = description

    def listen(self, factory) -> defer.Deferred:
        domain, index, name, _ = _systemd_arguments(self._description)
        try:
            adopted = self._adopted(index, name)
            _check_socket(adopted.fileno, getattr(socket, f"AF_{domain}"), domain)
        except NoInheritedSocket:
            return defer.fail()
        return adopted.listen(factory)

    def _adopted(self, index: str | None, name: str | None):
        try:
            return endpoints.serverFromString(self._reactor, self._description)
        except (IndexError, KeyError):
            pass
        wanted = f"named {name!r}" if name is not None else f"at index {index}"
        names = os.environ.get("LISTEN_FDNAMES")
        passed = f"names passed: {names.replace(':', ', ')}" if names else "none passed to this process"
        raise NoInheritedSocket(f"systemd passed no socket {wanted} ({passed}); start Wampgate through its .socket "
                                "unit, which sets LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID, or use a tcp: endpoint")


def _check_socket(fileno: int, family: int, domain: str) -> None:
    """Adopting a socket of another family or a datagram socket would fail later with an obscure error."""
    try:
        with socket.socket(fileno=os.dup(fileno)) as probe:
            found_family, found_type = probe.family, probe.type
    except OSError as e:
        raise NoInheritedSocket(f"inherited descriptor {fileno} is not a usable socket: {e.strerror or e}") from None
    if found_family != family:
        raise NoInheritedSocket(f"the inherited socket is {found_family.name}, but the endpoint says domain={domain}")
    if found_type != socket.SOCK_STREAM:
        raise NoInheritedSocket("the inherited socket is not a stream socket; expected ListenStream= in the socket unit")


# -- sockets a workers' parent opened (`[cluster] workers`) -----------------------------------------------------------

_DOMAINS = {socket.AF_INET: "INET", socket.AF_INET6: "INET6", socket.AF_UNIX: "UNIX"}


def shared_socket_name(index: int, family: int) -> str | None:
    """The LISTEN_FDNAMES entry for listener `index`'s socket, e.g. "listener0.INET6"; None for a family a worker
    cannot adopt."""
    domain = _DOMAINS.get(family)
    return f"listener{index}.{domain}" if domain is not None else None


def inherited_endpoint(description: str, index: int, names: list[str]) -> str:
    """The endpoint a worker listens on instead of `description`: the `systemd:` endpoint that adopts the socket its
    parent opened and passed the systemd way (LISTEN_FDS, LISTEN_FDNAMES), keeping a `haproxy:` prefix. Raises
    NoInheritedSocket when the parent passed none for this listener."""
    wanted = f"listener{index}."
    found = [name for name in names if name.startswith(wanted)]
    if not found:
        raise NoInheritedSocket(f"the workers' parent passed no socket for listener {index} (passed: "
                                f"{', '.join(names) or 'none'})")
    adopted = f"systemd:domain={found[0][len(wanted):]}:name={found[0]}"
    return f"haproxy:{adopted}" if description.partition(":")[0].strip() == "haproxy" else adopted
