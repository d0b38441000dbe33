"""router/settings.py: a table read from its field declarations, with every problem one line in declaration order,
each wrong value replaced by its declared default, and the declarations the only place a default is written."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from wampgate.configtables import LimitsConfig
from wampgate.configreader import TableReader
from wampgate.core.lockout import LockoutPolicy
from wampgate.settings import declared_keys, read_settings, setting, subtable


def _even(value: int) -> int:
    if value % 2:
        raise ValueError("expected an even number")
    return value


@dataclass(frozen=True)
class Inner:
    depth: int = setting(3, 1, 10, "how deep")


@dataclass(frozen=True)
class Sample:
    timeout: float = setting(5.0, 1, 60, "seconds", unit="s")
    count: int = setting(4, 0, 100, "how many", parse=_even)
    name: str = setting("x", doc="a name", choices=("x", "y"))
    label: str | None = setting(None, doc="an optional label", parse=str.upper)
    on: bool = setting(False, doc="a switch")
    tags: tuple[str, ...] = setting((), doc="some tags")
    inner: Inner = subtable(Inner)


def read(raw: dict, cls=Sample, readers=None, path: str = "t") -> tuple[object, list[str]]:
    problems: list[str] = []
    value = read_settings(TableReader(raw, path, problems), cls, readers or {})
    return value, problems


def test_an_empty_table_gives_the_declared_defaults():
    """Nothing written: the dataclass's own defaults, no problem."""
    assert read({}) == (Sample(), [])


def test_values_are_read_typed_and_normalised():
    """Each key is read as its field's type; a `parse` rule may normalise the value; sub-tables are read too."""
    value, problems = read({"timeout": 2, "count": 8, "name": "y", "label": "abc", "on": True, "tags": ["a", "b"],
                            "inner": {"depth": 7}})
    assert problems == []
    assert value == Sample(timeout=2.0, count=8, name="y", label="ABC", on=True, tags=("a", "b"), inner=Inner(7))
    assert isinstance(value.timeout, float)


def test_every_problem_is_one_line_in_declaration_order_and_the_default_is_kept():
    """Wrong values in any order of writing are reported in the order the fields are declared, then the unknown
    keys (listing the allowed ones); each wrong key keeps its default. Float bounds are shown as floats."""
    value, problems = read({"inner": {"depth": 0}, "colour": 1, "tags": "a", "on": 1, "name": "z", "count": 3,
                            "timeout": "10"})
    assert problems == [
        't.timeout = "10": expected a number from 1.0 to 60.0',
        "t.count = 3: expected an even number",
        't.name = "z": expected one of "x", "y"',
        "t.on = 1: expected true or false",
        't.tags = "a": expected an array of strings, each at most once',
        "t.inner.depth = 0: expected an integer from 1 to 10",
        "t.colour: unknown key; allowed: count, inner, label, name, on, tags, timeout",
    ]
    assert value == Sample()


def test_the_parse_rule_runs_only_on_a_value_of_the_right_type():
    """A value already refused for its type or range is reported once, not again by the rule."""
    assert read({"count": 101})[1] == ["t.count = 101: expected an integer from 0 to 100"]


def test_an_irregular_key_is_read_by_its_own_reader_at_its_place():
    """A reader given for a key replaces the generic reading of that key only, at its declared position."""
    seen = []

    def label(t: TableReader, name: str, default):
        seen.append((name, default, len(t.problems)))
        return "from reader"

    value, problems = read({"timeout": 0}, readers={"label": label})
    assert value.label == "from reader" and seen == [("label", None, 1)]
    assert problems == ["t.timeout = 0: expected a number from 1.0 to 60.0"]


def test_a_field_without_a_declaration_is_a_programming_error():
    """A settings dataclass whose field is not declared with setting() cannot be read (it would have no bounds)."""

    @dataclass(frozen=True)
    class Undeclared:
        size: int = 3

    with pytest.raises(TypeError, match="size: a settings field must be declared"):
        read({}, Undeclared)


def test_declared_keys_skip_sub_tables():
    """declared_keys lists a table's own keys (what its README table shows), not its sub-tables."""
    assert [key.name for key in declared_keys(Sample)] == ["timeout", "count", "name", "label", "on", "tags"]


def test_the_reviewed_bad_limits_table_gives_its_four_lines():
    """The architecture review's example (a string for a number, 0 below the minimum, `true` for an integer in the
    sub-table, a misspelt key) still gives its four lines, word for word."""
    raw = {"hello_timeout": "10", "max_pending_calls_per_session": 0, "auth_failures": {"delay_after": True},
           "max_outgoing_bufer": 1024}
    limits, problems = read(raw, LimitsConfig, path="limits")
    assert problems[:3] == [
        'limits.hello_timeout = "10": expected a number from 0.1 to 600.0',
        "limits.max_pending_calls_per_session = 0: expected an integer from 1 to 1000000",
        "limits.auth_failures.delay_after = true: expected an integer from 1 to 1000",
    ]
    assert problems[3].startswith("limits.max_outgoing_bufer: unknown key; allowed: auth_failures, auth_timeout, ")
    assert len(problems) == 4 and limits == LimitsConfig()


def test_the_login_guard_policy_is_built_from_the_limits_declarations():
    """The guard's policy joins [limits.auth_failures] and the [limits] login keys; declared defaults are the guard's
    own, so LimitsConfig() and LockoutPolicy() cannot disagree."""
    assert LimitsConfig().lockout == LockoutPolicy()
    limits, problems = read({"max_authid_length": 64, "auth_failures": {"lockout_after": 7}}, LimitsConfig)
    assert problems == []
    assert (limits.lockout.max_authid_length, limits.lockout.lockout_after) == (64, 7)
