"""§3 "Create Dedicated Slack Channels" and §5: the places alerts land are ready to receive them.

§9: "#payments-alerts and #security-alerts channels created": each channel exists, is not archived,
has Sentry's bot, and a purpose saying what §3 gives it; whoever is on call now (PagerDuty, level 1)
is a member of #payments-alerts (§3 "Members: ... on-call rotation"), matched to Slack by e-mail.
(The PagerDuty service's readiness: checks/test_integrations.py.)
"""

import pytest

from fixtures.outcome import fail_with


@pytest.mark.criterion("#payments-alerts and #security-alerts channels created")
def test_slack_channel_ready(channel_spec, slack_reader, spec):
    """The channel exists, is not archived, and Sentry's bot is a member (else: not_in_channel)."""
    from paymon.findings.readiness import slack_channel_findings

    fail_with(slack_channel_findings(channel_spec.name, slack_reader, spec.integrations.slack.sentry_bot_user))


@pytest.mark.criterion("#payments-alerts and #security-alerts channels created")
def test_slack_channel_purpose(channel_spec, slack_reader, spec, request):
    """The channel's purpose says what §3 gives it (monitoring.yaml `purpose`). A purpose the guide
    does not give (#exec-alerts') is paymon's interpretation: a mismatch warns, unless required."""
    from paymon.findings.channels import purpose_findings
    from fixtures.outcome import fail_or_warn_interpretation

    if not channel_spec.purpose:
        return
    fail_or_warn_interpretation(request, spec, f"channels[{channel_spec.name}].purpose",
                                purpose_findings(channel_spec, slack_reader))


@pytest.mark.criterion("#payments-alerts and #security-alerts channels created")
def test_on_call_engineer_is_in_the_channel(on_call_channel_spec, slack_reader, pagerduty_client, spec):
    """§3 "Members: ... on-call rotation": whoever is on call now (PagerDuty, level 1 of the
    service's escalation policy) is a member, matched to Slack by e-mail (users.lookupByEmail)."""
    from paymon.findings.channels import on_call_member_findings

    fail_with(on_call_member_findings(on_call_channel_spec.name, slack_reader, pagerduty_client,
                                      spec.delivery.pagerduty.service))


def pytest_generate_tests(metafunc):
    if "on_call_channel_spec" in metafunc.fixturenames:
        from fixtures.plugin import SPEC_KEY

        channels = [c for c in metafunc.config.stash[SPEC_KEY].channels if c.on_call_members]
        metafunc.parametrize("on_call_channel_spec", channels, ids=[c.name for c in channels])
