"""A third-party plugin written against wampgate.plugin alone, in a real router: the docs' one-class, one-method
flow-control plugin (tests/support/telemetry_cap.py), named by dotted path in a [[flow]] table after the built-in
`limits`. The offending side is a raw client (tests.support.raw), so every reply is seen as sent."""

from __future__ import annotations

import pytest
import pytest_twisted

from wampgate.config import ConfigError
from tests.support import raw
from tests.support.flow import RATE_LIMITED, REALM, count, exchange, joined_ws, main_listener, publish, round_trip
from tests.support.router import start_router

CAP = '[[flow]]\nplugin = "limits"\n\n[[flow]]\nplugin = "tests.support.telemetry_cap:TelemetryCap"\n'
BIG = "x" * 5000  # the PUBLISH is over TelemetryCap's 4 KiB


@pytest_twisted.ensureDeferred
async def test_one_method_flow_plugin_refuses_only_what_it_limits(tmp_path):
    """An acknowledged PUBLISH of 5000 bytes under `telemetry.` gets ERROR wampgate.error.rate_limited (the default
    URI of a reject) and is counted as flow_reject with the plugin's reason; a small one on the same topic and a big
    one elsewhere are PUBLISHED on the same connection, and a fresh client is served afterwards."""
    router = await start_router(CAP + main_listener() + REALM, tmp_path)
    tracker = raw.Tracker()
    try:
        client = await joined_ws(tracker, router.port("main"))
        replies = await exchange(client, [publish(1, "telemetry.temp", payload=BIG),
                                          publish(2, "telemetry.temp", payload="small"),
                                          publish(3, "com.example.topic", payload=BIG)])
        refused, *published = replies
        assert refused[:3] == [raw.ERROR, raw.PUBLISH, 1] and refused[4] == RATE_LIMITED, refused
        assert [reply[:2] for reply in published] == [[raw.PUBLISHED, 2], [raw.PUBLISHED, 3]], published
        assert count(router, "flow_reject", reason="telemetry_too_big", listener="main", realm="realm1") == 1
        await round_trip(router.port("main"))
    finally:
        tracker.close_all()
        await router.stop()


@pytest_twisted.ensureDeferred
async def test_flow_plugin_without_settings_stops_start_up_on_a_key(tmp_path):
    """A key in the table of a plugin built on FlowControl's constructor stops start-up with one line naming
    flow[1].<key>, the value redacted as for every unknown key."""
    text = CAP + "max_bytes = 4096\n" + main_listener() + REALM
    with pytest.raises(ConfigError) as caught:
        await start_router(text, tmp_path)
    assert caught.value.problems == ["flow[1].max_bytes = <redacted integer>: unknown key; TelemetryCap takes no "
                                     "settings"]
