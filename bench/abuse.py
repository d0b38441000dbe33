"""The abuse scenario: how much an attacker can make a router hold, and what a flooder costs everyone else.

Every attack gets a freshly started router: Wampgate as `AbuseWampgate` (bench/servers.py: the budgets below set
explicitly, a `[[flow]]` limits plugin with a rate per session, an admin endpoint whose /metrics is the router's own
accounting), Crossbar restarted with its usual config. The attackers are in bench/attackers.py.

- Memory (`ping`, `result`, `fragments`): the router's VmRSS is sampled every 20 ms during the attack; the figure is
  its peak growth over the RSS before the attack, printed beside the budget that should bound it
  (`[limits] max_outgoing_buffer` with `outgoing_stall_timeout`; `[listeners.websocket] max_fragments`) and beside
  what the attacker sent. Target: bounded by the budget, not by the attacker.
- Latency (`latency`, `latency-rawsocket`): a victim publishes `victim_rate` events/s to a subscriber on another
  session (the delay as in the latency scenario: the publisher's perf_counter_ns in the payload), first alone, then
  while another session publishes as fast as the router reads it, over WebSocket or RawSocket; the flooder is over
  its session rate, the victim is not. Target: the victim's p99 during the flood under 2x its idle p99.

After every attack a fresh client must still be served: a new session joins.
"""

from __future__ import annotations

import contextlib
import time
import urllib.request
from array import array

from bench import procfs
from bench.scenarios import (READY_TIMEOUT, RESULT_TIMEOUT, Endpoint, Pool, Settings, WorkerFailed, errors_of,
                             percentile, sample)
from bench.servers import AbuseWampgate, Server

ATTACKS = ("ping", "result", "fragments", "latency", "latency-rawsocket")
FLOOD_TRANSPORTS = {"latency": "websocket", "latency-rawsocket": "rawsocket"}  # the flooder's; the victim's: WebSocket
RSS_INTERVAL = 0.02  # seconds between two RSS samples during an attack
SERVE_TIMEOUT = 15.0  # seconds a fresh client may take to join after an attack
FLOOD_SETTLE = 0.3  # seconds of flood before the victim's flood window starts
VICTIM_TOPIC = "bench.victim"
FLOOD_TOPIC = "bench.flood"
PROCEDURE = "bench.stream"
RATE_SHARE = 0.9  # the result flood's callee keeps to this share of the session rate: only the budget can stop it
# The router's accounting read from Wampgate's /metrics (summed over labels): gauges, and counters given as deltas.
GAUGES = ("outgoing_buffer_bytes", "connections", "pending_calls")
COUNTERS = ("outgoing_stall_disconnect_total", "slow_consumer_drop_total", "slow_consumer_disconnect_total",
            "flow_drop_total", "flow_reject_total", "flow_disconnect_total", "messages_received_total")


def run(endpoint: Endpoint, settings: Settings, attack: str) -> dict:
    """One attack against a fresh router of endpoint's kind."""
    with fresh_router(endpoint, settings, attack) as (target, metrics_url):
        if attack in FLOOD_TRANSPORTS:
            return flood_latency(target, settings, metrics_url, attack)
        return memory_attack(target, settings, attack, metrics_url)


@contextlib.contextmanager
def fresh_router(endpoint: Endpoint, settings: Settings, attack: str):
    """(endpoint, metrics URL or None) of a freshly started router, stopped afterwards when it is our own."""
    if endpoint.label != "wampgate":
        endpoint.server.restart()
        yield endpoint, None
        return
    base = endpoint.server
    server = AbuseWampgate(base.workdir, base.certificate, base.private_key, abuse_limits(settings), attack)
    try:
        server.start()
        yield Endpoint(endpoint.label, server, endpoint.path, endpoint.cafile, endpoint.quickack), server.metrics_url
    finally:
        server.stop()


def abuse_limits(settings: Settings) -> dict:
    return {"max_outgoing_buffer": settings.abuse_outgoing_buffer,
            "outgoing_stall_timeout": settings.abuse_stall_timeout,
            "max_fragments": settings.abuse_max_fragments, "session_rate": settings.abuse_session_rate}


def budget_of(endpoint: Endpoint, settings: Settings, attack: str) -> tuple[int | None, str]:
    """(bytes, description) of what should bound the router's growth under `attack`."""
    if endpoint.label != "wampgate":
        return None, "none configured (the router's defaults)"
    if attack == "fragments":
        return None, (f"[listeners.websocket] max_fragments = {settings.abuse_max_fragments} frames per message "
                      f"(x {settings.fragment_connections} connections)")
    return settings.abuse_outgoing_buffer, (
        f"[limits] max_outgoing_buffer = {settings.abuse_outgoing_buffer // 1024:,} KiB, "
        f"outgoing_stall_timeout = {settings.abuse_stall_timeout:g} s")


# -- memory ---------------------------------------------------------------------------------------------------------

def attack_spec(endpoint: Endpoint, settings: Settings, attack: str) -> dict:
    limit = {"seconds": settings.abuse_seconds, "limit_bytes": settings.abuse_max_mib * 2**20}
    if attack == "ping":
        return {"role": "ping_flood", "target": endpoint.target(False, "rawsocket"), "ping_size": settings.ping_size,
                **limit}
    if attack == "result":
        return {"role": "result_flood", "target": {**endpoint.target(False), "progressive": True},
                "procedure": PROCEDURE, "result_size": settings.result_size,
                "rate": RATE_SHARE * settings.abuse_session_rate, **limit}
    return {"role": "fragment_flood", "target": endpoint.target(False, serializer="json"),
            "connections": settings.fragment_connections, "fragments": settings.fragments_per_message, **limit}


def memory_attack(endpoint: Endpoint, settings: Settings, attack: str, metrics_url: str | None) -> dict:
    server = endpoint.server
    pool = Pool()
    try:
        served_before = served(pool, endpoint)  # also the warm-up: the first session's imports and caches
        time.sleep(0.3)
        rss_before = server.rss_kib()
        accounting_before = accounting(metrics_url)
        attacker = pool.spawn(attack_spec(endpoint, settings, attack))
        ready = attacker.expect("ready", READY_TIMEOUT)
        if attack == "result" and not ready.get("registered"):
            return {"ok": False, "errors": ["the attacking callee could not register"] + ready.get("errors", [])}
        cpu_before, started = server.cpu_seconds(), time.monotonic()
        attacker.send("go")
        flooded, rss_peak = watch(server, attacker, "flooded", settings.abuse_seconds + 30.0)
        elapsed = time.monotonic() - started
        cpu = procfs_cpu(server) - cpu_before
        rss_end = rss_or_none(server)
        router_accounting = difference(accounting_before, accounting(metrics_url))
        attacker.send("stop")
        result = attacker.expect("result", RESULT_TIMEOUT)
        alive = rss_or_none(server) is not None
        served_after = alive and served(pool, endpoint)
        budget, budget_text = budget_of(endpoint, settings, attack)
        growth = rss_peak - rss_before
        return {"attack": attack, "rss_before_kib": rss_before, "rss_peak_kib": rss_peak, "rss_end_kib": rss_end,
                "rss_growth_kib": growth, "budget_kib": budget // 1024 if budget else None, "budget": budget_text,
                "growth_per_budget": round(growth * 1024 / budget, 2) if budget else None,
                "attacker_sent_kib": flooded["sent_bytes"] // 1024, "attack_seconds": flooded["seconds"],
                "attacker": {**result, "errors": result.get("errors", [])[:3]},
                "closed_by_router": flooded.get("closed_by_router", 0),
                "router_cpu_percent": round(100 * cpu / elapsed, 1) if elapsed > 0 else None,
                "router_accounting": router_accounting, "router_alive": alive,
                "served_before": served_before, "served_after": served_after,
                "ok": served_before and served_after and flooded["sent_bytes"] > 0, "errors": []}
    finally:
        pool.close()


def watch(server: Server, worker, kind: str, timeout: float) -> tuple[dict, int]:
    """Wait for `kind` from the worker, sampling the router's RSS meanwhile; (the message, the peak RSS in KiB)."""
    peak = server.rss_kib()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if worker.connection.poll(RSS_INTERVAL):
            try:
                message = worker.connection.recv()
            except EOFError:
                raise WorkerFailed(f"{worker.process.name} exited (code {worker.process.exitcode})") from None
            if message[0] == "failed":
                raise WorkerFailed(f"{worker.process.name} failed:\n{message[1]}")
            if message[0] == kind:
                return message[1], max(peak, rss_or_none(server) or 0)
        elif not worker.process.is_alive():
            raise WorkerFailed(f"{worker.process.name} exited (code {worker.process.exitcode}) before '{kind}'")
        peak = max(peak, rss_or_none(server) or 0)
    raise WorkerFailed(f"{worker.process.name}: no '{kind}' within {timeout:.0f} s")


def rss_or_none(server: Server) -> int | None:
    """The router's RSS in KiB, or None when it is gone (an attack that killed it)."""
    try:
        return server.rss_kib() if server.pid else None
    except (OSError, ValueError):
        return None


def procfs_cpu(server: Server) -> float:
    try:
        return procfs.cpu_seconds(server.pid)
    except (OSError, ValueError):
        return 0.0


def served(pool: Pool, endpoint: Endpoint) -> bool:
    """Whether a fresh client joins within SERVE_TIMEOUT."""
    worker = pool.spawn({"role": "idle", "target": endpoint.target(False), "sessions": 1, "concurrency": 1})
    try:
        worker.expect("ready", READY_TIMEOUT)
        worker.send("go")
        joined = worker.expect("joined", SERVE_TIMEOUT)["joined"] == 1
        worker.send("stop")
        worker.expect("result", RESULT_TIMEOUT)
        return joined
    except WorkerFailed:
        return False
    finally:
        worker.send("stop")
        worker.finish()
        pool.workers.remove(worker)


def accounting(metrics_url: str | None) -> dict[str, float]:
    """GAUGES and COUNTERS from the router's /metrics, each summed over its labels ({} without an admin endpoint)."""
    if metrics_url is None:
        return {}
    try:
        with urllib.request.urlopen(metrics_url, timeout=10) as response:
            text = response.read().decode()
    except OSError:
        return {}
    totals: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        name = series.split("{", 1)[0].removeprefix("wampgate_")
        if name in GAUGES or name in COUNTERS:
            totals[name] = totals.get(name, 0.0) + float(value)
        if name == "messages_received_total" and 'type="Publish"' in series:
            totals["publish_received_total"] = float(value)
    return totals


def difference(before: dict[str, float], after: dict[str, float]) -> dict[str, int]:
    """Gauges as they are after, counters as what was added in between."""
    return {name: int(value if name in GAUGES else value - before.get(name, 0.0)) for name, value in after.items()}


# -- latency --------------------------------------------------------------------------------------------------------

def flood_latency(endpoint: Endpoint, settings: Settings, metrics_url: str | None, attack: str) -> dict:
    transport = FLOOD_TRANSPORTS[attack]
    server = endpoint.server
    pool = Pool()
    counters = pool.counters(1)
    try:
        subscriber, publisher, flooder = latency_workers(pool, endpoint, settings, transport, counters)
        publisher.send("go")
        time.sleep(settings.warmup)
        idle_load = measured_window(server, pool, publisher, settings.victim_seconds)
        before = accounting(metrics_url)
        flooder.send("go")
        time.sleep(FLOOD_SETTLE)
        flood_load = measured_window(server, pool, publisher, settings.victim_seconds)
        router_accounting = difference(before, accounting(metrics_url))
        flooder.send("stop")
        flood = flooder.expect("result", RESULT_TIMEOUT)
        publisher.send("stop")
        published = publisher.expect("result", RESULT_TIMEOUT)
        deadline = time.monotonic() + 10.0
        while sum(counters) < published["published"] and time.monotonic() < deadline:
            time.sleep(0.01)
        subscriber.send("stop")
        received = subscriber.expect("result", RESULT_TIMEOUT)
        idle, flooded = split_delays(received, published["marks"])
        served_after = served(pool, endpoint)
        errors = errors_of([published, received])
        return {"attack": attack, "flood_transport": transport, "victim_rate": settings.victim_rate,
                "published": published["published"], "delivered": received["received"], **percentiles(idle, flooded),
                "flooder_published": flood["published"], "flooder_replies": flood["replies"],
                "flooder_disconnected": flood["lost"] > 0, "flooder_errors": flood["errors"][:3],
                **{f"{key}_idle": value for key, value in idle_load.items()},
                **{f"{key}_flood": value for key, value in flood_load.items()},
                "router_accounting": router_accounting, "served_after": served_after,
                "ok": received["received"] == published["published"] and bool(idle) and bool(flooded)
                and served_after and not errors, "errors": errors}
    except WorkerFailed as e:
        return {"ok": False, "errors": [str(e)[:2000]]}
    finally:
        pool.close()


def latency_workers(pool: Pool, endpoint: Endpoint, settings: Settings, transport: str, counters) -> tuple:
    """The victim's subscriber and publisher (WebSocket) and the flooder (over `transport`), each ready."""
    target = endpoint.target(False)
    subscriber = pool.spawn({"role": "subscribers", "target": target, "sessions": 1, "topic": VICTIM_TOPIC,
                             "mode": "latency"}, counters=counters)
    if subscriber.expect("ready", READY_TIMEOUT)["subscribed"] != 1:
        raise WorkerFailed("the victim could not subscribe")
    publisher = pool.spawn({"role": "publisher", "target": target, "topic": VICTIM_TOPIC, "mode": "paced",
                            "rate": settings.victim_rate, "payload": settings.payload - 20})
    flooder = pool.spawn({"role": "flooder", "target": endpoint.target(False, transport), "topic": FLOOD_TOPIC,
                          "payload": settings.payload})
    publisher.expect("ready", READY_TIMEOUT)
    if flooder.expect("ready", READY_TIMEOUT)["joined"] != 1:
        raise WorkerFailed("the flooder could not join")
    return subscriber, publisher, flooder


def percentiles(idle: list[int], flooded: list[int]) -> dict:
    """The victim's figures (us) from its sorted delays (ns) in the idle and the flood window."""
    p99_idle, p99_flood = percentile(idle, 0.99) / 1000, percentile(flooded, 0.99) / 1000
    ratio = round(p99_flood / p99_idle, 2) if p99_idle else None
    return {"idle_samples": len(idle), "flood_samples": len(flooded),
            "p50_idle_us": round(percentile(idle, 0.50) / 1000, 1), "p99_idle_us": round(p99_idle, 1),
            "p50_flood_us": round(percentile(flooded, 0.50) / 1000, 1), "p99_flood_us": round(p99_flood, 1),
            "max_flood_us": round((flooded[-1] if flooded else 0) / 1000, 1),
            "p99_ratio": ratio, "target_met": ratio is not None and ratio < 2.0}


def measured_window(server: Server, pool: Pool, publisher, seconds: float) -> dict:
    """Mark the publisher's sequence at both edges of a window of `seconds`; the CPU the router, the load generator
    (victim and flooder) and everything else on the machine used in it, in percent of one core."""
    publisher.send("mark")
    a = sample(server, pool, [0])
    time.sleep(seconds)
    publisher.send("mark")
    b = sample(server, pool, [0])
    elapsed = b.at - a.at
    router, loadgen, machine = b.router_cpu - a.router_cpu, b.loadgen_cpu - a.loadgen_cpu, b.system[0] - a.system[0]
    return {"router_cpu_percent": round(100 * router / elapsed, 1),
            "loadgen_cpu_percent": round(100 * loadgen / elapsed, 1),
            "other_cpu_percent": round(100 * (machine - router - loadgen) / elapsed, 1)}


def split_delays(received: dict, marks: list[int]) -> tuple[list[int], list[int]]:
    """The sorted delays (ns) of the events published in the idle window and in the flood window."""
    sequences, delays = array("q"), array("q")
    sequences.frombytes(received["sequences"])
    delays.frombytes(received["delays"])
    idle = sorted(d for s, d in zip(sequences, delays) if marks[0] <= s < marks[1])
    flooded = sorted(d for s, d in zip(sequences, delays) if marks[2] <= s < marks[3])
    return idle, flooded
