"""An Autobahn asyncio client for the dealer's end-to-end tests, run as a subprocess (one txaio framework per process).

Usage: python asyncio_rpc_client.py PORT TRANSPORT SERIALIZER TWISTED_PROCEDURE

It joins realm1 over TRANSPORT ("websocket" or "rawsocket") with SERIALIZER ("json" or "msgpack"), registers
"com.asyncio.countdown" (three progressive results, then a final one), calls it with progress, calls
TWISTED_PROCEDURE (registered by the test's in-process Twisted callee) with ("from asyncio", n=2**53), prints ONE
JSON line with what it saw, leaves, and exits 0. Any failure prints a JSON line {"error": ...} and exits 1; the
whole run is bounded by an 8 s deadline so the test never waits on a stuck client.
"""

from __future__ import annotations

import asyncio
import json
import sys

from autobahn.asyncio.rawsocket import WampRawSocketClientFactory
from autobahn.asyncio.wamp import ApplicationSession
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp.serializer import JsonSerializer, MsgPackSerializer
from autobahn.wamp.types import CallOptions, ComponentConfig, RegisterOptions

DEADLINE = 8.0
SERIALIZERS = {"json": JsonSerializer, "msgpack": MsgPackSerializer}


class Client(ApplicationSession):
    """Joins, then hands itself to `main` through `joined`; `gone` resolves when the transport closes."""

    def __init__(self, config, joined: asyncio.Future, gone: asyncio.Future):
        super().__init__(config)
        self._joined = joined
        self._gone = gone

    def onConnect(self):
        self.join(self.config.realm)

    def onJoin(self, details):
        if not self._joined.done():
            self._joined.set_result(details)

    def onLeave(self, details):
        if not self._joined.done():
            self._joined.set_exception(RuntimeError(f"left before joining: {details.reason}"))
        self.disconnect()

    def onDisconnect(self):
        if not self._gone.done():
            self._gone.set_result(None)


async def countdown(n, details=None):
    """Progressive: n-1 .. 0 as progress, then "liftoff"."""
    for i in reversed(range(n)):
        details.progress(i)
        await asyncio.sleep(0)
    return "liftoff"


async def run(port: int, transport: str, serializer: str, twisted_procedure: str) -> dict:
    loop = asyncio.get_running_loop()
    joined, gone = loop.create_future(), loop.create_future()
    session = Client(ComponentConfig(realm="realm1"), joined, gone)
    chosen = SERIALIZERS[serializer]()
    if transport == "websocket":
        factory = WampWebSocketClientFactory(lambda: session, url=f"ws://127.0.0.1:{port}/ws", serializers=[chosen])
    else:
        factory = WampRawSocketClientFactory(lambda: session, serializer=chosen)
    await loop.create_connection(factory, "127.0.0.1", port)
    details = await joined

    await session.register(countdown, "com.asyncio.countdown", options=RegisterOptions(details_arg="details"))
    progress: list = []
    final = await session.call(
        "com.asyncio.countdown", 3, options=CallOptions(on_progress=lambda *args, **kwargs: progress.append(args[0]))
    )
    greeting = await session.call(twisted_procedure, "from asyncio", n=2**53)
    session.leave()
    await gone
    return {
        "authrole": details.authrole,
        "progress": progress,
        "final": final,
        "twisted": [list(greeting.results), greeting.kwresults] if hasattr(greeting, "results") else greeting,
    }


def main(argv: list[str]) -> int:
    port, transport, serializer, twisted_procedure = int(argv[1]), argv[2], argv[3], argv[4]
    try:
        outcome = asyncio.run(asyncio.wait_for(run(port, transport, serializer, twisted_procedure), DEADLINE))
    except BaseException as e:  # report anything, including the deadline, as one line
        print(json.dumps({"error": f"{type(e).__name__}: {e}"}), flush=True)
        return 1
    print(json.dumps(outcome, sort_keys=True), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
