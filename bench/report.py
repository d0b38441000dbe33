"""Printing results: one line per run as it finishes, a table per scenario at the end, and the smoke checks."""

from __future__ import annotations

from collections import OrderedDict

LABELS = ("wampgate", "crossbar", "ceiling-send", "ceiling-frame")


def _n(value, digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and value >= 10_000:
        return f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def summary(result: dict) -> str:
    """The figures that matter for a run, compact."""
    if not result.get("ok", False) and "errors" in result and not any(
            k in result for k in ("event_per_s", "call_per_s", "sessions_per_s", "rss_growth_kib", "p99_idle_us")):
        return "FAILED: " + "; ".join(result.get("errors", []))[:300]
    scenario = result["scenario"]
    if scenario == "fanout":
        text = (f"{_n(result.get('event_per_s'), 0)} ev/s  router {_n(result.get('router_cpu_us_per_event'), 2)} "
                f"us/ev ({_n(result.get('router_cpu_percent'))}%)  loadgen {_n(result.get('loadgen_cpu_us_per_event'), 2)}"
                f" us/ev  delivered {_n(result.get('delivered'))}/{_n(result.get('expected'))}"
                f"  machine {_n(result.get('machine_busy_percent'), 0)}%")
    elif scenario == "latency":
        text = (f"p50 {_n(result.get('p50_us'))} us  p99 {_n(result.get('p99_us'))} us  max {_n(result.get('max_us'))}"
                f" us  ({_n(result.get('samples'))} samples)  router {_n(result.get('router_cpu_us_per_event'), 2)} "
                f"us/ev  delivered {_n(result.get('delivered'))}/{_n(result.get('expected'))}")
    elif scenario == "sessions":
        text = (f"{_n(result.get('rss_kib_per_session'), 2)} KiB/session  {_n(result.get('sessions_per_s'))} joins/s  "
                f"router {_n(result.get('router_cpu_us_per_session'))} us/join  loadgen "
                f"{_n(result.get('loadgen_cpu_us_per_session'))} us/join  "
                f"established {_n(result.get('established'))}/{_n(result.get('sessions'))}")
    elif scenario == "abuse":
        text = abuse_summary(result)
    elif scenario == "cluster":
        text = (f"{_n(result.get('event_per_s'), 0)} ev/s  router {_n(result.get('router_cpu_us_per_event'), 2)} us/ev"
                + (f" (publishing node {_n(result.get('publishing_node_cpu_us_per_event'), 2)}, receiving node "
                   f"{_n(result.get('receiving_node_cpu_us_per_event'), 2)})"
                   if "publishing_node_cpu_us_per_event" in result else "")
                + (f"  redis {_n(result.get('redis_cpu_us_per_event'), 2)} us/ev ({_n(result.get('redis_cpu_percent'))}%)"
                   if "redis_cpu_us_per_event" in result else "")
                + f"  delivered {_n(result.get('delivered'))}/{_n(result.get('expected'))}"
                  f"  machine {_n(result.get('machine_busy_percent'), 0)}%")
    elif scenario == "bridge":
        text = (f"{_n(result.get('publish_per_s'), 0)} publishes/s  router "
                f"{_n(result.get('router_cpu_us_per_publish'), 2)} us/publish ({_n(result.get('router_cpu_percent'))}%)"
                f"  loadgen {_n(result.get('loadgen_cpu_us_per_publish'), 2)} us/publish  delivered "
                f"{_n(result.get('delivered'))}/{_n(result.get('published'))}")
    else:
        text = (f"{_n(result.get('call_per_s'), 0)} calls/s  router {_n(result.get('router_cpu_us_per_call'), 2)} "
                f"us/call ({_n(result.get('router_cpu_percent'))}%)  loadgen "
                f"{_n(result.get('loadgen_cpu_us_per_call'), 2)} us/call  calls {_n(result.get('calls'))}")
    other = result.get("other_cpu_percent")
    if other is not None and other > 25:
        text += f"  [other load on the machine: {other:.0f}% CPU]"
    if not result.get("ok", False):
        text += "  NOT OK: " + "; ".join(result.get("errors", []))[:300]
    return text


def abuse_summary(result: dict) -> str:
    served = "a fresh client was served after" if result.get("served_after") else "NO fresh client served after"
    if str(result.get("attack")).startswith("latency"):
        dropped = (result.get("router_accounting") or {}).get("flow_drop_total")
        return (f"victim p50/p99 idle {_n(result.get('p50_idle_us'))}/{_n(result.get('p99_idle_us'))} us, during "
                f"the flood {_n(result.get('p50_flood_us'))}/{_n(result.get('p99_flood_us'))} us: p99 "
                f"{_n(result.get('p99_ratio'), 2)}x idle (target < 2x)  the {result.get('flood_transport')} flooder sent "
                f"{_n(result.get('flooder_published'))} publishes"
                + (f", router dropped {_n(dropped)}" if dropped is not None else "")
                + f"  router CPU {_n(result.get('router_cpu_percent_idle'))}% -> "
                f"{_n(result.get('router_cpu_percent_flood'))}%, rest of the machine "
                f"{_n(result.get('other_cpu_percent_idle'))}% -> {_n(result.get('other_cpu_percent_flood'))}%"
                f"  {served}")
    sent = result.get("attacker_sent_kib")
    held = (result.get("router_accounting") or {}).get("outgoing_buffer_bytes")
    return (f"RSS +{_n(result.get('rss_growth_kib'))} KiB peak (budget: {result.get('budget')})  attacker sent "
            f"{_n(sent / 1024 if sent is not None else None)} MiB in {_n(result.get('attack_seconds'), 2)} s, "
            f"{_n(result.get('closed_by_router'))} connection(s) closed by the router"
            + (f", held by the router's count at the end {_n(held // 1024)} KiB" if held is not None else "")
            + f"  {served}")


def line(result: dict) -> str:
    return f"{result['case']:<38} {result['target']:<14} {summary(result)}"


# The figures of each scenario in the comparison tables: (key, title, digits).
METRICS = {
    "fanout": [("router_cpu_us_per_event", "router CPU per delivered event, us", 2),
               ("event_per_s", "events delivered per second", 0),
               ("loadgen_cpu_us_per_event", "load generator CPU per delivered event, us", 2)],
    "latency": [("p50_us", "p50 delivery latency, us", 0), ("p99_us", "p99 delivery latency, us", 0),
                ("max_us", "max delivery latency, us", 0)],
    "rpc": [("router_cpu_us_per_call", "router CPU per call, us", 1), ("call_per_s", "calls per second", 0)],
    "bridge": [("router_cpu_us_per_publish", "router CPU per publish, us", 1),
               ("publish_per_s", "publishes per second", 0)],
    "sessions": [("rss_kib_per_session", "router RSS per idle session, KiB", 2),
                 ("sessions_per_s", "sessions established per second", 0),
                 ("router_cpu_us_per_session", "router CPU per session join, us", 0)],
    "abuse": [("rss_growth_kib", "router RSS growth (peak), KiB", 0),
              ("budget_kib", "its budget (max_outgoing_buffer), KiB", 0),
              ("attacker_sent_kib", "sent by the attacker, KiB", 0),
              ("p99_idle_us", "victim p99 idle, us", 0),
              ("p99_flood_us", "victim p99 during the flood, us", 0),
              ("p99_ratio", "victim p99, flood / idle (target < 2)", 2)],
    "cluster": [("event_per_s", "events delivered per second", 0),
                ("router_cpu_us_per_event", "router CPU per delivered event, us (all nodes)", 2),
                ("publishing_node_cpu_us_per_event", "  at the publishing node, us", 2),
                ("receiving_node_cpu_us_per_event", "  at the receiving node, us", 2),
                ("redis_cpu_us_per_event", "Redis CPU per delivered event, us", 2)],
}
TITLES = {
    "fanout": "FAN-OUT: 1 publisher -> N subscribers on one topic, 64-byte payload, MessagePack",
    "latency": "LATENCY: 1,000 events/s to 10 subscribers",
    "rpc": "RPC: 1 callee, callers with a bounded number of outstanding calls",
    "sessions": "IDLE SESSIONS",
    "bridge": "HTTP BRIDGE: HTTP clients POST /publish (one request at a time each), 1 WebSocket subscriber",
    "abuse": "ABUSE: router memory under floods from clients that never read; a victim's latency beside a flooder",
    "cluster": "CLUSTER: 1 publisher -> N subscribers through Redis, beside one process (bench/cluster.py)",
}
CASE_WIDTH = 40
CELL = 15


def table(output: dict) -> str:
    rows: "OrderedDict[tuple, dict]" = OrderedDict()
    for result in output["results"]:
        rows.setdefault((result["scenario"], result["case"]), {})[result["target"]] = result
    lines = []
    for scenario, metrics in METRICS.items():
        cases = [(case, by_target) for (s, case), by_target in rows.items() if s == scenario]
        if not cases:
            continue
        labels = [label for label in LABELS if _has(cases, label)]
        ratios = [label for label in ("ceiling-send", "ceiling-frame") if label in labels and "wampgate" in labels]
        lines += ["", TITLES[scenario]]
        for key, title, digits in metrics:
            header = f"  {title:<{CASE_WIDTH}}" + "".join(f"{label:>{CELL}}" for label in labels)
            if key == "router_cpu_us_per_event":
                header += "".join(f"{'wg/' + label.split('-')[1]:>{CELL - 4}}" for label in ratios)
            lines.append(header)
            for case, by_target in cases:
                cells = f"    {case:<{CASE_WIDTH - 2}}"
                for label in labels:
                    result = by_target.get(label)
                    value = result.get(key) if result else None
                    mark = "" if result is None or result.get("ok") else "!"
                    cells += f"{_n(value, digits) + mark:>{CELL}}"
                if key == "router_cpu_us_per_event":
                    for label in ratios:
                        ours = (by_target.get("wampgate") or {}).get(key)
                        best = (by_target.get(label) or {}).get(key)
                        cells += f"{(f'{ours / best:.2f}x' if ours and best else '-'):>{CELL - 4}}"
                lines.append(cells)
    lines += validation_cost(rows)
    lines += cluster_speedup(rows)
    startup = output["servers"].get("wampgate", {}).get("startup_seconds")
    if startup:
        lines.append("")
        lines.append("twistd -n wampgate, spawn -> both 'listening on' lines: "
                     + ", ".join(f"{s:.3f} s" for s in startup))
    crossbar = output["servers"].get("crossbar", {})
    if crossbar.get("startup_seconds"):
        lines.append("crossbar start, spawn -> 'local node configuration ran successfully': "
                     + ", ".join(f"{s:.3f} s" for s in crossbar["startup_seconds"]))
    if crossbar.get("skipped"):
        lines.append(f"crossbar not measured: {crossbar['skipped']}")
    lines.append("(! = the run was not clean: see its errors in the JSON; wg/send, wg/frame = Wampgate's router CPU "
                 "per event as a multiple of the ceiling's)")
    return "\n".join(lines)


def validation_cost(rows) -> list[str]:
    """Wampgate's router CPU per PUBLISH with a small JSON schema on the topic beside the same fan-out without one:
    CPU per delivered event times the subscribers is the CPU per published message, and the difference is what
    validating it cost (one check per PUBLISH, whatever the fan-out)."""
    lines = []
    for (scenario, case), by_target in rows.items():
        validated = by_target.get("wampgate")
        if scenario != "fanout" or not case.endswith(", schema)") or validated is None:
            continue
        plain = (rows.get(("fanout", case.replace(", schema)", ")"))) or {}).get("wampgate")
        with_schema = validated.get("router_cpu_us_per_event")
        without = (plain or {}).get("router_cpu_us_per_event")
        if not with_schema or not without:
            continue
        subscribers = validated["subscribers"]
        per_message = (with_schema - without) * subscribers
        lines.append(f"    {case[:-9] + ')':<{CASE_WIDTH - 2}} none {without * subscribers:,.2f} us/publish, "
                     f"small schema {with_schema * subscribers:,.2f} us/publish: validation {per_message:+,.2f} us "
                     "per message")
    if lines:
        lines.insert(0, "")
        lines.insert(1, "PAYLOAD SCHEMA: Wampgate's router CPU per PUBLISH (CPU per delivered event x subscribers), "
                        "no validator vs a small JSON schema on the topic")
    return lines


def cluster_speedup(rows) -> list[str]:
    """events/s of workers = 2 as a multiple of one process's, at the same fan-out (target: 1.6x on 2 cores)."""
    found = {}
    for (scenario, case), by_target in rows.items():
        if scenario == "cluster" and "wampgate" in by_target:
            found[case.split(": ", 1)[1]] = by_target["wampgate"].get("event_per_s")
    one, two = found.get("one process"), found.get("workers = 2")
    if not one or not two:
        return []
    return [f"  workers = 2 / one process, events/s: {two / one:.2f}x (target: at least 1.6x on 2 cores)"]


def _has(cases, label: str) -> bool:
    return any(label in by_target for _, by_target in cases)


NUMBERS = {
    "fanout": ("event_per_s", "router_cpu_us_per_event", "loadgen_cpu_us_per_event"),
    "latency": ("p50_us", "p99_us", "max_us", "router_cpu_us_per_event"),
    "rpc": ("call_per_s", "router_cpu_us_per_call", "loadgen_cpu_us_per_call"),
    "sessions": ("sessions_per_s", "rss_kib_per_session", "router_cpu_us_per_session"),
    "cluster": ("event_per_s", "router_cpu_us_per_event"),
}
ABUSE_NUMBERS = {
    "memory": ("rss_growth_kib", "attacker_sent_kib", "attack_seconds"),
    "latency": ("p50_idle_us", "p99_idle_us", "p50_flood_us", "p99_flood_us", "flooder_published"),
}


def numbers_of(result: dict) -> tuple[str, ...]:
    if result["scenario"] == "abuse":
        return ABUSE_NUMBERS["latency" if str(result.get("attack")).startswith("latency") else "memory"]
    return NUMBERS.get(result["scenario"], ())


def smoke_problems(output: dict, scenarios) -> list[str]:
    """Every scenario ran, every run is clean, produced its numbers and delivered every event it counted."""
    problems = []
    seen = {r["scenario"] for r in output["results"]}
    from bench.cluster import redis_executable

    skipped = {"cluster"} if redis_executable() is None else set()  # said so when the cases were built
    problems += [f"scenario {s} produced no result" for s in scenarios if s not in seen | skipped]
    for r in output["results"]:
        name = f"{r['case']} / {r['target']}"
        if not r.get("ok"):
            problems.append(f"{name}: not ok: {r.get('errors')}")
        for key in numbers_of(r):
            if not isinstance(r.get(key), (int, float)):
                problems.append(f"{name}: no number for {key}")
        if r["scenario"] == "abuse" and not r.get("served_after"):
            problems.append(f"{name}: no fresh client was served after the attack")
        if r["scenario"] in ("fanout", "latency", "cluster"):
            if r.get("delivered") != r.get("published", -1) * r.get("subscribers", -1):
                problems.append(f"{name}: delivered {r.get('delivered')} != published {r.get('published')} x "
                                f"{r.get('subscribers')} subscribers")
    return problems
