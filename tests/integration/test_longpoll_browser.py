"""The long-poll transport in a real browser: headless Chromium (Debian's, driven by playwright-core from tests/js)
loads a page whose script removes WebSocket (`window.WebSocket = undefined`) before Autobahn|JS's browser build
(autobahn-browser, the demo's pinned copy) loads, and offers Autobahn|JS a WebSocket transport, then long-poll.
Autobahn|JS cannot create the WebSocket and falls back to long-poll.

The page comes from another listener (another port: another origin) than the long-poll transport, so the browser
sends CORS preflights and credentialed XHRs: loaded from an allowed origin the page joins, gets its own event and
calls a Python WebSocket peer's procedure; loaded from an origin not on the allow-list its open is refused (403)
and Autobahn|JS reports the router unreachable.

Without Chromium the test is skipped, saying how to enable it (`make test-deps`); only in CI (`CI=true`) does the
test install it (tests/support/system_packages.py).
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import textwrap
from pathlib import Path

import pytest
import pytest_twisted

from tests.support import node
from tests.support.clients import Target, connect, leave
from tests.support.router import realm_anonymous_all
from tests.support.wait import free_port

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "pricewatch"
JS_DIR = ROOT / "tests" / "js"
DRIVER = JS_DIR / "longpoll_browser.mjs"

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>wampgate long-poll probe</title>
<script>window.WebSocket = undefined;</script>
<script src="autobahn.min.js"></script>
</head>
<body><pre id="result">pending</pre>
<script>
  const out = document.getElementById("result");
  const done = (value) => {
    if (out.textContent === "pending") out.textContent = typeof value === "string" ? value : JSON.stringify(value);
  };
  const connection = new autobahn.Connection({
    transports: [{ type: "websocket", url: "ws://127.0.0.1:__PORT__/ws" },
                 { type: "longpoll", url: "http://127.0.0.1:__PORT__/lp" }],
    realm: "realm1", max_retries: 0, retry_if_unreachable: false,
  });
  connection.onopen = async (session, details) => {
    try {
      const events = [];
      let arrived;
      const eventArrived = new Promise((resolve) => { arrived = resolve; });
      await session.subscribe("com.lp.browser", (args) => { events.push(args); arrived(); });
      await session.publish("com.lp.browser", ["from the page"], {}, { acknowledge: true, exclude_me: false });
      await eventArrived;
      const sum = await session.call("com.lp.py.add", [20, 22]);
      summary = { transport: details.transport.type, protocol: details.transport.protocol,
                  websocket: typeof window.WebSocket, events, sum };
      connection.close();
    } catch (e) {
      done("error " + (e && e.error ? e.error : String(e)));
    }
  };
  let summary = null;  // reported once the transport is closed, so the router has forgotten it by then
  connection.onclose = (reason) => { done(summary ? { ...summary, close: reason } : "closed " + reason); return true; };
  connection.open();
</script>
</body></html>
"""


@pytest.fixture(scope="module")
def browser_tools():
    """Chromium (looked for first: without it the test is skipped before anything is downloaded); playwright-core
    (tests/js) and the demo's pinned autobahn-browser from the registry."""
    node.node_executable()
    chromium = node.chromium_executable()
    node.install_packages(JS_DIR)
    node.install_packages(DEMO)
    spec = importlib.util.spec_from_file_location("pricewatch_setup_web_lp", DEMO / "setup_web.py")
    setup_web = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(setup_web)
    return chromium, DEMO / setup_web.BROWSER_BUILD


def config(page_port: int, other_port: int) -> str:
    """Listener lp (WebSocket and long-poll, allowing only the page listener's origin); listeners page and other
    serve the same static page on fixed ports (their origins)."""
    text = textwrap.dedent(f"""
        [[listeners]]
        name = "lp"
        endpoint = "tcp:0:interface=127.0.0.1"
        transports = ["websocket"]

        [listeners.websocket]
        longpoll_path = "/lp"
        allowed_origins = ["http://127.0.0.1:{page_port}"]

        [listeners.auth]
        anonymous = {{ role = "anonymous" }}
        """)
    for name, port in (("page", page_port), ("other", other_port)):
        text += textwrap.dedent(f"""
            [[listeners]]
            name = "{name}"
            endpoint = "tcp:{port}:interface=127.0.0.1"
            transports = ["websocket"]

            [listeners.websocket]
            static_dir = "static"

            [listeners.auth]
            anonymous = {{ role = "anonymous" }}
            """)
    return text + realm_anonymous_all()


@pytest.mark.timeout(600)  # room for the npm installs, and for installing Chromium in CI
@pytest_twisted.ensureDeferred
async def test_browser_without_websocket_joins_over_longpoll(tmp_path, browser_tools, stoppable):
    """With WebSocket removed from the page, Autobahn|JS falls back to long-poll (transport type longpoll, protocol
    wamp.2.json) across origins: it joins, receives its own event (exclude_me=false) and gets 42 from a Python
    WebSocket peer's procedure, then closes cleanly. The same page from an origin not on the allow-list is refused
    (Autobahn|JS: "closed unreachable"), counted as handshake_refused reason origin, and no long-poll transport is
    left open."""
    chromium, autobahn_build = browser_tools
    page_port, other_port = free_port(), free_port()
    static = tmp_path / "static"
    static.mkdir()
    shutil.copyfile(autobahn_build, static / "autobahn.min.js")
    router = await stoppable(config(page_port, other_port), tmp_path)
    (static / "page.html").write_text(PAGE.replace("__PORT__", str(router.port("lp"))))
    peer = await connect(Target(port=router.port("lp"), transport="websocket"))
    try:
        await peer.register(lambda a, b: a + b, "com.lp.py.add")
        arguments = {"chromium": chromium, "timeout": 90,
                     "urls": [f"http://127.0.0.1:{page_port}/page.html", f"http://127.0.0.1:{other_port}/page.html"]}
        out, err, code = await node.run_node(DRIVER, [json.dumps(arguments)], timeout=120.0)
        reported = node.one_json_line(out, err, code)
        assert reported.get("page_errors") == [], err[-3000:]
        allowed, refused = reported["results"]
        assert json.loads(allowed) == {"transport": "longpoll", "protocol": "wamp.2.json", "websocket": "undefined",
                                       "events": [["from the page"]], "sum": 42, "close": "closed"}, err[-3000:]
        assert refused == "closed unreachable"
        counters = router.service.context.counters
        assert counters.value("handshake_refused", reason="origin", listener="lp") >= 1
        longpoll = router.listener("lp")._factory.wrappedFactory.longpoll
        assert longpoll.transports == {}
    finally:
        await leave(peer)
