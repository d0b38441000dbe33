"""Certificate and key files checked before OpenSSL sees them: every problem in plain words naming the right file,
expired and not-yet-valid certificates refused, near expiry warned about.

Pure file handling with `cryptography`: nothing listens.
"""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from wampgate.certificates import EXPIRY_WARNING, TlsSetupError, check, describe, expiry_warning, read_files
from wampgate.config import DEFAULT_CIPHERS, TlsConfig
from tests.support import certs

UTC = datetime.timezone.utc
NOW = datetime.datetime.now(UTC).replace(microsecond=0)


def tls_config(chain: Path, key: Path, client_ca: Path | None = None) -> TlsConfig:
    return TlsConfig(certificate=chain, private_key=key, client_ca=client_ca, require_client_certificate=False,
                     ciphers=DEFAULT_CIPHERS, min_version="1.2")


def problem(config: TlsConfig, now: datetime.datetime = NOW) -> str:
    with pytest.raises(TlsSetupError) as raised:
        check(config, read_files(config), now)
    return str(raised.value)


def when(moment: datetime.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


@pytest.fixture
def ca(tmp_path):
    return certs.issuer(tmp_path)


@pytest.fixture
def good(ca, tmp_path):
    return certs.server_certificate(ca, tmp_path, "good")


def test_a_good_chain_is_loaded_as_cryptography_objects(good, ca):
    """Server certificate first, then its issuer; the key belongs to the first; a client CA bundle is read too."""
    config = tls_config(good.chain, good.key, client_ca=ca.path)
    credentials = check(config, read_files(config), NOW)
    assert credentials.chain == (good.certificate, ca.certificate)
    assert credentials.certificate.serial_number == good.certificate.serial_number
    assert credentials.client_cas == (ca.certificate,)
    assert credentials.key.public_key() == good.certificate.public_key()


def test_expired_certificate_is_refused_naming_file_and_dates(ca, tmp_path):
    """A certificate past its notAfter is refused at start (OpenSSL would serve it): the certificate file, its
    subject and serial, and both dates are named."""
    begins, ends = NOW - datetime.timedelta(days=90), NOW - datetime.timedelta(days=1)
    old = certs.server_certificate(ca, tmp_path, "old", not_before=begins, not_after=ends)
    assert problem(tls_config(old.chain, old.key)) == (
        f"{old.chain}: the certificate ({describe(old.certificate)}) expired on {when(ends)} (valid from "
        f"{when(begins)} to {when(ends)}); renew it")


def test_not_yet_valid_certificate_is_refused_naming_file_and_dates(ca, tmp_path):
    """A certificate whose notBefore is still ahead is refused with both dates and the current time (often a wrong
    system clock)."""
    begins, ends = NOW + datetime.timedelta(days=1), NOW + datetime.timedelta(days=90)
    early = certs.server_certificate(ca, tmp_path, "early", not_before=begins, not_after=ends)
    assert problem(tls_config(early.chain, early.key)) == (
        f"{early.chain}: the certificate ({describe(early.certificate)}) is not valid yet: valid from {when(begins)} "
        f"to {when(ends)}, now is {when(NOW)}; check the system clock or install it later")


def test_expired_intermediate_is_refused(good, ca, tmp_path):
    """An intermediate past its notAfter breaks every client too: refused, naming its position in the file."""
    old = certs.server_certificate(ca, tmp_path, "old", not_before=NOW - datetime.timedelta(days=90),
                                   not_after=NOW - datetime.timedelta(days=1))
    chain = tmp_path / "chain.pem"
    chain.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in (good.certificate, old.certificate)))
    assert problem(tls_config(chain, good.key)).startswith(
        f"{chain}: certificate #2 (an intermediate) ({describe(old.certificate)}) expired on ")


def test_mismatched_key_names_the_key_file_and_the_certificate(good, ca, tmp_path):
    """A key from another issuance is reported against the key file (not the certificate), in words, with the
    certificate file and its subject and serial."""
    other = certs.server_certificate(ca, tmp_path, "other")
    assert problem(tls_config(good.chain, other.key)) == (
        f"{other.key}: this private key does not belong to the certificate in {good.chain} "
        f"({describe(good.certificate)}); expected the key issued with that certificate")


def test_chain_in_the_wrong_order_says_so(ca, tmp_path):
    """Intermediates first and the server certificate last: the key matches certificate #2, and the message says
    which order is expected."""
    server = certs.server_certificate(ca, tmp_path, "server")
    reversed_chain = tmp_path / "reversed.pem"
    reversed_chain.write_bytes(ca.path.read_bytes() + server.certificate.public_bytes(serialization.Encoding.PEM))
    message = problem(tls_config(reversed_chain, server.key))
    assert message.startswith(f"{server.key}: this private key does not belong to the certificate in {reversed_chain}")
    assert message.endswith("it matches certificate #2 in that file: put the server's own certificate first, then "
                            "its intermediates")


def test_swapped_certificate_and_key_files_are_named(good):
    """certificate = the key file, private_key = the certificate file: the message says they look swapped."""
    assert problem(tls_config(good.key, good.chain)) == (
        f"{good.key}: holds a private key, not a certificate (are certificate and private_key swapped?)")


def test_certificate_given_as_key_is_named(good):
    """private_key pointing at a certificate file is reported against that file."""
    assert problem(tls_config(good.chain, good.chain)) == (
        f"{good.chain}: holds a certificate, not a private key (are certificate and private_key swapped?)")


def test_passphrase_protected_key_is_explained(good, tmp_path):
    """An encrypted key cannot be loaded unattended: the message says so and how to write an unencrypted copy."""
    key = serialization.load_pem_private_key(good.key.read_bytes(), None)
    locked = tmp_path / "locked.pem"
    locked.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                         serialization.BestAvailableEncryption(b"secret")))
    assert problem(tls_config(good.chain, locked)).startswith(
        f"{locked}: the private key is protected by a passphrase; expected an unencrypted key file")


def test_der_certificate_is_refused_with_the_conversion(good, tmp_path):
    """A DER (binary) certificate is not PEM: refused naming the file, with the openssl conversion to run."""
    der = tmp_path / "cert.der"
    der.write_bytes(good.certificate.public_bytes(serialization.Encoding.DER))
    assert problem(tls_config(der, good.key)) == (
        f"{der}: no PEM certificate found; expected the certificate in PEM form (-----BEGIN CERTIFICATE-----); a "
        "DER file converts with `openssl x509 -inform der`")


def test_damaged_certificate_is_refused(good, tmp_path):
    """A PEM block whose base64 is cut short cannot be decoded: refused naming the file."""
    damaged = tmp_path / "damaged.pem"
    text = good.chain.read_text().splitlines()
    damaged.write_text("\n".join(text[:3] + text[-1:]) + "\n")
    assert problem(tls_config(damaged, good.key)) == (
        f"{damaged}: a PEM certificate in the certificate file cannot be decoded (damaged or cut short?)")


def test_missing_file_is_named_with_the_reason(good, tmp_path):
    """A file that disappeared after the config was read (a renewal in progress) is named with the OS reason."""
    gone = tmp_path / "gone-key.pem"
    assert problem(tls_config(good.chain, gone)) == (
        f"{gone}: cannot read the private key file: No such file or directory")


def test_bad_client_ca_bundle_is_named(good, tmp_path):
    """The client CA bundle is checked like the certificate, and named as such."""
    empty = tmp_path / "empty-ca.pem"
    empty.write_text("")
    assert problem(tls_config(good.chain, good.key, client_ca=empty)).startswith(
        f"{empty}: no PEM certificate found; expected the client CA bundle in PEM form")


# -- expiry warning ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("left, words", [
    (datetime.timedelta(days=10, hours=3), "10 days"),
    (datetime.timedelta(hours=30), "30 hours"),
    (datetime.timedelta(minutes=90), "1 hour"),
])
def test_expiry_within_fourteen_days_is_warned_about(ca, tmp_path, left, words):
    """Within EXPIRY_WARNING (14 days) of notAfter, a warning names the file, the certificate, the time left and the
    date, and says what to do."""
    assert EXPIRY_WARNING == datetime.timedelta(days=14)
    ends = NOW + left
    soon = certs.server_certificate(ca, tmp_path, "soon", not_after=ends)
    config = tls_config(soon.chain, soon.key)
    credentials = check(config, read_files(config), NOW)
    assert expiry_warning(soon.chain, credentials, NOW) == (
        f"{soon.chain}: the certificate ({describe(soon.certificate)}) expires in {words}, on {when(ends)}; renew it "
        "and send SIGHUP")


def test_no_warning_with_more_than_fourteen_days_left(ca, tmp_path):
    """Fifteen days left: no warning."""
    later = certs.server_certificate(ca, tmp_path, "later", not_after=NOW + datetime.timedelta(days=15))
    config = tls_config(later.chain, later.key)
    assert expiry_warning(later.chain, check(config, read_files(config), NOW), NOW) is None


def test_certificate_that_expired_while_running_is_warned_about(good):
    """A router that outlives its certificate is told on the next check that clients now refuse it."""
    config = tls_config(good.chain, good.key)
    credentials = check(config, read_files(config), NOW)
    later = good.certificate.not_valid_after_utc + datetime.timedelta(seconds=1)
    assert expiry_warning(good.chain, credentials, later) == (
        f"{good.chain}: the certificate ({describe(good.certificate)}) expired on "
        f"{when(good.certificate.not_valid_after_utc)}; clients refuse it: renew it and send SIGHUP")
