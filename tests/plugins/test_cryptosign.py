"""The `cryptosign` authenticator: Ed25519 challenge-response as Autobahn's CryptosignKey signs it, principals found
by authid or public key, and no hint whether either exists."""

from __future__ import annotations

import os

import pytest
import txaio
from autobahn.wamp import types
from autobahn.wamp.cryptosign import CryptosignKey  # needs autobahn[encryption]: PyNaCl, base58, ecdsa
from twisted.internet import task
from zope.interface.verify import verifyObject

from wampgate.plugins.authn.cryptosign import CryptosignAuthenticator
from wampgate.interfaces import IAuthenticator
from wampgate.model import Challenge, Denied, Identity
from tests.plugins import auth_request, config_error

txaio.use_twisted()  # CryptosignKey answers with a txaio future


def new_key():
    return CryptosignKey.from_bytes(os.urandom(32))


ALICE, ALICE_2, BOB, STRANGER = new_key(), new_key(), new_key(), new_key()


@pytest.fixture
def config():
    return {"principals": [
        {"authid": "alice", "role": "user", "public_keys": [ALICE.public_key(), ALICE_2.public_key().upper()]},
        {"authid": "bob", "role": "backend", "public_keys": [BOB.public_key()]},
    ]}


@pytest.fixture
def authenticator(config):
    return CryptosignAuthenticator(config, reactor=task.Clock())


def sign(key, challenge: Challenge) -> str:
    """What Autobahn's client sends: CryptosignKey.sign_challenge, unwrapped from its (already fired) Deferred."""
    results = []
    key.sign_challenge(types.Challenge(challenge.method, dict(challenge.extra))).addCallback(results.append)
    return results[0]


def attempt(authenticator, key, authid=None, pubkey=None):
    extra = {"pubkey": pubkey} if pubkey else {}
    request = auth_request(authid, authextra=extra, method="cryptosign")
    challenge = authenticator.begin(request)
    assert isinstance(challenge, Challenge)
    return authenticator.finish(request, challenge, sign(key, challenge), {})


def test_valid_config_loads(authenticator):
    """Principals with hex Ed25519 public keys (any case) load into an IAuthenticator for "cryptosign"."""
    assert verifyObject(IAuthenticator, authenticator)
    assert authenticator.authmethod == "cryptosign"


@pytest.mark.parametrize("change, key", [
    (lambda c: c.clear(), "principals"),
    (lambda c: c.update(trustroot="x"), "trustroot"),
    (lambda c: c["principals"][1].pop("public_keys"), "principals[1].public_keys"),
    (lambda c: c["principals"][1].update(public_keys=[]), "principals[1].public_keys"),
    (lambda c: c["principals"][1].update(public_keys="ab" * 32), "principals[1].public_keys"),
    (lambda c: c["principals"][1].update(public_keys=["ab" * 32, "xy" * 32]), "principals[1].public_keys[1]"),
    (lambda c: c["principals"][1].update(public_keys=["ab" * 31]), "principals[1].public_keys[0]"),
    (lambda c: c["principals"][1].update(public_keys=[ALICE.public_key()]), "principals[1].public_keys[0]"),
    (lambda c: c["principals"][0]["public_keys"].append(ALICE.public_key().upper()), "principals[0].public_keys[2]"),
    (lambda c: c["principals"][1].pop("role"), "principals[1].role"),
    (lambda c: c["principals"][1].update(privkey="x"), "principals[1].privkey"),
])
def test_bad_config_names_the_key(config, change, key):
    """Each kind of mistake, including a key given to two principals, raises PluginConfigError naming the exact key."""
    change(config)
    assert config_error(CryptosignAuthenticator, config, reactor=task.Clock()).key == key


def test_challenge_is_32_random_bytes_without_channel_binding(authenticator):
    """The challenge is 64 hex characters, fresh each time, with channel_binding None."""
    request = auth_request("alice", method="cryptosign")
    first, second = authenticator.begin(request), authenticator.begin(request)
    assert set(first.extra) == {"challenge", "channel_binding"} and first.extra["channel_binding"] is None
    assert len(bytes.fromhex(first.extra["challenge"])) == 32
    assert first.extra["challenge"] != second.extra["challenge"]


def test_autobahn_client_by_authid(authenticator):
    """A signature from Autobahn's CryptosignKey, for a HELLO naming the authid, gives the principal's identity with
    the key that signed in authextra; any of the principal's keys works."""
    expected = Identity("alice", "user", "cryptosign", "static", {"pubkey": ALICE.public_key()})
    assert attempt(authenticator, ALICE, authid="alice") == expected
    assert attempt(authenticator, ALICE_2, authid="alice").authextra == {"pubkey": ALICE_2.public_key()}


def test_autobahn_client_by_pubkey_only(authenticator):
    """A HELLO without authid but with authextra.pubkey (as AuthCryptoSign sends) finds the principal by key."""
    assert attempt(authenticator, BOB, pubkey=BOB.public_key()) == Identity(
        "bob", "backend", "cryptosign", "static", {"pubkey": BOB.public_key()})


def test_authid_and_pubkey_that_belong_together(authenticator):
    """Both given and matching: accepted (the pubkey's hex case does not matter)."""
    assert isinstance(attempt(authenticator, ALICE_2, authid="alice", pubkey=ALICE_2.public_key().upper()), Identity)


def test_authid_and_pubkey_of_different_principals_are_denied(authenticator):
    """Both given but the key is another principal's: challenged like anyone, then refused."""
    answer = attempt(authenticator, BOB, authid="alice", pubkey=BOB.public_key())
    assert isinstance(answer, Denied) and "not one of the authid's keys" in answer.reason


def test_another_principals_key_is_denied(authenticator):
    """Bob's valid signature does not log in as alice."""
    assert attempt(authenticator, BOB, authid="alice") == Denied("wrong cryptosign signature")


def test_unknown_authid_and_unknown_key_are_denied(authenticator):
    """Unknown authids and keys get a challenge, then Denied at finish() with a reason saying which."""
    assert attempt(authenticator, STRANGER, authid="mallory") == Denied("unknown authid")
    assert attempt(authenticator, STRANGER, pubkey=STRANGER.public_key()) == Denied("unknown public key")


def test_unknown_principal_challenge_has_the_same_shape(authenticator):
    """Known and unknown authids (and keys) get challenges with the same keys and value shapes."""
    hellos = [("alice", {}), ("mallory", {}), (None, {"pubkey": BOB.public_key()}),
              (None, {"pubkey": STRANGER.public_key()})]
    challenges = [authenticator.begin(auth_request(authid, authextra=extra, method="cryptosign"))
                  for authid, extra in hellos]
    shapes = {(c.method, tuple(sorted(c.extra)), len(c.extra["challenge"]), c.extra["channel_binding"])
              for c in challenges}
    assert len(shapes) == 1


def test_signature_over_other_data_is_denied(authenticator):
    """A valid signature over something other than our challenge (the client chose what to sign) is refused."""
    request = auth_request("alice", method="cryptosign")
    challenge = authenticator.begin(request)
    own = Challenge("cryptosign", {"challenge": os.urandom(32).hex(), "channel_binding": None})
    assert isinstance(authenticator.finish(request, challenge, sign(ALICE, own), {}), Denied)


def test_answer_to_an_earlier_challenge_is_denied(authenticator):
    """An answer recorded for one challenge does not answer the next."""
    request = auth_request("alice", method="cryptosign")
    old, new = authenticator.begin(request), authenticator.begin(request)
    assert isinstance(authenticator.finish(request, new, sign(ALICE, old), {}), Denied)


def malformed_signatures():
    good = "ab" * 96
    return [None, 5, b"\x00" * 96, "", good[:-2], good + "ab", "zz" + good[2:], " " + good[1:],
            good[:100] + " " + good[101:], "ab" * 64]


@pytest.mark.parametrize("signature", malformed_signatures())
def test_malformed_signature_is_denied(authenticator, signature):
    """Anything but exactly 192 hex characters (64-byte signature + 32-byte challenge) is refused, including hex
    with whitespace that bytes.fromhex would tolerate."""
    request = auth_request("alice", method="cryptosign")
    answer = authenticator.finish(request, authenticator.begin(request), signature, {})
    assert isinstance(answer, Denied) and answer.reason.startswith("malformed")


def test_tampered_signature_is_denied(authenticator):
    """Flipping one bit of a valid signature makes it wrong."""
    request = auth_request("alice", method="cryptosign")
    challenge = authenticator.begin(request)
    signature = sign(ALICE, challenge)
    tampered = format(int(signature[0], 16) ^ 1, "x") + signature[1:]
    assert authenticator.finish(request, challenge, tampered, {}) == Denied("wrong cryptosign signature")


def test_channel_binding_request_is_denied(authenticator):
    """A HELLO asking for tls-unique channel binding is refused at begin() with a clear reason: the router cannot
    verify it yet, and silently ignoring it would mislead the client."""
    answer = authenticator.begin(auth_request("alice", authextra={"channel_binding": "tls-unique"},
                                              method="cryptosign"))
    assert isinstance(answer, Denied) and "channel binding" in answer.reason


@pytest.mark.parametrize("extra", [{"pubkey": "xyz"}, {"pubkey": 5}, {"pubkey": "ab" * 33}])
def test_malformed_pubkey_in_hello_is_denied(authenticator, extra):
    """authextra.pubkey must be 64 hex characters."""
    assert isinstance(authenticator.begin(auth_request("alice", authextra=extra, method="cryptosign")), Denied)


def test_hello_without_authid_or_pubkey_is_denied(authenticator):
    """Nothing names a principal: refused at begin()."""
    assert isinstance(authenticator.begin(auth_request(None, method="cryptosign")), Denied)


def test_finish_without_our_challenge_is_denied(authenticator):
    """finish() with a challenge this plugin did not make (a router bug) refuses rather than raising."""
    request = auth_request("alice", method="cryptosign")
    assert isinstance(authenticator.finish(request, Challenge("cryptosign", {}), "ab" * 96, {}), Denied)
