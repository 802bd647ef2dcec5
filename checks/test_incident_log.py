"""§1 alerts 3 and 5, action "Create incident log entry": every alert that declares
`incident_log: sentry` in monitoring.yaml is one whose firings Sentry records as incidents (a metric
alert or metric monitor; an issue alert keeps no incident log), and that log is readable.
"""

import time

import pytest

from fixtures.outcome import fail_with


def pytest_generate_tests(metafunc):
    if "incident_log_alert" in metafunc.fixturenames:
        from fixtures.plugin import SPEC_KEY

        spec = metafunc.config.stash[SPEC_KEY]
        alerts = [a for a in spec.alerts if a.incident_log]
        metafunc.parametrize("incident_log_alert", alerts, ids=[a.name for a in alerts])


@pytest.mark.criterion("All 6 Sentry alert rules configured")
def test_alert_creates_incident_log_entry(incident_log_alert, sentry, sentry_client, record_property):
    from paymon.findings.incident_log import incident_log

    actual = sentry.alert(incident_log_alert.name)
    if actual is None:
        fail_with(sentry.alert_findings(incident_log_alert))
    findings, entries = incident_log(incident_log_alert, actual, sentry_client, sentry.project["id"], time.time())
    if entries is not None:
        record_property("incident_log_entries_30d", len(entries))
    fail_with(findings)
