"""A real RouterSession on a fake channel and a fake clock: the glue's behaviour (handshake, order, timeouts, flow
control, refusals) tested in milliseconds, without sockets.

The router side is built from TOML text with the same building blocks as router/tx/service.py (`make_service`
minus the listening ports), so realms, authorizers, authenticators and flow-control plugins are the configured
ones; only the clock (`twisted.internet.task.Clock`), the id source and the random choice are fakes.

    harness = SessionHarness()
    client = harness.connect()                 # a FakeChannel with a RouterSession on it
    client.feed(hello())                       # a plain list, an autobahn message, or bytes
    assert type(client.received[0]) is wamp.Welcome
    harness.advance(10)                        # the fake clock: timers fire
    assert client.channel.closed == (1008, "session not established in time")

What the router sends is recorded as autobahn message objects (each one also serialized, as a real channel would,
so a message the client's serializer cannot encode is refused UNENCODABLE here too).
"""

from __future__ import annotations

import itertools
import random
import tomllib
from collections.abc import Iterable
from pathlib import Path
from types import MappingProxyType
from typing import Any

from autobahn.wamp import message as wamp
from twisted.internet import task
from zope.interface import implementer

from wampgate.config import parse
from wampgate.core.decisions import DecisionCache
from wampgate.core.lockout import AuthFailures
from wampgate.core.realm import Realm
from wampgate.counters import Counters
from wampgate.interfaces import PluginContext
from wampgate.model import TransportInfo
from wampgate.tx.authorization import ChainLink, RealmAuthorization
from wampgate.tx.channel import UNENCODABLE, IChannel, OutgoingBudget
from wampgate.tx.effect_runner import EffectRunner
from wampgate.tx.flow import FlowControl
from wampgate.tx.router_caller import RouterCaller
from wampgate.tx.runtime import AuthMethod, ListenerRuntime, RealmRuntime, RouterContext
from wampgate.tx.service import authenticators, flow_plugins, realm_authorization
from wampgate.tx.session import RouterSession
from wampgate.tx.traffic import Traffic
from wampgate.tx.wire import make_codecs
from tests.support.raw import hello
from tests.support.router import REALM1_ANONYMOUS_ALL, listener

LISTENER = "harness"
DEFAULT_CONFIG = listener(LISTENER) + REALM1_ANONYMOUS_ALL
FIRST_ID = 1000  # session and subscription ids count up from here: tests can predict them


def marshal(messages: Iterable[wamp.Message]) -> list[list]:
    """Messages as the lists they are on the wire, for exact comparisons."""
    return [message.marshal() for message in messages]


@implementer(IChannel)
class FakeChannel:
    """An IChannel that records what the session asks of its transport.

    `sent`: every message written, in order (autobahn objects); `reading`: each pause_reading / resume_reading that
    changed something, as ("pause" | "resume", reason); `paused_for`: the reasons reading is paused now; `closed`: (code, reason) of the
    first close_transport; `aborted`: whether abort_transport was called. Once closed or aborted nothing more is
    written (as WebSocket and RawSocket do); what the session still tried to send is kept in `after_close`.
    A test makes the next sends fail by appending refusals (TOO_LARGE, CONGESTED, ...) to `refusals`."""

    def __init__(self, serializer: Any, clock: Any, limits: Any, *, kind: str = "websocket",
                 listener_name: str = LISTENER, peer: str = "tcp4:127.0.0.1:50000"):
        self.serializer = serializer
        self.budget = OutgoingBudget(self, limits.max_outgoing_buffer, clock=clock,
                                     stall_timeout=limits.outgoing_stall_timeout)
        self.session: RouterSession | None = None
        self.kind = kind
        self.sent: list[wamp.Message] = []
        self.after_close: list[wamp.Message] = []
        self.reading: list[tuple[str, str]] = []
        self.paused_for: set[str] = set()
        self.closed: tuple[int, str | None] | None = None
        self.aborted = False
        self.refusals: list[str] = []
        self._info = TransportInfo(listener=listener_name, kind=kind, peer=peer, is_secure=False,
                                   serializer=serializer.SERIALIZER_ID)

    # -- IChannel

    def send_message(self, msg: wamp.Message) -> str | None:
        if self.gone:
            self.after_close.append(msg)
            return None
        if self.refusals:
            return self.refusals.pop(0)
        try:
            msg.serialize(self.serializer._serializer)
        except Exception:
            return UNENCODABLE
        self.sent.append(msg)
        return None

    def pause_reading(self, reason: str) -> None:
        if reason not in self.paused_for:
            self.reading.append(("pause", reason))
            self.paused_for.add(reason)

    def resume_reading(self, reason: str) -> None:
        """As BudgetedChannel: a reason that does not hold is ignored (and not recorded)."""
        if reason in self.paused_for:
            self.reading.append(("resume", reason))
            self.paused_for.discard(reason)

    def close_transport(self, code: int, reason: str | None) -> None:
        if self.closed is None and not self.aborted:
            self.closed = (code, reason)
        self._end_session()

    def abort_transport(self) -> None:
        self.aborted = True
        self._end_session()

    def transport_info(self) -> TransportInfo:
        return self._info

    # -- what the budget calls

    def stalled(self) -> None:
        self.abort_transport()

    # -- for tests

    @property
    def gone(self) -> bool:
        return self.closed is not None or self.aborted

    def lose(self) -> None:
        """The client went away (the transport's connectionLost)."""
        self.aborted = True
        self._end_session()

    def _end_session(self) -> None:
        """As BudgetedChannel does when the connection goes: the session is told once."""
        session, self.session = self.session, None
        if session is not None:
            session.on_close()


class Client:
    """One connection: what the test feeds in, and what the router sent back."""

    def __init__(self, channel: FakeChannel, session: RouterSession):
        self.channel = channel
        self.session = session
        self._seen = 0
        self._objects = channel.serializer._serializer

    @property
    def received(self) -> list[wamp.Message]:
        return self.channel.sent

    def take(self) -> list[wamp.Message]:
        """What the router sent since the last take() or feed()."""
        new = self.channel.sent[self._seen:]
        self._seen = len(self.channel.sent)
        return new

    def encode(self, message: wamp.Message | list | bytes) -> bytes:
        if isinstance(message, bytes):
            return message
        if isinstance(message, wamp.Message):
            return message.serialize(self._objects)
        return self._objects.serialize(message)

    def feed(self, *messages: wamp.Message | list | bytes) -> list[wamp.Message]:
        """Each message as one transport message, in order, as the transport would hand it over (also while
        reading is paused: bytes already read still arrive). Returns, like take(), what the router sent since the
        last look."""
        binary = self._objects.BINARY if self.channel.kind == "websocket" else None
        for message in messages:
            self.session.on_payload(self.encode(message), binary)
        return self.take()

    def join(self, realm: str = "realm1", **details: Any) -> wamp.Welcome:
        """HELLO, and the WELCOME it must get at once."""
        replies = self.feed(hello(realm, **details))
        assert len(replies) == 1 and type(replies[0]) is wamp.Welcome, marshal(replies)
        return replies[0]


class SessionHarness:
    """The router's realms, plugins and context on a fake clock; `connect()` opens sessions on it."""

    def __init__(self, toml_text: str = DEFAULT_CONFIG, *, base_dir: Path | None = None, seed: int = 1):
        self.clock = task.Clock()
        source = (base_dir or Path.cwd()) / "session-harness.toml"
        self.config = parse(tomllib.loads(toml_text), source)
        ids = itertools.count(FIRST_ID)
        self.new_id = lambda: next(ids)
        self.caller, self.context = self._build(random.Random(seed).choice)
        plugin_context = PluginContext(base_dir=source.parent, call=self.caller.call)
        problems: list[str] = []
        self.listeners = {
            config.name: ListenerRuntime(config=config, methods=authenticators(config, index, self.clock,
                                                                                plugin_context, problems))
            for index, config in enumerate(self.config.listeners)
        }
        assert not problems, problems
        self.codecs = make_codecs()
        self._peers = itertools.count(50000)

    def _build(self, choose) -> tuple[RouterCaller, RouterContext]:
        """router/tx/service.py make_service's realms, caller and context, on the fake clock."""
        config, clock, problems = self.config, self.clock, []
        traffic, counters = Traffic(), Counters()
        caller = RouterCaller({}, clock, self.new_id)
        realms = {}
        for index, (name, realm_config) in enumerate(config.realms.items()):
            core = Realm(name, realm_config.uri_policy, self.new_id, choose, limits=config.limits)
            realms[name] = RealmRuntime(
                core=core,
                config=realm_config,
                authorization=realm_authorization(config, index, realm_config, clock, caller.call, problems),
                effects=EffectRunner(core, clock, traffic),
            )
        caller.realms = MappingProxyType(realms)
        context = RouterContext(
            realms=MappingProxyType(realms),
            clock=clock,
            new_id=self.new_id,
            limits=config.limits,
            failures=AuthFailures(config.limits.lockout),
            flow=FlowControl(flow_plugins(config, clock, problems), clock=clock, counters=counters),
            counters=counters,
            traffic=traffic,
        )
        assert not problems, problems
        return caller, context

    # -- connections

    def connect(self, serializer: str = "json", *, kind: str = "websocket", listener_name: str | None = None) -> Client:
        """A new connection whose transport handshake is done: the session exists and its hello_timeout runs."""
        runtime = self.listener(listener_name)
        channel = FakeChannel(self.codecs.serializers[serializer], self.clock, self.context.limits, kind=kind,
                              listener_name=runtime.config.name, peer=f"tcp4:127.0.0.1:{next(self._peers)}")
        session = RouterSession(self.context, runtime, channel)
        channel.session = session
        return Client(channel, session)

    def joined(self, serializer: str = "json", **details: Any) -> Client:
        client = self.connect(serializer)
        client.join(**details)
        return client

    # -- the router's parts, for tests that replace or inspect one

    def listener(self, name: str | None = None) -> ListenerRuntime:
        return self.listeners[name or self.config.listeners[0].name]

    def realm(self, name: str = "realm1") -> RealmRuntime:
        return self.context.realms[name]

    def use_authenticator(self, authenticator: Any, *, realms: Iterable[str] | None = None,
                          listener_name: str | None = None) -> None:
        """Offer `authenticator` (under its authmethod) on the listener, before the configured ones."""
        runtime = self.listener(listener_name)
        method = AuthMethod(authenticator=authenticator, realms=frozenset(realms) if realms is not None else None)
        runtime.methods = {authenticator.authmethod: method, **runtime.methods}

    def use_authorizer(self, authorizer: Any, realm: str = "realm1") -> None:
        """`authorizer` becomes the realm's whole chain (behind a fresh decision cache), as a reload would."""
        limits = self.context.limits
        self.realm(realm).authorization = RealmAuthorization(
            [ChainLink(name="test", authorizer=authorizer, roles=None)], clock=self.clock,
            timeout=limits.authorization_timeout, cache=DecisionCache(limits.decision_cache_size))

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)
