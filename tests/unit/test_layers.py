"""The design's "never" arrows, enforced for every import in router/, plugins/ and examples/.

The parts: the sans-I/O core (`router/core/`), the Twisted glue (`router/tx/`), the model (the frozen values, the
contracts, URIs, buckets, the plugin config reader: what the core and plugins share), the public plugin API
(`router/plugin.py`, part of the model), the config (`router/config.py`, `router/loader.py`, `router/endpoints.py`),
the plugins (`plugins/`, the shipped example plugin and the docs' test authenticator) and the router's other
top-level helpers. The arrows below must never exist:

- the core imports no Twisted (nor txaio or asyncio), no I/O, clock, randomness or threads (DESIGN.md rule 1: they
  are passed in), no glue and no plugins;
- plugins import nothing of the router but `wampgate.plugin`: in particular no core, no glue, no config;
- the model imports no core, no glue and no plugins.

The check is static (ast): imports at any depth (functions, try blocks, TYPE_CHECKING guards), relative imports and
literal `importlib.import_module` / `__import__` calls, so it also covers code no test runs.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("router", "plugins", "examples", "tests/support/authplugin")
SKIPPED_DIRS = frozenset({"build", "node_modules", "__pycache__", ".venv"})
# Directories whose children are installable packages, imported by their own name (not as `examples.x.y`).
PACKAGE_ROOTS = ("examples/quota_authorizer", "tests/support/authplugin")

# The folders installed under another import name (setup.cfg package_dir).
FOLDER_PACKAGES = {"router": ["wampgate"], "plugins": ["wampgate", "plugins"]}

# Module prefix -> part; the longest matching prefix wins. Router modules not listed are "helpers".
PARTS = {
    "wampgate.core": "core",
    "wampgate.tx": "glue",
    "wampgate.model": "model",
    "wampgate.interfaces": "model",
    "wampgate.uri": "model",
    "wampgate.buckets": "model",
    "wampgate.plugintable": "model",
    "wampgate.shared": "model",
    "wampgate.plugin": "api",
    "wampgate.config": "config",
    "wampgate.loader": "config",
    "wampgate.endpoints": "config",
    "wampgate": "helpers",
    "wampgate.plugins": "plugins",
    "quota_authorizer": "plugins",
    "wampgate_testtoken": "plugins",
    "examples": "apps",
    # Not ours: event loops, and what reaches I/O, the clock, randomness or threads.
    "twisted": "twisted",
    "txaio": "twisted",
    "asyncio": "twisted",
    "autobahn.twisted": "twisted",
    "autobahn.asyncio": "twisted",
    "socket": "io",
    "time": "io",
    "random": "io",
    "threading": "io",
    "secrets": "io",
}
ROUTER_PARTS = frozenset({"core", "glue", "model", "api", "config", "helpers"})
MODEL = frozenset({"model", "api"})


@dataclass(frozen=True)
class Arrow:
    """`sources` never import `targets`."""

    name: str
    sources: frozenset[str]
    targets: frozenset[str]
    why: str


def _arrow(name: str, sources: set[str] | frozenset[str], targets: set[str] | frozenset[str], why: str) -> Arrow:
    return Arrow(name, frozenset(sources), frozenset(targets), why)


NEVER = [
    _arrow("core->twisted", {"core"}, {"twisted"}, "the core is sans-I/O: the glue drives it, it runs no reactor"),
    _arrow("core->io", {"core"}, {"io"}, "the clock, ids and randomness are passed in (rule 7)"),
    _arrow("core->glue", {"core"}, {"glue"}, "the glue calls the core, never the other way"),
    _arrow("core->plugins", {"core"}, {"plugins"}, "plugins are reached through their contracts only"),
    _arrow("plugins->core", {"plugins"}, {"core"}, "plugins get frozen values, never the router's core"),
    _arrow("plugins->glue", {"plugins"}, {"glue"}, "plugins never see sessions or transports"),
    _arrow("plugins->config", {"plugins"}, {"config"}, "plugins read their own table, not the router's config"),
    _arrow("plugins->router-but-plugin-api", {"plugins"}, ROUTER_PARTS - {"api"},
           "wampgate.plugin is the whole public API"),
    _arrow("model->core", MODEL, {"core"}, "the model is what the core and plugins share; it depends on neither"),
    _arrow("model->glue", MODEL, {"glue"}, "the model knows nothing of Twisted sessions"),
    _arrow("model->plugins", MODEL, {"plugins"}, "the contracts do not know their implementations"),
]


def part(module: str) -> str | None:
    """The part `module` belongs to, by its longest listed prefix; None for anything else (the stdlib, autobahn.wamp,
    zope, ...)."""
    name = module
    while name:
        if name in PARTS:
            return PARTS[name]
        name = name.rpartition(".")[0]
    return None


@dataclass(frozen=True)
class Edge:
    where: str  # path:line
    module: str  # the importing module
    imported: str


def module_name(path: Path) -> str:
    """The dotted name a file is imported as."""
    relative = path.relative_to(ROOT)
    for root in PACKAGE_ROOTS:
        if relative.is_relative_to(root):
            relative = relative.relative_to(root)
    parts = list(relative.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    parts[:1] = FOLDER_PACKAGES.get(parts[0], parts[:1])
    return ".".join(parts)


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The absolute module a `from` import names, resolving leading dots against the importing module."""
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in {"__import__", "import_module"}
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def imported_names(source: str, module: str, *, is_package: bool = False, filename: str = "<source>"
                   ) -> Iterator[tuple[int, str]]:
    """(line, module) for every import in `source` at any depth. `from X import Y` yields X.Y, which is the module
    when Y is one (`from wampgate import plugin`) and names a member of X otherwise: either way it has X's part."""
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            names = [base if alias.name == "*" else f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args:
            first = node.args[0]
            names = [first.value] if isinstance(first, ast.Constant) and isinstance(first.value, str) else []
        else:
            continue
        for name in names:
            yield node.lineno, name


def source_files() -> list[Path]:
    files = []
    for directory in SOURCE_DIRS:
        for path in sorted((ROOT / directory).rglob("*.py")):
            if not SKIPPED_DIRS.intersection(path.relative_to(ROOT).parts):
                files.append(path)
    return files


def edges_of(path: Path) -> list[Edge]:
    module = module_name(path)
    names = imported_names(path.read_text(encoding="utf-8"), module, is_package=path.name == "__init__.py",
                           filename=str(path))
    return [Edge(f"{path.relative_to(ROOT)}:{line}", module, name) for line, name in names]


@pytest.fixture(scope="module")
def import_edges() -> list[Edge]:
    return [edge for path in source_files() for edge in edges_of(path)]


def violations(edges: list[Edge], arrow: Arrow) -> list[str]:
    return [f"{edge.where}: {edge.module} imports {edge.imported}" for edge in edges
            if part(edge.module) in arrow.sources and part(edge.imported) in arrow.targets]


@pytest.mark.parametrize("arrow", NEVER, ids=lambda arrow: arrow.name)
def test_never_arrow(import_edges, arrow):
    """No module of the arrow's source parts imports a module of its target parts, at any depth (the design's
    "never" arrows: core -> Twisted/I-O/glue/plugins, plugins -> anything of the router but wampgate.plugin,
    model -> core/glue/plugins)."""
    found = violations(import_edges, arrow)
    assert not found, "\n".join([f"{arrow.name}: {arrow.why}", *found])


def test_the_walk_covers_every_part(import_edges):
    """The walk really reads every part: known modules of each are among the importers, so a passing arrow test is
    not an empty walk (a moved directory or a wrong root would otherwise pass silently)."""
    importers = {edge.module for edge in import_edges}
    assert {"wampgate.core.broker", "wampgate.core.realm", "wampgate.tx.session", "wampgate.model", "wampgate.interfaces",
            "wampgate.uri", "wampgate.plugin", "wampgate.config", "wampgate.plugins.authz.static", "wampgate.plugins.flow.limits",
            "wampgate.plugins.authn.tls", "quota_authorizer", "wampgate_testtoken"} <= importers
    assert {part(module) for module in importers} >= {"core", "glue", "model", "api", "config", "plugins"}


@pytest.mark.parametrize("module", ["wampgate.core.uri", "wampgate.core.buckets"])
def test_moved_modules_are_gone_from_the_core(module):
    """URI matching and buckets live beside the model (wampgate.uri, wampgate.buckets); no shim is left in the core that
    a plugin could still import."""
    path = ROOT / (module.replace(".", "/") + ".py")
    assert not path.exists()


# The checker itself: each of these, in the given module, breaks an arrow.
BROKEN = [
    ("wampgate.core.x", "import twisted"),
    ("wampgate.core.x", "import time"),
    ("wampgate.core.x", "import os, socket"),
    ("wampgate.core.x", "import random as r"),
    ("wampgate.core.x", "import threading"),
    ("wampgate.core.x", "import asyncio.events"),
    ("wampgate.core.x", "import txaio"),
    ("wampgate.core.x", "import secrets"),
    ("wampgate.core.x", "from twisted.internet import reactor"),
    ("wampgate.core.x", "from time import monotonic"),
    ("wampgate.core.x", "from autobahn.twisted.websocket import WampWebSocketServerFactory"),
    ("wampgate.core.x", "from autobahn import twisted"),
    ("wampgate.core.x", "def f():\n    import time\n"),
    ("wampgate.core.x", "try:\n    import asyncio\nexcept ImportError:\n    pass\n"),
    ("wampgate.core.x", "if TYPE_CHECKING:\n    from twisted.internet.interfaces import IReactorTime\n"),
    ("wampgate.core.x", "__import__('socket')"),
    ("wampgate.core.x", "importlib.import_module('random')"),
    ("wampgate.core.x", "from wampgate.tx import session"),
    ("wampgate.core.x", "from ..tx.session import RouterSession"),
    ("wampgate.core.x", "from wampgate.plugins.flow.limits import LimitsFlowControl"),
    ("wampgate.plugins.flow.x", "from wampgate.core import errors"),
    ("wampgate.plugins.flow.x", "from wampgate.buckets import TokenBucket"),
    ("wampgate.plugins.authz.x", "def f():\n    from wampgate.config import RealmConfig\n"),
    ("wampgate.plugins.authz.x", "if TYPE_CHECKING:\n    from wampgate.config import RealmConfig\n"),
    ("wampgate.plugins.authn.x", "from wampgate import passwords"),
    ("wampgate.plugins.authn.x", "import wampgate.model"),
    ("wampgate.plugins.authn.x", "importlib.import_module('wampgate.tx.wire')"),
    ("quota_authorizer", "from wampgate.interfaces import IAuthorizer"),
    ("wampgate.model", "from wampgate.core.peer import Peer"),
    ("wampgate.plugin", "from wampgate.tx.session import RouterSession"),
    ("wampgate.uri", "from wampgate.plugins.authz.static import StaticAuthorizer"),
]


@pytest.mark.parametrize("module,source", BROKEN)
def test_checker_catches_broken_arrows(module, source):
    """Every form of import that breaks an arrow is caught: plain, from, relative, nested in a function, a try block
    or a TYPE_CHECKING guard, and literal dynamic imports. So a passing arrow test means something."""
    edges = [Edge("<source>", module, name) for _, name in imported_names(source, module)]
    assert any(violations(edges, arrow) for arrow in NEVER)


ALLOWED = [
    ("wampgate.core.x", "import re, unicodedata"),
    ("wampgate.core.x", "from autobahn.wamp import message"),
    ("wampgate.core.x", "from collections.abc import Callable"),
    ("wampgate.core.x", "from . import errors"),
    ("wampgate.core.x", "from .time import x"),
    ("wampgate.core.x", "import timeit_free_name"),
    ("wampgate.core.x", "import datetime"),
    ("wampgate.core.x", "from wampgate.uri import UriIndex"),
    ("wampgate.core.x", "from wampgate.buckets import TokenBucket"),
    ("wampgate.plugins.flow.x", "from wampgate.plugin import FlowControl, Verdict"),
    ("wampgate.plugins.flow.x", "from wampgate import plugin"),
    ("wampgate.plugins.flow.x", "from wampgate.plugins.flow.meters import Meter"),
    ("wampgate.plugins.authn.x", "from .principals import read_principals"),
    ("wampgate.plugins.authn.x", "from twisted.internet import threads"),
    ("wampgate.plugin", "from wampgate.uri import UriPolicy"),
    ("wampgate.tx.x", "from wampgate.core import errors"),
]


@pytest.mark.parametrize("module,source", ALLOWED)
def test_checker_allows_what_the_design_allows(module, source):
    """Imports the design allows are not flagged: the stdlib, autobahn.wamp, a part's own modules (relative ones
    too), the core using the model, plugins using wampgate.plugin, their own package and Twisted, the glue using
    the core."""
    edges = [Edge("<source>", module, name) for _, name in imported_names(source, module)]
    assert [v for arrow in NEVER for v in violations(edges, arrow)] == []
