"""§2 "Performance Alert Thresholds": a p95 alert per payment endpoint, warning and critical."""

import pytest

from paymon.report import fail_with

pytestmark = pytest.mark.criterion("Performance monitoring enabled for payment endpoints")


def test_performance_alert(budget, sentry):
    """The endpoint's p95 alert exists, is enabled, watches this transaction in production and
    fires at the warning and the critical budget with the declared actions."""
    fail_with(sentry.performance_findings(budget))
