"""Is the path an alert takes ready? Slack channels and the PagerDuty service, checked up front
so a missing page is explained by its cause, not only by its absence."""

from __future__ import annotations

from paymon.findings.model import Finding
from paymon.clients.slack import find_channel
from paymon.config.spec import PagerDutyDelivery


def slack_channel_findings(name: str, reader, sentry_bot_user: str | None) -> list[Finding]:
    channel = find_channel(reader.channels(), name)  # one channel list for every channel checked
    if channel is None:
        return [Finding(name, "channel", "present", "missing (or private and the bot cannot see it)",
                        "field", "Slack conversations.list", "create the channel and invite the Sentry app")]
    source = f"Slack channel {channel['id']}"
    findings = []
    if channel.get("is_archived"):
        findings.append(Finding(name, "archived", "false", "true", "field", source,
                                "Sentry's posts to an archived channel fail with is_archived"))
    if sentry_bot_user and not channel.get("is_archived"):
        members = reader.members(channel["id"])
        if sentry_bot_user not in members:
            findings.append(Finding(name, "Sentry bot member", sentry_bot_user, "not a member", "field", source,
                                    f"invite the Sentry app: /invite @Sentry in {name}"))
    return findings


def pagerduty_service_findings(expected: PagerDutyDelivery, client) -> list[Finding]:
    name = expected.service
    service = client.find_service(name)
    if service is None:
        return [Finding(name, "service", "present", "missing", "field", "PagerDuty /services")]
    source = f"PagerDuty service {service['id']}"
    findings = []
    if service.get("status") == "disabled":
        findings.append(Finding(name, "status", "enabled", "disabled", "field", source,
                                "a disabled service accepts events but opens no incident"))
    if client.ongoing_maintenance(service["id"]):
        findings.append(Finding(name, "maintenance", "none", "a maintenance window is ongoing", "field", source,
                                "events during maintenance open no incident"))
    policy = service.get("escalation_policy") or {}
    if not policy.get("id"):
        findings.append(Finding(name, "escalation policy", "set", "none", "field", source))
    elif not [o for o in client.oncalls(policy["id"]) if o.get("escalation_level") == 1 and o.get("user")]:
        findings.append(Finding(name, "on call now", "someone at level 1", "nobody", "field",
                                f"escalation policy {policy['id']}"))
    urgency = _urgency_for_critical(service.get("incident_urgency_rule") or {})
    if urgency != expected.urgency:
        findings.append(Finding(name, "urgency of a critical alert", expected.urgency, str(urgency), "field",
                                source, "set the service's urgency rule (constant high, or based on severity)"))
    return findings


def _urgency_for_critical(rule: dict) -> str | None:
    kind = rule.get("type")
    if kind == "constant":
        # "severity_based" maps critical and error events to high urgency.
        return "high" if rule.get("urgency") == "severity_based" else rule.get("urgency")
    if kind == "use_support_hours":
        # Outside support hours a different urgency may apply; report the in-hours one.
        return (rule.get("during_support_hours") or {}).get("urgency")
    return None
