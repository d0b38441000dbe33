"""Which engine channel carries which events between cluster nodes: pure naming, no I/O.

A node listens (Redis SUBSCRIBE) only for what its own sessions subscribed to, and never with one engine pattern per
WAMP pattern (a Redis server pays for every pattern held on every PUBLISH; see docs/cluster.md):

* an exact subscription to T listens on its topic channel `wg:{realm}:t:{T}`;
* a prefix or wildcard subscription listens on one *bucket* channel: `wg:{realm}:p:{first K components}` when its
  URI starts with at least K whole literal components, else the realm's catch-all `wg:{realm}:a`. The node then
  matches locally, with the same matcher as on one node.

A publication of T is sent to T's topic channel, to the bucket of T's first K components (when T has that many),
and to the catch-all. Each local subscription is fed from exactly one of those, so none receives an event twice;
and all of one node's publications travel on one connection to one Redis, so each publisher's order holds.
"""

from __future__ import annotations

from wampgate.uri import EXACT, PREFIX


def topic_channel(realm: str, topic: str) -> bytes:
    return f"wg:{realm}:t:{topic}".encode()


def bucket_channel(realm: str, bucket: str | None) -> bytes:
    """The channel of a bucket; None is the realm's catch-all."""
    return f"wg:{realm}:a".encode() if bucket is None else f"wg:{realm}:p:{bucket}".encode()


def pattern_bucket(uri: str, match: str, depth: int) -> str | None:
    """The bucket a prefix or wildcard subscription listens on: its first `depth` whole literal components, or None
    (the catch-all) when it has fewer. A prefix's last component may be partial ("com.a.b" also matches
    "com.a.bc"), so it counts only when the prefix ends with a dot; a wildcard's literal components end at its
    first empty one."""
    parts = uri.split(".")
    if match == PREFIX:
        whole = parts[:-1]
    else:
        whole = []
        for part in parts:
            if not part:
                break
            whole.append(part)
    if len(whole) < depth:
        return None
    return ".".join(whole[:depth])


def interest_channel(realm: str, uri: str, match: str, depth: int) -> bytes:
    """The one channel a local (uri, match) subscription is fed from."""
    if match == EXACT:
        return topic_channel(realm, uri)
    return bucket_channel(realm, pattern_bucket(uri, match, depth))


def publication_channels(realm: str, topic: str, depth: int) -> tuple[bytes, ...]:
    """Where a publication of `topic` is sent: its topic channel, its bucket (when it has `depth` components) and
    the catch-all."""
    parts = topic.split(".")
    if len(parts) >= depth:
        bucket = bucket_channel(realm, ".".join(parts[:depth]))
        return topic_channel(realm, topic), bucket, bucket_channel(realm, None)
    return topic_channel(realm, topic), bucket_channel(realm, None)
