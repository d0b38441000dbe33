"""Certificates the tests generate: a CA, a server certificate for the loopback names, and client certificates."""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class CertFiles:
    ca: Path  # the CA that signed the server and the trusted client certificate
    server_chain: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    untrusted_client_cert: Path  # signed by another CA
    untrusted_client_key: Path


def _key():
    return ec.generate_private_key(ec.SECP256R1())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _certificate(subject, subject_key, issuer, issuer_key, *, ca: bool, san=None, client=False, not_before=None,
                 not_after=None):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(subject_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - datetime.timedelta(days=1))  # valid for a suite collected hours ago
        .not_valid_after(not_after or now + datetime.timedelta(days=90))  # past the 14-day expiry warning
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if san:
        builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
    if not ca:
        usage = x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH if client else x509.oid.ExtendedKeyUsageOID.SERVER_AUTH
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, *objects) -> Path:
    data = b""
    for obj in objects:
        if isinstance(obj, x509.Certificate):
            data += obj.public_bytes(serialization.Encoding.PEM)
        else:
            data += obj.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
    path.write_bytes(data)
    return path


def generate(directory: Path) -> CertFiles:
    """A CA, an intermediate, a server certificate chain for localhost/127.0.0.1/::1, and two client certificates."""
    ca_key, other_ca_key, inter_key = _key(), _key(), _key()
    ca = _certificate(_name("Wampgate Test CA"), ca_key, _name("Wampgate Test CA"), ca_key, ca=True)
    other_ca = _certificate(_name("Other CA"), other_ca_key, _name("Other CA"), other_ca_key, ca=True)
    inter = _certificate(_name("Wampgate Test Intermediate"), inter_key, ca.subject, ca_key, ca=True)
    server_key = _key()
    san = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
           x509.IPAddress(ipaddress.ip_address("::1"))]
    server = _certificate(_name("localhost"), server_key, inter.subject, inter_key, ca=False, san=san)
    client_key, untrusted_key = _key(), _key()
    client = _certificate(_name("client-alice"), client_key, ca.subject, ca_key, ca=False, client=True,
                          san=[x509.DNSName("alice.clients.example")])
    untrusted = _certificate(_name("client-mallory"), untrusted_key, other_ca.subject, other_ca_key, ca=False,
                             client=True)
    return CertFiles(
        ca=_write(directory / "ca.pem", ca),
        server_chain=_write(directory / "server-chain.pem", server, inter),
        server_key=_write(directory / "server-key.pem", server_key),
        client_cert=_write(directory / "client.pem", client),
        client_key=_write(directory / "client-key.pem", client_key),
        untrusted_client_cert=_write(directory / "untrusted.pem", untrusted),
        untrusted_client_key=_write(directory / "untrusted-key.pem", untrusted_key),
    )


# -- more server certificates from one CA, during a test (renewals, expired or mismatched files) ---------------------

LOOPBACK_NAMES = (x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                  x509.IPAddress(ipaddress.ip_address("::1")))


@dataclass(frozen=True)
class Issuer:
    """A CA kept in memory so a test can sign more certificates; `path` is its PEM, for clients to trust."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey
    path: Path


@dataclass(frozen=True)
class ServerFiles:
    chain: Path  # the server certificate, then the issuer's certificate
    key: Path
    certificate: x509.Certificate


def issuer(directory: Path, name: str = "Wampgate Renewal CA") -> Issuer:
    key = _key()
    certificate = _certificate(_name(name), key, _name(name), key, ca=True,
                               not_after=datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(days=400))
    return Issuer(certificate=certificate, key=key, path=_write(directory / "renewal-ca.pem", certificate))


def server_certificate(ca: Issuer, directory: Path, stem: str, *, not_before=None, not_after=None,
                       with_issuer: bool = True) -> ServerFiles:
    """A fresh key and a certificate for the loopback names, written as <stem>-chain.pem and <stem>-key.pem."""
    key = _key()
    certificate = _certificate(_name("localhost"), key, ca.certificate.subject, ca.key, ca=False,
                               san=list(LOOPBACK_NAMES), not_before=not_before, not_after=not_after)
    chain = (certificate, ca.certificate) if with_issuer else (certificate,)
    return ServerFiles(chain=_write(directory / f"{stem}-chain.pem", *chain),
                       key=_write(directory / f"{stem}-key.pem", key), certificate=certificate)
