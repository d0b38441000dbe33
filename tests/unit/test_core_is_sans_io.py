"""The core is sans-I/O (DESIGN.md, house rule 1): no module under router/core/ may import an I/O, clock,
randomness or concurrency library. The check is static (ast), so it also covers code paths no test runs."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

CORE = Path(__file__).resolve().parents[2] / "router" / "core"

# Top-level modules the core must not import: DESIGN.md's list (twisted, txaio, socket, time, random) plus asyncio and
# threading, and what reaches the same resources another way: `secrets` (the id/random source is passed in,
# rule 7) and autobahn's Twisted/asyncio integrations (which pull in a reactor or an event loop).
FORBIDDEN = frozenset({"twisted", "txaio", "socket", "time", "random", "asyncio", "threading", "secrets"})
FORBIDDEN_DOTTED = ("autobahn.twisted", "autobahn.asyncio")


def _forbidden(module: str) -> bool:
    return module.split(".")[0] in FORBIDDEN or any(
        module == dotted or module.startswith(dotted + ".") for dotted in FORBIDDEN_DOTTED
    )


def forbidden_imports(source: str, filename: str = "<source>") -> list[str]:
    """Every forbidden module imported by `source`: import statements at any depth (functions, try blocks,
    TYPE_CHECKING guards) and literal `__import__` / `importlib.import_module` calls."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level or node.module is None:
                continue  # relative imports stay inside the package
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Call) and _is_dynamic_import(node.func) and node.args:
            first = node.args[0]
            names = [first.value] if isinstance(first, ast.Constant) and isinstance(first.value, str) else []
        else:
            continue
        found.extend(f"{filename}:{node.lineno}: {name}" for name in names if _forbidden(name))
    return found


def _is_dynamic_import(func: ast.expr) -> bool:
    if isinstance(func, ast.Name):
        return func.id in {"__import__", "import_module"}
    return isinstance(func, ast.Attribute) and func.attr == "import_module"


def core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def test_core_files_are_found():
    """The walk really covers the core: the package exists and its known modules are among the files checked."""
    names = {path.name for path in core_files()}
    assert {"__init__.py", "uri.py", "broker.py", "effects.py", "peer.py", "realm.py"} <= names


@pytest.mark.parametrize("path", core_files(), ids=lambda path: str(path.relative_to(CORE)))
def test_core_module_imports_no_io(path):
    """No .py file under router/core/ imports twisted, txaio, socket, time, random, asyncio, threading,
    secrets, or autobahn's Twisted/asyncio integrations, at any nesting level."""
    assert forbidden_imports(path.read_text(encoding="utf-8"), str(path)) == []


@pytest.mark.parametrize(
    "source",
    [
        "import twisted",
        "import time",
        "import os, socket",
        "import random as r",
        "import threading",
        "import asyncio.events",
        "import txaio",
        "import secrets",
        "from twisted.internet import reactor",
        "from time import monotonic",
        "from autobahn.twisted.websocket import WampWebSocketServerFactory",
        "from autobahn import twisted",
        "def f():\n    import time\n",
        "try:\n    import asyncio\nexcept ImportError:\n    pass\n",
        "if TYPE_CHECKING:\n    from twisted.internet.interfaces import IReactorTime\n",
        "__import__('socket')",
        "importlib.import_module('random')",
    ],
)
def test_checker_catches_forbidden_imports(source):
    """The checker itself flags every form of forbidden import, so a passing core test means something."""
    assert forbidden_imports(source) != []


@pytest.mark.parametrize(
    "source",
    [
        "import re, unicodedata",
        "from autobahn.wamp import message",
        "from collections.abc import Callable",
        "from . import errors",
        "from .time import x",
        "import timeit_free_name",
        "from router.core.uri import UriIndex",
        "import datetime",
    ],
)
def test_checker_allows_pure_imports(source):
    """Pure imports (standard library helpers, autobahn.wamp, the package itself) are not flagged."""
    assert forbidden_imports(source) == []
