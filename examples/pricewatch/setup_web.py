"""Set-up for the Pricewatch demo, run by `make demo` (through run.py) and by the browser test.

- Installs autobahn-browser, pinned in this directory's package.json and package-lock.json, from the npm registry,
  and copies its built file to web/vendor/autobahn.min.js. Neither node_modules/ nor web/vendor/ is committed.
- Creates the shared secret the router checks demo JWTs with (secrets/jwt-hs256.key, random, readable by the owner
  only) unless it exists. It is never committed either: every checkout signs with its own.

    python examples/pricewatch/setup_web.py
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
WEB = HERE / "web"
BROWSER_BUILD = Path("node_modules") / "autobahn-browser" / "autobahn.min.js"
VENDORED = WEB / "vendor" / "autobahn.min.js"
JWT_SECRET = HERE / "secrets" / "jwt-hs256.key"
NPM_TIMEOUT = 300


class SetupError(Exception):
    """The demo cannot be set up; the message says why and what to do."""


def _version(package_json: Path, *keys: str) -> str | None:
    try:
        data = json.loads(package_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for key in keys:
        data = data.get(key, {}) if isinstance(data, dict) else {}
    return data if isinstance(data, str) else None


def install_browser_client(directory: Path = HERE, *, timeout: float = NPM_TIMEOUT) -> Path:
    """npm-install the pinned autobahn-browser (unless that version is installed already, so a re-run works
    offline) and copy its build into web/vendor/."""
    source = directory / BROWSER_BUILD
    locked = _version(directory / "package-lock.json", "packages", "node_modules/autobahn-browser", "version")
    installed = _version(directory / "node_modules" / "autobahn-browser" / "package.json", "version")
    if locked is None or installed != locked or not source.is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise SetupError("npm is not installed; the demo's page needs autobahn-browser from the npm registry")
        command = [npm, "install", "--no-save", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"]
        try:
            done = subprocess.run(command, cwd=directory, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise SetupError(f"npm install took longer than {timeout:.0f} s") from None
        if done.returncode != 0 or not source.is_file():
            raise SetupError(f"npm install in {directory} failed:\n{(done.stdout + done.stderr)[-2000:]}")
    target = directory / "web" / "vendor" / "autobahn.min.js"
    target.parent.mkdir(exist_ok=True)
    shutil.copyfile(source, target)
    return target


def ensure_jwt_secret(path: Path = JWT_SECRET) -> bytes:
    """The HS256 secret demo tokens are signed with: 64 random hex characters, created once."""
    if not path.is_file():
        path.parent.mkdir(exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as stream:
            stream.write(secrets.token_hex(32))
    return path.read_bytes()


def main() -> int:
    try:
        copied = install_browser_client()
        ensure_jwt_secret()
    except SetupError as e:
        print(f"pricewatch set-up failed: {e}", file=sys.stderr)
        return 1
    root = HERE.parent.parent
    print(f"copied {copied.relative_to(root)}; the JWT secret is in {JWT_SECRET.relative_to(root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
