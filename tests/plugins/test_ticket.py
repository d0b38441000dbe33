"""The `ticket` authenticator: scrypt-hashed tickets, no hint whether an authid exists, bounded off-reactor checks."""

from __future__ import annotations

import pytest
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorThreads
from zope.interface import implementer
from zope.interface.verify import verifyObject

from wampgate.plugins.authn import ticket
from wampgate.plugins.authn.ticket import TicketAuthenticator
from wampgate.interfaces import IAuthenticator, PluginContext
from wampgate.model import Challenge, Denied, Identity
from wampgate.passwords import hash_secret
from tests.plugins import auth_request, config_error

ALICE_TICKET = "alice-ticket-0123456789"
BOB_TICKET = "bob's ticket ✓"


@pytest.fixture(scope="module")
def hashes():
    """Hashes with the cheapest accepted parameters, made once for the module."""
    return {"alice": hash_secret(ALICE_TICKET, ln=14), "bob": hash_secret(BOB_TICKET, ln=14)}


@pytest.fixture
def config(hashes):
    return {"principals": [
        {"authid": "alice", "role": "user", "secret_hash": hashes["alice"]},
        {"authid": "bob", "role": "admin", "secret_hash": hashes["bob"]},
    ]}


@pytest.fixture
def authenticator(config):
    return TicketAuthenticator(config, reactor=task.Clock())


def attempt(authenticator, authid, signature):
    """HELLO then AUTHENTICATE: the answer of finish() (begin must have challenged)."""
    request = auth_request(authid)
    challenge = authenticator.begin(request)
    assert isinstance(challenge, Challenge)
    return authenticator.finish(request, challenge, signature, {})


def test_valid_config_loads(authenticator):
    """A principal table with authid, role and secret_hash gives an IAuthenticator for the "ticket" method."""
    assert verifyObject(IAuthenticator, authenticator)
    assert authenticator.authmethod == "ticket"


@pytest.mark.parametrize("change, key", [
    (lambda c: c.clear(), "principals"),
    (lambda c: c.update(principals=[]), "principals"),
    (lambda c: c.update(principals={"authid": "x"}), "principals"),
    (lambda c: c.update(secret="x"), "secret"),
    (lambda c: c["principals"].__setitem__(1, "bob"), "principals[1]"),
    (lambda c: c["principals"][0].pop("authid"), "principals[0].authid"),
    (lambda c: c["principals"][0].update(authid=""), "principals[0].authid"),
    (lambda c: c["principals"][1].update(role=5), "principals[1].role"),
    (lambda c: c["principals"][1].pop("secret_hash"), "principals[1].secret_hash"),
    (lambda c: c["principals"][1].update(secret_hash="plain-text-ticket"), "principals[1].secret_hash"),
    (lambda c: c["principals"][1].update(secret_hash="scrypt$ln=22,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5"
                                                     "a2V5a2V5a2V5a2V5a2U"), "principals[1].secret_hash"),
    (lambda c: c["principals"][0].update(ticket="x"), "principals[0].ticket"),
    (lambda c: c["principals"][1].update(authid="alice"), "principals[1].authid"),
])
def test_bad_config_names_the_key(config, change, key):
    """Each kind of mistake raises PluginConfigError naming the exact key, relative to the plugin's table."""
    change(config)
    error = config_error(TicketAuthenticator, config, reactor=task.Clock())
    assert error.key == key


def test_bad_hash_error_shows_the_value_found(config):
    """The error carries the value as written, so the operator sees what was wrong."""
    config["principals"][0]["secret_hash"] = "nope"
    assert config_error(TicketAuthenticator, config, reactor=task.Clock()).value == "nope"


def test_right_ticket_gives_identity(authenticator):
    """The right ticket for a known authid: its configured role, method "ticket", provider "static"."""
    assert attempt(authenticator, "alice", ALICE_TICKET) == Identity("alice", "user", "ticket", "static")
    assert attempt(authenticator, "bob", BOB_TICKET) == Identity("bob", "admin", "ticket", "static")


def test_wrong_ticket_is_denied_without_logging_it(authenticator):
    """Another principal's ticket, or a near miss, is refused; the log reason says "wrong ticket" and never holds the
    ticket."""
    for wrong in (BOB_TICKET, ALICE_TICKET + " ", ALICE_TICKET.upper(), ""):
        answer = attempt(authenticator, "alice", wrong)
        assert isinstance(answer, Denied) and answer.reason == "wrong ticket"
        assert not wrong or wrong not in answer.reason


def test_unknown_authid_is_denied(authenticator):
    """An unknown authid is refused at finish(), with "unknown authid" in the log reason, even with a real ticket."""
    answer = attempt(authenticator, "mallory", ALICE_TICKET)
    assert answer == Denied("unknown authid")


def test_unknown_and_known_authids_get_the_same_challenge(authenticator):
    """begin() does not reveal whether an authid exists: the same empty "ticket" challenge for both."""
    known, unknown = authenticator.begin(auth_request("alice")), authenticator.begin(auth_request("mallory"))
    assert known == unknown == Challenge("ticket", {})


def test_hello_without_authid_is_denied(authenticator):
    """Without an authid there is nobody to check the ticket for: refused at begin()."""
    assert isinstance(authenticator.begin(auth_request(None)), Denied)


@pytest.mark.parametrize("signature", [None, 42, b"alice-ticket-0123456789", ["x"], {"ticket": "x"},
                                       "x" * 4097, "é" * 2049])
def test_malformed_ticket_is_denied(authenticator, signature):
    """A ticket that is not a string, or longer than 4096 UTF-8 bytes, is refused before any hashing."""
    answer = attempt(authenticator, "alice", signature)
    assert isinstance(answer, Denied) and answer.reason.startswith("malformed ticket")


def test_ticket_of_exactly_4096_bytes_is_checked(authenticator):
    """The limit is inclusive: a 4096-byte ticket is checked (and here, wrong)."""
    assert attempt(authenticator, "alice", "é" * 2048) == Denied("wrong ticket")


# -- off the reactor thread --------------------------------------------------------------------------------------


class FakePool:
    """A thread pool that runs nothing until told to: lets a test see what is queued and running."""

    def __init__(self):
        self.jobs = []

    def callInThreadWithCallback(self, on_result, function, *args, **kwargs):  # noqa: N802 (Twisted's name)
        self.jobs.append((on_result, function, args, kwargs))

    def run_one(self):
        on_result, function, args, kwargs = self.jobs.pop(0)
        on_result(True, function(*args, **kwargs))


@implementer(IReactorThreads)
class ThreadedClock(task.Clock):
    """A Clock with a (fake) thread pool: what the plugin sees on a real reactor."""

    def __init__(self):
        super().__init__()
        self.pool = FakePool()

    def getThreadPool(self):  # noqa: N802
        return self.pool

    def callFromThread(self, function, *args, **kwargs):  # noqa: N802
        function(*args, **kwargs)

    def callInThread(self, function, *args, **kwargs):  # noqa: N802
        raise AssertionError("not used")

    def suggestThreadPoolSize(self, size):  # noqa: N802
        pass


def test_checks_run_in_the_thread_pool(config):
    """On a reactor with threads, finish() answers with a Deferred and the scrypt check runs in the pool, not on the
    reactor thread."""
    reactor = ThreadedClock()
    authenticator = TicketAuthenticator(config, reactor=reactor)
    answer = attempt(authenticator, "alice", ALICE_TICKET)
    assert isinstance(answer, defer.Deferred) and not answer.called
    reactor.pool.run_one()
    assert answer.result == Identity("alice", "user", "ticket", "static")


def test_concurrent_checks_are_bounded_and_a_full_queue_refuses(config, monkeypatch):
    """At most MAX_RUNNING checks run at once, at most MAX_WAITING wait; beyond that an attempt is refused unchecked
    (fail closed). Checks a caller gave up on (cancelled) are skipped, not run."""
    monkeypatch.setattr(ticket, "MAX_RUNNING", 2)
    monkeypatch.setattr(ticket, "MAX_WAITING", 2)
    reactor = ThreadedClock()
    authenticator = TicketAuthenticator(config, reactor=reactor)
    answers = [attempt(authenticator, "alice", "wrong") for _ in range(4)]
    assert len(reactor.pool.jobs) == 2
    overflow = attempt(authenticator, "alice", ALICE_TICKET)
    assert isinstance(overflow, Denied) and "waiting" in overflow.reason
    answers[2].addErrback(lambda failure: failure.trap(defer.CancelledError))
    answers[2].cancel()
    reactor.pool.run_one()  # frees a slot: the cancelled third is skipped, the fourth starts
    assert answers[0].result == Denied("wrong ticket")
    assert len(reactor.pool.jobs) == 2
    reactor.pool.run_one()
    reactor.pool.run_one()
    assert answers[1].result == answers[3].result == Denied("wrong ticket")
    assert reactor.pool.jobs == []


def test_every_ticket_authenticator_of_a_router_shares_one_check_queue(config, monkeypatch):
    """Authenticators built with the same plugin context (every listener's, and those a reload builds) share one
    bounded queue: with MAX_RUNNING = 1, the second authenticator's check waits for the first's to finish."""
    monkeypatch.setattr(ticket, "MAX_RUNNING", 1)
    reactor = ThreadedClock()
    context = PluginContext(base_dir=None)
    first = TicketAuthenticator(config, reactor=reactor, context=context)
    second = TicketAuthenticator(config, reactor=reactor, context=context)
    answers = [attempt(first, "alice", ALICE_TICKET), attempt(second, "bob", BOB_TICKET)]
    assert len(reactor.pool.jobs) == 1
    reactor.pool.run_one()
    assert len(reactor.pool.jobs) == 1
    reactor.pool.run_one()
    assert [answer.result.authid for answer in answers] == ["alice", "bob"]
