"""The running router as one Twisted service: reload on SIGHUP, graceful shutdown on SIGTERM / SIGINT.

Shutdown: stop accepting connections, let pending calls finish (up to `[limits] shutdown_timeout`), send GOODBYE
(`wamp.close.system_shutdown`) to every session, wait for the replies (up to `goodbye_timeout`), close whatever is
left, and let twistd exit with status 0.

Reload: the file is read and validated again; a config that fails is refused with its problems logged and the
running one kept. Roles, permissions, authorizers, principals, authenticators and limits apply to live sessions
(cached authorization decisions are dropped) without dropping connections; changes to listeners, the admin
endpoint or the set of realms are reported as needing a restart. Each TLS listener also re-reads its certificate,
key and client CA files: changed contents serve new connections, open ones keep theirs.

Under systemd (NOTIFY_SOCKET set), readiness, reloads and shutdown are reported with sd_notify.
"""

from __future__ import annotations

import signal
from functools import partial
from typing import Any

from twisted.application import service
from twisted.internet import defer, task
from twisted.internet.error import ReactorNotRunning
from twisted.logger import Logger

from wampgate.config import ConfigError, RouterConfig, load
from wampgate.core import errors
from wampgate.core.lockout import AuthFailures
from wampgate.interfaces import PluginContext
from wampgate.tx.plugins_from_config import (
    authenticators,
    flow_plugins,
    plugin_problems,
    realm_authorization,
    realm_validators,
)
from wampgate.sdnotify import SystemdNotifier
from wampgate.tx.reauthorization import reauthorize
from wampgate.tx.tls import reload_certificates

POLL = 0.05


class RouterService(service.MultiService):
    log = Logger()

    def __init__(self, config: RouterConfig, context: Any, reactor: Any, caller: Any):
        super().__init__()
        self.config = config
        self.context = context
        self.reactor = reactor
        self.caller = caller
        self.plugin_context = PluginContext(base_dir=config.source.parent, call=caller.call)
        self.listener_runtimes: dict[str, Any] = {}
        self.install_signals = False  # twistd's plugin turns this on; tests drive reload() and stopService()
        self.notifier = SystemdNotifier(None)  # twistd's plugin passes NOTIFY_SOCKET's; off otherwise
        self._terminating = False
        self.cluster = None  # the ClusterNode, when the config has a [cluster] table

    # -- signals --------------------------------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        if self.install_signals:
            self.reactor.callWhenRunning(self._install_signal_handlers)

    def _install_signal_handlers(self) -> None:
        """After the reactor's own: twistd would otherwise re-raise SIGTERM after shutdown and exit with -15."""
        signal.signal(signal.SIGHUP, self._on_sighup)
        signal.signal(signal.SIGTERM, self._on_terminate)
        signal.signal(signal.SIGINT, self._on_terminate)
        self.log.info("ready: SIGHUP reloads {file}, SIGTERM and SIGINT shut down gracefully", file=self.config.source)
        self.notifier.ready(self._status())

    def _on_sighup(self, signum, frame) -> None:
        self.reactor.callFromThread(self.reload)

    def _on_terminate(self, signum, frame) -> None:
        """The first SIGTERM / SIGINT stops the reactor (which stops this service gracefully); a later one is only
        acknowledged: stopping a stopping reactor raises ReactorNotRunning."""
        if self._terminating:
            self.log.info("received signal {signum}: already shutting down", signum=signum)
            return
        self._terminating = True
        self.log.info("received signal {signum}: shutting down gracefully", signum=signum)
        self.reactor.callFromThread(self._stop_reactor)

    def _stop_reactor(self) -> None:
        try:
            self.reactor.stop()
        except ReactorNotRunning:  # stopped meanwhile by something else
            self.log.info("already shutting down")

    # -- graceful shutdown -------------------------------------------------------------------------------------

    def stopService(self) -> defer.Deferred:
        self.notifier.stopping("shutting down: draining calls and closing sessions")
        return defer.ensureDeferred(self._drain())

    async def _drain(self) -> None:
        limits = self.context.limits
        listeners = [child for child in self if hasattr(child, "open_connections")]
        await defer.gatherResults([defer.maybeDeferred(child.stopService) for child in listeners])
        await self._until(lambda: not self._pending_calls(), limits.shutdown_timeout)
        for peer in self._peers():
            session = getattr(peer.channel, "session", None)
            if session is not None:
                session.goodbye(errors.SYSTEM_SHUTDOWN, "the router is shutting down")
        await self._until(lambda: not any(child.open_connections() for child in listeners), limits.goodbye_timeout)
        for child in listeners:
            child.abort_connections()
        await super().stopService()

    async def _until(self, done, timeout: float) -> None:
        deadline = self.reactor.seconds() + timeout
        while not done() and self.reactor.seconds() < deadline:
            await task.deferLater(self.reactor, POLL, lambda: None)

    def _pending_calls(self) -> int:
        return sum(len(realm.core.dealer.pending_calls()) for realm in self.context.realms.values())

    def _peers(self) -> list:
        return [peer for realm in self.context.realms.values() for peer in list(realm.core.sessions.values())]

    # -- reload: certificates and config, reported to systemd ------------------------------------------------------

    def reload(self) -> bool:
        """SIGHUP: re-read the TLS files of the running listeners (whatever the config file holds) and apply the
        config file; False when the config is refused (the running one is kept)."""
        self.notifier.reloading(f"reloading {self.config.source}")
        reload_certificates(runtime.tls for runtime in self.listener_runtimes.values())
        applied = self._reload_config()
        self.notifier.ready(self._status() if applied else f"reload refused (see the log); {self._status()}")
        return applied

    def _status(self) -> str:
        return f"serving {len(self.listener_runtimes)} listener(s) from {self.config.source}"

    def _reload_config(self) -> bool:
        """Apply the config file's current content; False (and the old config kept) when it does not validate."""
        try:
            new = load(self.config.source, plugin_check=partial(plugin_problems, reactor=self.reactor))
            built = self._build(new)
        except ConfigError as e:
            for problem in e.problems:
                self.log.error("reload refused, keeping the running config: {file}: {problem}",
                               file=self.config.source, problem=problem)
            return False
        for reason in self._needs_restart(new):
            self.log.warn("reload: {reason} needs a restart to take effect", reason=reason)
        self._apply(new, *built)
        self.config = new
        self.log.info("reloaded {file}", file=new.source)
        self.reauthorization = reauthorize(self.context)  # withdrawn permissions end live subscriptions/registrations
        return True

    def _build(self, new: RouterConfig) -> tuple:
        """Every new plugin, built before anything changes, so a failure leaves the router as it was."""
        problems: list[str] = []
        authorizations = {
            name: realm_authorization(new, index, realm, self.reactor, self.caller.call, problems)
            for index, (name, realm) in enumerate(new.realms.items())
            if name in self.context.realms
        }
        validators = {
            name: realm_validators(new, index, realm, self.reactor, problems)
            for index, (name, realm) in enumerate(new.realms.items())
            if name in self.context.realms
        }
        methods = {
            listener.name: authenticators(listener, index, self.reactor, self.plugin_context, problems, new.realms)
            for index, listener in enumerate(new.listeners)
            if listener.name in self.listener_runtimes
        }
        plugins = flow_plugins(new, self.reactor, problems, self.cluster.limits if self.cluster else None)
        if problems:
            raise ConfigError(problems, hidden=new.environment_secrets)
        return authorizations, validators, methods, plugins

    def _needs_restart(self, new: RouterConfig) -> list[str]:
        old = self.config
        reasons = []
        old_listeners = {listener.name: listener for listener in old.listeners}
        new_listeners = {listener.name: listener for listener in new.listeners}
        for name in sorted(old_listeners.keys() | new_listeners.keys()):
            before, after = old_listeners.get(name), new_listeners.get(name)
            if before is None or after is None or (before.endpoint, before.transports, before.tls, before.websocket,
                                                   before.serializers, before.max_message_size, before.paths,
                                                   dict(before.bridges)) != (
                    after.endpoint, after.transports, after.tls, after.websocket, after.serializers,
                    after.max_message_size, after.paths, dict(after.bridges)):
                reasons.append(f"listener {name!r} (endpoint, transports, TLS, WebSocket options, paths, bridges)")
        if set(old.realms) != set(new.realms):
            reasons.append("adding or removing realms")
        for name in sorted(set(old.realms) & set(new.realms)):
            if old.realms[name].uri_policy != new.realms[name].uri_policy:
                reasons.append(f"realm {name!r} URI rules (uri_check, max_uri_length)")
        if old.admin != new.admin:
            reasons.append("the admin endpoint")
        if old.cluster != new.cluster:
            reasons.append("the [cluster] table")
        return reasons

    def _apply(self, new: RouterConfig, authorizations: dict, validators: dict, methods: dict, plugins: list) -> None:
        context = self.context
        for name, authorization in authorizations.items():
            runtime = context.realms[name]
            runtime.config = new.realms[name]
            runtime.authorization = authorization
            runtime.validators = validators[name]
        for name, listener_methods in methods.items():
            self.listener_runtimes[name].methods = listener_methods
        if new.limits.lockout != context.limits.lockout:
            context.failures = AuthFailures(new.limits.lockout)
        context.limits = new.limits
        for name, runtime in context.realms.items():
            runtime.core.update_limits(new.limits)
            runtime.core.broker.set_history(new.realms[name].history)
        self._adopt(plugins)
        for peer in self._peers():
            window = getattr(peer.channel, "budget", None)
            if window is not None:
                window.limit = new.limits.max_outgoing_buffer
                window.policy = context.realms[peer.realm].config.slow_consumer_policy(peer.authrole)

    def _adopt(self, plugins: list) -> None:
        """New flow-control plugins take over the live connections and sessions (their budgets start afresh)."""
        now = self.reactor.seconds()
        for child in self:
            for peer in getattr(child, "connection_peers", lambda: [])():
                for plugin in plugins:
                    plugin.admit_connection(peer, child.name, now)
        for peer in self._peers():
            session = getattr(peer.channel, "session", None)
            if session is not None and session.flow_session is not None:
                for plugin in plugins:
                    plugin.admit_session(session.flow_session, now)
        self.context.flow.replace_plugins(plugins)
