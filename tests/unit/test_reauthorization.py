"""The walk a reload starts (router/tx/reauthorization.py): every live subscription and registration asked of the new
authorizer chain again, the denied ones revoked. Runs on a real realm core and chain with a fake clock; authorizers
answer with a value, a Deferred the test fires, a coroutine, or never (a timeout, a deny).

Pins down: what is allowed stays and what is denied goes (with the revocation messages, and the request the chain is
asked); at most `batch` grants per reactor turn and `max_in_flight` pending asynchronous decisions; a decision that
never comes denies after the chain's timeout; a walk overtaken by a newer reload revokes nothing more and stops; a
grant given up or a session gone meanwhile is left alone; our own bug in one grant does not stop the walk.
"""

from __future__ import annotations

import itertools
from types import SimpleNamespace

from autobahn.wamp import message as wamp
from autobahn.wamp.role import RoleCalleeFeatures, RoleSubscriberFeatures
from twisted.internet import defer, task

from wampgate.config import LimitsConfig
from wampgate.core.decisions import DecisionCache
from wampgate.core.effects import Send
from wampgate.core.peer import Peer
from wampgate.core.realm import Realm
from wampgate.uri import EXACT, PREFIX, UriPolicy
from wampgate.counters import Counters
from wampgate.model import Decision, TransportInfo
from wampgate.tx.authorization import ChainLink, RealmAuthorization
from wampgate.tx.reauthorization import Reauthorization, reauthorize

TIMEOUT = 5.0
ALLOW = Decision(allow=True)
DENY = Decision(allow=False)
REVOKED = "wamp.authorization.revoked"
TRANSPORT = TransportInfo(listener="main", kind="websocket", peer="tcp4:127.0.0.1:50000", is_secure=False,
                          serializer="json")


class Channel:
    """A peer's channel: only its transport details are read by the walk."""

    def transport_info(self) -> TransportInfo:
        return TRANSPORT


class Effects:
    """Stands in for the realm's EffectRunner: records every message sent, as (session id, marshalled message)."""

    def __init__(self) -> None:
        self.sent: list[tuple[int, list]] = []

    def run(self, effects) -> None:
        for effect in effects:
            assert isinstance(effect, Send)
            self.sent.extend((peer.session_id, effect.message.marshal()) for peer in effect.recipients)


class ByUri:
    """Allows (action, uri) pairs in `allowed`; answers at once, or through Deferreds the test fires (`deferred`),
    or as a coroutine; records every request."""

    def __init__(self, allowed=(), *, deferred: bool = False, coroutine: bool = False):
        self.allowed = set(allowed)
        self.deferred = deferred
        self.coroutine = coroutine
        self.asked: list = []
        self.pending: list[tuple[defer.Deferred, object]] = []

    def authorize(self, request):
        self.asked.append(request)
        decision = ALLOW if (request.action, request.uri) in self.allowed else DENY
        if self.coroutine:
            async def answer():
                return decision
            return answer()
        if self.deferred:
            d = defer.Deferred()
            self.pending.append((d, decision))
            return d
        return decision

    def answer_next(self) -> None:
        d, decision = self.pending.pop(0)
        d.callback(decision)


class Silent:
    """Never answers."""

    def authorize(self, request):
        return defer.Deferred()


def make_peer(session_id: int, authrole: str = "user") -> Peer:
    roles = {"subscriber": RoleSubscriberFeatures(subscription_revocation=True),
             "callee": RoleCalleeFeatures(registration_revocation=True)}
    return Peer(session_id, "realm1", authid=f"user{session_id}", authrole=authrole, authmethod="ticket",
                authprovider="static", roles=roles, channel=Channel())


def make_runtime(authorizer, clock) -> SimpleNamespace:
    core = Realm("realm1", UriPolicy(), itertools.count(1000).__next__, lambda c: c[0], limits=LimitsConfig())
    return SimpleNamespace(core=core, authorization=chain(authorizer, clock), effects=Effects())


def chain(authorizer, clock) -> RealmAuthorization:
    link = ChainLink(name="test", authorizer=authorizer, roles=None)
    return RealmAuthorization([link], clock=clock, timeout=TIMEOUT, cache=DecisionCache())


def join(runtime, peer: Peer) -> Peer:
    runtime.core.join(peer)
    return peer


def subscribe(runtime, peer: Peer, topic: str, match: str = EXACT) -> int:
    (reply, *_) = runtime.core.broker.subscribe(peer, wamp.Subscribe(1, topic, match=match))
    return reply.message.subscription


def register(runtime, peer: Peer, procedure: str) -> int:
    (reply, *_) = runtime.core.dealer.register(peer, wamp.Register(1, procedure))
    return reply.message.registration


def walk(runtime, clock, **options) -> Reauthorization:
    counters = options.pop("counters", None)
    reauthorization = Reauthorization({"realm1": runtime}, clock=clock, counters=counters, **options)
    reauthorization.start()
    return reauthorization


def one_turn(clock: task.Clock) -> None:
    """Run only the calls scheduled so far (task.Clock.advance(0) would also run those they schedule)."""
    due = list(clock.calls)
    del clock.calls[:]
    for call in due:
        call.func(*call.args, **call.kw)


def results(d: defer.Deferred) -> list:
    seen: list = []
    d.addBoth(seen.append)
    return seen


def test_allowed_grants_stay_and_denied_ones_are_revoked():
    """With the new rules allowing app.keep and app.rpc.keep only: the subscription to app.drop and the registration
    of app.rpc.drop are revoked with UNSUBSCRIBED / UNREGISTERED (request 0, the reason), the others stay; the walk
    finishes at once (synchronous authorizer) with its summary, and counts each revocation."""
    clock, counters = task.Clock(), Counters()
    authorizer = ByUri({("subscribe", "app.keep"), ("register", "app.rpc.keep")})
    runtime = make_runtime(authorizer, clock)
    alice = join(runtime, make_peer(1))
    keep, drop = subscribe(runtime, alice, "app.keep"), subscribe(runtime, alice, "app.drop")
    kept_reg, dropped_reg = register(runtime, alice, "app.rpc.keep"), register(runtime, alice, "app.rpc.drop")
    done = results(walk(runtime, clock, counters=counters).done)
    (summary,) = done
    assert (summary.checked, summary.revoked_subscriptions, summary.revoked_registrations) == (4, 1, 1)
    assert runtime.effects.sent == [(1, [35, 0, {"subscription": drop, "reason": REVOKED}]),
                                    (1, [67, 0, {"registration": dropped_reg, "reason": REVOKED}])]
    assert [s.id for s in runtime.core.broker.subscriptions_of(1)] == [keep]
    assert [r.id for r in runtime.core.dealer.registrations_of(1)] == [kept_reg]
    assert counters.value("authorization_revoked", realm="realm1", action="subscribe") == 1
    assert counters.value("authorization_revoked", realm="realm1", action="register") == 1


def test_the_chain_is_asked_what_a_new_request_would_ask():
    """Each grant is asked as its SUBSCRIBE / REGISTER was: the session's id and identity, its transport, the
    action, the URI and the match policy."""
    clock = task.Clock()
    authorizer = ByUri()
    runtime = make_runtime(authorizer, clock)
    bob = join(runtime, make_peer(2, authrole="ops"))
    subscribe(runtime, bob, "app.", PREFIX)
    walk(runtime, clock)
    (asked,) = authorizer.asked
    assert (asked.session_id, asked.realm, asked.action, asked.uri, asked.match) == (2, "realm1", "subscribe", "app.",
                                                                                     PREFIX)
    assert (asked.identity.authid, asked.identity.authrole, asked.identity.authmethod) == ("user2", "ops", "ticket")
    assert asked.transport == TRANSPORT


def test_at_most_one_batch_per_reactor_turn():
    """With batch = 2 and five grants, two are checked now and two more on each later turn of the reactor."""
    clock = task.Clock()
    runtime = make_runtime(ByUri(), clock)
    alice = join(runtime, make_peer(1))
    for n in range(5):
        subscribe(runtime, alice, f"app.t{n}")
    reauthorization = walk(runtime, clock, batch=2)
    seen = results(reauthorization.done)
    assert (reauthorization.summary.checked, seen) == (2, [])
    one_turn(clock)
    assert reauthorization.summary.checked == 4
    one_turn(clock)
    assert reauthorization.summary.checked == 5 and len(seen) == 1
    assert runtime.core.broker.subscriptions() == []


def test_at_most_max_in_flight_asynchronous_decisions_pending():
    """An authorizer answering through Deferreds never has more than max_in_flight (2) questions open; each answer
    lets the walk ask the next; a deny that comes late still revokes; done fires after the last answer."""
    clock = task.Clock()
    authorizer = ByUri({("subscribe", "app.t0"), ("subscribe", "app.t2")}, deferred=True)
    runtime = make_runtime(authorizer, clock)
    alice = join(runtime, make_peer(1))
    ids = [subscribe(runtime, alice, f"app.t{n}") for n in range(5)]
    reauthorization = walk(runtime, clock, max_in_flight=2)
    seen = results(reauthorization.done)
    for answered in range(5):
        clock.advance(0)
        assert len(authorizer.pending) == min(2, 5 - answered)
        authorizer.answer_next()
    clock.advance(0)
    assert len(authorizer.asked) == 5 and len(seen) == 1
    assert [s.id for s in runtime.core.broker.subscriptions_of(1)] == [ids[0], ids[2]]


def test_a_decision_that_never_comes_denies_after_the_chain_timeout():
    """An authorizer that never answers: nothing is revoked before the chain's timeout, the grant is revoked when
    it passes (a timeout is a deny), and the walk then finishes."""
    clock = task.Clock()
    runtime = make_runtime(Silent(), clock)
    alice = join(runtime, make_peer(1))
    sub = subscribe(runtime, alice, "app.t")
    seen = results(walk(runtime, clock).done)
    clock.advance(TIMEOUT - 0.1)
    assert runtime.core.broker.subscription(sub) is not None and seen == []
    clock.advance(0.2)
    assert runtime.core.broker.subscription(sub) is None
    assert runtime.effects.sent == [(1, [35, 0, {"subscription": sub, "reason": REVOKED}])] and len(seen) == 1


def test_a_coroutine_authorizer_is_awaited():
    """A coroutine's answer is used like any other: its allow keeps the grant, its deny revokes it."""
    clock = task.Clock()
    runtime = make_runtime(ByUri({("subscribe", "app.keep")}, coroutine=True), clock)
    alice = join(runtime, make_peer(1))
    keep = subscribe(runtime, alice, "app.keep")
    subscribe(runtime, alice, "app.drop")
    walk(runtime, clock)
    clock.advance(0)
    assert [s.id for s in runtime.core.broker.subscriptions_of(1)] == [keep]


def test_a_walk_overtaken_by_a_newer_reload_revokes_nothing_more_and_stops():
    """A deny that arrives after the realm got a newer chain is not acted on (the newer walk decides), and the old
    walk asks nothing further; its summary says it was superseded."""
    clock = task.Clock()
    authorizer = ByUri(deferred=True)
    runtime = make_runtime(authorizer, clock)
    alice = join(runtime, make_peer(1))
    for n in range(3):
        subscribe(runtime, alice, f"app.t{n}")
    reauthorization = walk(runtime, clock, max_in_flight=1)
    runtime.authorization = chain(ByUri({("subscribe", f"app.t{n}") for n in range(3)}), clock)
    authorizer.answer_next()
    clock.advance(0)
    assert len(runtime.core.broker.subscriptions_of(1)) == 3 and runtime.effects.sent == []
    assert len(authorizer.asked) == 1
    assert reauthorization.done.called and reauthorization.summary.superseded is True


def test_grants_given_up_or_sessions_gone_meanwhile_are_left_alone():
    """A deny for a subscription the session unsubscribed meanwhile, or for a session that left meanwhile, sends
    nothing and changes nothing."""
    clock = task.Clock()
    authorizer = ByUri(deferred=True)
    runtime = make_runtime(authorizer, clock)
    alice, bob = join(runtime, make_peer(1)), join(runtime, make_peer(2))
    sub = subscribe(runtime, alice, "app.a")
    subscribe(runtime, bob, "app.b")
    walk(runtime, clock)
    runtime.core.broker.unsubscribe(alice, wamp.Unsubscribe(9, sub))
    runtime.core.leave(bob)
    authorizer.answer_next()
    authorizer.answer_next()
    assert runtime.effects.sent == [] and runtime.core.broker.subscriptions() == []


def test_an_error_on_one_grant_does_not_stop_the_walk():
    """Our own bug while revoking one grant (the effects runner raises) is logged, and the walk goes on to revoke
    the next and finish."""
    clock = task.Clock()
    runtime = make_runtime(ByUri(), clock)
    alice = join(runtime, make_peer(1))
    subscribe(runtime, alice, "app.a")
    subscribe(runtime, alice, "app.b")
    calls = []

    def failing_once(effects):
        calls.append(effects)
        if len(calls) == 1:
            raise RuntimeError("effects runner bug")

    runtime.effects.run = failing_once
    seen = results(walk(runtime, clock).done)
    assert len(calls) == 2 and len(seen) == 1 and runtime.core.broker.subscriptions() == []


def test_reauthorize_walks_every_realm_of_the_router_context():
    """reauthorize(context), as the reload calls it, walks each realm against that realm's own chain."""
    clock = task.Clock()
    first, second = make_runtime(ByUri(), clock), make_runtime(ByUri({("subscribe", "app.x")}), clock)
    one, two = join(first, make_peer(1)), join(second, make_peer(2))
    subscribe(first, one, "app.x")
    kept = subscribe(second, two, "app.x")
    context = SimpleNamespace(realms={"realm1": first, "realm2": second}, clock=clock, counters=Counters())
    summary = results(reauthorize(context).done)[0]
    assert (summary.checked, summary.revoked_subscriptions) == (2, 1)
    assert first.core.broker.subscriptions() == []
    assert [s.id for s in second.core.broker.subscriptions()] == [kept]
