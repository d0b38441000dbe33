"""Putting together the problem lines of one config check: the router's own tables, the environment substitution and
the plugin tables, in the order of the file, without follow-on lines that only repeat a cause already reported.

Every problem line starts with the key path it is about (`listeners[0].auth.jwt.public_key = ...: ...` or
`realms[1].roles: ...`); the path is what places a line in the file and what tells a follow-on from a cause.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any

# Bare TOML key names joined by "." and array indexes; a quoted key holding "." or ":" (a plugin's "pkg.mod:Object")
# ends the path early, which only makes the line's place in the file less exact.
_PATH = re.compile(r"[A-Za-z0-9_\-]+(?:\[\d+\])*(?:\.[A-Za-z0-9_\-]+(?:\[\d+\])*)*")
_STEP = re.compile(r"\.?([^.\[\]]+)|\[(\d+)\]")
_LAST = float("inf")
_UNKNOWN_KEY = re.compile(r": unknown key(;|$)")


def every_problem(raw: Mapping[str, Any], own: list[str], env_problems: Mapping[str, str],
                  plugin_lines: Callable[[], list[str]] | None) -> list[str]:
    """The lines of one check, in file order: the router's own (`own`), the environment's (`env_problems`, by key
    path) and the plugin tables' (`plugin_lines()`, when given). A complaint about a value whose `${NAME}` could not be
    filled is dropped (the environment line is the cause), and so is a plugin line about a key at or inside one the
    router already found wrong (a table that is not a table, a plugin that is not installed)."""
    found = [line for line in own if not _unfilled(line, env_problems)]
    found = merged_in_file_order(found, (f"{path}: {problem}" for path, problem in env_problems.items()), raw)
    if plugin_lines is not None:
        causes = [problem_path(line) for line in found]
        found = merged_in_file_order(found, [line for line in plugin_lines() if not _unfilled(line, env_problems)
                                             and not is_under(problem_path(line), causes)], raw)
    return found


def _unfilled(line: str, env_problems: Mapping[str, str]) -> bool:
    return judges_value(line) and holds(problem_path(line), env_problems)


def problem_path(line: str) -> str:
    """The key path a problem line is about: what precedes its ` = value` or `: problem`."""
    match = _PATH.match(line)
    return match.group(0) if match else ""


def file_position(raw: Mapping[str, Any], path: str) -> tuple[float, ...]:
    """Where the key at `path` is written in the file (tomllib keeps the file's order): the index of each step among
    its siblings. A key the file does not have (a missing key) comes after its table's keys."""
    position: list[float] = []
    node: Any = raw
    for name, index in _STEP.findall(path):
        if index:
            items = node if isinstance(node, list) else []
            step = int(index)
            if step >= len(items):
                return (*position, len(items))
            position.append(step)
            node = items[step]
        else:
            keys = list(node) if isinstance(node, dict) else []
            if name not in keys:
                return (*position, len(keys))
            position.append(keys.index(name))
            node = node[name]
    return tuple(position) if path else (_LAST,)


def merged_in_file_order(first: list[str], later: Iterable[str], raw: Mapping[str, Any]) -> list[str]:
    """`first` as it is, with each line of `later` inserted before the first line of `first` that the file has further
    down, so the operator can fix them top to bottom."""
    merged = list(first)
    for line in later:
        where = file_position(raw, problem_path(line))
        at = next((i for i, other in enumerate(merged) if file_position(raw, problem_path(other)) > where), len(merged))
        merged.insert(at, line)
    return merged


def is_under(path: str, causes: Iterable[str]) -> bool:
    """`path` is one of `causes` or lies inside one (`a.b` is inside `a` and `a[0]`'s table is inside `a`)."""
    return any(path == cause or path.startswith((f"{cause}.", f"{cause}[")) for cause in causes)


def judges_value(line: str) -> bool:
    """The line complains about a key's value (so an unfilled `${NAME}` there may be what it saw), not that the key
    is unknown, which holds whatever the value."""
    return _UNKNOWN_KEY.search(line) is None


def holds(path: str, causes: Iterable[str]) -> bool:
    """`path` is one of `causes` or an array holding one: a reader judging the whole array `a` may complain about what
    `a[1]` caused."""
    return any(cause == path or cause.startswith(f"{path}[") for cause in causes)
