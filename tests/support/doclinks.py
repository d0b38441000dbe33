"""The relative links of Markdown files, and whether each reaches a file and a heading that exist.

MkDocs checks the links between the site's own pages; README.md lies outside docs/ and is read on the code host, so
its links are checked here, with the code host's heading anchors. A page of the site is read both ways (on the site
and as a file in the repository), so its anchors must exist under both rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from markdown.extensions.toc import slugify

_FENCE = re.compile(r"^\s*(```|~~~)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_PARAGRAPH_CODE_SPAN = re.compile(r"(`+)((?:(?!\n[ \t]*\n).)+?)\1", re.DOTALL)
_INLINE_LINK = re.compile(r"!?\[(?:[^\]\n]|\n(?![ \t]*\n))*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_DEFINITION = re.compile(r"^\s{0,3}\[[^\]\n]+\]:[ \t]*<?(\S+?)>?(?:[ \t]|$)", re.MULTILINE)
_HEADING = re.compile(r"^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_INLINE_MARKUP = re.compile(r"!?\[([^\]]*)\]\([^)]*\)|[*`]")


@dataclass(frozen=True)
class Link:
    source: Path
    line: int
    target: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: {self.target}"


def prose_lines(text: str) -> Iterator[tuple[int, str]]:
    """(line number, line) for every line outside fenced code blocks, with inline code spans blanked out (a `[x](y)`
    inside backticks is an example, not a link)."""
    fence = None
    for number, line in enumerate(text.splitlines(), start=1):
        match = _FENCE.match(line)
        if match and (fence is None or match.group(1) == fence):
            fence = match.group(1) if fence is None else None
            continue
        if fence is None:
            yield number, _CODE_SPAN.sub(lambda m: m.group(1) + "x" * len(m.group(2)) + m.group(1), line)


def prose_text(text: str) -> str:
    """The text with fenced code blocks and code spans blanked out, line for line (so a match's line number is
    its line in the file). A code span, or a link's text, may run over a line break, as Markdown allows within a
    paragraph; neither runs past a blank line."""
    lines = []
    fence = None
    for line in text.splitlines():
        match = _FENCE.match(line)
        if match and (fence is None or match.group(1) == fence):
            fence = match.group(1) if fence is None else None
            lines.append("")
            continue
        lines.append(line if fence is None else "")
    return _PARAGRAPH_CODE_SPAN.sub(lambda m: m.group(1) + re.sub(r"[^\n]", "x", m.group(2)) + m.group(1),
                                    "\n".join(lines))


def relative_links(path: Path) -> list[Link]:
    """Every link of the file that does not name a scheme (http:, mailto:) or a host (//)."""
    text = prose_text(path.read_text(encoding="utf-8"))
    found = [(match.start(), match.group(1)) for match in _INLINE_LINK.finditer(text)]
    found += [(match.start(), match.group(1)) for match in _DEFINITION.finditer(text)]
    return [Link(path, text.count("\n", 0, start) + 1, target) for start, target in sorted(found)
            if not _SCHEME.match(target) and not target.startswith("//")]


def headings(path: Path) -> list[str]:
    """The text of every heading outside fenced code, as a reader sees it (link targets and markup dropped)."""
    found = []
    fence = None
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _FENCE.match(line)
        if match and (fence is None or match.group(1) == fence):
            fence = match.group(1) if fence is None else None
            continue
        heading = _HEADING.match(line) if fence is None else None
        if heading:
            found.append(_INLINE_MARKUP.sub(lambda m: m.group(1) or "", heading.group(2)))
    return found


def github_anchor(heading: str) -> str:
    """The anchor the code host gives a heading: lower case, punctuation dropped, each space a hyphen."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def mkdocs_anchor(heading: str) -> str:
    """The anchor MkDocs (Python-Markdown's toc extension) gives a heading."""
    return slugify(heading, "-")


def anchors(path: Path, rules: tuple[Callable[[str], str], ...]) -> set[str]:
    """The anchors that exist under every rule at once (a repeated heading's numbered anchors differ between the
    rules, so they are left out: link to a heading that is unique in its file)."""
    names = headings(path)
    unique = [name for name in names if names.count(name) == 1]
    return set.intersection(*({rule(name) for name in unique} for rule in rules))


def broken(link: Link, rules: tuple[Callable[[str], str], ...]) -> str | None:
    """Why `link` leads nowhere, or None: its file must exist, and its `#anchor` be a heading of that file."""
    path_part, _, anchor = link.target.partition("#")
    target = (link.source.parent / path_part).resolve() if path_part else link.source
    if not target.exists():
        return f"{link}: no such file {target}"
    if anchor and target.suffix == ".md" and anchor not in anchors(target, rules):
        return f"{link}: {target.name} has no heading with the anchor #{anchor}"
    return None
