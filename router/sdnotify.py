"""systemd's readiness protocol (sd_notify): one datagram per state change to the socket named by NOTIFY_SOCKET.

With `Type=notify` systemd considers the router started only once it says READY=1 (its ports are open by then), and
tracks a reload between RELOADING=1 and the next READY=1. A plain AF_UNIX datagram socket is all the protocol
needs, so no library is used. Without NOTIFY_SOCKET (not run by systemd) every call does nothing.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Mapping

from twisted.logger import Logger


class SystemdNotifier:
    log = Logger()

    def __init__(self, address: str | None):
        """`address`: NOTIFY_SOCKET's value, a filesystem path or "@name" for Linux's abstract namespace; None
        turns notification off."""
        self._address = _socket_address(address) if address else None
        if address and self._address is None:
            self.log.warn("NOTIFY_SOCKET={address!r} is neither a socket path nor an @abstract name; systemd will "
                          "not hear that the router is ready", address=address)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str]) -> SystemdNotifier:
        return cls(environ.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        return self._address is not None

    def ready(self, status: str) -> None:
        self._send(READY="1", STATUS=status)

    def reloading(self, status: str) -> None:
        """MONOTONIC_USEC lets systemd match this message to the reload it asked for (Type=notify-reload)."""
        self._send(RELOADING="1", MONOTONIC_USEC=str(time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000),
                   STATUS=status)

    def stopping(self, status: str) -> None:
        self._send(STOPPING="1", STATUS=status)

    def _send(self, **fields: str) -> None:
        if self._address is None:
            return
        # One field per line; a newline inside a value would start a bogus field, so it is flattened.
        message = "\n".join(f"{name}={value.replace(chr(10), ' ')}" for name, value in fields.items())
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
                sock.sendto(message.encode("utf-8"), self._address)
        except OSError as e:
            self.log.warn("cannot notify systemd through NOTIFY_SOCKET: {error}", error=str(e))


def _socket_address(value: str) -> str | bytes | None:
    if value.startswith("/"):
        return value
    if value.startswith("@") and len(value) > 1:
        return b"\0" + value[1:].encode("utf-8")
    return None
