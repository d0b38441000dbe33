"""The converter's entry point: a Crossbar node config (the parsed config.json) to Wampgate TOML. The controller is
ignored (Wampgate has none); each router worker's transports become listeners and its realms realms; other workers
and components become notes (they run as programs of their own)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wampgate.crossbar.auth import AuthConverter
from wampgate.crossbar.notes import Notes, mapping
from wampgate.crossbar.realms import realm_table
from wampgate.crossbar.toml import Table, document
from wampgate.crossbar.transports import listener_tables


@dataclass(frozen=True)
class Conversion:
    toml: str
    notes: tuple[str, ...]


class NotACrossbarConfig(ValueError):
    """The input is not a Crossbar node config: nothing to convert."""


def convert(config: Any, source: Path, *, hash_secret: Callable[[str], str]) -> Conversion:
    """`source` is the config file: relative paths in it (TLS files, static directories) resolve against its
    directory, as Crossbar resolves them against the node directory."""
    if not isinstance(config, Mapping) or not isinstance(config.get("workers", []), list):
        raise NotACrossbarConfig("expected a JSON object with a `workers` list (a Crossbar node config)")
    notes = Notes()
    convert_auth = AuthConverter(notes, hash_secret)
    listeners: list[Table] = []
    realms: list[Table] = []
    realm_names: set[str] = set()
    for index, worker in enumerate(config.get("workers", [])):
        where = f"workers[{index}]"
        worker = mapping(worker)
        if worker.get("type") != "router":
            notes.add(f"{where}.type", f"a {worker.get('type')!r} worker: run its components as programs of their own "
                                       "that connect like any client")
            continue
        for t_index, transport in enumerate(worker.get("transports") or []):
            table = listener_tables(mapping(transport), f"{where}.transports[{t_index}]", len(listeners), source.parent,
                                    notes, convert_auth)
            if table is not None:
                listeners.append(table)
        for r_index, realm in enumerate(worker.get("realms") or []):
            table = realm_table(mapping(realm), f"{where}.realms[{r_index}]", notes)
            if table is not None and table.keys[0][1] in realm_names:
                notes.add(f"{where}.realms[{r_index}]", "a realm of this name is already converted: left out")
            elif table is not None:
                realm_names.add(table.keys[0][1])
                realms.append(table)
        if worker.get("components"):
            notes.add(f"{where}.components", "components run as programs of their own and authenticate like any "
                                             "client (give each a principal)")
        notes.unknown(where, worker, ("type", "transports", "realms", "components", "id", "options"),
                      "no such router worker option in Wampgate")
    notes.unknown("", config, ("workers", "controller", "version", "$schema"), "no such node option in Wampgate")
    _unique_names(listeners)
    title = [f"Converted from {source} by `wampgate import-crossbar`.",
             "Check it with `wampgate check-config FILE`; every key is in docs/configuration.md."]
    return Conversion(document(title, notes, listeners + realms), tuple(notes))


def _unique_names(listeners: list[Table]) -> None:
    """Listener names must be unique: a repeated Crossbar transport id gets a suffix."""
    seen: set[str] = set()
    for table in listeners:
        index = next(i for i, (key, _, _) in enumerate(table.keys) if key == "name")
        name = base = table.keys[index][1]
        count = 1
        while name in seen:
            count += 1
            name = f"{base}-{count}"
        seen.add(name)
        table.keys[index] = ("name", name, table.keys[index][2])
