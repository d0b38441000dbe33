"""The TOML config: what loads, and the exact one-line problem reported for every kind of operator mistake.

No sockets: each test writes TOML to tmp_path and calls `wampgate.config.load` (or, for plugin tables, builds the
service against a memory reactor, which never listens).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from twisted.internet.testing import MemoryReactorClock

from wampgate.config import ACTIONS, ConfigError, Permission, load
from wampgate.tx.service import make_service

REPO = Path(__file__).resolve().parents[2]
ALL_ACTIONS = '["publish", "subscribe", "call", "register"]'
ANONYMOUS = '[listeners.auth.anonymous]\nrole = "anonymous"\n'


def listener(endpoint: str = '"tcp:0:interface=127.0.0.1"', *, keys: str = "", tables: str = "",
             auth: str = ANONYMOUS) -> str:
    """One [[listeners]] table; `endpoint` and `keys` are TOML as written, `tables` are its sub-tables."""
    return f"\n[[listeners]]\nendpoint = {endpoint}\n{keys}\n{tables}\n{auth}\n"


def permission(uri: str = '""', match: str = '"prefix"', allow: str = ALL_ACTIONS, keys: str = "") -> str:
    return f"\n[[realms.roles.permissions]]\nuri = {uri}\nmatch = {match}\nallow = {allow}\n{keys}\n"


def role(name: str = '"anonymous"', keys: str = "", permissions: str | None = None) -> str:
    return f"\n[[realms.roles]]\nname = {name}\n{keys}\n" + (permission() if permissions is None else permissions)


def realm(name: str = '"realm1"', keys: str = "", roles: str | None = None) -> str:
    return f"\n[[realms]]\nname = {name}\n{keys}\n" + (role() if roles is None else roles)


def write(directory: Path, text: str, name: str = "router.toml") -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(directory: Path, text: str) -> list[str]:
    """The ConfigError lines for `text`; fails the test when the config loads."""
    with pytest.raises(ConfigError) as raised:
        load(write(directory, text))
    return raised.value.problems


@pytest.fixture
def tls_files(tmp_path):
    """Existing (empty) certificate and key files: load() checks only that they exist."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.write_text("")
    key.write_text("")
    return cert, key


def tls_table(cert: Path, key: Path, extra: str = "") -> str:
    return f'[listeners.tls]\ncertificate = "{cert}"\nprivate_key = "{key}"\n{extra}\n'


# --- the shipped configs ---------------------------------------------------------------------------------------


def test_shipped_dev_config_loads():
    """conf/dev.toml loads: universal ws+rawsocket on loopback :8080, rawsocket on :8081, realm1 open to anonymous."""
    config = load(REPO / "conf" / "dev.toml")
    universal, rawsocket = config.listeners
    assert (universal.name, universal.endpoint) == ("universal", "tcp:8080:interface=127.0.0.1")
    assert universal.transports == ("websocket", "rawsocket")
    assert universal.websocket.path == "/ws"
    assert (rawsocket.name, rawsocket.endpoint) == ("rawsocket", "tcp:8081:interface=127.0.0.1")
    assert rawsocket.transports == ("rawsocket",)
    for each in config.listeners:
        assert each.tls is None
        methods = [(m.method, dict(m.options), m.realms) for m in each.auth]
        assert methods == [("anonymous", {"role": "anonymous"}, None)]
    assert list(config.realms) == ["realm1"]
    roles = config.realms["realm1"].roles
    assert list(roles) == ["anonymous"]
    assert roles["anonymous"].permissions == (
        Permission(uri="", match="prefix", allow=frozenset(ACTIONS), disclose=False),
        Permission(uri="wamp.", match="prefix", allow=frozenset({"call", "subscribe"}), disclose=False),
    )
    assert config.admin is not None and config.admin.endpoint == "tcp:8082:interface=127.0.0.1"
    assert config.limits.hello_timeout == 10.0


def test_shipped_production_config_needs_only_its_tls_files():
    """conf/production.toml, as shipped, is refused only for the TLS files it expects beside it: no silent fallback
    to anything that would let it start without them."""
    with pytest.raises(ConfigError) as raised:
        load(REPO / "conf" / "production.toml")
    conf = (REPO / "conf").resolve()
    assert raised.value.problems == [
        f'listeners[0].tls.certificate = "tls/fullchain.pem": expected a readable file; {conf}/tls/fullchain.pem '
        "does not exist",
        # a key's value is never printed: the problem names the file it looked for
        f"listeners[0].tls.private_key = <redacted string>: expected a readable file; {conf}/tls/privkey.pem "
        "does not exist",
    ]


def test_production_config_validates_with_its_files_and_admits_no_anonymous(tmp_path):
    """With a certificate, key and JWT issuer key where it says, conf/production.toml validates completely (its
    ticket, cryptosign and jwt authenticators build), listens only with TLS, offers no anonymous access, and lets
    browser pages of its placeholder origin connect (without allowed_origins every page would get 403)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from twisted.internet.testing import MemoryReactorClock

    from wampgate.tx.service import make_service
    from tests.support import certs as certificates

    (tmp_path / "tls").mkdir()
    (tmp_path / "jwt").mkdir()
    files = certificates.generate(tmp_path)
    (tmp_path / "tls" / "fullchain.pem").write_bytes(files.server_chain.read_bytes())
    (tmp_path / "tls" / "privkey.pem").write_bytes(files.server_key.read_bytes())
    issuer = ec.generate_private_key(ec.SECP256R1()).public_key()
    (tmp_path / "jwt" / "issuer.pub.pem").write_bytes(
        issuer.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    config_path = tmp_path / "production.toml"
    config_path.write_text((REPO / "conf" / "production.toml").read_text())
    config = load(config_path)
    assert all(listener.tls is not None for listener in config.listeners)
    assert all(method.method != "anonymous" for listener in config.listeners for method in listener.auth)
    reactor = MemoryReactorClock()
    reactor.advance(time.time())  # certificates are checked against the router's clock: expired, not yet valid
    service = make_service(config, reactor)
    assert service.getServiceNamed("public").config.tls is not None
    assert service.getServiceNamed("public").config.websocket.allowed_origins == ("https://app.example.com",)


# --- unknown keys ---------------------------------------------------------------------------------------------


def test_unknown_top_level_key(tmp_path):
    """An unknown top-level key is refused with the list of allowed keys."""
    problems = problems_of(tmp_path, "colour = 1\n" + listener() + realm())
    assert problems == ["colour: unknown key; allowed: admin, cluster, flow, limits, listeners, realms"]


def test_unknown_key_in_listener(tmp_path):
    """An unknown key in a [[listeners]] table names listeners[N] and the allowed keys."""
    problems = problems_of(tmp_path, listener() + listener('"tcp:0"', keys="colour = 1") + realm())
    assert problems == [
        "listeners[1].colour: unknown key; allowed: auth, bridges, endpoint, max_message_size, name, paths, "
        "serializers, tls, transports, websocket"
    ]


def test_unknown_key_in_listener_tls(tmp_path, tls_files):
    """An unknown key in [listeners.tls] is refused with the TLS keys allowed."""
    problems = problems_of(tmp_path, listener(tables=tls_table(*tls_files, "colour = 1")) + realm())
    assert problems == [
        "listeners[0].tls.colour: unknown key; allowed: certificate, ciphers, client_ca, min_version, private_key, "
        "require_client_certificate"
    ]


def test_unknown_key_in_listener_websocket(tmp_path):
    """An unknown key in [listeners.websocket] is refused with the WebSocket keys allowed."""
    problems = problems_of(tmp_path, listener(tables="[listeners.websocket]\ncolour = 1\n") + realm())
    assert problems == [
        "listeners[0].websocket.colour: unknown key; allowed: allowed_origins, auto_ping_interval, auto_ping_timeout, "
        "close_handshake_timeout, compression, longpoll_idle_timeout, longpoll_max_transports, longpoll_path, "
        "longpoll_receive_timeout, max_fragments, max_frame_size, max_header_size, max_headers, "
        "max_request_line, open_handshake_timeout, path, server_header, static_dir, trusted_proxies"
    ]


def test_unknown_key_in_realm(tmp_path):
    """An unknown key in a [[realms]] table is refused."""
    problems = problems_of(tmp_path, listener() + realm(keys="colour = 1"))
    assert problems == ["realms[0].colour: unknown key; allowed: authorizers, history, max_uri_length, name, roles, slow_consumer, uri_check, validators"]


def test_unknown_key_in_role(tmp_path):
    """An unknown key in a [[realms.roles]] table is refused."""
    problems = problems_of(tmp_path, listener() + realm(roles=role(keys="colour = 1")))
    assert problems == ["realms[0].roles[0].colour: unknown key; allowed: name, permissions, slow_consumer"]


def test_unknown_key_in_permission(tmp_path):
    """An unknown key in a [[realms.roles.permissions]] table is refused."""
    problems = problems_of(tmp_path, listener() + realm(roles=role(permissions=permission(keys="colour = 1"))))
    assert problems == ["realms[0].roles[0].permissions[0].colour: unknown key; allowed: allow, disclose, match, uri"]


# --- wrong types and values: one line each, key path, value as written, what is allowed -----------------------

WRONG_VALUES = [
    pytest.param(
        listener("8080") + realm(),
        "listeners[0].endpoint = 8080: expected a string",
        id="endpoint-integer",
    ),
    pytest.param(
        listener(keys='transports = "websocket"') + realm(),
        'listeners[0].transports = "websocket": expected a non-empty array of values from "websocket", '
        '"rawsocket", each at most once',
        id="transports-string",
    ),
    pytest.param(
        listener(keys='max_message_size = "big"') + realm(),
        'listeners[0].max_message_size = "big": expected an integer from 512 to 67108864',
        id="max_message_size-string",
    ),
    pytest.param(
        "[limits]\nhello_timeout = -1\n" + listener() + realm(),
        "limits.hello_timeout = -1: expected a number from 0.1 to 600.0",
        id="hello_timeout-negative",
    ),
    pytest.param(
        listener() + realm(keys='uri_check = "lax"'),
        'realms[0].uri_check = "lax": expected one of "loose", "strict"',
        id="uri_check-lax",
    ),
    pytest.param(
        listener() + realm(roles=role(permissions=permission(match='"regex"'))),
        'realms[0].roles[0].permissions[0].match = "regex": expected one of "exact", "prefix", "wildcard"',
        id="match-regex",
    ),
    pytest.param(
        listener() + realm(roles=role(permissions=permission(allow='["delete"]'))),
        'realms[0].roles[0].permissions[0].allow = ["delete"]: expected an array of values from "publish", '
        '"subscribe", "call", "register", each at most once',
        id="allow-delete",
    ),
]


@pytest.mark.parametrize("text,expected", WRONG_VALUES)
def test_wrong_type_or_value_gives_one_line(tmp_path, text, expected):
    """A value of the wrong type or outside its choices gives exactly one line: key path = value: allowed."""
    assert problems_of(tmp_path, text) == [expected]


def test_empty_endpoint_is_refused(tmp_path):
    """endpoint = "" is not a usable endpoint: it is refused at load, naming the key (never a crash later)."""
    problems = problems_of(tmp_path, listener('""') + realm())
    assert len(problems) == 1
    assert problems[0].startswith('listeners[0].endpoint = "": expected')


# --- TLS files ----------------------------------------------------------------------------------------------------


def test_missing_certificate_names_key_and_resolved_path(tmp_path, tls_files):
    """A certificate file that does not exist is reported under listeners[N].tls.certificate with its resolved path."""
    _, key = tls_files
    tables = f'[listeners.tls]\ncertificate = "nowhere/cert.pem"\nprivate_key = "{key}"\n'
    problems = problems_of(tmp_path, listener() + listener('"tcp:0"', tables=tables) + realm())
    resolved = (tmp_path / "nowhere" / "cert.pem").resolve()
    assert problems == [
        f'listeners[1].tls.certificate = "nowhere/cert.pem": expected a readable file; {resolved} does not exist'
    ]


def test_relative_tls_paths_resolve_against_the_config_file_directory(tmp_path, monkeypatch):
    """Relative certificate/key/CA paths are relative to the config file's directory, not the working directory."""
    conf = tmp_path / "conf"
    (conf / "tls").mkdir(parents=True)
    for name in ("cert.pem", "key.pem", "ca.pem"):
        (conf / "tls" / name).write_text("")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    tables = ('[listeners.tls]\ncertificate = "tls/cert.pem"\nprivate_key = "tls/key.pem"\nclient_ca = "tls/ca.pem"\n'
              "require_client_certificate = true\n")
    config = load(write(conf, listener(tables=tables) + realm()))
    tls = config.listeners[0].tls
    assert tls.certificate == (conf / "tls" / "cert.pem").resolve()
    assert tls.private_key == (conf / "tls" / "key.pem").resolve()
    assert tls.client_ca == (conf / "tls" / "ca.pem").resolve()
    assert tls.require_client_certificate is True


def test_require_client_certificate_without_client_ca(tmp_path, tls_files):
    """Requiring client certificates without a CA to check them against is refused."""
    problems = problems_of(tmp_path, listener(tables=tls_table(*tls_files, "require_client_certificate = true"))
                           + realm())
    assert problems == [
        "listeners[0].tls.require_client_certificate = true: needs client_ca: "
        "the CA bundle client certificates are checked against"
    ]


# --- endpoints and ports --------------------------------------------------------------------------------------


@pytest.mark.parametrize("first,second", [
    ("tcp:9000", "tcp:9000"),
    ("tcp:9000:interface=127.0.0.1", "tcp:9000"),
    ("tcp:9000", "tcp:9000:interface=127.0.0.1"),
])
def test_duplicate_port_names_the_second_listener(tmp_path, first, second):
    """Two listeners that would bind the same address (a wildcard covers every interface) give one line naming the
    second listener and the first."""
    problems = problems_of(tmp_path, listener(f'"{first}"') + listener(f'"{second}"') + realm())
    assert problems == [
        f'listeners[1].endpoint = "{second}": the address is already used by listeners[0]; '
        "expected a port no other listener uses"
    ]


def test_same_port_on_different_interfaces_is_fine(tmp_path):
    """Port 9000 on 127.0.0.1 and on 127.0.0.2 are different addresses: both listeners load."""
    text = listener('"tcp:9000:interface=127.0.0.1"') + listener('"tcp:9000:interface=127.0.0.2"') + realm()
    assert len(load(write(tmp_path, text)).listeners) == 2


def test_port_zero_twice_is_fine(tmp_path):
    """Port 0 means "any free port", so two listeners on port 0 never clash."""
    text = listener('"tcp:0"') + listener('"tcp:0"') + realm()
    assert len(load(write(tmp_path, text)).listeners) == 2


def test_ssl_endpoint_is_refused_with_hint(tmp_path):
    """An ssl: endpoint would bypass the [tls] table's explicit settings: refused, pointing at [tls]."""
    problems = problems_of(tmp_path, listener('"ssl:8443:privateKey=key.pem"') + realm())
    assert problems == [
        'listeners[0].endpoint = "ssl:8443:privateKey=key.pem": expected a plain endpoint such as "tcp:8443"; '
        "configure TLS in the listener's [tls] table"
    ]


# --- realms, roles, permissions -------------------------------------------------------------------------------


def test_unknown_realm_referenced_by_authenticator(tmp_path):
    """An authenticator limited to a realm that is not defined is refused, listing the defined realms."""
    auth = '[listeners.auth.anonymous]\nrole = "anonymous"\nrealms = ["nope"]\n'
    problems = problems_of(tmp_path, listener(auth=auth) + realm())
    assert problems == ['listeners[0].auth.anonymous.realms = ["nope"]: unknown realm "nope"; defined realms: realm1']


def test_duplicate_realm_name(tmp_path):
    """The same realm defined twice is refused on the second definition."""
    problems = problems_of(tmp_path, listener() + realm() + realm())
    assert problems == ['realms[1].name = "realm1": expected a unique realm name; this one is defined twice']


def test_duplicate_role_in_realm(tmp_path):
    """The same role defined twice in one realm is refused on the second definition."""
    problems = problems_of(tmp_path, listener() + realm(roles=role() + role()))
    assert problems == [
        'realms[0].roles[1].name = "anonymous": expected a unique role name within the realm; this one is defined twice'
    ]


def test_duplicate_permission_in_role(tmp_path):
    """Two rules with the same uri and match in one role would silently shadow each other: refused."""
    rules = permission('"com.app."', allow='["publish"]') + permission('"com.app."', allow='["subscribe"]')
    problems = problems_of(tmp_path, listener() + realm(roles=role(permissions=rules)))
    assert problems == [
        'realms[0].roles[0].permissions[1].uri = "com.app.": a prefix rule for this URI is already defined in this role'
    ]


def test_same_uri_with_different_match_is_fine(tmp_path):
    """An exact and a prefix rule on the same URI text are different rules."""
    rules = permission('"com.app.topic"', match='"exact"') + permission('"com.app."') + permission('"com.app.topic."')
    config = load(write(tmp_path, listener() + realm(roles=role(permissions=rules))))
    assert len(config.realms["realm1"].roles["anonymous"].permissions) == 3


def test_prefix_not_ending_in_dot_is_refused(tmp_path):
    """A prefix grant on "com.app.admin" must not also cover "com.app.administrators": it must end in "."."""
    rules = permission('"com.app.admin"')
    problems = problems_of(tmp_path, listener() + realm(roles=role(permissions=rules)))
    assert problems == [
        'realms[0].roles[0].permissions[0].uri = "com.app.admin": expected a prefix ending in "." (or "" for every '
        'URI), so that a grant on "com.app.admin" cannot also match "com.app.administrators"'
    ]


@pytest.mark.parametrize("uri", ["", "com.app."])
def test_empty_prefix_and_dotted_prefix_are_accepted(tmp_path, uri):
    """The prefix "" (every URI) and a prefix ending in "." load."""
    config = load(write(tmp_path, listener() + realm(roles=role(permissions=permission(f'"{uri}"')))))
    assert config.realms["realm1"].roles["anonymous"].permissions[0].uri == uri


def test_invalid_realm_name(tmp_path):
    """A realm name must be a valid WAMP URI."""
    problems = problems_of(tmp_path, listener() + realm('"realm 1"'))
    assert problems == ['realms[0].name = "realm 1": expected a realm name: a valid WAMP URI such as "realm1"']


# --- several problems, and unreadable files --------------------------------------------------------------------

SEVERAL = (
    "colour = 1\n"
    + listener(keys='transports = "websocket"')
    + realm(keys='uri_check = "lax"')
)
SEVERAL_IN_FILE_ORDER = [
    "colour: unknown key; allowed: admin, cluster, flow, limits, listeners, realms",
    'listeners[0].transports = "websocket": expected a non-empty array of values from "websocket", "rawsocket", '
    "each at most once",
    'realms[0].uri_check = "lax": expected one of "loose", "strict"',
]


def test_several_problems_are_all_reported(tmp_path):
    """Validation does not stop at the first problem: every problem is reported, one line each."""
    problems = problems_of(tmp_path, SEVERAL)
    assert sorted(problems) == sorted(SEVERAL_IN_FILE_ORDER)


def test_several_problems_are_reported_in_file_order(tmp_path):
    """The problem lines follow the order of the file, so the operator can fix them top to bottom."""
    assert problems_of(tmp_path, SEVERAL) == SEVERAL_IN_FILE_ORDER


def test_not_toml_is_one_clear_line(tmp_path):
    """A file that is not TOML gives one line saying so, with the parser's position."""
    problems = problems_of(tmp_path, "[[listeners]\nendpoint = 'tcp:0'\n")
    assert len(problems) == 1
    assert "not valid TOML" in problems[0]
    assert "line 1" in problems[0]


def test_missing_file_is_one_clear_line(tmp_path):
    """A config file that does not exist gives one line saying it cannot be read."""
    with pytest.raises(ConfigError) as raised:
        load(tmp_path / "absent.toml")
    assert len(raised.value.problems) == 1
    assert "cannot read the config file: No such file or directory" in raised.value.problems[0]


# --- plugin tables: validated by the plugin when the service is built, before anything listens --------------------


def build(directory: Path, text: str) -> tuple[list[str], MemoryReactorClock]:
    """Load `text`, build the service on a memory reactor; return the ConfigError lines and the reactor."""
    config = load(write(directory, text))
    reactor = MemoryReactorClock()
    with pytest.raises(ConfigError) as raised:
        make_service(config, reactor)
    return raised.value.problems, reactor


def test_valid_config_builds_without_listening(tmp_path):
    """Building the service loads the plugins and makes the listeners, but opens no port until it is started."""
    reactor = MemoryReactorClock()
    top = make_service(load(write(tmp_path, listener() + realm())), reactor)
    assert [s.name for s in top] == ["listener0"]
    assert reactor.tcpServers == []


def test_anonymous_unknown_key_reported_at_build(tmp_path):
    """An unknown key in [listeners.auth.anonymous] stops the build with a line naming it; nothing listens."""
    auth = '[listeners.auth.anonymous]\nrole = "anonymous"\ncolour = 1\n'
    problems, reactor = build(tmp_path, listener(auth=auth) + realm())
    assert "listeners[0].auth.anonymous.colour: unknown key; allowed: role" in problems
    assert reactor.tcpServers == []


def test_anonymous_missing_role_reported_at_build(tmp_path):
    """[listeners.auth.anonymous] without role stops the build with a line naming the role key."""
    problems, _ = build(tmp_path, listener(auth="[listeners.auth.anonymous]\n") + realm())
    assert "listeners[0].auth.anonymous.role: missing; expected the role name anonymous clients get" in problems


def test_anonymous_plugin_problem_is_the_only_line(tmp_path):
    """A bad plugin table gives exactly one line, not a follow-on claim that no method is configured."""
    auth = '[listeners.auth.anonymous]\nrole = "anonymous"\ncolour = 1\n'
    problems, _ = build(tmp_path, listener(auth=auth) + realm())
    assert problems == ["listeners[0].auth.anonymous.colour: unknown key; allowed: role"]


def test_anonymous_role_of_wrong_type_is_not_called_missing(tmp_path):
    """role = 5 is reported as a wrong value (showing 5), not as a missing key."""
    problems, _ = build(tmp_path, listener(auth="[listeners.auth.anonymous]\nrole = 5\n") + realm())
    line = next(p for p in problems if p.startswith("listeners[0].auth.anonymous.role"))
    assert "missing" not in line
    assert line.startswith("listeners[0].auth.anonymous.role = 5: ")


def test_listener_without_auth_is_refused(tmp_path):
    """A listener with no authentication method is refused when the file is read: nobody could join (fail closed,
    and say so)."""
    problems = problems_of(tmp_path, listener(auth="") + realm())
    assert problems == ["listeners[0].auth: missing; expected at least one authentication method, e.g. [listeners[0].auth.anonymous] (nobody could join)"]


# --- keys added for authorization, flow control and operations -------------------------------------------------


@pytest.mark.parametrize("keys,expected", [
    ('allowed_origins = ["https://app.example.com/path"]',
     'listeners[0].websocket.allowed_origins = ["https://app.example.com/path"]: expected origins such as '
     '"https://app.example.com", "https://*.example.com:8443" or "null", without a path'),
    ('trusted_proxies = ["proxy.example.com"]',
     'listeners[0].websocket.trusted_proxies = ["proxy.example.com"]: expected IP addresses or networks such as '
     '"127.0.0.1", "::1", "10.0.0.0/8" or "fd00::/8" (a network without host bits)'),
    ("auto_ping_interval = 0.5",
     "listeners[0].websocket.auto_ping_interval = 0.5: expected 0 (off) or a number of seconds from 1 to 3600 "
     "(autobahn's timers tick in seconds)"),
    ("close_handshake_timeout = 0.5",
     "listeners[0].websocket.close_handshake_timeout = 0.5: expected a number from 1.0 to 300.0"),
])
def test_bad_websocket_hardening_keys(tmp_path, keys, expected):
    """Origins with a path, proxies that are not IP addresses, and sub-second autobahn timers are refused."""
    problems = problems_of(tmp_path, listener(tables=f"[listeners.websocket]\n{keys}\n") + realm())
    assert problems == [expected]


def test_admin_endpoint_may_not_share_a_listener_address(tmp_path):
    """The admin listener cannot bind the address a WAMP listener uses."""
    text = '[admin]\nendpoint = "tcp:9400:interface=127.0.0.1"\n' + listener('"tcp:9400:interface=127.0.0.1"') + realm()
    assert problems_of(tmp_path, text) == [
        'admin.endpoint = "tcp:9400:interface=127.0.0.1": the address is already used by listeners[0]; expected a '
        "port no listener uses"
    ]


def test_bad_admin_endpoint(tmp_path):
    """An admin endpoint that is not a Twisted server endpoint is refused."""
    problems = problems_of(tmp_path, '[admin]\nendpoint = "bogus:1"\n' + listener() + realm())
    assert len(problems) == 1 and problems[0].startswith('admin.endpoint = "bogus:1": expected a Twisted server')


def test_bad_slow_consumer_policy(tmp_path):
    """slow_consumer is "drop" or "disconnect", on a realm and on a role."""
    problems = problems_of(tmp_path, listener() + realm(keys='slow_consumer = "queue"',
                                                        roles=role(keys='slow_consumer = "ignore"')))
    assert problems == [
        'realms[0].slow_consumer = "queue": expected one of "drop", "disconnect"',
        'realms[0].roles[0].slow_consumer = "ignore": expected one of "drop", "disconnect"',
    ]


def test_authorizer_for_an_unknown_role(tmp_path):
    """A [[realms.authorizers]] table restricted to a role the realm does not define is refused."""
    text = listener() + realm() + '\n[[realms.authorizers]]\nplugin = "static"\nroles = ["ghost"]\n'
    assert problems_of(tmp_path, text) == [
        'realms[0].authorizers[0].roles = ["ghost"]: unknown role "ghost"; defined roles: anonymous'
    ]


@pytest.mark.parametrize("uri", ['"app.user{authid}.inbox"', '"app.{userid}.inbox"', '"app.{authid"'])
def test_placeholder_must_be_a_whole_component(tmp_path, uri):
    """{authid} / {authrole} must stand alone as URI components; anything else with braces is refused."""
    problems = problems_of(tmp_path, listener() + realm(roles=role(permissions=permission(uri, '"exact"'))))
    assert problems == [f"realms[0].roles[0].permissions[0].uri = {uri}: expected a valid URI pattern whose "
                        "placeholders {authid} / {authrole} are whole components"]


@pytest.mark.parametrize("keys,key,allowed", [
    ("max_outgoing_buffer = 1", "max_outgoing_buffer", "an integer from 65536 to 2147483648"),
    ("shutdown_timeout = -1", "shutdown_timeout", "a number from 0.0 to 3600.0"),
    ("[limits.auth_failures]\nlockout_after = 0", "auth_failures.lockout_after", "an integer from 1 to 100000"),
    ("max_wildcard_shapes = 0", "max_wildcard_shapes", "an integer from 1 to 100000"),
    ("max_wildcard_shapes = 100001", "max_wildcard_shapes", "an integer from 1 to 100000"),
])
def test_bad_limits(tmp_path, keys, key, allowed):
    """The newer [limits] keys are range-checked like the others."""
    problems = problems_of(tmp_path, "[limits]\n" + keys + "\n" + listener() + realm())
    assert len(problems) == 1
    assert problems[0].startswith(f"limits.{key} = ") and problems[0].endswith(f": expected {allowed}")


# --- secrets never appear in a config error (they reach terminals, CI output and, on a refused reload, the log) ------


TICKET_HASH = "scrypt$ln=15,r=8,p=1$r0uN4pVpXFbBAwlvstPM+g$5/+Ba31Z6dzR5m5gLJlqhcO64ZRF9wwPRdXevXMVldw"


def ticket_auth(row: str) -> str:
    return (f'[listeners.auth.ticket]\n[[listeners.auth.ticket.principals]]\nauthid = "joe"\nrole = "anonymous"\n'
            f"{row}\n")


def wampcra_auth(row: str) -> str:
    return (f'[listeners.auth.wampcra]\n[[listeners.auth.wampcra.principals]]\nauthid = "ann"\nrole = "anonymous"\n'
            f"{row}\n")


@pytest.mark.parametrize("auth, secret, expected", [
    (ticket_auth(f'secret_hash = "{TICKET_HASH}"\npasword = "hunter2"'), "hunter2",
     "listeners[0].auth.ticket.principals[0].pasword: unknown key; allowed: authid, role, realm, secret_hash"),
    (wampcra_auth('secret = ["s3cr3t"]'), "s3cr3t",
     "listeners[0].auth.wampcra.principals[0].secret = <redacted array>: expected a non-empty string"),
    (ticket_auth('secret_hash = "s3cr3t"'), "s3cr3t",
     "listeners[0].auth.ticket.principals[0].secret_hash = <redacted string>: expected scrypt$ln=<log2 N>,r=<r>,"
     "p=<p>$<salt, base64>$<key, base64> (see `wampgate hash-secret`)"),
    (ticket_auth(f'secret_hash = "{TICKET_HASH}"\nsecret = "s3cr3t"'), "s3cr3t",
     "listeners[0].auth.ticket.principals[0].secret: unknown key; allowed: authid, role, realm, secret_hash"),
    ('[listeners.auth.dynamic]\nprocedure = "com.example.authenticate"\nbackend_authrole = "backend"\n'
     'pasword = "hunter2"\n', "hunter2",
     "listeners[0].auth.dynamic.pasword = <redacted string>: unknown key; allowed: procedure, realm, timeout, "
     "authmethod, backend_authrole, backend_authid"),
])
def test_plugin_config_errors_never_show_a_secret(tmp_path, auth, secret, expected):
    """A misspelt `pasword`, a `secret` of the wrong type, a malformed `secret_hash`, and an unknown key in a plugin
    that reports raw values itself (dynamic): the line names the key path and what is allowed, never the value."""
    problems, _ = build(tmp_path, listener(auth=auth) + realm())
    assert problems == [expected]
    assert secret not in "\n".join(problems)


def test_router_config_errors_never_show_a_secret(tmp_path, tls_files):
    """In the router's own tables: a misspelt authenticator name holding a string (an unknown key) and a TLS
    `private_key` of the wrong type show only the value's type."""
    cert, _ = tls_files
    tables = f'[listeners.tls]\ncertificate = "{cert}"\nprivate_key = 31337\n'
    problems = problems_of(tmp_path, listener(tables=tables, auth='[listeners.auth]\ntikcet = "s3cr3t"\n') + realm())
    assert problems[:2] == [
        "listeners[0].tls.private_key = <redacted integer>: expected a string",
        "listeners[0].auth.tikcet = <redacted string>: expected a table",
    ]
    # the list of installed authenticators depends on the environment (tests install a third-party one)
    assert problems[2].startswith(
        "listeners[0].auth.tikcet = <redacted string>: expected an installed authenticator: unknown plugin 'tikcet'; "
        "installed in wampgate.authenticators: anonymous, cookie, cryptosign, dynamic, jwt, ")
    assert len(problems) == 3
    assert "s3cr3t" not in "\n".join(problems) and "31337" not in "\n".join(problems)


@pytest.mark.parametrize("path, secret", [
    ("secret", True), ("principals[2].secret_hash", True), ("Password", True), ("api_token", True),
    ("public_keys[3]", True), ("listeners[0].auth.ticket", True), ("a.passphrase", True), ("role", False),
    ("authid", False), ("max_outgoing_buffer", False), ("principals[0]", False),
])
def test_which_keys_look_secret(path, secret):
    """The last component of the key path (without array indexes), in any case, containing secret, password,
    passwd, passphrase, token, key, ticket or credential."""
    from wampgate.configreader import looks_secret

    assert looks_secret(path) is secret
