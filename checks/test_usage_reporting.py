"""§1 Alert 4 "Usage Reporting Failure Rate" and §4 Widget 5: PAYG usage reporting works. The share
of usage reports that failed over the last 24 h, from Sentry's events API (failures: events of
alert 4's filter; reports: the `usage-report` transactions, scaled by the traces sample rate), is
under the limit monitoring.yaml sets (`usage_reporting.max_failure_rate`). Read-only: against
production nothing is reported to Lemon Squeezy (that would bill a customer, reference §3)."""

import pytest

from paymon.findings.production import usage_reporting_findings
from fixtures.outcome import fail_with

pytestmark = pytest.mark.criterion("Usage reporting failure rate under the limit (§1 Alert 4)")


def test_usage_reporting_failure_rate(sentry_client, spec, record_property):
    findings, measured = usage_reporting_findings(sentry_client, spec)
    record_property("usage_failures", measured.failures)
    record_property("usage_reports_estimated", round(measured.reports, 1))
    record_property("usage_failure_rate", None if measured.rate is None else round(measured.rate, 4))
    fail_with(findings)
