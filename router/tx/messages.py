"""WAMP messages the router sends that autobahn's classes cannot express as they are."""

from __future__ import annotations

from autobahn.wamp import message as wamp


class RateLimited(wamp.Error):
    """ERROR for a request refused by flow control, with `retry_after` (seconds) in its details, and in its kwargs
    for clients whose libraries do not show ERROR details."""

    __slots__ = ("retry_after",)

    def __init__(self, request_type: int, request: int, error: str, retry_after: float):
        text = f"rate limit exceeded; retry after {retry_after} s"
        super().__init__(request_type, request, error, args=[text], kwargs={"retry_after": retry_after})
        self.retry_after = retry_after

    def marshal(self):
        raw = super().marshal()
        raw[3] = {**raw[3], "retry_after": self.retry_after}
        return raw
