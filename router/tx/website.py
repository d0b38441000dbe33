"""Static files next to the WAMP WebSocket on one port (twisted.web), serving nothing but the regular files inside
the configured directory, and handing only a clean upgrade request (no body, nothing sent after it) to the
WebSocket."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from types import MappingProxyType

from autobahn.twisted.resource import WebSocketResource
from twisted.web import http, pages, resource, server, static

NOSNIFF = (b"X-Content-Type-Options", b"nosniff")
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n%s: %s\r\n\r\n" % NOSNIFF


def _json_refusal(status: int, phrase: bytes, error: str, text: str) -> bytes:
    """A whole HTTP response refusing a request before its body is read, in the bridge's JSON error form."""
    body = json.dumps({"error": error, "message": text}).encode()
    return (b"HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n"
            b"%s: %s\r\n\r\n" % (status, phrase, len(body), *NOSNIFF)) + body


def site(websocket, config, endpoints: Mapping[str, resource.Resource] = MappingProxyType({})) -> server.Site:
    """The listener's HTTP side: the WAMP WebSocket at each of its paths, the other `endpoints` (path -> leaf
    resource, built by wampgate.tx.listeners.ENDPOINTS) at theirs, every path matched exactly; an endpoint whose
    `serves_subtree` is true also gets every path below its own (a long-poll transport's `/lp/<id>/send`), and reads
    the rest from `request.path`. Other paths are static files from `static_dir` when set, else HTTP 404."""
    ws = config.websocket
    static = StaticFiles(str(ws.static_dir), root=str(ws.static_dir)) if ws.static_dir is not None else None
    upgrade = UpgradeOnly(websocket)
    served = {path.encode(): upgrade for path in config.websocket_paths}
    served.update({path.encode(): endpoint for path, endpoint in endpoints.items()})
    subtrees = tuple((path.encode() + b"/", endpoint) for path, endpoint in endpoints.items()
                     if getattr(endpoint, "serves_subtree", False))
    root = PathRoot(served, subtrees, static)
    # twisted.web's idle timeout (12 hours by default) bounds a half-sent request: use the handshake's own bound
    web = Site(root, logPath=None, timeout=ws.open_handshake_timeout)
    web.unlogged = frozenset(path.encode() for path in endpoints)
    web.protocol = type("Channel", (BodilessChannel,), {
        "body_limits": {path.encode(): endpoint.max_body_size for path, endpoint in endpoints.items()
                        if getattr(endpoint, "max_body_size", None) is not None},
        "subtree_body_limits": tuple((prefix, _subtree_limit(endpoint)) for prefix, endpoint in subtrees
                                     if _subtree_limit(endpoint) is not None)})
    web.requestFactory = type("Request", (Request,), {"server_header": ws.server_header.encode()})
    web.displayTracebacks = False
    web.noisy = False
    return web


def _subtree_limit(endpoint: resource.Resource):
    """What bounds the bodies below a subtree endpoint: its `body_limit(path)` (a long-poll transport bounds `send`
    by the message size and its other requests tighter), else its one `max_body_size`."""
    return getattr(endpoint, "body_limit", None) or getattr(endpoint, "max_body_size", None)


class Site(server.Site):
    """twisted.web's site, whose access-log line (one per request, through the router's log) is left out for the
    bridge's paths: each of their refusals is logged by the bridge itself, and a line per publication or call would
    cost more than routing it."""

    unlogged: frozenset = frozenset()

    def log(self, request) -> None:
        if request.path not in self.unlogged:
            super().log(request)


class PathRoot(resource.Resource):
    """Dispatches on the whole request path, exactly: a configured path gets its resource (a leaf, so traversal
    stops there), anything else the static files (or 404). A plain GET of a WebSocket path at "/" gets the static
    index when there are static files: one origin may serve both its page and its WebSocket at the root."""

    def __init__(self, served: dict[bytes, resource.Resource], subtrees: tuple, static: resource.Resource | None):
        super().__init__()
        self._served = served
        self._subtrees = subtrees  # (path + "/", resource): also serves the paths below its own
        self._static = static

    def getChildWithDefault(self, segment: bytes, request):
        path = request.path
        served = self._served.get(path)
        if served is not None and not (path == b"/" and self._static is not None and _plain_get(request)):
            return served
        for prefix, subtree in self._subtrees:
            if path.startswith(prefix):
                return subtree
        if self._static is None:
            return NOT_FOUND
        return self._static.getChildWithDefault(segment, request)

    def render(self, request):  # only reached for an empty path, which HTTP/1.1 request lines cannot carry
        return NOT_FOUND.render(request)


def _plain_get(request) -> bool:
    upgrade = request.getHeader(b"upgrade")
    return upgrade is None or upgrade.strip().lower() != b"websocket"


NOT_FOUND = pages.notFound("Not Found", "No such resource.")


class Request(server.Request):
    """twisted.web's request with our Server header (or none) instead of Twisted's version string, and
    `X-Content-Type-Options: nosniff` on every response so a browser never guesses a type we did not send."""

    server_header = b""

    def process(self):
        self.setHeader(*NOSNIFF)
        super().process()

    def setHeader(self, name, value):
        if name.lower() in (b"server", "server"):
            if not self.server_header:
                return
            value = self.server_header
        super().setHeader(name, value)


class BodilessChannel(http.HTTPChannel):
    """HTTP/1.1 that refuses any request with a body (HTTP 400, then close), except on the bridge's paths
    (`body_limits`: path -> bytes), which take a body of a Content-Length within their limit (else 413; chunked:
    411), before any of it is read. Static files and the WebSocket upgrade are GETs: twisted.web would otherwise
    spool a body of any size to a temporary file, and on an upgrade pass it to the WebSocket frame parser as if the
    client had sent frames."""

    _refused = False
    body_limits: Mapping[bytes, int] = MappingProxyType({})
    subtree_body_limits: tuple[tuple[bytes, int], ...] = ()  # (path + "/", bytes) of endpoints serving a subtree

    def allHeadersReceived(self):
        if self.length != 0:  # a Content-Length above 0, or None: chunked
            limit = self._body_limit(self._path.split(b"?", 1)[0]) if self._path else None
            if limit is None:
                self._refuse(BAD_REQUEST)
                return
            if self.length is None:
                self._refuse(_json_refusal(411, b"Length Required", "wampgate.error.length_required",
                                           "a body needs a Content-Length (no chunked encoding)"))
                return
            if self.length > limit:
                self._refuse(_json_refusal(413, b"Content Too Large", "wamp.error.payload_size_exceeded",
                                           f"the body is larger than {limit} bytes"))
                return
        super().allHeadersReceived()

    def _body_limit(self, path: bytes) -> int | None:
        limit = self.body_limits.get(path)
        if limit is None:
            limit = next((size(path) if callable(size) else size for prefix, size in self.subtree_body_limits
                          if path.startswith(prefix)), None)
        return limit

    def _refuse(self, response: bytes) -> None:
        self._refused = True
        self.transport.write(response)
        self.loseConnection()  # not the transport's: over TLS it would wait for this channel, its producer

    def dataReceived(self, data):
        if not self._refused:
            super().dataReceived(data)

    def rawDataReceived(self, data):
        if not self._refused:
            super().rawDataReceived(data)


class UpgradeOnly(WebSocketResource):
    """The WebSocket behind twisted.web. An upgrade request followed by more bytes before the 101 (frames the
    client may not send yet) is refused with HTTP 400: twisted.web would drop them, or hand them on as frames."""

    def render(self, request):
        if request.channel.clearLineBuffer():
            request.setResponseCode(http.BAD_REQUEST)
            request.setHeader(b"Connection", b"close")
            request.channel.persistent = False
            return b""
        return super().render(request)


class StaticFiles(static.File):
    """The files of one directory tree. 404 for any path segment starting with "." (dotfiles, "." and ".."), for
    anything whose real path leaves the tree or passes through a dot-directory (a symlink out), and for anything
    but regular files and directories (a FIFO would block the reactor). Directories without an index are refused,
    never listed. Unknown extensions go out as application/octet-stream, never as HTML. A Range header naming
    several ranges gets the whole file (200): overlapping ranges cannot multiply the response; a single range is
    cut to the file."""

    childNotFound = pages.notFound("Not Found", "No such file.")
    indexNames = ["index.html", "index.htm"]

    def __init__(self, path: str, *, root: str):
        super().__init__(path, defaultType="application/octet-stream")
        self.root = os.path.realpath(root)

    def createSimilarFile(self, path):
        similar = self.__class__(path, root=self.root)
        similar.indexNames = self.indexNames[:]
        return similar

    def directoryListing(self):
        return pages.forbidden("Forbidden", "Directory listings are off.")

    def getChild(self, path, request):
        if path.startswith(b"."):
            return self.childNotFound
        child = super().getChild(path, request)
        if isinstance(child, static.File) and not self.serves(child.path):
            return self.childNotFound
        return child

    def serves(self, path: str) -> bool:
        """True when `path`, with every symlink resolved, is a regular file or a directory inside the root and
        not inside a dot-directory."""
        real = os.path.realpath(path)
        if real != self.root and not real.startswith(self.root + os.sep):
            return False
        inside = os.path.relpath(real, self.root)
        if inside != "." and any(part.startswith(".") for part in inside.split(os.sep)):
            return False
        return os.path.isfile(real) or os.path.isdir(real)

    def makeProducer(self, request, fileForReading):
        byte_range = request.getHeader(b"range")
        if byte_range is not None and b"," in byte_range:
            request.requestHeaders.removeHeader(b"range")
        return super().makeProducer(request, fileForReading)

    def _rangeToOffsetAndSize(self, start, end):
        # twisted.web turns a suffix range longer than the file ("bytes=-999999") into a negative offset (HTTP 500
        # and a traceback in the log): it means the whole file
        if start is None and end is not None:
            end = min(end, self.getFileSize())
        return super()._rangeToOffsetAndSize(start, end)
