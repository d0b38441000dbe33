"""The benchmark harness (bench/) still works: its smoke mode runs every scenario tiny against a real `twistd
wampgate`, and every scenario produces numbers and delivers every event it counted. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SMOKE_TIMEOUT = 240.0
SCENARIOS = {"fanout", "latency", "rpc", "sessions"}
NUMBERS = {
    "fanout": ("event_per_s", "router_cpu_us_per_event", "loadgen_cpu_us_per_event"),
    "latency": ("p50_us", "p99_us", "max_us"),
    "rpc": ("call_per_s", "router_cpu_us_per_call"),
    "sessions": ("sessions_per_s", "rss_kib_per_session", "router_cpu_us_per_session"),
}


@pytest.mark.slow
def test_bench_smoke_runs_every_scenario(tmp_path):
    """`python -m bench --smoke` exits 0 within its time bound and writes one JSON file in which every scenario
    (fan-out, latency, RPC, idle sessions, plain and TLS, and the ceiling server) has numeric results, every
    fan-out and latency run delivered exactly published x subscribers events, every RPC call was answered and
    every idle session was established."""
    result = subprocess.run([sys.executable, "-m", "bench", "--smoke", "--output", str(tmp_path)], cwd=REPO,
                            capture_output=True, text=True, timeout=SMOKE_TIMEOUT)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    files = list(tmp_path.glob("*.json"))
    assert len(files) == 1, files
    output = json.loads(files[0].read_text())
    results = output["results"]
    assert {r["scenario"] for r in results} == SCENARIOS
    assert {r["tls"] for r in results} == {False, True}
    assert {"wampgate", "ceiling-send", "ceiling-frame"} <= {r["target"] for r in results}
    for r in results:
        name = f"{r['case']} / {r['target']}"
        assert r["ok"], (name, r.get("errors"))
        for key in NUMBERS[r["scenario"]]:
            assert isinstance(r[key], (int, float)), (name, key, r.get(key))  # (an RSS delta may be negative)
        if r["scenario"] in ("fanout", "latency"):
            assert r["published"] > 0, name
            assert r["delivered"] == r["published"] * r["subscribers"], name
        elif r["scenario"] == "rpc":
            assert r["calls"] > 0 and r["calls"] == r["invocations"] and r["unanswered"] == 0, name
        else:
            assert r["established"] == r["sessions"], name
    assert output["servers"]["wampgate"]["startup_seconds"], output["servers"]
