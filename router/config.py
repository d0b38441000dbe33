"""The router's configuration: one TOML file turned into frozen dataclasses, validated fully before anything listens.

Every problem is reported as one line naming the key path, the value found and what is allowed; unknown keys are
errors. Paths inside the file (certificates, static directories) are relative to the file's own directory.
"""

from __future__ import annotations

import ipaddress
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from router import loader
from router.configreader import TableReader, show
from router.core.lockout import LockoutPolicy
from router.uri import DEFAULT_MAX_URI_LENGTH, DEFAULT_MAX_WILDCARD_SHAPES, MATCH_POLICIES, PREFIX, UriPolicy
from router.endpoints import addresses_clash, endpoint_address, endpoint_problem
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


@dataclass(frozen=True)
class WebSocketConfig:
    path: str
    static_dir: Path | None
    max_frame_size: int
    open_handshake_timeout: float
    close_handshake_timeout: float
    auto_ping_interval: float
    auto_ping_timeout: float
    server_header: str
    allowed_origins: tuple[str, ...] = ()  # exact origins or patterns with *; "null" only when listed
    max_request_line: int = 8192
    max_header_size: int = 8192
    max_headers: int = 64
    compression: bool = False  # permessage-deflate; decompressed messages stay bounded by max_message_size
    trusted_proxies: tuple[str, ...] = ()  # addresses whose X-Forwarded-For is believed
    max_fragments: int = 64  # frames per WebSocket message; more: close 1009


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
class LimitsConfig:
    hello_timeout: float = 10.0  # seconds from connection to WELCOME (HELLO and authentication)
    goodbye_timeout: float = 5.0  # seconds to wait for the client's GOODBYE reply before closing
    auth_timeout: float = 5.0  # seconds an authenticator may take to answer
    authorization_timeout: float = 5.0  # seconds an authorizer may take to answer (then: deny)
    decision_cache_size: int = 100_000  # cached authorization decisions per realm
    max_subscriptions_per_session: int = 1000
    max_registrations_per_session: int = 100
    max_pending_calls_per_session: int = 1000
    max_call_timeout: float = 3600.0  # seconds: the most a CALL's `timeout` may ask for
    max_wildcard_shapes: int = DEFAULT_MAX_WILDCARD_SHAPES  # per realm, for subscriptions and registrations each
    max_outgoing_buffer: int = 4 * 2**20  # bytes written to a session that its socket has not taken yet
    outgoing_stall_timeout: float = 30.0  # seconds a connection may stay over max_outgoing_buffer before it is closed
    shutdown_timeout: float = 10.0  # seconds a graceful shutdown waits for pending calls
    max_nesting: int = DEFAULT_MAX_NESTING  # container levels in a message's args, kwargs, options (router/tx/payload)
    max_hello_size: int = DEFAULT_MAX_HELLO_SIZE  # bytes per message a connection may send before its WELCOME
    lockout: LockoutPolicy = field(default_factory=LockoutPolicy)


@dataclass(frozen=True)
class FlowConfig:
    plugin: str  # entry point name in wampgate.flow, or "package.module:Object"
    options: Mapping[str, Any]


DEFAULT_FLOW = (FlowConfig("limits", MappingProxyType({})),)


@dataclass(frozen=True)
class AdminConfig:
    endpoint: str  # where /metrics and /healthz are served; loopback by default


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
            admin = _admin(top.table("admin"))
        elif key == "flow":
            flow = _flow(top.tables("flow"))
        elif key == "limits":
            limits = _limits(top.table("limits"))
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


def _admin(t: TableReader) -> AdminConfig:
    endpoint = t.string("endpoint", "tcp:9100:interface=127.0.0.1")
    problem = endpoint_problem(endpoint)
    if problem:
        t.problem("endpoint", problem)
    t.close()
    return AdminConfig(endpoint=endpoint)


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


def _limits(t: TableReader) -> LimitsConfig:
    limits = LimitsConfig(
        hello_timeout=t.number("hello_timeout", 10.0, 0.1, 600.0),
        goodbye_timeout=t.number("goodbye_timeout", 5.0, 0.1, 600.0),
        auth_timeout=t.number("auth_timeout", 5.0, 0.1, 600.0),
        authorization_timeout=t.number("authorization_timeout", 5.0, 0.1, 600.0),
        decision_cache_size=t.integer("decision_cache_size", 100_000, 0, 10_000_000),
        max_subscriptions_per_session=t.integer("max_subscriptions_per_session", 1000, 1, 1_000_000),
        max_registrations_per_session=t.integer("max_registrations_per_session", 100, 1, 1_000_000),
        max_pending_calls_per_session=t.integer("max_pending_calls_per_session", 1000, 1, 1_000_000),
        max_call_timeout=t.number("max_call_timeout", 3600.0, 1.0, 86_400.0),
        max_wildcard_shapes=t.integer("max_wildcard_shapes", DEFAULT_MAX_WILDCARD_SHAPES, 1, 100_000),
        max_outgoing_buffer=t.integer("max_outgoing_buffer", 4 * 2**20, 64 * 1024, 2**31),
        outgoing_stall_timeout=t.number("outgoing_stall_timeout", 30.0, 0.1, 3600.0),
        shutdown_timeout=t.number("shutdown_timeout", 10.0, 0.0, 3600.0),
        max_nesting=t.integer("max_nesting", DEFAULT_MAX_NESTING, MIN_NESTING, MAX_NESTING_CEILING),
        max_hello_size=t.integer("max_hello_size", DEFAULT_MAX_HELLO_SIZE, MIN_HELLO_SIZE, RAWSOCKET_MAX_MESSAGE_SIZE),
        lockout=_lockout(t.table("auth_failures"), **_login_guard(t)),
    )
    t.close()
    return limits


def _login_guard(t: TableReader) -> dict[str, Any]:
    """The `[limits]` keys the authentication guard enforces besides the failure thresholds: the login rate per
    peer address and the bounds on a HELLO's authid and authextra."""
    default = LockoutPolicy()
    return dict(
        logins_per_peer_rate=t.number("logins_per_peer_rate", default.logins_per_peer_rate, 0.0, 1_000_000.0),
        logins_per_peer_burst=t.integer("logins_per_peer_burst", default.logins_per_peer_burst, 1, 1_000_000),
        max_authid_length=t.integer("max_authid_length", default.max_authid_length, 16, 4096),
        max_authextra_size=t.integer("max_authextra_size", default.max_authextra_size, 256, 1024 * 1024),
    )


def _lockout(t: TableReader, **login_guard: Any) -> LockoutPolicy:
    default = LockoutPolicy()
    policy = LockoutPolicy(
        delay_after=t.integer("delay_after", default.delay_after, 1, 1000),
        delay=t.number("delay", default.delay, 0.0, 60.0),
        max_delay=t.number("max_delay", default.max_delay, 0.0, 60.0),
        lockout_after=t.integer("lockout_after", default.lockout_after, 1, 100_000),
        lockout=t.number("lockout", default.lockout, 0.0, 86_400.0),
        window=t.number("window", default.window, 1.0, 86_400.0),
        max_tracked=t.integer("max_tracked", default.max_tracked, 100, 10_000_000),
        peer_delay_after=t.integer("peer_delay_after", default.peer_delay_after, 1, 100_000),
        peer_lockout_after=t.integer("peer_lockout_after", default.peer_lockout_after, 1, 1_000_000),
        **login_guard,
    )
    t.close()
    return policy


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
        websocket=_websocket(t.table("websocket"), base),
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


def _websocket(t: TableReader, base: Path) -> WebSocketConfig:
    path = t.string("path", "/ws")
    if not path.startswith("/") or any(not part for part in path.split("/")[1:]) or "?" in path:
        t.problem("path", 'expected an absolute URL path such as "/ws"')
        path = "/ws"
    static = t.string("static_dir", None)
    static_dir = None
    if static is not None:
        static_dir = (base / static).resolve()
        if not static_dir.is_dir():
            t.problem("static_dir", f"expected a directory; {static_dir} does not exist")
    websocket = WebSocketConfig(
        path=path,
        static_dir=static_dir,
        max_frame_size=t.integer("max_frame_size", DEFAULT_MAX_MESSAGE_SIZE, 125, 64 * 1024 * 1024),
        # the router keeps this timer itself; autobahn's (below) tick in whole seconds, so they start at 1
        open_handshake_timeout=t.number("open_handshake_timeout", 5.0, 0.1, 300.0),
        close_handshake_timeout=t.number("close_handshake_timeout", 1.0, 1.0, 300.0),
        auto_ping_interval=_zero_or_at_least_one(t, "auto_ping_interval", 30.0),
        auto_ping_timeout=_zero_or_at_least_one(t, "auto_ping_timeout", 15.0),
        server_header=t.string("server_header", "Wampgate"),
        allowed_origins=_origins(t),
        max_request_line=t.integer("max_request_line", 8192, 256, 65536),
        max_header_size=t.integer("max_header_size", 8192, 256, 65536),
        max_headers=t.integer("max_headers", 64, 8, 1000),
        compression=t.boolean("compression", False),
        trusted_proxies=_addresses(t, "trusted_proxies"),
        max_fragments=t.integer("max_fragments", 64, 1, 65536),
    )
    t.close()
    return websocket


def _zero_or_at_least_one(t: TableReader, name: str, default: float) -> float:
    value = t.number(name, default, 0.0, 3600.0)
    if 0 < value < 1:
        t.problem(name, "expected 0 (off) or a number of seconds from 1 to 3600 (autobahn's timers tick in seconds)")
        return default
    return value


def _origins(t: TableReader) -> tuple[str, ...]:
    origins = t.strings("allowed_origins", (), non_empty=False)
    for origin in origins:
        if origin != "null" and not re.fullmatch(r"(https?|\*)://[^/\s]+", origin):
            t.problem("allowed_origins", 'expected origins such as "https://app.example.com", '
                      '"https://*.example.com:8443" or "null", without a path')
            return ()
    return tuple(origin.lower() for origin in origins)


def _addresses(t: TableReader, name: str) -> tuple[str, ...]:
    addresses = t.strings(name, (), non_empty=False)
    for address in addresses:
        try:
            ipaddress.ip_address(address)
        except ValueError:
            t.problem(name, "expected IP addresses such as \"127.0.0.1\" or \"::1\"")
            return ()
    return addresses


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
