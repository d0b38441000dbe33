"""The HTTP side of the WebSocket listeners: no status page or library banner, refused upgrades, and static files
served next to the WAMP WebSocket without listings or path traversal. Requests are written byte by byte over TCP
so every status line and header is seen exactly as sent.
"""

from __future__ import annotations

import os
import textwrap

import pytest
import pytest_twisted

from tests.support import raw
from tests.support.clients import Target, connect, leave
from tests.support.raw import bounded, get, http_request, websocket_upgrade
from tests.support.router import REALM1_ANONYMOUS_ALL, listener, start_router
from tests.support.wait import eventually, still_serves

SERVER = "Wampgate"
INDEX = b"<!doctype html><title>wampgate test index</title>\n"
APP_JS = b"console.log('wampgate test app');\n"
SECRET = b"secret = 'outside the static directory'\n"
SUB_FILE = b"not to be listed\n"
UNKNOWN = b"<script>alert('sniffed')</script>\n"
RANGE_FILE = bytes(range(256)) * 16


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
    subdirectory without an index; a secret file sits next to the config, outside static_dir. Inside static_dir
    also: dotfiles (.env, .git/config, sub/.hidden), symlinks out of it (leak.txt to the secret, outside/ to its
    parent directory), a symlink to a dotfile (env.txt), a symlink inside it (alias.js), a FIFO (pipe.txt), files
    with an unknown extension or none, and a 4096-byte file for ranges."""
    static = tmp_path / "static"
    (static / "sub").mkdir(parents=True)
    (static / "index.html").write_bytes(INDEX)
    (static / "app.js").write_bytes(APP_JS)
    (static / "sub" / "data.txt").write_bytes(SUB_FILE)
    (tmp_path / "secret.txt").write_bytes(SECRET)
    (static / ".env").write_bytes(SECRET)
    (static / ".git").mkdir()
    (static / ".git" / "config").write_bytes(SECRET)
    (static / "sub" / ".hidden").write_bytes(SECRET)
    (static / "leak.txt").symlink_to(tmp_path / "secret.txt")
    (static / "outside").symlink_to(tmp_path)
    (static / "env.txt").symlink_to(static / ".env")
    (static / "gitdir").symlink_to(static / ".git")
    (static / "alias.js").symlink_to(static / "app.js")
    os.mkfifo(static / "pipe.txt")
    (static / "payload.wgunknown").write_bytes(UNKNOWN)
    (static / "LICENSE").write_bytes(UNKNOWN)
    (static / "range.bin").write_bytes(RANGE_FILE)
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


@pytest.mark.parametrize("path", ["/leak.txt", "/outside/secret.txt", "/outside/router.toml", "/outside/static/app.js"])
@pytest_twisted.ensureDeferred
async def test_symlink_out_of_static_dir_is_404(web_router, path):
    """A symlink inside static_dir that points out of it (a file, or a directory whose files are then asked for)
    is 404, and the file behind it does not appear in the response."""
    status, headers, body = await http_request(web_router.port("universal"), get(path))
    assert status == 404
    assert SECRET not in body and b"[[listeners]]" not in body and APP_JS not in body
    await still_serves(web_router)


@pytest_twisted.ensureDeferred
async def test_symlink_inside_static_dir_is_served(web_router):
    """A symlink to a file inside static_dir is served like the file itself."""
    status, headers, body = await http_request(web_router.port("universal"), get("/alias.js"))
    assert status == 200
    assert body == APP_JS


DOTFILES = ["/.env", "/%2eenv", "/.git/config", "/.git/", "/.git", "/sub/.hidden", "/env.txt", "/gitdir/config",
            "/./.env", "/sub/../.env"]


@pytest.mark.parametrize("path", DOTFILES)
@pytest_twisted.ensureDeferred
async def test_dotfiles_are_404(web_router, path):
    """A path with a segment starting with "." (plain or percent-encoded, a file or a directory), or a symlink
    to a dotfile or into a dot-directory, is 404 and the file's content does not appear."""
    status, headers, body = await http_request(web_router.port("universal"), get(path))
    assert status == 404
    assert SECRET not in body
    await still_serves(web_router)


@pytest_twisted.ensureDeferred
async def test_fifo_in_static_dir_is_404_and_does_not_block(web_router):
    """A FIFO inside static_dir is not opened (opening it would block the router until a writer comes): 404,
    and the router keeps serving."""
    status, _, _ = await http_request(web_router.port("universal"), get("/pipe.txt"))
    assert status == 404
    await still_serves(web_router)


@pytest.mark.parametrize("path", ["/payload.wgunknown", "/LICENSE"])
@pytest_twisted.ensureDeferred
async def test_unknown_extension_is_octet_stream_with_nosniff(web_router, path):
    """A file with an unknown extension or none goes out as application/octet-stream (not text/html) with
    X-Content-Type-Options: nosniff, so a browser does not render markup inside it."""
    status, headers, body = await http_request(web_router.port("universal"), get(path))
    assert status == 200
    assert body == UNKNOWN
    assert headers["content-type"] == ["application/octet-stream"]
    assert headers["x-content-type-options"] == ["nosniff"]


@pytest.mark.parametrize("request_bytes", [
    get("/app.js"), get("/"), get("/missing.js"), get("/sub/"), get("/.env"), get("/leak.txt"),
    get("/range.bin", headers={"Range": "bytes=0-9"}), websocket_upgrade("/ws", "wamp.2.xml"),
    websocket_upgrade("/elsewhere/ws"), b"POST /app.js HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    b"GET /app.js HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 3\r\n\r\nabc",
], ids=["file", "index", "missing", "directory", "dotfile", "symlink-out", "range", "bad-subprotocol",
        "upgrade-elsewhere", "post", "body"])
@pytest_twisted.ensureDeferred
async def test_every_response_of_the_static_site_has_nosniff(web_router, request_bytes):
    """Every response on the static-files port, success or refusal, from twisted.web or the WebSocket handshake,
    carries X-Content-Type-Options: nosniff."""
    status, headers, _ = await http_request(web_router.port("universal"), request_bytes)
    assert status != 101
    assert headers.get("x-content-type-options") == ["nosniff"], (status, headers)


@pytest_twisted.ensureDeferred
async def test_request_with_a_body_is_refused_with_400(web_router):
    """A GET for a static file announcing a body (Content-Length 3 or chunked) is refused with exactly
    `HTTP/1.1 400 Bad Request` and the connection closed: twisted.web would otherwise store a body of any size."""
    port = web_router.port("universal")
    for extra in (b"Content-Length: 3\r\n\r\nabc", b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"):
        tcp = await raw.open_tcp(port)
        try:
            tcp.write(b"GET /app.js HTTP/1.1\r\nHost: 127.0.0.1\r\n" + extra)
            received = await tcp.wait_lost(5.0)
        finally:
            tcp.close()
        assert received.startswith(b"HTTP/1.1 400 Bad Request\r\n")
        assert APP_JS not in received
    await still_serves(web_router)


MANY_RANGES = "bytes=" + ",".join(["0-4095"] * 650)


@pytest_twisted.ensureDeferred
async def test_multi_range_request_gets_the_whole_file_once(web_router):
    """A Range header naming several ranges (650 overlapping copies of the whole 4096-byte file: a 4.5 KiB
    request) is answered 200 with the file exactly once, never a multipart body of 650 copies."""
    assert 4000 < len(MANY_RANGES) < 6000
    status, headers, body = await http_request(web_router.port("universal"),
                                               get("/range.bin", headers={"Range": MANY_RANGES}))
    assert status == 200
    assert headers["content-length"] == [str(len(RANGE_FILE))]
    assert body == RANGE_FILE


@pytest.mark.parametrize("byte_range, status, first, length", [
    ("bytes=100-199", 206, 100, 100),
    ("bytes=0-999999999999", 206, 0, 4096),
    ("bytes=-999999999999", 206, 0, 4096),
    ("bytes=4000-", 206, 4000, 96),
    ("bytes=5000-6000", 416, 0, 0),
])
@pytest_twisted.ensureDeferred
async def test_single_range_is_bounded_by_the_file(web_router, byte_range, status, first, length):
    """A single range is served as 206 with at most the file's bytes, however far it reaches; a range starting
    past the end is 416."""
    got, headers, body = await http_request(web_router.port("universal"),
                                            get("/range.bin", headers={"Range": byte_range}))
    assert got == status
    if status == 206:
        assert headers["content-length"] == [str(length)]
        assert body == RANGE_FILE[first:first + length]


def _server_transport(port: int, client_port: int):
    """The router's side of our connection: the reactor's TCP transport from `port` to `client_port`."""
    from twisted.internet import reactor, tcp

    for selectable in set(reactor.getReaders()) | set(reactor.getWriters()):
        if (isinstance(selectable, tcp.Server) and selectable.getHost().port == port
                and selectable.getPeer().port == client_port):
            return selectable
    return None


def _http_channel(protocol):
    """The twisted.web channel under the connection's wrappers (connection accounting, the universal port's
    first-octet sniffer, twisted.web's own HTTP/2-or-1.1 switch)."""
    from twisted.web.http import HTTPChannel

    for _ in range(5):
        if isinstance(protocol, HTTPChannel):
            return protocol
        for name in ("wrappedProtocol", "_inner", "_channel"):
            try:
                protocol = object.__getattribute__(protocol, name)  # not forwarded by a wrapper's __getattr__
                break
            except AttributeError:
                continue
    raise AssertionError("no HTTP channel found")


def _buffered(transport) -> int:
    """Bytes written to the transport but not yet handed to the kernel."""
    return len(transport.dataBuffer) - transport.offset + transport._tempDataLen


@pytest_twisted.ensureDeferred
async def test_big_file_to_a_client_that_never_reads_stays_within_the_transport_buffer(web_router, tmp_path):
    """A 50 MiB file requested by a client that never reads: twisted.web's producer is paused by the transport
    once the socket is full, so the router buffers less than 1 MiB for it and reads only a part of the file.
    Closing the client frees the connection, and the router keeps serving."""
    size = 50 * 1024 * 1024
    with open(tmp_path / "static" / "big.bin", "wb") as big:
        big.truncate(size)
    port = web_router.port("universal")
    tcp = await raw.open_tcp(port)
    try:
        tcp.write(get("/big.bin"))
        tcp.transport.pauseProducing()  # never read: the socket buffers fill, then the router's
        server = await eventually(lambda: _server_transport(port, tcp.transport.getHost().port))
        await eventually(lambda: server.producerPaused, timeout=10.0)
        channel = _http_channel(server.protocol)
        producer = channel._requestProducer
        assert producer is not None, "the response is still being produced"
        print(f"router buffers {_buffered(server)} B; read {producer._producer.fileObject.tell()} B of the file")
        assert _buffered(server) < 1024 * 1024
        assert producer._producer.fileObject.tell() < size // 2
    finally:
        tcp.close()
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
