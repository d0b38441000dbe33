"""The HTTP side of the WebSocket listeners: no status page or library banner, refused upgrades, and static files
served next to the WAMP WebSocket without listings or path traversal. Requests are written byte by byte over TCP
so every status line and header is seen exactly as sent.
"""

from __future__ import annotations

import textwrap

import pytest
import pytest_twisted

from tests.support import raw
from tests.support.clients import Target, connect, leave
from tests.support.raw import assert_router_serves, bounded, get, http_request, websocket_upgrade
from tests.support.router import REALM1_ANONYMOUS_ALL, listener, start_router

SERVER = "Wampgate"
INDEX = b"<!doctype html><title>wampgate test index</title>\n"
APP_JS = b"console.log('wampgate test app');\n"
SECRET = b"secret = 'outside the static directory'\n"
SUB_FILE = b"not to be listed\n"


async def still_serves(router, listener_name: str = "universal") -> None:
    await assert_router_serves(router.port(listener_name), "websocket", "json")
    await assert_router_serves(router.port(listener_name), "rawsocket", "msgpack")


def assert_no_library_banner(headers: dict, body: bytes) -> None:
    """Neither the headers nor the body name Autobahn or Twisted (no version banner, no status page)."""
    for name, values in headers.items():
        for value in values:
            assert "autobahn" not in value.lower() and "twisted" not in value.lower(), (name, value)
    assert b"autobahn" not in body.lower()
    assert b"twisted" not in body.lower()


# -- the universal listener without static files -----------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_plain_get_gets_no_status_page(router):
    """A plain HTTP GET / (no WebSocket upgrade) on the universal listener is not answered with a status page
    (no 200, no HTML), and no header or body names Autobahn or Twisted."""
    status, headers, body = await http_request(router.port("universal"), get("/"))
    assert status != 200
    assert 400 <= status < 500
    assert b"<html" not in body.lower()
    assert_no_library_banner(headers, body)
    await still_serves(router)


@pytest.mark.parametrize("listener_name", ["universal", "websocket"])
@pytest_twisted.ensureDeferred
async def test_websocket_upgrade_to_wrong_path_is_404(router, listener_name):
    """A WebSocket upgrade to /other (the WAMP path is /ws) is refused with HTTP 404 and no library banner."""
    status, headers, body = await http_request(router.port(listener_name), websocket_upgrade("/other"))
    assert status == 404
    assert_no_library_banner(headers, body)
    await still_serves(router)


@pytest.mark.parametrize("listener_name", ["universal", "websocket"])
@pytest_twisted.ensureDeferred
async def test_websocket_upgrade_with_unknown_subprotocol_is_400(router, listener_name):
    """A WebSocket upgrade to /ws offering only an unknown subprotocol (wamp.2.xml) is refused with HTTP 400."""
    status, headers, body = await http_request(router.port(listener_name), websocket_upgrade("/ws", "wamp.2.xml"))
    assert status == 400
    assert_no_library_banner(headers, body)
    await still_serves(router)


@pytest.mark.parametrize("listener_name", ["universal", "websocket"])
@pytest_twisted.ensureDeferred
async def test_websocket_handshake_response_names_wampgate(router, listener_name):
    """The 101 response to a valid WAMP WebSocket upgrade carries Server: Wampgate and the chosen subprotocol."""
    status, headers, _ = await http_request(router.port(listener_name), websocket_upgrade("/ws", "wamp.2.json"))
    assert status == 101
    assert headers["server"] == [SERVER]
    assert headers["sec-websocket-protocol"] == ["wamp.2.json"]
    await still_serves(router)


# -- static files next to the WAMP WebSocket ----------------------------------------------------------------------


@pytest_twisted.async_yield_fixture()
async def web_router(tmp_path):
    """A universal listener (WebSocket + RawSocket) serving tmp/static, with index.html, app.js, and a
    subdirectory without an index; a secret file sits next to the config, outside static_dir."""
    static = tmp_path / "static"
    (static / "sub").mkdir(parents=True)
    (static / "index.html").write_bytes(INDEX)
    (static / "app.js").write_bytes(APP_JS)
    (static / "sub" / "data.txt").write_bytes(SUB_FILE)
    (tmp_path / "secret.txt").write_bytes(SECRET)
    config = listener("universal", websocket='static_dir = "static"') + listener(
        "rawsocket", ("rawsocket",)
    ) + REALM1_ANONYMOUS_ALL
    running = await start_router(textwrap.dedent(config), tmp_path)
    yield running
    await running.stop()


@pytest_twisted.ensureDeferred
async def test_static_file_is_served(web_router):
    """GET /app.js returns the file's bytes with 200 and Server: Wampgate."""
    status, headers, body = await http_request(web_router.port("universal"), get("/app.js"))
    assert status == 200
    assert body == APP_JS
    assert headers["server"] == [SERVER]
    assert_no_library_banner(headers, body)
    await still_serves(web_router)


@pytest_twisted.ensureDeferred
async def test_root_serves_index(web_router):
    """GET / returns index.html with 200 and Server: Wampgate."""
    status, headers, body = await http_request(web_router.port("universal"), get("/"))
    assert status == 200
    assert body == INDEX
    assert headers["server"] == [SERVER]
    await still_serves(web_router)


@pytest_twisted.ensureDeferred
async def test_missing_file_is_404_without_banner(web_router):
    """GET of a file that does not exist is 404, with Server: Wampgate and no library banner."""
    status, headers, body = await http_request(web_router.port("universal"), get("/missing.js"))
    assert status == 404
    assert headers["server"] == [SERVER]
    assert_no_library_banner(headers, body)
    await still_serves(web_router)


@pytest_twisted.ensureDeferred
async def test_wamp_websocket_works_next_to_static_files(web_router):
    """The WAMP WebSocket at /ws and RawSocket both work on the port that serves static files; the WebSocket
    handshake response carries Server: Wampgate."""
    port = web_router.port("universal")
    status, headers, _ = await http_request(port, websocket_upgrade("/ws", "wamp.2.json"))
    assert status == 101
    assert headers["server"] == [SERVER]
    for transport, serializer in (("websocket", "json"), ("websocket", "cbor"), ("rawsocket", "msgpack")):
        session = await bounded(connect(Target(port=port, transport=transport, serializer=serializer)))
        await bounded(leave(session))
    await still_serves(web_router)


@pytest_twisted.ensureDeferred
async def test_upgrade_elsewhere_on_static_site_is_not_a_websocket(web_router):
    """A WebSocket upgrade to a static path (/app.js) does not open a WebSocket (no 101)."""
    status, headers, body = await http_request(web_router.port("universal"), websocket_upgrade("/app.js"))
    assert status != 101
    assert_no_library_banner(headers, body)
    await still_serves(web_router)


@pytest.mark.parametrize("path", ["/sub/", "/sub"])
@pytest_twisted.ensureDeferred
async def test_directory_without_index_is_not_listed(web_router, path):
    """A subdirectory without index.html is not listed: 403 or 404 (a redirect to the slash form is allowed
    first), and no file name inside it appears in the response."""
    port = web_router.port("universal")
    status, headers, body = await http_request(port, get(path))
    if status in (301, 302):
        status, headers, body = await http_request(port, get(path + "/"))
    assert status in (403, 404)
    assert b"data.txt" not in body
    await still_serves(web_router)


TRAVERSALS = [
    "/../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/..%2fsecret.txt",
    "/%2e%2e%2fsecret.txt",
    "/sub/../../secret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt",
    "/./../secret.txt",
    "/..\\secret.txt",
    "/%2e%2e%5csecret.txt",
    "/../router.toml",
    "/%2e%2e/router.toml",
]


@pytest.mark.parametrize("path", TRAVERSALS)
@pytest_twisted.ensureDeferred
async def test_path_traversal_does_not_leave_static_dir(web_router, path):
    """No spelling of '..' (plain, percent-encoded, encoded slash or backslash) returns a file outside static_dir:
    the response is an error, and neither the secret file nor the router config appears in it."""
    status, headers, body = await http_request(web_router.port("universal"), get(path))
    assert status >= 400 or status in (301, 302)
    assert SECRET not in body
    assert b"[[listeners]]" not in body
    await still_serves(web_router)


@pytest_twisted.ensureDeferred
async def test_absolute_form_request_target_does_not_leave_static_dir(web_router):
    """An absolute-form request target (GET http://host/../secret.txt) does not escape static_dir either."""
    request = b"GET http://127.0.0.1/../secret.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    status, headers, body = await http_request(web_router.port("universal"), request)
    assert SECRET not in body
    assert b"[[listeners]]" not in body
    await still_serves(web_router)


@pytest_twisted.ensureDeferred
async def test_http_error_pages_do_not_echo_request(web_router):
    """A 404 page does not reflect the requested path (no reflected markup from the URL)."""
    status, headers, body = await http_request(
        web_router.port("universal"), get("/%3Cscript%3Ezq7leak%3C/script%3E")
    )
    assert status == 404
    assert b"zq7leak" not in body
    await still_serves(web_router)


@pytest_twisted.ensureDeferred
async def test_raw_websocket_client_on_static_port_joins(web_router):
    """A raw WebSocket client at /ws on the static-file port completes HELLO/WELCOME."""
    ws = await raw.open_websocket(web_router.port("universal"))
    try:
        welcome = await ws.join()
        assert welcome[0] == raw.WELCOME
    finally:
        ws.disconnect()
    await still_serves(web_router)


@pytest_twisted.ensureDeferred
async def test_upgrade_split_into_one_byte_writes_on_universal_listener(router):
    """On the universal listener the first octet alone decides WebSocket vs RawSocket: an upgrade request written
    one octet at a time (each in its own reactor turn) still gets 101 with Server: Wampgate."""
    from twisted.internet import reactor, task

    tcp = await raw.open_tcp(router.port("universal"))
    try:
        for octet in websocket_upgrade("/ws", "wamp.2.json"):
            tcp.write(bytes((octet,)))
            await task.deferLater(reactor, 0.001, lambda: None)
        await tcp.until(lambda: b"\r\n\r\n" in tcp.received)
    finally:
        tcp.close()
    status, headers, _ = raw.parse_http_response(bytes(tcp.received))
    assert status == 101
    assert headers["server"] == [SERVER]
    await still_serves(router)
