"""A real redis-server for the tests, on a free loopback port, in a temporary directory, never persisting anything.

Started by PID and stopped by PID (SIGTERM, then SIGKILL), every wait bounded. `pause()` / `resume()` (SIGSTOP /
SIGCONT) make a hung server whose TCP connections stay open; `restart()` brings a fresh, empty server back on the
same port. The calls block (briefly, bounded): they run between a test's awaits.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from tests.support.wait import free_port

START_TIMEOUT = 10.0  # seconds until the server answers PING
STOP_TIMEOUT = 5.0  # seconds after SIGTERM (then SIGKILL), and again after SIGKILL
PORT_ATTEMPTS = 3  # a free port may be taken between finding it and redis binding it


def find_redis_server() -> str | None:
    return shutil.which("redis-server")


def ping(port: int, password: str | None = None, timeout: float = 0.5) -> bool:
    """True when a server on 127.0.0.1:`port` answers PING (with AUTH first when `password` is given); a server that
    only refuses for want of a password counts as answering."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            command = b"PING\r\n" if password is None else b"AUTH %b\r\nPING\r\n" % password.encode()
            s.sendall(command)
            reply = s.recv(256)
    except OSError:
        return False
    return reply.startswith((b"+PONG", b"+OK", b"-NOAUTH"))


class RedisServer:
    """One redis-server process. `extra_args` are appended to the command line, such as
    `("--requirepass", "secret")` or `("--client-output-buffer-limit", "pubsub 1mb 256kb 5")`."""

    def __init__(self, directory: Path, *extra_args: str, executable: str | None = None):
        self.executable = executable or find_redis_server()
        if self.executable is None:
            raise RuntimeError("redis-server is not installed")
        self.directory = Path(directory)
        self.extra_args = tuple(extra_args)
        self.port: int | None = None
        self._process: subprocess.Popen | None = None
        self._log = self.directory / "redis.log"
        self._paused = False

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}"

    def start(self) -> RedisServer:
        """Start on a free port (retrying with another if it was taken meanwhile) and wait until PING answers."""
        for _ in range(PORT_ATTEMPTS):
            problem = self._start_on(free_port())
            if not problem:
                return self
            if "Address already in use" not in problem:
                break
        raise RuntimeError(f"redis-server did not start: {problem}")

    def restart(self) -> RedisServer:
        """Stop (SIGTERM) and start again on the same port: an empty server, as after a crash without persistence."""
        port = self.port
        self.stop()
        problem = self._start_on(port)
        if problem:
            raise RuntimeError(f"redis-server did not start again on port {port}: {problem}")
        return self

    def pause(self) -> None:
        """SIGSTOP: the server hangs with every connection open."""
        os.kill(self.pid, signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)
        self._paused = False

    def stop(self) -> None:
        """SIGTERM and wait; SIGKILL if it does not end within STOP_TIMEOUT. Safe to call twice."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        if self._paused:
            os.kill(process.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
            self._paused = False
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT)

    def log_tail(self, size: int = 2000) -> str:
        try:
            return self._log.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def _command(self, port: int) -> list[str]:
        return [self.executable, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--daemonize", "no", "--dir", str(self.directory), "--logfile", str(self._log), *self.extra_args]

    def _start_on(self, port: int) -> str:
        """Start on `port`; "" once it answers PING, else what went wrong (the process is then stopped)."""
        self.port = port
        self._log.unlink(missing_ok=True)  # the tail in a message is this start's
        self._process = subprocess.Popen(self._command(port), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                return f"it exited with code {code}: {self.log_tail()}"
            if ping(port):
                return ""
            time.sleep(0.02)
        self.stop()
        return f"no answer to PING on port {port} within {START_TIMEOUT:g} s: {self.log_tail()}"
