"""`[cluster] workers = N` (N > 1): this process opens every listening socket, runs N router processes on them and
keeps them running. Each worker is a node of the cluster (wampgate.tx.cluster.node), so events, calls and the
session meta API cross between them through Redis exactly as between machines.

- Sockets: opened here, before the reactor runs (privileged ports included), never accepted on here; the workers
  inherit them the way systemd passes sockets (wampgate.worker) and the kernel spreads new connections over them.
- Logs: every worker's lines come back into this process's log, labelled with its node name (wampgate.tx.workerlog).
- A worker that exits is started again after a delay that doubles with each quick failure (0.5 s up to 30 s); the
  new one is a new node (its own random name suffix), as after any restart.
- SIGHUP is forwarded (each worker reloads its config and certificates); SIGTERM / SIGINT are forwarded as SIGTERM
  (each worker drains gracefully), and this process exits, status 0, once they are all gone (SIGKILL for any still
  running after `[limits] shutdown_timeout` + `goodbye_timeout` + a grace period).
- `[admin]`: served here, with every worker's state (wampgate.tx.workeradmin); a worker serves none.
- Under systemd, READY=1 is sent once every worker is listening and ready.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
from dataclasses import dataclass
from typing import Any

from twisted.application import service
from twisted.internet import defer, protocol, task
from twisted.internet.error import ProcessDone, ProcessExitedAlready, ReactorNotRunning
from twisted.logger import Logger

from wampgate.endpoints import server_endpoint, shared_socket_name
from wampgate.sdnotify import SystemdNotifier
from wampgate.tx.cluster.node import node_name
from wampgate.tx.workerlog import LogRelay

FIRST_RESTART_DELAY = 0.5
MAX_RESTART_DELAY = 30.0
STABLE_AFTER = 10.0  # a worker that ran this long was not failing: the next restart waits FIRST_RESTART_DELAY again
STOP_GRACE = 5.0  # beyond the workers' own drain timeouts, before SIGKILL
POLL = 0.05
READY = "ready"


class WorkerNotifier:
    """A worker's stand-in for the systemd notifier: its state changes go to the parent as log events carrying
    `worker_state`, which the parent's LogRelay reads."""

    log = Logger()

    def ready(self, status: str) -> None:
        self.log.info("worker ready: {status}", status=status, worker_state=READY)

    def reloading(self, status: str) -> None:
        self.log.info("worker {status}", status=status, worker_state="reloading")

    def stopping(self, status: str) -> None:
        self.log.info("worker {status}", status=status, worker_state="stopping")


class _NoConnections(protocol.Factory):
    """The parent never accepts on its sockets; a factory is needed only to open them."""

    noisy = False

    def buildProtocol(self, addr):
        return None


@dataclass
class SharedSocket:
    listener: str
    name: str  # its LISTEN_FDNAMES entry, e.g. "listener0.INET"
    port: Any


@dataclass
class Worker:
    """One worker slot: the process in it changes at each restart."""

    index: int
    node: str = ""
    pid: int | None = None
    state: str = "starting"  # starting, ready, reloading, stopping, exited
    restarts: int = 0
    quick_failures: int = 0
    started: float = 0.0
    process: Any = None
    restart_call: Any = None


class WorkerProcess(protocol.ProcessProtocol):
    def __init__(self, supervisor: WorkerSupervisor, worker: Worker):
        self._supervisor = supervisor
        self._worker = worker
        self.relay = LogRelay(worker.node, supervisor.log.observer, self._record)

    def _record(self, record: dict) -> None:
        state = record.get("worker_state")
        if isinstance(state, str):
            self._supervisor.worker_state(self._worker, state)

    def outReceived(self, data: bytes) -> None:
        self.relay.stdout.feed(data)

    def errReceived(self, data: bytes) -> None:
        self.relay.stderr.feed(data)

    def processEnded(self, reason) -> None:
        self.relay.flush()
        self._supervisor.worker_ended(self._worker, reason.value)


class WorkerSupervisor(service.MultiService):
    log = Logger(namespace="wampgate.tx.workers")

    def __init__(self, config: Any, config_path: str, reactor: Any, *, environ: dict | None = None):
        super().__init__()
        self.config = config
        self.config_path = os.path.abspath(config_path)
        self.reactor = reactor
        self._environ = dict(os.environ if environ is None else environ)
        self.sockets: list[SharedSocket] = []
        self.workers = [Worker(index) for index in range(config.cluster.workers)]
        self.install_signals = False
        self.notifier = SystemdNotifier(None)
        self.stopping = False
        self._terminating = False
        self._announced_ready = False
        if config.admin is not None:
            from wampgate.tx.service import AdminService
            from wampgate.tx.workeradmin import workers_site

            AdminService(config.admin.endpoint, server_endpoint(reactor, config.admin.endpoint),
                         workers_site(self)).setServiceParent(self)

    # -- sockets --------------------------------------------------------------------------------------------------

    def privilegedStartService(self) -> None:
        for index, listener in enumerate(self.config.listeners):
            self.sockets.append(self._open(index, listener))
        super().privilegedStartService()

    def _open(self, index: int, listener: Any) -> SharedSocket:
        opened, failures = [], []
        server_endpoint(self.reactor, listener.endpoint).listen(_NoConnections()).addCallbacks(
            opened.append, failures.append)
        if failures:
            self._refuse(listener, failures[0].getErrorMessage())
        port = opened[0]
        family = getattr(getattr(port, "socket", None), "family", None)
        name = shared_socket_name(index, family) if family is not None else None
        if name is None:
            port.stopListening()
            self._refuse(listener, "its socket cannot be shared with workers (expected a TCP or Unix socket)")
        port.stopReading()  # the workers accept; this process never does
        host = port.getHost()
        address = f"{host.host}:{host.port}" if hasattr(host, "port") else str(getattr(host, "name", host))
        self.log.info("listener {listener} listening on {address}, shared by {count} workers",
                      listener=listener.name, address=address, count=len(self.workers))
        return SharedSocket(listener.name, name, port)

    @staticmethod
    def _refuse(listener: Any, reason: str) -> None:
        print(f"listener {listener.name} cannot listen on {listener.endpoint}: {reason}", file=sys.stderr)
        raise SystemExit(1)

    # -- workers --------------------------------------------------------------------------------------------------

    def startService(self) -> None:
        super().startService()
        for worker in self.workers:
            self._spawn(worker)
        if self.install_signals:
            self.reactor.callWhenRunning(self._install_signal_handlers)

    def _node_base(self) -> str:
        return self.config.cluster.node or socket.gethostname().split(".")[0] or "node"

    def _spawn(self, worker: Worker) -> None:
        worker.restart_call = None
        worker.node = node_name(f"{self._node_base()}-w{worker.index}")
        worker.state = "starting"
        worker.started = self.reactor.seconds()
        env = {key: value for key, value in self._environ.items()
               if key not in ("NOTIFY_SOCKET", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")}
        env["LISTEN_FDS"] = str(len(self.sockets))
        env["LISTEN_FDNAMES"] = ":".join(shared.name for shared in self.sockets)
        child_fds: dict[int, Any] = {0: "w", 1: "r", 2: "r"}
        for offset, shared in enumerate(self.sockets):
            child_fds[3 + offset] = shared.port.fileno()
        args = [sys.executable, "-m", "wampgate.worker", self.config_path, worker.node, str(os.getpid())]
        process = WorkerProcess(self, worker)
        worker.process = self.reactor.spawnProcess(process, sys.executable, args, env=env, childFDs=child_fds)
        worker.process.closeStdin()
        worker.pid = worker.process.pid
        self.log.info("worker {index} started: node {node}, pid {pid}", index=worker.index, node=worker.node,
                      pid=worker.pid)

    def worker_state(self, worker: Worker, state: str) -> None:
        if worker.state == "exited":
            return
        worker.state = state
        if state == READY and not self._announced_ready and all(w.state == READY for w in self.workers):
            self._announced_ready = True
            self.log.info("all {count} workers ready", count=len(self.workers))
            self.notifier.ready(self._status())

    def worker_ended(self, worker: Worker, reason: Any) -> None:
        worker.state, worker.process, worker.pid = "exited", None, None
        how = "exited with status 0" if isinstance(reason, ProcessDone) else str(reason.args[0] if reason.args
                                                                                  else reason)
        if self.stopping:
            self.log.info("worker {index} (node {node}) stopped: {how}", index=worker.index, node=worker.node, how=how)
            return
        ran = self.reactor.seconds() - worker.started
        worker.quick_failures = 1 if ran >= STABLE_AFTER else worker.quick_failures + 1
        delay = min(MAX_RESTART_DELAY, FIRST_RESTART_DELAY * 2 ** (worker.quick_failures - 1))
        worker.restarts += 1
        self.log.warn("worker {index} (node {node}) {how} after {ran:.1f} s; starting it again in {delay} s",
                      index=worker.index, node=worker.node, how=how, ran=ran, delay=delay)
        worker.restart_call = self.reactor.callLater(delay, self._spawn, worker)

    def _signal_all(self, signum: int) -> None:
        for worker in self.workers:
            if worker.process is not None:
                try:
                    worker.process.signalProcess(signum)
                except (ProcessExitedAlready, OSError):
                    pass

    def _status(self) -> str:
        return f"serving {len(self.sockets)} listener(s) with {len(self.workers)} workers from {self.config_path}"

    # -- signals --------------------------------------------------------------------------------------------------

    def _install_signal_handlers(self) -> None:
        """After the reactor's own (as the single router does): twistd would otherwise re-raise SIGTERM."""
        signal.signal(signal.SIGHUP, self._on_sighup)
        signal.signal(signal.SIGTERM, self._on_terminate)
        signal.signal(signal.SIGINT, self._on_terminate)
        self.log.info("ready: SIGHUP reloads every worker, SIGTERM and SIGINT stop them gracefully")

    def _on_sighup(self, signum, frame) -> None:
        self.reactor.callFromThread(self.reload)

    def reload(self) -> None:
        """Each worker re-reads the config file and its certificates; listener and worker-count changes need a
        restart of this process."""
        self.log.info("SIGHUP: reloading {count} workers", count=len(self.workers))
        self.notifier.reloading(f"reloading {self.config_path}")
        self._signal_all(signal.SIGHUP)
        self.notifier.ready(self._status())

    def _on_terminate(self, signum, frame) -> None:
        if self._terminating:
            self.log.info("received signal {signum}: already shutting down", signum=signum)
            return
        self._terminating = True
        self.log.info("received signal {signum}: stopping the workers gracefully", signum=signum)
        self.reactor.callFromThread(self._stop_reactor)

    def _stop_reactor(self) -> None:
        try:
            self.reactor.stop()
        except ReactorNotRunning:
            pass

    # -- stopping -------------------------------------------------------------------------------------------------

    def stopService(self) -> defer.Deferred:
        self.notifier.stopping("shutting down: stopping the workers")
        return defer.ensureDeferred(self._stop())

    async def _stop(self) -> None:
        self.stopping = True
        for worker in self.workers:
            if worker.restart_call is not None and worker.restart_call.active():
                worker.restart_call.cancel()
        self._signal_all(signal.SIGTERM)
        limits = self.config.limits
        await self._until_gone(limits.shutdown_timeout + limits.goodbye_timeout + STOP_GRACE)
        if self._running():
            self.log.warn("{count} workers still running: killing them", count=len(self._running()))
            self._signal_all(signal.SIGKILL)
            await self._until_gone(STOP_GRACE)
        for shared in self.sockets:
            shared.port.stopListening()
        await super().stopService()

    def _running(self) -> list[Worker]:
        return [worker for worker in self.workers if worker.process is not None]

    async def _until_gone(self, timeout: float) -> None:
        deadline = self.reactor.seconds() + timeout
        while self._running() and self.reactor.seconds() < deadline:
            await task.deferLater(self.reactor, POLL, lambda: None)
