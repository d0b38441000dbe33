"""Autobahn's asyncio clients interoperate with the router over WebSocket, RawSocket and TLS.

txaio picks one framework per process and the router runs on Twisted, so each asyncio client is a subprocess
(tests/support/asyncio_client.py) started with getProcessOutputAndValue: the reactor keeps serving meanwhile. The
script subscribes, publishes to itself with exclude_me=False and acknowledge=True, and prints one JSON line; the
tests compare that line exactly. The script kills itself after 10 s; the Deferred here is bounded at 20 s as well.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import pytest_twisted
from twisted.internet import utils

SCRIPT = Path(__file__).resolve().parent.parent / "support" / "asyncio_client.py"
PROCESS_TIMEOUT = 20.0

# What the script reports when everything works; the transport-specific keys are filled in per test.
EXPECTED_BASE = {
    "realm": "realm1",
    "authmethod": "anonymous",
    "authrole": "anonymous",
    "args": [1, "zwei \u00fc \U0001f600", {"drei": [3.5, None, True]}, 2**53, {"hex": "00ff77616d70"}],
    "kwargs": {"vier": {"f\u00fcnf": [False, -1]}, "blob": {"hex": "0102"}},
    "payload_identical": True,
    "event_topic": "com.example.asyncio",  # Autobahn fills in the subscription's topic for exact subscriptions
    "event_publisher": None,  # not disclosed
    "subscription_matches": True,
    "publication_matches": True,
}


async def run_client(url: str, serializer: str, ca: Path | None = None) -> tuple[str, str, int]:
    """Run the asyncio client against `url`; (stdout, stderr, exit code)."""
    from twisted.internet import reactor

    args = ["-I", str(SCRIPT), url, serializer]
    if ca is not None:
        args += ["--ca", str(ca)]
    d = utils.getProcessOutputAndValue(sys.executable, args, env=dict(os.environ), reactor=reactor)
    d.addTimeout(PROCESS_TIMEOUT, reactor)
    out, err, code = await d
    return out.decode(), err.decode(), code


def expected_line(serializer: str, tls: bool) -> str:
    expected = dict(EXPECTED_BASE, serializer=serializer, tls=tls)
    return json.dumps(expected, sort_keys=True, separators=(",", ":")) + "\n"


CASES = [
    # (id, listener, url scheme + path, serializer, tls)
    ("websocket-json", "websocket", "ws://127.0.0.1:{port}/ws", "json", False),
    ("websocket-msgpack", "universal", "ws://127.0.0.1:{port}/ws", "msgpack", False),
    ("rawsocket-cbor", "rawsocket", "rs://127.0.0.1:{port}", "cbor", False),
    ("rawsocket-cbor-universal", "universal", "rs://127.0.0.1:{port}", "cbor", False),
    ("wss-json", "tls", "wss://127.0.0.1:{port}/ws", "json", True),
    ("rss-msgpack", "tls", "rss://localhost:{port}", "msgpack", True),
]


@pytest.mark.parametrize("listener_name,url,serializer,tls", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest_twisted.ensureDeferred
async def test_asyncio_client_publishes_and_receives_its_own_event(router, certs, listener_name, url, serializer,
                                                                  tls):
    """An Autobahn asyncio client joins as anonymous, subscribes, publishes to itself (exclude_me=False,
    acknowledge=True) and gets its payload back unchanged, with the publication id PUBLISHED announced."""
    port = router.port(listener_name)
    out, err, code = await run_client(url.format(port=port), serializer, ca=certs.ca if tls else None)
    assert (out, code) == (expected_line(serializer, tls), 0), err
    assert router.realm().sessions == {}  # it left, and the router forgot it


@pytest_twisted.ensureDeferred
async def test_asyncio_client_refuses_a_server_it_does_not_trust(router):
    """Over wss without the test CA, the asyncio client fails certificate verification and reports it."""
    port = router.port("tls")
    out, err, code = await run_client(f"wss://127.0.0.1:{port}/ws", "json")
    assert code == 2, (out, err)
    result = json.loads(out)
    assert list(result) == ["error"]
    assert result["error"].startswith("SSLCertVerificationError:")
