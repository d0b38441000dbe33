"""Both commands an operator has say which Wampgate they run: `wampgate --version` and `twistd wampgate --version`
(Twisted's own `--version` there would print only Twisted's version)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import twisted

import wampgate

BIN = Path(sys.executable).parent  # the venv running the tests


def run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / argv[0]), *argv[1:]], capture_output=True, text=True, timeout=60)


def test_wampgate_version():
    """`wampgate --version` prints "wampgate <version>" and exits 0, with no subcommand needed."""
    done = run("wampgate", "--version")
    assert (done.returncode, done.stdout, done.stderr) == (0, f"wampgate {wampgate.__version__}\n", "")


def test_twistd_wampgate_version():
    """`twistd wampgate --version` prints Wampgate's version and the Twisted running it, and exits 0 without asking
    for --config."""
    done = run("twistd", "wampgate", "--version")
    expected = f"wampgate {wampgate.__version__} (Twisted {twisted.__version__})\n"
    assert (done.returncode, done.stdout, done.stderr) == (0, expected, "")
