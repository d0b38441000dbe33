"""The benchmark harness (bench/) still works: its smoke mode runs every scenario tiny against a real `twistd
wampgate`, and every scenario produces numbers and delivers every event it counted. No timing is asserted, and no
memory figure either (RSS depends on the allocator and the garbage collector): the abuse scenario's numbers are
checked to exist, not to meet their targets."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cluster import redis_executable

REPO = Path(__file__).resolve().parents[2]
SMOKE_TIMEOUT = 240.0
SCENARIOS = {"fanout", "latency", "rpc", "sessions", "abuse", "bridge"}
NUMBERS = {
    "fanout": ("event_per_s", "router_cpu_us_per_event", "loadgen_cpu_us_per_event"),
    "latency": ("p50_us", "p99_us", "max_us"),
    "rpc": ("call_per_s", "router_cpu_us_per_call"),
    "sessions": ("sessions_per_s", "rss_kib_per_session", "router_cpu_us_per_session"),
    "cluster": ("event_per_s", "router_cpu_us_per_event"),
    "bridge": ("publish_per_s", "router_cpu_us_per_publish"),
}
ATTACKS = {"ping", "result", "fragments", "latency", "latency-rawsocket"}
MEMORY_NUMBERS = ("rss_before_kib", "rss_peak_kib", "rss_growth_kib", "attacker_sent_kib", "attack_seconds")
LATENCY_NUMBERS = ("p50_idle_us", "p99_idle_us", "p50_flood_us", "p99_flood_us", "p99_ratio")
BUDGET_KIB = 4096  # Settings.abuse_outgoing_buffer: Wampgate's default max_outgoing_buffer


def run_smoke(tmp_path: Path, *options: str) -> tuple[dict, str]:
    """The JSON the smoke run wrote, and what it printed."""
    result = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--output", str(tmp_path), *options],
                            cwd=REPO, capture_output=True, text=True, timeout=SMOKE_TIMEOUT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1, files
    return json.loads(files[0].read_text()), result.stdout


@pytest.mark.slow
def test_bench_smoke_runs_every_scenario(tmp_path):
    """`python -m bench --smoke` exits 0 within its time bound and writes one JSON file in which every scenario
    (fan-out, latency, RPC, idle sessions, abuse, the HTTP bridge, plain and TLS, and the ceiling server) has numeric results, every
    fan-out and latency run delivered exactly published x subscribers events, every RPC call was answered, every
    idle session was established, every publication over the HTTP bridge was delivered, and after every attack a fresh
    client was served. With redis-server installed, the cluster scenario's three rows (one process, workers = 2, two
    nodes) delivered everything too, and the two nodes' row has CPU per event at the publishing node, the receiving
    node and Redis; without it, it is skipped."""
    output, _ = run_smoke(tmp_path)
    results = output["results"]
    with_cluster = redis_executable() is not None
    assert {r["scenario"] for r in results} == SCENARIOS | ({"cluster"} if with_cluster else set())
    assert {r["tls"] for r in results} == {False, True}
    assert {"wampgate", "ceiling-send", "ceiling-frame"} <= {r["target"] for r in results}
    for r in results:
        name = f"{r['case']} / {r['target']}"
        assert r["ok"], (name, r.get("errors"))
        for key in NUMBERS.get(r["scenario"], ()):
            assert isinstance(r[key], (int, float)), (name, key, r.get(key))  # (an RSS delta may be negative)
        if r["scenario"] in ("fanout", "latency", "cluster"):
            assert r["published"] > 0, name
            assert r["delivered"] == r["published"] * r["subscribers"], name
        elif r["scenario"] == "rpc":
            assert r["calls"] > 0 and r["calls"] == r["invocations"] and r["unanswered"] == 0, name
        elif r["scenario"] == "sessions":
            assert r["established"] == r["sessions"], name
        elif r["scenario"] == "bridge":
            assert r["published"] > 0 and r["delivered"] == r["published"], name
        else:
            assert r["served_after"], name
    assert output["servers"]["wampgate"]["startup_seconds"], output["servers"]
    if with_cluster:
        two_nodes = next(r for r in results if r["scenario"] == "cluster" and r["variant"] == "two-nodes")
        for key in ("publishing_node_cpu_us_per_event", "receiving_node_cpu_us_per_event", "redis_cpu_us_per_event"):
            assert isinstance(two_nodes[key], (int, float)), key


@pytest.mark.slow
def test_bench_abuse_smoke_measures_every_attack(tmp_path):
    """`python -m bench --smoke --scenarios abuse` runs each attack once against its own fresh Wampgate: the PING
    flood, the progressive-RESULT flood and the fragment flood each sent something, report the router's RSS before,
    at its peak and the growth beside the configured budget (max_outgoing_buffer for the first two, max_fragments
    for the fragment flood) and the router's /metrics accounting; the latency run has the victim's percentiles idle
    and during the flood, delivered every victim event, and the flooder published. After every attack a fresh client
    joined. The latency run is made twice, with the flooder on WebSocket and on RawSocket. The printed lines carry the
    growth beside its budget and the p99 beside its target."""
    output, printed = run_smoke(tmp_path, "--scenarios", "abuse")
    results = output["results"]
    assert {r["attack"] for r in results} == ATTACKS
    assert {r["target"] for r in results} == {"wampgate"}
    for r in results:
        name = r["case"]
        assert r["scenario"] == "abuse" and r["ok"], (name, r.get("errors"))
        assert r["served_after"] is True, name
        assert "connections" in r["router_accounting"], (name, r["router_accounting"])
        if r["attack"].startswith("latency"):
            for key in LATENCY_NUMBERS:
                assert isinstance(r[key], (int, float)), (name, key, r.get(key))
            assert r["delivered"] == r["published"] > 0, name
            assert r["idle_samples"] > 0 and r["flood_samples"] > 0, name
            assert r["flooder_published"] > 0, name
            continue
        for key in MEMORY_NUMBERS:
            assert isinstance(r[key], (int, float)), (name, key, r.get(key))
        assert r["attacker_sent_kib"] > 0, name
        assert r["rss_growth_kib"] == r["rss_peak_kib"] - r["rss_before_kib"], name
        if r["attack"] == "fragments":
            assert r["budget_kib"] is None and "max_fragments = 64" in r["budget"], name
            assert r["attacker"]["messages_completed"] == 0, name  # no message of 2,000 fragments got through
        else:
            assert r["budget_kib"] == BUDGET_KIB and "max_outgoing_buffer" in r["budget"], name
    assert "(budget: [limits] max_outgoing_buffer = 4,096 KiB" in printed, printed[-4000:]
    assert "(budget: [listeners.websocket] max_fragments = 64" in printed, printed[-4000:]
    assert "(target < 2x)" in printed, printed[-4000:]
