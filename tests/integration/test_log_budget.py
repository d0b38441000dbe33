"""What a client can make the router log, under the real `twistd --logger wampgate.tx.logs.text`.

A flood of refused HELLOs from one address grows the log by at most that address's budget (its burst plus its rate
over the flood's duration), every line of it short; one summary warning per interval accounts for every line
suppressed, exactly; and a fresh client is served afterwards. A refused SIGHUP reload never writes a secret from the
config to the log.
"""

from __future__ import annotations

import re
import signal
import textwrap
import time
from pathlib import Path

from wampgate.tx.logbudget import PER_PEER, SUMMARY_INTERVAL
from tests.integration.test_operations import BlockingRawSocket, allowed, twistd, twistd_config, wait_for_line
from tests.integration.test_twistd import free_port
from tests.support import raw

FLOOD = 2_000
FLOOD_TIMEOUT = 120.0  # seconds for the whole flood on a busy machine; it takes a few
SUMMARY = re.compile(r"log budget: suppressed (\d+) client-caused lines \((\d+) bytes\) in [\d.]+ s from (\d+) peer")


def refused_hello(port: int, i: int) -> list:
    """One connection whose HELLO names an invalid realm (a long one, different each time): the router logs the
    invalid URI with the client's text, answers ABORT and closes."""
    client = BlockingRawSocket(port)
    try:
        client.send(raw.hello(f"not a realm {i} " + "x" * 1_000))
        return client.receive()
    finally:
        client.close()


def suppressed_so_far(lines: list[str]) -> list[tuple[int, int, int]]:
    return [tuple(map(int, m.groups())) for m in (SUMMARY.search(line) for line in lines) if m]


def test_a_hello_flood_grows_the_log_by_at_most_the_peer_budget(tmp_path):
    """2,000 HELLOs with an invalid 1 KB realm from 127.0.0.1: the "invalid URI" lines written are at most the
    per-peer burst plus its rate over the flood's duration, each under 600 bytes (the realm is cut to 200
    characters); summary warnings account for every other one (written + suppressed == 2,000, all from 1 peer);
    and afterwards a fresh client joins and publishes."""
    port = free_port()
    config = tmp_path / "router.toml"
    config.write_text(twistd_config(port, "com.a"))
    with twistd(config) as (process, stdout, stderr):
        mark = len(stdout.lines)
        started = time.monotonic()
        for i in range(FLOOD):
            reply = refused_hello(port, i)
            assert reply[0] == raw.ABORT and reply[2] == "wamp.error.invalid_uri", reply
            assert time.monotonic() - started < FLOOD_TIMEOUT, f"flood too slow: {i} HELLOs"
        elapsed = time.monotonic() - started

        deadline = time.monotonic() + SUMMARY_INTERVAL + 10.0
        while True:  # every suppressed line is in a summary within one interval of the flood's end
            written = [line for line in stdout.lines[mark:] if "invalid URI from tcp4:127.0.0.1" in line]
            summaries = suppressed_so_far(stdout.lines[mark:])
            if len(written) + sum(lines for lines, _, _ in summaries) >= FLOOD or time.monotonic() > deadline:
                break
            time.sleep(0.05)

        allowance = PER_PEER.lines_per_second * (PER_PEER.burst_seconds + elapsed)
        print(f"\n{FLOOD} refused HELLOs in {elapsed:.2f} s: {len(written)} lines written "
              f"(allowance {allowance:.0f}), summaries {summaries}", flush=True)
        assert len(written) <= allowance + 1, written
        assert max(len(line.encode()) for line in written) < 600
        assert len(written) + sum(lines for lines, _, _ in summaries) == FLOOD, (len(written), summaries)
        assert all(peers == 1 for _, _, peers in summaries), summaries

        client = BlockingRawSocket(port)
        try:
            client.join()
            assert allowed(client.publish("com.a"))
        finally:
            client.close()
        assert process.poll() is None
        assert "Traceback" not in stdout.text() + stderr.text()


def auth_config(port: int, auth: str) -> str:
    """Listener "main" on `port` with the `auth` tables, and realm1 where anonymous may publish to com.a."""
    return textwrap.dedent(f"""
        [[listeners]]
        name = "main"
        endpoint = "tcp:{port}:interface=127.0.0.1"
        transports = ["websocket", "rawsocket"]
        """) + auth + textwrap.dedent("""
        [[realms]]
        name = "realm1"

        [[realms.roles]]
        name = "anonymous"

        [[realms.roles.permissions]]
        uri = "com.a"
        allow = ["publish", "subscribe"]
        """)


ANONYMOUS = '[listeners.auth.anonymous]\nrole = "anonymous"\n'

BAD_PLUGIN_TABLES = ANONYMOUS + """
[listeners.auth.ticket]
[[listeners.auth.ticket.principals]]
authid = "joe"
role = "anonymous"
secret_hash = "scrypt$ln=15,r=8,p=1$r0uN4pVpXFbBAwlvstPM+g$5/+Ba31Z6dzR5m5gLJlqhcO64ZRF9wwPRdXevXMVldw"
pasword = "hunter2"
"""

BAD_ROUTER_TABLES = ANONYMOUS + """
[listeners.auth]
tikcet = "s3cr3t"
"""


def test_a_refused_reload_never_logs_a_secret(tmp_path: Path):
    """SIGHUP with a misspelt `pasword` in a ticket principal, then with a misspelt authenticator name holding a
    string: each reload is refused with the same lines as at start-up, naming the key path and what is allowed,
    with `<redacted string>` or no value at all; neither secret appears anywhere in the output."""
    port = free_port()
    config = tmp_path / "router.toml"
    config.write_text(auth_config(port, ANONYMOUS))
    with twistd(config) as (process, stdout, stderr):
        prefix = f"reload refused, keeping the running config: {config}: "

        config.write_text(auth_config(port, BAD_PLUGIN_TABLES))
        mark = len(stdout.lines)
        process.send_signal(signal.SIGHUP)
        refused = wait_for_line(process, stdout, "reload refused", mark)
        assert [line.split(prefix, 1)[1] for line in refused] == [
            "listeners[0].auth.ticket.principals[0].pasword: unknown key; allowed: authid, role, realm, secret_hash"]

        config.write_text(auth_config(port, BAD_ROUTER_TABLES))
        mark = len(stdout.lines)
        process.send_signal(signal.SIGHUP)
        wait_for_line(process, stdout, "expected an installed authenticator", mark)
        refused = [line.split(prefix, 1)[1] for line in stdout.lines[mark:] if prefix in line]
        assert refused[0] == "listeners[0].auth.tikcet = <redacted string>: expected a table"
        # the installed authenticators depend on the environment (the tests install a third-party one)
        assert refused[1].startswith(
            "listeners[0].auth.tikcet = <redacted string>: expected an installed authenticator: unknown plugin "
            "'tikcet'; installed in wampgate.authenticators: anonymous, cookie, cryptosign, dynamic, jwt, ")
        assert len(refused) == 2
        assert process.poll() is None
    output = stdout.text() + stderr.text()
    assert "hunter2" not in output and "s3cr3t" not in output
