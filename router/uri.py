"""WAMP URI validation and an index for exact, prefix and wildcard matching.

The index never scans all entries for a lookup: exact URIs are one dict probe, prefixes one probe per distinct
prefix length, wildcard patterns one probe per distinct pattern shape (component count and wildcard positions).
Changing it never scans all entries either: a shape is found by a dict probe and placed by binary search.

Pure and shared, so it sits beside the model rather than in the core: the core routes with it, and authorizer plugins
check and match their rules with it (through wampgate.plugin, never by reaching into the core).
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_left, insort
from collections.abc import Iterator
from dataclasses import dataclass
from operator import attrgetter, itemgetter, neg
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

DEFAULT_MAX_WILDCARD_SHAPES = 1000


class TooManyWildcardShapes(Exception):
    """`add` was asked for a wildcard pattern of a new shape while the index holds its maximum of shapes. Callers
    that take patterns from clients ask `has_room_for` first and answer with an error instead."""


class _WildcardShape(Generic[T]):
    """All wildcard patterns with the same component count and the same wildcard positions."""

    __slots__ = ("fixed", "wildcards", "key_of", "entries", "rank")

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
        self.rank = self.specificity()  # computed once: the ordered insert compares it, never recomputes it

    def specificity(self) -> tuple:
        """Fewer wildcards first; among equals, the one whose wildcards sit further right."""
        return (len(self.wildcards), tuple(-i for i in self.wildcards))


_rank_of = attrgetter("rank")


class UriIndex(Generic[T]):
    """Maps (uri, match) to a value; finds every value whose pattern matches a concrete URI.

    Wildcard patterns are grouped by shape. A shape is found by one dict probe and kept in its component count's
    list, most specific first, by a binary-search insert: adding, finding or removing a pattern never walks the
    other shapes. Matching a URI probes each shape of its component count once, so the number of distinct shapes
    is what a publish costs; `max_wildcard_shapes` bounds it (None: unbounded, for operator-written rule sets).
    """

    def __init__(self, max_wildcard_shapes: int | None = None) -> None:
        self._exact: dict[str, T] = {}
        self._prefix: dict[str, T] = {}
        self._prefix_lengths: list[int] = []  # distinct lengths, longest first
        self._prefixes_of_length: dict[int, int] = {}  # length -> how many prefixes have it
        self._shapes: dict[int, list[_WildcardShape[T]]] = {}  # by component count, most specific first
        self._shape_by_key: dict[tuple[int, tuple[int, ...]], _WildcardShape[T]] = {}  # (size, fixed) -> shape
        self._wildcard_entries = 0
        self.max_wildcard_shapes = max_wildcard_shapes

    def __len__(self) -> int:
        return len(self._exact) + len(self._prefix) + self._wildcard_entries

    def wildcard_shapes(self) -> int:
        """How many distinct wildcard shapes are indexed (what `max_wildcard_shapes` bounds)."""
        return len(self._shape_by_key)

    def has_room_for(self, uri: str, match: str) -> bool:
        """False only when adding (uri, match) would create a wildcard shape beyond `max_wildcard_shapes`."""
        if match != WILDCARD or self.max_wildcard_shapes is None:
            return True
        if len(self._shape_by_key) < self.max_wildcard_shapes:
            return True
        return _shape_key(uri.split(".")) in self._shape_by_key

    def get(self, uri: str, match: str) -> T | None:
        if match == EXACT:
            return self._exact.get(uri)
        if match == PREFIX:
            return self._prefix.get(uri)
        parts = uri.split(".")
        shape = self._shape_by_key.get(_shape_key(parts))
        return None if shape is None else shape.entries.get(shape.key_of(parts))

    def add(self, uri: str, match: str, value: T) -> None:
        """Store `value` under (uri, match); the pair must not be present yet (KeyError), and a wildcard pattern
        must fit under `max_wildcard_shapes` (TooManyWildcardShapes)."""
        if self.get(uri, match) is not None:
            raise KeyError(f"{match} {uri!r} is already indexed")
        if match == EXACT:
            self._exact[uri] = value
        elif match == PREFIX:
            count = self._prefixes_of_length.get(len(uri), 0)
            if not count:
                insort(self._prefix_lengths, len(uri), key=neg)
            self._prefixes_of_length[len(uri)] = count + 1
            self._prefix[uri] = value
        else:
            parts = uri.split(".")
            key = _shape_key(parts)
            shape = self._shape_by_key.get(key)
            if shape is None:
                if self.max_wildcard_shapes is not None and len(self._shape_by_key) >= self.max_wildcard_shapes:
                    raise TooManyWildcardShapes(f"at most {self.max_wildcard_shapes} wildcard shapes")
                shape = self._new_shape(key)
            shape.entries[shape.key_of(parts)] = value
            self._wildcard_entries += 1

    def remove(self, uri: str, match: str) -> T:
        """Remove and return the value under (uri, match); KeyError when absent."""
        if match == EXACT:
            return self._exact.pop(uri)
        if match == PREFIX:
            value = self._prefix.pop(uri)
            count = self._prefixes_of_length.pop(len(uri)) - 1
            if count:
                self._prefixes_of_length[len(uri)] = count
            else:
                self._prefix_lengths.remove(len(uri))  # at most max_uri_length distinct lengths
            return value
        parts = uri.split(".")
        shape = self._shape_by_key.get(_shape_key(parts))
        if shape is None:
            raise KeyError(uri)
        value = shape.entries.pop(shape.key_of(parts))
        self._wildcard_entries -= 1
        if not shape.entries:
            self._drop_shape(len(parts), shape)
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

    def _new_shape(self, key: tuple[int, tuple[int, ...]]) -> _WildcardShape[T]:
        """Create the shape and insert it in specificity order (within one size, ranks are unique)."""
        shape = _WildcardShape(*key)
        shapes = self._shapes.setdefault(key[0], [])
        shapes.insert(bisect_left(shapes, shape.rank, key=_rank_of), shape)
        self._shape_by_key[key] = shape
        return shape

    def _drop_shape(self, size: int, shape: _WildcardShape[T]) -> None:
        shapes = self._shapes[size]
        del shapes[bisect_left(shapes, shape.rank, key=_rank_of)]
        del self._shape_by_key[(size, shape.fixed)]
        if not shapes:
            del self._shapes[size]


def _shape_key(parts: list[str]) -> tuple[int, tuple[int, ...]]:
    """A wildcard pattern's shape: its component count and the positions of its non-empty components."""
    return len(parts), tuple(i for i, part in enumerate(parts) if part)


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
