"""Cluster channel naming: every publication reaches the one channel each matching subscription listens on."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wampgate.core.interest import interest_channel, pattern_bucket, publication_channels
from wampgate.uri import EXACT, PREFIX, WILDCARD, pattern_matches


@pytest.mark.parametrize(
    "uri, match, bucket",
    [
        ("com.app.", PREFIX, "com.app"),
        ("com.app.x", PREFIX, "com.app"),
        ("com.app", PREFIX, None),  # "com.app" also matches "com.apple": its last component is partial
        ("", PREFIX, None),
        ("com.app..x", WILDCARD, "com.app"),
        ("com..x", WILDCARD, None),
        (".app.x", WILDCARD, None),
        ("com.app.x", WILDCARD, "com.app"),
    ],
)
def test_pattern_bucket(uri, match, bucket):
    assert pattern_bucket(uri, match, 2) == bucket


def test_a_short_topic_goes_to_its_channel_and_the_catch_all_only():
    assert publication_channels("r", "a", 2) == (b"wg:r:t:a", b"wg:r:a")
    assert publication_channels("r", "a.b", 2) == (b"wg:r:t:a.b", b"wg:r:p:a.b", b"wg:r:a")


def test_exact_interest_is_the_topic_channel():
    assert interest_channel("realm1", "com.x", EXACT, 2) == b"wg:realm1:t:com.x"


component = st.sampled_from(["a", "b", "c", "ab"])
topics = st.lists(component, min_size=1, max_size=5).map(".".join)
wildcards = st.lists(st.sampled_from(["a", "b", ""]), min_size=1, max_size=5).map(".".join)
prefixes = st.text(alphabet="ab.", max_size=6)


@settings(max_examples=400, deadline=None)
@given(topic=topics, pattern=st.one_of(prefixes.map(lambda p: (p, PREFIX)), wildcards.map(lambda w: (w, WILDCARD)),
                                       topics.map(lambda t: (t, EXACT))),
       depth=st.integers(min_value=1, max_value=3))
def test_every_matching_subscription_listens_on_exactly_one_channel_the_publication_reaches(topic, pattern, depth):
    uri, match = pattern
    if not pattern_matches(uri, match, topic):
        return
    channels = publication_channels("r", topic, depth)
    assert channels.count(interest_channel("r", uri, match, depth)) == 1
