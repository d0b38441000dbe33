"""After a reload, every live subscription and registration is authorized again with its realm's new authorizer chain;
the ones it no longer allows are revoked (UNSUBSCRIBED / UNREGISTERED with `wamp.authorization.revoked` to the
sessions that announced the revocation features; the others simply stop receiving).

Without this, a permission withdrawn by a reload would only stop new requests: what a session subscribed or registered
before would go on working until it left.

The walk asks the same chain a new request would ask (decisions cached as usual, so sessions of one role share them;
asynchronous authorizers are bounded by `[limits] authorization_timeout`, and a timeout or error is a deny). It
checks at most BATCH grants per reactor turn and keeps at most MAX_IN_FLIGHT asynchronous decisions pending, so a
large router keeps serving and a dynamic backend is not flooded (the router's own calls count against one session's
`max_pending_calls_per_session`). A walk whose realm was reloaded again meanwhile stops: the newer walk decides.
What was granted while an old chain's decision was already pending at the reload is decided by that old chain.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger

from wampgate.core.errors import AUTHORIZATION_REVOKED
from wampgate.core.peer import Peer
from wampgate.model import AuthorizationRequest, Decision, Identity, TransportInfo

BATCH = 1000  # grants checked per reactor turn
MAX_IN_FLIGHT = 64  # asynchronous decisions pending at once

SUBSCRIBE = "subscribe"
REGISTER = "register"

# For a session without a transport of its own (none holds grants today): re-authorized all the same, never skipped.
_NO_TRANSPORT = TransportInfo(listener="", kind="internal", peer="", is_secure=False, serializer="")


@dataclass(frozen=True, slots=True)
class Grant:
    """One live subscription or registration of one session, as it was when the walk reached the session."""

    realm: str
    peer: Peer
    transport: TransportInfo
    action: str  # SUBSCRIBE or REGISTER
    id: int
    uri: str
    match: str


@dataclass
class Summary:
    """What a walk did; `superseded` when a newer reload took over before it finished."""

    checked: int = 0
    revoked_subscriptions: int = 0
    revoked_registrations: int = 0
    superseded: bool = False


def reauthorize(context: Any) -> Reauthorization:
    """Start re-authorizing every live grant of every realm of the RouterContext; the returned walk's `done` fires
    with its Summary."""
    walk = Reauthorization(context.realms, clock=context.clock, counters=context.counters)
    walk.start()
    return walk


class Reauthorization:
    """One walk over the live grants of the given realms (RealmRuntime by name), against the authorizer chains they
    have when the walk starts."""

    log = Logger()

    def __init__(self, realms: Mapping[str, Any], *, clock: Any, counters: Any = None, batch: int = BATCH,
                 max_in_flight: int = MAX_IN_FLIGHT):
        self._realms = realms
        self._clock = clock
        self._counters = counters
        self._batch = batch
        self._max_in_flight = max_in_flight
        self._chains = {name: runtime.authorization for name, runtime in realms.items()}
        self._grants = self._live_grants()
        self._exhausted = False
        self._in_flight = 0
        self._step_scheduled = False
        self.summary = Summary()
        self.done: defer.Deferred = defer.Deferred()

    def start(self) -> None:
        """The first batch runs now (within the reload), the rest on later reactor turns."""
        self._step()

    # -- the walk ----------------------------------------------------------------------------------------------

    def _live_grants(self) -> Iterator[Grant]:
        """Sessions as they are at the start; each session's grants as they are when the walk reaches it."""
        for name, runtime in self._realms.items():
            core = runtime.core
            for peer in list(core.sessions.values()):
                if core.sessions.get(peer.session_id) is not peer:
                    continue  # left meanwhile
                transport = _transport_of(peer)
                for subscription in core.broker.subscriptions_of(peer.session_id):
                    yield Grant(name, peer, transport, SUBSCRIBE, subscription.id, subscription.uri, subscription.match)
                for registration in core.dealer.registrations_of(peer.session_id):
                    yield Grant(name, peer, transport, REGISTER, registration.id, registration.uri, registration.match)

    def _step(self) -> None:
        self._step_scheduled = False
        budget = self._batch
        while budget > 0 and self._in_flight < self._max_in_flight and not self._exhausted:
            grant = next(self._grants, None)
            if grant is None:
                self._exhausted = True
                break
            if not self._current(grant.realm):
                self.summary.superseded = True
                self._exhausted = True
                break
            budget -= 1
            try:
                self._check(grant)
            except Exception:  # our own bug: logged, and the walk goes on with the next grant
                self._failed(None, grant)
        self._continue()

    def _continue(self) -> None:
        """Finish, or come back on a later turn (at once when the batch ran out, else when a decision returns)."""
        if self._exhausted:
            if self._in_flight == 0 and not self.done.called:
                self._finish()
        elif self._in_flight < self._max_in_flight and not self._step_scheduled:
            self._step_scheduled = True
            self._clock.callLater(0, self._step)

    def _check(self, grant: Grant) -> None:
        self.summary.checked += 1
        identity = Identity(authid=grant.peer.authid, authrole=grant.peer.authrole, authmethod=grant.peer.authmethod,
                            authprovider=grant.peer.authprovider, authextra=grant.peer.authextra)
        request = AuthorizationRequest(session_id=grant.peer.session_id, realm=grant.realm, identity=identity,
                                       transport=grant.transport, action=grant.action, uri=grant.uri,
                                       match=grant.match)
        decision = self._chains[grant.realm].decide(request)
        if isinstance(decision, defer.Deferred):
            self._in_flight += 1
            decision.addCallback(self._decided, grant)
            decision.addErrback(self._failed, grant)
            decision.addBoth(self._returned)
        else:
            self._decided(decision, grant)

    def _returned(self, _: Any) -> None:
        self._in_flight -= 1
        self._continue()

    def _failed(self, failure, grant: Grant) -> None:
        """The chain never fails (it denies instead), so this is our own bug: logged, and the walk goes on."""
        self.log.failure("re-authorizing {action} on {uri} of session {session} failed", failure=failure,
                         action=grant.action, uri=grant.uri, session=grant.peer.session_id)

    def _decided(self, decision: Decision, grant: Grant) -> None:
        if type(decision) is Decision and decision.allow is True:
            return
        if not self._current(grant.realm):
            self.summary.superseded = True  # a newer reload's walk decides this grant
            return
        self._revoke(grant)

    # -- revoking --------------------------------------------------------------------------------------------------

    def _revoke(self, grant: Grant) -> None:
        runtime = self._realms[grant.realm]
        core, peer = runtime.core, grant.peer
        if core.sessions.get(peer.session_id) is not peer or not _still_held(core, grant):
            return  # left or gave it up meanwhile
        if grant.action == SUBSCRIBE:
            effects = core.broker.revoke_subscription(peer, grant.id, AUTHORIZATION_REVOKED)
            self.summary.revoked_subscriptions += 1
        else:
            effects = core.dealer.revoke_registration(peer, grant.id, AUTHORIZATION_REVOKED)
            self.summary.revoked_registrations += 1
        self.log.debug("reload revoked {action} on {uri} ({match}) of session {session} ({authid!r}/{authrole!r})",
                       action=grant.action, uri=grant.uri, match=grant.match, session=peer.session_id,
                       authid=peer.authid, authrole=peer.authrole)
        if self._counters is not None:
            self._counters.increment("authorization_revoked", realm=grant.realm, action=grant.action)
        runtime.effects.run(effects)

    def _current(self, realm: str) -> bool:
        """Whether the realm still has the chain this walk started with (no newer reload)."""
        return self._realms[realm].authorization is self._chains[realm]

    def _finish(self) -> None:
        summary = self.summary
        if summary.revoked_subscriptions or summary.revoked_registrations or summary.superseded:
            self.log.info(
                "reload: re-authorized {checked} live subscriptions and registrations; revoked {subscriptions} "
                "subscriptions and {registrations} registrations{superseded}",
                checked=summary.checked, subscriptions=summary.revoked_subscriptions,
                registrations=summary.revoked_registrations,
                superseded=" (then superseded by a newer reload)" if summary.superseded else "")
        self.done.callback(summary)


def _still_held(core: Any, grant: Grant) -> bool:
    """Whether the session still holds the very grant the walk decided on (same id, URI and match)."""
    if grant.action == SUBSCRIBE:
        held = core.broker.subscription(grant.id)
        holders = () if held is None else held.subscribers
        return held is not None and grant.peer.session_id in holders and (held.uri, held.match) == (
            grant.uri, grant.match)
    held = core.dealer.registration(grant.id)
    return held is not None and held.has(grant.peer.session_id) and (held.uri, held.match) == (grant.uri, grant.match)


def _transport_of(peer: Peer) -> TransportInfo:
    transport_info = getattr(peer.channel, "transport_info", None)
    if transport_info is None:
        return _NO_TRANSPORT
    try:
        return transport_info()
    except Exception:  # a connection going away: decide without its details rather than skip the grant
        return _NO_TRANSPORT
