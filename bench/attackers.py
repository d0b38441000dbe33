"""The abuse scenario's attackers (bench/abuse.py): load-generator worker processes built on workers.Role.

Each attacks as fast as the router lets it, within the spec's `seconds` and `limit_bytes`:

- `ping_flood` and `fragment_flood` (bench/rawattacks.py): raw sockets that never read, below WAMP;
- `result_flood`: a callee answers a call with progressive results to a caller that never reads, as fast as the
  router takes them but within `rate` results/s (a second's worth at once): an attacker that keeps to its rate limit,
  so only the outgoing budget can stop it. When the router ends that caller (or after ROUND_TIMEOUT), a new caller
  calls;
- `flooder`: one session publishing without acknowledgement as fast as the router reads it.

With the orchestrator: ("ready", info); ("go",) starts the attack. The first three then say ("flooded", figures)
once time or bytes are used up, keeping their connections open so the router's accounting can be read with the
attacker still there; ("stop",) closes everything and is answered ("result", figures). The flooder publishes until
("stop",).
"""

from __future__ import annotations

import time
from dataclasses import replace

from bench import wamp
from bench.engine import CLOSED, JOINED, Client
from bench.rawattacks import DEAF, GONE, SMALL_RCVBUF, FragmentFlood, PingFlood
from bench.workers import SETUP_TIMEOUT, Role, payload_text

PUMP_INTERVAL = 0.0005  # seconds between two looks at whether a flooding session's socket took what it was given
ROUND_TIMEOUT = 2.0  # result flood: a caller the router has not ended by then is left hanging and a new one calls
MAX_ROUNDS = 10_000  # callers one result flood may open in all
RESULTS_PER_WRITE = 4
PUBLISHES_PER_WRITE = 512
MAX_WRITES_AT_ONCE = 64


class DeafCaller:
    """A caller that has sent its CALL and reads nothing more; it only notices the router closing it."""

    def __init__(self, role: ResultFlood, client: Client):
        self.role = role
        self.client = client
        role.loop.handlers[client.fd] = self
        role.loop.modify(client.fd, DEAF)

    def on_event(self, events: int) -> None:
        if events & GONE:
            self.role.caller_gone(self.client)
        else:  # the client's own send path asked for READ / WRITE: a deaf caller wants neither
            self.role.loop.modify(self.client.fd, DEAF)


class ResultFlood(Role):
    """A callee streaming progressive results to callers that never read (see the module docstring)."""

    def run(self) -> None:
        spec = self.spec
        self.limit, self.sent, self.results, self.rate = spec["limit_bytes"], 0, 0, spec["rate"]
        self.rounds = self.ended_by_router = self.abandoned = self.other = 0
        self.registered = self.done = False
        self.invocation, self.frames, self.caller, self.seconds = None, b"", None, 0.0
        self.pad = bytes(spec["result_size"])
        self.caller_target = replace(self.target, rcvbuf=SMALL_RCVBUF)
        self.connect(1, lambda c: c.send([wamp.REGISTER, 1, {}, spec["procedure"]]), self._callee_message, 1,
                     SETUP_TIMEOUT)
        self.callee = self.clients[0] if self.joined else None
        self.loop.run(lambda: self.registered or self.lost or not self.joined, time.monotonic() + SETUP_TIMEOUT)
        self.control.send(("ready", {"registered": self.registered, "errors": self.errors}))
        if self.command()[0] != "go" or not self.registered:
            self.report(**self.figures())
            return
        self.started = time.monotonic()
        self.deadline = self.started + spec["seconds"]
        self._new_round()
        self._pump()
        self.loop.run(lambda: self.done or self.commands, self.deadline + 5.0)
        self._finish()
        self.control.send(("flooded", self.figures()))
        while self.command()[0] not in ("stop", "eof", "timeout"):
            pass
        self.close_all()
        self.report(**self.figures())

    def _callee_message(self, client: Client, payload: bytes) -> None:
        msg = client.serializer.loads(payload)
        if msg[0] == wamp.REGISTERED:
            self.registered = True
        elif msg[0] == wamp.INVOCATION:
            self.invocation = msg[1]
            self.frames = client.encode([wamp.YIELD, msg[1], {"progress": True}, [self.pad]]) * RESULTS_PER_WRITE
        else:  # an INTERRUPT, an ERROR or an ABORT: counted and kept
            self.other += 1
            self.error(f"callee received {str(msg)[:200]}")

    def _new_round(self) -> None:
        """A new caller: it calls with receive_progress, then never reads."""
        if self.done or self.rounds >= MAX_ROUNDS:
            self._finish()
            return
        self.rounds += 1
        self.invocation = None
        self.round_started = time.monotonic()

        def joined(client: Client) -> None:
            client.send([wamp.CALL, 1, {"receive_progress": True}, self.spec["procedure"], []])
            DeafCaller(self, client)

        def closed(client: Client, reason: str, was_joined: bool) -> None:
            if reason != "closed by the client" and client is self.caller:
                self.error(f"caller: {reason}")
                self._new_round()

        try:
            self.caller = Client(self.loop, self.caller_target, joined, lambda client, payload: None, closed,
                                 self.ssl_context)
            self.clients.append(self.caller)
        except OSError as e:
            self.error(f"caller connect: {e}")
            self._finish()

    def caller_gone(self, client: Client) -> None:
        """The router ended a caller that did not read: what it owed it is gone, and a new caller calls."""
        self.ended_by_router += 1
        client.close()
        if client is self.caller:
            self._new_round()

    def _pump(self) -> None:
        if self.done:
            return
        now = time.monotonic()
        callee = self.callee
        if now >= self.deadline or self.sent >= self.limit or callee.state == CLOSED:
            self._finish()
            return
        if now - self.round_started > ROUND_TIMEOUT:
            self.abandoned += 1
            self._new_round()
        within_rate = self.results + RESULTS_PER_WRITE <= self.rate * (now - self.started + 1.0)
        if self.invocation is not None and within_rate and not callee.outbuf and callee.state == JOINED:
            callee.write(self.frames)
            self.sent += len(self.frames)
            self.results += RESULTS_PER_WRITE
        self.loop.call_at(now + PUMP_INTERVAL, self._pump)

    def _finish(self) -> None:
        if not self.done:
            self.done = True
            self.seconds = time.monotonic() - self.started

    def figures(self) -> dict:
        return {"sent_bytes": self.sent, "seconds": round(self.seconds, 3), "results": self.results,
                "rounds": self.rounds, "closed_by_router": self.ended_by_router, "abandoned": self.abandoned,
                "callee_other_messages": self.other}


class Flooder(Role):
    """One session publishing to `topic` without acknowledgement as fast as the router reads (frames built once)."""

    def run(self) -> None:
        spec = self.spec
        self.published = self.replies = 0

        def on_payload(client: Client, payload: bytes) -> None:
            self.replies += 1  # an ERROR or ABORT from flow control; a silent drop sends nothing

        self.connect(1, lambda client: None, on_payload, 1, SETUP_TIMEOUT)
        client = self.clients[0] if self.joined else None
        self.control.send(("ready", {"joined": self.joined, "errors": self.errors}))
        if self.command()[0] != "go" or client is None:
            self.report(published=0, replies=0)
            return
        pad = payload_text(spec["payload"])
        chunk = b"".join(client.encode([wamp.PUBLISH, n, {}, spec["topic"], [pad]])
                         for n in range(1, PUBLISHES_PER_WRITE + 1))

        def fill(client: Client) -> None:
            """Write until the socket is full; the engine calls back when it has taken that (no polling: the
            flooder's own CPU should not be what slows the victim down)."""
            for _ in range(MAX_WRITES_AT_ONCE):
                if client.outbuf or client.state != JOINED or self.commands:
                    return
                client.write(chunk)
                self.published += PUBLISHES_PER_WRITE
            self.loop.call_at(time.monotonic(), lambda: fill(client))  # a router that keeps up: commands first

        client.on_drained = fill
        fill(client)
        while self.command()[0] not in ("stop", "eof", "timeout"):
            pass
        self.report(published=self.published, replies=self.replies)
        self.close_all()


ROLES = {"ping_flood": PingFlood, "fragment_flood": FragmentFlood, "result_flood": ResultFlood,
         "flooder": Flooder}
