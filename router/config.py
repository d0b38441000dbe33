"""The router's configuration: one TOML file turned into frozen dataclasses, validated fully before anything listens.

Every problem is reported as one line naming the key path, the value found and what is allowed; unknown keys are
errors. Paths inside the file (certificates, static directories) are relative to the file's own directory. String
values may take `${NAME}` / `${NAME:-default}` from the environment (router/configenv.py). When the router's own
tables have problems, the caller's plugin check still runs on what could be read, so the plugin tables' problems are
reported in the same pass.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from types import MappingProxyType
from typing import Any

from wampgate import configenv, loader
from wampgate.configproblems import every_problem
from wampgate.configreader import TableReader, show
from wampgate.configtables import (
    DEFAULT_MAX_MESSAGE_SIZE,
    RAWSOCKET_MAX_MESSAGE_SIZE,
    AdminConfig,
    ClusterConfig,
    LimitsConfig,
    WebSocketConfig,
)
from wampgate.configpaths import BridgeConfig, PathConfig, WebSocketPath, check_paths, read_bridges, read_paths
from wampgate.core.history import HistoryRule
from wampgate.uri import DEFAULT_MAX_URI_LENGTH, MATCH_POLICIES, PREFIX, UriPolicy
from wampgate.endpoints import addresses_clash, endpoint_address, endpoint_problem
from wampgate.settings import read_settings

TRANSPORTS = ("websocket", "rawsocket")
SERIALIZERS = ("json", "msgpack", "cbor")
ACTIONS = ("publish", "subscribe", "call", "register")
TLS_VERSIONS = ("1.2", "1.3")
SLOW_CONSUMER_POLICIES = ("drop", "disconnect")
DEFAULT_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:DHE+AESGCM:DHE+CHACHA20:!aNULL:!eNULL:!MD5:!DSS:!RC4:!3DES"
MIN_MESSAGE_SIZE = 512
HISTORY_MATCHES = ("exact", "prefix")
MAX_HISTORY_RULES = 100  # [[realms.history]] tables per realm
MAX_HISTORY_LIMIT = 10_000  # events one history rule keeps
DEFAULT_HISTORY_LIMIT = 100


MIN_HIDDEN = 4  # shorter text from the environment is not hunted for in problem lines: it would garble them


class ConfigError(Exception):
    """The configuration cannot be used; `problems` holds one line per problem. `hidden` maps text the environment
    put into keys that look secret to the variable's name: it is replaced in every line (configenv.py says why)."""

    def __init__(self, problems: list[str], hidden: Mapping[str, str] | None = None):
        lines = list(problems)
        for text, name in sorted((hidden or {}).items(), key=lambda item: -len(item[0])):
            if len(text) >= MIN_HIDDEN:
                lines = [line.replace(text, f"<the value of ${{{name}}}>") for line in lines]
        super().__init__("\n".join(lines))
        self.problems = lines


@dataclass(frozen=True)
class TlsConfig:
    certificate: Path  # PEM: the server certificate, then its intermediates
    private_key: Path
    client_ca: Path | None  # verify client certificates against this CA bundle
    require_client_certificate: bool
    ciphers: str
    min_version: str


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
    # what the HTTP side serves, by exact path: every WebSocket path and bridge endpoint (router/configpaths.py)
    paths: tuple[PathConfig, ...] = ()
    bridges: Mapping[str, BridgeConfig] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def websocket_paths(self) -> tuple[str, ...]:
        return tuple(entry.path for entry in self.paths if entry.kind == "websocket") or (self.websocket.path,)

    @property
    def http_endpoints(self) -> tuple[PathConfig, ...]:
        """The paths that are not the WebSocket (bridge endpoints): they need twisted.web in front."""
        return tuple(entry for entry in self.paths if entry.kind != "websocket")


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
class ValidatorConfig:
    plugin: str  # entry point name in wampgate.validators, or "package.module:Object"
    options: Mapping[str, Any]  # the plugin's own keys, validated by the plugin


@dataclass(frozen=True)
class RealmConfig:
    name: str
    uri_policy: UriPolicy
    roles: Mapping[str, RoleConfig]
    authorizers: tuple[AuthorizerConfig, ...] = (AuthorizerConfig("static", None, MappingProxyType({})),)
    slow_consumer: str = "drop"  # a subscriber over max_outgoing_buffer: "drop" its events or "disconnect" it
    history: tuple[HistoryRule, ...] = ()  # [[realms.history]]: topics whose last events are kept
    validators: tuple[ValidatorConfig, ...] = ()  # [[realms.validators]]: payload checks, every one asked in order

    def slow_consumer_policy(self, role: str) -> str:
        override = self.roles[role].slow_consumer if role in self.roles else None
        return override or self.slow_consumer


@dataclass(frozen=True)
class FlowConfig:
    plugin: str  # entry point name in wampgate.flow, or "package.module:Object"
    options: Mapping[str, Any]


DEFAULT_FLOW = (FlowConfig("limits", MappingProxyType({})),)


@dataclass(frozen=True)
class RouterConfig:
    source: Path
    listeners: tuple[ListenerConfig, ...]
    realms: Mapping[str, RealmConfig]
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    flow: tuple[FlowConfig, ...] = DEFAULT_FLOW
    admin: AdminConfig | None = None
    cluster: ClusterConfig | None = None
    # text the environment put into keys that look secret -> the variable's name, for ConfigError(hidden=...)
    environment_secrets: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), repr=False,
                                                   compare=False)


# `plugin_check(partial, realms_complete=...)`: the problem lines of the plugin tables of a config the router's own
# check refused (`partial`: the config as far as it could be read), so both are reported at once. `realms_complete`
# is False when a realm table could not be read: role references and realm positions cannot be checked then. The
# caller gives it (wampgate.tx.plugins_from_config.plugin_problems), since building plugins takes a reactor.
PluginCheck = Callable[..., list[str]]


def load(path: str | Path, *, environ: Mapping[str, str] | None = None,
         plugin_check: PluginCheck | None = None) -> RouterConfig:
    """Read and validate a config file; raise ConfigError listing every problem (the caller names the file).
    `environ` (default: the process's) fills `${NAME}` references."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise ConfigError([f"cannot read the config file: {e.strerror or e}"]) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise ConfigError([f"not valid TOML: {e}"]) from None
    return parse(raw, path, environ=os.environ if environ is None else environ, plugin_check=plugin_check)


def parse(raw: Mapping[str, Any], source: Path, *, environ: Mapping[str, str] | None = None,
          plugin_check: PluginCheck | None = None) -> RouterConfig:
    """Substitute the environment (when given), then validate; problems come in the file's order."""
    filled = configenv.substitute(dict(raw), environ) if environ is not None else configenv.Substitution(raw, {}, {})
    problems, config, realms_complete = _read(filled.raw, source)
    config = replace(config, environment_secrets=MappingProxyType(filled.secrets))
    if not problems and not filled.problems:
        return config
    plugins = partial(plugin_check, config, realms_complete=realms_complete) if plugin_check is not None else None
    raise ConfigError(every_problem(raw, problems, filled.problems, plugins), hidden=filled.secrets)


def _read(raw: Mapping[str, Any], source: Path) -> tuple[list[str], RouterConfig, bool]:
    """Validate the sections in the order the file has them, so problems are reported in file order. Returns the
    problems, the config as far as it could be read, and whether every realm table made it into it."""
    problems: list[str] = []
    top = TableReader(dict(raw), "", problems)
    base = source.parent
    limits, realms, listeners, flow = LimitsConfig(), {}, (), DEFAULT_FLOW
    admin = cluster = None
    for key in raw:
        if key == "admin":
            admin = read_settings(top.table("admin"), AdminConfig)
        elif key == "cluster":
            cluster = read_settings(top.table("cluster"), ClusterConfig)
            if cluster.node_timeout < 2 * cluster.heartbeat_interval:
                problems.append(f"cluster.node_timeout = {show(cluster.node_timeout)}: expected at least twice "
                                f"cluster.heartbeat_interval ({show(cluster.heartbeat_interval)}), or one late "
                                "heartbeat would make a live node look gone")
        elif key == "flow":
            flow = _flow(top.tables("flow"))
        elif key == "limits":
            limits = read_settings(top.table("limits"), LimitsConfig)
        elif key == "realms":
            realms = _realms(top.tables("realms", required=True))
        elif key == "listeners":
            listeners = tuple(_listener(t, i, base) for i, t in enumerate(top.tables("listeners", required=True)))
        else:
            top.close(("admin", "cluster", "flow", "limits", "listeners", "realms"))
    for key in ("realms", "listeners"):
        if key not in raw:
            top.tables(key, required=True)
    _check_listeners(listeners, realms, problems, admin)
    config = RouterConfig(source=source, listeners=listeners, realms=MappingProxyType(realms), limits=limits,
                          flow=flow, admin=admin, cluster=cluster)
    realm_tables = raw.get("realms")
    return problems, config, isinstance(realm_tables, list) and len(realm_tables) == len(realms)


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
        history = _history(t, policy)
        validators = _validators(t.tables("validators"))
        t.close()
        if name in realms:
            t.problem("name", "expected a unique realm name; this one is defined twice")
        elif name is not None:
            realm = RealmConfig(name=name, uri_policy=policy, roles=MappingProxyType(roles), slow_consumer=slow_consumer,
                                history=history, validators=validators)
            if authorizers is not None:
                realm = replace(realm, authorizers=authorizers)
            realms[name] = realm
    return realms


def _history(realm: TableReader, policy: UriPolicy) -> tuple[HistoryRule, ...]:
    """`[[realms.history]]`: at most MAX_HISTORY_RULES rules, each a URI (exact, or a prefix ending in ".") and how
    many of its last events to keep; one rule per (uri, match)."""
    tables = realm.tables("history")
    if len(tables) > MAX_HISTORY_RULES:
        realm.problem("history", f"expected at most {MAX_HISTORY_RULES} [[{realm.key('history')}]] tables")
        return ()
    rules: dict[tuple[str, str], HistoryRule] = {}
    for t in tables:
        uri = t.string("uri", required=True)
        before = len(t.problems)
        match = t.string("match", "exact", choices=HISTORY_MATCHES)
        limit = t.integer("limit", DEFAULT_HISTORY_LIMIT, 1, MAX_HISTORY_LIMIT)
        t.close()
        if uri is None or len(t.problems) != before:
            continue
        if policy.problem(uri, match) is not None or uri.startswith("wamp."):
            t.problem("uri", f"expected a valid {match} URI for this realm, not under the reserved \"wamp.\"")
        elif match == PREFIX and uri and not uri.endswith("."):
            t.problem("uri", 'expected a prefix ending in "." (or "" for every topic)')
        elif (uri, match) in rules:
            t.problem("uri", f"expected one {match} rule per URI; this one is defined twice")
        else:
            rules[(uri, match)] = HistoryRule(uri, match, limit)
    return tuple(rules.values())


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


def _validators(tables: list[TableReader]) -> tuple[ValidatorConfig, ...]:
    """The realm's payload validators; each table names its plugin, the rest is the plugin's own (it checks them)."""
    chain = []
    for t in tables:
        plugin = t.string("plugin", None, required=True)
        if plugin is None:
            continue
        try:
            loader.resolve(loader.VALIDATORS, plugin)
        except loader.PluginError as e:
            t.problem("plugin", f"expected an installed payload validator: {e}")
        chain.append(ValidatorConfig(plugin, MappingProxyType({k: v for k, v in t.items() if k != "plugin"})))
    return tuple(chain)


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
    paths = read_paths(t.tables("paths"))
    bridges = read_bridges(t.tables("bridges"))
    websocket_table = t.raw("websocket")
    if any(entry.kind == "websocket" for entry in paths) and isinstance(websocket_table, dict) \
            and "path" in websocket_table:
        t.problems.append(f"{t.key('websocket')}.path: the WebSocket paths are given by [[{t.key('paths')}]] "
                          'entries of kind "websocket"; expected one or the other, not both')
    elif paths and "websocket" in transports and not any(entry.kind == "websocket" for entry in paths):
        # the WebSocket stays where [listeners.websocket] path says: explicit beside the other paths
        paths = (PathConfig(listener.websocket.path, "websocket", WebSocketPath(), t.key("websocket")),) + paths
        clash = [entry for entry in paths[1:] if entry.path == listener.websocket.path]
        if clash:
            t.problems.append(f"{clash[0].key}.path = {show(clash[0].path)}: the listener's WebSocket is already at "
                              f"this path ({t.key('websocket')}.path); expected each path once")
    listener = replace(listener, paths=paths, bridges=bridges)
    _check_longpoll_path(t, listener)
    t.raw("tls")
    t.close()
    return listener


def _check_longpoll_path(t: TableReader, listener: ListenerConfig) -> None:
    """`[listeners.websocket] longpoll_path` is served on the WebSocket side of the port, beside `path`."""
    ws = listener.websocket
    if not ws.longpoll_path:
        return
    key = t.key("websocket.longpoll_path")
    if "websocket" not in listener.transports:
        t.problem_at(key, ws.longpoll_path, f'needs "websocket" in {t.key("transports")}: long-poll is served on '
                     "the WebSocket side of the port")
    else:
        taken = set(listener.websocket_paths) | {entry.path for entry in listener.http_endpoints}
        if ws.longpoll_path in taken:
            t.problem_at(key, ws.longpoll_path, "expected a path no WebSocket or bridge endpoint of this listener "
                         "already serves")


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
        problems.extend(check_paths(f"listeners[{i}]", listener.paths, listener.bridges,
                                    transports=listener.transports, realms=realms,
                                    methods=tuple(method.method for method in listener.auth)))
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
