"""The abuse scenario's attackers below WAMP (bench/abuse.py, bench/attackers.py): raw sockets that never read.

- `ping_flood`: one RawSocket connection that completes the handshake, sends no HELLO, then PINGs of `ping_size`
  bytes, and never reads: every PONG the router owes it has to be held somewhere;
- `fragment_flood`: `connections` WebSocket connections, each sending one message as `fragments` frames of one byte;
  a connection the router closes, or one that got its message through, is replaced by a new one.

Each attacks as fast as the router lets it, within the spec's `seconds` and `limit_bytes`, and talks to the
orchestrator as bench/attackers.py describes.
"""

from __future__ import annotations

import errno
import json
import select
import socket
import time

from bench import wamp
from bench.engine import LINGER_RESET, READ, WRITE
from bench.workers import Role

# What a connection that never reads still watches: the router closing it (EPOLLHUP and EPOLLERR always come).
DEAF = select.EPOLLRDHUP
GONE = select.EPOLLRDHUP | select.EPOLLHUP | select.EPOLLERR
SMALL_RCVBUF = 4096  # the kernel makes it at least a few KiB: the router's writes back up almost at once
MAX_FRAGMENT_CONNECTIONS = 100_000  # connections one fragment flood may open in all


def raw_socket(host: str, port: int, rcvbuf: int = 0) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    code = sock.connect_ex((host, port))
    if code not in (0, errno.EINPROGRESS):
        sock.close()
        raise OSError(code, f"connect to {host}:{port}: {errno.errorcode.get(code, code)}")
    return sock


def reset(sock: socket.socket) -> None:
    """Close with RST: nothing is left for the router to send or for the kernel to keep in TIME_WAIT."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
    except OSError:
        pass
    sock.close()


class Attack(Role):
    """What the raw-socket attacks share: ready / go / flooded / stop, the deadline and the byte limit."""

    def run(self) -> None:
        self.sent = 0
        self.limit = self.spec["limit_bytes"]
        self.done = False
        self.seconds = 0.0
        self.control.send(("ready", {}))
        if self.command()[0] != "go":
            self.report(**self.figures())
            return
        self.started = time.monotonic()
        self.deadline = self.started + self.spec["seconds"]
        self.start()
        self.loop.call_at(self.deadline, self.finish)
        self.loop.run(lambda: self.done or self.commands, self.deadline + 5.0)
        self.finish()
        self.control.send(("flooded", self.figures()))
        while self.command()[0] not in ("stop", "eof", "timeout"):
            pass
        self.close()
        self.report(**self.figures())

    def exhausted(self) -> bool:
        return self.done or self.sent >= self.limit or time.monotonic() >= self.deadline

    def finish(self) -> None:
        """Stop sending; the connections stay open (deaf) until ("stop",)."""
        if not self.done:
            self.done = True
            self.seconds = time.monotonic() - self.started
            self.quiet()

    def start(self) -> None:
        raise NotImplementedError

    def quiet(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def figures(self) -> dict:
        return {"sent_bytes": self.sent, "seconds": round(self.seconds, 3)}


class PingFlood(Attack):
    """One RawSocket connection, no HELLO: PINGs as fast as the router reads them; nothing is ever read."""

    def start(self) -> None:
        size = self.spec["ping_size"]
        ping = bytes((1,)) + size.to_bytes(3, "big") + bytes(size)  # frame type 1: PING
        self.ping_bytes = len(ping)
        self.stream = memoryview(ping * 4)
        self.position = 0
        self.head = memoryview(wamp.rawsocket_handshake(wamp.SERIALIZERS["msgpack"]))
        self.closed_by_router = False
        self.sock = raw_socket(self.target.host, self.target.port, SMALL_RCVBUF)
        self.fd = self.sock.fileno()
        self.loop.add(self.fd, self, WRITE | DEAF)

    def on_event(self, events: int) -> None:
        if events & GONE:
            self.gone()
            return
        try:
            while not self.exhausted():
                if self.head:
                    sent = self.sock.send(self.head)
                    self.head = self.head[sent:]
                else:
                    sent = self.sock.send(self.stream[self.position:])
                    self.position = (self.position + sent) % len(self.stream)
                self.sent += sent
        except BlockingIOError:
            return
        except OSError:
            self.gone()
            return
        self.finish()

    def gone(self) -> None:
        self.closed_by_router = True
        self.loop.remove(self.fd)
        self.finish()

    def quiet(self) -> None:
        if not self.closed_by_router:
            self.loop.modify(self.fd, DEAF)

    def close(self) -> None:
        self.loop.remove(self.fd)
        reset(self.sock)

    def figures(self) -> dict:
        pings = max(0, (self.sent - 4)) // getattr(self, "ping_bytes", 1)
        return {**super().figures(), "pings": pings, "closed_by_router": int(getattr(self, "closed_by_router", 0))}


class FragmentFlood(Attack):
    """`connections` WebSocket connections at a time, each sending one message as `fragments` one-byte frames (the
    last carries a HELLO, so a router without a fragment limit gets a valid message after all of them)."""

    def start(self) -> None:
        count = max(2, self.spec["fragments"])
        key = bytes(4)  # a zero mask key: the router cannot tell, and the frames are built once
        first = bytes((0x01, 0x81)) + key + b" "  # text, not final, masked, 1 byte
        middle = bytes((0x00, 0x81)) + key + b" "  # continuation, not final
        hello = json.dumps(wamp.hello(self.target.realm), separators=(",", ":")).encode()
        self.message = first + middle * (count - 2) + wamp.ws_client_frame(hello, 0x0)  # final continuation
        self.opened = self.closed_by_router = self.completed = self.refused = 0
        self.live: set[FragmentSender] = set()
        for _ in range(self.spec["connections"]):
            self.open_one()

    def open_one(self) -> None:
        if self.done or self.opened >= MAX_FRAGMENT_CONNECTIONS or self.exhausted():
            return
        self.opened += 1
        try:
            self.live.add(FragmentSender(self))
        except OSError as e:
            self.error(f"connect: {e}")

    def ended(self, sender: FragmentSender) -> None:
        self.live.discard(sender)
        self.open_one()

    def quiet(self) -> None:
        for sender in self.live:
            sender.quiet()

    def close(self) -> None:
        for sender in list(self.live):
            sender.end()

    def figures(self) -> dict:
        return {**super().figures(), "connections": getattr(self, "opened", 0),
                "closed_by_router": getattr(self, "closed_by_router", 0),
                "messages_completed": getattr(self, "completed", 0), "refused": getattr(self, "refused", 0)}


UPGRADE_SENDING, UPGRADE_READING, FRAGMENTS_SENDING, AWAITING_VERDICT, ENDED = range(5)


class FragmentSender:
    """One connection of a fragment flood: the upgrade request, the 101, then the fragments."""

    def __init__(self, attack: FragmentFlood):
        self.attack = attack
        target = attack.target
        self.sock = raw_socket(target.host, target.port)
        self.fd = self.sock.fileno()
        request, _ = wamp.ws_upgrade_request(target.host, target.port, target.path, "wamp.2.json")
        self.out = memoryview(request)
        self.head = b""
        self.state = UPGRADE_SENDING
        attack.loop.add(self.fd, self, WRITE | DEAF)

    def on_event(self, events: int) -> None:
        if self.state == UPGRADE_READING and events & READ:
            self._read_head()
        elif self.state == AWAITING_VERDICT and events & (READ | GONE):
            self._read_verdict()
        elif events & GONE:
            self._closed_by_router()
        elif events & WRITE:
            self._send()

    def _send(self) -> None:
        attack = self.attack
        try:
            while self.out and not (self.state == FRAGMENTS_SENDING and attack.exhausted()):
                sent = self.sock.send(self.out)
                self.out = self.out[sent:]
                if self.state == FRAGMENTS_SENDING:
                    attack.sent += sent
        except BlockingIOError:
            return
        except OSError:
            self._closed_by_router()
            return
        if self.out:
            attack.finish()
        elif self.state == UPGRADE_SENDING:
            self.state = UPGRADE_READING
            attack.loop.modify(self.fd, READ | DEAF)
        else:  # every fragment is in the socket: wait for what the router makes of them
            self.state = AWAITING_VERDICT
            attack.loop.modify(self.fd, READ | DEAF)

    def _read_verdict(self) -> None:
        """A WebSocket close frame (0x88) or the connection's end: the router refused the message. A data frame
        (WELCOME): it took the message whole, and this connection starts again."""
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data or data[0] == 0x88:
            self._closed_by_router()
        else:
            self.attack.completed += 1
            self.end()

    def _read_head(self) -> None:
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._closed_by_router()
            return
        self.head += data
        if b"\r\n\r\n" not in self.head:
            return
        if not self.head.startswith(b"HTTP/1.1 101"):
            status = self.head.split(b"\r\n", 1)[0].decode("latin-1")
            self.attack.refused += 1
            self.attack.error(f"upgrade refused: {status}")
            self.end()
            return
        self.state = FRAGMENTS_SENDING
        self.out = memoryview(self.attack.message)
        self.attack.loop.modify(self.fd, WRITE | DEAF)

    def _closed_by_router(self) -> None:
        self.attack.closed_by_router += 1
        self.end()

    def quiet(self) -> None:
        if self.state != AWAITING_VERDICT:
            self.attack.loop.modify(self.fd, DEAF)

    def end(self) -> None:
        if self.state == ENDED:
            return
        self.state = ENDED
        self.attack.loop.remove(self.fd)
        reset(self.sock)
        self.attack.ended(self)
