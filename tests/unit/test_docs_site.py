"""The documentation site builds with MkDocs in strict mode (no warning of any kind), and every relative link of the
site's pages and of README.md reaches a file and a heading that exist."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.support import doclinks

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PAGES = sorted((ROOT / "docs").rglob("*.md"))
SITE_RULES = (doclinks.github_anchor, doclinks.mkdocs_anchor)  # a page is read on the site and in the repository
README_POINTER = re.compile(r"README(?:'s \w+)?,? \*([^*]+)\*")


def test_the_site_builds_in_strict_mode_without_a_warning(tmp_path):
    """`mkdocs build --strict` (what `make docs` runs) succeeds and prints no warning: every page is in the nav, and
    every link between pages and every anchor resolves (mkdocs.yml turns each of those checks into a warning)."""
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file", str(ROOT / "mkdocs.yml"),
         "--site-dir", str(site)],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    for page in PAGES:
        built = page.relative_to(ROOT / "docs").with_suffix("")
        html = site / ("index.html" if built.name == "index" else built / "index.html")
        assert html.is_file(), f"{page} was not built into {html}"


def test_every_relative_link_of_the_readme_reaches_a_file_and_a_heading():
    """README.md lies outside the site, so MkDocs does not check it: each of its relative links names an existing
    file, and each `#anchor` a heading of that file as the code host renders it."""
    links = doclinks.relative_links(README)
    assert len(links) > 10  # the README links into the site throughout; none found means the parser broke
    assert [problem for link in links if (problem := doclinks.broken(link, (doclinks.github_anchor,)))] == []


def test_every_relative_link_of_the_site_pages_works_on_the_site_and_in_the_repository():
    """A page's links reach existing files, and its anchors exist under both MkDocs' and the code host's heading
    rules, so a link works whether the page is read on the site or as a file."""
    links = [link for page in PAGES for link in doclinks.relative_links(page)]
    assert links
    assert [problem for link in links if (problem := doclinks.broken(link, SITE_RULES))] == []


def test_no_page_sends_its_reader_to_the_readme_for_a_section():
    """Every section moved from the README into the site, so no page points into the README in words (`README,
    *Slow consumers*`, `the README's section *Every bound*`): the reader follows a link to the page instead."""
    pointers = [(page.name, number, name) for page in PAGES
                for number, line in doclinks.prose_lines(page.read_text(encoding="utf-8"))
                for name in README_POINTER.findall(line)]
    assert pointers == []
    assert README_POINTER.findall("as the README's section *Every bound* says") == ["Every bound"]


def test_the_readme_links_into_every_page_of_the_site():
    """The README is the front page: it links to each top-level page of the site, so nothing that moved out of it is
    out of a reader's reach."""
    linked = {(README.parent / link.target.partition("#")[0]).resolve() for link in doclinks.relative_links(README)}
    pages = {page.resolve() for page in PAGES if page.parent == ROOT / "docs"}
    assert len(pages) > 10
    assert sorted(str(page.relative_to(ROOT)) for page in pages - linked) == []


def test_the_link_checker_finds_a_missing_file_and_a_missing_anchor(tmp_path):
    """The checker itself: a link to a missing file and one to a missing heading are reported, also when the link's
    text runs over a line break; links inside code spans (one line or two) and fenced code are examples, not links;
    a heading's anchor drops its punctuation and code marks."""
    (tmp_path / "other.md").write_text("# Other\n\n## `[limits.auth_failures]`\n", encoding="utf-8")
    page = tmp_path / "page.md"
    page.write_text(
        "# Page\n\n## Failures, lockout and timing\n\n"
        "[ok](#failures-lockout-and-timing) [ok](other.md#limitsauth_failures) [site](https://example.com/x.md)\n"
        "[gone](missing.md) [no heading](other.md#nowhere) `[example](nothing.md)`\n"
        "a link [split over\ntwo lines](split.md) and a code span `split over\n[two](lines.md)` lines\n\n"
        "```\n[fenced](nothing.md)\n```\n",
        encoding="utf-8",
    )
    links = doclinks.relative_links(page)
    assert [link.target for link in links] == [
        "#failures-lockout-and-timing", "other.md#limitsauth_failures", "missing.md", "other.md#nowhere", "split.md"]
    assert links[-1].line == 7  # where the link begins
    problems = [problem for link in links if (problem := doclinks.broken(link, SITE_RULES))]
    assert len(problems) == 3
    assert "no such file" in problems[0] and problems[0].endswith("missing.md")
    assert "has no heading with the anchor #nowhere" in problems[1]
    assert problems[2].endswith("split.md")


def test_anchors_differ_between_renderers_only_where_a_link_must_avoid_them():
    """The two heading rules agree on ordinary headings and disagree on runs of punctuation and spaces; a page's
    link must resolve under both, so such a heading cannot be linked to by a site page."""
    assert doclinks.github_anchor("The `dynamic` authorizer: decisions") == "the-dynamic-authorizer-decisions"
    assert doclinks.mkdocs_anchor("The dynamic authorizer: decisions") == "the-dynamic-authorizer-decisions"
    assert doclinks.github_anchor("Wampgate — Crossbar") == "wampgate--crossbar"
    assert doclinks.mkdocs_anchor("Wampgate — Crossbar") == "wampgate-crossbar"
