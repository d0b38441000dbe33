"""The config's flat tables, every key declared once (router/settings.py): `[limits]`, `[limits.auth_failures]`,
`[admin]` and `[listeners.websocket]`.

Each field holds its key's default, bounds, rule and reference line; router/config.py reads the tables from these
declarations and router/configdoc.py renders the key tables of docs/configuration.md from them. Irregular tables
(listeners, realms, roles, permissions) are read by hand in router/config.py.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass
from pathlib import Path

from wampgate.configpaths import url_path_problem
from wampgate.core.lockout import LockoutPolicy
from wampgate.uri import DEFAULT_MAX_WILDCARD_SHAPES
from wampgate.endpoints import endpoint_problem
from wampgate.settings import setting, subtable
from wampgate.tx.payload import DEFAULT_MAX_NESTING, MAX_NESTING_CEILING

DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024
RAWSOCKET_MAX_MESSAGE_SIZE = 2**24
DEFAULT_MAX_HELLO_SIZE = 64 * 1024
MIN_HELLO_SIZE = 4096  # a HELLO with every role feature and a cryptosign key is ~1.5 KB
MIN_NESTING = 8  # a HELLO's details.roles.<role>.features is 4 deep; room above that for authextra


def _absolute_url_path(path: str) -> str:
    problem = url_path_problem(path)
    if problem:
        raise ValueError(problem)
    return path


def _off_or_url_path(path: str) -> str:
    """An optional path: "" means the feature is off."""
    if not path:
        return path
    try:
        if path == "/":  # long-poll's requests go below its path: at the root they would take every other path
            raise ValueError(path)
        return _absolute_url_path(path)
    except ValueError:
        raise ValueError('expected "" (off) or an absolute URL path such as "/lp"') from None


def _off_or_whole_seconds(seconds: float) -> float:
    """autobahn's ping timers tick in whole seconds, so below 1 only 0 (off) means something."""
    if 0 < seconds < 1:
        raise ValueError("expected 0 (off) or a number of seconds from 1 to 3600 (autobahn's timers tick in seconds)")
    return seconds


def _origins(origins: tuple[str, ...]) -> tuple[str, ...]:
    for origin in origins:
        if origin != "null" and not re.fullmatch(r"(https?|\*)://[^/\s]+", origin):
            raise ValueError('expected origins such as "https://app.example.com", "https://*.example.com:8443" or '
                             '"null", without a path')
    return tuple(origin.lower() for origin in origins)


def _proxy_networks(entries: tuple[str, ...]) -> tuple[str, ...]:
    """Addresses ("10.1.2.3") or networks ("10.0.0.0/8", "fd00::/8"); a network with host bits set ("10.1.2.3/8") is
    refused: it is a typo for an address or for a wider range, and guessing which would trust the wrong hosts."""
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=True)
        except ValueError:
            raise ValueError('expected IP addresses or networks such as "127.0.0.1", "::1", "10.0.0.0/8" or '
                             '"fd00::/8" (a network without host bits)') from None
    return entries


def _server_endpoint(description: str) -> str:
    problem = endpoint_problem(description)
    if problem:
        raise ValueError(problem)
    return description


@dataclass(frozen=True)
class WebSocketConfig:
    """`[listeners.websocket]`: read for every listener, used by WebSocket ones."""

    path: str = setting(
        "/ws", doc="the URL path of the WAMP WebSocket (`\"/\"` too); other paths get HTTP 404 (or static files, or "
                   "what [[listeners.paths]] serve there); without `static_dir`, a plain GET with no `Upgrade` header "
                   "gets 426. Several WebSocket paths: [Paths](#paths)",
        allowed="an absolute path", parse=_absolute_url_path)
    static_dir: Path | None = setting(
        None, doc="serve its files on the other paths of the same port (a web app and its WebSocket on one origin); "
        "see [Static files](#static-files)", allowed="a directory")  # read by _static_dir: relative to the file
    max_frame_size: int = setting(DEFAULT_MAX_MESSAGE_SIZE, 125, 64 * 1024 * 1024, "bytes per WebSocket frame",
                                  unit="bytes")
    # the router keeps this timer itself; autobahn's (below) tick in whole seconds, so they start at 1
    open_handshake_timeout: float = setting(
        5.0, 0.1, 300.0, "for the HTTP upgrade; also the idle timeout of HTTP connections for static files and the HTTP bridge", unit="s")
    close_handshake_timeout: float = setting(1.0, 1.0, 300.0, "for the WebSocket closing handshake", unit="s")
    auto_ping_interval: float = setting(
        30.0, 0.0, 3600.0, "seconds between WebSocket pings the router sends", allowed="0 (off) or 1–3,600 s",
        parse=_off_or_whole_seconds)
    auto_ping_timeout: float = setting(
        15.0, 0.0, 3600.0, "seconds to wait for the pong before dropping the connection",
        allowed="0 (off) or 1–3,600 s", parse=_off_or_whole_seconds)
    server_header: str = setting("Wampgate", doc='the HTTP `Server` header; `""` sends none')
    allowed_origins: tuple[str, ...] = setting(
        (), doc='browser origins that may open the WebSocket: exact (`"https://app.example.com"`), with `*` '
        '(`"https://*.example.com:8443"`), or `"null"`; case-insensitive, no path. A request whose `Origin` is not '
        "listed gets HTTP 403; a request without `Origin` is let in. Empty: no browser page may connect",
        parse=_origins)
    max_request_line: int = setting(8192, 256, 65536, "bytes of the request line; longer: HTTP 414")
    max_header_size: int = setting(
        8192, 256, 65536, "bytes of headers; request line and headers together beyond "
        "`max_request_line + max_header_size`: HTTP 431")
    max_headers: int = setting(64, 8, 1000, "header lines; more: HTTP 431")
    compression: bool = setting(
        False, doc="accept permessage-deflate; a message may not inflate beyond `max_message_size` (else close 1009)")
    trusted_proxies: tuple[str, ...] = setting(
        (), doc="connections from these addresses or networks (`\"10.0.0.0/8\"`, `\"fd00::/8\"`) have their "
        "`X-Forwarded-For` believed: the right-most entry not itself a trusted proxy is the client's address (for "
        "authenticators, failure counting, flow control's per-address rates and logs)",
        allowed="IP addresses, CIDR networks", parse=_proxy_networks)
    max_fragments: int = setting(
        64, 1, 65536, "frames per WebSocket message; a message with more closes the connection with 1009 (browsers "
        "and Autobahn send a message as one frame)")
    longpoll_path: str = setting(
        "", doc="the URL path of the WAMP [long-poll transport](#long-poll-transport) (`\"/lp\"`: `POST /lp/open`, "
        "then `/lp/<transport>/send`, `receive`, `close`), for clients that cannot hold a WebSocket; not `/` nor a "
        "path the listener already serves (its WebSocket or bridge paths, which keep theirs). Needs the `websocket` transport. Empty: off",
        allowed='"" or an absolute path', parse=_off_or_url_path)
    longpoll_receive_timeout: float = setting(
        10.0, 1.0, 300.0, "how long a long-poll `receive` waits for a message before it is answered empty (HTTP "
        "204); keep it below the client's request timeout (Autobahn/JS: 12 s)", unit="s")
    longpoll_idle_timeout: float = setting(
        60.0, 1.0, 3600.0, "a long-poll transport without any request for this long (a waiting `receive` counts as "
        "one) expires: its session ends as if the connection were lost", unit="s")
    longpoll_max_transports: int = setting(
        1000, 1, 1_000_000, "open long-poll transports on this listener; beyond it `open` gets HTTP 503")


@dataclass(frozen=True)
class AuthFailuresConfig:
    """`[limits.auth_failures]`: failed logins are counted per identity (the method, the realm and the authid HELLO
    named) and per peer address, each with its own thresholds. The defaults are the guard's own (LockoutPolicy)."""

    delay_after: int = setting(
        LockoutPolicy.delay_after, 1, 1000,
        "failures of one identity within `window` answered at once; later refusals are delayed")
    delay: float = setting(LockoutPolicy.delay, 0.0, 60.0, "the first delay; it doubles with each further failure",
                           unit="s")
    max_delay: float = setting(LockoutPolicy.max_delay, 0.0, 60.0, "the longest delay", unit="s")
    lockout_after: int = setting(LockoutPolicy.lockout_after, 1, 100_000,
                                 "failures of one identity within `window` that lock it out")
    lockout: float = setting(LockoutPolicy.lockout, 0.0, 86_400.0, "how long a lockout lasts", unit="s")
    window: float = setting(
        LockoutPolicy.window, 1.0, 86_400.0,
        "failures older than this (counted from the first of a series) no longer count", unit="s")
    max_tracked: int = setting(
        LockoutPolicy.max_tracked, 100, 10_000_000,
        "identities, addresses and login-rate buckets remembered, each; the stalest are forgotten first. Every entry "
        "is keyed by a 16-byte digest, so its size does not depend on what the client sent")
    peer_delay_after: int = setting(
        LockoutPolicy.peer_delay_after, 1, 100_000,
        "`delay_after` for a peer address (one address may be many users behind NAT or a proxy)")
    peer_lockout_after: int = setting(LockoutPolicy.peer_lockout_after, 1, 1_000_000,
                                      "`lockout_after` for a peer address")


@dataclass(frozen=True)
class LimitsConfig:
    """`[limits]`: timeouts, per-session limits, authentication and message bounds."""

    hello_timeout: float = setting(
        10.0, 0.1, 600.0,
        "each opening stage: the first byte on a universal port, the RawSocket handshake, and HELLO through "
        "authentication to WELCOME; also how long a transport may stay silent after a GOODBYE exchange before a new "
        "HELLO. Then the connection is dropped (WebSocket close 1008). The WebSocket opening handshake has its own "
        "`open_handshake_timeout`", unit="s")
    goodbye_timeout: float = setting(
        5.0, 0.1, 600.0,
        "after the router says GOODBYE (kill, shutdown), how long it waits for the client's GOODBYE before closing",
        unit="s")
    auth_timeout: float = setting(
        5.0, 0.1, 600.0,
        "how long an authenticator may take to answer (`begin` or `finish`); then the attempt fails", unit="s")
    authorization_timeout: float = setting(
        5.0, 0.1, 600.0, "how long each authorizer of a chain may take; then: deny", unit="s")
    decision_cache_size: int = setting(100_000, 0, 10_000_000,
                                       "cached authorization decisions per realm (0: no cache)")
    max_subscriptions_per_session: int = setting(
        1000, 1, 1_000_000, "beyond it SUBSCRIBE gets `wampgate.error.too_many_subscriptions`")
    max_registrations_per_session: int = setting(
        100, 1, 1_000_000, "beyond it REGISTER gets `wampgate.error.too_many_registrations`")
    max_pending_calls_per_session: int = setting(
        1000, 1, 1_000_000,
        "calls one caller may have pending; beyond it CALL gets `wampgate.error.too_many_pending_calls`")
    max_call_timeout: float = setting(
        3600.0, 1.0, 86_400.0,
        "the longest CALL `timeout` the router enforces; a longer one is cut to this (a CALL without `timeout` has "
        "none)", unit="s")
    max_wildcard_shapes: int = setting(
        DEFAULT_MAX_WILDCARD_SHAPES, 1, 100_000,
        "distinct wildcard shapes per realm, for subscriptions and for registrations each. A shape is a pattern's "
        "component count and wildcard positions (`com..a` and `org..b` share one); each shape costs every PUBLISH "
        "or CALL with that many components one lookup. A SUBSCRIBE or REGISTER that would add a shape beyond it gets "
        "`wampgate.error.too_many_patterns`; more patterns of a shape already held are accepted. Lowered by a "
        "reload, shapes already held stay")
    max_retained_events: int = setting(
        10_000, 0, 10_000_000,
        "retained events per realm (PUBLISH with `retain`, one per topic); beyond it the topic retained least "
        "recently is forgotten. 0: nothing is retained ([Event retention](behaviour.md#event-retention))")
    max_retained_bytes: int = setting(
        16 * 2**20, 0, 2**32,
        "the estimated size of the retained events of a realm (topic, args and kwargs: strings by UTF-8 length, 9 "
        "bytes a number, every container and item at least one, plus 64 bytes an event); beyond it the topic "
        "retained least recently is forgotten. An event larger than this alone is not retained", unit="bytes")
    max_history_bytes: int = setting(
        16 * 2**20, 0, 2**32,
        "the estimated size (as for `max_retained_bytes`) of the event history of a realm, every `[[realms.history]]` "
        "rule together; beyond it the realm's oldest kept event is forgotten. An event larger than this alone is not "
        "kept ([Event history](behaviour.md#event-history))", unit="bytes")
    max_testaments_per_session: int = setting(
        16, 0, 10_000,
        "testaments (`wamp.session.add_testament`, both scopes together) one session may hold; beyond it the call "
        "gets `wampgate.error.too_many_testaments`. 0: testaments are turned off")
    max_testament_bytes: int = setting(
        16 * 1024, 256, 16 * 2**20,
        "the largest testament (topic, args, kwargs and publish options, estimated like `max_authextra_size`); "
        "larger: `wampgate.error.testament_too_large`. A session may hold `max_testaments_per_session` times this",
        unit="bytes")
    max_outgoing_buffer: int = setting(
        4 * 2**20, 64 * 1024, 2**31,
        "the outgoing budget of every connection: bytes the router writes to it (WAMP messages of every kind, PONGs, "
        "close frames, handshake replies) after its socket asked the router to pause. Beyond it the router stops "
        "reading from the connection, EVENTs for it follow the slow-consumer policy, INVOCATIONs and RESULTs for it "
        "are not written and their calls end ([Slow consumers](#slow-consumers))", unit="bytes")
    outgoing_stall_timeout: float = setting(
        30.0, 0.1, 3600.0, "how long a connection may stay over `max_outgoing_buffer`; then it is dropped "
        "(`wampgate_outgoing_stall_disconnect_total`)", unit="s")
    shutdown_timeout: float = setting(10.0, 0.0, 3600.0, "how long a graceful shutdown waits for pending calls",
                                      unit="s")
    max_nesting: int = setting(
        DEFAULT_MAX_NESTING, MIN_NESTING, MAX_NESTING_CEILING,
        "container levels a message may hold, the same for JSON, MessagePack and CBOR; a message's args, kwargs and "
        "options/details are level 1, each list or map inside adds one. Deeper: ERROR `wamp.error.invalid_argument` "
        "([Payload values](#payload-values))")
    max_hello_size: int = setting(
        DEFAULT_MAX_HELLO_SIZE, MIN_HELLO_SIZE, RAWSOCKET_MAX_MESSAGE_SIZE,
        "the largest message a connection may send before its WELCOME (HELLO, AUTHENTICATE); a larger one is refused "
        "before it is decoded: ABORT `wamp.error.protocol_violation`. After WELCOME the listener's `max_message_size` "
        "applies", unit="bytes")
    # The authentication guard's [limits] keys (LockoutPolicy holds them beside the failure thresholds).
    logins_per_peer_rate: float = setting(
        LockoutPolicy.logins_per_peer_rate, 0.0, 1_000_000.0,
        "login attempts (successful or not) one peer address may make per second with any method but `anonymous`; "
        "over it HELLO gets `wamp.error.authentication_failed` before the authenticator is asked, so one valid "
        "account cannot keep the password checks busy for everyone. 0: unlimited", unit="per s")
    logins_per_peer_burst: int = setting(
        LockoutPolicy.logins_per_peer_burst, 1, 1_000_000,
        "attempts a peer address may make at once before `logins_per_peer_rate` applies")
    max_authid_length: int = setting(
        LockoutPolicy.max_authid_length, 16, 4096,
        "the longest HELLO `authid` (UTF-8); a longer one is refused with `wamp.error.authentication_failed` before "
        "any authenticator or failure table sees it", unit="bytes")
    max_authextra_size: int = setting(
        LockoutPolicy.max_authextra_size, 256, 1024 * 1024,
        "the largest HELLO `authextra` (an estimate of its serialized size: strings by length, 9 bytes a number, "
        "every item at least one); larger is refused like a too-long authid", unit="bytes")
    auth_failures: AuthFailuresConfig = subtable(AuthFailuresConfig)

    @property
    def lockout(self) -> LockoutPolicy:
        """The one policy the authentication guard is built from: the failure thresholds and the login bounds."""
        guard = {name: getattr(self, name) for name in
                 ("logins_per_peer_rate", "logins_per_peer_burst", "max_authid_length", "max_authextra_size")}
        return LockoutPolicy(**asdict(self.auth_failures), **guard)


def _redis_url(url: str) -> str:
    from wampgate.tx.cluster.redis import RedisAddress  # the parser lives beside the client that uses it

    RedisAddress.parse(url)
    return url


def _node_name(name: str) -> str:
    if name and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", name):
        raise ValueError('expected up to 64 letters, digits, "_", "." or "-" (or "" for a generated name)')
    return name


@dataclass(frozen=True)
class ClusterConfig:
    """`[cluster]`: serve the realms together with other Wampgate nodes through a Redis-protocol server
    (docs/cluster.md); without the table the router is one process and never touches Redis."""

    redis: str = setting(
        "redis://127.0.0.1:6379",
        doc="the Redis (or Valkey) server every node of the cluster shares; `rediss://` for TLS; a password "
        "(`redis://:PASSWORD@HOST:PORT`) can come from the environment as `${REDIS_PASSWORD}`",
        allowed='"redis://[USER:PASSWORD@]HOST:PORT[/DB]" or "rediss://..."', parse=_redis_url)
    node: str = setting(
        "", doc="this node's name in logs, metrics and Redis keys; a random suffix is always added, so a restarted "
        "node never reuses the state of its previous life; empty: the host name", parse=_node_name,
        allowed='up to 64 letters, digits, "_", "." or "-"')
    workers: int = setting(
        1, 1, 64, "router processes on this machine, sharing the listening sockets, each a node of the cluster: "
        "one per core lets one machine's cores all serve. One parent process opens the sockets, runs and restarts "
        "the workers, relays their logs and serves `[admin]` with their states (docs/cluster.md)")
    bucket_depth: int = setting(
        2, 1, 8, "how many leading URI components name the engine channel a prefix or wildcard subscription "
        "listens on (patterns with fewer share the realm's catch-all channel)")
    heartbeat_interval: float = setting(
        1.0, 0.1, 10.0, "how often a node renews its liveness key and looks for nodes that are gone", unit="seconds")
    node_timeout: float = setting(
        5.0, 0.5, 300.0, "a node whose liveness key was not renewed for this long is gone: its sessions leave "
        "(`wamp.session.on_leave`), its registrations and pending calls end", unit="seconds")
    reply_timeout: float = setting(
        2.0, 0.1, 60.0, "the longest Redis may take to answer a command or a PING before the connection is "
        "considered hung and is reconnected", unit="seconds")
    unsubscribe_linger: float = setting(
        2.0, 0.0, 60.0, "how long a node keeps listening for a topic after its last local subscriber left, so "
        "churning subscriptions cost no Redis round trips", unit="seconds")
    rate_lease: float = setting(
        0.1, 0.01, 10.0, "per-authid rates hold across the cluster through leases: each node takes this many "
        "seconds' worth of an authid's rate from Redis at a time (one Redis call per lease, not per message; the "
        "cluster may admit up to one lease per node beyond the rate)", unit="seconds")
    when_redis_down: str = setting(
        "local", doc="what cluster-wide rates do while Redis cannot be reached: `local` (each node goes on with its own "
        "limits only) or `refuse` (refuse what needs a cluster-wide rate until Redis is back)",
        choices=("local", "refuse"))
    max_pending: int = setting(
        100_000, 100, 10_000_000, "the most Redis commands (publications included) one connection may have "
        "unanswered; beyond it publications to other nodes are dropped and counted (never queued without bound)")


@dataclass(frozen=True)
class AdminConfig:
    """`[admin]`: the `/metrics` and `/healthz` listener; without the table there is none."""

    endpoint: str = setting(
        "tcp:9100:interface=127.0.0.1",
        doc="where `/metrics` and `/healthz` are served (plain HTTP, no authentication: keep it on loopback or a "
        "private network). It may not share an address with a listener", allowed="a server endpoint",
        parse=_server_endpoint)
