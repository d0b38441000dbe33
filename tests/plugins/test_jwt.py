"""The `jwt` authenticator: tokens from one issuer for one audience, checked strictly (algorithm, key, time, issuer,
audience, role), optionally single-use, taken from AUTHENTICATE or, when enabled, from the WebSocket handshake."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from twisted.internet import task
from zope.interface.verify import verifyObject

from wampgate.plugins.authn.jwt import JwtAuthenticator
from wampgate.interfaces import IAuthenticator, PluginContext
from wampgate.model import Challenge, Denied, Identity
from tests.plugins import auth_request, config_error, transport

NOW = 1_700_000_000
ISSUER = "https://idp.example.com/"
AUDIENCE = "wampgate"


@pytest.fixture(scope="module")
def keys():
    """One private key per algorithm, made for this test run, and a 48-byte shared secret."""
    return {"HS256": os.urandom(48), "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ES256": ec.generate_private_key(ec.SECP256R1()), "EdDSA": ed25519.Ed25519PrivateKey.generate()}


def public_pem(private_key) -> bytes:
    return private_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                 serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture
def files(tmp_path, keys):
    """The key files, in the directory that stands for the config file's."""
    (tmp_path / "hs256.secret").write_bytes(keys["HS256"])
    for algorithm in ("RS256", "ES256", "EdDSA"):
        (tmp_path / f"{algorithm}.pem").write_bytes(public_pem(keys[algorithm]))
    return tmp_path


@pytest.fixture
def clock():
    clock = task.Clock()
    clock.advance(NOW)
    return clock


def build(files, clock, algorithm="HS256", **config):
    """A JwtAuthenticator for `algorithm` with relative key paths, resolved against the config directory."""
    table = {"algorithms": [algorithm], "issuer": ISSUER, "audience": AUDIENCE}
    table.update({"secret_file": "hs256.secret"} if algorithm == "HS256" else {"public_key": f"{algorithm}.pem"})
    table.update(config)
    return JwtAuthenticator(table, reactor=clock, context=PluginContext(base_dir=files))


def token(keys, algorithm="HS256", key=None, headers=None, **claims) -> str:
    """A token signed by the issuer's key for `algorithm` (or `key`), with valid claims unless overridden."""
    payload = {"sub": "alice", "role": "user", "iss": ISSUER, "aud": AUDIENCE, "exp": NOW + 300, "iat": NOW}
    payload.update(claims)
    payload = {name: value for name, value in payload.items() if value is not None}
    return pyjwt.encode(payload, key if key is not None else keys[algorithm], algorithm=algorithm, headers=headers)


def authenticate(authenticator, signature, authid=None):
    """HELLO (no handshake token) then AUTHENTICATE with `signature` as the token."""
    request = auth_request(authid, method="jwt")
    challenge = authenticator.begin(request)
    assert challenge == Challenge("jwt", {})
    return authenticator.finish(request, challenge, signature, {})


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def hand_made(header: dict, payload: dict, sign) -> str:
    """A token built by hand, as an attacker would, with `sign(signing_input) -> bytes`."""
    signing_input = b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(payload).encode())
    return signing_input + "." + b64url(sign(signing_input.encode()))


ALICE = Identity("alice", "user", "jwt", "jwt")


# -- config --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["HS256", "RS256", "ES256", "EdDSA"])
def test_valid_config_loads(files, clock, algorithm):
    """Each supported algorithm with its key file loads into an IAuthenticator for "jwt"."""
    authenticator = build(files, clock, algorithm)
    assert verifyObject(IAuthenticator, authenticator)
    assert authenticator.authmethod == "jwt"


def test_symmetric_and_asymmetric_together_load(files, clock):
    """HS256 and RS256 may both be listed, each with its own key."""
    build(files, clock, "HS256", algorithms=["HS256", "RS256"], public_key="RS256.pem")


@pytest.mark.parametrize("change, key", [
    ({"algorithms": None}, "algorithms"),
    ({"algorithms": []}, "algorithms"),
    ({"algorithms": ["none"]}, "algorithms[0]"),
    ({"algorithms": ["HS256", "HS512"]}, "algorithms[1]"),
    ({"algorithms": ["HS256", "HS256"]}, "algorithms"),
    ({"secret_file": None}, "secret_file"),
    ({"secret_file": "missing.secret"}, "secret_file"),
    ({"secret_file": "short.secret"}, "secret_file"),
    ({"secret_file": "RS256.pem"}, "secret_file"),
    ({"public_key": "RS256.pem"}, "public_key"),
    ({"issuer": None}, "issuer"),
    ({"issuer": ""}, "issuer"),
    ({"audience": None}, "audience"),
    ({"audience": ["a", "b"]}, "audience"),
    ({"leeway": 301}, "leeway"),
    ({"leeway": -1}, "leeway"),
    ({"leeway": True}, "leeway"),
    ({"authid_claim": 3}, "authid_claim"),
    ({"authrole_claim": ""}, "authrole_claim"),
    ({"roles": []}, "roles"),
    ({"roles": ["user", 2]}, "roles[1]"),
    ({"default_role": 1}, "default_role"),
    ({"single_use": "yes"}, "single_use"),
    ({"max_replay_cache": 10}, "max_replay_cache"),
    ({"single_use": True, "max_replay_cache": 0}, "max_replay_cache"),
    ({"from_header": 1}, "from_header"),
    ({"from_cookie": ""}, "from_cookie"),
    ({"from_query": ["token"]}, "from_query"),
    ({"jwks_url": "https://idp.example.com/jwks"}, "jwks_url"),
])
def test_bad_config_names_the_key(files, clock, change, key):
    """Each kind of mistake raises PluginConfigError naming the exact key ("none" and unsupported algorithms
    included; a key file given for an algorithm not listed; a too-short secret or a key file as HS256 secret)."""
    (files / "short.secret").write_bytes(b"x" * 31)
    table = {"algorithms": ["HS256"], "issuer": ISSUER, "audience": AUDIENCE, "secret_file": "hs256.secret"}
    table.update(change)
    table = {name: value for name, value in table.items() if value is not None}
    error = config_error(JwtAuthenticator, table, reactor=clock, context=PluginContext(base_dir=files))
    assert error.key == key


@pytest.mark.parametrize("algorithm, pem", [("RS256", "ES256.pem"), ("ES256", "EdDSA.pem"), ("EdDSA", "RS256.pem"),
                                            ("RS256", "weak.pem"), ("ES256", "p384.pem"), ("RS256", "hs256.secret")])
def test_public_key_must_fit_the_algorithm(files, clock, algorithm, pem):
    """The public key's type must fit every asymmetric algorithm listed: RSA of 2048 bits or more for RS256, P-256
    for ES256, Ed25519 for EdDSA; anything else is refused at "public_key"."""
    (files / "weak.pem").write_bytes(public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)))
    (files / "p384.pem").write_bytes(public_pem(ec.generate_private_key(ec.SECP384R1())))
    error = config_error(JwtAuthenticator, {"algorithms": [algorithm], "issuer": ISSUER, "audience": AUDIENCE,
                                            "public_key": pem}, reactor=clock, context=PluginContext(base_dir=files))
    assert error.key == "public_key"


def test_relative_path_without_config_directory_is_refused(clock):
    """Without a context there is no directory to resolve a relative path against: refused, never guessed."""
    error = config_error(JwtAuthenticator, {"algorithms": ["HS256"], "issuer": ISSUER, "audience": AUDIENCE,
                                            "secret_file": "hs256.secret"}, reactor=clock)
    assert error.key == "secret_file"


# -- valid tokens --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["HS256", "RS256", "ES256", "EdDSA"])
def test_valid_token_gives_identity(files, clock, keys, algorithm):
    """A token signed with the configured algorithm's key, with the right issuer, audience and times: authid from
    "sub", role from "role", authmethod and authprovider "jwt"."""
    assert authenticate(build(files, clock, algorithm), token(keys, algorithm)) == ALICE


def test_audience_may_be_a_list(files, clock, keys):
    """An "aud" list that includes the configured audience is accepted."""
    assert authenticate(build(files, clock), token(keys, aud=["other", AUDIENCE])) == ALICE


def test_custom_claims_default_role_and_allowed_roles(files, clock, keys):
    """authid_claim and authrole_claim pick other claims; default_role applies when the role claim is absent; roles
    restricts what a token may claim."""
    authenticator = build(files, clock, authid_claim="email", authrole_claim="wamp_role", default_role="guest",
                          roles=["user", "guest"])
    assert authenticate(authenticator, token(keys, email="a@example.com", wamp_role="user")) == Identity(
        "a@example.com", "user", "jwt", "jwt")
    assert authenticate(authenticator, token(keys, email="a@example.com")).authrole == "guest"
    assert isinstance(authenticate(authenticator, token(keys, email="a@example.com", wamp_role="admin")), Denied)
    assert isinstance(authenticate(authenticator, token(keys)), Denied)  # no "email" claim


def test_missing_role_without_default_is_denied(files, clock, keys):
    """No role claim and no default_role: refused."""
    assert isinstance(authenticate(build(files, clock), token(keys, role=None)), Denied)


@pytest.mark.parametrize("claims", [{"sub": None}, {"sub": ""}, {"role": 5}, {"role": ""}])
def test_bad_identity_claims_are_denied(files, clock, keys, claims):
    """A missing or empty authid, or a role that is not a non-empty string, is refused."""
    assert isinstance(authenticate(build(files, clock), token(keys, **claims)), Denied)


def test_hello_authid_must_match_the_token(files, clock, keys):
    """A HELLO authid other than the token's is refused; the same one is fine."""
    authenticator = build(files, clock)
    assert authenticate(authenticator, token(keys), authid="alice") == ALICE
    assert isinstance(authenticate(authenticator, token(keys), authid="admin"), Denied)


# -- refused tokens ------------------------------------------------------------------------------------------------


def test_expired_token_is_denied_after_the_leeway(files, clock, keys):
    """exp is checked against the reactor's clock with the leeway (default 30 s)."""
    authenticator = build(files, clock)
    assert authenticate(authenticator, token(keys, exp=NOW - 29)) == ALICE
    answer = authenticate(authenticator, token(keys, exp=NOW - 31))
    assert isinstance(answer, Denied) and "expired" in answer.reason


def test_not_yet_valid_token_is_denied(files, clock, keys):
    """nbf in the future beyond the leeway is refused; within the leeway it is accepted."""
    authenticator = build(files, clock, leeway=10)
    assert authenticate(authenticator, token(keys, nbf=NOW + 9)) == ALICE
    answer = authenticate(authenticator, token(keys, nbf=NOW + 11))
    assert isinstance(answer, Denied) and "not valid" in answer.reason


@pytest.mark.parametrize("claims", [{"exp": None}, {"exp": "soon"}, {"exp": True}, {"exp": float("nan")},
                                    {"exp": 10 ** 400}, {"nbf": "now"}])
def test_missing_or_odd_times_are_denied(files, clock, keys, claims):
    """exp is required and must be a finite number; nbf, when present, too."""
    assert isinstance(authenticate(build(files, clock), token(keys, **claims)), Denied)


def test_wrong_signature_is_denied(files, clock, keys):
    """A token signed with another key of the right type is refused."""
    assert isinstance(authenticate(build(files, clock), token(keys, key=os.urandom(48))), Denied)
    other = ec.generate_private_key(ec.SECP256R1())
    assert isinstance(authenticate(build(files, clock, "ES256"), token(keys, "ES256", key=other)), Denied)


@pytest.mark.parametrize("claims", [{"iss": "https://idp.example.com"}, {"iss": None}, {"iss": [ISSUER]},
                                    {"aud": "wampgate2"}, {"aud": None}, {"aud": ["x", "y"]}, {"aud": "wamp"},
                                    {"aud": {"aud": AUDIENCE}}])
def test_wrong_issuer_or_audience_is_denied(files, clock, keys, claims):
    """iss must equal the issuer exactly (no prefix, no list); aud must be or include the audience exactly. (Built
    by hand: PyJWT will not encode some of these, but an issuer with another library might.)"""
    payload = {"sub": "alice", "role": "user", "iss": ISSUER, "aud": AUDIENCE, "exp": NOW + 300}
    payload.update(claims)
    payload = {name: value for name, value in payload.items() if value is not None}
    signed = hand_made({"alg": "HS256", "typ": "JWT"}, payload,
                       lambda data: hmac.new(keys["HS256"], data, hashlib.sha256).digest())
    assert isinstance(authenticate(build(files, clock), signed), Denied)


def test_hand_made_tokens_are_accepted_when_right(files, clock, keys):
    """The hand-made token builder above makes tokens the plugin accepts when nothing is wrong with them (so the
    refusals above are for the claim, not the building)."""
    payload = {"sub": "alice", "role": "user", "iss": ISSUER, "aud": AUDIENCE, "exp": NOW + 300}
    signed = hand_made({"alg": "HS256", "typ": "JWT"}, payload,
                       lambda data: hmac.new(keys["HS256"], data, hashlib.sha256).digest())
    assert authenticate(build(files, clock), signed) == ALICE


def test_alg_none_is_denied(files, clock, keys):
    """An unsigned token (alg "none") is refused whatever it claims."""
    unsigned = hand_made({"alg": "none", "typ": "JWT"}, {"sub": "alice", "role": "user", "iss": ISSUER,
                                                         "aud": AUDIENCE, "exp": NOW + 300}, lambda data: b"")
    assert isinstance(authenticate(build(files, clock), unsigned), Denied)
    assert isinstance(authenticate(build(files, clock, "RS256"), unsigned), Denied)


def test_algorithm_not_listed_is_denied(files, clock, keys):
    """A token in an algorithm that is not listed is refused, even if correctly signed."""
    answer = authenticate(build(files, clock, "RS256"), token(keys, "ES256"))
    assert isinstance(answer, Denied) and "not one of" in answer.reason


def confusion_token(keys) -> str:
    """The classic attack: HS256 "signed" with the RS256 public key (which anyone has) as the HMAC secret."""
    claims = {"sub": "admin", "role": "admin", "iss": ISSUER, "aud": AUDIENCE, "exp": NOW + 300}
    pem = public_pem(keys["RS256"])
    return hand_made({"alg": "HS256", "typ": "JWT"}, claims, lambda data: hmac.new(pem, data, hashlib.sha256).digest())


def test_key_confusion_is_denied(files, clock, keys):
    """The confusion token is refused when only RS256 is listed, and when HS256 is listed too (it is checked against
    the real shared secret, never the public key)."""
    assert isinstance(authenticate(build(files, clock, "RS256"), confusion_token(keys)), Denied)
    both = build(files, clock, "HS256", algorithms=["HS256", "RS256"], public_key="RS256.pem")
    assert isinstance(authenticate(both, confusion_token(keys)), Denied)
    assert authenticate(both, token(keys, "RS256")) == ALICE


@pytest.mark.parametrize("signature", [None, 5, b"token", "", "not.a.token", "a.b", "x" * (16 * 1024 + 1)])
def test_malformed_token_is_denied(files, clock, signature):
    """Non-strings, garbage and tokens over 16 KiB are refused."""
    assert isinstance(authenticate(build(files, clock), signature), Denied)


def test_oversized_valid_token_is_denied(files, clock, keys):
    """The 16 KiB limit applies to well-signed tokens too."""
    assert isinstance(authenticate(build(files, clock), token(keys, padding="x" * 16 * 1024)), Denied)


# -- single use --------------------------------------------------------------------------------------------------


def test_single_use_refuses_replay_until_expiry(files, clock, keys):
    """With single_use, a token's second use is refused; its jti is remembered until exp plus leeway, then dropped
    (the token is refused as expired from then on anyway)."""
    authenticator = build(files, clock, single_use=True)
    once = token(keys, jti="t-1", exp=NOW + 60)
    assert authenticate(authenticator, once) == ALICE
    answer = authenticate(authenticator, once)
    assert isinstance(answer, Denied) and "replayed" in answer.reason
    assert authenticator.replay_cache_size == 1
    clock.advance(60 + 30)
    assert isinstance(authenticate(authenticator, once), Denied)
    assert authenticator.replay_cache_size == 1  # still accepted-as-valid time (exp + leeway): still remembered
    clock.advance(1)
    assert authenticator.replay_cache_size == 0
    assert "expired" in authenticate(authenticator, once).reason


def test_single_use_requires_jti(files, clock, keys):
    """In single_use mode a token without a (string) jti is refused."""
    authenticator = build(files, clock, single_use=True)
    assert isinstance(authenticate(authenticator, token(keys)), Denied)
    assert isinstance(authenticate(authenticator, token(keys, jti=7)), Denied)


def test_full_replay_cache_refuses_rather_than_forgets(files, clock, keys):
    """When max_replay_cache unexpired tokens are remembered, new single-use tokens are refused (fail closed); once
    some expire, there is room again."""
    authenticator = build(files, clock, single_use=True, max_replay_cache=2, leeway=0)
    assert authenticate(authenticator, token(keys, jti="a", exp=NOW + 10)) == ALICE
    assert authenticate(authenticator, token(keys, jti="b", exp=NOW + 100)) == ALICE
    answer = authenticate(authenticator, token(keys, jti="c", exp=NOW + 100))
    assert isinstance(answer, Denied) and "full" in answer.reason
    clock.advance(11)
    assert authenticate(authenticator, token(keys, jti="c", exp=NOW + 100)) == ALICE


def test_one_replay_cache_for_every_authenticator_of_the_router(files, clock, keys):
    """Authenticators built with the same plugin context (every listener's, and the new ones a reload builds) share
    one replay cache: a token used with one is refused by the other. Another router (another context) has its own."""
    context = PluginContext(base_dir=files)
    table = {"algorithms": ["HS256"], "issuer": ISSUER, "audience": AUDIENCE, "secret_file": "hs256.secret",
             "single_use": True}
    first = JwtAuthenticator(table, reactor=clock, context=context)
    second = JwtAuthenticator(dict(table, max_replay_cache=10), reactor=clock, context=context)
    elsewhere = JwtAuthenticator(table, reactor=clock, context=PluginContext(base_dir=files))
    once = token(keys, jti="shared-1")
    assert authenticate(first, once) == ALICE
    answer = authenticate(second, once)
    assert isinstance(answer, Denied) and "replayed" in answer.reason
    assert first.replay_cache_size == second.replay_cache_size == 1
    assert authenticate(elsewhere, once) == ALICE


def test_each_authenticator_bounds_the_shared_cache_by_its_own_limit(files, clock, keys):
    """max_replay_cache is the asking authenticator's bound on the shared cache: with 2 tokens remembered, one with
    max_replay_cache = 2 refuses a new token, one with the default admits it."""
    context = PluginContext(base_dir=files)
    table = {"algorithms": ["HS256"], "issuer": ISSUER, "audience": AUDIENCE, "secret_file": "hs256.secret",
             "single_use": True}
    small = JwtAuthenticator(dict(table, max_replay_cache=2), reactor=clock, context=context)
    large = JwtAuthenticator(table, reactor=clock, context=context)
    assert authenticate(large, token(keys, jti="a")) == authenticate(large, token(keys, jti="b")) == ALICE
    answer = authenticate(small, token(keys, jti="c"))
    assert isinstance(answer, Denied) and "full" in answer.reason
    assert authenticate(large, token(keys, jti="c")) == ALICE


def test_replay_cache_entries_have_a_fixed_size(files, clock, keys):
    """The cache keys each token by a 16-byte digest of (issuer, jti), whatever the jti's length."""
    authenticator = build(files, clock, single_use=True)
    assert authenticate(authenticator, token(keys, jti="j" * 256)) == ALICE
    assert [len(key) for key in authenticator._replay._until] == [16]


def test_without_single_use_tokens_can_be_reused(files, clock, keys):
    """By default a token may be used for several sessions until it expires."""
    authenticator = build(files, clock)
    reusable = token(keys)
    assert authenticate(authenticator, reusable) == authenticate(authenticator, reusable) == ALICE
    assert authenticator.replay_cache_size == 0


# -- handshake sources -------------------------------------------------------------------------------------------


def hello_with(**transport_fields):
    return auth_request(None, method="jwt", via=transport(**transport_fields))


def test_handshake_sources_are_ignored_unless_enabled(files, clock, keys):
    """By default a token in the Authorization header, a cookie or the query is ignored: the client is challenged."""
    authenticator = build(files, clock)
    good = token(keys)
    for fields in ({"http_headers": {"authorization": f"Bearer {good}"}}, {"cookies": {"token": good}},
                   {"http_query": {"token": (good,)}}):
        assert authenticator.begin(hello_with(**fields)) == Challenge("jwt", {})


def test_bearer_header_when_enabled(files, clock, keys):
    """from_header: an Authorization Bearer token (scheme in any case) is verified at HELLO, no challenge; a bad one
    is refused; another scheme is not a token (challenge)."""
    authenticator = build(files, clock, from_header=True)
    assert authenticator.begin(hello_with(http_headers={"authorization": f"bearer {token(keys)}"})) == ALICE
    assert isinstance(authenticator.begin(hello_with(http_headers={"authorization": "Bearer junk"})), Denied)
    assert authenticator.begin(hello_with(http_headers={"authorization": "Basic YTpi"})) == Challenge("jwt", {})
    assert authenticator.begin(hello_with()) == Challenge("jwt", {})


def test_cookie_when_enabled(files, clock, keys):
    """from_cookie: the named cookie's token is verified at HELLO; other cookies are not looked at."""
    authenticator = build(files, clock, from_cookie="wamp_token")
    assert authenticator.begin(hello_with(cookies={"wamp_token": token(keys)})) == ALICE
    assert authenticator.begin(hello_with(cookies={"token": token(keys)})) == Challenge("jwt", {})


def test_query_when_enabled(files, clock, keys):
    """from_query: the named query parameter's token is verified at HELLO; a parameter given twice is refused."""
    authenticator = build(files, clock, from_query="access_token")
    assert authenticator.begin(hello_with(http_query={"access_token": (token(keys),)})) == ALICE
    assert isinstance(authenticator.begin(hello_with(http_query={"access_token": (token(keys), token(keys))})),
                      Denied)
    assert authenticator.begin(hello_with(http_query={"other": (token(keys),)})) == Challenge("jwt", {})


def test_handshake_token_is_single_use_too(files, clock, keys):
    """single_use applies whichever way the token came."""
    authenticator = build(files, clock, from_header=True, single_use=True)
    headers = {"authorization": f"Bearer {token(keys, jti='h-1')}"}
    assert authenticator.begin(hello_with(http_headers=headers)) == ALICE
    assert isinstance(authenticator.begin(hello_with(http_headers=headers)), Denied)
