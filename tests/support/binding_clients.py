"""Autobahn (Twisted) clients for WAMP-SCRAM and TLS channel binding: a TLS endpoint pinned to TLS 1.2 or 1.3, the
client's side of the connection's binding (what the router must see too), and SCRAM answers computed as the WAMP
spec says where Autobahn's `AuthScram` cannot (a binding in AUTHENTICATE's extra; PBKDF2).

Autobahn computes `tls-unique` itself (its transport's `transport_details.channel_id`, SHA-256 of the client's
Finished message, which its cryptosign client XORs into the challenge); it has no `tls-exporter`, so that value is
taken here with the same pyOpenSSL call the router makes (RFC 9266: "EXPORTER-Channel-Binding", empty context,
32 bytes).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os

from autobahn.twisted.rawsocket import WampRawSocketClientFactory
from autobahn.twisted.websocket import WampWebSocketClientFactory
from autobahn.wamp import message, types
from autobahn.wamp.auth import _hash_argon2id13_secret
from autobahn.wamp.types import ComponentConfig
from OpenSSL import SSL
from twisted.internet import defer, endpoints
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from zope.interface import implementer

from tests.support.auth_clients import AuthSession
from tests.support.clients import SERIALIZERS, Refused
from tests.support.raw import DEFAULT_TIMEOUT, bounded

VERSIONS = {"1.2": SSL.TLS1_2_VERSION, "1.3": SSL.TLS1_3_VERSION}
BINDING_OF = {"1.2": "tls-unique", "1.3": "tls-exporter"}


@implementer(IOpenSSLClientConnectionCreator)
class PinnedTls:
    """Client TLS that trusts `ca` and speaks exactly TLS `version` ("1.2" or "1.3"); no session resumption."""

    def __init__(self, ca, version: str):
        context = SSL.Context(SSL.TLS_CLIENT_METHOD)
        context.set_min_proto_version(VERSIONS[version])
        context.set_max_proto_version(VERSIONS[version])
        context.load_verify_locations(str(ca))
        context.set_verify(SSL.VERIFY_PEER, lambda connection, certificate, error, depth, ok: bool(ok))
        self._context = context

    def clientConnectionForTLS(self, tls_protocol):
        connection = SSL.Connection(self._context, None)
        connection.set_app_data(tls_protocol)
        connection.set_tlsext_host_name(b"localhost")
        return connection


class ExtraAnswerSession(AuthSession):
    """An AuthSession whose answer may be (signature, extra): AUTHENTICATE then carries that extra, which
    Autobahn's ApplicationSession never sends (the WAMP spec's SCRAM binding fields go there)."""

    def onMessage(self, msg):
        if isinstance(msg, message.Challenge) and self._answer is not None:
            challenge = types.Challenge(msg.method, msg.extra)
            self.challenges.append(challenge)
            defer.maybeDeferred(self._answer, challenge).addCallback(self._send_answer)
            return
        super().onMessage(msg)

    def _send_answer(self, answer) -> None:
        signature, extra = answer if isinstance(answer, tuple) else (answer, None)
        if isinstance(signature, bytes):
            signature = signature.decode("ascii")
        self._transport.send(message.Authenticate(signature, extra))


async def start(port: int, *, ca=None, version: str = "1.3", transport: str = "websocket", realm: str = "realm1",
                authmethods=None, authid=None, authextra=None, answer=None,
                timeout: float = DEFAULT_TIMEOUT) -> ExtraAnswerSession:
    """Connect (plain, or TLS `version` when `ca` is given) and send HELLO; the outcome is in `session.on_joined`.
    `answer(challenge)` may read the session's own binding: it is called once the connection is up."""
    from twisted.internet import reactor

    session = ExtraAnswerSession(ComponentConfig(realm=realm), authmethods=authmethods, authid=authid,
                                 authextra=authextra, answer=answer)
    serializer = SERIALIZERS["json" if transport == "websocket" else "msgpack"]()
    scheme = "wss" if ca is not None else "ws"
    if transport == "websocket":
        factory = WampWebSocketClientFactory(lambda: session, url=f"{scheme}://127.0.0.1:{port}/ws",
                                             serializers=[serializer])
    else:
        factory = WampRawSocketClientFactory(lambda: session, serializer=serializer)
    factory.noisy = False
    endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port, timeout=5)
    if ca is not None:
        endpoint = endpoints.wrapClientTLS(PinnedTls(ca, version), endpoint)
    try:
        await bounded(endpoint.connect(factory), timeout)
    except Exception as e:
        raise Refused(None, f"connection failed: {e}") from e
    return session


async def outcome(session, timeout: float = DEFAULT_TIMEOUT):
    """(session, None) when it joined, (session, Refused) when refused."""
    try:
        await bounded(session.on_joined, timeout)
    except Refused as refusal:
        return session, refusal
    return session, None


def tls_connection(session) -> SSL.Connection:
    """The client's pyOpenSSL connection under an Autobahn session."""
    return session._transport.transport.getHandle()


def client_binding(session) -> tuple[str, bytes]:
    """(type, data) of the client's own side of the channel binding: `tls-unique` (the client's Finished message,
    the first of a full handshake) on TLS 1.2, `tls-exporter` on TLS 1.3."""
    connection = tls_connection(session)
    if connection.get_protocol_version_name() == "TLSv1.2":
        return "tls-unique", connection.get_finished()
    return "tls-exporter", connection.export_keying_material(b"EXPORTER-Channel-Binding", 32, b"")


def cryptosign_channel_id(binding: str, data: bytes) -> bytes:
    """The channel id Autobahn's cryptosign XORs into the challenge: SHA-256 of tls-unique data (as Autobahn's
    transport computes it), the exporter's 32 bytes as they are."""
    return hashlib.sha256(data).digest() if binding == "tls-unique" else data


# -- SCRAM as the WAMP spec computes it ------------------------------------------------------------------------------


def new_nonce() -> str:
    return base64.b64encode(os.urandom(16)).decode("ascii")


def salted_password(password: str, challenge_extra) -> bytes:
    """SaltedPassword: Autobahn's own argon2id-13 function; PBKDF2-HMAC-SHA256 over the decoded salt."""
    salt, iterations = challenge_extra["salt"], challenge_extra["iterations"]
    if challenge_extra["kdf"] == "argon2id-13":
        return _hash_argon2id13_secret(password.encode("utf-8"), salt, iterations, challenge_extra["memory"])
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), base64.b64decode(salt), iterations, 32)


def scram_answer(authid: str, password: str, client_nonce: str, binding=None):
    """An answer(challenge) -> (proof, extra) for ExtraAnswerSession; `.server_signature` is set on it once
    computed, to compare with WELCOME's. `binding` is (type, data), or a callable giving it when the challenge
    comes (the session's own, read once its connection is up), or None."""

    def answer(challenge):
        extra = challenge.extra
        server_nonce = extra["nonce"]
        chosen = binding() if callable(binding) else binding
        if chosen is None:
            c = "c="
            reply = {"nonce": server_nonce}
        else:
            kind, data = chosen
            c = "c=" + base64.b64encode(f"p={kind},,".encode("ascii") + data).decode("ascii")
            reply = {"nonce": server_nonce, "channel_binding": kind,
                     "cbind_data": base64.b64encode(data).decode("ascii")}
        auth_message = (f"n={authid},r={client_nonce},r={server_nonce},s={extra['salt']},i={extra['iterations']},"
                        f"{c},r={server_nonce}").encode("utf-8")
        salted = salted_password(password, extra)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        signature = hmac.new(stored_key, auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        answer.server_signature = base64.b64encode(
            hmac.new(server_key, auth_message, hashlib.sha256).digest()).decode("ascii")
        answer.proof = base64.b64encode(proof).decode("ascii")
        return answer.proof, reply

    answer.server_signature = None
    return answer
