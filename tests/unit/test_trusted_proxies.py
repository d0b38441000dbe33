"""`trusted_proxies`: addresses and CIDR networks of the proxies whose X-Forwarded-For is believed, what the config
accepts, and which address `forwarded_client` then takes as the client's."""

from __future__ import annotations

from pathlib import Path

import pytest

from wampgate.config import ConfigError, load
from wampgate.tx.websocket import forwarded_client, proxy_networks

REALM = '\n[[realms]]\nname = "realm1"\n[[realms.roles]]\nname = "anonymous"\n'
REFUSED = ('expected IP addresses or networks such as "127.0.0.1", "::1", "10.0.0.0/8" or "fd00::/8" (a network '
           "without host bits)")


def config_text(proxies: str) -> str:
    return ('\n[[listeners]]\nendpoint = "tcp:0:interface=127.0.0.1"\n[listeners.websocket]\n'
            f"trusted_proxies = {proxies}\n[listeners.auth]\nanonymous = {{ role = \"anonymous\" }}\n" + REALM)


def load_text(tmp_path: Path, text: str):
    path = tmp_path / "router.toml"
    path.write_text(text, encoding="utf-8")
    return load(path)


@pytest.mark.parametrize("proxies", [
    '["10.0.0.0/8"]', '["::1/128"]', '["127.0.0.1"]', '["::1"]', '["fd00::/8", "192.168.0.0/16", "203.0.113.7"]',
    '["0.0.0.0/0"]', "[]",
])
def test_addresses_and_networks_are_accepted(tmp_path, proxies):
    """Single addresses (v4 and v6) and CIDR networks (v4 and v6) are accepted, kept as written."""
    (listener,) = load_text(tmp_path, config_text(proxies)).listeners
    assert list(listener.websocket.trusted_proxies) == [p.strip(' "') for p in proxies.strip("[]").split(",") if p]


@pytest.mark.parametrize("proxies", ['["10.1.2.3/8"]', '["proxy.example.com"]', '["10.0.0.0/33"]', '["10.0.0.0/"]',
                                     '["fd00::1/8"]'])
def test_host_bits_names_and_bad_prefixes_are_refused(tmp_path, proxies):
    """A network with host bits set (a typo for an address or a wider range: guessing would trust the wrong hosts),
    a host name and a bad prefix length are refused with one line saying what is allowed."""
    with pytest.raises(ConfigError) as raised:
        load_text(tmp_path, config_text(proxies))
    assert raised.value.problems == [f"listeners[0].websocket.trusted_proxies = {proxies}: {REFUSED}"]


def client(peer: str, forwarded: str | None, *trusted: str) -> str:
    headers = {} if forwarded is None else {"x-forwarded-for": forwarded}
    return forwarded_client(peer, headers, proxy_networks(trusted))


@pytest.mark.parametrize("peer,forwarded,trusted,expected", [
    # a proxy inside a trusted network: its header names the client
    ("tcp4:10.20.30.40:5000", "192.0.2.1", ("10.0.0.0/8",), "tcp4:192.0.2.1:0"),
    ("tcp6:::1:5000", "2001:db8::7", ("::1/128",), "tcp6:2001:db8::7:0"),
    ("tcp6:fd00::5:5000", "192.0.2.1", ("fd00::/8",), "tcp4:192.0.2.1:0"),
    # a single address still works
    ("tcp4:127.0.0.1:5000", "192.0.2.1", ("127.0.0.1",), "tcp4:192.0.2.1:0"),
    # a peer outside every trusted network: the header is not believed
    ("tcp4:11.0.0.1:5000", "192.0.2.1", ("10.0.0.0/8",), "tcp4:11.0.0.1:5000"),
    ("tcp4:127.0.0.1:5000", "192.0.2.1", ("::1/128",), "tcp4:127.0.0.1:5000"),
    # hops added by proxies inside a trusted network are skipped: the right-most other one is the client
    ("tcp4:10.0.0.1:5000", "192.0.2.1, 198.51.100.9, 10.9.9.9", ("10.0.0.0/8",), "tcp4:198.51.100.9:0"),
    ("tcp4:10.0.0.1:5000", "192.0.2.1, 10.8.8.8, 10.9.9.9", ("10.0.0.0/8",), "tcp4:192.0.2.1:0"),
    # every hop trusted, a hop that is not an address, or no header: the peer itself
    ("tcp4:10.0.0.1:5000", "10.8.8.8, 10.9.9.9", ("10.0.0.0/8",), "tcp4:10.0.0.1:5000"),
    ("tcp4:10.0.0.1:5000", "192.0.2.1, unknown", ("10.0.0.0/8",), "tcp4:10.0.0.1:5000"),
    ("tcp4:10.0.0.1:5000", None, ("10.0.0.0/8",), "tcp4:10.0.0.1:5000"),
    # a dual-stack socket's IPv4-mapped peer is the IPv4 address it maps
    ("tcp6:::ffff:10.1.1.1:5000", "192.0.2.1", ("10.0.0.0/8",), "tcp4:192.0.2.1:0"),
    ("unix:/run/wampgate.sock", "192.0.2.1", ("10.0.0.0/8",), "unix:/run/wampgate.sock"),
])
def test_forwarded_client(peer, forwarded, trusted, expected):
    """The X-Forwarded-For entry believed, by network membership of the peer and of each hop."""
    assert client(peer, forwarded, *trusted) == expected


def test_nothing_trusted_believes_no_header():
    """With no trusted proxies the header is never read."""
    assert client("tcp4:127.0.0.1:5000", "192.0.2.1") == "tcp4:127.0.0.1:5000"
