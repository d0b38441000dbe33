"""The router's log as a deployment runs it: the real `twistd --logfile X --logger wampgate.tx.logs.text|json
wampgate`, in daemon mode and in the foreground. The lines go to X (before: daemon mode wrote them to /dev/null and
no file appeared), a wrong realm shows up in them at info, and the daemon stops on SIGTERM sent by its pid file.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.integration.test_operations import BlockingRawSocket, twistd_config
from tests.integration.test_twistd import TWISTD, Output, free_port
from tests.support import raw

START_TIMEOUT = 15.0
STOP_TIMEOUT = 10.0
READY = "ready: SIGHUP reloads"


def wait_for_text(path: Path, needle: str, timeout: float = START_TIMEOUT) -> str:
    """The file's text once it contains `needle`; fails after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = path.read_text(encoding="utf-8") if path.exists() else ""
        if needle in text:
            return text
        time.sleep(0.05)
    raise AssertionError(f"no {needle!r} in {path} within {timeout} s:\n"
                         + (path.read_text(encoding="utf-8") if path.exists() else "(no file)"))


def running(pid: int) -> bool:
    """The process exists and is not a zombie waiting for a parent that does not reap it."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"


def wait_gone(pid: int, timeout: float = STOP_TIMEOUT) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not running(pid):
            return True
        time.sleep(0.05)
    return False


def unknown_realm_hello(port: int, realm: str) -> list:
    client = BlockingRawSocket(port)
    try:
        client.send(raw.hello(realm))
        return client.receive()
    finally:
        client.close()


def test_daemon_mode_writes_the_log_to_the_logfile(tmp_path):
    """`twistd --pidfile P --logfile X --logger wampgate.tx.logs.text wampgate -c ...` without -n: the daemon's
    lines go to X (start-up, the listener, "ready"), a HELLO for an unknown realm is logged there at info with the
    realm asked for and the peer, a fresh client is served, and SIGTERM to the pid in P stops it, its shutdown
    logged to X too."""
    port = free_port()
    config = tmp_path / "router.toml"
    config.write_text(twistd_config(port, "com.a"))
    log_file, pid_file = tmp_path / "wampgate.log", tmp_path / "wampgate.pid"
    command = [str(TWISTD), "--pidfile", str(pid_file), "--logfile", str(log_file),
               "--logger", "wampgate.tx.logs.text", "wampgate", "-c", str(config)]
    pid = None
    try:
        started = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=START_TIMEOUT)
        assert started.returncode == 0, started.stdout + started.stderr
        assert started.stdout == "" and started.stderr == ""
        text = wait_for_text(log_file, READY)
        pid = int(pid_file.read_text())
        assert f"listener main listening on ws://127.0.0.1:{port}/ws" in text

        reply = unknown_realm_hello(port, "realm2")
        assert reply[0] == raw.ABORT and reply[2] == "wamp.error.no_such_realm", reply
        text = wait_for_text(log_file, "for unknown realm 'realm2'")
        [line] = [line for line in text.splitlines() if "for unknown realm" in line]
        assert "[wampgate.tx.opening.Opening#info] HELLO from tcp4:127.0.0.1:" in line, line

        client = BlockingRawSocket(port)
        try:
            client.join()
        finally:
            client.close()

        os.kill(pid, signal.SIGTERM)
        assert wait_gone(pid), "the daemon did not stop within 10 s of SIGTERM"
        text = log_file.read_text(encoding="utf-8")
        assert "received signal 15: shutting down gracefully" in text
        assert "Traceback" not in text
        assert not (tmp_path / "twistd.log").exists()
    finally:
        if pid is None and pid_file.exists():
            pid = int(pid_file.read_text() or 0) or None
        if pid is not None and running(pid):
            os.kill(pid, signal.SIGKILL)
            wait_gone(pid)


def test_foreground_json_with_logfile_writes_json_lines_there(tmp_path):
    """`twistd -n --logfile X --logger wampgate.tx.logs.json`: stdout stays empty and every line of X is one JSON
    object with time, level, namespace and message, the unknown realm among them with its fields."""
    port = free_port()
    config = tmp_path / "router.toml"
    config.write_text(twistd_config(port, "com.a"))
    log_file = tmp_path / "wampgate.json"
    command = [str(TWISTD), "-n", "--pidfile=", "--logfile", str(log_file), "--logger", "wampgate.tx.logs.json",
               "wampgate", "--config", str(config)]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = Output(process.stdout), Output(process.stderr)
        wait_for_text(log_file, READY)
        unknown_realm_hello(port, "realm2")
        wait_for_text(log_file, "for unknown realm")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=STOP_TIMEOUT) == 0
        stdout.join()
        stderr.join()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
    assert stdout.text() == "" and stderr.text() == ""
    records = [json.loads(line) for line in log_file.read_text(encoding="utf-8").splitlines()]
    assert all({"time", "level", "namespace", "message"} <= set(record) for record in records)
    assert not any(key.startswith("log_") for record in records for key in record)
    [realm] = [record for record in records if "unknown realm" in record["message"]]
    assert realm["level"] == "info" and realm["realm"] == "realm2" and realm["peer"].startswith("tcp4:127.0.0.1:")
    assert set(realm) == {"time", "level", "namespace", "message", "peer", "realm"}
