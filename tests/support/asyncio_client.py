"""An Autobahn *asyncio* client, run as a subprocess by tests/integration/test_asyncio_clients.py.

txaio binds one networking framework per process, and the router under test runs on Twisted, so Autobahn's asyncio
flavour has to live in a process of its own. This script joins a realm through `autobahn.asyncio.wamp.
ApplicationRunner` (ws:// or wss:// for WebSocket, rs:// or rss:// for RawSocket), subscribes to a topic, publishes
to it with exclude_me=False and acknowledge=True, waits for its own event, leaves, and prints ONE line of JSON
(sorted keys, compact) describing what it saw. Ids are random, so only their relations are reported (the
publication id in the event equals the one in PUBLISHED, ...). Bytes in the payload are reported as {"hex": ...}.

Usage: asyncio_client.py URL SERIALIZER [--ca CA_PEM] [--realm REALM] [--topic TOPIC]

Whatever happens, the process exits within HARD_LIMIT seconds (exit status 3 on timeout, 2 on error, 0 on success).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import sys
import threading

HARD_LIMIT = 10.0

ARGS = [1, "zwei \u00fc \U0001f600", {"drei": [3.5, None, True]}, 2**53, b"\x00\xffwamp"]
KWARGS = {"vier": {"f\u00fcnf": [False, -1]}, "blob": b"\x01\x02"}


def _exit_after(seconds: float) -> None:
    """A hard stop that no hung event loop or half-open socket can prevent."""

    def stop():
        print(json.dumps({"error": "timeout"}, sort_keys=True, separators=(",", ":")), flush=True)
        os._exit(3)

    timer = threading.Timer(seconds, stop)
    timer.daemon = True
    timer.start()


def _jsonable(value):
    """The payload as JSON can show it: bytes become {"hex": ...}; tuples become lists."""
    if isinstance(value, bytes):
        return {"hex": value.hex()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    return value


def _serializer(name: str):
    from autobahn.wamp.serializer import CBORSerializer, JsonSerializer, MsgPackSerializer

    return {"json": JsonSerializer, "msgpack": MsgPackSerializer, "cbor": CBORSerializer}[name]()


def _tls_context(ca_path: str | None):
    if ca_path is None:
        return None
    return ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca_path)


def _make_session_class():
    from autobahn.asyncio.wamp import ApplicationSession
    from autobahn.wamp.types import PublishOptions, SubscribeOptions

    class Probe(ApplicationSession):
        """Subscribe, publish to itself, report, leave."""

        async def onJoin(self, details):
            done = self.config.extra["done"]
            topic = self.config.extra["topic"]
            try:
                received = asyncio.get_running_loop().create_future()

                def on_event(*args, details=None, **kwargs):
                    if not received.done():
                        received.set_result((args, kwargs, details))

                subscription = await self.subscribe(on_event, topic, options=SubscribeOptions(details=True))
                publication = await self.publish(
                    topic, *ARGS, options=PublishOptions(exclude_me=False, acknowledge=True), **KWARGS
                )
                args, kwargs, event = await received
                transport = self._transport
                tls = transport.transport.get_extra_info("ssl_object")
                result = {
                    "realm": details.realm,
                    "authmethod": details.authmethod,
                    "authrole": details.authrole,
                    "serializer": transport._serializer.SERIALIZER_ID,
                    "tls": tls.version() is not None if tls is not None else False,
                    "args": _jsonable(args),
                    "kwargs": _jsonable(kwargs),
                    "payload_identical": list(args) == ARGS and kwargs == KWARGS,
                    "event_topic": event.topic,
                    "event_publisher": event.publisher,
                    "subscription_matches": event.subscription.id == subscription.id,
                    "publication_matches": event.publication == publication.id,
                }
            except Exception as e:  # reported, never hidden: the test asserts on the JSON
                result = {"error": f"{type(e).__name__}: {e}"}
            if not done.done():
                done.set_result(result)
            self.leave()

        def onLeave(self, details):
            done = self.config.extra["done"]
            if not done.done():
                done.set_result({"error": f"left: {details.reason}"})
            self.disconnect()

        def onDisconnect(self):
            gone = self.config.extra["gone"]
            if not gone.done():
                gone.set_result(None)

    return Probe


async def _run(options) -> dict:
    from autobahn.asyncio.wamp import ApplicationRunner

    loop = asyncio.get_running_loop()
    done, gone = loop.create_future(), loop.create_future()
    runner = ApplicationRunner(
        options.url,
        options.realm,
        extra={"done": done, "gone": gone, "topic": options.topic},
        serializers=[_serializer(options.serializer)],
        ssl=_tls_context(options.ca),
    )
    await runner.run(_make_session_class(), start_loop=False)
    result = await done
    try:
        await asyncio.wait_for(gone, 2.0)
    except asyncio.TimeoutError:
        result = dict(result, clean_disconnect=False)
    return result


def main(argv: list[str]) -> int:
    _exit_after(HARD_LIMIT)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("serializer", choices=("json", "msgpack", "cbor"))
    parser.add_argument("--ca", default=None, help="PEM file of the CA to trust (for wss:// and rss://)")
    parser.add_argument("--realm", default="realm1")
    parser.add_argument("--topic", default="com.example.asyncio")
    options = parser.parse_args(argv)

    import txaio

    txaio.use_asyncio()
    try:
        result = asyncio.run(_run(options))
    except Exception as e:
        result = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(result, sort_keys=True, separators=(",", ":")), flush=True)
    return 2 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
