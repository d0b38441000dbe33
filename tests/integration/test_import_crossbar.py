"""`wampgate import-crossbar PATH` on real Crossbar configs: the one `crossbar init` writes
(tests/fixtures/crossbar/init-config.json) and one exercising every authentication method the converter maps
(every-method.json: ticket, WAMP-CRA plain and salted, cryptosign, TLS pinned by SHA-1 fingerprint, anonymous and
cookie, on a universal transport and a TLS WebSocket transport, plus things it cannot map). Each result passes
`wampgate check-config`; a router started on it lets every principal in with real Autobahn clients; what could not
be converted is listed with its reason, and no ticket appears in the output."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import pytest_twisted
import txaio
from autobahn.wamp.auth import derive_key
from autobahn.wamp.cryptosign import CryptosignKey
from cryptography import x509
from cryptography.hazmat.primitives import hashes

from tests.support import auth_clients as auth
from tests.support.clients import Target
from tests.support.wait import free_port

txaio.use_twisted()

WAMPGATE = Path(sys.executable).parent / "wampgate"
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "crossbar"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(WAMPGATE), *args], capture_output=True, text=True, timeout=60)


def imported(config_file: Path) -> str:
    """The TOML `import-crossbar` prints, after checking it exits 0 and passes `check-config`."""
    done = run("import-crossbar", str(config_file))
    assert done.returncode == 0, done.stderr
    toml_file = config_file.parent / "imported.toml"
    toml_file.write_text(done.stdout)
    checked = run("check-config", str(toml_file))
    assert checked.returncode == 0, checked.stderr + "\n" + done.stdout
    return done.stdout


def notes_of(toml: str) -> list[str]:
    return [line[len("#   - "):] for line in toml.splitlines() if line.startswith("#   - ")]


# -- crossbar init -------------------------------------------------------------------------------------------------


@pytest_twisted.ensureDeferred
async def test_crossbar_init_config_converts_and_serves(tmp_path, stoppable):
    """The node directory `crossbar init` writes (.crossbar/config.json beside web/): a RawSocket listener and a
    WebSocket listener on /ws with static files from web/, both anonymous into realm1 as in Crossbar; the nodeinfo
    page and options without a counterpart are listed. Anonymous clients join over both."""
    node = tmp_path / ".crossbar"
    node.mkdir()
    (tmp_path / "web").mkdir()
    web_port, raw_port = free_port(), free_port()
    text = (FIXTURES / "init-config.json").read_text()
    assert text.count('"port": 8080') == text.count('"port": 8081') == 1
    (node / "config.json").write_text(text.replace('"port": 8080', f'"port": {web_port}')
                                      .replace('"port": 8081', f'"port": {raw_port}'))
    toml = imported(node / "config.json")
    assert f'static_dir = "{tmp_path / "web"}"' in toml
    notes = notes_of(toml)
    assert any(n.startswith("workers[0].transports[1].paths.info: a 'nodeinfo' service") for n in notes)
    assert any(n.startswith("workers[0].transports[1].paths.ws.options.fail_by_drop:") for n in notes)
    router = await stoppable(toml, tmp_path)
    for target in (Target(port=web_port, transport="websocket"),
                   Target(port=raw_port, transport="rawsocket", serializer="cbor")):
        session = await auth.join(target, "realm1")
        assert (session.welcome.authmethod, session.welcome.authrole) == ("anonymous", "anonymous")
        await auth.leave(session)
    assert router.port("web1") == web_port


# -- every authentication method -------------------------------------------------------------------------------


@pytest.fixture
def every_method(tmp_path, certs):
    """every-method.json with free ports, the test certificates beside it, a salted WAMP-CRA key, a cryptosign key,
    and the client certificate's SHA-1 pin filled in."""
    ports = {"18080": free_port(), "18443": free_port()}
    for name in ("server_chain", "server_key", "ca"):
        shutil.copyfile(getattr(certs, name), tmp_path / Path(getattr(certs, name)).name)
    erin = CryptosignKey.from_bytes(bytes(range(32)))
    sha1 = x509.load_pem_x509_certificate(certs.client_cert.read_bytes()).fingerprint(hashes.SHA1()).hex().upper()
    text = (FIXTURES / "every-method.json").read_text()
    for placeholder, value in {"__DAVE_KEY__": derive_key("dave-secret", "salt123", 1000, 32).decode(),
                               "__ERIN_PUBKEY__": erin.public_key(),
                               "__CLIENT_SHA1__": ":".join(sha1[i:i + 2] for i in range(0, 40, 2)),
                               **{f'"port": {old}': f'"port": {new}' for old, new in ports.items()}}.items():
        assert placeholder in text
        text = text.replace(placeholder, str(value))
    (tmp_path / "config.json").write_text(text)
    return tmp_path / "config.json", ports, erin


@pytest_twisted.ensureDeferred
async def test_every_method_converts_and_every_principal_logs_in(every_method, certs, stoppable):
    """alice (ticket; also with no realm in HELLO: her principal's realm1), carol (WAMP-CRA), dave (salted
    WAMP-CRA), erin (cryptosign, into realm devices), anonymous, alice again by cookie (`cbtid`), over WebSocket
    and RawSocket; sensor-1 by its pinned client certificate on the TLS listener."""
    config_file, ports, erin = every_method
    toml = imported(config_file)
    router = await stoppable(toml, config_file.parent)
    main = Target(port=ports["18080"])

    async def joins(target, realm, expected, **options):
        session = await auth.join(target, realm, **options)
        welcome = session.welcome
        assert (welcome.realm, welcome.authid, welcome.authrole, welcome.authmethod) == expected
        set_cookie = getattr(session._transport, "http_headers", {}).get("set-cookie")
        await auth.leave(session)
        return set_cookie

    set_cookie = await joins(main, None, ("realm1", "alice", "frontend", "ticket"), authmethods=["ticket"],
                             authid="alice", answer=auth.ticket("alice-secret"))
    cookie = set_cookie.split(";")[0]
    assert cookie.startswith("cbtid=")
    await joins(main, "realm1", ("realm1", "alice", "frontend", "cookie"), authmethods=["cookie"],
                headers={"Cookie": cookie})
    await joins(main, "realm1", ("realm1", "carol", "backend", "wampcra"), authmethods=["wampcra"], authid="carol",
                answer=auth.wampcra("carol-secret"))
    await joins(main, "realm1", ("realm1", "dave", "backend", "wampcra"), authmethods=["wampcra"], authid="dave",
                answer=auth.wampcra("dave-secret"))
    await joins(main, None, ("devices", "erin", "device", "cryptosign"), authmethods=["cryptosign"], authid="erin",
                authextra={"pubkey": erin.public_key()}, answer=auth.cryptosign(erin))
    session = await auth.join(main, "realm1")
    assert session.welcome.authrole == "anonymous"
    await auth.leave(session)
    raw = Target(port=ports["18080"], transport="rawsocket", serializer="msgpack")
    await joins(raw, "realm1", ("realm1", "carol", "backend", "wampcra"), authmethods=["wampcra"], authid="carol",
                answer=auth.wampcra("carol-secret"))
    secure = Target(port=ports["18443"], tls_ca=certs.ca, client_cert=(certs.client_cert, certs.client_key))
    await joins(secure, None, ("devices", "sensor-1", "device", "tls"), authmethods=["tls"])
    assert router.port("secure") == ports["18443"]


def test_every_method_lists_what_it_cannot_map_and_hides_tickets(every_method):
    """Tickets are hashed (neither appears), and each unmappable part is listed with its Crossbar key: the ticket
    from the environment, the weak salted user, the dynamic authenticators, the UBJSON serializer, the MQTT transport,
    the raw Twisted endpoint, the role's authorizer, the event store, the container worker and the components."""
    config_file, _, _ = every_method
    done = run("import-crossbar", str(config_file))
    assert done.returncode == 0
    assert "alice-secret" not in done.stdout and "${TICKET_SECRET}" not in done.stdout
    notes = notes_of(done.stdout)
    expected = [
        "workers[0].transports[0].websocket.ws.auth.ticket.principals.env.ticket: not a literal ticket",
        "workers[0].transports[0].websocket.ws.auth.wampcra.users.weak: Wampgate wants at least 1,000 iterations",
        "workers[0].transports[0].websocket.ws.auth.scram: a 'dynamic' scram authenticator",
        "workers[0].transports[1].auth.wampcra: a 'dynamic' wampcra authenticator",
        "workers[0].transports[0].rawsocket.serializers: 'ubjson' is not spoken",
        "workers[0].transports[2].type: a 'mqtt' transport has no Wampgate counterpart",
        "workers[0].transports[3].endpoint: a 'twisted' endpoint",
        "workers[0].transports[1].endpoint.tls.dhparam: no such TLS option",
        "workers[0].realms[0].roles[4].authorizer: dynamic authorization by 'com.example.authorize'",
        "workers[0].realms[0].roles[1].permissions[0].uri: prefix 'com.example' became 'com.example.'",
        "workers[0].realms[0].store: event history",
        "workers[0].components: components run as programs of their own",
        "workers[1].type: a 'container' worker",
    ]
    for start in expected:
        assert any(note.startswith(start) for note in notes), start
    assert len(notes) == 21, "\n".join(notes)
    assert done.stderr == "wampgate import-crossbar: 21 option(s) not converted; they are listed at the top of the " \
                          "output\n"


@pytest.mark.parametrize("content, message", [
    (None, "cannot read"),
    ("workers: []\n", "is not JSON"),
    ("[1, 2]", "expected a JSON object with a `workers` list"),
    ('{"workers": {}}', "expected a JSON object with a `workers` list"),
])
def test_bad_input_is_refused(tmp_path, content, message):
    """A missing file, YAML, or JSON that is not a node config: exit status 1, nothing on stdout, the reason on
    stderr."""
    path = tmp_path / "config.json"
    if content is not None:
        path.write_text(content)
    done = run("import-crossbar", str(path))
    assert (done.returncode, done.stdout) == (1, "")
    assert done.stderr.startswith("wampgate import-crossbar: ") and message in done.stderr


def test_json_cli_output_is_stable(tmp_path):
    """Converting the same config twice gives the same text apart from the ticket hashes' random salts."""
    config = json.loads((FIXTURES / "init-config.json").read_text())
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    assert run("import-crossbar", str(path)).stdout == run("import-crossbar", str(path)).stdout
