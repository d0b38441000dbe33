"""What the sans-I/O core asks the I/O layer to do: the core returns lists of these, never performs I/O."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from autobahn.wamp.message import Message

from wampgate.core.peer import Peer


@dataclass(frozen=True, slots=True)
class Send:
    """Deliver one message to each recipient; it is serialized once per serializer, however many receive it."""

    recipients: Sequence[Peer]
    message: Message


@dataclass(frozen=True, slots=True)
class Abort:
    """End a session with ABORT (reason URI, generic text) and close its transport."""

    peer: Peer
    reason: str
    message: str


@dataclass(frozen=True, slots=True)
class StartTimer:
    """Call the owner's `on_timeout(key, now)` after `delay` seconds, unless a CancelTimer for `key` comes first.

    Keys are unique per timer and never reused, so a timer that fires after its work ended finds nothing to do.
    """

    key: Hashable
    delay: float


@dataclass(frozen=True, slots=True)
class CancelTimer:
    """Forget the timer started under `key`; a key with no running timer is ignored."""

    key: Hashable


@dataclass(frozen=True, slots=True)
class Kick:
    """End a joined session with GOODBYE (reason URI, optional message), as the `wamp.session.kill*` meta
    procedures ask. The I/O layer closes it the way a router-initiated GOODBYE always does, which also makes the
    session leave the realm (so its meta events come from that leave); a peer no longer joined is ignored."""

    peer: Peer
    reason: str
    message: str | None


# -- what a clustered realm tells the other nodes (router/tx/cluster); a realm outside a cluster never emits these --


@dataclass(frozen=True, slots=True)
class Published:
    """A local session published: the other nodes deliver the event to their own subscribers. `publish` is the
    client's PUBLISH (its options travel with it), `publication` the id every subscriber sees."""

    publisher: Peer
    publish: Message
    publication: int
    disclose: bool


@dataclass(frozen=True, slots=True)
class Joined:
    """A local session joined the realm: the cluster's presence table and the other nodes' meta API learn of it."""

    peer: Peer


@dataclass(frozen=True, slots=True)
class Left:
    """A local session left the realm."""

    peer: Peer


@dataclass(frozen=True, slots=True)
class Interest:
    """The first local subscription of (uri, match) was created (`held` True) or its last one deleted (False): the
    node starts or stops listening for that interest's events from other nodes."""

    uri: str
    match: str
    held: bool


@dataclass(frozen=True, slots=True)
class Callee:
    """A local session joined (`held` True) or left (False) the (uri, match) registration: the cluster's directory
    and the other nodes' dealers learn of it."""

    peer: Peer
    uri: str
    match: str
    invoke: str
    held: bool


Effect = Send | Abort | StartTimer | CancelTimer | Kick | Published | Joined | Left | Interest | Callee


def reply(peer: Peer, message: Message) -> list[Effect]:
    """A one-message answer to the peer that asked."""
    return [Send((peer,), message)]
