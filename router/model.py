"""Frozen value types shared by the router and its plugins. Plugins get these, never sessions or transports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class TransportInfo:
    """What is known about a client's connection."""

    listener: str  # the listener's name from the config
    kind: str  # "websocket", "rawsocket", "longpoll", "http" (an HTTP bridge request) or "internal" (the router's own calls)
    peer: str  # e.g. "tcp4:127.0.0.1:50312"
    is_secure: bool
    serializer: str  # "json", "msgpack" or "cbor"
    http_headers: Mapping[str, str] = field(default_factory=dict)  # handshake or long-poll open; lower-case
    http_path: str | None = None
    http_query: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # the handshake URL's query parameters
    cookies: Mapping[str, str] = field(default_factory=dict)  # from the handshake's Cookie header
    # The TLS client certificate, when the client sent one: see ClientCertificate.
    peer_certificate: ClientCertificate | None = None
    # The TLS channel bindings of the connection, {type: data}: {"tls-unique": the client's Finished message} on
    # TLS 1.2, {"tls-exporter": 32 exported bytes} on TLS 1.3, {} on plain TCP (router/tx/channelbinding.py).
    channel_bindings: Mapping[str, bytes] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClientCertificate:
    """A TLS client certificate as authenticators see it."""

    verified: bool  # the chain was verified against the listener's `client_ca`
    subject: str  # RFC 4514, e.g. "CN=alice,O=Example"
    issuer: str
    common_name: str | None
    dns_names: tuple[str, ...]
    emails: tuple[str, ...]
    sha256: str  # fingerprint of the DER encoding, lower-case hex
    serial: int
    sha1: str = ""  # SHA-1 fingerprint of the DER encoding, lower-case hex: what Crossbar configs pin


@dataclass(frozen=True, slots=True)
class AuthRequest:
    """A HELLO as an authenticator sees it."""

    session_id: int
    realm: str | None  # None: HELLO named no realm (the principal's realm is taken, see Identity.realm)
    authid: str | None
    authmethods: tuple[str, ...]
    authextra: Mapping[str, Any]
    transport: TransportInfo


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a session is, once authenticated: what authorization and flow control key on."""

    authid: str
    authrole: str
    authmethod: str
    authprovider: str
    authextra: Mapping[str, Any] = field(default_factory=dict)
    # The realm the principal belongs to, when the authenticator knows one (a principal's `realm`): a HELLO without
    # a realm joins it, a HELLO naming another realm is refused. None: the principal may join any realm it is served.
    realm: str | None = None


@dataclass(frozen=True, slots=True)
class Challenge:
    """Ask the client to prove itself: sent as CHALLENGE(method, extra)."""

    method: str
    extra: Mapping[str, Any] = field(default_factory=dict)
    state: Any = field(default=None, repr=False, compare=False)  # kept by the router for `finish`, never sent


@dataclass(frozen=True, slots=True)
class Denied:
    """Authentication refused; `reason` is logged, never sent to the client. `counts_as_failure` is False when the
    refusal is not the client's doing (the authenticator is overloaded), so it does not feed the lockout."""

    reason: str
    counts_as_failure: bool = True


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """One action a session wants to take."""

    session_id: int
    realm: str
    identity: Identity
    transport: TransportInfo
    action: str  # "publish", "subscribe", "call" or "register"
    uri: str
    match: str = "exact"
    options: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Decision:
    """An authorizer's answer. Anything but an explicit allow is a deny."""

    allow: bool
    disclose: bool = False  # disclose the caller / publisher identity to the receivers
    cache_ttl: float = 0.0  # seconds the answer may be reused for the same identity (0: never)
    per_role: bool = False  # the answer holds for every session of the role, not just this authid
    # Set by the router, not by authorizers: which link of the realm's chain denied, e.g. "authorizers[1] (quota)",
    # for the log line. Not part of the answer's value (equality ignores it).
    denied_by: str = field(default="", compare=False)


DENY = Decision(allow=False)


@dataclass(frozen=True, slots=True)
class Verdict:
    """A flow-control answer. `reason` is a fixed name (counted and logged); `error` is the WAMP URI the client
    gets for a reject (ERROR) or a disconnect (ABORT); `retry_after` is the seconds until the refused sender's
    allowance has refilled: on every refusal of a message (a reject, whether the message is answered or dropped),
    so the router can stop reading from that connection until then."""

    kind: str  # ADMIT, REJECT, DROP or DISCONNECT
    reason: str = ""
    error: str | None = None
    retry_after: float = 0.0


ADMIT_KIND, REJECT_KIND, DROP_KIND, DISCONNECT_KIND = "admit", "reject", "drop", "disconnect"
ADMIT = Verdict(ADMIT_KIND)


@dataclass(frozen=True, slots=True)
class FlowSession:
    """A joined session as flow control sees it; made once per session, passed with each message."""

    session_id: int
    realm: str
    authid: str
    authrole: str
    peer: str  # the peer's address without the port, e.g. "tcp4:127.0.0.1"
    listener: str
    # How the session authenticated ("anonymous", "ticket", ...; "" when not known). Anonymous authids are made up
    # afresh for every session, so flow control keys their per-authid limits by the peer address instead.
    authmethod: str = ""
