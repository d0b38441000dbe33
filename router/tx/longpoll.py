"""WAMP over HTTP long-poll (the WAMP advanced profile's Long-Poll Transport), for clients that cannot hold a
WebSocket: browsers behind proxies that break WebSockets, and Autobahn|JS's `longpoll` transport.

Every request is a POST under the listener's `longpoll_path` (here `/lp`):
- `/lp/open` with `{"protocols": ["wamp.2.json", ...]}` -> 200 `{"transport": <id>, "protocol": <chosen>}`;
- `/lp/<id>/send` with one WAMP message (`wamp.2.json`) or a batch (`wamp.2.json.batched`: every message followed by
  0x1E) -> 204 once the router has read it;
- `/lp/<id>/receive` -> 200 with the next message (a batch of the queued ones for `wamp.2.json.batched`), or 204
  when nothing came within `longpoll_receive_timeout`;
- `/lp/<id>/close` -> 204; the session ends as if its connection were lost.

Each transport is one `LongPollChannel`: the same `IChannel` on the same `OutgoingBudget` as WebSocket and RawSocket,
so a session over long-poll is authenticated, authorized and flow-controlled exactly alike. The messages waiting for
a `receive` are the bytes a socket would hold in its send buffer: they are counted against the budget, and the
slow-consumer policy and the stall timeout apply to them. While reading is paused, a `send` is held (answered once
the router has read it), and at most `max_message_size` bytes of such held sends wait; a send beyond that gets 429.

Transport ids are 128 random bits (the id is the only thing tying later requests to the session, like a session
cookie): never logged. The Origin allow-list applies to every request, and allowed origins get CORS headers with
credentials (Autobahn|JS's XHRs send cookies).
"""

from __future__ import annotations

import json
import secrets
from collections import deque
from collections.abc import Callable
from types import MappingProxyType

from autobahn.twisted.util import peer2str
from twisted.logger import Logger
from twisted.web import resource, server
from zope.interface import implementer

from wampgate.model import TransportInfo
from wampgate.tx.channel import UNENCODABLE, BudgetedChannel, IChannel, OutgoingBudget
from wampgate.tx.clientcert import client_certificate
from wampgate.tx.runtime import ListenerRuntime, RouterContext
from wampgate.tx.session import RouterSession
from wampgate.tx.websocket import _cookies, _origins_key, forwarded_client, origin_allowed, proxy_networks
from wampgate.tx.wire import Codecs

# protocol -> batched; only JSON: Autobahn|JS offers nothing else over long-poll, and a body is text.
PROTOCOLS = MappingProxyType({"wamp.2.json": False, "wamp.2.json.batched": True})
SEPARATOR = b"\x1e"  # ends every message of a batched body
MAX_CONTROL_BODY = 4096  # bytes of an `open` body (and of the ignored bodies of `receive` and `close`)
ACTIONS = ("send", "receive", "close")


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


def choose_protocol(body: bytes, serves_json: bool) -> str | None:
    """The first protocol of the `open` body's list that the router speaks; raises BadBody when it is malformed."""
    try:
        request = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadBody("the open body is not JSON") from None
    protocols = request.get("protocols") if type(request) is dict else None
    if type(protocols) is not list or not protocols or any(type(p) is not str for p in protocols):
        raise BadBody('expected {"protocols": ["wamp.2.json", ...]}')
    if not serves_json:
        return None
    return next((protocol for protocol in protocols if protocol in PROTOCOLS), None)


@implementer(IChannel)
class LongPollChannel(BudgetedChannel):
    """One long-poll transport: the queue of messages for the next `receive`, the sends held while reading is
    paused, and the idle timer. `factory` (the LongPollResource) gives the context and listener, as a socket
    channel's factory does."""

    router_log = Logger()

    def __init__(self, factory: LongPollResource, transport_id: str, protocol: str, info: TransportInfo):
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
        """Everything queued for a batched transport, else the oldest message."""
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


class LongPollResource(resource.Resource):
    """`longpoll_path` on a listener's HTTP side: routes the four requests and answers every error as JSON."""

    isLeaf = True
    log = Logger()
    content_type = b"application/json; charset=utf-8"

    def __init__(self, context: RouterContext, listener: ListenerRuntime, codecs: Codecs,
                 new_id: Callable[[], str] = lambda: secrets.token_urlsafe(16)):
        super().__init__()
        self.context = context
        self.listener = listener
        self.codecs = codecs
        self.settings = listener.config.websocket
        self.trusted_proxies = proxy_networks(self.settings.trusted_proxies)
        self.transports: dict[str, LongPollChannel] = {}
        self._new_id = new_id

    def body_limit(self, path: bytes) -> int | None:
        """The largest body a request to `path` may carry; None when the path is not this transport's."""
        prefix = self.settings.longpoll_path.encode() + b"/"
        path = path.split(b"?", 1)[0]
        if not path.startswith(prefix):
            return None
        return self.listener.config.max_message_size if path.endswith(b"/send") else MAX_CONTROL_BODY

    def render(self, request: server.Request):
        request.setHeader(b"Cache-Control", b"no-store")
        origin = request.getHeader(b"origin")
        if origin is not None:
            text = origin.decode("latin-1")
            if not origin_allowed(text, self.settings.allowed_origins):
                return self._refuse_origin(request, text)
            request.setHeader(b"Access-Control-Allow-Origin", origin)
            request.setHeader(b"Access-Control-Allow-Credentials", b"true")
            request.setHeader(b"Vary", b"Origin")
        if request.method == b"OPTIONS":  # a browser's CORS preflight: the XHRs send Content-Type JSON
            request.setHeader(b"Access-Control-Allow-Methods", b"POST, OPTIONS")
            request.setHeader(b"Access-Control-Allow-Headers", b"Content-Type")
            request.setHeader(b"Access-Control-Max-Age", b"600")
            return self.answer(request, 204)
        if request.method != b"POST":
            request.setHeader(b"Allow", b"POST, OPTIONS")
            return self.answer_error(request, 405, "method_not_allowed", "long-poll requests are POSTs")
        segments = request.postpath
        if segments == [b"open"]:
            return self._open(request)
        if len(segments) != 2 or segments[1].decode("latin-1") not in ACTIONS:
            return self.answer_error(request, 404, "not_found", "no such long-poll request")
        channel = self.transports.get(segments[0].decode("latin-1"))
        if channel is None:
            return self.answer_error(request, 404, "no_such_transport", "no such transport (closed or expired)")
        channel.touch()
        action = segments[1]
        if action == b"send":
            self._send(request, channel)
        elif action == b"receive":
            channel.on_receive(request)
        else:
            channel.on_close()
            self.answer(request, 204)
        return server.NOT_DONE_YET

    def _refuse_origin(self, request: server.Request, origin: str):
        name = self.listener.config.name
        self.context.counters.increment("handshake_refused", reason="origin", listener=name)
        self.log.info("long-poll: refused Origin {origin!r} from {peer} on listener {listener!r} (HTTP 403); to allow "
                      "it, add it to {key}", origin=origin, peer=peer2str(request.channel.transport), listener=name,
                      key=_origins_key(self.listener))
        return self.answer_error(request, 403, "origin_not_allowed", "this origin may not use the router")

    def _open(self, request: server.Request):
        try:
            protocol = choose_protocol(request.content.read(), "json" in self.listener.config.serializers)
        except BadBody as e:
            return self.answer_error(request, 400, "bad_request", str(e))
        if protocol is None:
            return self.answer_error(request, 400, "unsupported_protocol",
                                     "expected one of the protocols " + ", ".join(PROTOCOLS))
        if len(self.transports) >= self.settings.longpoll_max_transports:
            self.context.counters.increment("longpoll_refused", reason="too_many_transports",
                                            listener=self.listener.config.name)
            return self.answer_error(request, 503, "too_many_transports", "too many open long-poll transports")
        transport_id = self._new_id()
        channel = LongPollChannel(self, transport_id, protocol, self._transport_info(request))
        self.transports[transport_id] = channel
        try:
            channel.session = RouterSession(self.context, self.listener, channel)
        except Exception:
            self.log.failure("cannot start a session")
            channel.forget()
            return self.answer_error(request, 500, "internal_error", "internal error")
        body = json.dumps({"transport": transport_id, "protocol": protocol}).encode()
        return self.answer(request, 200, body, self.content_type)

    def _send(self, request: server.Request, channel: LongPollChannel) -> None:
        body = request.content.read()
        try:
            payloads = split_batch(body) if channel.batched else [body]
        except BadBody as e:
            self.answer_error(request, 400, "bad_request", str(e))
            return
        if not body:
            self.answer_error(request, 400, "bad_request", "a send carries a WAMP message")
            return
        channel.on_send(request, payloads)

    def _transport_info(self, request: server.Request) -> TransportInfo:
        """The `open` request's view of the client (its headers and cookies, as a WebSocket's upgrade request)."""
        headers = {name.decode("latin-1").lower(): b", ".join(values).decode("latin-1")
                   for name, values in request.requestHeaders.getAllRawHeaders()}
        peer = forwarded_client(peer2str(request.channel.transport), headers, self.trusted_proxies)
        query = {name.decode("latin-1"): tuple(v.decode("utf-8", "replace") for v in values)
                 for name, values in request.args.items()}
        return TransportInfo(
            listener=self.listener.config.name,
            kind="longpoll",
            is_secure=request.isSecure(),
            serializer="json",
            peer=peer,
            http_headers=MappingProxyType(headers),
            http_path=request.path.decode("utf-8", "replace"),
            http_query=MappingProxyType(query),
            cookies=_cookies(headers.get("cookie", "")),
            peer_certificate=client_certificate(request.channel.transport),
        )

    # -- answers ------------------------------------------------------------------------------------------------

    def answer(self, request: server.Request, status: int, body: bytes = b"", content_type: bytes | None = None):
        """Finish `request` unless it is already finished or its connection is gone."""
        if request.finished or request._disconnected:
            return server.NOT_DONE_YET
        request.setResponseCode(status)
        if content_type is not None:
            request.setHeader(b"Content-Type", content_type)
        request.setHeader(b"Content-Length", str(len(body)).encode())
        if body:
            request.write(body)
        request.finish()
        return server.NOT_DONE_YET

    def answer_error(self, request: server.Request, status: int, error: str, message: str):
        body = json.dumps({"error": error, "message": message}).encode()
        return self.answer(request, status, body, self.content_type)
