"""Several Wampgate nodes serving the same realms through a Redis-protocol server (docs/cluster.md)."""
