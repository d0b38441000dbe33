"""The public API for plugin authors: the one module an authenticator, authorizer or flow-control plugin imports
from the router. Everything else under `router/` may change without notice; a test (tests/unit/test_layers.py)
keeps the built-in plugins and the example to this module.

What is here:
- the contracts (`IAuthenticator`, `IAuthorizer`, `IFlowControl`, `IPayloadValidator`), the factory's `PluginContext` and
  `PluginConfigError`;
- the frozen values plugins are handed and return (`AuthRequest`, `Identity`, `Challenge`, `Denied`,
  `AuthorizationRequest`, `Decision`, `FlowSession`, `Verdict`, ...);
- `Table`, the strict reader of a plugin's config table;
- URI validation and matching (`UriPolicy`, `UriIndex`, `pattern_matches`, `specificity`, `is_reserved`), token
  buckets and window quotas, the router's scrypt secret hashes, WAMP-SCRAM's stored credentials (`scramkeys`), and
  `SharedState`;
- base classes whose hooks have harmless defaults, so a plugin writes only what it decides: `FlowControl` admits
  everything, `OneStepAuthenticator` refuses the AUTHENTICATE a method without a challenge never asked for,
  `PayloadValidator` finds every payload valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from zope.interface import implementer

from wampgate.buckets import TokenBucket, WindowQuota
from wampgate.interfaces import (
    IAuthenticator,
    IAuthorizer,
    IClusterLimits,
    IFlowControl,
    IPayloadValidator,
    ISessionCookies,
    PluginConfigError,
    PluginContext,
)
from wampgate.model import (
    ADMIT,
    ADMIT_KIND,
    DENY,
    DISCONNECT_KIND,
    DROP_KIND,
    REJECT_KIND,
    AuthorizationRequest,
    AuthRequest,
    Challenge,
    ClientCertificate,
    Decision,
    Denied,
    FlowSession,
    Identity,
    TransportInfo,
    Verdict,
)
from wampgate import scramkeys
from wampgate.passwords import check_hash_format, dummy_hash, hash_secret, verify_secret
from wampgate.plugintable import Table
from wampgate.shared import SharedState
from wampgate.uri import (
    EXACT,
    MATCH_POLICIES,
    PREFIX,
    WILDCARD,
    TooManyWildcardShapes,
    UriIndex,
    UriPolicy,
    is_reserved,
    pattern_matches,
    specificity,
)

__all__ = [
    # contracts
    "IAuthenticator", "IAuthorizer", "IClusterLimits", "IFlowControl", "IPayloadValidator", "ISessionCookies", "PluginContext",
    "PluginConfigError",
    # frozen values
    "AuthRequest", "TransportInfo", "ClientCertificate", "Identity", "Challenge", "Denied",
    "AuthorizationRequest", "Decision", "DENY",
    "FlowSession", "Verdict", "ADMIT", "ADMIT_KIND", "REJECT_KIND", "DROP_KIND", "DISCONNECT_KIND",
    # config
    "Table",
    # URIs
    "UriPolicy", "UriIndex", "TooManyWildcardShapes", "pattern_matches", "specificity", "is_reserved",
    "EXACT", "PREFIX", "WILDCARD", "MATCH_POLICIES",
    # tools
    "TokenBucket", "WindowQuota", "SharedState",
    "hash_secret", "verify_secret", "check_hash_format", "dummy_hash", "scramkeys",
    "ROUTER_CALL_ERRORS", "call_failed_in_router",
    # base classes
    "FlowControl", "OneStepAuthenticator", "PayloadValidator",
]

# The errors `PluginContext.call` fails with when the router stopped the call, not the backend: no such realm, no
# trusted registration, the timeout, the callee gone (and every `wampgate.` URI: the router's own limits). The same
# URIs as wampgate.core.errors, which plugins do not import; tests/unit/test_plugin_api.py pins that they agree.
ROUTER_CALL_ERRORS = frozenset(
    {"wamp.error.no_such_realm", "wamp.error.no_such_procedure", "wamp.error.timeout", "wamp.error.canceled"}
)


def call_failed_in_router(error: str) -> bool:
    """Whether a `context.call` error URI is of the router's making rather than the backend's answer: a backend that
    is down or slow is no client's fault, so an authenticator does not count it as a failed login."""
    return error in ROUTER_CALL_ERRORS or error.startswith("wampgate.")


_NO_SETTINGS: Mapping[str, Any] = MappingProxyType({})


@implementer(IFlowControl)
class FlowControl:
    """Admits every connection, session and message: subclass it and override only the hooks your policy limits
    (wsproto's Extension pattern). A limit on one thing is one class with one method, `admit`.

    This constructor is the plugin factory of a plugin without settings: any key in its table stops start-up.
    A plugin with settings writes its own `__init__(self, config, *, reactor, context)` and reads them with `Table`.
    """

    def __init__(self, config: Mapping[str, Any] = _NO_SETTINGS, *, reactor: Any = None,
                 context: PluginContext | None = None):
        for key in config:
            raise PluginConfigError(key, f"unknown key; {type(self).__name__} takes no settings", config[key])

    def admit_connection(self, peer: str, listener: str, now: float) -> Verdict:
        return ADMIT

    def connection_closed(self, peer: str, listener: str) -> None:
        return None

    def admit_session(self, session: FlowSession, now: float) -> Verdict:
        return ADMIT

    def admit(self, session: FlowSession, action: str, uri: str, size: int, now: float) -> Verdict:
        return ADMIT

    def session_closed(self, session: FlowSession) -> None:
        return None


@implementer(IAuthenticator)
class OneStepAuthenticator:
    """For a method that decides in `begin` and never sends a CHALLENGE: a subclass sets `authmethod` and writes
    `begin`; an AUTHENTICATE is refused here, since no challenge asked for it. Start-up still checks (verifyObject)
    that the subclass has both `authmethod` and `begin`."""

    def finish(self, request: AuthRequest, challenge: Challenge, signature: str, extra: Mapping[str, Any]) -> Denied:
        return Denied(f"{self.authmethod} authentication has no challenge")


@implementer(IPayloadValidator)
class PayloadValidator:
    """Finds every payload valid: subclass it and override `validate` for the actions and URIs your policy checks.
    Like `FlowControl`, this constructor is the factory of a plugin without settings."""

    def __init__(self, config: Mapping[str, Any] = _NO_SETTINGS, *, reactor: Any = None,
                 context: PluginContext | None = None):
        for key in config:
            raise PluginConfigError(key, f"unknown key; {type(self).__name__} takes no settings", config[key])

    def validate(self, action: str, uri: str, args: list | None, kwargs: dict | None) -> str | None:
        return None
