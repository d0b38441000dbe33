"""The HELLO bounds: authid length in UTF-8 bytes and an authextra size estimate that stops at its bound."""

from wampgate.core.authbounds import size_over, utf8_length_over


def test_authid_length_is_counted_in_utf8_bytes():
    """256 ASCII characters pass a 256-byte bound, 257 do not; 129 two-byte characters (258 bytes) do not either."""
    assert not utf8_length_over("a" * 256, 256)
    assert utf8_length_over("a" * 257, 256)
    assert utf8_length_over("é" * 129, 256)
    assert not utf8_length_over("é" * 128, 256)


def test_lone_surrogates_are_measured_not_rejected():
    """A lone surrogate (JSON allows one) is measured like any character, never raising."""
    assert not utf8_length_over("\ud800" * 10, 256)
    assert utf8_length_over("\ud800" * 100, 256)


def test_small_authextra_passes_and_large_ones_are_over():
    """A typical authextra is far below 4 KiB; a 5 KB string, 2,000 keys or a deep nest of empty lists is over."""
    assert not size_over({"pubkey": "ab" * 32, "channel_binding": None}, 4096)
    assert size_over({"blob": "x" * 5000}, 4096)
    assert size_over({f"k{i}": i for i in range(2000)}, 4096)
    deep: list = []
    for _ in range(3000):
        deep = [deep]
    assert size_over({"deep": deep}, 4096)


def test_a_huge_container_is_judged_without_walking_it():
    """A list of a million items is over the bound from its length alone (the estimate stops there)."""
    assert size_over({"many": [0] * 1_000_000}, 4096)
    assert size_over({"bytes": b"\x00" * 5000}, 4096)
