"""WAMP URI validation and an index for exact, prefix and wildcard matching.

The index never scans all entries for a lookup: exact URIs are one dict probe, prefixes one probe per distinct
prefix length, wildcard patterns one probe per distinct pattern shape (component count and wildcard positions).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from operator import itemgetter
from typing import Generic, TypeVar

EXACT = "exact"
PREFIX = "prefix"
WILDCARD = "wildcard"
MATCH_POLICIES = (EXACT, PREFIX, WILDCARD)

DEFAULT_MAX_URI_LENGTH = 512
RESERVED_PREFIX = "wamp."

# Categories refused anywhere in a URI: controls (NUL included), format characters (zero-width and
# bidirectional overrides), surrogates, private use, unassigned, and line/paragraph separators.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# Unicode's default-ignorable code points that are not format characters (fillers, variation selectors,
# the grapheme joiner): invisible, so "com.\u3164" would look like "com.".
_IGNORABLE_RANGES = (
    (0x034F, 0x034F), (0x115F, 0x1160), (0x17B4, 0x17B5), (0x180B, 0x180F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)


def _invisible(ch: str) -> bool:
    if unicodedata.category(ch) in _FORBIDDEN_CATEGORIES:
        return True
    code = ord(ch)
    return any(low <= code <= high for low, high in _IGNORABLE_RANGES)

_LOOSE_COMPONENT = r"[^\s.#\x00-\x1f\x7f]"
_STRICT_COMPONENT = r"[0-9a-z_]"


def _patterns(component: str) -> dict[str, re.Pattern]:
    one = f"{component}+"
    return {
        EXACT: re.compile(rf"(?:{one}\.)*{one}\Z"),
        PREFIX: re.compile(rf"(?:{one}\.)*{component}*\Z"),
        WILDCARD: re.compile(rf"(?:{component}*\.)*{component}*\Z"),
    }


_LOOSE = _patterns(_LOOSE_COMPONENT)
_STRICT = _patterns(_STRICT_COMPONENT)


@dataclass(frozen=True, slots=True)
class UriPolicy:
    """How a realm checks URIs: the spec's loose or strict rules, plus our own bounds in both modes."""

    strict: bool = False
    max_length: int = DEFAULT_MAX_URI_LENGTH

    def problem(self, uri: object, match: str = EXACT) -> str | None:
        """Return why `uri` is not acceptable under `match`, or None when it is."""
        if not isinstance(uri, str):
            return "a URI must be a string"
        if len(uri) > self.max_length or len(uri.encode("utf-8", "surrogatepass")) > self.max_length:
            return f"URI longer than {self.max_length} bytes"
        if not uri.isascii() and any(_invisible(ch) for ch in uri):
            return "URI contains control, invisible or bidirectional-override characters"
        patterns = _STRICT if self.strict else _LOOSE
        if patterns[match].match(uri) is None:
            mode = "strict" if self.strict else "loose"
            return f"not a valid {mode} URI for {match} matching"
        return None


def is_reserved(uri: str) -> bool:
    """URIs under `wamp.` belong to the router: clients may not publish or register there."""
    return uri.startswith(RESERVED_PREFIX)


T = TypeVar("T")


class _WildcardShape(Generic[T]):
    """All wildcard patterns with the same component count and the same wildcard positions."""

    __slots__ = ("fixed", "wildcards", "key_of", "entries")

    def __init__(self, size: int, fixed: tuple[int, ...]):
        self.fixed = fixed
        self.wildcards = tuple(i for i in range(size) if i not in fixed)
        if not fixed:
            self.key_of = lambda parts: ()
        elif len(fixed) == 1:
            index = fixed[0]
            self.key_of = lambda parts: (parts[index],)
        else:
            self.key_of = itemgetter(*fixed)
        self.entries: dict[tuple[str, ...], T] = {}

    def specificity(self) -> tuple:
        """Fewer wildcards first; among equals, the one whose wildcards sit further right."""
        return (len(self.wildcards), tuple(-i for i in self.wildcards))


class UriIndex(Generic[T]):
    """Maps (uri, match) to a value; finds every value whose pattern matches a concrete URI."""

    def __init__(self) -> None:
        self._exact: dict[str, T] = {}
        self._prefix: dict[str, T] = {}
        self._prefix_lengths: list[int] = []  # distinct lengths, longest first
        self._shapes: dict[int, list[_WildcardShape[T]]] = {}  # by component count, most specific first

    def __len__(self) -> int:
        wildcards = sum(len(shape.entries) for shapes in self._shapes.values() for shape in shapes)
        return len(self._exact) + len(self._prefix) + wildcards

    def get(self, uri: str, match: str) -> T | None:
        if match == EXACT:
            return self._exact.get(uri)
        if match == PREFIX:
            return self._prefix.get(uri)
        parts = uri.split(".")
        shape = self._find_shape(parts, create=False)
        return None if shape is None else shape.entries.get(shape.key_of(parts))

    def add(self, uri: str, match: str, value: T) -> None:
        """Store `value` under (uri, match); the pair must not be present yet."""
        if self.get(uri, match) is not None:
            raise KeyError(f"{match} {uri!r} is already indexed")
        if match == EXACT:
            self._exact[uri] = value
        elif match == PREFIX:
            if len(uri) not in self._prefix_lengths:
                self._prefix_lengths.append(len(uri))
                self._prefix_lengths.sort(reverse=True)
            self._prefix[uri] = value
        else:
            parts = uri.split(".")
            shape = self._find_shape(parts, create=True)
            shape.entries[shape.key_of(parts)] = value

    def remove(self, uri: str, match: str) -> T:
        """Remove and return the value under (uri, match); KeyError when absent."""
        if match == EXACT:
            return self._exact.pop(uri)
        if match == PREFIX:
            value = self._prefix.pop(uri)
            if not any(len(uri2) == len(uri) for uri2 in self._prefix):
                self._prefix_lengths.remove(len(uri))
            return value
        parts = uri.split(".")
        shape = self._find_shape(parts, create=False)
        if shape is None:
            raise KeyError(uri)
        value = shape.entries.pop(shape.key_of(parts))
        if not shape.entries:
            shapes = self._shapes[len(parts)]
            shapes.remove(shape)
            if not shapes:
                del self._shapes[len(parts)]
        return value

    def matching(self, uri: str) -> Iterator[T]:
        """Every value whose pattern matches the concrete `uri`: exact, then prefixes, then wildcards."""
        value = self._exact.get(uri)
        if value is not None:
            yield value
        if self._prefix_lengths:
            size = len(uri)
            prefixes = self._prefix
            for length in self._prefix_lengths:
                if length <= size:
                    value = prefixes.get(uri[:length])
                    if value is not None:
                        yield value
        if self._shapes:
            parts = uri.split(".")
            for shape in self._shapes.get(len(parts), ()):
                value = shape.entries.get(shape.key_of(parts))
                if value is not None:
                    yield value

    def best(self, uri: str) -> T | None:
        """The most specific match: exact, then the longest prefix, then the wildcard with fewest wildcards."""
        return next(self.matching(uri), None)

    def _find_shape(self, parts: list[str], *, create: bool) -> _WildcardShape[T] | None:
        fixed = tuple(i for i, part in enumerate(parts) if part)
        shapes = self._shapes.get(len(parts), [])
        for shape in shapes:
            if shape.fixed == fixed:
                return shape
        if not create:
            return None
        shape = _WildcardShape(len(parts), fixed)
        shapes.append(shape)
        shapes.sort(key=_WildcardShape.specificity)
        self._shapes[len(parts)] = shapes
        return shape


def specificity(uri: str, match: str) -> tuple:
    """Sort key, most specific first: exact, then longer prefixes, then wildcards with fewer wildcards (among equals,
    the one whose wildcards sit further right). The same order UriIndex.best follows."""
    if match == EXACT:
        return (0,)
    if match == PREFIX:
        return (1, -len(uri))
    wildcards = tuple(i for i, part in enumerate(uri.split(".")) if not part)
    return (2, len(wildcards), tuple(-i for i in wildcards))


def wildcard_matches(pattern: str, uri: str) -> bool:
    """Reference matcher for one wildcard pattern (used by tests and by slow paths, never per publish)."""
    pattern_parts = pattern.split(".")
    parts = uri.split(".")
    return len(pattern_parts) == len(parts) and all(p == "" or p == u for p, u in zip(pattern_parts, parts))


def pattern_matches(pattern: str, match: str, uri: str) -> bool:
    """Reference matcher for one (pattern, match) pair."""
    if match == EXACT:
        return pattern == uri
    if match == PREFIX:
        return uri.startswith(pattern)
    return wildcard_matches(pattern, uri)
