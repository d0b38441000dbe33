"""Crossbar transports as Wampgate listeners: `websocket`, `rawsocket`, `universal` and `web` (its WebSocket path and
a static directory on `/`), on `tcp` or `unix` endpoints, with TLS files. Crossbar's millisecond options become
seconds; what has no counterpart becomes a note."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from wampgate.config import SERIALIZERS
from wampgate.crossbar.notes import Notes, mapping
from wampgate.crossbar.toml import Table

RAWSOCKET_MAX = 2**24
WEBSOCKET_MAX = 64 * 1024 * 1024
_MILLISECONDS = {  # Crossbar option -> (Wampgate key, lowest, highest) in seconds; 0 (off) kept where allowed
    "auto_ping_interval": ("auto_ping_interval", 1.0, 3600.0),
    "auto_ping_timeout": ("auto_ping_timeout", 1.0, 3600.0),
    "open_handshake_timeout": ("open_handshake_timeout", 0.1, 300.0),
    "close_handshake_timeout": ("close_handshake_timeout", 1.0, 300.0),
}
_OFF_ALLOWED = ("auto_ping_interval", "auto_ping_timeout")
_NO_EFFECT = {
    "enable_webstatus": "Wampgate never serves a status page",
    "auto_fragment_size": "Wampgate sends every message as one frame",
    "fail_by_drop": "Wampgate refuses with a close frame, then drops",
    "auto_ping_size": "the ping payload is not configurable",
    "require_websocket_subprotocol": "Wampgate always requires a WAMP subprotocol",
    "echo_close_codereason": "Wampgate never echoes the peer's close reason",
    "max_connections": "use the limits flow-control plugin's connection caps",
    "external_port": "no such option",
    "show_server_version": "the Server header is [listeners.websocket] server_header",
    "enable_flash_policy": "no Flash policy is ever served",
    "utf8validateIncoming": "UTF-8 is always validated",
    "validate_utf8": "UTF-8 is always validated",
    "mask_server_frames": "server frames are never masked",
    "require_masked_client_frames": "client frames must always be masked",
    "apply_mask": "no such option",
    "tcp_nodelay": "always on",
    "allow_null_origin": 'allowed only when "null" is in allowed_origins (converted with allowed_origins)',
    "trust_x_forwarded_for": "set [listeners.websocket] trusted_proxies to the proxies' addresses",
}

AuthConverter = Callable[[Table, Any, str, Mapping[str, Any]], None]


def listener_tables(transport: Mapping[str, Any], where: str, index: int, base: Path, notes: Notes,
                    convert_auth: AuthConverter) -> Table | None:
    """One `[[listeners]]` table for a transport, or None (and a note) when it cannot be one."""
    kind = transport.get("type")
    if kind not in ("websocket", "rawsocket", "universal", "web"):
        notes.add(f"{where}.type", f"a {kind!r} transport has no Wampgate counterpart (listeners speak WebSocket and "
                                   "RawSocket)")
        return None
    endpoint = _endpoint(mapping(transport.get("endpoint")), f"{where}.endpoint", notes)
    if endpoint is None:
        return None
    table = Table("listeners", array=True, comment=f"Crossbar {where} ({kind})")
    table.set("name", str(transport.get("id") or f"{kind}{index}"))
    table.set("endpoint", endpoint)
    parts = _parts(transport, kind, where, notes)
    websocket, rawsocket = parts.get("websocket"), parts.get("rawsocket")
    table.set("transports", [name for name in ("websocket", "rawsocket") if name in parts])
    _serializers(table, parts, notes)
    _max_message_size(table, parts, notes)
    tls = mapping(mapping(transport.get("endpoint")).get("tls"))
    ws_table = table.child("websocket")
    if websocket is not None:
        _websocket(ws_table, websocket[1], websocket[0], notes)
    static = parts.get("static")
    if static is not None:
        _static(ws_table, static[1], static[0], base, notes)
    if tls:
        _tls(table.child("tls"), tls, f"{where}.endpoint.tls", base, notes)
    auth_part = websocket or rawsocket
    if websocket and rawsocket and "auth" in rawsocket[1] and websocket[1].get("auth") != rawsocket[1]["auth"]:
        notes.add(f"{rawsocket[0]}.auth", "a listener has one set of authentication methods: the WebSocket part's "
                                          "are used for RawSocket too")
    cookie = mapping(websocket[1].get("cookie")) if websocket else {}
    convert_auth(table, auth_part[1].get("auth") if auth_part else None, f"{auth_part[0]}.auth",
                 {"cookie": cookie, "tls": bool(tls), "client_ca": bool(tls.get("ca_certificates"))})
    if not ws_table.keys:
        table.children.remove(ws_table)
    return table


def _parts(transport: Mapping[str, Any], kind: str, where: str, notes: Notes) -> dict[str, tuple[str, Mapping]]:
    """{"websocket" | "rawsocket" | "static": (where, its Crossbar table)} for the kinds of transport."""
    if kind in ("websocket", "rawsocket"):
        if kind == "websocket":
            notes.add(f"{where}", 'Crossbar answered WebSocket upgrades on any path; Wampgate on /ws only (clients '
                                  'connect to ws://HOST:PORT/ws)')
        return {kind: (where, transport)}
    parts: dict[str, tuple[str, Mapping]] = {}
    if kind == "universal":
        if isinstance(transport.get("rawsocket"), Mapping):
            parts["rawsocket"] = (f"{where}.rawsocket", transport["rawsocket"])
        paths = {f"{where}.websocket.{path}": ("/" + path.strip("/"), dict(cfg, type="websocket"))
                 for path, cfg in mapping(transport.get("websocket")).items() if isinstance(cfg, Mapping)}
        paths.update(_web_paths(mapping(mapping(transport.get("web")).get("paths")), f"{where}.web.paths"))
    else:
        paths = _web_paths(mapping(transport.get("paths")), f"{where}.paths")
    for path_where, (path, service) in paths.items():
        service_type = service.get("type")
        if service_type == "websocket" and "websocket" not in parts and path != "/":
            parts["websocket"] = (path_where, {**service, "path": path})
        elif service_type == "static" and path == "/" and "directory" in service:
            parts["static"] = (path_where, service)
        else:
            notes.add(path_where, f"a {service_type!r} service on path {path!r}: Wampgate serves one WebSocket path "
                                  "(not /) and static files from a directory on every other path, nothing else")
    return parts


def _web_paths(paths: Mapping[str, Any], where: str) -> dict[str, tuple[str, Mapping]]:
    return {f"{where}.{path}": ("/" + path.strip("/") if path != "/" else "/", cfg)
            for path, cfg in paths.items() if isinstance(cfg, Mapping)}


def _endpoint(endpoint: Mapping[str, Any], where: str, notes: Notes) -> str | None:
    kind = endpoint.get("type")
    if kind == "unix" and isinstance(endpoint.get("path"), str):
        return f"unix:{endpoint['path']}"
    if kind != "tcp" or not isinstance(endpoint.get("port"), int):
        notes.add(where, f"a {kind!r} endpoint (without a port) cannot be converted; Wampgate listens on tcp and "
                         "unix endpoints, so this transport was left out")
        return None
    text = f"{'tcp6' if endpoint.get('version') == 6 else 'tcp'}:{endpoint['port']}"
    interface = endpoint.get("interface")
    if isinstance(interface, str) and interface:
        text += ":interface=" + interface.replace(":", "\\:")
    if isinstance(endpoint.get("backlog"), int):
        text += f":backlog={endpoint['backlog']}"
    notes.unknown(where, endpoint, ("type", "port", "interface", "backlog", "version", "tls"),
                  "no such endpoint option in Wampgate")
    return text


def _serializers(table: Table, parts: Mapping[str, tuple[str, Mapping]], notes: Notes) -> None:
    chosen: list[str] = []
    for where, part in (parts[name] for name in ("websocket", "rawsocket") if name in parts):
        for name in part.get("serializers") or SERIALIZERS:
            if name in SERIALIZERS and name not in chosen:
                chosen.append(name)
            elif name not in SERIALIZERS:
                notes.add(f"{where}.serializers", f"{name!r} is not spoken by Wampgate (json, msgpack, cbor)")
    table.set("serializers", chosen or list(SERIALIZERS))


def _max_message_size(table: Table, parts: Mapping[str, tuple[str, Mapping]], notes: Notes) -> None:
    """The smallest max_message_size the parts set, within Wampgate's bounds (0, unlimited in Crossbar, is not)."""
    limit = RAWSOCKET_MAX if "rawsocket" in parts else WEBSOCKET_MAX
    sizes = []
    for where, part in (parts[name] for name in ("websocket", "rawsocket") if name in parts):
        size = mapping(part.get("options")).get("max_message_size", part.get("max_message_size"))
        if isinstance(size, int) and not isinstance(size, bool):
            if 512 <= size <= limit:
                sizes.append(size)
            else:
                notes.add(f"{where}.options.max_message_size", f"{size} is outside 512 to {limit} bytes (Crossbar's "
                                                                 "0 is unlimited): the 1 MiB default applies")
    if sizes:
        table.set("max_message_size", min(sizes))


def _websocket(table: Table, part: Mapping[str, Any], where: str, notes: Notes) -> None:
    if part.get("path"):
        table.set("path", part["path"])
    options = mapping(part.get("options"))
    for key, option in options.items():
        at = f"{where}.options.{key}"
        if key == "allowed_origins":
            _origins(table, option, options.get("allow_null_origin") is True, at, notes)
        elif key == "max_frame_size" and isinstance(option, int) and 125 <= option <= WEBSOCKET_MAX:
            table.set("max_frame_size", option)
        elif key in _MILLISECONDS and isinstance(option, int | float) and not isinstance(option, bool):
            _seconds(table, key, option, at, notes)
        elif key == "compression":
            if "deflate" in mapping(option):
                table.set("compression", True, "permessage-deflate; its tuning parameters are not configurable")
        elif key == "max_message_size":
            continue  # the listener's (see _max_message_size)
        elif key in _NO_EFFECT:
            if key != "allow_null_origin":
                notes.add(at, _NO_EFFECT[key])
        else:
            notes.add(at, "no such WebSocket option in Wampgate, or a value out of its range")
    if "cookie" in part and "cookie" not in mapping(part.get("auth")):
        notes.add(f"{where}.cookie", "cookie tracking without cookie authentication has no counterpart")
    notes.unknown(where, part, ("type", "id", "endpoint", "path", "options", "serializers", "auth", "cookie",
                                "debug", "url", "max_message_size"), "no such option in Wampgate")


def _origins(table: Table, origins: Any, allow_null: bool, where: str, notes: Notes) -> None:
    if not isinstance(origins, list) or not all(isinstance(o, str) for o in origins):
        notes.add(where, "expected a list of origins")
        return
    converted = []
    for origin in origins:
        if origin == "*":
            converted.append("*://*")
        elif "://" in origin and "/" not in origin.split("://", 1)[1]:
            converted.append(origin.lower())
        else:
            notes.add(where, f"origin {origin!r}: Wampgate takes SCHEME://HOST[:PORT] patterns only")
    if allow_null:
        converted.append("null")
    comment = "Crossbar allowed every page: list your web app's origins instead" if "*://*" in converted else ""
    table.set("allowed_origins", converted, comment)


def _seconds(table: Table, key: str, milliseconds: float, where: str, notes: Notes) -> None:
    name, lowest, highest = _MILLISECONDS[key]
    seconds = milliseconds / 1000
    if seconds == 0 and key in _OFF_ALLOWED:
        table.set(name, 0.0, "off, as in Crossbar")
        return
    if seconds == 0:
        notes.add(where, "0 (no timeout) is not allowed: Wampgate's default applies")
        return
    clamped = min(max(seconds, lowest), highest)
    if clamped != seconds:
        notes.add(where, f"{milliseconds} ms is outside {lowest} to {highest} s: set to {clamped} s")
    table.set(name, float(clamped), f"Crossbar: {milliseconds} ms")


def _static(table: Table, service: Mapping[str, Any], where: str, base: Path, notes: Notes) -> None:
    directory = (base / str(service["directory"])).resolve()
    if not directory.is_dir():
        notes.add(f"{where}.directory", f"{directory} does not exist: static_dir left out (set it once it does)")
        return
    table.set("static_dir", str(directory))
    notes.unknown(where, service, ("type", "directory", "options"), "no such static-file option in Wampgate")
    for key, option in mapping(service.get("options")).items():
        if key == "enable_directory_listing" and option:
            notes.add(f"{where}.options.{key}", "Wampgate never lists directories")
        elif key != "enable_directory_listing":
            notes.add(f"{where}.options.{key}", "static-file options are not configurable in Wampgate")


def _tls(table: Table, tls: Mapping[str, Any], where: str, base: Path, notes: Notes) -> None:
    def path(name: str) -> str:
        return str((base / str(tls[name])).resolve())

    for name, key in (("certificate", "certificate"), ("key", "private_key")):
        if name in tls:
            table.set(key, path(name))
        else:
            notes.add(f"{where}.{name}", "missing in the Crossbar config; Wampgate needs it")
    cas = tls.get("ca_certificates")
    if isinstance(cas, list) and cas:
        table.set("client_ca", str((base / str(cas[0])).resolve()))
        if len(cas) > 1:
            notes.add(f"{where}.ca_certificates", "Wampgate reads one client CA file: concatenate the others into "
                                                  "the first")
    if isinstance(tls.get("ciphers"), str):
        table.set("ciphers", tls["ciphers"])
    if tls.get("chain_certificates"):
        notes.add(f"{where}.chain_certificates", "append the intermediates to the certificate file (one PEM file, "
                                                 "server certificate first)")
    notes.unknown(where, tls, ("certificate", "key", "ca_certificates", "ciphers", "chain_certificates"),
                  "no such TLS option in Wampgate (dhparam, curve and method are chosen by the router)")
