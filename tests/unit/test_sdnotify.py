"""sd_notify: the datagrams systemd reads on NOTIFY_SOCKET, received here on a real AF_UNIX datagram socket (a path
in tmp_path, or a name in Linux's abstract namespace)."""

from __future__ import annotations

import contextlib
import secrets
import socket
import time

import pytest
from twisted.logger import LogLevel

from wampgate.sdnotify import SystemdNotifier
from tests.support.logcapture import captured_log

RECEIVE_TIMEOUT = 5.0


@contextlib.contextmanager
def listening(address):
    """A bound datagram socket standing in for systemd's notification socket."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(RECEIVE_TIMEOUT)
        yield sock


def fields(datagram: bytes) -> dict[str, str]:
    return dict(line.split("=", 1) for line in datagram.decode().split("\n"))




def test_ready_reloading_stopping_on_a_socket_path(tmp_path):
    """READY=1, then RELOADING=1 with MONOTONIC_USEC (CLOCK_MONOTONIC in microseconds, taken when sent), then
    STOPPING=1, each with its STATUS line, one datagram each and in order."""
    path = tmp_path / "notify.sock"
    with listening(str(path)) as sock:
        notifier = SystemdNotifier.from_environment({"NOTIFY_SOCKET": str(path)})
        assert notifier.enabled
        notifier.ready("serving 2 listener(s)")
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        notifier.reloading("reloading router.toml")
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        notifier.stopping("shutting down")
        ready, reloading, stopping = (fields(sock.recv(4096)) for _ in range(3))
    assert ready == {"READY": "1", "STATUS": "serving 2 listener(s)"}
    assert reloading.keys() == {"RELOADING", "MONOTONIC_USEC", "STATUS"}
    assert reloading["RELOADING"] == "1" and reloading["STATUS"] == "reloading router.toml"
    assert before <= int(reloading["MONOTONIC_USEC"]) <= after
    assert stopping == {"STOPPING": "1", "STATUS": "shutting down"}


def test_abstract_namespace_socket():
    """NOTIFY_SOCKET="@name" is a socket in the abstract namespace (no file): the leading @ stands for a NUL byte."""
    name = f"wampgate-test-{secrets.token_hex(8)}"
    with listening(b"\0" + name.encode()) as sock:
        SystemdNotifier.from_environment({"NOTIFY_SOCKET": f"@{name}"}).ready("up")
        assert fields(sock.recv(4096)) == {"READY": "1", "STATUS": "up"}


def test_a_newline_in_a_status_cannot_add_a_field(tmp_path):
    """A status text with a newline (a file name, say) is flattened, so it cannot forge READY=1 or another field."""
    path = tmp_path / "notify.sock"
    with listening(str(path)) as sock:
        SystemdNotifier(str(path)).stopping("file a\nREADY=1")
        assert fields(sock.recv(4096)) == {"STOPPING": "1", "STATUS": "file a READY=1"}


def test_without_notify_socket_nothing_is_sent():
    """Outside systemd (no NOTIFY_SOCKET, or an empty one) the notifier is off and every call is a no-op."""
    for environ in ({}, {"NOTIFY_SOCKET": ""}):
        notifier = SystemdNotifier.from_environment(environ)
        assert not notifier.enabled
        notifier.ready("up")
        notifier.reloading("r")
        notifier.stopping("s")


@pytest.mark.parametrize("value", ["relative/path.sock", "@", "vsock:2:1234"])
def test_unusable_address_is_logged_and_ignored(value):
    """A NOTIFY_SOCKET that is neither an absolute path nor an @abstract name turns notification off with one
    warning naming it, instead of failing start-up."""
    with captured_log() as log:
        notifier = SystemdNotifier(value)
        notifier.ready("up")
    assert not notifier.enabled
    assert log == [(LogLevel.warn, f"NOTIFY_SOCKET={value!r} is neither a socket path nor an @abstract name; "
                                   "systemd will not hear that the router is ready")]


def test_unreachable_socket_is_logged_not_raised(tmp_path):
    """A socket that went away (systemd restarted) costs a warning per message, never the router."""
    with captured_log() as log:
        SystemdNotifier(str(tmp_path / "gone.sock")).ready("up")
    assert [level for level, _ in log] == [LogLevel.warn]
    assert log[0][1].startswith("cannot notify systemd through NOTIFY_SOCKET: ")
