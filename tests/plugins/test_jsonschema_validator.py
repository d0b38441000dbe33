"""The built-in `jsonschema` payload validator (wampgate.plugins.validate.jsonschema), without a router.

Pins down: schemas compile at construction and check `{"args": [...], "kwargs": {...}}`; the most specific rule
applies (exact over prefix, longer prefix over shorter) per action; an uncovered URI or another action is not
checked; the error names the payload path and the failing rule but never a value the client sent (nor a property
name no schema declares); a bad schema file or rule is a PluginConfigError naming the key, and the router's config
check reports it as realms[i].validators[n].schemas[k].schema_file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from zope.interface.verify import verifyObject

from wampgate import loader
from wampgate.config import ConfigError, load
from wampgate.plugin import IPayloadValidator, PayloadValidator, PluginConfigError, PluginContext
from wampgate.plugins.validate.jsonschema import JsonSchemaValidator
from wampgate.tx.plugins_from_config import plugin_problems

ORDER = {
    "type": "object",
    "properties": {
        "args": {"type": "array", "maxItems": 1, "items": {"type": "string"}},
        "kwargs": {
            "type": "object",
            "required": ["amount"],
            "properties": {"amount": {"type": "integer", "minimum": 1}},
            "additionalProperties": {"type": "integer"},
        },
    },
}
ANYTHING = {}
NO_KWARGS = {"properties": {"kwargs": {"maxProperties": 0}}}


def _write(directory: Path, name: str, schema) -> str:
    (directory / name).write_text(json.dumps(schema) if not isinstance(schema, str) else schema)
    return name


def _validator(directory: Path, *rules: dict) -> JsonSchemaValidator:
    return JsonSchemaValidator({"schemas": list(rules)}, reactor=None, context=PluginContext(base_dir=directory))


def rule(uri: str, action: str, schema_file: str, match: str = "exact") -> dict:
    return {"uri": uri, "match": match, "action": action, "schema_file": schema_file}


def test_the_entry_point_builds_a_verified_validator(tmp_path):
    """`jsonschema` is installed in wampgate.validators and provides IPayloadValidator; the base class does too and
    finds everything valid."""
    plugin = loader.build(loader.VALIDATORS, "jsonschema", IPayloadValidator,
                          {"schemas": [rule("com.order", "publish", _write(tmp_path, "o.json", ORDER))]},
                          reactor=None, context=PluginContext(base_dir=tmp_path))
    assert verifyObject(IPayloadValidator, plugin)
    assert verifyObject(IPayloadValidator, PayloadValidator())
    assert PayloadValidator().validate("publish", "com.x", [1], {"a": 2}) is None


def test_valid_and_invalid_payloads(tmp_path):
    """The schema sees args and kwargs (missing ones as [] and {}): a valid payload gets None; an invalid one a text
    naming the path and the rule."""
    checker = _validator(tmp_path, rule("com.order", "publish", _write(tmp_path, "o.json", ORDER)))
    assert checker.validate("publish", "com.order", ["a"], {"amount": 2}) is None
    assert checker.validate("publish", "com.order", None, {"amount": 2}) is None
    assert checker.validate("publish", "com.order", ["a"], {"amount": 0}) == \
        "payload fails schema at kwargs.amount: minimum"
    assert checker.validate("publish", "com.order", [7], {"amount": 1}) == "payload fails schema at args.0: type"
    assert checker.validate("publish", "com.order", None, None) == "payload fails schema at kwargs: required"
    assert checker.validate("publish", "com.order", ["a", "b"], {"amount": 1}) == \
        "payload fails schema at args: maxItems"


def test_the_error_never_shows_what_the_client_sent(tmp_path):
    """Neither a value nor a property name the schema does not declare (matched by additionalProperties) appears
    in the error: that name is the client's text, shown as `*`."""
    checker = _validator(tmp_path, rule("com.order", "publish", _write(tmp_path, "o.json", ORDER)))
    text = checker.validate("publish", "com.order", ["a"], {"amount": "SECRET-VALUE"})
    assert text == "payload fails schema at kwargs.amount: type"
    text = checker.validate("publish", "com.order", ["a"], {"amount": 1, "SECRET-NAME": "SECRET-VALUE"})
    assert text == "payload fails schema at kwargs.*: type"
    assert "SECRET" not in text


def test_the_most_specific_rule_applies(tmp_path):
    """Exact beats prefix, a longer prefix beats a shorter one, rules are per action, an uncovered URI is not
    checked."""
    anything = _write(tmp_path, "any.json", ANYTHING)
    strict = _write(tmp_path, "strict.json", NO_KWARGS)
    checker = _validator(
        tmp_path,
        rule("com.", "publish", strict, "prefix"),
        rule("com.open.", "publish", anything, "prefix"),
        rule("com.open.closed", "publish", strict),
        rule("com.strict", "publish", anything),
    )
    payload = {"k": 1}
    assert checker.validate("publish", "com.a", None, payload) == "payload fails schema at kwargs: maxProperties"
    assert checker.validate("publish", "com.open.a", None, payload) is None
    assert checker.validate("publish", "com.open.closed", None, payload) == \
        "payload fails schema at kwargs: maxProperties"
    assert checker.validate("publish", "com.strict", None, payload) is None
    assert checker.validate("call", "com.a", None, payload) is None  # no rule for calls
    assert checker.validate("publish", "org.a", None, payload) is None  # no rule covers it


@pytest.mark.parametrize("schema, problem", [
    ('{"type": 12}', "is not a valid JSON Schema: Unknown type"),
    ('{"type": ', "is not JSON"),
    ('{"$ref": "http://127.0.0.1:1/x.json"}', "is not a valid JSON Schema: $ref to another document"),
    ('[1]', "is not a JSON Schema: expected an object or a boolean"),
])
def test_a_bad_schema_file_is_a_config_error_naming_the_file(tmp_path, schema, problem):
    """A schema that is not JSON, not valid JSON Schema, or refers to another document (never fetched) stops
    the plugin naming schemas[i].schema_file, the file and the problem."""
    name = _write(tmp_path, "bad.json", schema)
    with pytest.raises(PluginConfigError) as caught:
        _validator(tmp_path, rule("com.a", "call", _write(tmp_path, "ok.json", ANYTHING)), rule("com.b", "call", name))
    assert caught.value.key == "schemas[1].schema_file"
    assert str(tmp_path / "bad.json") in caught.value.problem and problem in caught.value.problem


@pytest.mark.parametrize("bad, key, problem", [
    ({"uri": "com.a", "action": "subscribe"}, "schemas[0].action", "expected one of 'publish', 'call'"),
    ({"uri": "com.a", "match": "prefix"}, "schemas[0].uri", 'expected a prefix ending in "."'),
    ({"uri": "wamp.session.x"}, "schemas[0].uri", "expected a valid exact URI"),
    ({"schema_file": "missing.json"}, "schemas[0].schema_file", "cannot read"),
    ({"colour": "blue"}, "schemas[0].colour", "unknown key"),
])
def test_bad_rules_name_their_key(tmp_path, bad, key, problem):
    """Every rule key is checked: action, a prefix's trailing dot, the reserved wamp. space, the file, unknown
    keys."""
    entry = {**rule("com.a", "publish", _write(tmp_path, "ok.json", ANYTHING)), **bad}
    with pytest.raises(PluginConfigError) as caught:
        _validator(tmp_path, entry)
    assert caught.value.key == key and problem in caught.value.problem


def test_a_duplicate_rule_is_refused(tmp_path):
    """Two rules for the same URI, match and action would silently shadow each other: refused."""
    ok = _write(tmp_path, "ok.json", ANYTHING)
    with pytest.raises(PluginConfigError) as caught:
        _validator(tmp_path, rule("com.", "call", ok, "prefix"), rule("com.", "call", ok, "prefix"))
    assert caught.value.key == "schemas[1].uri"


def test_the_router_config_check_names_the_realm_and_validator(tmp_path):
    """A bad schema file is reported by the config check with its full key path in the realm's validators."""
    (tmp_path / "bad.json").write_text('{"minimum": "one"}')
    path = tmp_path / "router.toml"
    path.write_text(f'''
[[listeners]]
name = "main"
endpoint = "tcp:0:interface=127.0.0.1"
transports = ["websocket"]
[listeners.auth]
anonymous = {{ role = "anonymous" }}

[[realms]]
name = "realm1"
[[realms.roles]]
name = "anonymous"

[[realms.validators]]
plugin = "jsonschema"
schemas = [{{ uri = "com.a", action = "publish", schema_file = "bad.json" }}]
''')
    config = load(path)
    problems = plugin_problems(config, reactor=None)
    assert len(problems) == 1
    assert problems[0].startswith("realms[0].validators[0].schemas[0].schema_file = \"bad.json\": ")
    assert str(tmp_path / "bad.json") in problems[0] and "is not a valid JSON Schema" in problems[0]


def test_an_unknown_validator_plugin_is_a_config_error(tmp_path):
    """`plugin` must name an installed validator: the config is refused naming realms[0].validators[0].plugin."""
    path = tmp_path / "router.toml"
    path.write_text('''
[[listeners]]
name = "main"
endpoint = "tcp:0:interface=127.0.0.1"
transports = ["websocket"]
[listeners.auth]
anonymous = { role = "anonymous" }

[[realms]]
name = "realm1"
[[realms.roles]]
name = "anonymous"
[[realms.validators]]
plugin = "nosuchvalidator"
''')
    with pytest.raises(ConfigError) as caught:
        load(path)
    assert any(line.startswith("realms[0].validators[0].plugin") and "payload validator" in line
               for line in caught.value.problems)
