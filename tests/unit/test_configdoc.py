"""The key tables of the configuration reference (docs/configuration.md) are generated from the declarations in
router/configtables.py and cannot drift from them; every declared key is documented, and its default is a value the
reader itself accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from wampgate import configdoc
from wampgate.configreader import TableReader
from wampgate.settings import declared_keys, read_settings, value_kind

ROOT = Path(__file__).resolve().parents[2]
CONFIGURATION_PAGE = ROOT / "docs" / "configuration.md"


def test_configuration_page_tables_are_what_the_declarations_render():
    """Each generated block of the site's configuration reference equals what the declarations render for that page
    (else: run `python -m wampgate.configdoc --write`)."""
    text = CONFIGURATION_PAGE.read_text(encoding="utf-8")
    assert configdoc.rendered(text, configdoc.links_for(CONFIGURATION_PAGE)) == text


def test_configuration_page_has_one_block_per_declared_table():
    """The configuration reference carries every declared table exactly once, so none can be dropped unnoticed."""
    assert sorted(configdoc.block_names(CONFIGURATION_PAGE.read_text(encoding="utf-8"))) == sorted(configdoc.TABLES)


def test_every_document_is_named_by_its_path_from_the_top():
    """DOCUMENTS lists the configuration page (the README no longer carries key tables), and a path is matched to its
    entry by its last parts, so `docs/configuration.md` run from the top and an absolute path to it get the same
    links."""
    assert set(configdoc.DOCUMENTS) == {"docs/configuration.md"}
    assert configdoc.links_for(CONFIGURATION_PAGE) is configdoc.DOCUMENTS["docs/configuration.md"]
    assert configdoc.links_for(Path("/elsewhere/configuration.md")) == {}


def test_the_readme_carries_no_key_tables():
    """The README is the front page: the key tables live in the configuration reference only (one copy)."""
    assert configdoc.block_names((ROOT / "README.md").read_text(encoding="utf-8")) == []


def test_a_section_link_points_to_the_page_that_has_the_section():
    """A key's link to a section stays as it is where no target is given (the page has the section itself) and is
    pointed at another page when one is: the configuration page sends Slow consumers and Payload values to the flow
    control page, and keeps Static files, which it has."""
    as_declared = configdoc.render_block("limits")
    assert "([Slow consumers](#slow-consumers))" in as_declared
    moved = configdoc.render_block("limits", {"#slow-consumers": "flow-control.md#slow-consumers"})
    assert "([Slow consumers](flow-control.md#slow-consumers))" in moved
    assert "([Payload values](#payload-values))" in moved  # not in the map: left as it is
    on_the_page = CONFIGURATION_PAGE.read_text(encoding="utf-8")
    assert "([Slow consumers](flow-control.md#slow-consumers))" in on_the_page
    assert "([Payload values](flow-control.md#payload-values))" in on_the_page
    assert "see [Static files](#static-files)" in on_the_page


def test_check_and_write_default_to_every_document(tmp_path, monkeypatch, capsys):
    """Without file names, --check looks at every document of DOCUMENTS (from the current directory), names each
    stale one, and --write renders each with its own links."""
    (tmp_path / "docs").mkdir()
    stale = "<!-- generated: limits -->\n| old |\n<!-- end -->\n"
    for name in configdoc.DOCUMENTS:
        (tmp_path / name).write_text(stale, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert configdoc.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert "docs/configuration.md: generated key tables are out of date" in err
    assert configdoc.main(["--write"]) == 0
    assert configdoc.main(["--check"]) == 0
    page = (tmp_path / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert "([Slow consumers](flow-control.md#slow-consumers))" in page


def test_a_document_that_cannot_be_read_is_reported(tmp_path, monkeypatch, capsys):
    """Run where the documents are not, --check says which file it cannot read and exits 1."""
    monkeypatch.chdir(tmp_path)
    assert configdoc.main(["--check"]) == 1
    assert "configuration.md: cannot read" in capsys.readouterr().err


def test_a_stale_block_is_detected_and_rewritten():
    """A block whose default no longer matches the declaration is re-rendered (the check fails, --write fixes it)."""
    fresh = configdoc.render_block("limits")
    stale = fresh.replace("| `max_registrations_per_session` | `100` |", "| `max_registrations_per_session` | `1000` |")
    assert stale != fresh
    text = f"# Title\n\n{stale}\n\nafter\n"
    assert configdoc.rendered(text) == f"# Title\n\n{fresh}\n\nafter\n"


def test_check_and_write_on_a_file(tmp_path, capsys):
    """--check exits 1 on a stale file and names the fix; --write repairs it; --check then exits 0."""
    path = tmp_path / "page.md"
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


def _bad_values(key) -> list:
    """Values each declared numeric key must refuse: below its low bound, above its high bound, a string, a bool."""
    step = 1 if value_kind(key.kind) is int else 0.001
    return [key.spec.low - step, key.spec.high + step, "10", True]


@pytest.mark.parametrize("name", sorted(configdoc.TABLES))
def test_every_bounded_key_refuses_what_is_out_of_bounds_or_of_the_wrong_type(name):
    """For every declared number (a new key included the day it is declared): a value below or above its bounds, a
    string and a boolean are each refused with one line naming `table.key` and the value, and the key keeps its
    declared default."""
    cls = configdoc.TABLES[name]
    numeric = [key for key in declared_keys(cls) if value_kind(key.kind) in (int, float)]
    for key in numeric:
        for bad in _bad_values(key):
            problems: list[str] = []
            value = read_settings(TableReader({key.name: bad}, name, problems), cls,
                                  {"static_dir": lambda t, n, d: t.raw(n)})
            assert len(problems) == 1 and problems[0].startswith(f"{name}.{key.name} = "), (key.name, bad, problems)
            assert getattr(value, key.name) == getattr(cls(), key.name), (key.name, bad)
