"""Crossbar realms, roles and permissions as `[[realms]]`: a permission's `allow` object becomes the list of allowed
actions, `disclose` one flag, an old-style `com.example.*` URI a prefix, and a prefix without its trailing dot one
with it (Wampgate refuses a prefix that would also match `com.examples`). Dynamic authorizers, realm stores and
options become notes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wampgate.crossbar.notes import Notes, mapping
from wampgate.crossbar.toml import Table

ACTIONS = ("publish", "subscribe", "call", "register")
MATCHES = ("exact", "prefix", "wildcard")


def realm_table(realm: Mapping[str, Any], where: str, notes: Notes) -> Table | None:
    name = realm.get("name")
    if not isinstance(name, str) or not name:
        notes.add(f"{where}.name", "a realm without a name was left out")
        return None
    table = Table("realms", array=True, comment=f"Crossbar {where}")
    table.set("name", name)
    roles = realm.get("roles")
    for index, role in enumerate(roles if isinstance(roles, list) else []):
        _role(table, mapping(role), f"{where}.roles[{index}]", notes)
    if "store" in realm:
        notes.add(f"{where}.store", "event history: write [[realms.history]] tables (uri, match, limit) by hand; "
                                    "it is kept in memory")
    notes.unknown(where, realm, ("name", "roles", "store"), "no such realm option in Wampgate")
    return table


def _role(realm: Table, role: Mapping[str, Any], where: str, notes: Notes) -> None:
    name = role.get("name")
    if not isinstance(name, str) or not name:
        notes.add(f"{where}.name", "a role without a name was left out")
        return
    table = realm.child("roles", array=True)
    table.set("name", name)
    if "authorizer" in role:
        notes.add(f"{where}.authorizer", f"dynamic authorization by {role['authorizer']!r}: add a "
                                         "[[realms.authorizers]] link with plugin = \"dynamic\", roles = "
                                         f"[{name!r}] and the backend's backend_authrole, after a static link for "
                                         "the other roles (docs/migrating-from-crossbar.md)")
    seen: set[tuple[str, str]] = set()
    permissions = role.get("permissions")
    for index, permission in enumerate(permissions if isinstance(permissions, list) else []):
        _permission(table, mapping(permission), f"{where}.permissions[{index}]", notes, seen)
    notes.unknown(where, role, ("name", "permissions", "authorizer"), "no such role option in Wampgate")


def _permission(role: Table, permission: Mapping[str, Any], where: str, notes: Notes,
                seen: set[tuple[str, str]]) -> None:
    uri, match = permission.get("uri"), permission.get("match", "exact")
    if not isinstance(uri, str) or match not in MATCHES:
        notes.add(where, "expected a uri and a match of exact, prefix or wildcard: left out")
        return
    if uri.endswith("*") and match in ("exact", "prefix"):  # Crossbar's old style: "com.example.*", "*"
        uri, match = uri[:-1], "prefix"
    if match == "prefix" and uri and not uri.endswith("."):
        notes.add(f"{where}.uri", f"prefix {uri!r} became {uri + '.'!r}: a Wampgate prefix ends in a dot, so it no "
                                  f"longer matches {uri + 'x'!r}-like URIs")
        uri += "."
    if (uri, match) in seen:
        notes.add(where, f"a second {match} rule for {uri!r} in this role: left out (Wampgate refuses duplicates)")
        return
    seen.add((uri, match))
    allow = mapping(permission.get("allow"))
    allowed = [action for action in ACTIONS if allow.get(action) is True]
    disclose = mapping(permission.get("disclose"))
    table = role.child("permissions", array=True)
    table.set("uri", uri)
    table.set("match", match)
    table.set("allow", allowed)
    if disclose.get("caller") or disclose.get("publisher"):
        table.set("disclose", True)
        if bool(disclose.get("caller")) != bool(disclose.get("publisher")):
            notes.add(f"{where}.disclose", "Wampgate has one disclose flag for callers and publishers: set to true")
    if uri == "" and match == "prefix" and allowed:
        notes.add(f"{where}.uri", "Crossbar's grant on every URI also reached the meta API (wamp.session.*, ...); "
                                  "Wampgate's does not: add a rule for uri \"wamp.\" if clients call it")
    notes.unknown(where, permission, ("uri", "match", "allow", "disclose", "cache"), "no such permission option")
