"""Config checks of the newer principal fields: a principal's `realm` must be a realm its method serves and must
define the principal's role; `fingerprints` (tls) must be SHA-256 or SHA-1 hex; cryptosign's `router_key` must be a
readable Ed25519 private key. Each mistake stops the config, naming the key.

No sockets: configs are built against a memory reactor, which never listens.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from twisted.internet import task

from wampgate.plugins.authn.cryptosign import CryptosignAuthenticator
from wampgate.plugins.authn.tls import TlsAuthenticator, normalize_fingerprint
from wampgate.interfaces import PluginContext
from tests.plugins import auth_request, certificate, config_error, transport
from tests.unit.test_config_roles import HASH, PUBLIC_KEY, build_problems, listener, realm


def ticket(principal: str) -> str:
    return f'[[listeners.auth.ticket.principals]]\nauthid = "alice"\nsecret_hash = "{HASH}"\n{principal}\n'


def test_principal_realm_served_and_defining_the_role_builds(tmp_path):
    """A principal bound to a realm its method serves, whose role that realm defines: no problem."""
    text = listener(ticket('role = "user"\nrealm = "r2"')) + realm("r1", "user") + realm("r2", "user")
    assert build_problems(tmp_path, text) == []


def test_principal_realm_unknown_or_not_served_is_refused(tmp_path):
    """A principal's realm that the method does not serve (restricted by `realms`, or undefined) is named."""
    text = (listener('[listeners.auth.ticket]\nrealms = ["r1"]\n' + ticket('role = "user"\nrealm = "r2"'))
            + realm("r1", "user") + realm("r2", "user"))
    assert build_problems(tmp_path, text) == [
        'listeners[0].auth.ticket.principals[0].realm = "r2": not a realm this method serves; expected one of: r1']
    text = listener(ticket('role = "user"\nrealm = "nowhere"')) + realm("r1", "user")
    assert build_problems(tmp_path, text) == [
        'listeners[0].auth.ticket.principals[0].realm = "nowhere": not a realm this method serves; expected one of: '
        "r1"]


def test_principal_realm_without_the_role_is_refused(tmp_path):
    """The principal's realm must define its role, even when another served realm does."""
    text = listener(ticket('role = "admin"\nrealm = "r1"')) + realm("r1", "user") + realm("r2", "admin")
    assert build_problems(tmp_path, text) == [
        'listeners[0].auth.ticket.principals[0].realm = "r1": realm r1 does not define the principal\'s role '
        "'admin'; defined roles: user"]


def test_principal_realm_must_be_a_string():
    """`realm = 7` names the key."""
    config = {"principals": [{"authid": "a", "role": "r", "realm": 7, "public_keys": [PUBLIC_KEY]}]}
    assert config_error(CryptosignAuthenticator, config).key == "principals[0].realm"


# -- tls fingerprints ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("AB:" * 31 + "CD", "ab" * 31 + "cd"),
    ("ab" * 32, "ab" * 32),
    ("0A:" * 19 + "FF", "0a" * 19 + "ff"),
    ("AB" * 20, "ab" * 20),
    ("AB:" * 30 + "CD", None),  # 31 bytes
    ("ABC:" + "AB:" * 30 + "CD", None),  # not pairs
    ("gg" * 32, None),
    ("", None),
])
def test_fingerprint_forms(text, expected):
    """SHA-256 (32 bytes) or SHA-1 (20 bytes) in hex, any case, colons between every pair or none at all."""
    assert normalize_fingerprint(text) == expected


@pytest.mark.parametrize("config, key", [
    ({"principals": [{"authid": "a", "role": "r", "fingerprints": ["xyz"]}]}, "principals[0].fingerprints[0]"),
    ({"principals": [{"authid": "a", "role": "r", "fingerprints": "ab" * 32}]}, "principals[0].fingerprints"),
    ({"principals": [{"authid": "a", "role": "r", "fingerprints": ["ab" * 32]},
                     {"authid": "b", "role": "r", "fingerprints": ["AB" * 32]}]}, "principals[1].fingerprints[0]"),
])
def test_bad_fingerprints_name_the_key(config, key):
    """A malformed fingerprint, a bare string instead of an array, or one certificate pinned for two principals."""
    assert config_error(TlsAuthenticator, config, reactor=task.Clock()).key == key


def test_pin_matches_sha256_or_sha1_and_ignores_verification():
    """A pinned certificate joins as its principal whether or not it chained to client_ca, by either fingerprint;
    an unpinned unverified one is still refused."""
    authenticator = TlsAuthenticator({"principals": [
        {"authid": "p256", "role": "r", "realm": "realm1", "fingerprints": ["CD:" * 31 + "CD"]},
        {"authid": "p1", "role": "r", "fingerprints": ["ef" * 20]},
    ]}, reactor=task.Clock())

    def begin(cert):
        return authenticator.begin(auth_request(None, method="tls", via=transport(peer_certificate=cert)))

    pinned = begin(certificate(verified=False, sha256="cd" * 32))
    assert (pinned.authid, pinned.realm) == ("p256", "realm1")
    assert begin(certificate(verified=False, sha1="ef" * 20)).authid == "p1"
    assert "not pinned" in begin(certificate(verified=False)).reason
    assert "no principal" in begin(certificate(common_name="p256")).reason  # a pinned principal is not a name


# -- cryptosign router_key ---------------------------------------------------------------------------------------


def _context(directory: Path) -> PluginContext:
    return PluginContext(base_dir=directory)


PRINCIPALS = [{"authid": "erin", "role": "device", "public_keys": [PUBLIC_KEY]}]


@pytest.mark.parametrize("form", ["pem", "hex", "crossbar"])
def test_router_key_forms(tmp_path, form):
    """A PEM Ed25519 key, the 64-hex-character seed, or Crossbar's key.priv line; relative to the config's
    directory. The CHALLENGE then carries the matching public key."""
    key = Ed25519PrivateKey.generate()
    seed = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                             serialization.NoEncryption()).hex()
    data = {
        "pem": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode(),
        "hex": seed + "\n",
        "crossbar": f"creator: someone\nprivate-key-ed25519: {seed}\n",
    }[form]
    (tmp_path / "router.key").write_text(data)
    authenticator = CryptosignAuthenticator({"principals": PRINCIPALS, "router_key": "router.key"},
                                            context=_context(tmp_path))
    challenge = authenticator.begin(auth_request("erin", method="cryptosign", authextra={"challenge": "11" * 32}))
    public = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    assert challenge.extra["pubkey"] == public
    assert challenge.extra["signature"].endswith("11" * 32) and len(challenge.extra["signature"]) == 192


@pytest.mark.parametrize("content", [None, "not a key", "ab" * 31, "EC"])
def test_bad_router_key_names_the_key(tmp_path, content):
    """A missing file, text that is no key, a short seed, and a PEM key of another type are refused at start-up."""
    if content == "EC":
        content = ec.generate_private_key(ec.SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()).decode()
    if content is not None:
        (tmp_path / "router.key").write_text(content)
    error = config_error(CryptosignAuthenticator, {"principals": PRINCIPALS, "router_key": "router.key"},
                         context=_context(tmp_path))
    assert error.key == "router_key"
