"""How the router says no to a request: one place for the rule that an unacknowledged PUBLISH gets no answer."""

from __future__ import annotations

from autobahn.wamp import message as wamp


def wants_answer(msg: wamp.Message) -> bool:
    """Every request is answered, except a PUBLISH that did not ask for acknowledgement (the spec's rule)."""
    return type(msg) is not wamp.Publish or bool(msg.acknowledge)


def refusal(msg: wamp.Message, error: str, text: str, **kwargs) -> wamp.Error | None:
    """The ERROR that refuses `msg` (with `text` as its only argument and optional kwargs), or None when the
    request must not be answered."""
    if not wants_answer(msg):
        return None
    return wamp.Error(msg.MESSAGE_TYPE, msg.request, error, args=[text], kwargs=kwargs or None)
