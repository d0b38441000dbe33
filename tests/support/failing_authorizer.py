"""Misbehaving authorizers for the integration tests, named in a realm config by dotted path, e.g.
`plugin = "tests.support.failing_authorizer:Raising"`. Each fails in its own way; the router must deny and go on."""

from __future__ import annotations

from zope.interface import implementer

from wampgate.interfaces import IAuthorizer, PluginConfigError


class _Base:
    def __init__(self, config, *, reactor):
        for key in config:
            raise PluginConfigError(key, "unknown key; the failing test authorizers take none", config[key])


@implementer(IAuthorizer)
class Raising(_Base):
    """Raises from authorize()."""

    def authorize(self, request):
        raise RuntimeError(f"test authorizer failure on {request.uri}")


@implementer(IAuthorizer)
class RaisingCoroutine(_Base):
    """A coroutine that raises."""

    async def authorize(self, request):
        raise RuntimeError(f"test authorizer failure on {request.uri}")


@implementer(IAuthorizer)
class WrongAnswer(_Base):
    """Answers True instead of a Decision (a deny: only an explicit Decision(allow=True) allows)."""

    def authorize(self, request):
        return True
