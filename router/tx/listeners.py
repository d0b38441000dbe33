"""Listener config -> a listening factory: WebSocket, RawSocket or both on one port, optionally TLS and static files."""

from __future__ import annotations

from autobahn.twisted.resource import WebSocketResource
from twisted.internet.protocol import Factory
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.web import pages, resource, server, static

from router.tx.rawsocket import RawSocketFactory
from router.tx.runtime import ListenerRuntime, RouterContext
from router.tx.tls import context_factory
from router.tx.unisocket import UniSocketFactory
from router.tx.websocket import WebSocketFactory
from router.tx.wire import Codecs


def listener_factory(context: RouterContext, listener: ListenerRuntime, codecs: Codecs) -> Factory:
    """The factory to listen with; raises TlsSetupError when the certificate files cannot be used."""
    config = listener.config
    web = None
    if "websocket" in config.transports:
        websocket = WebSocketFactory(context, listener, codecs)
        web = _site(websocket, config) if config.websocket.static_dir is not None else websocket
    rawsocket = RawSocketFactory(context, listener, codecs) if "rawsocket" in config.transports else None
    if web is not None and rawsocket is not None:
        factory = UniSocketFactory(
            rawsocket, web, clock=context.clock, first_byte_timeout=context.limits.hello_timeout
        )
    else:
        factory = web or rawsocket
    if config.tls is not None:
        factory = TLSMemoryBIOFactory(context_factory(config.tls), False, factory)
    return factory


class _Request(server.Request):
    """twisted.web's request with our Server header (or none) instead of Twisted's version string."""

    server_header = b""

    def setHeader(self, name, value):
        if name.lower() in (b"server", "server"):
            if not self.server_header:
                return
            value = self.server_header
        super().setHeader(name, value)


class _StaticFiles(static.File):
    """Files of one directory tree; directories without an index are refused, never listed."""

    def directoryListing(self):
        return pages.forbidden("Forbidden", "Directory listings are off.")


def _site(websocket: WebSocketFactory, config) -> server.Site:
    """Static files from the configured directory, with the WAMP WebSocket at its path (same origin)."""
    root = _StaticFiles(str(config.websocket.static_dir))
    segments = [s.encode() for s in config.websocket.path.strip("/").split("/")]
    parent = root
    for segment in segments[:-1]:
        child = resource.Resource()
        parent.putChild(segment, child)
        parent = child
    parent.putChild(segments[-1], WebSocketResource(websocket))
    request_class = type("Request", (_Request,), {"server_header": config.websocket.server_header.encode()})
    # twisted.web's idle timeout (12 hours by default) bounds a half-sent request: use the handshake's own bound
    site = server.Site(root, logPath=None, timeout=config.websocket.open_handshake_timeout)
    site.requestFactory = request_class
    site.displayTracebacks = False
    site.noisy = False
    return site
