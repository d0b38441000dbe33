"""Authentication end to end: real Autobahn (Twisted) clients over real sockets against a real router, for every
built-in method (ticket, wampcra plain and salted, cryptosign, tls, jwt with a challenge and from the WebSocket
`Authorization` header, dynamic through a backend procedure) and for a third-party authenticator installed with pip.

Pins down: the right credentials join with the expected authid / authrole / authmethod / authprovider in WELCOME;
every wrong credential gets ABORT `wamp.error.authentication_failed` with one generic text that never says whether
the authid exists; an unoffered method gets `wamp.error.no_auth_method`; repeated failures are slowed down and then
locked out for exactly the configured time; a client stalled in the challenge is dropped at `hello_timeout` while
others are served; an authenticator that raises or never answers refuses (after `auth_timeout`) and the router goes
on; no ticket secret ever reaches the log. The guard against abuse: failures count per (method, authid) and per
address, only the identity that really authenticated is cleared, router-caused timeouts never count, logins are
rate-limited per address, oversized authids and authextras are refused before any table holds them, and single-use
JWTs cannot be replayed on another listener or after a reload. (How long refusals of unknown vs known authids take
is measured by `python -m bench.auth_timing`, not here.)
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import secrets as random_secrets
import shutil
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import jwt as pyjwt
import pytest
import pytest_twisted
import txaio
from autobahn.wamp.cryptosign import CryptosignKey
from autobahn.wamp.exception import ApplicationError
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.internet import defer, task
from twisted.logger import formatEvent, globalLogPublisher
from zope.interface import implementer

from wampgate.interfaces import IAuthenticator
from wampgate.model import Challenge, Denied, Identity
from wampgate.passwords import hash_secret
from tests.support import auth_clients as auth
from tests.support import wait
from tests.support.clients import Refused, Target, connect
from tests.support.clients import leave as leave_plain
from tests.support.raw import bounded
from tests.support.router import listener, start_router

txaio.use_twisted()  # CryptosignKey.sign_challenge answers with a txaio future

AUTHENTICATION_FAILED = "wamp.error.authentication_failed"
NO_AUTH_METHOD = "wamp.error.no_auth_method"
REALM = "realm1"
ISSUER = "https://idp.example.test"
AUDIENCE = "wampgate-tests"
PROCEDURE = "com.example.authenticate"

# Ticket and WAMP-CRA users. Tickets are stored as scrypt hashes (ln=15, ~0.1 s a check): keep attempts few.
ALICE_TICKET = "alice-ticket-correct-horse"
CAROL_SECRET = "carol-plain-secret"  # wampcra, stored in the clear
DAVE_PASSWORD = "dave-salted-password"  # wampcra, stored as a PBKDF2 derived key
DAVE_SALT, DAVE_ITERATIONS, DAVE_KEYLEN = "c2FsdC1mb3ItZGF2ZQ", 1000, 32
DYNAMIC_TICKET = "dyn-ticket-42"

# Lockout off unless a test turns it on: every client connects from 127.0.0.1, and failures count per peer too.
NO_LOCKOUT = {"delay_after": 1000, "lockout_after": 100_000}


def _reactor():
    from twisted.internet import reactor

    return reactor


def now() -> float:
    return _reactor().seconds()


def sleep(seconds: float) -> defer.Deferred:
    return task.deferLater(_reactor(), seconds, lambda: None)


# -- misbehaving authenticators, loaded by "module:Object" path ------------------------------------------------------


class _Misbehaving:
    def __init__(self, config, *, reactor):
        self._config = dict(config)


@implementer(IAuthenticator)
class RaisingAtHello(_Misbehaving):
    """begin() raises."""

    authmethod = "raise-hello"

    def begin(self, request):
        raise RuntimeError("test authenticator failure at HELLO")

    def finish(self, request, challenge, signature, extra):
        return Denied("unreachable")


@implementer(IAuthenticator)
class RaisingAtAnswer(_Misbehaving):
    """Challenges, then finish() raises."""

    authmethod = "raise-answer"

    def begin(self, request):
        return Challenge("ticket", {})

    def finish(self, request, challenge, signature, extra):
        raise RuntimeError("test authenticator failure at AUTHENTICATE")


@implementer(IAuthenticator)
class SilentAtHello(_Misbehaving):
    """begin() returns a Deferred that never fires."""

    authmethod = "silent-hello"

    def begin(self, request):
        return defer.Deferred()

    def finish(self, request, challenge, signature, extra):
        return Denied("unreachable")


@implementer(IAuthenticator)
class SilentAtAnswer(_Misbehaving):
    """Challenges, then finish() returns a Deferred that never fires."""

    authmethod = "silent-answer"

    def begin(self, request):
        return Challenge("ticket", {})

    def finish(self, request, challenge, signature, extra):
        return defer.Deferred()


MISBEHAVING = {cls.authmethod: f"{__name__}:{cls.__name__}"
               for cls in (RaisingAtHello, RaisingAtAnswer, SilentAtHello, SilentAtAnswer)}


@implementer(IAuthenticator)
class Scripted(_Misbehaving):
    """Does what HELLO's `authextra.do` says, at once: "accept" (the HELLO's authid, role user), "silent" (never
    answers), anything else refuses. Counts how often it was asked: a fast stand-in for a real method."""

    authmethod = "scripted"

    def __init__(self, config, *, reactor):
        super().__init__(config, reactor=reactor)
        self.asked = 0

    def begin(self, request):
        self.asked += 1
        action = request.authextra.get("do")
        if action == "accept" and request.authid:
            return Identity(request.authid, "user", "scripted", "test")
        if action == "silent":
            return defer.Deferred()
        return Denied("scripted refusal")

    def finish(self, request, challenge, signature, extra):
        return Denied("no challenge")


SCRIPTED = f"{__name__}:{Scripted.__name__}"


# -- key material and config -------------------------------------------------------------------------------------------


class Material:
    """Every credential the tests use, made once per module: hashes, keys, key files."""

    def __init__(self, directory: Path):
        self.alice_hash = hash_secret(ALICE_TICKET)
        self.dave_key = _derive(DAVE_PASSWORD)
        self.erin = CryptosignKey.from_bytes(os.urandom(32))
        self.stranger = CryptosignKey.from_bytes(os.urandom(32))
        self.es256 = ec.generate_private_key(ec.SECP256R1())
        self.es256_other = ec.generate_private_key(ec.SECP256R1())
        self.public_key_file = directory / "jwt-public.pem"
        self.public_key_file.write_bytes(self.es256.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
        self.hs256 = random_secrets.token_hex(32).encode("ascii")
        self.secret_file = directory / "jwt-hs256.secret"
        self.secret_file.write_bytes(self.hs256)

    def token(self, algorithm: str = "ES256", *, key=None, lifetime: float = 300.0, **claims) -> str:
        """A JWT from our issuer for our audience, for "frank" as "user" unless `claims` say otherwise."""
        body = {"sub": "frank", "role": "user", "iss": ISSUER, "aud": AUDIENCE, "iat": int(time.time()),
                "exp": int(time.time() + lifetime), **claims}
        if key is None:
            key = self.es256 if algorithm == "ES256" else self.hs256
        return pyjwt.encode(body, key, algorithm=algorithm)


def _derive(password: str) -> str:
    from autobahn.wamp.auth import derive_key

    return derive_key(password, DAVE_SALT, DAVE_ITERATIONS, DAVE_KEYLEN).decode("ascii")


@pytest.fixture(scope="module")
def material(tmp_path_factory) -> Material:
    return Material(tmp_path_factory.mktemp("auth-material"))


def toml(value) -> str:
    """A Python value as a TOML inline value (tables inline, strings JSON-quoted, which TOML accepts)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str | Path):
        return json.dumps(str(value))
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml(v) for v in value) + "]"
    return "{ " + ", ".join(f"{json.dumps(k)} = {toml(v)}" for k, v in value.items()) + " }"


def methods(**tables) -> str:
    """`[listeners.auth]` lines, one authenticator each (names quoted: "module:Object" paths need it)."""
    return "\n".join(f"{json.dumps(name)} = {toml(options)}" for name, options in tables.items())


ALL_ACTIONS = '["publish", "subscribe", "call", "register"]'


def realm_toml() -> str:
    roles = "".join(f"""
[[realms.roles]]
name = "{role}"
[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = {ALL_ACTIONS}
""" for role in ("anonymous", "user", "admin", "device"))
    return f"""
[[realms]]
name = "{REALM}"
{roles}
[[realms]]
name = "backend"
[[realms.roles]]
name = "backend"
[[realms.roles.permissions]]
uri = "{PROCEDURE}"
allow = ["register"]
"""


def limits_toml(hello_timeout: float = 10.0, auth_timeout: float = 5.0, limits: dict | None = None,
                **failures) -> str:
    """`[limits]` (the timeouts and `limits`) and `[limits.auth_failures]` (NO_LOCKOUT, then `failures`)."""
    lines = [f"[limits]\nhello_timeout = {hello_timeout}\nauth_timeout = {auth_timeout}"]
    lines += [f"{key} = {toml(value)}" for key, value in (limits or {}).items()]
    lines += ["[limits.auth_failures]"]
    lines += [f"{key} = {toml(value)}" for key, value in {**NO_LOCKOUT, **failures}.items()]
    return "\n".join(lines) + "\n"


def config(material: Material, certs, *, limits: str | None = None, extra_listeners: str = "") -> str:
    """The router: one listener per way in (see each `listener(...)`), realm1 for clients, `backend` for the
    dynamic authenticator's backend."""
    m = material
    plain = methods(
        ticket={"principals": [{"authid": "alice", "role": "user", "secret_hash": m.alice_hash}]},
        wampcra={"principals": [
            {"authid": "carol", "role": "user", "secret": CAROL_SECRET},
            {"authid": "dave", "role": "admin", "derived_key": m.dave_key, "salt": DAVE_SALT,
             "iterations": DAVE_ITERATIONS, "keylen": DAVE_KEYLEN},
        ]},
        cryptosign={"principals": [{"authid": "erin", "role": "device", "public_keys": [m.erin.public_key()]}]},
        jwt={"algorithms": ["ES256", "HS256"], "public_key": m.public_key_file, "secret_file": m.secret_file,
             "issuer": ISSUER, "audience": AUDIENCE, "roles": ["user", "admin"]},
    )
    jwt_once = methods(jwt={"algorithms": ["ES256"], "public_key": m.public_key_file, "issuer": ISSUER,
                            "audience": AUDIENCE, "single_use": True, "from_header": True})
    tls_cn = methods(tls={"principals": [{"authid": "client-alice", "role": "device"}]})
    tls_dns = methods(tls={"authid_from": "dns", "principals": [{"authid": "alice.clients.example", "role": "user"}]})
    dynamic = methods(dynamic={"procedure": PROCEDURE, "realm": "backend", "timeout": 2.0,
                                "backend_authrole": "backend"})
    return (
        (limits or limits_toml())
        + listener("plain", auth=plain)
        + listener("jwt-once", ("websocket",), auth=jwt_once)
        + listener("tls-cn", tls=certs, auth=tls_cn)
        + listener("tls-dns", ("websocket",), tls=certs, auth=tls_dns)
        + listener("dynamic", auth=dynamic)
        + listener("backend", ("websocket",), auth=methods(anonymous={"role": "backend", "realms": ["backend"]}))
        + listener("anon", auth=methods(anonymous={"role": "anonymous", "realms": [REALM]}))
        + listener("faulty", ("websocket",), auth=methods(**{path: {} for path in MISBEHAVING.values()},
                                                          **{SCRIPTED: {}}))
        + extra_listeners
        + realm_toml()
    )


@contextlib.asynccontextmanager
async def running(toml_text: str, directory: Path):
    """A router for one test, stopped (its sessions dropped) whatever happens."""
    router = await start_router(toml_text, directory)
    try:
        yield router
    finally:
        await router.stop()


@pytest_twisted.async_yield_fixture()
async def router(tmp_path, certs, material):
    async with running(config(material, certs), tmp_path) as started:
        yield started


def at(router, name: str, transport: str = "websocket", serializer: str = "json", *, certs=None,
       client_cert=None) -> Target:
    return Target(port=router.port(name), transport=transport, serializer=serializer,
                  tls_ca=certs.ca if certs is not None else None, client_cert=client_cert)


def assert_welcome(session, authid: str, authrole: str, authmethod: str, authprovider: str) -> None:
    welcome = session.welcome
    assert (welcome.realm, welcome.authid, welcome.authrole, welcome.authmethod, welcome.authprovider) == (
        REALM, authid, authrole, authmethod, authprovider)


def assert_refused(refusal: Refused, *authids: str) -> str:
    """ABORT authentication_failed, with a text that names none of `authids`; returns the text."""
    assert isinstance(refusal, Refused)
    assert refusal.reason == AUTHENTICATION_FAILED, refusal
    assert refusal.message, refusal
    for authid in authids:
        assert authid not in refusal.message
    return refusal.message


# The router completes a fresh join and a pub/sub round trip on both transports.
still_serves = partial(wait.still_serves, listener="anon")


# -- ticket ----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport,serializer", [("websocket", "json"), ("rawsocket", "msgpack")])
@pytest_twisted.ensureDeferred
async def test_ticket_right_secret_joins(router, transport, serializer):
    """alice with her ticket joins over WebSocket and RawSocket: WELCOME says alice / user / ticket / static, and
    the CHALLENGE for a ticket carries nothing."""
    session = await auth.join(at(router, "plain", transport, serializer), authmethods=["ticket"], authid="alice",
                              answer=auth.ticket(ALICE_TICKET))
    assert_welcome(session, "alice", "user", "ticket", "static")
    assert [(c.method, c.extra) for c in session.challenges] == [("ticket", {})]
    await auth.leave(session)


@pytest_twisted.ensureDeferred
async def test_ticket_wrong_secret_and_unknown_user_get_the_same_refusal(router):
    """A wrong ticket for alice and any ticket for an unknown authid both get ABORT authentication_failed with the
    same text, after the same empty challenge: nothing tells the client whether the authid exists."""
    target = at(router, "plain")
    wrong = await auth.refused(target, authmethods=["ticket"], authid="alice", answer=auth.ticket("not-it"))
    unknown = await auth.refused(target, authmethods=["ticket"], authid="nobody", answer=auth.ticket(ALICE_TICKET))
    assert assert_refused(wrong, "alice") == assert_refused(unknown, "nobody")
    no_authid = await auth.refused(target, authmethods=["ticket"], answer=auth.ticket(ALICE_TICKET))
    assert no_authid.reason == AUTHENTICATION_FAILED and no_authid.message == wrong.message


# -- wampcra ---------------------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_wampcra_plain_and_salted_secrets_join(router):
    """carol (plain secret) and dave (PBKDF2-derived key) answer the WAMP-CRA challenge as Autobahn computes it and
    join with their roles; dave's challenge carries his salt, iterations and keylen, carol's none."""
    target = at(router, "plain")
    carol = await auth.join(target, authmethods=["wampcra"], authid="carol", answer=auth.wampcra(CAROL_SECRET))
    assert_welcome(carol, "carol", "user", "wampcra", "static")
    assert "salt" not in carol.challenges[0].extra
    dave = await auth.join(target, authmethods=["wampcra"], authid="dave", answer=auth.wampcra(DAVE_PASSWORD))
    assert_welcome(dave, "dave", "admin", "wampcra", "static")
    extra = dave.challenges[0].extra
    assert (extra["salt"], extra["iterations"], extra["keylen"]) == (DAVE_SALT, DAVE_ITERATIONS, DAVE_KEYLEN)
    assert json.loads(extra["challenge"])["authid"] == "dave"
    await auth.leave(carol)
    await auth.leave(dave)


@pytest_twisted.ensureDeferred
async def test_wampcra_wrong_secrets_and_unknown_user_get_the_same_refusal(router):
    """A wrong plain secret, a wrong salted password and an unknown authid all get ABORT authentication_failed
    with one text; the unknown authid still gets a challenge of a configured principal's shape (carol's plain one
    or dave's salted one, with his iterations and keylen)."""
    target = at(router, "plain")
    plain = await auth.refused(target, authmethods=["wampcra"], authid="carol", answer=auth.wampcra("nope"))
    salted = await auth.refused(target, authmethods=["wampcra"], authid="dave", answer=auth.wampcra("nope"))
    session, unknown = await auth.attempt(target, authmethods=["wampcra"], authid="zed", answer=auth.wampcra("x"))
    extra = session.challenges[0].extra
    shape = (extra.get("iterations"), extra.get("keylen"), len(extra.get("salt", "")))
    assert shape in {(None, None, 0), (DAVE_ITERATIONS, DAVE_KEYLEN, len(DAVE_SALT))}, extra
    assert assert_refused(plain, "carol") == assert_refused(salted, "dave") == assert_refused(unknown, "zed")


# -- cryptosign ------------------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_cryptosign_key_holder_joins_by_authid_or_by_public_key(router, material):
    """erin signs the challenge with her Ed25519 key (Autobahn's CryptosignKey) and joins as erin / device /
    cryptosign / static, named by authid or only by authextra.pubkey; WELCOME's authextra names the key used."""
    target = at(router, "plain")
    by_authid = await auth.join(target, authmethods=["cryptosign"], authid="erin",
                                answer=auth.cryptosign(material.erin))
    assert_welcome(by_authid, "erin", "device", "cryptosign", "static")
    assert by_authid.welcome.authextra == {"pubkey": material.erin.public_key()}
    by_key = await auth.join(target, authmethods=["cryptosign"], authextra={"pubkey": material.erin.public_key()},
                             answer=auth.cryptosign(material.erin))
    assert_welcome(by_key, "erin", "device", "cryptosign", "static")
    await auth.leave(by_authid)
    await auth.leave(by_key)


@pytest_twisted.ensureDeferred
async def test_cryptosign_bad_signatures_and_unknown_user_get_the_same_refusal(router, material):
    """A signature by another key, a corrupted signature by the right key, and an unknown authid each get ABORT
    authentication_failed with one text."""
    target = at(router, "plain")
    options = {"authmethods": ["cryptosign"]}
    other = await auth.refused(target, authid="erin", answer=auth.cryptosign(material.stranger), **options)
    broken = await auth.refused(target, authid="erin", answer=auth.corrupted(auth.cryptosign(material.erin)),
                                **options)
    unknown = await auth.refused(target, authid="nobody", answer=auth.cryptosign(material.stranger), **options)
    assert assert_refused(other, "erin") == assert_refused(broken, "erin") == assert_refused(unknown, "nobody")


# -- tls ---------------------------------------------------------------------------------------------------------------


def _fingerprint(path: Path) -> str:
    return x509.load_pem_x509_certificate(path.read_bytes()).fingerprint(hashes.SHA256()).hex()


TRUSTED_CERT_BUG = (
    "BUG: router/tx/tls.py:78 attaches a VerifyRecord with connection.set_app_data() in serverConnectionForTLS, but "
    "Twisted's connection factory (twisted/protocols/_tls_legacy.py:107) then calls set_app_data(tlsProtocol), so "
    "router/tx/clientcert.py:24-25 reads `.failed` on the TLSMemoryBIOProtocol: for a TRUSTED certificate nothing "
    "set it and ProtocolWrapper forwards to tcp.Server -> AttributeError at HELLO (transport_info). The except in "
    "RouterSession.on_payload then calls self._peer_address(), which raises the same error, so it escapes to the "
    "transport ('Unhandled Error') and the client is dropped with no ABORT. Expected WELCOME client-alice/device/"
    "tls/tls; got a disconnect before WELCOME. (Untrusted certificates are refused only by accident: the verify "
    "callback sets .failed on the protocol object.)"
)


@pytest.mark.parametrize("listener_name,authid,role", [("tls-cn", "client-alice", "device"),
                                                       ("tls-dns", "alice.clients.example", "user")])
@pytest_twisted.ensureDeferred
async def test_tls_client_certificate_joins_without_challenge(router, certs, listener_name, authid, role):
    """A client certificate signed by the listener's client_ca joins with authmethod tls, authprovider tls, no
    challenge; the authid is the certificate's CN (authid_from "cn") or its DNS SAN (authid_from "dns"), and
    WELCOME's authextra carries the certificate's SHA-256 fingerprint."""
    target = at(router, listener_name, certs=certs, client_cert=(certs.client_cert, certs.client_key))
    session = await auth.join(target, authmethods=["tls"])
    assert_welcome(session, authid, role, "tls", "tls")
    assert session.challenges == []
    assert session.welcome.authextra == {"cert_sha256": _fingerprint(certs.client_cert)}
    await auth.leave(session)


@pytest_twisted.ensureDeferred
async def test_tls_untrusted_or_missing_client_certificate_is_refused_with_abort(router, certs):
    """With client_ca set and client certificates optional, a certificate from another CA passes the TLS handshake
    as unverified and is refused by the tls authenticator with ABORT authentication_failed (not a TLS alert); so
    is a client with no certificate. Both get the same text, which names no certificate."""
    untrusted = at(router, "tls-cn", certs=certs,
                   client_cert=(certs.untrusted_client_cert, certs.untrusted_client_key))
    refused_untrusted = await auth.refused(untrusted, authmethods=["tls"])
    refused_none = await auth.refused(at(router, "tls-cn", certs=certs), authmethods=["tls"])
    assert assert_refused(refused_untrusted, "client-mallory") == assert_refused(refused_none)


# -- jwt ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("algorithm", ["ES256", "HS256"])
@pytest_twisted.ensureDeferred
async def test_jwt_valid_token_joins(router, material, algorithm):
    """A token from the configured issuer for the configured audience, signed ES256 (public key) or HS256 (shared
    secret), answers the empty jwt challenge and joins as its `sub` with its `role`, authprovider jwt."""
    token = material.token(algorithm, sub=f"frank-{algorithm.lower()}", role="admin")
    session = await auth.join(at(router, "plain"), authmethods=["jwt"], answer=auth.token(token))
    assert_welcome(session, f"frank-{algorithm.lower()}", "admin", "jwt", "jwt")
    assert [(c.method, c.extra) for c in session.challenges] == [("jwt", {})]
    await auth.leave(session)


@pytest_twisted.ensureDeferred
async def test_jwt_expired_or_wrongly_signed_tokens_are_refused(router, material):
    """An expired token (beyond the 30 s leeway), an ES256 token signed by another key, and an HS256 token signed
    with another secret each get ABORT authentication_failed with one text."""
    target = at(router, "plain")
    tokens = {
        "expired": material.token("ES256", lifetime=-3600),
        "other key": material.token("ES256", key=material.es256_other),
        "other secret": material.token("HS256", key=random_secrets.token_hex(32).encode()),
    }
    texts = set()
    for token in tokens.values():
        refusal = await auth.refused(target, authmethods=["jwt"], answer=auth.token(token))
        texts.add(assert_refused(refusal, "frank"))
    assert len(texts) == 1


@pytest_twisted.ensureDeferred
async def test_jwt_single_use_token_is_refused_when_replayed(router, material):
    """With single_use = true, a token with a jti joins once; the same token presented again, while still valid,
    gets ABORT authentication_failed. Another token (another jti) still joins."""
    target = at(router, "jwt-once")
    token = material.token("ES256", jti="jti-" + random_secrets.token_hex(8))
    first = await auth.join(target, authmethods=["jwt"], answer=auth.token(token))
    assert_welcome(first, "frank", "user", "jwt", "jwt")
    replay = await auth.refused(target, authmethods=["jwt"], answer=auth.token(token))
    assert_refused(replay, "frank")
    fresh = await auth.join(target, authmethods=["jwt"],
                            answer=auth.token(material.token("ES256", jti="jti-" + random_secrets.token_hex(8))))
    assert_welcome(fresh, "frank", "user", "jwt", "jwt")
    await auth.leave(first)
    await auth.leave(fresh)


@pytest_twisted.ensureDeferred
async def test_jwt_from_authorization_header_joins_without_challenge(router, material):
    """With from_header = true, a token in the WebSocket handshake's `Authorization: Bearer` header is verified at
    HELLO: the client joins with no CHALLENGE; a wrongly signed token in the header is refused with ABORT."""
    target = at(router, "jwt-once")
    token = material.token("ES256", sub="grace", jti="jti-" + random_secrets.token_hex(8))
    session = await auth.join(target, authmethods=["jwt"], headers={"Authorization": f"Bearer {token}"})
    assert_welcome(session, "grace", "user", "jwt", "jwt")
    assert session.challenges == []
    forged = material.token("ES256", key=material.es256_other, sub="grace", jti="jti-" + random_secrets.token_hex(8))
    refusal = await auth.refused(target, authmethods=["jwt"], headers={"Authorization": f"Bearer {forged}"})
    assert_refused(refusal, "grace")
    await auth.leave(session)


# -- dynamic -----------------------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_dynamic_backend_procedure_decides(router):
    """The dynamic authenticator challenges for a ticket and calls the backend's procedure with (realm, authid,
    details incl. the ticket): the role and extra it returns join the client as authmethod ticket, authprovider
    dynamic; an error from the backend gets ABORT authentication_failed, with the text every refusal has."""
    calls = []

    def authenticate(realm, authid, details):
        calls.append((realm, authid, details))
        if authid == "henry" and details.get("ticket") == DYNAMIC_TICKET:
            return {"role": "user", "extra": {"checked_by": "backend"}}
        raise ApplicationError("com.example.denied", "no such user or wrong ticket")

    backend = await bounded(connect(at(router, "backend"), realm="backend"))
    await bounded(backend.register(authenticate, PROCEDURE))
    target = at(router, "dynamic")
    session = await auth.join(target, authmethods=["ticket"], authid="henry", answer=auth.ticket(DYNAMIC_TICKET))
    assert_welcome(session, "henry", "user", "ticket", "dynamic")
    assert session.welcome.authextra == {"checked_by": "backend"}
    realm, authid, details = calls[0]
    assert (realm, authid, details["authmethod"], details["ticket"]) == (REALM, "henry", "ticket", DYNAMIC_TICKET)
    assert details["transport"]["listener"] == "dynamic"
    wrong = await auth.refused(target, authmethods=["ticket"], authid="henry", answer=auth.ticket("nope"))
    unknown = await auth.refused(target, authmethods=["ticket"], authid="ivan", answer=auth.ticket("nope"))
    assert assert_refused(wrong, "henry") == assert_refused(unknown, "ivan")
    assert len(calls) == 3
    await auth.leave(session)
    await bounded(leave_plain(backend))


# -- method negotiation, third-party authenticators ------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_offering_only_methods_the_listener_lacks_gets_no_auth_method(router, certs):
    """A HELLO offering only methods the listener does not have (tls on a plain listener; ticket or nothing, i.e.
    anonymous, on a tls-only listener) gets ABORT wamp.error.no_auth_method. (The TLS clients here send no
    certificate: see TRUSTED_CERT_BUG for what a trusted one does today.)"""
    plain = await auth.refused(at(router, "plain"), authmethods=["tls"])
    assert plain.reason == NO_AUTH_METHOD
    tls_only = at(router, "tls-cn", certs=certs)
    ticket = await auth.refused(tls_only, authmethods=["ticket"], authid="alice", answer=auth.ticket(ALICE_TICKET))
    assert ticket.reason == NO_AUTH_METHOD
    anonymous = await auth.refused(tls_only)
    assert anonymous.reason == NO_AUTH_METHOD


AUTHPLUGIN = Path(__file__).resolve().parents[1] / "support" / "authplugin"


@pytest.fixture(scope="module")
def testtoken_installed(tmp_path_factory):
    """Install tests/support/authplugin with pip, from a copy (the build writes into its source tree). The build
    backend (setuptools) comes through pip's isolated build, from its cache or the registry: the venv has no
    `wheel`, which --no-build-isolation would need with its setuptools."""
    source = tmp_path_factory.mktemp("authplugin") / "authplugin"
    shutil.copytree(AUTHPLUGIN, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--disable-pip-version-check", str(source)],
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, f"pip install of the test authenticator failed:\n{done.stdout}\n{done.stderr}"
    importlib.invalidate_caches()


@pytest_twisted.ensureDeferred
async def test_authenticator_installed_through_an_entry_point_works(testtoken_installed, tmp_path, certs, material):
    """A third-party package that registers `testtoken` in the wampgate.authenticators entry point group is found
    by name in the config and used: the right token in authextra joins with authmethod / authprovider testtoken,
    a wrong one gets ABORT authentication_failed."""
    token_listener = listener("token", ("websocket",), auth=methods(testtoken={"role": "user"}))
    async with running(config(material, certs, extra_listeners=token_listener), tmp_path) as router:
        target = at(router, "token")
        session = await auth.join(target, authmethods=["testtoken"], authid="tok",
                                  authextra={"token": "open-sesame"})
        assert_welcome(session, "tok", "user", "testtoken", "testtoken")
        refusal = await auth.refused(target, authmethods=["testtoken"], authid="tok", authextra={"token": "nope"})
        assert_refused(refusal, "tok")
        await auth.leave(session)


# -- failures: slowing down, lockout ------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_lockout_refuses_even_the_right_ticket_until_it_expires(tmp_path, certs, material):
    """lockout_after = 3, lockout = 1.0: after three wrong tickets for alice, her RIGHT ticket is refused with
    ABORT authentication_failed (the same text as any refusal); 1.0 s after the third failure it joins again.
    (max_delay = 0: the refusal that triggers the lockout is answered at once, so the clock starts there.)"""
    limits = limits_toml(delay_after=100, lockout_after=3, lockout=1.0, max_delay=0.0)
    async with running(config(material, certs, limits=limits), tmp_path) as router:
        target = at(router, "plain")
        options = {"authmethods": ["ticket"], "authid": "alice"}
        for _ in range(3):
            session, refusal = await auth.attempt(target, answer=auth.ticket("wrong"), **options)
            text = assert_refused(refusal, "alice")
        locked_at = session.settled_at  # the third failure was recorded just before this ABORT
        locked = await auth.refused(target, answer=auth.ticket(ALICE_TICKET), **options)
        assert assert_refused(locked, "alice") == text
        assert now() < locked_at + 1.0, "the locked attempt was not made while the lockout lasted"
        await sleep(max(0.0, locked_at + 1.1 - now()))
        session = await auth.join(target, answer=auth.ticket(ALICE_TICKET), **options)
        assert_welcome(session, "alice", "user", "ticket", "static")
        await auth.leave(session)


@pytest_twisted.ensureDeferred
async def test_repeated_failures_are_answered_later(tmp_path, certs, material):
    """delay_after = 1, delay = 0.3: the refusal of the second wrong ticket arrives at least 0.25 s after its
    AUTHENTICATE (measured on the reactor's clock)."""
    limits = limits_toml(delay_after=1, delay=0.3)
    async with running(config(material, certs, limits=limits), tmp_path) as router:
        target = at(router, "plain")
        waits = []
        for _ in range(2):
            session, refusal = await auth.attempt(target, authmethods=["ticket"], authid="alice",
                                                  answer=auth.ticket("wrong"))
            assert_refused(refusal, "alice")
            waits.append(session.settled_at - session.authenticated_at)
        print(f"\nAUTHENTICATE -> ABORT with delay_after=1, delay=0.3: 1st failure {waits[0]:.3f} s, "
              f"2nd failure {waits[1]:.3f} s")
        assert waits[1] >= 0.25


# -- stalls and misbehaving authenticators -------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_client_stalled_in_the_challenge_is_dropped_on_time_while_others_are_served(tmp_path, certs,
                                                                                          material):
    """hello_timeout = 1.0: clients that get a CHALLENGE and never send AUTHENTICATE (over WebSocket and RawSocket)
    are disconnected about 1 s after connecting, without WELCOME; meanwhile another client authenticates and joins,
    and the router serves fresh sessions afterwards."""
    async with running(config(material, certs, limits=limits_toml(hello_timeout=1.0)), tmp_path) as router:
        stalled = []
        for transport, serializer in (("websocket", "json"), ("rawsocket", "msgpack")):
            challenged = defer.Deferred()
            stalled.append(await auth.start(at(router, "plain", transport, serializer), authmethods=["ticket"],
                                            authid="alice", answer=auth.stall(challenged)))
            await bounded(challenged)
        other = await auth.join(at(router, "plain"), authmethods=["ticket"], authid="alice",
                                answer=auth.ticket(ALICE_TICKET))
        assert_welcome(other, "alice", "user", "ticket", "static")
        for session in stalled:
            assert not session.on_gone.called, "dropped before hello_timeout"
        for session in stalled:
            await bounded(session.on_gone, 3.0)
            assert session.welcome is None and session.authenticated_at is None
            assert 0.9 <= session.gone_at - session.connected_at <= 2.0, session.gone_at - session.connected_at
        assert other.is_attached()
        await auth.leave(other)
        await still_serves(router)


@pytest.mark.parametrize("method", list(MISBEHAVING))
@pytest_twisted.ensureDeferred
async def test_authenticator_that_raises_or_never_answers_refuses_and_the_router_goes_on(tmp_path, certs,
                                                                                         material, method):
    """An authenticator that raises (at HELLO or at AUTHENTICATE) or never answers (auth_timeout = 0.5) gets the
    client ABORT authentication_failed with the generic text, the silent ones after about auth_timeout; the router
    then still authenticates (with a method that answers at once, so a busy machine cannot make it time out) and
    serves other clients."""
    async with running(config(material, certs, limits=limits_toml(auth_timeout=0.5)), tmp_path) as router:
        started = now()
        refusal = await auth.refused(at(router, "faulty"), authmethods=[method], authid="someone",
                                     answer=auth.ticket("whatever"))
        elapsed = now() - started
        assert_refused(refusal, "someone")
        if method.startswith("silent"):
            assert 0.45 <= elapsed <= 3.0, elapsed
        session = await auth.join(at(router, "faulty"), authmethods=["scripted"], authid="alice",
                                  authextra={"do": "accept"})
        assert_welcome(session, "alice", "user", "scripted", "test")
        await auth.leave(session)
        await still_serves(router)


# -- secrets and timing --------------------------------------------------------------------------------------------


@pytest.fixture
def log_events():
    """Every twisted.logger event emitted while the test runs (all levels, debug included)."""
    events: list[dict] = []
    globalLogPublisher.addObserver(events.append)
    yield events
    globalLogPublisher.removeObserver(events.append)


def _event_text(event: dict) -> str:
    """What a log observer could write: the formatted text, a failure's traceback, and every field's repr."""
    parts = [formatEvent(event)]
    failure = event.get("log_failure")
    if failure is not None:
        parts.append(failure.getTraceback())
    parts.extend(repr(value) for key, value in event.items() if key != "log_failure")
    return "\n".join(parts)


@pytest_twisted.ensureDeferred
async def test_ticket_secrets_never_reach_the_log(router, log_events):
    """Failed ticket logins (wrong ticket for a known authid, any ticket for an unknown one, a ticket the dynamic
    backend refuses) and a successful one are logged, but no log event, formatted or as fields, contains a
    ticket the client sent."""
    sent = {name: f"SECRET-{name}-{random_secrets.token_hex(6)}" for name in ("wrong", "unknown", "dynamic")}

    def refuse(realm, authid, details):
        raise ApplicationError("com.example.denied", "refused")

    backend = await bounded(connect(at(router, "backend"), realm="backend"))
    await bounded(backend.register(refuse, PROCEDURE))
    target = at(router, "plain")
    await auth.refused(target, authmethods=["ticket"], authid="alice", answer=auth.ticket(sent["wrong"]))
    await auth.refused(target, authmethods=["ticket"], authid="nobody", answer=auth.ticket(sent["unknown"]))
    await auth.refused(at(router, "dynamic"), authmethods=["ticket"], authid="henry",
                       answer=auth.ticket(sent["dynamic"]))
    session = await auth.join(target, authmethods=["ticket"], authid="alice", answer=auth.ticket(ALICE_TICKET))
    await auth.leave(session)
    await bounded(leave_plain(backend))
    texts = [_event_text(event) for event in log_events]
    assert sum("authentication failed" in text for text in texts) >= 3, "the failures were not logged at all"
    for secret in [*sent.values(), ALICE_TICKET]:
        leaks = [text for text in texts if secret in text]
        assert not leaks, f"the ticket {secret!r} is in the log: {leaks[0][:500]}"


# -- the guard against abuse ---------------------------------------------------------------------------------------


def guard(router):
    """The router's own authentication guard (failure tables, login buckets)."""
    return router.service.context.failures


def counter(router, name: str, **labels) -> int:
    return router.service.context.counters.value(name, **labels)


@pytest_twisted.ensureDeferred
async def test_an_anonymous_login_naming_the_victim_does_not_reset_its_failures(tmp_path, certs, material):
    """lockout_after = 3: two wrong tickets for alice, then an anonymous login whose HELLO names authid "alice"
    (it joins, as someone else), then a third wrong ticket: alice's ticket login is locked out, so even her right
    ticket is refused with ABORT authentication_failed. A fresh client is served."""
    limits = limits_toml(lockout_after=3, lockout=60.0)
    async with running(config(material, certs, limits=limits), tmp_path) as router:
        target = at(router, "plain")
        wrong = {"authmethods": ["ticket"], "authid": "alice", "answer": auth.ticket("wrong")}
        for _ in range(2):
            assert_refused(await auth.refused(target, **wrong), "alice")
        anonymous = await auth.join(at(router, "anon"), authid="alice")
        assert anonymous.welcome.authid != "alice" and anonymous.welcome.authmethod == "anonymous"
        await auth.leave(anonymous)
        assert_refused(await auth.refused(target, **wrong), "alice")
        locked = await auth.refused(target, authmethods=["ticket"], authid="alice", answer=auth.ticket(ALICE_TICKET))
        assert_refused(locked, "alice")
        assert len(guard(router).by_identity) == 1
        await still_serves(router)


@pytest_twisted.ensureDeferred
async def test_bad_tickets_do_not_lock_out_a_cryptosign_device_of_the_same_authid(tmp_path, certs, material):
    """lockout_after = 3: three bogus tickets for authid "erin" lock out (ticket, erin) only: erin's cryptosign
    device, signing with her key, still joins; the ticket method stays locked for her. A fresh client is served."""
    limits = limits_toml(lockout_after=3, lockout=60.0)
    async with running(config(material, certs, limits=limits), tmp_path) as router:
        target = at(router, "plain")
        bogus = {"authmethods": ["ticket"], "authid": "erin", "answer": auth.ticket("bogus")}
        for _ in range(3):
            assert_refused(await auth.refused(target, **bogus), "erin")
        device = await auth.join(target, authmethods=["cryptosign"], authid="erin",
                                 answer=auth.cryptosign(material.erin))
        assert_welcome(device, "erin", "device", "cryptosign", "static")
        await auth.leave(device)
        assert len(guard(router).by_identity) == 1
        await still_serves(router)


@pytest_twisted.ensureDeferred
async def test_authenticator_timeouts_are_never_held_against_the_client(tmp_path, certs, material):
    """lockout_after = 1, peer_lockout_after = 1, auth_timeout = 0.5: an authenticator that never answers makes
    the attempt time out (ABORT authentication_failed), but that is the router's side: nothing is counted (both
    failure tables stay empty) and the same authid then joins from the same address at once."""
    limits = limits_toml(auth_timeout=0.5, lockout_after=1, peer_lockout_after=1, lockout=60.0)
    async with running(config(material, certs, limits=limits), tmp_path) as router:
        target = at(router, "faulty")
        refusal = await auth.refused(target, authmethods=["scripted"], authid="victim", authextra={"do": "silent"})
        assert_refused(refusal, "victim")
        session = await auth.join(target, authmethods=["scripted"], authid="victim", authextra={"do": "accept"})
        assert_welcome(session, "victim", "user", "scripted", "test")
        assert len(guard(router).by_identity) == len(guard(router).by_peer) == 0
        await auth.leave(session)
        await still_serves(router)


@pytest_twisted.ensureDeferred
async def test_successful_logins_are_rate_limited_per_peer_address(tmp_path, certs, material):
    """logins_per_peer_rate = 0.1, burst 3: three valid logins from 127.0.0.1 join; the fourth, as valid, gets
    ABORT authentication_failed without its authenticator being asked, counted in authentication_rate_limited.
    Anonymous logins are not rate-limited: a fresh anonymous client is served."""
    limits = limits_toml(limits={"logins_per_peer_rate": 0.1, "logins_per_peer_burst": 3})
    async with running(config(material, certs, limits=limits), tmp_path) as router:
        target = at(router, "faulty")
        valid = {"authmethods": ["scripted"], "authid": "alice", "authextra": {"do": "accept"}}
        for _ in range(3):
            await auth.leave(await auth.join(target, **valid))
        assert_refused(await auth.refused(target, **valid), "alice")
        scripted = router.service.listener_runtimes["faulty"].methods["scripted"].authenticator
        assert scripted.asked == 3
        assert counter(router, "authentication_rate_limited", method="scripted") == 1
        await still_serves(router)


@pytest_twisted.ensureDeferred
async def test_a_megabyte_authid_or_a_large_authextra_is_refused_and_kept_nowhere(tmp_path, certs, material,
                                                                                   log_events):
    """A HELLO whose authid is 50 KB (offering anonymous, then ticket) or whose authextra is 5 KB gets ABORT
    authentication_failed before anything is asked or kept: the failure tables and login buckets stay empty, each
    is counted in authentication_oversized, and no log line carries more than the authid's first characters. A
    1 MB authid does not even get decoded: the HELLO is over max_hello_size (ABORT protocol_violation)."""
    async with running(config(material, certs), tmp_path) as router:
        huge = "m" * 50_000
        too_big = await auth.refused(at(router, "anon"), authid="m" * 1_000_000)
        assert too_big.reason == "wamp.error.protocol_violation", too_big
        assert_refused(await auth.refused(at(router, "anon"), authid=huge))
        assert_refused(await auth.refused(at(router, "plain"), authmethods=["ticket"], authid=huge,
                                          answer=auth.ticket("x")))
        assert_refused(await auth.refused(at(router, "anon"), authextra={"blob": "x" * 5000}))
        failures = guard(router)
        assert len(failures.by_identity) == len(failures.by_peer) == len(failures.logins) == 0
        assert counter(router, "authentication_oversized", method="anonymous", field="authid") == 1
        assert counter(router, "authentication_oversized", method="ticket", field="authid") == 1
        assert counter(router, "authentication_oversized", method="anonymous", field="authextra") == 1
        assert max(len(formatEvent(event) or "") for event in log_events) < 2000
        await still_serves(router)


@pytest_twisted.ensureDeferred
async def test_a_single_use_jwt_is_refused_on_another_listener(tmp_path, certs, material):
    """Two listeners with single_use jwt: a token that joined on one is refused (ABORT authentication_failed) when
    replayed on the other; a fresh token joins there."""
    jwt_once = methods(jwt={"algorithms": ["ES256"], "public_key": material.public_key_file, "issuer": ISSUER,
                            "audience": AUDIENCE, "single_use": True})
    second = listener("jwt-once-2", ("websocket",), auth=jwt_once)
    async with running(config(material, certs, extra_listeners=second), tmp_path) as router:
        token = material.token("ES256", jti="jti-" + random_secrets.token_hex(8))
        first = await auth.join(at(router, "jwt-once"), authmethods=["jwt"], answer=auth.token(token))
        assert_welcome(first, "frank", "user", "jwt", "jwt")
        assert_refused(await auth.refused(at(router, "jwt-once-2"), authmethods=["jwt"], answer=auth.token(token)),
                       "frank")
        fresh = material.token("ES256", jti="jti-" + random_secrets.token_hex(8))
        other = await auth.join(at(router, "jwt-once-2"), authmethods=["jwt"], answer=auth.token(fresh))
        await auth.leave(first)
        await auth.leave(other)
        await still_serves(router)


@pytest_twisted.ensureDeferred
async def test_a_single_use_jwt_is_refused_after_a_reload(router, material):
    """A reload builds new authenticators, but the replay cache is the router's: a token that joined before the
    reload is refused after it (ABORT authentication_failed) and the router's cache still holds it."""
    token = material.token("ES256", jti="jti-" + random_secrets.token_hex(8))
    first = await auth.join(at(router, "jwt-once"), authmethods=["jwt"], answer=auth.token(token))
    assert router.service.reload()
    assert_refused(await auth.refused(at(router, "jwt-once"), authmethods=["jwt"], answer=auth.token(token)), "frank")
    jwt = router.service.listener_runtimes["jwt-once"].methods["jwt"].authenticator
    assert jwt.replay_cache_size == 1
    await auth.leave(first)
    await still_serves(router)
