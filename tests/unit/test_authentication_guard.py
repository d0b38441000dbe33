"""One authentication attempt (wampgate.tx.authentication.Authentication) driven with a fake session, a stub
authenticator and a fake clock: what is counted against whom, what clears a count, what is refused before the
authenticator is asked."""

from __future__ import annotations

from twisted.internet import defer, task
from twisted.logger import Logger

from wampgate.core.lockout import AuthFailures, LockoutPolicy, identity_key, peer_key
from wampgate.counters import Counters
from wampgate.model import Challenge, Denied, Identity
from wampgate.tx.authentication import Authentication
from tests.plugins import auth_request

PEER = peer_key("tcp4:127.0.0.1")  # the address tests.plugins.transport() gives


class FakeSession:
    """Records what the attempt reported."""

    def __init__(self):
        self.outcome = None

    def authenticated(self, identity):
        self.outcome = ("welcome", identity)

    def challenge(self, challenge):
        self.outcome = ("challenge", challenge)

    def refused(self):
        self.outcome = ("refused", None)


class Stub:
    """An authenticator whose begin() answers `answer` (a value, or a callable of the request); counts its calls."""

    def __init__(self, answer):
        self.answer = answer
        self.calls = 0

    def begin(self, request):
        self.calls += 1
        return self.answer(request) if callable(self.answer) else self.answer

    def finish(self, request, challenge, signature, extra):
        return Denied("unused")


class Setup:
    def __init__(self, **policy):
        self.clock = task.Clock()
        self.failures = AuthFailures(LockoutPolicy(**policy))
        self.counters = Counters()
        self.events: list[dict] = []

    def attempt(self, method: str, authid: str | None, answer, authextra=None) -> tuple[FakeSession, Stub]:
        session, stub = FakeSession(), Stub(answer)
        attempt = Authentication(session, stub, method, auth_request(authid, authextra=authextra, method=method),
                                 clock=self.clock, timeout=5.0, failures=self.failures, counters=self.counters)
        attempt.log = Logger(observer=self.events.append)
        attempt.start()
        return session, stub

    def fail(self, method: str, authid: str, times: int = 1) -> None:
        for _ in range(times):
            session, _ = self.attempt(method, authid, Denied("wrong"))
            self.clock.advance(60)  # past any delay
            assert session.outcome == ("refused", None)


def anonymous(request):
    return Identity("anonymous-0123456789abcdef", "anonymous", "anonymous", "static")


def as_named(request):
    return Identity(request.authid, "user", "ticket", "static")


def test_anonymous_login_naming_the_victim_clears_nothing():
    """An anonymous login whose HELLO names alice does not reset (ticket, alice)'s failures."""
    setup = Setup()
    setup.fail("ticket", "alice", 2)
    session, _ = setup.attempt("anonymous", "alice", anonymous)
    assert session.outcome[0] == "welcome"
    assert len(setup.failures.by_identity) == 1


def test_success_clears_only_the_identity_that_authenticated_with_that_method():
    """A ticket success for alice clears (ticket, alice), not (wampcra, alice); an authenticator that answers with
    another authid than the HELLO named clears neither the named one nor its own."""
    setup = Setup()
    setup.fail("ticket", "alice")
    setup.fail("wampcra", "alice")
    setup.fail("ticket", "bob")
    setup.attempt("ticket", "alice", as_named)
    assert len(setup.failures.by_identity) == 2
    setup.attempt("ticket", "bob", Identity("carol", "user", "ticket", "dynamic"))
    setup.attempt("ticket", "carol", Identity("bob", "user", "ticket", "dynamic"))
    assert len(setup.failures.by_identity) == 2


def test_failures_count_per_method_and_per_peer():
    """lockout_after = 3: three failures lock (ticket, erin) but not (cryptosign, erin); both feed the peer."""
    setup = Setup(lockout_after=3)
    setup.fail("ticket", "erin", 3)
    locked, stub = setup.attempt("ticket", "erin", as_named)
    assert locked.outcome == ("refused", None) and stub.calls == 0
    served, _ = setup.attempt("cryptosign", "erin", Identity("erin", "device", "cryptosign", "static"))
    assert served.outcome[0] == "welcome"
    assert len(setup.failures.by_peer) == 1


def test_an_authenticator_timeout_is_not_counted():
    """begin() never answers: after auth_timeout the client is refused, and neither table holds anything."""
    setup = Setup()
    session, _ = setup.attempt("ticket", "alice", defer.Deferred())
    setup.clock.advance(5.0)
    assert session.outcome == ("refused", None)
    assert len(setup.failures.by_identity) == len(setup.failures.by_peer) == 0


def test_an_overloaded_authenticator_refusal_is_not_counted():
    """Denied(counts_as_failure=False) (e.g. the ticket check queue is full) refuses, counting nothing."""
    setup = Setup()
    session, _ = setup.attempt("ticket", "alice", Denied("queue full", counts_as_failure=False))
    assert session.outcome == ("refused", None)
    assert len(setup.failures.by_identity) == len(setup.failures.by_peer) == 0


def test_logins_over_the_peer_rate_are_refused_before_the_authenticator_is_asked():
    """rate 1/s, burst 2: the third quick successful login from one address is refused without calling the
    authenticator and counted in authentication_rate_limited; anonymous logins are not limited; a second later
    the address may log in again."""
    setup = Setup(logins_per_peer_rate=1.0, logins_per_peer_burst=2)
    outcomes = [setup.attempt("ticket", "alice", as_named) for _ in range(3)]
    assert [session.outcome[0] for session, _ in outcomes] == ["welcome", "welcome", "refused"]
    assert outcomes[2][1].calls == 0
    assert setup.counters.value("authentication_rate_limited", method="ticket") == 1
    assert setup.counters.value("authentication_failure", method="ticket") == 1
    assert all(setup.attempt("anonymous", None, anonymous)[0].outcome[0] == "welcome" for _ in range(5))
    setup.clock.advance(1.0)
    assert setup.attempt("ticket", "alice", as_named)[0].outcome[0] == "welcome"


def test_an_oversized_authid_is_refused_before_any_table_or_authenticator():
    """A 257-byte authid (and a megabyte one) is refused at once: the authenticator is not asked, neither table
    gets an entry, authentication_oversized{field=authid} counts it, and the log shows only its start and length.
    256 bytes are accepted."""
    setup = Setup()
    for authid in ("a" * 257, "é" * 129, "m" * 1_000_000):
        session, stub = setup.attempt("ticket", authid, as_named)
        assert session.outcome == ("refused", None) and stub.calls == 0
    assert len(setup.failures.by_identity) == len(setup.failures.by_peer) == len(setup.failures.logins) == 0
    assert setup.counters.value("authentication_oversized", method="ticket", field="authid") == 3
    assert max(len(event["authid"]) for event in setup.events) < 200
    assert setup.attempt("ticket", "a" * 256, as_named)[0].outcome[0] == "welcome"


def test_an_oversized_authextra_is_refused_before_any_table_or_authenticator():
    """An authextra over max_authextra_size (here 5 KB of text) is refused like an oversized authid; a small one
    passes."""
    setup = Setup(max_authextra_size=4096)
    session, stub = setup.attempt("cryptosign", "erin", as_named, authextra={"pubkey": "x" * 5000})
    assert session.outcome == ("refused", None) and stub.calls == 0
    assert len(setup.failures.by_peer) == 0
    assert setup.counters.value("authentication_oversized", method="cryptosign", field="authextra") == 1
    served, _ = setup.attempt("cryptosign", "erin", Challenge("cryptosign", {}), authextra={"pubkey": "ab" * 32})
    assert served.outcome[0] == "challenge"
