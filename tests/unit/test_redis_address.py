"""The Redis URL of cluster mode: `redis://[USER:PASSWORD@]HOST[:PORT][/DB]`, `rediss://` for TLS. Every bad URL is
refused with a message saying what is wrong and what is allowed, and no message, repr or redacted form ever contains
the password."""

from __future__ import annotations

import pytest

from wampgate.tx.cluster.redis import RedisAddress

EXPECTED = '; expected "redis://[USER:PASSWORD@]HOST[:PORT][/DB]" or "rediss://..." (TLS)'


@pytest.mark.parametrize("url, host, port, db, password, username, tls", [
    ("redis://127.0.0.1:6390", "127.0.0.1", 6390, 0, None, None, False),
    ("redis://localhost", "localhost", 6379, 0, None, None, False),
    ("redis://redis.example.com:7000/3", "redis.example.com", 7000, 3, None, None, False),
    ("redis://h:1/", "h", 1, 0, None, None, False),
    ("redis://h:65535/0", "h", 65535, 0, None, None, False),
    ("rediss://h:6380", "h", 6380, 0, None, None, True),
    ("REDISS://h", "h", 6379, 0, None, None, True),
    ("redis://:s3cret@h:6390", "h", 6390, 0, "s3cret", None, False),
    ("redis://alice:s3cret@h:6390/2", "h", 6390, 2, "s3cret", "alice", False),
    ("redis://al%40ce:p%40ss%2Fw%3Ard@h", "h", 6379, 0, "p@ss/w:rd", "al@ce", False),
    ("redis://:p@ss@h", "h", 6379, 0, "p@ss", None, False),
    ("redis://:p/s?s#@h/4", "h", 6379, 4, "p/s?s#", None, False),
    ("redis://[::1]:6390/1", "::1", 6390, 1, None, None, False),
    ("redis://[::1]", "::1", 6379, 0, None, None, False),
])
def test_good_urls(url, host, port, db, password, username, tls):
    """Each part is read; the port defaults to 6379, the database to 0; user and password are percent-decoded; the
    last `@` ends the credentials; IPv6 addresses are given in brackets."""
    assert RedisAddress.parse(url) == RedisAddress(host=host, port=port, db=db, password=password,
                                                   username=username, tls=tls)


@pytest.mark.parametrize("url, problem", [
    ("http://h:6379", 'invalid Redis URL \'http://h:6379\': the scheme "http" is not supported (only "redis" and '
                      '"rediss")'),
    ("unix:///run/redis.sock", 'invalid Redis URL \'unix:///run/redis.sock\': the scheme "unix" is not supported '
                               '(only "redis" and "rediss")'),
    ("127.0.0.1:6379", "invalid Redis URL '127.0.0.1:6379': it has no scheme"),
    ("redis://", "invalid Redis URL 'redis://': the host is missing"),
    ("redis://:6379", "invalid Redis URL 'redis://:6379': the host is missing"),
    ("redis://h:0", 'invalid Redis URL \'redis://h:0\': the port "0" is not a number from 1 to 65535'),
    ("redis://h:65536", 'invalid Redis URL \'redis://h:65536\': the port "65536" is not a number from 1 to 65535'),
    ("redis://h:port", 'invalid Redis URL \'redis://h:port\': the port "port" is not a number from 1 to 65535'),
    ("redis://h:", 'invalid Redis URL \'redis://h:\': the port "" is not a number from 1 to 65535'),
    ("redis://h:-1", 'invalid Redis URL \'redis://h:-1\': the port "-1" is not a number from 1 to 65535'),
    ("redis://h/x", 'invalid Redis URL \'redis://h/x\': the database "x" is not a number from 0 to 2147483647'),
    ("redis://h/-1", 'invalid Redis URL \'redis://h/-1\': the database "-1" is not a number from 0 to 2147483647'),
    ("redis://h/1/2", 'invalid Redis URL \'redis://h/1/2\': the database "1/2" is not a number from 0 to '
                      '2147483647'),
    ("redis://h/2147483648", 'invalid Redis URL \'redis://h/2147483648\': the database "2147483648" is not a '
                             'number from 0 to 2147483647'),
    ("redis://h?db=1", "invalid Redis URL 'redis://h?db=1': query parameters are not supported (give the database "
                       "as /DB)"),
    ("redis://h#x", "invalid Redis URL 'redis://h#x': a fragment (\"#...\") is not allowed"),
    ("redis://ho_st", 'invalid Redis URL \'redis://ho_st\': the host "ho_st" is not a host name or address'),
    ("redis://-h", 'invalid Redis URL \'redis://-h\': the host "-h" is not a host name or address'),
    ("redis://[::1", "invalid Redis URL 'redis://[::1': the IPv6 address in [...] is malformed"),
    ("redis://[h]:1", "invalid Redis URL 'redis://[h]:1': the IPv6 address in [...] is malformed"),
    ("redis://[::1]x", "invalid Redis URL 'redis://[::1]x': only :PORT may follow the IPv6 address"),
    ("redis://::1:6379", 'invalid Redis URL \'redis://::1:6379\': the host is missing'),
    ("redis://alice@h", "invalid Redis URL 'redis://***@h': a user name needs a password (USER:PASSWORD@; a "
                        "password alone is :PASSWORD@)"),
    ("redis://alice:@h", "invalid Redis URL 'redis://***@h': the password is empty"),
    ("redis://:s3cret@h:bad", 'invalid Redis URL \'redis://***@h:bad\': the port "bad" is not a number from 1 to '
                              '65535'),
    (" redis://h", "invalid Redis URL ' redis://h': it contains white space or control characters"),
    ("redis://h :1", "invalid Redis URL 'redis://h :1': it contains white space or control characters"),
])
def test_bad_urls(url, problem):
    """A bad URL names its problem and the accepted forms; with credentials, everything up to the last `@` is
    hidden, so a password (even one that breaks the parsing) is never shown."""
    with pytest.raises(ValueError) as refused:
        RedisAddress.parse(url)
    assert str(refused.value) == problem + EXPECTED
    assert "s3" not in str(refused.value)


@pytest.mark.parametrize("url", ["", "   ", None, b"redis://h"])
def test_empty_or_not_text(url):
    """Nothing to parse: the message shows the expected form."""
    with pytest.raises(ValueError, match=r'^the Redis URL is empty; expected "redis://\[USER:PASSWORD@\]HOST'):
        RedisAddress.parse(url)


@pytest.mark.parametrize("url, redacted", [
    ("redis://h", "redis://h:6379"),
    ("rediss://alice:s3cret@h:7000/5", "rediss://alice:***@h:7000/5"),
    ("redis://:s3cret@[::1]:6390", "redis://:***@[::1]:6390"),
    ("redis://al%40ce:s3cret@h", "redis://al%40ce:***@h:6379"),
])
def test_redacted_and_repr_hide_the_password(url, redacted):
    """redacted() (and str()) is the URL with the password as ***; repr() leaves the password out."""
    address = RedisAddress.parse(url)
    assert address.redacted() == redacted
    assert str(address) == redacted
    assert "s3cret" not in repr(address)


def test_a_redacted_url_parses_back_to_the_same_place():
    """Host, port, database, user and TLS survive the round trip (only the password is replaced)."""
    address = RedisAddress.parse("rediss://al%40ce:pw@[::1]:7000/9")
    again = RedisAddress.parse(address.redacted())
    assert (again.host, again.port, again.db, again.username, again.tls) == ("::1", 7000, 9, "al@ce", True)
    assert again.password == "***"


def test_frozen():
    """A value: it cannot be changed after parsing."""
    address = RedisAddress.parse("redis://h")
    with pytest.raises(AttributeError):
        address.port = 1
