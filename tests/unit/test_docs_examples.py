"""The examples of the documentation site are real: every TOML and JSON block parses, and the Crossbar migration's
side-by-side example is a Wampgate config that check-config accepts, holding the same credentials as its Crossbar
original."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
from autobahn.wamp.auth import derive_key

from wampgate.cli import check_config
from wampgate.passwords import verify_secret

ROOT = Path(__file__).resolve().parents[2]
PAGES = sorted((ROOT / "docs").rglob("*.md"))
MIGRATION = ROOT / "docs" / "migrating-from-crossbar.md"
_BLOCK = re.compile(r"^```(?P<language>\w+)\n(?P<body>.*?)^```$", re.DOTALL | re.MULTILINE)


def blocks(text: str, language: str) -> list[str]:
    return [match.group("body") for match in _BLOCK.finditer(text) if match.group("language") == language]


def section(path: Path, heading: str) -> str:
    """The text under `## heading` up to the next heading of that level."""
    text = path.read_text(encoding="utf-8")
    assert f"\n## {heading}\n" in text, f"{path.name} has no section {heading!r}"
    return text.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_every_toml_and_json_example_parses(page):
    """A reader pastes these blocks into files: each TOML block is valid TOML and each JSON block valid JSON."""
    text = page.read_text(encoding="utf-8")
    for body in blocks(text, "toml"):
        tomllib.loads(body)
    for body in blocks(text, "json"):
        json.loads(body)


def test_the_pages_hold_examples_at_all():
    """The block pattern finds the pages' examples (none found would make the test above vacuous)."""
    assert sum(len(blocks(page.read_text(encoding="utf-8"), "toml")) for page in PAGES) >= 5
    assert len(blocks(MIGRATION.read_text(encoding="utf-8"), "json")) == 1


def test_the_crossbar_example_translated_passes_check_config(tmp_path, capsys):
    """The Wampgate side of "A whole config, side by side", saved as router.toml beside its web/ directory, is
    accepted by `wampgate check-config` (plugins built, principals and roles checked) with the listeners, methods,
    roles and chain the Crossbar side has."""
    toml_text, = blocks(section(MIGRATION, "A whole config, side by side"), "toml")
    (tmp_path / "web").mkdir()
    (tmp_path / "router.toml").write_text(toml_text, encoding="utf-8")
    assert check_config(str(tmp_path / "router.toml")) == 0, capsys.readouterr().err
    summary = capsys.readouterr().out
    assert "listener web: tcp:8080:interface=127.0.0.1 (plain) websocket; authentication: ticket, anonymous" in summary
    assert "listener backend: tcp:8081:interface=127.0.0.1 (plain) rawsocket; authentication: wampcra" in summary
    assert "realm realm1: roles backend, frontend, user; authorizers: static, dynamic" in summary


def test_the_translation_keeps_the_crossbar_credentials():
    """Each Crossbar ticket verifies against the scrypt hash the Wampgate side stores for its authid, and the salted
    WAMP-CRA user's key, salt and parameters are carried over unchanged."""
    side_by_side = section(MIGRATION, "A whole config, side by side")
    crossbar, = (json.loads(body) for body in blocks(side_by_side, "json"))
    wampgate = tomllib.loads(blocks(side_by_side, "toml")[0])
    web, backend = crossbar["workers"][0]["transports"]
    tickets = web["paths"]["ws"]["auth"]["ticket"]["principals"]
    hashes = {p["authid"]: p for p in wampgate["listeners"][0]["auth"]["ticket"]["principals"]}
    assert set(tickets) == set(hashes)
    for authid, principal in tickets.items():
        assert hashes[authid]["role"] == principal["role"]
        assert verify_secret(principal["ticket"], hashes[authid]["secret_hash"]), authid
    user = backend["auth"]["wampcra"]["users"]["backend"]
    cra, = wampgate["listeners"][1]["auth"]["wampcra"]["principals"]
    assert (cra["derived_key"], cra["salt"], cra["iterations"], cra["keylen"], cra["role"]) == (
        user["secret"], user["salt"], user["iterations"], user["keylen"], user["role"])


def test_the_backend_snippet_logs_in_with_the_translated_key():
    """The password the backend component of "Components and backends" logs in with derives (as the client does from
    the challenge) to the WAMP-CRA key the translated config stores for `backend`."""
    snippet, = blocks(section(MIGRATION, "Components and backends"), "python")
    authid, password = re.search(r'"wampcra": \{"authid": "(\w+)", "secret": "([^"]+)"\}', snippet).groups()
    cra, = tomllib.loads(blocks(section(MIGRATION, "A whole config, side by side"), "toml")[0])[
        "listeners"][1]["auth"]["wampcra"]["principals"]
    assert authid == cra["authid"]
    assert derive_key(password, cra["salt"], cra["iterations"], cra["keylen"]).decode() == cra["derived_key"]


def test_the_converter_agrees_with_the_hand_translation(tmp_path):
    """`import-crossbar` on the Crossbar side of "A whole config, side by side" gives the same listeners (endpoints,
    transports, serializers, WebSocket options, principals with tickets that verify), roles and permissions as the
    Wampgate side; it lists the role's authorizer and the component as not converted."""
    from wampgate.crossbar.convert import convert
    from wampgate.passwords import hash_secret

    side_by_side = section(MIGRATION, "A whole config, side by side")
    crossbar, = (json.loads(body) for body in blocks(side_by_side, "json"))
    by_hand = tomllib.loads(blocks(side_by_side, "toml")[0])
    (tmp_path / "web").mkdir()
    (tmp_path / ".crossbar").mkdir()
    done = convert(crossbar, tmp_path / ".crossbar" / "config.json", hash_secret=hash_secret)
    converted = tomllib.loads(done.toml)
    for ours, theirs in zip(converted["listeners"], by_hand["listeners"], strict=True):
        for key in ("endpoint", "transports", "serializers"):
            assert ours[key] == theirs[key], key
        for key in ("path", "allowed_origins", "auto_ping_interval", "auto_ping_timeout"):
            assert ours.get("websocket", {}).get(key) == theirs.get("websocket", {}).get(key), key
    tickets = converted["listeners"][0]["auth"]["ticket"]["principals"]
    assert [(p["authid"], p["role"]) for p in tickets] == [("joe", "frontend"), ("alice", "user")]
    assert verify_secret("joe-ticket", tickets[0]["secret_hash"])
    assert converted["listeners"][1]["auth"]["wampcra"] == by_hand["listeners"][1]["auth"]["wampcra"]
    assert converted["realms"][0]["roles"] == by_hand["realms"][0]["roles"]
    assert any(note.startswith("workers[0].realms[0].roles[2].authorizer:") for note in done.notes)
    assert any(note.startswith("workers[0].components:") for note in done.notes)
