"""`${NAME}` / `${NAME:-default}` in the config's string values: what is substituted where, and the exact problem
line when a reference cannot be filled, which never shows the key's value."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from twisted.internet.testing import MemoryReactorClock

from wampgate.config import ConfigError, load
from wampgate.configenv import expand, substitute
from wampgate.tx.service import make_service

REPO = Path(__file__).resolve().parents[2]
REALM = '\n[[realms]]\nname = "realm1"\n[[realms.roles]]\nname = "anonymous"\n'


def listener(keys: str = "", websocket: str = "", auth: str = 'anonymous = { role = "anonymous" }',
             endpoint: str = "tcp:0:interface=127.0.0.1") -> str:
    return (f'\n[[listeners]]\nendpoint = "{endpoint}"\n{keys}\n[listeners.websocket]\n{websocket}\n'
            f"[listeners.auth]\n{auth}\n")


def load_text(tmp_path: Path, text: str, environ: dict[str, str]):
    path = tmp_path / "router.toml"
    path.write_text(text, encoding="utf-8")
    return load(path, environ=environ)


def problems_of(tmp_path: Path, text: str, environ: dict[str, str]) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load_text(tmp_path, text, environ)
    return raised.value.problems


# --- expand: one string ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,environ,expected", [
    ("${HOST}", {"HOST": "a.example"}, "a.example"),
    ("tcp:${PORT}:interface=${ADDR}", {"PORT": "443", "ADDR": "::1"}, "tcp:443:interface=::1"),
    ("${PORT:-8080}", {}, "8080"),
    ("${PORT:-8080}", {"PORT": ""}, "8080"),  # set but empty takes the default, as in the shell
    ("${PORT}", {"PORT": ""}, ""),  # set but empty without a default: empty
    ("${PORT:-}", {}, ""),
    ("${A:-x:-y}", {}, "x:-y"),  # the default is everything after the first ":-"
    ("$${HOME}", {"HOME": "/root"}, "${HOME}"),  # the escape: a literal ${
    ("a$${B}c${B}", {"B": "b"}, "a${B}cb"),
    ("scrypt$ln=15,r=8,p=1$salt$hash", {}, "scrypt$ln=15,r=8,p=1$salt$hash"),  # a lone $ is text
    ("${X}", {"X": "${Y}", "Y": "no"}, "${Y}"),  # a variable's text is not scanned again
])
def test_expand_fills_references(text, environ, expected):
    """References are replaced by the variable's value or their default; `$${` is a literal `${`; other `$` are
    text; a value taken from the environment is used as it is, never expanded again."""
    assert expand(text, environ) == (expected, None)


@pytest.mark.parametrize("text,problem", [
    ("${NOPE}", "environment variable NOPE is not set, and ${NOPE} gives no default (${NOPE:-default})"),
    ("x${ab", "an unclosed ${: expected ${NAME} or ${NAME:-default} (NAME: letters, digits and _; $${ for a "
              "literal ${)"),
    ("${1X}", "${1X} is not a variable reference: expected ${NAME} or ${NAME:-default} (NAME: letters, digits and "
              "_; $${ for a literal ${)"),
    ("${}", "${} is not a variable reference: expected ${NAME} or ${NAME:-default} (NAME: letters, digits and _; "
            "$${ for a literal ${)"),
])
def test_expand_names_what_is_wrong(text, problem):
    """An unset variable without default, an unclosed `${` and a reference that names no variable are each one
    problem saying what is allowed; the text is returned as written."""
    assert expand(text, {}) == (text, problem)


def test_substitute_touches_string_values_only_never_keys():
    """Keys are never substituted, nor numbers or booleans; strings in arrays and nested tables are, each problem
    keyed by its path."""
    raw = {"${K}": "${K}", "n": 5, "b": True, "t": {"list": ["${K}", "${MISSING}", 3]}}
    result, problems, secrets = substitute(raw, {"K": "v"})
    assert result == {"${K}": "v", "n": 5, "b": True, "t": {"list": ["v", "${MISSING}", 3]}}
    assert secrets == {}
    assert problems == {"t.list[1]": "environment variable MISSING is not set, and ${MISSING} gives no default "
                                     "(${MISSING:-default})"}


def test_a_malformed_reference_in_a_secret_key_is_not_quoted():
    """Under a key that looks secret, a malformed reference is not quoted back: it may be the secret itself."""
    _, problems, _ = substitute({"secret": "${hunter 2}", "note": "${hunter 2}"}, {})
    assert problems["secret"].startswith("a ${...} is not a variable reference")
    assert problems["note"].startswith("${hunter 2} is not a variable reference")


# --- load: the whole file -------------------------------------------------------------------------------------------


def test_load_fills_values_from_the_environment(tmp_path):
    """Endpoint, a websocket key and an authenticator's table all take their values from the environment."""
    text = listener('name = "${LISTENER:-main}"', 'allowed_origins = ["${ORIGIN}"]',
                    'anonymous = { role = "${ROLE:-anonymous}" }') + REALM
    config = load_text(tmp_path, text, {"ORIGIN": "https://app.example.com"})
    (only,) = config.listeners
    assert only.name == "main"
    assert only.websocket.allowed_origins == ("https://app.example.com",)
    assert dict(only.auth[0].options) == {"role": "anonymous"}


def test_an_unset_variable_names_the_key_and_the_variable_only(tmp_path):
    """An unset variable is one line naming the key path and the variable, nothing else about that key: not the
    reader's complaint about the unfilled value, and never the value."""
    text = listener('name = "${NAME}"') + REALM
    assert problems_of(tmp_path, text, {}) == [
        "listeners[0].name: environment variable NAME is not set, and ${NAME} gives no default (${NAME:-default})"]


def test_an_unset_variable_in_an_array_hides_the_arrays_follow_on(tmp_path):
    """`trusted_proxies = ["${PROXY}"]` unset: one line for trusted_proxies[0], not also the array's "expected IP
    addresses" complaint about the unfilled text."""
    text = listener(websocket='trusted_proxies = ["${PROXY}"]') + REALM
    assert problems_of(tmp_path, text, {}) == [
        "listeners[0].websocket.trusted_proxies[0]: environment variable PROXY is not set, and ${PROXY} gives no "
        "default (${PROXY:-default})"]


def test_secrets_records_what_the_environment_put_into_secret_keys():
    """Text a variable put into a key that looks secret is remembered with the variable's name (defaults and other
    keys are not): what ConfigError hides."""
    raw = {"auth": {"secret": "${S}", "secret_file": "/etc/${F}/x", "role": "${R}", "token": "${T:-dflt}"}}
    _, _, secrets = substitute(raw, {"S": "hunter22", "F": "dir", "R": "user"})
    assert secrets == {"hunter22": "S", "dir": "F"}


def test_a_value_from_the_environment_is_never_printed_under_a_secret_key(tmp_path, tls_files):
    """A value filled from the environment into a key that looks secret is never printed in a problem line: not as
    the key's value, and not inside the text (the file it names)."""
    cert, _ = tls_files
    text = listener() + f'[listeners.tls]\ncertificate = "{cert}"\nprivate_key = "${{KEY_FILE}}"\n' + REALM
    problems = problems_of(tmp_path, text, {"KEY_FILE": "/no/such/s3cr3t-key.pem"})
    assert problems == ["listeners[0].tls.private_key = <redacted string>: expected a readable file; "
                        "<the value of ${KEY_FILE}> does not exist"]


def test_a_secret_put_where_a_file_name_belongs_is_not_printed(tmp_path):
    """`secret_file = "${JWT_SECRET}"` with the secret itself in the variable: the jwt authenticator's "cannot read
    <path>" line (raised when the service is built) names the variable, not the secret."""
    auth = ('[listeners.auth.jwt]\nalgorithms = ["HS256"]\nsecret_file = "${JWT_SECRET}"\nissuer = "i"\n'
            'audience = "a"\n')
    config = load_text(tmp_path, listener(auth=auth) + REALM, {"JWT_SECRET": "c0rrect-h0rse-battery"})
    with pytest.raises(ConfigError) as raised:
        make_service(config, MemoryReactorClock())
    (line,) = raised.value.problems
    assert "c0rrect-h0rse-battery" not in line and "c0rrect-h0rse-battery" not in str(raised.value)
    assert line == (f"listeners[0].auth.jwt.secret_file = <redacted string>: cannot read "
                    f"'{tmp_path}/<the value of ${{JWT_SECRET}}>': No such file or directory")


def test_env_problems_are_reported_with_the_others_in_file_order(tmp_path):
    """An unset variable does not stop the check: the other problems come too, in the file's order, an unknown key
    among them (whatever its value)."""
    text = 'colour = "${COLOUR}"\n' + listener('transports = ["${T:-websockets}"]') + REALM
    assert problems_of(tmp_path, text, {}) == [
        "colour: unknown key; allowed: admin, cluster, flow, limits, listeners, realms",
        "colour: environment variable COLOUR is not set, and ${COLOUR} gives no default (${COLOUR:-default})",
        'listeners[0].transports = ["websockets"]: expected a non-empty array of values from "websocket", '
        '"rawsocket", each at most once',
    ]


@pytest.fixture
def tls_files(tmp_path):
    cert = tmp_path / "cert.pem"
    cert.write_text("")
    return cert, tmp_path / "key.pem"


# --- check-config, as an operator runs it ---------------------------------------------------------------------------


def run_check_config(config: Path, **environ: str) -> subprocess.CompletedProcess:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WG_TEST_")}
    env.update(environ)
    return subprocess.run([sys.executable, "-m", "wampgate.cli", "check-config", str(config)], env=env,
                          capture_output=True, text=True, timeout=60)


def test_check_config_reads_the_environment(tmp_path):
    """`wampgate check-config` fills references from its environment: with the variables set the config passes and
    the summary shows the filled values; without them it fails naming the key and the variable, and no value."""
    config = tmp_path / "router.toml"
    config.write_text(listener('name = "${WG_TEST_NAME}"', endpoint="tcp:${WG_TEST_PORT:-0}:interface=127.0.0.1")
                      + REALM)
    passed = run_check_config(config, WG_TEST_NAME="edge", WG_TEST_PORT="8443")
    assert passed.returncode == 0, passed.stderr
    assert "listener edge: tcp:8443:interface=127.0.0.1 (plain)" in passed.stdout
    failed = run_check_config(config)
    assert failed.returncode == 1
    assert failed.stderr.splitlines() == [
        f"{config}: listeners[0].name: environment variable WG_TEST_NAME is not set, and ${{WG_TEST_NAME}} gives no "
        "default (${WG_TEST_NAME:-default})"]
