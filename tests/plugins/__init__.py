"""Tests of the built-in plugins, called directly: no sockets, no router. Requests and transports are built as values
with the helpers below; time comes from a `twisted.internet.task.Clock`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from wampgate.interfaces import PluginConfigError
from wampgate.model import AuthRequest, ClientCertificate, TransportInfo


def transport(**fields: Any) -> TransportInfo:
    """A secure WebSocket connection from loopback, with `fields` overriding."""
    values: dict[str, Any] = dict(listener="main", kind="websocket", peer="tcp4:127.0.0.1:50312", is_secure=True,
                                  serializer="json")
    values.update(fields)
    return TransportInfo(**values)


def auth_request(authid: str | None = None, *, authextra: Mapping[str, Any] | None = None, method: str = "ticket",
                 session_id: int = 4242, via: TransportInfo | None = None) -> AuthRequest:
    """A HELLO for realm1 offering `method`."""
    return AuthRequest(session_id=session_id, realm="realm1", authid=authid, authmethods=(method,),
                       authextra=authextra or {}, transport=via or transport())


def certificate(**fields: Any) -> ClientCertificate:
    """A verified client certificate for CN=alice, with `fields` overriding."""
    values: dict[str, Any] = dict(verified=True, subject="CN=alice,O=Example", issuer="CN=Example CA",
                                  common_name="alice", dns_names=(), emails=(), sha256="ab" * 32, serial=7)
    values.update(fields)
    return ClientCertificate(**values)


def config_error(factory, config: Mapping[str, Any], **keywords: Any) -> PluginConfigError:
    """The PluginConfigError that building `factory` with `config` raises (fails the test if none)."""
    with pytest.raises(PluginConfigError) as caught:
        factory(config, **keywords)
    return caught.value
