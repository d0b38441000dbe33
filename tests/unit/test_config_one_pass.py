"""The router's own tables and the plugin tables are checked in one pass: when the router's tables have problems, the
plugins are still built from what could be read, and every problem comes out at once, in the file's order, without a
second line repeating a cause already named.

No sockets: plugins are built against a memory reactor, which never listens.
"""

from __future__ import annotations

import subprocess
import sys
from functools import partial
from pathlib import Path

import pytest
from twisted.internet.testing import MemoryReactorClock

from wampgate.config import ConfigError, load
from wampgate.configproblems import file_position, merged_in_file_order, problem_path
from wampgate.tx.plugins_from_config import plugin_problems

REPO = Path(__file__).resolve().parents[2]
REALM = '\n[[realms]]\nname = "realm1"\n[[realms.roles]]\nname = "anonymous"\n'


def problems_of(tmp_path: Path, text: str) -> list[str]:
    """The lines `check-config` and a refused start print for `text` (without the file name)."""
    path = tmp_path / "router.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load(path, plugin_check=partial(plugin_problems, reactor=MemoryReactorClock()))
    return raised.value.problems


def test_core_and_plugin_problems_come_together_in_file_order(tmp_path):
    """A bad [limits] value, an unknown key in the anonymous authenticator's table, a bad realm key and a bad
    authorizer option: four lines at once, in the order the file has them."""
    text = (
        "[limits]\nhello_timeout = -1\n"
        '\n[[listeners]]\nendpoint = "tcp:0:interface=127.0.0.1"\n'
        '[listeners.auth.anonymous]\nrole = "anonymous"\ncolour = 1\n'
        '\n[[realms]]\nname = "realm1"\nuri_check = "lax"\n[[realms.roles]]\nname = "anonymous"\n'
        '[[realms.authorizers]]\nplugin = "static"\nrules = 1\n'
    )
    assert problems_of(tmp_path, text) == [
        "limits.hello_timeout = -1: expected a number from 0.1 to 600.0",
        "listeners[0].auth.anonymous.colour: unknown key; allowed: role",
        'realms[0].uri_check = "lax": expected one of "loose", "strict"',
        "realms[0].authorizers[0].rules = <redacted integer>: unknown key; the static authorizer reads the realm's "
        "[[realms.roles]]",
    ]


def test_an_undefined_role_is_reported_beside_a_core_problem(tmp_path):
    """A misspelt role and a bad endpoint in the same file: both lines in one check."""
    text = '\n[[listeners]]\nendpoint = "tpc:0"\n[listeners.auth]\nanonymous = { role = "anonymus" }\n' + REALM
    problems = problems_of(tmp_path, text)
    assert len(problems) == 2
    assert problems[0].startswith('listeners[0].endpoint = "tpc:0": ')
    assert problems[1] == ('listeners[0].auth.anonymous.role = "anonymus": undefined role; no realm this method '
                           "serves (realm realm1) defines it; defined roles: anonymous")


def test_an_uninstalled_plugin_is_named_once(tmp_path):
    """An authenticator that is not installed gives the router's one line, not a second from the plugin pass."""
    text = '\n[[listeners]]\nendpoint = "tcp:0:interface=127.0.0.1"\n[listeners.auth.nosuch]\n' + REALM
    problems = problems_of(tmp_path, text)
    assert len(problems) == 1
    assert problems[0].startswith("listeners[0].auth.nosuch = <redacted table>: expected an installed authenticator")


def test_a_plugin_table_that_is_not_a_table_is_named_once(tmp_path):
    """`anonymous = 5`: the router says it expected a table; the plugin's "role: missing" would only repeat it."""
    text = '\n[[listeners]]\nendpoint = "tcp:0:interface=127.0.0.1"\n[listeners.auth]\nanonymous = 5\n' + REALM
    assert problems_of(tmp_path, text) == ["listeners[0].auth.anonymous = <redacted integer>: expected a table"]


def test_a_realm_that_cannot_be_read_gives_no_role_follow_ons(tmp_path):
    """A realm with an invalid name is not read; its roles are unknown, so no role reference is called undefined
    because of it: the realm's own line is the only one."""
    text = ('\n[[listeners]]\nendpoint = "tcp:0:interface=127.0.0.1"\n[listeners.auth]\n'
            'anonymous = { role = "anonymous" }\n' + REALM.replace('"realm1"', '"bad realm"'))
    assert problems_of(tmp_path, text) == [
        'realms[0].name = "bad realm": expected a realm name: a valid WAMP URI such as "realm1"']


def test_shipped_production_config_lists_every_missing_file_at_once(tmp_path):
    """conf/production.toml without its files: the certificate, the key and the JWT issuer key, in one pass (the
    newcomer needed two rounds before)."""
    conf = (REPO / "conf").resolve()
    problems = problems_of_file(REPO / "conf" / "production.toml")
    assert problems == [
        f'listeners[0].tls.certificate = "tls/fullchain.pem": expected a readable file; {conf}/tls/fullchain.pem '
        "does not exist",
        f"listeners[0].tls.private_key = <redacted string>: expected a readable file; {conf}/tls/privkey.pem "
        "does not exist",
        f"listeners[0].auth.jwt.public_key = <redacted string>: cannot read '{conf}/jwt/issuer.pub.pem': "
        "No such file or directory",
    ]


def problems_of_file(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        load(path, plugin_check=partial(plugin_problems, reactor=MemoryReactorClock()))
    return raised.value.problems


def test_check_config_prints_every_problem_at_once(tmp_path):
    """`wampgate check-config` on a file with a router problem and a plugin problem prints both and exits 1."""
    config = tmp_path / "router.toml"
    config.write_text("[limits]\nhello_timeout = -1\n" + '\n[[listeners]]\nendpoint = "tcp:0:interface=127.0.0.1"\n'
                      '[listeners.auth]\nanonymous = { role = "anonymus" }\n' + REALM)
    result = subprocess.run([sys.executable, "-m", "wampgate.cli", "check-config", str(config)], capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"{config}: limits.hello_timeout = -1: expected a number from 0.1 to 600.0",
        f'{config}: listeners[0].auth.anonymous.role = "anonymus": undefined role; no realm this method serves '
        "(realm realm1) defines it; defined roles: anonymous",
    ]


# --- placing lines in the file --------------------------------------------------------------------------------------


RAW = {"limits": {"a": 1, "b": 2}, "listeners": [{"endpoint": "x", "auth": {"jwt": {"public_key": "k"}}}],
       "realms": [{"name": "r"}]}


@pytest.mark.parametrize("line,path", [
    ("limits.b = 2: expected", "limits.b"),
    ("listeners[0].auth.jwt.public_key = <redacted string>: cannot read", "listeners[0].auth.jwt.public_key"),
    ("realms: missing; expected", "realms"),
    ('listeners[0].auth.pkg.mod:Thing: unknown plugin', "listeners[0].auth.pkg.mod"),
    ("not valid TOML: x", "not"),
])
def test_problem_path(line, path):
    """The path is the line's leading key path (a quoted key holding ":" ends it early)."""
    assert problem_path(line) == path


def test_file_position_follows_the_files_order():
    """Keys compare by where the file has them; a key the file lacks comes after its table's keys."""
    assert file_position(RAW, "limits.b") < file_position(RAW, "listeners[0].endpoint")
    assert file_position(RAW, "listeners[0].auth.jwt.public_key") < file_position(RAW, "realms[0].name")
    assert file_position(RAW, "limits.b") < file_position(RAW, "limits.missing") < file_position(RAW, "listeners")


def test_merging_keeps_the_first_list_and_places_the_others():
    """Lines of the plugin pass go before the first router line further down the file; the router's lines keep
    their order."""
    first = ["limits.b = 2: x", "realms[0].name: y"]
    assert merged_in_file_order(first, ["listeners[0].auth.jwt.public_key: z", "limits.a: w"], RAW) == [
        "limits.a: w", "limits.b = 2: x", "listeners[0].auth.jwt.public_key: z", "realms[0].name: y"]
