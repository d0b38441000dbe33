"""Crossbar's `auth` of a transport as `[listeners.auth.METHOD]` tables: static anonymous, ticket (the tickets hashed
with the router's scrypt, as `wampgate hash-secret` does), WAMP-CRA (plain and salted), cryptosign, TLS (principals
pinned by certificate fingerprint) and cookie. Dynamic authenticators and anything else become notes: a dynamic one
needs the role of the backend that registers the procedure, which a Crossbar config does not say."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from wampgate.crossbar.notes import Notes, mapping
from wampgate.crossbar.toml import Table

_KEY = re.compile(r"[0-9a-fA-F]{64}")
_FINGERPRINTS = ("certificate-sha1", "certificate-sha256", "certificate_sha1", "certificate_sha256")
_ENV = re.compile(r"\$\{?[A-Za-z_]")


class AuthConverter:
    """Converts one transport's `auth` into the listener's tables; `hash_secret(ticket)` makes a `secret_hash`."""

    def __init__(self, notes: Notes, hash_secret: Callable[[str], str]):
        self._notes = notes
        self._hash = hash_secret

    def __call__(self, listener: Table, auth: Any, where: str, transport: Mapping[str, Any]) -> None:
        if auth is None:
            table = listener.child("auth.anonymous", comment="Crossbar lets anybody in as \"anonymous\" on a "
                                                             "transport without auth")
            table.set("role", "anonymous")
            return
        for method, config in mapping(auth).items():
            at = f"{where}.{method}"
            config = mapping(config)
            if config.get("type", "static") != "static" and method != "cookie":
                self._notes.add(at, f"a {config.get('type')!r} {method} authenticator: write a "
                                    "[listeners.auth.dynamic] table (procedure, backend_authrole) by hand; see "
                                    "docs/migrating-from-crossbar.md")
                continue
            convert = getattr(self, f"_{method}", None)
            if convert is None:
                self._notes.add(at, f"the {method!r} method is not converted")
                continue
            convert(listener, config, at, transport)

    # -- one per method ---------------------------------------------------------------------------------------------

    def _anonymous(self, listener: Table, config: Mapping, where: str, transport: Mapping) -> None:
        table = listener.child("auth.anonymous")
        table.set("role", str(config.get("role", "anonymous")))
        self._notes.unknown(where, config, ("type", "role"), "no such anonymous option (the authid is always random)")

    def _ticket(self, listener: Table, config: Mapping, where: str, transport: Mapping) -> None:
        for authid, principal, at in self._principals(config, where, "principals"):
            ticket = principal.get("ticket", principal.get("secret"))
            if not isinstance(ticket, str) or not ticket or _ENV.match(ticket):
                self._notes.add(f"{at}.ticket", "not a literal ticket (missing, or from the environment): hash it "
                                                "with `wampgate hash-secret` and add this principal by hand")
                continue
            row = self._row(listener, "ticket", authid, principal, at, ("ticket", "secret"))
            row.set("secret_hash", self._hash(ticket), "scrypt hash of the Crossbar ticket")

    def _wampcra(self, listener: Table, config: Mapping, where: str, transport: Mapping) -> None:
        users = "users" if "users" in config else "principals"
        for authid, principal, at in self._principals(config, where, users):
            secret = principal.get("secret")
            if not isinstance(secret, str) or not secret or _ENV.match(secret):
                self._notes.add(f"{at}.secret", "not a literal secret: add this principal by hand")
                continue
            salted = "salt" in principal
            if salted and not self._salting_fits(principal, at):
                continue
            keys = ("secret", "salt", "iterations", "keylen")
            row = self._row(listener, "wampcra", authid, principal, at, keys)
            if salted:
                row.set("derived_key", secret, "Crossbar's secret of a salted user is the derived key")
                row.set("salt", str(principal["salt"]))
                row.set("iterations", principal.get("iterations", 1000))  # Crossbar's defaults
                row.set("keylen", principal.get("keylen", 32))
            else:
                row.set("secret", secret)

    def _salting_fits(self, principal: Mapping, where: str) -> bool:
        iterations, keylen = principal.get("iterations", 1000), principal.get("keylen", 32)
        if not (isinstance(iterations, int) and iterations >= 1000 and isinstance(keylen, int) and 16 <= keylen <= 64):
            self._notes.add(where, "Wampgate wants at least 1,000 iterations and a key of 16 to 64 bytes: derive a new "
                                   "key for this user")
            return False
        return True

    def _cryptosign(self, listener: Table, config: Mapping, where: str, transport: Mapping) -> None:
        for authid, principal, at in self._principals(config, where, "principals"):
            keys = principal.get("authorized_keys")
            if not isinstance(keys, list) or not keys or not all(isinstance(k, str) and _KEY.fullmatch(k)
                                                                  for k in keys):
                self._notes.add(f"{at}.authorized_keys", "expected raw Ed25519 public keys (64 hex characters)")
                continue
            row = self._row(listener, "cryptosign", authid, principal, at, ("authorized_keys",))
            row.set("public_keys", [k.lower() for k in keys])

    def _tls(self, listener: Table, config: Mapping, where: str, transport: Mapping) -> None:
        if not transport.get("client_ca"):
            self._notes.add(where, "the router asks for client certificates only with [listeners.tls] client_ca: "
                                   "add a CA file (pinned certificates need not chain to it)")
        for authid, principal, at in self._principals(config, where, "principals"):
            pins = [principal[key] for key in _FINGERPRINTS if isinstance(principal.get(key), str)]
            if not pins:
                self._notes.add(at, "no certificate-sha1 / certificate-sha256 to pin: map the certificate by name "
                                    "(authid_from) by hand")
                continue
            row = self._row(listener, "tls", authid, principal, at, _FINGERPRINTS)
            row.set("fingerprints", pins)

    def _cookie(self, listener: Table, config: Mapping, where: str, transport: Mapping) -> None:
        table = listener.child("auth.cookie")
        cookie = mapping(transport.get("cookie"))
        name, max_age = cookie.get("name"), cookie.get("max_age")
        if isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", name):
            table.set("name", name)
        if isinstance(max_age, int) and 60 <= max_age <= 366 * 86400:
            table.set("max_age", max_age)
        elif max_age is not None:
            self._notes.add(f"{where}.max_age", "outside 60 s to 366 days: the default (1 day) applies")
        if "store" in cookie:
            self._notes.add(f"{where}.store", "cookies are kept in memory only (a restart logs everybody out)")

    # -- shared ------------------------------------------------------------------------------------------------

    def _principals(self, config: Mapping, where: str, key: str):
        """(authid, principal, where) of a static method's principal table."""
        principals = config.get(key)
        if not isinstance(principals, Mapping) or not principals:
            self._notes.add(f"{where}.{key}", "no principals: the method was left out")
            return
        for authid, principal in principals.items():
            at = f"{where}.{key}.{authid}"
            if not isinstance(principal, Mapping) or not isinstance(principal.get("role"), str):
                self._notes.add(at, "expected a principal with a role")
                continue
            yield authid, dict(principal), at

    def _row(self, listener: Table, method: str, authid: str, principal: Mapping, where: str,
             secret_keys: tuple[str, ...]) -> Table:
        row = listener.child(f"auth.{method}.principals", array=True)
        row.set("authid", principal.get("authid", authid) if isinstance(principal.get("authid"), str) else authid)
        row.set("role", principal["role"])
        if isinstance(principal.get("realm"), str):
            row.set("realm", principal["realm"])
        self._notes.unknown(where, principal, ("authid", "role", "realm", *secret_keys), "no such principal option")
        return row
