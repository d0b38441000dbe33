"""Bounds on what a HELLO may hand the authentication machinery: the authid's length and the authextra's size.

Checked before any table is touched or any authenticator asked, so a client cannot make the router keep, pass on
or log more than these bounds. Sans-I/O, and cheap: the size estimate stops as soon as it passes the bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def utf8_length_over(text: str, limit: int) -> bool:
    """Whether `text` takes more than `limit` bytes in UTF-8, without encoding a huge string to find out."""
    if len(text) > limit:
        return True  # every character takes at least one byte
    return len(text.encode("utf-8", "surrogatepass")) > limit


def size_over(value: Any, limit: int) -> bool:
    """Whether `value` (decoded JSON / MessagePack / CBOR data) would take more than about `limit` bytes serialized.

    An estimate in the spirit of JSON: strings and bytes by length, numbers 9 bytes, every container and item at
    least one byte (so deep or wide nests of empty values count too). Iterative, so nesting cannot overflow the stack.
    """
    total = 0
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            total += 2 + (len(item) if len(item) > limit else len(item.encode("utf-8", "surrogatepass")))
        elif isinstance(item, bytes | bytearray):
            total += 2 + len(item)
        elif isinstance(item, Mapping | list | tuple):
            total += 2 + len(item)
            if total <= limit:  # so a container is walked only when it has at most `limit` items
                pending.extend(_children(item))
        else:  # numbers, booleans, None, anything else a decoder gives
            total += 9
        if total > limit:
            return True
    return False


def _children(container: Mapping | list | tuple) -> list:
    if isinstance(container, Mapping):
        return [*container.keys(), *container.values()]
    return list(container)
