"""Plugin name -> object: an entry point name in the plugin's group, or a "package.module:Object" path."""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Mapping
from importlib.metadata import entry_points
from typing import Any

from zope.interface.exceptions import Invalid
from zope.interface.verify import verifyObject

from wampgate.interfaces import PluginConfigError, PluginContext

AUTHENTICATORS = "wampgate.authenticators"
AUTHORIZERS = "wampgate.authorizers"
FLOW = "wampgate.flow"
VALIDATORS = "wampgate.validators"


class PluginError(Exception):
    """A plugin cannot be found, built or verified; the message says which and why."""


def resolve(group: str, name: str) -> Any:
    """The plugin factory for `name`: an entry point in `group` first, else a dotted "module:Object" path."""
    for entry in entry_points(group=group):
        if entry.name == name:
            try:
                return entry.load()
            except Exception as e:
                raise PluginError(f"entry point {name!r} in {group} cannot be loaded: {type(e).__name__}: {e}") from None
    if ":" not in name:
        known = sorted(entry.name for entry in entry_points(group=group))
        raise PluginError(f"unknown plugin {name!r}; installed in {group}: {', '.join(known) or 'none'}")
    module_name, _, attribute = name.partition(":")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:
        raise PluginError(f"cannot import {module_name!r}: {type(e).__name__}: {e}") from None
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise PluginError(f"module {module_name!r} has no attribute {attribute!r}") from None


def _accepts_context(factory: Any) -> bool:
    try:
        parameters = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return False
    return "context" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def build(
    group: str, name: str, interface, config: Mapping[str, Any], *, reactor: Any, context: PluginContext | None = None
) -> Any:
    """Resolve, construct with its config table, and verify that the result provides `interface`."""
    factory = resolve(group, name)
    keywords = {"reactor": reactor}
    if context is not None and _accepts_context(factory):
        keywords["context"] = context
    try:
        plugin = factory(config, **keywords)
    except PluginConfigError:
        raise
    except Exception as e:
        raise PluginError(f"plugin {name!r} failed to start: {type(e).__name__}: {e}") from None
    try:
        verifyObject(interface, plugin)
    except Invalid as e:
        raise PluginError(f"plugin {name!r} does not implement {interface.__name__}: {e}") from None
    return plugin
