"""`${NAME}` and `${NAME:-default}` in the config's string values: secrets and per-host values can come from the
environment (a systemd `EnvironmentFile=`, a container's variables) instead of the file.

Substitution runs on the parsed TOML, in string values only (never in keys, never in numbers or booleans), so a
variable can change a value but never the file's structure. Text taken from a variable is not scanned again. `$${`
writes a literal `${`. A variable that is unset (or set to "") takes the default after `:-`; unset without a default
is a problem naming the key and the variable, never the key's value: the value may be a secret.

Problem lines show no value of a key that looks secret, but some name a file the value led to ("cannot read
'/etc/wampgate/...'"); so the text a variable put into such a key is also remembered (`Substitution.secrets`), and
ConfigError replaces it in every line: an operator who puts the secret itself where a file name belongs
(`secret_file = "${JWT_SECRET}"`) does not see it printed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from wampgate.configreader import looks_secret

_REFERENCE = re.compile(r"\$\$\{|\$\{(?P<body>[^}]*)\}|\$\{")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SYNTAX = "${NAME} or ${NAME:-default} (NAME: letters, digits and _; $${ for a literal ${)"


class Substitution(NamedTuple):
    raw: Any  # the parsed TOML with the references filled
    problems: dict[str, str]  # key path -> why its reference could not be filled
    secrets: dict[str, str]  # text a variable put into a key that looks secret -> the variable's name


def substitute(raw: Any, environ: Mapping[str, str]) -> Substitution:
    """`raw` (parsed TOML) with the environment substituted into every string value, the problems found by key path,
    and the secrets it brought. A string with a problem is kept as written, so the reader can go on; the caller drops
    the reader's follow-on complaints about that key (`problems` names the real cause)."""
    result = Substitution(None, {}, {})
    return result._replace(raw=_walk(raw, environ, "", result))


def _walk(value: Any, environ: Mapping[str, str], path: str, result: Substitution) -> Any:
    if isinstance(value, dict):
        return {key: _walk(item, environ, f"{path}.{key}" if path else key, result) for key, item in value.items()}
    if isinstance(value, list):
        return [_walk(item, environ, f"{path}[{index}]", result) for index, item in enumerate(value)]
    if isinstance(value, str) and "$" in value:
        secret = looks_secret(path)
        text, problem = expand(value, environ, show_text=not secret, taken=result.secrets if secret else None)
        if problem is not None:
            result.problems[path] = problem
            return value
        return text
    return value


def expand(text: str, environ: Mapping[str, str], *, show_text: bool = True,
           taken: dict[str, str] | None = None) -> tuple[str, str | None]:
    """`text` with its references replaced, or (text, the first problem) when one cannot be. A malformed reference
    is quoted in the problem only when `show_text` (its key does not look secret). Each non-empty value taken from
    the environment is recorded in `taken` (value -> variable name), when given."""
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
        elif taken is not None and found:
            taken[found] = name
        pieces.append(found)
    pieces.append(text[end:])
    return "".join(pieces), None


def _bounded(body: str) -> str:
    """What the operator wrote between the braces, bounded so a huge value cannot flood the error output."""
    return body if len(body) <= 40 else body[:37] + "..."
