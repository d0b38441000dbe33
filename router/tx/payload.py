"""The values a WAMP message may carry through this router: what every serializer it speaks can encode.

A value one serializer decodes but another cannot encode would fail only on the way out, to some recipient, long
after the sender was told nothing (a YIELD whose RESULT cannot be written leaves its caller waiting forever). So every
decoded message is walked once, on the way in, and a value outside the intersection of JSON, MessagePack and CBOR (as
Autobahn encodes them) is refused there, where the sender can still be answered:

- types: None, bool, int, float, str, bytes, list, dict; nothing else (CBOR tags and MessagePack extension types,
  timestamps included, arrive as `Unsupported` or as their own classes and are refused here);
- ints from -2^63 to 2^64-1 (MessagePack's range; JSON and CBOR carry more, but not to a MessagePack peer);
- finite floats only (JSON has no NaN or infinity: Python writes `NaN`, which other JSON parsers refuse);
- str without lone surrogates (no UTF-8 encoder writes them), and, from a binary serializer, not starting with NUL:
  Autobahn's JSON writes bytes as NUL + base64, so a JSON peer would read such a string as bytes, or fail on it;
- containers nested at most `max_nesting` deep, the same for every serializer (their own decoders differ: CBOR
  stops at 400 levels by default, the others near 1,000), counted from the message: its args, kwargs and
  options/details are level 1, each container inside adds one.

Map keys that are not strings break WAMP's data model itself; they are `MalformedValue`, not `InvalidValue`.

From JSON the same walk also turns Autobahn's binary strings ("\\u0000" + base64, dict values and list items, never
keys) into bytes, which is what lets the JSON decoder be the stdlib's C scanner instead of Autobahn's pure-Python one.

This module lives beside wire.py in router/tx rather than in router/core because it is about the wire formats the
listeners speak (and Autobahn's JSON convention for bytes), which the routing core never sees; it stays pure (no
Twisted, no I/O) and separate from wire.py so that module keeps one job: classifying messages.
"""

from __future__ import annotations

import base64
import binascii
import re
from math import isfinite

MIN_INT = -(2**63)
MAX_INT = 2**64 - 1
DEFAULT_MAX_NESTING = 64
# The highest `max_nesting` the config accepts: far inside what every decoder reads (CBOR as configured in wire.py,
# MessagePack 1,024, JSON near the interpreter's recursion limit) and what the encoders write from inside Twisted's
# stack, with room for the message's own levels.
MAX_NESTING_CEILING = 256

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_INT_RANGE = "an integer outside -2^63..2^64-1"
_NOT_FINITE = "a float that is NaN or infinite"
_TOO_DEEP = "containers nested deeper than max_nesting"


class InvalidValue(Exception):
    """A value not every serializer of the router can carry. The text names the kind of value, never the value
    itself, so it may go to the peer and to the log."""


class MalformedValue(Exception):
    """A value outside WAMP's data model (a map key that is not a string): the peer's protocol violation."""


class Unsupported:
    """What the decoders put in place of a CBOR tag or a MessagePack extension type, so the walk refuses it like
    any other foreign value; `what` names it for the log."""

    __slots__ = ("what",)

    def __init__(self, what: str):
        self.what = what


def check_message(message: list, max_nesting: int, from_json: bool) -> None:
    """Walk a decoded WAMP message (a list) once; raise InvalidValue or MalformedValue for the first bad value.

    With `from_json`, strings in Autobahn's binary form are replaced by their bytes in place, and strings are checked
    for lone surrogates (the binary serializers' strict UTF-8 decoders cannot produce them)."""
    _check_list(message, max_nesting, from_json)


def _check_list(items: list, room: int, from_json: bool) -> None:
    # The scalar checks are written out in both loops: one function call per value would double the walk's cost.
    for index, value in enumerate(items):
        kind = type(value)
        if kind is int:
            if not MIN_INT <= value <= MAX_INT:
                raise InvalidValue(_INT_RANGE)
        elif kind is str:
            if value and (value[0] == "\x00" or (from_json and not value.isascii())):
                items[index] = _check_string(value, from_json)
        elif kind is list or kind is dict:
            if room <= 0:
                raise InvalidValue(_TOO_DEEP)
            if not value:
                continue  # an empty container holds nothing to check: skip the call
            if kind is list:
                _check_list(value, room - 1, from_json)
            else:
                _check_dict(value, room - 1, from_json)
        elif kind is float:
            if not isfinite(value):
                raise InvalidValue(_NOT_FINITE)
        elif not (value is None or kind is bool or kind is bytes):
            raise InvalidValue(_describe(value))


def _check_dict(mapping: dict, room: int, from_json: bool) -> None:
    for key, value in mapping.items():
        if type(key) is not str:
            raise MalformedValue(f"a map key of type {type(key).__name__}")
        if from_json and not key.isascii() and _LONE_SURROGATE.search(key):
            raise InvalidValue("a map key with a lone surrogate")
        kind = type(value)
        if kind is int:
            if not MIN_INT <= value <= MAX_INT:
                raise InvalidValue(_INT_RANGE)
        elif kind is str:
            if value and (value[0] == "\x00" or (from_json and not value.isascii())):
                mapping[key] = _check_string(value, from_json)  # replacing a value is safe while iterating
        elif kind is list or kind is dict:
            if room <= 0:
                raise InvalidValue(_TOO_DEEP)
            if not value:
                continue  # an empty container holds nothing to check: skip the call
            if kind is list:
                _check_list(value, room - 1, from_json)
            else:
                _check_dict(value, room - 1, from_json)
        elif kind is float:
            if not isfinite(value):
                raise InvalidValue(_NOT_FINITE)
        elif not (value is None or kind is bool or kind is bytes):
            raise InvalidValue(_describe(value))


def _check_string(value: str, from_json: bool) -> str | bytes:
    """The value to keep: the string itself, or (from JSON) the bytes its binary form stands for."""
    if value[0] == "\x00":
        if not from_json:
            raise InvalidValue("a string starting with NUL (JSON peers would read it as binary)")
        try:
            return base64.b64decode(value[1:])  # exactly Autobahn's reading of its JSON binary strings
        except (binascii.Error, ValueError):
            raise InvalidValue("a NUL-prefixed string that is not base64") from None
    if from_json and not value.isascii() and _LONE_SURROGATE.search(value):
        raise InvalidValue("a string with a lone surrogate")
    return value


def _describe(value: object) -> str:
    if type(value) is Unsupported:
        return value.what
    return f"a value of type {type(value).__name__}"
