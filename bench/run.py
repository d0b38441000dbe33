"""Entry point: `python -m bench [--peer crossbar] [--smoke]` (`make bench`, `make bench PEER=crossbar`).

Starts Wampgate (and Crossbar.io and the ceiling server when asked), runs every scenario against each in turn
(alternating the order from one case to the next), prints a table and writes bench/results/<timestamp>.json.
Every process it starts is bounded in time and stopped at the end, whatever happens.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import signal
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, replace
from pathlib import Path

from bench import certs, report
from bench.abuse import ATTACKS
from bench.scenarios import Case, Endpoint, Settings
from bench.servers import FLOW_NOTE, Ceiling, Crossbar, Server, ServerError, Wampgate, crossbar_installed
from bench.workers import raise_nofile_limit
from bench import procfs

RESULTS = Path(__file__).resolve().parent / "results"
SCENARIOS = ("fanout", "latency", "rpc", "sessions", "abuse", "bridge", "cluster")

SMOKE = Settings(warmup=0.2, window=0.4, fanout=(10,), rawsocket_fanout=(5,), schema_fanout=(10,), latency_rate=200.0,
                 latency_subscribers=3, latency_seconds=0.4, sessions=(20,), fresh_router_for_sessions=False,
                 rpc_callers=1, rpc_window=4, tls=(False, True), join_concurrency=10, abuse_seconds=1.0,
                 abuse_max_mib=32, fragment_connections=2, fragments_per_message=2000, victim_seconds=0.5,
                 cluster_fanout=10)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--peer", action="append", default=[], choices=["crossbar", ""],
                        help="also measure this router (Crossbar.io, installed into bench/.crossbar-venv)")
    parser.add_argument("--smoke", action="store_true",
                        help="every scenario, tiny and fast, no peer; exit 1 unless each produced numbers and "
                             "delivered everything it counted")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS),
                        help=f"comma-separated subset of {', '.join(SCENARIOS)}")
    parser.add_argument("--no-ceiling", action="store_true", help="skip the bare-Autobahn ceiling runs")
    parser.add_argument("--no-tls", action="store_true", help="plain TCP only")
    parser.add_argument("--fanout", help="comma-separated subscriber counts (default 1,10,100,1000)")
    parser.add_argument("--schema-fanout", help="comma-separated subscriber counts of the fan-out rows with a "
                        "payload schema on the topic (default 1,10; Wampgate only)")
    parser.add_argument("--sessions", help="comma-separated idle-session counts (default 1000,10000)")
    parser.add_argument("--window", type=float, help="seconds measured per run (default 2)")
    parser.add_argument("--warmup", type=float, help="seconds of load before the window (default 0.5)")
    parser.add_argument("--ahead", type=int, help="fan-out flow control: batches in flight beyond the last "
                        "complete one (default 2)")
    parser.add_argument("--batch-events", type=int, help="fan-out: deliveries per batch (default 4000)")
    parser.add_argument("--abuse-seconds", type=float, help="abuse: seconds each memory attack lasts at most "
                        "(default 5)")
    parser.add_argument("--attacks", default=",".join(ATTACKS),
                        help=f"abuse: comma-separated subset of {', '.join(ATTACKS)}")
    parser.add_argument("--cluster-fanout", type=int, help="cluster: subscribers in each row (default 100)")
    parser.add_argument("--abuse-max-mib", type=int, help="abuse: MiB each memory attack sends at most (default 512)")
    parser.add_argument("--client-quickack", action="store_true",
                        help="diagnostic: clients ACK every read at once (TCP_QUICKACK), which takes the server's "
                             "Nagle + the client's delayed ACK out of the latency figures")
    parser.add_argument("--output", type=Path, default=None, help="where to write the JSON (default bench/results/)")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (configs, logs)")
    return parser.parse_args(argv)


def settings_from(args) -> Settings:
    settings = SMOKE if args.smoke else Settings()
    changes = {}
    if args.fanout:
        changes["fanout"] = tuple(int(n) for n in args.fanout.split(","))
    if args.schema_fanout:
        changes["schema_fanout"] = tuple(int(n) for n in args.schema_fanout.split(","))
    if args.sessions:
        changes["sessions"] = tuple(int(n) for n in args.sessions.split(","))
    if args.window:
        changes["window"] = args.window
        changes["latency_seconds"] = max(args.window, 1.0)
    if args.warmup is not None:
        changes["warmup"] = args.warmup
    if args.ahead:
        changes["batches_ahead"] = args.ahead
    if args.batch_events:
        changes["events_per_batch"] = args.batch_events
    if args.abuse_seconds:
        changes["abuse_seconds"] = args.abuse_seconds
    if args.abuse_max_mib:
        changes["abuse_max_mib"] = args.abuse_max_mib
    if args.cluster_fanout:
        changes["cluster_fanout"] = args.cluster_fanout
    if args.client_quickack:
        changes["client_quickack"] = True
    if args.no_tls:
        changes["tls"] = (False,)
    return replace(settings, **changes)


def build_cases(settings: Settings, scenarios: list[str], routers: tuple[str, ...], ceiling: bool,
                attacks: tuple[str, ...] = ATTACKS) -> list[Case]:
    cases = []
    ceilings = ("ceiling-send", "ceiling-frame") if ceiling else ()
    if "fanout" in scenarios:
        for subscribers in settings.fanout:
            for tls in settings.tls:
                cases.append(Case("fanout", {"subscribers": subscribers, "tls": tls}, routers + ceilings))
        for subscribers in settings.rawsocket_fanout:
            cases.append(Case("fanout", {"subscribers": subscribers, "tls": False, "transport": "rawsocket"},
                              routers))
        if "wampgate" in routers:  # only Wampgate's config has the schema (servers.VALIDATED_TOPIC)
            for subscribers in settings.schema_fanout:
                cases.append(Case("fanout", {"subscribers": subscribers, "tls": False, "schema": True},
                                  ("wampgate",)))
    for name in ("latency", "rpc"):
        if name in scenarios:
            cases += [Case(name, {"tls": tls}, routers) for tls in settings.tls]
    if "sessions" in scenarios:
        for count in settings.sessions:
            cases += [Case("sessions", {"count": count, "tls": tls}, routers) for tls in settings.tls]
    if "bridge" in scenarios and "wampgate" in routers:  # Wampgate's own bridge; Crossbar's is configured apart
        cases.append(Case("bridge", {"tls": False}, ("wampgate",)))
    if "abuse" in scenarios:
        cases += [Case("abuse", {"attack": attack, "tls": False}, routers) for attack in attacks]
    if "cluster" in scenarios and "wampgate" in routers:
        from bench.cluster import REDIS_HOW_TO, VARIANTS, redis_executable

        if redis_executable() is None:
            print(f"cluster scenario skipped: redis-server is not installed; {REDIS_HOW_TO}", flush=True)
        else:
            cases += [Case("cluster", {"variant": variant, "subscribers": settings.cluster_fanout, "tls": False},
                           ("wampgate",)) for variant in VARIANTS]
    return cases


class Interrupted(BaseException):  # not an Exception: no per-run handler may swallow it
    pass


def _interrupt(signum, frame):
    raise Interrupted(f"signal {signum}")


def main(argv=None) -> int:
    args = parse_args(argv)
    settings = settings_from(args)
    scenarios = [s for s in args.scenarios.split(",") if s]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        print(f"unknown scenarios: {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    attacks = tuple(a for a in args.attacks.split(",") if a)
    if set(attacks) - set(ATTACKS):
        print(f"unknown attacks: {', '.join(sorted(set(attacks) - set(ATTACKS)))}", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _interrupt)
    nofile = raise_nofile_limit()  # the routers and the workers inherit it
    workdir = Path(tempfile.mkdtemp(prefix="wampgate-bench-"))
    started = datetime.datetime.now(datetime.timezone.utc)
    output = new_output(args, settings, started, nofile)
    servers: dict[str, Server] = {}
    failed = False
    try:
        endpoints = start_servers(args, settings, scenarios, workdir, servers, output)
        routers = tuple(name for name in ("wampgate", "crossbar") if name in servers)
        cases = build_cases(settings, scenarios, routers, "ceiling" in servers, attacks)
        print(f"{len(cases)} cases; {FLOW_NOTE}\n", flush=True)
        run_cases(cases, endpoints, settings, output)
    except (Interrupted, KeyboardInterrupt) as e:
        print(f"interrupted ({e}); stopping everything", file=sys.stderr)
        failed = True
    except Exception:
        traceback.print_exc()
        failed = True
    finally:
        for name, server in servers.items():
            server.stop()
            output["servers"].setdefault(name, {})["startup_seconds"] = [round(s, 3) for s in server.startup_seconds]
        if args.keep or failed:
            print(f"working directory kept: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    output["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    print("\n" + report.table(output))
    print(f"\nresults: {write_json(output, args.output, started)}")
    if failed:
        return 1
    if args.smoke:
        problems = report.smoke_problems(output, scenarios)
        for problem in problems:
            print(f"SMOKE FAILED: {problem}", file=sys.stderr)
        return 1 if problems else 0
    return 0


def new_output(args, settings: Settings, started: datetime.datetime, nofile: int) -> dict:
    return {
        "started": started.isoformat(timespec="seconds"),
        "mode": "smoke" if args.smoke else "full",
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "host": {"cpu": procfs.cpu_model(), "cores": os.cpu_count(), "python": platform.python_version(),
                 "kernel": platform.release(), "nofile_limit": nofile},
        "settings": asdict(settings),
        "notes": [FLOW_NOTE,
                  "fan-out: MessagePack over WebSocket unless the case says rawsocket; 1 publisher without "
                  "acknowledge, flow-controlled end to end (batches of ~events_per_batch deliveries, at most "
                  "batches_ahead batches beyond the last one every subscriber has); CPU per event = utime+stime "
                  "(/proc/PID/stat) over the measured window / events delivered in it.",
                  "Crossbar: its router worker process is measured, not the controller.",
                  "abuse: every attack runs against a freshly started router. Wampgate's abuse config sets "
                  "[limits] max_outgoing_buffer, outgoing_stall_timeout and [listeners.websocket] max_fragments "
                  "explicitly (settings abuse_*) and a [flow.rates.session] rate (messages only) on every session; "
                  "authid, role and address rates are off because every benchmark client is an anonymous 127.0.0.1. "
                  "Crossbar runs with its usual config (no such limits). rss_growth_kib = peak VmRSS during the "
                  "attack - VmRSS before it (sampled every 20 ms).",
                  "ceiling: bench/ceiling.py, a bare Autobahn Twisted WebSocket server (no WAMP routing).",
                  "other_cpu_percent: CPU the machine spent on anything but the measured server and the load "
                  "generator (other processes, the kernel's softirq work): large values mean disturbed figures."],
        "servers": {},
        "results": [],
    }


def start_servers(args, settings: Settings, scenarios: list[str], workdir: Path, servers: dict,
                  output: dict) -> dict[str, Endpoint]:
    """Start Wampgate, then Crossbar (when asked and installable) and the ceiling server; their endpoints."""
    other = other_load()
    output["host"]["other_load_percent_before"] = other
    if other > 20:
        print(f"warning: the machine is busy before the run ({other:.0f}% CPU used by other processes); "
              "throughput and latency figures will be disturbed", flush=True)
    cert, key = certs.generate(workdir)
    wampgate = servers["wampgate"] = Wampgate(workdir, cert, key)
    elapsed = wampgate.start()
    print(f"wampgate: twistd -n wampgate listening {elapsed:.3f} s after spawn "
          "(spawn -> both 'listening on' log lines)", flush=True)
    output["servers"]["wampgate"] = wampgate.versions()
    if "crossbar" in args.peer and not args.smoke:
        start_crossbar(workdir, cert, key, servers, output)
    if not args.no_ceiling and "fanout" in scenarios:
        servers["ceiling"] = Ceiling(workdir, cert, key)
        servers["ceiling"].start()
        output["servers"]["ceiling"] = {"autobahn": output["servers"]["wampgate"]["autobahn"]}
    quickack = settings.client_quickack
    endpoints = {name: Endpoint(name, server, cafile=str(cert), quickack=quickack)
                 for name, server in servers.items() if name != "ceiling"}
    if "ceiling" in servers:
        for path in ("send", "frame"):
            endpoints[f"ceiling-{path}"] = Endpoint(f"ceiling-{path}", servers["ceiling"], f"/{path}", str(cert),
                                                    quickack)
    return endpoints


def start_crossbar(workdir: Path, cert: Path, key: Path, servers: dict, output: dict) -> None:
    """Install (once) and start Crossbar.io; when that fails, say why and go on without it."""
    try:
        ok, why = crossbar_installed()
    except Exception as e:  # whatever goes wrong here, Wampgate's figures are still worth having
        ok, why = False, f"{type(e).__name__}: {e}"
    if ok:
        crossbar = Crossbar(workdir, cert, key)
        try:
            elapsed = crossbar.start()
            servers["crossbar"] = crossbar
            output["servers"]["crossbar"] = crossbar.versions()
            print(f"crossbar {output['servers']['crossbar']['crossbar']}: router worker pid {crossbar.pid}, "
                  f"ready {elapsed:.3f} s after spawn", flush=True)
            return
        except ServerError as e:
            crossbar.stop()
            why = str(e)
    print(f"Crossbar.io is not measured: {why}\ncontinuing with Wampgate alone", flush=True)
    output["servers"]["crossbar"] = {"skipped": why}


def run_cases(cases: list[Case], endpoints: dict[str, Endpoint], settings: Settings, output: dict) -> None:
    for number, case in enumerate(cases):
        labels = list(case.labels)
        shift = number % len(labels)
        for label in labels[shift:] + labels[:shift]:  # alternate who goes first
            result = run_one(case, endpoints[label], settings)
            output["results"].append(result)
            print(report.line(result), flush=True)


def other_load(seconds: float = 1.0) -> float:
    """Percent CPU (of one core) the machine spends while the benchmark has not started anything yet."""
    before = procfs.system_cpu()[0]
    time.sleep(seconds)
    return round(100 * (procfs.system_cpu()[0] - before) / seconds, 1)


def run_one(case: Case, endpoint: Endpoint, settings: Settings) -> dict:
    began = time.monotonic()
    base = {"scenario": case.scenario, "case": case.title(), "target": endpoint.label, **case.params}
    try:
        result = case.run(endpoint, settings)
    except Exception as e:
        result = {"ok": False, "errors": [f"{type(e).__name__}: {e}"[:2000]]}
    return {**base, **result, "run_seconds": round(time.monotonic() - began, 2)}


def write_json(output: dict, where: Path | None, started: datetime.datetime) -> Path:
    directory = where or RESULTS
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{started.strftime('%Y%m%dT%H%M%SZ')}{'-smoke' if output['mode'] == 'smoke' else ''}.json"
    path.write_text(json.dumps(output, indent=2) + "\n")
    return path


if __name__ == "__main__":
    sys.exit(main())
