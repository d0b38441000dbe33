"""The README's key tables are generated from the declarations in router/configtables.py and cannot drift from
them; every declared key is documented, and its default is a value the reader itself accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from wampgate import configdoc
from wampgate.configreader import TableReader
from wampgate.settings import declared_keys, read_settings, value_kind

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_tables_are_what_the_declarations_render():
    """Each generated block of README.md equals what `python -m wampgate.configdoc` renders today (else: run it with
    --write README.md)."""
    text = README.read_text(encoding="utf-8")
    assert configdoc.rendered(text) == text


def test_readme_has_one_block_per_declared_table():
    """Every declared table has exactly one generated block in README.md, so none can be dropped unnoticed."""
    assert sorted(configdoc.block_names(README.read_text(encoding="utf-8"))) == sorted(configdoc.TABLES)


def test_a_stale_block_is_detected_and_rewritten():
    """A block whose default no longer matches the declaration is re-rendered (the check fails, --write fixes it)."""
    fresh = configdoc.render_block("limits")
    stale = fresh.replace("| `max_registrations_per_session` | `100` |", "| `max_registrations_per_session` | `1000` |")
    assert stale != fresh
    text = f"# Title\n\n{stale}\n\nafter\n"
    assert configdoc.rendered(text) == f"# Title\n\n{fresh}\n\nafter\n"


def test_check_and_write_on_a_file(tmp_path, capsys):
    """--check exits 1 on a stale file and names the fix; --write repairs it; --check then exits 0."""
    path = tmp_path / "README.md"
    path.write_text("<!-- generated: admin -->\n| old |\n<!-- end -->\n", encoding="utf-8")
    assert configdoc.main(["--check", str(path)]) == 1
    assert "python -m wampgate.configdoc --write" in capsys.readouterr().err
    assert configdoc.main(["--write", str(path)]) == 0
    assert configdoc.main(["--check", str(path)]) == 0
    assert path.read_text(encoding="utf-8") == configdoc.render_block("admin") + "\n"


def test_an_unknown_block_name_is_refused():
    """A marker naming no declared table is an error, not silently left as it is."""
    with pytest.raises(ValueError, match="unknown generated table 'limitz'"):
        configdoc.rendered("<!-- generated: limitz -->\n<!-- end -->\n")


@pytest.mark.parametrize("name", sorted(configdoc.TABLES))
def test_every_key_is_documented_and_bounded(name):
    """Each declared key has a description and, when it is a number, both bounds (the reader needs them)."""
    for key in declared_keys(configdoc.TABLES[name]):
        assert key.spec.doc, key.name
        if value_kind(key.kind) in (int, float):
            assert key.spec.low is not None and key.spec.high is not None, key.name


@pytest.mark.parametrize("name", sorted(configdoc.TABLES))
def test_every_default_is_a_value_the_reader_accepts(name):
    """Writing each key with its declared default is accepted without a problem, so no default breaks its own
    bounds, choices or rule."""
    cls = configdoc.TABLES[name]
    raw = {key.name: _as_toml(key.default) for key in declared_keys(cls) if key.default is not None}
    problems: list[str] = []
    assert read_settings(TableReader(raw, name, problems), cls, {"static_dir": lambda t, n, d: t.raw(n)}) == cls()
    assert problems == []


def _as_toml(value):
    return list(value) if isinstance(value, tuple) else value
