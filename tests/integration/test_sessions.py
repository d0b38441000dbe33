"""Session lifecycle against a real router: what WELCOME announces, session ids, GOODBYE in both directions, and
the HELLO timeout that drops clients which connect but never establish a session.
"""

from __future__ import annotations

import textwrap
from functools import partial

import pytest
import pytest_twisted
from autobahn.wamp.types import PublishOptions

from tests.integration.conftest import target
from tests.support import raw, wait
from tests.support.clients import Target, connect, leave
from tests.support.raw import GOODBYE, SUBSCRIBE, SUBSCRIBED, WELCOME, assert_router_serves, bounded
from tests.support.router import REALM1_ANONYMOUS_ALL, listener, start_router

MAX_ID = 2**53
BROKER_FEATURES = {
    "publisher_identification": True,
    "pattern_based_subscription": True,
    "subscriber_blackwhite_listing": True,
    "publisher_exclusion": True,
    "payload_transparency": True,
    "session_meta_api": True,
    "subscription_meta_api": True,
}


def _reactor():
    from twisted.internet import reactor

    return reactor


@pytest.fixture
def clients():
    tracker = raw.Tracker()
    yield tracker
    tracker.close_all()


# After each test: WebSocket on the universal listener, RawSocket on the RawSocket-only one.
still_serves = partial(wait.still_serves, rawsocket_listener="rawsocket")


# -- WELCOME and session ids -------------------------------------------------------------------------------------


@pytest.mark.parametrize("via", [("universal", "json"), ("rawsocket", "msgpack")], ids=["websocket", "rawsocket"])
@pytest_twisted.ensureDeferred
async def test_welcome_announces_exactly_the_broker_features(router, clients, via):
    """WELCOME.Details.roles.broker.features is exactly the seven features the broker implements, each True, and
    WELCOME names the realm and the anonymous identity."""
    listener_name, serializer = via
    port = router.port(listener_name)
    client = clients(
        await (raw.open_websocket(port, serializer) if listener_name == "universal" else raw.open_rawsocket(port))
    )
    welcome = await client.join()
    details = welcome[2]
    assert details["roles"]["broker"] == {"features": BROKER_FEATURES}
    assert details["realm"] == "realm1"
    assert details["authrole"] == "anonymous"
    assert details["authmethod"] == "anonymous"
    await still_serves(router)


@pytest_twisted.ensureDeferred
async def test_session_ids_are_random_integers_in_range_and_distinct(router, clients):
    """Every WELCOME carries an integer session id in [1, 2**53]; ids differ between sessions on any transport, and
    each id is the key under which the realm lists the session."""
    ids = []
    for _ in range(5):
        ws = clients(await raw.open_websocket(router.port("universal")))
        ids.append((await ws.join())[1])
        rs = clients(await raw.open_rawsocket(router.port("rawsocket")))
        ids.append((await rs.join())[1])
    for session_id in ids:
        assert type(session_id) is int and 1 <= session_id <= MAX_ID
    assert len(set(ids)) == len(ids)
    assert set(ids) <= set(router.realm().sessions)
    await still_serves(router)


# -- client-initiated GOODBYE ------------------------------------------------------------------------------------


@pytest.mark.parametrize("via", ["websocket", "rawsocket"])
@pytest_twisted.ensureDeferred
async def test_client_goodbye_is_answered_and_transport_can_rejoin(router, clients, via):
    """A client's GOODBYE is answered with GOODBYE wamp.close.normal (as Crossbar does); the session leaves the
    realm, the transport stays open, and a new HELLO on it gets a new WELCOME with a different session id."""
    if via == "websocket":
        client = clients(await raw.open_websocket(router.port("universal")))
    else:
        client = clients(await raw.open_rawsocket(router.port("rawsocket")))
    first = (await client.join())[1]
    client.send([GOODBYE, {}, "wamp.close.close_realm"])
    messages = await client.wait_messages(2)
    assert messages[1] == [GOODBYE, {}, "wamp.close.normal"]
    assert first not in router.realm().sessions
    second_welcome = await client.join()
    second = second_welcome[1]
    assert second_welcome[0] == WELCOME and second != first
    assert second in router.realm().sessions
    client.send([SUBSCRIBE, 1, {}, "com.example.rejoined"])
    assert (await client.wait_messages(4))[3][:2] == [SUBSCRIBED, 1]
    await still_serves(router)


@pytest_twisted.ensureDeferred
async def test_late_message_after_goodbye_is_dropped(router, clients):
    """A message of the old session arriving after the GOODBYE exchange (sent before the client saw the reply) is
    dropped silently: no ERROR, no ABORT. Proven by order: the next HELLO on the connection is answered with a
    WELCOME that directly follows the GOODBYE reply, so nothing answered the late SUBSCRIBE."""
    client = clients(await raw.open_websocket(router.port("universal")))
    await client.join()
    client.send([GOODBYE, {}, "wamp.close.close_realm"])
    client.send([SUBSCRIBE, 5, {}, "com.example.late"])
    await client.wait_messages(2)
    welcome = await client.join()
    assert client.messages[1:] == [[GOODBYE, {}, "wamp.close.normal"], welcome]
    assert client.close is None
    await still_serves(router)


# -- router-initiated GOODBYE ------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_router_goodbye_reaches_autobahn_client(router):
    """The router's GOODBYE (here wamp.close.system_shutdown) reaches an Autobahn client's onLeave with that reason;
    the realm no longer lists the session."""
    client = await bounded(connect(target(router, "universal", "websocket")))
    session_id = client._session_id
    assert session_id in router.realm().sessions
    router.realm().sessions[session_id].channel.session.goodbye("wamp.close.system_shutdown")
    details = await bounded(client.on_left)
    assert details.reason == "wamp.close.system_shutdown"
    assert session_id not in router.realm().sessions
    await bounded(client.on_gone)
    await still_serves(router)


@pytest.mark.parametrize("via", ["websocket", "rawsocket"])
@pytest_twisted.ensureDeferred
async def test_router_goodbye_then_client_reply_closes_transport(router, clients, via):
    """After the router's GOODBYE the client's GOODBYE reply makes the router close the transport (WebSocket 1000);
    messages other than GOODBYE meanwhile get no answer."""
    if via == "websocket":
        client = clients(await raw.open_websocket(router.port("universal")))
    else:
        client = clients(await raw.open_rawsocket(router.port("rawsocket")))
    session_id = (await client.join())[1]
    router.realm().sessions[session_id].channel.session.goodbye("wamp.close.system_shutdown")
    messages = await client.wait_messages(2)
    assert messages[1] == [GOODBYE, {}, "wamp.close.system_shutdown"]
    assert session_id not in router.realm().sessions
    client.send([SUBSCRIBE, 3, {}, "com.example.ignored"])
    client.send([GOODBYE, {}, "wamp.close.goodbye_and_out"])
    if via == "websocket":
        _clean, code, _reason = await client.wait_closed()
        assert code == 1000
    else:
        await client.wait_lost()
    assert len(client.messages) == 2
    await still_serves(router)


# -- timeouts ----------------------------------------------------------------------------------------------------

FAST_LIMITS = textwrap.dedent("""
    [limits]
    hello_timeout = 0.5
    goodbye_timeout = 0.5
    """)


@pytest_twisted.async_yield_fixture()
async def fast_router(tmp_path):
    """A router whose clients must reach WELCOME within 0.5 s, and answer the router's GOODBYE within 0.5 s."""
    config = (
        FAST_LIMITS
        + listener("universal", websocket="open_handshake_timeout = 0.5")
        + listener("rawsocket", ("rawsocket",))
        + REALM1_ANONYMOUS_ALL
    )
    running = await start_router(config, tmp_path)
    yield running
    await running.stop()


async def join_meanwhile(router) -> None:
    """A normal client joins and completes a round trip while an idle client is waiting to be dropped."""
    await assert_router_serves(router.port("universal"), "websocket", "json")


@pytest_twisted.ensureDeferred
async def test_websocket_without_hello_is_closed_after_hello_timeout(fast_router, clients):
    """A WebSocket client that completes the WebSocket handshake but never sends HELLO is closed with 1008 after
    hello_timeout (0.5 s; asserted within 1.5 s), while a normal client joins and works meanwhile."""
    reactor = _reactor()
    started = reactor.seconds()
    idle = clients(await raw.open_websocket(fast_router.port("universal")))
    closed = idle.wait_closed(timeout=1.5)
    await join_meanwhile(fast_router)
    _clean, code, _reason = await closed
    elapsed = reactor.seconds() - started
    assert code == 1008
    assert 0.4 <= elapsed <= 1.5
    assert idle.messages == []
    await still_serves(fast_router)


@pytest_twisted.ensureDeferred
async def test_rawsocket_without_hello_is_closed_after_hello_timeout(fast_router, clients):
    """A RawSocket client that completes the RawSocket handshake but never sends HELLO is disconnected after
    hello_timeout (0.5 s; asserted within 1.5 s), while a normal client joins and works meanwhile."""
    reactor = _reactor()
    started = reactor.seconds()
    idle = clients(await raw.open_rawsocket(fast_router.port("rawsocket")))
    lost = idle.wait_lost(timeout=1.5)
    await join_meanwhile(fast_router)
    await lost
    assert 0.4 <= reactor.seconds() - started <= 1.5
    assert idle.frames() == []
    await still_serves(fast_router)


@pytest_twisted.ensureDeferred
async def test_client_silent_after_goodbye_is_closed_after_hello_timeout(fast_router, clients):
    """After a GOODBYE exchange the transport must HELLO again within hello_timeout, or it is closed (1008)."""
    client = clients(await raw.open_websocket(fast_router.port("universal")))
    await client.join()
    client.send([GOODBYE, {}, "wamp.close.close_realm"])
    await client.wait_messages(2)
    _clean, code, _reason = await client.wait_closed(timeout=1.5)
    assert code == 1008
    await still_serves(fast_router)


@pytest_twisted.ensureDeferred
async def test_client_not_answering_router_goodbye_is_closed_after_goodbye_timeout(fast_router, clients):
    """A client that never answers the router's GOODBYE is closed after goodbye_timeout (0.5 s; within 1.5 s)."""
    client = clients(await raw.open_websocket(fast_router.port("universal")))
    session_id = (await client.join())[1]
    fast_router.realm().sessions[session_id].channel.session.goodbye("wamp.close.system_shutdown")
    _clean, code, _reason = await client.wait_closed(timeout=1.5)
    assert code == 1000
    assert client.messages[1] == [GOODBYE, {}, "wamp.close.system_shutdown"]
    await still_serves(fast_router)


SILENT_TCP = {
    # listener, bytes written (then nothing more)
    "rawsocket-listener-no-bytes": ("rawsocket", b""),
    "rawsocket-listener-partial-handshake": ("rawsocket", b"\x7f\xf2"),
    "universal-listener-no-bytes": ("universal", b""),
    "universal-listener-partial-rawsocket-handshake": ("universal", b"\x7f"),
}


@pytest.mark.parametrize("case", list(SILENT_TCP))
@pytest_twisted.ensureDeferred
async def test_connection_that_never_handshakes_is_closed(fast_router, clients, case):
    """hello_timeout counts from connecting: a TCP client that sends nothing (or a partial RawSocket handshake)
    is disconnected within 1.5 s when hello_timeout is 0.5 s, so idle sockets cannot pile up."""
    listener_name, data = SILENT_TCP[case]
    tcp = clients(await raw.open_tcp(fast_router.port(listener_name)))
    if data:
        tcp.write(data)
    await tcp.wait_lost(timeout=1.5)
    assert bytes(tcp.received) == b""
    await still_serves(fast_router)


@pytest_twisted.ensureDeferred
async def test_hello_timeout_does_not_touch_established_sessions(fast_router, clients):
    """A session that reached WELCOME in time is not dropped when hello_timeout passes. Proven without a sleep: a
    connection opened after it that never sends HELLO is closed (1008), so the established session's hello_timeout
    has passed too; the established session then still completes an acknowledged publish."""
    client = await bounded(connect(Target(port=fast_router.port("universal"))))
    idle = clients(await raw.open_websocket(fast_router.port("universal")))
    _clean, code, _reason = await idle.wait_closed(timeout=1.5)
    assert code == 1008
    await bounded(client.publish("com.example.alive", options=PublishOptions(acknowledge=True)))
    assert client._session_id in fast_router.realm().sessions
    await bounded(leave(client))
    await still_serves(fast_router)
