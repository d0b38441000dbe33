"""The `wampgate` command: helpers around the router (the router itself runs under `twistd wampgate`)."""

from __future__ import annotations

import argparse
import getpass
import sys
from functools import partial

from wampgate.config import ConfigError, load


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


def hash_secret_command(from_stdin: bool) -> int:
    """Print the hash of a secret, for `secret_hash` in a ticket principal; the secret itself is never stored."""
    from wampgate.passwords import hash_secret

    if from_stdin:
        secret = sys.stdin.readline().rstrip("\n")
    else:
        secret = getpass.getpass("secret: ")
        if getpass.getpass("again: ") != secret:
            print("the two entries differ", file=sys.stderr)
            return 1
    if not secret:
        print("an empty secret is not allowed", file=sys.stderr)
        return 1
    print(hash_secret(secret))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wampgate", description="Wampgate helpers; run the router with twistd.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check-config", help="validate a config file without starting the router")
    check.add_argument("file")
    hashing = commands.add_parser("hash-secret", help="print the hash of a ticket secret, to paste into the config")
    hashing.add_argument("--stdin", action="store_true", help="read the secret from the first line of stdin")
    args = parser.parse_args(argv)
    if args.command == "check-config":
        return check_config(args.file)
    if args.command == "hash-secret":
        return hash_secret_command(args.stdin)
    return 2


if __name__ == "__main__":
    sys.exit(main())
