"""A third-party flow-control plugin in miniature: docs/writing-plugins.md ("Writing a flow-control plugin") quotes it
(a test keeps the two equal) and tests/integration/test_plugin_api.py runs it in a real router, named by dotted path:
`plugin = "tests.support.telemetry_cap:TelemetryCap"`."""

from wampgate.plugin import ADMIT, REJECT_KIND, FlowControl, Verdict


class TelemetryCap(FlowControl):
    """Refuses a publish of more than 4 KiB under `telemetry.`; FlowControl admits everything else."""

    def admit(self, session, action, uri, size, now):
        if action == "publish" and size > 4096 and uri.startswith("telemetry."):
            return Verdict(REJECT_KIND, "telemetry_too_big")
        return ADMIT
