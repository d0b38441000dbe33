"""`wampgate init DIR`: a new directory holding a production-shaped config and every file it needs, for trying TLS,
tickets and JWTs locally before deploying.

The config has the shape conf/production.toml recommends (TLS only, no anonymous access, an Origin allow-list,
JWT roles restricted), so what works here is what to deploy, with the placeholders replaced: a self-signed
certificate for the loopback names instead of one from a CA, a JWT key pair generated here instead of the identity
provider's public key, `app.example.com` instead of the site's origin. The ticket secret is generated and returned
once for the caller to show; only its scrypt hash is written. Private keys are created 0600, and no file is ever
overwritten: the directory must be new or empty.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from wampgate.passwords import hash_secret

CONFIG_NAME = "router.toml"
CERTIFICATE, TLS_KEY = "tls/cert.pem", "tls/key.pem"
JWT_PRIVATE_KEY, JWT_PUBLIC_KEY = "jwt/issuer.key.pem", "jwt/issuer.pub.pem"
DEFAULT_PORT = 8443
CERTIFICATE_DAYS = 365  # far from the router's 14-day expiry warning, short enough that nobody deploys it for good
REALM = "app"
TICKET_AUTHID, TICKET_ROLE = "backend", "backend"
JWT_ROLE = "user"
JWT_ISSUER, JWT_AUDIENCE = "https://login.example.com/", "wampgate"
ORIGIN_PLACEHOLDER = "https://app.example.com"
LOOPBACK_NAMES = ("localhost",)
LOOPBACK_ADDRESSES = ("127.0.0.1", "::1")


class InitError(Exception):
    """The directory cannot be used; the message says which and why."""


@dataclass(frozen=True)
class Initialised:
    """What `init_directory` wrote, and the one secret that exists nowhere else."""

    directory: Path
    config: Path
    certificate: Path
    jwt_private_key: Path
    port: int
    ticket_authid: str
    ticket_secret: str


def init_directory(directory: Path, *, port: int = DEFAULT_PORT) -> Initialised:
    """Create `directory` (or fill an empty one) with the config, the TLS and JWT key material; raises InitError
    when it is a file or not empty."""
    if not 1 <= port <= 65535:
        raise InitError(f"--port {port}: expected 1 to 65535")
    _claim(directory)
    ticket_secret = secrets.token_urlsafe(24)
    tls_key, jwt_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    _write(directory / TLS_KEY, _private_pem(tls_key), private=True)
    _write(directory / CERTIFICATE, _self_signed(tls_key).public_bytes(serialization.Encoding.PEM))
    _write(directory / JWT_PRIVATE_KEY, _private_pem(jwt_key), private=True)
    _write(directory / JWT_PUBLIC_KEY, jwt_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    config = directory / CONFIG_NAME
    _write(config, config_text(port, hash_secret(ticket_secret)).encode("utf-8"))
    return Initialised(directory, config, directory / CERTIFICATE, directory / JWT_PRIVATE_KEY, port,
                       TICKET_AUTHID, ticket_secret)


def _claim(directory: Path) -> None:
    """Make sure `directory` exists and is empty, creating it (and its parents) when missing."""
    if directory.is_dir():
        if any(directory.iterdir()):
            raise InitError(f"{directory} is not empty: wampgate init writes only into a new or empty directory, "
                            "so it never overwrites a config or a key")
        return
    if directory.exists():
        raise InitError(f"{directory} exists and is not a directory")
    try:
        directory.mkdir(parents=True)
    except OSError as e:
        raise InitError(f"cannot create {directory}: {e.strerror}") from None


def _write(path: Path, data: bytes, *, private: bool = False) -> None:
    """Write a new file (never replacing one); private files are 0600 from the start, not chmod-ed afterwards."""
    path.parent.mkdir(exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600 if private else 0o644)
    with os.fdopen(descriptor, "wb") as file:
        file.write(data)


def _private_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _self_signed(key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    """A server certificate for localhost, 127.0.0.1 and ::1, signed by its own key: a client trusts it by using
    the file itself as its CA (`--cacert tls/cert.pem`, `ssl.create_default_context(cafile=...)`)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
                      x509.NameAttribute(NameOID.ORGANIZATION_NAME, "wampgate init (self-signed)")])
    alternative_names = [x509.DNSName(host) for host in LOOPBACK_NAMES]
    alternative_names += [x509.IPAddress(ipaddress.ip_address(address)) for address in LOOPBACK_ADDRESSES]
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=CERTIFICATE_DAYS))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(alternative_names), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )


def config_text(port: int, ticket_hash: str) -> str:
    """The config, commented for the person who will turn it into a deployment."""
    return f"""\
# Written by `wampgate init`: a production-shaped Wampgate config for trying TLS locally.
#
#   check it:  wampgate check-config {CONFIG_NAME}
#   run it:    twistd --nodaemon --pidfile= wampgate --config {CONFIG_NAME}
#
# Relative paths are relative to this file. Before deploying it, replace the three placeholders:
#   - {CERTIFICATE} is self-signed for localhost and 127.0.0.1 (clients trust it only by using that file as their
#     CA): use your CA's certificate chain (server certificate first) and key, e.g. from Let's Encrypt;
#   - {JWT_PUBLIC_KEY} and the issuer: your identity provider's public key and issuer. The private key beside it
#     ({JWT_PRIVATE_KEY}) is here only to sign tokens for trying; it never belongs on a router;
#   - allowed_origins: the origin of the site whose pages connect (scheme, host and port; no path).

[limits]
hello_timeout = 10.0

[[listeners]]
name = "public"
# Loopback only. For the world: "tcp:443" (binding below 1024 needs privileges: see docs/deploying.md).
endpoint = "tcp:{port}:interface=127.0.0.1"
transports = ["websocket", "rawsocket"]
serializers = ["json", "msgpack", "cbor"]

[listeners.websocket]
path = "/ws"
# Browser pages from any other origin get HTTP 403; clients that send no Origin (not browsers) are let in.
allowed_origins = ["{ORIGIN_PLACEHOLDER}"]

[listeners.tls]
certificate = "{CERTIFICATE}"
private_key = "{TLS_KEY}"
min_version = "1.2"

# A service with a shared secret. The secret was printed once by `wampgate init`; only its scrypt hash is stored.
# Another one: `wampgate hash-secret` prints the hash to paste here.
[[listeners.auth.ticket.principals]]
authid = "{TICKET_AUTHID}"
role = "{TICKET_ROLE}"
secret_hash = "{ticket_hash}"

# Browser users with a token from the identity provider (sent as the AUTHENTICATE signature). A token may claim only
# the roles listed in `roles`: one claiming "{TICKET_ROLE}" is refused.
[listeners.auth.jwt]
algorithms = ["ES256"]
public_key = "{JWT_PUBLIC_KEY}"
issuer = "{JWT_ISSUER}"
audience = "{JWT_AUDIENCE}"
authid_claim = "sub"
authrole_claim = "role"
roles = ["{JWT_ROLE}"]

[[realms]]
name = "{REALM}"
uri_check = "strict"

[[realms.roles]]
name = "{TICKET_ROLE}"

[[realms.roles.permissions]]
uri = "{REALM}."
match = "prefix"
allow = ["publish", "subscribe", "call", "register"]

[[realms.roles]]
name = "{JWT_ROLE}"

[[realms.roles.permissions]]
uri = "{REALM}.public."
match = "prefix"
allow = ["subscribe", "call"]
"""


def next_steps(done: Initialised, python: str) -> str:
    """What to tell the person who ran the command: the secret (once), how to check, run, connect, and how to mint
    a token with `python` (the interpreter Wampgate is installed in, which has PyJWT)."""
    config, key = done.config, done.jwt_private_key
    token = (f"{python} -c 'import jwt, time; print(jwt.encode({{\"sub\": \"carol\", \"role\": \"{JWT_ROLE}\", "
             f"\"iss\": \"{JWT_ISSUER}\", \"aud\": \"{JWT_AUDIENCE}\", \"exp\": int(time.time()) + 3600}}, "
             f"open(\"{key}\").read(), algorithm=\"ES256\"))'")
    return f"""\
Wrote {config} with a self-signed certificate ({done.certificate}) and a JWT key pair ({key.parent}/).

Ticket secret of authid "{done.ticket_authid}" (shown only now; the config holds only its hash):
    {done.ticket_secret}

Check:    wampgate check-config {config}
Run:      twistd --nodaemon --pidfile= wampgate --config {config}
Connect:  wss://localhost:{done.port}/ws or rss://localhost:{done.port} (RawSocket), realm "{REALM}", trusting
          {done.certificate} as the CA
A token:  {token}
"""
