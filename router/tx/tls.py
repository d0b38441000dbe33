"""Server TLS for a listener: TLS 1.2 minimum, a modern cipher list, optional client certificates, and certificate
files re-read on reload.

The certificate and key are `cryptography` objects (router/certificates.py checks them) handed to pyOpenSSL, which
accepts them since 24.3; the deprecated pyOpenSSL X509 / PKey objects are never built. Each new connection gets the
SSL context current at accept time; a reload that finds new file contents builds a new context and swaps it in, so
open connections keep the certificate they were accepted with.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable

from OpenSSL import SSL
from twisted.internet.interfaces import IOpenSSLServerConnectionCreator
from twisted.logger import Logger
from zope.interface import implementer

from wampgate.certificates import Credentials, TlsFiles, TlsSetupError, check, describe, expiry_warning, read_files
from wampgate.config import TlsConfig

__all__ = ["ServerTls", "TlsSetupError", "reload_certificates", "server_context"]

_MINIMUM_VERSIONS = {"1.2": SSL.TLS1_2_VERSION, "1.3": SSL.TLS1_3_VERSION}
# No compression (CRIME), the server's cipher order, no session tickets or renegotiation: every connection is a
# full handshake against the context current when it was accepted.
_OPTIONS = (SSL.OP_NO_COMPRESSION | SSL.OP_CIPHER_SERVER_PREFERENCE | SSL.OP_NO_TICKET
            | getattr(SSL, "OP_NO_RENEGOTIATION", 0))
# OpenSSL's reasons for refusing a certificate, in words (the rest are passed on as OpenSSL says them).
_OPENSSL_REASONS = {
    "ee key too small": "the certificate's key is too small for OpenSSL's security level (RSA needs 2048 bits)",
    "ca md too weak": "the certificate is signed with a digest OpenSSL refuses as weak (MD5 or SHA-1)",
    "key values mismatch": "the private key does not belong to the certificate",
}


@implementer(IOpenSSLServerConnectionCreator)
class ServerTls:
    """The TLS side of one listener, handed to TLSMemoryBIOFactory; raises TlsSetupError when the files are
    unusable at start."""

    log = Logger()

    def __init__(self, listener: str, config: TlsConfig, clock):
        self.listener = listener
        self.config = config
        self._clock = clock
        self._files = read_files(config)
        self.credentials = check(config, self._files, self._now())
        self._context = server_context(config, self.credentials)
        self._warn_if_expiring()

    def serverConnectionForTLS(self, tls_protocol) -> SSL.Connection:
        return SSL.Connection(self._context, None)

    def reload(self) -> bool:
        """Re-read the files; True when new contents were loaded. Unchanged files leave everything as it is, broken
        new ones keep the running certificate and log why."""
        try:
            files = read_files(self.config)
            changed = files != self._files
            if changed:
                self._swap(files)
        except TlsSetupError as e:
            self.log.error("listener {listener}: keeping the running certificate: {problem}",
                           listener=self.listener, problem=str(e))
            changed = False
        self._warn_if_expiring()
        return changed

    def _swap(self, files: TlsFiles) -> None:
        credentials = check(self.config, files, self._now())
        context = server_context(self.config, credentials)
        self._files, self.credentials, self._context = files, credentials, context
        self.log.info("listener {listener}: loaded the new certificate from {file} ({certificate}, valid until "
                      "{until}); new connections get it, open ones keep theirs",
                      listener=self.listener, file=self.config.certificate,
                      certificate=describe(credentials.certificate),
                      until=credentials.certificate.not_valid_after_utc.strftime("%Y-%m-%d %H:%M:%S UTC"))

    def _warn_if_expiring(self) -> None:
        warning = expiry_warning(self.config.certificate, self.credentials, self._now())
        if warning is not None:
            self.log.warn("listener {listener}: {warning}", listener=self.listener, warning=warning)

    def _now(self) -> datetime.datetime:
        return datetime.datetime.fromtimestamp(self._clock.seconds(), datetime.timezone.utc)


def reload_certificates(tls_sides: Iterable[ServerTls | None]) -> None:
    """SIGHUP: every TLS listener re-reads its files (those without TLS are None)."""
    for tls in tls_sides:
        if tls is not None:
            tls.reload()


def server_context(config: TlsConfig, credentials: Credentials) -> SSL.Context:
    """A fully configured server context; raises TlsSetupError naming the file or key OpenSSL refused."""
    context = SSL.Context(SSL.TLS_SERVER_METHOD)
    context.set_min_proto_version(_MINIMUM_VERSIONS[config.min_version])
    context.set_options(_OPTIONS)
    context.set_mode(SSL.MODE_RELEASE_BUFFERS)
    context.set_session_cache_mode(SSL.SESS_CACHE_OFF)
    context.set_session_id(b"wampgate")  # OpenSSL needs a session id context once client certificates are asked for
    with _refused(f"ciphers = {config.ciphers!r}", "no cipher matches; expected an OpenSSL cipher string"):
        context.set_cipher_list(config.ciphers.encode("ascii"))
    with _refused(str(config.certificate), "OpenSSL refused the certificate"):
        context.use_certificate(credentials.certificate)
        for intermediate in credentials.chain[1:]:
            context.add_extra_chain_cert(intermediate)
    with _refused(str(config.private_key), "OpenSSL refused the private key"):
        context.use_privatekey(credentials.key)
        context.check_privatekey()
    if config.client_ca is not None:
        with _refused(str(config.client_ca), "OpenSSL refused the client CA bundle"):
            context.load_verify_locations(str(config.client_ca))
            for authority in credentials.client_cas:
                context.add_client_ca(authority)  # named in the certificate request, so clients pick the right one
        _record_verification(context, required=config.require_client_certificate)
    context.set_alpn_select_callback(_select_alpn)
    return context


class _refused:
    """Turns an OpenSSL error inside the block into a TlsSetupError: `<what>: <summary>: <reason in words>`."""

    def __init__(self, what: str, summary: str):
        self._what, self._summary = what, summary

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, error, traceback) -> bool:
        if error is None or not isinstance(error, SSL.Error):
            return False
        raise TlsSetupError(f"{self._what}: {self._summary}: {_reasons(error)}") from None


def _reasons(error: SSL.Error) -> str:
    """OpenSSL's error queue ([(library, function, reason), ...]) as words."""
    entries = error.args[0] if error.args and isinstance(error.args[0], list) else []
    reasons = [_OPENSSL_REASONS.get(entry[2], entry[2]) for entry in entries if len(entry) == 3 and entry[2]]
    return "; ".join(reasons) or str(error)


def _select_alpn(connection, offered: list[bytes]) -> bytes:
    """Browsers and node offer ALPN. WebSocket runs over HTTP/1.1; anything else gets "no overlap", which lets the
    handshake go on without ALPN. (Left to itself, OpenSSL would fail the handshake on an unanswered offer.)"""
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
