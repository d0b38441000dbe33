"""What travels between cluster nodes through Redis: MessagePack arrays, one kind per message, versioned by kind.

Nodes trust each other (Redis is protected by ACLs, TLS and a private network): an envelope's identities come from
the node that authenticated the session, never from a client. Payloads pass through as the client sent them,
passthrough payloads included.
"""

from __future__ import annotations

from typing import Any

import msgpack
from autobahn.wamp import message as wamp

from wampgate.core.passthru import PassthruPayload, passthru_of

# kinds: the first element of every envelope
EVENT = 1
INVOCATION = 2
RESULT = 3
ERROR = 4
INTERRUPT = 5
JOIN = 10
LEAVE = 11
REGISTER = 12
UNREGISTER = 13
NODE_GONE = 14
KILL = 15
SYNC = 16

# How many items each kind has: anything else is refused as a BadEnvelope before a field is read.
LENGTHS = {EVENT: 15, INVOCATION: 18, RESULT: 11, ERROR: 11, INTERRUPT: 6, JOIN: 4, LEAVE: 4, REGISTER: 8,
           UNREGISTER: 8, NODE_GONE: 4, KILL: 6, SYNC: 3}

_packer_options = {"use_bin_type": True}
_PASSTHRU = "\0ppt"  # args of the spec's passthrough form travel as [_PASSTHRU, bytes, [[option, value], ...]]


class BadEnvelope(ValueError):
    """An envelope this node cannot read (another version, or damaged): it is counted and dropped."""


def pack(items: list) -> bytes:
    return msgpack.packb(items, **_packer_options)


def unpack(data: bytes) -> list:
    try:
        items = msgpack.unpackb(data, raw=False, strict_map_key=False, use_list=True)
    except Exception as e:
        raise BadEnvelope(f"not MessagePack: {e}") from None
    if type(items) is not list or not items or type(items[0]) is not int:
        raise BadEnvelope("not an envelope")
    expected = LENGTHS.get(items[0])
    if expected is None:
        raise BadEnvelope(f"unknown kind {items[0]}")
    if len(items) != expected or type(items[1]) is not str:
        raise BadEnvelope(f"kind {items[0]} with {len(items)} items, expected {expected} starting with the node")
    return items


def _args_out(args: Any) -> Any:
    payload = passthru_of(args)
    if payload is None:
        return args
    return [_PASSTHRU, bytes(payload), [list(option) for option in payload.options]]


def _args_in(args: Any) -> Any:
    if type(args) is list and len(args) == 3 and args[0] == _PASSTHRU:
        return [PassthruPayload(args[1], tuple((name, value) for name, value in args[2]))]
    return args


def _filters(publish: wamp.Publish) -> list | None:
    filters = [publish.exclude, publish.eligible, publish.exclude_authid, publish.eligible_authid,
               publish.exclude_authrole, publish.eligible_authrole]
    return filters if any(f is not None for f in filters) else None


def event(node: str, realm: str, publisher: Any, publish: wamp.Publish, publication: int, disclose: bool) -> bytes:
    return pack([EVENT, node, realm, publish.topic, publication,
                 [publisher.session_id, publisher.authid, publisher.authrole], disclose,
                 _args_out(publish.args), publish.kwargs, publish.payload, publish.enc_algo, publish.enc_key,
                 publish.enc_serializer, _filters(publish), publish.exclude_me is not False])


def publish_of(items: list) -> tuple[wamp.Publish, int, list, bool]:
    """(the PUBLISH as the receiving broker reads it, publication id, publisher [session, authid, authrole],
    disclose) from an EVENT envelope."""
    (_, _, _, topic, publication, publisher, disclose, args, kwargs, payload, enc_algo, enc_key, enc_serializer,
     filters, exclude_me) = items
    exclude = eligible = exclude_authid = eligible_authid = exclude_authrole = eligible_authrole = None
    if filters is not None:
        exclude, eligible, exclude_authid, eligible_authid, exclude_authrole, eligible_authrole = filters
    msg = wamp.Publish(1, topic, args=_args_in(args), kwargs=kwargs, payload=payload, enc_algo=enc_algo, enc_key=enc_key,
                       enc_serializer=enc_serializer, exclude_me=exclude_me, exclude=exclude, eligible=eligible,
                       exclude_authid=exclude_authid, eligible_authid=eligible_authid,
                       exclude_authrole=exclude_authrole, eligible_authrole=eligible_authrole)
    return msg, publication, publisher, disclose


def invocation(node: str, realm: str, rid: int, callee: int, caller: Any, disclose: bool, uri: str, match: str,
               msg: wamp.Invocation, procedure: str) -> bytes:
    return pack([INVOCATION, node, realm, rid, callee, [caller.session_id, caller.authid, caller.authrole],
                 disclose, uri, match, procedure, _args_out(msg.args), msg.kwargs, msg.payload, msg.enc_algo, msg.enc_key,
                 msg.enc_serializer, msg.timeout, bool(msg.receive_progress)])


def call_of(items: list) -> tuple:
    """(rid, callee session, caller [session, authid, authrole], disclose, uri, match, CALL) from an INVOCATION."""
    (_, _, _, rid, callee, caller, disclose, uri, match, procedure, args, kwargs, payload, enc_algo, enc_key,
     enc_serializer, timeout, receive_progress) = items
    msg = wamp.Call(rid, procedure, args=_args_in(args), kwargs=kwargs, payload=payload, enc_algo=enc_algo, enc_key=enc_key,
                    enc_serializer=enc_serializer, timeout=timeout, receive_progress=receive_progress or None)
    return rid, callee, caller, disclose, uri, match, msg


def result(node: str, realm: str, rid: int, msg: wamp.Result) -> bytes:
    return pack([RESULT, node, realm, rid, _args_out(msg.args), msg.kwargs, msg.payload, msg.enc_algo, msg.enc_key,
                 msg.enc_serializer, bool(msg.progress)])


def yield_of(items: list, invocation_id: int) -> wamp.Yield:
    _, _, _, _, args, kwargs, payload, enc_algo, enc_key, enc_serializer, progress = items
    return wamp.Yield(invocation_id, args=_args_in(args), kwargs=kwargs, payload=payload, enc_algo=enc_algo, enc_key=enc_key,
                      enc_serializer=enc_serializer, progress=progress or None)


def error(node: str, realm: str, rid: int, msg: wamp.Error) -> bytes:
    return pack([ERROR, node, realm, rid, msg.error, _args_out(msg.args), msg.kwargs, msg.payload, msg.enc_algo, msg.enc_key,
                 msg.enc_serializer])


def invocation_error_of(items: list, invocation_id: int) -> wamp.Error:
    _, _, _, _, uri, args, kwargs, payload, enc_algo, enc_key, enc_serializer = items
    return wamp.Error(wamp.Invocation.MESSAGE_TYPE, invocation_id, uri, args=_args_in(args), kwargs=kwargs, payload=payload,
                      enc_algo=enc_algo, enc_key=enc_key, enc_serializer=enc_serializer)


def interrupt(node: str, realm: str, rid: int, caller: int, mode: str | None) -> bytes:
    return pack([INTERRUPT, node, realm, rid, caller, mode])


def join(node: str, realm: str, details: dict) -> bytes:
    return pack([JOIN, node, realm, details])


def leave(node: str, realm: str, session: int) -> bytes:
    return pack([LEAVE, node, realm, session])


def callee(node: str, realm: str, held: bool, session: int, uri: str, match: str, invoke: str,
           features: dict) -> bytes:
    return pack([REGISTER if held else UNREGISTER, node, realm, session, uri, match, invoke, features])


def node_gone(node: str, gone: str) -> bytes:
    return pack([NODE_GONE, node, "", gone])


def sync(node: str, token: bytes) -> bytes:
    return pack([SYNC, node, token])


def kill(node: str, realm: str, session: int, reason: str, message: str | None) -> bytes:
    return pack([KILL, node, realm, session, reason, message])
