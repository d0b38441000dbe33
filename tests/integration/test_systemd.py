"""Running under systemd, checked with the real `twistd wampgate` in a subprocess: socket activation (a listening
socket inherited as fd 3 with LISTEN_FDS / LISTEN_PID / LISTEN_FDNAMES) and sd_notify readiness messages on a real
AF_UNIX datagram socket; also a renewed certificate picked up on SIGHUP, checked with a TLS client.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import textwrap
import time

import pytest
from cryptography import x509

from wampgate.cli import main as wampgate
from tests.integration.test_twistd import (
    REALM1, START_TIMEOUT, STOP_TIMEOUT, Output, free_port, listener_toml, port_is_free, run_client, stop,
    twistd_command, wait_for_lines,
)
from tests.support import certs

ACTIVATED = "systemd:domain=INET:index=0"
NOTIFY_TIMEOUT = 10.0

# What systemd does between fork and exec: the socket becomes fd 3, LISTEN_PID names the process that will run.
# (LISTEN_PID must be the pid of the process that reads it, so it is set after the fork, then twistd is exec'd.)
ACTIVATE = textwrap.dedent("""
    import os, sys
    inherited = int(sys.argv[1])
    os.dup2(inherited, 3)
    if inherited != 3:
        os.close(inherited)
    os.environ["LISTEN_PID"] = str(os.getpid())
    os.execv(sys.argv[2], sys.argv[2:])
""")


def activated_config(tmp_path):
    config = tmp_path / "router.toml"
    text = listener_toml("main", 0, '["websocket", "rawsocket"]') + REALM1
    config.write_text(text.replace('endpoint = "tcp:0:interface=127.0.0.1"', f'endpoint = "{ACTIVATED}"'))
    return config


@contextlib.contextmanager
def spawned(command, env, pass_fds=()):
    """twistd in a subprocess with its output collected; always killed afterwards."""
    process = subprocess.Popen(command, env=env, pass_fds=pass_fds, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    try:
        yield process, Output(process.stdout), Output(process.stderr)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


def test_check_config_accepts_a_systemd_endpoint(tmp_path, capsys):
    """`wampgate check-config` on a systemd: listener passes without the sockets systemd passes at start (it used
    to end in IndexError) and lists the endpoint as written."""
    assert wampgate(["check-config", str(activated_config(tmp_path))]) == 0
    out = capsys.readouterr()
    assert out.err == ""
    assert out.out.splitlines()[0] == (f"listener main: {ACTIVATED} (plain) websocket + rawsocket; authentication: "
                                       "anonymous")


def test_socket_activation_adopts_the_inherited_socket_and_serves(tmp_path):
    """A listening socket opened by the parent (as systemd does) and passed as fd 3 with LISTEN_FDS=1, LISTEN_PID
    and LISTEN_FDNAMES: twistd listens on it (the log names its address), serves real Autobahn clients over
    WebSocket and RawSocket, and after SIGTERM the port is closed (the parent's copy closed too)."""
    inherited = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    inherited.bind(("127.0.0.1", 0))
    inherited.listen(16)
    port = inherited.getsockname()[1]
    env = dict(os.environ, LISTEN_FDS="1", LISTEN_FDNAMES="wampgate.socket")
    command = [sys.executable, "-c", ACTIVATE, str(inherited.fileno())] + twistd_command(activated_config(tmp_path))
    with spawned(command, env, pass_fds=(inherited.fileno(),)) as (process, stdout, stderr):
        inherited.close()
        wait_for_lines(process, stdout, "ready: SIGHUP reloads", 1, START_TIMEOUT)
        listening = [line for line in stdout.lines if "listening on" in line]
        assert any(line.endswith(f"listener main listening on ws://127.0.0.1:{port}/ws + rawsocket://127.0.0.1:"
                                 f"{port}") for line in listening), stdout.text()
        for url in (f"ws://127.0.0.1:{port}/ws", f"rs://127.0.0.1:{port}"):
            client = run_client(url)
            assert [line for line in client.stdout.splitlines() if line.startswith("OK ")] == [
                'OK [1, "two"] {"three": 3} anonymous'], (url, client.stdout, client.stderr)
        assert stop(process, stdout, stderr) in (0, -signal.SIGTERM)
    assert "Traceback" not in stdout.text() + stderr.text()
    assert port_is_free(port)


def test_systemd_endpoint_without_an_inherited_socket_stops_start_up_in_one_line(tmp_path):
    """Started by hand (no LISTEN_* variables), a systemd: listener stops start-up with one line saying no socket was
    passed and what to do (logged, as a busy port is, since twistd's log has begun by then), exit status 1, no
    traceback, nothing else at error level."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("LISTEN_")}
    result = subprocess.run(twistd_command(activated_config(tmp_path)), env=env, capture_output=True, text=True,
                            timeout=START_TIMEOUT + STOP_TIMEOUT)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    errors = [line for line in output.splitlines() if "#error]" in line or "#critical]" in line]
    assert len(errors) == 1 and errors[0].endswith(
        f"listener main cannot listen on {ACTIVATED}: systemd passed no socket at index 0 (none passed to this "
        "process); start Wampgate through its .socket unit, which sets LISTEN_FDS, LISTEN_FDNAMES and LISTEN_PID, "
        "or use a tcp: endpoint"), output
    assert "Traceback" not in output


def test_an_inherited_datagram_socket_is_refused_by_name(tmp_path):
    """A socket unit with ListenDatagram= passes a UDP socket: start-up stops with one line saying it is not a
    stream socket (Twisted would adopt it and fail obscurely), exit status 1, no traceback."""
    inherited = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    inherited.bind(("127.0.0.1", 0))
    env = dict(os.environ, LISTEN_FDS="1", LISTEN_FDNAMES="wampgate.socket")
    command = [sys.executable, "-c", ACTIVATE, str(inherited.fileno())] + twistd_command(activated_config(tmp_path))
    with spawned(command, env, pass_fds=(inherited.fileno(),)) as (process, stdout, stderr):
        inherited.close()
        assert process.wait(timeout=START_TIMEOUT + STOP_TIMEOUT) == 1
        stdout.join()
        stderr.join()
    output = stdout.text() + stderr.text()
    errors = [line for line in output.splitlines() if "#error]" in line or "#critical]" in line]
    assert len(errors) == 1 and errors[0].endswith(
        f"listener main cannot listen on {ACTIVATED}: the inherited socket is not a stream socket; expected "
        "ListenStream= in the socket unit"), output
    assert "Traceback" not in output


# -- sd_notify ---------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def notify_socket(tmp_path):
    """A datagram socket where the router sends its sd_notify messages, as systemd's would receive them."""
    path = tmp_path / "notify.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(path))
        sock.settimeout(NOTIFY_TIMEOUT)
        yield sock, path


def next_message(sock) -> dict[str, str]:
    return dict(line.split("=", 1) for line in sock.recv(4096).decode().split("\n"))


def test_sd_notify_ready_reloading_and_stopping(tmp_path):
    """With NOTIFY_SOCKET set: READY=1 once the listeners are open (a client is served right after it), on SIGHUP
    RELOADING=1 with a MONOTONIC_USEC taken after the signal was sent, then READY=1; on SIGTERM STOPPING=1; and
    nothing else, in that order."""
    port = free_port()
    config = tmp_path / "router.toml"
    config.write_text(listener_toml("main", port, '["websocket"]') + REALM1)
    with notify_socket(tmp_path) as (sock, path):
        env = dict(os.environ, NOTIFY_SOCKET=str(path))
        with spawned(twistd_command(config), env) as (process, stdout, stderr):
            ready = next_message(sock)
            assert ready == {"READY": "1", "STATUS": f"serving 1 listener(s) from {config}"}
            client = run_client(f"ws://127.0.0.1:{port}/ws")
            assert client.stdout.startswith("OK "), client.stdout + client.stderr

            signalled = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            process.send_signal(signal.SIGHUP)
            reloading = next_message(sock)
            assert reloading["RELOADING"] == "1" and reloading["STATUS"] == f"reloading {config}"
            assert signalled <= int(reloading["MONOTONIC_USEC"]) <= time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
            assert next_message(sock) == ready

            assert stop(process, stdout, stderr) in (0, -signal.SIGTERM)
            assert next_message(sock) == {"STOPPING": "1",
                                          "STATUS": "shutting down: draining calls and closing sessions"}
        sock.setblocking(False)
        with pytest.raises(BlockingIOError):  # the process is gone: every datagram it sent has arrived
            sock.recv(4096)


# -- certificate renewal, as an operator does it ------------------------------------------------------------------


def presented_serial(port: int, ca_path) -> int:
    """Connect with Python's own TLS client, trusting only the test CA; the serial of the certificate served."""
    context = ssl.create_default_context(cafile=str(ca_path))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return x509.load_der_x509_certificate(tls.getpeercert(binary_form=True)).serial_number


def test_sighup_after_renewal_serves_the_new_certificate(tmp_path):
    """twistd serves certificate A; B is copied over the same files and SIGHUP sent: once the reload is logged, a
    TLS client sees B's serial; the router neither warns nor errs."""
    ca = certs.issuer(tmp_path)
    a, b = certs.server_certificate(ca, tmp_path, "a"), certs.server_certificate(ca, tmp_path, "b")
    chain, key = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    shutil.copyfile(a.chain, chain)
    shutil.copyfile(a.key, key)
    port = free_port()
    config = tmp_path / "router.toml"
    config.write_text(listener_toml("main", port, '["websocket"]')
                      + f'[listeners.tls]\ncertificate = "{chain}"\nprivate_key = "{key}"\n' + REALM1)
    with spawned(twistd_command(config), dict(os.environ)) as (process, stdout, stderr):
        wait_for_lines(process, stdout, "ready: SIGHUP reloads", 1, START_TIMEOUT)
        assert presented_serial(port, ca.path) == a.certificate.serial_number
        shutil.copyfile(b.chain, chain)
        shutil.copyfile(b.key, key)
        process.send_signal(signal.SIGHUP)
        wait_for_lines(process, stdout, f"reloaded {config}", 1, START_TIMEOUT)
        assert presented_serial(port, ca.path) == b.certificate.serial_number
        assert stop(process, stdout, stderr) in (0, -signal.SIGTERM)
    assert [line for line in stdout.lines if "loaded the new certificate" in line]
    assert not [line for line in stdout.lines if "#warn]" in line or "#error]" in line], stdout.text()
