"""The admin endpoint of a workers' parent (`[cluster] workers` > 1): the workers' states, not their traffic.

One port cannot serve N processes' metrics meaningfully (each scrape would reach whichever worker accepted it), so
the parent serves it: `/healthz` is 200 while every worker is running and ready, else 503 naming the others;
`/metrics` has the worker count, how many are ready and each slot's restarts. Routing and cluster figures per
worker are in each worker's log, and the cluster-wide session count in the `wamp.session.count` meta procedure.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from twisted.web import resource

from wampgate.tx.metrics import AdminSite, MetricsResource
from wampgate.tx.website import Request


class WorkersCollector:
    def __init__(self, supervisor: Any):
        self._supervisor = supervisor

    def collect(self):
        workers = self._supervisor.workers
        configured = GaugeMetricFamily("wampgate_workers", "Router processes configured ([cluster] workers)")
        configured.add_metric([], len(workers))
        ready = GaugeMetricFamily("wampgate_workers_ready", "Workers running and ready, per slot (1 or 0)",
                                  labels=["worker"])
        restarts = CounterMetricFamily("wampgate_worker_restarts", "Times a worker slot was started again after "
                                       "its process exited", labels=["worker"])
        for worker in workers:
            ready.add_metric([str(worker.index)], 1 if worker.state == "ready" else 0)
            restarts.add_metric([str(worker.index)], worker.restarts)
        yield from (configured, ready, restarts)


class WorkersHealth(resource.Resource):
    isLeaf = True

    def __init__(self, supervisor: Any):
        super().__init__()
        self._supervisor = supervisor

    def render_GET(self, request) -> bytes:
        workers = self._supervisor.workers
        lines = [f"worker {w.index}: node {w.node}, pid {w.pid or '-'}, {w.state}, {w.restarts} restarts"
                 for w in workers]
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        not_ready = [w for w in workers if w.state != "ready"]
        if not_ready:
            request.setResponseCode(503)
            head = f"degraded: {len(not_ready)} of {len(workers)} workers not ready"
        else:
            head = "ok"
        return ("\n".join([head, *lines]) + "\n").encode()


def workers_site(supervisor: Any) -> AdminSite:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(WorkersCollector(supervisor))
    root = resource.Resource()
    root.putChild(b"metrics", MetricsResource(registry=registry))
    root.putChild(b"healthz", WorkersHealth(supervisor))
    site = AdminSite(root, logPath=None)
    site.requestFactory = Request
    site.displayTracebacks = False
    site.noisy = False
    return site
