"""Payload passthrough in the WAMP spec's form (advanced profile, "Payload Passthru Mode"): read on the way in and
written on the way out, so the routing core only copies it (router/core/passthru.py says how it travels there).

In that form a PUBLISH, CALL, YIELD or callee ERROR carries `ppt_scheme` (required), and optionally `ppt_serializer`,
`ppt_cipher` and `ppt_keyid`, in its options, and its payload as the only item of args: one binary value, no kwargs.

Autobahn Python reads and writes only its own older form (`enc_algo`, `enc_key`, `enc_serializer` and a bare payload
in place of args). It maps the ppt_* names to those attributes only for FlatBuffers (ppt_scheme -> enc_algo,
ppt_serializer -> enc_serializer, ppt_keyid -> enc_key, ppt_cipher nowhere); for JSON, MessagePack and CBOR it parses
the spec's form as an ordinary one-argument message and drops the ppt_* options. Putting them into the enc_*
attributes would not do: the older form would then be written out, `ppt_cipher` has no attribute, and Autobahn
asserts that enc_algo is one of its own names (the spec's "wamp" is not). So the one argument becomes a
PassthruPayload that keeps its options, and `spec_form` writes them back into the details.

Pure: no Twisted, no I/O.
"""

from __future__ import annotations

from autobahn.wamp import message as wamp

from wampgate.core.passthru import PassthruPayload, passthru_of

SCHEME = "ppt_scheme"
OPTIONS = (SCHEME, "ppt_serializer", "ppt_cipher", "ppt_keyid")
_OPTION_SET = frozenset(OPTIONS)
# The longest value of one ppt_* option. A scheme, serializer or cipher is a short name; a key id a hex or base64
# key, a URI, an Ethereum address: far longer is not a name of anything, and it is copied into every EVENT.
MAX_OPTION_LENGTH = 255

# Inbound: where a message that may carry the form has its options and its args.
_INBOUND_AT = {
    wamp.Publish.MESSAGE_TYPE: (2, 4),
    wamp.Call.MESSAGE_TYPE: (2, 4),
    wamp.Yield.MESSAGE_TYPE: (2, 3),
    wamp.Error.MESSAGE_TYPE: (3, 5),
}
# Outbound: where the details are in the message autobahn marshals.
_DETAILS_AT = {wamp.Event: 3, wamp.Invocation: 3, wamp.Result: 2, wamp.Error: 3}


class PassthruViolation(Exception):
    """A message in the passthrough form that breaks its rules: the peer's protocol violation. The text names the
    option or part and what is allowed, never a value."""


def uses_passthru(raw: list) -> bool:
    """Whether a decoded PUBLISH, CALL, YIELD or ERROR names any ppt_* option (cheap: most options are empty)."""
    at = _INBOUND_AT.get(raw[0])
    if at is None:
        return False
    options = raw[at[0]]
    return bool(options) and not _OPTION_SET.isdisjoint(options)


def adopt(msg: wamp.Message, raw: list) -> None:
    """Check the passthrough form of `raw` (autobahn already parsed it into `msg`) and make its one argument a
    PassthruPayload that keeps the ppt_* options; raise PassthruViolation when the form is broken."""
    options_at, args_at = _INBOUND_AT[raw[0]]
    given = raw[options_at]
    options = tuple((name, _option(given, name)) for name in OPTIONS if name in given)
    if SCHEME not in given:
        raise PassthruViolation(f"{SCHEME} is required with the other ppt_* options")
    if len(raw) <= args_at or type(raw[args_at]) is not list:
        raise PassthruViolation("the payload must be the only item of args (a list), not missing or bare")
    args = raw[args_at]
    if len(args) != 1 or type(args[0]) is not bytes:
        kind = f" of type {type(args[0]).__name__}" if len(args) == 1 else ""
        raise PassthruViolation(f"args must hold exactly one binary payload (got {len(args)} items{kind})")
    if len(raw) > args_at + 1 and raw[args_at + 1] != {}:
        raise PassthruViolation("kwargs must be missing or empty")
    msg.args = [PassthruPayload(args[0], options)]
    msg.kwargs = None


def _option(options: dict, name: str) -> str:
    value = options[name]
    if type(value) is not str or not value:
        raise PassthruViolation(f"{name} must be a non-empty string (got {type(value).__name__})")
    if len(value) > MAX_OPTION_LENGTH:
        raise PassthruViolation(f"{name} must be at most {MAX_OPTION_LENGTH} characters (got {len(value)})")
    return value


def spec_form(msg: wamp.Message) -> list | None:
    """The raw message to serialize for an outbound EVENT, INVOCATION, RESULT or ERROR whose args are a passthrough
    payload (None for any other message): autobahn's own marshalling, with the ppt_* options added to the details
    and the payload as plain bytes."""
    details_at = _DETAILS_AT.get(type(msg))
    if details_at is None:
        return None
    payload = passthru_of(msg.args)
    if payload is None:
        return None
    raw = msg.marshal()
    raw[details_at] = {**raw[details_at], **dict(payload.options)}
    raw[-1] = [bytes(payload)]  # args are last: a passthrough message has no kwargs
    return raw
