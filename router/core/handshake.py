"""A WAMP session's life as a transition table: which message or router event is allowed in which state, the state
it leads to, and the action the I/O layer carries out. Sans-I/O, in the manner of h11's `_state.py`.

The I/O layer (router/tx/session.py) classifies each inbound message into an event, asks `Lifecycle.on(event)` for
the action, and performs it; the table is the single place that says what a client may send when. Anything not in
the table is a protocol violation, except a late message of a session that said GOODBYE (dropped: the client may not
have seen our reply yet) and anything while the router waits for the client's GOODBYE reply (dropped too).
"""

from __future__ import annotations

from autobahn.wamp import message as wamp

# States
AWAIT_HELLO = "await-hello"
AUTHENTICATING = "authenticating"  # the authenticator is deciding
CHALLENGED = "challenged"  # CHALLENGE sent, awaiting AUTHENTICATE
ESTABLISHED = "established"
CLOSING = "closing"  # the router sent GOODBYE and awaits the reply
ENDED = "ended"  # GOODBYE exchanged at the client's request: a new HELLO may follow
CLOSED = "closed"
STATES = (AWAIT_HELLO, AUTHENTICATING, CHALLENGED, ESTABLISHED, CLOSING, ENDED, CLOSED)

# Events: what the client sent ...
HELLO = "hello"
AUTHENTICATE = "authenticate"
GOODBYE = "goodbye"
ABORT = "abort"
REQUEST = "request"  # any other message a client may send (PUBLISH, CALL, YIELD, ...)
# ... and what happened in the router
CHALLENGE_SENT = "challenge-sent"
WELCOMED = "welcomed"
REFUSED = "refused"  # authentication failed, or the session was not admitted
ROUTER_GOODBYE = "router-goodbye"
TIMEOUT = "timeout"  # the opening handshake or the GOODBYE reply took too long
LOST = "lost"  # the transport is gone
CLIENT_EVENTS = (HELLO, AUTHENTICATE, GOODBYE, ABORT, REQUEST)
ROUTER_EVENTS = (CHALLENGE_SENT, WELCOMED, REFUSED, ROUTER_GOODBYE, TIMEOUT, LOST)
EVENTS = CLIENT_EVENTS + ROUTER_EVENTS

# Actions the I/O layer carries out
OPEN = "open"  # start authentication for this HELLO
ANSWER_CHALLENGE = "answer-challenge"  # hand AUTHENTICATE to the authenticator
ROUTE = "route"  # flow control, authorization, then the realm
REPLY_GOODBYE = "reply-goodbye"  # answer GOODBYE, leave the realm, wait for a new HELLO
CLOSE = "close"  # close the transport (nothing to say)
VIOLATION = "violation"  # ABORT wamp.error.protocol_violation and close
DROP = "drop"  # ignore the message
PROCEED = "proceed"  # a router event that is valid here: the I/O layer does what it announced
IGNORE = "ignore"  # a router event that came too late (e.g. an authenticator answering a closed session)

_EVERY_STATE_BUT_CLOSED = tuple(state for state in STATES if state != CLOSED)
_OPENING = (AWAIT_HELLO, AUTHENTICATING, CHALLENGED, ENDED)

TRANSITIONS: dict[tuple[str, str], tuple[str, str]] = {
    (AWAIT_HELLO, HELLO): (AUTHENTICATING, OPEN),
    (ENDED, HELLO): (AUTHENTICATING, OPEN),
    (CHALLENGED, AUTHENTICATE): (AUTHENTICATING, ANSWER_CHALLENGE),
    (ESTABLISHED, REQUEST): (ESTABLISHED, ROUTE),
    (ESTABLISHED, GOODBYE): (ENDED, REPLY_GOODBYE),
    (CLOSING, GOODBYE): (CLOSED, CLOSE),
    (CLOSING, HELLO): (CLOSING, DROP),
    (CLOSING, AUTHENTICATE): (CLOSING, DROP),
    (CLOSING, REQUEST): (CLOSING, DROP),
    (ENDED, AUTHENTICATE): (ENDED, DROP),
    (ENDED, GOODBYE): (ENDED, DROP),
    (ENDED, REQUEST): (ENDED, DROP),
    (AUTHENTICATING, CHALLENGE_SENT): (CHALLENGED, PROCEED),
    (AUTHENTICATING, WELCOMED): (ESTABLISHED, PROCEED),
    (AUTHENTICATING, REFUSED): (CLOSED, PROCEED),
    (ESTABLISHED, ROUTER_GOODBYE): (CLOSING, PROCEED),
    **{(state, ABORT): (CLOSED, CLOSE) for state in _EVERY_STATE_BUT_CLOSED},
    **{(state, TIMEOUT): (CLOSED, PROCEED) for state in (*_OPENING, CLOSING)},
    **{(state, LOST): (CLOSED, PROCEED) for state in _EVERY_STATE_BUT_CLOSED},
}

_MESSAGE_EVENTS = {wamp.Hello: HELLO, wamp.Authenticate: AUTHENTICATE, wamp.Goodbye: GOODBYE, wamp.Abort: ABORT}


def event_of(message_type: type) -> str:
    """The event a client message is (every message a client may send that is not part of the session's life
    is a REQUEST)."""
    return _MESSAGE_EVENTS.get(message_type, REQUEST)


def transition(state: str, event: str) -> tuple[str, str]:
    """(next state, action) for `event` in `state`. A client event not in the table is a protocol violation; a
    router event not in the table came too late and changes nothing."""
    found = TRANSITIONS.get((state, event))
    if found is not None:
        return found
    if event in ROUTER_EVENTS or state == CLOSED:
        return state, IGNORE
    return CLOSED, VIOLATION


class Lifecycle:
    """The state of one connection's session; `on(event)` moves it and says what to do."""

    __slots__ = ("state",)

    def __init__(self) -> None:
        self.state = AWAIT_HELLO

    def on(self, event: str) -> str:
        self.state, action = transition(self.state, event)
        return action

    @property
    def established(self) -> bool:
        return self.state == ESTABLISHED

    @property
    def closed(self) -> bool:
        return self.state == CLOSED
