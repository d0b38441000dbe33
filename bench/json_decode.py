"""Router CPU for decoding one 1 MiB JSON PUBLISH: Autobahn's own unserialize (a pure-Python scanner, because of its
string hook for binary values) beside wampgate.tx.wire.parse (the stdlib's C scanner plus the one validation walk).

    .venv/bin/python -m bench.json_decode

Prints the median of a few runs per payload shape; numbers, never assertions.
"""

from __future__ import annotations

import base64
import json
import statistics
import time

import autobahn.twisted  # noqa: F401  selects Twisted for txaio before autobahn's serializers are first imported

from wampgate.tx import wire

MIB = 2**20
RUNS = 5


def payloads() -> dict[str, bytes]:
    """Shapes of about 1 MiB: records, the costliest shapes per byte (tiny ints, tiny arrays), long strings, and
    bytes in Autobahn's JSON form."""
    shapes = {
        "16k small records": [{"id": i, "name": f"item-{i}", "price": i * 0.25, "tags": ["a", "b"]}
                              for i in range(16_000)],
        "500k tiny ints": [1] * 500_000,
        "200k arrays [0]": [[0]] * 200_000,
        "256 strings of 4 KiB": ["x" * 4096] * 256,
        "256 binary values": ["\x00" + base64.b64encode(bytes(3072)).decode()] * 256,
    }
    return {name: json.dumps([16, 1, {}, "com.example.t", args]).encode() for name, args in shapes.items()}


def median_seconds(decode, payload: bytes) -> float:
    timings = []
    for _ in range(RUNS):
        started = time.perf_counter()
        decode(payload)
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


def main() -> None:
    codecs = wire.make_codecs()
    serializer = codecs.serializers["json"]
    autobahn_decode = serializer._serializer.unserialize
    router_decode = lambda payload: wire.parse(serializer, payload, False)  # noqa: E731
    print(f"{'payload':<22} {'size':>9} {'autobahn':>10} {'wire.parse':>11} {'speed-up':>9}")
    for name, payload in payloads().items():
        before = median_seconds(autobahn_decode, payload)
        after = median_seconds(router_decode, payload)
        print(f"{name:<22} {len(payload) / MIB:>7.2f} MiB {before * 1000:>8.1f} ms {after * 1000:>9.1f} ms "
              f"{before / after:>8.1f}x")


if __name__ == "__main__":
    main()
