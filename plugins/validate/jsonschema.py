"""The built-in payload validator: JSON Schema, per URI (exact or prefix) and action ("publish" or "call").

Each rule's schema applies to the document `{"args": [...], "kwargs": {...}}` built from the message (a missing
args is `[]`, a missing kwargs `{}`); the most specific rule decides: an exact rule beats every prefix, a longer
prefix a shorter one. A URI no rule covers is not checked.

Schemas are compiled once, when the plugin is built (start-up and every reload), with fastjsonschema: it turns a
schema into Python code, so checking a message costs a function call rather than a walk of the schema. Compiling
never fetches anything: a `$ref` to another document is refused at load (the schema must be self-contained).

The error a client gets names where its payload failed (`kwargs.amount`) and the rule (`type`), never a value it
sent: a property name that no schema declares (one matched by `additionalProperties` or `patternProperties`) is shown
as `*`, since it is the client's text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import fastjsonschema
from zope.interface import implementer

from wampgate.plugin import EXACT, PREFIX, IPayloadValidator, PluginContext, Table, UriPolicy

ACTIONS = ("publish", "call")
MATCHES = (EXACT, PREFIX)
MAX_RULES = 1000  # rules are operator-written; this only stops a generated table from growing without bound
MAX_SCHEMA_BYTES = 1 << 20
MAX_ERROR_LENGTH = 200  # the ERROR text's length: a deep path is cut, not echoed whole
_INDEX = re.compile(r"\d+")


def _no_remote(uri: str) -> Any:
    """The handler for every URI scheme a `$ref` could name: schemas are self-contained, the router fetches nothing."""
    raise fastjsonschema.JsonSchemaDefinitionException(f"$ref to another document ({uri!r}) is not supported")


_NO_REMOTE = {scheme: _no_remote for scheme in ("", "http", "https", "file", "ftp", "data")}


class _Rule:
    """One compiled schema and the property names it declares (the only names an error may show)."""

    __slots__ = ("check", "names")

    def __init__(self, check: Callable[[Any], Any], names: frozenset[str]):
        self.check = check
        self.names = names


@implementer(IPayloadValidator)
class JsonSchemaValidator:
    """`schemas = [{uri, match, action, schema_file}, ...]`; see the module docstring."""

    def __init__(self, config: Mapping[str, Any], *, reactor: Any = None, context: PluginContext | None = None):
        table = Table(config, "", ("schemas",))
        rules = table.tables("schemas", ("uri", "match", "action", "schema_file"), required=True)
        if len(rules) > MAX_RULES:
            raise table.fail("schemas", f"expected at most {MAX_RULES} rules")
        policy = getattr(getattr(context, "realm", None), "uri_policy", None) or UriPolicy()
        base_dir = Path(context.base_dir) if context is not None else None
        compiled: dict[Path, _Rule] = {}
        self._exact: dict[tuple[str, str], _Rule] = {}
        self._prefixes: dict[str, list[tuple[str, _Rule]]] = {action: [] for action in ACTIONS}
        for rule in rules:
            uri, match, action = _target(rule, policy)
            if (match == EXACT and (action, uri) in self._exact) or (
                    match == PREFIX and any(p == uri for p, _ in self._prefixes[action])):
                raise rule.fail("uri", f"expected one {match} rule per URI and action; this one is defined twice")
            path = _schema_path(rule, base_dir)
            if path not in compiled:
                compiled[path] = _compile(rule, path)
            if match == EXACT:
                self._exact[(action, uri)] = compiled[path]
            else:
                self._prefixes[action].append((uri, compiled[path]))
        for prefixes in self._prefixes.values():
            prefixes.sort(key=lambda entry: len(entry[0]), reverse=True)  # the longest (most specific) first

    def rule_for(self, action: str, uri: str) -> _Rule | None:
        """The most specific rule covering `uri` for `action`, or None."""
        rule = self._exact.get((action, uri))
        if rule is not None:
            return rule
        for prefix, rule in self._prefixes.get(action, ()):
            if uri.startswith(prefix):
                return rule
        return None

    def validate(self, action: str, uri: str, args: list | None, kwargs: dict | None) -> str | None:
        rule = self.rule_for(action, uri)
        if rule is None:
            return None
        try:
            rule.check({"args": list(args) if args is not None else [], "kwargs": dict(kwargs) if kwargs else {}})
        except fastjsonschema.JsonSchemaValueException as e:
            return _error_text(e, rule.names)
        return None


def _target(rule: Table, policy: UriPolicy) -> tuple[str, str, str]:
    """(uri, match, action) of one rule: a prefix ends in "."; no rule is under the reserved "wamp."."""
    uri = rule.string("uri", required=True)
    match = rule.string("match", default=EXACT, choices=MATCHES)
    action = rule.string("action", required=True, choices=ACTIONS)
    if policy.problem(uri, match) is not None or uri.startswith("wamp."):
        raise rule.fail("uri", f"expected a valid {match} URI for this realm, not under the reserved \"wamp.\"")
    if match == PREFIX and not uri.endswith("."):
        raise rule.fail("uri", 'expected a prefix ending in "."')
    return uri, match, action


def _schema_path(rule: Table, base_dir: Path | None) -> Path:
    path = Path(rule.string("schema_file", required=True)).expanduser()
    if not path.is_absolute():
        if base_dir is None:
            raise rule.fail("schema_file", "expected an absolute path (no config directory is known here)")
        path = base_dir / path
    return path


def _compile(rule: Table, path: Path) -> _Rule:
    """Read, parse and compile one schema file; every failure names the file and the problem."""
    try:
        with path.open("rb") as stream:
            data = stream.read(MAX_SCHEMA_BYTES + 1)
    except OSError as e:
        raise rule.fail("schema_file", f"cannot read {str(path)!r}: {e.strerror or e}") from None
    if len(data) > MAX_SCHEMA_BYTES:
        raise rule.fail("schema_file", f"{str(path)!r} is larger than {MAX_SCHEMA_BYTES} bytes")
    try:
        schema = json.loads(data)
    except (ValueError, UnicodeDecodeError) as e:
        raise rule.fail("schema_file", f"{str(path)!r} is not JSON: {e}") from None
    if not isinstance(schema, dict | bool):
        raise rule.fail("schema_file", f"{str(path)!r} is not a JSON Schema: expected an object or a boolean")
    try:
        check = fastjsonschema.compile(schema, handlers=_NO_REMOTE, use_default=False)
    except fastjsonschema.JsonSchemaDefinitionException as e:
        raise rule.fail("schema_file", f"{str(path)!r} is not a valid JSON Schema: {e}") from None
    except Exception as e:  # a schema the compiler cannot handle (a bad regex, a deep nesting): the operator's error
        raise rule.fail("schema_file", f"{str(path)!r} cannot be compiled: {type(e).__name__}: {e}") from None
    return _Rule(check, frozenset(_declared_names(schema)))


def _declared_names(schema: Any) -> set[str]:
    """Every property name the schema declares anywhere (under `properties`, `required`, `dependencies`...)."""
    names: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key in ("properties", "dependencies", "dependentRequired", "dependentSchemas"):
                if isinstance(node.get(key), dict):
                    names.update(k for k in node[key] if isinstance(k, str))
            if isinstance(node.get("required"), list):
                names.update(k for k in node["required"] if isinstance(k, str))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return names


def _error_text(error: fastjsonschema.JsonSchemaValueException, names: frozenset[str]) -> str:
    """`payload fails schema at kwargs.amount: type`: where and which rule, built from the path (never the value)."""
    parts = [str(part) for part in (error.path or ())][1:]  # the first is fastjsonschema's name for the document
    shown = [part if part in names or _INDEX.fullmatch(part) or part in ("args", "kwargs") and index == 0 else "*"
             for index, part in enumerate(parts)]
    where = ".".join(shown) or "(payload)"
    rule = error.rule if isinstance(error.rule, str) else "schema"
    text = f"payload fails schema at {where}: {rule}"
    return text if len(text) <= MAX_ERROR_LENGTH else text[:MAX_ERROR_LENGTH - 3] + "..."
