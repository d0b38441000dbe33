"""The `wampcra` authenticator: WAMP-CRA as Autobahn's own client code computes it, plain and salted, and challenges
that do not reveal whether an authid exists."""

from __future__ import annotations

import json
import re

import pytest
from autobahn.wamp import types
from autobahn.wamp.auth import AuthWampCra, compute_wcs, derive_key
from twisted.internet import task
from zope.interface.verify import verifyObject

from wampgate.plugins.authn.wampcra import WampCraAuthenticator
from wampgate.interfaces import IAuthenticator, PluginContext
from wampgate.model import Challenge, Denied, Identity
from tests.plugins import auth_request, config_error

NOW = 1_700_000_000.0  # 2023-11-14T22:13:20Z
BOB_PASSWORD = "bob's password ✓"
BOB_SALT = "fNTMLbR2q7iUhnNpsg0QOQ"  # secrets.token_urlsafe(16)
CAROL_SALT = "Xo3mvJqG3KtAiGjdl6w1ZA"


def salted(authid, role, password, salt, iterations=1000, keylen=32):
    """A salted principal as an operator writes it: only the key derived from the password is stored."""
    return {"authid": authid, "role": role, "salt": salt, "iterations": iterations, "keylen": keylen,
            "derived_key": derive_key(password, salt, iterations, keylen).decode("ascii")}


@pytest.fixture
def config():
    return {"principals": [
        {"authid": "alice", "role": "user", "secret": "alice-secret"},
        salted("bob", "admin", BOB_PASSWORD, BOB_SALT),
        salted("carol", "user", "carol-password", CAROL_SALT),
    ]}


@pytest.fixture
def salted_only():
    """Only salted principals: every unknown authid's fake carries a salt."""
    return {"principals": [salted("bob", "admin", BOB_PASSWORD, BOB_SALT),
                           salted("carol", "user", "carol-password", CAROL_SALT)]}


@pytest.fixture
def clock():
    clock = task.Clock()
    clock.advance(NOW)
    return clock


@pytest.fixture
def authenticator(config, clock):
    return WampCraAuthenticator(config, reactor=clock)


def client_answer(challenge: Challenge, secret: str) -> str:
    """What Autobahn's AuthWampCra sends for `challenge`: the real client code, not a reimplementation."""
    client = AuthWampCra(authid="ignored", secret=secret)
    return client.on_challenge(None, types.Challenge(challenge.method, dict(challenge.extra)))


def attempt(authenticator, authid, secret):
    request = auth_request(authid, method="wampcra")
    challenge = authenticator.begin(request)
    assert isinstance(challenge, Challenge)
    return authenticator.finish(request, challenge, client_answer(challenge, secret), {})


def test_valid_config_loads(authenticator):
    """Plain and salted principals load into an IAuthenticator for "wampcra"."""
    assert verifyObject(IAuthenticator, authenticator)
    assert authenticator.authmethod == "wampcra"


@pytest.mark.parametrize("change, key", [
    (lambda c: c.clear(), "principals"),
    (lambda c: c.update(realm="x"), "realm"),
    (lambda c: c["principals"][0].update(derived_key="abc"), "principals[0].secret"),
    (lambda c: c["principals"][0].update(salt="abc"), "principals[0].salt"),
    (lambda c: c["principals"][0].update(secret=""), "principals[0].secret"),
    (lambda c: c["principals"][0].pop("secret"), "principals[0]"),
    (lambda c: c["principals"][1].pop("salt"), "principals[1].salt"),
    (lambda c: c["principals"][1].update(salt=""), "principals[1].salt"),
    (lambda c: c["principals"][1].pop("iterations"), "principals[1].iterations"),
    (lambda c: c["principals"][1].update(iterations=999), "principals[1].iterations"),
    (lambda c: c["principals"][1].update(iterations="1000"), "principals[1].iterations"),
    (lambda c: c["principals"][1].update(keylen=8), "principals[1].keylen"),
    (lambda c: c["principals"][1].update(keylen=16), "principals[1].derived_key"),  # key is 32 bytes
    (lambda c: c["principals"][1].update(derived_key=c["principals"][1]["derived_key"].rstrip("=")),
     "principals[1].derived_key"),
    (lambda c: c["principals"][1].update(derived_key="not base64!"), "principals[1].derived_key"),
    (lambda c: c["principals"][2].update(password="x"), "principals[2].password"),
    (lambda c: c["principals"][2].update(authid="bob"), "principals[2].authid"),
])
def test_bad_config_names_the_key(config, clock, change, key):
    """Each kind of mistake raises PluginConfigError naming the exact key path."""
    change(config)
    assert config_error(WampCraAuthenticator, config, reactor=clock).key == key


def test_challenge_is_the_json_the_spec_describes(authenticator):
    """The challenge string is JSON with authid, authmethod, authprovider, a random nonce, the reactor's time as UTC
    ISO 8601 and the session id (no role: see below); each challenge has a fresh nonce."""
    first = authenticator.begin(auth_request("alice", method="wampcra", session_id=77))
    second = authenticator.begin(auth_request("alice", method="wampcra", session_id=77))
    body = json.loads(first.extra["challenge"])
    assert set(body) == {"authid", "authmethod", "authprovider", "nonce", "timestamp", "session"}
    assert (body["authid"], body["authmethod"], body["authprovider"], body["session"]) == (
        "alice", "wampcra", "static", 77)
    assert body["timestamp"] == "2023-11-14T22:13:20.000Z"
    assert len(body["nonce"]) >= 32
    assert json.loads(second.extra["challenge"])["nonce"] != body["nonce"]


def test_plain_secret_interoperates_with_autobahn(authenticator):
    """Autobahn's AuthWampCra with the plain secret is accepted; the challenge carries no salt."""
    challenge = authenticator.begin(auth_request("alice", method="wampcra"))
    assert set(challenge.extra) == {"challenge"}
    assert attempt(authenticator, "alice", "alice-secret") == Identity("alice", "user", "wampcra", "static")


def test_salted_principal_interoperates_with_autobahn(authenticator):
    """Autobahn's AuthWampCra derives the key from the password with the salt, iterations and keylen the challenge
    carries, and is accepted: the router never stored the password."""
    challenge = authenticator.begin(auth_request("bob", method="wampcra"))
    assert (challenge.extra["salt"], challenge.extra["iterations"], challenge.extra["keylen"]) == (BOB_SALT, 1000, 32)
    assert attempt(authenticator, "bob", BOB_PASSWORD) == Identity("bob", "admin", "wampcra", "static")


def test_compute_wcs_and_derive_key_directly(authenticator):
    """The same with autobahn.wamp.auth.derive_key and compute_wcs called by hand, as other clients do."""
    request = auth_request("bob", method="wampcra")
    challenge = authenticator.begin(request)
    extra = challenge.extra
    key = derive_key(BOB_PASSWORD, extra["salt"], extra["iterations"], extra["keylen"])
    signature = compute_wcs(key, extra["challenge"]).decode("ascii")
    assert isinstance(authenticator.finish(request, challenge, signature, {}), Identity)


def test_wrong_password_is_denied(authenticator):
    """A wrong secret or password gives Denied("wrong wampcra signature")."""
    assert attempt(authenticator, "alice", "alice-secret ") == Denied("wrong wampcra signature")
    assert attempt(authenticator, "bob", "bob's password") == Denied("wrong wampcra signature")


def test_answer_to_another_challenge_is_denied(authenticator):
    """A valid answer to an earlier challenge does not answer a new one (fresh nonce): no replay."""
    request = auth_request("alice", method="wampcra")
    old = authenticator.begin(request)
    new = authenticator.begin(request)
    assert authenticator.finish(request, new, client_answer(old, "alice-secret"), {}) == Denied(
        "wrong wampcra signature")


def test_unknown_authid_is_denied(authenticator):
    """An unknown authid gets a challenge, and then Denied("unknown authid") whatever it answers."""
    assert attempt(authenticator, "mallory", "alice-secret") == Denied("unknown authid")


@pytest.mark.parametrize("signature", [None, 7, b"abc", "x" * 257, "é" * 44, ""])
def test_malformed_signature_is_denied(authenticator, signature):
    """A signature that is not a string of plausible length, or not the expected base64, is refused."""
    request = auth_request("alice", method="wampcra")
    answer = authenticator.finish(request, authenticator.begin(request), signature, {})
    assert isinstance(answer, Denied)


def test_hello_without_authid_is_denied(authenticator):
    """WAMP-CRA needs an authid: refused at begin()."""
    assert isinstance(authenticator.begin(auth_request(None, method="wampcra")), Denied)


def test_unknown_authid_challenge_looks_like_a_salted_principals(salted_only, clock):
    """With only salted principals, an unknown authid's challenge has the same extra keys and JSON fields as a known
    one's, the configured iterations and keylen, and a salt of the same length and alphabet."""
    authenticator = WampCraAuthenticator(salted_only, reactor=clock)
    known = authenticator.begin(auth_request("bob", method="wampcra"))
    unknown = authenticator.begin(auth_request("mallory", method="wampcra"))
    assert set(unknown.extra) == set(known.extra)
    assert (unknown.extra["iterations"], unknown.extra["keylen"]) == (1000, 32)
    assert len(unknown.extra["salt"]) == len(BOB_SALT)
    assert re.fullmatch(r"[A-Za-z0-9_-]+", unknown.extra["salt"])
    body = json.loads(unknown.extra["challenge"])
    assert set(body) == set(json.loads(known.extra["challenge"]))
    assert body["authid"] == "mallory"


def test_no_challenge_reveals_a_role(authenticator):
    """The challenge names no role at all, for a known principal of either role or an unknown authid: the JSON has
    the same fields for all, no authrole among them, and no role name appears anywhere in what is sent."""
    fields = set()
    for authid in ("alice", "bob", "carol", "mallory"):
        challenge = authenticator.begin(auth_request(authid, method="wampcra"))
        body = json.loads(challenge.extra["challenge"])
        fields.add(frozenset(body))
        assert "authrole" not in body
        assert not {"user", "admin"} & {str(value) for value in [*body.values(), *challenge.extra.values()]}
    assert len(fields) == 1


def shape_of(challenge: Challenge) -> tuple:
    """What a challenge shows of its principal: salted or not, iterations, keylen, salt length and alphabet."""
    extra = challenge.extra
    if "salt" not in extra:
        return ("plain",)
    alphabet = "hex" if re.fullmatch(r"[0-9a-f]+", extra["salt"]) else "base64url"
    return (extra["iterations"], extra["keylen"], len(extra["salt"]), alphabet)


def test_fakes_take_the_shapes_of_the_configured_principals(clock):
    """In a config mixing a plain principal and two salted ones of different parameters and salt forms, each unknown
    authid's fake has the shape of one configured principal, and over many unknown authids every configured shape
    occurs (so no shape marks a fake)."""
    config = {"principals": [
        {"authid": "alice", "role": "user", "secret": "alice-secret"},
        salted("bob", "admin", BOB_PASSWORD, BOB_SALT, iterations=1000, keylen=32),
        salted("dave", "user", "pw", "0123456789abcdef0123456789abcdef", iterations=2000, keylen=16),
    ]}
    authenticator = WampCraAuthenticator(config, reactor=clock)
    configured = {shape_of(authenticator.begin(auth_request(authid, method="wampcra")))
                  for authid in ("alice", "bob", "dave")}
    assert len(configured) == 3
    fakes = {shape_of(authenticator.begin(auth_request(f"ghost-{i}", method="wampcra"))) for i in range(200)}
    assert fakes == configured


def test_fakes_are_the_same_on_every_listener_and_after_a_reload(salted_only, clock):
    """Authenticators built with the same plugin context (as the router builds every listener's, and the new ones
    of a reload) give an unknown authid the same fake salt; another router process (another context) gives
    another."""
    context = PluginContext(base_dir=None)
    first = WampCraAuthenticator(salted_only, reactor=clock, context=context)
    second = WampCraAuthenticator(salted_only, reactor=clock, context=context)
    elsewhere = WampCraAuthenticator(salted_only, reactor=clock, context=PluginContext(base_dir=None))
    salts = [a.begin(auth_request("mallory", method="wampcra")).extra["salt"] for a in (first, second, elsewhere)]
    assert salts[0] == salts[1] != salts[2]


def test_unknown_authid_salt_is_stable_across_probes(salted_only, clock):
    """Repeated probes for the same unknown authid see the same salt (as for a real user); other authids see others."""
    authenticator = WampCraAuthenticator(salted_only, reactor=clock)
    salts = {authenticator.begin(auth_request("mallory", method="wampcra")).extra["salt"] for _ in range(5)}
    assert len(salts) == 1
    assert authenticator.begin(auth_request("trudy", method="wampcra")).extra["salt"] not in salts


def test_hex_salts_give_hex_decoys(clock):
    """When the configured salts are hex, decoy salts are hex of the same length."""
    config = {"principals": [salted("dave", "user", "pw", "0123456789abcdef0123456789abcdef")]}
    unknown = WampCraAuthenticator(config, reactor=clock).begin(auth_request("mallory", method="wampcra"))
    assert re.fullmatch(r"[0-9a-f]{32}", unknown.extra["salt"])


def test_plain_only_config_gives_unsalted_decoys(clock):
    """With only plain-secret principals, unknown authids get an unsalted challenge too, like everyone else."""
    config = {"principals": [{"authid": "alice", "role": "user", "secret": "s"}]}
    authenticator = WampCraAuthenticator(config, reactor=clock)
    known = authenticator.begin(auth_request("alice", method="wampcra"))
    unknown = authenticator.begin(auth_request("mallory", method="wampcra"))
    assert set(known.extra) == set(unknown.extra) == {"challenge"}
