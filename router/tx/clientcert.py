"""The TLS client certificate of a connection, as the frozen value authenticators get."""

from __future__ import annotations

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from wampgate.model import ClientCertificate


def client_certificate(transport) -> ClientCertificate | None:
    """None for plain TCP and for TLS clients that sent no certificate."""
    get_certificate = getattr(transport, "getPeerCertificate", None)
    if get_certificate is None:
        return None
    try:
        certificate = get_certificate()
    except Exception:  # not a TLS transport after all, or the handshake is not finished
        return None
    if certificate is None:
        return None
    parsed = certificate.to_cryptography()
    return ClientCertificate(
        # The listener's verify callback marks the transport when OpenSSL found a fault in the chain.
        verified=not getattr(transport, "wampgate_certificate_failed", False),
        subject=parsed.subject.rfc4514_string(),
        issuer=parsed.issuer.rfc4514_string(),
        common_name=_common_name(parsed),
        dns_names=_san(parsed, x509.DNSName),
        emails=_san(parsed, x509.RFC822Name),
        sha256=parsed.fingerprint(hashes.SHA256()).hex(),
        serial=parsed.serial_number,
        sha1=parsed.fingerprint(hashes.SHA1()).hex(),  # pinning only, as Crossbar configs do
    )


def _common_name(certificate: x509.Certificate) -> str | None:
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(names[0].value) if names else None


def _san(certificate: x509.Certificate, kind) -> tuple[str, ...]:
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    return tuple(str(name) for name in extension.value.get_values_for_type(kind))
