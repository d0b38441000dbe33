"""Fixtures: generated certificates, a real router on loopback ports with the standard test listeners, and real
redis-servers (tests/support/redis_fixtures.py)."""

from __future__ import annotations

import pytest
import pytest_twisted

from tests.support import certs as certificates
from tests.support.clients import Target
from tests.support.redis_fixtures import redis_server, redis_servers  # noqa: F401  (fixtures for every test here)
from tests.support.router import REALM1_ANONYMOUS_ALL, listener, start_router


@pytest.fixture(scope="session")
def certs(tmp_path_factory):
    return certificates.generate(tmp_path_factory.mktemp("certs"))


def standard_config(certs) -> str:
    """Universal plain, WebSocket only, RawSocket only, and universal over TLS; realm1 open to anonymous."""
    return (
        listener("universal")
        + listener("websocket", ("websocket",))
        + listener("rawsocket", ("rawsocket",))
        + listener("tls", tls=certs)
        + REALM1_ANONYMOUS_ALL
    )


@pytest_twisted.async_yield_fixture()
async def router(tmp_path, certs):
    running = await start_router(standard_config(certs), tmp_path)
    yield running
    await running.stop()


def target(router, listener_name: str, transport: str, serializer: str = "json", certs=None, **kw) -> Target:
    """Where a client connects to reach `listener_name` with `transport`."""
    return Target(port=router.port(listener_name), transport=transport, serializer=serializer,
                  tls_ca=certs.ca if certs is not None else None, **kw)


@pytest_twisted.async_yield_fixture()
async def stoppable():
    """Start routers with `await stoppable(text, directory)`; all are stopped at teardown, even after a failure."""
    started = []

    async def start(text, directory):
        running = await start_router(text, directory)
        started.append(running)
        return running

    yield start
    for running in started:
        await running.stop()
