"""One long-poll transport (router/tx/longpoll.py serves the HTTP side): the IChannel a long-poll session talks
through, on the same OutgoingBudget as WebSocket and RawSocket.

The messages waiting for a `receive` are what a socket would hold in its send buffer: counted against the budget
from the first one queued until a receive empties the queue, so the slow-consumer policy and the stall timeout apply
to them as to a socket's backlog (reading resumes when the queue is empty, as when a socket's buffer drains). While
reading is paused a `send` is held, answered once the router has read it; at most `max_message_size` bytes of held
sends wait, a send beyond that gets 429.

Framing: `wamp.2.json` carries one message per body, both ways (Autobahn|JS); `wamp.2.json.batched` any number,
each followed by 0x1E.
"""

from __future__ import annotations

from collections import deque
from types import MappingProxyType
from typing import Any

from twisted.logger import Logger
from twisted.web import server
from zope.interface import implementer

from wampgate.model import TransportInfo
from wampgate.tx.channel import UNENCODABLE, BudgetedChannel, IChannel, OutgoingBudget

# protocol -> batched; only JSON: Autobahn|JS offers nothing else over long-poll, and a body is text.
PROTOCOLS = MappingProxyType({"wamp.2.json": False, "wamp.2.json.batched": True})
SEPARATOR = b"\x1e"  # ends every message of a batched body


class BadBody(ValueError):
    """A request body that is not what the protocol says."""


def split_batch(body: bytes) -> list[bytes]:
    """The messages of a batched body: each one followed by 0x1E, nothing after the last separator."""
    if not body.endswith(SEPARATOR):
        raise BadBody("a batched body must end with 0x1E")
    messages = body[:-1].split(SEPARATOR)
    if any(not message for message in messages):
        raise BadBody("an empty message in a batch")
    return messages


def join_batch(payloads) -> bytes:
    """A batched body: every message followed by 0x1E."""
    return b"".join(payload + SEPARATOR for payload in payloads)


@implementer(IChannel)
class LongPollChannel(BudgetedChannel):
    """One long-poll transport: the queue of messages for the next `receive`, the sends held while reading is
    paused, and the idle timer. `factory` (the LongPollResource) gives the context and listener, as a socket
    channel's factory does."""

    router_log = Logger()

    def __init__(self, factory: Any, transport_id: str, protocol: str, info: TransportInfo):
        self.factory = factory
        self.transport_id = transport_id
        self.protocol = protocol
        self.batched = PROTOCOLS[protocol]
        self.serializer = factory.codecs.serializers["json"]
        self._info = info
        self._outbox: deque[bytes] = deque()  # serialized messages for the next receive
        self._outbox_bytes = 0
        self._inbox: deque[tuple[bytes, server.Request | None]] = deque()  # the request rides on its last message
        self._inbox_bytes = 0
        self._receiver: server.Request | None = None  # the receive waiting for a message
        self._receive_timer = None
        self._reading = False  # the inbox is being read
        self._closing = False  # the session closed the transport: what is queued goes out, then 410
        self._gone = False  # forgotten: nothing more is sent or read
        context = factory.context
        self.budget = OutgoingBudget(self, context.limits.max_outgoing_buffer, clock=context.clock,
                                     stall_timeout=context.limits.outgoing_stall_timeout)
        self._idle_timer = context.clock.callLater(factory.settings.longpoll_idle_timeout, self._on_idle)

    # -- requests ------------------------------------------------------------------------------------------------

    def touch(self) -> None:
        """A request arrived: the transport is not idle."""
        if self._idle_timer is not None and self._idle_timer.active():
            self._idle_timer.reset(self.factory.settings.longpoll_idle_timeout)

    def on_send(self, request: server.Request, payloads: list[bytes]) -> None:
        """Read the messages now, or hold them (and the answer) while reading is paused."""
        if self._closing:
            self.factory.answer_error(request, 410, "transport_closed", "the transport is closed")
            return
        size = sum(map(len, payloads))
        if self._inbox and self._inbox_bytes + size > self.factory.listener.config.max_message_size:
            self.factory.answer_error(request, 429, "too_many_requests",
                                      "too many unread sends: wait for the earlier ones to be answered")
            return
        for index, payload in enumerate(payloads):
            self._inbox.append((payload, request if index == len(payloads) - 1 else None))
        self._inbox_bytes += size
        self._read_inbox()

    def _read_inbox(self) -> None:
        if self._reading:
            return  # re-entered from a message's own handling (a decision that resumed reading): the loop goes on
        self._reading = True
        try:
            self._read_messages()
        finally:
            self._reading = False

    def _read_messages(self) -> None:
        inbox = self._inbox
        while inbox and not self.reading_paused and not self._gone:
            payload, request = inbox.popleft()
            self._inbox_bytes -= len(payload)
            session = self.session
            if session is not None:
                session.on_payload(payload, None)
            if request is not None:
                self.factory.answer(request, 204)

    def on_receive(self, request: server.Request) -> None:
        """Answer with what is queued, or wait (one receive at a time: a newer one replaces a waiting one, which
        is answered empty, so a client that lost its request's connection is not locked out)."""
        if self._outbox:
            self._answer_receive(request)
            return
        if self._closing:
            self.factory.answer_error(request, 410, "transport_closed", "the transport is closed")
            self.forget()
            return
        if self._receiver is not None:
            self._finish_receiver(204)
        self._receiver = request
        request.notifyFinish().addErrback(self._receiver_lost, request)
        self._receive_timer = self.factory.context.clock.callLater(
            self.factory.settings.longpoll_receive_timeout, self._finish_receiver, 204)

    def on_close(self) -> None:
        """The client closed the transport: the session ends as if its connection were lost. A waiting receive is
        answered empty (Autobahn|JS would take an error there for a lost connection)."""
        self._end_session()
        self.forget(receiver_status=204)

    def _answer_receive(self, request: server.Request) -> None:
        """Everything queued for a batched transport, else the oldest message. A request whose connection is gone
        takes nothing: what is queued stays, counted against the budget, for the next receive."""
        if request.finished or request._disconnected:
            if not self.budget.paused:
                self.budget.pauseProducing()
            self.budget.held = self._outbox_bytes
            return
        outbox = self._outbox
        if self.batched:
            body = join_batch(outbox)
            outbox.clear()
        else:
            body = outbox.popleft()
            self._outbox_bytes -= len(body)
        if not outbox:
            self._outbox_bytes = 0
            self.budget.resumeProducing()  # like a socket's buffer draining: within budget, reading resumes
        else:
            self.budget.held = self._outbox_bytes  # what the client has not taken yet
        self.touch()  # idle time counts from the answer
        self.factory.answer(request, 200, body, self.factory.content_type)

    def _finish_receiver(self, status: int) -> None:
        request, self._receiver = self._receiver, None
        self._cancel_receive_timer()
        if request is not None:
            self.touch()
            self.factory.answer(request, status)

    def _receiver_lost(self, failure, request: server.Request) -> None:
        """The client gave up its receive (timeout, navigation): nothing may be written to it any more."""
        if self._receiver is request:
            self._receiver = None
            self._cancel_receive_timer()

    def _cancel_receive_timer(self) -> None:
        timer, self._receive_timer = self._receive_timer, None
        if timer is not None and timer.active():
            timer.cancel()

    def _on_idle(self) -> None:
        self._idle_timer = None
        if self._receiver is not None and not self._gone:
            self._idle_timer = self.factory.context.clock.callLater(
                self.factory.settings.longpoll_idle_timeout, self._on_idle)
            return
        if not self._closing:
            self.router_log.info("long-poll: the transport of {peer} expired (no request for {timeout} s)",
                                 peer=self._info.peer, timeout=self.factory.settings.longpoll_idle_timeout)
            self.factory.context.counters.increment("longpoll_expired", listener=self.factory.listener.config.name)
        self._end_session()
        self.forget()

    def forget(self, receiver_status: int = 410) -> None:
        """Drop the transport: timers, queues, its id. Held sends are answered 410, a waiting receive too unless
        `receiver_status` says otherwise."""
        if self._gone:
            return
        self._gone = True
        self.factory.transports.pop(self.transport_id, None)
        if self._idle_timer is not None and self._idle_timer.active():
            self._idle_timer.cancel()
        self._idle_timer = None
        self.budget.stopProducing()
        receiver, self._receiver = self._receiver, None
        self._cancel_receive_timer()
        if receiver is not None and receiver_status != 410:
            self.factory.answer(receiver, receiver_status)
        elif receiver is not None:
            self.factory.answer_error(receiver, 410, "transport_closed", "the transport is closed")
        for _, request in self._inbox:
            if request is not None:
                self.factory.answer_error(request, 410, "transport_closed", "the transport is closed")
        self._inbox.clear()
        self._outbox.clear()
        self._inbox_bytes = self._outbox_bytes = 0

    # -- the channel interface the session uses ---------------------------------------------------------------

    def send_message(self, msg) -> str | None:
        """Hand the message to a waiting receive, or queue it for the next one within the outgoing budget (see
        IChannel); nothing is sent once the transport is closing."""
        if self._closing or self._gone:
            return None
        try:
            payload = msg.serialize(self.serializer._serializer)
        except Exception as e:  # a value the serializer cannot encode
            self.router_log.info("long-poll: cannot encode a {kind} for {peer}: {error}",
                                 kind=type(msg).__name__.upper(), peer=self._info.peer, error=e)
            return UNENCODABLE
        if self._receiver is None and not self.budget.paused:
            self.budget.pauseProducing()  # from now on, until a receive empties the queue, bytes are held
        return self._emit(msg, payload, self._deliver)

    def _deliver(self, payload: bytes) -> None:
        self._outbox.append(payload)
        self._outbox_bytes += len(payload)
        receiver, self._receiver = self._receiver, None
        if receiver is not None:
            self._cancel_receive_timer()
            self._answer_receive(receiver)

    def pause_reading(self, reason: str) -> None:
        self._pause_reasons = self._pause_reasons | {reason}

    def resume_reading(self, reason: str) -> None:
        if reason not in self._pause_reasons:
            return
        self._pause_reasons = self._pause_reasons - {reason}
        if not self._pause_reasons:
            self._read_inbox()  # sends held while paused, in the order they came

    def close_transport(self, code: int, reason: str | None) -> None:
        """What is queued (an ABORT, a GOODBYE) still goes out; then `receive` answers 410 and the id is
        forgotten (or the client closes, or the transport expires)."""
        if self._closing or self._gone:
            return
        self._closing = True
        for _, request in self._inbox:
            if request is not None:
                self.factory.answer_error(request, 410, "transport_closed", "the transport is closed")
        self._inbox.clear()
        self._inbox_bytes = 0
        if not self._outbox and self._receiver is not None:
            self.forget()

    def abort_transport(self) -> None:
        """Drop now: nothing queued goes out."""
        self._end_session()
        self._closing = True
        self.forget()

    def transport_info(self) -> TransportInfo:
        return self._info
