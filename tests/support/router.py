"""A real router in the test process, listening on loopback ports the OS picks, built from TOML text."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, replace
from pathlib import Path

from twisted.internet import defer

from wampgate.config import load
from wampgate.tx.service import ListenerService, make_service

def realm_anonymous_all(*, slow_consumer: str | None = None) -> str:
    """realm1, where role anonymous may do everything (the tests' open realm), optionally with a slow-consumer
    policy."""
    policy = f'slow_consumer = "{slow_consumer}"\n' if slow_consumer else ""
    return f"""
[[realms]]
name = "realm1"
{policy}
[[realms.roles]]
name = "anonymous"

[[realms.roles.permissions]]
uri = ""
match = "prefix"
allow = ["publish", "subscribe", "call", "register"]
"""


REALM1_ANONYMOUS_ALL = realm_anonymous_all()


def listener(name: str, transports=("websocket", "rawsocket"), *, tls=None, extra: str = "",
             websocket: str = "", auth: str = 'anonymous = { role = "anonymous" }') -> str:
    """One [[listeners]] table on a loopback port chosen by the OS."""
    tls_table = ""
    if tls is not None:
        tls_table = (
            f'[listeners.tls]\ncertificate = "{tls.server_chain}"\nprivate_key = "{tls.server_key}"\n'
            f'client_ca = "{tls.ca}"\n'
        )
    transports_toml = ", ".join(f'"{t}"' for t in transports)
    return textwrap.dedent(f"""
        [[listeners]]
        name = "{name}"
        endpoint = "tcp:0:interface=127.0.0.1"
        transports = [{transports_toml}]
        {extra}
        [listeners.websocket]
        {websocket}
        {tls_table}
        [listeners.auth]
        {auth}
        """)


@dataclass
class RunningRouter:
    service: object
    config: object

    def listener(self, name: str) -> ListenerService:
        return self.service.getServiceNamed(name)

    def port(self, name: str) -> int:
        return self.listener(name).port.getHost().port

    def realm(self, name: str = "realm1"):
        """The core Realm, for asserting on internal tables."""
        return self.service.context.realms[name].core

    async def stop(self) -> None:
        """Shut the router down (briefly waiting for pending calls and GOODBYE replies), and drop every session
        still connected, so no test leaks into the next."""
        context = self.service.context
        context.limits = replace(context.limits, shutdown_timeout=0.2, goodbye_timeout=0.2)
        await defer.maybeDeferred(self.service.stopService)
        for realm in self.service.context.realms.values():
            for peer in list(realm.core.sessions.values()):
                peer.channel.close_transport(1001, "test over")


async def start_router(toml_text: str, directory: Path) -> RunningRouter:
    from twisted.internet import reactor

    path = directory / "router.toml"
    path.write_text(toml_text)
    config = load(path)
    service = make_service(config, reactor)
    service.privilegedStartService()
    service.startService()
    return RunningRouter(service=service, config=config)
