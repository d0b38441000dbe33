"""conf/production.toml's jwt table, as shipped: a token from the issuer may pick only the roles the table allows, so
a token claiming "backend" (the role that may publish anywhere under `app.`) is refused, while a "user" token joins."""

from __future__ import annotations

import tomllib
from pathlib import Path

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from twisted.internet import task

from wampgate.interfaces import PluginContext
from wampgate.model import Denied, Identity
from wampgate.plugins.authn.jwt import JwtAuthenticator
from tests.plugins import auth_request

PRODUCTION = Path(__file__).resolve().parents[2] / "conf" / "production.toml"
NOW = 1_700_000_000


@pytest.fixture
def jwt_table() -> dict:
    """The [listeners.auth.jwt] table of the shipped conf/production.toml."""
    (listener,) = tomllib.loads(PRODUCTION.read_text(encoding="utf-8"))["listeners"]
    return listener["auth"]["jwt"]


@pytest.fixture
def issuer(tmp_path, jwt_table):
    """The issuer's signing key; its public half where the table says, beside a stand-in config file."""
    key = ec.generate_private_key(ec.SECP256R1())
    path = tmp_path / jwt_table["public_key"]
    path.parent.mkdir(parents=True)
    path.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo))
    return key


def login(jwt_table, issuer, tmp_path, role: str):
    clock = task.Clock()
    clock.advance(NOW)
    authenticator = JwtAuthenticator(jwt_table, reactor=clock, context=PluginContext(base_dir=tmp_path))
    claims = {"sub": "mallory", "role": role, "iss": jwt_table["issuer"], "aud": jwt_table["audience"],
              "exp": NOW + 300}
    token = pyjwt.encode(claims, issuer, algorithm="ES256")
    request = auth_request(None, method="jwt")
    return authenticator.finish(request, authenticator.begin(request), token, {})


def test_a_token_claiming_backend_is_refused(jwt_table, issuer, tmp_path):
    """A valid token from the configured issuer that claims role "backend" is refused: production.toml's `roles`
    lets tokens pick "user" only."""
    assert login(jwt_table, issuer, tmp_path, "backend") == Denied(
        "token claims role 'backend', which roles does not allow")


def test_a_user_token_joins_as_user(jwt_table, issuer, tmp_path):
    """The same issuer's token claiming "user" joins as user (the allow-list is not a blanket refusal)."""
    assert login(jwt_table, issuer, tmp_path, "user") == Identity(authid="mallory", authrole="user",
                                                                  authmethod="jwt", authprovider="jwt")
