"""Every ```toml block in the Markdown documentation parses as TOML: an operator pastes them into a config file, so a
block that is not valid TOML (a `\\:` inside double quotes, a stray `...`) would fail there instead."""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SKIPPED = {".venv", "node_modules", "build", ".git", ".pytest_cache"}
FENCE = re.compile(r"^```toml[ \t]*\n(?P<body>.*?)^```[ \t]*$", re.DOTALL | re.MULTILINE)


def markdown_files() -> list[Path]:
    """README.md, docs/ and every other Markdown file of the repository; installed packages are not walked."""
    found = []
    for directory, subdirectories, files in os.walk(REPO):
        subdirectories[:] = [name for name in subdirectories if name not in SKIPPED]
        found.extend(Path(directory) / name for name in files if name.endswith(".md"))
    return sorted(found)


def toml_blocks() -> list[pytest.param]:
    blocks = []
    for path in markdown_files():
        text = path.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            name = f"{path.relative_to(REPO)}:{line}"
            blocks.append(pytest.param(match.group("body"), id=name))
    return blocks


def test_the_docs_have_toml_blocks():
    """The extraction finds the docs' blocks (an empty list would make the test below vacuous)."""
    names = {block.id.split(":")[0] for block in toml_blocks()}
    assert {"docs/configuration.md", "docs/writing-plugins.md", "docs/deploying.md"} <= names


@pytest.mark.parametrize("body", toml_blocks())
def test_every_toml_block_parses(body):
    """The block is valid TOML."""
    tomllib.loads(body)


def test_a_broken_block_is_caught():
    """The extraction and parse catch the old README's IPv6 endpoint example, in double quotes."""
    text = '```toml\n[[listeners]]\nendpoint = "tcp6:8080:interface=\\:\\:1"\n```\n'
    (match,) = FENCE.finditer(text)
    with pytest.raises(tomllib.TOMLDecodeError):
        tomllib.loads(match.group("body"))
