"""§3 and §5: Sentry's Slack and PagerDuty integrations are installed and active."""

import pytest

from fixtures.outcome import fail_with


@pytest.mark.criterion("Sentry Slack integration configured")
def test_slack_integration_active(sentry, spec):
    fail_with(sentry.slack_integration_findings())


@pytest.mark.criterion("PagerDuty integration tested (if applicable)")
def test_pagerduty_integration_active(sentry, spec):
    fail_with(sentry.pagerduty_integration_findings())
