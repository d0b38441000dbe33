"""A plain HTTP client for the bridge tests (http.client in a thread, bounded by a socket timeout), and Crossbar's
request signing as its client libraries do it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import json
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

from twisted.internet import threads

TIMEOUT = 10.0


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)


def _request(port: int, method: str, path: str, body: bytes, headers: dict) -> Response:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        connection.request(method, path, body=body, headers=headers)
        reply = connection.getresponse()
        return Response(reply.status, {k.lower(): v for k, v in reply.getheaders()}, reply.read())
    finally:
        connection.close()


def request(port: int, path: str, body: bytes | dict = b"", *, method: str = "POST", headers: dict | None = None,
            query: dict | None = None, content_type: str | None = "application/json"):
    """A Deferred firing with the Response."""
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    sent = {"Content-Type": content_type} if content_type else {}
    sent.update(headers or {})
    target = path + ("?" + urlencode(query) if query else "")
    return threads.deferToThread(_request, port, method, target, body, sent)


def timestamp(offset: float = 0.0) -> str:
    return (datetime.now(timezone.utc) + timedelta(seconds=offset)).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def signed_query(key: str, secret: str, body: bytes, *, seq: int = 1, nonce: int | None = None,
                 when: str | None = None) -> dict:
    """The query parameters Crossbar's signed-request clients send."""
    nonce = secrets.randbelow(2**53) if nonce is None else nonce
    when = when or timestamp()
    mac = hmac.new(secret.encode(), key.encode() + when.encode() + str(seq).encode() + str(nonce).encode() + body,
                   hashlib.sha256)
    return {"key": key, "timestamp": when, "seq": seq, "nonce": nonce,
            "signature": base64.urlsafe_b64encode(mac.digest()).decode()}
