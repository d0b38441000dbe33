"""A realm's authorizer chain behind its decision cache (router/tx/authorization.py), run on a fake clock.

Pins down the chain's semantics: every applicable authorizer must allow and the first deny wins (later ones are not
asked); disclose only when all disclose; the shortest TTL; per_role only when all say so; anything but a Decision, an
exception, a failed Deferred or a timeout is a deny; coroutines work; a link's `roles` restricts whom it decides for;
a cached answer is reused within its TTL without asking again. Deferreds are read synchronously with
`d.addBoth(results.append)`; time moves only with `clock.advance`.
"""

from __future__ import annotations

import pytest
from twisted.internet import defer, task

from wampgate.core.decisions import DecisionCache
from wampgate.model import AuthorizationRequest, Decision, Identity, TransportInfo
from wampgate.tx.authorization import ChainLink, RealmAuthorization

TIMEOUT = 5.0
TRANSPORT = TransportInfo(listener="test", kind="websocket", peer="tcp4:127.0.0.1:50000", is_secure=False,
                          serializer="json")


class Fixed:
    """An authorizer giving one fixed answer (value, or a fresh Deferred from `make`), recording what it was asked."""

    def __init__(self, answer=None, make=None):
        self.answer = answer
        self.make = make
        self.asked: list[AuthorizationRequest] = []

    def authorize(self, request):
        self.asked.append(request)
        if self.make is not None:
            return self.make()
        return self.answer


class Raising:
    def __init__(self):
        self.asked = 0

    def authorize(self, request):
        self.asked += 1
        raise RuntimeError("authorizer bug")


def link(authorizer, name="test", roles=None) -> ChainLink:
    return ChainLink(name=name, authorizer=authorizer, roles=frozenset(roles) if roles is not None else None)


def chain(*links: ChainLink, clock=None) -> RealmAuthorization:
    return RealmAuthorization(links, clock=clock or task.Clock(), timeout=TIMEOUT, cache=DecisionCache())


def request(uri="com.a", action="publish", *, authid="alice", authrole="user") -> AuthorizationRequest:
    identity = Identity(authid=authid, authrole=authrole, authmethod="ticket", authprovider="static")
    return AuthorizationRequest(session_id=1, realm="realm1", identity=identity, transport=TRANSPORT, action=action,
                                uri=uri)


def resolved(answer) -> list:
    """The decision as a one-element list, whether `decide` answered at once or through an already-fired Deferred;
    an empty list while a Deferred is pending."""
    if isinstance(answer, Decision):
        return [answer]
    results: list = []
    answer.addBoth(results.append)
    return results


@pytest.fixture
def clock():
    return task.Clock()


# -- combining answers ---------------------------------------------------------------------------------------------


def test_the_first_deny_wins_and_later_authorizers_are_not_asked():
    """allow, deny, allow: the decision is a deny and the third authorizer is never asked."""
    first, second, third = Fixed(Decision(allow=True)), Fixed(Decision(allow=False)), Fixed(Decision(allow=True))
    decision = chain(link(first), link(second), link(third)).decide(request())
    assert type(decision) is Decision and decision.allow is False
    assert (len(first.asked), len(second.asked), len(third.asked)) == (1, 1, 0)


def test_all_must_allow():
    """Three allowing authorizers give an allow, each asked once with the same request."""
    authorizers = [Fixed(Decision(allow=True)) for _ in range(3)]
    req = request()
    decision = chain(*map(link, authorizers)).decide(req)
    assert decision == Decision(allow=True)
    assert [a.asked for a in authorizers] == [[req]] * 3


def test_an_empty_chain_denies():
    """A realm with `authorizers = []` denies everything."""
    assert chain().decide(request()) == Decision(allow=False)


@pytest.mark.parametrize("disclosures,expected", [((True, True), True), ((True, False), False),
                                                  ((False, True), False), ((False, False), False)])
def test_disclose_only_if_every_authorizer_discloses(disclosures, expected):
    """The combined decision discloses the caller / publisher only when every authorizer said so."""
    links = [link(Fixed(Decision(allow=True, disclose=d))) for d in disclosures]
    assert chain(*links).decide(request()).disclose is expected


def test_the_shortest_ttl_wins():
    """TTLs 30, 5, 60 combine to 5; one authorizer with TTL 0 makes the combined answer uncacheable."""
    ttls = [link(Fixed(Decision(allow=True, cache_ttl=t))) for t in (30.0, 5.0, 60.0)]
    assert chain(*ttls).decide(request()).cache_ttl == 5.0
    with_zero = [link(Fixed(Decision(allow=True, cache_ttl=t))) for t in (30.0, 0.0)]
    authorization = chain(*with_zero)
    assert authorization.decide(request()).cache_ttl == 0.0
    assert len(authorization.cache) == 0


@pytest.mark.parametrize("flags,expected", [((True, True), True), ((True, False), False), ((False, True), False)])
def test_per_role_only_if_every_authorizer_says_so(flags, expected):
    """The combined answer holds for the whole role only when every authorizer said it does."""
    links = [link(Fixed(Decision(allow=True, cache_ttl=10.0, per_role=f))) for f in flags]
    assert chain(*links).decide(request()).per_role is expected


# -- failures are denies ---------------------------------------------------------------------------------------


def test_an_authorizer_that_raises_denies_and_stops_the_chain():
    """An exception from authorize() is a deny (not cached) and the next authorizer is not asked."""
    raising, after = Raising(), Fixed(Decision(allow=True))
    authorization = chain(link(raising), link(after))
    assert authorization.decide(request()) == Decision(allow=False)
    assert (raising.asked, len(after.asked), len(authorization.cache)) == (1, 0, 0)


@pytest.mark.parametrize("answer", [True, None, {"allow": True}, "allow", 1, Decision])
def test_an_answer_that_is_not_a_decision_denies(answer):
    """True, None, a dict, a string, a number or the Decision class itself: all are denies."""
    assert chain(link(Fixed(answer))).decide(request()) == Decision(allow=False)


@pytest.mark.parametrize("allow", ["no", "false", 1, [False]])
def test_a_decision_whose_allow_is_not_true_denies(allow):
    """Only `allow=True` allows: a Decision carrying a truthy non-bool (a backend's "no" string, 1, a list) is a
    deny, so a plugin's parsing slip cannot open access."""
    decision = chain(link(Fixed(Decision(allow=allow, cache_ttl=10.0)))).decide(request())
    assert decision.allow is False


@pytest.mark.parametrize("answer", [True, {"allow": True}])
def test_a_deferred_firing_with_something_else_than_a_decision_denies(answer):
    """The same holds for an answer that arrives through a Deferred."""
    assert resolved(chain(link(Fixed(make=lambda: defer.succeed(answer)))).decide(request())) == [
        Decision(allow=False)]


def test_a_failed_deferred_denies():
    """A Deferred that fails is a deny; the decision's Deferred itself never fails."""
    failing = Fixed(make=lambda: defer.fail(RuntimeError("backend down")))
    assert resolved(chain(link(failing)).decide(request())) == [Decision(allow=False)]


def test_a_deferred_that_never_fires_denies_after_the_timeout(clock):
    """No answer: nothing is decided before the timeout, a deny exactly at it, and no timer is left behind."""
    pending = Fixed(make=defer.Deferred)
    after = Fixed(Decision(allow=True))
    answer = chain(link(pending), link(after), clock=clock).decide(request())
    results = resolved(answer)
    clock.advance(TIMEOUT - 0.001)
    assert results == []
    clock.advance(0.001)
    assert results == [Decision(allow=False)]
    assert (len(after.asked), clock.getDelayedCalls()) == (0, [])


def test_a_late_answer_after_the_timeout_is_ignored(clock):
    """An answer arriving after the timeout neither changes the deny nor raises AlreadyCalledError."""
    late = defer.Deferred()
    results = resolved(chain(link(Fixed(make=lambda: late)), clock=clock).decide(request()))
    clock.advance(TIMEOUT)
    late.callback(Decision(allow=True))
    assert results == [Decision(allow=False)]


def test_a_timed_out_deny_is_not_cached(clock):
    """After a timeout the next identical request asks the authorizer again."""
    pending = Fixed(make=defer.Deferred)
    authorization = chain(link(pending), clock=clock)
    resolved(authorization.decide(request()))
    clock.advance(TIMEOUT)
    resolved(authorization.decide(request()))
    assert len(pending.asked) == 2


# -- asynchronous answers --------------------------------------------------------------------------------------


def test_a_coroutine_answer_works(clock):
    """`async def authorize` may await (here a 1 s clock delay); its Decision is the answer."""

    class Async:
        async def authorize(self, request):
            await task.deferLater(clock, 1.0, lambda: None)
            return Decision(allow=True, cache_ttl=3.0)

    results = resolved(chain(link(Async()), clock=clock).decide(request()))
    assert results == []
    clock.advance(1.0)
    assert results == [Decision(allow=True, cache_ttl=3.0)]


def test_a_coroutine_that_raises_denies(clock):
    """An exception inside a coroutine authorizer is a deny."""

    class Async:
        async def authorize(self, request):
            raise ValueError("nope")

    assert resolved(chain(link(Async()), clock=clock).decide(request())) == [Decision(allow=False)]


def test_deferred_and_plain_answers_combine_in_order(clock):
    """An asynchronous allow followed by a synchronous deny: the deny wins once the first answer arrives, and the
    third authorizer is not asked."""
    first = Fixed(make=lambda: task.deferLater(clock, 0.5, Decision, allow=True, cache_ttl=9.0))
    second, third = Fixed(Decision(allow=False, cache_ttl=4.0)), Fixed(Decision(allow=True))
    results = resolved(chain(link(first), link(second), link(third), clock=clock).decide(request()))
    assert (results, len(second.asked)) == ([], 0)
    clock.advance(0.5)
    assert results == [Decision(allow=False, cache_ttl=4.0)]
    assert len(third.asked) == 0


def test_an_already_fired_deferred_leaves_no_timer(clock):
    """An authorizer answering with defer.succeed(...) is decided at once and leaves no timeout call pending."""
    results = resolved(chain(link(Fixed(make=lambda: defer.succeed(Decision(allow=True)))), clock=clock)
                       .decide(request()))
    assert (results, clock.getDelayedCalls()) == ([Decision(allow=True)], [])


# -- roles -------------------------------------------------------------------------------------------------------


def test_a_link_decides_only_for_its_roles():
    """A link restricted to role admin is not asked for role user; the chain then decides with the other links."""
    admin_only, everyone = Fixed(Decision(allow=False)), Fixed(Decision(allow=True))
    authorization = chain(link(admin_only, roles=["admin"]), link(everyone))
    assert authorization.decide(request(authrole="user")).allow is True
    assert (len(admin_only.asked), len(everyone.asked)) == (0, 1)
    assert authorization.decide(request(authrole="admin")).allow is False
    assert len(admin_only.asked) == 1


def test_a_role_no_link_applies_to_is_denied():
    """When every link is restricted to other roles, the session's role is denied (fail closed)."""
    only_admin = Fixed(Decision(allow=True))
    assert chain(link(only_admin, roles=["admin"])).decide(request(authrole="user")) == Decision(allow=False)
    assert only_admin.asked == []


# -- the cache ---------------------------------------------------------------------------------------------------


def test_a_cached_answer_is_reused_within_its_ttl(clock):
    """An allow with TTL 10 is reused until t=10 without asking; at t=10 the authorizer is asked again."""
    authorizer = Fixed(Decision(allow=True, cache_ttl=10.0))
    authorization = chain(link(authorizer), clock=clock)
    authorization.decide(request())
    clock.advance(9.999)
    assert authorization.decide(request()) == Decision(allow=True, cache_ttl=10.0)
    assert len(authorizer.asked) == 1
    clock.advance(0.001)
    authorization.decide(request())
    assert len(authorizer.asked) == 2


def test_a_cached_deny_is_reused_and_stops_the_chain(clock):
    """A deny with a TTL is cached too: within the TTL no authorizer is asked."""
    deny, other = Fixed(Decision(allow=False, cache_ttl=10.0)), Fixed(Decision(allow=True, cache_ttl=10.0))
    authorization = chain(link(deny), link(other), clock=clock)
    authorization.decide(request())
    assert authorization.decide(request()).allow is False
    assert (len(deny.asked), len(other.asked)) == (1, 0)


def test_an_asynchronous_answer_is_cached(clock):
    """An answer that came through a Deferred is cached like a plain one: the second request is decided at once."""
    slow = Fixed(make=lambda: task.deferLater(clock, 1.0, Decision, allow=True, cache_ttl=10.0))
    authorization = chain(link(slow), clock=clock)
    results = resolved(authorization.decide(request()))
    clock.advance(1.0)
    assert results == [Decision(allow=True, cache_ttl=10.0)]
    assert authorization.decide(request()) == Decision(allow=True, cache_ttl=10.0)
    assert len(slow.asked) == 1


def test_cache_hits_follow_per_role(clock):
    """A per-identity answer is not reused for another authid of the role; a per_role answer is, and neither is
    reused for another role."""
    personal = Fixed(Decision(allow=True, cache_ttl=10.0))
    authorization = chain(link(personal), clock=clock)
    authorization.decide(request(authid="alice"))
    authorization.decide(request(authid="bob"))
    assert len(personal.asked) == 2
    shared = Fixed(Decision(allow=True, cache_ttl=10.0, per_role=True))
    authorization = chain(link(shared), clock=clock)
    authorization.decide(request(authid="alice"))
    authorization.decide(request(authid="bob"))
    authorization.decide(request(authid="alice", authrole="admin"))
    assert [(r.identity.authid, r.identity.authrole) for r in shared.asked] == [("alice", "user"),
                                                                             ("alice", "admin")]
