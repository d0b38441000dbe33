"""The glue around one session (router/tx/session.py, opening.py, requests.py) on a fake channel and a fake clock
(tests/support/session.py): the handshake, timeouts, GOODBYE both ways, order behind pending authorization decisions,
reading paused for order and for flow control, refusals, protocol violations and our own errors. Each test runs in
milliseconds; the socket tests keep what only sockets show."""

from __future__ import annotations

import pytest
from autobahn.wamp import message as wamp
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.logger import Logger
from zope.interface.verify import verifyObject

from wampgate.config import LimitsConfig
from wampgate.core import errors
from wampgate.model import DENY, Challenge, Decision, Identity
from wampgate.tx.channel import CONGESTED, PAUSED_FOR_FLOW, PAUSED_FOR_ORDER, TOO_LARGE, IChannel
from wampgate.tx.router_caller import _ResultChannel
from wampgate.tx.rawsocket import RawSocketFactory
from wampgate.tx.requests import MAX_READ_PAUSE
from wampgate.tx.session import MAX_PENDING, RouterSession
from wampgate.tx.websocket import WebSocketFactory
from tests.support import raw
from tests.support.raw import hello
from tests.support.session import DEFAULT_CONFIG, LISTENER, SessionHarness, marshal

WELCOME, ABORT, CHALLENGE, AUTHENTICATE, GOODBYE, ERROR = 2, 3, 4, 5, 6, 8
PUBLISH, SUBSCRIBE, CALL, RESULT, REGISTER, YIELD = 16, 32, 48, 50, 64, 70
CLOSE_NORMAL, PROTOCOL_ERROR, POLICY, INTERNAL_ERROR = 1000, 1002, 1008, 1011  # WebSocket close codes
HELLO_TIMEOUT = LimitsConfig.hello_timeout  # the defaults: the harness's config sets no [limits]
GOODBYE_TIMEOUT = LimitsConfig.goodbye_timeout
AUTH_TIMEOUT = LimitsConfig.auth_timeout


def goodbye(reason: str = "wamp.close.close_realm") -> list:
    return [GOODBYE, {}, reason]


def subscribe(request: int, topic: str = "com.example.topic") -> list:
    return [SUBSCRIBE, request, {}, topic]


def publish(request: int, topic: str = "com.example.topic") -> list:
    return [PUBLISH, request, {"acknowledge": True}, topic, [request]]


def kinds(messages: list) -> list[str]:
    return [type(m).__name__ for m in messages]


class LaterAuthenticator:
    """authmethod "later": every answer is a Deferred the test fires (or never does)."""

    authmethod = "later"

    def __init__(self) -> None:
        self.begun: list[defer.Deferred] = []
        self.finished: list[tuple[object, object, defer.Deferred]] = []

    def begin(self, request) -> defer.Deferred:
        d = defer.Deferred()
        self.begun.append(d)
        return d

    def finish(self, request, challenge, signature, extra) -> defer.Deferred:
        d = defer.Deferred()
        self.finished.append((challenge, signature, d))
        return d


ALLOW = Decision(allow=True)
ALICE = Identity(authid="alice", authrole="anonymous", authmethod="later", authprovider="test")


class LaterAuthorizer:
    """Topics under com.slow. are decided later (the test fires each Deferred); everything else is allowed now."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, defer.Deferred]] = []

    def authorize(self, request):
        if not request.uri.startswith("com.slow."):
            return ALLOW
        d = defer.Deferred()
        self.pending.append((request.uri, d))
        return d


@pytest.fixture
def harness() -> SessionHarness:
    return SessionHarness()


# -- the channel contract -----------------------------------------------------------------------------------------


def test_the_fake_channel_provides_ichannel(harness):
    """The harness's channel is held to the same contract as the real transports."""
    assert verifyObject(IChannel, harness.connect().channel)


def _address() -> IPv4Address:
    return IPv4Address("TCP", "127.0.0.1", 50001)


def test_a_websocket_channel_provides_ichannel(harness):
    """A WebSocketChannel that has completed its opening handshake (on an in-memory transport) provides IChannel,
    and its session talks to it."""
    channel = WebSocketFactory(harness.context, harness.listener(), harness.codecs).buildProtocol(_address())
    transport = StringTransport(peerAddress=_address())
    channel.makeConnection(transport)
    channel.dataReceived(raw.websocket_upgrade())
    assert transport.value().startswith(b"HTTP/1.1 101 ")
    assert isinstance(channel.session, RouterSession) and channel.session.channel is channel
    assert verifyObject(IChannel, channel)


def test_a_rawsocket_channel_provides_ichannel(harness):
    """A RawSocketChannel that has completed its handshake (on an in-memory transport) provides IChannel, and its
    session talks to it."""
    channel = RawSocketFactory(harness.context, harness.listener(), harness.codecs).buildProtocol(_address())
    transport = StringTransport(peerAddress=_address())
    channel.makeConnection(transport)
    channel.dataReceived(raw.handshake(raw.RAWSOCKET_SERIALIZERS["msgpack"]))
    assert transport.value()[:1] == b"\x7f" and len(transport.value()) == 4
    assert isinstance(channel.session, RouterSession) and channel.session.channel is channel
    assert verifyObject(IChannel, channel)


def test_the_routers_internal_caller_channel_provides_ichannel():
    """The channel of the router's own calls is a channel like the others (it is a Peer's channel in the realm)."""
    assert verifyObject(IChannel, _ResultChannel())


# -- HELLO to WELCOME -----------------------------------------------------------------------------------------------


def test_hello_gets_welcome_as_anonymous_and_the_hello_timeout_is_cancelled(harness):
    """HELLO on the anonymous listener: WELCOME with a session id the realm lists, authrole and authmethod
    "anonymous"; once welcomed, hello_timeout no longer applies."""
    client = harness.connect()
    [welcome] = client.feed(hello())
    assert type(welcome) is wamp.Welcome
    assert (welcome.realm, welcome.authrole, welcome.authmethod) == ("realm1", "anonymous", "anonymous")
    assert welcome.authid.startswith("anonymous-")
    assert list(harness.realm().core.sessions) == [welcome.session]
    harness.advance(HELLO_TIMEOUT * 2)
    assert client.channel.closed is None
    assert client.feed(subscribe(1))[0].request == 1


def test_hello_for_an_unknown_realm_is_aborted_with_no_such_realm(harness):
    """HELLO for a realm the router does not have: ABORT wamp.error.no_such_realm with a generic text, then the
    transport closes (1000); no realm lists a session."""
    client = harness.connect()
    assert marshal(client.feed(hello("realm2"))) == [[ABORT, {"message": "no such realm"}, errors.NO_SUCH_REALM]]
    assert client.channel.closed == (CLOSE_NORMAL, None)
    assert not harness.realm().core.sessions


def test_hello_offering_no_method_the_listener_allows_is_aborted_with_no_auth_method(harness):
    """HELLO offering only methods the listener does not have (ticket, cryptosign): ABORT
    wamp.error.no_auth_method, then close."""
    client = harness.connect()
    [abort] = client.feed(hello(authmethods=["ticket", "cryptosign"], authid="alice"))
    assert (type(abort), abort.reason) == (wamp.Abort, errors.NO_AUTH_METHOD)
    assert client.channel.closed == (CLOSE_NORMAL, None)


def test_a_challenge_answered_later_leads_to_welcome(harness):
    """An authenticator that answers later: nothing is sent until its CHALLENGE comes; the client's AUTHENTICATE
    reaches its `finish` with the challenge it was sent; the identity it answers later is welcomed."""
    authenticator = LaterAuthenticator()
    harness.use_authenticator(authenticator)
    client = harness.connect()
    assert client.feed(hello(authmethods=["later"], authid="alice")) == []
    [begun] = authenticator.begun
    challenge = Challenge("later", {"nonce": "n-1"})
    begun.callback(challenge)
    assert marshal(client.take()) == [[CHALLENGE, "later", {"nonce": "n-1"}]]
    assert client.feed([AUTHENTICATE, "signed-n-1", {}]) == []
    [(seen_challenge, signature, finished)] = authenticator.finished
    assert (seen_challenge, signature) == (challenge, "signed-n-1")
    finished.callback(ALICE)
    [welcome] = client.take()
    assert (type(welcome), welcome.authid, welcome.authmethod) == (wamp.Welcome, "alice", "later")
    assert welcome.session in harness.realm().core.sessions


def test_an_authenticator_that_never_answers_is_refused_after_auth_timeout(harness):
    """An authenticator whose answer does not come within auth_timeout: its Deferred is cancelled and the client
    gets ABORT authentication_failed exactly then."""
    authenticator = LaterAuthenticator()
    harness.use_authenticator(authenticator)
    client = harness.connect()
    client.feed(hello(authmethods=["later"], authid="alice"))
    harness.advance(AUTH_TIMEOUT - 0.01)
    assert client.take() == []
    harness.advance(0.01)
    assert authenticator.begun[0].called
    [abort] = client.take()
    assert (type(abort), abort.reason) == (wamp.Abort, errors.AUTHENTICATION_FAILED)
    assert client.channel.closed == (CLOSE_NORMAL, None)
    assert not harness.realm().core.sessions


def test_a_session_closed_while_its_authenticator_decides_is_not_welcomed_later(harness):
    """The client goes away while the authenticator decides: the pending answer is cancelled, and nothing joins
    the realm."""
    authenticator = LaterAuthenticator()
    harness.use_authenticator(authenticator)
    client = harness.connect()
    client.feed(hello(authmethods=["later"], authid="alice"))
    client.channel.lose()
    [begun] = authenticator.begun
    assert begun.called  # cancelled: its callbacks have run
    assert client.channel.after_close == [] and not harness.realm().core.sessions


# -- timeouts ---------------------------------------------------------------------------------------------------------


def test_no_hello_within_hello_timeout_closes_with_1008(harness):
    """A connection that sends nothing is closed with 1008 exactly when hello_timeout has passed; nothing is sent."""
    client = harness.connect()
    harness.advance(HELLO_TIMEOUT - 0.001)
    assert client.channel.closed is None
    harness.advance(0.001)
    assert client.channel.closed == (POLICY, "session not established in time")
    assert client.received == []


def test_hello_timeout_comes_from_the_config(harness):
    """[limits] hello_timeout is what the session waits, not a constant."""
    fast = SessionHarness("[limits]\nhello_timeout = 0.5\n" + DEFAULT_CONFIG)
    client = fast.connect()
    fast.advance(0.5)
    assert client.channel.closed == (POLICY, "session not established in time")


# -- GOODBYE, both ways ------------------------------------------------------------------------------------------------


def test_client_goodbye_is_answered_then_a_new_hello_is_welcomed(harness):
    """GOODBYE is answered with GOODBYE wamp.close.normal, the session leaves the realm, the transport stays open,
    and a new HELLO gets a new session."""
    client = harness.connect()
    first = client.join()
    assert marshal(client.feed(goodbye())) == [[GOODBYE, {}, errors.CLOSE_NORMAL]]
    assert client.channel.closed is None and not harness.realm().core.sessions
    second = client.join()
    assert second.session != first.session
    assert list(harness.realm().core.sessions) == [second.session]


def test_after_goodbye_the_hello_timeout_runs_again(harness):
    """After a GOODBYE exchange the transport must send HELLO within hello_timeout, or it is closed (1008)."""
    client = harness.joined()
    harness.advance(HELLO_TIMEOUT)  # the first timeout was cancelled by WELCOME
    client.feed(goodbye())
    harness.advance(HELLO_TIMEOUT - 0.001)
    assert client.channel.closed is None
    harness.advance(0.001)
    assert client.channel.closed == (POLICY, "session not established in time")


def test_late_messages_after_the_goodbye_exchange_are_dropped(harness):
    """Messages of the old session that arrive after its GOODBYE (the client had not seen the reply) are dropped:
    no ERROR, no ABORT; the next reply on the connection is the new session's WELCOME."""
    client = harness.joined()
    replies = client.feed(goodbye(), subscribe(5), publish(6), goodbye(), [AUTHENTICATE, "late", {}], hello())
    assert kinds(replies) == ["Goodbye", "Welcome"]


def test_router_goodbye_answered_by_the_client_closes_with_1000(harness):
    """The router's GOODBYE (a kick, a shutdown): the session leaves at once; what the client sends meanwhile is
    dropped, and its GOODBYE reply closes the transport with 1000."""
    client = harness.joined()
    client.session.goodbye(errors.SYSTEM_SHUTDOWN, "bye")
    assert marshal(client.take()) == [[GOODBYE, {"message": "bye"}, errors.SYSTEM_SHUTDOWN]]
    assert not harness.realm().core.sessions
    assert client.feed(subscribe(3), hello()) == []
    assert client.channel.closed is None
    client.feed(goodbye(errors.GOODBYE_AND_OUT))
    assert client.channel.closed == (CLOSE_NORMAL, None)
    assert client.take() == []


def test_router_goodbye_unanswered_closes_after_goodbye_timeout(harness):
    """A client that never answers the router's GOODBYE is closed (1000) exactly when goodbye_timeout passes."""
    client = harness.joined()
    client.session.goodbye(errors.SYSTEM_SHUTDOWN)
    harness.advance(GOODBYE_TIMEOUT - 0.001)
    assert client.channel.closed is None
    harness.advance(0.001)
    assert client.channel.closed == (CLOSE_NORMAL, None)


# -- order behind a pending authorization decision ----------------------------------------------------------------------


def test_messages_behind_a_pending_decision_keep_their_order_goodbye_and_hello_included(harness):
    """While an authorizer decides on one SUBSCRIBE, everything after it waits, even requests allowed at once and a
    GOODBYE + HELLO; once it is decided they are handled in the order they came: SUBSCRIBED, SUBSCRIBED, GOODBYE,
    WELCOME."""
    authorizer = LaterAuthorizer()
    harness.use_authorizer(authorizer)
    client = harness.joined()
    assert client.feed(subscribe(1, "com.slow.a"), subscribe(2, "com.fast.b"), goodbye(), hello()) == []
    [(uri, decision)] = authorizer.pending
    assert uri == "com.slow.a"
    decision.callback(ALLOW)
    replies = client.take()
    assert kinds(replies) == ["Subscribed", "Subscribed", "Goodbye", "Welcome"]
    assert [replies[0].request, replies[1].request] == [1, 2]
    assert list(harness.realm().core.sessions) == [replies[3].session]


def test_a_denial_decided_later_is_answered_before_what_followed(harness):
    """A SUBSCRIBE the authorizer denies later gets its ERROR not_authorized before the answers to the requests
    sent after it."""
    authorizer = LaterAuthorizer()
    harness.use_authorizer(authorizer)
    client = harness.joined()
    client.feed(subscribe(1, "com.slow.a"), publish(2, "com.fast.b"))
    authorizer.pending[0][1].callback(DENY)
    denied, published = client.take()
    assert marshal([denied]) == [
        [ERROR, SUBSCRIBE, 1, {}, errors.NOT_AUTHORIZED, ["session is not authorized to subscribe on 'com.slow.a'"]]]
    assert (type(published), published.request) == (wamp.Published, 2)


def test_max_pending_messages_pause_reading_for_order_until_the_decision(harness):
    """MAX_PENDING messages waiting behind one decision pause reading (reason "order"), not one fewer; when the
    decision comes all of them are answered in order and reading resumes."""
    authorizer = LaterAuthorizer()
    harness.use_authorizer(authorizer)
    client = harness.joined()
    client.feed(subscribe(1, "com.slow.a"))
    client.feed(*[publish(request) for request in range(2, MAX_PENDING + 1)])
    assert client.channel.paused_for == set()
    client.feed(publish(MAX_PENDING + 1))
    assert client.channel.paused_for == {PAUSED_FOR_ORDER}
    authorizer.pending[0][1].callback(ALLOW)
    assert [m.request for m in client.take()] == list(range(1, MAX_PENDING + 2))
    assert client.channel.reading == [("pause", PAUSED_FOR_ORDER), ("resume", PAUSED_FOR_ORDER)]


def test_a_session_killed_through_the_meta_api_gets_the_routers_goodbye(harness):
    """wamp.session.kill (here allowed by the authorizer) reaches the other session as the router's GOODBYE with
    the given reason and message; that session has left, and its GOODBYE reply closes it (1000)."""
    harness.use_authorizer(LaterAuthorizer())
    killer, victim = harness.joined(), harness.joined()
    victim_id = victim.session.peer.session_id
    reply = killer.feed([CALL, 1, {}, "wamp.session.kill", [victim_id], {"reason": "com.example.out",
                                                                         "message": "bye"}])
    assert marshal(reply) == [[RESULT, 1, {}]]
    assert marshal(victim.take()) == [[GOODBYE, {"message": "bye"}, "com.example.out"]]
    assert victim_id not in harness.realm().core.sessions
    assert victim.feed(goodbye(errors.GOODBYE_AND_OUT)) == []
    assert victim.channel.closed == (CLOSE_NORMAL, None)


# -- flow control --------------------------------------------------------------------------------------------------------

RATE_ONE_PER_SECOND = """
[[flow]]
plugin = "limits"
disconnect_after = 0
rates = { session = { messages = 1, burst = 2 } }
"""
SPENT_QUOTA = """
[[flow]]
plugin = "limits"
disconnect_after = 0
quotas = [{ per = "session", messages = 1, window = 3600 }]
"""


def test_a_refusal_pauses_reading_for_retry_after_and_held_messages_follow_in_order():
    """rates.session = 1/s, burst 2: the third PUBLISH is refused (ERROR rate_limited with retry_after) and reading
    pauses (reason "flow"); what the transport still delivers waits unanswered until retry_after has passed, then is
    handled in order (before the channel reads anything new) — the first passes, the next is refused and reading
    stays paused."""
    harness = SessionHarness(RATE_ONE_PER_SECOND + DEFAULT_CONFIG)
    client = harness.joined()
    replies = client.feed(publish(1), publish(2), publish(3))
    assert kinds(replies) == ["Published", "Published", "RateLimited"]
    retry_after = replies[2].retry_after
    assert 0 < retry_after <= 1.0 and replies[2].error == errors.RATE_LIMITED
    assert client.channel.paused_for == {PAUSED_FOR_FLOW}
    assert client.feed(publish(4), publish(5)) == []
    harness.advance(retry_after - 0.001)
    assert client.take() == [] and client.channel.paused_for == {PAUSED_FOR_FLOW}
    harness.advance(0.001)
    replies = client.take()
    assert [(type(m).__name__, m.request) for m in replies] == [("Published", 4), ("RateLimited", 5)]
    # held messages are handled before the channel is asked to read again: refused again, it simply stays paused
    assert client.channel.reading == [("pause", PAUSED_FOR_FLOW)]


def test_a_long_retry_after_pauses_reading_for_at_most_max_read_pause():
    """A spent hourly quota says retry after ~3600 s; reading pauses for MAX_READ_PAUSE seconds only, so the client
    can still say GOODBYE: held after the pause, it is answered."""
    harness = SessionHarness(SPENT_QUOTA + DEFAULT_CONFIG)
    client = harness.joined()
    replies = client.feed(publish(1), publish(2))
    assert kinds(replies) == ["Published", "RateLimited"] and replies[1].retry_after > 3000
    assert client.feed(goodbye()) == []
    harness.advance(MAX_READ_PAUSE - 0.001)
    assert client.channel.paused_for == {PAUSED_FOR_FLOW}
    harness.advance(0.001)
    assert client.channel.paused_for == set()
    assert marshal(client.take()) == [[GOODBYE, {}, errors.CLOSE_NORMAL]]


def test_a_refused_yield_ends_the_call_with_rate_limited():
    """The callee's YIELD over its rate cannot be dropped (its caller would wait forever): the call ends with ERROR
    wampgate.error.rate_limited "the callee exceeded its rate limit", and the callee's reading pauses."""
    harness = SessionHarness(RATE_ONE_PER_SECOND + DEFAULT_CONFIG)
    callee, caller = harness.joined(), harness.joined()
    [registered] = callee.feed([REGISTER, 1, {}, "com.example.echo"])
    caller.feed([CALL, 1, {}, "com.example.echo", ["a"]], [CALL, 2, {}, "com.example.echo", ["b"]])
    first, second = callee.take()
    assert (first.registration, second.registration) == (registered.registration,) * 2
    assert callee.feed([YIELD, first.request, {}, ["a"]], [YIELD, second.request, {}, ["b"]]) == []
    assert marshal(caller.take()) == [
        [RESULT, 1, {}, ["a"]],
        [ERROR, CALL, 2, {}, errors.RATE_LIMITED, ["the callee exceeded its rate limit"]],
    ]
    assert callee.channel.paused_for == {PAUSED_FOR_FLOW}
    assert not harness.realm().core.dealer.pending_calls()


def test_a_refused_progressive_yield_ends_the_call_and_the_callees_next_yield_is_late_not_a_violation():
    """A progressive YIELD over the callee's rate ends the call (caller: ERROR wampgate.error.rate_limited) and
    retires the invocation (a canceling-capable callee gets INTERRUPT): when the callee, read again, goes on with its next progressive or final YIELD, that is
    dropped as late, not a protocol violation, and the callee stays joined."""
    harness = SessionHarness(RATE_ONE_PER_SECOND + DEFAULT_CONFIG)
    progressive = {"features": {"progressive_call_results": True, "call_canceling": True}}
    roles = {"caller": progressive, "callee": progressive}
    callee, caller = harness.joined(roles=roles), harness.joined(roles=roles)
    callee.feed([REGISTER, 1, {}, "com.example.stream"])
    caller.feed([CALL, 1, {"receive_progress": True}, "com.example.stream", []])
    [invocation] = callee.take()
    # REGISTER and the first progressive YIELD spend the burst of 2; the second is over the rate
    interrupted = callee.feed([YIELD, invocation.request, {"progress": True}, ["1"]],
                              [YIELD, invocation.request, {"progress": True}, ["2"]])
    assert [(type(m).__name__, m.request) for m in interrupted] == [("Interrupt", invocation.request)]
    assert marshal(caller.take()) == [
        [RESULT, 1, {"progress": True}, ["1"]],
        [ERROR, CALL, 1, {}, errors.RATE_LIMITED, ["the callee exceeded its rate limit"]],
    ]
    harness.advance(MAX_READ_PAUSE)
    assert callee.feed([YIELD, invocation.request, {"progress": True}, ["3"]], [YIELD, invocation.request, {}, ["4"]]) == []
    assert callee.channel.closed is None and caller.take() == []
    assert not harness.realm().core.dealer.pending_calls()


def test_an_unacknowledged_publish_refused_by_flow_control_gets_no_answer_and_is_counted():
    """An unacknowledged PUBLISH over the rate is dropped silently (the spec: no answer), counted as flow_drop
    unacknowledged_publish_rate_limited, and reading still pauses."""
    harness = SessionHarness(SPENT_QUOTA + DEFAULT_CONFIG)
    client = harness.joined()
    assert kinds(client.feed(publish(1))) == ["Published"]
    assert client.feed([PUBLISH, 2, {}, "com.example.topic", [2]]) == []
    assert client.channel.paused_for == {PAUSED_FOR_FLOW}
    assert harness.context.counters.value("flow_drop", reason="unacknowledged_publish_rate_limited",
                                          listener=LISTENER, realm="realm1") == 1


def test_refusals_for_longer_than_disconnect_after_end_the_session_with_abort():
    """disconnect_after = 0.5 and a spent quota: the first refusal pauses reading; the next request, read when
    reading resumes 2 s later while still refused, ends the session with ABORT wampgate.close.rate_limited."""
    harness = SessionHarness(SPENT_QUOTA.replace("disconnect_after = 0", "disconnect_after = 0.5") + DEFAULT_CONFIG)
    client = harness.joined()
    assert kinds(client.feed(publish(1), publish(2))) == ["Published", "RateLimited"]
    assert client.feed(publish(3)) == []
    harness.advance(MAX_READ_PAUSE)
    [abort] = client.take()
    assert (type(abort), abort.reason) == (wamp.Abort, errors.RATE_LIMITED_CLOSE)
    assert client.channel.closed == (CLOSE_NORMAL, None)
    assert harness.context.counters.value("flow_disconnect", reason="rate_limit_sustained", listener=LISTENER,
                                          realm="realm1") == 1


def test_a_session_over_max_sessions_per_authid_is_refused_at_hello():
    """max_sessions_per_authid = 1: alice's second session is refused at HELLO with ABORT
    wampgate.error.too_many_sessions; her first goes on."""
    harness = SessionHarness('[[flow]]\nplugin = "limits"\nmax_sessions_per_authid = 1\n' + DEFAULT_CONFIG)
    authenticator = LaterAuthenticator()
    harness.use_authenticator(authenticator)
    first, second = harness.connect(), harness.connect()
    for client in (first, second):
        client.feed(hello(authmethods=["later"], authid="alice"))
        authenticator.begun[-1].callback(ALICE)
    assert kinds(first.take()) == ["Welcome"]
    [abort] = second.take()
    assert (type(abort), abort.reason) == (wamp.Abort, errors.TOO_MANY_SESSIONS)
    assert list(harness.realm().core.sessions) == [first.session.peer.session_id]


def test_an_identity_with_a_role_the_realm_does_not_define_is_refused(harness):
    """An authenticator answering with a role realm1 does not define: ABORT authentication_failed, nobody joins."""
    authenticator = LaterAuthenticator()
    harness.use_authenticator(authenticator)
    client = harness.connect()
    client.feed(hello(authmethods=["later"], authid="alice"))
    authenticator.begun[0].callback(Identity(authid="alice", authrole="admin", authmethod="later",
                                             authprovider="test"))
    [abort] = client.take()
    assert (type(abort), abort.reason) == (wamp.Abort, errors.AUTHENTICATION_FAILED)
    assert not harness.realm().core.sessions


# -- what the parser refuses ------------------------------------------------------------------------------------------


def test_an_invalid_uri_in_a_request_is_answered_and_the_session_goes_on(harness):
    """SUBSCRIBE to "com.x y" (refused by the parser, before the realm sees it): ERROR wamp.error.invalid_uri for
    that request; the session stays and serves the next request."""
    client = harness.joined()
    assert marshal(client.feed(subscribe(1, "com.x y"))) == [
        [ERROR, SUBSCRIBE, 1, {}, errors.INVALID_URI, ["invalid URI"]]]
    assert kinds(client.feed(subscribe(2))) == ["Subscribed"]


def test_an_invalid_realm_uri_in_hello_is_aborted_with_invalid_uri(harness):
    """HELLO for realm "realm 1": ABORT wamp.error.invalid_uri, then close."""
    client = harness.connect()
    [abort] = client.feed(hello("realm 1"))
    assert (type(abort), abort.reason) == (wamp.Abort, errors.INVALID_URI)
    assert client.channel.closed == (CLOSE_NORMAL, None)


def test_a_value_not_every_serializer_can_write_is_refused_with_invalid_argument(harness):
    """An acknowledged PUBLISH carrying 2**70 (no MessagePack or CBOR client could read it): ERROR
    wamp.error.invalid_argument; nothing is published and the session goes on."""
    client = harness.joined()
    subscriber = harness.joined()
    subscriber.feed(subscribe(1))
    [error] = client.feed([PUBLISH, 7, {"acknowledge": True}, "com.example.topic", [2**70]])
    assert (type(error), error.request, error.error) == (wamp.Error, 7, errors.INVALID_ARGUMENT)
    assert kinds(client.feed(publish(8))) == ["Published"]
    assert [event.args for event in subscriber.take()] == [[8]]


def test_the_dropped_events_procedure_answers_from_the_channels_budget(harness):
    """CALL wampgate.session.dropped_events is answered by the session itself with the count its channel's
    budget keeps."""
    client = harness.joined()
    client.channel.budget.dropped = 3
    assert marshal(client.feed([CALL, 1, {}, "wampgate.session.dropped_events"])) == [[RESULT, 1, {}, [3]]]


# -- what a channel refuses -------------------------------------------------------------------------------------------------


def test_a_realm_reply_larger_than_the_client_takes_ends_the_session_with_an_abort_that_fits(harness):
    """A reply from the realm (SUBSCRIBED) that the channel refuses as TOO_LARGE: the session ends with ABORT
    payload_size_exceeded (which still fits), then the transport closes."""
    client = harness.joined()
    client.channel.refusals.append(TOO_LARGE)
    [abort] = client.feed(subscribe(1))
    assert (type(abort), abort.reason) == (wamp.Abort, errors.PAYLOAD_SIZE_EXCEEDED)
    assert client.channel.closed == (CLOSE_NORMAL, None)
    assert not harness.realm().core.sessions


def test_a_realm_reply_over_the_outgoing_budget_drops_the_connection(harness):
    """A reply from the realm that the channel refuses as CONGESTED (the client does not read): the connection is
    dropped at once (nothing more could be written), and the realm forgets the session."""
    client = harness.joined()
    client.channel.refusals.append(CONGESTED)
    assert client.feed(subscribe(1)) == []
    assert client.channel.aborted and client.channel.closed is None
    assert not harness.realm().core.sessions


def test_a_session_reply_over_the_outgoing_budget_closes_with_1008(harness):
    """The session's own reply (here the GOODBYE answer) refused as CONGESTED: closed with 1008."""
    client = harness.joined()
    client.channel.refusals.append(CONGESTED)
    assert client.feed(goodbye()) == []
    assert client.channel.closed == (POLICY, None)


# -- protocol violations and our own errors ------------------------------------------------------------------------------


def _await_hello(harness):
    return harness.connect()


def _authenticating(harness):
    harness.use_authenticator(LaterAuthenticator())
    client = harness.connect()
    client.feed(hello(authmethods=["later"], authid="alice"))
    return client


def _challenged(harness):
    authenticator = LaterAuthenticator()
    harness.use_authenticator(authenticator)
    client = harness.connect()
    client.feed(hello(authmethods=["later"], authid="alice"))
    authenticator.begun[0].callback(Challenge("later"))
    client.take()
    return client


VIOLATIONS = {
    "subscribe-before-hello": (_await_hello, subscribe(1)),
    "authenticate-before-hello": (_await_hello, [AUTHENTICATE, "sig", {}]),
    "goodbye-before-hello": (_await_hello, goodbye()),
    "hello-while-authenticating": (_authenticating, hello()),
    "subscribe-while-challenged": (_challenged, subscribe(1)),
    "hello-while-challenged": (_challenged, hello()),
    "hello-when-established": (SessionHarness.joined, hello()),
    "authenticate-when-established": (SessionHarness.joined, [AUTHENTICATE, "sig", {}]),
    "a-router-message-type": (SessionHarness.joined, [WELCOME, 1, {}]),
    "not-an-array": (SessionHarness.joined, b'{"hello": 1}'),
    "not-json": (_await_hello, b"[1, "),
}


@pytest.mark.parametrize("case", list(VIOLATIONS))
def test_a_message_not_allowed_in_the_state_is_a_protocol_violation(harness, case):
    """Representative illegal messages per state (the table itself: tests/unit/test_handshake.py): ABORT
    wamp.error.protocol_violation with the generic text, close 1002, and the realm forgets the session."""
    reach, message = VIOLATIONS[case]
    client = reach(harness)
    client.take()
    assert marshal(client.feed(message)) == [[ABORT, {"message": "protocol violation"}, errors.PROTOCOL_VIOLATION]]
    assert client.channel.closed == (PROTOCOL_ERROR, None)
    assert not harness.realm().core.sessions


@pytest.mark.parametrize("reach", [_await_hello, _challenged, SessionHarness.joined], ids=lambda f: f.__name__)
def test_a_client_abort_closes_quietly_in_any_state(harness, reach):
    """ABORT from the client ends the session in any open state: closed with 1000, nothing sent in reply."""
    client = reach(harness)
    client.take()
    assert client.feed([ABORT, {}, "wamp.close.client_gone"]) == []
    assert client.channel.closed == (CLOSE_NORMAL, None)
    assert not harness.realm().core.sessions


def test_an_internal_error_while_routing_closes_with_1011_and_logs_the_traceback(harness, monkeypatch):
    """Our own bug while routing a request: the traceback goes to our log, the session ends with 1011 and the
    generic reason "internal error", nothing of it reaches the client, and the realm forgets the session."""
    logged: list[dict] = []
    monkeypatch.setattr(RouterSession, "log", Logger(observer=logged.append))
    client = harness.joined()

    def broken(*args, **kwargs):
        raise RuntimeError("a bug in the realm")

    monkeypatch.setattr(harness.realm().core, "receive", broken)
    assert client.feed(subscribe(1)) == []
    assert client.channel.closed == (INTERNAL_ERROR, "internal error")
    assert not harness.realm().core.sessions
    [failure] = [event["log_failure"] for event in logged if "log_failure" in event]
    assert failure.check(RuntimeError)
