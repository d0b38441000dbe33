"""`wampgate hash-secret`, the installed console script: it prints a hash that wampgate.passwords accepts for exactly
that secret, never the secret itself. A stdin that is not a terminal (a pipe, a file) is read without `--stdin`
(no getpass warning, no traceback), `--stdin` stays accepted, the line ending is not part of the secret (LF, CRLF
or none), and an empty secret is refused with exit status 2 and a message saying what to do."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from wampgate.passwords import check_hash_format, verify_secret

WAMPGATE = Path(sys.executable).parent / "wampgate"  # the console script of the venv running the tests
WITH_AND_WITHOUT_STDIN_FLAG = pytest.mark.parametrize("flags", [["--stdin"], []], ids=["--stdin", "piped"])


def hash_secret(stdin: bytes, *flags: str) -> subprocess.CompletedProcess:
    """Run the command (bounded to 30 s) with `stdin` on a pipe."""
    return subprocess.run([str(WAMPGATE), "hash-secret", *flags], input=stdin, capture_output=True, timeout=30)


def the_hash(done: subprocess.CompletedProcess) -> str:
    """The one line printed, checked to be a well-formed hash, after a clean exit with nothing on stderr."""
    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    lines = done.stdout.decode("ascii").splitlines()
    assert len(lines) == 1, lines
    assert check_hash_format(lines[0]) is None
    return lines[0]


@WITH_AND_WITHOUT_STDIN_FLAG
def test_printed_hash_verifies_the_secret_and_nothing_else(flags):
    """The hash verifies the first line of stdin (UTF-8, inner spaces kept, without the newline) and neither that
    secret plus a character nor the second line; the secret is echoed nowhere."""
    secret = "s3cret ticket \u00e9 with spaces"
    done = hash_secret((secret + "\nsecond line is ignored\n").encode("utf-8"), *flags)
    encoded = the_hash(done)
    assert verify_secret(secret, encoded)
    assert not verify_secret(secret + "x", encoded)
    assert not verify_secret("second line is ignored", encoded)
    assert secret.encode("utf-8") not in done.stdout + done.stderr


@WITH_AND_WITHOUT_STDIN_FLAG
@pytest.mark.parametrize("ending", [b"\r\n", b"\n", b""], ids=["CRLF", "LF", "none"])
def test_line_ending_is_not_part_of_the_secret(flags, ending):
    """`printf 'pw\\r\\n' | wampgate hash-secret` hashes "pw", not "pw\\r" (the newcomer review's silently wrong
    hash); so do LF and no line ending at all."""
    encoded = the_hash(hash_secret(b"pw" + ending, *flags))
    assert verify_secret("pw", encoded)
    assert not verify_secret("pw\r", encoded)


@WITH_AND_WITHOUT_STDIN_FLAG
@pytest.mark.parametrize("stdin", [b"\n", b"\r\n", b""], ids=["LF", "CRLF", "nothing"])
def test_empty_secret_exits_2_with_a_message_and_no_hash(flags, stdin):
    """An empty first line, a bare CRLF or no input at all is refused: exit status 2, one message on stderr naming
    the problem and how to pipe a secret in, nothing on stdout, no traceback."""
    done = hash_secret(stdin, *flags)
    assert done.returncode == 2
    assert done.stdout == b""
    message = done.stderr.decode("utf-8")
    assert message.startswith("wampgate hash-secret: the secret is empty;"), message
    assert "| wampgate hash-secret" in message
    assert "Traceback" not in message and len(message.splitlines()) == 1


def test_stdin_that_is_not_utf8_exits_2_without_a_traceback():
    """Bytes that are not UTF-8 are refused in words (exit 2), not hashed under some guessed encoding."""
    done = hash_secret(b"caf\xe9\n")
    assert done.returncode == 2
    assert done.stdout == b""
    assert done.stderr.decode("utf-8") == "wampgate hash-secret: stdin is not UTF-8 text\n"


def test_stdin_from_a_file_is_read_without_the_flag(tmp_path):
    """`wampgate hash-secret < secret.txt` (a regular file, not a terminal) hashes the file's first line."""
    secret_file = tmp_path / "secret.txt"
    secret_file.write_bytes(b"from a file\r\n")
    with secret_file.open("rb") as stdin:
        done = subprocess.run([str(WAMPGATE), "hash-secret"], stdin=stdin, capture_output=True, timeout=30)
    assert verify_secret("from a file", the_hash(done))


class Terminal:
    """The command with a pseudo-terminal as stdin, in a session of its own (so getpass cannot reach the terminal of
    the test run, and uses this one); stderr, where the prompts go, is read until a prompt appears."""

    TIMEOUT = 30.0

    def __init__(self):
        self.master, slave = os.openpty()
        self.process = subprocess.Popen([str(WAMPGATE), "hash-secret"], stdin=slave, stdout=subprocess.PIPE,
                                        stderr=subprocess.PIPE, start_new_session=True)
        os.close(slave)
        self.prompts = b""

    def answer(self, prompt: bytes, line: bytes) -> None:
        """Wait (bounded) for `prompt` on stderr, then type `line`. Typing earlier would be lost: getpass flushes
        pending input when it turns echo off."""
        deadline = time.monotonic() + self.TIMEOUT
        while not self.prompts.endswith(prompt):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {prompt!r} prompt within {self.TIMEOUT} s; stderr so far: {self.prompts!r}"
            ready, _, _ = select.select([self.process.stderr], [], [], remaining)
            if ready:
                chunk = os.read(self.process.stderr.fileno(), 1024)
                assert chunk, f"stderr closed before the {prompt!r} prompt: {self.prompts!r}"
                self.prompts += chunk
        os.write(self.master, line)

    def finish(self) -> tuple[int, bytes, bytes]:
        try:
            out, err = self.process.communicate(timeout=self.TIMEOUT)
        finally:
            os.close(self.master)
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait(timeout=self.TIMEOUT)
        return self.process.returncode, out, self.prompts + err


def test_on_a_terminal_the_secret_is_asked_twice():
    """With a terminal as stdin the secret is asked for twice (prompts on stderr, not echoed) and hashed when both
    entries agree; when they differ nothing is hashed and the exit status is 1."""
    terminal = Terminal()
    terminal.answer(b"secret: ", b"pw\n")
    terminal.answer(b"again: ", b"pw\n")
    code, out, err = terminal.finish()
    assert code == 0, err
    lines = out.decode("ascii").splitlines()
    assert len(lines) == 1 and verify_secret("pw", lines[0])
    assert b"pw" not in err

    terminal = Terminal()
    terminal.answer(b"secret: ", b"pw\n")
    terminal.answer(b"again: ", b"px\n")
    code, out, err = terminal.finish()
    assert (code, out) == (1, b"")
    assert err.endswith(b"wampgate hash-secret: the two entries differ; nothing was hashed\n")


# -- --scram ---------------------------------------------------------------------------------------------------------


def scram_row(done: subprocess.CompletedProcess) -> dict:
    """The printed lines, parsed as the TOML of a principal (after a clean exit with nothing on stderr)."""
    import tomllib

    assert done.returncode == 0, done.stderr
    assert done.stderr == b""
    return tomllib.loads(done.stdout.decode("ascii"))


@pytest.mark.parametrize("flags,expected", [
    (["--iterations", "1", "--memory", "8192"], {"kdf": "argon2id13", "iterations": 1, "memory": 8192}),
    (["--kdf", "pbkdf2", "--iterations", "4096"], {"kdf": "pbkdf2", "iterations": 4096}),
    ([], {"kdf": "argon2id13", "iterations": 3, "memory": 65536}),
], ids=["argon2id13", "pbkdf2", "defaults"])
def test_scram_lines_log_in_with_the_password_and_no_other(flags, expected):
    """`hash-secret --scram` prints kdf, parameters, salt, stored_key and server_key of a scram principal: with
    authid and role added, the scram authenticator accepts them, Autobahn's AuthScram logs in with the password
    (the newline not part of it), a wrong password does not, and the password appears nowhere."""
    from autobahn.wamp.auth import AuthScram
    from autobahn.wamp.types import Challenge as ClientChallenge

    from wampgate.model import Identity
    from wampgate.plugins.authn.scram import ScramAuthenticator
    from tests.plugins import auth_request

    secret = "scram p\u00e4ssword"
    done = hash_secret((secret + "\r\n").encode("utf-8"), "--scram", *flags)
    row = scram_row(done)
    assert {key: row[key] for key in expected} == expected
    assert set(row) == set(expected) | {"salt", "stored_key", "server_key"}
    assert secret.encode("utf-8") not in done.stdout
    authenticator = ScramAuthenticator({"principals": [{"authid": "alice", "role": "user", **row}]})
    for password, joins in ((secret, True), (secret + "\r", False)):
        client = AuthScram(authid="alice", password=password)
        request = auth_request("alice", authextra=client.authextra, method="scram")
        challenge = authenticator.begin(request)
        if row["kdf"] == "pbkdf2":  # Autobahn's own PBKDF2 path fails on its text salt: the spec's client instead
            from tests.support.binding_clients import scram_answer

            proof, extra = scram_answer("alice", password, client.authextra["nonce"])(ClientChallenge(
                "scram", challenge.extra))
        else:
            proof, extra = client.on_challenge(None, ClientChallenge("scram", challenge.extra)).decode(), {}
        assert isinstance(authenticator.finish(request, challenge, proof, extra), Identity) is joins


@pytest.mark.parametrize("flags,complaint", [
    (["--scram", "--kdf", "pbkdf2", "--iterations", "10"], b"--iterations: expected an integer from 4096"),
    (["--scram", "--iterations", "65"], b"--iterations: expected an integer from 1 to 64"),
    (["--scram", "--memory", "100"], b"--memory: expected KiB from 8192"),
    (["--scram", "--kdf", "pbkdf2", "--memory", "8192"], b"--memory: only for argon2id13"),
    (["--iterations", "3"], b"go with --scram"),
])
def test_scram_parameters_out_of_bounds_are_refused(flags, complaint):
    """Parameters the scram authenticator would refuse at load are never printed: exit status 2 and the bound."""
    done = hash_secret(b"pw\n", *flags)
    assert done.returncode == 2
    assert done.stdout == b""
    assert complaint in done.stderr
