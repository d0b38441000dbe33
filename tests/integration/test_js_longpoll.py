"""Autobahn|JS's long-poll transport under node (tests/js/longpoll_client.mjs) against a router in this process, with
a Python WebSocket session as its peer in the same realm: pub/sub and RPC both ways, a connection the router drops
(Autobahn|JS reconnects by itself over a new long-poll transport), and a fresh connection after a clean close.

The full interop scenario (two JavaScript sessions, every credential kind, plain and TLS) also runs over long-poll
in test_js_clients.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest_twisted
from autobahn.wamp import message as wamp

from tests.support import node
from tests.support.clients import Collector, Target, connect, leave
from tests.support.router import listener, realm_anonymous_all
from tests.support.wait import bounded

JS_DIR = Path(__file__).resolve().parent.parent / "js"
SCRIPT = JS_DIR / "longpoll_client.mjs"


@pytest_twisted.async_fixture()
async def js_packages():
    node.node_executable()
    return node.install_packages(JS_DIR)


async def python_peer(router):
    """A WebSocket session offering the procedures the script calls and subscribed to its topic."""
    from twisted.internet import reactor

    peer = await connect(Target(port=router.port("web"), transport="websocket"))
    received = Collector(expected=1)
    await peer.subscribe(received, "com.lp.from_js")

    async def publish(text):
        from autobahn.wamp.types import PublishOptions

        await peer.publish("com.lp.to_js", text, options=PublishOptions(acknowledge=True))

    async def call_js(*args, **kwargs):
        result = await peer.call("com.lp.js.echo", *args, **kwargs)
        return {"args": list(result.results), "kwargs": result.kwresults}

    def drop_me(session_id):
        """Drop the caller's long-poll transport once this call's RESULT has been handed to a receive, as a proxy
        cutting the connection would."""
        channel = router.service.context.realms["realm1"].core.sessions[session_id].channel
        send = channel.send_message

        def drop_when_delivered():
            if channel._outbox:
                reactor.callLater(0.01, drop_when_delivered)
            else:
                channel.abort_transport()

        def send_then_drop(msg):
            refusal = send(msg)
            if type(msg) is wamp.Result:
                reactor.callLater(0, drop_when_delivered)
            return refusal

        channel.send_message = send_then_drop
        return "dropping"

    await peer.register(lambda a, b: a + b, "com.lp.py.add")
    await peer.register(publish, "com.lp.py.publish")
    await peer.register(call_js, "com.lp.py.call_js")
    await peer.register(drop_me, "com.lp.py.drop_me")
    return peer, received


@pytest_twisted.ensureDeferred
async def test_autobahn_js_longpoll_with_a_websocket_peer_and_reconnects(js_packages, stoppable, tmp_path):
    """Over long-poll Autobahn|JS joins (protocol wamp.2.json, transport type longpoll), calls the WebSocket peer's
    procedure (5), gets the event the peer publishes, has its own procedure called by the peer (reversed args,
    kwargs kept), and its acknowledged publication reaches the peer. When the router drops its transport the
    connection is "lost" and Autobahn|JS reconnects by itself over a new transport (second join, call answered 42);
    after leaving ("closed") a new connection joins and is answered. The router then holds only the peer."""
    websocket = 'longpoll_path = "/lp"'
    router = await stoppable(listener("web", ("websocket",), websocket=websocket) + realm_anonymous_all(), tmp_path)
    peer, received = await python_peer(router)
    try:
        url = f"http://127.0.0.1:{router.port('web')}/lp"
        out, err, code = await node.run_node(SCRIPT, [json.dumps({"url": url, "realm": "realm1", "timeout": 40})])
        reported = node.one_json_line(out, err, code)
        opened = {"protocol": "wamp.2.json", "type": "longpoll", "authrole": "anonymous"}
        assert reported == {"log": [
            {"open": 1, **opened},
            {"add": 5},
            {"event": {"args": ["hello from python"], "kwargs": {}}},
            {"echo": {"args": [3, "two", 1], "kwargs": {"k": "v", "by": "js"}}},
            {"published": True},
            {"drop": "dropping"},
            {"close": "lost", "will_retry": True},
            {"open": 2, **opened},
            {"add": 42},
            {"close": "closed", "will_retry": False},
            {"reopened": True, "add": 2},
            {"close": "closed"},
        ]}, err[-3000:]
        events = await bounded(received.done)
        assert events == [(("hello from js",), {"n": 1})]
        sessions = router.realm().sessions
        assert [p.channel.transport_info().kind for p in sessions.values()] == ["websocket"]
    finally:
        await leave(peer)
