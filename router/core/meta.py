"""The WAMP meta API of one realm (spec: Session, Subscription and Registration Meta API), answered by the router.

Procedures: the realm hands a CALL to one of these procedures here instead of to the dealer, once the session's
authorizer allowed "call" on that URI like on any other (the static rules deny by default, so only roles the config
names may use them); a client can never register them, `wamp.` is reserved. Events: sessions joining and leaving
(told by the realm), subscriptions and registrations created, joined, left and deleted (told by the broker's and the
dealer's `on_change`) are published through `Broker.deliver`, the path of every router-originated event, to the
sessions the authorizer allowed to subscribe to the meta topics. Nothing here runs per PUBLISH, nor per CALL to an
application procedure.

Choices
-------
* The meta API describes application subscriptions only. A subscription whose topic is under `wamp.` (someone
  watching the meta topics) fires no meta event and is invisible to the subscription procedures (not listed, not
  matched, `wamp.error.no_such_subscription`): watchers do not see each other, and no meta event is ever about a
  meta subscription. Registrations under `wamp.` cannot exist.
* A session that leaves has its subscriptions and registrations reported (on_unsubscribe / on_delete, on_unregister
  / on_delete) before `wamp.session.on_leave`: when on_leave arrives, the session holds nothing.
* `wamp.session.kill*` answer with Kick effects ahead of the caller's RESULT; the I/O layer sends GOODBYE and the
  session leaves the realm, so when the caller has its answer the session is gone. The caller is never killed:
  `kill` of its own id is `wamp.error.no_such_session` (the spec's rule), the other kills skip it. The GOODBYE reason
  defaults to `wamp.close.normal`.
* `created` is the `now` the realm was given with the SUBSCRIBE / REGISTER, in ISO 8601 UTC with milliseconds.
* Arguments are checked strictly (clients are hostile): a wrong type, an id out of range, too many or too few
  positional arguments, an unknown keyword argument or a transparent payload is `wamp.error.invalid_argument`; a
  string that is not a valid URI (a topic, a procedure, a GOODBYE reason) is `wamp.error.invalid_uri`.
* `wamp.subscription.get_events(subscription, limit=10)` answers only a session that holds the subscription (anyone
  else: `wamp.error.no_such_subscription`), with the kept events its (uri, match) covers that the original publish
  options let reach the caller, newest first as in Crossbar: dicts of publication, topic, args, kwargs, and the
  publisher's session / authid / authrole only when the publication disclosed them. It needs no "call" permission
  (router/tx/requests.py): holding the subscription is the permission, as for the events themselves.
* Session details are the identity (session, authid, authrole, authmethod, authprovider, authextra): the core knows
  no transport.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any, NamedTuple, Protocol

from autobahn.wamp import message as wamp

from wampgate.core import errors
from wampgate.core.broker import Broker, Subscription
from wampgate.core.calls import Registration, router_error
from wampgate.core.dealer import Dealer
from wampgate.core.effects import Effect, Kick, Send, reply
from wampgate.core.passthru import is_opaque
from wampgate.core.peer import Peer
from wampgate.uri import EXACT, MATCH_POLICIES, PREFIX, WILDCARD, UriPolicy, is_reserved

NO_SUCH_SESSION = errors.NO_SUCH_SESSION
SESSION_ON_JOIN = "wamp.session.on_join"
SESSION_ON_LEAVE = "wamp.session.on_leave"
# broker.CREATE/SUBSCRIBE/UNSUBSCRIBE/DELETE and calls.CREATE/REGISTER/UNREGISTER/DELETE name the events' suffixes.
SUBSCRIPTION_EVENTS = ("create", "subscribe", "unsubscribe", "delete")
REGISTRATION_EVENTS = ("create", "register", "unregister", "delete")

MAX_ID = 2**53
GET_EVENTS = "wamp.subscription.get_events"
DEFAULT_EVENTS_LIMIT = 10  # Crossbar's default for get_events
MAX_EVENTS_LIMIT = 10_000  # the largest `limit` a history rule may have
MAX_GOODBYE_MESSAGE = 1000  # characters of the text a kill may put in GOODBYE

_NO_KEYWORDS: frozenset[str] = frozenset()
_KILL_KEYWORDS = frozenset({"reason", "message"})


class Refusal(Exception):
    """A meta call refused for the caller's own fault: an ERROR with a WAMP URI and a text naming what was expected."""

    def __init__(self, uri: str, text: str):
        super().__init__(text)
        self.uri = uri
        self.text = text


class Answer(NamedTuple):
    """A meta procedure's RESULT arguments, and the effects to apply before the RESULT is sent."""

    args: list
    effects: tuple[Effect, ...] = ()


class _Procedure(NamedTuple):
    handler: Callable[[Peer, Sequence, Mapping], Answer]
    min_args: int
    max_args: int
    keywords: frozenset[str]


class RealmView(Protocol):
    """What the meta API reads of its realm (wampgate.core.realm.Realm builds it and passes itself): declared here, so
    the realm depends on the meta API and not the other way round."""

    all_sessions: Mapping[int, Peer]  # joined sessions (on every node of a cluster), in the order they joined
    broker: Broker
    dealer: Dealer
    policy: UriPolicy


class MetaApi:
    """One realm's meta procedures and meta events; reads the realm's sessions, broker and dealer when asked."""

    def __init__(self, realm: RealmView, new_id: Callable[[], int]):
        self._realm = realm
        self._new_id = new_id
        self._subscription_topics = {change: f"wamp.subscription.on_{change}" for change in SUBSCRIPTION_EVENTS}
        self._registration_topics = {change: f"wamp.registration.on_{change}" for change in REGISTRATION_EVENTS}
        self.procedures: dict[str, _Procedure] = {
            "wamp.session.count": _Procedure(self._session_count, 0, 1, _NO_KEYWORDS),
            "wamp.session.list": _Procedure(self._session_list, 0, 1, _NO_KEYWORDS),
            "wamp.session.get": _Procedure(self._session_get, 1, 1, _NO_KEYWORDS),
            "wamp.session.kill": _Procedure(self._kill, 1, 1, _KILL_KEYWORDS),
            "wamp.session.kill_by_authid": _Procedure(self._kill_by_authid, 1, 1, _KILL_KEYWORDS),
            "wamp.session.kill_by_authrole": _Procedure(self._kill_by_authrole, 1, 1, _KILL_KEYWORDS),
            "wamp.session.kill_all": _Procedure(self._kill_all, 0, 0, _KILL_KEYWORDS),
            "wamp.subscription.list": _Procedure(self._subscription_list, 0, 0, _NO_KEYWORDS),
            "wamp.subscription.lookup": _Procedure(self._subscription_lookup, 1, 2, _NO_KEYWORDS),
            "wamp.subscription.match": _Procedure(self._subscription_match, 1, 1, _NO_KEYWORDS),
            "wamp.subscription.get": _Procedure(self._subscription_get, 1, 1, _NO_KEYWORDS),
            "wamp.subscription.list_subscribers": _Procedure(self._list_subscribers, 1, 1, _NO_KEYWORDS),
            "wamp.subscription.count_subscribers": _Procedure(self._count_subscribers, 1, 1, _NO_KEYWORDS),
            GET_EVENTS: _Procedure(self._get_events, 1, 2, _NO_KEYWORDS),
            "wamp.registration.list": _Procedure(self._registration_list, 0, 0, _NO_KEYWORDS),
            "wamp.registration.lookup": _Procedure(self._registration_lookup, 1, 2, _NO_KEYWORDS),
            "wamp.registration.match": _Procedure(self._registration_match, 1, 1, _NO_KEYWORDS),
            "wamp.registration.get": _Procedure(self._registration_get, 1, 1, _NO_KEYWORDS),
            "wamp.registration.list_callees": _Procedure(self._list_callees, 1, 1, _NO_KEYWORDS),
            "wamp.registration.count_callees": _Procedure(self._count_callees, 1, 1, _NO_KEYWORDS),
        }

    # -- procedures ----------------------------------------------------------------------------------------------

    def call(self, caller: Peer, msg: wamp.Call) -> list[Effect]:
        """Answer one authorized CALL to a meta procedure: its effects (kills) first, then RESULT or ERROR."""
        procedure = self.procedures[msg.procedure]
        args, kwargs = msg.args or [], msg.kwargs or {}
        try:
            if is_opaque(msg):
                raise Refusal(errors.INVALID_ARGUMENT, "meta procedures take plain arguments, not a payload")
            _check_shape(args, kwargs, procedure)
            answer = procedure.handler(caller, args, kwargs)
        except Refusal as refusal:
            return reply(caller, router_error(wamp.Call, msg.request, refusal.uri, refusal.text))
        return [*answer.effects, Send((caller,), wamp.Result(msg.request, args=answer.args or None))]

    def _session_count(self, caller: Peer, args: Sequence, kwargs: Mapping) -> Answer:
        return Answer([len(self._sessions(args))])

    def _session_list(self, caller: Peer, args: Sequence, kwargs: Mapping) -> Answer:
        return Answer([[peer.session_id for peer in self._sessions(args)]])

    def _session_get(self, caller: Peer, args: Sequence, kwargs: Mapping) -> Answer:
        return Answer([session_details(self._session(args[0]))])

    def _kill(self, caller: Peer, args: Sequence, kwargs: Mapping) -> Answer:
        target = self._session(args[0])
        if target.session_id == caller.session_id:
            raise Refusal(NO_SUCH_SESSION, "no other session has this id: a session cannot kill itself")
        return Answer([], self._kicks([target], kwargs))

    def _kill_by_authid(self, caller: Peer, args: Sequence, kwargs: Mapping) -> Answer:
        authid = _string(args[0], "authid")
        return self._kill_others(caller, kwargs, [p for p in self._realm.all_sessions.values() if p.authid == authid])

    def _kill_by_authrole(self, caller: Peer, args: Sequence, kwargs: Mapping) -> Answer:
        authrole = _string(args[0], "authrole")
        sessions = self._realm.all_sessions.values()
        return self._kill_others(caller, kwargs, [p for p in sessions if p.authrole == authrole])

    def _kill_all(self, caller: Peer, args: Sequence, kwargs: Mapping) -> Answer:
        return self._kill_others(caller, kwargs, list(self._realm.all_sessions.values()))

    def _subscription_list(self, caller: Peer, args: Sequence, kwargs: Mapping) -> Answer:
        return Answer([_by_match(self._realm.broker.subscriptions())])

    def _subscription_lookup(self, caller: Peer, args: Sequence, kwargs: Mapping) -> Answer:
        topic, match = self._lookup_arguments(args)
        return Answer([_visible_id(self._realm.broker.find(topic, match))])

    def _subscription_match(self, caller: Peer, args: Sequence, kwargs: Mapping) -> Answer:
        topic = self._uri(args[0], EXACT, "topic")
        found = [s.id for s in self._realm.broker.matching(topic) if not is_reserved(s.uri)]
        return Answer([found or None])

    def _subscription_get(self, caller: Peer, args: Sequence, kwargs: Mapping) -> Answer:
        return Answer([subscription_details(self._subscription(args[0]))])

    def _list_subscribers(self, caller: Peer, args: Sequence, kwargs: Mapping) -> Answer:
        return Answer([list(self._subscription(args[0]).subscribers)])

    def _count_subscribers(self, caller: Peer, args: Sequence, kwargs: Mapping) -> Answer:
        return Answer([len(self._subscription(args[0]).subscribers)])

    def _get_events(self, caller: Peer, args: Sequence, kwargs: Mapping) -> Answer:
        """The event history a subscription the caller holds covers, newest first. Another session's subscription
        is `no_such_subscription`, as if it did not exist: its id reveals nothing."""
        subscription = self._subscription(args[0])
        if caller.session_id not in subscription.subscribers:
            raise Refusal(errors.NO_SUCH_SUBSCRIPTION, "no subscription with this id held by this session")
        limit = args[1] if len(args) > 1 and args[1] is not None else DEFAULT_EVENTS_LIMIT
        if type(limit) is not int or not 1 <= limit <= MAX_EVENTS_LIMIT:
            raise Refusal(errors.INVALID_ARGUMENT, f"limit: expected an integer from 1 to {MAX_EVENTS_LIMIT}")
        return Answer([self._realm.broker.history_of(caller, subscription, limit)])

    def _registration_list(self, caller: Peer, args: Sequence, kwargs: Mapping) -> Answer:
        return Answer([_by_match(self._realm.dealer.registrations())])

    def _registration_lookup(self, caller: Peer, args: Sequence, kwargs: Mapping) -> Answer:
        procedure, match = self._lookup_arguments(args)
        return Answer([_visible_id(self._realm.dealer.find(procedure, match))])

    def _registration_match(self, caller: Peer, args: Sequence, kwargs: Mapping) -> Answer:
        """The registration a CALL would go to: the dealer's own routing, so a `wamp.` URI matches nothing."""
        procedure = self._uri(args[0], EXACT, "procedure")
        return Answer([_visible_id(self._realm.dealer.lookup(procedure))])

    def _registration_get(self, caller: Peer, args: Sequence, kwargs: Mapping) -> Answer:
        return Answer([registration_details(self._registration(args[0]))])

    def _list_callees(self, caller: Peer, args: Sequence, kwargs: Mapping) -> Answer:
        return Answer([[callee.session_id for callee in self._registration(args[0]).callees]])

    def _count_callees(self, caller: Peer, args: Sequence, kwargs: Mapping) -> Answer:
        return Answer([len(self._registration(args[0]).callees)])

    # -- what the procedures look up ------------------------------------------------------------------------------

    def _sessions(self, args: Sequence) -> list[Peer]:
        """The realm's sessions, in the order they joined; only those with an authrole in the filter, if given."""
        sessions = self._realm.all_sessions.values()
        if not args or args[0] is None:
            return list(sessions)
        authroles = frozenset(_strings(args[0], "filter_authroles"))
        return [peer for peer in sessions if peer.authrole in authroles]

    def _session(self, value: Any) -> Peer:
        peer = self._realm.all_sessions.get(_id(value, "session"))
        if peer is None:
            raise Refusal(NO_SUCH_SESSION, "no session with this id")
        return peer

    def _subscription(self, value: Any) -> Subscription:
        found = self._realm.broker.subscription(_id(value, "subscription"))
        if found is None or is_reserved(found.uri):
            raise Refusal(errors.NO_SUCH_SUBSCRIPTION, "no subscription with this id")
        return found

    def _registration(self, value: Any) -> Registration:
        found = self._realm.dealer.registration(_id(value, "registration"))
        if found is None or is_reserved(found.uri):
            raise Refusal(errors.NO_SUCH_REGISTRATION, "no registration with this id")
        return found

    def _lookup_arguments(self, args: Sequence) -> tuple[str, str]:
        """(uri, match) of a lookup: the URI, then optional options as for SUBSCRIBE / REGISTER (only `match` is
        read; other keys, such as `invoke`, do not change which subscription or registration is found)."""
        options = args[1] if len(args) > 1 else None
        if options is not None and type(options) is not dict:
            raise Refusal(errors.INVALID_ARGUMENT, "options: expected a dictionary")
        match = EXACT if options is None else options.get("match", EXACT)
        if type(match) is not str or match not in MATCH_POLICIES:
            raise Refusal(errors.INVALID_ARGUMENT, f"options.match: expected one of {', '.join(MATCH_POLICIES)}")
        return self._uri(args[0], match, "uri"), match

    def _uri(self, value: Any, match: str, name: str) -> str:
        problem = self._realm.policy.problem(_string(value, name), match)
        if problem is not None:
            raise Refusal(errors.INVALID_URI, f"{name}: {problem}")
        return value

    def _kill_others(self, caller: Peer, kwargs: Mapping, targets: list[Peer]) -> Answer:
        """Kill every target but the caller; the RESULT is how many were killed."""
        others = [peer for peer in targets if peer.session_id != caller.session_id]
        return Answer([len(others)], self._kicks(others, kwargs))

    def _kicks(self, targets: Iterable[Peer], kwargs: Mapping) -> tuple[Kick, ...]:
        """One Kick per target, with the GOODBYE reason and message the caller gave (checked before anything)."""
        reason = kwargs.get("reason", errors.CLOSE_NORMAL)
        reason = self._uri(reason, EXACT, "reason")
        message = kwargs.get("message")
        if message is not None and (type(message) is not str or len(message) > MAX_GOODBYE_MESSAGE):
            raise Refusal(errors.INVALID_ARGUMENT, f"message: expected a string of at most {MAX_GOODBYE_MESSAGE}")
        return tuple(Kick(target, reason, message) for target in targets)

    # -- events ----------------------------------------------------------------------------------------------------

    def on_join(self, peer: Peer) -> list[Effect]:
        return self.publish(SESSION_ON_JOIN, [session_details(peer)])

    def on_leave(self, peer: Peer) -> list[Effect]:
        return self.publish(SESSION_ON_LEAVE, [peer.session_id, peer.authid, peer.authrole])

    def subscription_changed(self, change: str, session_id: int, subscription: Subscription) -> list[Effect]:
        """The broker's `on_change`: on_create carries the details, the others the subscription id."""
        if is_reserved(subscription.uri):
            return []
        detail = subscription_details(subscription) if change == "create" else subscription.id
        return self.publish(self._subscription_topics[change], [session_id, detail])

    def registration_changed(self, change: str, session_id: int, registration: Registration) -> list[Effect]:
        """The dealer's `on_change`: on_create carries the details, the others the registration id."""
        if is_reserved(registration.uri):
            return []
        detail = registration_details(registration) if change == "create" else registration.id
        return self.publish(self._registration_topics[change], [session_id, detail])

    def publish(self, topic: str, args: list) -> list[Effect]:
        """One router-originated event to the subscribers of `topic`, through the broker's delivery path."""
        return self._realm.broker.deliver(topic, _MetaEvent(topic, args, self._new_id))


class _MetaEvent:
    """Builds the EVENT of one meta event for each subscription that receives it. The publication id is drawn only
    when somebody receives it, so a realm nobody watches spends no ids."""

    __slots__ = ("_topic", "_args", "_new_id", "_publication")

    def __init__(self, topic: str, args: list, new_id: Callable[[], int]):
        self._topic = topic
        self._args = args
        self._new_id = new_id
        self._publication: int | None = None

    def __call__(self, subscription: Subscription) -> wamp.Event:
        if self._publication is None:
            self._publication = self._new_id()
        topic = self._topic if subscription.match != EXACT else None
        return wamp.Event(subscription.id, self._publication, args=self._args, topic=topic)


# -- details ----------------------------------------------------------------------------------------------------------


def session_details(peer: Peer) -> dict:
    """What `wamp.session.get` answers and `wamp.session.on_join` carries."""
    return {
        "session": peer.session_id,
        "authid": peer.authid,
        "authrole": peer.authrole,
        "authmethod": peer.authmethod,
        "authprovider": peer.authprovider,
        "authextra": dict(peer.authextra),
    }


def subscription_details(subscription: Subscription) -> dict:
    details = {"id": subscription.id, "uri": subscription.uri, "match": subscription.match}
    if subscription.created is not None:
        details["created"] = iso_8601(subscription.created)
    return details


def registration_details(registration: Registration) -> dict:
    details = {"id": registration.id, "uri": registration.uri, "match": registration.match}
    if registration.created is not None:
        details["created"] = iso_8601(registration.created)
    details["invoke"] = registration.invoke
    return details


def iso_8601(seconds: float) -> str:
    """A POSIX time as the spec's `created` string, in UTC with milliseconds: 2024-05-01T12:00:00.250Z."""
    moment = datetime.fromtimestamp(seconds, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _by_match(items: Iterable[Subscription | Registration]) -> dict[str, list[int]]:
    """`wamp.subscription.list` / `wamp.registration.list`: the ids under each match policy."""
    listing: dict[str, list[int]] = {EXACT: [], PREFIX: [], WILDCARD: []}
    for item in items:
        if not is_reserved(item.uri):
            listing[item.match].append(item.id)
    return listing


def _visible_id(item: Subscription | Registration | None) -> int | None:
    return None if item is None or is_reserved(item.uri) else item.id


# -- arguments --------------------------------------------------------------------------------------------------------


def _check_shape(args: Sequence, kwargs: Mapping, procedure: _Procedure) -> None:
    if not procedure.min_args <= len(args) <= procedure.max_args:
        low, high = procedure.min_args, procedure.max_args
        expected = str(low) if low == high else f"{low} to {high}"
        raise Refusal(errors.INVALID_ARGUMENT, f"expected {expected} positional arguments, found {len(args)}")
    if any(key not in procedure.keywords for key in kwargs):
        allowed = ", ".join(sorted(procedure.keywords)) or "none"
        raise Refusal(errors.INVALID_ARGUMENT, f"unexpected keyword argument; allowed: {allowed}")


def _id(value: Any, name: str) -> int:
    """A WAMP id: an integer (not a bool, not a float) from 1 to 2**53."""
    if type(value) is not int or not 1 <= value <= MAX_ID:
        raise Refusal(errors.INVALID_ARGUMENT, f"{name}: expected an id, an integer from 1 to 2**53")
    return value


def _string(value: Any, name: str) -> str:
    if type(value) is not str:
        raise Refusal(errors.INVALID_ARGUMENT, f"{name}: expected a string")
    return value


def _strings(value: Any, name: str) -> list[str]:
    if type(value) not in (list, tuple) or any(type(item) is not str for item in value):
        raise Refusal(errors.INVALID_ARGUMENT, f"{name}: expected a list of strings")
    return list(value)
