"""`make demo`: set up and start the Pricewatch demo -- Wampgate on pricewatch.toml plus the backend component -- and
say how to sign in. Ctrl-C stops both.

    .venv/bin/python examples/pricewatch/run.py

The page is at http://127.0.0.1:8088/ (the password user is alice / wonderland); a token for the JWT login is
printed at start, signed with this checkout's demo secret and valid for 8 hours.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import jwt

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import setup_web  # noqa: E402  (this directory, not a package)

CONFIG = HERE / "pricewatch.toml"
WEB_PORT, BACKEND_PORT = 8088, 8089
PAGE = f"http://127.0.0.1:{WEB_PORT}/"
START_TIMEOUT = 20.0
TOKEN_LIFETIME = 8 * 3600
ISSUER, AUDIENCE = "pricewatch-demo", "pricewatch"


def demo_token(secret: bytes, user: str = "carol", lifetime: float = TOKEN_LIFETIME) -> str:
    """A JWT the router accepts for `user` as a viewer, as the demo's identity provider would issue it."""
    now = int(time.time())
    claims = {"sub": user, "role": "viewer", "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + int(lifetime)}
    return jwt.encode(claims, secret, algorithm="HS256")


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the router exited with status {process.returncode}; see its log above")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"the router did not listen on 127.0.0.1:{port} within {timeout:.0f} s")


def start_router() -> subprocess.Popen:
    twistd = Path(sys.executable).with_name("twistd")
    command = [str(twistd), "--nodaemon", "--pidfile=", "--logger", "wampgate.tx.logs.text", "wampgate",
               "--config", str(CONFIG)]
    return subprocess.Popen(command)


def start_backend() -> subprocess.Popen:
    command = [sys.executable, str(HERE / "backend.py"), "--router", f"rs://127.0.0.1:{BACKEND_PORT}"]
    return subprocess.Popen(command)


def stop(*processes: subprocess.Popen) -> None:
    """SIGTERM (both stop cleanly on it), then wait; kill what is still running after 10 s."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main() -> int:
    # Ctrl-C and SIGTERM both stop the demo, even when started with SIGINT ignored (e.g. in the background).
    signal.signal(signal.SIGINT, _interrupt)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        setup_web.install_browser_client()
        secret = setup_web.ensure_jwt_secret()
    except setup_web.SetupError as e:
        print(f"pricewatch set-up failed: {e}", file=sys.stderr)
        return 1
    router = start_router()
    processes = [router]
    try:
        wait_for_port(WEB_PORT, router)
        processes.append(start_backend())
        print(f"\n  Pricewatch is running: open {PAGE}\n"
              f"  Password login: alice / wonderland\n"
              f"  Token login (JWT for carol, valid 8 h):\n  {demo_token(secret)}\n"
              f"  Ctrl-C stops the router and the backend.\n", flush=True)
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stop(*processes)


if __name__ == "__main__":
    sys.exit(main())
