"""Server TLS contexts from PEM files: TLS 1.2 minimum, a modern cipher list, optional client certificates."""

from __future__ import annotations

import re

from OpenSSL import SSL, crypto
from twisted.internet import ssl

from router.config import TlsConfig

_PEM_CERTIFICATE = re.compile(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", re.DOTALL)


class TlsSetupError(Exception):
    """A certificate, key or CA file cannot be used; the message names the file and why."""


def _certificates(path) -> list[crypto.X509]:
    blocks = _PEM_CERTIFICATE.findall(path.read_bytes())
    if not blocks:
        raise TlsSetupError(f"{path}: no PEM certificate found")
    return [crypto.load_certificate(crypto.FILETYPE_PEM, block) for block in blocks]


def context_factory(config: TlsConfig) -> ssl.CertificateOptions:
    """Build the listener's TLS options; raises TlsSetupError naming the file at fault."""
    try:
        chain = _certificates(config.certificate)
    except (OSError, crypto.Error) as e:
        raise TlsSetupError(f"{config.certificate}: cannot load the certificate chain: {e}") from None
    try:
        key = crypto.load_privatekey(crypto.FILETYPE_PEM, config.private_key.read_bytes())
    except (OSError, crypto.Error) as e:
        raise TlsSetupError(f"{config.private_key}: cannot load the private key: {e}") from None
    ca_certificates = None
    if config.client_ca is not None:
        try:
            ca_certificates = _certificates(config.client_ca)
        except (OSError, crypto.Error) as e:
            raise TlsSetupError(f"{config.client_ca}: cannot load the client CA bundle: {e}") from None
    minimum = ssl.TLSVersion.TLSv1_3 if config.min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    try:
        options = ssl.CertificateOptions(
            privateKey=key,
            certificate=chain[0],
            extraCertChain=chain[1:],
            raiseMinimumTo=minimum,
            acceptableCiphers=ssl.AcceptableCiphers.fromOpenSSLCipherString(config.ciphers),
            verify=ca_certificates is not None,
            caCerts=ca_certificates,
            requireCertificate=config.require_client_certificate,
            enableSessions=False,
            fixBrokenPeers=False,
        )
        context = options.getContext()  # fail now, at start-up, on a key that does not match the certificate
    except (SSL.Error, ValueError) as e:
        raise TlsSetupError(f"{config.certificate}: TLS setup failed: {e}") from None
    if ca_certificates is not None:
        _record_verification(context, required=config.require_client_certificate)
    context.set_alpn_select_callback(_select_alpn)
    return options


def _select_alpn(connection, offered: list[bytes]) -> bytes:
    """Browsers and node offer ALPN. WebSocket runs over HTTP/1.1; anything else gets "no overlap", which lets the
    handshake go on without ALPN. (Left to itself, Twisted answers an empty name, and OpenSSL fails the handshake.)"""
    return b"http/1.1" if b"http/1.1" in offered else SSL.NO_OVERLAPPING_PROTOCOLS


def _record_verification(context: SSL.Context, *, required: bool) -> None:
    """Ask for client certificates; a required one must verify, an optional one that does not is let through as
    unverified, so the `tls` authenticator can refuse it with a WAMP ABORT instead of a bare TLS alert."""
    flags = SSL.VERIFY_PEER | (SSL.VERIFY_FAIL_IF_NO_PEER_CERT if required else 0)

    def verify(connection, certificate, error, depth, ok) -> bool:
        if not ok:
            # Twisted makes the TLS protocol (the channel's transport) the connection's app data: mark it there.
            owner = connection.get_app_data()
            if owner is not None:
                owner.wampgate_certificate_failed = True
        return bool(ok) or not required

    context.set_verify(flags, verify)
