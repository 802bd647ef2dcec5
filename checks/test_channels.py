"""§3 "Create Dedicated Slack Channels" and §5: the places alerts land are ready to receive them.

§9: "#payments-alerts and #security-alerts channels created"; the PagerDuty service can page.
"""

import pytest

from fixtures.outcome import fail_with


@pytest.mark.criterion("#payments-alerts and #security-alerts channels created")
def test_slack_channel_ready(channel_spec, slack_reader, spec):
    """The channel exists, is not archived, and Sentry's bot is a member (else: not_in_channel)."""
    from paymon.findings.readiness import slack_channel_findings

    fail_with(slack_channel_findings(channel_spec.name, slack_reader, spec.integrations.slack.sentry_bot_user))


@pytest.mark.criterion("PagerDuty integration tested (if applicable)")
def test_pagerduty_service_ready(pagerduty_client, spec):
    """Enabled, not in maintenance, with an escalation policy, someone on call now, and an
    urgency rule that makes a critical Sentry alert high urgency."""
    from paymon.findings.readiness import pagerduty_service_findings

    fail_with(pagerduty_service_findings(spec.delivery.pagerduty, pagerduty_client))
