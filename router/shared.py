"""State a plugin keeps for the life of the router process, handed to plugins in their PluginContext."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class SharedState:
    """One object per name, made on first use and the same for every plugin instance given this SharedState.

    Why: a reload (SIGHUP) builds new plugin instances, and each listener has its own, but some state must be one
    for the whole router and outlive a reload: the jwt replay cache (else a token is replayed on another listener or
    after a reload), the WAMP-CRA decoy secret (else decoy salts change while real ones do not). The router gives its
    authenticators the same SharedState for as long as it runs. Names are prefixed with the plugin's, e.g.
    "jwt.replay_cache". Not thread-safe: use it from the reactor thread (plugin construction is)."""

    def __init__(self) -> None:
        self._objects: dict[str, Any] = {}

    def get(self, name: str, make: Callable[[], Any]) -> Any:
        """The object stored under `name`, made with `make()` the first time it is asked for."""
        if name not in self._objects:
            self._objects[name] = make()
        return self._objects[name]
