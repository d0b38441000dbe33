"""The HTTP bridge's request authentication, without a network: Crossbar's signature construction, the timestamp
window, the bounded nonce store, bearer tokens and the JSON media type check."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from wampgate.configpaths import BridgeConfig
from wampgate.tx.bridge_auth import (
    AuthRefused,
    NonceStore,
    SignatureCheck,
    bearer_token,
    parse_timestamp,
    signature,
)
from wampgate.tx.bridge_http import _check_json_media_type

SECRET = "a-bridge-secret-of-32-bytes-long"
CONFIG = BridgeConfig(name="b", realm="realm1", authid="backend", authrole="backend", key="app", secret=SECRET,
                      timestamp_window=60.0, max_nonces=100)
NOW = parse_timestamp("2026-12-06T12:00:00.000Z")
BODY = b'{"topic": "com.example.x"}'


def query(key=b"app", when=b"2026-12-06T12:00:00.000Z", seq=b"1", nonce=b"42", secret=SECRET, body=BODY) -> dict:
    mac = hmac.new(secret.encode(), key + when + seq + nonce + body, hashlib.sha256).digest()
    return {b"key": [key], b"timestamp": [when], b"seq": [seq], b"nonce": [nonce],
            b"signature": [base64.urlsafe_b64encode(mac)]}


def test_signature_is_crossbars_construction():
    """base64url (padded) of HMAC-SHA256(secret, key | timestamp | seq | nonce | body), the parts as sent."""
    expected = base64.urlsafe_b64encode(hmac.new(b"s" * 16, b"k" + b"t" + b"1" + b"2" + b"body", hashlib.sha256)
                                        .digest())
    assert signature(b"s" * 16, b"k", b"t", b"1", b"2", b"body") == expected


def test_a_good_signature_gives_the_bridge_identity():
    identity = SignatureCheck(CONFIG).verify(query(), BODY, NOW)
    assert (identity.authid, identity.authrole, identity.authmethod) == ("backend", "backend", "http-signature")


@pytest.mark.parametrize("changes,status", [
    ({"secret": "another-secret-of-enough-length!"}, 401),
    ({"key": b"other"}, 401),
    ({"body": BODY + b" "}, 401),
    ({"when": b"2026-12-06T12:01:01.000Z"}, 401),
    ({"when": b"2026-12-06T11:58:59Z"}, 401),
    ({"when": b"12:00"}, 400),
    ({"seq": b"-1"}, 400),
    ({"nonce": b"x"}, 400),
])
def test_bad_signed_requests(changes, status):
    """Wrong secret, key or body, a timestamp outside the window: 401; malformed parameters: 400."""
    with pytest.raises(AuthRefused) as refused:
        SignatureCheck(CONFIG).verify(query(**changes), BODY, NOW)
    assert refused.value.status == status


def test_timestamp_inside_the_window_with_or_without_fraction():
    check = SignatureCheck(CONFIG)
    check.verify(query(when=b"2026-12-06T12:00:59Z", nonce=b"1"), BODY, NOW)
    check.verify(query(when=b"2026-12-06T11:59:01.999999Z", nonce=b"2"), BODY, NOW)


def test_missing_or_repeated_parameter_is_400():
    for name in (b"key", b"timestamp", b"seq", b"nonce", b"signature"):
        q = query()
        del q[name]
        with pytest.raises(AuthRefused) as refused:
            SignatureCheck(CONFIG).verify(q, BODY, NOW)
        assert refused.value.status == 400
    q = query()
    q[b"nonce"] = [b"1", b"2"]
    with pytest.raises(AuthRefused):
        SignatureCheck(CONFIG).verify(q, BODY, NOW)


def test_a_nonce_is_accepted_once_per_key():
    """The same signed request twice: the replay is 401, even with another seq (a different signature)."""
    check = SignatureCheck(CONFIG)
    check.verify(query(), BODY, NOW)
    with pytest.raises(AuthRefused) as refused:
        check.verify(query(), BODY, NOW)
    assert refused.value.status == 401
    with pytest.raises(AuthRefused):
        check.verify(query(seq=b"2"), BODY, NOW)


def test_a_wrong_signature_does_not_use_up_the_nonce():
    """A forged request with someone's nonce does not burn it: only verified requests are remembered."""
    check = SignatureCheck(CONFIG)
    with pytest.raises(AuthRefused):
        check.verify(query(secret="another-secret-of-enough-length!"), BODY, NOW)
    check.verify(query(), BODY, NOW)


def test_nonce_store_forgets_expired_and_refuses_when_full():
    """Nonces are kept until their expiry; a full store answers 503 rather than forget one still valid."""
    store = NonceStore(2)
    store.admit(b"k", b"1", expires=10.0, now=0.0)
    store.admit(b"k", b"2", expires=20.0, now=0.0)
    with pytest.raises(AuthRefused) as refused:
        store.admit(b"k", b"3", expires=20.0, now=5.0)
    assert refused.value.status == 503
    store.admit(b"k", b"3", expires=30.0, now=10.0)  # "1" expired at 10
    assert len(store) == 2
    with pytest.raises(AuthRefused) as refused:
        store.admit(b"k", b"2", expires=30.0, now=11.0)
    assert refused.value.status == 401


def test_nonces_are_per_key():
    store = NonceStore(10)
    store.admit(b"a", b"1", expires=10.0, now=0.0)
    store.admit(b"b", b"1", expires=10.0, now=0.0)
    store.admit(b"a1", b"", expires=10.0, now=0.0)  # length-prefixed: ("a", "1") and ("a1", "") differ


@pytest.mark.parametrize("header,token", [
    (None, None), (b"", None), (b"Bearer abc.def.ghi", "abc.def.ghi"), (b"bearer  tok ", "tok"), (b"Basic xyz", None),
    (b"Bearer", None),
])
def test_bearer_token(header, token):
    assert bearer_token(header) == token


@pytest.mark.parametrize("content_type,ok", [
    (None, True), (b"application/json", True), (b"application/json; charset=utf-8", True),
    (b"Application/JSON;charset=UTF8", True), (b"application/json; charset=latin-1", False), (b"text/plain", False),
    (b"application/x-www-form-urlencoded", False),
])
def test_json_media_type(content_type, ok):
    """Publish and call take application/json in UTF-8, or no Content-Type (as Crossbar); anything else is 415."""
    if ok:
        _check_json_media_type(content_type)
    else:
        with pytest.raises(AuthRefused) as refused:
            _check_json_media_type(content_type)
        assert refused.value.status == 415
