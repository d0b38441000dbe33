"""The Crossbar converter's pieces without sockets: endpoints, WebSocket options in seconds, origins, permissions
(old-style and dot-less prefixes, disclose, duplicates), principals (hashed tickets, salted WAMP-CRA, pins), and
the TOML it writes reading back as the same values."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from wampgate.crossbar.convert import NotACrossbarConfig, convert


def fake_hash(ticket: str) -> str:
    return f"hashed({len(ticket)})"


def converted(workers: list, base: Path = Path("/nonexistent")) -> tuple[dict, list[str]]:
    done = convert({"workers": workers}, base / "config.json", hash_secret=fake_hash)
    return tomllib.loads(done.toml), list(done.notes)


def router(transports=(), realms=()) -> list:
    return [{"type": "router", "transports": list(transports), "realms": list(realms)}]


@pytest.mark.parametrize("endpoint, expected", [
    ({"type": "tcp", "port": 8080}, "tcp:8080"),
    ({"type": "tcp", "port": 8080, "interface": "127.0.0.1", "backlog": 50}, "tcp:8080:interface=127.0.0.1:backlog=50"),
    ({"type": "tcp", "port": 8080, "version": 6, "interface": "::1"}, "tcp6:8080:interface=\\:\\:1"),
    ({"type": "unix", "path": "/run/router.sock"}, "unix:/run/router.sock"),
])
def test_endpoints(endpoint, expected):
    config, notes = converted(router([{"type": "rawsocket", "endpoint": endpoint}]))
    assert config["listeners"][0]["endpoint"] == expected and notes == []


def test_websocket_options_in_seconds_and_origins():
    """Milliseconds become seconds (clamped to Wampgate's bounds, noted); "*" becomes the any-origin pattern with a
    warning comment; a path in an origin is noted."""
    options = {"auto_ping_interval": 500, "auto_ping_timeout": 0, "close_handshake_timeout": 999999,
               "allowed_origins": ["*", "https://App.example.com", "https://x.example.com/path"]}
    config, notes = converted(router([{"type": "websocket", "endpoint": {"type": "tcp", "port": 1},
                                       "options": options}]))
    ws = config["listeners"][0]["websocket"]
    assert (ws["auto_ping_interval"], ws["auto_ping_timeout"], ws["close_handshake_timeout"]) == (1.0, 0.0, 300.0)
    assert ws["allowed_origins"] == ["*://*", "https://app.example.com"]
    assert any("auto_ping_interval: 500 ms is outside" in n for n in notes)
    assert any("origin 'https://x.example.com/path'" in n for n in notes)


def test_permissions():
    """Old-style `*` URIs become prefixes, a dot-less prefix gets its dot (noted), allow objects become lists,
    disclose one flag, and a second rule for the same URI is left out (noted)."""
    role = {"name": "r", "permissions": [
        {"uri": "com.a.*", "allow": {"call": True, "publish": False}},
        {"uri": "com.b", "match": "prefix", "allow": {"subscribe": True}, "disclose": {"publisher": True,
                                                                                       "caller": True}},
        {"uri": "com.b.", "match": "prefix", "allow": {"publish": True}},
        {"uri": "*", "allow": {}},
    ]}
    config, notes = converted(router(realms=[{"name": "realm1", "roles": [role]}]))
    rules = config["realms"][0]["roles"][0]["permissions"]
    assert rules == [
        {"uri": "com.a.", "match": "prefix", "allow": ["call"]},
        {"uri": "com.b.", "match": "prefix", "allow": ["subscribe"], "disclose": True},
        {"uri": "", "match": "prefix", "allow": []},
    ]
    assert any("a second prefix rule for 'com.b.'" in n for n in notes)


def test_principals():
    """Tickets hashed (the ticket itself nowhere), salted WAMP-CRA as derived_key with Crossbar's defaults, cryptosign
    keys lower-cased, TLS pins kept as written, a principal's realm carried over."""
    auth = {
        "ticket": {"type": "static", "principals": {"joe": {"ticket": "s3cret", "role": "u", "realm": "r1"}}},
        "wampcra": {"type": "static", "users": {"ann": {"secret": "K" * 44, "role": "u", "salt": "x"}}},
        "cryptosign": {"principals": {"dev": {"authorized_keys": ["AB" * 32], "role": "d"}}},
        "tls": {"type": "static", "principals": {"cert": {"certificate-sha256": "AA:" * 31 + "AA", "role": "d"}}},
    }
    config, notes = converted(router([{"type": "rawsocket", "endpoint": {"type": "tcp", "port": 1}, "auth": auth}]))
    listener = config["listeners"][0]["auth"]
    assert listener["ticket"]["principals"] == [{"authid": "joe", "role": "u", "realm": "r1",
                                                 "secret_hash": "hashed(6)"}]
    assert listener["wampcra"]["principals"] == [{"authid": "ann", "role": "u", "derived_key": "K" * 44, "salt": "x",
                                                  "iterations": 1000, "keylen": 32}]
    assert listener["cryptosign"]["principals"][0]["public_keys"] == ["ab" * 32]
    assert listener["tls"]["principals"][0]["fingerprints"] == ["AA:" * 31 + "AA"]
    assert notes == ["workers[0].transports[0].auth.tls: the router asks for client certificates only with "
                     "[listeners.tls] client_ca: add a CA file (pinned certificates need not chain to it)"]


def test_a_transport_without_auth_is_anonymous():
    config, _ = converted(router([{"type": "rawsocket", "endpoint": {"type": "tcp", "port": 1}}]))
    assert config["listeners"][0]["auth"] == {"anonymous": {"role": "anonymous"}}


def test_strings_are_escaped():
    """Quotes, backslashes, newlines and non-ASCII in names survive the trip through TOML."""
    name = 'r"\\\n\u00e9\U0001f600'
    config, _ = converted(router(realms=[{"name": name, "roles": [{"name": name}]}]))
    assert config["realms"][0]["name"] == config["realms"][0]["roles"][0]["name"] == name


@pytest.mark.parametrize("config", [[], {"workers": "x"}, "text"])
def test_not_a_node_config(config):
    with pytest.raises(NotACrossbarConfig):
        convert(config, Path("/x/config.json"), hash_secret=fake_hash)
