"""Real Autobahn (Twisted) clients for the tests, over WebSocket or RawSocket, plain or TLS, any serializer."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from autobahn.twisted.rawsocket import WampRawSocketClientFactory
from autobahn.twisted.wamp import ApplicationSession
from autobahn.twisted.websocket import WampWebSocketClientFactory
from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer
from autobahn.wamp.types import ComponentConfig
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from twisted.internet import defer, endpoints, ssl
from twisted.internet.interfaces import IOpenSSLClientConnectionCreator
from zope.interface import implementer

SERIALIZERS = {"json": JsonSerializer, "msgpack": MsgPackSerializer, "cbor": CBORSerializer}


class Refused(Exception):
    """The router ended the session before WELCOME (ABORT) or the connection failed."""

    def __init__(self, reason: str | None, message: str | None = None):
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class Target:
    """Where and how to connect."""

    port: int
    transport: str = "websocket"  # or "rawsocket"
    serializer: str = "json"
    path: str = "/ws"
    tls_ca: object = None  # CertFiles.ca path: trust root, and use TLS
    client_cert: tuple | None = None  # (cert path, key path)
    host: str = "127.0.0.1"

    @property
    def url(self) -> str:
        scheme = "wss" if self.tls_ca else "ws"
        return f"{scheme}://{self.host}:{self.port}{self.path}"


class ClientSession(ApplicationSession):
    """Joins with the given credentials; exposes Deferreds for join, leave and disconnect."""

    def __init__(self, config, authmethods=None, authid=None, roles=None):
        super().__init__(config)
        self._authmethods = authmethods
        self._authid = authid
        if roles is not None:  # the HELLO roles and features (Autobahn's defaults are one dict shared by all)
            self._session_roles = roles
        self.on_joined = defer.Deferred()
        self.on_left = defer.Deferred()
        self.on_gone = defer.Deferred()
        self.welcome = None
        self.leave_details = None

    def onConnect(self):
        self.join(self.config.realm, authmethods=self._authmethods, authid=self._authid)

    def onJoin(self, details):
        self.welcome = details
        self.on_joined.callback(self)

    def onLeave(self, details):
        self.leave_details = details
        if not self.on_joined.called:
            self.on_joined.errback(Refused(details.reason, details.message))
        if not self.on_left.called:
            self.on_left.callback(details)
        self.disconnect()

    def onDisconnect(self):
        if not self.on_joined.called:
            self.on_joined.errback(Refused(None, "disconnected before WELCOME"))
        if not self.on_gone.called:
            self.on_gone.callback(None)


def _endpoint(target: Target):
    from twisted.internet import reactor

    endpoint = endpoints.TCP4ClientEndpoint(reactor, target.host, target.port, timeout=5)
    if target.tls_ca is None:
        return endpoint
    trust = ssl.Certificate.loadPEM(open(target.tls_ca, "rb").read())
    options = ssl.optionsForClientTLS("localhost", trustRoot=trust)
    if target.client_cert is not None:
        options = _WithClientCertificate(options, *target.client_cert)
    return endpoints.wrapClientTLS(options, endpoint)


@implementer(IOpenSSLClientConnectionCreator)
class _WithClientCertificate:
    """Twisted's client options plus a client certificate set on each connection as `cryptography` objects
    (Twisted's own clientCertificate= hands pyOpenSSL its deprecated X509 / PKey objects)."""

    def __init__(self, options, cert_path, key_path):
        self._options = options
        self._certificate = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
        self._key = serialization.load_pem_private_key(Path(key_path).read_bytes(), password=None)

    def clientConnectionForTLS(self, tls_protocol):
        connection = self._options.clientConnectionForTLS(tls_protocol)
        connection.use_certificate(self._certificate)
        connection.use_privatekey(self._key)
        return connection


async def connect(target: Target, realm: str = "realm1", *, authmethods=None, authid=None,
                  roles=None) -> ClientSession:
    """Connect and join (announcing `roles`, Autobahn's role features by name, when given); raises Refused with the
    ABORT reason when the router refuses."""
    session = ClientSession(ComponentConfig(realm=realm), authmethods=authmethods, authid=authid, roles=roles)
    serializer = SERIALIZERS[target.serializer]()
    if target.transport == "websocket":
        factory = WampWebSocketClientFactory(lambda: session, url=target.url, serializers=[serializer])
    else:
        factory = WampRawSocketClientFactory(lambda: session, serializer=serializer)
    factory.noisy = False
    try:
        await _endpoint(target).connect(factory)
    except Exception as e:
        raise Refused(None, f"connection failed: {e}") from e
    return await session.on_joined


async def leave(session: ClientSession) -> None:
    """Leave politely and wait until the transport is gone."""
    if session.is_attached():
        session.leave()
    await session.on_gone


async def leave_all(*sessions, timeout: float = 5.0) -> None:
    """Leave with every session at once; fail if they are not all gone within `timeout` seconds."""
    from twisted.internet import reactor

    gone = defer.gatherResults([defer.ensureDeferred(leave(session)) for session in sessions])
    await gone.addTimeout(timeout, reactor)


def record_inbound(session) -> list:
    """Record every WAMP message the session receives, as parsed from the wire, before Autobahn handles it."""
    seen: list = []
    handle = session.onMessage

    def on_message(msg):
        seen.append(msg)
        return handle(msg)

    session.onMessage = on_message
    return seen


@dataclass
class Collector:
    """Records events delivered to a handler, and fires a Deferred when `expected` have arrived."""

    expected: int = 1
    events: list = field(default_factory=list)
    done: defer.Deferred = field(default_factory=defer.Deferred)

    def __call__(self, *args, **kwargs):
        self.events.append((args, kwargs))
        if len(self.events) >= self.expected and not self.done.called:
            self.done.callback(self.events)
