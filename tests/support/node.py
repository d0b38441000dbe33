"""Node.js for the tests: install the pinned npm packages of a directory once, find the machine's Chromium for
playwright-core to drive (installed only in CI or by `make test-deps`), and run node scripts without blocking the reactor (the router under test
lives in the test process and must keep serving while node talks to it).

The packages come from the npm registry at set-up time, pinned in the directory's package.json and package-lock.json,
never vendored. A test is skipped only when node or npm is missing or the registry cannot be reached; any other
install failure fails it, since that is ours to fix.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest
from twisted.internet import utils

from tests.support import system_packages

INSTALL_TIMEOUT = 300.0  # seconds for one npm install from the registry
RUN_TIMEOUT = 60.0  # seconds for one node script; each script has a shorter watchdog of its own

# What npm prints when the registry cannot be reached (DNS, refused or reset connections, timeouts, proxies).
_UNREACHABLE = re.compile(
    r"ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|network request|"
    r"request to \S+ failed|getaddrinfo|socket hang up|proxy",
    re.IGNORECASE,
)


def node_executable() -> str:
    """The machine's node; skips the test when there is none."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the JavaScript client tests need Node.js 20 or newer")
    return node


@functools.cache
def install_packages(directory: Path) -> Path:
    """`npm install` the exact versions of `directory`'s package-lock.json into its node_modules; returns that.

    `npm ci` would be the usual choice, but it refuses a lock file that does not list the native add-ons of every
    other platform, which the registry does not have for some of these packages; `npm install --no-save` from the
    lock file installs the same pinned versions and never rewrites package.json or the lock file. Install scripts
    are not run: none of the packages needs one.
    """
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: the JavaScript client tests install their packages with npm")
    if not (directory / "package-lock.json").is_file():
        pytest.fail(f"{directory / 'package-lock.json'} is missing: the npm packages must be pinned")
    command = [npm, "install", "--no-save", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"]
    try:
        done = subprocess.run(command, cwd=directory, capture_output=True, text=True, timeout=INSTALL_TIMEOUT)
    except subprocess.TimeoutExpired:
        pytest.skip(f"npm install in {directory} took longer than {INSTALL_TIMEOUT:.0f} s: the registry is too slow "
                    "or unreachable")
    if done.returncode != 0:
        output = (done.stdout + done.stderr)[-3000:]
        if _UNREACHABLE.search(output):
            pytest.skip(f"npm cannot reach the registry, so the JavaScript packages cannot be installed:\n{output}")
        pytest.fail(f"npm install in {directory} failed (exit {done.returncode}):\n{output}")
    return directory / "node_modules"


def chromium_executable() -> str:
    """Debian's Chromium, for playwright-core (or a test) to drive; Playwright's own browser downloads cannot work
    here. When it is missing the test is skipped, saying how to enable it, except in CI (`CI=true`), where it is
    installed with apt-get and a failed installation fails the test (tests/support/system_packages.py)."""
    found = system_packages.find_chromium()
    if found is not None:
        return found
    if not system_packages.installs_allowed():
        pytest.skip(f"Chromium is not installed; to run the browser tests, {system_packages.HOW_TO_ENABLE}")
    problem = system_packages.install(system_packages.CHROMIUM_PACKAGES)
    found = system_packages.find_chromium()
    if found is None:
        pytest.fail(f"CI=true: installing Chromium failed: {problem or 'no chromium executable on PATH afterwards'}")
    return found


@functools.cache
def node_flags(node: str) -> list[str]:
    """`--experimental-websocket` where node has no global WebSocket without it (node 20; 22 and later have it)."""
    probe = subprocess.run([node, "-e", "process.exit(typeof WebSocket === 'undefined' ? 1 : 0)"],
                           capture_output=True, timeout=30)
    return ["--experimental-websocket"] if probe.returncode != 0 else []


async def run_node(script: Path, arguments: list[str], *, extra_env: Mapping[str, str] | None = None,
                   timeout: float = RUN_TIMEOUT) -> tuple[str, str, int]:
    """Run `node [flags] script arguments...` in the script's directory; (stdout, stderr, exit code). The reactor
    keeps running meanwhile."""
    from twisted.internet import reactor

    node = node_executable()
    env = dict(os.environ)
    env.update(extra_env or {})
    args = [*node_flags(node), str(script), *arguments]
    d = utils.getProcessOutputAndValue(node, args, env=env, path=str(script.parent), reactor=reactor)
    d.addTimeout(timeout, reactor)
    out, err, code = await d
    return out.decode("utf-8", "replace"), err.decode("utf-8", "replace"), code


def one_json_line(out: str, err: str, code: int) -> dict:
    """The single JSON line a script printed on stdout (it prints exactly one); fails with its stderr otherwise."""
    lines = out.splitlines()
    assert len(lines) == 1, f"expected one JSON line on stdout, got {len(lines)} (exit {code}):\n{out}\n{err[-3000:]}"
    return json.loads(lines[0])
