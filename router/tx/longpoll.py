"""WAMP over HTTP long-poll (the WAMP advanced profile's Long-Poll Transport), for clients that cannot hold a
WebSocket: browsers behind proxies that break WebSockets, and Autobahn|JS's `longpoll` transport.

Every request is a POST under the listener's `longpoll_path` (here `/lp`):
- `/lp/open` with `{"protocols": ["wamp.2.json", ...]}` -> 200 `{"transport": <id>, "protocol": <chosen>}`;
- `/lp/<id>/send` with one WAMP message (`wamp.2.json`) or a batch (`wamp.2.json.batched`: every message followed by
  0x1E) -> 204 once the router has read it;
- `/lp/<id>/receive` -> 200 with the next message (a batch of the queued ones for `wamp.2.json.batched`), or 204
  when nothing came within `longpoll_receive_timeout`;
- `/lp/<id>/close` -> 204; the session ends as if its connection were lost.

Each transport is one `LongPollChannel` (router/tx/longpoll_channel.py): the same `IChannel` on the same
`OutgoingBudget` as WebSocket and RawSocket, so a session over long-poll is authenticated, authorized, flow-controlled
and bounded exactly alike.

Transport ids are 128 random bits (the id is the only thing tying later requests to the session, like a session
cookie): never logged. The Origin allow-list applies to every request, and allowed origins get CORS headers with
credentials (Autobahn|JS's XHRs send cookies).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from types import MappingProxyType

from autobahn.twisted.util import peer2str
from twisted.logger import Logger
from twisted.web import resource, server

from wampgate.model import TransportInfo
from wampgate.tx.longpoll_channel import PROTOCOLS, BadBody, LongPollChannel, split_batch
from wampgate.tx.clientcert import client_certificate
from wampgate.tx.runtime import ListenerRuntime, RouterContext
from wampgate.tx.session import RouterSession
from wampgate.tx.websocket import _cookies, _origins_key, forwarded_client, origin_allowed, proxy_networks
from wampgate.tx.wire import Codecs

MAX_CONTROL_BODY = 4096  # bytes of an `open` body (and of the ignored bodies of `receive` and `close`)
ACTIONS = ("send", "receive", "close")


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


class LongPollResource(resource.Resource):
    """`longpoll_path` on a listener's HTTP side: routes the four requests and answers every error as JSON."""

    isLeaf = True
    serves_subtree = True  # the site hands it every path below longpoll_path (router/tx/website.py)
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
        # below longpoll_path, whatever way the site dispatched here (router/tx/website.py PathRoot)
        prefix = self.settings.longpoll_path.encode() + b"/"
        path = request.path.split(b"?", 1)[0]
        segments = path[len(prefix):].split(b"/") if path.startswith(prefix) else [b""]
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
