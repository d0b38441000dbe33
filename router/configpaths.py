"""What a WebSocket listener serves on which URL path: `[[listeners.paths]]` (WebSocket, the HTTP bridge's publish,
call and webhook endpoints), and the bridges those endpoints act through, `[[listeners.bridges]]`.

Every path is configured explicitly and served by exact match; anything else is a static file (with `static_dir`)
or HTTP 404. Without any WebSocket entry the listener's WebSocket is at `[listeners.websocket] path` (default
"/ws"), as before paths existed.

A path kind is one entry of PATH_KINDS: its name and the settings dataclass holding the keys of its table beside
`path` and `kind` (router/tx/website.py maps the same name to the resource that serves it).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from wampgate.configreader import TableReader, show
from wampgate.settings import read_settings, setting

MAX_PATH_LENGTH = 1024
_SEGMENT = re.compile(r"[A-Za-z0-9._~!$&'()*+,;=:@-]+")
BRIDGE_AUTHENTICATION = ("signature", "jwt", "none")
MIN_SECRET_LENGTH = 16
DEFAULT_WEBHOOK_HEADERS = ("content-type", "user-agent")


def url_path_problem(path: str) -> str | None:
    """Why `path` cannot be a listener path, or None. "/" or "/a/b": absolute, no empty, "." or ".." segment, no
    query, fragment, percent-escape or character a URL path would have to escape, so the configured text is
    exactly what a client sends."""
    if path == "/":
        return None
    segments = path.split("/")
    if (not path.startswith("/") or len(path) > MAX_PATH_LENGTH
            or any(not _SEGMENT.fullmatch(s) or s in (".", "..") for s in segments[1:])):
        return (f'expected "/" or an absolute URL path such as "/ws" or "/bridge/publish" (at most {MAX_PATH_LENGTH} '
                'characters; no trailing "/", "." or ".." segment, query, "%" or space)')
    return None


def _url_path(path: str) -> str:
    problem = url_path_problem(path)
    if problem:
        raise ValueError(problem)
    return path


def _networks(entries: tuple[str, ...]) -> tuple[str, ...]:
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=True)
        except ValueError:
            raise ValueError('expected IP addresses or networks such as "127.0.0.1", "10.0.0.0/8" or "fd00::/8" '
                             "(a network without host bits)") from None
    return entries


def _header_names(names: tuple[str, ...]) -> tuple[str, ...]:
    for name in names:
        if not re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+", name):
            raise ValueError('expected HTTP header names such as "content-type" or "x-github-event"')
    return tuple(name.lower() for name in names)


def _secret(secret: str) -> str:
    if secret and len(secret.encode("utf-8")) < MIN_SECRET_LENGTH:
        raise ValueError(f"expected a secret of at least {MIN_SECRET_LENGTH} bytes")
    return secret


@dataclass(frozen=True)
class BridgeConfig:
    """`[[listeners.bridges]]`: one HTTP bridge: the realm its requests act in, as which identity, and how each
    request proves it may."""

    name: str = setting("", doc="the bridge's name, unique on the listener; paths name it in `bridge` (required)")
    realm: str = setting("", doc="the realm its publications and calls go to (required)")
    authentication: str = setting(
        "signature", doc='how each request is authenticated: `"signature"` (Crossbar\'s signed requests: `key`, '
        '`secret`), `"jwt"` (`Authorization: Bearer`, verified by the listener\'s `[listeners.auth.jwt]`; the token '
        'names the identity) or `"none"` (every request is `authid` / `authrole`; loopback clients only, unless '
        "`allow_unauthenticated_remote`)", choices=BRIDGE_AUTHENTICATION)
    authid: str = setting("http-bridge", doc='the authid of requests with `"signature"` or `"none"`')
    authrole: str = setting("", doc='the role of requests with `"signature"` or `"none"`; a role of the realm '
                                    "(required with them)")
    key: str = setting("", doc='`"signature"`: the key the client names in its `key` query parameter (required)')
    secret: str = setting(
        "", doc=f'`"signature"`: the shared HMAC-SHA256 secret, at least {MIN_SECRET_LENGTH} bytes (required; best '
        'from the environment: `"${BRIDGE_SECRET}"`)', parse=_secret)
    timestamp_window: float = setting(
        300.0, 1.0, 3600.0, "a signed request's `timestamp` may differ from the router's clock by this much "
        "(Crossbar's `timestamp_delta_limit` default); further: HTTP 401", unit="s")
    max_nonces: int = setting(
        100_000, 100, 10_000_000, "signed requests' nonces remembered (for twice `timestamp_window`) to refuse a "
        "replay; when full, further signed requests get HTTP 503 until the oldest expire")
    max_body_size: int = setting(64 * 1024, 64, 16 * 2**20, "bytes of a request body; larger: HTTP 413", unit="bytes")
    require_tls: bool = setting(False, doc="refuse requests that did not arrive over TLS (HTTP 403)")
    allowed_addresses: tuple[str, ...] = setting(
        (), doc="client addresses or networks allowed (after `trusted_proxies`); others get HTTP 403. Empty: any",
        allowed="IP addresses, CIDR networks", parse=_networks)
    allow_unauthenticated_remote: bool = setting(
        False, doc='with `authentication = "none"`, also take requests from addresses other than loopback')
    call_timeout: float = setting(30.0, 0.1, 3600.0, "the timeout of a call whose request names none", unit="s")
    max_call_timeout: float = setting(300.0, 0.1, 3600.0, "the longest `options.timeout` a call request may ask; "
                                                          "a longer one is cut to this", unit="s")
    max_sessions: int = setting(
        1000, 1, 1_000_000, "router-side sessions the bridge holds at once (one per identity and client address); "
        "beyond it the one idle longest leaves, and with none idle the request gets HTTP 503")
    session_idle_timeout: float = setting(60.0, 1.0, 86_400.0, "a bridge session without requests for this long "
                                                               "leaves the realm", unit="s")


@dataclass(frozen=True)
class WebSocketPath:
    """`kind = "websocket"`: the WAMP WebSocket (every `[listeners.websocket]` option applies); no keys of its own."""


@dataclass(frozen=True)
class BridgePath:
    """`kind = "publish"` or `"call"`: an HTTP bridge endpoint."""

    bridge: str = setting("", doc="the `[[listeners.bridges]]` it acts through (required)")


@dataclass(frozen=True)
class WebhookPath:
    """`kind = "webhook"`: any POST body becomes an event on `topic`."""

    bridge: str = setting("", doc="the `[[listeners.bridges]]` it acts through (required)")
    topic: str = setting("", doc="the topic each request is published on (required)")
    headers: tuple[str, ...] = setting(
        DEFAULT_WEBHOOK_HEADERS, doc="request headers copied into the event (case-insensitive); no others",
        parse=_header_names)


# kind -> the settings dataclass of its table's other keys. A kind that acts through a bridge has a `bridge` key.
PATH_KINDS: Mapping[str, type] = MappingProxyType({
    "websocket": WebSocketPath,
    "publish": BridgePath,
    "call": BridgePath,
    "webhook": WebhookPath,
})


@dataclass(frozen=True)
class PathConfig:
    path: str
    kind: str
    options: Any  # the PATH_KINDS dataclass of `kind`
    key: str = field(default="", compare=False)  # where it was configured, e.g. "listeners[0].paths[2]"


def read_paths(tables: list[TableReader]) -> tuple[PathConfig, ...]:
    """`[[listeners.paths]]`, each path once."""
    paths: dict[str, PathConfig] = {}
    for t in tables:
        path = t.string("path", required=True)
        if path is not None and url_path_problem(path) is not None:
            t.problem("path", url_path_problem(path))
            path = None
        kind = t.string("kind", required=True, choices=tuple(PATH_KINDS))
        if kind is None:
            t.items()  # the other keys depend on the kind: not reported as unknown
            continue
        options = read_settings(t, PATH_KINDS[kind])
        if path is None:
            continue
        if path in paths:
            t.problem("path", f"expected each path once; it is already served as {paths[path].kind!r}")
            continue
        paths[path] = PathConfig(path, kind, options, t.path)
    return tuple(paths.values())


def read_bridges(tables: list[TableReader]) -> Mapping[str, BridgeConfig]:
    """`[[listeners.bridges]]`, by name, each with the keys its authentication needs."""
    bridges: dict[str, BridgeConfig] = {}
    for t in tables:
        before = len(t.problems)
        bridge = read_settings(t, BridgeConfig)
        for name in ("name", "realm"):
            if not getattr(bridge, name) and not t.has(name):
                t.problems.append(f"{t.key(name)}: missing; expected a string")
        written = t.raw("authentication", "signature") == bridge.authentication  # else already a problem
        needed = {"signature": ("authrole", "key", "secret"), "none": ("authrole",)}.get(bridge.authentication, ())
        needed = needed if written else ()
        for name in needed:
            if not getattr(bridge, name) and not t.has(name):
                t.problems.append(f"{t.key(name)}: missing; needed with authentication = {show(bridge.authentication)}")
        if bridge.call_timeout > bridge.max_call_timeout:
            t.problem("call_timeout", f"expected at most max_call_timeout ({bridge.max_call_timeout})")
        if len(t.problems) != before:
            continue
        if bridge.name in bridges:
            t.problem("name", "expected a unique bridge name on this listener; this one is defined twice")
            continue
        bridges[bridge.name] = bridge
    return MappingProxyType(bridges)


def check_paths(prefix: str, paths: tuple[PathConfig, ...], bridges: Mapping[str, BridgeConfig], *,
                transports: tuple[str, ...], realms: Mapping[str, Any], methods: tuple[str, ...]) -> list[str]:
    """Cross-checks of one listener's paths and bridges: the bridge a path names exists, a webhook has its topic,
    paths need the listener's HTTP side (the "websocket" transport), a bridge's realm and role exist and its
    authentication method is configured on the listener."""
    problems = []
    for entry in paths:
        key = entry.key or f"{prefix}.paths"
        if "websocket" not in transports:
            problems.append(f"{key}.path = {show(entry.path)}: paths are served on the listener's HTTP side; "
                            'expected "websocket" in its transports')
        bridge = getattr(entry.options, "bridge", None)
        if bridge is not None and bridge not in bridges:
            problems.append(f"{key}.bridge = {show(bridge)}: expected the name of one of this listener's "
                            f"[[{prefix}.bridges]]: {', '.join(sorted(bridges)) or 'none defined'}" if bridge else
                            f"{key}.bridge: missing; expected the name of one of this listener's bridges")
        if entry.kind == "webhook" and not entry.options.topic:
            problems.append(f"{key}.topic: missing; expected the topic its events are published on")
    for j, (name, bridge) in enumerate(bridges.items()):
        key = f"{prefix}.bridges[{j}]"
        realm = realms.get(bridge.realm)
        if realm is None:
            problems.append(f"{key}.realm = {show(bridge.realm)}: unknown realm; defined realms: "
                            f"{', '.join(sorted(realms)) or 'none'}")
        elif bridge.authentication != "jwt" and bridge.authrole not in realm.roles:
            problems.append(f"{key}.authrole = {show(bridge.authrole)}: expected a role of realm {show(bridge.realm)}: "
                            f"{', '.join(sorted(realm.roles)) or 'none defined'}")
        if bridge.authentication == "jwt" and "jwt" not in methods:
            problems.append(f'{key}.authentication = "jwt": expected a [{prefix}.auth.jwt] table, whose settings '
                            "verify the bridge's tokens")
    return problems

