"""`wampgate init DIR`: a new directory with a production-shaped config and everything it needs, which passes
`wampgate check-config` and serves TLS clients under `twistd wampgate` as written (only the port chosen), and which
never overwrites anything."""

from __future__ import annotations

import contextlib
import signal
import socket
import ssl
import stat
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import jwt
import pytest
import pytest_twisted

from tests.integration.test_twistd import Output, wait_for_lines
from tests.support import auth_clients as auth
from tests.support.clients import Target
from tests.support.flow import upgrade
from tests.support.wait import free_port
from wampgate.passwords import verify_secret

BIN = Path(sys.executable).parent  # the venv running the tests
WAMPGATE, TWISTD = BIN / "wampgate", BIN / "twistd"
START_TIMEOUT = STOP_TIMEOUT = 20.0
AUTHENTICATION_FAILED = "wamp.error.authentication_failed"


def init(directory: Path, *options: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(WAMPGATE), "init", str(directory), *options], capture_output=True, text=True,
                          timeout=60)


def printed_secret(stdout: str) -> str:
    """The ticket secret: the line after the one announcing it."""
    lines = stdout.splitlines()
    announced = [i for i, line in enumerate(lines) if line.startswith('Ticket secret of authid "backend"')]
    assert len(announced) == 1, stdout
    return lines[announced[0] + 1].strip()


def test_init_writes_a_checked_production_shaped_config(tmp_path):
    """The directory gets router.toml, tls/cert.pem and tls/key.pem, jwt/issuer.key.pem and jwt/issuer.pub.pem;
    the private keys are 0600; the config listens with TLS on 127.0.0.1 only, has an Origin allow-list with the
    placeholder, JWT roles restricted to "user" and a ticket principal whose hash verifies the secret printed once
    (which is in no file); `wampgate check-config` accepts it."""
    directory = tmp_path / "new" / "deploy"
    done = init(directory, "--port", "18443")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    secret = printed_secret(done.stdout)
    assert len(secret) >= 32

    files = sorted(str(path.relative_to(directory)) for path in directory.rglob("*") if path.is_file())
    assert files == ["jwt/issuer.key.pem", "jwt/issuer.pub.pem", "router.toml", "tls/cert.pem", "tls/key.pem"]
    for private in ("tls/key.pem", "jwt/issuer.key.pem"):
        assert stat.S_IMODE((directory / private).stat().st_mode) == 0o600, private
    for path in directory.rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(encoding="utf-8"), path

    config = tomllib.loads((directory / "router.toml").read_text(encoding="utf-8"))
    (listener,) = config["listeners"]
    assert listener["endpoint"] == "tcp:18443:interface=127.0.0.1"
    assert listener["tls"]["certificate"] == "tls/cert.pem" and listener["tls"]["private_key"] == "tls/key.pem"
    assert listener["websocket"]["allowed_origins"] == ["https://app.example.com"]
    assert "anonymous" not in listener["auth"]
    assert listener["auth"]["jwt"]["roles"] == ["user"]
    (principal,) = listener["auth"]["ticket"]["principals"]
    assert (principal["authid"], principal["role"]) == ("backend", "backend")
    assert verify_secret(secret, principal["secret_hash"])

    check = subprocess.run([str(WAMPGATE), "check-config", str(directory / "router.toml")], capture_output=True,
                           text=True, timeout=60)
    assert check.returncode == 0, check.stderr
    assert "listener public: tcp:18443:interface=127.0.0.1 (TLS) websocket + rawsocket; authentication: ticket, jwt" \
        in check.stdout


def test_init_refuses_a_directory_that_is_not_empty(tmp_path):
    """A directory holding anything (even one unrelated file), or a path that is a file, is refused with exit status
    1 and a message naming it; nothing in it is touched. An existing empty directory is used."""
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "router.toml").write_text("# mine\n")
    done = init(occupied)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (f"wampgate init: {occupied} is not empty: wampgate init writes only into a new or empty "
                           "directory, so it never overwrites a config or a key\n")
    assert [path.name for path in occupied.iterdir()] == ["router.toml"]
    assert (occupied / "router.toml").read_text() == "# mine\n"

    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    done = init(a_file)
    assert (done.returncode, done.stderr) == (1, f"wampgate init: {a_file} exists and is not a directory\n")

    empty = tmp_path / "empty"
    empty.mkdir()
    assert init(empty).returncode == 0
    assert (empty / "router.toml").is_file()


@contextlib.contextmanager
def running_twistd(config: Path, cwd: Path):
    """`twistd -n wampgate --config` in `cwd`, until its 'ready' line (bounded); stopped with SIGTERM afterwards."""
    process = subprocess.Popen([str(TWISTD), "-n", "--pidfile=", "wampgate", "--config", str(config)], cwd=cwd,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stdout, stderr = Output(process.stdout), Output(process.stderr)
    try:
        wait_for_lines(process, stdout, "ready: SIGHUP reloads", 1, START_TIMEOUT)
        yield stdout
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STOP_TIMEOUT) in (0, -signal.SIGTERM), stdout.text() + stderr.text()
        stdout.join()
        stderr.join()
        assert "Traceback" not in stdout.text() + stderr.text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


def upgrade_status(port: int, certificate: Path, origin: str) -> int:
    """The HTTP status of a WebSocket upgrade with `origin`, sent by Python's TLS client trusting `certificate` for
    the name localhost (blocking, bounded; the router runs in another process)."""
    context = ssl.create_default_context(cafile=str(certificate))
    with socket.create_connection(("127.0.0.1", port), timeout=10) as tcp:
        with context.wrap_socket(tcp, server_hostname="localhost") as tls:
            tls.sendall(upgrade(extra={"Origin": origin}))
            head = b""
            while b"\r\n" not in head and len(head) < 4096:
                chunk = tls.recv(4096)
                if not chunk:
                    break
                head += chunk
    return int(head.split(b" ", 2)[1])


def token(private_key: Path, role: str) -> str:
    """A token for authid carol as the identity provider `init` stands in for would issue it."""
    claims = {"sub": "carol", "role": role, "iss": "https://login.example.com/", "aud": "wampgate",
              "exp": int(time.time()) + 600}
    return jwt.encode(claims, private_key.read_text(), algorithm="ES256")


@pytest.mark.slow
@pytest_twisted.ensureDeferred
async def test_init_config_serves_tls_clients_under_twistd(tmp_path):
    """Under `twistd wampgate`, started from another directory with the config's relative paths: the ticket principal
    joins realm app with the printed secret over TLS WebSocket and TLS RawSocket (trusting tls/cert.pem, checked
    for the name localhost), a token signed with jwt/issuer.key.pem joins as carol/user, and a token claiming the
    backend role is refused (ABORT authentication_failed) because JWT roles are restricted; a browser page from the
    placeholder origin may connect, one from another origin may not."""
    port = free_port()
    done = init(tmp_path / "deploy", "--port", str(port))
    assert done.returncode == 0, done.stderr
    secret = printed_secret(done.stdout)
    certificate, private_key = tmp_path / "deploy" / "tls" / "cert.pem", tmp_path / "deploy" / "jwt" / "issuer.key.pem"

    with running_twistd(Path("deploy") / "router.toml", cwd=tmp_path):
        for transport in ("websocket", "rawsocket"):
            target = Target(port, transport=transport, tls_ca=certificate)
            session = await auth.join(target, "app", authmethods=["ticket"], authid="backend",
                                      answer=auth.ticket(secret))
            assert (session.welcome.authid, session.welcome.authrole, session.welcome.authmethod) == (
                "backend", "backend", "ticket")
            await auth.leave(session)

        target = Target(port, tls_ca=certificate)
        session = await auth.join(target, "app", authmethods=["jwt"], answer=auth.token(token(private_key, "user")))
        assert (session.welcome.authid, session.welcome.authrole, session.welcome.authmethod) == (
            "carol", "user", "jwt")
        await auth.leave(session)

        refusal = await auth.refused(target, "app", authmethods=["jwt"],
                                     answer=auth.token(token(private_key, "backend")))
        assert refusal.reason == AUTHENTICATION_FAILED

        assert upgrade_status(port, certificate, "https://app.example.com") == 101
        assert upgrade_status(port, certificate, "https://elsewhere.example") == 403
