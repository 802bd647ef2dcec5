"""§7 Post-deployment: "Check reconciliation cron job runs successfully at 2 AM UTC" — the cron
monitor that watches it exists with that schedule and timezone."""

import pytest

from paymon.report import fail_with

pytestmark = pytest.mark.criterion("Reconciliation cron job runs at 2 AM UTC")


def test_reconciliation_monitor(sentry, spec):
    fail_with(sentry.cron_findings())
