"""The configuration key tables of the documentation site's reference (docs/configuration.md), rendered from the
declarations in router/configtables.py (router/settings.py), so the reference cannot drift from the defaults and
bounds the router enforces.

In each document a generated table sits between `<!-- generated: NAME -->` and `<!-- end -->`, NAME being a table
of TABLES; tests/unit/test_configdoc.py fails when a block differs from what the declarations render. A key's
description may link to a section by its anchor alone (`[Slow consumers](#slow-consumers)`: the declarations do not
know which page they are read on); DOCUMENTS says which page holds each such section, so every table links to a
section that exists where it is read.

    python -m wampgate.configdoc                     print every table, with its markers
    python -m wampgate.configdoc --write [FILE ...]  re-render the generated blocks in place (default: DOCUMENTS)
    python -m wampgate.configdoc --check [FILE ...]  exit status 1 when a block is out of date (default: DOCUMENTS)
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping
from pathlib import Path

from wampgate.configpaths import BridgeConfig, WebhookPath
from wampgate.configtables import AdminConfig, AuthFailuresConfig, ClusterConfig, LimitsConfig, WebSocketConfig
from wampgate.settings import Key, declared_keys, value_kind

# The tables whose keys are declared with `setting`, by the name their generated block carries.
TABLES: Mapping[str, type] = {
    "limits": LimitsConfig,
    "limits.auth_failures": AuthFailuresConfig,
    "admin": AdminConfig,
    "cluster": ClusterConfig,
    "listeners.websocket": WebSocketConfig,
    "listeners.bridges": BridgeConfig,
    "listeners.paths.webhook": WebhookPath,
}
# The documents that carry the tables (paths from the repository's top), each with where the anchors that key
# descriptions link to point from it: an anchor not listed stays as it is (the document has that section itself).
DOCUMENTS: Mapping[str, Mapping[str, str]] = {
    "docs/configuration.md": {
        "#slow-consumers": "flow-control.md#slow-consumers",
        "#payload-values": "flow-control.md#payload-values",
    },
}
BEGIN = "<!-- generated: {name} -->"
END = "<!-- end -->"
_BLOCK = re.compile(r"<!-- generated: (?P<name>[\w.]+) -->\n.*?<!-- end -->", re.DOTALL)
_HEADER = "| key | default | range | meaning |\n| --- | --- | --- | --- |"
_ANCHOR_LINK = re.compile(r"\[(?P<words>[^\]]+)\]\((?P<anchor>#[\w-]+)\)")


def render_table(cls: type) -> str:
    """The Markdown table of the keys `cls` declares, in declaration order."""
    return "\n".join([_HEADER] + [render_row(key) for key in declared_keys(cls)])


def render_row(key: Key) -> str:
    cells = [f"`{key.name}`", default_text(key), range_text(key), key.spec.doc]
    for cell in cells:
        if "|" in cell or "\n" in cell:
            raise ValueError(f"{key.name}: a table cell cannot hold '|' or a line break: {cell!r}")
    return "| " + " | ".join(cells) + " |"


def default_text(key: Key) -> str:
    """The default as written in TOML, with sizes in bytes also in KiB / MiB."""
    value = key.default
    if value is None:
        return "none"
    if isinstance(value, bool):
        return f"`{'true' if value else 'false'}`"
    if isinstance(value, str):
        return '`"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"`'
    if isinstance(value, tuple):
        return "`[" + ", ".join(f'"{item}"' for item in value) + "]`"
    text = f"`{value!r}`"
    if key.spec.unit == "bytes" and isinstance(value, int):
        text += _binary_size(value)
    return text


def _binary_size(size: int) -> str:
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if size >= scale and size % scale == 0:
            return f" ({size // scale} {unit})"
    return ""


def range_text(key: Key) -> str:
    """What the key allows: its declared `allowed` text, its choices, or its bounds and unit."""
    spec = key.spec
    if spec.allowed is not None:
        return spec.allowed
    if spec.choices:
        return ", ".join(f"`{choice}`" for choice in spec.choices)
    if value_kind(key.kind) in (int, float) and spec.low is not None and spec.high is not None:
        text = f"{_number(spec.low)}–{_number(spec.high)}"
        return f"{text} {spec.unit}" if spec.unit else text
    return ""


def _number(value: int | float) -> str:
    if isinstance(value, float) and not value.is_integer():
        return repr(value)
    return f"{int(value):,}"


def render_block(name: str, links: Mapping[str, str] | None = None) -> str:
    """The block of table `name`, its section links pointed where `links` says (see DOCUMENTS)."""
    table = relink(render_table(TABLES[name]), links or {})
    return f"{BEGIN.format(name=name)}\n\n{table}\n\n{END}"


def relink(table: str, links: Mapping[str, str]) -> str:
    """`table` with each link to an anchor listed in `links` pointed at its target."""

    def link(match: re.Match) -> str:
        anchor, words = match.group("anchor"), match.group("words")
        if anchor not in links:
            return match.group(0)
        return f"[{words}]({links[anchor]})"

    return _ANCHOR_LINK.sub(link, table)


def links_for(path: Path) -> Mapping[str, str]:
    """The link map of the document at `path`: the DOCUMENTS entry whose path it ends with, else none."""
    parts = path.resolve().parts
    for document, links in DOCUMENTS.items():
        document_parts = Path(document).parts
        if parts[-len(document_parts):] == document_parts:
            return links
    return {}


def rendered(text: str, links: Mapping[str, str] | None = None) -> str:
    """`text` (a document) with every generated block re-rendered from the declarations."""

    def block(match: re.Match) -> str:
        name = match.group("name")
        if name not in TABLES:
            raise ValueError(f"unknown generated table {name!r}; known: {', '.join(TABLES)}")
        return render_block(name, links)

    return _BLOCK.sub(block, text)


def block_names(text: str) -> list[str]:
    """The names of the generated blocks in `text`, in order."""
    return [match.group("name") for match in _BLOCK.finditer(text)]


def main(argv: list[str]) -> int:
    if not argv:
        print("\n\n".join(render_block(name) for name in TABLES))
        return 0
    if argv[0] not in ("--write", "--check"):
        print(__doc__.split("\n\n")[-1], file=sys.stderr)
        return 2
    status = 0
    for path in [Path(name) for name in argv[1:] or DOCUMENTS]:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as e:
            print(f"{path}: cannot read: {e.strerror or e} (run from the repository's top, or name the files)",
                  file=sys.stderr)
            status = 1
            continue
        fresh = rendered(text, links_for(path))
        if fresh == text:
            continue
        if argv[0] == "--write":
            path.write_text(fresh, encoding="utf-8")
        else:
            print(f"{path}: generated key tables are out of date; run python -m wampgate.configdoc --write {path}",
                  file=sys.stderr)
            status = 1
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
