"""Undefined role references: a role an authenticator's table makes it assign (`anonymous.role`, a principal's `role`,
jwt's `roles` and `default_role`, tls's `default_role`) that no realm the method serves defines stops the config,
naming the key, the role and the roles those realms define. Otherwise every login with it would be refused at run time.

No sockets: configs are built against a memory reactor, which never listens.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.internet.testing import MemoryReactorClock

from wampgate.config import ConfigError, load
from wampgate.interfaces import PluginContext
from wampgate.plugins.authn.anonymous import AnonymousAuthenticator
from wampgate.plugins.authn.jwt import JwtAuthenticator
from wampgate.tx.plugins_from_config import plugin_problems
from wampgate.tx.service import make_service

HASH = "scrypt$ln=15,r=8,p=1$KWii2MlcgBAM785NEzvRkA$NM/IhidXuJ8mr+SrF5XH6osUmTclmWMQM6teXh+zENc"
PUBLIC_KEY = "545efb0a2192db8d43f118e9bf9aee081466e1ef36c708b96ee6f62dddad9122"


def realm(name: str, *roles: str) -> str:
    return f'\n[[realms]]\nname = "{name}"\n' + "".join(f'[[realms.roles]]\nname = "{role}"\n' for role in roles)


def listener(auth: str) -> str:
    return f'\n[[listeners]]\nendpoint = "tcp:0:interface=127.0.0.1"\n{auth}\n'


def build_problems(tmp_path: Path, text: str) -> list[str]:
    """The problem lines of building `text` (it must pass the router's own check); [] when it builds."""
    path = tmp_path / "router.toml"
    path.write_text(text, encoding="utf-8")
    config = load(path)
    try:
        make_service(config, MemoryReactorClock())
    except ConfigError as e:
        return e.problems
    return []


@pytest.fixture
def jwt_key(tmp_path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    path = tmp_path / "issuer.pub.pem"
    path.write_bytes(key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    return path


def test_anonymous_with_a_misspelt_role_is_refused(tmp_path):
    """`anonymous = { role = "anonymus" }` in a file whose realm defines "anonymous": one line naming the key, the
    role, the realm and the roles it defines."""
    text = listener('[listeners.auth]\nanonymous = { role = "anonymus" }') + realm("realm1", "anonymous", "user")
    assert build_problems(tmp_path, text) == [
        'listeners[0].auth.anonymous.role = "anonymus": undefined role; no realm this method serves (realm realm1) '
        "defines it; defined roles: anonymous, user"]


@pytest.mark.parametrize("auth,key", [
    (f'[[listeners.auth.ticket.principals]]\nauthid = "a"\nrole = "user"\nsecret_hash = "{HASH}"\n'
     f'[[listeners.auth.ticket.principals]]\nauthid = "b"\nrole = "admn"\nsecret_hash = "{HASH}"\n',
     "ticket.principals[1].role"),
    ('[[listeners.auth.wampcra.principals]]\nauthid = "a"\nrole = "admn"\nsecret = "s3cret"\n',
     "wampcra.principals[0].role"),
    (f'[[listeners.auth.cryptosign.principals]]\nauthid = "a"\nrole = "admn"\npublic_keys = ["{PUBLIC_KEY}"]\n',
     "cryptosign.principals[0].role"),
    ('[[listeners.auth.tls.principals]]\nauthid = "a"\nrole = "admn"\n', "tls.principals[0].role"),
    ('[listeners.auth.tls]\ndefault_role = "admn"\n', "tls.default_role"),
])
def test_a_principals_undefined_role_is_refused(tmp_path, auth, key):
    """ticket, wampcra, cryptosign and tls principals, and tls's default_role: the row's key path is named."""
    problems = build_problems(tmp_path, listener(auth) + realm("realm1", "user"))
    assert problems == [f'listeners[0].auth.{key} = "admn": undefined role; no realm this method serves '
                        "(realm realm1) defines it; defined roles: user"]


def test_jwt_roles_and_default_role_are_checked(tmp_path, jwt_key):
    """jwt: each entry of `roles` (the roles a token may claim) and `default_role` must be defined."""
    auth = ('[listeners.auth.jwt]\nalgorithms = ["ES256"]\npublic_key = "issuer.pub.pem"\nissuer = "i"\n'
            'audience = "a"\nroles = ["user", "operator"]\ndefault_role = "guest"\n')
    assert build_problems(tmp_path, listener(auth) + realm("realm1", "user")) == [
        'listeners[0].auth.jwt.roles[1] = "operator": undefined role; no realm this method serves (realm realm1) '
        "defines it; defined roles: user",
        'listeners[0].auth.jwt.default_role = "guest": undefined role; no realm this method serves (realm realm1) '
        "defines it; defined roles: user",
    ]


def test_jwt_without_a_role_list_names_no_roles(tmp_path, jwt_key):
    """A jwt table without `roles` or `default_role` names no role: the token's claim is checked at login."""
    auth = ('[listeners.auth.jwt]\nalgorithms = ["ES256"]\npublic_key = "issuer.pub.pem"\nissuer = "i"\n'
            'audience = "a"\n')
    assert build_problems(tmp_path, listener(auth) + realm("realm1", "user")) == []


def test_a_role_defined_by_any_served_realm_is_enough(tmp_path):
    """Serving realms app and ops, a role one of them defines passes."""
    text = listener('[listeners.auth]\nanonymous = { role = "guest" }') + realm("app", "guest") + realm("ops", "admin")
    assert build_problems(tmp_path, text) == []


def test_a_realms_restriction_narrows_the_roles_that_count(tmp_path):
    """With `realms = ["ops"]`, only ops's roles count: "guest", defined by app alone, is refused, and the line
    names the served realm and its roles."""
    auth = '[listeners.auth.anonymous]\nrole = "guest"\nrealms = ["ops"]\n'
    text = listener(auth) + realm("app", "guest") + realm("ops", "admin", "viewer")
    assert build_problems(tmp_path, text) == [
        'listeners[0].auth.anonymous.role = "guest": undefined role; no realm this method serves (realm ops) '
        "defines it; defined roles: admin, viewer"]


def test_several_served_realms_are_named(tmp_path):
    """The line names every served realm and the union of their roles."""
    text = listener('[listeners.auth]\nanonymous = { role = "nobody" }') + realm("app", "b") + realm("ops", "a")
    assert build_problems(tmp_path, text) == [
        'listeners[0].auth.anonymous.role = "nobody": undefined role; no realm this method serves (realms app, ops) '
        "defines it; defined roles: a, b"]


def test_an_unknown_served_realm_gives_only_its_own_line(tmp_path):
    """`realms = ["nope"]` is reported as an unknown realm; no second line about the role follows from it."""
    auth = '[listeners.auth.anonymous]\nrole = "guest"\nrealms = ["nope"]\n'
    path = tmp_path / "router.toml"
    path.write_text(listener(auth) + realm("app", "guest"))
    with pytest.raises(ConfigError) as raised:
        load(path, plugin_check=lambda config, **options: plugin_problems(config, reactor=MemoryReactorClock(),
                                                                        **options))
    assert raised.value.problems == [
        'listeners[0].auth.anonymous.realms = ["nope"]: unknown realm "nope"; defined realms: app']


def test_a_method_without_roles_is_not_checked(tmp_path):
    """An authenticator without `roles()` (a third-party one, or `dynamic`, whose backend decides) is not
    checked: nothing it could be checked against."""
    auth = ('[listeners.auth.dynamic]\nprocedure = "com.example.authenticate"\nbackend_authrole = "backend"\n')
    assert build_problems(tmp_path, listener(auth) + realm("realm1", "backend")) == []


def test_roles_reports_each_key_with_its_role(tmp_path, jwt_key):
    """`roles()` maps each key of the table that names a role to that role (the router prefixes the table's
    path)."""
    assert AnonymousAuthenticator({"role": "guest"}).roles() == {"role": "guest"}
    jwt = JwtAuthenticator({"algorithms": ["ES256"], "public_key": "issuer.pub.pem", "issuer": "i", "audience": "a",
                            "roles": ["a", "b"], "default_role": "a"},
                           reactor=MemoryReactorClock(), context=PluginContext(base_dir=tmp_path))
    assert jwt.roles() == {"roles[0]": "a", "roles[1]": "b", "default_role": "a"}


def test_a_reload_with_an_undefined_role_is_refused(tmp_path):
    """SIGHUP's reload checks roles too: a file whose anonymous role became undefined is refused (reload() is
    False) and the running authenticators stay."""
    path = tmp_path / "router.toml"
    path.write_text(listener('[listeners.auth]\nanonymous = { role = "anonymous" }') + realm("realm1", "anonymous"))
    service = make_service(load(path), MemoryReactorClock())
    before = dict(service.listener_runtimes["listener0"].methods)
    path.write_text(listener('[listeners.auth]\nanonymous = { role = "anonymus" }') + realm("realm1", "anonymous"))
    assert service.reload() is False
    assert service.listener_runtimes["listener0"].methods == before
