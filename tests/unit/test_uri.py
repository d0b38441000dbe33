"""URI validation (`UriPolicy`, `is_reserved`) and the exact / prefix / wildcard index (`UriIndex`)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wampgate import uri as uri_module
from wampgate.uri import (
    EXACT,
    MATCH_POLICIES,
    PREFIX,
    WILDCARD,
    TooManyWildcardShapes,
    UriIndex,
    UriPolicy,
    is_reserved,
    pattern_matches,
    specificity,
)

LOOSE = UriPolicy()
STRICT = UriPolicy(strict=True)
BOTH_MODES = pytest.mark.parametrize("policy", [LOOSE, STRICT], ids=["loose", "strict"])
EVERY_MATCH = pytest.mark.parametrize("match", MATCH_POLICIES)


# --------------------------------------------------------------------------------------------------------------
# UriPolicy: the spec's loose and strict rules per match policy
# --------------------------------------------------------------------------------------------------------------

# (uri, {match: valid?}) under the loose rules.
LOOSE_TABLE = [
    ("com.example.topic", {EXACT: True, PREFIX: True, WILDCARD: True}),
    ("a", {EXACT: True, PREFIX: True, WILDCARD: True}),
    ("com.Example.TOPIC", {EXACT: True, PREFIX: True, WILDCARD: True}),
    ("com.ex-ample.to:pic/x", {EXACT: True, PREFIX: True, WILDCARD: True}),
    ("über.straße.日本", {EXACT: True, PREFIX: True, WILDCARD: True}),
    ("com.example.", {EXACT: False, PREFIX: True, WILDCARD: True}),
    ("", {EXACT: False, PREFIX: True, WILDCARD: True}),
    ("com..topic", {EXACT: False, PREFIX: False, WILDCARD: True}),
    ("..", {EXACT: False, PREFIX: False, WILDCARD: True}),
    (".", {EXACT: False, PREFIX: False, WILDCARD: True}),
    (".com.example", {EXACT: False, PREFIX: False, WILDCARD: True}),
    ("com..", {EXACT: False, PREFIX: False, WILDCARD: True}),
    ("com.ex ample", {EXACT: False, PREFIX: False, WILDCARD: False}),
    ("com.example. ", {EXACT: False, PREFIX: False, WILDCARD: False}),
    (" com.example", {EXACT: False, PREFIX: False, WILDCARD: False}),
    ("com.ex\tample", {EXACT: False, PREFIX: False, WILDCARD: False}),
    ("com.example\n", {EXACT: False, PREFIX: False, WILDCARD: False}),
    ("com.ex\u00a0ample", {EXACT: False, PREFIX: False, WILDCARD: False}),  # no-break space
    ("com.ex\u3000ample", {EXACT: False, PREFIX: False, WILDCARD: False}),  # ideographic space
    ("com.ex\u2003ample", {EXACT: False, PREFIX: False, WILDCARD: False}),  # em space
    ("com.ex#ample", {EXACT: False, PREFIX: False, WILDCARD: False}),
    ("com.#", {EXACT: False, PREFIX: False, WILDCARD: False}),
    ("#", {EXACT: False, PREFIX: False, WILDCARD: False}),
]

# (uri, {match: valid?}) under the strict rules: components are [0-9a-z_]+.
STRICT_TABLE = [
    ("com.example.topic_1", {EXACT: True, PREFIX: True, WILDCARD: True}),
    ("a", {EXACT: True, PREFIX: True, WILDCARD: True}),
    ("0.9_z", {EXACT: True, PREFIX: True, WILDCARD: True}),
    ("com.example.", {EXACT: False, PREFIX: True, WILDCARD: True}),
    ("", {EXACT: False, PREFIX: True, WILDCARD: True}),
    ("com..topic", {EXACT: False, PREFIX: False, WILDCARD: True}),
    ("..", {EXACT: False, PREFIX: False, WILDCARD: True}),
    ("com.Example", {EXACT: False, PREFIX: False, WILDCARD: False}),
    ("com.ex-ample", {EXACT: False, PREFIX: False, WILDCARD: False}),
    ("com.ex:ample", {EXACT: False, PREFIX: False, WILDCARD: False}),
    ("com.ex/ample", {EXACT: False, PREFIX: False, WILDCARD: False}),
    ("über.strasse", {EXACT: False, PREFIX: False, WILDCARD: False}),
    ("com.ex ample", {EXACT: False, PREFIX: False, WILDCARD: False}),
    ("com.ex#ample", {EXACT: False, PREFIX: False, WILDCARD: False}),
    ("com.Example.", {EXACT: False, PREFIX: False, WILDCARD: False}),
    ("com..Topic", {EXACT: False, PREFIX: False, WILDCARD: False}),
]


def _expand(table):
    return [
        pytest.param(uri, match, ok, id=f"{uri!r}-{match}")
        for uri, by_match in table
        for match, ok in by_match.items()
    ]


@pytest.mark.parametrize("uri, match, ok", _expand(LOOSE_TABLE))
def test_loose_rules_per_match_policy(uri, match, ok):
    """Loose mode accepts any non-empty component without whitespace, '.' or '#'; prefix allows an empty last
    component, wildcard allows any empty component, exact allows none."""
    problem = LOOSE.problem(uri, match)
    assert (problem is None) is ok, problem
    if not ok:
        assert isinstance(problem, str) and problem


@pytest.mark.parametrize("uri, match, ok", _expand(STRICT_TABLE))
def test_strict_rules_per_match_policy(uri, match, ok):
    """Strict mode accepts only [0-9a-z_]+ components, with the same empty-component rules per match policy."""
    problem = STRICT.problem(uri, match)
    assert (problem is None) is ok, problem
    if not ok:
        assert isinstance(problem, str) and problem


def test_match_defaults_to_exact():
    """problem() without a match argument applies exact rules: an empty last component is refused."""
    assert LOOSE.problem("com.example.topic") is None
    assert LOOSE.problem("com.example.") is not None
    assert LOOSE.problem("") is not None


# --------------------------------------------------------------------------------------------------------------
# UriPolicy: forbidden characters, refused in both modes and under every match policy
# --------------------------------------------------------------------------------------------------------------

CONTROL = ["\x00", "\x01", "\x08", "\x1b", "\x1f", "\x7f", "\x80", "\x85", "\x9f"]
INVISIBLE_FORMAT = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad", "\u180e", "\u061c", "\U000e0001"]
BIDI = ["\u200e", "\u200f", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e", "\u2066", "\u2067", "\u2068", "\u2069"]
SEPARATORS = ["\u2028", "\u2029"]
FORBIDDEN = [
    pytest.param(ch, id=f"{kind}-U+{ord(ch):04X}")
    for kind, chars in [("control", CONTROL), ("format", INVISIBLE_FORMAT), ("bidi", BIDI), ("sep", SEPARATORS)]
    for ch in chars
]


def _placements(ch: str) -> list[str]:
    """The character inside a component, as a whole component, at the start, and at the very end."""
    return [f"com.ex{ch}ample.topic", f"com.{ch}.topic", f"{ch}com.example", f"com.example{ch}", ch]


@BOTH_MODES
@EVERY_MATCH
@pytest.mark.parametrize("ch", FORBIDDEN)
def test_forbidden_characters_refused(policy, match, ch):
    """Control (NUL and C1 included), invisible/format, bidirectional-control and line/paragraph-separator
    characters are refused wherever they sit, in both modes and under every match policy."""
    for uri in _placements(ch):
        assert policy.problem(uri, match) is not None, (uri, match)


@BOTH_MODES
@EVERY_MATCH
@pytest.mark.parametrize("ch", ["\ud800", "\udfff", "\ue000", "\U000f0000", "\U0010fffd", "\u0378"])
def test_surrogates_private_use_and_unassigned_refused(policy, match, ch):
    """Lone surrogates, private-use and unassigned code points cannot smuggle invisible text into a URI."""
    for uri in _placements(ch):
        assert policy.problem(uri, match) is not None, (uri, match)


# Default-ignorable code points (Unicode's own definition of "renders as nothing") whose general category is
# not Cf: letters (Hangul fillers) and combining marks (grapheme joiner, variation selectors).
INVISIBLE_NOT_CF = [
    pytest.param(ch, id=f"U+{ord(ch):04X}")
    for ch in ["\u3164", "\u115f", "\u1160", "\uffa0", "\u034f", "\ufe0f", "\U000e0100"]
]


@pytest.mark.parametrize("ch", INVISIBLE_NOT_CF)
def test_invisible_default_ignorables_refused_in_loose_mode(ch):
    """Every invisible character is refused, including default-ignorable ones that are letters or marks."""
    for match in MATCH_POLICIES:
        assert LOOSE.problem(f"com.ex{ch}ample", match) is not None, match
        assert LOOSE.problem(f"com.{ch}", match) is not None, match


@EVERY_MATCH
@pytest.mark.parametrize("ch", INVISIBLE_NOT_CF)
def test_invisible_default_ignorables_refused_in_strict_mode(match, ch):
    """Strict mode's [0-9a-z_] alphabet already excludes every invisible character."""
    assert STRICT.problem(f"com.ex{ch}ample", match) is not None


# --------------------------------------------------------------------------------------------------------------
# UriPolicy: the length bound, in UTF-8 bytes
# --------------------------------------------------------------------------------------------------------------

@BOTH_MODES
@EVERY_MATCH
def test_length_bound_ascii(policy, match):
    """A URI of exactly max_length bytes is accepted; one byte more is refused (default 512)."""
    assert policy.max_length == 512
    at_limit = "a." * 255 + "ab"  # 512 bytes, valid under every match policy and both modes
    assert len(at_limit.encode()) == 512
    assert policy.problem(at_limit, match) is None
    assert policy.problem(at_limit + "c", match) is not None
    assert policy.problem("a" * 512, match) is None
    assert policy.problem("a" * 513, match) is not None
    assert policy.problem("a" * 100_000, match) is not None


@pytest.mark.parametrize(
    "char, width",
    [("é", 2), ("€", 3), ("😀", 4), ("日", 3)],
)
@EVERY_MATCH
def test_length_bound_counts_utf8_bytes(char, width, match):
    """The bound is in UTF-8 bytes, not code points: multi-byte characters count for their encoded width."""
    assert len(char.encode()) == width
    limit = 60  # divisible by 2, 3 and 4
    policy = UriPolicy(max_length=limit)
    exact_fit = "com." + char * ((limit - 4) // width)
    exact_fit += "x" * (limit - len(exact_fit.encode()))
    assert len(exact_fit.encode()) == limit
    assert policy.problem(exact_fit, match) is None
    one_more = exact_fit + "x"
    assert policy.problem(one_more, match) is not None
    # Fewer code points than the limit, yet too many bytes.
    too_wide = char * (limit // width + 1)
    assert len(too_wide) <= limit < len(too_wide.encode())
    assert policy.problem(too_wide, match) is not None


@pytest.mark.parametrize("limit", [1, 10, 100])
def test_custom_length_bound(limit):
    """max_length is honoured exactly, whatever its value."""
    policy = UriPolicy(max_length=limit)
    assert policy.problem("a" * limit) is None
    assert policy.problem("a" * (limit + 1)) is not None


@BOTH_MODES
@EVERY_MATCH
@pytest.mark.parametrize("value", [None, 1, 1.5, b"com.example", ["com", "example"], ("com",), {"a": 1}, object()])
def test_non_string_refused(policy, match, value):
    """Anything that is not a str is refused with a reason, never an exception."""
    problem = policy.problem(value, match)
    assert isinstance(problem, str) and problem


def test_policy_is_frozen():
    """A realm's policy cannot be loosened after construction."""
    with pytest.raises(AttributeError):
        LOOSE.strict = True  # type: ignore[misc]


@pytest.mark.parametrize(
    "uri, reserved",
    [
        ("wamp.", True),
        ("wamp.error.not_authorized", True),
        ("wamp.session.on_join", True),
        ("wamp", False),
        ("wamps.x", False),
        ("com.wamp.x", False),
        ("WAMP.x", False),
        ("", False),
    ],
)
def test_is_reserved(uri, reserved):
    """Exactly the URIs under the 'wamp.' prefix are reserved for the router."""
    assert is_reserved(uri) is reserved


# --------------------------------------------------------------------------------------------------------------
# UriIndex: add / get / remove / len
# --------------------------------------------------------------------------------------------------------------

@EVERY_MATCH
def test_index_add_get_remove(match):
    """A value added under (uri, match) is found by get() with the same pair and gone after remove()."""
    index: UriIndex[str] = UriIndex()
    uri = {EXACT: "com.a.b", PREFIX: "com.a.", WILDCARD: "com..b"}[match]
    assert index.get(uri, match) is None
    index.add(uri, match, "v")
    assert len(index) == 1
    assert index.get(uri, match) == "v"
    for other in MATCH_POLICIES:
        if other != match:
            assert index.get(uri, other) is None
    assert index.remove(uri, match) == "v"
    assert index.get(uri, match) is None
    assert len(index) == 0


@EVERY_MATCH
def test_index_duplicate_add_raises_and_keeps_first(match):
    """Adding an already-indexed (uri, match) raises KeyError and leaves the first value in place."""
    index: UriIndex[str] = UriIndex()
    uri = {EXACT: "com.a.b", PREFIX: "com.a", WILDCARD: "com..b"}[match]
    index.add(uri, match, "first")
    with pytest.raises(KeyError):
        index.add(uri, match, "second")
    assert index.get(uri, match) == "first"
    assert len(index) == 1


@EVERY_MATCH
def test_index_remove_absent_raises(match):
    """Removing a pair that is not indexed raises KeyError, also when a similar pattern is present."""
    index: UriIndex[str] = UriIndex()
    with pytest.raises(KeyError):
        index.remove("com.a.b", match)
    index.add("com.a.b", EXACT, "e")
    index.add("com.a.c", PREFIX, "p")
    index.add("com..c", WILDCARD, "w")  # same shape as com..b below
    with pytest.raises(KeyError):
        index.remove({EXACT: "com.a.c", PREFIX: "com.a.b", WILDCARD: "com..b"}[match], match)
    assert len(index) == 3


def test_index_same_uri_under_each_match_is_distinct():
    """One URI string may be indexed once per match policy; the entries are independent."""
    index: UriIndex[str] = UriIndex()
    for match in MATCH_POLICIES:
        index.add("com.a", match, match)
    assert len(index) == 3
    assert sorted(index.matching("com.a")) == sorted(MATCH_POLICIES)
    index.remove("com.a", PREFIX)
    assert sorted(index.matching("com.a")) == [EXACT, WILDCARD]
    assert len(index) == 2


def test_index_len_counts_every_kind():
    """len() counts exact, prefix and wildcard entries, across shapes, and drops as they are removed."""
    index: UriIndex[int] = UriIndex()
    entries = [("a.b", EXACT), ("a.c", EXACT), ("a.", PREFIX), ("a", PREFIX), ("a..c", WILDCARD),
               (".b.c", WILDCARD), ("x..z", WILDCARD), ("", WILDCARD)]
    for n, (uri, match) in enumerate(entries):
        index.add(uri, match, n)
        assert len(index) == n + 1
    for n, (uri, match) in enumerate(entries):
        index.remove(uri, match)
        assert len(index) == len(entries) - n - 1


def test_removing_one_prefix_keeps_another_of_same_length():
    """Removing a prefix does not hide other prefixes that happen to have the same length."""
    index: UriIndex[str] = UriIndex()
    index.add("com.a", PREFIX, "a")
    index.add("com.b", PREFIX, "b")
    index.remove("com.a", PREFIX)
    assert list(index.matching("com.b.x")) == ["b"]
    assert list(index.matching("com.a.x")) == []


def test_removing_one_wildcard_keeps_another_of_same_shape():
    """Removing a wildcard pattern does not hide other patterns with the same wildcard positions."""
    index: UriIndex[str] = UriIndex()
    index.add("com..x", WILDCARD, "x")
    index.add("com..y", WILDCARD, "y")
    index.remove("com..x", WILDCARD)
    assert list(index.matching("com.q.y")) == ["y"]
    assert list(index.matching("com.q.x")) == []


# --------------------------------------------------------------------------------------------------------------
# UriIndex: matching() semantics
# --------------------------------------------------------------------------------------------------------------

def test_prefix_is_a_string_prefix():
    """As in the WAMP spec, prefix matching compares strings: 'com.a' matches 'com.ab' and 'com.a' itself."""
    index: UriIndex[str] = UriIndex()
    index.add("com.a", PREFIX, "p")
    assert list(index.matching("com.ab")) == ["p"]
    assert list(index.matching("com.a")) == ["p"]
    assert list(index.matching("com.a.b")) == ["p"]
    assert list(index.matching("com.b")) == []
    assert list(index.matching("com")) == []


def test_empty_prefix_matches_everything():
    """The empty prefix (valid under prefix matching) matches every URI."""
    index: UriIndex[str] = UriIndex()
    index.add("", PREFIX, "all")
    for uri in ["a", "com.example.topic", "wamp.session.on_join"]:
        assert list(index.matching(uri)) == ["all"]


def test_wildcard_matches_same_component_count_only():
    """'a..c' matches exactly the three-component URIs with 'a' first and 'c' last."""
    index: UriIndex[str] = UriIndex()
    index.add("a..c", WILDCARD, "w")
    assert list(index.matching("a.b.c")) == ["w"]
    assert list(index.matching("a.zzz.c")) == ["w"]
    for uri in ["a.c", "a.b.b.c", "a.b.c.d", "x.b.c", "a.b.cc", "aa.b.c"]:
        assert list(index.matching(uri)) == [], uri


def test_wildcard_of_only_wildcards():
    """A pattern made only of wildcards matches every URI with that many components."""
    index: UriIndex[str] = UriIndex()
    index.add("..", WILDCARD, "three")
    index.add("", WILDCARD, "one")
    assert list(index.matching("x.y.z")) == ["three"]
    assert list(index.matching("x")) == ["one"]
    assert list(index.matching("x.y")) == []


def test_matching_yields_every_kind():
    """matching() yields each matching value once: exact, prefixes and wildcards together."""
    index: UriIndex[str] = UriIndex()
    index.add("com.a.b", EXACT, "exact")
    index.add("com.", PREFIX, "p-short")
    index.add("com.a.", PREFIX, "p-long")
    index.add("com..b", WILDCARD, "w1")
    index.add("..b", WILDCARD, "w2")
    index.add("com.a.c", EXACT, "other-exact")
    index.add("org.", PREFIX, "other-prefix")
    index.add("com..c", WILDCARD, "other-wildcard")
    found = list(index.matching("com.a.b"))
    assert sorted(found) == ["exact", "p-long", "p-short", "w1", "w2"]
    assert len(found) == len(set(found))


# --------------------------------------------------------------------------------------------------------------
# UriIndex: best()
# --------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    "entries, uri, expected",
    [
        pytest.param([("com.a.b", EXACT), ("com.a.", PREFIX)], "com.a.b", ("com.a.b", EXACT), id="exact>prefix"),
        pytest.param([("com.a.b", EXACT), ("com..b", WILDCARD)], "com.a.b", ("com.a.b", EXACT), id="exact>wildcard"),
        pytest.param([("com.", PREFIX), ("com.a.", PREFIX), ("com.a", PREFIX)], "com.a.b", ("com.a.", PREFIX),
                     id="longest-prefix"),
        pytest.param([("com.", PREFIX), ("com..b", WILDCARD), ("com.a.b", WILDCARD)], "com.a.b", ("com.", PREFIX),
                     id="prefix>wildcard"),
        pytest.param([("", PREFIX), ("com.a.b", WILDCARD)], "com.a.b", ("", PREFIX), id="empty-prefix>wildcard"),
        pytest.param([("..b", WILDCARD), ("com..b", WILDCARD), ("..", WILDCARD)], "com.a.b", ("com..b", WILDCARD),
                     id="fewer-wildcards"),
        pytest.param([("com..b", WILDCARD), ("com.a.b", WILDCARD)], "com.a.b", ("com.a.b", WILDCARD),
                     id="no-wildcards>one"),
        pytest.param([("com..b", WILDCARD), ("com.a.", WILDCARD), (".a.b", WILDCARD)], "com.a.b",
                     ("com.a.", WILDCARD), id="tie-rightmost-wildcard"),
        pytest.param([(".b.c.d", WILDCARD), ("a..c.d", WILDCARD), ("a.b..d", WILDCARD), ("a.b.c.", WILDCARD)],
                     "a.b.c.d", ("a.b.c.", WILDCARD), id="tie-rightmost-of-four"),
        pytest.param([("a..c.", WILDCARD), ("a.b..", WILDCARD), ("..c.d", WILDCARD)], "a.b.c.d",
                     ("a.b..", WILDCARD), id="tie-two-wildcards"),
        pytest.param([("...d", WILDCARD), ("a..c.", WILDCARD), (".b..d", WILDCARD)], "a.b.c.d",
                     ("a..c.", WILDCARD), id="tie-two-wildcards-leftmost-decides"),
        pytest.param([("x.", PREFIX), ("a..c", WILDCARD)], "a.b.c", ("a..c", WILDCARD), id="only-matching-count"),
        pytest.param([("x.", PREFIX), ("a..c", WILDCARD)], "q.r", None, id="no-match"),
    ],
)
def test_best_ordering(entries, uri, expected):
    """best() prefers exact, then the longest prefix, then the wildcard with fewest wildcards, ties going to
    the pattern whose wildcards sit further right; the answer does not depend on insertion order."""
    for order in (entries, list(reversed(entries))):
        index: UriIndex[tuple] = UriIndex()
        for pattern, match in order:
            index.add(pattern, match, (pattern, match))
        assert index.best(uri) == expected


# --------------------------------------------------------------------------------------------------------------
# UriIndex: properties against brute force
# --------------------------------------------------------------------------------------------------------------

PATTERN_COMPONENTS = ["a", "b", "c", ""]
URI_COMPONENTS = ["a", "b", "c", "ab", "ca"]  # "ab" and "ca" exercise string-prefix semantics


def _valid(entry: tuple[str, str]) -> bool:
    return LOOSE.problem(*entry) is None


patterns = st.tuples(
    st.lists(st.sampled_from(PATTERN_COMPONENTS), min_size=1, max_size=4).map(".".join),
    st.sampled_from(MATCH_POLICIES),
).filter(_valid)
pattern_sets = st.lists(patterns, max_size=14, unique=True)
concrete_uris = st.lists(st.sampled_from(URI_COMPONENTS), min_size=1, max_size=4).map(".".join)


def _brute_matching(entries, uri):
    return {entry for entry in entries if pattern_matches(entry[0], entry[1], uri)}


def _specificity(entry: tuple[str, str]) -> tuple:
    """An independent statement of the resolution order (smaller is more specific)."""
    pattern, match = entry
    if match == EXACT:
        return (0,)
    if match == PREFIX:
        return (1, -len(pattern))
    parts = pattern.split(".")
    fixed_from_left = tuple(0 if part else 1 for part in parts)  # a wildcard further left sorts later
    return (2, sum(fixed_from_left), fixed_from_left)


def _brute_best(entries, uri):
    found = _brute_matching(entries, uri)
    return min(found, key=_specificity) if found else None


def _uris_for(entries, extra):
    """Concrete URIs worth probing: the random ones, plus each pattern with its wildcards filled in."""
    uris = set(extra)
    for pattern, _ in entries:
        uris.add(".".join(part or "x" for part in pattern.split(".")))
        uris.add(".".join(part or "x" for part in pattern.split(".")) + "y")
    return {uri for uri in uris if LOOSE.problem(uri) is None}


def _build(entries) -> UriIndex:
    index: UriIndex[tuple] = UriIndex()
    for entry in entries:
        index.add(*entry, entry)
    return index


@settings(max_examples=200, deadline=None)
@given(pattern_sets, st.lists(concrete_uris, max_size=8))
def test_matching_equals_brute_force(entries, uris):
    """For any set of valid patterns, matching(uri) yields exactly the entries the reference matcher accepts,
    each once."""
    index = _build(entries)
    assert len(index) == len(entries)
    for uri in _uris_for(entries, uris):
        found = list(index.matching(uri))
        assert len(found) == len(set(found)), uri
        assert set(found) == _brute_matching(entries, uri), uri


@settings(max_examples=200, deadline=None)
@given(pattern_sets, st.lists(concrete_uris, max_size=8))
def test_best_equals_brute_force(entries, uris):
    """best(uri) is the most specific of all matching entries per the documented order."""
    index = _build(entries)
    for uri in _uris_for(entries, uris):
        assert index.best(uri) == _brute_best(entries, uri), uri


@st.composite
def overlapping(draw):
    """A concrete URI and many patterns derived from it (masked components, string prefixes), so that several
    entries of each kind compete for best()."""
    parts = draw(st.lists(st.sampled_from(["a", "b", "ab"]), min_size=1, max_size=5))
    uri = ".".join(parts)
    masks = draw(st.lists(st.lists(st.booleans(), min_size=len(parts), max_size=len(parts)), max_size=10))
    entries = {(".".join("" if hide else part for hide, part in zip(mask, parts)), WILDCARD) for mask in masks}
    cuts = draw(st.lists(st.integers(0, len(uri)), max_size=6))
    entries |= {(uri[:cut], PREFIX) for cut in cuts}
    if draw(st.booleans()):
        entries.add((uri, EXACT))
    noise = draw(pattern_sets)
    return uri, sorted({entry for entry in entries | set(noise) if _valid(entry)})


@settings(max_examples=200, deadline=None)
@given(overlapping())
def test_best_equals_brute_force_when_patterns_compete(case):
    """With many exact, prefix and wildcard patterns matching one URI, best() picks the documented winner and
    matching() yields every one of them."""
    uri, entries = case
    index = _build(entries)
    assert set(index.matching(uri)) == _brute_matching(entries, uri)
    assert index.best(uri) == _brute_best(entries, uri)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_remove_everything_leaves_index_empty(data):
    """Removing entries in any order keeps matching() exact at every step and ends with an empty index that
    matches nothing and accepts the same entries again."""
    entries = data.draw(pattern_sets)
    uris = _uris_for(entries, data.draw(st.lists(concrete_uris, max_size=5)))
    index = _build(entries)
    remaining = set(entries)
    for entry in data.draw(st.permutations(entries)):
        assert index.remove(*entry) == entry
        remaining.discard(entry)
        assert len(index) == len(remaining)
        with pytest.raises(KeyError):
            index.remove(*entry)
        for uri in uris:
            assert set(index.matching(uri)) == _brute_matching(remaining, uri), uri
    assert len(index) == 0
    for uri in uris | {"a", "a.b", "a.b.c.d"}:
        assert list(index.matching(uri)) == []
        assert index.best(uri) is None
    for entry in entries:
        assert index.get(*entry) is None
        index.add(*entry, entry)
    assert len(index) == len(entries)


@settings(max_examples=200, deadline=None)
@given(patterns, concrete_uris)
def test_get_finds_what_add_stored(entry, uri):
    """get() returns the value under exactly the (pattern, match) it was added with."""
    index = _build([entry])
    assert index.get(*entry) == entry
    assert set(index.matching(uri)) == _brute_matching([entry], uri)


# --------------------------------------------------------------------------------------------------------------
# UriIndex: many wildcard shapes (cost per change, order, the cap)
# --------------------------------------------------------------------------------------------------------------

def _shape_pattern(size: int, mask: int) -> str:
    """The wildcard pattern of `size` components whose bit i of `mask` set means component i is a wildcard."""
    return ".".join("" if mask >> i & 1 else f"c{i}" for i in range(size))


class _CountedRank(tuple):
    """A shape's rank that counts every comparison made with it."""

    comparisons = 0

    def __lt__(self, other):
        type(self).comparisons += 1
        return tuple.__lt__(self, other)

    def __gt__(self, other):
        type(self).comparisons += 1
        return tuple.__gt__(self, other)


def test_changing_the_index_never_walks_every_shape(monkeypatch):
    """Adding, finding and removing a wildcard pattern costs O(log shapes) rank comparisons and computes one rank
    (for a new shape), however many shapes of the same size exist: 2,048 shapes of 12 components, every one of
    them counted. (Before the fix each add re-sorted the shapes: one rank per existing shape, per add.)"""
    ranks_computed = []
    original = uri_module._WildcardShape.specificity

    def counted_specificity(shape):
        ranks_computed.append(shape)
        return _CountedRank(original(shape))

    monkeypatch.setattr(uri_module._WildcardShape, "specificity", counted_specificity)
    size, count = 12, 2048  # mask < 2**11: component 11 is always fixed, so every shape takes a second pattern
    bound = 2 * count.bit_length() + 2  # a binary search over `count` items, with room to spare
    index: UriIndex[int] = UriIndex()
    worst_add = worst_lookup = worst_remove = 0
    for mask in range(count):
        before, ranks_before = _CountedRank.comparisons, len(ranks_computed)
        index.add(_shape_pattern(size, mask), WILDCARD, mask)
        worst_add = max(worst_add, _CountedRank.comparisons - before)
        assert len(ranks_computed) - ranks_before <= 1, "an add computed the rank of other shapes"
        # a second pattern of an existing shape: no rank, no comparison
        before, ranks_before = _CountedRank.comparisons, len(ranks_computed)
        index.add(_shape_pattern(size, mask).replace("c", "d"), WILDCARD, -mask - 1)
        assert (_CountedRank.comparisons - before, len(ranks_computed) - ranks_before) == (0, 0)
    assert index.wildcard_shapes() == count and len(index) == 2 * count
    for mask in range(count):
        before = _CountedRank.comparisons
        assert index.get(_shape_pattern(size, mask), WILDCARD) == mask
        worst_lookup = max(worst_lookup, _CountedRank.comparisons - before)
    for mask in reversed(range(count)):
        before = _CountedRank.comparisons
        index.remove(_shape_pattern(size, mask), WILDCARD)
        index.remove(_shape_pattern(size, mask).replace("c", "d"), WILDCARD)
        worst_remove = max(worst_remove, _CountedRank.comparisons - before)
    assert len(ranks_computed) == count
    assert worst_add <= bound and worst_remove <= bound, (worst_add, worst_remove, bound)
    assert worst_lookup == 0
    assert index.wildcard_shapes() == 0 and len(index) == 0


@st.composite
def many_shapes(draw):
    """Up to 120 wildcard patterns over one long concrete URI (so most of them match it), plus noise patterns of
    other sizes and values, exact and prefix entries."""
    parts = draw(st.lists(st.sampled_from(["a", "b"]), min_size=1, max_size=7))
    uri = ".".join(parts)
    masks = draw(st.lists(st.integers(0, 2 ** len(parts) - 1), max_size=120, unique=True))
    entries = {(".".join("" if m >> i & 1 else part for i, part in enumerate(parts)), WILDCARD) for m in masks}
    other = draw(st.lists(st.tuples(st.integers(1, 7), st.integers(0, 127)), max_size=60))
    entries |= {(_shape_pattern(size, mask % 2**size), WILDCARD) for size, mask in other}
    entries |= {(uri[:cut], PREFIX) for cut in draw(st.lists(st.integers(0, len(uri)), max_size=6))}
    if draw(st.booleans()):
        entries.add((uri, EXACT))
    return uri, sorted(entry for entry in entries if _valid(entry)), draw(st.randoms(use_true_random=False))


@settings(max_examples=150, deadline=None)
@given(many_shapes())
def test_matching_order_with_many_shapes_equals_brute_force(case):
    """With many distinct wildcard shapes, added and then half removed in random order, matching() yields exactly
    the brute-force matches, most specific first (exact, longer prefixes, fewer wildcards, wildcards further
    right), and best() is the first of them."""
    uri, entries, rng = case
    order = list(entries)
    rng.shuffle(order)
    index = _build(order)
    remaining = set(entries)
    for step, entry in enumerate(order):
        if step % 2:
            index.remove(*entry)
            remaining.discard(entry)
    expected = sorted(_brute_matching(remaining, uri), key=lambda entry: specificity(*entry))
    assert list(index.matching(uri)) == expected
    assert index.best(uri) == (expected[0] if expected else None)
    assert index.wildcard_shapes() == len({(p.count("."), tuple(i for i, c in enumerate(p.split(".")) if c))
                                           for p, match in remaining if match == WILDCARD})


def test_shape_cap_refuses_a_new_shape_and_admits_existing_ones():
    """At `max_wildcard_shapes`, a pattern of a new shape has no room (add raises TooManyWildcardShapes and
    changes nothing), while more patterns of a held shape, exact and prefix entries still fit; removing the last
    pattern of a shape frees its place."""
    index: UriIndex[str] = UriIndex(max_wildcard_shapes=2)
    index.add("a..c", WILDCARD, "1")
    index.add(".b", WILDCARD, "2")
    assert not index.has_room_for("a.b.", WILDCARD)
    with pytest.raises(TooManyWildcardShapes):
        index.add("a.b.", WILDCARD, "3")
    assert (index.wildcard_shapes(), len(index), index.get("a.b.", WILDCARD)) == (2, 2, None)
    assert list(index.matching("a.b.c")) == ["1"]
    for uri, match in [("x..z", WILDCARD), (".q", WILDCARD), ("a.b.", EXACT), ("a.b.", PREFIX)]:
        assert index.has_room_for(uri, match), (uri, match)
        index.add(uri, match, uri + match)
    assert index.wildcard_shapes() == 2
    index.remove(".b", WILDCARD)
    assert not index.has_room_for("a.b.", WILDCARD)  # ".q" still holds that shape
    index.remove(".q", WILDCARD)
    assert index.has_room_for("a.b.", WILDCARD)
    index.add("a.b.", WILDCARD, "3")
    assert list(index.matching("a.b.c")) == ["a.b.prefix", "3", "1"]  # its wildcard sits further right


def test_index_without_a_cap_is_unbounded():
    """An index built without max_wildcard_shapes (operator-written rule sets) accepts any number of shapes."""
    index: UriIndex[int] = UriIndex()
    for mask in range(1500):
        index.add(_shape_pattern(11, mask), WILDCARD, mask)
    assert index.wildcard_shapes() == 1500 and index.has_room_for(_shape_pattern(12, 1), WILDCARD)
