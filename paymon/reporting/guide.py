"""Where each guide criterion sits in the *Sentry Payment Monitoring Setup Guide*, and how bad a
failure of it is — the epic / feature / story and severity labels of the Allure report.

Epic = the phase of the guide's §7 checklist the criterion belongs to (Pre-Deployment,
Post-Deployment); feature = the guide section that specifies it; story = the criterion itself.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SECTIONS = {
    1: "Sentry Alert Rules Configuration",
    2: "Sentry Performance Monitoring",
    3: "Slack Integration Setup",
    4: "Payment Metrics Dashboard",
    5: "PagerDuty Integration",
    6: "Operations Runbook",
    7: "Monitoring Checklist",
    8: "Contact Information",
    9: "Verification Checklist",
}

PRE_DEPLOYMENT, POST_DEPLOYMENT = "Pre-Deployment", "Post-Deployment"
ONGOING = "Ongoing Maintenance"


@dataclass(frozen=True)
class Placement:
    epic: str
    section: int
    severity: str
    """Allure severity when the check is not about one alert (see alert_severity for those)."""

    @property
    def feature(self) -> str:
        return f"§{self.section} {SECTIONS.get(self.section, 'Other')}"


# The criteria paymon's checks name (their `criterion` marker), including those of the delivery
# drill. Severity: what is lost if the criterion silently stays broken. Without the Slack or
# PagerDuty integration no alert reaches anyone (blocker / critical); a dashboard is looked at,
# not relied on to wake someone (minor).
CRITERIA: dict[str, Placement] = {
    "All 6 Sentry alert rules configured": Placement(PRE_DEPLOYMENT, 1, "critical"),
    "Performance monitoring enabled for payment endpoints": Placement(PRE_DEPLOYMENT, 2, "normal"),
    "Configure Notification Routing (§3)": Placement(PRE_DEPLOYMENT, 3, "critical"),
    "Sentry Slack integration configured": Placement(PRE_DEPLOYMENT, 3, "blocker"),
    "#payments-alerts and #security-alerts channels created": Placement(PRE_DEPLOYMENT, 3, "normal"),
    "Slack notifications tested and working": Placement(PRE_DEPLOYMENT, 3, "critical"),
    "Test alerts delivered to Slack within 1 minute": Placement(PRE_DEPLOYMENT, 3, "critical"),
    "Payment dashboard created (Sentry or custom)": Placement(PRE_DEPLOYMENT, 4, "minor"),
    "Payment dashboard created and accessible": Placement(PRE_DEPLOYMENT, 4, "minor"),
    "PagerDuty integration tested (if applicable)": Placement(PRE_DEPLOYMENT, 5, "critical"),
    "On-call engineer confirmed PagerDuty page received": Placement(PRE_DEPLOYMENT, 5, "critical"),
    # §5's severity -> urgency map and §8's escalation path, read against the PagerDuty service.
    "Map Sentry alert severity to PagerDuty urgency (§5)": Placement(PRE_DEPLOYMENT, 5, "critical"),
    "Escalation path (§8)": Placement(PRE_DEPLOYMENT, 8, "critical"),
    "Operations runbook documented with response procedures": Placement(PRE_DEPLOYMENT, 6, "minor"),
    "Reconciliation cron job runs at 2 AM UTC": Placement(POST_DEPLOYMENT, 7, "normal"),
    # Test mode loses every payment's revenue (§6 "Test Mode in Production", alert 6: fatal).
    "Test mode not detected in production (§6)": Placement(PRE_DEPLOYMENT, 6, "blocker"),
    # A forged webhook accepted, or real ones rejected, corrupts subscriptions (§1 alerts 2 and 3).
    "Confirm webhook processing working correctly": Placement(POST_DEPLOYMENT, 7, "critical"),
    # Usage never reported is never billed (§1 alert 4, §6 "Usage Reporting Failure").
    "Usage reporting failure rate under the limit (§1 Alert 4)": Placement(POST_DEPLOYMENT, 1, "critical"),
    # The drill proves the six alerts themselves fire and reach everyone (§1, §3).
    "Alert drill: every action arrives": Placement(PRE_DEPLOYMENT, 1, "critical"),
    # The reviews (paymon.reviews; checks/test_reviews.py, run with --reviews on the schedule).
    "Verify no false positives from alert rules": Placement(POST_DEPLOYMENT, 7, "normal"),
    "Weekly review of payment failure trends": Placement(ONGOING, 7, "minor"),
    "Monthly review of alert rule effectiveness": Placement(ONGOING, 7, "critical"),
    "Quarterly review of performance thresholds": Placement(ONGOING, 7, "minor"),
    "Operations runbook reviewed by team": Placement(PRE_DEPLOYMENT, 6, "minor"),
    "Monitor alerts for first 24 hours (T+1hr, T+4hr, T+24hr)": Placement(POST_DEPLOYMENT, 7, "critical"),
    "Review payment dashboard metrics daily for first week": Placement(POST_DEPLOYMENT, 4, "minor"),
    "Update runbook as new issues discovered": Placement(ONGOING, 6, "minor"),
}

# The guide's checklists, line by line (§7 Pre-Deployment, Post-Deployment, Ongoing Maintenance;
# §9 Verification), each with the paymon criteria whose checks prove it. The verdict lists every
# line every run: judged by those checks, or "not covered" with the reason (no check exists, or this
# run's profile does not run it). A line named like a criterion proves itself.
CHECKLIST: dict[str, tuple[str, ...]] = {
    "All 6 Sentry alert rules configured": ("All 6 Sentry alert rules configured",),
    "Slack notifications tested and working": ("Slack notifications tested and working",
                                               "Test alerts delivered to Slack within 1 minute"),
    "Payment dashboard created and accessible": ("Payment dashboard created and accessible",
                                                 "Payment dashboard created (Sentry or custom)"),
    "Performance monitoring enabled for payment endpoints": ("Performance monitoring enabled for payment endpoints",),
    "PagerDuty integration tested (if applicable)": ("PagerDuty integration tested (if applicable)",),
    "Operations runbook reviewed by team": ("Operations runbook reviewed by team",),
    "Monitor alerts for first 24 hours (T+1hr, T+4hr, T+24hr)": (
        "Monitor alerts for first 24 hours (T+1hr, T+4hr, T+24hr)",),
    "Verify no false positives from alert rules": ("Verify no false positives from alert rules",),
    "Confirm webhook processing working correctly": ("Confirm webhook processing working correctly",),
    "Check reconciliation cron job runs successfully at 2 AM UTC": ("Reconciliation cron job runs at 2 AM UTC",),
    "Review payment dashboard metrics daily for first week": (
        "Review payment dashboard metrics daily for first week",),
    "Weekly review of payment failure trends": ("Weekly review of payment failure trends",),
    "Monthly review of alert rule effectiveness": ("Monthly review of alert rule effectiveness",),
    "Quarterly review of performance thresholds": ("Quarterly review of performance thresholds",),
    "Update runbook as new issues discovered": ("Update runbook as new issues discovered",),
    "Sentry Slack integration configured": ("Sentry Slack integration configured",),
    "#payments-alerts and #security-alerts channels created": (
        "#payments-alerts and #security-alerts channels created",),
    "Payment dashboard created (Sentry or custom)": ("Payment dashboard created (Sentry or custom)",),
    "Operations runbook documented with response procedures": (
        "Operations runbook documented with response procedures",),
    "Test alerts delivered to Slack within 1 minute": ("Test alerts delivered to Slack within 1 minute",),
    "On-call engineer confirmed PagerDuty page received": ("On-call engineer confirmed PagerDuty page received",),
}


UNPLACED = Placement(PRE_DEPLOYMENT, 0, "normal")
_SECTION_MARK = re.compile(r"§(\d+)")


def placement(criterion: str, module_doc: str = "") -> Placement:
    """The criterion's place; a criterion paymon does not know yet is placed by the first "§N" in
    its text or its module's docstring, so a new check lands in the right section unaided."""
    if criterion in CRITERIA:
        return CRITERIA[criterion]
    match = _SECTION_MARK.search(criterion) or _SECTION_MARK.search(module_doc or "")
    return Placement(PRE_DEPLOYMENT, int(match.group(1)), "normal") if match else UNPLACED


# monitoring.yaml's alert severities -> Allure severities. The guide pages someone for Fatal and
# Critical (§3: + @on-call + PagerDuty), so a broken alert of those levels is a blocker; High only
# posts to Slack (critical); Error/Warning (the daily reconciliation alert) are looked at the next
# morning (normal); Medium/Low go to a weekly digest.
ALERT_SEVERITY = {
    "fatal": "blocker",
    "critical": "blocker",
    "high": "critical",
    "error": "normal",
    "warning": "normal",
    "medium": "minor",
    "low": "trivial",
}


def alert_severity(severity: str) -> str:
    return ALERT_SEVERITY.get(str(severity).lower(), "normal")


def sort_key(criterion: str) -> tuple:
    """Verdict order: the guide's order (section, then the order criteria are listed above)."""
    place = placement(criterion)
    known = list(CRITERIA)
    return (place.section or 99, known.index(criterion) if criterion in known else len(known), criterion)
