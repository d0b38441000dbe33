"""Session testaments (the WAMP `testament_meta_api`): events a session leaves behind, which the router publishes
for it when the session ends. A presence system's "last will": published even when the client cannot say anything.

`wamp.session.add_testament(topic, args, kwargs, publish_options, scope)` stores one (the last two may be given as
keyword arguments, as the spec has them, or positionally, as Crossbar accepts them); `wamp.session.flush_testaments
(scope)` forgets those of a scope and answers how many it forgot. Both act only on the caller's own session.

Choices
-------
* Scopes. This router has no session resumption, so a session is detached and destroyed at once, whenever it
  leaves: both scopes are published on every leave, its own GOODBYE included, as Crossbar does and as the spec
  implies (it asks a client to flush what it does not want published before a clean leave).
* Order: `detached` ones first (the spec's rule for a router without resumption), then `destroyed` ones, each in the
  order they were added; then they are forgotten.
* Publication: as a PUBLISH of the departed session through `Broker.publish`, after the session's own
  subscriptions are gone, so subscribers receive it as any other event and the publish options' exclusion and
  eligibility apply. `acknowledge` and `exclude_me` are accepted and ignored (nobody is left to acknowledge or
  exclude). The publisher is disclosed when the options ask (`disclose_me`) or when the session's permission to
  publish on that topic says `disclose`, as decided when the testament was added.
* Authorization: the core cannot ask the authorizer, so the I/O layer authorizes "publish" on the topic before the
  CALL reaches `call` (router/tx/requests.py), through the same cached path as a PUBLISH; `check` runs first, so
  the authorizer only ever sees a valid topic. The CALLs need no "call" permission of their own.
* Bounds: at most `max_testaments_per_session` per session (both scopes together; 0 turns the API off) and at
  most `max_testament_bytes` each, estimated like an authextra (topic, args, kwargs and options together).
* Arguments are checked strictly, as the meta API's: a wrong type, an unknown keyword, an unknown publish option, a
  scope other than the two, or a transparent payload is `wamp.error.invalid_argument`; a topic that is not a valid
  URI, or lies under the reserved `wamp.`, is `wamp.error.invalid_uri`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from autobahn.wamp import message as wamp

from wampgate.core import errors
from wampgate.core.authbounds import size_over
from wampgate.core.broker import Broker
from wampgate.core.passthru import is_opaque
from wampgate.core.calls import router_error
from wampgate.core.effects import Effect, reply
from wampgate.core.peer import Peer
from wampgate.uri import EXACT, UriPolicy, is_reserved

ADD_TESTAMENT = "wamp.session.add_testament"
FLUSH_TESTAMENTS = "wamp.session.flush_testaments"
PROCEDURES = frozenset({ADD_TESTAMENT, FLUSH_TESTAMENTS})

DETACHED = "detached"
DESTROYED = "destroyed"
SCOPES = (DETACHED, DESTROYED)  # the order they are published in

MAX_ID = 2**53
_ID_LISTS = ("exclude", "eligible")
_STRING_LISTS = ("exclude_authid", "exclude_authrole", "eligible_authid", "eligible_authrole")
_IGNORED = ("acknowledge", "exclude_me")  # accepted, as Crossbar does, and meaningless for a testament
_FLAGS = ("disclose_me", *_IGNORED)
PUBLISH_OPTIONS = frozenset({*_ID_LISTS, *_STRING_LISTS, *_FLAGS})


class _Refused(Exception):
    def __init__(self, uri: str, text: str):
        super().__init__(text)
        self.uri = uri
        self.text = text


class Testament(NamedTuple):
    """One stored testament: the PUBLISH it becomes, and whether its publisher is disclosed."""

    scope: str
    publish: wamp.Publish
    disclose: bool


class _Add(NamedTuple):
    topic: str
    args: list | None
    kwargs: dict | None
    options: dict
    scope: str


class Testaments:
    """The testaments of one realm's sessions; published through the realm's broker when a session leaves."""

    def __init__(self, policy: UriPolicy, broker: Broker, *, max_testaments_per_session: int,
                 max_testament_bytes: int):
        self._policy = policy
        self._broker = broker
        self._max_count = max_testaments_per_session
        self._max_bytes = max_testament_bytes
        self._held: dict[int, list[Testament]] = {}  # session -> its testaments, in the order added

    def set_limits(self, *, max_testaments_per_session: int, max_testament_bytes: int) -> None:
        """A reload's new bounds; what sessions already hold is kept."""
        self._max_count = max_testaments_per_session
        self._max_bytes = max_testament_bytes

    def held(self, session_id: int) -> list[Testament]:
        """The testaments of a session, in the order added (tests, introspection)."""
        return list(self._held.get(session_id, ()))

    def sessions_holding(self) -> int:
        return len(self._held)

    # -- the procedures --------------------------------------------------------------------------------------------

    def check(self, peer: Peer, msg: wamp.Call) -> list[Effect] | None:
        """Validate a testament CALL before it is authorized: the ERROR when it is refused, else None."""
        try:
            self._parse(peer, msg)
        except _Refused as refused:
            return reply(peer, router_error(wamp.Call, msg.request, refused.uri, refused.text))
        return None

    def call(self, peer: Peer, msg: wamp.Call, *, disclose: bool = False) -> list[Effect]:
        """Answer an authorized testament CALL. `disclose`: the publish permission on the topic says to disclose."""
        try:
            parsed = self._parse(peer, msg)
        except _Refused as refused:
            return reply(peer, router_error(wamp.Call, msg.request, refused.uri, refused.text))
        if msg.procedure == FLUSH_TESTAMENTS:
            return reply(peer, wamp.Result(msg.request, args=[self._flush(peer.session_id, parsed)]))
        add: _Add = parsed
        options = {key: value for key, value in add.options.items() if key not in _FLAGS}
        publish = wamp.Publish(0, add.topic, args=add.args, kwargs=add.kwargs, **options)
        testament = Testament(add.scope, publish, disclose or add.options.get("disclose_me") is True)
        self._held.setdefault(peer.session_id, []).append(testament)
        return reply(peer, wamp.Result(msg.request))

    def _flush(self, session_id: int, scope: str) -> int:
        held = self._held.get(session_id, [])
        kept = [testament for testament in held if testament.scope != scope]
        if kept:
            self._held[session_id] = kept
        else:
            self._held.pop(session_id, None)
        return len(held) - len(kept)

    # -- the session's end -----------------------------------------------------------------------------------------


    def publish(self, peer: Peer) -> list[Effect]:
        """The session left: publish its testaments (`detached`, then `destroyed`, each in the order added) and
        forget them. Call after the broker forgot the session's subscriptions."""
        held = self._held.pop(peer.session_id, ())
        effects: list[Effect] = []
        for scope in SCOPES:
            for testament in held:
                if testament.scope == scope:
                    effects += self._broker.publish(peer, testament.publish, disclose=testament.disclose)
        return effects

    # -- arguments -------------------------------------------------------------------------------------------------

    def _parse(self, peer: Peer, msg: wamp.Call) -> _Add | str:
        """The checked arguments: an `_Add` for add_testament, the scope for flush_testaments."""
        args, kwargs = msg.args or [], msg.kwargs or {}
        if is_opaque(msg):
            raise _Refused(errors.INVALID_ARGUMENT, "testament procedures take plain arguments, not a payload")
        if msg.procedure == FLUSH_TESTAMENTS:
            return _scope(_one_of(args, kwargs, 0, "scope", DESTROYED, max_args=1))
        return self._parse_add(peer, args, kwargs)

    def _parse_add(self, peer: Peer, args: Sequence, kwargs: Mapping) -> _Add:
        if not 1 <= len(args) <= 5:
            raise _Refused(errors.INVALID_ARGUMENT, f"expected 1 to 5 positional arguments, found {len(args)}")
        add = _Add(
            topic=self._topic(args[0]),
            args=_list_or_none(args[1] if len(args) > 1 else None),
            kwargs=_dict_or_none(args[2] if len(args) > 2 else None),
            options=_publish_options(_one_of(args, kwargs, 3, "publish_options", None, max_args=5)),
            scope=_scope(_one_of(args, kwargs, 4, "scope", DESTROYED, max_args=5)),
        )
        if self._max_count == 0:
            raise _Refused(errors.TOO_MANY_TESTAMENTS, "testaments are turned off in this router")
        if len(self._held.get(peer.session_id, ())) >= self._max_count:
            raise _Refused(errors.TOO_MANY_TESTAMENTS, f"at most {self._max_count} testaments per session")
        if size_over([add.topic, add.args, add.kwargs, add.options], self._max_bytes):
            raise _Refused(errors.TESTAMENT_TOO_LARGE, f"a testament may take at most {self._max_bytes} bytes")
        return add

    def _topic(self, value: Any) -> str:
        if type(value) is not str:
            raise _Refused(errors.INVALID_ARGUMENT, "topic: expected a string")
        problem = self._policy.problem(value, EXACT)
        if problem is None and is_reserved(value):
            problem = "the 'wamp.' prefix is reserved for the router"
        if problem is not None:
            raise _Refused(errors.INVALID_URI, f"topic: {problem}")
        return value


def _one_of(args: Sequence, kwargs: Mapping, position: int, name: str, default: Any, *, max_args: int) -> Any:
    """An argument given positionally or as a keyword (not both); unknown keywords are refused."""
    allowed = ("scope",) if max_args == 1 else ("publish_options", "scope")
    unknown = [key for key in kwargs if key not in allowed]
    if unknown or len(args) > max_args:
        raise _Refused(errors.INVALID_ARGUMENT, f"expected at most {max_args} positional arguments and the keyword "
                                                f"arguments {', '.join(allowed)}")
    if len(args) > position:
        if name in kwargs:
            raise _Refused(errors.INVALID_ARGUMENT, f"{name}: given both positionally and as a keyword")
        return args[position]
    return kwargs.get(name, default)


def _scope(value: Any) -> str:
    if type(value) is not str or value not in SCOPES:
        raise _Refused(errors.INVALID_ARGUMENT, f"scope: expected one of {', '.join(SCOPES)}")
    return value


def _list_or_none(value: Any) -> list | None:
    if value is not None and type(value) is not list:
        raise _Refused(errors.INVALID_ARGUMENT, "args: expected a list")
    return value or None


def _dict_or_none(value: Any) -> dict | None:
    if value is not None and (type(value) is not dict or any(type(key) is not str for key in value)):
        raise _Refused(errors.INVALID_ARGUMENT, "kwargs: expected a dictionary with string keys")
    return value or None


def _publish_options(value: Any) -> dict:
    """The publish options of a testament, as PUBLISH would take them; anything else is refused."""
    if value is None:
        return {}
    if type(value) is not dict:
        raise _Refused(errors.INVALID_ARGUMENT, "publish_options: expected a dictionary")
    for key, item in value.items():
        if key not in PUBLISH_OPTIONS:
            allowed = ", ".join(sorted(PUBLISH_OPTIONS))
            raise _Refused(errors.INVALID_ARGUMENT, f"publish_options: unknown option; allowed: {allowed}")
        if key in _FLAGS:
            ok = type(item) is bool
        elif key in _ID_LISTS:
            ok = type(item) is list and all(type(i) is int and 1 <= i <= MAX_ID for i in item)
        else:
            ok = type(item) is list and all(type(i) is str for i in item)
        if not ok:
            kind = "true or false" if key in _FLAGS else "a list of ids" if key in _ID_LISTS else "a list of strings"
            raise _Refused(errors.INVALID_ARGUMENT, f"publish_options.{key}: expected {kind}")
    return dict(value)
