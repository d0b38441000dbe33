"""The `wampgate` command: helpers around the router (the router itself runs under `twistd wampgate`)."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path
from functools import partial

import wampgate
from wampgate.config import ConfigError, load
from wampgate.initdir import DEFAULT_PORT as DEFAULT_INIT_PORT


def summary(config) -> str:
    """What the config sets up, one line per listener, realm and plugin."""
    lines = []
    for listener in config.listeners:
        security = "TLS" if listener.tls else "plain"
        methods = ", ".join(method.method for method in listener.auth)
        lines.append(f"listener {listener.name}: {listener.endpoint} ({security}) "
                     f"{' + '.join(listener.transports)}; authentication: {methods}")
    for realm in config.realms.values():
        authorizers = ", ".join(entry.plugin for entry in realm.authorizers) or "none (everything denied)"
        lines.append(f"realm {realm.name}: roles {', '.join(realm.roles) or 'none'}; authorizers: {authorizers}")
    lines.append(f"flow control: {', '.join(entry.plugin for entry in config.flow) or 'none'}")
    lines.append(f"admin: {config.admin.endpoint if config.admin else 'off'}")
    return "\n".join(lines)


def check_config(path: str) -> int:
    """Validate a config file without starting anything; print the same messages as start-up: the router's tables
    and the plugin tables in one pass."""
    from twisted.internet import reactor  # built into objects, never run

    from wampgate.tx.plugins_from_config import plugin_problems
    from wampgate.tx.service import make_service

    try:
        config = load(path, plugin_check=partial(plugin_problems, reactor=reactor))
        make_service(config, reactor)
    except ConfigError as e:
        for problem in e.problems:
            print(f"{path}: {problem}", file=sys.stderr)
        return 1
    print(summary(config))
    return 0


def hash_secret_command(from_stdin: bool, scram: dict | None = None) -> int:
    """Print the hash of a secret, for `secret_hash` in a ticket principal; the secret itself is never stored. With
    `scram` (the KDF and its parameters), print the lines of a scram principal instead: salt, stored and server key.

    On a terminal the secret is asked for twice, unechoed. Otherwise (a pipe, a file, `--stdin`) the first line of
    stdin is the secret, without its line ending: CRLF from a Windows editor or clipboard hashes "pw", not "pw\\r"."""
    from wampgate.passwords import hash_secret

    if from_stdin or not _is_terminal(sys.stdin):
        secret = first_line(sys.stdin)
        if secret is None:
            print("wampgate hash-secret: stdin is not UTF-8 text", file=sys.stderr)
            return 2
    else:
        try:
            secret = getpass.getpass("secret: ")
            if secret and getpass.getpass("again: ") != secret:
                print("wampgate hash-secret: the two entries differ; nothing was hashed", file=sys.stderr)
                return 1
        except (EOFError, KeyboardInterrupt):
            print("\nwampgate hash-secret: cancelled", file=sys.stderr)
            return 2
    if not secret:
        print("wampgate hash-secret: the secret is empty; type one when asked, or pipe it in "
              "(printf '%s\\n' \"$SECRET\" | wampgate hash-secret)", file=sys.stderr)
        return 2
    if scram is None:
        print(hash_secret(secret))
        return 0
    from wampgate import scramkeys

    try:
        credentials = scramkeys.derive(secret, scramkeys.KDF_NAMES[scram["kdf"]], iterations=scram["iterations"],
                                       memory=scram["memory"])
    except ValueError as e:
        print(f"wampgate hash-secret: --{e}", file=sys.stderr)
        return 2
    print(scramkeys.toml_lines(credentials))
    return 0


def _is_terminal(stream) -> bool:
    return stream is not None and stream.isatty()


def first_line(stream) -> str | None:
    """The first line of `stream` as UTF-8, without its trailing CR and LF characters; "" when there is none (or no
    stdin at all); None when it is not UTF-8."""
    if stream is None:
        return ""
    raw = stream.buffer.readline() if hasattr(stream, "buffer") else stream.readline().encode("utf-8")
    try:
        return raw.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        return None


def init_command(directory: str, port: int) -> int:
    """Write a production-shaped config with its TLS and JWT key material into a new or empty directory."""
    from wampgate.initdir import InitError, init_directory, next_steps

    try:
        done = init_directory(Path(directory), port=port)
    except InitError as e:
        print(f"wampgate init: {e}", file=sys.stderr)
        return 1
    print(next_steps(done, python=sys.executable), end="")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wampgate", description="Wampgate helpers; run the router with twistd.")
    parser.add_argument("--version", action="version", version=f"wampgate {wampgate.version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check-config", help="validate a config file without starting the router")
    check.add_argument("file")
    hashing = commands.add_parser(
        "hash-secret", help="print the hash of a ticket secret, to paste into the config",
        description="Print the scrypt hash of a ticket secret. On a terminal the secret is asked for twice; "
        "otherwise the first line of stdin is read (without its CR/LF).")
    hashing.add_argument("--stdin", action="store_true",
                         help="read the first line of stdin even when it is a terminal (a pipe is read anyway)")
    hashing.add_argument("--scram", action="store_true",
                         help="print the kdf, salt, stored_key and server_key lines of a scram principal instead")
    hashing.add_argument("--kdf", choices=("argon2id13", "pbkdf2"), default="argon2id13",
                         help="with --scram: the key derivation function (default argon2id13)")
    hashing.add_argument("--iterations", type=int, default=None,
                         help="with --scram: the KDF's iterations (default 3 for argon2id13, 600000 for pbkdf2)")
    hashing.add_argument("--memory", type=int, default=None,
                         help="with --scram and argon2id13: memory in KiB (default 65536)")
    init = commands.add_parser(
        "init", help="write a production-shaped config, a self-signed certificate and a JWT key pair into DIR",
        description="Create DIR (which must be new or empty) with router.toml, a self-signed TLS certificate for "
        "localhost, a JWT key pair and a ticket principal whose secret is printed once.")
    init.add_argument("directory", metavar="DIR")
    init.add_argument("--port", type=int, default=DEFAULT_INIT_PORT,
                      help=f"the TLS listener's port on 127.0.0.1 (default {DEFAULT_INIT_PORT})")
    args = parser.parse_args(argv)
    if args.command == "check-config":
        return check_config(args.file)
    if args.command == "hash-secret":
        scram_options = {"kdf": args.kdf, "iterations": args.iterations, "memory": args.memory}
        if not args.scram and (args.iterations is not None or args.memory is not None or args.kdf != "argon2id13"):
            print("wampgate hash-secret: --kdf, --iterations and --memory go with --scram", file=sys.stderr)
            return 2
        return hash_secret_command(args.stdin, scram_options if args.scram else None)
    if args.command == "init":
        return init_command(args.directory, args.port)
    return 2


if __name__ == "__main__":
    sys.exit(main())
