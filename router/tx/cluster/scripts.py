"""The cluster's Redis keys and the Lua scripts that change them atomically.

Keys (realm names and URIs never hold whitespace, so a newline separates the parts of an index entry):
  wg:node:{node}            liveness, expires unless the node renews it (node_timeout)
  wg:nodes                  set: every node that announced itself
  wg:{realm}:sess           hash: session id -> JSON [node, session details]
  wg:{realm}:reg:{match}:{uri}  hash: "{node}\\0{session}" -> JSON {invoke, features, authid, authrole}
  wg:{realm}:regkeys        set: the registration hashes of the realm (what a starting node loads)
  wg:node:{node}:index      set: "{realm}\\n{key}\\n{field}" of everything the node wrote (for the janitor)
"""

from __future__ import annotations

NODES = b"wg:nodes"
CTL_CHANNEL = b"wg:ctl"


def node_key(node: str) -> bytes:
    return f"wg:node:{node}".encode()


def node_index(node: str) -> bytes:
    return f"wg:node:{node}:index".encode()


def inbox(node: str) -> bytes:
    return f"wg:n:{node}".encode()


def sessions_key(realm: str) -> bytes:
    return f"wg:{realm}:sess".encode()


def registration_key(realm: str, uri: str, match: str) -> bytes:
    return f"wg:{realm}:reg:{match}:{uri}".encode()


def registration_keys(realm: str) -> bytes:
    return f"wg:{realm}:regkeys".encode()


# KEYS: registration hash, the realm's regkeys set, the node's index. ARGV: field, invoke policy, value, realm.
# Answers nil when the claim holds, else why not (the dealer's own wording for the same conflicts).
CLAIM = """
local entries = redis.call('HGETALL', KEYS[1])
for i = 1, #entries, 2 do
  if entries[i] ~= ARGV[1] then
    local invoke = cjson.decode(entries[i + 1])['invoke']
    if invoke ~= ARGV[2] then
      return "procedure already registered with invoke policy '" .. invoke .. "'; this request asked for '" .. ARGV[2] .. "'"
    end
    if invoke == 'single' then
      return 'procedure already registered'
    end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
redis.call('SADD', KEYS[2], KEYS[1])
redis.call('SADD', KEYS[3], ARGV[4] .. '\\n' .. KEYS[1] .. '\\n' .. ARGV[1])
return false
"""

# KEYS: registration hash, the realm's regkeys set, the node's index. ARGV: field, realm.
RELEASE = """
redis.call('HDEL', KEYS[1], ARGV[1])
if redis.call('HLEN', KEYS[1]) == 0 then
  redis.call('SREM', KEYS[2], KEYS[1])
end
redis.call('SREM', KEYS[3], ARGV[2] .. '\\n' .. KEYS[1] .. '\\n' .. ARGV[1])
return 1
"""

# KEYS: wg:nodes. ARGV: this node's name. Removes what every node whose liveness key expired wrote, and answers
# those nodes' names; atomic, so each gone node is reported by exactly one janitor.
JANITOR = """
local gone = {}
for _, node in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if node ~= ARGV[1] and redis.call('EXISTS', 'wg:node:' .. node) == 0 then
    local index = 'wg:node:' .. node .. ':index'
    for _, entry in ipairs(redis.call('SMEMBERS', index)) do
      local a = string.find(entry, '\\n', 1, true)
      local b = string.find(entry, '\\n', a + 1, true)
      local realm = string.sub(entry, 1, a - 1)
      local key = string.sub(entry, a + 1, b - 1)
      local field = string.sub(entry, b + 1)
      redis.call('HDEL', key, field)
      if key ~= 'wg:' .. realm .. ':sess' and redis.call('HLEN', key) == 0 then
        redis.call('SREM', 'wg:' .. realm .. ':regkeys', key)
      end
    end
    redis.call('DEL', index)
    redis.call('SREM', KEYS[1], node)
    table.insert(gone, node)
  end
end
return gone
"""
