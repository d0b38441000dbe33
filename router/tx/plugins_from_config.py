"""Building the plugins a config names: each realm's authorizer chain, each listener's authenticators and the
flow-control chain.

Start-up (`make_service`) and reload (`RouterService.reload`) build them the same way: every failure is collected as
one line naming the config path, so a bad plugin table stops start-up, or is refused by a reload with the running
plugins kept.
"""

from __future__ import annotations

from typing import Any

from wampgate import loader
from wampgate.config import ListenerConfig, RouterConfig
from wampgate.core.decisions import DecisionCache
from wampgate.interfaces import IAuthenticator, IAuthorizer, IFlowControl, PluginConfigError, PluginContext
from wampgate.tx.authorization import ChainLink, RealmAuthorization
from wampgate.tx.runtime import AuthMethod


def realm_authorization(config: RouterConfig, index: int, realm_config, reactor: Any, call, problems: list[str]):
    """A realm's authorizer chain behind a fresh decision cache."""
    chain = _authorizers(realm_config, index, reactor, config.source.parent, call, problems)
    return RealmAuthorization(
        chain,
        clock=reactor,
        timeout=config.limits.authorization_timeout,
        cache=DecisionCache(config.limits.decision_cache_size),
    )


def flow_plugins(config: RouterConfig, reactor: Any, problems: list[str]) -> list[Any]:
    plugins = []
    for index, entry in enumerate(config.flow):
        path = f"flow[{index}]"
        context = PluginContext(base_dir=config.source.parent)
        try:
            plugins.append(loader.build(loader.FLOW, entry.plugin, IFlowControl, entry.options, reactor=reactor,
                                        context=context))
        except PluginConfigError as e:
            problems.append(e.line(path))
        except loader.PluginError as e:
            problems.append(f"{path}.plugin: {e}")
    return plugins


def _authorizers(realm, index: int, reactor: Any, base_dir, call, problems: list[str]) -> list[ChainLink]:
    chain = []
    for position, entry in enumerate(realm.authorizers):
        path = f"realms[{index}].authorizers[{position}]"
        context = PluginContext(base_dir=base_dir, call=call, realm=realm)
        try:
            plugin = loader.build(loader.AUTHORIZERS, entry.plugin, IAuthorizer, entry.options, reactor=reactor,
                                  context=context)
        except PluginConfigError as e:
            problems.append(e.line(path))
            continue
        except loader.PluginError as e:
            problems.append(f"{path}.plugin: {e}")
            continue
        roles = frozenset(entry.roles) if entry.roles is not None else None
        chain.append(ChainLink(name=entry.plugin, authorizer=plugin, roles=roles))
    return chain


def authenticators(
    listener: ListenerConfig, index: int, reactor: Any, plugin_context: PluginContext, problems: list[str]
) -> dict[str, AuthMethod]:
    methods: dict[str, AuthMethod] = {}
    for method in listener.auth:
        path = f"listeners[{index}].auth.{method.method}"
        try:
            plugin = loader.build(
                loader.AUTHENTICATORS, method.method, IAuthenticator, method.options, reactor=reactor,
                context=plugin_context,
            )
        except PluginConfigError as e:
            problems.append(e.line(path))
            continue
        except loader.PluginError as e:
            problems.append(f"{path}: {e}")
            continue
        realms = frozenset(method.realms) if method.realms is not None else None
        if plugin.authmethod in methods:
            problems.append(f"{path}: a second authenticator for authmethod {plugin.authmethod!r} on this listener")
            continue
        methods[plugin.authmethod] = AuthMethod(authenticator=plugin, realms=realms)
    return methods
