"""Interop with the JavaScript WAMP clients: Autobahn|JS and wampy.js, installed from the npm registry at set-up time
(pinned in tests/js/package.json and package-lock.json), run under the machine's node against a real router in this
process.

Each run is one node process (tests/js/autobahn_client.mjs or wampy_client.mjs, both driving tests/js/scenario.mjs)
that joins realm1 twice with the same credentials (anonymous, ticket, or salted WAMP-CRA). Both sessions subscribe
to an exact topic; one also subscribes to a prefix. That one publishes on the exact topic with exclude_me=false,
the other on a topic under the prefix; then it calls a procedure of the other with args and kwargs, one that sends
progressive results, and one whose callee raises an application error. The script prints one JSON line with
everything that arrived; the test compares it exactly. Transports: WebSocket with JSON and MessagePack, and
WebSocket over TLS with a certificate the tests generate (node trusts it through NODE_EXTRA_CA_CERTS); for
Autobahn|JS also its long-poll transport (JSON), plain and over TLS. Wrong credentials are refused with
wamp.error.authentication_failed.
"""

from __future__ import annotations

import copy
import json
import re
import socket
import ssl
import textwrap
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import threads

from wampgate.passwords import hash_secret
from tests.support import node
from tests.support.router import listener, start_router

JS_DIR = Path(__file__).resolve().parent.parent / "js"
SCRIPTS = {"autobahn": JS_DIR / "autobahn_client.mjs", "wampy": JS_DIR / "wampy_client.mjs"}

ALICE_TICKET = "alice-js-ticket \u00e4\u00f6\u00fc"  # ticket, stored as an scrypt hash
CAROL_PASSWORD = "carol-js-password"  # wampcra, stored as a PBKDF2-derived key
CAROL_SALT, CAROL_ITERATIONS, CAROL_KEYLEN = "js-interop-salt-1", 1000, 32

# What the scripts send. Values chosen to catch serializer slips: a non-BMP character, the largest integer a JS
# number holds exactly, fractions, null, nested containers, an empty string.
PAYLOADS = {
    "news": {"args": [1, "zwei \u00fc \U0001f600", {"drei": [3.5, None, True]}, 2**53 - 1, ""],
             "kwargs": {"vier": {"f\u00fcnf": [False, -1]}, "empty": {}}},
    "feed": {"args": ["goal"], "kwargs": {"minute": 90, "team": "Wampgate FC"}},
    "call": {"args": [7, "seven", [7.25]], "kwargs": {"x": 1.5, "flag": False, "nothing": None}},
    "error": {"uri": "com.interop.error.refused", "args": ["not today", 42],
              "kwargs": {"reason": "testing", "code": 7}},
}

# What arrives when everything works (the WELCOME part depends on the credentials, see `expected`).
EXPECTED_TRAFFIC = {
    "exact_events": [{"topic": "com.interop.news", **PAYLOADS["news"]}],  # the publisher's own (exclude_me=false)
    "exact_events_other": [{"topic": "com.interop.news", **PAYLOADS["news"]}],  # the other session's
    "prefix_events": [{"topic": "com.interop.feed.sports", **PAYLOADS["feed"]}],
    "echo": {"args": ["echo", *PAYLOADS["call"]["args"]], "kwargs": {**PAYLOADS["call"]["kwargs"], "echoed": True}},
    "countdown": {
        "progress": [{"args": [n], "kwargs": {"remaining": n}} for n in (3, 2, 1)],
        "final": {"args": ["liftoff"], "kwargs": {"from": 3}},
    },
    "fail": {"error": PAYLOADS["error"]["uri"], "args": PAYLOADS["error"]["args"],
             "kwargs": PAYLOADS["error"]["kwargs"]},
}

# wampy 8.0.2's publish() drops `exclude_me: false` (it copies only truthy options into PUBLISH), so the router
# applies the default publisher exclusion: the wampy publisher does not get its own event. Should a later wampy
# send the option, this difference fails the test and can go.
CLIENT_DIFFERENCES = {"autobahn": {}, "wampy": {"exact_events": []}}

CREDENTIALS = {
    "anonymous": {"authmethod": "anonymous"},
    "ticket": {"authmethod": "ticket", "authid": "alice-js", "secret": ALICE_TICKET},
    "wampcra": {"authmethod": "wampcra", "authid": "carol-js", "secret": CAROL_PASSWORD},
}

WELCOMES = {
    "anonymous": {"authrole": "anonymous", "authmethod": "anonymous", "authprovider": "static"},
    "ticket": {"authid": "alice-js", "authrole": "js", "authmethod": "ticket", "authprovider": "static"},
    "wampcra": {"authid": "carol-js", "authrole": "js", "authmethod": "wampcra", "authprovider": "static"},
}

TRANSPORTS = {
    # id: (listener, scheme, serializer); http and https are the long-poll transport (JSON only)
    "ws-json": ("websocket", "ws", "json"),
    "ws-msgpack": ("websocket", "ws", "msgpack"),
    "wss-json": ("tls", "wss", "json"),
    "wss-msgpack": ("tls", "wss", "msgpack"),
    "longpoll-json": ("websocket", "http", "json"),
    "longpoll-tls-json": ("tls", "https", "json"),
}
LONGPOLL_SCHEMES = ("http", "https")
# Clients that implement WAMP's long-poll transport (wampy.js speaks WebSocket only).
LONGPOLL_CLIENTS = ("autobahn",)


@pytest.fixture(scope="session")
def js_packages():
    """tests/js/node_modules, installed once per test run from the pinned lock file."""
    node.node_executable()
    return node.install_packages(JS_DIR)


def _derived_key() -> str:
    from autobahn.wamp.auth import derive_key

    return derive_key(CAROL_PASSWORD, CAROL_SALT, CAROL_ITERATIONS, CAROL_KEYLEN).decode("ascii")


def inline(table: dict) -> str:
    """A TOML inline table of strings and integers."""
    return "{ " + ", ".join(f"{key} = {json.dumps(value)}" for key, value in table.items()) + " }"


def router_config(certs) -> str:
    """A WebSocket listener and a TLS WebSocket listener offering anonymous, ticket and wampcra; role "js" may do
    everything under com.interop., as may anonymous. Lockout is off: the refusal tests fail on purpose."""
    alice = {"authid": "alice-js", "role": "js", "secret_hash": hash_secret(ALICE_TICKET)}
    carol = {"authid": "carol-js", "role": "js", "derived_key": _derived_key(), "salt": CAROL_SALT,
             "iterations": CAROL_ITERATIONS, "keylen": CAROL_KEYLEN}
    auth = (f'anonymous = {{ role = "anonymous" }}\n'
            f"ticket = {{ principals = [{inline(alice)}] }}\n"
            f"wampcra = {{ principals = [{inline(carol)}] }}\n")
    roles = "".join(textwrap.dedent(f"""
        [[realms.roles]]
        name = "{role}"
        [[realms.roles.permissions]]
        uri = "com.interop."
        match = "prefix"
        allow = ["publish", "subscribe", "call", "register"]
        """) for role in ("anonymous", "js"))
    return (
        "[limits.auth_failures]\ndelay_after = 1000\nlockout_after = 100000\n"
        + listener("websocket", ("websocket",), auth=auth, websocket='longpoll_path = "/lp"')
        + listener("tls", ("websocket",), tls=certs, auth=auth, websocket='longpoll_path = "/lp"')
        + '\n[[realms]]\nname = "realm1"\n'
        + roles
    )


@pytest_twisted.async_yield_fixture(scope="module")
async def js_router(tmp_path_factory, certs):
    running = await start_router(router_config(certs), tmp_path_factory.mktemp("js-router"))
    yield running
    await running.stop()


async def run_scenario(router, certs, client: str, transport: str, credentials: dict, **extra) -> dict:
    listener_name, scheme, serializer = TRANSPORTS[transport]
    longpoll = scheme in LONGPOLL_SCHEMES
    if longpoll:
        extra = {"transport": "longpoll", **extra}
    config = {
        "url": f"{scheme}://127.0.0.1:{router.port(listener_name)}/{'lp' if longpoll else 'ws'}",
        "realm": "realm1",
        "serializer": serializer,
        "payloads": PAYLOADS,
        "timeout": 20,
        **credentials,
        **extra,
    }
    out, err, code = await node.run_node(SCRIPTS[client], [json.dumps(config)],
                                         extra_env={"NODE_EXTRA_CA_CERTS": str(certs.ca)})
    return node.one_json_line(out, err, code)


def expected(client: str, method: str, transport: str, reported: dict) -> dict:
    """The whole report for a run with `method` over `transport`; an anonymous authid is random, so it is taken
    from the report after checking its shape."""
    welcome = dict(WELCOMES[method])
    if method == "anonymous":
        authid = reported.get("welcome", {}).get("authid")
        if isinstance(authid, str) and re.fullmatch(r"anonymous-[0-9a-f]{16}", authid):
            welcome["authid"] = authid
        else:
            welcome["authid"] = "anonymous-<16 hex digits>"  # shows up in the comparison's diff
    serializer = TRANSPORTS[transport][2]
    traffic = {**copy.deepcopy(EXPECTED_TRAFFIC), **CLIENT_DIFFERENCES[client]}
    return {"welcome": welcome, "serializer": f"wamp.2.{serializer}", **traffic}


def scenario_cases():
    """(client, method, transport) for every combination."""
    for client in SCRIPTS:
        for method in CREDENTIALS:
            for transport in TRANSPORTS:
                if TRANSPORTS[transport][1] in LONGPOLL_SCHEMES and client not in LONGPOLL_CLIENTS:
                    continue
                yield pytest.param(client, method, transport, id=f"{client}-{method}-{transport}")


@pytest.mark.parametrize("client,method,transport", list(scenario_cases()))
@pytest_twisted.ensureDeferred
async def test_js_client_pubsub_and_rpc(js_packages, js_router, certs, client, method, transport):
    """The JavaScript client joins with these credentials over this transport and serializer and WELCOME names the
    expected authid/role/method/provider; both events (exact subscription with exclude_me=false, prefix
    subscription with the concrete topic) arrive once with their exact args and kwargs; the call returns the
    callee's args and kwargs; the progressive call delivers 3, 2, 1 and then the final result; the callee's error
    reaches the caller with its URI, args and kwargs. Afterwards the router holds no session of the run."""
    reported = await run_scenario(js_router, certs, client, transport, CREDENTIALS[method])
    assert reported == expected(client, method, transport, reported)
    assert js_router.realm().sessions == {}


@pytest.mark.parametrize("method", ["ticket", "wampcra"])
@pytest.mark.parametrize("client,transport", [("autobahn", "ws-json"), ("wampy", "ws-json"),
                                              ("autobahn", "longpoll-json")])
@pytest_twisted.ensureDeferred
async def test_js_client_with_wrong_secret_is_refused(js_packages, js_router, certs, client, transport, method):
    """A JavaScript client with the right authid and a wrong secret is refused: ABORT with
    wamp.error.authentication_failed reaches the client, and it never joins."""
    credentials = dict(CREDENTIALS[method], secret="not-the-secret")
    reported = await run_scenario(js_router, certs, client, transport, credentials, expect="refusal")
    assert reported == {"refused": {"reason": "wamp.error.authentication_failed"}}
    assert js_router.realm().sessions == {}


def _tls_handshake_offering_alpn(port: int, ca: Path) -> str | None:
    """Connect with TLS to 127.0.0.1:port offering ALPN h2 and http/1.1, as browsers do; the protocol chosen."""
    context = ssl.create_default_context(cafile=str(ca))
    context.set_alpn_protocols(["h2", "http/1.1"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="localhost") as tls:
            return tls.selected_alpn_protocol()


@pytest_twisted.ensureDeferred
async def test_tls_listener_accepts_a_client_offering_alpn(js_router, certs):
    """A TLS client that offers ALPN (every browser, node's WebSocket) completes the handshake with a WebSocket
    listener; the router picks http/1.1 or no protocol at all, never an alert."""
    selected = await threads.deferToThread(_tls_handshake_offering_alpn, js_router.port("tls"), certs.ca)
    assert selected in ("http/1.1", None)
