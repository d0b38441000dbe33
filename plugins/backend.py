"""The `backend_authrole` / `backend_authid` keys of the `dynamic` authenticator and authorizer: who may answer the
procedure the router calls. Whoever answers decides who joins and what they may do, so the router's call goes only to
an exact registration whose every callee has this role (and this authid, when one is set)."""

from __future__ import annotations

from collections.abc import Mapping

from wampgate.plugin import PluginConfigError

KEYS = ("backend_authrole", "backend_authid")


def backend_identity(config: Mapping, roles: Mapping | None = None) -> tuple[str, str | None]:
    """(authrole, authid or None) from the plugin's table; `roles`, when known, are those of the realm where the
    procedure is registered, and the role must be one of them."""
    if "backend_authrole" not in config:
        raise PluginConfigError("backend_authrole", "missing; expected the role of the backend sessions that register "
                                "the procedure (the router calls only an exact registration by that role)")
    authrole = config["backend_authrole"]
    if not isinstance(authrole, str) or not authrole:
        raise PluginConfigError("backend_authrole", "expected the role of the backend sessions that register the "
                                "procedure", authrole)
    if roles is not None and authrole not in roles:
        known = ", ".join(sorted(roles)) or "none"
        raise PluginConfigError("backend_authrole", f"expected a role of the realm where the procedure is "
                                f"registered: one of {known}", authrole)
    authid = config.get("backend_authid")
    if authid is not None and (not isinstance(authid, str) or not authid):
        raise PluginConfigError("backend_authid", "expected the authid of the one backend session allowed to answer",
                                authid)
    return authrole, authid
