"""Traffic figures kept on the hot path as plain integers (a few attribute increments per message), read by the
metrics endpoint when it is scraped. Routing latency goes into a fixed-bucket histogram: one bisect and one add."""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter

# Upper bounds in seconds; the last bucket is everything above.
LATENCY_BUCKETS = (0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)


class Traffic:
    __slots__ = ("messages_in", "bytes_in", "messages_out", "bytes_out", "deliveries", "latency_counts",
                 "latency_sum")

    def __init__(self) -> None:
        self.messages_in: Counter = Counter()  # by message type name
        self.bytes_in = 0
        self.messages_out = 0
        self.bytes_out = 0
        self.deliveries = 0  # EVENTs written to subscribers
        self.latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0

    def observe_latency(self, seconds: float) -> None:
        self.latency_counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds
