"""The admin listener: Prometheus text format on /metrics (prometheus_client, a registry of our own, read from the
router's live state when scraped) and /healthz (the reactor answers and every listener is listening).

Scrapes and probes are not logged (a Prometheus every 15 s and a probe every few seconds would be most of the log);
any other path is, as twisted.web's access line. No `Server` header: the port is for machines, and it need not tell
anyone the Twisted version."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from twisted.web import resource, server

from wampgate.tx.traffic import LATENCY_BUCKETS
from wampgate.tx.website import Request

_PREFIX = "wampgate"
QUIET_PATHS = frozenset({b"/metrics", b"/healthz"})  # requests not written to the access log


class RouterCollector:
    """Builds every metric family from the router's state on each scrape; nothing is kept twice."""

    def __init__(self, context: Any, listeners: list[Any], cluster: Any = None):
        self._context = context
        self._listeners = listeners
        self._cluster = cluster

    def collect(self):
        yield from self._sessions_and_connections()
        yield from self._tables()
        yield from self._traffic()
        yield from self._counters()
        if self._cluster is not None:
            yield from self._cluster_state()

    def _cluster_state(self):
        """The node's Redis connections and what crosses them (counted drops are in the counters)."""
        cluster = self._cluster
        up = GaugeMetricFamily(f"{_PREFIX}_cluster_up", "1 while both Redis connections are up, else 0")
        up.add_metric([], 1 if cluster.healthy else 0)
        remote = GaugeMetricFamily(f"{_PREFIX}_cluster_remote_sessions", "Sessions joined on other nodes, per realm",
                                   labels=["realm"])
        for name, link in cluster.links.items():
            remote.add_metric([name], len(link.core.remote_sessions))
        channels = GaugeMetricFamily(f"{_PREFIX}_cluster_channels", "Redis channels this node listens on")
        channels.add_metric([], len(cluster.subscriber.channels))
        events = CounterMetricFamily(f"{_PREFIX}_cluster_events_received", "Events received from other nodes")
        events.add_metric([], cluster.stats["events_in"])
        redis = CounterMetricFamily(f"{_PREFIX}_cluster_redis", "Redis round trips, replies, reconnects, timeouts "
                                    "and dropped publications, per connection", labels=["connection", "what"])
        for connection, stats in (("commands", cluster.redis.stats), ("subscriber", cluster.subscriber.stats)):
            for what, count in stats.items():
                redis.add_metric([connection, what], count)
        yield from (up, remote, channels, events, redis)

    def _sessions_and_connections(self):
        sessions = GaugeMetricFamily(f"{_PREFIX}_sessions", "Joined sessions per realm", labels=["realm"])
        buffered = GaugeMetricFamily(f"{_PREFIX}_outgoing_buffer_bytes",
                                     "Bytes written to sessions beyond what their sockets took, per realm",
                                     labels=["realm"])
        for name, realm in self._context.realms.items():
            peers = list(realm.core.sessions.values())
            sessions.add_metric([name], len(peers))
            held = sum(getattr(getattr(peer.channel, "budget", None), "held", 0) for peer in peers)
            buffered.add_metric([name], held)
        connections = GaugeMetricFamily(f"{_PREFIX}_connections", "Open connections per listener",
                                        labels=["listener"])
        for listener in self._listeners:
            connections.add_metric([listener.name], listener.open_connections())
        yield from (sessions, buffered, connections)

    def _tables(self):
        """What clients make the router hold: routing tables per realm and the flow plugins' rate meters."""
        subscriptions = GaugeMetricFamily(f"{_PREFIX}_subscriptions", "Subscriptions per realm", labels=["realm"])
        registrations = GaugeMetricFamily(f"{_PREFIX}_registrations", "Registrations per realm", labels=["realm"])
        calls = GaugeMetricFamily(f"{_PREFIX}_pending_calls", "Calls waiting for their callee, per realm",
                                  labels=["realm"])
        shapes = GaugeMetricFamily(f"{_PREFIX}_wildcard_shapes",
                                   "Distinct wildcard shapes per realm and index (limits.max_wildcard_shapes)",
                                   labels=["realm", "index"])
        retained = GaugeMetricFamily(f"{_PREFIX}_retained_events",
                                     "Retained events per realm (limits.max_retained_events, max_retained_bytes)",
                                     labels=["realm"])
        for name, realm in self._context.realms.items():
            broker, dealer = realm.core.broker, realm.core.dealer
            sizes = dealer.table_sizes()
            subscriptions.add_metric([name], len(broker.subscriptions()))
            registrations.add_metric([name], sizes["registrations"])
            calls.add_metric([name], sizes["calls"])
            shapes.add_metric([name, "subscriptions"], broker.wildcard_shapes())
            shapes.add_metric([name, "registrations"], dealer.wildcard_shapes())
            retained.add_metric([name], len(broker.retained))
        meters = GaugeMetricFamily(f"{_PREFIX}_rate_meters", "Rate meters held by the flow-control plugins",
                                   value=self._context.flow.rate_meters())
        yield from (subscriptions, registrations, calls, shapes, retained, meters)

    def _traffic(self):
        traffic = self._context.traffic
        messages_in = CounterMetricFamily(f"{_PREFIX}_messages_received", "WAMP messages received by type",
                                          labels=["type"])
        for kind, count in sorted(traffic.messages_in.items()):
            messages_in.add_metric([kind], count)
        yield messages_in
        yield CounterMetricFamily(f"{_PREFIX}_messages_sent", "WAMP messages sent", value=traffic.messages_out)
        yield CounterMetricFamily(f"{_PREFIX}_received_bytes", "Payload bytes received", value=traffic.bytes_in)
        yield CounterMetricFamily(f"{_PREFIX}_sent_bytes", "Payload bytes sent", value=traffic.bytes_out)
        yield CounterMetricFamily(f"{_PREFIX}_deliveries", "EVENTs delivered to subscribers",
                                  value=traffic.deliveries)
        histogram = HistogramMetricFamily(f"{_PREFIX}_routing_seconds",
                                          "Time to route one received transport message")
        buckets, running = [], 0
        for bound, count in zip((*map(str, LATENCY_BUCKETS), "+Inf"), traffic.latency_counts):
            running += count
            buckets.append((bound, running))
        histogram.add_metric([], buckets, traffic.latency_sum)
        yield histogram

    def _counters(self):
        """One family per counter name; its label names are the union over its series (missing ones empty), so
        a series recorded with fewer labels is never misread."""
        series: dict[str, list[tuple[dict, int]]] = {}
        for name, labels, count in self._context.counters.items():
            series.setdefault(name, []).append((labels, count))
        for name, entries in series.items():
            keys = sorted({key for labels, _ in entries for key in labels})
            family = CounterMetricFamily(f"{_PREFIX}_{name}", name.replace("_", " "), labels=keys)
            for labels, count in entries:
                family.add_metric([labels.get(key, "") for key in keys], count)
            yield family


class MetricsResource(resource.Resource):
    """The registry in Prometheus text format, rendered on the reactor thread (prometheus_client's own Twisted
    resource renders in a thread, reading the router's live state while the reactor changes it)."""

    isLeaf = True

    def __init__(self, registry: CollectorRegistry):
        super().__init__()
        self._registry = registry

    def render_GET(self, request) -> bytes:
        request.setHeader(b"content-type", CONTENT_TYPE_LATEST.encode())
        return generate_latest(self._registry)


class HealthResource(resource.Resource):
    """200 when every listener is listening (the reactor answered this request, so it is alive), else 503."""

    isLeaf = True

    def __init__(self, listeners: list[Any], cluster: Any = None):
        super().__init__()
        self._listeners = listeners
        self._cluster = cluster

    def render_GET(self, request) -> bytes:
        """503 when a listener is down, or when a cluster node cannot reach Redis: it serves its own clients, but
        events and calls to and from other nodes are lost, so a load balancer should send clients elsewhere."""
        down = [listener.name for listener in self._listeners if listener.port is None]
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        if down:
            request.setResponseCode(503)
            return ("listeners down: " + ", ".join(down) + "\n").encode()
        cluster = self._cluster
        if cluster is not None:
            if not cluster.healthy:
                request.setResponseCode(503)
                return f"degraded: cluster node {cluster.name} cannot reach Redis ({cluster.address.redacted()})\n".encode()
            return f"ok\ncluster node {cluster.name}\n".encode()
        return b"ok\n"


class AdminSite(server.Site):
    """twisted.web's site, whose access log leaves out /metrics and /healthz."""

    def log(self, request) -> None:
        if request.path not in QUIET_PATHS:
            super().log(request)


def admin_site(context: Any, listeners: list[Any], cluster: Any = None) -> server.Site:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(RouterCollector(context, listeners, cluster))
    root = resource.Resource()
    root.putChild(b"metrics", MetricsResource(registry=registry))
    root.putChild(b"healthz", HealthResource(listeners, cluster))
    site = AdminSite(root, logPath=None)
    site.requestFactory = Request  # no Server header (its server_header is empty), nosniff on every response
    site.displayTracebacks = False
    site.noisy = False
    return site
