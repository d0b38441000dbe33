"""WAMP-SCRAM, TLS channel binding (cryptosign and scram) and dynamic authentication with material, end to end:
Autobahn's own clients (Twisted in this process, asyncio in a subprocess) against a real router on loopback, over
plain TCP and TLS 1.2 / 1.3 listeners with generated certificates.

Pins down: Autobahn's `AuthScram` joins with argon2id-13 and verifies the router's `scram_server_signature`; PBKDF2
principals join a spec client; wrong passwords, unknown authids, a replayed proof and a binding taken from another
connection all get ABORT `wamp.error.authentication_failed` with one generic text, and count towards the lockout;
cryptosign binds with `tls-unique` on TLS 1.2 (as Autobahn computes it) and `tls-exporter` on TLS 1.3; a binding
the connection lacks, or none where `channel_binding = "required"`, is refused the same way; a dynamic backend can
serve wampcra, cryptosign, scram and tls principals, and bad material from it is logged and refused generically.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from pathlib import Path

import pytest
import pytest_twisted
import txaio
from autobahn.wamp.auth import AuthScram
from autobahn.wamp.cryptosign import CryptosignKey
from autobahn.wamp.exception import ApplicationError
from twisted.internet import utils
from twisted.logger import formatEvent, globalLogPublisher

from wampgate import scramkeys
from tests.integration.test_authentication import (
    AUTHENTICATION_FAILED,
    PROCEDURE,
    REALM,
    assert_refused,
    limits_toml,
    methods,
    realm_toml,
    running,
)
from tests.support import auth_clients as auth
from tests.support import binding_clients as bc
from tests.support import wait
from tests.support.clients import Target, connect
from tests.support.clients import leave as leave_plain
from tests.support.raw import bounded

txaio.use_twisted()

ALICE_PASSWORD = "alice-argon2-\u00e9t\u00e9"  # argon2id13
BOB_PASSWORD = "bob-pbkdf2"  # pbkdf2
CARL_PASSWORD = "carl-must-bind"  # argon2id13, channel_binding = "required" on the principal
ARGON = {"iterations": 1, "memory": 8192}
SCRIPT = Path(__file__).resolve().parent.parent / "support" / "asyncio_auth_client.py"


class Keys:
    """Every credential, made once per module."""

    def __init__(self):
        self.alice = scramkeys.derive(ALICE_PASSWORD, scramkeys.ARGON2ID13, **ARGON)
        self.bob = scramkeys.derive(BOB_PASSWORD, scramkeys.PBKDF2, iterations=4096)
        self.carl = scramkeys.derive(CARL_PASSWORD, scramkeys.ARGON2ID13, **ARGON)
        self.erin = CryptosignKey.from_bytes(os.urandom(32))
        self.frida_private = os.urandom(32)  # cryptosign, channel_binding = "required"
        self.frida = CryptosignKey.from_bytes(self.frida_private)


def scram_row(authid: str, role: str, credentials, **more) -> dict:
    row = {"authid": authid, "role": role, "kdf": credentials.kdf, "iterations": credentials.iterations,
           "salt": scramkeys.b64(credentials.salt), "stored_key": scramkeys.b64(credentials.stored_key),
           "server_key": scramkeys.b64(credentials.server_key), **more}
    if credentials.memory is not None:
        row["memory"] = credentials.memory
    return row


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


def tls_listener(name: str, certs, auth_toml: str, transports=("websocket", "rawsocket")) -> str:
    from tests.support.router import listener

    return listener(name, transports, tls=certs, auth=auth_toml)


def config(keys: Keys, certs, **failures) -> str:
    from tests.support.router import listener

    scram = {"principals": [scram_row("alice", "user", keys.alice), scram_row("bob", "admin", keys.bob),
                            scram_row("carl", "user", keys.carl, channel_binding="required")]}
    cryptosign = {"principals": [
        {"authid": "erin", "role": "device", "public_keys": [keys.erin.public_key()]},
        {"authid": "frida", "role": "device", "public_keys": [keys.frida.public_key()], "channel_binding": "required"},
    ]}
    required = {"channel_binding": "required"}
    dynamic = {"procedure": PROCEDURE, "realm": "backend", "timeout": 2.0, "backend_authrole": "backend"}
    return (
        limits_toml(**failures)
        + listener("plain", auth=methods(scram=scram, cryptosign=cryptosign))
        + listener("plain-required", ("websocket",), auth=methods(scram={**scram, **required}))
        + tls_listener("tls", certs, methods(scram=scram, cryptosign=cryptosign))
        + tls_listener("tls-required", certs, methods(scram={**scram, **required},
                                                      cryptosign={**cryptosign, **required}))
        + listener("dyn-wampcra", ("websocket",), auth=methods(dynamic={**dynamic, "authmethod": "wampcra"}))
        + listener("dyn-cryptosign", ("websocket",), auth=methods(dynamic={**dynamic, "authmethod": "cryptosign"}))
        + listener("dyn-scram", ("websocket",), auth=methods(dynamic={**dynamic, "authmethod": "scram"}))
        + tls_listener("dyn-tls", certs, methods(dynamic={**dynamic, "authmethod": "tls"}), ("websocket",))
        + listener("backend", ("websocket",), auth=methods(anonymous={"role": "backend", "realms": ["backend"]}))
        + realm_toml()
    )


@pytest_twisted.async_yield_fixture()
async def router(tmp_path, certs, keys):
    async with running(config(keys, certs), tmp_path) as started:
        yield started


def autobahn_scram(authid: str, password: str):
    """Autobahn's own AuthScram as the client: (authextra for HELLO, answer, check of WELCOME's authextra)."""
    client = AuthScram(authid=authid, password=password)
    extra = client.authextra

    class _Log:
        def error(self, *args, **kw):
            pass

        info = error

    class _Session:
        log = _Log()

    def verified(welcome) -> bool:
        return client.on_welcome(_Session(), welcome.authextra) is None

    return extra, (lambda challenge: client.on_challenge(_Session(), challenge)), verified


def assert_joined(session, authid: str, authrole: str, authmethod: str, authprovider: str = "static") -> None:
    welcome = session.welcome
    assert (welcome.realm, welcome.authid, welcome.authrole, welcome.authmethod, welcome.authprovider) == (
        REALM, authid, authrole, authmethod, authprovider)


# -- SCRAM -----------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("transport,serializer", [("websocket", "json"), ("rawsocket", "msgpack")])
@pytest_twisted.ensureDeferred
async def test_autobahn_scram_client_joins_and_verifies_the_router(router, transport, serializer):
    """Autobahn's AuthScram (argon2id-13) joins as alice / user / scram / static; the CHALLENGE carries the client
    nonce followed by the router's, the KDF's name as Autobahn spells it and its parameters; WELCOME's
    `scram_server_signature` passes Autobahn's own check."""
    target = Target(port=router.port("plain"), transport=transport, serializer=serializer)
    extra, answer, verified = autobahn_scram("alice", ALICE_PASSWORD)
    session = await auth.join(target, authmethods=["scram"], authid="alice", authextra=extra, answer=answer)
    assert_joined(session, "alice", "user", "scram")
    challenge = session.challenges[0].extra
    server_nonce = base64.b64decode(challenge["nonce"])
    assert server_nonce[:16] == base64.b64decode(extra["nonce"]) and len(server_nonce) == 32
    assert (challenge["kdf"], challenge["iterations"], challenge["memory"]) == ("argon2id-13", 1, 8192)
    assert verified(session.welcome)
    await auth.leave(session)


@pytest_twisted.ensureDeferred
async def test_pbkdf2_principal_joins_and_the_server_signature_matches(router):
    """bob's credentials were made with PBKDF2: the CHALLENGE says kdf "pbkdf2" without a memory cost, a spec
    client joins, and WELCOME's server signature is the one the client computes."""
    nonce = bc.new_nonce()
    answer = bc.scram_answer("bob", BOB_PASSWORD, nonce)
    session = await bc.start(router.port("plain"), authmethods=["scram"], authid="bob", authextra={"nonce": nonce},
                             answer=answer)
    _, refusal = await bc.outcome(session)
    assert refusal is None
    assert_joined(session, "bob", "admin", "scram")
    assert session.challenges[0].extra.keys() == {"nonce", "kdf", "salt", "iterations"}
    assert session.welcome.authextra["scram_server_signature"] == answer.server_signature
    await auth.leave(session)


@pytest_twisted.ensureDeferred
async def test_wrong_password_unknown_user_and_bad_proofs_get_the_same_refusal(router):
    """A wrong password, an unknown authid, a proof that is not base64 of 32 bytes and a HELLO without a nonce are
    refused with ABORT authentication_failed and one text that names nobody; the unknown authid was challenged
    like a real one, with the same salt each time."""
    target = Target(port=router.port("plain"))
    texts = set()
    for authid, password in (("alice", "wrong"), ("zoe", "whatever")):
        extra, answer, _ = autobahn_scram(authid, password)
        session, refusal = await auth.attempt(target, authmethods=["scram"], authid=authid, authextra=extra,
                                              answer=answer)
        texts.add(assert_refused(refusal, authid))
        assert session.challenges[0].extra.keys() == {"nonce", "kdf", "salt", "iterations", "memory"}
    salts = []
    for _ in range(2):
        extra, answer, _ = autobahn_scram("zoe", "whatever")
        session, _ = await auth.attempt(target, authmethods=["scram"], authid="zoe", authextra=extra, answer=answer)
        salts.append(session.challenges[0].extra["salt"])
    assert salts[0] == salts[1]
    malformed = await auth.refused(target, authmethods=["scram"], authid="alice",
                                   authextra={"nonce": bc.new_nonce()}, answer=lambda challenge: "not-base64!")
    no_nonce = await auth.refused(target, authmethods=["scram"], authid="alice", answer=lambda c: "x")
    texts |= {assert_refused(malformed, "alice"), assert_refused(no_nonce, "alice")}
    assert len(texts) == 1


@pytest_twisted.ensureDeferred
async def test_a_replayed_proof_is_refused(router):
    """An eavesdropper replays alice's HELLO nonce and AUTHENTICATE proof on a new connection: the router's half of
    the nonce is new, so the proof does not match and the replay is refused like a wrong password."""
    nonce = bc.new_nonce()
    first = bc.scram_answer("alice", ALICE_PASSWORD, nonce)
    session = await bc.start(router.port("plain"), authmethods=["scram"], authid="alice",
                             authextra={"nonce": nonce}, answer=first)
    _, refusal = await bc.outcome(session)
    assert refusal is None
    await auth.leave(session)
    replay = await bc.start(router.port("plain"), authmethods=["scram"], authid="alice", authextra={"nonce": nonce},
                            answer=lambda challenge: (first.proof, {}))
    _, refusal = await bc.outcome(replay)
    assert_refused(refusal, "alice")
    assert replay.challenges[0].extra["nonce"] != session.challenges[0].extra["nonce"]


@pytest_twisted.ensureDeferred
async def test_scram_failures_count_towards_the_lockout(tmp_path, certs, keys):
    """Two wrong passwords lock alice's scram identity out: then even her right password is refused, with the
    same ABORT."""
    locking = config(keys, certs, lockout_after=2, delay_after=100, lockout=30.0, max_delay=0.0)
    async with running(locking, tmp_path) as r:
        target = Target(port=r.port("plain"))
        for _ in range(2):
            extra, answer, _ = autobahn_scram("alice", "wrong")
            assert_refused(await auth.refused(target, authmethods=["scram"], authid="alice", authextra=extra,
                                              answer=answer))
        extra, answer, _ = autobahn_scram("alice", ALICE_PASSWORD)
        refusal = await auth.refused(target, authmethods=["scram"], authid="alice", authextra=extra, answer=answer)
        assert refusal.reason == AUTHENTICATION_FAILED


# -- channel binding -------------------------------------------------------------------------------------------------


def cryptosign_bound(key, source):
    """Sign with Autobahn's CryptosignKey, XORing in a channel id: of an explicit (type, data), or of the session
    in the list `source` (read when the challenge comes): Autobahn's own `tls-unique` channel id on TLS 1.2, the
    exporter's bytes on TLS 1.3."""

    def answer(challenge):
        if isinstance(source, tuple):
            channel_id = bc.cryptosign_channel_id(*source)
        else:
            session = source[0]
            kind, data = bc.client_binding(session)
            channel_id = session._transport.transport_details.channel_id[kind] if kind == "tls-unique" else data
        # Autobahn formats every binding alike (challenge XOR channel id), but only accepts the name tls-unique.
        return key.sign_challenge(challenge, channel_id=channel_id, channel_id_type="tls-unique")

    return answer


async def bound_cryptosign(router, certs, key, authid, version, *, listener="tls", binding=None):
    holder: list = []
    kind = bc.BINDING_OF[version]
    answer = cryptosign_bound(key, binding if binding is not None else holder)
    session = await bc.start(router.port(listener), ca=certs.ca, version=version, authmethods=["cryptosign"],
                             authid=authid, authextra={"channel_binding": kind}, answer=answer)
    holder.append(session)
    return await bc.outcome(session)


async def bound_scram(router, certs, authid, password, version, *, listener="tls", binding=None, kind=None):
    holder: list = []
    nonce = bc.new_nonce()
    answer = bc.scram_answer(authid, password, nonce,
                             binding if binding is not None else (lambda: bc.client_binding(holder[0])))
    session = await bc.start(router.port(listener), ca=certs.ca, version=version, authmethods=["scram"],
                             authid=authid, authextra={"nonce": nonce,
                                                       "channel_binding": kind or bc.BINDING_OF[version]},
                             answer=answer)
    holder.append(session)
    return await bc.outcome(session) + (answer,)


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest_twisted.ensureDeferred
async def test_cryptosign_bound_to_the_tls_channel_joins(router, certs, keys, version):
    """On TLS 1.2 Autobahn's cryptosign client binds with its own `tls-unique` channel id; on TLS 1.3 with
    `tls-exporter`: the CHALLENGE names the binding, and both join, as does frida, whose principal requires one."""
    for key, authid in ((keys.erin, "erin"), (keys.frida, "frida")):
        session, refusal = await bound_cryptosign(router, certs, key, authid, version)
        assert refusal is None, refusal
        assert_joined(session, authid, "device", "cryptosign")
        assert session.challenges[0].extra["channel_binding"] == bc.BINDING_OF[version]
        assert bc.tls_connection(session).get_protocol_version_name() == f"TLSv{version}"
        await auth.leave(session)


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest_twisted.ensureDeferred
async def test_scram_bound_to_the_tls_channel_joins(router, certs, version):
    """A SCRAM client sending `{nonce, channel_binding, cbind_data}` in AUTHENTICATE joins on TLS 1.2 (tls-unique)
    and 1.3 (tls-exporter), and the router's signature covers the binding; carl, who must bind, joins too."""
    for authid, password, role in (("alice", ALICE_PASSWORD, "user"), ("carl", CARL_PASSWORD, "user")):
        session, refusal, answer = await bound_scram(router, certs, authid, password, version)
        assert refusal is None, refusal
        assert_joined(session, authid, role, "scram")
        assert session.welcome.authextra["scram_server_signature"] == answer.server_signature
        await auth.leave(session)


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest_twisted.ensureDeferred
async def test_a_binding_from_another_connection_is_refused(router, certs, keys, version):
    """A relay: the client's proof carries the binding of another TLS connection (one the attacker holds to the
    router): cryptosign and scram refuse it with the generic ABORT."""
    other = await bc.start(router.port("tls"), ca=certs.ca, version=version, authmethods=["cryptosign"],
                           authid="erin", authextra={}, answer=auth.stall())
    await wait.eventually(lambda: other.connected_at is not None, "the other connection is up")
    foreign = bc.client_binding(other)
    _, refusal = await bound_cryptosign(router, certs, keys.erin, "erin", version, binding=foreign)
    text = assert_refused(refusal, "erin")
    _, refusal, _ = await bound_scram(router, certs, "alice", ALICE_PASSWORD, version, binding=foreign)
    assert assert_refused(refusal, "alice") == text
    other._transport.close()


@pytest_twisted.ensureDeferred
async def test_a_binding_the_connection_lacks_is_refused(router, certs, keys):
    """tls-unique on TLS 1.3, tls-exporter on TLS 1.2, any binding on plain TCP, and an unknown binding name: each
    refused with the generic ABORT, for cryptosign and scram alike."""
    texts = set()
    cases = [("1.3", "tls-unique", "tls"), ("1.2", "tls-exporter", "tls"), ("1.3", "tls-server-end-point", "tls")]
    for version, kind, listener in cases:
        nonce = bc.new_nonce()
        session = await bc.start(router.port(listener), ca=certs.ca, version=version, authmethods=["scram"],
                                 authid="alice", authextra={"nonce": nonce, "channel_binding": kind},
                                 answer=bc.scram_answer("alice", ALICE_PASSWORD, nonce, (kind, b"x" * 32)))
        texts.add(assert_refused((await bc.outcome(session))[1], "alice"))
        session = await bc.start(router.port(listener), ca=certs.ca, version=version, authmethods=["cryptosign"],
                                 authid="erin", authextra={"channel_binding": kind},
                                 answer=auth.cryptosign(keys.erin))
        texts.add(assert_refused((await bc.outcome(session))[1], "erin"))
    for method, extra in (("scram", {"nonce": bc.new_nonce(), "channel_binding": "tls-unique"}),
                          ("cryptosign", {"channel_binding": "tls-unique"})):
        session = await bc.start(router.port("plain"), authmethods=[method], authid="erin", authextra=extra,
                                 answer=lambda c: "x")
        texts.add(assert_refused((await bc.outcome(session))[1], "erin"))
    assert len(texts) == 1


@pytest_twisted.ensureDeferred
async def test_required_binding_refuses_logins_without_one(router, certs, keys):
    """Where `channel_binding = "required"` (the tls-required and plain-required listeners, and the principals carl
    and frida everywhere), a login without a binding is refused after its right answer, with the generic ABORT; on
    the required TLS listener a bound login joins."""
    texts = set()
    extra, answer, _ = autobahn_scram("alice", ALICE_PASSWORD)
    tls_target = Target(port=router.port("tls-required"), tls_ca=certs.ca)
    texts.add(assert_refused(await auth.refused(tls_target, authmethods=["scram"], authid="alice", authextra=extra,
                                                answer=answer)))
    texts.add(assert_refused(await auth.refused(tls_target, authmethods=["cryptosign"], authid="erin",
                                                answer=auth.cryptosign(keys.erin))))
    extra, answer, _ = autobahn_scram("alice", ALICE_PASSWORD)
    texts.add(assert_refused(await auth.refused(Target(port=router.port("plain-required")), authmethods=["scram"],
                                                authid="alice", authextra=extra, answer=answer)))
    extra, answer, _ = autobahn_scram("carl", CARL_PASSWORD)
    texts.add(assert_refused(await auth.refused(Target(port=router.port("plain")), authmethods=["scram"],
                                                authid="carl", authextra=extra, answer=answer)))
    texts.add(assert_refused(await auth.refused(Target(port=router.port("tls"), tls_ca=certs.ca),
                                                authmethods=["cryptosign"], authid="frida",
                                                answer=auth.cryptosign(keys.frida))))
    assert len(texts) == 1
    session, refusal, _ = await bound_scram(router, certs, "alice", ALICE_PASSWORD, "1.3", listener="tls-required")
    assert refusal is None, refusal
    await auth.leave(session)
    session, refusal = await bound_cryptosign(router, certs, keys.erin, "erin", "1.2", listener="tls-required")
    assert refusal is None, refusal
    await auth.leave(session)


# -- Autobahn's asyncio client ---------------------------------------------------------------------------------------


async def run_asyncio(*args: str) -> dict:
    from twisted.internet import reactor

    d = utils.getProcessOutputAndValue(sys.executable, ["-I", str(SCRIPT), *args], env=dict(os.environ),
                                       reactor=reactor)
    d.addTimeout(20.0, reactor)
    out, err, code = await d
    lines = out.decode().splitlines()
    assert lines, err.decode()
    return json.loads(lines[-1])


@pytest_twisted.ensureDeferred
async def test_autobahn_asyncio_clients_log_in_with_scram_and_bound_cryptosign(router, certs, keys):
    """Autobahn's asyncio AuthScram joins over ws:// and wss:// and verifies the router's signature; its
    cryptosign client joins over TLS 1.2 bound with its own `tls-unique`; a wrong password is refused."""
    joined = {"authid": "alice", "authrole": "user", "authmethod": "scram", "authprovider": "static",
              "server_verified": True}
    assert await run_asyncio(f"ws://127.0.0.1:{router.port('plain')}/ws", "--authid", "alice",
                             "--password", ALICE_PASSWORD) == joined
    assert await run_asyncio(f"wss://localhost:{router.port('tls')}/ws", "--ca", str(certs.ca), "--authid", "alice",
                             "--password", ALICE_PASSWORD) == joined
    private = keys.frida_private.hex()
    assert await run_asyncio(f"wss://localhost:{router.port('tls')}/ws", "--ca", str(certs.ca), "--tls12",
                             "--authid", "frida", "--privkey", private, "--binding", "tls-unique") == {
        "authid": "frida", "authrole": "device", "authmethod": "cryptosign", "authprovider": "static",
        "server_verified": None}
    refused = await run_asyncio(f"ws://127.0.0.1:{router.port('plain')}/ws", "--authid", "alice",
                                "--password", "wrong")
    assert refused == {"error": "left", "reason": AUTHENTICATION_FAILED}


# -- dynamic authentication with material ------------------------------------------------------------------------------


@pytest.fixture
def log_lines():
    lines: list[str] = []

    def observe(event):
        lines.append(formatEvent(event) or "")

    globalLogPublisher.addObserver(observe)
    yield lines
    globalLogPublisher.removeObserver(observe)


async def backend_answering(router, answers: dict):
    """A backend registering the authenticate procedure; `answers[(authmethod, authid)]` is returned (an
    Exception is raised); the calls are recorded in `backend.calls`."""
    backend = await bounded(connect(Target(port=router.port("backend")), realm="backend"))
    backend.calls = []

    def authenticate(realm, authid, details):
        backend.calls.append((realm, authid, details))
        answer = answers.get((details["authmethod"], authid), ApplicationError("com.example.unknown", "no"))
        if isinstance(answer, Exception):
            raise answer
        return answer

    await bounded(backend.register(authenticate, PROCEDURE))
    return backend


@pytest_twisted.ensureDeferred
async def test_dynamic_backend_serves_every_kind_of_material(router, certs, keys):
    """The backend returns a WAMP-CRA secret and a derived key, cryptosign public keys, SCRAM stored credentials
    and a TLS identity mapping; the router does the cryptography and the clients join with authprovider
    "dynamic"; the backend never sees a secret."""
    from autobahn.wamp.auth import derive_key

    derived = derive_key("dave-pw", "c2FsdA", 1000, 32).decode("ascii")
    answers = {
        ("wampcra", "carol"): {"role": "user", "secret": "carol-pw"},
        ("wampcra", "dave"): {"role": "admin", "derived_key": derived, "salt": "c2FsdA", "iterations": 1000,
                              "keylen": 32},
        ("cryptosign", "erin"): {"role": "device", "public_keys": [keys.erin.public_key()]},
        ("scram", "alice"): {k: v for k, v in scram_row("alice", "user", keys.alice).items() if k != "authid"},
        ("tls", None): {"role": "device", "authid": "client-alice"},
    }
    backend = await backend_answering(router, answers)
    carol = await auth.join(Target(port=router.port("dyn-wampcra")), authmethods=["wampcra"], authid="carol",
                            answer=auth.wampcra("carol-pw"))
    assert_joined(carol, "carol", "user", "wampcra", "dynamic")
    dave = await auth.join(Target(port=router.port("dyn-wampcra")), authmethods=["wampcra"], authid="dave",
                           answer=auth.wampcra("dave-pw"))
    assert_joined(dave, "dave", "admin", "wampcra", "dynamic")
    erin = await auth.join(Target(port=router.port("dyn-cryptosign")), authmethods=["cryptosign"], authid="erin",
                           answer=auth.cryptosign(keys.erin))
    assert_joined(erin, "erin", "device", "cryptosign", "dynamic")
    extra, answer, verified = autobahn_scram("alice", ALICE_PASSWORD)
    alice = await auth.join(Target(port=router.port("dyn-scram")), authmethods=["scram"], authid="alice",
                            authextra=extra, answer=answer)
    assert_joined(alice, "alice", "user", "scram", "dynamic")
    assert verified(alice.welcome)
    device = await auth.join(Target(port=router.port("dyn-tls"), tls_ca=certs.ca,
                                    client_cert=(certs.client_cert, certs.client_key)), authmethods=["tls"])
    assert_joined(device, "client-alice", "device", "tls", "dynamic")
    assert all("ticket" not in details and details["authmethod"] in ("wampcra", "cryptosign", "scram", "tls")
               for _, _, details in backend.calls)
    for session in (carol, dave, erin, alice, device):
        await auth.leave(session)
    await bounded(leave_plain(backend))


@pytest_twisted.ensureDeferred
async def test_dynamic_backend_refusals_bad_material_and_wrong_secrets_get_the_same_refusal(router, keys, log_lines):
    """A wrong secret against the backend's material, a refusal by the backend (the client is still challenged, so
    the refusal comes where a wrong secret's would) and invalid material (logged for the operator, naming the key)
    all get the generic ABORT."""
    answers = {
        ("wampcra", "carol"): {"role": "user", "secret": "carol-pw"},
        ("wampcra", "mallory"): {"role": "user", "secret": "x", "password": "not a key of wampcra"},
        ("scram", "alice"): {"role": "user", "kdf": "argon2id13", "iterations": 10**9, "memory": 8192,
                             "salt": scramkeys.b64(keys.alice.salt), "stored_key": "AA==", "server_key": "AA=="},
        ("cryptosign", "erin"): {"role": "device", "public_keys": ["not hex"]},
    }
    backend = await backend_answering(router, answers)
    wampcra = Target(port=router.port("dyn-wampcra"))
    texts = set()
    for authid, secret in (("carol", "wrong"), ("nobody", "x"), ("mallory", "x")):
        session, refusal = await auth.attempt(wampcra, authmethods=["wampcra"], authid=authid,
                                              answer=auth.wampcra(secret))
        assert session.challenges, f"{authid} was refused before a challenge"
        texts.add(assert_refused(refusal, authid))
    extra, answer, _ = autobahn_scram("alice", ALICE_PASSWORD)
    texts.add(assert_refused(await auth.refused(Target(port=router.port("dyn-scram")), authmethods=["scram"],
                                                authid="alice", authextra=extra, answer=answer)))
    texts.add(assert_refused(await auth.refused(Target(port=router.port("dyn-cryptosign")),
                                                authmethods=["cryptosign"], authid="erin",
                                                answer=auth.cryptosign(keys.erin))))
    assert len(texts) == 1
    invalid = [line for line in log_lines if "returned invalid" in line]
    assert any("wampcra material: password: unknown key" in line for line in invalid), invalid
    assert any("scram material: iterations: expected an integer from 1 to 64" in line for line in invalid), invalid
    assert any("cryptosign material: public_keys[0]" in line for line in invalid), invalid
    await bounded(leave_plain(backend))
