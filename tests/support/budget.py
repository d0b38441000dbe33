"""Looking at the router's side of a connection (the channel a listener's connection ended up with, and the bytes
written to it that its socket has not taken yet), and clients that stop reading, for the outgoing-budget tests.

A client "stops reading" by pausing its own transport: the kernel's buffers between router and client fill, the
router's socket stops taking data, and from then on everything the router writes is held in the router.
"""

from __future__ import annotations

from twisted.internet import abstract, tcp


def channels(router, listener_name: str) -> list:
    """The innermost protocol (a WebSocket or RawSocket channel, or one still sniffing) of every open connection of
    the listener, unwrapped from flow control's admission wrapper, TLS and the universal-port sniffer."""
    found = []
    for admitted in list(router.listener(listener_name)._factory.protocols):
        protocol = admitted
        for _ in range(4):
            inner = getattr(protocol, "wrappedProtocol", None) or getattr(protocol, "_inner", None)
            if inner is None:
                break
            protocol = inner
        found.append(protocol)
    return found


def the_channel(router, listener_name: str):
    """The one connection's channel on a listener a test uses for one connection only."""
    [channel] = channels(router, listener_name)
    return channel


def queued_bytes(transport) -> int:
    """Bytes written to a connection that its socket has not taken, in Twisted's buffers along the transport chain
    (a TLS layer's plaintext waiting for its handshake, then the TCP transport's write buffer)."""
    total = 0
    for _ in range(4):
        if transport is None:
            break
        if isinstance(transport, abstract.FileDescriptor):
            total += len(transport.dataBuffer) - transport.offset + transport._tempDataLen
        total += sum(len(chunk) for chunk in getattr(transport, "_appSendBuffer", ()) or ())
        transport = getattr(transport, "transport", None)
    return total


def tcp_of(transport):
    """The TCP transport under a (possibly TLS) client transport."""
    for _ in range(4):
        if isinstance(transport, tcp.Connection):
            return transport
        transport = transport.transport
    raise AssertionError(f"no TCP transport under {transport!r}")


def stop_reading(transport) -> None:
    """The client stops reading from its socket. (Its kernel receive buffer is left alone: shrunk below the
    loopback MSS, the connection would crawl on zero-window probes once the client reads again.)"""
    tcp_of(transport).pauseProducing()


def read_again(transport) -> None:
    tcp_of(transport).resumeProducing()
