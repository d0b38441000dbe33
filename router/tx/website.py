"""Static files next to the WAMP WebSocket on one port (twisted.web), serving nothing but the regular files inside
the configured directory, and handing only a clean upgrade request (no body, nothing sent after it) to the
WebSocket."""

from __future__ import annotations

import os

from autobahn.twisted.resource import WebSocketResource
from twisted.web import http, pages, resource, server, static

NOSNIFF = (b"X-Content-Type-Options", b"nosniff")
BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n%s: %s\r\n\r\n" % NOSNIFF
LENGTH_REQUIRED = b"HTTP/1.1 411 Length Required\r\nContent-Length: 0\r\nConnection: close\r\n%s: %s\r\n\r\n" % NOSNIFF
TOO_LARGE_BODY = b'{"error": "payload_too_large", "message": "the body is larger than %d bytes"}'
TOO_LARGE = (b"HTTP/1.1 413 Content Too Large\r\nContent-Type: application/json\r\nContent-Length: %%d\r\n"
             b"Connection: close\r\nCache-Control: no-store\r\n%s: %s\r\n\r\n" % NOSNIFF + TOO_LARGE_BODY)


def site(websocket, config, longpoll=None) -> server.Site:
    """Static files from the configured directory (when there is one), with the WAMP WebSocket at its path (same
    origin) and the long-poll transport (router/tx/longpoll.py) at its own, when it is on."""
    ws = config.websocket
    root = StaticFiles(str(ws.static_dir), root=str(ws.static_dir)) if ws.static_dir is not None else NotFound()
    _mount(root, ws.path, UpgradeOnly(websocket))
    if longpoll is not None:
        _mount(root, ws.longpoll_path, longpoll)
    # twisted.web's idle timeout (12 hours by default) bounds a half-sent request: use the handshake's own bound
    web = server.Site(root, logPath=None, timeout=ws.open_handshake_timeout)
    web.longpoll = longpoll  # BodilessChannel lets long-poll requests carry bounded bodies
    web.protocol = BodilessChannel
    web.requestFactory = type("Request", (Request,), {"server_header": ws.server_header.encode()})
    web.displayTracebacks = False
    web.noisy = False
    return web


def _mount(root: resource.Resource, path: str, leaf: resource.Resource) -> None:
    """Put `leaf` at the absolute URL `path`, adding (or reusing) a plain resource for each segment above it."""
    segments = [s.encode() for s in path.strip("/").split("/")]
    parent = root
    for segment in segments[:-1]:
        child = parent.children.get(segment)
        if child is None:
            child = resource.Resource()
            parent.putChild(segment, child)
        parent = child
    parent.putChild(segments[-1], leaf)


class NotFound(resource.Resource):
    """The root of a listener without static files: every path but the WAMP ones is 404."""

    def getChild(self, path, request):
        return pages.notFound("Not Found", "No such resource.")

    def render(self, request):
        return pages.notFound("Not Found", "No such resource.").render(request)


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
    """HTTP/1.1 that refuses any request with a body (HTTP 400, then close). Static files and the WebSocket upgrade
    are GETs: twisted.web would otherwise spool a body of any size to a temporary file, and on an upgrade pass it to
    the WebSocket frame parser as if the client had sent frames. Only long-poll requests carry a body: with a
    Content-Length within their bound (else 413; chunked: 411)."""

    _refused = False

    def allHeadersReceived(self):
        if self.length != 0:  # a Content-Length above 0, or None: chunked
            longpoll = getattr(self.site, "longpoll", None)
            limit = longpoll.body_limit(self._path) if longpoll is not None else None
            if limit is None:
                return self._refuse(BAD_REQUEST)
            if self.length is None:
                return self._refuse(LENGTH_REQUIRED)
            if self.length > limit:
                return self._refuse(TOO_LARGE % (len(TOO_LARGE_BODY % limit), limit))
        super().allHeadersReceived()

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
