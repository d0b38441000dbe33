"""A listener's TLS side (router/tx/tls.py): the SSL context built from `cryptography` objects with no deprecated
pyOpenSSL call, OpenSSL's refusals in words, and reload() swapping the context for new handshakes only.

Handshakes run in memory between two pyOpenSSL connections: nothing listens.
"""

from __future__ import annotations

import contextlib
import datetime
from dataclasses import replace

import pytest
from OpenSSL import SSL
from twisted.internet import task
from twisted.logger import LogLevel

from wampgate.certificates import TlsSetupError
from wampgate.config import DEFAULT_CIPHERS, TlsConfig
from wampgate.tx.tls import ServerTls
from tests.support import certs
from tests.support.logcapture import captured_log

MAX_ROUNDS = 20




def clock_at(moment: datetime.datetime) -> task.Clock:
    clock = task.Clock()
    clock.advance(moment.timestamp())
    return clock


NOW = datetime.datetime.now(datetime.timezone.utc)


def tls_config(files, **overrides) -> TlsConfig:
    config = TlsConfig(certificate=files.chain, private_key=files.key, client_ca=None,
                       require_client_certificate=False, ciphers=DEFAULT_CIPHERS, min_version="1.2")
    return replace(config, **overrides)


def handshake(server: SSL.Connection, ca_path) -> SSL.Connection:
    """Complete a TLS handshake in memory against `server`; the client (trusting `ca_path`) is returned."""
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.load_verify_locations(str(ca_path))
    context.set_verify(SSL.VERIFY_PEER, lambda *args: bool(args[-1]))
    client = SSL.Connection(context, None)
    client.set_tlsext_host_name(b"localhost")
    client.set_connect_state()
    server.set_accept_state()
    for _ in range(MAX_ROUNDS):
        for side in (client, server):
            with contextlib.suppress(SSL.WantReadError):
                side.do_handshake()
        moved = False
        for source, target in ((client, server), (server, client)):
            with contextlib.suppress(SSL.WantReadError):
                data = source.bio_read(65536)
                target.bio_write(data)
                moved = moved or bool(data)
        if not moved:
            return client
    pytest.fail(f"no TLS handshake within {MAX_ROUNDS} rounds")


def served_serial(tls: ServerTls, ca_path) -> int:
    client = handshake(tls.serverConnectionForTLS(None), ca_path)
    return client.get_peer_certificate(as_cryptography=True).serial_number


@pytest.fixture
def ca(tmp_path):
    return certs.issuer(tmp_path)


@pytest.fixture
def first(ca, tmp_path):
    return certs.server_certificate(ca, tmp_path, "first")


@pytest.mark.filterwarnings("error::DeprecationWarning")
def test_context_is_built_and_serves_without_deprecated_pyopenssl_calls(first, ca):
    """Building the context (certificate, intermediate, key, client CA) and a full handshake raise no
    DeprecationWarning (pyOpenSSL warns when handed its own X509 / PKey objects); the client sees the chain's
    server certificate."""
    tls = ServerTls("public", tls_config(first, client_ca=ca.path), clock=clock_at(NOW))
    assert served_serial(tls, ca.path) == first.certificate.serial_number


def test_minimum_version_is_enforced(first, ca):
    """min_version = "1.3": a client capped at TLS 1.2 fails the handshake."""
    tls = ServerTls("public", tls_config(first, min_version="1.3"), clock=clock_at(NOW))
    context = SSL.Context(SSL.TLS_CLIENT_METHOD)
    context.set_max_proto_version(SSL.TLS1_2_VERSION)
    client, server = SSL.Connection(context, None), tls.serverConnectionForTLS(None)
    client.set_connect_state()
    server.set_accept_state()
    with pytest.raises(SSL.Error):
        for _ in range(MAX_ROUNDS):
            for side in (client, server):
                with contextlib.suppress(SSL.WantReadError):
                    side.do_handshake()
            with contextlib.suppress(SSL.WantReadError):
                server.bio_write(client.bio_read(65536))
            with contextlib.suppress(SSL.WantReadError):
                client.bio_write(server.bio_read(65536))


def test_unknown_cipher_string_is_named(first):
    """A cipher string matching nothing is reported against the ciphers key, in words, not as an OpenSSL tuple."""
    with pytest.raises(TlsSetupError) as raised:
        ServerTls("public", tls_config(first, ciphers="NOTHING-MATCHES"), clock=clock_at(NOW))
    assert str(raised.value).startswith(
        "ciphers = 'NOTHING-MATCHES': no cipher matches; expected an OpenSSL cipher string: ")
    assert "[(" not in str(raised.value)


def test_reload_with_new_files_serves_the_new_certificate_to_new_connections_only(first, ca, tmp_path):
    """After the files are replaced, reload() returns True: a new handshake gets the new certificate, and a
    connection created before the reload still completes with the old one."""
    tls = ServerTls("public", tls_config(first), clock=clock_at(NOW))
    opened_before = tls.serverConnectionForTLS(None)
    second = certs.server_certificate(ca, tmp_path, "second")
    first.chain.write_bytes(second.chain.read_bytes())
    first.key.write_bytes(second.key.read_bytes())
    with captured_log() as log:
        assert tls.reload() is True
    assert served_serial(tls, ca.path) == second.certificate.serial_number
    old = handshake(opened_before, ca.path)
    assert old.get_peer_certificate(as_cryptography=True).serial_number == first.certificate.serial_number
    assert [level for level, _ in log] == [LogLevel.info]
    assert log[0][1].startswith(f"listener public: loaded the new certificate from {first.chain} (subject CN=localhost"
                                f", serial {second.certificate.serial_number:X}, valid until ")


def test_reload_of_unchanged_files_changes_nothing(first, ca):
    """Files with the same contents: reload() returns False, logs nothing, and keeps the same context."""
    tls = ServerTls("public", tls_config(first), clock=clock_at(NOW))
    credentials = tls.credentials
    with captured_log() as log:
        assert tls.reload() is False
    assert tls.credentials is credentials
    assert log == []


def test_reload_of_broken_files_keeps_the_running_certificate(first, ca, tmp_path):
    """A new certificate with the old key (a renewal half written): reload() returns False, logs one error naming
    the key file, and new handshakes still get the old certificate."""
    tls = ServerTls("public", tls_config(first), clock=clock_at(NOW))
    second = certs.server_certificate(ca, tmp_path, "second")
    first.chain.write_bytes(second.chain.read_bytes())
    with captured_log() as log:
        assert tls.reload() is False
    assert [level for level, _ in log] == [LogLevel.error]
    assert log[0][1].startswith(f"listener public: keeping the running certificate: {first.key}: this private key "
                                f"does not belong to the certificate in {first.chain}")
    assert served_serial(tls, ca.path) == first.certificate.serial_number


def test_near_expiry_is_warned_at_start_and_on_every_reload(ca, tmp_path):
    """Ten days before notAfter: one warning at start and one on each reload, even when the files did not change."""
    soon = certs.server_certificate(ca, tmp_path, "soon", not_after=NOW + datetime.timedelta(days=10))
    with captured_log() as log:
        tls = ServerTls("public", tls_config(soon), clock=clock_at(NOW))
        tls.reload()
    warnings = [text for level, text in log if level == LogLevel.warn]
    assert len(warnings) == 2 and len(log) == 2, log
    assert all(text.startswith(f"listener public: {soon.chain}: the certificate (subject CN=localhost") and
               "expires in 9 days" in text for text in warnings), warnings
