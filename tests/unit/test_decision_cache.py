"""The authorization decision cache (router/core/decisions.py): sans-I/O, `now` passed in.

Pins down that a cached answer is only ever found for the identity it was made for (or, when the authorizer said so,
for the other sessions of the same role, never another role), that it expires after its TTL, that the cache is
bounded (expired entries go first, then the oldest), and that an answer with TTL 0 is never cached.
"""

from __future__ import annotations

import pytest

from wampgate.core.decisions import DecisionCache
from wampgate.model import Decision

ALLOW = Decision(allow=True, cache_ttl=10.0)
ALLOW_ROLE = Decision(allow=True, cache_ttl=10.0, per_role=True)
REQUEST = ("publish", "com.a", "exact")  # action, uri, match


def put(cache, decision, *, role="user", authid="alice", authmethod="ticket", request=REQUEST, now=100.0):
    cache.put(role, authid, authmethod, *request, decision, now)


def get(cache, *, role="user", authid="alice", authmethod="ticket", request=REQUEST, now=100.0):
    return cache.get(role, authid, authmethod, *request, now)


def test_an_identity_answer_is_found_by_that_identity_only():
    """Without per_role, another authid or another authmethod of the same role finds nothing."""
    cache = DecisionCache()
    put(cache, ALLOW)
    assert get(cache) is ALLOW
    assert get(cache, authid="bob") is None
    assert get(cache, authmethod="anonymous") is None
    assert get(cache, authid="alice ") is None


def test_a_per_role_answer_is_found_by_every_identity_of_the_role():
    """A per_role answer made for alice is found by bob and by other authmethods of the same role."""
    cache = DecisionCache()
    put(cache, ALLOW_ROLE)
    assert get(cache, authid="bob") is ALLOW_ROLE
    assert get(cache, authid="carol", authmethod="anonymous") is ALLOW_ROLE


@pytest.mark.parametrize("decision", [ALLOW, ALLOW_ROLE])
def test_answers_never_cross_roles(decision):
    """Neither an identity answer nor a per_role answer is found by a session of another role, even with the same
    authid and authmethod."""
    cache = DecisionCache()
    put(cache, decision, role="admin")
    assert get(cache, role="admin") is decision
    assert get(cache, role="user") is None
    assert get(cache, role="admin.") is None


@pytest.mark.parametrize("request_", [("subscribe", "com.a", "exact"), ("publish", "com.b", "exact"),
                                      ("publish", "com.a", "prefix"), ("publish", "com.a.", "exact")])
def test_answers_never_cross_actions_uris_or_match_policies(request_):
    """An answer is for one action, URI and match policy."""
    cache = DecisionCache()
    put(cache, ALLOW_ROLE)
    assert get(cache, request=request_) is None


def test_an_identity_answer_takes_precedence_over_a_role_answer():
    """When a session has its own answer and the role has one too, the session's own (here a deny) is used."""
    cache = DecisionCache()
    own_deny = Decision(allow=False, cache_ttl=10.0)
    put(cache, ALLOW_ROLE, authid="bob")
    put(cache, own_deny)
    assert get(cache) is own_deny
    assert get(cache, authid="carol") is ALLOW_ROLE


def test_an_answer_expires_after_its_ttl():
    """Put at t=100 with TTL 10: found at t=109.999, gone from t=110 on."""
    cache = DecisionCache()
    put(cache, ALLOW, now=100.0)
    assert get(cache, now=100.0) is ALLOW
    assert get(cache, now=109.999) is ALLOW
    assert get(cache, now=110.0) is None
    assert get(cache, now=1e9) is None


def test_a_new_answer_replaces_the_old_one_and_restarts_the_ttl():
    """Putting the same key again replaces the answer and its expiry, without growing the cache."""
    cache = DecisionCache()
    put(cache, ALLOW, now=100.0)
    deny = Decision(allow=False, cache_ttl=10.0)
    put(cache, deny, now=105.0)
    assert len(cache) == 1
    assert get(cache, now=114.0) is deny
    assert get(cache, now=115.0) is None


@pytest.mark.parametrize("ttl", [0.0, -1.0])
def test_answers_with_no_ttl_are_not_cached(ttl):
    """A TTL of 0 (or less) means: ask every time."""
    cache = DecisionCache()
    put(cache, Decision(allow=True, cache_ttl=ttl, per_role=True))
    assert len(cache) == 0
    assert get(cache) is None


def test_the_cache_is_bounded_and_evicts_the_oldest_when_nothing_expired():
    """At max_entries, a new key drops the oldest tenth (at least one entry): the size never exceeds the bound, the
    oldest entries go and the newest stays."""
    cache = DecisionCache(max_entries=20)
    lasting = Decision(allow=True, cache_ttl=3600.0)
    for i in range(20):
        put(cache, lasting, request=("publish", f"com.t{i}", "exact"), now=100.0 + i)
    assert len(cache) == 20
    put(cache, lasting, request=("publish", "com.new", "exact"), now=120.0)
    assert len(cache) == 19  # 20 - 2 (a tenth) + 1
    assert get(cache, request=("publish", "com.t0", "exact"), now=120.0) is None
    assert get(cache, request=("publish", "com.t1", "exact"), now=120.0) is None
    assert get(cache, request=("publish", "com.t2", "exact"), now=120.0) is lasting
    assert get(cache, request=("publish", "com.new", "exact"), now=120.0) is lasting
    for i in range(100):
        put(cache, lasting, request=("publish", f"com.more{i}", "exact"), now=121.0)
        assert len(cache) <= 20
    assert get(cache, request=("publish", "com.more99", "exact"), now=121.0) is lasting


def test_eviction_drops_expired_entries_first():
    """At the bound, expired entries are dropped and every live entry is kept."""
    cache = DecisionCache(max_entries=10)
    short = Decision(allow=True, cache_ttl=1.0)
    for i in range(10):
        put(cache, short if i % 2 else ALLOW, request=("publish", f"com.t{i}", "exact"), now=100.0)
    put(cache, ALLOW, request=("publish", "com.new", "exact"), now=102.0)
    assert len(cache) == 6
    live = [i for i in range(10) if get(cache, request=("publish", f"com.t{i}", "exact"), now=102.0) is not None]
    assert live == [0, 2, 4, 6, 8]


def test_replacing_a_key_at_the_bound_evicts_nothing():
    """Updating an existing key of a full cache keeps every other entry."""
    cache = DecisionCache(max_entries=3)
    for i in range(3):
        put(cache, ALLOW, request=("publish", f"com.t{i}", "exact"))
    put(cache, Decision(allow=False, cache_ttl=10.0), request=("publish", "com.t0", "exact"))
    assert len(cache) == 3
    assert [get(cache, request=("publish", f"com.t{i}", "exact")).allow for i in range(3)] == [False, True, True]


def test_clear_forgets_everything():
    """clear() drops every entry (a config reload must not keep old answers)."""
    cache = DecisionCache()
    put(cache, ALLOW)
    put(cache, ALLOW_ROLE, authid="bob", request=("call", "com.p", "exact"))
    cache.clear()
    assert len(cache) == 0
    assert get(cache) is None


def test_a_cache_of_size_zero_caches_nothing():
    """decision_cache_size = 0 turns caching off: nothing is stored and every request asks the authorizers."""
    cache = DecisionCache(max_entries=0)
    put(cache, ALLOW_ROLE)
    assert len(cache) == 0
    assert get(cache) is None
