"""A listener's certificate, key and client CA files, read with `cryptography` and checked before OpenSSL sees them.

Every problem is reported in plain words naming the file at fault (a key that does not match names the key file and
the certificate it was checked against), so an operator never has to decode an OpenSSL error tuple. Checking here,
not in OpenSSL, also lets start-up refuse an expired or not-yet-valid certificate, which OpenSSL would serve.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from wampgate.config import TlsConfig

# A certificate expiring within this window is logged at warn at start and on every reload: long enough for a
# weekly renewal job to fail twice and still be noticed before clients see an expired certificate.
EXPIRY_WARNING = datetime.timedelta(days=14)

_SIGNING_KEY_TYPES = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, ed25519.Ed25519PrivateKey, ed448.Ed448PrivateKey)
_PEM_CERTIFICATE = b"-----BEGIN CERTIFICATE-----"
_PEM_PRIVATE_KEY = b"PRIVATE KEY-----"


class TlsSetupError(Exception):
    """A certificate, key or CA file cannot be used; the message names the file and why."""


@dataclass(frozen=True)
class TlsFiles:
    """The files' bytes as read, so a reload can tell whether anything changed."""

    certificate: bytes
    private_key: bytes
    client_ca: bytes | None


@dataclass(frozen=True)
class Credentials:
    """What the files hold, checked: the server certificate first, then its intermediates."""

    chain: tuple[x509.Certificate, ...]
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey | ed448.Ed448PrivateKey
    client_cas: tuple[x509.Certificate, ...]

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]


def read_files(config: TlsConfig) -> TlsFiles:
    """The three files' bytes; a file that cannot be read is named with the reason."""
    return TlsFiles(
        certificate=_read(config.certificate, "certificate"),
        private_key=_read(config.private_key, "private key"),
        client_ca=_read(config.client_ca, "client CA bundle") if config.client_ca is not None else None,
    )


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as e:
        raise TlsSetupError(f"{path}: cannot read the {what} file: {e.strerror or e}") from None


def check(config: TlsConfig, files: TlsFiles, now: datetime.datetime) -> Credentials:
    """Parse and cross-check the files' contents; raises TlsSetupError naming the file at fault."""
    chain = _certificates(config.certificate, files.certificate, "certificate")
    key = _private_key(config.private_key, files.private_key)
    _key_matches(config, chain, key)
    for position, certificate in enumerate(chain):
        _currently_valid(config.certificate, certificate, position, now)
    client_cas = ()
    if files.client_ca is not None:
        client_cas = _certificates(config.client_ca, files.client_ca, "client CA bundle")
    return Credentials(chain=chain, key=key, client_cas=client_cas)


def _certificates(path: Path, data: bytes, what: str) -> tuple[x509.Certificate, ...]:
    if _PEM_CERTIFICATE not in data:
        if _PEM_PRIVATE_KEY in data:
            raise TlsSetupError(f"{path}: holds a private key, not a certificate (are certificate and private_key "
                                "swapped?)")
        raise TlsSetupError(f"{path}: no PEM certificate found; expected the {what} in PEM form "
                            "(-----BEGIN CERTIFICATE-----); a DER file converts with `openssl x509 -inform der`")
    try:
        return tuple(x509.load_pem_x509_certificates(data))
    except ValueError:
        raise TlsSetupError(f"{path}: a PEM certificate in the {what} file cannot be decoded (damaged or cut "
                            "short?)") from None


def _private_key(path: Path, data: bytes):
    if _PEM_PRIVATE_KEY not in data:
        if _PEM_CERTIFICATE in data:
            raise TlsSetupError(f"{path}: holds a certificate, not a private key (are certificate and private_key "
                                "swapped?)")
        raise TlsSetupError(f"{path}: no PEM private key found; expected -----BEGIN PRIVATE KEY----- "
                            "(or RSA / EC PRIVATE KEY)")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:  # cryptography: "Password was not given but private key is encrypted"
        raise TlsSetupError(f"{path}: the private key is protected by a passphrase; expected an unencrypted key "
                            "file readable only by the router's user (`openssl pkey -in KEY -out PLAIN`)") from None
    except UnsupportedAlgorithm as e:
        raise TlsSetupError(f"{path}: the private key's algorithm is not supported ({e})") from None
    except ValueError:
        raise TlsSetupError(f"{path}: the private key cannot be decoded (damaged, or not a private key?)") from None
    if not isinstance(key, _SIGNING_KEY_TYPES):
        raise TlsSetupError(f"{path}: a {type(key).__name__} cannot sign a TLS handshake; expected an RSA, EC, "
                            "Ed25519 or Ed448 key")
    return key


def _public_bytes(key) -> bytes:
    return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def _key_matches(config: TlsConfig, chain: tuple[x509.Certificate, ...], key) -> None:
    """The key must belong to the first certificate; if it belongs to a later one, the order is what is wrong."""
    public = _public_bytes(key.public_key())
    if _public_bytes(chain[0].public_key()) == public:
        return
    message = (f"{config.private_key}: this private key does not belong to the certificate in {config.certificate} "
               f"({describe(chain[0])})")
    for position, certificate in enumerate(chain[1:], start=2):
        if _public_bytes(certificate.public_key()) == public:
            message += (f"; it matches certificate #{position} in that file: put the server's own certificate "
                        "first, then its intermediates")
            break
    else:
        message += "; expected the key issued with that certificate"
    raise TlsSetupError(message)


def _currently_valid(path: Path, certificate: x509.Certificate, position: int, now: datetime.datetime) -> None:
    which = "the certificate" if position == 0 else f"certificate #{position + 1} (an intermediate)"
    begins, ends = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    span = f"valid from {_when(begins)} to {_when(ends)}"
    if now < begins:
        raise TlsSetupError(f"{path}: {which} ({describe(certificate)}) is not valid yet: {span}, now is "
                            f"{_when(now)}; check the system clock or install it later")
    if now > ends:
        raise TlsSetupError(f"{path}: {which} ({describe(certificate)}) expired on {_when(ends)} ({span}); "
                            "renew it")


def expiry_warning(path: Path, credentials: Credentials, now: datetime.datetime) -> str | None:
    """A warning when the chain's earliest expiry is within EXPIRY_WARNING (or past: a router can outlive its
    certificate), else None."""
    soonest = min(credentials.chain, key=lambda certificate: certificate.not_valid_after_utc)
    ends = soonest.not_valid_after_utc
    which = "the certificate" if soonest is credentials.certificate else "an intermediate certificate"
    if ends <= now:
        return (f"{path}: {which} ({describe(soonest)}) expired on {_when(ends)}; clients refuse it: renew it and "
                "send SIGHUP")
    if ends - now <= EXPIRY_WARNING:
        return (f"{path}: {which} ({describe(soonest)}) expires in {_remaining(ends - now)}, on {_when(ends)}; "
                "renew it and send SIGHUP")
    return None


def describe(certificate: x509.Certificate) -> str:
    """Subject and serial, as an operator compares them with `openssl x509 -noout -subject -serial`."""
    return f"subject {certificate.subject.rfc4514_string() or '(empty)'}, serial {certificate.serial_number:X}"


def _when(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _remaining(left: datetime.timedelta) -> str:
    if left >= datetime.timedelta(days=2):
        return f"{left.days} days"
    hours = int(left.total_seconds() // 3600)
    return f"{hours} hours" if hours != 1 else "1 hour"
