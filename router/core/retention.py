"""Event retention (WAMP advanced profile): the last event of each topic that a PUBLISH asked to retain, per realm.

The table is bounded twice, by count and by an estimate of the bytes held, and forgets the topic retained least
recently first: a publisher retaining on ever new topics costs a bounded amount of memory and pushes out only what
nobody has retained on for longest. Sans-I/O: the broker builds the entries and turns them into EVENTs.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any

from wampgate.uri import EXACT, pattern_matches

# What an entry costs beyond its topic and payload (the entry, its ids and options), so that even empty retained
# events count against `max_retained_bytes`.
ENTRY_OVERHEAD = 64


class RetainedEvent:
    """One retained publication as it was published: its payload, who published it (only when the publication was
    disclosed), and the options that decide at delivery time who may receive it."""

    __slots__ = ("topic", "publication", "args", "kwargs", "payload", "enc_algo", "enc_key", "enc_serializer",
                 "publisher", "excluded_session", "admits", "size")

    def __init__(self, topic: str, publication: int, *, args: list | None, kwargs: dict | None,
                 payload: bytes | None = None, enc_algo: str | None = None, enc_key: str | None = None,
                 enc_serializer: str | None = None, publisher: tuple[int, str, str] | None = None,
                 excluded_session: int | None = None, admits: Callable[[Any], bool] | None = None):
        self.topic = topic
        self.publication = publication
        self.args = args
        self.kwargs = kwargs
        self.payload = payload
        self.enc_algo = enc_algo
        self.enc_key = enc_key
        self.enc_serializer = enc_serializer
        self.publisher = publisher  # (session id, authid, authrole) when disclosed, else None
        self.excluded_session = excluded_session  # the publisher's session when it asked exclude_me
        self.admits = admits  # the publish's exclude/eligible lists, None when it had none
        self.size = ENTRY_OVERHEAD + estimated_size(topic) + estimated_size(args) + estimated_size(kwargs) + len(
            payload or b"")

    def may_reach(self, peer: Any) -> bool:
        """Whether the original publish options let this event reach `peer` now."""
        if peer.session_id == self.excluded_session:
            return False
        return self.admits is None or self.admits(peer)


class RetainedEvents:
    """The retained events of one realm, by topic, least recently retained first."""

    def __init__(self, max_events: int, max_bytes: int):
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._events: OrderedDict[str, RetainedEvent] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._events)

    @property
    def bytes(self) -> int:
        """The estimated bytes held (what `max_bytes` bounds)."""
        return self._bytes

    def get(self, topic: str) -> RetainedEvent | None:
        return self._events.get(topic)

    def set_limits(self, max_events: int, max_bytes: int) -> None:
        """New bounds (a reload); lower ones evict at once."""
        self.max_events = max_events
        self.max_bytes = max_bytes
        self._evict()

    def retain(self, event: RetainedEvent) -> None:
        """Keep `event` as its topic's retained event, replacing the previous one. An event larger than the whole
        byte bound is not kept, and the previous one goes anyway: it is no longer the topic's last event."""
        previous = self._events.pop(event.topic, None)
        if previous is not None:
            self._bytes -= previous.size
        if event.size > self.max_bytes or self.max_events == 0:
            return
        self._events[event.topic] = event
        self._bytes += event.size
        self._evict()

    def matching(self, uri: str, match: str) -> list[RetainedEvent]:
        """The retained events a (uri, match) subscription covers, least recently retained first. A pattern walks
        the whole table, which `max_events` bounds."""
        if match == EXACT:
            event = self._events.get(uri)
            return [] if event is None else [event]
        return [event for topic, event in self._events.items() if pattern_matches(uri, match, topic)]

    def _evict(self) -> None:
        while self._events and (len(self._events) > self.max_events or self._bytes > self.max_bytes):
            _, oldest = self._events.popitem(last=False)
            self._bytes -= oldest.size


def estimated_size(value: Any) -> int:
    """About the bytes `value` (decoded JSON / MessagePack / CBOR data) takes serialized: strings by UTF-8 length,
    bytes by length, numbers 9 bytes, every container and item at least one more. The value came in one message
    that `max_message_size` bounded, so the walk is bounded too; iterative, so nesting cannot overflow the stack."""
    total = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            total += 2 + len(item.encode("utf-8", "surrogatepass"))
        elif isinstance(item, bytes | bytearray):
            total += 2 + len(item)
        elif isinstance(item, Mapping):
            total += 2 + len(item)
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            total += 2 + len(item)
            pending.extend(item)
        elif item is None:
            total += 1
        else:  # numbers, booleans, anything else a decoder gives
            total += 9
    return total
