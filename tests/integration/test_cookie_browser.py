"""Cookie authentication in a real browser: headless Chromium loads a page from the router's own listener and logs
in with Autobahn|JS (autobahn-browser, the Pricewatch demo's pinned build). A ticket login sets the cookie (which the
page's JavaScript cannot read: HttpOnly); the next connections join as the same user with authmethod `cookie`,
without credentials, also with a null realm; after a GOODBYE `wamp.close.logout` the cookie admits nobody.

Without Chromium, node or the npm registry the test is skipped, saying why (`make test-deps` installs Chromium)."""

from __future__ import annotations

import importlib.util
import json
import shutil
import sys
from pathlib import Path

import pytest
import pytest_twisted

from wampgate.passwords import hash_secret
from tests.support import node
from tests.support.router import start_router
from tests.support.wait import free_port

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "pricewatch"
JS_DIR = ROOT / "tests" / "js"
DRIVER = JS_DIR / "cookie_browser.mjs"
PAGE = Path(__file__).parent / "cookie_page" / "index.html"
BROWSER_TIMEOUT = 60
TICKET = "alice-browser-ticket"  # noqa: S105 - a test secret


def _setup_web():
    spec = importlib.util.spec_from_file_location("pricewatch_setup_web_cookie", DEMO / "setup_web.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def browser_tools():
    """Chromium (looked for first, so a machine without it skips before downloading anything), playwright-core and
    the autobahn-browser build."""
    node.node_executable()
    chromium = node.chromium_executable()
    node.install_packages(JS_DIR)
    node.install_packages(DEMO)
    return chromium, _setup_web().install_browser_client(DEMO)


def config(port: int, static: Path) -> str:
    return f"""
[[listeners]]
name = "web"
endpoint = "tcp:{port}:interface=127.0.0.1"
transports = ["websocket"]
[listeners.websocket]
static_dir = {json.dumps(str(static))}
allowed_origins = ["http://127.0.0.1:{port}"]
[listeners.auth.cookie]
max_age = 600
[[listeners.auth.ticket.principals]]
authid = "alice"
role = "user"
secret_hash = "{hash_secret(TICKET)}"

[[realms]]
name = "realm1"
[[realms.roles]]
name = "user"
"""


@pytest.mark.timeout(600)  # room for the npm installs, and for installing Chromium in CI
@pytest_twisted.ensureDeferred
async def test_cookie_login_in_headless_chromium(tmp_path, browser_tools):
    """ticket first (no cookie yet), then cookie without credentials (also with realm null), then logout; after it
    the cookie alone gets wamp.error.no_auth_method and with ticket offered too the (unanswered) ticket challenge
    ends the attempt. The cookie is HttpOnly, SameSite=Strict, on path /ws, and the page's document.cookie is
    empty."""
    chromium, autobahn_js = browser_tools
    static = tmp_path / "static"
    static.mkdir()
    shutil.copyfile(PAGE, static / "index.html")
    shutil.copyfile(autobahn_js, static / "autobahn.min.js")
    port = free_port()
    router = await start_router(config(port, static), tmp_path)
    try:
        arguments = {"chromium": chromium, "page_url": f"http://127.0.0.1:{port}/index.html", "authid": "alice",
                     "ticket": TICKET, "timeout": BROWSER_TIMEOUT}
        out, err, code = await node.run_node(DRIVER, [json.dumps(arguments)], timeout=BROWSER_TIMEOUT + 30)
    finally:
        await router.stop()
    shown = node.one_json_line(out, err, code)
    assert "failure" not in shown, shown["failure"] + "\n" + err[-3000:]
    alice = {"joined": True, "authid": "alice", "authrole": "user", "realm": "realm1"}
    assert shown["page_errors"] == []
    assert shown["first"] == {**alice, "authmethod": "ticket"}
    assert shown["page_sees_cookie"] == ""
    assert shown["cookies"] == [{"name": "wampgate_auth", "path": "/ws", "httpOnly": True, "sameSite": "Strict",
                                 "secure": False}]
    assert shown["again"] == {**alice, "authmethod": "cookie"}
    assert shown["without_realm"] == {**alice, "authmethod": "cookie"}
    assert shown["logout"] == {**alice, "authmethod": "cookie"}
    assert shown["after_logout"] == {"joined": False, "reason": "wamp.error.no_auth_method"}
    assert shown["after_logout_with_ticket"]["joined"] is False
