"""[listeners.websocket] max_fragments: its default, an accepted value, and the one-line refusal of bad values."""

from __future__ import annotations

import pytest

from wampgate.config import ConfigError, load

LISTENER = """
[[listeners]]
endpoint = "tcp:0:interface=127.0.0.1"
[listeners.websocket]
{keys}
[listeners.auth.anonymous]
role = "anonymous"

[[realms]]
name = "realm1"
[[realms.roles]]
name = "anonymous"
"""


def load_with(tmp_path, keys: str):
    path = tmp_path / "router.toml"
    path.write_text(LISTENER.format(keys=keys), encoding="utf-8")
    return load(path)


def test_max_fragments_defaults_to_64(tmp_path):
    """Without the key a WebSocket message may have 64 frames."""
    assert load_with(tmp_path, "").listeners[0].websocket.max_fragments == 64


def test_max_fragments_is_read(tmp_path):
    """max_fragments = 1 (unfragmented messages only) is accepted as written."""
    assert load_with(tmp_path, "max_fragments = 1").listeners[0].websocket.max_fragments == 1


@pytest.mark.parametrize("value", ["0", "65537", '"many"', "true", "2.5"])
def test_bad_max_fragments_is_one_line_naming_key_value_and_range(tmp_path, value):
    """0, more than 65,536, a string, a boolean or a float give exactly one problem naming the key, the value as
    written and the allowed range."""
    with pytest.raises(ConfigError) as raised:
        load_with(tmp_path, f"max_fragments = {value}")
    assert raised.value.problems == [
        f"listeners[0].websocket.max_fragments = {value}: expected an integer from 1 to 65536"]
