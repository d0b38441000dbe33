"""`${NAME}` and `${NAME:-default}` in the config's string values: secrets and per-host values can come from the
environment (a systemd `EnvironmentFile=`, a container's variables) instead of the file.

Substitution runs on the parsed TOML, in string values only (never in keys, never in numbers or booleans), so a
variable can change a value but never the file's structure. Text taken from a variable is not scanned again. `$${`
writes a literal `${`. A variable that is unset (or set to "") takes the default after `:-`; unset without a default
is a problem naming the key and the variable, never the key's value: the value may be a secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from wampgate.configreader import looks_secret

_REFERENCE = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)\}|\$\{")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SYNTAX = "${NAME} or ${NAME:-default} (NAME: letters, digits and _; $${ for a literal ${)"


def substitute(raw: Any, environ: Mapping[str, str], path: str = "") -> tuple[Any, dict[str, str]]:
    """`raw` (parsed TOML) with the environment substituted into every string value, and the problems found, by key
    path. A string with a problem is kept as written, so the reader can go on; the caller drops the reader's
    follow-on complaints about that key (`problems` names the real cause)."""
    problems: dict[str, str] = {}
    return _walk(raw, environ, path, problems), problems


def _walk(value: Any, environ: Mapping[str, str], path: str, problems: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {key: _walk(item, environ, f"{path}.{key}" if path else key, problems) for key, item in value.items()}
    if isinstance(value, list):
        return [_walk(item, environ, f"{path}[{index}]", problems) for index, item in enumerate(value)]
    if isinstance(value, str) and "$" in value:
        text, problem = expand(value, environ, show_text=not looks_secret(path))
        if problem is not None:
            problems[path] = problem
            return value
        return text
    return value


def expand(text: str, environ: Mapping[str, str], *, show_text: bool = True) -> tuple[str, str | None]:
    """`text` with its references replaced, or (text, the first problem) when one cannot be. A malformed reference
    is quoted in the problem only when `show_text` (its key does not look secret)."""
    pieces: list[str] = []
    end = 0
    for match in _REFERENCE.finditer(text):
        pieces.append(text[end:match.start()])
        end = match.end()
        if match.group(0) == "$${":
            pieces.append("${")
            continue
        body = match.group("body")
        if body is None:
            return text, f"an unclosed ${{: expected {SYNTAX}"
        name, marker, default = body.partition(":-")
        if not _NAME.fullmatch(name):
            written = f"${{{_bounded(body)}}}" if show_text else "a ${...}"
            return text, f"{written} is not a variable reference: expected {SYNTAX}"
        found = environ.get(name)
        if found is None or (found == "" and marker):
            if not marker:
                return text, f"environment variable {name} is not set, and ${{{name}}} gives no default " \
                             f"(${{{name}:-default}})"
            found = default
        pieces.append(found)
    pieces.append(text[end:])
    return "".join(pieces), None


def _bounded(body: str) -> str:
    """What the operator wrote between the braces, bounded so a huge value cannot flood the error output."""
    return body if len(body) <= 40 else body[:37] + "..."
