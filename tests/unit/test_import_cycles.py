"""No import cycles among the router's modules (DESIGN.md house rules; issue 13: a core you can read in one sitting).

A cycle means neither module can be read, tested or replaced without the other, and it hides behind a function-level
import ("service imports us") or a TYPE_CHECKING guard. So the check is static (ast) and counts every import
statement at any depth: module level, inside functions and try blocks, and under `if TYPE_CHECKING:`.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "router"  # the folder of the `wampgate` package (setup.cfg package_dir)


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if parts[0] == PACKAGE:
        parts[0] = "wampgate"
    return ".".join(parts)


def package_modules(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """Every module of `package` by dotted name (a package by its own name, for its __init__.py)."""
    return {module_name(path, root): path for path in sorted((root / package).rglob("*.py"))}


def imported_names(source: str, module: str, is_package: bool = False) -> set[str]:
    """Every dotted name `source` (the text of `module`) imports, at any depth; `from a import b` gives both `a` and
    `a.b` (b may be a module or a name in a), relative imports resolved against `module`."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node.module, node.level, module, is_package)
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return names


def _absolute(name: str | None, level: int, module: str, is_package: bool) -> str:
    if not level:
        return name or ""
    parts = module.split(".")
    anchor = parts if is_package else parts[:-1]
    anchor = anchor[: len(anchor) - (level - 1)]
    return ".".join(anchor + ([name] if name else []))


def import_graph(modules: Mapping[str, Path]) -> dict[str, set[str]]:
    """module -> the modules of the same package it imports (a name that is not a module counts as its module)."""
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = set()
        for name in imported_names(path.read_text(encoding="utf-8"), module, path.name == "__init__.py"):
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name and name != module and name != PACKAGE:
                targets.add(name)
        graph[module] = targets
    return graph


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted; sorted by first member."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_the_walk_covers_the_router():
    """The graph really holds the router: the core, the glue and the config modules, with their known imports."""
    graph = import_graph(package_modules())
    assert {"wampgate.config", "wampgate.core.realm", "wampgate.core.meta", "wampgate.tx.service",
            "wampgate.tx.router_service"} <= set(graph)
    assert "wampgate.core.broker" in graph["wampgate.core.realm"]
    assert "wampgate.config" in graph["wampgate.tx.service"]


def test_no_import_cycles_among_router_modules():
    """No two router modules import each other, directly or through others, at any depth of the source."""
    assert cycles(import_graph(package_modules())) == []


@pytest.mark.parametrize("source, expected", [
    ("import wampgate.core.uri", {"wampgate.core.uri"}),
    ("from wampgate.core import uri", {"wampgate.core", "wampgate.core.uri"}),
    ("def build():\n    from wampgate.tx.service import flow_plugins\n",
     {"wampgate.tx.service", "wampgate.tx.service.flow_plugins"}),
    ("if TYPE_CHECKING:\n    from wampgate.core.realm import Realm\n", {"wampgate.core.realm", "wampgate.core.realm.Realm"}),
    ("try:\n    import wampgate.loader\nexcept ImportError:\n    pass\n", {"wampgate.loader"}),
    ("from . import errors", {"wampgate.core", "wampgate.core.errors"}),
    ("from .effects import Send", {"wampgate.core.effects", "wampgate.core.effects.Send"}),
    ("from ..config import load", {"wampgate.config", "wampgate.config.load"}),
])
def test_every_form_of_import_is_seen(source, expected):
    """Module-level, function-level, guarded and relative imports all count (as written in wampgate.core.meta)."""
    assert imported_names(source, "wampgate.core.meta") == expected


def test_cycles_are_found_through_other_modules():
    """A cycle through a third module and a direct one are both reported; a chain without a way back is not."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"e"}, "e": {"d"}, "f": {"a"}, "g": set()}
    assert cycles(graph) == [["a", "b", "c"], ["d", "e"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
