"""The session lifecycle table (router/core/handshake.py), exhaustively: every state x every event."""

from __future__ import annotations

import itertools

import pytest
from autobahn.wamp import message as wamp

from wampgate.core import handshake as h

# What each (state, client event) leads to; anything a client sends that is not listed is a protocol violation.
CLIENT_EXPECTED = {
    (h.AWAIT_HELLO, h.HELLO): (h.AUTHENTICATING, h.OPEN),
    (h.ENDED, h.HELLO): (h.AUTHENTICATING, h.OPEN),
    (h.CHALLENGED, h.AUTHENTICATE): (h.AUTHENTICATING, h.ANSWER_CHALLENGE),
    (h.ESTABLISHED, h.REQUEST): (h.ESTABLISHED, h.ROUTE),
    (h.ESTABLISHED, h.GOODBYE): (h.ENDED, h.REPLY_GOODBYE),
    (h.CLOSING, h.GOODBYE): (h.CLOSED, h.CLOSE),
    (h.CLOSING, h.HELLO): (h.CLOSING, h.DROP),
    (h.CLOSING, h.AUTHENTICATE): (h.CLOSING, h.DROP),
    (h.CLOSING, h.REQUEST): (h.CLOSING, h.DROP),
    (h.ENDED, h.AUTHENTICATE): (h.ENDED, h.DROP),
    (h.ENDED, h.GOODBYE): (h.ENDED, h.DROP),
    (h.ENDED, h.REQUEST): (h.ENDED, h.DROP),
    **{(state, h.ABORT): (h.CLOSED, h.CLOSE) for state in h.STATES if state != h.CLOSED},
    **{(h.CLOSED, event): (h.CLOSED, h.IGNORE) for event in h.CLIENT_EVENTS},
}
# What each (state, router event) leads to; a router event not listed came too late and changes nothing.
ROUTER_EXPECTED = {
    (h.AUTHENTICATING, h.CHALLENGE_SENT): (h.CHALLENGED, h.PROCEED),
    (h.AUTHENTICATING, h.WELCOMED): (h.ESTABLISHED, h.PROCEED),
    (h.AUTHENTICATING, h.REFUSED): (h.CLOSED, h.PROCEED),
    (h.ESTABLISHED, h.ROUTER_GOODBYE): (h.CLOSING, h.PROCEED),
    **{(state, h.TIMEOUT): (h.CLOSED, h.PROCEED)
       for state in (h.AWAIT_HELLO, h.AUTHENTICATING, h.CHALLENGED, h.ENDED, h.CLOSING)},
    **{(state, h.LOST): (h.CLOSED, h.PROCEED) for state in h.STATES if state != h.CLOSED},
}


@pytest.mark.parametrize("state,event", list(itertools.product(h.STATES, h.CLIENT_EVENTS)))
def test_every_client_event_in_every_state(state, event):
    """Each client message in each state leads exactly where the protocol says; the rest is a violation."""
    assert h.transition(state, event) == CLIENT_EXPECTED.get((state, event), (h.CLOSED, h.VIOLATION))


@pytest.mark.parametrize("state,event", list(itertools.product(h.STATES, h.ROUTER_EVENTS)))
def test_every_router_event_in_every_state(state, event):
    """Router events move the state only where they belong; a late one (an authenticator answering a closed
    session, a timer firing after the welcome) is ignored and leaves the state as it was."""
    assert h.transition(state, event) == ROUTER_EXPECTED.get((state, event), (state, h.IGNORE))


def test_the_table_holds_nothing_the_tests_do_not_name():
    """Every entry of the table is pinned by one of the expectations above (no silent extra transition)."""
    named = set(CLIENT_EXPECTED) | set(ROUTER_EXPECTED)
    assert set(h.TRANSITIONS) <= named


@pytest.mark.parametrize("cls,event", [
    (wamp.Hello, h.HELLO), (wamp.Authenticate, h.AUTHENTICATE), (wamp.Goodbye, h.GOODBYE), (wamp.Abort, h.ABORT),
    (wamp.Publish, h.REQUEST), (wamp.Subscribe, h.REQUEST), (wamp.Unsubscribe, h.REQUEST), (wamp.Call, h.REQUEST),
    (wamp.Cancel, h.REQUEST), (wamp.Register, h.REQUEST), (wamp.Unregister, h.REQUEST), (wamp.Yield, h.REQUEST),
    (wamp.Error, h.REQUEST),
])
def test_every_client_message_kind_is_an_event(cls, event):
    """Every message a client may send maps to one event."""
    assert h.event_of(cls) == event


def test_a_whole_life():
    """HELLO, CHALLENGE, AUTHENTICATE, WELCOME, requests, GOODBYE, a new HELLO, then the transport goes."""
    life = h.Lifecycle()
    steps = [(h.HELLO, h.OPEN), (h.CHALLENGE_SENT, h.PROCEED), (h.AUTHENTICATE, h.ANSWER_CHALLENGE),
             (h.WELCOMED, h.PROCEED), (h.REQUEST, h.ROUTE), (h.GOODBYE, h.REPLY_GOODBYE), (h.REQUEST, h.DROP),
             (h.HELLO, h.OPEN), (h.LOST, h.PROCEED)]
    for event, action in steps:
        assert life.on(event) == action, (life.state, event)
    assert life.closed
