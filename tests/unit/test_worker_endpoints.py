"""A worker's listeners adopt the sockets its parent passed (wampgate.endpoints.inherited_endpoint): the systemd:
endpoint for the listener's own socket, a haproxy: prefix kept, and a clear error when the parent passed none."""

from __future__ import annotations

import socket

import pytest

from wampgate.endpoints import NoInheritedSocket, endpoint_problem, inherited_endpoint, shared_socket_name


def test_each_family_gets_a_name_that_says_its_domain():
    assert shared_socket_name(0, socket.AF_INET) == "listener0.INET"
    assert shared_socket_name(2, socket.AF_INET6) == "listener2.INET6"
    assert shared_socket_name(1, socket.AF_UNIX) == "listener1.UNIX"
    assert shared_socket_name(0, socket.AF_PACKET) is None


def test_a_listener_adopts_its_own_socket_by_name_and_keeps_haproxy():
    names = ["listener0.INET", "listener1.UNIX", "listener10.INET6"]
    assert inherited_endpoint("tcp:8080", 0, names) == "systemd:domain=INET:name=listener0.INET"
    assert inherited_endpoint("unix:/run/wg.sock", 1, names) == "systemd:domain=UNIX:name=listener1.UNIX"
    assert inherited_endpoint("haproxy:tcp6:8080", 10, names) == "haproxy:systemd:domain=INET6:name=listener10.INET6"
    for index, name in enumerate(names[:2]):
        assert endpoint_problem(inherited_endpoint("tcp:1", index, names)) is None


def test_no_socket_for_a_listener_is_a_clear_error():
    with pytest.raises(NoInheritedSocket, match=r"passed no socket for listener 1 \(passed: listener0.INET\)"):
        inherited_endpoint("tcp:8081", 1, ["listener0.INET"])
    with pytest.raises(NoInheritedSocket, match=r"passed: none"):
        inherited_endpoint("tcp:8081", 0, [])
