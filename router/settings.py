"""Config keys declared once: a key's default, bounds, allowed choices and description sit in the metadata of the
dataclass field that holds it, and one generic reader turns a TOML table into that dataclass.

The same declaration gives the default the router runs with, the range in the error line (through TableReader) and
the line in the configuration reference's key table (router/configdoc.py), so the three cannot disagree. Keys whose
reading is not "a typed value within bounds" (a path relative to the config file, a rule across keys) still declare
their default and description here, and name a reader of their own where the table is read.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Callable, Iterator, Mapping
from dataclasses import Field, dataclass, field, fields
from types import MappingProxyType
from typing import Any, TypeVar

from wampgate.configreader import TableReader

T = TypeVar("T")
SETTING = "wampgate.setting"  # the metadata key of a declared config key
TABLE = "wampgate.table"  # the metadata key of a declared sub-table (`[limits.auth_failures]`)


@dataclass(frozen=True)
class Setting:
    """What one key allows beyond its type, and its description in the configuration reference."""

    doc: str
    low: int | float | None = None  # numbers: the smallest value allowed
    high: int | float | None = None  # numbers: the largest value allowed
    choices: tuple[str, ...] | None = None  # strings and arrays of strings: the values allowed
    unit: str = ""  # shown after the range in the reference: "s", "bytes"
    allowed: str | None = None  # the reference's range column, where bounds alone would mislead ("0 (off) or 1–3600 s")
    # A rule beyond type and range: returns the value to keep (possibly normalised), or raises ValueError whose text
    # says what is allowed (the reader records it against the key and keeps the default).
    parse: Callable[[Any], Any] | None = None


# A reader of its own for an irregular key: (table, key, default) -> value, recording any problem on the table.
KeyReader = Callable[[TableReader, str, Any], Any]


def setting(
    default: Any,
    low: int | float | None = None,
    high: int | float | None = None,
    doc: str = "",
    *,
    choices: tuple[str, ...] | None = None,
    unit: str = "",
    allowed: str | None = None,
    parse: Callable[[Any], Any] | None = None,
) -> Any:
    """One config key: its default, bounds and reference line, declared once as the field that holds it."""
    spec = Setting(doc=doc, low=low, high=high, choices=choices, unit=unit, allowed=allowed, parse=parse)
    return field(default=default, metadata={SETTING: spec})


def subtable(cls: type, doc: str = "") -> Any:
    """A table inside the table (`[limits.auth_failures]` in `[limits]`), itself declared with `setting` fields."""
    return field(default_factory=cls, metadata={TABLE: doc})


@dataclass(frozen=True)
class Key:
    """One declared key of a settings dataclass, as the reader and the reference see it."""

    name: str
    kind: Any  # the field's type
    default: Any
    spec: Setting


def declared_keys(cls: type) -> Iterator[Key]:
    """The keys `cls` declares with `setting`, in declaration order (sub-tables are skipped)."""
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        if SETTING in f.metadata:
            yield Key(f.name, hints[f.name], f.default, f.metadata[SETTING])


def read_settings(t: TableReader, cls: type[T], readers: Mapping[str, KeyReader] = MappingProxyType({})) -> T:
    """Build the settings dataclass `cls` from table `t`: every declared key in declaration order (so problems are
    reported in that order), then the unknown keys. A wrong value is recorded and replaced by its default, so the
    reading goes on and every problem is reported at once. `readers` read the irregular keys."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in fields(cls):
        values[f.name] = _read_field(t, f, hints[f.name], readers)
    t.close()
    return cls(**values)


def _read_field(t: TableReader, f: Field, kind: Any, readers: Mapping[str, KeyReader]) -> Any:
    if TABLE in f.metadata:
        return read_settings(t.table(f.name), kind)
    if SETTING not in f.metadata:
        raise TypeError(f"{f.name}: a settings field must be declared with setting() or subtable()")
    if f.name in readers:
        return readers[f.name](t, f.name, f.default)
    return read_key(t, Key(f.name, kind, f.default, f.metadata[SETTING]))


def read_key(t: TableReader, key: Key) -> Any:
    """One key, typed and bounded as declared, then checked by its `parse` rule when it was written validly."""
    before = len(t.problems)
    value = _read_typed(t, key)
    spec = key.spec
    if spec.parse is None or not t.has(key.name) or len(t.problems) != before:
        return value
    try:
        return spec.parse(value)
    except ValueError as e:
        t.problem(key.name, str(e))
        return key.default


def _read_typed(t: TableReader, key: Key) -> Any:
    name, kind, default, spec = key.name, value_kind(key.kind), key.default, key.spec
    if kind is bool:
        return t.boolean(name, default)
    if kind is int:
        return t.integer(name, default, spec.low, spec.high)
    if kind is float:
        return t.number(name, default, float(spec.low), float(spec.high))
    if kind is str:
        return t.string(name, default, choices=spec.choices)
    if kind is tuple:
        return t.strings(name, default, choices=spec.choices, non_empty=False)
    raise TypeError(f"{name}: no generic reader for {key.kind!r}; pass a reader of its own")


def value_kind(hint: Any) -> Any:
    """What a key's TOML value is, from its field type: bool, int, float, str or tuple (an array of strings);
    `X | None` is an optional X."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        options = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return value_kind(options[0]) if len(options) == 1 else hint
    origin = typing.get_origin(hint)
    if origin is tuple and typing.get_args(hint)[:1] == (str,):
        return tuple
    return hint
