"""Autobahn (Twisted) clients that authenticate: they offer methods in HELLO, answer the router's CHALLENGE (ticket,
WAMP-CRA plain or salted, cryptosign, JWT) or stall in it, may send WebSocket handshake headers, and note when they
sent AUTHENTICATE and when the answer (WELCOME or ABORT) came, on the reactor's clock.

    session = await join(target, authmethods=["ticket"], authid="alice", answer=ticket("secret"))
    refusal = await refused(target, authmethods=["ticket"], authid="alice", answer=ticket("wrong"))

Every wait here is bounded (`tests.support.raw.bounded`); a wait that runs out fails with defer.TimeoutError.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from autobahn.twisted.rawsocket import WampRawSocketClientFactory
from autobahn.twisted.websocket import WampWebSocketClientFactory
from autobahn.wamp.auth import compute_wcs, derive_key
from autobahn.wamp.types import ComponentConfig
from twisted.internet import defer

from tests.support.clients import SERIALIZERS, ClientSession, Refused, Target
from tests.support.clients import _endpoint as endpoint_for
from tests.support.raw import DEFAULT_TIMEOUT, bounded

Answer = Callable[[Any], Any]  # autobahn.wamp.types.Challenge -> signature (str), or a Deferred of one


def _now() -> float:
    from twisted.internet import reactor

    return reactor.seconds()


class AuthSession(ClientSession):
    """A ClientSession that sends authextra in HELLO and answers CHALLENGE with `answer(challenge)`.

    `challenges` lists every CHALLENGE received; `authenticated_at` is when AUTHENTICATE went out, `settled_at`
    when WELCOME or ABORT came (or the transport closed first), `gone_at` when the transport closed."""

    def __init__(self, config, *, authmethods=None, authid=None, authextra=None, answer: Answer | None = None):
        super().__init__(config, authmethods=authmethods, authid=authid)
        self._authextra = authextra
        self._answer = answer
        self.challenges: list = []
        self.connected_at: float | None = None
        self.authenticated_at: float | None = None
        self.settled_at: float | None = None
        self.gone_at: float | None = None

    def onConnect(self):
        self.connected_at = _now()
        self.join(self.config.realm, authmethods=self._authmethods, authid=self._authid, authextra=self._authextra)

    def onChallenge(self, challenge):
        self.challenges.append(challenge)
        if self._answer is None:
            raise RuntimeError(f"unexpected {challenge.method} challenge: this client has no answer")
        signature = defer.maybeDeferred(self._answer, challenge)
        signature.addCallback(self._sending)
        return signature

    def _sending(self, signature):
        """Autobahn writes AUTHENTICATE as soon as this returns: this is the moment it goes out."""
        self.authenticated_at = _now()
        return signature

    def onJoin(self, details):
        self._settled()
        super().onJoin(details)

    def onLeave(self, details):
        self._settled()
        super().onLeave(details)

    def onDisconnect(self):
        self._settled()
        self.gone_at = _now()
        super().onDisconnect()

    def _settled(self) -> None:
        if self.settled_at is None:
            self.settled_at = _now()


# -- answers ------------------------------------------------------------------------------------------------------


def ticket(secret: str) -> Answer:
    """Answer a ticket (or JWT) challenge with `secret` itself."""
    return lambda challenge: secret


token = ticket  # a JWT is sent the same way: the token is the AUTHENTICATE signature


def wampcra(secret: str) -> Answer:
    """WAMP-CRA as Autobahn computes it: HMAC-SHA256 of the challenge under the secret, or, when the challenge
    carries salt / iterations / keylen, under the PBKDF2 key derived from the secret (autobahn's derive_key)."""

    def answer(challenge) -> str:
        extra = challenge.extra
        key: bytes = secret.encode("utf-8")
        if "salt" in extra:
            key = derive_key(secret, extra["salt"], extra["iterations"], extra["keylen"])
        return compute_wcs(key, extra["challenge"]).decode("ascii")

    return answer


def cryptosign(key) -> Answer:
    """Sign the challenge with an autobahn.wamp.cryptosign.CryptosignKey (its answer is a Deferred)."""
    return key.sign_challenge


def corrupted(answer: Answer) -> Answer:
    """`answer`, with the first hex digit of the signature flipped: well-formed, but not a valid signature."""

    def flip(signature: str) -> str:
        first = "1" if signature[0] == "0" else "0"
        return first + signature[1:]

    return lambda challenge: defer.maybeDeferred(answer, challenge).addCallback(flip)


def stall(challenged: defer.Deferred | None = None) -> Answer:
    """Never answer: the Deferred never fires, so no AUTHENTICATE is ever sent. `challenged`, when given, fires
    with the CHALLENGE when it arrives."""

    def answer(challenge) -> defer.Deferred:
        if challenged is not None and not challenged.called:
            challenged.callback(challenge)
        return defer.Deferred()

    return answer


# -- connecting ----------------------------------------------------------------------------------------------------


async def start(
    target: Target,
    realm: str = "realm1",
    *,
    authmethods=None,
    authid=None,
    authextra=None,
    answer: Answer | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> AuthSession:
    """Connect (bounded) and send HELLO; returns the session at once, its outcome in `session.on_joined`.
    `headers` go into the WebSocket opening handshake."""
    session = AuthSession(
        ComponentConfig(realm=realm), authmethods=authmethods, authid=authid, authextra=authextra, answer=answer
    )
    serializer = SERIALIZERS[target.serializer]()
    if target.transport == "websocket":
        factory = WampWebSocketClientFactory(
            lambda: session, url=target.url, serializers=[serializer], headers=headers or {}
        )
    elif headers:
        raise ValueError("RawSocket has no handshake headers")
    else:
        factory = WampRawSocketClientFactory(lambda: session, serializer=serializer)
    factory.noisy = False
    try:
        await bounded(endpoint_for(target).connect(factory), timeout)
    except Exception as e:
        raise Refused(None, f"connection failed: {e}") from e
    return session


async def join(target: Target, realm: str = "realm1", *, timeout: float = DEFAULT_TIMEOUT, **options) -> AuthSession:
    """Connect and authenticate; the joined session (`session.welcome` holds the WELCOME details). Raises Refused
    with the ABORT reason and message when the router refuses."""
    session = await start(target, realm, timeout=timeout, **options)
    await bounded(session.on_joined, timeout)
    return session


async def attempt(target: Target, realm: str = "realm1", *, timeout: float = DEFAULT_TIMEOUT, **options):
    """Connect and authenticate; (session, None) when it joined, (session, Refused) when refused."""
    session = await start(target, realm, timeout=timeout, **options)
    try:
        await bounded(session.on_joined, timeout)
    except Refused as refusal:
        return session, refusal
    return session, None


async def refused(target: Target, realm: str = "realm1", *, timeout: float = DEFAULT_TIMEOUT, **options) -> Refused:
    """The Refused of an attempt that must fail; an attempt that joins instead fails the test (after leaving)."""
    session, refusal = await attempt(target, realm, timeout=timeout, **options)
    if refusal is None:
        await leave(session)
        welcome = session.welcome
        raise AssertionError(f"expected a refusal, but joined as {welcome.authid!r}/{welcome.authrole!r}")
    return refusal


async def leave(session: AuthSession, timeout: float = DEFAULT_TIMEOUT) -> None:
    """Leave politely and wait (bounded) until the transport is gone."""
    if session.is_attached():
        session.leave()
    await bounded(session.on_gone, timeout)
