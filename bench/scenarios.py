"""The scenarios, each run against one server: worker processes set up, a warm-up, a measured window in the steady
part of the run, a drain, and a result dict of plain numbers.

CPU figures are utime + stime from /proc/PID/stat, sampled at both edges of the window: the router's (for Crossbar,
its router worker process) and the load generator's (all worker processes together), each divided by the work done
in the window (events delivered, calls completed, sessions joined).
"""

from __future__ import annotations

import math
import multiprocessing
import time
from array import array
from dataclasses import dataclass, field

from bench import procfs, workers
from bench.servers import VALIDATED_TOPIC, Server

TOPIC = "bench.fanout"
PROCEDURE = "bench.echo"
READY_TIMEOUT = 300.0
RESULT_TIMEOUT = 60.0


@dataclass
class Settings:
    warmup: float = 0.5  # seconds of load before the measured window
    window: float = 2.0  # seconds measured
    payload: int = 64  # bytes of the one string argument each PUBLISH / CALL carries
    fanout: tuple[int, ...] = (1, 10, 100, 1000)
    # extra fan-out rows (Wampgate only, plain TCP, WebSocket) on VALIDATED_TOPIC, where a small JSON schema checks
    # every PUBLISH: beside the same rows without one, they give the cost of validation per message
    schema_fanout: tuple[int, ...] = (1, 10)
    rawsocket_fanout: tuple[int, ...] = (100,)  # extra fan-out rows over RawSocket (routers only)
    latency_rate: float = 1000.0
    latency_subscribers: int = 10
    latency_seconds: float = 3.0
    sessions: tuple[int, ...] = (1000, 10000)
    # handshakes in flight per load-generator process; two processes stay below the routers' listen backlog (50,
    # Twisted's default), so no SYN is dropped and no client waits 1 s for its retransmission
    join_concurrency: int = 20
    fresh_router_for_sessions: bool = True
    rpc_callers: int = 2
    rpc_window: int = 16  # outstanding calls per caller
    bridge_publishers: int = 4  # HTTP clients POSTing to the bridge's /publish, one request at a time each
    tls: tuple[bool, ...] = (False, True)
    client_quickack: bool = False  # diagnostic: clients set TCP_QUICKACK after every read
    events_per_batch: int = 4000  # fan-out: events (publishes x subscribers) per flow-control batch
    batches_ahead: int = 2  # fan-out: batches the publisher may send beyond the last one every subscriber has
    # abuse (bench/abuse.py): each memory attack runs this long or until it has sent abuse_max_mib, whichever is first
    abuse_seconds: float = 5.0
    abuse_max_mib: int = 512
    ping_size: int = 2**20  # bytes per RawSocket PING (Wampgate reads frames up to its max_message_size, 1 MiB)
    result_size: int = 64 * 1024  # bytes per progressive result
    fragment_connections: int = 4  # fragment flood: connections at a time
    fragments_per_message: int = 200_000  # one-byte frames per message
    victim_rate: float = 200.0  # events/s the latency victim publishes
    victim_seconds: float = 3.0  # seconds measured idle, then as long during the flood
    # the abuse router's budgets (Wampgate's defaults) and the flow-control rate on every session, the flooder's too
    abuse_outgoing_buffer: int = 4 * 2**20  # [limits] max_outgoing_buffer
    abuse_stall_timeout: float = 30.0  # [limits] outgoing_stall_timeout
    abuse_max_fragments: int = 64  # [listeners.websocket] max_fragments
    abuse_session_rate: float = 1000.0  # [flow.rates.session] messages (burst twice that, bytes unlimited)
    cluster_fanout: int = 100  # cluster (bench/cluster.py): subscribers in each row


@dataclass
class Endpoint:
    """One thing a scenario runs against: a server and the URL path clients use on it."""

    label: str
    server: Server
    path: str = "/ws"
    cafile: str = ""
    quickack: bool = False

    def target(self, tls: bool, transport: str = "websocket", serializer: str = "msgpack") -> dict:
        return {"host": "127.0.0.1", "port": self.server.tls_port if tls else self.server.port,
                "transport": transport, "serializer": serializer, "tls": tls,
                "cafile": self.cafile if tls else None, "path": self.path, "realm": "realm1",
                "quickack": self.quickack}


class WorkerFailed(Exception):
    pass


class Worker:
    """One load-generator process and its control pipe."""

    def __init__(self, context, spec: dict, index: int, counters, signals):
        self.connection, child = context.Pipe()
        self.process = context.Process(target=workers.main, args=(spec, child, counters, index, signals),
                                       daemon=True, name=f"bench-{spec['role']}-{index}")
        self.process.start()
        child.close()

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, *command) -> None:
        try:
            self.connection.send(command)
        except (OSError, BrokenPipeError):
            pass

    def expect(self, kind: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.connection.poll(0.05):
                try:
                    message = self.connection.recv()
                except EOFError:
                    raise WorkerFailed(f"{self.process.name} exited (code {self.process.exitcode})") from None
                if message[0] == "failed":
                    raise WorkerFailed(f"{self.process.name} failed:\n{message[1]}")
                if message[0] == kind:
                    return message[1]
            elif not self.process.is_alive():
                raise WorkerFailed(f"{self.process.name} exited (code {self.process.exitcode}) before '{kind}'")
        raise WorkerFailed(f"{self.process.name}: no '{kind}' within {timeout:.0f} s")

    def finish(self) -> None:
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.connection.close()


class Pool:
    """Every worker of one run; `close` kills whatever is left, whatever happened."""

    def __init__(self):
        self.context = multiprocessing.get_context("fork")
        self.workers: list[Worker] = []

    def spawn(self, spec: dict, index: int = 0, counters=None, signals=None) -> Worker:
        worker = Worker(self.context, spec, index, counters, signals)
        self.workers.append(worker)
        return worker

    def counters(self, size: int):
        return self.context.RawArray("q", size)

    def pids(self) -> list[int]:
        return [w.pid for w in self.workers]

    def close(self) -> None:
        for worker in self.workers:
            worker.send("stop")
        for worker in self.workers:
            worker.finish()
        self.workers = []


@dataclass
class Sample:
    at: float
    router_cpu: float
    loadgen_cpu: float
    count: int
    system: tuple[float, float, float]


def sample(server: Server, pool: Pool, counters) -> Sample:
    return Sample(time.monotonic(), server.cpu_seconds(), procfs.total_cpu_seconds(pool.pids()), sum(counters),
                  procfs.system_cpu())


def window_figures(a: Sample, b: Sample, unit: str) -> dict:
    """Rates and CPU per unit of work over the window between samples a and b."""
    elapsed = b.at - a.at
    work = b.count - a.count
    router, loadgen = b.router_cpu - a.router_cpu, b.loadgen_cpu - a.loadgen_cpu
    per = (lambda cpu: round(cpu / work * 1e6, 2)) if work else (lambda cpu: None)
    return {
        f"{unit}_per_s": round(work / elapsed, 1) if elapsed > 0 else None,
        f"router_cpu_us_per_{unit}": per(router),
        "router_cpu_percent": round(100 * router / elapsed, 1),
        f"loadgen_cpu_us_per_{unit}": per(loadgen),
        "loadgen_cpu_percent": round(100 * loadgen / elapsed, 1),
        # all CPUs together (200% = both cores busy); softirq: the kernel's loopback TCP delivery, charged to no
        # process; steal: time the hypervisor gave to someone else
        "machine_busy_percent": round(100 * (b.system[0] - a.system[0]) / elapsed, 1),
        "machine_softirq_percent": round(100 * (b.system[1] - a.system[1]) / elapsed, 1),
        "machine_steal_percent": round(100 * (b.system[2] - a.system[2]) / elapsed, 1),
        # CPU the machine spent on anything but the server under test and the load generator (other processes on a
        # shared machine, idle peers, the kernel's own work): large values mean the figures are disturbed
        "other_cpu_percent": round(100 * ((b.system[0] - a.system[0]) - router - loadgen) / elapsed, 1),
        "window_s": round(elapsed, 3),
        f"{unit}_in_window": work,
    }


def split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def errors_of(results: list[dict]) -> list[str]:
    found = []
    for result in results:
        found += result.get("errors", [])
    return found[:10]


# -- fan-out ------------------------------------------------------------------------------------------------------

def fanout(endpoint: Endpoint, settings: Settings, subscribers: int, tls: bool, transport: str = "websocket",
           topic: str = TOPIC) -> dict:
    """1 publisher, `subscribers` subscribers on one topic; events delivered per second and CPU per delivery."""
    target = endpoint.target(tls, transport)
    return run_fanout(target, target, settings, subscribers, topic,
                      measure=lambda pool, counters: sample(endpoint.server, pool, counters),
                      figures=lambda a, b: window_figures(a, b, "event"))


def run_fanout(publisher_at: dict, subscribers_at: dict, settings: Settings, subscribers: int, topic: str, *,
               measure, figures, settle: float = 0.0) -> dict:
    """The fan-out run: subscribers (in one or two processes) join at `subscribers_at`, one publisher publishes in
    batches at `publisher_at` (the same router, or another node of a cluster); `measure(pool, counters)` samples
    CPU and deliveries at both edges of the window and `figures(a, b)` turns the two samples into the results."""
    batch = max(1, min(500, settings.events_per_batch // subscribers))
    processes = 1 if subscribers <= 10 else 2
    pool = Pool()
    counters = pool.counters(processes)
    try:
        pipes = [pool.context.Pipe(duplex=False) for _ in range(processes)]
        subs = [pool.spawn({"role": "subscribers", "target": subscribers_at, "sessions": n, "topic": topic,
                            "batch": batch, "mode": "count", "concurrency": settings.join_concurrency},
                           index=i, counters=counters, signals=pipes[i][1])
                for i, n in enumerate(split(subscribers, processes))]
        ready = [s.expect("ready", READY_TIMEOUT) for s in subs]
        subscribed = sum(r["subscribed"] for r in ready)
        if subscribed != subscribers:
            return {"ok": False, "errors": [f"only {subscribed} of {subscribers} subscribed"] + errors_of(ready)}
        publisher = pool.spawn({"role": "publisher", "target": publisher_at, "topic": topic, "mode": "batch",
                                "batch": batch, "ahead": settings.batches_ahead, "payload": settings.payload},
                               signals=[receive for receive, _ in pipes])
        publisher.expect("ready", READY_TIMEOUT)
        if settle:
            time.sleep(settle)
        publisher.send("go")
        time.sleep(settings.warmup)
        a = measure(pool, counters)
        time.sleep(settings.window)
        b = measure(pool, counters)
        publisher.send("stop")
        published = publisher.expect("result", RESULT_TIMEOUT)
        expected = published["published"] * subscribers
        deadline = time.monotonic() + 10.0
        while sum(counters) < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        for s in subs:
            s.send("stop")
        results = [s.expect("result", RESULT_TIMEOUT) for s in subs]
        delivered = sum(r["received"] for r in results)
        errors = errors_of([published, *results])
        window = figures(a, b)
        return {"subscribers": subscribers, "batch": batch, "subscriber_processes": processes,
                "published": published["published"], "delivered": delivered, "expected": expected,
                "ok": delivered == expected and not errors and bool(window["event_per_s"]),
                "errors": errors, **window}
    finally:
        pool.close()


# -- latency ------------------------------------------------------------------------------------------------------

def percentile(values: list[int], fraction: float) -> int:
    if not values:
        return 0
    return values[min(len(values) - 1, max(0, math.ceil(fraction * len(values)) - 1))]


def latency(endpoint: Endpoint, settings: Settings, tls: bool) -> dict:
    """`latency_rate` events/s to `latency_subscribers` subscribers; delivery delay percentiles (publisher's
    perf_counter_ns in the payload, the subscriber's at arrival: CLOCK_MONOTONIC, shared by every process)."""
    subscribers = settings.latency_subscribers
    target = endpoint.target(tls)
    pool = Pool()
    counters = pool.counters(1)
    try:
        subs = pool.spawn({"role": "subscribers", "target": target, "sessions": subscribers, "topic": TOPIC,
                           "mode": "latency"}, counters=counters)
        ready = subs.expect("ready", READY_TIMEOUT)
        if ready["subscribed"] != subscribers:
            return {"ok": False, "errors": [f"only {ready['subscribed']} of {subscribers} subscribed"]}
        publisher = pool.spawn({"role": "publisher", "target": target, "topic": TOPIC, "mode": "paced",
                                "rate": settings.latency_rate, "payload": settings.payload - 20})
        publisher.expect("ready", READY_TIMEOUT)
        publisher.send("go")
        time.sleep(settings.warmup)
        publisher.send("mark")  # events from here on are the measured ones
        a = sample(endpoint.server, pool, counters)
        time.sleep(settings.latency_seconds)
        b = sample(endpoint.server, pool, counters)
        publisher.send("stop")
        published = publisher.expect("result", RESULT_TIMEOUT)
        expected = published["published"] * subscribers
        deadline = time.monotonic() + 10.0
        while sum(counters) < expected and time.monotonic() < deadline:
            time.sleep(0.01)
        subs.send("stop")
        result = subs.expect("result", RESULT_TIMEOUT)
        sequences, delays = array("q"), array("q")
        sequences.frombytes(result["sequences"])
        delays.frombytes(result["delays"])
        measured = sorted(d for s, d in zip(sequences, delays) if s >= published["mark"])
        errors = errors_of([published, result])
        figures = window_figures(a, b, "event")
        return {"subscribers": subscribers, "rate": settings.latency_rate, "published": published["published"],
                "delivered": result["received"], "expected": expected, "samples": len(measured),
                "p50_us": round(percentile(measured, 0.50) / 1000, 1),
                "p99_us": round(percentile(measured, 0.99) / 1000, 1),
                "max_us": round((measured[-1] if measured else 0) / 1000, 1),
                "ok": result["received"] == expected and not errors and bool(measured),
                "errors": errors, **figures}
    finally:
        pool.close()


# -- idle sessions ------------------------------------------------------------------------------------------------

def sessions(endpoint: Endpoint, settings: Settings, count: int, tls: bool) -> dict:
    """`count` idle sessions: router RSS per session, sessions established per second, router CPU per join."""
    server = endpoint.server
    if settings.fresh_router_for_sessions:
        server.restart()
    target = endpoint.target(tls)
    pool = Pool()
    try:
        warm = pool.spawn({"role": "idle", "target": target, "sessions": 10, "concurrency": 10})
        warm.expect("ready", READY_TIMEOUT)
        warm.send("go")
        warm.expect("joined", READY_TIMEOUT)
        warm.send("stop")
        warm.expect("result", RESULT_TIMEOUT)
        warm.finish()
        pool.workers.remove(warm)
        time.sleep(0.5)
        processes = 1 if count < 100 else 2
        idle = [pool.spawn({"role": "idle", "target": target, "sessions": n, "concurrency": settings.join_concurrency})
                for n in split(count, processes)]
        for worker in idle:
            worker.expect("ready", READY_TIMEOUT)
        rss_before = server.rss_kib()
        tcp_before = procfs.tcp_counters()
        a = sample(server, pool, [0])
        for worker in idle:
            worker.send("go")
        joined = [worker.expect("joined", READY_TIMEOUT) for worker in idle]
        b = sample(server, pool, [0])
        tcp_after = procfs.tcp_counters()
        cpu_before, loadgen_before, cpu_after, loadgen_after = a.router_cpu, a.loadgen_cpu, b.router_cpu, b.loadgen_cpu
        time.sleep(1.0)  # let the router settle (log writes, freed handshake buffers)
        rss_after = server.rss_kib()
        established = sum(j["joined"] for j in joined)
        elapsed = max(j["finished"] for j in joined) - min(j["started"] for j in joined)
        for worker in idle:
            worker.send("stop")
        results = [worker.expect("result", RESULT_TIMEOUT) for worker in idle]
        errors = errors_of(joined + results)
        lost = sum(r["lost"] for r in results)
        return {"sessions": count, "established": established, "lost": lost, "client_processes": processes,
                "sessions_per_s": round(established / elapsed, 1) if elapsed > 0 else None,
                "join_s": round(elapsed, 3),
                "router_cpu_us_per_session": round((cpu_after - cpu_before) / established * 1e6, 1)
                if established else None,
                "loadgen_cpu_us_per_session": round((loadgen_after - loadgen_before) / established * 1e6, 1)
                if established else None,
                "rss_before_kib": rss_before, "rss_after_kib": rss_after,
                "listen_overflows": tcp_after["ListenOverflows"] - tcp_before["ListenOverflows"],
                "syn_retransmits": tcp_after["TCPSynRetrans"] - tcp_before["TCPSynRetrans"],
                "router_cpu_percent": round(100 * (b.router_cpu - a.router_cpu) / (b.at - a.at), 1),
                "loadgen_cpu_percent": round(100 * (b.loadgen_cpu - a.loadgen_cpu) / (b.at - a.at), 1),
                "machine_busy_percent": round(100 * (b.system[0] - a.system[0]) / (b.at - a.at), 1),
                "other_cpu_percent": round(100 * ((b.system[0] - a.system[0]) - (b.router_cpu - a.router_cpu)
                                                  - (b.loadgen_cpu - a.loadgen_cpu)) / (b.at - a.at), 1),
                "rss_kib_per_session": round((rss_after - rss_before) / established, 2) if established else None,
                "ok": established == count and lost == 0 and not errors, "errors": errors}
    finally:
        pool.close()


# -- RPC ------------------------------------------------------------------------------------------------------------

def rpc(endpoint: Endpoint, settings: Settings, tls: bool) -> dict:
    """One callee, `rpc_callers` callers each with `rpc_window` calls outstanding: calls/s and CPU per call."""
    target = endpoint.target(tls)
    pool = Pool()
    counters = pool.counters(1)
    try:
        callee = pool.spawn({"role": "callee", "target": target, "procedure": PROCEDURE})
        if not callee.expect("ready", READY_TIMEOUT)["registered"]:
            return {"ok": False, "errors": ["the callee could not register"]}
        callers = pool.spawn({"role": "callers", "target": target, "sessions": settings.rpc_callers,
                              "window": settings.rpc_window, "procedure": PROCEDURE, "payload": settings.payload},
                             counters=counters)
        callers.expect("ready", READY_TIMEOUT)
        callers.send("go")
        time.sleep(settings.warmup)
        a = sample(endpoint.server, pool, counters)
        time.sleep(settings.window)
        b = sample(endpoint.server, pool, counters)
        callers.send("stop")
        called = callers.expect("result", RESULT_TIMEOUT)
        callee.send("stop")
        answered = callee.expect("result", RESULT_TIMEOUT)
        errors = errors_of([called, answered])
        figures = window_figures(a, b, "call")
        return {"callers": settings.rpc_callers, "outstanding_per_caller": settings.rpc_window,
                "calls": called["calls"], "invocations": answered["invocations"],
                "call_errors": called["call_errors"], "unanswered": called["outstanding"],
                "ok": called["calls"] == answered["invocations"] and not called["call_errors"]
                and not called["outstanding"] and not errors and bool(figures["call_per_s"]),
                "errors": errors, **figures}
    finally:
        pool.close()


# -- the HTTP bridge ------------------------------------------------------------------------------------------------

def bridge(endpoint: Endpoint, settings: Settings) -> dict:
    """`bridge_publishers` HTTP clients POST to /publish (one request at a time each, kept-alive), one WebSocket
    subscriber counts the events: publishes/s and router CPU per publish through the bridge."""
    target = endpoint.target(False)
    publishers = settings.bridge_publishers
    pool = Pool()
    counters = pool.counters(publishers)
    delivered = pool.counters(1)
    try:
        subscriber = pool.spawn({"role": "subscribers", "target": target, "sessions": 1, "topic": TOPIC,
                                 "batch": 0, "mode": "count", "concurrency": 1}, counters=delivered)
        if subscriber.expect("ready", READY_TIMEOUT)["subscribed"] != 1:
            return {"ok": False, "errors": ["the subscriber could not subscribe"]}
        workers = [pool.spawn({"role": "http-publisher", "target": target, "topic": TOPIC,
                               "payload": settings.payload}, index=i, counters=counters) for i in range(publishers)]
        for worker in workers:
            worker.expect("ready", READY_TIMEOUT)
        for worker in workers:
            worker.send("go")
        time.sleep(settings.warmup)
        a = sample(endpoint.server, pool, counters)
        time.sleep(settings.window)
        b = sample(endpoint.server, pool, counters)
        for worker in workers:
            worker.send("stop")
        results = [worker.expect("result", RESULT_TIMEOUT) for worker in workers]
        published = sum(r["published"] for r in results)
        deadline = time.monotonic() + 10.0
        while delivered[0] < published and time.monotonic() < deadline:
            time.sleep(0.01)
        subscriber.send("stop")
        received = subscriber.expect("result", RESULT_TIMEOUT)["received"]
        errors = errors_of(results)
        figures = window_figures(a, b, "publish")
        return {"http_publishers": publishers, "published": published, "delivered": received,
                "ok": received == published and not errors and bool(figures["publish_per_s"]),
                "errors": errors, **figures}
    finally:
        pool.close()


@dataclass
class Case:
    """One row of the comparison: a scenario with its parameters, run against several endpoints."""

    scenario: str
    params: dict = field(default_factory=dict)
    labels: tuple[str, ...] = ()

    def title(self) -> str:
        p = self.params
        security = "TLS" if p.get("tls") else "TCP"
        if self.scenario == "fanout":
            schema = ", schema" if p.get("schema") else ""
            return f"fan-out {p['subscribers']} sub ({p.get('transport', 'websocket')}, {security}{schema})"
        if self.scenario == "latency":
            return f"latency ({security})"
        if self.scenario == "sessions":
            return f"sessions {p['count']} ({security})"
        if self.scenario == "abuse":
            return ABUSE_TITLES[p["attack"]]
        if self.scenario == "cluster":
            from bench.cluster import TITLES

            return f"cluster {p['subscribers']} sub: {TITLES[p['variant']]}"
        if self.scenario == "bridge":
            return "HTTP bridge publish (TCP)"
        return f"rpc ({security})"

    def run(self, endpoint: Endpoint, settings: Settings) -> dict:
        p = self.params
        if self.scenario == "fanout":
            return fanout(endpoint, settings, p["subscribers"], p["tls"], p.get("transport", "websocket"),
                          VALIDATED_TOPIC if p.get("schema") else TOPIC)
        if self.scenario == "latency":
            return latency(endpoint, settings, p["tls"])
        if self.scenario == "sessions":
            return sessions(endpoint, settings, p["count"], p["tls"])
        if self.scenario == "abuse":
            from bench import abuse  # it builds on this module

            return abuse.run(endpoint, settings, p["attack"])
        if self.scenario == "cluster":
            from bench import cluster  # it builds on this module

            return cluster.run(endpoint, settings, p["variant"], p["subscribers"])
        if self.scenario == "bridge":
            return bridge(endpoint, settings)
        return rpc(endpoint, settings, p["tls"])


ABUSE_TITLES = {"ping": "abuse: ping flood (rawsocket)", "result": "abuse: result flood (websocket)",
                "fragments": "abuse: fragment flood (websocket)",
                "latency": "abuse: latency, publish flood (ws)",
                "latency-rawsocket": "abuse: latency, publish flood (raw)"}
