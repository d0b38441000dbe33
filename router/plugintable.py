"""The strict reader of a plugin's config table, for the built-ins and third-party plugins alike, so every plugin
reports problems the same way: the first problem raises PluginConfigError with the key path relative to the plugin's
table (`principals[2].role`), what is allowed, and the value as found. Unknown keys are errors, never ignored.

Plugins import it from wampgate.plugin.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from wampgate.configreader import redacted
from wampgate.interfaces import PluginConfigError, PluginContext

MAX_FILE_BYTES = 1 << 16  # key and secret files are small; a huge one is a mistake (or /dev/zero)


class Table:
    """One table of a plugin's config; `allowed` names every key it may have (checked on construction)."""

    def __init__(self, raw: Any, path: str, allowed: Iterable[str]):
        self.path = path
        if not isinstance(raw, Mapping):  # where a table belongs, a stray value may be anything: show its type only
            raise PluginConfigError(path, f"expected a table; found {redacted(raw)}")
        allowed = tuple(allowed)
        for name in raw:
            if name not in allowed:  # its value is never carried: a misspelt `pasword` holds a password all the same
                raise PluginConfigError(self.key(name), f"unknown key; allowed: {', '.join(allowed)}")
        self._raw = raw

    def key(self, name: str) -> str:
        """The path of key `name` of this table, relative to the plugin's table."""
        return f"{self.path}.{name}" if self.path else name

    def has(self, name: str) -> bool:
        return name in self._raw

    def fail(self, name: str, problem: str) -> PluginConfigError:
        """The error for key `name` (with its value, when present; `PluginConfigError.line` prints it only when the
        key's name does not look secret, so `secret = 5` reads `secret = <redacted integer>`); the caller raises it."""
        if name in self._raw:
            return PluginConfigError(self.key(name), problem, self._raw[name])
        return PluginConfigError(self.key(name), problem)

    def string(self, name: str, *, required: bool = False, default: str | None = None,
               choices: Iterable[str] | None = None) -> str | None:
        """A non-empty string (one of `choices` when given)."""
        choices = tuple(choices) if choices is not None else None
        describe = "one of " + ", ".join(repr(c) for c in choices) if choices else "a non-empty string"
        if name not in self._raw:
            if required:
                raise self.fail(name, f"missing; expected {describe}")
            return default
        value = self._raw[name]
        if not isinstance(value, str) or not value or (choices is not None and value not in choices):
            raise self.fail(name, f"expected {describe}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        value = self._raw.get(name, default)
        if not isinstance(value, bool):
            raise self.fail(name, "expected true or false")
        return value

    def integer(self, name: str, *, default: int | None, minimum: int, maximum: int) -> int:
        """An integer within bounds; `default` None makes the key required."""
        if name not in self._raw and default is None:
            raise self.fail(name, f"missing; expected an integer from {minimum} to {maximum}")
        value = self._raw.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            raise self.fail(name, f"expected an integer from {minimum} to {maximum}")
        return value

    def number(self, name: str, *, default: float, minimum: float, maximum: float) -> float:
        value = self._raw.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or not minimum <= value <= maximum:
            raise self.fail(name, f"expected a number from {minimum:g} to {maximum:g}")
        return float(value)

    def strings(self, name: str, *, required: bool = False, choices: Iterable[str] | None = None) -> tuple[str, ...]:
        """A non-empty array of distinct non-empty strings (each one of `choices` when given)."""
        choices = tuple(choices) if choices is not None else None
        describe = "a non-empty array of distinct " + (
            "values from " + ", ".join(repr(c) for c in choices) if choices else "non-empty strings")
        if name not in self._raw:
            if required:
                raise self.fail(name, f"missing; expected {describe}")
            return ()
        value = self._raw[name]
        if not isinstance(value, list) or not value or len(set(map(repr, value))) != len(value):
            raise self.fail(name, f"expected {describe}")
        for index, item in enumerate(value):
            if not isinstance(item, str) or not item or (choices is not None and item not in choices):
                raise PluginConfigError(f"{self.key(name)}[{index}]", f"expected {describe}", item)
        return tuple(value)

    def tables(self, name: str, allowed: Iterable[str], *, required: bool) -> list[Table]:
        """An array of tables (`[[name]]`), each checked against `allowed`."""
        if name not in self._raw:
            if required:
                raise self.fail(name, f"missing; expected at least one [[{self.key(name)}]] table")
            return []
        value = self._raw[name]
        if not isinstance(value, list) or (required and not value):
            raise self.fail(name, f"expected a non-empty array of tables ([[{self.key(name)}]])")
        allowed = tuple(allowed)
        return [Table(item, f"{self.key(name)}[{index}]", allowed) for index, item in enumerate(value)]

    def file_bytes(self, name: str, context: PluginContext | None, *, required: bool = False) -> bytes | None:
        """The contents of the file named by key `name`; relative paths resolve against the config's directory."""
        text = self.string(name, required=required)
        if text is None:
            return None
        path = Path(text).expanduser()
        if not path.is_absolute():
            if context is None:
                raise self.fail(name, "expected an absolute path (no config directory is known here)")
            path = Path(context.base_dir) / path
        try:
            with path.open("rb") as stream:
                data = stream.read(MAX_FILE_BYTES + 1)
        except OSError as e:
            raise self.fail(name, f"cannot read {str(path)!r}: {e.strerror or e}") from None
        if len(data) > MAX_FILE_BYTES:
            raise self.fail(name, f"file larger than {MAX_FILE_BYTES} bytes: not a key or secret file")
        return data
