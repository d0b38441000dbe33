"""Certificate renewal on a running router: reload() (what SIGHUP calls) re-reads a TLS listener's files; real
Autobahn clients over TLS see the new certificate on new connections while open ones keep theirs and keep working.
"""

from __future__ import annotations

import shutil

import pytest
import pytest_twisted
from autobahn.wamp.types import PublishOptions
from twisted.logger import LogLevel

from tests.support import certs
from tests.support.clients import Collector, Target, connect, leave_all
from tests.support.raw import bounded
from tests.support.router import REALM1_ANONYMOUS_ALL, listener, start_router
from tests.support.logcapture import captured_log




def served_serial(session) -> int:
    """The serial of the certificate the router presented on this session's connection."""
    tls_transport = session._transport.transport
    return tls_transport.getPeerCertificate().to_cryptography().serial_number


def install(files: certs.ServerFiles, live) -> None:
    """Copy a certificate and key over the live paths, as a renewal job does."""
    shutil.copyfile(files.chain, live / "fullchain.pem")
    shutil.copyfile(files.key, live / "privkey.pem")


@pytest.fixture
def renewal(tmp_path):
    """A CA, two certificates A and B from it, and live paths holding A."""
    ca = certs.issuer(tmp_path)
    a = certs.server_certificate(ca, tmp_path, "a")
    b = certs.server_certificate(ca, tmp_path, "b")
    live = tmp_path / "live"
    live.mkdir()
    install(a, live)
    return ca, a, b, live


async def start(tmp_path, live):
    tls = f'[listeners.tls]\ncertificate = "{live / "fullchain.pem"}"\nprivate_key = "{live / "privkey.pem"}"\n'
    return await start_router(listener("public") + tls + REALM1_ANONYMOUS_ALL, tmp_path)


@pytest_twisted.ensureDeferred
async def test_reload_serves_the_renewed_certificate_to_new_connections_and_keeps_open_ones(tmp_path, renewal):
    """Start with certificate A; a client connects (sees A). B is copied over the files and reload() runs: it
    returns True and logs that B was loaded. A new client sees B's serial; the first client, on its old connection,
    still sees A and still receives an event the new one publishes."""
    ca, a, b, live = renewal
    router = await start(tmp_path, live)
    try:
        where = Target(port=router.port("public"), tls_ca=ca.path)
        before = await bounded(connect(where))
        assert served_serial(before) == a.certificate.serial_number

        install(b, live)
        with captured_log() as log:
            assert router.service.reload() is True
        loaded = [text for level, text in log if level == LogLevel.info and "loaded the new certificate" in text]
        assert loaded == [f"listener public: loaded the new certificate from {live / 'fullchain.pem'} (subject "
                          f"CN=localhost, serial {b.certificate.serial_number:X}, valid until "
                          f"{b.certificate.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC); new connections get it, open "
                          "ones keep theirs"], log

        after = await bounded(connect(where))
        assert served_serial(after) == b.certificate.serial_number
        events = Collector()
        await bounded(before.subscribe(events, "com.example.renewal"))
        await bounded(after.publish("com.example.renewal", "new cert", options=PublishOptions(acknowledge=True)))
        assert await bounded(events.done) == [(("new cert",), {})]
        assert served_serial(before) == a.certificate.serial_number
        await leave_all(before, after)
    finally:
        await router.stop()


@pytest_twisted.ensureDeferred
async def test_reload_with_a_broken_new_certificate_keeps_serving_the_old_one(tmp_path, renewal):
    """Only B's certificate is copied (its key not yet): reload() keeps A, logs one error naming the key file that
    does not match, and a new client still gets A and joins."""
    ca, a, b, live = renewal
    router = await start(tmp_path, live)
    try:
        shutil.copyfile(b.chain, live / "fullchain.pem")
        with captured_log() as log:
            router.service.reload()
        errors = [text for level, text in log if level == LogLevel.error]
        assert errors == [f"listener public: keeping the running certificate: {live / 'privkey.pem'}: this private "
                          f"key does not belong to the certificate in {live / 'fullchain.pem'} (subject CN=localhost, "
                          f"serial {b.certificate.serial_number:X}); expected the key issued with that certificate"]
        client = await bounded(connect(Target(port=router.port("public"), tls_ca=ca.path)))
        assert served_serial(client) == a.certificate.serial_number
        await leave_all(client)
    finally:
        await router.stop()
