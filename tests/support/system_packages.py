"""System packages that some tests need (Debian's Chromium for the browser tests, redis-server for the cluster
tests), installed only when asked.

A developer's `make test` never changes the machine: a test whose package is missing is skipped, saying how to
enable it. The packages are installed by `make test-deps` (which runs this module: `python -m
tests.support.system_packages`, with sudo when not root), or by the tests themselves when `CI=true`, where a
failed installation fails the test instead of skipping it, since CI must run everything.

Only the packages the tests use are installed, without Debian's "recommends" (for chromium: udev, upower, printer
tools, a notification daemon, which bring service upgrades a test run has no business doing); fonts-liberation,
one of those, is named explicitly so that pages render text in screenshots. Of redis-server only the binary is
used (the tests start their own servers on free ports): its package is installed with a policy-rc.d that forbids
starting services, so no system-wide Redis is left listening on 6379. Standard library only: `make test-deps` runs it
before any virtualenv exists.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence

CHROMIUM_PACKAGES = ("chromium", "fonts-liberation")
INSTALL_TIMEOUT = 300.0  # seconds for apt-get update and install together
HOW_TO_ENABLE = ("run `make test-deps` once (it installs Debian's chromium with apt-get, using sudo when not root), "
                 "or set CI=true to let the tests install it")
REDIS_PACKAGES = ("redis-server",)
REDIS_HOW_TO_ENABLE = ("run `make test-deps` once (it installs Debian's redis-server with apt-get, using sudo when not "
                       "root, without starting it as a service), or set CI=true to let the tests install it")
# Run as `sh -c NO_SERVICES sh apt-get install ...`: while apt-get runs, a policy-rc.d (unless the machine has one)
# tells the packages' scripts not to start services; it is removed afterwards, whatever apt-get's outcome.
POLICY_RC_D = "/usr/sbin/policy-rc.d"
NO_SERVICES = (f'if [ ! -e {POLICY_RC_D} ]; then printf "#!/bin/sh\\nexit 101\\n" > {POLICY_RC_D} && '
               f'chmod 755 {POLICY_RC_D} && trap "rm -f {POLICY_RC_D}" EXIT; fi; "$@"; exit $?')


def installs_allowed(environ: Mapping[str, str] = os.environ) -> bool:
    """True only in CI (`CI=true`, as CI services set it): elsewhere, tests never install system packages."""
    return environ.get("CI", "").strip().lower() == "true"


def find_chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def find_redis_server() -> str | None:
    return shutil.which("redis-server")


def apt_commands(packages: Sequence[str], *, interactive: bool, no_services: bool = False) -> list[list[str]]:
    """apt-get update, then install `packages` without recommends; through sudo when not root (`sudo -n`, never
    asking for a password, unless `interactive`); with `no_services`, no service is started by the installation."""
    sudo: list[str] = []
    if os.geteuid() != 0:
        sudo = ["sudo"] if interactive else ["sudo", "-n"]
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]
    if no_services:
        install = ["sh", "-c", NO_SERVICES, "sh", *install]
    return [[*sudo, "apt-get", "update", "-qq"], [*sudo, *install]]


def install(packages: Sequence[str], *, interactive: bool = False, no_services: bool = False) -> str | None:
    """Install `packages` with apt-get (bounded to INSTALL_TIMEOUT); None on success, else what went wrong."""
    if shutil.which("apt-get") is None:
        return "apt-get is not available (the tests use Debian's packages)"
    if os.geteuid() != 0 and shutil.which("sudo") is None:
        return "not running as root and sudo is not available"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    output = None if interactive else subprocess.PIPE
    for command in apt_commands(packages, interactive=interactive, no_services=no_services):
        try:
            done = subprocess.run(command, env=env, stdout=output, stderr=output, text=True, timeout=INSTALL_TIMEOUT,
                                  check=False)
        except subprocess.TimeoutExpired:
            return f"`{' '.join(command)}` took longer than {INSTALL_TIMEOUT:.0f} s"
        if done.returncode != 0:
            tail = ((done.stdout or "") + (done.stderr or ""))[-2000:]
            return f"`{' '.join(command)}` failed (exit {done.returncode})" + (f":\n{tail}" if tail else "")
    return None


# What `make test-deps` installs: (what, how to find it, its packages, whether services must stay stopped).
WANTED = (
    ("chromium", find_chromium, CHROMIUM_PACKAGES, False),
    ("redis-server", find_redis_server, REDIS_PACKAGES, True),
)


def main() -> int:
    """`make test-deps`: install what the browser and cluster tests need, unless it is already there."""
    failed = 0
    for name, find, packages, no_services in WANTED:
        if find() is None:
            print(f"installing {', '.join(packages)} with apt-get (without recommended packages)", flush=True)
            problem = install(packages, interactive=True, no_services=no_services)
            if problem is None and find() is None:
                problem = f"apt-get succeeded but no {name} executable is on PATH"
            if problem is not None:
                print(f"make test-deps: {problem}", file=sys.stderr)
                failed += 1
                continue
        print(f"{name} is installed: {find()}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
