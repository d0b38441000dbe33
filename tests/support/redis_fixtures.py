"""Pytest fixtures for a real redis-server: `redis_servers` starts any number (with extra arguments), `redis_server`
is one plain server. All are stopped by PID at teardown, even after a failure.

Without redis-server the test is skipped, saying how to enable it; with CI=true it is installed instead (and a failed
installation fails the test), as for Chromium (tests/support/system_packages.py).
"""

from __future__ import annotations

import pytest

from tests.support import system_packages
from tests.support.redis_server import RedisServer


def redis_executable() -> str:
    found = system_packages.find_redis_server()
    if found is not None:
        return found
    if not system_packages.installs_allowed():
        pytest.skip(f"redis-server is not installed; to run the Redis tests, {system_packages.REDIS_HOW_TO_ENABLE}")
    problem = system_packages.install(system_packages.REDIS_PACKAGES, no_services=True)
    found = system_packages.find_redis_server()
    if found is None:
        pytest.fail(f"CI=true: installing redis-server failed: {problem or 'no redis-server on PATH afterwards'}")
    return found


@pytest.fixture
def redis_servers(tmp_path):
    """`start(*extra_args) -> RedisServer`, started and answering PING; e.g. `start("--requirepass", "s3cret")`."""
    executable = redis_executable()
    started: list[RedisServer] = []

    def start(*extra_args: str) -> RedisServer:
        directory = tmp_path / f"redis-{len(started)}"
        directory.mkdir()
        server = RedisServer(directory, *extra_args, executable=executable)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def redis_server(redis_servers) -> RedisServer:
    """One redis-server on a free loopback port, no password, nothing persisted."""
    return redis_servers()
