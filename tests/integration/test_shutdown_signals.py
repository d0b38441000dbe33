"""Signals during a graceful shutdown, against the real `twistd wampgate`: a second SIGTERM while the router is
already shutting down is acknowledged with one info line and changes nothing (no `ReactorNotRunning` traceback),
and the router still ends with status 0."""

from __future__ import annotations

import signal
import time

from tests.integration.test_operations import (
    SIGNAL_TIMEOUT,
    SYSTEM_SHUTDOWN,
    BlockingRawSocket,
    twistd,
    twistd_config,
    wait_for_line,
)
from tests.integration.test_twistd import free_port, port_is_free
from tests.support import raw


def test_a_second_sigterm_during_shutdown_is_quiet(tmp_path):
    """SIGTERM, then - while a silent client holds the shutdown in its goodbye_timeout (2 s) - SIGTERM again: the
    second logs exactly one "already shutting down" line, no traceback and no ReactorNotRunning; the silent client
    is still closed when goodbye_timeout is up and the process exits with status 0."""
    port = free_port()
    config = tmp_path / "router.toml"
    config.write_text(twistd_config(port, "com.a", limits="[limits]\ngoodbye_timeout = 2\n"))
    with twistd(config) as (process, stdout, stderr):
        silent = BlockingRawSocket(port)
        try:
            silent.join()
            process.send_signal(signal.SIGTERM)
            goodbye = silent.receive()  # the shutdown has reached its goodbye phase, and waits for our reply
            assert goodbye[0] == raw.GOODBYE and goodbye[2] == SYSTEM_SHUTDOWN, goodbye
            mark = len(stdout.lines)
            process.send_signal(signal.SIGTERM)
            wait_for_line(process, stdout, "already shutting down", mark)
            assert silent.closed()
            status = process.wait(timeout=SIGNAL_TIMEOUT)
        finally:
            silent.close()
        stdout.join()
        stderr.join()
        output = stdout.text() + stderr.text()
        assert status == 0, output
        acknowledged = [line for line in stdout.lines if "already shutting down" in line]
        assert len(acknowledged) == 1 and "received signal 15: already shutting down" in acknowledged[0], output
        assert "shutting down gracefully" in stdout.text()
        assert "Traceback" not in output and "ReactorNotRunning" not in output, output
        deadline = time.monotonic() + SIGNAL_TIMEOUT
        while not port_is_free(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert port_is_free(port)
