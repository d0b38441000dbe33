"""The TLS channel bindings of a connection (RFC 5929 `tls-unique` on TLS 1.2, RFC 9266 `tls-exporter` on TLS 1.3),
as the values authenticators compare a client's binding with.

A binding ties an authentication to this one TLS connection: a signature or proof relayed from another connection
carries that connection's binding and is refused. `tls-unique` is the first Finished message of the handshake,
which in a full handshake is the client's (the server's own `get_finished()` would be the second). The listeners
never resume sessions (no session cache, no tickets: router/tx/tls.py), so every handshake is a full one.
`tls-unique` is undefined on TLS 1.3 and `tls-exporter` is only defined there: each version offers exactly one.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

TLS_UNIQUE = "tls-unique"
TLS_EXPORTER = "tls-exporter"
EXPORTER_LABEL = b"EXPORTER-Channel-Binding"  # RFC 9266, section 2: with an empty context, 32 bytes
EXPORTER_BYTES = 32
_NONE: Mapping[str, bytes] = MappingProxyType({})


def channel_bindings(transport) -> Mapping[str, bytes]:
    """{binding type: binding data} for a TLS transport whose handshake is done; empty for plain TCP, and for
    anything that cannot say (then no binding can be satisfied, which fails closed)."""
    get_handle = getattr(transport, "getHandle", None)
    if get_handle is None:
        return _NONE
    try:
        connection = get_handle()
        version = connection.get_protocol_version_name()
        if version == "TLSv1.2":
            finished = connection.get_peer_finished()
            return MappingProxyType({TLS_UNIQUE: bytes(finished)}) if finished else _NONE
        if version == "TLSv1.3":
            exported = connection.export_keying_material(EXPORTER_LABEL, EXPORTER_BYTES, b"")
            return MappingProxyType({TLS_EXPORTER: bytes(exported)})
    except Exception:  # not a pyOpenSSL connection, or the handshake is not finished
        return _NONE
    return _NONE
