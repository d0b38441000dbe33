"""The HTTP bridge's endpoints (twisted.web resources): `publish`, `call` and `webhook` paths of a listener.

Each POST is checked in this order, each refusal an exact status and `{"error": uri, "message": text}`: method
(405), TLS (403), client address (403), body size (413; the channel refuses an announced oversized body before
reading it), media type (415), authentication (400 for a malformed signed request, 401, 503), request shape (400).
Then it is one WAMP request of a bridge session (router/tx/bridge_session.py): flow control, authorization, payload
validation and routing exactly as for a WebSocket session's message, and its WAMP answer becomes the response
(ERROR_STATUS maps WAMP errors to statuses; docs/http-bridge.md lists them).
"""

from __future__ import annotations

import base64
import json
import math
from typing import Any
from urllib.parse import parse_qs

import autobahn.twisted  # noqa: F401  selects Twisted for txaio before autobahn's serializers are imported (wire)
from autobahn.wamp import message as wamp
from twisted.internet import defer
from twisted.logger import Logger
from twisted.web import resource, server

from wampgate.config import BridgeConfig, ListenerConfig
from wampgate.configpaths import PathConfig
from wampgate.core import errors
from wampgate.model import TransportInfo
from wampgate.tx import wire
from wampgate.tx.bridge_auth import (
    BAD_REQUEST,
    AuthRefused,
    SignatureCheck,
    bearer_token,
    configured_identity,
    verify_jwt,
)
from wampgate.tx.bridge_session import BridgeSessions, Refused
from wampgate.tx.runtime import ListenerRuntime, RouterContext
from wampgate.tx.websocket import _address, _is_trusted, forwarded_client, proxy_networks

METHOD_NOT_ALLOWED = "wampgate.error.method_not_allowed"
TLS_REQUIRED = "wampgate.error.tls_required"
ADDRESS_NOT_ALLOWED = "wampgate.error.address_not_allowed"
UNSUPPORTED_MEDIA_TYPE = "wampgate.error.unsupported_media_type"
INTERNAL = "wampgate.error.internal"

# The HTTP status of a WAMP error answer; any other error URI (a callee's own) is 500.
ERROR_STATUS = {
    BAD_REQUEST: 400,
    errors.INVALID_ARGUMENT: 400,
    errors.INVALID_URI: 400,
    errors.AUTHENTICATION_FAILED: 401,
    errors.NOT_AUTHORIZED: 403,
    errors.NO_SUCH_PROCEDURE: 404,
    errors.NO_SUCH_REALM: 404,
    errors.PAYLOAD_SIZE_EXCEEDED: 413,
    errors.RATE_LIMITED: 429,
    errors.TOO_MANY_CALLS: 429,
    errors.UNAVAILABLE: 503,
    "wamp.error.no_available_callee": 503,
    errors.TOO_MANY_SESSIONS: 503,
    errors.TIMEOUT: 504,
    errors.CANCELED: 504,
}
PUBLISH_KEYS = frozenset(("topic", "args", "kwargs", "options"))
CALL_KEYS = frozenset(("procedure", "args", "kwargs", "options"))
PUBLISH_OPTIONS = frozenset(("exclude", "exclude_authid", "exclude_authrole", "eligible", "eligible_authid",
                             "eligible_authrole", "retain", "disclose_me"))
CALL_OPTIONS = frozenset(("timeout", "disclose_me"))


def _encode(body: dict) -> bytes:
    """JSON as WAMP's JSON serialization writes it: binary strings as "\\u0000" followed by their base64."""
    return json.dumps(body, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_binary).encode()


def _binary(value: Any) -> str:
    if isinstance(value, bytes):
        return "\x00" + base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} cannot be written as JSON")


class BadRequest(Exception):
    """The body is not a request of this endpoint's shape: HTTP 400, `wampgate.error.bad_request`."""


class Bridge:
    """One `[[listeners.bridges]]` of a running listener: its sessions, its authentication and its checks."""

    def __init__(self, context: RouterContext, listener: ListenerRuntime, config: BridgeConfig):
        self.context = context
        self.listener = listener
        self.config = config
        secure = listener.config.tls is not None
        self.sessions = BridgeSessions(context, config, listener.config.name, secure)
        self.signatures = SignatureCheck(config) if config.authentication == "signature" else None
        self.trusted_proxies = proxy_networks(listener.config.websocket.trusted_proxies)
        self.allowed = proxy_networks(config.allowed_addresses)

    async def authenticate(self, request, body: bytes, host: str):
        config = self.config
        if config.authentication == "signature":
            return self.signatures.verify(_query(request), body, self.context.clock.seconds())
        if config.authentication == "jwt":
            transport = TransportInfo(listener=self.listener.config.name, kind="http", peer=host,
                                      is_secure=request.isSecure(), serializer="json")
            return await verify_jwt(self.listener.methods.get("jwt"), bearer_token(request.getHeader(b"authorization")),
                                    config.realm, transport, new_id=self.context.new_id, clock=self.context.clock,
                                    timeout=self.context.limits.auth_timeout)
        return configured_identity(config)


class BridgeEndpoint(resource.Resource):
    """One bridge path. Leaf: the path is matched exactly by the listener's site."""

    isLeaf = True
    log = Logger()

    def __init__(self, bridge: Bridge, path: PathConfig):
        super().__init__()
        self.bridge = bridge
        self.path = path
        self.max_body_size = bridge.config.max_body_size  # the channel refuses a larger announced body
    def render(self, request) -> Any:
        request.setHeader(b"cache-control", b"no-store")
        if request.method != b"POST":
            request.setHeader(b"allow", b"POST")
            return self._refuse(request, 405, METHOD_NOT_ALLOWED, "only POST is allowed here")
        defer.ensureDeferred(self._serve(request)).addErrback(self._failed, request)
        return server.NOT_DONE_YET

    async def _serve(self, request) -> None:
        bridge, config = self.bridge, self.bridge.config
        peer = _peer_of(request)
        client = forwarded_client(peer, _headers(request), bridge.trusted_proxies)
        host = client.rsplit(":", 1)[0]
        address = _address(host.partition(":")[2])
        try:
            if config.require_tls and not request.isSecure():
                raise AuthRefused(403, TLS_REQUIRED, "this endpoint takes requests over TLS (https) only")
            if bridge.allowed and not _is_trusted(address, bridge.allowed):
                raise AuthRefused(403, ADDRESS_NOT_ALLOWED, "requests from this address are not allowed",
                                  f"{host} is not in allowed_addresses")
            if config.authentication == "none" and not config.allow_unauthenticated_remote and not (
                    address is not None and address.is_loopback):
                raise AuthRefused(403, ADDRESS_NOT_ALLOWED, "requests from this address are not allowed",
                                  f"{host} is not loopback and authentication is none")
            body = request.content.read(config.max_body_size + 1) if request.content is not None else b""
            if len(body) > config.max_body_size:
                raise AuthRefused(413, errors.PAYLOAD_SIZE_EXCEEDED,
                                  f"the body is larger than {config.max_body_size} bytes")
            if self.path.kind != "webhook":
                _check_json_media_type(request.getHeader(b"content-type"))
            identity = await bridge.authenticate(request, body, host)
            build = self._builder(request, body)
            session = bridge.sessions.session(identity, host)
            request_id, answer = session.request(build, len(body))
        except AuthRefused as e:
            self.log.info("bridge {bridge} {path}: refused a request from {peer}: {reason}", bridge=config.name,
                          path=self.path.path, peer=client, reason=e.reason)
            self._finish(request, e.status, {"error": e.error, "message": e.text})
            return
        except BadRequest as e:
            self._finish(request, 400, {"error": BAD_REQUEST, "message": str(e)})
            return
        except wire.ProtocolViolation:
            self._finish(request, 400, {"error": BAD_REQUEST, "message": "the request's fields have wrong types"})
            return
        except Refused as e:
            self._refused(request, e)
            return
        request.notifyFinish().addErrback(lambda _: session.cancel(request_id))
        try:
            reply = await answer
        except Refused as e:
            self._refused(request, e)
            return
        self._answer(request, reply)

    # -- the request body --------------------------------------------------------------------------------------

    def _builder(self, request, body: bytes):
        """A function of the request id giving the raw WAMP message this request is."""
        kind = self.path.kind
        if kind == "webhook":
            return self._webhook(request, body)
        try:
            value = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise BadRequest("the body is not JSON (UTF-8)") from None
        if type(value) is not dict:
            raise BadRequest("the body must be a JSON object")
        keys, uri_key = (PUBLISH_KEYS, "topic") if kind == "publish" else (CALL_KEYS, "procedure")
        unknown = sorted(set(value) - keys)
        if unknown:
            raise BadRequest(f"unknown field {unknown[0]!r}; allowed: {', '.join(sorted(keys))}")
        uri, args, kwargs, options = (value.get(uri_key), value.get("args"), value.get("kwargs"),
                                      value.get("options", {}))
        if type(uri) is not str:
            raise BadRequest(f"{uri_key!r} must be a string")
        if args is not None and type(args) is not list:
            raise BadRequest("'args' must be an array")
        if kwargs is not None and type(kwargs) is not dict:
            raise BadRequest("'kwargs' must be an object")
        if type(options) is not dict:
            raise BadRequest("'options' must be an object")
        allowed = PUBLISH_OPTIONS if kind == "publish" else CALL_OPTIONS
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise BadRequest(f"unknown option {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}")
        tail = [args or [], kwargs] if kwargs else ([args] if args else [])
        if kind == "publish":
            details = {**options, "acknowledge": True}
            return lambda request_id: [wamp.Publish.MESSAGE_TYPE, request_id, details, uri, *tail]
        details = {**options, "timeout": self._call_timeout(options.get("timeout"))}
        return lambda request_id: [wamp.Call.MESSAGE_TYPE, request_id, details, uri, *tail]

    def _call_timeout(self, timeout: Any) -> int:
        """The call's WAMP timeout in ms: the request's `options.timeout` (seconds), cut to max_call_timeout."""
        config = self.bridge.config
        if timeout is None:
            timeout = config.call_timeout
        elif type(timeout) not in (int, float) or not 0 < timeout < math.inf:
            raise BadRequest("'options.timeout' must be a positive number of seconds")
        return max(1, int(min(timeout, config.max_call_timeout) * 1000))

    def _webhook(self, request, body: bytes):
        """Any body as one event: `{"body": text}` (or `{"body_base64": ...}` when it is not UTF-8) and
        `{"headers": {name: [values]}}` of the configured headers."""
        options = self.path.options
        headers = {}
        for name in options.headers:
            values = request.requestHeaders.getRawHeaders(name.encode("ascii"))
            if values:
                headers[name] = [value.decode("latin-1") for value in values]
        try:
            event: dict = {"body": body.decode("utf-8")}
        except UnicodeDecodeError:
            event = {"body_base64": base64.b64encode(body).decode("ascii")}
        event["headers"] = headers
        details = {"acknowledge": True}
        return lambda request_id: [wamp.Publish.MESSAGE_TYPE, request_id, details, options.topic, [event]]

    # -- answers ---------------------------------------------------------------------------------------------------

    def _answer(self, request, reply: wamp.Message) -> None:
        kind = type(reply)
        if kind is wamp.Published:
            self._finish(request, 202 if self.path.kind == "webhook" else 200, {"id": reply.publication})
        elif kind is wamp.Result:
            self._finish(request, 200, {"args": list(reply.args or ()), "kwargs": dict(reply.kwargs or {})})
        elif isinstance(reply, wamp.Error):
            retry_after = getattr(reply, "retry_after", None)
            if retry_after:
                request.setHeader(b"retry-after", str(max(1, math.ceil(retry_after))).encode())
            args = list(reply.args or ())
            self._finish(request, ERROR_STATUS.get(reply.error, 500), {
                "error": reply.error, "message": args[0] if args and type(args[0]) is str else "",
                "args": args, "kwargs": dict(reply.kwargs or {})})
        else:  # our own bug: nothing else answers a PUBLISH or CALL
            self.log.error("bridge: unexpected answer {kind}", kind=kind.__name__)
            self._finish(request, 500, {"error": INTERNAL, "message": "internal error"})

    def _refused(self, request, refused: Refused) -> None:
        if refused.retry_after:
            request.setHeader(b"retry-after", str(max(1, math.ceil(refused.retry_after))).encode())
        self._finish(request, ERROR_STATUS.get(refused.error, 500), {"error": refused.error, "message": refused.text})

    def _failed(self, failure, request) -> None:
        self.log.failure("bridge {path}: internal error", failure=failure, path=self.path.path)
        self._finish(request, 500, {"error": INTERNAL, "message": "internal error"})

    def _refuse(self, request, status: int, error: str, text: str) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        return json.dumps({"error": error, "message": text}).encode()

    def _finish(self, request, status: int, body: dict) -> None:
        if request.finished or request._disconnected:
            return
        try:
            data = _encode(body)
        except Exception:  # a value JSON cannot carry (the callee's serializer could)
            status, data = 500, json.dumps({"error": INTERNAL, "message": "the answer cannot be encoded"}).encode()
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"content-length", str(len(data)).encode())
        request.write(data)
        request.finish()


def _check_json_media_type(content_type: bytes | None) -> None:
    """Like Crossbar: no Content-Type, or application/json with at most a UTF-8 charset."""
    if content_type is None:
        return
    media, *parameters = [part.strip().lower() for part in content_type.split(b";")]
    charsets = [p.partition(b"=")[2].strip(b'"') for p in parameters if p.startswith(b"charset")]
    if media != b"application/json" or any(c not in (b"utf-8", b"utf8") for c in charsets):
        raise AuthRefused(415, UNSUPPORTED_MEDIA_TYPE, "expected Content-Type: application/json (UTF-8)")


def _query(request) -> dict[bytes, list[bytes]]:
    """The URL's query parameters only: twisted.web's `request.args` also holds the fields of a form body."""
    _, _, query = request.uri.partition(b"?")
    return parse_qs(query, keep_blank_values=True)


def _peer_of(request) -> str:
    address = request.getClientAddress()
    host = getattr(address, "host", None)
    if host is None:
        return "unix"
    return f"{'tcp6' if ':' in host else 'tcp4'}:{host}:{getattr(address, 'port', 0)}"


def _headers(request) -> dict:
    forwarded = request.requestHeaders.getRawHeaders(b"x-forwarded-for")
    return {"x-forwarded-for": ", ".join(value.decode("latin-1") for value in forwarded)} if forwarded else {}


def bridges_of(context: RouterContext, listener: ListenerRuntime) -> dict[str, Bridge]:
    config: ListenerConfig = listener.config
    return {name: Bridge(context, listener, bridge) for name, bridge in config.bridges.items()}
