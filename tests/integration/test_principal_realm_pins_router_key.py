"""Three Crossbar behaviours, end to end with Autobahn (Twisted) clients against a real router:

- the realm from the principal: a HELLO without a realm joins its principal's `realm` (or the one realm the method
  serves); with none known, or several to choose from, ABORT wamp.error.no_such_realm; a HELLO naming a realm other
  than its principal's gets the generic authentication failure;
- fingerprint pinning in the `tls` authenticator: a client certificate listed by SHA-256 or SHA-1 fingerprint
  ("AA:BB:..." or bare hex, any case) joins as its principal even when it does not chain to `client_ca`;
- cryptosign router authentication: a client that sends `authextra.challenge` gets the router's public key and its
  signature of that challenge in the CHALLENGE, checks it against the key it trusts, and only then signs its own.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import pytest_twisted
import txaio
from autobahn.wamp.cryptosign import CryptosignKey
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from wampgate.passwords import hash_secret
from tests.support import auth_clients as auth
from tests.support.clients import Target
from tests.support.router import listener

txaio.use_twisted()

NO_SUCH_REALM = "wamp.error.no_such_realm"
AUTHENTICATION_FAILED = "wamp.error.authentication_failed"
ALICE_SECRET = "alice-ticket"  # noqa: S105 - a test secret
BOB_SECRET = "bob-ticket"  # noqa: S105


def _realm(name: str) -> str:
    roles = "".join(f"""
[[realms.roles]]
name = "{role}"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["publish", "subscribe", "call", "register"]
""" for role in ("anonymous", "user", "device"))
    return f'\n[[realms]]\nname = "{name}"\n{roles}'


def _fingerprint(path: Path, algorithm, colons: bool) -> str:
    raw = x509.load_pem_x509_certificate(path.read_bytes()).fingerprint(algorithm).hex().upper()
    return ":".join(raw[i:i + 2] for i in range(0, len(raw), 2)) if colons else raw.lower()


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    directory = tmp_path_factory.mktemp("keys")
    router_key = Ed25519PrivateKey.generate()
    key_file = directory / "router.key"
    key_file.write_bytes(router_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    return {
        "alice_hash": hash_secret(ALICE_SECRET),
        "bob_hash": hash_secret(BOB_SECRET),
        "erin": CryptosignKey.from_bytes(os.urandom(32)),
        "router_key": router_key,
        "router_key_file": key_file,
    }


def router_config(material, certs) -> str:
    tickets = f"""
[[listeners.auth.ticket.principals]]
authid = "alice"
role = "user"
realm = "realm1"
secret_hash = "{material['alice_hash']}"
[[listeners.auth.ticket.principals]]
authid = "bob"
role = "user"
secret_hash = "{material['bob_hash']}"
[listeners.auth.cryptosign]
router_key = "{material['router_key_file']}"
[[listeners.auth.cryptosign.principals]]
authid = "erin"
role = "device"
realm = "realm2"
public_keys = ["{material['erin'].public_key()}"]
"""
    no_router_key = f"""
[[listeners.auth.cryptosign.principals]]
authid = "erin"
role = "device"
public_keys = ["{material['erin'].public_key()}"]
"""
    pins = f"""
[[listeners.auth.tls.principals]]
authid = "pinned-mallory"
role = "device"
realm = "realm2"
fingerprints = ["{_fingerprint(certs.untrusted_client_cert, hashes.SHA256(), colons=True)}"]
[[listeners.auth.tls.principals]]
authid = "pinned-alice"
role = "user"
fingerprints = ["{_fingerprint(certs.client_cert, hashes.SHA1(), colons=False)}"]
"""
    return (
        listener("plain", ("websocket",), auth=tickets)
        + listener("anon-one", ("websocket",), auth='anonymous = { role = "anonymous", realms = ["realm2"] }')
        + listener("anon-all", ("websocket",), auth='anonymous = { role = "anonymous" }')
        + listener("no-router-key", ("websocket",), auth=no_router_key)
        + listener("pins", ("websocket",), tls=certs, auth=pins)
        + _realm("realm1") + _realm("realm2")
    )


@pytest_twisted.async_yield_fixture()
async def router(tmp_path, certs, material, stoppable):
    yield await stoppable(router_config(material, certs), tmp_path)


def at(router, name: str, certs=None, client_cert=None) -> Target:
    return Target(port=router.port(name), tls_ca=certs.ca if certs is not None else None, client_cert=client_cert)


# -- the realm from the principal -----------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_hello_without_realm_joins_the_principals_realm(router):
    """alice is bound to realm1: a HELLO with a null realm joins realm1 as alice."""
    session = await auth.join(at(router, "plain"), None, authmethods=["ticket"], authid="alice",
                              answer=auth.ticket(ALICE_SECRET))
    assert (session.welcome.realm, session.welcome.authid, session.welcome.authrole) == ("realm1", "alice", "user")
    await auth.leave(session)


@pytest_twisted.ensureDeferred
async def test_hello_without_realm_and_no_principal_realm_is_refused_as_ambiguous(router):
    """bob names no realm and the ticket method serves two: nothing to choose by, so ABORT no_such_realm (after the
    credentials were checked; a wrong ticket still gets the generic failure)."""
    refusal = await auth.refused(at(router, "plain"), None, authmethods=["ticket"], authid="bob",
                                 answer=auth.ticket(BOB_SECRET))
    assert refusal.reason == NO_SUCH_REALM
    wrong = await auth.refused(at(router, "plain"), None, authmethods=["ticket"], authid="bob",
                               answer=auth.ticket("wrong"))
    assert wrong.reason == AUTHENTICATION_FAILED


@pytest_twisted.ensureDeferred
async def test_hello_naming_another_realm_than_the_principals_is_refused(router):
    """alice is bound to realm1: asking for realm2 with the right ticket gets the generic authentication failure;
    bob, bound to none, may join either."""
    refusal = await auth.refused(at(router, "plain"), "realm2", authmethods=["ticket"], authid="alice",
                                 answer=auth.ticket(ALICE_SECRET))
    assert refusal.reason == AUTHENTICATION_FAILED
    session = await auth.join(at(router, "plain"), "realm2", authmethods=["ticket"], authid="bob",
                              answer=auth.ticket(BOB_SECRET))
    assert session.welcome.realm == "realm2"
    await auth.leave(session)


@pytest_twisted.ensureDeferred
async def test_hello_without_realm_joins_the_one_realm_the_method_serves(router):
    """anonymous restricted to realm2 needs no realm in HELLO; anonymous serving every realm (two here) does."""
    session = await auth.join(at(router, "anon-one"), None)
    assert session.welcome.realm == "realm2"
    await auth.leave(session)
    refusal = await auth.refused(at(router, "anon-all"), None)
    assert refusal.reason == NO_SUCH_REALM


# -- fingerprint pinning --------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_certificate_pinned_by_sha256_joins_though_not_verified(router, certs):
    """The untrusted certificate (another CA) is pinned by its SHA-256 fingerprint in "AA:BB:..." form: it joins
    as the pinned principal, in the principal's realm, though HELLO names none."""
    target = at(router, "pins", certs, (certs.untrusted_client_cert, certs.untrusted_client_key))
    session = await auth.join(target, None, authmethods=["tls"])
    welcome = session.welcome
    assert (welcome.realm, welcome.authid, welcome.authrole, welcome.authmethod) == (
        "realm2", "pinned-mallory", "device", "tls")
    await auth.leave(session)


@pytest_twisted.ensureDeferred
async def test_certificate_pinned_by_sha1_joins(router, certs):
    """The CA-signed certificate is pinned by its SHA-1 fingerprint (bare lower-case hex): the pin names the
    principal, not the certificate's CN."""
    target = at(router, "pins", certs, (certs.client_cert, certs.client_key))
    session = await auth.join(target, "realm1", authmethods=["tls"])
    assert (session.welcome.authid, session.welcome.authrole) == ("pinned-alice", "user")
    await auth.leave(session)


@pytest_twisted.ensureDeferred
async def test_no_certificate_on_a_pinning_listener_is_refused(router, certs):
    """Without a client certificate there is nothing to pin: the generic authentication failure."""
    refusal = await auth.refused(at(router, "pins", certs), "realm1", authmethods=["tls"])
    assert refusal.reason == AUTHENTICATION_FAILED


# -- cryptosign router authentication ------------------------------------------------------------------------------


def verifying(key: CryptosignKey, trusted: Ed25519PublicKey, challenge: bytes, seen: list):
    """A client answer that first checks the router's proof: `pubkey` is the trusted key and `signature` is that
    key's signature of our `challenge`; refuses to answer otherwise."""

    def answer(challenge_message):
        extra = challenge_message.extra
        trusted_hex = trusted.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
        assert extra["pubkey"] == trusted_hex, "the router presented another key"
        signature = bytes.fromhex(extra["signature"])
        assert signature[64:] == challenge, "the router signed something else"
        try:
            trusted.verify(signature[:64], challenge)
        except InvalidSignature:
            raise AssertionError("the router's signature does not verify") from None
        seen.append(True)
        return key.sign_challenge(challenge_message)

    return answer


@pytest_twisted.ensureDeferred
async def test_router_proves_its_key_before_the_client_signs(router, material):
    """erin sends a random authextra.challenge; the CHALLENGE carries the router's public key and a valid signature
    of it (checked by the client against the key it trusts), then erin joins her principal's realm (realm2)."""
    challenge, seen = os.urandom(32), []
    answer = verifying(material["erin"], material["router_key"].public_key(), challenge, seen)
    session = await auth.join(at(router, "plain"), None, authmethods=["cryptosign"], authid="erin",
                              authextra={"pubkey": material["erin"].public_key(), "challenge": challenge.hex()},
                              answer=answer)
    assert seen == [True]
    assert (session.welcome.realm, session.welcome.authid) == ("realm2", "erin")
    await auth.leave(session)


@pytest_twisted.ensureDeferred
async def test_a_client_trusting_another_key_refuses_to_answer(router, material):
    """A client that trusts another router key finds the proof wrong and never signs: it is not welcomed."""
    other = Ed25519PrivateKey.generate().public_key()
    challenge, seen = os.urandom(32), []
    answer = verifying(material["erin"], other, challenge, seen)
    session, refusal = await auth.attempt(at(router, "plain"), "realm2", authmethods=["cryptosign"],
                                          authid="erin", authextra={"challenge": challenge.hex()}, answer=answer)
    assert refusal is not None and seen == []


@pytest.mark.parametrize("challenge", ["00" * 31, "zz" * 32, 42])
@pytest_twisted.ensureDeferred
async def test_malformed_router_challenge_is_refused(router, material, challenge):
    """An authextra.challenge that is not 32 bytes of hex is refused with the generic failure."""
    refusal = await auth.refused(at(router, "plain"), "realm2", authmethods=["cryptosign"], authid="erin",
                                 authextra={"challenge": challenge}, answer=auth.cryptosign(material["erin"]))
    assert refusal.reason == AUTHENTICATION_FAILED


@pytest_twisted.ensureDeferred
async def test_router_challenge_without_a_router_key_is_refused(router, material):
    """A listener without router_key cannot prove itself: a client asking it to is refused, not answered without
    the proof it asked for."""
    refusal = await auth.refused(at(router, "no-router-key"), "realm1", authmethods=["cryptosign"], authid="erin",
                                 authextra={"challenge": os.urandom(32).hex()},
                                 answer=auth.cryptosign(material["erin"]))
    assert refusal.reason == AUTHENTICATION_FAILED
    session = await auth.join(at(router, "no-router-key"), "realm1", authmethods=["cryptosign"], authid="erin",
                              answer=auth.cryptosign(material["erin"]))
    assert "signature" not in session.challenges[0].extra
    await auth.leave(session)
