"""The long-poll transport's framing (router/tx/longpoll_channel.py: batched bodies, the open request's protocol choice)
and its config keys (`[listeners.websocket] longpoll_*`)."""

from __future__ import annotations

import pytest

from wampgate.config import load
from wampgate.tx.longpoll import choose_protocol
from wampgate.tx.longpoll_channel import BadBody, join_batch, split_batch
from tests.unit.test_config import listener, problems_of, realm, write


# -- framing -----------------------------------------------------------------------------------------------------


def test_batch_round_trip():
    """join_batch ends every message with 0x1E; split_batch gives the messages back in order."""
    messages = [b'[1,"realm1",{}]', b'[32,1,{},"a.b"]', b"[6,{},\"x\"]"]
    body = join_batch(messages)
    assert body == b'[1,"realm1",{}]\x1e[32,1,{},"a.b"]\x1e[6,{},"x"]\x1e'
    assert split_batch(body) == messages


def test_batch_of_one():
    """A batch may hold one message."""
    assert split_batch(b"[1]\x1e") == [b"[1]"]


@pytest.mark.parametrize("body", [b"", b"[1]", b"[1]\x1e[2]", b"\x1e", b"[1]\x1e\x1e", b"\x1e[1]\x1e"])
def test_malformed_batches_are_refused(body):
    """A batch without the final 0x1E, or with an empty message anywhere, is refused (BadBody)."""
    with pytest.raises(BadBody):
        split_batch(body)


def test_choose_protocol_takes_the_clients_first_supported():
    """The first protocol of the client's list the router speaks, in the client's order."""
    assert choose_protocol(b'{"protocols": ["wamp.2.msgpack", "wamp.2.json"]}', True) == "wamp.2.json"
    assert choose_protocol(b'{"protocols": ["wamp.2.json.batched", "wamp.2.json"]}', True) == "wamp.2.json.batched"
    assert choose_protocol(b'{"protocols": ["wamp.2.cbor"]}', True) is None


def test_choose_protocol_without_json_on_the_listener():
    """A listener whose serializers leave out json speaks no long-poll protocol."""
    assert choose_protocol(b'{"protocols": ["wamp.2.json"]}', False) is None


@pytest.mark.parametrize("body", [b"", b"\xff", b"null", b"[]", b'{"protocols": null}', b'{"protocols": []}',
                                  b'{"protocols": ["wamp.2.json", 2]}', b'{"other": ["wamp.2.json"]}'])
def test_malformed_open_bodies_are_refused(body):
    """Anything but {"protocols": [strings, ...]} is refused (BadBody)."""
    with pytest.raises(BadBody):
        choose_protocol(body, True)


# -- config ------------------------------------------------------------------------------------------------------


def test_longpoll_is_off_by_default(tmp_path):
    """Without longpoll_path the transport is off, with its documented defaults."""
    ws = load(write(tmp_path, listener() + realm())).listeners[0].websocket
    assert ws.longpoll_path == ""
    assert (ws.longpoll_receive_timeout, ws.longpoll_idle_timeout, ws.longpoll_max_transports) == (10.0, 60.0, 1000)


def test_longpoll_keys_are_read(tmp_path):
    tables = ('[listeners.websocket]\nlongpoll_path = "/app/lp"\nlongpoll_receive_timeout = 5\n'
              "longpoll_idle_timeout = 30\nlongpoll_max_transports = 7\n")
    ws = load(write(tmp_path, listener(tables=tables) + realm())).listeners[0].websocket
    assert (ws.longpoll_path, ws.longpoll_receive_timeout, ws.longpoll_idle_timeout,
            ws.longpoll_max_transports) == ("/app/lp", 5.0, 30.0, 7)


@pytest.mark.parametrize("path", ['"lp"', '"/lp/"', '"/lp?x=1"', '"/"'])
def test_longpoll_path_must_be_absolute(tmp_path, path):
    """longpoll_path is "" or an absolute path without a trailing slash or query."""
    problems = problems_of(tmp_path, listener(tables=f"[listeners.websocket]\nlongpoll_path = {path}\n") + realm())
    assert problems == [f'listeners[0].websocket.longpoll_path = {path}: expected "" (off) or an absolute URL path '
                        'such as "/lp"']


def test_longpoll_path_may_not_be_the_websocket_path(tmp_path):
    """The long-poll path is not a path the listener already serves (paths are matched exactly, so "/ws/lp" beside
    "/ws" is fine)."""
    tables = '[listeners.websocket]\npath = "/ws"\nlongpoll_path = "/ws"\n'
    problems = problems_of(tmp_path, listener(tables=tables) + realm())
    assert problems == ['listeners[0].websocket.longpoll_path = "/ws": expected a path no WebSocket or bridge '
                        'endpoint of this listener already serves']


@pytest.mark.parametrize("path,ws_path", [("/ws/lp", "/ws"), ("/app", "/app/ws")])
def test_longpoll_path_may_lie_beside_or_below_the_websocket_path(tmp_path, path, ws_path):
    tables = f'[listeners.websocket]\npath = "{ws_path}"\nlongpoll_path = "{path}"\n'
    assert load(write(tmp_path, listener(tables=tables) + realm())).listeners[0].websocket.longpoll_path == path


def test_longpoll_needs_the_websocket_transport(tmp_path):
    """A RawSocket-only listener has no HTTP side to serve long-poll on."""
    text = listener(keys='transports = ["rawsocket"]', tables='[listeners.websocket]\nlongpoll_path = "/lp"\n')
    problems = problems_of(tmp_path, text + realm())
    assert problems == ['listeners[0].websocket.longpoll_path = "/lp": needs "websocket" in listeners[0].transports: '
                        "long-poll is served on the WebSocket side of the port"]


@pytest.mark.parametrize("key,value,allowed", [
    ("longpoll_receive_timeout", "0.5", "a number from 1.0 to 300.0"),
    ("longpoll_idle_timeout", "7200", "a number from 1.0 to 3600.0"),
    ("longpoll_max_transports", "0", "an integer from 1 to 1000000"),
])
def test_longpoll_bounds(tmp_path, key, value, allowed):
    """Each longpoll_* number is bounded; the error names the key, the value and what is allowed."""
    problems = problems_of(tmp_path, listener(tables=f"[listeners.websocket]\n{key} = {value}\n") + realm())
    assert problems == [f"listeners[0].websocket.{key} = {value}: expected {allowed}"]
