"""wampgate.passwords: scrypt hashes that describe themselves, verify in constant time, and refuse hostile parameters."""

from __future__ import annotations

import base64

import pytest

from wampgate import passwords
from wampgate.passwords import DUMMY_HASH, check_hash_format, dummy_hash, hash_secret, verify_dummy, verify_secret

FAST = dict(ln=14)  # the cheapest parameters accepted (16 MiB): keeps the suite quick


def test_round_trip_with_default_parameters():
    """A hash made with the defaults names them, and verifies the secret it was made from."""
    encoded = hash_secret("correct horse battery staple")
    assert encoded.startswith("scrypt$ln=15,r=8,p=1$")
    assert check_hash_format(encoded) is None
    assert verify_secret("correct horse battery staple", encoded) is True


def test_wrong_secret_is_false():
    """Any other secret, including a prefix, different case or trailing space, does not verify."""
    encoded = hash_secret("s3cret-Ticket", **FAST)
    for wrong in ("s3cret-ticket", "s3cret-Ticket ", "s3cret-", "", "x" * 5000):
        assert verify_secret(wrong, encoded) is False


def test_unicode_secret_round_trip():
    """Secrets are UTF-8 encoded: non-ASCII secrets work, and a string that cannot be encoded never matches."""
    encoded = hash_secret("pässwörd ✓", **FAST)
    assert verify_secret("pässwörd ✓", encoded) is True
    assert verify_secret("p\udcc3sswörd ✓", encoded) is False


def test_salt_is_random_and_sixteen_bytes():
    """Hashing the same secret twice gives different strings (fresh 16-byte salt each time), both valid."""
    first, second = hash_secret("same", **FAST), hash_secret("same", **FAST)
    assert first != second
    salt = first.split("$")[2]
    assert len(base64.b64decode(salt + "=" * (-len(salt) % 4))) == 16
    assert verify_secret("same", first) and verify_secret("same", second)


def test_non_string_secret_is_false():
    """A secret that is not a string (a client's odd AUTHENTICATE) verifies as False rather than raising."""
    encoded = hash_secret("secret", **FAST)
    for value in (None, b"secret", 12, ["secret"]):
        assert verify_secret(value, encoded) is False


@pytest.mark.parametrize("encoded", [
    None,
    42,
    "",
    "secret",
    "bcrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U",
    "scrypt$ln=15,r=8$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U",
    "scrypt$r=8,ln=15,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U",
    "scrypt$ln=015,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U",
    "scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA==$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U",
    "scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U$",
    "scrypt$ln=15,r=8,p=1$c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U",  # salt 4 bytes
    "scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5",  # key 3 bytes
    "scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$a-V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U",  # not base64
    "scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a",  # length 1 mod 4
    " scrypt$ln=15,r=8,p=1$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U",
])
def test_malformed_encodings_are_refused(encoded):
    """check_hash_format names a problem for anything but the exact format; verify_secret is False for them."""
    assert check_hash_format(encoded) is not None
    assert verify_secret("anything", encoded) is False


@pytest.mark.parametrize("parameters, word", [
    ("ln=20,r=8,p=1", "costly"),  # 1 GiB of memory
    ("ln=17,r=32,p=1", "costly"),  # 512 MiB of memory
    ("ln=15,r=8,p=16", "costly"),  # total work 512 MiB
    ("ln=31,r=1,p=1", "range"),
    ("ln=15,r=33,p=1", "range"),
    ("ln=15,r=8,p=17", "range"),
    ("ln=10,r=8,p=1", "weak"),  # 1 MiB
    ("ln=0,r=1,p=1", "range"),
])
def test_parameters_are_bounded(parameters, word):
    """A hostile or careless config cannot ask for absurd memory or time per check, nor for a weak hash; verify_secret
    refuses such hashes without computing them."""
    encoded = f"scrypt${parameters}$c2FsdHNhbHRzYWx0c2FsdA$a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U"
    problem = check_hash_format(encoded)
    assert problem is not None and word in problem
    assert verify_secret("anything", encoded) is False


def test_hash_secret_refuses_what_verify_would_refuse():
    """hash_secret never produces a hash the router would refuse to load: empty secrets and out-of-bound parameters
    raise ValueError."""
    with pytest.raises(ValueError):
        hash_secret("")
    with pytest.raises(ValueError):
        hash_secret("x", ln=20)
    with pytest.raises(ValueError):
        hash_secret("x", ln=10)


def test_largest_accepted_parameters_work():
    """The upper bound (256 MiB of work) is computable: OpenSSL's memory cap is raised to match."""
    encoded = hash_secret("big", ln=17, r=8, p=1)
    assert verify_secret("big", encoded) is True


def test_dummy_hash_is_valid_and_matches_nothing():
    """DUMMY_HASH loads like any hash; verify_dummy does the work and always answers False, even for odd input."""
    assert check_hash_format(DUMMY_HASH) is None
    assert DUMMY_HASH.startswith(f"scrypt$ln={passwords.DEFAULT_LN},r={passwords.DEFAULT_R},p={passwords.DEFAULT_P}$")
    assert verify_dummy("anything") is False
    assert verify_dummy(None) is False


def test_dummy_hash_copies_the_parameters_of_a_real_hash():
    """dummy_hash(like) has like's scrypt parameters and key length (so it costs the same), a different salt and key,
    and verify_dummy with `like` is False even for like's own secret."""
    real = hash_secret("secret", **FAST)
    decoy = dummy_hash(real)
    assert decoy.split("$")[1] == real.split("$")[1] == "ln=14,r=8,p=1"
    assert len(decoy.split("$")[3]) == len(real.split("$")[3])
    assert decoy != real and check_hash_format(decoy) is None
    assert verify_secret("secret", decoy) is False
    assert verify_dummy("secret", real) is False
