"""The ceiling: a bare Autobahn Twisted WebSocket server with no WAMP routing, the best any router on this stack could
do. It answers HELLO with WELCOME and SUBSCRIBE with SUBSCRIBED (decoding only those), and for every PUBLISH it sends
one pre-serialized EVENT to every subscriber of the same URL path, without decoding the PUBLISH:

  /send   through autobahn's normal `sendMessage` (framing and its per-call checks and logging);
  /frame  one pre-built unmasked WebSocket frame written with `transport.write` to every client.

Run: python -m bench.ceiling --port P [--tls-port Q --certificate C --private-key K]; prints a "listening" line.
"""

from __future__ import annotations

import argparse
import sys

import msgpack
from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionDeny
from twisted.internet import endpoints, reactor

from bench import wamp

PATHS = ("/send", "/frame")
SUBSCRIPTION_ID = 7_365_221_909_123
PUBLICATION_ID = 4_418_002_117_555_001


def event_payload(size: int) -> bytes:
    return msgpack.packb([wamp.EVENT, SUBSCRIPTION_ID, PUBLICATION_ID, {}, ["x" * size]])


class CeilingProtocol(WebSocketServerProtocol):
    path = None

    def onConnect(self, request):
        if request.path not in PATHS or "wamp.2.msgpack" not in request.protocols:
            raise ConnectionDeny(ConnectionDeny.NOT_FOUND, "Not Found")
        self.path = request.path
        return "wamp.2.msgpack"

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if payload[1] == wamp.PUBLISH:  # fixarray header, then 16: no decoding on the hot path
            self.factory.fan_out(self.path)
            return
        msg = msgpack.unpackb(payload)
        kind = msg[0]
        if kind == wamp.HELLO:
            self.sendMessage(msgpack.packb([wamp.WELCOME, id(self) & 0xFFFFFFFFFFF, {"roles": {"broker": {}}}]), True)
        elif kind == wamp.SUBSCRIBE:
            self.factory.subscribers[self.path].append(self)
            self.sendMessage(msgpack.packb([wamp.SUBSCRIBED, msg[1], SUBSCRIPTION_ID]), True)
        elif kind == wamp.GOODBYE:
            self.sendMessage(msgpack.packb([wamp.GOODBYE, {}, "wamp.close.normal"]), True)
            self.sendClose()

    def onClose(self, wasClean, code, reason) -> None:
        subscribers = self.factory.subscribers.get(self.path)
        if subscribers is not None and self in subscribers:
            subscribers.remove(self)


class CeilingFactory(WebSocketServerFactory):
    protocol = CeilingProtocol
    noisy = False

    def __init__(self, payload_size: int):
        super().__init__(server=None)
        self.event = event_payload(payload_size)
        self.frame = wamp.ws_server_frame(self.event)
        self.subscribers = {path: [] for path in PATHS}
        # The options Wampgate's WebSocket listener sets, so the receive side does the same work.
        self.setProtocolOptions(
            versions=[13], webStatus=False, utf8validateIncoming=True, maskServerFrames=False,
            requireMaskedClientFrames=True, applyMask=True, maxFramePayloadSize=2**20, maxMessagePayloadSize=2**20,
            autoFragmentSize=0, failByDrop=True, echoCloseCodeReason=False, openHandshakeTimeout=5.0,
            closeHandshakeTimeout=1.0, tcpNoDelay=True, perMessageCompressionAccept=lambda offers: None,
            autoPingInterval=0, autoPingTimeout=0, serveFlashSocketPolicy=False,
        )

    def fan_out(self, path: str) -> None:
        if path == "/send":
            event = self.event
            for subscriber in self.subscribers[path]:
                subscriber.sendMessage(event, True)
        else:
            frame = self.frame
            for subscriber in self.subscribers[path]:
                subscriber.transport.write(frame)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tls-port", type=int)
    parser.add_argument("--certificate")
    parser.add_argument("--private-key")
    parser.add_argument("--payload", type=int, default=64)
    args = parser.parse_args(argv)
    factory = CeilingFactory(args.payload)
    listening = [endpoints.TCP4ServerEndpoint(reactor, args.port, interface="127.0.0.1").listen(factory)]
    if args.tls_port:
        description = (f"ssl:{args.tls_port}:interface=127.0.0.1:privateKey={args.private_key}:"
                       f"certKey={args.certificate}")
        listening.append(endpoints.serverFromString(reactor, description).listen(factory))

    def ready(_) -> None:
        print(f"ceiling listening on ws://127.0.0.1:{args.port}" +
              (f" and wss://127.0.0.1:{args.tls_port}" if args.tls_port else ""), flush=True)

    def failed(failure) -> None:
        print(f"ceiling cannot listen: {failure.getErrorMessage()}", file=sys.stderr, flush=True)
        reactor.stop()

    from twisted.internet import defer

    defer.gatherResults(listening, consumeErrors=True).addCallbacks(ready, failed)
    reactor.run()


if __name__ == "__main__":
    main()
