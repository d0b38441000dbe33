"""The [limits] keys of the inbound payload checks, `max_nesting` and `max_hello_size`: their defaults, and the exact
one-line problem for a value out of range."""

from __future__ import annotations

import pytest

from wampgate.config import load
from tests.unit.test_config import listener, problems_of, realm, write


def test_defaults(tmp_path):
    """Without the keys: 64 levels of nesting, 64 KiB per message before WELCOME."""
    config = load(write(tmp_path, listener() + realm()))
    assert (config.limits.max_nesting, config.limits.max_hello_size) == (64, 65536)


def test_values_in_range_are_taken(tmp_path):
    """The bounds themselves are accepted."""
    config = load(write(tmp_path, "[limits]\nmax_nesting = 256\nmax_hello_size = 4096\n" + listener() + realm()))
    assert (config.limits.max_nesting, config.limits.max_hello_size) == (256, 4096)


@pytest.mark.parametrize("keys,key,allowed", [
    ("max_nesting = 7", "max_nesting", "an integer from 8 to 256"),
    ("max_nesting = 257", "max_nesting", "an integer from 8 to 256"),
    ('max_nesting = "64"', "max_nesting", "an integer from 8 to 256"),
    ("max_hello_size = 4095", "max_hello_size", "an integer from 4096 to 16777216"),
    ("max_hello_size = 16777217", "max_hello_size", "an integer from 4096 to 16777216"),
    ("max_hello_size = 65536.0", "max_hello_size", "an integer from 4096 to 16777216"),
])
def test_bad_values_name_key_value_and_range(tmp_path, keys, key, allowed):
    """A value out of range or of the wrong type is one problem line: key, value as written, what is allowed."""
    problems = problems_of(tmp_path, "[limits]\n" + keys + "\n" + listener() + realm())
    assert problems == [f"limits.{keys}: expected {allowed}"]
    assert keys.startswith(key + " = ")
