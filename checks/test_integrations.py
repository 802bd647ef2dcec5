"""§3 and §5: Sentry's Slack and PagerDuty integrations are installed and active; §5 and §8: the
PagerDuty service can page a person, at the urgency §5 maps each Sentry severity to, escalating as
§8's escalation path says.

The synthetic delivery check (checks/test_delivery.py) proves Sentry -> PagerDuty at low urgency,
paging nobody; the checks here add what it cannot: that a real (high-urgency) page would reach
someone. The real page is the drill's (checks/test_drill.py).
"""

import pytest

from fixtures.outcome import fail_with


@pytest.mark.criterion("Sentry Slack integration configured")
def test_slack_integration_active(sentry, spec):
    fail_with(sentry.slack_integration_findings())


@pytest.mark.criterion("PagerDuty integration tested (if applicable)")
def test_pagerduty_integration_active(sentry, spec):
    fail_with(sentry.pagerduty_integration_findings())


@pytest.mark.criterion("PagerDuty integration tested (if applicable)")
def test_pagerduty_service_ready(pagerduty_client, pagerduty_service):
    """Enabled, not in maintenance, with an escalation policy: else no incident opens at all."""
    from paymon.findings.readiness import service_state_findings

    fail_with(service_state_findings(pagerduty_service, pagerduty_client))


@pytest.mark.criterion("PagerDuty integration tested (if applicable)")
def test_page_would_reach_on_call(pagerduty_client, pagerduty_service, spec):
    """Someone is on call at level 1, the urgency rule makes a Sentry critical high, and that
    person has high-urgency notification rules."""
    from paymon.findings.readiness import page_reach_findings

    critical = (spec.integrations.pagerduty.urgency if spec.integrations.pagerduty else {}).get("critical", "high")
    fail_with(page_reach_findings(pagerduty_service, pagerduty_client, critical))


@pytest.mark.criterion("Map Sentry alert severity to PagerDuty urgency (§5)")
def test_pagerduty_urgency_per_severity(pagerduty_service, spec, record_property):
    """Every alert that acts on PagerDuty gets the urgency §5 gives its severity (monitoring.yaml
    integrations.pagerduty.urgency says precisely what passes)."""
    from paymon.findings.readiness import urgency_findings

    findings, notes = urgency_findings(spec, pagerduty_service)
    if notes:
        record_property("pagerduty_urgency_not_exercised", "; ".join(notes))
    fail_with(findings)


@pytest.mark.criterion("Escalation path (§8)")
def test_pagerduty_escalation_path(pagerduty_client, pagerduty_service, spec):
    """The service's escalation policy: the on-call engineer first, the engineering lead after an
    hour (monitoring.yaml integrations.pagerduty.escalation)."""
    from paymon.findings.readiness import escalation_findings

    levels = spec.integrations.pagerduty.escalation if spec.integrations.pagerduty else []
    if not levels:
        pytest.fail("could not check: monitoring.yaml declares no integrations.pagerduty.escalation", pytrace=False)
    fail_with(escalation_findings(levels, pagerduty_service, pagerduty_client))
