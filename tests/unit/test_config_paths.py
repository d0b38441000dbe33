"""`[[listeners.paths]]` and `[[listeners.bridges]]`: what a listener serves on which path, and the bridges its
endpoints act through. Every mistake is one problem line naming the key, the value and what is allowed."""

from __future__ import annotations

import pytest

from wampgate.config import load
from tests.unit.test_config import listener, problems_of, realm, write

PUBLISH = '[[paths]]\npath = "/publish"\nkind = "publish"\nbridge = "b"\n'
BRIDGE = '[[bridges]]\nname = "b"\nrealm = "realm1"\nauthentication = "none"\nauthrole = "anonymous"\n'


def tables(*parts: str) -> str:
    """Sub-tables of the (last) listener: `[[paths]]` written as `[[listeners.paths]]`."""
    return "\n".join(part.replace("[[paths]]", "[[listeners.paths]]").replace("[[bridges]]", "[[listeners.bridges]]")
                     for part in parts)


def path_entry(path: str, kind: str = "websocket", extra: str = "") -> str:
    return f'[[paths]]\npath = "{path}"\nkind = "{kind}"\n{extra}\n'


def test_without_paths_the_websocket_is_where_it_was(tmp_path):
    """No [[listeners.paths]]: the WebSocket is at [listeners.websocket] path, as before paths existed."""
    config = load(write(tmp_path, listener(tables='[listeners.websocket]\npath = "/wamp"') + realm()))
    assert config.listeners[0].websocket_paths == ("/wamp",)
    assert config.listeners[0].http_endpoints == ()


def test_several_websocket_paths_and_root(tmp_path):
    """WebSocket entries give every WebSocket path, "/" included, beside bridge endpoints."""
    text = listener(tables=tables(path_entry("/"), path_entry("/ws"), path_entry("/app/wamp"), PUBLISH, BRIDGE))
    listener_config = load(write(tmp_path, text + realm())).listeners[0]
    assert listener_config.websocket_paths == ("/", "/ws", "/app/wamp")
    assert [(p.path, p.kind) for p in listener_config.http_endpoints] == [("/publish", "publish")]
    assert listener_config.bridges["b"].authrole == "anonymous"


def test_bridge_paths_keep_the_default_websocket(tmp_path):
    """Bridge paths alone: the WebSocket stays at [listeners.websocket] path (default "/ws"), listed first."""
    config = load(write(tmp_path, listener(tables=tables(PUBLISH, BRIDGE)) + realm()))
    assert [(p.path, p.kind) for p in config.listeners[0].paths] == [("/ws", "websocket"), ("/publish", "publish")]


@pytest.mark.parametrize("path", ["ws", "/ws/", "//ws", "/a//b", "/a/../b", "/.", "/a?b=1", "/a b", "/%41", "/a#b",
                                  "/" + "x" * 1024, ""])
def test_bad_paths_are_refused(tmp_path, path):
    """A path must be "/" or clean absolute segments: the problem names the key and what is allowed."""
    problems = problems_of(tmp_path, listener(tables=tables(path_entry(path))) + realm())
    assert len(problems) == 1
    assert problems[0].startswith("listeners[0].paths[0].path = ")
    assert 'expected "/" or an absolute URL path' in problems[0]


def test_bad_websocket_path_key_is_refused_the_same_way(tmp_path):
    """[listeners.websocket] path follows the same rule ("/" is now allowed there too)."""
    problems = problems_of(tmp_path, listener(tables='[listeners.websocket]\npath = "/ws/"') + realm())
    assert problems[0].startswith('listeners[0].websocket.path = "/ws/": expected "/" or an absolute URL path')
    config = load(write(tmp_path, listener(tables='[listeners.websocket]\npath = "/"') + realm()))
    assert config.listeners[0].websocket_paths == ("/",)


def test_two_things_on_one_path(tmp_path):
    """Two entries with one path: the second is refused, naming what already serves it."""
    text = listener(tables=tables(path_entry("/x"), path_entry("/x", "publish", 'bridge = "b"'), BRIDGE))
    assert problems_of(tmp_path, text + realm()) == [
        "listeners[0].paths[1].path = \"/x\": expected each path once; it is already served as 'websocket'"]


def test_bridge_path_on_the_default_websocket_path(tmp_path):
    """A bridge endpoint at the WebSocket's own path ([listeners.websocket] path) is a clash."""
    text = listener(tables=tables(path_entry("/ws", "publish", 'bridge = "b"'), BRIDGE))
    problems = problems_of(tmp_path, text + realm())
    assert problems == ['listeners[0].paths[0].path = "/ws": the listener\'s WebSocket is already at this path '
                        "(listeners[0].websocket.path); expected each path once"]


def test_websocket_path_key_and_entries_together(tmp_path):
    """[listeners.websocket] path beside WebSocket entries is ambiguous: refused."""
    text = listener(tables='[listeners.websocket]\npath = "/old"\n' + tables(path_entry("/new")))
    problems = problems_of(tmp_path, text + realm())
    assert problems == ['listeners[0].websocket.path: the WebSocket paths are given by [[listeners[0].paths]] entries '
                        'of kind "websocket"; expected one or the other, not both']


@pytest.mark.parametrize("entry,expected", [
    ('[[paths]]\npath = "/x"\n', 'listeners[0].paths[0].kind: missing; expected one of "websocket", "publish", '
                                 '"call", "webhook"'),
    ('[[paths]]\npath = "/x"\nkind = "ftp"\n', 'listeners[0].paths[0].kind = "ftp": expected one of "websocket", '
                                               '"publish", "call", "webhook"'),
    ('[[paths]]\nkind = "websocket"\n', "listeners[0].paths[0].path: missing; expected a string"),
    ('[[paths]]\npath = "/x"\nkind = "websocket"\nbridge = "b"\n',
     "listeners[0].paths[0].bridge: unknown key; allowed: kind, path"),
    ('[[paths]]\npath = "/x"\nkind = "publish"\n',
     "listeners[0].paths[0].bridge: missing; expected the name of one of this listener's bridges"),
    ('[[paths]]\npath = "/x"\nkind = "call"\nbridge = "nope"\n',
     'listeners[0].paths[0].bridge = "nope": expected the name of one of this listener\'s [[listeners[0].bridges]]: '
     "b"),
    ('[[paths]]\npath = "/x"\nkind = "webhook"\nbridge = "b"\n',
     "listeners[0].paths[0].topic: missing; expected the topic its events are published on"),
    ('[[paths]]\npath = "/x"\nkind = "webhook"\nbridge = "b"\ntopic = "t"\nheaders = ["bad header"]\n',
     'listeners[0].paths[0].headers = ["bad header"]: expected HTTP header names such as "content-type" or '
     '"x-github-event"'),
])
def test_path_entry_problems(tmp_path, entry, expected):
    """Each wrong path entry is one line naming its key."""
    assert problems_of(tmp_path, listener(tables=tables(entry, BRIDGE)) + realm()) == [expected]


@pytest.mark.parametrize("bridge,expected", [
    ('realm = "realm1"\nauthentication = "none"\nauthrole = "anonymous"\n',
     ["listeners[0].bridges[0].name: missing; expected a string"]),
    ('name = "b"\nrealm = "nowhere"\nauthentication = "none"\nauthrole = "anonymous"\n',
     ['listeners[0].bridges[0].realm = "nowhere": unknown realm; defined realms: realm1']),
    ('name = "b"\nrealm = "realm1"\nauthentication = "none"\nauthrole = "admin"\n',
     ['listeners[0].bridges[0].authrole = "admin": expected a role of realm "realm1": anonymous']),
    ('name = "b"\nrealm = "realm1"\nauthrole = "anonymous"\n',
     ['listeners[0].bridges[0].key: missing; needed with authentication = "signature"',
      'listeners[0].bridges[0].secret: missing; needed with authentication = "signature"']),
    ('name = "b"\nrealm = "realm1"\nauthrole = "anonymous"\nkey = "k"\nsecret = "short"\n',
     ["listeners[0].bridges[0].secret = <redacted string>: expected a secret of at least 16 bytes"]),
    ('name = "b"\nrealm = "realm1"\nauthentication = "jwt"\n',
     ['listeners[0].bridges[0].authentication = "jwt": expected a [listeners[0].auth.jwt] table, whose settings '
      "verify the bridge's tokens"]),
    ('name = "b"\nrealm = "realm1"\nauthentication = "basic"\nauthrole = "anonymous"\n',
     ['listeners[0].bridges[0].authentication = "basic": expected one of "signature", "jwt", "none"']),
    ('name = "b"\nrealm = "realm1"\nauthentication = "none"\nauthrole = "anonymous"\n'
     'allowed_addresses = ["10.1.2.3/8"]\n',
     ['listeners[0].bridges[0].allowed_addresses = ["10.1.2.3/8"]: expected IP addresses or networks such as '
      '"127.0.0.1", "10.0.0.0/8" or "fd00::/8" (a network without host bits)']),
    ('name = "b"\nrealm = "realm1"\nauthentication = "none"\nauthrole = "anonymous"\ncall_timeout = 60.0\n'
     "max_call_timeout = 10.0\n",
     ["listeners[0].bridges[0].call_timeout = 60.0: expected at most max_call_timeout (10.0)"]),
    ('name = "b"\nrealm = "realm1"\nauthentication = "none"\nauthrole = "anonymous"\nmax_body_size = 10\n',
     ["listeners[0].bridges[0].max_body_size = 10: expected an integer from 64 to 16777216"]),
])
def test_bridge_problems(tmp_path, bridge, expected):
    """Each wrong bridge table is reported naming its key; secrets are never shown."""
    assert problems_of(tmp_path, listener(tables=tables("[[bridges]]\n" + bridge)) + realm()) == expected


def test_bridge_names_are_unique(tmp_path):
    """Two bridges of one name on a listener: the second is refused."""
    assert problems_of(tmp_path, listener(tables=tables(BRIDGE, BRIDGE)) + realm()) == [
        'listeners[0].bridges[1].name = "b": expected a unique bridge name on this listener; this one is defined '
        "twice"]


def test_paths_need_the_http_side(tmp_path):
    """A RawSocket-only listener has no HTTP side: its paths are refused."""
    text = listener(keys='transports = ["rawsocket"]', tables=tables(PUBLISH, BRIDGE))
    assert problems_of(tmp_path, text + realm()) == [
        'listeners[0].paths[0].path = "/publish": paths are served on the listener\'s HTTP side; expected '
        '"websocket" in its transports']


def test_dev_config_serves_the_bridge_on_loopback(tmp_path):
    """conf/dev.toml: /publish and /call for realm1, unauthenticated, on the loopback listener."""
    from pathlib import Path
    config = load(Path(__file__).resolve().parents[2] / "conf" / "dev.toml")
    universal = config.listeners[0]
    assert universal.endpoint == "tcp:8080:interface=127.0.0.1"
    assert [(p.path, p.kind) for p in universal.http_endpoints] == [("/publish", "publish"), ("/call", "call")]
    assert (universal.bridges["dev"].realm, universal.bridges["dev"].authentication) == ("realm1", "none")
    assert not universal.bridges["dev"].allow_unauthenticated_remote
