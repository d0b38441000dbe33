"""The built-in `limits` flow-control plugin (plugins/flow/limits.py), driven with a hand-moved clock: its config
table is validated key by key, each scope (session, authid, authrole, peer, URI prefix) limits on its own, quotas
count per window, a sustained overload ends in a disconnect verdict, connection and session admission count and
release, and the state it shares across sessions stays bounded by `max_tracked`. Anonymous sessions are metered per
address across reconnects, and a callee's answers (action "yield") are metered like requests."""

from __future__ import annotations

import pytest
from zope.interface.verify import verifyObject

from wampgate.plugins.flow.limits import (
    OVERLOADED,
    RATE_LIMITED,
    TOO_MANY_CONNECTIONS,
    TOO_MANY_SESSIONS,
    LimitsFlowControl,
)
from wampgate.plugins.flow.meters import bounded_key
from wampgate.interfaces import IFlowControl, PluginConfigError
from wampgate.model import ADMIT_KIND, DISCONNECT_KIND, REJECT_KIND, FlowSession

UNLIMITED = {"messages": 0, "bytes": 0}
# Every scope unlimited, no quota: a test then switches on exactly the limit it is about.
OPEN = {"session": UNLIMITED, "authid": UNLIMITED, "authrole": UNLIMITED, "peer": UNLIMITED}


def plugin(**config) -> LimitsFlowControl:
    """The plugin with every rate open and no quotas unless the test sets them."""
    rates = {**OPEN, **config.pop("rates", {})}
    config.setdefault("quotas", [])
    return LimitsFlowControl({"rates": rates, **config})


def session(session_id: int, authid: str = "alice", authrole: str = "user", peer: str = "tcp4:10.0.0.1",
            realm: str = "realm1", authmethod: str = "ticket") -> FlowSession:
    return FlowSession(session_id=session_id, realm=realm, authid=authid, authrole=authrole, peer=peer,
                       listener="main", authmethod=authmethod)


def anonymous(session_id: int, peer: str = "tcp4:1.2.3.4") -> FlowSession:
    """An anonymous session: like the `anonymous` authenticator, a fresh made-up authid every time."""
    return session(session_id, authid=f"anonymous-{session_id:016x}", authrole="public", peer=peer,
                   authmethod="anonymous")


def joined(limits: LimitsFlowControl, *sessions: FlowSession, now: float = 0.0) -> None:
    for s in sessions:
        assert limits.admit_session(s, now).kind == ADMIT_KIND


def admitted(limits, s, count: int, now: float = 0.0, uri: str = "com.example.topic", size: int = 10) -> int:
    """How many of `count` messages at the same instant are admitted."""
    return sum(limits.admit(s, "publish", uri, size, now).kind == ADMIT_KIND for _ in range(count))


# -- the contract and defaults -------------------------------------------------------------------------------------


def test_provides_the_flow_control_interface():
    """The plugin, built with an empty table, provides IFlowControl completely."""
    assert verifyObject(IFlowControl, LimitsFlowControl({}))


def test_every_limit_is_on_by_default():
    """With an empty table every scope has a message rate, the connection / session caps are finite, overload
    disconnects after 10 s, and the default hourly per-authid quota is in place."""
    config = LimitsFlowControl({}).config
    assert config.max_connections == 10_000
    assert config.max_connections_per_peer == 100
    assert config.max_sessions_per_authid == 100
    assert config.disconnect_after == 10.0
    assert config.max_tracked == 100_000
    assert all(config.rates[scope].messages > 0 for scope in ("session", "authid", "authrole", "peer"))
    assert all(config.rates[scope].bytes > 0 for scope in ("session", "authid", "peer"))
    assert [(q.scope, q.window) for q in config.quotas] == [("authid", 3600.0)]
    assert config.uri_rates == ()


def test_a_scope_table_with_only_messages_gets_a_burst_of_one_second():
    """`rates.session = {messages = 5}`: the burst defaults to one second's worth (5), the byte limit stays."""
    rate = LimitsFlowControl({"rates": {"session": {"messages": 5}}}).config.rates["session"]
    assert (rate.messages, rate.burst) == (5.0, 5.0)
    assert rate.bytes > 0


# -- config validation ---------------------------------------------------------------------------------------------

BAD_CONFIGS = [
    ({"colour": "red"}, "colour"),
    ({"max_connections": 0}, "max_connections"),
    ({"max_connections": "10"}, "max_connections"),
    ({"max_connections": True}, "max_connections"),
    ({"max_connections": 10.5}, "max_connections"),
    ({"max_connections": 10_000_001}, "max_connections"),
    ({"max_connections_per_peer": 0}, "max_connections_per_peer"),
    ({"max_connections_per_peer": [1]}, "max_connections_per_peer"),
    ({"max_sessions_per_authid": -1}, "max_sessions_per_authid"),
    ({"max_sessions_per_authid": False}, "max_sessions_per_authid"),
    ({"disconnect_after": -0.5}, "disconnect_after"),
    ({"disconnect_after": 3601}, "disconnect_after"),
    ({"disconnect_after": "10s"}, "disconnect_after"),
    ({"disconnect_after": True}, "disconnect_after"),
    ({"max_tracked": 99}, "max_tracked"),
    ({"max_tracked": 1e5}, "max_tracked"),
    ({"rates": "fast"}, "rates"),
    ({"rates": {"planet": {"messages": 1}}}, "rates.planet"),
    ({"rates": {"session": 5}}, "rates.session"),
    ({"rates": {"session": {"colour": 1}}}, "rates.session.colour"),
    ({"rates": {"session": {"messages": -1}}}, "rates.session.messages"),
    ({"rates": {"session": {"messages": "many"}}}, "rates.session.messages"),
    ({"rates": {"authid": {"burst": 0}}}, "rates.authid.burst"),
    ({"rates": {"authid": {"burst": 2e9}}}, "rates.authid.burst"),
    ({"rates": {"authrole": {"bytes": -1}}}, "rates.authrole.bytes"),
    ({"rates": {"authrole": {"bytes": True}}}, "rates.authrole.bytes"),
    ({"rates": {"peer": {"byte_burst": 0.5}}}, "rates.peer.byte_burst"),
    ({"rates": {"peer": {"byte_burst": "1MiB"}}}, "rates.peer.byte_burst"),
    ({"uri_rates": {"prefix": "com."}}, "uri_rates"),
    ({"uri_rates": ["com."]}, "uri_rates"),
    ({"uri_rates": [{"messages": 1}]}, "uri_rates[0].prefix"),
    ({"uri_rates": [{"prefix": 5, "messages": 1}]}, "uri_rates[0].prefix"),
    ({"uri_rates": [{"prefix": "com.a.", "messages": 1}, {"prefix": "com.b.", "messages": -1}]},
     "uri_rates[1].messages"),
    ({"uri_rates": [{"prefix": "com.a.", "burst": 0}]}, "uri_rates[0].burst"),
    ({"uri_rates": [{"prefix": "com.a.", "colour": 1}]}, "uri_rates[0].colour"),
    ({"quotas": {"per": "authid"}}, "quotas"),
    ({"quotas": [{"messages": 10}]}, "quotas[0].per"),
    ({"quotas": [{"per": "planet", "messages": 10}]}, "quotas[0].per"),
    ({"quotas": [{"per": "session"}]}, "quotas[0].messages"),
    ({"quotas": [{"per": "session", "messages": 0}]}, "quotas[0].messages"),
    ({"quotas": [{"per": "session", "messages": 1.5}]}, "quotas[0].messages"),
    ({"quotas": [{"per": "session", "messages": 10, "window": 0.5}]}, "quotas[0].window"),
    ({"quotas": [{"per": "session", "messages": 10, "window": 31 * 86400}]}, "quotas[0].window"),
    ({"quotas": [{"per": "peer", "messages": 10}, {"per": "authid", "messages": 1, "colour": 2}]},
     "quotas[1].colour"),
]


@pytest.mark.parametrize("config, key", BAD_CONFIGS, ids=[key + "-" + repr(c)[:40] for c, key in BAD_CONFIGS])
def test_a_bad_value_raises_plugin_config_error_naming_its_key_path(config, key):
    """Each wrong key or value stops construction with PluginConfigError whose `key` is the full path inside the
    plugin's table (e.g. rates.session.messages, uri_rates[1].messages, quotas[0].per)."""
    with pytest.raises(PluginConfigError) as raised:
        LimitsFlowControl(config)
    assert raised.value.key == key


def test_config_error_line_shows_the_table_path_value_and_problem():
    """As the router reports it: `flow[0].rates.session.messages = -1: expected a number from 0.0 to ...`."""
    with pytest.raises(PluginConfigError) as raised:
        LimitsFlowControl({"rates": {"session": {"messages": -1}}})
    line = raised.value.line("flow[0]")
    assert line.startswith("flow[0].rates.session.messages = -1: expected a number from 0")


def test_prefix_is_not_a_key_of_a_scope_rate():
    """`prefix` belongs to uri_rates entries only; in rates.session it is an unknown key naming its path."""
    with pytest.raises(PluginConfigError) as raised:
        LimitsFlowControl({"rates": {"session": {"prefix": "com.example.", "messages": 5}}})
    assert raised.value.key == "rates.session.prefix"


def test_uri_rate_prefix_must_end_with_a_dot():
    """A uri_rates prefix that does not end in "." (and is not "") is refused at load, naming its path."""
    with pytest.raises(PluginConfigError) as raised:
        LimitsFlowControl({"uri_rates": [{"prefix": "com.example.admin", "messages": 5}]})
    assert raised.value.key == "uri_rates[0].prefix"


def test_duplicate_uri_rate_prefixes_are_refused():
    """Two uri_rates entries for the same prefix are a config error naming the second one."""
    with pytest.raises(PluginConfigError) as raised:
        LimitsFlowControl({"uri_rates": [{"prefix": "com.a.", "messages": 5}, {"prefix": "com.a.", "messages": 9}]})
    assert raised.value.key == "uri_rates[1].prefix"


def test_an_empty_quota_list_switches_the_default_quota_off():
    """`quotas = []` means no quota at all (the default hourly authid quota is replaced, not added to)."""
    assert LimitsFlowControl({"quotas": []}).config.quotas == ()


# -- rates per scope -----------------------------------------------------------------------------------------------


def test_session_rate_limits_each_session_on_its_own():
    """rates.session = 5/s burst 5: each session gets its own 5 at an instant; the 6th is refused with
    wampgate.error.rate_limited and retry_after 0.2 s; another session (same authid, role and peer) is unaffected."""
    limits = plugin(rates={"session": {"messages": 5, "burst": 5}})
    a, b = session(1), session(2)
    joined(limits, a, b)
    assert admitted(limits, a, 5) == 5
    refusal = limits.admit(a, "publish", "com.example.topic", 10, 0.0)
    assert (refusal.kind, refusal.reason, refusal.error) == (REJECT_KIND, "rate_limited", RATE_LIMITED)
    assert refusal.retry_after == pytest.approx(0.2)
    assert admitted(limits, b, 5) == 5
    assert admitted(limits, a, 1, now=0.2) == 1  # refilled after retry_after


def test_session_byte_rate_limits_large_messages():
    """rates.session.bytes = 1000/s, byte_burst 1000: 4 messages of 250 bytes pass, a 5th is refused with the
    time until 250 bytes are back (0.25 s); small-message count limits are not involved."""
    limits = plugin(rates={"session": {"messages": 0, "bytes": 1000, "byte_burst": 1000}})
    s = session(1)
    joined(limits, s)
    assert admitted(limits, s, 4, size=250) == 4
    refusal = limits.admit(s, "call", "com.example.proc", 250, 0.0)
    assert refusal.kind == REJECT_KIND and refusal.retry_after == pytest.approx(0.25)


def test_authid_rate_is_shared_by_all_sessions_of_the_authid():
    """rates.authid = 4/s burst 4: two sessions of alice share 4 messages; bob (same role and peer) has his own."""
    limits = plugin(rates={"authid": {"messages": 4, "burst": 4}})
    a1, a2, b = session(1), session(2), session(3, authid="bob")
    joined(limits, a1, a2, b)
    assert admitted(limits, a1, 3) == 3
    assert admitted(limits, a2, 3) == 1
    assert admitted(limits, b, 4) == 4


def test_authid_rate_is_per_realm():
    """The same authid in two realms is two budgets."""
    limits = plugin(rates={"authid": {"messages": 2, "burst": 2}})
    r1, r2 = session(1, realm="realm1"), session(2, realm="realm2")
    joined(limits, r1, r2)
    assert admitted(limits, r1, 3) == 2
    assert admitted(limits, r2, 3) == 2


def test_authrole_rate_is_shared_by_all_authids_of_the_role():
    """rates.authrole = 3/s burst 3: alice and bob (role user) share 3; carol (role admin) has her own."""
    limits = plugin(rates={"authrole": {"messages": 3, "burst": 3}})
    alice, bob, carol = session(1), session(2, authid="bob"), session(3, authid="carol", authrole="admin")
    joined(limits, alice, bob, carol)
    assert admitted(limits, alice, 2) == 2
    assert admitted(limits, bob, 2) == 1
    assert admitted(limits, carol, 3) == 3


def test_peer_rate_is_shared_by_all_sessions_from_one_address():
    """rates.peer = 3/s burst 3: alice and bob from 10.0.0.1 share 3; carol from 10.0.0.2 has her own."""
    limits = plugin(rates={"peer": {"messages": 3, "burst": 3}})
    alice, bob = session(1, peer="tcp4:10.0.0.1"), session(2, authid="bob", peer="tcp4:10.0.0.1")
    carol = session(3, authid="carol", peer="tcp4:10.0.0.2")
    joined(limits, alice, bob, carol)
    assert admitted(limits, alice, 2) == 2
    assert admitted(limits, bob, 2) == 1
    assert admitted(limits, carol, 3) == 3


def test_uri_prefix_rate_limits_only_matching_uris():
    """uri_rates [{prefix = "com.slow.", messages = 2, burst = 2}]: two publishes under com.slow. pass, the third is
    refused (retry_after 0.5 s), while com.fast.x and the bare com.slow (no dot) are not limited."""
    limits = plugin(uri_rates=[{"prefix": "com.slow.", "messages": 2, "burst": 2}])
    s = session(1)
    joined(limits, s)
    assert admitted(limits, s, 3, uri="com.slow.a") == 2
    refusal = limits.admit(s, "call", "com.slow.b", 10, 0.0)
    assert refusal.kind == REJECT_KIND and refusal.retry_after == pytest.approx(0.5)
    assert admitted(limits, s, 50, uri="com.fast.x") == 50
    assert admitted(limits, s, 50, uri="com.slow") == 50


def test_uri_prefix_rate_is_shared_across_sessions():
    """A URI prefix's budget belongs to the prefix: two sessions together get its burst once."""
    limits = plugin(uri_rates=[{"prefix": "com.slow.", "messages": 3, "burst": 3}])
    a, b = session(1), session(2, authid="bob", peer="tcp4:10.0.0.9")
    joined(limits, a, b)
    assert admitted(limits, a, 2, uri="com.slow.a") == 2
    assert admitted(limits, b, 2, uri="com.slow.a") == 1


def test_every_matching_uri_prefix_applies():
    """Nested prefixes both apply: com.app. allows 10, com.app.heavy. allows 2; after two heavy calls the third is
    refused by the inner prefix, and the outer one has 8 left for other com.app. URIs."""
    limits = plugin(uri_rates=[{"prefix": "com.app.", "messages": 10, "burst": 10},
                               {"prefix": "com.app.heavy.", "messages": 2, "burst": 2}])
    s = session(1)
    joined(limits, s)
    assert admitted(limits, s, 2, uri="com.app.heavy.run") == 2
    assert admitted(limits, s, 20, uri="com.app.light") == 8


def test_a_refused_message_uses_no_other_budget():
    """A message refused by one limit takes nothing from the others (as TokenBucket.take promises for itself):
    heavy calls beyond com.app.heavy.'s 2 leave com.app.'s shared budget at 8 for other URIs."""
    limits = plugin(uri_rates=[{"prefix": "com.app.", "messages": 10, "burst": 10},
                               {"prefix": "com.app.heavy.", "messages": 2, "burst": 2}])
    s = session(1)
    joined(limits, s)
    assert admitted(limits, s, 5, uri="com.app.heavy.run") == 2
    assert admitted(limits, s, 20, uri="com.app.light") == 8


def test_uri_prefix_byte_rate():
    """A uri_rates entry with only bytes limits bytes per second under its prefix."""
    limits = plugin(uri_rates=[{"prefix": "com.upload.", "bytes": 1000, "byte_burst": 1000}])
    s = session(1)
    joined(limits, s)
    assert admitted(limits, s, 5, uri="com.upload.file", size=400) == 2
    assert admitted(limits, s, 5, uri="com.other", size=400) == 5


# -- quotas --------------------------------------------------------------------------------------------------------


def test_session_quota_counts_per_window_and_resets():
    """quotas [{per = "session", messages = 3, window = 60}]: 3 messages in the window, the 4th is refused with
    retry_after = the rest of the window, and at the window's end the session may send 3 again."""
    limits = plugin(quotas=[{"per": "session", "messages": 3, "window": 60}], disconnect_after=0)
    s = session(1)
    joined(limits, s, now=0.0)
    assert admitted(limits, s, 3, now=0.0) == 3
    refusal = limits.admit(s, "publish", "com.example.topic", 10, 20.0)
    assert refusal.kind == REJECT_KIND and refusal.retry_after == pytest.approx(40.0)
    assert admitted(limits, s, 4, now=60.0) == 3


def test_authid_quota_is_shared_by_sessions_of_the_authid():
    """An authid quota of 4 per hour: alice's two sessions share it; bob has his own."""
    limits = plugin(quotas=[{"per": "authid", "messages": 4, "window": 3600}], disconnect_after=0)
    a1, a2, b = session(1), session(2), session(3, authid="bob")
    joined(limits, a1, a2, b)
    assert admitted(limits, a1, 3) == 3
    assert admitted(limits, a2, 3) == 1
    assert admitted(limits, b, 5) == 4


def test_peer_quota_is_shared_by_sessions_from_one_address():
    """A peer quota of 2 per minute covers every session from 10.0.0.1."""
    limits = plugin(quotas=[{"per": "peer", "messages": 2, "window": 60}], disconnect_after=0)
    a, b, c = session(1), session(2, authid="bob"), session(3, authid="carol", peer="tcp4:10.0.0.2")
    joined(limits, a, b, c)
    assert admitted(limits, a, 1) + admitted(limits, b, 5) == 2
    assert admitted(limits, c, 5) == 2


# -- sustained overload ----------------------------------------------------------------------------------------------


def test_refused_for_disconnect_after_seconds_then_disconnected():
    """A session whose every message is refused (its quota is spent) gets REJECT until it has been refused for
    `disconnect_after` seconds, then DISCONNECT with reason rate_limit_sustained and wampgate.close.rate_limited."""
    limits = plugin(quotas=[{"per": "session", "messages": 1, "window": 3600}], disconnect_after=2.0)
    s = session(1)
    joined(limits, s)
    assert admitted(limits, s, 1, now=0.0) == 1
    assert limits.admit(s, "publish", "t", 10, 1.0).kind == REJECT_KIND  # over since 1.0
    assert limits.admit(s, "publish", "t", 10, 2.9).kind == REJECT_KIND
    verdict = limits.admit(s, "publish", "t", 10, 3.0)
    assert (verdict.kind, verdict.reason, verdict.error) == (DISCONNECT_KIND, "rate_limit_sustained", OVERLOADED)


def test_a_session_that_backs_off_is_not_disconnected():
    """Refusals separated by admitted messages do not add up: a client that waits retry_after each time is never
    disconnected, however long it keeps going."""
    limits = plugin(rates={"session": {"messages": 1, "burst": 1}}, disconnect_after=1.0)
    s = session(1)
    joined(limits, s)
    for second in range(10):
        assert limits.admit(s, "publish", "t", 10, float(second)).kind == ADMIT_KIND
        assert limits.admit(s, "publish", "t", 10, second + 0.5).kind == REJECT_KIND


def test_disconnect_after_zero_never_disconnects():
    """disconnect_after = 0 switches the disconnect off: refusals go on for ever."""
    limits = plugin(quotas=[{"per": "session", "messages": 1, "window": 3600}], disconnect_after=0)
    s = session(1)
    joined(limits, s)
    kinds = {limits.admit(s, "publish", "t", 10, float(t)).kind for t in range(0, 3000, 10)}
    assert kinds == {ADMIT_KIND, REJECT_KIND}


def test_a_flood_far_over_the_rate_is_disconnected():
    """rates.session = 10/s, disconnect_after = 2: a session sending 100 messages/s (10x its rate) for 5 s is
    sustained overload and gets DISCONNECT (rate_limit_sustained) within about disconnect_after seconds, even
    though the refilling bucket lets one message in every 0.1 s."""
    limits = plugin(rates={"session": {"messages": 10, "burst": 10}}, disconnect_after=2.0)
    s = session(1)
    joined(limits, s)
    first_disconnect = None
    for i in range(500):
        now = i * 0.01
        if limits.admit(s, "publish", "t", 10, now).kind == DISCONNECT_KIND:
            first_disconnect = now
            break
    assert first_disconnect is not None and first_disconnect <= 3.5


def test_retry_after_is_positive_for_every_refusal():
    """A refusal always tells the client to wait a positive time: a wait below the rounding step still rounds up
    to a non-zero retry_after (never 0.0, which reads as 'retry now')."""
    limits = plugin(rates={"session": {"messages": 10_000, "burst": 1}})
    s = session(1)
    joined(limits, s)
    assert admitted(limits, s, 1, now=0.0) == 1
    refusal = limits.admit(s, "publish", "t", 10, 0.0000999)  # 0.999 tokens there: 1e-8 s missing
    assert refusal.kind == REJECT_KIND
    assert refusal.retry_after > 0


# -- connections and sessions ---------------------------------------------------------------------------------------


def test_max_connections_counts_and_releases():
    """max_connections = 3 over all peers: the 4th is refused (reason max_connections, too_many_connections);
    after one closes, one more is admitted."""
    limits = plugin(max_connections=3)
    peers = ["tcp4:10.0.0.1", "tcp4:10.0.0.2", "tcp4:10.0.0.3"]
    assert all(limits.admit_connection(p, "main", 0.0).kind == ADMIT_KIND for p in peers)
    refusal = limits.admit_connection("tcp4:10.0.0.4", "main", 0.0)
    assert (refusal.kind, refusal.reason, refusal.error) == (REJECT_KIND, "max_connections", TOO_MANY_CONNECTIONS)
    limits.connection_closed("tcp4:10.0.0.2", "main")
    assert limits.admit_connection("tcp4:10.0.0.4", "main", 0.0).kind == ADMIT_KIND
    assert limits.sizes()["connections"] == 3


def test_max_connections_per_peer_counts_and_releases():
    """max_connections_per_peer = 2: a third connection from one address is refused (max_connections_per_peer)
    while another address is admitted; closing one frees a slot, and a peer with none left is forgotten."""
    limits = plugin(max_connections_per_peer=2)
    assert [limits.admit_connection("tcp4:10.0.0.1", "main", 0.0).kind for _ in range(2)] == [ADMIT_KIND] * 2
    assert limits.admit_connection("tcp4:10.0.0.1", "main", 0.0).reason == "max_connections_per_peer"
    assert limits.admit_connection("tcp4:10.0.0.2", "main", 0.0).kind == ADMIT_KIND
    limits.connection_closed("tcp4:10.0.0.1", "main")
    assert limits.admit_connection("tcp4:10.0.0.1", "main", 0.0).kind == ADMIT_KIND
    for _ in range(2):
        limits.connection_closed("tcp4:10.0.0.1", "main")
    limits.connection_closed("tcp4:10.0.0.2", "main")
    tracked = limits.sizes()
    assert (tracked["connections"], tracked["peers"]) == (0, 0)


def test_a_refused_connection_is_not_counted():
    """Refusals do not use up slots: 100 refused attempts, then one close, then one admission."""
    limits = plugin(max_connections=1)
    assert limits.admit_connection("tcp4:10.0.0.1", "main", 0.0).kind == ADMIT_KIND
    assert all(limits.admit_connection("tcp4:10.0.0.1", "main", 0.0).kind == REJECT_KIND for _ in range(100))
    limits.connection_closed("tcp4:10.0.0.1", "main")
    assert limits.admit_connection("tcp4:10.0.0.1", "main", 0.0).kind == ADMIT_KIND


def test_max_sessions_per_authid_counts_and_releases():
    """max_sessions_per_authid = 2 per realm: alice's 3rd session gets DISCONNECT (too_many_sessions), bob and
    alice in another realm are admitted; when one of alice's sessions leaves she may join again."""
    limits = plugin(max_sessions_per_authid=2)
    a1, a2, a3 = session(1), session(2), session(3)
    joined(limits, a1, a2)
    refusal = limits.admit_session(a3, 0.0)
    assert (refusal.kind, refusal.reason, refusal.error) == (
        DISCONNECT_KIND, "max_sessions_per_authid", TOO_MANY_SESSIONS)
    joined(limits, session(4, authid="bob"), session(5, realm="realm2"))
    limits.session_closed(a1)
    joined(limits, a3)


def test_a_session_admitted_twice_is_counted_and_metered_once():
    """admit_session twice for one session id (max_sessions_per_authid = 1): admitted both times, counted once,
    one meter of its own; after one session_closed nothing of it is held."""
    limits = plugin(max_sessions_per_authid=1)
    s = session(1)
    joined(limits, s, s)
    assert (limits.sizes()["sessions"], limits.sizes()["metered_sessions"]) == (1, 1)
    limits.session_closed(s)
    assert limits.tracked() == 0


def test_a_closed_session_is_forgotten():
    """After session_closed, nothing about the session is held (every per-session figure of `tracked()` is back
    to 0), and its authid may open as many sessions as before."""
    limits = plugin(rates={"session": {"messages": 1, "burst": 1}}, max_sessions_per_authid=1)
    s = session(1)
    joined(limits, s)
    admitted(limits, s, 5)
    assert limits.sizes()["sessions"] == 1
    limits.session_closed(s)
    assert all(count == 0 for name, count in limits.sizes().items() if "session" in name), limits.sizes()
    joined(limits, session(2))


def test_a_rejoined_session_starts_with_a_full_session_bucket_but_shared_budgets_remain():
    """Leaving and joining again refills the per-session bucket, but not the authid's: a client cannot reset a
    shared budget by reconnecting."""
    limits = plugin(rates={"authid": {"messages": 3, "burst": 3}})
    first = session(1)
    joined(limits, first)
    assert admitted(limits, first, 3) == 3
    limits.session_closed(first)
    second = session(2)
    joined(limits, second)
    assert admitted(limits, second, 3) == 0


# -- bounded state ------------------------------------------------------------------------------------------------


def test_idle_shared_meters_are_forgotten_at_the_cap():
    """max_tracked = 100: 1000 authids, one session each, joining and leaving a second apart (so each earlier
    meter has refilled and is idle) never leave more than 100 shared meters."""
    limits = plugin(max_tracked=100, rates={"authid": {"messages": 10, "burst": 10}})
    for i in range(1000):
        s = session(i, authid=f"user{i}")
        joined(limits, s, now=float(i))
        admitted(limits, s, 1, now=float(i))
        limits.session_closed(s)
        assert limits.sizes()["shared_meters"] <= 100


def test_shared_state_never_exceeds_max_tracked():
    """max_tracked = 100, default rates: 300 distinct authids joining, sending and leaving within the same second
    (their meters not idle yet) never make the plugin hold more than 100 shared meters: each is admitted, its
    first message too, and the stalest meters of departed sessions give way."""
    limits = LimitsFlowControl({"max_tracked": 100, "quotas": []})
    for i in range(300):
        s = session(i, authid=f"user{i}")
        joined(limits, s)
        assert admitted(limits, s, 1) == 1
        limits.session_closed(s)
        assert limits.sizes()["shared_meters"] <= 100


def test_sessions_of_one_authid_share_its_budget_when_the_table_is_full():
    """With the shared table at max_tracked (100 recently used meters), alice's two sessions from two new
    addresses still share one authid budget of 3 messages: the cap never splits a shared limit."""
    limits = LimitsFlowControl({"max_tracked": 100, "quotas": [], "rates": {"authid": {"messages": 3, "burst": 3}}})
    for i in range(98):
        s = session(i, authid=f"user{i}")
        joined(limits, s)
        admitted(limits, s, 1)
        limits.session_closed(s)
    assert limits.sizes()["shared_meters"] == 100
    first, second = session(1001, peer="tcp4:10.0.1.1"), session(1002, peer="tcp4:10.0.1.2")
    joined(limits, first, second)
    assert admitted(limits, first, 3) + admitted(limits, second, 3) == 3


def test_an_idle_meter_of_a_departed_session_is_forgotten_at_once():
    """Rates open: a session that sent a message and left leaves nothing behind (its own meter goes, and the shared
    ones carry no information), so `tracked()` is back to the meters of the URI prefixes alone."""
    limits = plugin(uri_rates=[{"prefix": "com.slow.", "messages": 100}])
    a1, a2 = session(1), session(2)
    joined(limits, a1, a2)
    assert limits.tracked() == 2 + 3 + 1  # two own meters; alice's, role user's and 10.0.0.1's; com.slow.
    admitted(limits, a1, 1)
    limits.session_closed(a1)
    assert limits.tracked() == 1 + 3 + 1
    limits.session_closed(a2)
    assert limits.tracked() == 1
    assert limits.sizes()["shared_meters"] == 0


# -- anonymous sessions --------------------------------------------------------------------------------------------


def test_anonymous_reconnects_from_one_address_share_the_authid_budget():
    """rates.authid = 3/s burst 3: an anonymous session that spends the budget and reconnects (a new made-up authid,
    the same address) finds it still spent; an anonymous session from another address has its own 3, and so does a
    named authid from the same address."""
    limits = plugin(rates={"authid": {"messages": 3, "burst": 3}})
    first = anonymous(1)
    joined(limits, first)
    assert admitted(limits, first, 3) == 3
    limits.session_closed(first)
    for session_id in range(2, 8):  # reconnecting six times gains nothing
        again = anonymous(session_id)
        joined(limits, again)
        refusal = limits.admit(again, "publish", "com.example.topic", 10, 0.0)
        assert (refusal.kind, refusal.retry_after) == (REJECT_KIND, pytest.approx(1 / 3, abs=0.001))
        limits.session_closed(again)
    elsewhere, named = anonymous(10, peer="tcp4:5.6.7.8"), session(11, peer="tcp4:1.2.3.4")
    joined(limits, elsewhere, named)
    assert admitted(limits, elsewhere, 4) == 3
    assert admitted(limits, named, 4) == 3
    assert admitted(limits, anonymous(12), 1, now=1 / 3 + 0.001) == 1  # the shared budget refills at its rate


def test_live_anonymous_sessions_from_one_address_share_one_authid_budget():
    """Two anonymous sessions at once from 1.2.3.4 share rates.authid (3): 2 + 1."""
    limits = plugin(rates={"authid": {"messages": 3, "burst": 3}})
    a, b = anonymous(1), anonymous(2)
    joined(limits, a, b)
    assert admitted(limits, a, 2) + admitted(limits, b, 2) == 3


def test_a_real_authid_spelt_like_an_address_key_is_not_the_anonymous_budget():
    """A ticket user whose authid is "anonymous@tcp4:1.2.3.4" has a budget of its own, apart from the anonymous
    clients of 1.2.3.4; and a session whose authmethod is not known ("") keeps its per-authid budget."""
    limits = plugin(rates={"authid": {"messages": 2, "burst": 2}})
    anon = anonymous(1)
    lookalike = session(2, authid="anonymous@tcp4:1.2.3.4", peer="tcp4:1.2.3.4")
    unknown = FlowSession(session_id=3, realm="realm1", authid="anonymous-x", authrole="public",
                          peer="tcp4:1.2.3.4", listener="main")
    joined(limits, anon, lookalike, unknown)
    assert [admitted(limits, s, 3) for s in (anon, lookalike, unknown)] == [2, 2, 2]


def test_ten_thousand_departed_anonymous_sessions_leave_no_per_session_meters():
    """Default limits (the hourly authid quota on): 10,000 anonymous sessions from one address, each sending a
    message and leaving, leave no meter of their own and three shared ones (the address's authid budget, the role,
    the address); past the quota's hour those are forgotten when the next session joins."""
    limits = LimitsFlowControl({})
    for i in range(10_000):
        s = anonymous(i)
        now = i * 0.01
        joined(limits, s, now=now)
        assert admitted(limits, s, 1, now=now) == 1
        limits.session_closed(s)
    sizes = limits.sizes()
    assert (sizes["metered_sessions"], sizes["sessions"], sizes["shared_meters"]) == (0, 0, 3)
    assert limits.tracked() == 3
    later = anonymous(20_000, peer="tcp4:9.9.9.9")
    joined(limits, later, now=100.0 + 3600.0)
    assert limits.sizes()["released_meters"] == 0
    assert limits.tracked() == 1 + 3  # only the newcomer's


def test_departed_anonymous_sessions_from_many_addresses_stay_within_max_tracked():
    """max_tracked = 100, default limits: 10,000 anonymous sessions from 10,000 addresses never make the shared
    table exceed 100 meters, and every one of them is admitted, its first message too."""
    limits = LimitsFlowControl({"max_tracked": 100})
    for i in range(10_000):
        s = anonymous(i, peer=f"tcp4:10.{i // 256 % 256}.{i % 256}.1")
        joined(limits, s)
        assert admitted(limits, s, 1) == 1
        limits.session_closed(s)
        assert limits.sizes()["shared_meters"] <= 100
    assert limits.sizes()["metered_sessions"] == 0


# -- a full table ----------------------------------------------------------------------------------------------------


def fill_with_departed(limits: LimitsFlowControl, count: int) -> None:
    """`count` sessions (own authid, own address, one role) each send one message and leave, all at time 0: their
    meters still carry information (the spent buckets have not refilled), no live session uses them."""
    for i in range(count):
        s = session(i, authid=f"user{i}", peer=f"tcp4:10.0.0.{i}")
        joined(limits, s)
        assert admitted(limits, s, 1) == 1
        limits.session_closed(s)


def test_a_full_table_evicts_the_stalest_departed_meters_and_new_sessions_are_not_rate_limited():
    """max_tracked = 101, full of meters of departed sessions (50 authids and 50 addresses with a spent burst of 1,
    and their role's): ten new sessions of new authids from new addresses each get their first message admitted
    (none shares a bucket with another), the table stays at 101, the stalest meters gave way (user0 is served
    again, from another address) and the most recent ones are still there (user49 from its address is refused)."""
    one = {"messages": 1, "burst": 1}
    limits = plugin(max_tracked=101, rates={"authid": one, "peer": one, "authrole": {"messages": 1000}})
    fill_with_departed(limits, 50)
    assert limits.sizes()["shared_meters"] == limits.sizes()["released_meters"] == 101
    for i in range(10):
        newcomer = session(100 + i, authid=f"new{i}", peer=f"tcp4:10.0.1.{i}")
        joined(limits, newcomer)
        assert limits.admit(newcomer, "publish", "t", 10, 0.0).kind == ADMIT_KIND
        assert limits.sizes()["shared_meters"] == 101
    returning, recent = session(200, authid="user0", peer="tcp4:10.0.2.1"), session(201, authid="user49",
                                                                                   peer="tcp4:10.0.0.49")
    joined(limits, returning, recent)
    assert admitted(limits, returning, 1) == 1
    assert admitted(limits, recent, 1) == 0


def test_a_table_full_of_meters_in_use_refuses_the_next_session():
    """max_tracked = 100, 49 live sessions of distinct authids and addresses (98 meters, plus their role's): a 50th
    needs two more and is refused with DISCONNECT max_tracked / wampgate.error.too_many_sessions, holding nothing;
    once one live session leaves, it joins."""
    limits = plugin(max_tracked=100)
    live = [session(i, authid=f"user{i}", peer=f"tcp4:10.0.0.{i}") for i in range(49)]
    joined(limits, *live)
    assert limits.sizes()["shared_meters"] == 99
    extra = session(100, authid="extra", peer="tcp4:10.0.1.1")
    refusal = limits.admit_session(extra, 0.0)
    assert (refusal.kind, refusal.reason, refusal.error) == (DISCONNECT_KIND, "max_tracked", TOO_MANY_SESSIONS)
    assert limits.sizes() | {"connections": 0} == {
        "connections": 0, "peers": 0, "sessions": 49, "metered_sessions": 49, "shared_meters": 99,
        "released_meters": 0, "uri_meters": 0}
    limits.session_closed(live[0])
    joined(limits, extra)


# -- client strings as keys ------------------------------------------------------------------------------------------


def test_long_client_strings_are_kept_as_digests_and_still_tell_keys_apart():
    """A key longer than 256 characters is stored as a 16-byte digest: two 1 MB authids that differ only in their
    last character have separate budgets, two sessions of the same one share it, and no stored key is longer
    than 256 characters."""
    limits = plugin(rates={"authid": {"messages": 2, "burst": 2}})
    long_a, long_b = "x" * 2**20 + "a", "x" * 2**20 + "b"
    a1, a2, b = session(1, authid=long_a), session(2, authid=long_a), session(3, authid=long_b)
    joined(limits, a1, a2, b)
    assert admitted(limits, a1, 2) + admitted(limits, a2, 2) == 2
    assert admitted(limits, b, 3) == 2
    assert bounded_key(long_a) != bounded_key(long_b)
    assert bounded_key("y" * 256) == "y" * 256
    assert bounded_key("\ud800" * 300)[1] != bounded_key("\ud801" * 300)[1]  # lone surrogates too (from JSON)
    stored = [part for key in list(limits._shared._entries) + list(limits._sessions_per_authid) for part in key]
    assert max(len(part) for part in stored if isinstance(part, str)) <= 256


# -- answers: YIELD, progressive results, INVOCATION errors ----------------------------------------------------------


def test_yields_are_metered_by_the_session_rate_with_exact_verdicts():
    """rates.session = 4/s burst 2, disconnect_after = 1: a callee answering every 0.125 s after a burst gets, in
    order, ADMIT, ADMIT, REJECT (retry_after 0.25), REJECT (0.125), then ADMIT and REJECT (0.125) alternately as
    the bucket refills, and at 1.125 s - refused without pause for a second - DISCONNECT rate_limit_sustained with
    retry_after 0.125. A refused answer takes nothing."""
    limits = plugin(rates={"session": {"messages": 4, "burst": 2}}, disconnect_after=1.0)
    s = session(1)
    joined(limits, s)
    times = [0.0, 0.0, 0.0] + [k / 8 for k in range(1, 10)]
    verdicts = [limits.admit(s, "yield", "", 10, now) for now in times]
    got = [(v.kind, v.retry_after) for v in verdicts]
    assert got == [
        (ADMIT_KIND, 0.0), (ADMIT_KIND, 0.0), (REJECT_KIND, 0.25), (REJECT_KIND, 0.125),
        (ADMIT_KIND, 0.0), (REJECT_KIND, 0.125), (ADMIT_KIND, 0.0), (REJECT_KIND, 0.125),
        (ADMIT_KIND, 0.0), (REJECT_KIND, 0.125), (ADMIT_KIND, 0.0), (DISCONNECT_KIND, 0.125),
    ]
    assert [(v.reason, v.error) for v in verdicts if v.kind != ADMIT_KIND][-2:] == [
        ("rate_limited", RATE_LIMITED), ("rate_limit_sustained", OVERLOADED)]


def test_yield_bytes_are_shared_with_the_authids_calls():
    """rates.authid.bytes = 1024/s, byte_burst 1024: a callee's 384-byte YIELD and its fellow session's 384-byte
    CALL (same authid) both pass, the next 384-byte YIELD is refused with retry_after 0.125 (128 bytes missing), and
    the answers of another authid are not affected."""
    limits = plugin(rates={"authid": {"messages": 0, "bytes": 1024, "byte_burst": 1024}})
    callee, caller, other = session(1), session(2), session(3, authid="bob")
    joined(limits, callee, caller, other)
    assert limits.admit(callee, "yield", "", 384, 0.0).kind == ADMIT_KIND
    assert limits.admit(caller, "call", "com.example.proc", 384, 0.0).kind == ADMIT_KIND
    refusal = limits.admit(callee, "yield", "", 384, 0.0)
    assert (refusal.kind, refusal.retry_after) == (REJECT_KIND, 0.125)
    assert limits.admit(other, "yield", "", 1024, 0.0).kind == ADMIT_KIND


def test_anonymous_yields_are_metered_per_address():
    """An anonymous callee flooding progressive results is held to its address's authid budget (rates.authid 2/s
    burst 2) across reconnects: after 2 answers, a reconnected callee's first answer is refused (retry_after 0.5)."""
    limits = plugin(rates={"authid": {"messages": 2, "burst": 2}})
    first = anonymous(1)
    joined(limits, first)
    assert [limits.admit(first, "yield", "", 10, 0.0).kind for _ in range(3)] == [ADMIT_KIND, ADMIT_KIND, REJECT_KIND]
    limits.session_closed(first)
    second = anonymous(2)
    joined(limits, second)
    refusal = limits.admit(second, "yield", "", 10, 0.0)
    assert (refusal.kind, refusal.retry_after) == (REJECT_KIND, 0.5)


def test_yields_use_neither_quotas_nor_uri_rates():
    """Answers are not requests: with a session quota of 1 message, once a publish spent it further publishes are
    refused but 50 YIELDs pass; with a uri_rates entry for the prefix "" (every URI) of 1 message, the same."""
    quota = plugin(quotas=[{"per": "session", "messages": 1, "window": 3600}], disconnect_after=0)
    catch_all = plugin(uri_rates=[{"prefix": "", "messages": 1, "burst": 1}], disconnect_after=0)
    for limits in (quota, catch_all):
        s = session(1)
        joined(limits, s)
        assert admitted(limits, s, 2) == 1
        assert sum(limits.admit(s, "yield", "", 10, 0.0).kind == ADMIT_KIND for _ in range(50)) == 50
        assert admitted(limits, s, 1) == 0


def test_every_refusal_of_a_message_carries_a_positive_retry_after():
    """Whatever the action (an unacknowledged publish the router will drop, a call, an answer) and whether the
    verdict is REJECT or DISCONNECT, a refusal says when the allowance is back: retry_after > 0."""
    limits = plugin(rates={"session": {"messages": 1, "burst": 1}}, disconnect_after=0.5)
    s = session(1)
    joined(limits, s)
    verdicts = [limits.admit(s, action, "com.example.x", 10, k / 16)
                for k in range(20) for action in ("publish", "call", "yield", "subscribe")]
    refusals = [v for v in verdicts if v.kind != ADMIT_KIND]
    assert {v.kind for v in refusals} == {REJECT_KIND, DISCONNECT_KIND}
    assert all(v.retry_after > 0 for v in refusals)
