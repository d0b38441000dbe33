"""Listener config -> a listening factory: WebSocket, RawSocket or both on one port, optionally TLS and static files."""

from __future__ import annotations

from types import MappingProxyType

from twisted.internet.protocol import Factory
from twisted.web.resource import Resource
from twisted.protocols.tls import TLSMemoryBIOFactory

from wampgate.configpaths import PathConfig
from wampgate.tx.bridge_http import BridgeEndpoint, bridges_of
from wampgate.tx.longpoll import LongPollResource
from wampgate.tx.rawsocket import RawSocketFactory
from wampgate.tx.runtime import ListenerRuntime, RouterContext
from wampgate.tx.tls import ServerTls
from wampgate.tx.unisocket import UniSocketFactory
from wampgate.tx.websocket import WebSocketFactory
from wampgate.tx.website import site
from wampgate.tx.wire import Codecs


def listener_factory(context: RouterContext, listener: ListenerRuntime, codecs: Codecs) -> Factory:
    """The factory to listen with; raises TlsSetupError when the certificate files cannot be used."""
    config = listener.config
    web = None
    if "websocket" in config.transports:
        websocket = WebSocketFactory(context, listener, codecs)
        endpoints = bridge_endpoints(context, listener)
        longpoll = LongPollResource(context, listener, codecs) if config.websocket.longpoll_path else None
        if longpoll is not None:
            endpoints[config.websocket.longpoll_path] = longpoll
        needs_site = config.websocket.static_dir is not None or endpoints
        web = site(websocket, config, endpoints) if needs_site else websocket
        if longpoll is not None:
            web.longpoll = longpoll  # its open transports, for introspection
    rawsocket = RawSocketFactory(context, listener, codecs) if "rawsocket" in config.transports else None
    if web is not None and rawsocket is not None:
        factory = UniSocketFactory(
            rawsocket, web, clock=context.clock, first_byte_timeout=context.limits.hello_timeout
        )
    else:
        factory = web or rawsocket
    if config.tls is not None:
        listener.tls = ServerTls(config.name, config.tls, clock=context.clock)
        factory = TLSMemoryBIOFactory(listener.tls, False, factory)
    return factory


def bridge_endpoints(context: RouterContext, listener: ListenerRuntime) -> dict[str, Resource]:
    """The resources of the listener's paths other than the WebSocket, by path, built by ENDPOINTS[kind]."""
    listener.bridges = bridges_of(context, listener)
    return {entry.path: ENDPOINTS[entry.kind](context, listener, entry) for entry in listener.config.http_endpoints}


def _bridge_endpoint(context: RouterContext, listener: ListenerRuntime, entry: PathConfig) -> Resource:
    return BridgeEndpoint(listener.bridges[entry.options.bridge], entry)


# A path kind (wampgate.configpaths.PATH_KINDS) other than "websocket" -> its resource builder
# (context, listener runtime, PathConfig) -> a leaf twisted.web resource, served at the entry's exact path. A resource
# that takes request bodies says how large in its `max_body_size` attribute (bytes): the listener's channel refuses
# a body anywhere else, and a larger one (413) before reading it. One with `serves_subtree = True` also gets every
# path below its own (it reads the rest from `request.path`); exact paths of other entries take precedence.
ENDPOINTS = MappingProxyType({
    "publish": _bridge_endpoint,
    "call": _bridge_endpoint,
    "webhook": _bridge_endpoint,
})
