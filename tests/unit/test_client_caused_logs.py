"""What the router logs about a client's refused requests, naming what an operator needs: which link of the
authorizer chain denied (`authorizers[<index>] (<plugin>)`, as in the config), and an unacknowledged publish
dropped by flow control, once per session per spell (until one of its unacknowledged publishes is admitted again).

Sessions run on the SessionHarness (a real RouterSession on a fake channel and a fake clock); the log lines are
caught by replacing the class's Logger with one that records."""

from __future__ import annotations

import autobahn.twisted  # noqa: F401  (selects Twisted for txaio before autobahn's serializers are imported)
import pytest
from twisted.internet import defer, task
from twisted.logger import LogLevel, Logger, formatEvent

from wampgate.core.decisions import DecisionCache
from wampgate.model import AuthorizationRequest, Decision, Identity, TransportInfo
from wampgate.tx.authorization import ChainLink, RealmAuthorization
from wampgate.tx.requests import MAX_READ_PAUSE, RequestQueue
from tests.support.session import DEFAULT_CONFIG, LISTENER, SessionHarness

PUBLISH = 16
ALLOW = Decision(allow=True, cache_ttl=60.0)


class Answers:
    """An authorizer that answers every request with `answer` (or raises it, or hands out a Deferred)."""

    def __init__(self, answer):
        self.answer = answer
        self.asked = 0

    def authorize(self, request):
        self.asked += 1
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer() if callable(self.answer) else self.answer


def chain(*links: tuple[str, object], clock=None) -> RealmAuthorization:
    return RealmAuthorization([ChainLink(name=name, authorizer=authorizer, roles=None) for name, authorizer in links],
                              clock=clock or task.Clock(), timeout=1.0, cache=DecisionCache(100))


@pytest.fixture
def logged(monkeypatch) -> list[dict]:
    events: list[dict] = []
    monkeypatch.setattr(RequestQueue, "log", Logger(observer=events.append))
    return events


def lines(events: list[dict]) -> list[tuple[LogLevel, str]]:
    return [(event["log_level"], formatEvent(event)) for event in events]


# -- which link denied ---------------------------------------------------------------------------------------------


def test_the_deny_names_the_link_by_its_index_and_plugin(logged):
    """A chain of two (static allows, the second denies): the publish is refused and the info line says
    `by authorizers[1] (denylist)`; the first link's allow is not blamed."""
    harness = SessionHarness()
    harness.realm().authorization = chain(("static", Answers(ALLOW)), ("denylist", Answers(Decision(allow=False))))
    client = harness.joined()
    [error] = client.feed([PUBLISH, 1, {"acknowledge": True}, "com.example.secret", []])
    assert error.error == "wamp.error.not_authorized"
    [(level, text)] = lines(logged)
    assert level == LogLevel.info
    assert text.startswith("denied publish on com.example.secret to session 1000 ('anonymous-")
    assert text.endswith("'/'anonymous') by authorizers[1] (denylist)")
    assert logged[0]["denied_by"] == "authorizers[1] (denylist)"


def test_every_kind_of_deny_names_its_link():
    """A Decision(allow=False), an exception, a Deferred that fires with a deny, a timeout and an answer that is no
    Decision each name the link that gave it; a role no link applies to says so; an allow names nobody."""
    clock = task.Clock()
    request = _request("user")
    assert chain(("a", Answers(ALLOW)), ("b", Answers(Decision(allow=False)))).decide(request).denied_by == \
        "authorizers[1] (b)"
    assert chain(("a", Answers(RuntimeError("bug")))).decide(request).denied_by == "authorizers[0] (a)"
    assert chain(("a", Answers("yes"))).decide(request).denied_by == "authorizers[0] (a)"
    later = chain(("a", Answers(ALLOW)), ("b", Answers(lambda: defer.succeed(Decision(allow=False)))))
    assert later.decide(request).result.denied_by == "authorizers[1] (b)"
    pending = chain(("a", Answers(lambda: defer.Deferred())), clock=clock).decide(request)
    clock.advance(1.0)
    assert pending.result.denied_by == "authorizers[0] (a)"
    nobody = RealmAuthorization([ChainLink(name="a", authorizer=Answers(ALLOW), roles=frozenset({"admin"}))],
                                clock=clock, timeout=1.0, cache=DecisionCache(10))
    assert nobody.decide(request).denied_by == "no authorizer for role 'user'"
    assert chain(("a", Answers(ALLOW))).decide(request).denied_by == ""


def test_a_cached_deny_still_names_its_link_and_equals_a_plain_deny():
    """A deny cached for 60 s is answered from the cache (the authorizer is not asked again) and still names its
    link; the name is not part of the Decision's value (it equals Decision(allow=False, cache_ttl=60))."""
    denying = Answers(Decision(allow=False, cache_ttl=60.0))
    authorization = chain(("static", Answers(ALLOW)), ("quota", denying))
    first = authorization.decide(_request("user"))
    again = authorization.decide(_request("user"))
    assert denying.asked == 1
    assert again.denied_by == first.denied_by == "authorizers[1] (quota)"
    assert again == Decision(allow=False, cache_ttl=60.0)


def _request(role: str) -> AuthorizationRequest:
    identity = Identity(authid="alice", authrole=role, authmethod="ticket", authprovider="static")
    transport = TransportInfo(listener="l", kind="websocket", peer="tcp4:127.0.0.1:1", is_secure=False,
                              serializer="json")
    return AuthorizationRequest(session_id=1, realm="realm1", identity=identity, transport=transport,
                                action="publish", uri="com.example.x", match="exact")


# -- unacknowledged publishes dropped by flow control --------------------------------------------------------------

# One message per 4 s, burst 1: after a drop, reading pauses MAX_READ_PAUSE (2 s), so the next held publish is read
# with the bucket still empty (dropped, same spell) and the one after with a token (admitted: the spell ends).
SLOW_RATE = """
[[flow]]
plugin = "limits"
disconnect_after = 0
rates = { session = { messages = 0.25, burst = 1 } }
"""


def unacknowledged(request: int) -> list:
    return [PUBLISH, request, {}, "com.example.topic", [request]]


def test_a_spell_of_dropped_publishes_is_logged_once_and_a_new_spell_again(logged):
    """Publish 1 passes; 2 and 3 are dropped (one spell: one info line naming the topic, the session, the peer and
    the reason); 4 is admitted, which ends the spell; 5 is dropped and logged again. The drop counter counts all
    three drops."""
    harness = SessionHarness(SLOW_RATE + DEFAULT_CONFIG)
    client = harness.joined()
    client.feed(*(unacknowledged(request) for request in range(1, 6)))
    for _ in range(4):  # 2 is dropped at once; then each pause of 2 s lets the next held one be read
        harness.advance(MAX_READ_PAUSE)
    counters = harness.context.counters
    drops = counters.value("flow_drop", reason="unacknowledged_publish_rate_limited", listener=LISTENER,
                           realm="realm1")
    assert drops == 3
    dropped = [text for level, text in lines(logged) if "dropped by flow control" in text]
    assert len(dropped) == 2
    assert all(level == LogLevel.info for level, _ in lines(logged))
    assert dropped[0].startswith("unacknowledged publish on com.example.topic from session 1000 ('anonymous-")
    assert dropped[0].endswith("dropped by flow control: unacknowledged_publish_rate_limited; further drops are "
                               "counted, not logged, until one is admitted again")
