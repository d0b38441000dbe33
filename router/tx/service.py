"""The router as a Twisted MultiService, built from a validated config: core, plugins (plugins_from_config), then
listeners.

Everything that can fail (plugins, TLS files) is built here, before any port opens; failures are collected and
raised together as a ConfigError with one line each.
"""

from __future__ import annotations

import random
import secrets
import sys
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from twisted.application import service
from twisted.logger import Logger

from wampgate.config import ConfigError, ListenerConfig, RouterConfig
from wampgate.core.lockout import AuthFailures
from wampgate.core.realm import Realm
from wampgate.counters import Counters
from wampgate.endpoints import NoInheritedSocket, inherited_endpoint, server_endpoint
from wampgate.tx.effect_runner import EffectRunner
from wampgate.tx.traffic import Traffic
from wampgate.tx.flow import AdmittingFactory, FlowControl
from wampgate.tx.router_caller import RouterCaller
from wampgate.tx.listeners import listener_factory
from wampgate.tx.router_service import RouterService
from wampgate.tx.metrics import admin_site
from wampgate.tx.plugins_from_config import authenticators, flow_plugins, realm_authorization, realm_validators
from wampgate.tx.runtime import ListenerRuntime, RealmRuntime, RouterContext
from wampgate.tx.tls import TlsSetupError
from wampgate.tx.wire import make_codecs

MAX_ID = 2**53


def random_id() -> int:
    """Session, subscription and publication ids: random in [1, 2**53], never a counter that could collide.
    (53 random bits plus one: randbelow(2**53) would reject half its draws, costing a second syscall.)"""
    return secrets.randbits(53) + 1


class PortService(service.Service):
    """Listens on one endpoint before the reactor runs; stops start-up with one clear line when it cannot, and logs
    what it listens on when it can."""

    log = Logger()

    def __init__(self, name: str, endpoint_description: str, endpoint, factory):
        self.name = name
        self._endpoint_description = endpoint_description
        self._endpoint = endpoint
        self._factory = factory
        self.port = None

    def privilegedStartService(self) -> None:
        super().privilegedStartService()
        failures = []
        self._endpoint.listen(self._factory).addCallbacks(self._listening, failures.append)
        if failures:
            print(f"{self.label()} cannot listen on {self._endpoint_description}: {failures[0].getErrorMessage()}",
                  file=sys.stderr)
            raise SystemExit(1)

    def _listening(self, port) -> None:
        self.port = port
        self.log.info("{label} listening on {url}", label=self.label(), url=self.describe())

    def label(self) -> str:
        return self.name

    def _address(self) -> str:
        host = self.port.getHost() if self.port is not None else None
        return f"{host.host}:{host.port}" if hasattr(host, "port") else str(getattr(host, "name", host))

    def describe(self) -> str:
        return self._address()

    def stopService(self):
        super().stopService()
        if self.port is not None:
            port, self.port = self.port, None
            return port.stopListening()
        return None


class ListenerService(PortService):
    """One WAMP listener."""

    def __init__(self, config: ListenerConfig, endpoint, factory):
        super().__init__(config.name, config.endpoint, endpoint, factory)
        self.config = config

    def label(self) -> str:
        return f"listener {self.name}"

    def describe(self) -> str:
        """The listener's address as clients write it, e.g. 'ws://127.0.0.1:8080/ws + rawsocket'."""
        address = self._address()
        secure = self.config.tls is not None
        names = []
        if "websocket" in self.config.transports:
            names.extend(f"{'wss' if secure else 'ws'}://{address}{path}" for path in self.config.websocket_paths)
            names.extend(f"{'https' if secure else 'http'}://{address}{entry.path} ({entry.kind})"
                         for entry in self.config.http_endpoints)
        if "rawsocket" in self.config.transports:
            names.append(f"rawsocket{'+tls' if secure else ''}://{address}")
        return " + ".join(names)

    def open_connections(self) -> int:
        return len(getattr(self._factory, "protocols", ()))

    def connection_peers(self) -> list[str]:
        return [protocol.peer for protocol in list(getattr(self._factory, "protocols", ()))]

    def abort_connections(self) -> None:
        for protocol in list(getattr(self._factory, "protocols", ())):
            if protocol.transport is not None:
                protocol.transport.abortConnection()


class AdminService(PortService):
    """The admin listener (/metrics, /healthz)."""

    def __init__(self, endpoint_description: str, endpoint, site):
        super().__init__("admin", endpoint_description, endpoint, site)

    def describe(self) -> str:
        return f"http://{self._address()}/metrics and /healthz"


@dataclass(frozen=True)
class WorkerRole:
    """This router is one of `[cluster] workers` processes (wampgate.tx.workers): it listens on the sockets its
    parent opened and passed (named in LISTEN_FDNAMES), joins the cluster under the name its parent chose (the
    parent labels its log lines with it), and serves no admin endpoint (the parent does)."""

    node: str
    socket_names: tuple[str, ...]


def make_service(config: RouterConfig, reactor: Any, worker: WorkerRole | None = None) -> service.MultiService:
    """Build the whole router; raises ConfigError listing every plugin or TLS problem."""
    problems: list[str] = []
    choose = random.SystemRandom().choice
    traffic = Traffic()
    caller = RouterCaller({}, reactor, random_id)
    realms = {}
    for index, (name, realm_config) in enumerate(config.realms.items()):
        core = Realm(name, realm_config.uri_policy, random_id, choose, limits=config.limits,
                     history=realm_config.history)
        realms[name] = RealmRuntime(
            core=core,
            config=realm_config,
            authorization=realm_authorization(config, index, realm_config, reactor, caller.call, problems),
            effects=EffectRunner(core, reactor, traffic),
            validators=realm_validators(config, index, realm_config, reactor, problems),
        )
    caller.realms = MappingProxyType(realms)
    counters = Counters()
    cluster = None
    if config.cluster is not None:
        from wampgate.tx.cluster.node import ClusterNode  # only a clustered router loads the Redis client

        cluster = ClusterNode(config.cluster, realms, reactor, counters,
                              name=worker.node if worker is not None else None)
    context = RouterContext(
        realms=MappingProxyType(realms),
        clock=reactor,
        new_id=random_id,
        limits=config.limits,
        failures=AuthFailures(config.limits.lockout),
        flow=FlowControl(flow_plugins(config, reactor, problems, cluster.limits if cluster else None), clock=reactor,
                         counters=counters),
        counters=counters,
        traffic=traffic,
    )
    codecs = make_codecs()
    top = RouterService(config, context, reactor, caller)
    for index, listener in enumerate(config.listeners):
        methods = authenticators(listener, index, reactor, top.plugin_context, problems, config.realms)
        runtime = ListenerRuntime(config=listener, methods=methods, index=index)
        top.listener_runtimes[listener.name] = runtime
        try:
            factory = listener_factory(context, runtime, codecs)
        except TlsSetupError as e:
            problems.append(f"listeners[{index}].tls: {e}")
            continue
        factory = AdmittingFactory(factory, context.flow, listener.name, secure=listener.tls is not None)
        endpoint = _listener_endpoint(reactor, listener, index, worker, problems)
        if endpoint is not None:
            ListenerService(listener, endpoint, factory).setServiceParent(top)
    if cluster is not None:
        top.cluster = cluster
        cluster.setServiceParent(top)
    if config.admin is not None and worker is None:
        listeners = [child for child in top if isinstance(child, ListenerService)]
        admin = AdminService(config.admin.endpoint, server_endpoint(reactor, config.admin.endpoint),
                             admin_site(context, listeners, top.cluster))
        admin.setServiceParent(top)
    if problems:
        raise ConfigError(problems, hidden=config.environment_secrets)
    return top


def _listener_endpoint(reactor: Any, listener: ListenerConfig, index: int, worker: WorkerRole | None,
                       problems: list[str]):
    """The configured endpoint, or in a worker the socket the parent opened for it."""
    if worker is None:
        return server_endpoint(reactor, listener.endpoint)
    try:
        return server_endpoint(reactor, inherited_endpoint(listener.endpoint, index, list(worker.socket_names)))
    except NoInheritedSocket as e:
        problems.append(f"listeners[{index}].endpoint: {e}")
        return None
