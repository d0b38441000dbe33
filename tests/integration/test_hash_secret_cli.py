"""`wampgate hash-secret --stdin`, the installed console script: it prints a hash that wampgate.passwords accepts for
exactly that secret, never the secret itself, and refuses an empty secret with exit status 1."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from wampgate.passwords import check_hash_format, verify_secret

WAMPGATE = Path(sys.executable).parent / "wampgate"  # the console script of the venv running the tests


def hash_secret(stdin: str) -> subprocess.CompletedProcess:
    """Run the command (bounded to 30 s) with `stdin`."""
    return subprocess.run([str(WAMPGATE), "hash-secret", "--stdin"], input=stdin, capture_output=True, text=True,
                          timeout=30)


def test_printed_hash_verifies_the_secret_and_nothing_else():
    """The one line printed is a well-formed scrypt hash that verify_secret accepts for the secret read from stdin
    (its first line, without the newline) and rejects for another secret; the secret is echoed nowhere."""
    secret = "s3cret ticket \u00e9 with spaces"
    done = hash_secret(secret + "\nsecond line is ignored\n")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1
    encoded = lines[0]
    assert check_hash_format(encoded) is None
    assert verify_secret(secret, encoded)
    assert not verify_secret(secret + "x", encoded)
    assert not verify_secret("second line is ignored", encoded)
    assert secret not in done.stdout and secret not in done.stderr


def test_empty_secret_exits_1_and_prints_no_hash():
    """An empty first line (or no input at all) is refused: exit status 1, a message on stderr, nothing on
    stdout."""
    for stdin in ("\n", ""):
        done = hash_secret(stdin)
        assert done.returncode == 1
        assert done.stdout == ""
        assert "empty" in done.stderr
