"""The `[limits]` keys of the authentication guard (login rate per peer address, HELLO authid and authextra bounds):
their defaults, that they reach the guard's policy, and the one-line problem for each wrong value."""

from __future__ import annotations

import pytest

from wampgate.config import LimitsConfig, load
from wampgate.core.lockout import LockoutPolicy
from tests.unit.test_config import listener, problems_of, realm, write


def test_defaults():
    """Without the keys: 10 logins/s per address with a burst of 20, authids up to 256 bytes, authextra up to 4 KiB."""
    policy = LimitsConfig().lockout
    assert (policy.logins_per_peer_rate, policy.logins_per_peer_burst) == (10.0, 20)
    assert (policy.max_authid_length, policy.max_authextra_size) == (256, 4096)
    assert policy == LockoutPolicy()


def test_values_reach_the_guard_policy_beside_the_failure_thresholds(tmp_path):
    """[limits] keys and [limits.auth_failures] keys end up in the one policy the router's guard is built from."""
    text = ("[limits]\nlogins_per_peer_rate = 2.5\nlogins_per_peer_burst = 5\nmax_authid_length = 64\n"
            "max_authextra_size = 1024\n[limits.auth_failures]\nlockout_after = 7\n" + listener() + realm())
    policy = load(write(tmp_path, text)).limits.lockout
    assert (policy.logins_per_peer_rate, policy.logins_per_peer_burst, policy.max_authid_length,
            policy.max_authextra_size, policy.lockout_after) == (2.5, 5, 64, 1024, 7)


def test_rate_zero_turns_the_login_rate_off(tmp_path):
    """logins_per_peer_rate = 0 is allowed: no rate limit."""
    text = "[limits]\nlogins_per_peer_rate = 0\n" + listener() + realm()
    assert load(write(tmp_path, text)).limits.lockout.logins_per_peer_rate == 0.0


@pytest.mark.parametrize("line,expected", [
    ("logins_per_peer_rate = -1", "limits.logins_per_peer_rate = -1: expected a number from 0.0 to 1000000.0"),
    ('logins_per_peer_rate = "fast"',
     'limits.logins_per_peer_rate = "fast": expected a number from 0.0 to 1000000.0'),
    ("logins_per_peer_burst = 0", "limits.logins_per_peer_burst = 0: expected an integer from 1 to 1000000"),
    ("logins_per_peer_burst = 2.5", "limits.logins_per_peer_burst = 2.5: expected an integer from 1 to 1000000"),
    ("max_authid_length = 8", "limits.max_authid_length = 8: expected an integer from 16 to 4096"),
    ("max_authid_length = 100000", "limits.max_authid_length = 100000: expected an integer from 16 to 4096"),
    ("max_authextra_size = 10", "limits.max_authextra_size = 10: expected an integer from 256 to 1048576"),
    ("max_authextra_size = true", "limits.max_authextra_size = true: expected an integer from 256 to 1048576"),
])
def test_wrong_values_give_one_line(tmp_path, line, expected):
    """Each wrong value is one line naming the key, the value found and the allowed range."""
    assert problems_of(tmp_path, f"[limits]\n{line}\n" + listener() + realm()) == [expected]
