"""The router's configuration: one TOML file turned into frozen dataclasses, validated fully before anything listens.

Every problem is reported as one line naming the key path, the value found and what is allowed; unknown keys are
errors. Paths inside the file (certificates, static directories) are relative to the file's own directory.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping
from functools import partial
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from router import loader
from router.configreader import TableReader, show
from router.core.lockout import LockoutPolicy
from router.core.uri import DEFAULT_MAX_URI_LENGTH, DEFAULT_MAX_WILDCARD_SHAPES, MATCH_POLICIES, PREFIX, UriPolicy
from router.endpoints import addresses_clash, endpoint_address, endpoint_problem
from router.settings import read_settings, setting, subtable
from router.tx.payload import DEFAULT_MAX_NESTING, MAX_NESTING_CEILING

TRANSPORTS = ("websocket", "rawsocket")
SERIALIZERS = ("json", "msgpack", "cbor")
ACTIONS = ("publish", "subscribe", "call", "register")
TLS_VERSIONS = ("1.2", "1.3")
SLOW_CONSUMER_POLICIES = ("drop", "disconnect")
DEFAULT_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL:!MD5:!DSS:!RC4:!3DES"
DEFAULT_MAX_MESSAGE_SIZE = 1024 * 1024
RAWSOCKET_MAX_MESSAGE_SIZE = 2**24
MIN_MESSAGE_SIZE = 512
DEFAULT_MAX_HELLO_SIZE = 64 * 1024
MIN_HELLO_SIZE = 4096  # a HELLO with every role feature and a cryptosign key is ~1.5 KB
MIN_NESTING = 8  # a HELLO's details.roles.<role>.features is 4 deep; room above that for authextra


class ConfigError(Exception):
    """The configuration cannot be used; `problems` holds one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class TlsConfig:
    certificate: Path  # PEM: the server certificate, then its intermediates
    private_key: Path
    client_ca: Path | None  # verify client certificates against this CA bundle
    require_client_certificate: bool
    ciphers: str
    min_version: str


def _absolute_url_path(path: str) -> str:
    if not path.startswith("/") or any(not part for part in path.split("/")[1:]) or "?" in path:
        raise ValueError('expected an absolute URL path such as "/ws"')
    return path


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


def _ip_addresses(addresses: tuple[str, ...]) -> tuple[str, ...]:
    for address in addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            raise ValueError("expected IP addresses such as \"127.0.0.1\" or \"::1\"") from None
    return addresses


def _server_endpoint(description: str) -> str:
    problem = endpoint_problem(description)
    if problem:
        raise ValueError(problem)
    return description


@dataclass(frozen=True)
class WebSocketConfig:
    """`[listeners.websocket]`: read for every listener, used by WebSocket ones."""

    path: str = setting(
        "/ws", doc="the URL path of the WAMP WebSocket; other paths get HTTP 404 (or static files)",
        allowed="an absolute path", parse=_absolute_url_path)
    static_dir: Path | None = setting(
        None, doc="serve its files on the other paths of the same port (a web app and its WebSocket on one origin); "
        "see [Static files](#static-files)", allowed="a directory")  # read by _static_dir: relative to the file
    max_frame_size: int = setting(DEFAULT_MAX_MESSAGE_SIZE, 125, 64 * 1024 * 1024, "bytes per WebSocket frame",
                                  unit="bytes")
    # the router keeps this timer itself; autobahn's (below) tick in whole seconds, so they start at 1
    open_handshake_timeout: float = setting(
        5.0, 0.1, 300.0, "for the HTTP upgrade; also the idle timeout of HTTP connections for static files", unit="s")
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
        (), doc="connections from these addresses have their `X-Forwarded-For` believed: the right-most entry not "
        "itself a trusted proxy is the client's address (for authenticators, failure counting, flow control's "
        "per-address rates and logs)", allowed="IP addresses", parse=_ip_addresses)
    max_fragments: int = setting(
        64, 1, 65536, "frames per WebSocket message; a message with more closes the connection with 1009 (browsers "
        "and Autobahn send a message as one frame)")


@dataclass(frozen=True)
class AuthMethodConfig:
    method: str
    options: Mapping[str, Any]  # the plugin's own table, validated by the plugin
    realms: tuple[str, ...] | None  # None: every realm


@dataclass(frozen=True)
class ListenerConfig:
    name: str
    endpoint: str
    transports: tuple[str, ...]
    serializers: tuple[str, ...]
    max_message_size: int
    tls: TlsConfig | None
    websocket: WebSocketConfig
    auth: tuple[AuthMethodConfig, ...]


@dataclass(frozen=True)
class Permission:
    uri: str
    match: str
    allow: frozenset[str]
    disclose: bool


@dataclass(frozen=True)
class RoleConfig:
    name: str
    permissions: tuple[Permission, ...]
    slow_consumer: str | None = None  # overrides the realm's policy for this role


@dataclass(frozen=True)
class AuthorizerConfig:
    plugin: str  # entry point name in wampgate.authorizers, or "package.module:Object"
    roles: tuple[str, ...] | None  # the roles it decides for; None: every role
    options: Mapping[str, Any]  # the plugin's own keys, validated by the plugin


@dataclass(frozen=True)
class RealmConfig:
    name: str
    uri_policy: UriPolicy
    roles: Mapping[str, RoleConfig]
    authorizers: tuple[AuthorizerConfig, ...] = (AuthorizerConfig("static", None, MappingProxyType({})),)
    slow_consumer: str = "drop"  # a subscriber over max_outgoing_buffer: "drop" its events or "disconnect" it

    def slow_consumer_policy(self, role: str) -> str:
        override = self.roles[role].slow_consumer if role in self.roles else None
        return override or self.slow_consumer


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
    max_outgoing_buffer: int = setting(
        4 * 2**20, 64 * 1024, 2**31,
        "bytes written to a session after its socket asked the router to pause; beyond it the slow-consumer policy "
        "applies ([Slow consumers](#slow-consumers))", unit="bytes")
    outgoing_stall_timeout: float = setting(
        30.0, 0.1, 3600.0, "how long a connection may stay over `max_outgoing_buffer`; then it is closed", unit="s")
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


@dataclass(frozen=True)
class FlowConfig:
    plugin: str  # entry point name in wampgate.flow, or "package.module:Object"
    options: Mapping[str, Any]


DEFAULT_FLOW = (FlowConfig("limits", MappingProxyType({})),)


@dataclass(frozen=True)
class AdminConfig:
    """`[admin]`: the `/metrics` and `/healthz` listener; without the table there is none."""

    endpoint: str = setting(
        "tcp:9100:interface=127.0.0.1",
        doc="where `/metrics` and `/healthz` are served (plain HTTP, no authentication: keep it on loopback or a "
        "private network). It may not share an address with a listener", allowed="a server endpoint",
        parse=_server_endpoint)


@dataclass(frozen=True)
class RouterConfig:
    source: Path
    listeners: tuple[ListenerConfig, ...]
    realms: Mapping[str, RealmConfig]
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    flow: tuple[FlowConfig, ...] = DEFAULT_FLOW
    admin: AdminConfig | None = None


def load(path: str | Path) -> RouterConfig:
    """Read and validate a config file; raise ConfigError listing every problem (the caller names the file)."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError([f"cannot read the config file: {e.strerror or e}"]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError([f"not valid TOML: {e}"]) from None
    return parse(raw, path)


def parse(raw: Mapping[str, Any], source: Path) -> RouterConfig:
    """Validate the sections in the order the file has them, so problems are reported in file order."""
    problems: list[str] = []
    top = TableReader(dict(raw), "", problems)
    base = source.parent
    limits, realms, listeners, flow = LimitsConfig(), {}, (), DEFAULT_FLOW
    admin = None
    for key in raw:
        if key == "admin":
            admin = read_settings(top.table("admin"), AdminConfig)
        elif key == "flow":
            flow = _flow(top.tables("flow"))
        elif key == "limits":
            limits = read_settings(top.table("limits"), LimitsConfig)
        elif key == "realms":
            realms = _realms(top.tables("realms", required=True))
        elif key == "listeners":
            listeners = tuple(_listener(t, i, base) for i, t in enumerate(top.tables("listeners", required=True)))
        else:
            top.close(("admin", "flow", "limits", "listeners", "realms"))
    for key in ("realms", "listeners"):
        if key not in raw:
            top.tables(key, required=True)
    _check_listeners(listeners, realms, problems, admin)
    if problems:
        raise ConfigError(problems)
    return RouterConfig(source=source, listeners=listeners, realms=MappingProxyType(realms), limits=limits, flow=flow,
                        admin=admin)


def _flow(tables: list[TableReader]) -> tuple[FlowConfig, ...]:
    """The flow-control plugins, asked in order; the first that does not admit decides."""
    chain = []
    for t in tables:
        plugin = t.string("plugin", None, required=True)
        if plugin is not None:
            try:
                loader.resolve(loader.FLOW, plugin)
            except loader.PluginError as e:
                t.problem("plugin", f"expected an installed flow-control plugin: {e}")
            chain.append(FlowConfig(plugin, MappingProxyType({k: v for k, v in t.items() if k != "plugin"})))
    return tuple(chain)


def _realms(tables: list[TableReader]) -> dict[str, RealmConfig]:
    realms: dict[str, RealmConfig] = {}
    for t in tables:
        name = t.string("name", required=True)
        if name is not None and UriPolicy().problem(name) is not None:
            t.problem("name", "expected a realm name: a valid WAMP URI such as \"realm1\"")
            name = None
        strict = t.string("uri_check", "loose", choices=("loose", "strict")) == "strict"
        slow_consumer = t.string("slow_consumer", "drop", choices=SLOW_CONSUMER_POLICIES)
        policy = UriPolicy(strict=strict, max_length=t.integer("max_uri_length", DEFAULT_MAX_URI_LENGTH, 16, 4096))
        roles = _roles(t.tables("roles"), policy)
        authorizers = _authorizers(t.tables("authorizers"), roles) if t.has("authorizers") else None
        t.raw("authorizers")
        t.close()
        if name in realms:
            t.problem("name", "expected a unique realm name; this one is defined twice")
        elif name is not None:
            realm = RealmConfig(name=name, uri_policy=policy, roles=MappingProxyType(roles), slow_consumer=slow_consumer)
            if authorizers is not None:
                realm = replace(realm, authorizers=authorizers)
            realms[name] = realm
    return realms


def _authorizers(tables: list[TableReader], roles: Mapping[str, RoleConfig]) -> tuple[AuthorizerConfig, ...]:
    """The realm's chain, in order; each table names its plugin and, optionally, the roles it decides for."""
    chain = []
    for t in tables:
        plugin = t.string("plugin", None, required=True)
        if plugin is not None:
            try:
                loader.resolve(loader.AUTHORIZERS, plugin)
            except loader.PluginError as e:
                t.problem("plugin", f"expected an installed authorizer: {e}")
        names = t.strings("roles", (), non_empty=True) if t.has("roles") else None
        for role in names or ():
            if role not in roles:
                t.problem("roles", f"unknown role {show(role)}; defined roles: {', '.join(sorted(roles)) or 'none'}")
        options = {key: value for key, value in t.items() if key not in ("plugin", "roles")}
        if plugin is not None:
            chain.append(AuthorizerConfig(plugin=plugin, roles=names, options=MappingProxyType(options)))
    return tuple(chain)  # empty (`authorizers = []`): every request is denied


def _roles(tables: list[TableReader], policy: UriPolicy) -> dict[str, RoleConfig]:
    roles: dict[str, RoleConfig] = {}
    for t in tables:
        name = t.string("name", required=True)
        permissions = tuple(p for p in (_permission(p, policy) for p in t.tables("permissions")) if p is not None)
        slow_consumer = t.string("slow_consumer", None, choices=SLOW_CONSUMER_POLICIES)
        seen: set[tuple[str, str]] = set()
        for i, permission in enumerate(permissions):
            if (permission.uri, permission.match) in seen:
                t.problems.append(
                    f"{t.key('permissions')}[{i}].uri = {show(permission.uri)}: "
                    f"a {permission.match} rule for this URI is already defined in this role"
                )
            seen.add((permission.uri, permission.match))
        t.close()
        if name in roles:
            t.problem("name", "expected a unique role name within the realm; this one is defined twice")
        elif name is not None:
            roles[name] = RoleConfig(name=name, permissions=permissions, slow_consumer=slow_consumer)
    return roles


def _permission(t: TableReader, policy: UriPolicy) -> Permission | None:
    uri = t.string("uri", required=True)
    before = len(t.problems)
    match = t.string("match", "exact", choices=MATCH_POLICIES)
    match_valid = len(t.problems) == before
    allow = t.strings("allow", (), choices=ACTIONS, non_empty=False)
    disclose = t.boolean("disclose", False)
    t.close()
    if uri is None or not match_valid:
        return None
    if "{" in uri or "}" in uri:
        return _templated_permission(t, uri, match, allow, disclose, policy)
    if policy.problem(uri, match) is not None:
        t.problem("uri", f"expected a valid {match} URI pattern for this realm")
        return None
    if match == PREFIX and uri and not uri.endswith("."):
        t.problem(
            "uri",
            'expected a prefix ending in "." (or "" for every URI), so that a grant on "com.app.admin" '
            'cannot also match "com.app.administrators"',
        )
        return None
    return Permission(uri=uri, match=match, allow=frozenset(allow), disclose=disclose)


PLACEHOLDERS = ("{authid}", "{authrole}")


def _templated_permission(t: TableReader, uri: str, match: str, allow, disclose: bool, policy: UriPolicy):
    """A rule with {authid} / {authrole}: each placeholder must be a whole URI component, so a substituted value
    (itself a single component) can never widen the rule."""
    sample = uri
    for placeholder in PLACEHOLDERS:
        sample = sample.replace(placeholder, "x")
    components = uri.split(".")
    whole = all(("{" not in c and "}" not in c) or c in PLACEHOLDERS for c in components)
    if not whole or policy.problem(sample, match) is not None:
        t.problem("uri", "expected a valid URI pattern whose placeholders {authid} / {authrole} are whole components")
        return None
    if match == PREFIX and not uri.endswith("."):
        t.problem("uri", 'expected a prefix ending in "."')
        return None
    return Permission(uri=uri, match=match, allow=frozenset(allow), disclose=disclose)


def _listener(t: TableReader, index: int, base: Path) -> ListenerConfig:
    name = t.string("name", f"listener{index}")
    endpoint = t.string("endpoint", None, required=True)
    if endpoint is not None:
        problem = endpoint_problem(endpoint)
        if problem:
            t.problem("endpoint", problem)
    endpoint = endpoint or ""
    transports = t.strings("transports", ("websocket",), choices=TRANSPORTS)
    serializers = t.strings("serializers", SERIALIZERS, choices=SERIALIZERS)
    max_size = "rawsocket" in transports and RAWSOCKET_MAX_MESSAGE_SIZE or 64 * 1024 * 1024
    listener = ListenerConfig(
        name=name,
        endpoint=endpoint,
        transports=transports,
        serializers=serializers,
        max_message_size=t.integer("max_message_size", DEFAULT_MAX_MESSAGE_SIZE, MIN_MESSAGE_SIZE, max_size),
        tls=_tls(t.table("tls"), base) if t.has("tls") else None,
        websocket=read_settings(t.table("websocket"), WebSocketConfig,
                                {"static_dir": partial(_static_dir, base=base)}),
        auth=_auth(t.table("auth")),
    )
    t.raw("tls")
    t.close()
    return listener


def _existing_file(t: TableReader, name: str, base: Path, required: bool) -> Path | None:
    value = t.string(name, None, required=required)
    if value is None:
        return None
    path = (base / value).resolve()
    if not path.is_file():
        t.problem(name, f"expected a readable file; {path} does not exist")
    return path


def _tls(t: TableReader, base: Path) -> TlsConfig:
    tls = TlsConfig(
        certificate=_existing_file(t, "certificate", base, True),
        private_key=_existing_file(t, "private_key", base, True),
        client_ca=_existing_file(t, "client_ca", base, False),
        require_client_certificate=t.boolean("require_client_certificate", False),
        ciphers=t.string("ciphers", DEFAULT_CIPHERS),
        min_version=t.string("min_version", "1.2", choices=TLS_VERSIONS),
    )
    if tls.require_client_certificate and tls.client_ca is None and not t.has("client_ca"):
        t.problem("require_client_certificate", "needs client_ca: the CA bundle client certificates are checked against")
    t.close()
    return tls


def _static_dir(t: TableReader, name: str, default: None, base: Path) -> Path | None:
    """`[listeners.websocket] static_dir`: a directory, relative to the config file's."""
    static = t.string(name, default)
    if static is None:
        return None
    static_dir = (base / static).resolve()
    if not static_dir.is_dir():
        t.problem(name, f"expected a directory; {static_dir} does not exist")
    return static_dir


def _auth(t: TableReader) -> tuple[AuthMethodConfig, ...]:
    methods = []
    if not t.names():
        t.problems.append(
            f"{t.path}: missing; expected at least one authentication method, e.g. [{t.path}.anonymous] (nobody could join)"
        )
    for method in t.names():
        options = t.table(method)
        try:
            loader.resolve(loader.AUTHENTICATORS, method)
        except loader.PluginError as e:
            t.problem(method, f"expected an installed authenticator: {e}")
        realms = options.raw("realms")
        if realms is not None and not (isinstance(realms, list) and all(isinstance(r, str) for r in realms)):
            options.problem("realms", "expected an array of realm names")
            realms = None
        plugin_options = {k: v for k, v in options.items() if k != "realms"}
        methods.append(
            AuthMethodConfig(
                method=method,
                options=MappingProxyType(plugin_options),
                realms=tuple(realms) if realms is not None else None,
            )
        )
    return tuple(methods)


def _check_listeners(
    listeners: tuple[ListenerConfig, ...],
    realms: Mapping[str, RealmConfig],
    problems: list[str],
    admin: AdminConfig | None = None,
):
    """Cross-checks: unique names and ports, realms referenced by listeners exist."""
    names: dict[str, int] = {}
    bound: list[tuple[tuple, int]] = []
    for i, listener in enumerate(listeners):
        if listener.name in names:
            problems.append(
                f"listeners[{i}].name = {show(listener.name)}: expected a unique name; "
                f"listeners[{names[listener.name]}] has it too"
            )
        names.setdefault(listener.name, i)
        address = endpoint_address(listener.endpoint)
        clash = next((j for other, j in bound if address is not None and addresses_clash(address, other)), None)
        if clash is not None:
            problems.append(
                f"listeners[{i}].endpoint = {show(listener.endpoint)}: the address is already used by "
                f"listeners[{clash}]; expected a port no other listener uses"
            )
        elif address is not None:
            bound.append((address, i))
        for method in listener.auth:
            for realm in method.realms or ():
                if realm not in realms:
                    problems.append(
                        f"listeners[{i}].auth.{method.method}.realms = {show(list(method.realms))}: unknown realm "
                        f"{show(realm)}; defined realms: {', '.join(sorted(realms)) or 'none'}"
                    )
    admin_address = endpoint_address(admin.endpoint) if admin is not None else None
    clash = next((j for other, j in bound if admin_address is not None and addresses_clash(admin_address, other)), None)
    if clash is not None:
        problems.append(f"admin.endpoint = {show(admin.endpoint)}: the address is already used by listeners[{clash}]; "
                        "expected a port no listener uses")
