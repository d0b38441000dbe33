"""Writing the converted config: TOML values and tables, in the order the reader expects (a table's keys before
its sub-tables), with comments. No TOML writer is a dependency; the subset needed here is small."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


def value(item: Any) -> str:
    """A Python value as a TOML inline value."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int | float):
        return repr(item)
    if isinstance(item, str):
        return json.dumps(item, ensure_ascii=False)  # JSON's escapes are TOML basic-string escapes
    if isinstance(item, list | tuple):
        return "[" + ", ".join(value(v) for v in item) + "]"
    raise TypeError(f"no TOML form for {type(item).__name__}")


@dataclass
class Table:
    """One `[header]` or `[[header]]` block: keys (each with an optional trailing comment), then child blocks."""

    header: str
    array: bool = False
    comment: str = ""  # a comment line above the header
    keys: list[tuple[str, Any, str]] = field(default_factory=list)
    children: list[Table] = field(default_factory=list)

    def set(self, key: str, item: Any, comment: str = "") -> None:
        self.keys.append((key, item, comment))

    def child(self, name: str, *, array: bool = False, comment: str = "") -> Table:
        table = Table(f"{self.header}.{name}", array, comment)
        self.children.append(table)
        return table

    def lines(self) -> list[str]:
        out = [""]
        if self.comment:
            out += [f"# {line}" for line in self.comment.splitlines()]
        out.append(f"[[{self.header}]]" if self.array else f"[{self.header}]")
        for key, item, comment in self.keys:
            out.append(f"{key} = {value(item)}" + (f"  # {comment}" if comment else ""))
        for child in self.children:
            out += child.lines()
        return out


def document(title: list[str], notes: list[str], tables: list[Table]) -> str:
    """The whole file: the title and the notes as comments, then the tables."""
    out = [f"# {line}" for line in title]
    if notes:
        out += ["#", "# Not converted (each line: the Crossbar key, and why):"]
        out += [f"#   - {note}" for note in notes]
    for table in tables:
        out += table.lines()
    return "\n".join(out) + "\n"
