"""§1 and §9: "All 6 Sentry alert rules configured" — each alert exists, is enabled and means what
the guide says, whichever generation of Sentry's alerting API holds it."""

import pytest

from fixtures.outcome import fail_with

pytestmark = pytest.mark.criterion("All 6 Sentry alert rules configured")


def test_alert_configured(alert_spec, sentry, spec):
    """Exists, enabled, and every declared field (environment, events, filter, threshold, window,
    actions) matches."""
    fail_with(sentry.alert_findings(alert_spec))


def test_alert_semantics(alert_spec, sentry, spec):
    """The rule really does what the guide means: counted across events, a legal window, the
    events a message-based alert needs, "any occurrence" as > 0, e-mail reaching the mailbox."""
    fail_with(sentry.semantic_findings(alert_spec))


@pytest.mark.criterion("Configure Notification Routing (§3)")
def test_alert_severity_routing(routed_alert_spec, sentry, spec):
    """§3: Fatal/Critical reach #payments-alerts, on-call and PagerDuty; High reaches
    #payments-alerts; Medium/Low never post to Slack. (The synthetic checks are exempt: they must
    not e-mail on-call.)"""
    fail_with(sentry.routing_findings(routed_alert_spec))
