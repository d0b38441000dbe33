"""Twisted server endpoint strings: which ones a listener may use, the address each binds, and which ones clash.

Pure string handling: nothing listens.
"""

from __future__ import annotations

import pytest

from wampgate.endpoints import addresses_clash, endpoint_address, endpoint_problem
from tests.support import certs

# --- endpoint_problem -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("description", [
    "tcp:8080",
    "tcp:0",
    "tcp:8080:interface=127.0.0.1",
    "tcp:port=8080:interface=127.0.0.1",
    "tcp:8080:backlog=100",
    "tcp6:8080",
    r"tcp6:8080:interface=\:\:1",
    r"tcp6:port=8080:interface=\:\:",
    "unix:/tmp/wampgate.sock",
    "unix:address=/tmp/wampgate.sock:mode=660",
])
def test_plain_endpoints_are_accepted(description):
    """TCP, TCP6 and UNIX server endpoints, positional or keyword, are usable listener endpoints."""
    assert endpoint_problem(description) is None


@pytest.mark.parametrize("description", [
    "",
    "garbage",
    "tcp:",
    "tcp:http",
    "tcp:8080:colour=blue",
    "tcp:8080:backlog=many",
    "TCP:8080",  # Twisted's endpoint types are case-sensitive
])
def test_garbage_is_refused_with_the_reason(description):
    """A string Twisted cannot parse is refused with an example of a good one and Twisted's own reason."""
    problem = endpoint_problem(description)
    assert problem is not None
    assert problem.startswith('expected a Twisted server endpoint such as "tcp:8080:interface=127.0.0.1" (')


@pytest.mark.parametrize("description", ["ssl:8443", "ssl:8443:privateKey=key.pem:certKey=cert.pem", "SSL:8443"])
def test_ssl_endpoint_is_refused_pointing_at_tls_table(description):
    """ssl: does its own TLS, bypassing the [tls] table's explicit versions, ciphers and client-certificate checks."""
    assert endpoint_problem(description) == (
        'expected a plain endpoint such as "tcp:8443"; configure TLS in the listener\'s [tls] table'
    )


TLS_BYPASS = (
    "BUG: router/endpoints.py refuses only the 'ssl' type (_TLS_ENDPOINT_TYPES); Twisted's 'tls:' server endpoint "
    "(SNI, a directory of PEMs) and a wrapper around ssl: ('haproxy:ssl:...') are accepted, so TLS is terminated "
    "outside the [tls] table's min_version / ciphers / client_ca"
)


def test_tls_sni_endpoint_is_refused():
    """Twisted's tls: endpoint terminates TLS itself from a directory of PEMs: refused like ssl:."""
    assert endpoint_problem("tls:/etc/wampgate/certs:port=8443") is not None


def test_ssl_wrapped_in_haproxy_is_refused(tmp_path):
    """ssl: hidden inside a wrapping endpoint (haproxy:) is refused too, even when its key file exists."""
    files = certs.generate(tmp_path)
    assert endpoint_problem(f"haproxy:ssl:8443:privateKey={files.server_key}:certKey={files.server_chain}") is not None


@pytest.mark.parametrize("description", ["tcp:70000", "tcp:-1"])
def test_port_out_of_range_is_refused(description):
    """A TCP port outside 0..65535 is refused when the config is checked, not when the router starts listening."""
    assert endpoint_problem(description) is not None


# --- endpoint_address -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("description,address", [
    ("tcp:8080", ("tcp4", 8080, "")),
    ("tcp:8080:interface=127.0.0.1", ("tcp4", 8080, "127.0.0.1")),
    ("tcp:port=8080:interface=127.0.0.1", ("tcp4", 8080, "127.0.0.1")),
    ("tcp:interface=127.0.0.1:port=8080", ("tcp4", 8080, "127.0.0.1")),
    ("tcp:8080:127.0.0.1", ("tcp4", 8080, "127.0.0.1")),
    ("tcp:8080:backlog=50:interface=10.0.0.1", ("tcp4", 8080, "10.0.0.1")),
    ("tcp6:8080", ("tcp6", 8080, "")),
    (r"tcp6:8080:interface=\:\:1", ("tcp6", 8080, "::1")),
    (r"tcp6:port=8080:interface=fe80\:\:1", ("tcp6", 8080, "fe80::1")),
    ("tcp:0", ("tcp4", 0, "")),
    ("unix:/run/wampgate.sock", ("unix", "/run/wampgate.sock")),
    ("unix:address=/run/wampgate.sock:mode=660", ("unix", "/run/wampgate.sock")),
])
def test_endpoint_address_parses_ports_and_interfaces(description, address):
    """The address a listener binds, from positional or keyword parts, with escaped IPv6 colons unescaped."""
    assert endpoint_address(description) == address


@pytest.mark.parametrize("description", ["", "garbage", "tcp:", "tcp:http", "unix:", "ssl:8443"])
def test_endpoint_address_unknown_is_none(description):
    """When the address cannot be told, the answer is None (no clash check), never an exception."""
    assert endpoint_address(description) is None


# --- addresses_clash ------------------------------------------------------------------------------------------

CLASHES = [
    # same port, same or overlapping interface
    (("tcp", 9000, ""), ("tcp", 9000, ""), True),
    (("tcp", 9000, "127.0.0.1"), ("tcp", 9000, "127.0.0.1"), True),
    (("tcp", 9000, "127.0.0.1"), ("tcp", 9000, ""), True),
    (("tcp", 9000, ""), ("tcp", 9000, "127.0.0.1"), True),
    (("tcp", 9000, "0.0.0.0"), ("tcp", 9000, "127.0.0.1"), True),
    (("tcp", 9000, "::"), ("tcp", 9000, "127.0.0.1"), True),  # a dual-stack :: also takes IPv4
    # different interfaces or ports
    (("tcp", 9000, "127.0.0.1"), ("tcp", 9000, "127.0.0.2"), False),
    (("tcp", 9000, "127.0.0.1"), ("tcp", 9000, "::1"), False),
    (("tcp", 9000, ""), ("tcp", 9001, ""), False),
    # port 0: the OS picks a different free port each time
    (("tcp", 0, ""), ("tcp", 0, ""), False),
    (("tcp", 0, "127.0.0.1"), ("tcp", 0, "127.0.0.1"), False),
    # UNIX sockets
    (("unix", "/run/a.sock"), ("unix", "/run/a.sock"), True),
    (("unix", "/run/a.sock"), ("unix", "/run/b.sock"), False),
    (("unix", "/run/a.sock"), ("tcp", 9000, ""), False),
    (("tcp", 9000, ""), ("unix", "/run/a.sock"), False),
]


@pytest.mark.parametrize("a,b,clash", CLASHES)
def test_addresses_clash_truth_table(a, b, clash):
    """Two listeners clash when they would bind the same port on the same or an overlapping interface."""
    assert addresses_clash(a, b) is clash


@pytest.mark.parametrize("a,b", [(a, b) for a, b, _ in CLASHES])
def test_addresses_clash_is_symmetric(a, b):
    """The answer does not depend on which listener comes first in the file."""
    assert addresses_clash(a, b) == addresses_clash(b, a)


def test_ipv4_wildcard_does_not_clash_with_ipv6_loopback():
    """tcp:9000 binds 0.0.0.0 only; an IPv6 listener on [::1]:9000 is a different socket and may coexist."""
    assert not addresses_clash(endpoint_address("tcp:9000"), endpoint_address(r"tcp6:9000:interface=\:\:1"))


# --- systemd socket activation ------------------------------------------------------------------------------------


@pytest.mark.parametrize("description", [
    "systemd:domain=INET:index=0",
    "systemd:domain=INET6:index=1",
    "systemd:domain=UNIX:name=wampgate",
    "haproxy:systemd:domain=INET:index=0",
])
def test_systemd_endpoints_are_accepted_without_inherited_sockets(description):
    """systemd: strings are checked from the string alone (this process inherited no socket): check-config and the
    service build work outside systemd, and the socket is looked up only when listening."""
    assert endpoint_problem(description) is None
    assert endpoint_address(description) is None  # an inherited socket's address is unknown: no clash check


@pytest.mark.parametrize("description, detail", [
    ("systemd:domain=INET", "; give exactly one of index= and name="),
    ("systemd:domain=INET:index=0:name=web", "; give exactly one of index= and name="),
    ("systemd:domain=IPX:index=0", ""),
    ("systemd:index=0", ""),
    ("systemd:domain=INET:index=-1", "; index counts the sockets from 0"),
    ("systemd:domain=INET:index=one", "; index counts the sockets from 0"),
    ("systemd:domain=UNIX:name=", "; name= is the socket unit's FileDescriptorName"),
    ("systemd:domain=INET:index=0:backlog=5", "; unexpected: backlog="),
    ("systemd:INET:0", "; unexpected: INET, 0"),
])
def test_bad_systemd_endpoints_say_what_is_expected(description, detail):
    """A malformed systemd: string is refused with an example of each form, the domains allowed and what is
    wrong, never an IndexError."""
    assert endpoint_problem(description) == (
        'expected a socket systemd passes, such as "systemd:domain=INET:index=0" or '
        '"systemd:domain=INET6:name=wampgate" (domain INET, INET6 or UNIX, and one of index= or name=)' + detail)
