"""The `scram` authenticator and the channel binding checks, called directly with Autobahn's `AuthScram` as the
client: every bad config value stops start-up naming its key; every malformed HELLO or AUTHENTICATE is denied;
a binding is honoured only when the connection has it, and a `required` policy refuses logins without one; the
dynamic authenticator's material is validated by the same constructors.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

import pytest
import txaio
from autobahn.wamp.auth import AuthScram
from autobahn.wamp.cryptosign import CryptosignKey
from autobahn.wamp.types import Challenge as ClientChallenge

from wampgate import scramkeys
from wampgate.model import Challenge, Denied, Identity
from wampgate.plugins.authn import material
from wampgate.plugins.authn.cryptosign import CryptosignAuthenticator
from wampgate.plugins.authn.scram import ScramAuthenticator
from tests.plugins import auth_request, config_error, transport

txaio.use_twisted()  # CryptosignKey answers with a txaio future

PASSWORD = "correct horse"
CREDENTIALS = scramkeys.derive(PASSWORD, scramkeys.ARGON2ID13, iterations=1, memory=8192)
PBKDF2 = scramkeys.derive(PASSWORD, scramkeys.PBKDF2, iterations=4096)
UNIQUE = b"\x01" * 12  # a TLS 1.2 Finished message's verify_data
EXPORTED = b"\x02" * 32


def row(credentials=CREDENTIALS, **more) -> dict:
    values = {"authid": "alice", "role": "user", "kdf": credentials.kdf, "iterations": credentials.iterations,
              "salt": scramkeys.b64(credentials.salt), "stored_key": scramkeys.b64(credentials.stored_key),
              "server_key": scramkeys.b64(credentials.server_key)}
    if credentials.memory is not None:
        values["memory"] = credentials.memory
    values.update(more)
    return {key: value for key, value in values.items() if value is not None}


def scram(*rows, **table) -> ScramAuthenticator:
    return ScramAuthenticator({"principals": list(rows or [row()]), **table})


class _Session:
    class log:
        error = info = staticmethod(lambda *args, **kw: None)


def login(authenticator, authid="alice", password=PASSWORD, *, via=None, extra=None):
    """HELLO, CHALLENGE, AUTHENTICATE with Autobahn's AuthScram; (the answer, the client)."""
    client = AuthScram(authid=authid, password=password)
    request = auth_request(authid, authextra={**client.authextra, **(extra or {})}, method="scram", via=via)
    challenge = authenticator.begin(request)
    if not isinstance(challenge, Challenge):
        return challenge, client
    proof = client.on_challenge(_Session, ClientChallenge("scram", challenge.extra)).decode("ascii")
    return authenticator.finish(request, challenge, proof, {}), client


# -- config ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad,key", [
    ({"kdf": "scrypt"}, "principals[0].kdf"),
    ({"iterations": 0}, "principals[0].iterations"),
    ({"iterations": 65}, "principals[0].iterations"),
    ({"memory": 1024}, "principals[0].memory"),
    ({"memory": 4 * 1024 * 1024}, "principals[0].memory"),
    ({"memory": None}, "principals[0].memory"),
    ({"salt": "c2FsdA=="}, "principals[0].salt"),  # 4 bytes: too short
    ({"salt": "not base64!"}, "principals[0].salt"),
    ({"stored_key": "AAAA"}, "principals[0].stored_key"),
    ({"server_key": scramkeys.b64(b"k" * 31)}, "principals[0].server_key"),
    ({"channel_binding": "sometimes"}, "principals[0].channel_binding"),
    ({"password": "x"}, "principals[0].password"),
])
def test_bad_principal_values_name_their_key(bad, key):
    """Absurd or malformed stored credentials stop start-up, naming the key (bounded costs: argon2 iterations 1 to
    64, memory 8 MiB to 1 GiB; pbkdf2 4096 to 10 million iterations)."""
    config = {"principals": [row(**bad)]}
    assert config_error(ScramAuthenticator, config).key == key


def test_pbkdf2_bounds_and_memory_refused():
    """PBKDF2 below 4096 iterations, or with a memory cost, is refused."""
    assert config_error(ScramAuthenticator, {"principals": [row(PBKDF2, iterations=1000)]}).key == \
        "principals[0].iterations"
    assert config_error(ScramAuthenticator, {"principals": [row(PBKDF2, memory=8192)]}).key == "principals[0].memory"


def test_table_channel_binding_must_be_a_policy():
    assert config_error(ScramAuthenticator, {"principals": [row()], "channel_binding": "yes"}).key == \
        "channel_binding"
    assert config_error(CryptosignAuthenticator, {"principals": [], "channel_binding": True}).key == \
        "channel_binding"


# -- the exchange ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["argon2id13", "argon2id-13"])
def test_autobahn_client_logs_in_and_verifies_the_server(spelling):
    """Autobahn's AuthScram logs in; its own check of the server signature passes."""
    identity, client = login(scram(row(kdf=spelling)))
    assert isinstance(identity, Identity) and (identity.authid, identity.authrole) == ("alice", "user")
    assert client.on_welcome(_Session, identity.authextra) is None


def test_a_principal_realm_is_reported_and_carried_by_the_identity():
    """A principal's `realm` (a HELLO without a realm joins it; one naming another is refused by the router)."""
    authenticator = scram(row(realm="realm1"), row(authid="bob", realm=None))
    assert authenticator.realms() == {"principals[0].realm": "realm1"}
    identity, _ = login(authenticator)
    assert identity.realm == "realm1"
    identity, _ = login(authenticator, "bob")
    assert identity.realm is None


def test_wrong_password_and_unknown_authid_are_denied_after_a_challenge_of_the_same_shape():
    authenticator = scram()
    assert login(authenticator, password="wrong")[0] == Denied("wrong scram proof")
    assert login(authenticator, authid="zoe")[0] == Denied("unknown authid")
    known = authenticator.begin(auth_request("alice", authextra={"nonce": scramkeys.b64(os.urandom(16))}))
    unknown = authenticator.begin(auth_request("zoe", authextra={"nonce": scramkeys.b64(os.urandom(16))}))
    assert known.extra.keys() == unknown.extra.keys()
    assert len(known.extra["salt"]) == len(unknown.extra["salt"])


@pytest.mark.parametrize("nonce", [None, 7, "", "c2FsdA==", "not base64!", "YWJjZGVmZ2hpams", "A" * 200])
def test_bad_client_nonces_are_denied(nonce):
    """The nonce must be canonical base64 of 8 to 64 bytes."""
    extra = {} if nonce is None else {"nonce": nonce}
    assert isinstance(scram().begin(auth_request("alice", authextra=extra, method="scram")), Denied)


def test_authid_saslprep_refusal_and_missing_authid():
    extra = {"nonce": scramkeys.b64(os.urandom(16))}
    assert isinstance(scram().begin(auth_request(None, authextra=extra)), Denied)
    assert isinstance(scram().begin(auth_request("bad\u0007id", authextra=extra)), Denied)


@pytest.mark.parametrize("answer_extra", [
    {"nonce": "b3RoZXIgbm9uY2U="},
    {"channel_binding": "tls-unique"},
    {"cbind_data": "AAAA"},
])
def test_authenticate_extra_that_contradicts_the_exchange_is_denied(answer_extra):
    """AUTHENTICATE naming another nonce, a binding HELLO did not ask for, or binding data without a binding."""
    authenticator = scram()
    client = AuthScram(authid="alice", password=PASSWORD)
    request = auth_request("alice", authextra=client.authextra)
    challenge = authenticator.begin(request)
    proof = client.on_challenge(_Session, ClientChallenge("scram", challenge.extra)).decode("ascii")
    assert isinstance(authenticator.finish(request, challenge, proof, answer_extra), Denied)
    assert isinstance(authenticator.finish(request, challenge, "short", {}), Denied)
    assert isinstance(authenticator.finish(request, Challenge("scram", {}), proof, {}), Denied)


# -- channel binding -------------------------------------------------------------------------------------------------


def bound_proof(challenge, kind: str, data: bytes, client_nonce: str, password: str = PASSWORD) -> tuple[str, dict]:
    """The spec's client-final message with a binding."""
    extra = challenge.extra
    salted = scramkeys.salted_password(password, scramkeys.ARGON2ID13, base64.b64decode(extra["salt"]),
                                       extra["iterations"], extra["memory"])
    c = "c=" + scramkeys.b64(f"p={kind},,".encode() + data)
    message = (f"n=alice,r={client_nonce},r={extra['nonce']},s={extra['salt']},i={extra['iterations']},"
               f"{c},r={extra['nonce']}").encode()
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    signature = hmac.new(hashlib.sha256(client_key).digest(), message, hashlib.sha256).digest()
    proof = bytes(a ^ b for a, b in zip(client_key, signature))
    return scramkeys.b64(proof), {"nonce": extra["nonce"], "channel_binding": kind,
                                  "cbind_data": scramkeys.b64(data)}


@pytest.mark.parametrize("kind,data", [("tls-unique", UNIQUE), ("tls-exporter", EXPORTED)])
def test_scram_binding_is_honoured_and_another_connections_is_denied(kind, data):
    via = transport(channel_bindings={kind: data})
    authenticator = scram(row(channel_binding="required"))
    nonce = scramkeys.b64(os.urandom(16))
    request = auth_request("alice", authextra={"nonce": nonce, "channel_binding": kind}, via=via)
    challenge = authenticator.begin(request)
    proof, extra = bound_proof(challenge, kind, data, nonce)
    assert isinstance(authenticator.finish(request, challenge, proof, extra), Identity)
    proof, extra = bound_proof(challenge, kind, b"\x03" * len(data), nonce)
    assert authenticator.finish(request, challenge, proof, extra) == Denied(
        "the channel binding data is not this connection's")


@pytest.mark.parametrize("kind,offered", [
    ("tls-unique", {"tls-exporter": EXPORTED}), ("tls-exporter", {"tls-unique": UNIQUE}), ("tls-unique", {}),
    ("tls-server-end-point", {"tls-unique": UNIQUE}), (5, {"tls-unique": UNIQUE}),
])
def test_a_binding_the_connection_lacks_is_denied_at_hello(kind, offered):
    via = transport(channel_bindings=offered)
    hello = {"nonce": scramkeys.b64(os.urandom(16)), "channel_binding": kind}
    assert isinstance(scram().begin(auth_request("alice", authextra=hello, via=via)), Denied)
    signer = CryptosignKey.from_bytes(os.urandom(32))
    authenticator = CryptosignAuthenticator({"principals": [
        {"authid": "alice", "role": "user", "public_keys": [signer.public_key()]}]})
    assert isinstance(authenticator.begin(auth_request("alice", authextra={"channel_binding": kind}, via=via)),
                      Denied)


def test_required_binding_denies_a_right_answer_without_one():
    """On the principal or the whole table, `required` refuses a correct proof made without a binding."""
    for authenticator in (scram(row(channel_binding="required")), scram(channel_binding="required")):
        assert isinstance(login(authenticator, via=transport(channel_bindings={"tls-unique": UNIQUE}))[0], Denied)
    assert isinstance(login(scram(row(channel_binding="optional"), channel_binding="required"))[0], Identity)


@pytest.mark.parametrize("kind,data,channel_id", [
    ("tls-unique", UNIQUE, hashlib.sha256(UNIQUE).digest()), ("tls-exporter", EXPORTED, EXPORTED)])
def test_cryptosign_binding_xors_the_channel_id_into_the_challenge(kind, data, channel_id):
    """Autobahn's signer with the channel id (SHA-256 of tls-unique; the exporter's bytes) is accepted; the same
    signer without it, or with another connection's, is not."""
    signer = CryptosignKey.from_bytes(os.urandom(32))
    authenticator = CryptosignAuthenticator({"principals": [
        {"authid": "alice", "role": "user", "public_keys": [signer.public_key()], "channel_binding": "required"}]})
    request = auth_request("alice", authextra={"channel_binding": kind}, method="cryptosign",
                           via=transport(channel_bindings={kind: data}))
    challenge = authenticator.begin(request)
    assert challenge.extra["channel_binding"] == kind
    client_challenge = ClientChallenge("cryptosign", challenge.extra)

    def signed(channel):
        result = []
        signer.sign_challenge(client_challenge, channel_id=channel, channel_id_type="tls-unique" if channel else None
                              ).addCallback(result.append)
        return result[0]

    assert isinstance(authenticator.finish(request, challenge, signed(channel_id), {}), Identity)
    assert isinstance(authenticator.finish(request, challenge, signed(None), {}), Denied)
    assert isinstance(authenticator.finish(request, challenge, signed(b"\x09" * 32), {}), Denied)
    unbound = auth_request("alice", method="cryptosign", via=transport(channel_bindings={kind: data}))
    plain = authenticator.begin(unbound)
    answer = []
    signer.sign_challenge(ClientChallenge("cryptosign", plain.extra)).addCallback(answer.append)
    assert isinstance(authenticator.finish(unbound, plain, answer[0], {}), Denied)


# -- dynamic material ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method,answer,problem", [
    ("scram", "user", "expected a dict"),
    ("scram", {"role": "user", "secret": "x"}, "secret: unknown key"),
    ("scram", {"role": "user", **{k: v for k, v in row(iterations=999).items() if k not in ("authid", "role")}},
     "iterations: expected an integer from 1 to 64"),
    ("wampcra", {"secret": "x"}, "role: missing"),
    ("wampcra", {"role": "user", "derived_key": "x", "salt": "s", "iterations": 10, "keylen": 32}, "iterations"),
    ("cryptosign", {"role": "user", "public_keys": ["zz"]}, "public_keys[0]"),
    ("tls", {"role": "user", "authid_from": "serial"}, "authid_from"),
])
def test_invalid_dynamic_material_is_reported_naming_the_key(method, answer, problem):
    """What a backend returns goes through the static constructors: the problem names the key."""
    with pytest.raises(material.InvalidMaterial) as caught:
        material.authenticator_for(method, "alice", answer, reactor=None, context=None)
    assert problem in str(caught.value)
