"""Building the plugins a config names: each realm's authorizer chain and payload validators, each listener's
authenticators and the flow-control chain.

Start-up (`make_service`) and reload (`RouterService.reload`) build them the same way: every failure is collected as
one line naming the config path, so a bad plugin table stops start-up, or is refused by a reload with the running
plugins kept. `plugin_problems` builds them only to check them, for a config whose own tables were refused, so the
operator sees the plugin tables' problems in the same pass.

An authenticator may say which roles its table makes it assign, with an optional method `roles()` returning
{key path within its table: role name} (`{"principals[0].role": "user"}`), or None when its roles are decided at
login (a backend, a token's claim). Each role must be defined by a realm the method serves, else the config is
refused naming the key, the role and the roles those realms define: a typo would otherwise refuse every login.
Likewise an optional `realms()` returns {key path: realm} of the principals bound to a realm: each must be a realm
the method serves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from wampgate import loader
from wampgate.config import ListenerConfig, RealmConfig, RouterConfig
from wampgate.configreader import shown
from wampgate.core.decisions import DecisionCache
from wampgate.interfaces import (
    IAuthenticator,
    IAuthorizer,
    IFlowControl,
    IPayloadValidator,
    PluginConfigError,
    PluginContext,
)
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


def flow_plugins(config: RouterConfig, reactor: Any, problems: list[str], cluster: Any = None) -> list[Any]:
    """The flow-control chain; `cluster` (IClusterLimits) lets them hold per-authid limits across a cluster."""
    plugins = []
    for index, entry in enumerate(config.flow):
        path = f"flow[{index}]"
        context = PluginContext(base_dir=config.source.parent, cluster=cluster)
        try:
            plugins.append(loader.build(loader.FLOW, entry.plugin, IFlowControl, entry.options, reactor=reactor,
                                        context=context))
        except PluginConfigError as e:
            problems.append(e.line(path))
        except loader.PluginError as e:
            problems.append(f"{path}.plugin: {e}")
    return plugins


def realm_validators(config: RouterConfig, index: int, realm, reactor: Any, problems: list[str]) -> tuple[Any, ...]:
    """A realm's payload validators (IPayloadValidator), in the config's order; built, and so their schemas read and
    checked, at start-up and on every reload."""
    validators = []
    for position, entry in enumerate(realm.validators):
        path = f"realms[{index}].validators[{position}]"
        context = PluginContext(base_dir=config.source.parent, realm=realm)
        try:
            validators.append(loader.build(loader.VALIDATORS, entry.plugin, IPayloadValidator, entry.options,
                                           reactor=reactor, context=context))
        except PluginConfigError as e:
            problems.append(e.line(path))
        except loader.PluginError as e:
            problems.append(f"{path}.plugin: {e}")
    return tuple(validators)


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


def plugin_problems(config: RouterConfig, *, reactor: Any, realms_complete: bool = True) -> list[str]:
    """Every plugin the config names, built only to collect its problems (config.PluginCheck). Realm positions and
    role references are checked only when every realm table was read (`realms_complete`)."""
    problems: list[str] = []
    if realms_complete:
        for index, realm in enumerate(config.realms.values()):
            _authorizers(realm, index, reactor, config.source.parent, _no_calls, problems)
            realm_validators(config, index, realm, reactor, problems)
    flow_plugins(config, reactor, problems)
    context = PluginContext(base_dir=config.source.parent, call=_no_calls)
    for index, listener in enumerate(config.listeners):
        authenticators(listener, index, reactor, context, problems, config.realms if realms_complete else None)
    return problems


def _no_calls(*args: Any, **kwargs: Any) -> Any:
    """The `call` of plugins built only to be checked: they are never asked anything."""
    raise RuntimeError("plugins built for a config check make no calls")


def authenticators(
    listener: ListenerConfig, index: int, reactor: Any, plugin_context: PluginContext, problems: list[str],
    realms: Mapping[str, RealmConfig] | None = None,
) -> dict[str, AuthMethod]:
    """The listener's authenticators by authmethod; with `realms`, the roles each assigns are checked against the
    realms it serves."""
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
        if realms is not None:
            problems.extend(role_problems(path, plugin, method.realms, realms))
            problems.extend(realm_problems(path, plugin, method.realms, realms))
        served = frozenset(method.realms) if method.realms is not None else None
        if plugin.authmethod in methods:
            problems.append(f"{path}: a second authenticator for authmethod {plugin.authmethod!r} on this listener")
            continue
        methods[plugin.authmethod] = AuthMethod(authenticator=plugin, realms=served)
    return methods


def realm_problems(path: str, plugin: Any, served: tuple[str, ...] | None,
                   realms: Mapping[str, RealmConfig]) -> list[str]:
    """One line per principal's realm (the authenticator's optional `realms()`) that is not a realm the method at
    `path` serves: such a principal could never join."""
    realms_of, roles_of = getattr(plugin, "realms", None), getattr(plugin, "roles", None)
    references = (realms_of() if callable(realms_of) else None) or {}
    roles = (roles_of() if callable(roles_of) else None) or {}
    names = [name for name in (served if served is not None else realms) if name in realms]
    problems = []
    for key, realm in references.items():
        if realm not in names:
            problems.append(f"{path}.{key} = {shown(f'{path}.{key}', realm)}: not a realm this method serves; "
                            f"expected one of: {', '.join(names) or 'none'}")
            continue
        role = roles.get(key.rsplit(".", 1)[0] + ".role")  # the same principal's role
        if role is not None and role not in realms[realm].roles:
            problems.append(f"{path}.{key} = {shown(f'{path}.{key}', realm)}: realm {realm} does not define the "
                            f"principal's role {role!r}; defined roles: {', '.join(realms[realm].roles) or 'none'}")
    return problems


def role_problems(path: str, plugin: Any, served: tuple[str, ...] | None,
                  realms: Mapping[str, RealmConfig]) -> list[str]:
    """One line per role the authenticator at `path` may assign (its optional `roles()`) that no realm it serves
    defines. Served realms that do not exist are reported elsewhere (config.py); with none left, nothing to say."""
    roles_of = getattr(plugin, "roles", None)
    references = roles_of() if callable(roles_of) else None
    names = [name for name in (served if served is not None else realms) if name in realms]
    if not references or not names:
        return []
    defined = sorted({role for name in names for role in realms[name].roles})
    where = f"realm {names[0]}" if len(names) == 1 else f"realms {', '.join(names)}"
    return [
        f"{path}.{key} = {shown(f'{path}.{key}', role)}: undefined role; no realm this method serves ({where}) "
        f"defines it; defined roles: {', '.join(defined) or 'none'}"
        for key, role in references.items()
        if role not in defined
    ]
