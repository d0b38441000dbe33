"""`twistd wampgate`: command-line options and makeService, the whole twistd contract."""

from __future__ import annotations

import os
import sys

from twisted.python import usage

import wampgate
from wampgate.config import ConfigError, load
from wampgate.sdnotify import SystemdNotifier


class Options(usage.Options):
    synopsis = "--config FILE"
    longdesc = "Run the Wampgate WAMP router (WebSocket and RawSocket listeners, pub/sub broker) from a TOML config."
    optParameters = [
        ["config", "c", None, "the TOML config file, e.g. conf/dev.toml"],
        ["worker-node", None, None, "internal: run as one of the [cluster] workers under this node name, on the "
         "sockets the parent passed (set by the parent, see docs/cluster.md)"],
    ]

    def postOptions(self) -> None:
        if not self["config"]:
            raise usage.UsageError("--config FILE is required (conf/dev.toml is the development example)")
        try:
            self["router_config"] = load(self["config"], plugin_check=_check_plugins)
        except ConfigError as e:
            _fail(self["config"], e)

    def opt_version(self) -> None:
        """Show Wampgate's version (and the Twisted running it) and exit."""
        from twisted import copyright

        print(f"wampgate {wampgate.version()} (Twisted {copyright.version})")
        raise SystemExit(0)


def _check_plugins(config, **options) -> list[str]:
    """The plugin tables' problems, beside the router's own, so a refused start lists them all at once. Only on a
    refused start, which exits: twistd's --reactor choice is installed by now, and this reactor never runs."""
    from twisted.internet import reactor

    from wampgate.tx.plugins_from_config import plugin_problems

    return plugin_problems(config, reactor=reactor, **options)


def _fail(path: str, error: ConfigError) -> None:
    """Print one line per problem and exit non-zero, before anything listens."""
    for problem in error.problems:
        print(f"{path}: {problem}", file=sys.stderr)
    raise SystemExit(1)


def makeService(options: Options):
    from twisted.internet import reactor  # the reactor twistd installed

    from wampgate.tx.service import WorkerRole, make_service

    config = options["router_config"]
    worker = None
    if options["worker-node"]:
        names = os.environ.get("LISTEN_FDNAMES", "")
        worker = WorkerRole(node=options["worker-node"], socket_names=tuple(names.split(":")) if names else ())
    try:
        router = make_service(config, reactor, worker)
    except ConfigError as e:
        _fail(options["config"], e)
    if worker is None and config.cluster is not None and config.cluster.workers > 1:
        return _supervisor(options, reactor)  # the router built above only checked plugins and TLS files
    router.install_signals = True  # SIGHUP reloads; SIGTERM / SIGINT shut down gracefully, exit status 0
    if worker is not None:
        from wampgate.tx.workers import WorkerNotifier

        router.notifier = WorkerNotifier()  # tells the parent, which tells systemd once every worker is ready
    else:
        router.notifier = SystemdNotifier.from_environment(os.environ)  # READY / RELOADING / STOPPING under systemd
    return router


def _supervisor(options: Options, reactor):
    """`[cluster] workers` > 1: this process opens the sockets and runs the workers (wampgate.tx.workers)."""
    from wampgate.tx.workers import WorkerSupervisor

    supervisor = WorkerSupervisor(options["router_config"], options["config"], reactor)
    supervisor.install_signals = True
    supervisor.notifier = SystemdNotifier.from_environment(os.environ)
    return supervisor
