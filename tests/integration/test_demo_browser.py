"""The Pricewatch demo (examples/pricewatch) in a real browser: headless Chromium (Debian's, driven by playwright-core
from tests/js) loads the page from Wampgate's own WebSocket listener and uses it as a person would.

The router runs in this process on the demo's own config (only its ports and file locations changed), with the
demo's backend component (examples/pricewatch/backend.py) publishing a tick every 0.25 s and answering quotes. The
page's browser client is autobahn-browser, installed from the npm registry and copied into the served directory at
set-up time, as `make demo` does. tests/js/demo_browser.mjs reports what the page showed at each step as one JSON
line; the test compares it with the backend's record of what it published. It saves a screenshot to
tests/artifacts/demo.png, and also to docs/demo.png (the getting-started page's) when UPDATE_DOCS_SCREENSHOT=1.

A second test (driver tests/js/demo_longpoll_browser.mjs) takes WebSocket away from the page before its scripts run:
the page then joins over the router's long-poll transport (`longpoll_path = "/lp"` in the demo's config), which the
test checks on the router's side too, and the Origin allow-list still refuses the page from another origin.
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import re
import sys
import time
from pathlib import Path

import jwt
import pytest
import pytest_twisted
from twisted.internet import defer

from tests.support import node
from tests.support.router import start_router
from tests.support.wait import eventually, free_port

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "examples" / "pricewatch"
JS_DIR = ROOT / "tests" / "js"
DRIVER = JS_DIR / "demo_browser.mjs"
LONGPOLL_DRIVER = JS_DIR / "demo_longpoll_browser.mjs"
ARTIFACT = ROOT / "tests" / "artifacts" / "demo.png"
DOCS_SCREENSHOT = ROOT / "docs" / "demo.png"
OTHER_HOST = "other-origin.example"  # mapped to 127.0.0.1 inside Chromium only
PASSWORD, WRONG_PASSWORD = "wonderland", "not-the-password"
BROWSER_TIMEOUT = 90


def _load(name: str, path: Path):
    """A module of the demo directory (not a package) by file path."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


backend = _load("pricewatch_backend", DEMO / "backend.py")
setup_web = _load("pricewatch_setup_web", DEMO / "setup_web.py")


@pytest.fixture(scope="module")
def browser_tools():
    """Chromium (looked for first: without it the test is skipped, saying how to enable it, before anything is
    downloaded); playwright-core (tests/js) and the demo's autobahn-browser from the registry, the latter copied into
    the served directory as `make demo` does."""
    node.node_executable()
    chromium = node.chromium_executable()
    node.install_packages(JS_DIR)
    node.install_packages(DEMO)
    setup_web.install_browser_client(DEMO)
    return chromium


def demo_config(web_port: int, jwt_secret: Path) -> str:
    """examples/pricewatch/pricewatch.toml with only its ports (web: `web_port`, also in the Origin allow-list;
    backend: any free one) and file locations changed; each substitution must apply exactly as often as expected."""
    text = (DEMO / "pricewatch.toml").read_text(encoding="utf-8")
    substitutions = [
        ("8088", str(web_port), 3),
        ("tcp:8089:", "tcp:0:", 1),
        ('static_dir = "web"', f"static_dir = {json.dumps(str(DEMO / 'web'))}", 1),
        ('secret_file = "secrets/jwt-hs256.key"', f"secret_file = {json.dumps(str(jwt_secret))}", 1),
    ]
    for old, new, count in substitutions:
        assert text.count(old) == count, f"pricewatch.toml changed: expected {old!r} {count} time(s)"
        text = text.replace(old, new)
    return text


@pytest_twisted.async_yield_fixture()
async def demo(tmp_path, browser_tools):
    """The router on the demo's config and the backend component joined to it; yields (router, board, web port,
    JWT secret)."""
    from twisted.internet import reactor

    secret_file = tmp_path / "jwt-hs256.key"
    secret = setup_web.ensure_jwt_secret(secret_file)
    web_port = free_port()
    router = await start_router(demo_config(web_port, secret_file), tmp_path)
    board = backend.PriceBoard(backend.PriceFeed(random.Random(2024)), interval=0.25)
    component = backend.make_component(f"rs://127.0.0.1:{router.port('backend')}", board,
                                       secret=backend.DEMO_BACKEND_SECRET, max_retries=0)
    running = component.start(reactor)
    try:
        await eventually(lambda: board.published, "the backend's first tick", timeout=15.0, step=0.05)
        yield router, board, web_port, secret
    finally:
        await component.stop()
        await running
        await router.stop()


def demo_token(secret: bytes, user: str) -> str:
    now = int(time.time())
    claims = {"sub": user, "role": "viewer", "iss": "pricewatch-demo", "aud": "pricewatch", "iat": now,
              "exp": now + 600}
    return jwt.encode(claims, secret, algorithm="HS256")


def shown_change(cents: int) -> str:
    return f"+{cents / 100:.2f}" if cents > 0 else f"\u2212{-cents / 100:.2f}" if cents < 0 else "0.00"


def expected_rows(board, rows: list[dict]) -> list[dict]:
    """What each row must show for the tick number it shows: that tick's price and change, as published."""
    expected = []
    for row in rows:
        seq = int(row["seq"]) if row["seq"].isdigit() else 0
        ticks = board.feed.history.get(row["symbol"], [])
        tick = ticks[seq - 1] if 0 < seq <= len(ticks) else None
        expected.append({"symbol": row["symbol"], "seq": row["seq"],
                         "price": f"{tick.price_cents / 100:.2f}" if tick else "(no such tick published)",
                         "change": shown_change(tick.change_cents) if tick else "(no such tick published)"})
    return expected


def expected_quote(board, shown: str) -> str:
    """The quote text for the tick number the page shows: that tick's price, and the high and low up to it."""
    match = re.fullmatch(r"WGT \S+ \(tick (\d+); high \S+, low \S+\)", shown)
    assert match, shown
    ticks = board.feed.history["WGT"][: int(match.group(1))]
    prices = [t.price_cents for t in ticks]
    return (f"WGT {ticks[-1].price_cents / 100:.2f} (tick {len(ticks)}; high {max(prices) / 100:.2f}, "
            f"low {min(prices) / 100:.2f})")


def updates(line: str) -> int:
    match = re.fullmatch(r"(\d+) live updates? received", line)
    assert match, line
    return int(match.group(1))


@pytest.mark.timeout(600)  # room for the npm installs, and for installing Chromium in CI
@pytest_twisted.ensureDeferred
async def test_demo_page_in_headless_chromium(demo, browser_tools):
    """In headless Chromium the demo page, served by the router's own listener: a wrong password shows
    "Login failed: wamp.error.authentication_failed" and no board; alice's password signs in (status names
    alice, viewer, ticket); every row then shows exactly the price and change the backend published for the
    tick number it shows, and four more live updates move the tick numbers by exactly four (none lost or doubled);
    a quote shows the procedure's result for its tick exactly, and an unknown symbol shows the procedure's error
    URI and text; a JWT signs in as carol via jwt and receives updates; the same page loaded from another origin
    cannot open the WebSocket (the page says so, the router counts one Origin refusal). No script error on any
    page. A screenshot of the signed-in page is saved."""
    router, board, web_port, secret = demo
    ARTIFACT.parent.mkdir(exist_ok=True)
    screenshots = [str(ARTIFACT)]
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        screenshots.append(str(DOCS_SCREENSHOT))
    ARTIFACT.unlink(missing_ok=True)
    config = {
        "chromium": browser_tools,
        "page_url": f"http://127.0.0.1:{web_port}/",
        "other_origin_url": f"http://{OTHER_HOST}:{web_port}/",
        "other_origin_host": OTHER_HOST,
        "authid": "alice",
        "password": PASSWORD,
        "wrong_password": WRONG_PASSWORD,
        "token": demo_token(secret, "carol"),
        "unknown_symbol": "XYZ",
        "screenshots": screenshots,
        "timeout": BROWSER_TIMEOUT,
    }
    out, err, code = await node.run_node(DRIVER, [json.dumps(config)], timeout=BROWSER_TIMEOUT + 30)
    shown = node.one_json_line(out, err, code)
    assert "failure" not in shown, shown["failure"] + "\n" + err[-3000:]

    assert shown["page_errors"] == []
    assert shown["title"] == "Pricewatch \u00b7 a Wampgate demo"
    assert shown["wrong_password"] == {"status": "Not signed in", "board_visible": False,
                                       "error": "Login failed: wamp.error.authentication_failed"}
    assert shown["ticket"] == {"status": "Signed in as alice (role viewer, via ticket)", "error": "",
                               "board_visible": True}
    assert shown["ticket_transport"] == f"Connected over WebSocket (ws://127.0.0.1:{web_port}/ws)"

    first, later = shown["board"]["first"], shown["board"]["later"]
    for state in (first, later):
        assert [row["symbol"] for row in state["rows"]] == ["WGT", "TWX", "ABN", "CRB"]
        assert state["rows"] == expected_rows(board, state["rows"])
    moved = sum(int(r["seq"]) for r in later["rows"]) - sum(int(r["seq"]) for r in first["rows"])
    assert moved == updates(later["updates_line"]) - updates(first["updates_line"]) >= 4

    assert shown["quote"] == {"result": expected_quote(board, shown["quote"]["result"]), "error": ""}
    assert shown["unknown_quote"] == {"result": "", "error": "com.pricewatch.error.unknown_symbol: no such symbol: XYZ"}

    assert updates(shown["jwt"].pop("updates_line")) >= 1
    assert shown["jwt"] == {"status": "Signed in as carol (role viewer, via jwt)", "error": "", "board_visible": True}

    assert shown["other_origin_title"] == "Pricewatch \u00b7 a Wampgate demo"  # the page itself loads there
    assert shown["other_origin"] == {"status": "Not signed in", "board_visible": False,
                                     "error": f"Cannot connect to ws://{OTHER_HOST}:{web_port}/ws"}
    counters = router.service.context.counters
    assert counters.value("handshake_refused", reason="origin", listener="web") == 1

    for path in screenshots:
        assert Path(path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def alice_sessions(router) -> list[dict]:
    """How the router sees alice's sessions on the demo realm: the transport each came in on."""
    seen = []
    for peer in router.realm("pricewatch").sessions.values():
        if peer.authid == "alice":
            info = peer.channel.transport_info()
            seen.append({"kind": info.kind, "listener": info.listener, "path": info.http_path,
                         "origin": info.http_headers.get("origin")})
    return seen


@pytest.mark.timeout(600)  # room for the npm installs, and for installing Chromium in CI
@pytest_twisted.ensureDeferred
async def test_demo_page_without_websocket_uses_longpoll(demo, browser_tools):
    """In headless Chromium with `window.WebSocket` deleted before the page's scripts run: alice's password signs
    in (same status line as over WebSocket) and the page says it is connected over long-poll at /lp; while she is
    signed in the router holds her session on the web listener's long-poll transport (kind "longpoll", opened at
    /lp/open from the page's own origin) and exactly one long-poll transport is open; every row shows exactly the
    price and change the backend published for its tick, four more live updates arrive none lost or doubled, and
    a quote (an RPC over long-poll) shows the procedure's result exactly. Signing out closes cleanly (no error
    shown) and leaves no long-poll transport open. The same page from another origin, also without WebSocket,
    cannot open a long-poll transport (the page names /lp; the router counts one Origin refusal). No script
    error on any page."""
    router, board, web_port, _secret = demo
    longpoll = router.listener("web")._factory.wrappedFactory.longpoll
    config = {
        "chromium": browser_tools,
        "page_url": f"http://127.0.0.1:{web_port}/",
        "other_origin_url": f"http://{OTHER_HOST}:{web_port}/",
        "other_origin_host": OTHER_HOST,
        "authid": "alice",
        "password": PASSWORD,
        "timeout": BROWSER_TIMEOUT,
    }
    run = defer.ensureDeferred(node.run_node(LONGPOLL_DRIVER, [json.dumps(config)], timeout=BROWSER_TIMEOUT + 30))

    def while_signed_in():
        """alice's sessions and the number of open long-poll transports, once she has one; "ended" if the driver
        ended before that."""
        sessions = alice_sessions(router)
        if sessions:
            return sessions, len(longpoll.transports)
        return "ended" if run.called else None

    # The page stays signed in for several ticks, each delivered by this reactor: look while it is.
    signed_in = await eventually(while_signed_in, "alice's session on the router", timeout=BROWSER_TIMEOUT + 30,
                                 step=0.02)
    out, err, code = await run
    shown = node.one_json_line(out, err, code)
    assert "failure" not in shown, shown["failure"] + "\n" + err[-3000:]
    assert signed_in != "ended", "the driver ended before alice's session was seen on the router\n" + err[-3000:]

    assert shown["page_errors"] == []
    assert shown["ticket"] == {"status": "Signed in as alice (role viewer, via ticket)", "error": "",
                               "board_visible": True}
    assert shown["connection"] == {"line": f"Connected over long-poll (http://127.0.0.1:{web_port}/lp)",
                                   "type": "longpoll", "websocket_in_window": False}
    assert signed_in == ([{"kind": "longpoll", "listener": "web", "path": "/lp/open",
                           "origin": f"http://127.0.0.1:{web_port}"}], 1)

    first, later = shown["board"]["first"], shown["board"]["later"]
    for state in (first, later):
        assert [row["symbol"] for row in state["rows"]] == ["WGT", "TWX", "ABN", "CRB"]
        assert state["rows"] == expected_rows(board, state["rows"])
    moved = sum(int(r["seq"]) for r in later["rows"]) - sum(int(r["seq"]) for r in first["rows"])
    assert moved == updates(later["updates_line"]) - updates(first["updates_line"]) >= 4
    assert shown["quote"] == {"result": expected_quote(board, shown["quote"]["result"]), "error": ""}

    assert shown["signed_out"] == {"status": "Not signed in", "error": "", "board_visible": False}
    await eventually(lambda: not longpoll.transports and not alice_sessions(router),
                     "no long-poll transport or session left after signing out", timeout=10.0)

    assert shown["other_origin"] == {"status": "Not signed in", "board_visible": False,
                                     "error": f"Cannot connect to http://{OTHER_HOST}:{web_port}/lp"}
    counters = router.service.context.counters
    assert counters.value("handshake_refused", reason="origin", listener="web") == 1
