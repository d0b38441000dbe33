"""TLS channel binding for the challenge-response methods (cryptosign, scram): what the client asks for in
`HELLO.authextra.channel_binding`, whether the connection can honour it, and whether a principal or a listener
insists on one.

The router knows the binding data of each TLS connection (`TransportInfo.channel_bindings`): `tls-unique` on TLS 1.2,
`tls-exporter` (RFC 9266) on TLS 1.3. A client that asks for a type the connection does not have (plain TCP, the
other TLS version, an unknown name) is refused: going on without it would let the client believe it is protected
against a relayed login when it is not. `channel_binding = "required"`, on a principal or for the whole
authenticator table (that is, per listener), refuses a login without a binding; it is checked after the proof, so
the refusal is as generic as a wrong secret and says nothing about the principal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wampgate.plugin import AuthRequest, Table

OPTIONAL, REQUIRED = "optional", "required"
POLICIES = (OPTIONAL, REQUIRED)
TYPES = ("tls-unique", "tls-exporter")


def read_policy(table: Table, default: str = OPTIONAL) -> str:
    """The `channel_binding` key of a table (an authenticator's, or one principal's row)."""
    return table.string("channel_binding", default=default, choices=POLICIES)


def requested(request: AuthRequest) -> tuple[str | None, bytes | None, str | None]:
    """(binding type, the connection's binding data, problem): (None, None, None) when the client asks for no
    binding; a problem (for the log) when it asks for one this connection cannot honour."""
    extra = request.authextra if isinstance(request.authextra, Mapping) else {}
    wanted: Any = extra.get("channel_binding")
    if wanted is None:
        return None, None, None
    if wanted not in TYPES:
        return None, None, f"channel binding {str(wanted)[:40]!r} requested; supported: {', '.join(TYPES)}"
    data = request.transport.channel_bindings.get(wanted)
    if data is None:
        offered = ", ".join(request.transport.channel_bindings) or "none (not a TLS connection)"
        return None, None, f"channel binding {wanted!r} requested; this connection offers {offered}"
    return wanted, data, None


def refusal(policy: str, binding: str | None) -> str | None:
    """Why a login is refused for its lack of a binding (None when it is fine)."""
    if policy == REQUIRED and binding is None:
        return "channel binding is required for this principal or listener, and the client used none"
    return None
