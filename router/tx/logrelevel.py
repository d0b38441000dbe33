"""Autobahn's lines about ordinary client mistakes, at the level an operator needs them.

The router logs what a client did wrong at `info` (it is the client's business, and such lines draw on the log
budget); warnings are for the router's own problems. Autobahn's WebSocket protocol logs a few client mistakes at
`warn` through its txaio logger (namespace `autobahn.…`, e.g. `autobahn.twisted.websocket.WebSocketServerProtocol`):
a browser page from a refused Origin, a plain HTTP GET on the WebSocket port (426), a client that stopped answering
pings, a frame that breaks the protocol. `Relevel` runs first in the observer chain and lowers exactly those lines,
recognised by namespace and format string (their text is autobahn's, so a change of wording in a new autobahn
release shows up as a warn line again, never as a lost error):

- `dropping connection to peer {peer} with abort={abort}: {reason}` (warn) -> info: it names the peer and the
  reason (`Forbidden`, `HTTP Upgrade header missing`, `WebSocket ping timeout ...`);
- `failing WebSocket connection (code={code}): "{reason}"` (warn) -> info: a protocol violation, an oversized message;
- `failing WebSocket opening handshake ('{reason}')` (info) -> debug, so dropped: the `dropping connection` line
  that follows says the same and names the peer;
- `Auto ping/pong: received non-pending pong` (warn) -> debug, so dropped: RFC 6455 5.5.3 allows an unsolicited pong.

Only ever lowered: a line already at or below its level here is left as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from twisted.logger import ILogObserver, LogLevel
from zope.interface import implementer

NAMESPACE = "autobahn."
LOWERED: Mapping[str, LogLevel] = MappingProxyType({
    "dropping connection to peer {peer} with abort={abort}: {reason}": LogLevel.info,
    'failing WebSocket connection (code={code}): "{reason}"': LogLevel.info,
    "failing WebSocket opening handshake ('{reason}')": LogLevel.debug,
    "Auto ping/pong: received non-pending pong": LogLevel.debug,
})
_LEVELS = frozenset(LogLevel.iterconstants())


@implementer(ILogObserver)
class Relevel:
    """Passes every event to `observer`; the client-mistake lines of the table at the lower level (a copy: other
    observers of the same event see it unchanged)."""

    def __init__(self, observer: Callable[[Mapping[str, Any]], None], *,
                 lowered: Mapping[str, LogLevel] = LOWERED, namespace: str = NAMESPACE):
        self._observer = observer
        self._lowered = lowered
        self._namespace = namespace

    def __call__(self, event: Mapping[str, Any]) -> None:
        self._observer(self.relevelled(event))

    def relevelled(self, event: Mapping[str, Any]) -> Mapping[str, Any]:
        form = event.get("log_format")
        target = self._lowered.get(form) if type(form) is str else None
        if target is None or not str(event.get("log_namespace") or "").startswith(self._namespace):
            return event
        level = event.get("log_level")
        if level in _LEVELS and level <= target:
            return event
        return {**event, "log_level": target}
