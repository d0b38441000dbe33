"""A joined session as the core sees it: identity, the features it announced, and an opaque channel."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The spec's feature for payload passthrough in the ppt_* form, which autobahn's feature classes do not know: the
# glue puts a client's announcement onto its parsed role features under this name (router/tx/wire.py).
PASSTHRU_FEATURE = "payload_passthru_mode"


class Peer:
    """Mutable only in `channel`'s own state; the core reads the identity and never touches the channel.

    `channel` is whatever the I/O layer uses to reach the session; the core passes it back in effects.
    """

    __slots__ = (
        "session_id",
        "realm",
        "authid",
        "authrole",
        "authmethod",
        "authprovider",
        "authextra",
        "roles",
        "channel",
        "node",
    )

    def __init__(
        self,
        session_id: int,
        realm: str,
        *,
        authid: str,
        authrole: str,
        authmethod: str,
        authprovider: str,
        authextra: Mapping[str, Any] | None = None,
        roles: Mapping[str, Any] | None = None,
        channel: Any = None,
        node: str | None = None,
    ):
        self.session_id = session_id
        self.realm = realm
        self.authid = authid
        self.authrole = authrole
        self.authmethod = authmethod
        self.authprovider = authprovider
        self.authextra = authextra or {}
        self.roles = roles or {}
        self.channel = channel
        self.node = node  # None: joined on this router; else the cluster node it joined on (router/tx/cluster)

    def supports(self, role: str, feature: str) -> bool:
        """Whether the client announced `feature` for `role` in its HELLO."""
        features = self.roles.get(role)
        return bool(getattr(features, feature, None)) if features is not None else False

    def __repr__(self) -> str:
        return f"<Peer {self.session_id} {self.authid!r}/{self.authrole!r} on {self.realm!r}>"
