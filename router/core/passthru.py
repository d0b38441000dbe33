"""A payload in the WAMP spec's passthrough form (advanced profile, "Payload Passthru Mode"), as the core sees it.

In that form the payload is the only item of args, one binary value, and the message's options carry `ppt_scheme`
and optionally `ppt_serializer`, `ppt_cipher` and `ppt_keyid`, which must reach the EVENT, INVOCATION, RESULT or ERROR
unchanged. Autobahn's message classes have no place for those options (their enc_* attributes are Autobahn's own,
older form, and their constructors assert it), so the glue hands the core that one item as a `PassthruPayload`: the
bytes, remembering their options. The core copies args unchanged into what it sends and retains, so the form
survives routing without the core doing anything; the glue writes it out again (router/tx/passthru.py).

What the core must do is not read it: like Autobahn's transparent `payload`, such args are opaque (`is_opaque`), so
the router's own procedures refuse them and event history does not keep them.
"""

from __future__ import annotations

from typing import Any


class PassthruPayload(bytes):
    """Opaque payload bytes that remember the ppt_* options they arrived with, as (name, value) pairs in the
    spec's order."""

    options: tuple[tuple[str, str], ...]

    def __new__(cls, data: bytes, options: tuple[tuple[str, str], ...]) -> PassthruPayload:
        payload = super().__new__(cls, data)
        payload.options = options
        return payload


def passthru_of(args: Any) -> PassthruPayload | None:
    """The passthrough payload `args` holds, or None when they are ordinary args."""
    if type(args) is list and len(args) == 1 and type(args[0]) is PassthruPayload:
        return args[0]
    return None


def is_opaque(msg: Any) -> bool:
    """Whether the application payload of `msg` (a PUBLISH, CALL, YIELD, ERROR, or a retained event) is one the
    router cannot read: Autobahn's transparent `payload`, or the spec's passthrough form."""
    return msg.payload is not None or passthru_of(msg.args) is not None
