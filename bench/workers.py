"""The load generator's worker processes: subscribers, publisher, idle sessions, callee and callers.

Each worker runs one role on its own epoll loop and talks to the orchestrator over a multiprocessing Pipe:
it sends ("ready", info) once its sessions are set up, waits for ("go",) where the role has a start, and answers
("stop",) with ("result", {...}). It also keeps its running total in counters[index] (shared memory), so the
orchestrator can sample progress at the edges of the measurement window without asking.

Fan-out flow control: the publisher sends batches of B events; a subscriber worker tells the publisher (over its
signal pipe) when every one of its sessions has received batch k, and the publisher sends batch k + 1 + ahead only
then. So neither the router nor the subscribers' sockets ever queue more than `ahead` + 1 batches per subscriber,
whatever the speed of the router.
"""

from __future__ import annotations

import resource
import signal
import time
import traceback
from array import array
from collections import deque

from bench import procfs, wamp
from bench.engine import Client, Loop, Pipe, Target, client_ssl_context

SETUP_TIMEOUT = 300.0
DRAIN_TIMEOUT = 15.0
FOREVER = 900.0  # the longest a worker waits for its next command before it gives up and exits
MAX_ERRORS_KEPT = 5


def raise_nofile_limit() -> int:
    """Raise the open-files limit to the hard limit (10,000 sessions need 10,000 sockets); return it."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


def payload_text(size: int) -> str:
    return "x" * size


class Role:
    """What every role shares: the loop, the control pipe, error bookkeeping, and connecting many sessions."""

    def __init__(self, spec: dict, control, counters, index: int, signals):
        self.spec = spec
        self.control = control
        self.counters = counters
        self.index = index
        self.signals = signals
        self.loop = Loop()
        self.target = Target(**spec["target"])
        self.ssl_context = client_ssl_context(self.target.cafile) if self.target.tls else None
        self.commands: deque = deque()
        Pipe(self.loop, control, self.commands.append)
        self.errors: list[str] = []
        self.error_count = 0
        self.clients: list[Client] = []
        self.joined = 0
        self.failed = 0
        self.lost = 0  # sessions that were established and then closed by the other side

    def error(self, text: str) -> None:
        self.error_count += 1
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(text)

    def command(self, timeout: float = FOREVER) -> tuple:
        """The next command from the orchestrator (("eof",) if it went away)."""
        self.loop.run(lambda: self.commands, time.monotonic() + timeout)
        return self.commands.popleft() if self.commands else ("timeout",)

    def connect(self, count: int, on_join, on_payload, concurrency: int, timeout: float) -> bool:
        """Open `count` sessions, at most `concurrency` still opening at a time; True when all joined."""
        pending = [count]

        def start_one() -> None:
            if pending[0] <= 0:
                return
            pending[0] -= 1
            try:
                client = Client(self.loop, self.target, joined, on_payload, closed, self.ssl_context)
            except OSError as e:
                self.failed += 1
                self.error(f"connect: {e}")
                start_one()
                return
            self.clients.append(client)

        def joined(client: Client) -> None:
            self.joined += 1
            on_join(client)
            start_one()

        def closed(client: Client, reason: str, was_joined: bool) -> None:
            if reason == "closed by the client":
                return
            self.error(reason)
            if was_joined:
                self.lost += 1
            else:
                self.failed += 1
                start_one()

        for _ in range(min(concurrency, count)):
            start_one()
        self.loop.run(lambda: self.joined + self.failed >= count, time.monotonic() + timeout)
        return self.joined == count

    def close_all(self) -> None:
        for client in self.clients:
            client.close()

    def report(self, **values) -> None:
        values.update(errors=self.errors, error_count=self.error_count, joined=self.joined, failed=self.failed,
                      lost=self.lost)
        self.control.send(("result", values))


class Subscribers(Role):
    """`sessions` subscribers on one topic. mode "count": count EVENTs without decoding them and signal batch
    completion; mode "latency": decode each EVENT and keep (sequence, delay in ns)."""

    def run(self) -> None:
        spec = self.spec
        sessions, self.batch = spec["sessions"], spec.get("batch", 0)
        self.sessions = sessions
        self.total = 0
        self.subscribed = 0
        self.other = 0
        self.reached: dict[int, int] = {}
        self.sequences, self.delays = array("q"), array("q")
        is_event = self.is_event = wamp.SERIALIZERS[self.target.serializer].is_event
        self.on_event = self._count if spec["mode"] == "count" else self._time
        topic = spec["topic"]

        def on_join(client: Client) -> None:
            client.user = [0, self.batch]  # events received, the count at which the next batch is complete
            client.send([wamp.SUBSCRIBE, 1, {}, topic])

        def on_payload(client: Client, payload: bytes) -> None:
            if is_event(payload):
                self.on_event(client, payload)
            else:
                self._control_message(client, payload)

        if self.connect(sessions, on_join, on_payload, spec.get("concurrency", 100), SETUP_TIMEOUT):
            self.loop.run(lambda: self.subscribed + self.lost >= sessions, time.monotonic() + SETUP_TIMEOUT)
        self.control.send(("ready", {"subscribed": self.subscribed, "errors": self.errors}))
        while self.command()[0] not in ("stop", "eof", "timeout"):
            pass
        self.report(received=self.total, subscribed=self.subscribed, other_messages=self.other,
                    sequences=self.sequences.tobytes(), delays=self.delays.tobytes())
        self.close_all()

    def _control_message(self, client: Client, payload: bytes) -> None:
        msg = client.serializer.loads(payload)
        if msg[0] == wamp.SUBSCRIBED:
            self.subscribed += 1
        else:
            self.other += 1
            self.error(f"unexpected message {str(msg)[:200]}")

    def _count(self, client: Client, payload: bytes) -> None:
        state = client.user
        state[0] += 1
        self.total += 1
        self.counters[self.index] = self.total
        if state[0] == state[1]:
            state[1] += self.batch
            batch = state[0] // self.batch - 1
            reached = self.reached.get(batch, 0) + 1
            if reached == self.sessions:
                self.reached.pop(batch, None)
                self.signals.send(batch)
            else:
                self.reached[batch] = reached

    def _time(self, client: Client, payload: bytes) -> None:
        now = time.perf_counter_ns()
        msg = client.serializer.loads(payload)
        stamp, sequence = msg[4][0], msg[4][1]
        self.total += 1
        self.counters[self.index] = self.total
        self.sequences.append(sequence)
        self.delays.append(now - stamp)


class Publisher(Role):
    """One publisher. mode "batch": batches of `batch` events, at most two batches ahead of the slowest subscriber
    worker; mode "paced": `rate` events per second, each carrying its perf_counter_ns timestamp and sequence."""

    def run(self) -> None:
        spec = self.spec
        self.request = 0
        self.published = 0
        self.marks: list[int] = []  # paced: the sequence number of the next event at each ("mark",)
        self.topic = spec["topic"]
        self.pad = payload_text(spec["payload"])
        self.client = None

        def on_join(client: Client) -> None:
            self.client = client

        def on_payload(client: Client, payload: bytes) -> None:
            self.error(f"unexpected message {str(client.serializer.loads(payload))[:200]}")

        self.connect(1, on_join, on_payload, 1, SETUP_TIMEOUT)
        self.control.send(("ready", {"joined": self.joined, "errors": self.errors}))
        if self.command()[0] != "go" or self.client is None:
            self.report(published=0)
            return
        if spec["mode"] == "batch":
            self._run_batches(spec["batch"])
        else:
            self._run_paced(spec["rate"])
        self.report(published=self.published, mark=self.marks[0] if self.marks else 0, marks=self.marks)
        self.close_all()

    def _publish_batch(self, count: int) -> None:
        messages = []
        for _ in range(count):
            self.request += 1
            messages.append([wamp.PUBLISH, self.request, {}, self.topic, [self.pad]])
        self.client.send_many(messages)
        self.published += count

    def _run_batches(self, batch: int) -> None:
        workers = len(self.signals)
        progress = [-1] * workers
        state = {"sent": 0, "stopping": False}

        def completed() -> int:
            return min(progress)

        ahead = self.spec.get("ahead", 2)

        def fill() -> None:
            while not state["stopping"] and state["sent"] <= completed() + ahead:
                self._publish_batch(batch)
                state["sent"] += 1

        def on_signal(worker: int):
            def signalled(value) -> None:
                if type(value) is int:
                    progress[worker] = max(progress[worker], value)
                    fill()
            return signalled

        for worker, connection in enumerate(self.signals):
            Pipe(self.loop, connection, on_signal(worker))
        fill()
        while True:
            command = self.command()
            if command[0] in ("stop", "eof", "timeout"):
                break
        state["stopping"] = True
        # Wait (bounded) until every subscriber has every batch that was sent.
        self.loop.run(lambda: completed() >= state["sent"] - 1, time.monotonic() + DRAIN_TIMEOUT)
        if completed() < state["sent"] - 1:
            self.error(f"drain: subscribers completed batch {completed()} of {state['sent'] - 1}")

    def _run_paced(self, rate: float) -> None:
        interval = 1.0 / rate
        start = time.monotonic()
        stopping = [False]

        def tick() -> None:
            if stopping[0]:
                return
            due = int((time.monotonic() - start) / interval) + 1
            messages = []
            while self.published < due:
                self.request += 1
                messages.append([wamp.PUBLISH, self.request, {}, self.topic,
                                 [time.perf_counter_ns(), self.published, self.pad]])
                self.published += 1
            if messages:
                self.client.send_many(messages)
            self.loop.call_at(start + self.published * interval, tick)

        tick()
        while True:
            command = self.command()
            if command[0] == "mark":
                self.marks.append(self.published)
            elif command[0] in ("stop", "eof", "timeout"):
                break
        stopping[0] = True


class IdleSessions(Role):
    """On ("go",): open `sessions` sessions that then do nothing; report when all are established."""

    def run(self) -> None:
        spec = self.spec
        self.control.send(("ready", {}))
        if self.command()[0] != "go":
            self.report()
            return
        started = time.monotonic()

        def on_payload(client: Client, payload: bytes) -> None:
            self.error(f"unexpected message {str(client.serializer.loads(payload))[:200]}")

        self.connect(spec["sessions"], lambda client: None, on_payload, spec.get("concurrency", 100),
                     SETUP_TIMEOUT)
        last = max((c.joined_at for c in self.clients if c.joined_at is not None), default=time.monotonic())
        self.control.send(("joined", {"started": started, "finished": last, "joined": self.joined,
                                      "failed": self.failed, "errors": self.errors}))
        while self.command()[0] not in ("stop", "eof", "timeout"):
            pass
        self.report(started=started, finished=last)
        self.close_all()


class Callee(Role):
    """One callee registering `procedure`; answers every INVOCATION with YIELD of the same arguments."""

    def run(self) -> None:
        spec = self.spec
        self.invocations = 0
        self.registered = False

        def on_join(client: Client) -> None:
            client.send([wamp.REGISTER, 1, {}, spec["procedure"]])

        def on_payload(client: Client, payload: bytes) -> None:
            msg = client.serializer.loads(payload)
            if msg[0] == wamp.INVOCATION:
                self.invocations += 1
                client.send([wamp.YIELD, msg[1], {}, msg[4] if len(msg) > 4 else []])
            elif msg[0] == wamp.REGISTERED:
                self.registered = True
            else:
                self.error(f"unexpected message {str(msg)[:200]}")

        self.connect(1, on_join, on_payload, 1, SETUP_TIMEOUT)
        self.loop.run(lambda: self.registered or self.lost, time.monotonic() + SETUP_TIMEOUT)
        self.control.send(("ready", {"registered": self.registered, "errors": self.errors}))
        while self.command()[0] not in ("stop", "eof", "timeout"):
            pass
        self.report(invocations=self.invocations)
        self.close_all()


class Callers(Role):
    """`sessions` callers, each keeping `window` calls outstanding until told to stop."""

    def run(self) -> None:
        spec = self.spec
        window, procedure, pad = spec["window"], spec["procedure"], payload_text(spec["payload"])
        self.completed = 0
        self.call_errors = 0
        self.outstanding = 0
        self.stopping = False

        def call(client: Client) -> None:
            client.user += 1
            self.outstanding += 1
            client.send([wamp.CALL, client.user, {}, procedure, [pad]])

        def on_payload(client: Client, payload: bytes) -> None:
            msg = client.serializer.loads(payload)
            self.outstanding -= 1
            if msg[0] == wamp.RESULT:
                self.completed += 1
                self.counters[self.index] = self.completed
            else:
                self.call_errors += 1
                self.error(f"unexpected message {str(msg)[:200]}")
            if not self.stopping:
                call(client)

        def on_join(client: Client) -> None:
            client.user = 0

        self.connect(spec["sessions"], on_join, on_payload, 100, SETUP_TIMEOUT)
        self.control.send(("ready", {"joined": self.joined, "errors": self.errors}))
        if self.command()[0] == "go":
            for client in self.clients:
                for _ in range(window):
                    call(client)
            while self.command()[0] not in ("stop", "eof", "timeout"):
                pass
        self.stopping = True
        self.loop.run(lambda: self.outstanding <= 0, time.monotonic() + DRAIN_TIMEOUT)
        self.report(calls=self.completed, call_errors=self.call_errors, outstanding=self.outstanding)
        self.close_all()


ROLES = {"subscribers": Subscribers, "publisher": Publisher, "idle": IdleSessions, "callee": Callee,
         "callers": Callers}


def role_class(name: str) -> type:
    """A load-generator role, or one of the abuse scenario's attackers (bench/attackers.py, which builds on Role)."""
    if name in ROLES:
        return ROLES[name]
    if name == "http-publisher":
        from bench.http_load import HttpPublisher  # it builds on this module

        return HttpPublisher
    from bench import attackers

    return attackers.ROLES[name]


def main(spec: dict, control, counters, index: int, signals) -> None:
    """A worker process's entry point (multiprocessing target)."""
    procfs.die_with_parent()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the orchestrator handles Ctrl-C and stops us
    raise_nofile_limit()
    try:
        role_class(spec["role"])(spec, control, counters, index, signals).run()
    except Exception:
        try:
            control.send(("failed", traceback.format_exc()))
        except OSError:
            pass
