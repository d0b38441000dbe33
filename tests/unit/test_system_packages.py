"""Tests leave the machine alone: without `CI=true` a missing Chromium skips the browser tests with a message
saying how to enable them, and apt-get is never run; in CI it is installed, and a failed installation fails the
test instead of hiding it as a skip. apt-get installs only the named packages, without recommends, through
`sudo -n` (never a password prompt) when the tests are not root."""

from __future__ import annotations

import pytest

from tests.support import node, redis_fixtures, system_packages


class NoChromium:
    """find_chromium says "missing" until `installed` is set; install() records its calls and returns `problem`."""

    def __init__(self, monkeypatch, *, problem: str | None = None, installs: bool = False):
        self.calls: list[tuple] = []
        self.installed = False
        self._problem, self._installs = problem, installs
        monkeypatch.setattr(system_packages, "find_chromium", lambda: "/usr/bin/chromium" if self.installed else None)
        monkeypatch.setattr(system_packages, "install", self.install)

    def install(self, packages, **options):
        self.calls.append((tuple(packages), options))
        self.installed = self._installs
        return self._problem


@pytest.mark.parametrize("ci", [None, "", "false", "0", "yes"])
def test_without_ci_true_a_missing_chromium_skips_and_installs_nothing(monkeypatch, ci):
    """CI unset or anything but "true": skipped, the reason names `make test-deps` and CI=true; install() is never
    called."""
    if ci is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", ci)
    fake = NoChromium(monkeypatch)
    with pytest.raises(pytest.skip.Exception) as skipped:
        node.chromium_executable()
    assert "Chromium is not installed" in str(skipped.value)
    assert "`make test-deps`" in str(skipped.value) and "CI=true" in str(skipped.value)
    assert fake.calls == []


@pytest.mark.parametrize("ci", ["true", "True", " TRUE "])
def test_in_ci_a_missing_chromium_is_installed(monkeypatch, ci):
    """CI=true (any case): chromium and fonts-liberation are installed non-interactively, and the test gets the
    binary."""
    monkeypatch.setenv("CI", ci)
    fake = NoChromium(monkeypatch, installs=True)
    assert node.chromium_executable() == "/usr/bin/chromium"
    assert fake.calls == [(("chromium", "fonts-liberation"), {})]


def test_in_ci_a_failed_installation_fails_the_test(monkeypatch):
    """CI=true and apt-get fails: the test fails with apt-get's problem (CI must run every test, not skip it)."""
    monkeypatch.setenv("CI", "true")
    NoChromium(monkeypatch, problem="`apt-get update -qq` failed (exit 100)")
    with pytest.raises(pytest.fail.Exception, match=r"CI=true: installing Chromium failed: `apt-get update -qq` "
                                                    r"failed \(exit 100\)"):
        node.chromium_executable()


def test_an_installed_chromium_is_used_as_it_is(monkeypatch):
    """Chromium on PATH: returned whatever CI says, with no installation."""
    monkeypatch.setenv("CI", "true")
    fake = NoChromium(monkeypatch)
    fake.installed = True
    assert node.chromium_executable() == "/usr/bin/chromium"
    assert fake.calls == []


@pytest.mark.parametrize("euid, interactive, prefix", [(0, False, []), (0, True, []), (1000, False, ["sudo", "-n"]),
                                                       (1000, True, ["sudo"])])
def test_apt_commands(monkeypatch, euid, interactive, prefix):
    """Root runs apt-get itself; others go through sudo, which may ask for a password only in `make test-deps`
    (interactive). Recommended packages are never installed."""
    monkeypatch.setattr(system_packages.os, "geteuid", lambda: euid)
    assert system_packages.apt_commands(["chromium"], interactive=interactive) == [
        [*prefix, "apt-get", "update", "-qq"],
        [*prefix, "apt-get", "install", "-y", "-qq", "--no-install-recommends", "chromium"],
    ]


class NoRedis:
    """find_redis_server says "missing" until `installed` is set; install() records its calls and returns `problem`."""

    def __init__(self, monkeypatch, *, problem: str | None = None, installs: bool = False):
        self.calls: list[tuple] = []
        self.installed = False
        self._problem, self._installs = problem, installs
        monkeypatch.setattr(system_packages, "find_redis_server",
                            lambda: "/usr/bin/redis-server" if self.installed else None)
        monkeypatch.setattr(system_packages, "install", self.install)

    def install(self, packages, **options):
        self.calls.append((tuple(packages), options))
        self.installed = self._installs
        return self._problem


def test_without_ci_a_missing_redis_server_skips(monkeypatch):
    """No redis-server and no CI=true: the Redis tests are skipped, saying how to enable them; nothing installed."""
    monkeypatch.delenv("CI", raising=False)
    fake = NoRedis(monkeypatch)
    with pytest.raises(pytest.skip.Exception) as skipped:
        redis_fixtures.redis_executable()
    assert "redis-server is not installed" in str(skipped.value) and "`make test-deps`" in str(skipped.value)
    assert fake.calls == []


def test_in_ci_redis_server_is_installed_without_starting_a_service(monkeypatch):
    """CI=true: redis-server is installed with services kept stopped (the tests start their own servers); a failed
    installation fails the test."""
    monkeypatch.setenv("CI", "true")
    fake = NoRedis(monkeypatch, installs=True)
    assert redis_fixtures.redis_executable() == "/usr/bin/redis-server"
    assert fake.calls == [(("redis-server",), {"no_services": True})]
    NoRedis(monkeypatch, problem="`apt-get update -qq` failed (exit 100)")
    with pytest.raises(pytest.fail.Exception, match=r"CI=true: installing redis-server failed: `apt-get update"):
        redis_fixtures.redis_executable()


def test_no_services_wraps_the_installation_in_a_policy_rc_d(monkeypatch):
    """With no_services, apt-get install runs under a shell that puts a policy-rc.d forbidding service starts in
    place (unless the machine has one) and removes it afterwards."""
    monkeypatch.setattr(system_packages.os, "geteuid", lambda: 1000)
    update, install = system_packages.apt_commands(["redis-server"], interactive=False, no_services=True)
    assert update == ["sudo", "-n", "apt-get", "update", "-qq"]
    assert install == ["sudo", "-n", "sh", "-c", system_packages.NO_SERVICES, "sh", "apt-get", "install", "-y", "-qq",
                       "--no-install-recommends", "redis-server"]
    assert "exit 101" in system_packages.NO_SERVICES
    assert 'rm -f /usr/sbin/policy-rc.d" EXIT' in system_packages.NO_SERVICES
