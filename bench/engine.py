"""A minimal epoll loop and a non-blocking WAMP client on it, for the load generator's worker processes.

Why not asyncio: its transports and SSL protocol cost several microseconds per socket read in Python, which at
tens of thousands of events per second would make the load generator, not the router, the bottleneck. Here a read
is one `recv` (a C call that also decrypts for TLS) and a loop over frame headers.
"""

from __future__ import annotations

import errno
import heapq
import itertools
import select
import socket
import ssl
import struct
import time
from dataclasses import dataclass

from bench import wamp

READ = select.EPOLLIN
WRITE = select.EPOLLOUT
RECV_SIZE = 256 * 1024
LINGER_RESET = struct.pack("ii", 1, 0)  # close with RST: no TIME_WAIT piling up over tens of thousands of runs


@dataclass(frozen=True)
class Target:
    """Where and how a client connects."""

    host: str
    port: int
    transport: str = "websocket"  # or "rawsocket"
    serializer: str = "msgpack"
    tls: bool = False
    cafile: str | None = None  # the self-signed certificate the run generated
    path: str = "/ws"
    realm: str = "realm1"
    quickack: bool = False  # diagnostic: ACK every read at once (takes the server's Nagle + our delayed ACK out)
    rcvbuf: int = 0  # abuse scenarios: a small receive buffer (set before connecting) for a client that stops reading
    progressive: bool = False  # announce progressive_call_results as caller and callee (the result flood needs it)


class Loop:
    """Level-triggered epoll with one-shot timers."""

    def __init__(self):
        self.epoll = select.epoll()
        self.handlers: dict[int, object] = {}
        self._timers: list = []
        self._sequence = itertools.count()

    def add(self, fd: int, handler, mask: int = READ) -> None:
        self.handlers[fd] = handler
        self.epoll.register(fd, mask)

    def modify(self, fd: int, mask: int) -> None:
        self.epoll.modify(fd, mask)

    def remove(self, fd: int) -> None:
        if self.handlers.pop(fd, None) is not None:
            try:
                self.epoll.unregister(fd)
            except (OSError, ValueError):
                pass

    def call_at(self, when: float, fn) -> list:
        """Run fn() at time.monotonic() >= when; returns a handle whose [2] = None cancels it."""
        entry = [when, next(self._sequence), fn]
        heapq.heappush(self._timers, entry)
        return entry

    def run(self, done, deadline: float) -> bool:
        """Dispatch events until done() is true (returns True) or time.monotonic() passes deadline (False)."""
        handlers, poll, timers = self.handlers, self.epoll.poll, self._timers
        while not done():
            now = time.monotonic()
            if now >= deadline:
                return False
            timeout = deadline - now
            if timers:
                timeout = max(0.0, min(timeout, timers[0][0] - now))
            for fd, events in poll(timeout, 4096):
                handler = handlers.get(fd)
                if handler is not None:
                    handler.on_event(events)
            if timers:
                now = time.monotonic()
                while timers and timers[0][0] <= now:
                    _, _, fn = heapq.heappop(timers)
                    if fn is not None:
                        fn()
        return True


class Pipe:
    """A multiprocessing Connection watched by the loop; every object it receives goes to on_object."""

    def __init__(self, loop: Loop, connection, on_object):
        self.connection = connection
        self._on_object = on_object
        loop.add(connection.fileno(), self)

    def on_event(self, events: int) -> None:
        connection = self.connection
        try:
            while connection.poll():
                self._on_object(connection.recv())
        except EOFError:
            self._on_object(("eof",))


CONNECTING, TLS_HANDSHAKE, UPGRADING, HELLO_SENT, JOINED, CLOSED = range(6)


class Client:
    """One WAMP session over one connection: TCP connect, TLS, WebSocket or RawSocket handshake, HELLO/WELCOME.

    on_join(client) is called once the session is established; after that on_payload(client, payload) for every
    message (raw bytes: a subscriber can count EVENTs without decoding them); on_closed(client, reason) once.
    """

    __slots__ = ("loop", "target", "serializer", "sock", "fd", "state", "inbuf", "outbuf", "session_id",
                 "on_join", "on_payload", "on_closed", "_parse", "_frame", "_opcode", "_ssl_context",
                 "_accept", "_mask", "started", "joined_at", "user", "on_drained")

    def __init__(self, loop: Loop, target: Target, on_join, on_payload, on_closed, ssl_context=None):
        self.loop = loop
        self.target = target
        self.serializer = wamp.SERIALIZERS[target.serializer]
        self.on_join = on_join
        self.on_payload = on_payload
        self.on_closed = on_closed
        self._ssl_context = ssl_context
        self.state = CONNECTING
        self.inbuf = b""
        self.outbuf = bytearray()
        self.session_id = None
        self.user = None  # the role's per-session state
        self.on_drained = None  # called with the client when the socket has taken everything written so far
        self._accept = b""
        self._mask = 0
        if target.transport == "websocket":
            self._parse = wamp.ws_parse
            self._opcode = 0x2 if self.serializer.binary else 0x1
            self._frame = self._ws_frame
        else:
            self._parse = wamp.rawsocket_parse
            self._frame = wamp.rawsocket_frame
        self.started = time.monotonic()
        self.joined_at = None
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if target.rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, target.rcvbuf)
        self.sock = sock
        self.fd = sock.fileno()
        code = sock.connect_ex((target.host, target.port))
        if code not in (0, errno.EINPROGRESS):
            raise OSError(code, f"connect to {target.host}:{target.port}: {errno.errorcode.get(code, code)}")
        loop.add(self.fd, self, WRITE)

    # -- sending ------------------------------------------------------------------------------------------------

    def _ws_frame(self, payload: bytes) -> bytes:
        return wamp.ws_client_frame(payload, self._opcode)

    def encode(self, msg: list) -> bytes:
        """The frame of one message, ready for `write` (a flooder builds its frames once and sends them often)."""
        return self._frame(self.serializer.dumps(msg))

    def send(self, msg: list) -> None:
        self.write(self._frame(self.serializer.dumps(msg)))

    def send_many(self, msgs) -> None:
        frame, dumps = self._frame, self.serializer.dumps
        self.write(b"".join([frame(dumps(m)) for m in msgs]))

    def write(self, data: bytes) -> None:
        if self.state == CLOSED:
            return
        if self.outbuf:
            self.outbuf += data
            return
        try:
            sent = self.sock.send(data)
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            sent = 0
        except OSError as e:
            self.close(f"send failed: {e}")
            return
        if sent < len(data):
            self.outbuf += data[sent:]
            self.loop.modify(self.fd, READ | WRITE)

    def _flush(self) -> None:
        try:
            sent = self.sock.send(self.outbuf)
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return
        except OSError as e:
            self.close(f"send failed: {e}")
            return
        del self.outbuf[:sent]
        if not self.outbuf:
            self.loop.modify(self.fd, READ)
            if self.on_drained is not None:
                self.on_drained(self)

    # -- events -------------------------------------------------------------------------------------------------

    def on_event(self, events: int) -> None:
        state = self.state
        if state >= HELLO_SENT:
            if events & WRITE and self.outbuf:
                self._flush()
            if events & (READ | select.EPOLLHUP | select.EPOLLERR) and self.state != CLOSED:
                self._read()
        elif state == CONNECTING:
            self._connected()
        elif state == TLS_HANDSHAKE:
            self._tls_step()
        elif state == UPGRADING:
            if events & WRITE and self.outbuf:
                self._flush()
            if events & (READ | select.EPOLLHUP | select.EPOLLERR):
                self._read_upgrade()

    def _connected(self) -> None:
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self.close(f"connect failed: {errno.errorcode.get(code, code)}")
            return
        if self.target.tls:
            self.loop.remove(self.fd)
            self.sock = self._ssl_context.wrap_socket(self.sock, server_hostname=self.target.host,
                                                      do_handshake_on_connect=False)
            self.fd = self.sock.fileno()
            self.loop.add(self.fd, self, READ | WRITE)
            self.state = TLS_HANDSHAKE
            self._tls_step()
        else:
            self._start_transport()

    def _tls_step(self) -> None:
        try:
            self.sock.do_handshake()
        except ssl.SSLWantReadError:
            self.loop.modify(self.fd, READ)
            return
        except ssl.SSLWantWriteError:
            self.loop.modify(self.fd, WRITE)
            return
        except (OSError, ssl.SSLError) as e:
            self.close(f"TLS handshake failed: {e}")
            return
        self._start_transport()

    def _start_transport(self) -> None:
        self.state = UPGRADING
        self.loop.modify(self.fd, READ)
        target = self.target
        if target.transport == "websocket":
            request, self._accept = wamp.ws_upgrade_request(target.host, target.port, target.path,
                                                            self.serializer.subprotocol)
            self.write(request)
        else:
            self.write(wamp.rawsocket_handshake(self.serializer))

    def _recv(self) -> bytes | None:
        """Whatever is readable now (b"" when nothing), or None when the connection is gone."""
        sock = self.sock
        try:
            data = sock.recv(RECV_SIZE)
            if self.target.tls:
                while sock.pending():
                    data += sock.recv(RECV_SIZE)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return b""
        except OSError as e:
            self.close(f"receive failed: {e}")
            return None
        if not data:
            self.close("connection closed by the router")
            return None
        if self.target.quickack:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        return data

    def _read_upgrade(self) -> None:
        data = self._recv()
        if not data:
            return
        buf = self.inbuf + data
        if self.target.transport == "websocket":
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.inbuf = buf
                return
            head = buf[:end].decode("latin-1")
            if not head.startswith("HTTP/1.1 101") or self._accept.decode() not in head:
                self.close(f"WebSocket upgrade refused: {head.splitlines()[0] if head else head!r}")
                return
            rest = buf[end + 4:]
        else:
            if len(buf) < 4:
                self.inbuf = buf
                return
            if buf[0] != 0x7F or buf[1] & 0x0F != self.serializer.rawsocket_id:
                self.close(f"RawSocket handshake refused: {buf[:4].hex()}")
                return
            rest = buf[4:]
        self.inbuf = b""
        self.state = HELLO_SENT
        roles = wamp.PROGRESSIVE_ROLES if self.target.progressive else wamp.CLIENT_ROLES
        self.send(wamp.hello(self.target.realm, roles))
        if rest:
            self._consume(rest)

    def _read(self) -> None:
        data = self._recv()
        if data:
            self._consume(self.inbuf + data if self.inbuf else data)

    def _consume(self, buf: bytes) -> None:
        try:
            used = self._parse(buf, self._message, self._control)
        except wamp.FrameError as e:
            self.close(str(e))
            return
        self.inbuf = buf[used:] if used < len(buf) else b""

    def _message(self, payload: bytes) -> None:
        if self.state == JOINED:
            self.on_payload(self, payload)
            return
        if self.state != HELLO_SENT:
            return
        msg = self.serializer.loads(payload)
        if msg[0] == wamp.WELCOME:
            self.state = JOINED
            self.session_id = msg[1]
            self.joined_at = time.monotonic()
            self.on_join(self)
        else:
            self.close(f"no WELCOME: {msg!r}"[:300])

    def _control(self, opcode: int, payload: bytes) -> None:
        if self.target.transport == "websocket":
            if opcode == 0x9:  # PING -> PONG
                self.write(wamp.ws_client_frame(payload, 0xA))
            elif opcode == 0x8:
                self.close("WebSocket close from the router")
        elif opcode == 1:  # RawSocket PING -> PONG
            self.write(wamp.rawsocket_frame(payload, 2))

    def close(self, reason: str = "closed by the client") -> None:
        """Close with RST and report once."""
        if self.state == CLOSED:
            return
        was_joined = self.state == JOINED
        self.state = CLOSED
        self.loop.remove(self.fd)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER_RESET)
        except OSError:
            pass
        self.sock.close()
        if self.on_closed is not None:
            self.on_closed(self, reason, was_joined)


def client_ssl_context(cafile: str | None) -> ssl.SSLContext | None:
    if cafile is None:
        return None
    context = ssl.create_default_context(cafile=cafile)
    return context
