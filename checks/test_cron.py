"""§7 Post-deployment: "Check reconciliation cron job runs successfully at 2 AM UTC" — the cron
monitor that watches it exists with that schedule and timezone, the job's last run checked in ok
recently, and no discrepancy it reported is left open. "No open discrepancy issue" counts only
once the same issue search shows this run's own test event (or, without one, any issue of the
project): an empty answer that proves nothing is "could not check" (issue 13 item 5)."""

import pytest

from paymon.findings.production import reconciliation_findings
from fixtures.outcome import fail_with

pytestmark = pytest.mark.criterion("Reconciliation cron job runs at 2 AM UTC")


def test_reconciliation_monitor(sentry, spec):
    fail_with(sentry.cron_findings())


@pytest.mark.area("production-health")
def test_reconciliation_last_run(sentry_client, spec, positive_control):
    """The job ran: the monitor's newest check-in is `ok` and at most `cron.last_checkin_within`
    (26 h) old, and no "reconciliation discrepancies detected" issue is open (§6: each one is
    investigated and resolved). Reads monitor check-ins and issues; changes nothing."""
    fail_with(reconciliation_findings(sentry_client, spec, control=positive_control))
