"""What a real router's client-caused events look like once through the observers' chain (`wampgate.tx.logs`, as
`twistd --logger wampgate.tx.logs.text|json` runs it): info lines that name what an operator needs, and no warn line
for a client's mistake; the admin port's scrapes not logged and no Server header there.

Every router event is fed to the observers' own chain (relevel, level filter, truncation, repeat filter, budget);
what the chain writes is recorded. Absence is proven with a marker: a HELLO for the realm "marker-<n>" from another
connection, whose line is awaited; every event of the action before it was logged on the reactor thread before the
action's answer was even sent.
"""

from __future__ import annotations

import contextlib
import textwrap

import pytest_twisted
from twisted.logger import LogLevel, formatEvent, globalLogPublisher

from wampgate.tx import logs
from tests.support import raw
from tests.support.raw import get, http_request, websocket_upgrade
from tests.support.router import REALM1_ANONYMOUS_ALL, listener, start_router
from tests.support.wait import bounded, eventually

ALLOWED = "https://app.example"


def config() -> str:
    """Listener 0 "first" (RawSocket), listener 1 "browser" (WebSocket and RawSocket, one allowed origin), the
    admin listener; realm1 open to anonymous."""
    return (textwrap.dedent("""
        [admin]
        endpoint = "tcp:0:interface=127.0.0.1"
        """)
            + listener("first", ("rawsocket",))
            + listener("browser", websocket=f'allowed_origins = ["{ALLOWED}"]')
            + REALM1_ANONYMOUS_ALL)


CLIENT_NOISE = "twisted.internet.protocol.Factory"  # "Starting factory" lines of the test's own client connections


class Written:
    """What the observers' chain writes, as (level, text, namespace), but for the test clients' own lines."""

    def __init__(self):
        self.lines: list[tuple[LogLevel, str, str]] = []
        self.chain = logs._filtered(self._write, logs.text_size, schedule=lambda delay, f: None)
        self._markers = 0

    def _write(self, event) -> None:
        if event.get("log_namespace") == CLIENT_NOISE:
            return
        self.lines.append((event["log_level"], formatEvent(event), event.get("log_namespace")))

    def since(self, mark: int) -> list[tuple[LogLevel, str, str]]:
        return self.lines[mark:]

    async def marker(self, port: int) -> int:
        """Log a marker line (an unknown realm from a new connection) and wait for it; its index."""
        self._markers += 1
        realm = f"marker-{self._markers}"
        client = await raw.open_rawsocket(port)
        try:
            client.send(raw.hello(realm))
            await client.wait_messages(1)
        finally:
            client.close()
        needle = f"for unknown realm {realm!r}"
        return await eventually(lambda: next((i + 1 for i, line in enumerate(self.lines) if needle in line[1]), 0),
                                f"the {realm} line")


@contextlib.asynccontextmanager
async def observed_router(tmp_path):
    written = Written()
    globalLogPublisher.addObserver(written.chain)
    router = await start_router(config(), tmp_path)
    try:
        yield router, written
    finally:
        globalLogPublisher.removeObserver(written.chain)
        await router.stop()


def admin_port(router) -> int:
    return router.service.getServiceNamed("admin").port.getHost().port


def upgrade_from(origin: str) -> bytes:
    return websocket_upgrade().replace(b"\r\n\r\n", f"\r\nOrigin: {origin}\r\n\r\n".encode())


@pytest_twisted.ensureDeferred
async def test_a_refused_origin_is_logged_at_info_naming_origin_listener_and_key(tmp_path):
    """A browser page from https://evil.example on listener 1 gets HTTP 403; the log says, at info, which origin,
    from which peer, on which listener, and the key to change (listeners[1].websocket.allowed_origins); autobahn's
    own lines about it come out as one info line naming the peer and "Forbidden"; nothing at warn."""
    async with observed_router(tmp_path) as (router, written):
        port = router.port("browser")
        mark = await written.marker(router.port("first"))
        status, _, _ = await bounded(http_request(port, upgrade_from("https://evil.example")))
        assert status == 403
        end = await written.marker(router.port("first"))
        lines = written.since(mark)[:end - mark - 1]
        assert [level for level, _, _ in lines] == [LogLevel.info, LogLevel.info]
        ours, autobahn = lines
        assert ours[1].startswith("WebSocket: refused Origin 'https://evil.example' from tcp4:127.0.0.1:")
        assert ours[1].endswith(" on listener 'browser' (HTTP 403); to allow it, add it to "
                                "listeners[1].websocket.allowed_origins")
        assert autobahn[2].startswith("autobahn.")
        assert autobahn[1].startswith("dropping connection to peer tcp4:127.0.0.1:")
        assert autobahn[1].endswith(" with abort=False: Forbidden")


@pytest_twisted.ensureDeferred
async def test_a_plain_get_on_the_websocket_port_is_one_info_line(tmp_path):
    """A plain HTTP GET on the WebSocket port (no Upgrade header) is answered 426 and logged as one info line
    naming the peer and the reason; no warn line."""
    async with observed_router(tmp_path) as (router, written):
        mark = await written.marker(router.port("first"))
        status, _, _ = await bounded(http_request(router.port("browser"), get("/ws")))
        assert status == 426
        end = await written.marker(router.port("first"))
        [(level, text, _)] = written.since(mark)[:end - mark - 1]
        assert level == LogLevel.info
        assert text.endswith(" with abort=False: HTTP Upgrade header missing")


@pytest_twisted.ensureDeferred
async def test_a_hello_for_an_unknown_realm_is_logged_at_info_with_realm_and_peer(tmp_path):
    """HELLO for realm "realm2": ABORT wamp.error.no_such_realm, and an info line naming the peer and the realm
    asked for; a 1,000-character realm is cut to 200 characters in it."""
    async with observed_router(tmp_path) as (router, written):
        port = router.port("first")
        for realm in ("realm2", "r" * 1_000):
            client = await raw.open_rawsocket(port)
            try:
                client.send(raw.hello(realm))
                [abort] = await client.wait_messages(1)
                assert abort[0] == raw.ABORT and abort[2] == "wamp.error.no_such_realm", abort
            finally:
                client.close()
        await written.marker(port)
        unknown = [(level, text) for level, text, _ in written.lines if "for unknown realm" in text]
        assert unknown[0][0] == LogLevel.info
        assert unknown[0][1].startswith("HELLO from tcp4:127.0.0.1:")
        assert unknown[0][1].endswith(" for unknown realm 'realm2'")
        assert unknown[1][1].endswith(f" for unknown realm '{'r' * 200}…(+800 chars)'")


@pytest_twisted.ensureDeferred
async def test_admin_scrapes_are_not_logged_and_send_no_server_header(tmp_path):
    """GET /metrics and /healthz on the admin port: 200, no Server header (nosniff instead), and no access-log
    line; a GET for another path (404), the marker here, is logged."""
    async with observed_router(tmp_path) as (router, written):
        port = admin_port(router)
        mark = len(written.lines)
        for path in ("/metrics", "/healthz", "/metrics?name=x"):
            status, headers, _ = await bounded(http_request(port, get(path, headers={"Connection": "close"})))
            assert status == 200, path
            assert "server" not in headers, headers
            assert headers["x-content-type-options"] == ["nosniff"]
        status, headers, _ = await bounded(http_request(port, get("/nothing-here", headers={"Connection": "close"})))
        assert status == 404 and "server" not in headers
        await eventually(lambda: any("/nothing-here" in text for _, text, _ in written.since(mark)),
                         "the access line for /nothing-here")
        access = [text for _, text, _ in written.since(mark) if '"GET /' in text]
        assert len(access) == 1 and '"GET /nothing-here HTTP/1.1" 404' in access[0], access
