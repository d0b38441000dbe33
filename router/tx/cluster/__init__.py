"""Several Wampgate nodes serving the same realms through a Redis-protocol server (docs/cluster.md): the Redis
client (address, resp, link, redis) and the cluster logic on top of it (node, realm_link, envelope, scripts)."""
