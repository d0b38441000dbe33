"""Event history: `[[realms.history]]` rules (exact or prefix) keep the last N events of their topics per realm,
bounded in count per rule and in estimated bytes per realm; `wamp.subscription.get_events` returns them newest first
to a session that holds the subscription, honouring the original publish options; WELCOME announces
`event_history`; the config validates the rules."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from autobahn.wamp import message as wamp
from autobahn.wamp.role import RoleSubscriberFeatures

from wampgate.config import ConfigError, LimitsConfig, parse
from wampgate.core import errors
from wampgate.core.effects import Send
from wampgate.core.history import EventHistory, HistoryRule
from wampgate.core.peer import Peer
from wampgate.core.realm import Realm
from wampgate.core.retention import RetainedEvent
from wampgate.uri import EXACT, PREFIX, UriPolicy

GET_EVENTS = "wamp.subscription.get_events"


def make_peer(session_id: int, authid: str = "user", authrole: str = "user") -> Peer:
    return Peer(session_id, "realm1", authid=authid, authrole=authrole, authmethod="anonymous", authprovider="static")


PUBLISHER = make_peer(1, "pub", "publisher")
ALICE = make_peer(2, "alice", "user")
BOB = make_peer(3, "bob", "admin")


def make_realm(*rules: HistoryRule, **limits) -> Realm:
    realm = Realm("realm1", UriPolicy(), itertools.count(1000).__next__, lambda peers: peers[0],
                  limits=LimitsConfig(**limits), history=rules)
    for peer in (PUBLISHER, ALICE, BOB):
        realm.join(peer)
    return realm


def publish(realm: Realm, topic: str, *args, disclose: bool = False, **options) -> int:
    """Publish with an acknowledgement; the publication id."""
    effects = realm.receive(PUBLISHER, wamp.Publish(7, topic, args=list(args) or None, acknowledge=True, **options),
                            disclose=disclose)
    return next(e.message.publication for e in effects if isinstance(e.message, wamp.Published))


def subscribe(realm: Realm, peer: Peer, topic: str, match: str = EXACT) -> int:
    effects = realm.receive(peer, wamp.Subscribe(5, topic, match=match))
    return next(e.message.subscription for e in effects if isinstance(e.message, wamp.Subscribed))


def get_events(realm: Realm, peer: Peer, *args):
    """The RESULT's first argument, or the ERROR's URI."""
    (send,) = [e for e in realm.receive(peer, wamp.Call(9, GET_EVENTS, args=list(args))) if isinstance(e, Send)]
    if isinstance(send.message, wamp.Error):
        return send.message.error
    return send.message.args[0]


def test_an_exact_rule_keeps_the_last_events_newest_first():
    """An exact rule with limit 3 keeps the last 3 events of its topic only; get_events answers them newest first
    (Crossbar's order) as dicts of publication, topic, args, kwargs, and no publisher when not disclosed."""
    realm = make_realm(HistoryRule("com.t", EXACT, 3))
    publications = [publish(realm, "com.t", n) for n in range(5)]
    publish(realm, "com.other", 99)
    subscription = subscribe(realm, ALICE, "com.t")
    answer = get_events(realm, ALICE, subscription)
    assert answer == [
        {"publication": publications[n], "topic": "com.t", "args": [n], "kwargs": None} for n in (4, 3, 2)
    ]
    assert len(realm.broker.history) == 3


def test_a_prefix_rule_keeps_every_topic_under_it_and_a_pattern_subscription_sees_them():
    """A prefix rule keeps events of every topic under it; a prefix subscription gets all it covers, an exact one
    only its own topic; `limit` cuts the answer to the newest."""
    realm = make_realm(HistoryRule("com.app.", PREFIX, 10))
    for topic in ("com.app.a", "com.app.b", "com.app.a", "com.else"):
        publish(realm, topic, topic)
    everything = subscribe(realm, ALICE, "com.app.", PREFIX)
    only_a = subscribe(realm, ALICE, "com.app.a")
    assert [e["topic"] for e in get_events(realm, ALICE, everything)] == ["com.app.a", "com.app.b", "com.app.a"]
    assert [e["topic"] for e in get_events(realm, ALICE, everything, 2)] == ["com.app.a", "com.app.b"]
    assert [e["topic"] for e in get_events(realm, ALICE, only_a)] == ["com.app.a", "com.app.a"]


def test_the_default_limit_is_ten_and_a_limit_out_of_range_is_invalid_argument():
    """Without `limit` get_events answers at most 10 (Crossbar's default); 0, 10001, a float or a bool is
    invalid_argument."""
    realm = make_realm(HistoryRule("com.t", EXACT, 50))
    for n in range(15):
        publish(realm, "com.t", n)
    subscription = subscribe(realm, ALICE, "com.t")
    assert [e["args"] for e in get_events(realm, ALICE, subscription)] == [[n] for n in range(14, 4, -1)]
    for bad in (0, 10_001, 1.5, True):
        assert get_events(realm, ALICE, subscription, bad) == errors.INVALID_ARGUMENT


def test_a_session_that_does_not_hold_the_subscription_gets_no_such_subscription():
    """The subscription exists (Alice holds it) but Bob does not: no_such_subscription, exactly as for an unknown
    id; after Bob subscribes too, he gets the history."""
    realm = make_realm(HistoryRule("com.t", EXACT, 5))
    publish(realm, "com.t", 1)
    subscription = subscribe(realm, ALICE, "com.t")
    assert get_events(realm, BOB, subscription) == errors.NO_SUCH_SUBSCRIPTION
    assert get_events(realm, BOB, 424242) == errors.NO_SUCH_SUBSCRIPTION
    assert subscribe(realm, BOB, "com.t") == subscription
    assert [e["args"] for e in get_events(realm, BOB, subscription)] == [[1]]


def test_exclusion_and_eligibility_at_publish_time_are_honoured():
    """An event that excluded Alice (by session, authid, or by eligibility naming only Bob) is not in her history;
    Bob sees it. exclude_me (the default) keeps the publisher's own events out of its history."""
    realm = make_realm(HistoryRule("com.t", EXACT, 10))
    publish(realm, "com.t", "not-alice", exclude=[ALICE.session_id])
    publish(realm, "com.t", "bob-only", eligible_authid=["bob"])
    publish(realm, "com.t", "everyone")
    subscription = subscribe(realm, ALICE, "com.t")
    subscribe(realm, BOB, "com.t")
    subscribe(realm, PUBLISHER, "com.t")
    assert [e["args"] for e in get_events(realm, ALICE, subscription)] == [["everyone"]]
    assert [e["args"] for e in get_events(realm, BOB, subscription)] == [["everyone"], ["bob-only"], ["not-alice"]]
    assert get_events(realm, PUBLISHER, subscription) == []


def test_a_disclosed_publisher_is_in_the_history():
    """A publication that disclosed its publisher carries publisher, publisher_authid and publisher_authrole."""
    realm = make_realm(HistoryRule("com.t", EXACT, 10))
    publish(realm, "com.t", kwargs={"k": 1}, disclose=True)
    subscription = subscribe(realm, ALICE, "com.t")
    (entry,) = get_events(realm, ALICE, subscription)
    assert entry["kwargs"] == {"k": 1}
    assert (entry["publisher"], entry["publisher_authid"], entry["publisher_authrole"]) == (1, "pub", "publisher")


def test_the_byte_bound_forgets_the_realms_oldest_event_first():
    """Across two rules, beyond max_history_bytes the realm's oldest kept event goes first, whichever rule it
    is under; an event larger than the bound alone is not kept."""
    one = RetainedEvent("com.a", 1, args=["x" * 100], kwargs=None)
    history = EventHistory([HistoryRule("com.a", EXACT, 10), HistoryRule("com.b", EXACT, 10)], 2 * one.size + 10)
    for publication, topic in enumerate(("com.a", "com.b", "com.a"), 1):
        history.record(RetainedEvent(topic, publication, args=["x" * 100], kwargs=None))
    kept = history.matching("com.", PREFIX, 10, lambda event: True)
    assert [event.publication for event in kept] == [3, 2]
    assert history.bytes == 2 * one.size
    history.record(RetainedEvent("com.a", 4, args=["x" * 1000], kwargs=None))
    assert len(history) == 2


def test_no_rule_means_nothing_is_kept_and_payloads_are_not_kept():
    """A realm without history keeps nothing; an event with a transparent payload is not kept under a rule."""
    realm = make_realm()
    publish(realm, "com.t", 1)
    assert len(realm.broker.history) == 0
    history = EventHistory([HistoryRule("com.t", EXACT, 10)], 10_000)
    history.record(RetainedEvent("com.t", 1, args=None, kwargs=None, payload=b"opaque"))
    assert len(history) == 0


def test_new_rules_keep_the_events_of_kept_rules_and_drop_the_others():
    """A reload: a rule kept with the same (uri, match) keeps its events, cut to its new limit; a removed rule's
    events are dropped; the byte count follows."""
    realm = make_realm(HistoryRule("com.a", EXACT, 10), HistoryRule("com.b", EXACT, 10))
    for n in range(4):
        publish(realm, "com.a", n)
        publish(realm, "com.b", n)
    realm.broker.set_history((HistoryRule("com.a", EXACT, 2),))
    assert len(realm.broker.history) == 2
    subscription = subscribe(realm, ALICE, "com.a")
    assert [e["args"] for e in get_events(realm, ALICE, subscription)] == [[3], [2]]
    realm.broker.set_history(())
    assert len(realm.broker.history) == 0 and realm.broker.history.bytes == 0


def test_welcome_announces_event_history_with_event_retention_only():
    """event_history is announced to a client that announced a subscriber feature, not to bare roles (the
    smallest WELCOME stays within 512 bytes)."""
    realm = make_realm()
    featured = realm.router_roles({"subscriber": RoleSubscriberFeatures(pattern_based_subscription=True)})
    bare = realm.router_roles({"subscriber": RoleSubscriberFeatures()})
    assert featured["broker"].event_history is True
    assert bare["broker"].event_history is None


def realm_config(*history: str) -> str:
    tables = "\n".join(f"[[realms.history]]\n{line}" for line in history)
    return (
        '[[listeners]]\nendpoint = "tcp:8080"\n[listeners.auth.anonymous]\n'
        f'[[realms]]\nname = "realm1"\n{tables}\n'
    )


def parse_text(text: str):
    import tomllib

    return parse(tomllib.loads(text), Path("/tmp/wampgate.toml"))


def test_history_rules_are_read_from_the_realm_table():
    """`[[realms.history]]` with uri, match and limit (default exact, 100) become the realm's rules."""
    config = parse_text(realm_config('uri = "com.example."\nmatch = "prefix"\nlimit = 5', 'uri = "com.t"'))
    assert config.realms["realm1"].history == (HistoryRule("com.example.", PREFIX, 5), HistoryRule("com.t", EXACT, 100))


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('uri = "com.t"\nlimit = 0', "realms[0].history[0].limit = 0: expected an integer from 1 to 10000"),
        ('uri = "com.t"\nlimit = 10001', "realms[0].history[0].limit = 10001: expected an integer from 1 to 10000"),
        ('uri = "com.t"\nmatch = "wildcard"', "realms[0].history[0].match"),
        ('uri = "com.x"\nmatch = "prefix"', 'expected a prefix ending in "."'),
        ('uri = "wamp.session"', 'not under the reserved "wamp."'),
        ('uri = "com.t"\nlimits = 3', "realms[0].history[0].limits: unknown key"),
        ("limit = 3", "realms[0].history[0].uri: missing"),
    ],
)
def test_invalid_history_rules_name_the_key(line, problem):
    """Each invalid rule is reported with its key path, the value and what is allowed."""
    with pytest.raises(ConfigError) as caught:
        parse_text(realm_config(line))
    assert any(problem in p for p in caught.value.problems), caught.value.problems


def test_at_most_100_history_rules_and_no_duplicates():
    """More than 100 rules in a realm, or the same (uri, match) twice, is refused."""
    with pytest.raises(ConfigError) as caught:
        parse_text(realm_config(*[f'uri = "com.t{n}"' for n in range(101)]))
    assert any("expected at most 100" in p for p in caught.value.problems)
    with pytest.raises(ConfigError) as caught:
        parse_text(realm_config('uri = "com.t"', 'uri = "com.t"'))
    assert any("realms[0].history[1].uri" in p and "defined twice" in p for p in caught.value.problems)
