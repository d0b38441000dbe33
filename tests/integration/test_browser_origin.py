"""The Origin allow-list as a real browser meets it: headless Chromium loads a page from one of two router listeners
(both serve the same static page) and the page's JavaScript opens a WAMP WebSocket to listener A. Loaded from A, the
page's origin is on A's allow-list and the socket opens; loaded from B (another port, so another origin), the
browser's handshake is refused (HTTP 403) and the page sees an error and close code 1006, while the router counts
handshake_refused reason origin.

The router runs in the test process; Chromium runs as a child process of the reactor (spawnProcess), so the router
keeps serving while the test waits for the browser. Without Chromium the test is skipped, saying how to enable it
(`make test-deps`); only in CI (`CI=true`) does the test install it (tests/support/system_packages.py).
"""

from __future__ import annotations

import os
import textwrap

import pytest
import pytest_twisted
from twisted.internet import defer, protocol

from tests.support import node
from tests.support.router import REALM1_ANONYMOUS_ALL, start_router
from tests.support.wait import free_port

BROWSER_TIMEOUT = 60.0

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>wampgate origin probe</title></head>
<body><pre id="result">pending</pre>
<script>
  const out = document.getElementById("result");
  const opened = () => out.textContent.startsWith("open");
  try {
    const ws = new WebSocket("ws://127.0.0.1:__PORT__/ws", ["wamp.2.json"]);
    ws.onopen = () => { out.textContent = "open " + ws.protocol; ws.close(1000); };
    ws.onerror = () => { if (!opened()) out.textContent = "error"; };
    ws.onclose = (event) => { if (!opened()) out.textContent = "error/close " + event.code; };
  } catch (e) {
    out.textContent = "exception " + e;
  }
</script>
</body></html>
"""


@pytest.fixture(scope="module")
def chromium() -> str:
    """The Chromium binary; when missing, skipped (saying how to enable the test), or installed in CI."""
    return node.chromium_executable()


def config(port_a: int, port_b: int) -> str:
    """Listener A allows only its own origin; listener B (another port) serves the same page; realm1 anonymous."""
    listeners = ""
    for name, port, origins in (("pagea", port_a, [f"http://127.0.0.1:{port_a}"]), ("pageb", port_b, [])):
        allowed = ", ".join(f'"{origin}"' for origin in origins)
        listeners += textwrap.dedent(f"""
            [[listeners]]
            name = "{name}"
            endpoint = "tcp:{port}:interface=127.0.0.1"
            transports = ["websocket"]

            [listeners.websocket]
            static_dir = "static"
            allowed_origins = [{allowed}]

            [listeners.auth]
            anonymous = {{ role = "anonymous" }}
            """)
    return listeners + REALM1_ANONYMOUS_ALL


class _Collect(protocol.ProcessProtocol):
    """Collects a child's stdout and stderr; `ended` fires with (stdout, stderr, exit code or signal)."""

    def __init__(self):
        self.out = bytearray()
        self.err = bytearray()
        self.ended: defer.Deferred = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        self.out += data

    def errReceived(self, data: bytes) -> None:
        self.err += data

    def processEnded(self, reason) -> None:
        self.ended.callback((bytes(self.out), bytes(self.err), reason.value))


async def run_browser(binary: str, url: str, profile_dir) -> str:
    """Chromium headless dumps the page's DOM after up to 5 s of virtual time; killed after BROWSER_TIMEOUT s."""
    from twisted.internet import reactor

    argv = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--disable-dev-shm-usage", f"--user-data-dir={profile_dir}", "--virtual-time-budget=5000",
            "--dump-dom", url]
    collect = _Collect()
    process = reactor.spawnProcess(collect, binary, argv, env={**os.environ, "HOME": str(profile_dir)})
    timer = reactor.callLater(BROWSER_TIMEOUT, process.signalProcess, "KILL")
    try:
        out, err, _ = await collect.ended
    finally:
        if timer.active():
            timer.cancel()
    dom = out.decode("utf-8", "replace")
    assert "wampgate origin probe" in dom, f"no page dumped; stderr:\n{err.decode('utf-8', 'replace')[-2000:]}"
    return dom


def result_of(dom: str) -> str:
    start = dom.index('<pre id="result">') + len('<pre id="result">')
    return dom[start:dom.index("</pre>", start)]


async def settled_result(binary: str, url: str, profile_dir, attempts: int = 3) -> str:
    """The page's result, loading it again (at most `attempts` times) while Chromium dumped the DOM before the
    WebSocket settled ("pending": on a busy machine the refusal can arrive after the virtual time budget)."""
    for attempt in range(attempts):
        result = result_of(await run_browser(binary, url, f"{profile_dir}-{attempt}"))
        if result != "pending":
            return result
    return result


@pytest.mark.timeout(600)  # room for installing Chromium in CI
@pytest_twisted.ensureDeferred
async def test_browser_page_opens_wamp_websocket_only_from_an_allowed_origin(tmp_path, chromium):
    """A page loaded from listener A (origin http://127.0.0.1:<A>, on A's allow-list) opens
    ws://127.0.0.1:<A>/ws with subprotocol wamp.2.json; the same page loaded from listener B (origin
    http://127.0.0.1:<B>) cannot (error, close code 1006), and the router counts handshake_refused reason origin
    on listener A for it."""
    port_a, port_b = free_port(), free_port()
    static = tmp_path / "static"
    static.mkdir()
    (static / "page.html").write_text(PAGE.replace("__PORT__", str(port_a)))
    router = await start_router(config(port_a, port_b), tmp_path)
    counters = router.service.context.counters
    try:
        from_a = await settled_result(chromium, f"http://127.0.0.1:{port_a}/page.html", tmp_path / "prof-a")
        assert from_a == "open wamp.2.json"
        assert counters.value("handshake_refused", reason="origin", listener="pagea") == 0

        from_b = await settled_result(chromium, f"http://127.0.0.1:{port_b}/page.html", tmp_path / "prof-b")
        assert from_b in ("error/close 1006", "error"), from_b
        assert counters.value("handshake_refused", reason="origin", listener="pagea") >= 1
        print(f"\nchromium: from A -> {from_a!r}; from B -> {from_b!r}")
    finally:
        await router.stop()
