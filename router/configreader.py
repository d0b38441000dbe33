"""Reading one TOML table with every problem recorded against its key path, so a config is checked in one pass.

Each accessor returns a usable value even when the input is wrong (the default), so validation goes on and the
operator sees every problem at once, one line each: `key.path = value: what is allowed`.

Error lines end up on a terminal, in CI output and (after a refused SIGHUP reload) in the log, so a value is printed
only when it cannot be a secret: the value of a key whose name looks secret (`secret`, `password`, `token`, `key`,
`ticket`, ...) or that the reader does not know (a misspelt `pasword` holds a password all the same) is shown as
`<redacted string>` (its type, which is often what is wrong), never as written. `shown` is the one place that decides.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_MISSING = object()

# Parts of a key name that mean its value may be a secret; matched anywhere in the name's last component.
SECRET_WORDS = ("secret", "password", "passwd", "passphrase", "token", "key", "ticket", "credential")
_INDEXES = re.compile(r"(\[\d+\])+$")


_URL_CREDENTIALS = re.compile(r"(://[^/@:]*:)[^/@]*@")


def looks_secret(path: str) -> bool:
    """The key at `path` (e.g. `listeners[0].auth.ticket.principals[2].secret_hash`) may hold a secret: its last
    component, without an array index, contains one of SECRET_WORDS (any case)."""
    name = _INDEXES.sub("", path.rsplit(".", 1)[-1]).lower()
    return any(word in name for word in SECRET_WORDS)


def redacted(value: Any) -> str:
    """What an error line shows instead of a value that may be secret: its type only."""
    return f"<redacted {type_name(value)}>"


def shown(path: str, value: Any, *, known: bool = True) -> str:
    """The value of key `path` for an error line: as written (`show`), unless the key is not one the reader knows or
    its name looks secret."""
    if not known or looks_secret(path):
        return redacted(value)
    if isinstance(value, str) and _URL_CREDENTIALS.search(value):
        return show(_URL_CREDENTIALS.sub(r"\1***@", value))  # redis://user:PASSWORD@host: the password never shows
    return show(value)


def show(value: Any) -> str:
    """A value as the operator wrote it (TOML-ish), bounded so a huge value cannot flood the error output."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    elif isinstance(value, dict):
        text = "{table}"
    elif isinstance(value, list):
        text = "[" + ", ".join(show(item) for item in value) + "]"
    else:
        text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def type_name(value: Any) -> str:
    names = {bool: "boolean", int: "integer", float: "float", str: "string", list: "array", dict: "table"}
    return names.get(type(value), type(value).__name__)


class TableReader:
    """Typed access to one table; `close()` reports the keys nobody asked for."""

    def __init__(self, raw: Any, path: str, problems: list[str]):
        self.path = path
        self.problems = problems
        self._seen: set[str] = set()
        self._named_by_operator: set[str] = set()  # keys that are names (from `names()`), not ones the schema knows
        if not isinstance(raw, dict):
            # tables are also named by the operator (`[listeners.auth.<method>]`): a misspelt one is not known
            self.problem_at(path, raw, "expected a table", known=False)
            raw = {}
        self._raw = raw

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def problem_at(self, path: str, value: Any, allowed: str, *, known: bool = True) -> None:
        if value is _MISSING:
            self.problems.append(f"{path}: {allowed}")
        else:
            self.problems.append(f"{path} = {shown(path, value, known=known)}: {allowed}")

    def problem(self, name: str, allowed: str) -> None:
        """Record a problem with key `name` of this table (its value shown as written, unless it may be secret)."""
        known = name not in self._named_by_operator
        self.problem_at(self.key(name), self._raw.get(name, _MISSING), allowed, known=known)

    def has(self, name: str) -> bool:
        return name in self._raw

    def raw(self, name: str, default: Any = None) -> Any:
        self._seen.add(name)
        return self._raw.get(name, default)

    def _take(self, name: str, default: Any, required: bool, describe: str) -> Any:
        self._seen.add(name)
        if name not in self._raw:
            if required:
                self.problems.append(f"{self.key(name)}: missing; expected {describe}")
            return _MISSING
        return self._raw[name]

    def string(
        self, name: str, default: Any = None, *, required: bool = False, choices: Iterable[str] | None = None
    ) -> Any:
        choices = tuple(choices) if choices is not None else None
        describe = "one of " + ", ".join(show(c) for c in choices) if choices else "a string"
        value = self._take(name, default, required, describe)
        if value is _MISSING:
            return default
        if not isinstance(value, str) or (choices is not None and value not in choices):
            self.problem(name, f"expected {describe}")
            return default
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self._take(name, default, False, "true or false")
        if value is _MISSING:
            return default
        if not isinstance(value, bool):
            self.problem(name, "expected true or false")
            return default
        return value

    def integer(self, name: str, default: int, minimum: int, maximum: int) -> int:
        value = self._take(name, default, False, "an integer")
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            self.problem(name, f"expected an integer from {minimum} to {maximum}")
            return default
        return value

    def number(self, name: str, default: float, minimum: float, maximum: float) -> float:
        value = self._take(name, default, False, "a number")
        if value is _MISSING:
            return default
        if isinstance(value, bool) or not isinstance(value, int | float) or not minimum <= value <= maximum:
            self.problem(name, f"expected a number from {minimum} to {maximum}")
            return default
        return float(value)

    def strings(
        self, name: str, default: tuple[str, ...], *, choices: Iterable[str] | None = None, non_empty: bool = True
    ) -> tuple[str, ...]:
        choices = tuple(choices) if choices is not None else None
        describe = "an array of " + ("values from " + ", ".join(show(c) for c in choices) if choices else "strings")
        if non_empty:
            describe = "a non-empty " + describe.removeprefix("an ")
        value = self._take(name, default, False, describe)
        if value is _MISSING:
            return default
        valid = isinstance(value, list) and all(isinstance(item, str) for item in value)
        if valid and choices is not None:
            valid = all(item in choices for item in value)
        if not valid or (non_empty and not value) or len(set(value)) != len(value):
            self.problem(name, f"expected {describe}, each at most once")
            return default
        return tuple(value)

    def table(self, name: str) -> TableReader:
        self._seen.add(name)
        return TableReader(self._raw.get(name, {}), self.key(name), self.problems)

    def tables(self, name: str, *, required: bool = False) -> list[TableReader]:
        """An array of tables (`[[name]]`)."""
        self._seen.add(name)
        value = self._raw.get(name, _MISSING)
        if value is _MISSING:
            if required:
                self.problems.append(f"{self.key(name)}: missing; expected at least one [[{self.key(name)}]] table")
            return []
        if not isinstance(value, list):
            self.problem(name, f"expected an array of tables ([[{self.key(name)}]])")
            return []
        return [TableReader(item, f"{self.key(name)}[{i}]", self.problems) for i, item in enumerate(value)]

    def items(self) -> list[tuple[str, Any]]:
        """Every key and raw value, all marked as read: for tables a plugin validates itself."""
        self._seen.update(self._raw)
        return list(self._raw.items())

    def names(self) -> list[str]:
        """The keys of this table, for tables whose keys are names (e.g. `[listeners.auth]`); a problem with one of
        them never shows its value, since a misspelt name is a key nobody knows."""
        self._named_by_operator.update(self._raw)
        return list(self._raw)

    def close(self, allowed: Iterable[str] = ()) -> None:
        """Report every key that was never read: an unknown key is an error, never silently ignored."""
        known = sorted(set(allowed) | self._seen)
        for name in self._raw:
            if name not in self._seen and name not in known:
                self.problems.append(f"{self.key(name)}: unknown key; allowed: {', '.join(known) or 'none'}")
