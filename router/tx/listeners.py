"""Listener config -> a listening factory: WebSocket, RawSocket or both on one port, optionally TLS and static files."""

from __future__ import annotations

from twisted.internet.protocol import Factory
from twisted.protocols.tls import TLSMemoryBIOFactory

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
        longpoll = LongPollResource(context, listener, codecs) if config.websocket.longpoll_path else None
        web = site(websocket, config, longpoll) if config.websocket.static_dir is not None or longpoll else websocket
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
