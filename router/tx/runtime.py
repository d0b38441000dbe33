"""What a session is handed: the router's realms, plugins, clock and id source, built once from the config."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from wampgate.config import LimitsConfig, ListenerConfig, RealmConfig
from wampgate.core.lockout import AuthFailures
from wampgate.counters import Counters
from wampgate.core.realm import Realm
from wampgate.tx.authorization import RealmAuthorization
from wampgate.tx.effect_runner import EffectRunner
from wampgate.tx.flow import FlowControl
from wampgate.tx.traffic import Traffic


@dataclass
class RealmRuntime:
    """One realm's core and the parts a reload may replace (its config, authorizer chain and payload validators)."""

    core: Realm
    config: RealmConfig
    authorization: RealmAuthorization
    effects: EffectRunner
    validators: tuple = ()  # IPayloadValidator providers, asked in order after authorization allows a request


@dataclass(frozen=True)
class AuthMethod:
    authenticator: Any  # IAuthenticator
    realms: frozenset[str] | None  # None: every realm

    def serves(self, realm: str) -> bool:
        return self.realms is None or realm in self.realms


@dataclass
class ListenerRuntime:
    """One listener's config and authenticators; a reload swaps `methods` for new handshakes, and its TLS side
    (wampgate.tx.tls.ServerTls, None without TLS) re-reads the certificate files."""

    config: ListenerConfig
    methods: Mapping[str, AuthMethod]  # in the config's order
    tls: Any = None
    index: int | None = None  # position in the config's [[listeners]]: log lines name keys as listeners[index]
    bridges: Mapping[str, Any] = field(default_factory=dict)  # name -> wampgate.tx.bridge_http.Bridge


@dataclass
class RouterContext:
    """Shared by every session; mutable only where a reload (SIGHUP) replaces what it may replace."""

    realms: Mapping[str, RealmRuntime]
    clock: Any  # IReactorTime
    new_id: Callable[[], int]  # random ids in [1, 2**53]
    limits: LimitsConfig
    failures: AuthFailures  # authentication failures, router-wide
    flow: FlowControl
    counters: Counters
    traffic: Traffic = field(default_factory=Traffic)
