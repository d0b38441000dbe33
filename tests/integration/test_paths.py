"""A listener's paths: the WAMP WebSocket on several paths and at "/", beside bridge endpoints and static files,
every path matched exactly."""

from __future__ import annotations

import pytest_twisted
from autobahn.wamp.types import PublishOptions

from tests.support.clients import Collector, Target, connect, leave
from tests.support.http_bridge import request
from tests.support.router import REALM1_ANONYMOUS_ALL, listener, start_router
from tests.support.wait import bounded

INDEX = b"<!doctype html><title>app</title>"

PATHS = """
[[listeners.paths]]
path = "/"
kind = "websocket"

[[listeners.paths]]
path = "/ws"
kind = "websocket"

[[listeners.paths]]
path = "/api/wamp"
kind = "websocket"

[[listeners.paths]]
path = "/publish"
kind = "publish"
bridge = "open"

[[listeners.bridges]]
name = "open"
realm = "realm1"
authentication = "none"
authrole = "anonymous"
"""


def config(static: bool) -> str:
    websocket = 'static_dir = "static"' if static else ""
    text = listener("universal", websocket=websocket)
    return text.replace("[listeners.websocket]", PATHS + "\n[listeners.websocket]") + REALM1_ANONYMOUS_ALL


@pytest_twisted.async_yield_fixture(params=[False, True], ids=["plain", "static"])
async def paths_router(request, tmp_path):
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "index.html").write_bytes(INDEX)
    running = await start_router(config(request.param), tmp_path)
    running.static = request.param
    yield running
    await running.stop()


@pytest_twisted.ensureDeferred
async def test_websocket_on_every_configured_path(paths_router):
    """Clients join on "/", "/ws" and "/api/wamp" of one port, and an event crosses them all (and one published
    over the bridge beside them)."""
    port = paths_router.port("universal")
    sessions = [await bounded(connect(Target(port=port, path=path))) for path in ("/", "/ws", "/api/wamp")]
    collectors = [Collector(expected=2) for _ in sessions]
    for session, events in zip(sessions, collectors):
        await session.subscribe(events, "com.example.paths")
    await sessions[0].publish("com.example.paths", "ws", options=PublishOptions(acknowledge=True, exclude_me=False))
    response = await bounded(request(port, "/publish", {"topic": "com.example.paths", "args": ["http"]}))
    assert response.status == 200
    for events in collectors:
        assert await bounded(events.done) == [(("ws",), {}), (("http",), {})]
    for session in sessions:
        await leave(session)


@pytest_twisted.ensureDeferred
async def test_other_paths_are_not_the_websocket(paths_router):
    """A WebSocket upgrade to a path not configured ("/ws/", "/api") is refused: only exact paths serve it."""
    port = paths_router.port("universal")
    for path in ("/ws/", "/api", "/publish/x"):
        try:
            session = await bounded(connect(Target(port=port, path=path)))
        except Exception:
            continue
        await leave(session)
        raise AssertionError(f"a WebSocket opened on {path}")


@pytest_twisted.ensureDeferred
async def test_plain_get_of_root(paths_router):
    """A plain GET / (no upgrade): the static index with static files, else 426 Upgrade Required (the WebSocket's
    answer to a plain request), as before for the WebSocket path."""
    response = await bounded(request(paths_router.port("universal"), "/", method="GET", content_type=None))
    if paths_router.static:
        assert (response.status, response.body) == (200, INDEX)
    else:
        assert response.status == 426
