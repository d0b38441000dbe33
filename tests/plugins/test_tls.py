"""The `tls` authenticator: a verified client certificate's CN, DNS name or e-mail mapped to a role, no challenge."""

from __future__ import annotations

import pytest
from twisted.internet import task
from zope.interface.verify import verifyObject

from wampgate.plugins.authn.tls import TlsAuthenticator
from wampgate.interfaces import IAuthenticator
from wampgate.model import Denied, Identity
from tests.plugins import auth_request, certificate, config_error, transport


def hello(cert=None):
    """A HELLO over a connection that presented `cert` (None: no certificate)."""
    return auth_request(None, method="tls", via=transport(peer_certificate=cert))


def build(**config):
    return TlsAuthenticator(config, reactor=task.Clock())


CN_CONFIG = {"principals": [{"authid": "alice", "role": "user"}, {"authid": "backend", "role": "backend"}]}


def test_valid_config_loads():
    """A principal list (authid_from defaulting to "cn") gives an IAuthenticator for "tls"."""
    authenticator = build(**CN_CONFIG)
    assert verifyObject(IAuthenticator, authenticator)
    assert authenticator.authmethod == "tls"


@pytest.mark.parametrize("config, key", [
    ({}, "principals"),
    ({"authid_from": "ou", "default_role": "x"}, "authid_from"),
    ({"authid_from": 1, "default_role": "x"}, "authid_from"),
    ({"default_role": ""}, "default_role"),
    ({"default_role": "x", "roles": ["x"]}, "roles"),
    ({"principals": [{"authid": "a", "role": "r", "secret": "s"}]}, "principals[0].secret"),
    ({"principals": [{"authid": "a"}]}, "principals[0].role"),
    ({"principals": [{"role": "r"}]}, "principals[0].authid"),
    ({"authid_from": "dns", "principals": [{"authid": "A.example", "role": "r"}, {"authid": "a.EXAMPLE", "role": "r"}]},
     "principals[1].authid"),
    ({"principals": "alice"}, "principals"),
])
def test_bad_config_names_the_key(config, key):
    """Each kind of mistake raises PluginConfigError naming the exact key (DNS authids are unique ignoring case)."""
    assert config_error(TlsAuthenticator, config, reactor=task.Clock()).key == key


def test_verified_certificate_by_common_name():
    """A verified certificate whose CN is listed: that principal's role, authmethod and authprovider "tls", with the
    certificate's fingerprint in authextra; right away, no challenge."""
    answer = build(**CN_CONFIG).begin(hello(certificate(common_name="backend")))
    assert answer == Identity("backend", "backend", "tls", "tls", {"cert_sha256": "ab" * 32})


def test_no_certificate_is_denied():
    """Without a client certificate there is nothing to authenticate with."""
    assert build(**CN_CONFIG).begin(hello(None)) == Denied("no TLS client certificate")


def test_unverified_certificate_is_denied():
    """A certificate that did not verify against the listener's client_ca is refused even if its CN is listed."""
    answer = build(**CN_CONFIG).begin(hello(certificate(verified=False)))
    assert isinstance(answer, Denied) and "not verified" in answer.reason


def test_unlisted_certificate_without_default_role_is_denied():
    """A verified certificate for a name not listed, with no default_role: refused."""
    assert isinstance(build(**CN_CONFIG).begin(hello(certificate(common_name="mallory"))), Denied)


def test_unlisted_certificate_gets_default_role():
    """With default_role, a verified unlisted certificate joins under its own name with that role."""
    authenticator = build(default_role="device", **CN_CONFIG)
    assert authenticator.begin(hello(certificate(common_name="sensor-7"))).authrole == "device"
    assert authenticator.begin(hello(certificate(common_name="sensor-7"))).authid == "sensor-7"
    assert authenticator.begin(hello(certificate(common_name="alice"))).authrole == "user"


def test_default_role_alone_is_enough():
    """A listener may accept every verified certificate with one role and list nobody."""
    assert build(default_role="device").begin(hello(certificate())) == Identity(
        "alice", "device", "tls", "tls", {"cert_sha256": "ab" * 32})


def test_certificate_without_common_name_is_denied():
    """authid_from = "cn" and no CN in the certificate: refused, even with a default_role."""
    assert isinstance(build(default_role="device").begin(hello(certificate(common_name=None))), Denied)


def test_dns_names_compare_without_case():
    """authid_from = "dns": any listed subjectAltName DNS name matches, regardless of case; the authid is the
    lower-cased configured name."""
    authenticator = build(authid_from="dns", principals=[{"authid": "Backend.Example.com", "role": "backend"}])
    cert = certificate(common_name="ignored", dns_names=("www.example.com", "BACKEND.example.COM"))
    assert authenticator.begin(hello(cert)) == Identity("backend.example.com", "backend", "tls", "tls",
                                                        {"cert_sha256": "ab" * 32})


def test_two_listed_dns_names_are_ambiguous():
    """A certificate naming two different listed principals is refused rather than guessed."""
    authenticator = build(authid_from="dns", principals=[{"authid": "a.example", "role": "user"},
                                                         {"authid": "b.example", "role": "admin"}])
    answer = authenticator.begin(hello(certificate(dns_names=("a.example", "b.example"))))
    assert isinstance(answer, Denied) and "several" in answer.reason


def test_email_names():
    """authid_from = "email": a listed subjectAltName e-mail address maps to its role; the CN is ignored."""
    authenticator = build(authid_from="email", principals=[{"authid": "alice@example.com", "role": "user"}])
    assert authenticator.begin(hello(certificate(emails=("alice@example.com",)))).authid == "alice@example.com"
    assert isinstance(authenticator.begin(hello(certificate(emails=()))), Denied)


def test_finish_is_always_denied():
    """There is no challenge, so an AUTHENTICATE can only be refused."""
    assert isinstance(build(**CN_CONFIG).finish(hello(certificate()), None, "x", {}), Denied)
