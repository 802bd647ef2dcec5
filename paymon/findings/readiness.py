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


def pagerduty_service_findings(expected: PagerDutyDelivery, client, critical_urgency: str = "high") -> list[Finding]:
    """Everything on the PagerDuty side of a page: the service's state and whether a page would
    reach a person (`paymon plan` lists them; the checks split them)."""
    service = client.find_service(expected.service)
    if service is None:
        return [Finding(expected.service, "service", "present", "missing", "field", "PagerDuty /services")]
    return service_state_findings(service, client) + page_reach_findings(service, client, critical_urgency)


def service_state_findings(service: dict, client) -> list[Finding]:
    """Enabled, not in maintenance, with an escalation policy: else no incident opens at all."""
    name, source = service.get("name") or service["id"], f"PagerDuty service {service['id']}"
    findings = []
    if service.get("status") == "disabled":
        findings.append(Finding(name, "status", "enabled", "disabled", "field", source,
                                "a disabled service accepts events but opens no incident"))
    if client.ongoing_maintenance(service["id"]):
        findings.append(Finding(name, "maintenance", "none", "a maintenance window is ongoing", "field", source,
                                "events during maintenance open no incident"))
    if not (service.get("escalation_policy") or {}).get("id"):
        findings.append(Finding(name, "escalation policy", "set", "none", "field", source))
    return findings


def level_one_on_call(service: dict, client) -> list[dict]:
    """The users on call now at level 1 of the service's escalation policy (`/oncalls` users)."""
    policy = service.get("escalation_policy") or {}
    if not policy.get("id"):
        return []
    users = {o["user"]["id"]: o["user"] for o in client.oncalls(policy["id"])
             if o.get("escalation_level") == 1 and o.get("user")}
    return list(users.values())


def page_reach_findings(service: dict, client, critical_urgency: str = "high") -> list[Finding]:
    """Would a real page reach a person? Someone is on call at level 1; the urgency rule makes a
    Sentry critical (PagerDuty severity critical) `critical_urgency`; and each level-1 on-call user
    has high-urgency notification rules (GET /users/{id}/notification_rules: high unless asked,
    verified-2026-12 §12). The synthetic check proves the path at low urgency; these add what it
    cannot: that a high-urgency page would ring someone's phone."""
    name, source = service.get("name") or service["id"], f"PagerDuty service {service['id']}"
    findings = []
    policy = service.get("escalation_policy") or {}
    on_call = level_one_on_call(service, client) if policy.get("id") else []
    if policy.get("id") and not on_call:
        findings.append(Finding(name, "on call now", "someone at level 1", "nobody", "field",
                                f"escalation policy {policy['id']}", "a page would be assigned to nobody"))
    rule = service.get("incident_urgency_rule") or {}
    for when, urgency in urgencies_for(rule, "critical"):
        if urgency != critical_urgency:
            findings.append(Finding(name, f"urgency of a Sentry critical alert{when}", critical_urgency, str(urgency),
                                    "field", source, "set the service's urgency rule to constant high, or "
                                                     "based on severity (critical -> high)"))
    for user in on_call:
        rules = client.notification_rules(user["id"])
        if not [r for r in rules if r.get("urgency", "high") == "high"]:
            who = f"{user.get('summary') or user['id']} ({user['id']})"
            findings.append(Finding(name, f"high-urgency notification rules of on-call {who}", "at least one", "none",
                                    "field", f"PagerDuty user {user['id']}",
                                    "a high-urgency page would notify them of nothing: add a phone/SMS/push rule"))
    return findings


# PagerDuty's severity-based urgency ("Dynamic Notifications", hard-coded; verified-2026-12 §14).
_SEVERITY_URGENCY = {"critical": "high", "error": "high", "warning": "low", "info": "low"}
# The severity Sentry sends PagerDuty for an action set to "default": from the event level (issue
# alerts) or the trigger (metric alerts' critical) — getsentry/sentry integrations/pagerduty/utils.py.
SENTRY_DEFAULT_SEVERITY = {"fatal": "critical", "critical": "critical", "error": "error", "warning": "warning",
                           "info": "info", "debug": "info"}


def urgencies_for(rule: dict, severity: str) -> list[tuple[str, str | None]]:
    """[(when, urgency)] the service's incident_urgency_rule gives an event of PagerDuty `severity`:
    one entry for a constant rule, two (" in support hours", " outside support hours") for
    use_support_hours. An unreadable rule gives None."""
    def one(part: dict) -> str | None:
        urgency = part.get("urgency")
        if urgency == "severity_based":
            return _SEVERITY_URGENCY.get(severity, "high")  # no severity: high
        return urgency if urgency in ("high", "low") else None

    kind = (rule or {"type": "constant", "urgency": "high"}).get("type", "constant")
    if kind == "use_support_hours":
        return [(" in support hours", one(rule.get("during_support_hours") or {})),
                (" outside support hours", one(rule.get("outside_support_hours") or {}))]
    if kind == "constant":
        return [("", one(rule))]
    return [("", None)]


def urgency_findings(spec, service: dict) -> tuple[list[Finding], list[str]]:
    """§5's severity -> urgency table against the service: for every alert of monitoring.yaml
    that acts on this PagerDuty service, the severity Sentry sends (the action's, or the alert's
    level's when the action says "default") through the urgency rule must give the table's urgency
    for the alert's severity. Returns (findings, notes): a row of the table that no alert sends
    through PagerDuty is not judged, and a note says what the rule would do with it."""
    table = spec.integrations.pagerduty.urgency if spec.integrations.pagerduty else {}
    name = service.get("name") or service["id"]
    rule = service.get("incident_urgency_rule") or {}
    source = f"PagerDuty service {service['id']} incident_urgency_rule"
    findings, exercised = [], set()
    perf = [(b.name, level, spec.performance.actions.critical if level == "critical" else spec.performance.actions.warning)
            for b in spec.performance.budgets for level in ("critical", "warning")]
    routed = [(a.name, a.severity, a.actions) for a in spec.all_alerts] + perf
    for alert, level, actions in routed:
        for action in actions:
            target = action.pagerduty
            if target is None or target.service.casefold() != name.casefold() or level not in table:
                continue
            exercised.add(level)
            sent = SENTRY_DEFAULT_SEVERITY.get(level, "error") if target.severity == "default" else target.severity
            for when, urgency in urgencies_for(rule, sent):
                if urgency != table[level]:
                    findings.append(Finding(alert, f"PagerDuty urgency of this {level} alert{when}", table[level],
                                            f"{urgency} (Sentry sends severity {sent})", "field", source,
                                            "§5: send PagerDuty severity warning for a low-urgency alert (severity-"
                                            "based rules make critical and error high)"))
    notes = []
    for level, wanted in table.items():
        if level in exercised:
            continue
        sent = SENTRY_DEFAULT_SEVERITY.get(level, "error")
        got = {u for _when, u in urgencies_for(rule, sent)}
        if got != {wanted}:
            notes.append(f"no {level} alert acts on PagerDuty, so §5's '{level} -> {wanted}' holds by routing; "
                         f"one sending severity {sent} would get {'/'.join(sorted(map(str, got)))}")
    return findings, notes


def escalation_findings(levels, service: dict, client) -> list[Finding]:
    """§8's escalation path (monitoring.yaml integrations.pagerduty.escalation) against the
    service's escalation policy: each declared level's targets (schedule or user names) and its
    escalation delay. Levels past the declared ones are allowed (the CTO's conditional step)."""
    ref = service.get("escalation_policy") or {}
    if not ref.get("id"):
        return [Finding(service.get("name") or service["id"], "escalation policy", "set", "none", "field",
                        f"PagerDuty service {service['id']}")]
    policy = client.escalation_policy(ref["id"])
    subject = f"escalation policy {policy.get('name') or ref['id']!r}"
    source = f"PagerDuty escalation policy {ref['id']}"
    rules = policy.get("escalation_rules") or []
    findings = []
    for number, level in enumerate(levels, start=1):
        label = f"level {number} ({level.name})"
        if number > len(rules):
            findings.append(Finding(subject, label, "present", f"missing ({len(rules)} level(s))", "field", source))
            continue
        rule = rules[number - 1]
        actual = [t.get("summary") or t.get("id") for t in rule.get("targets") or ()]
        missing = [t for t in level.targets if t.casefold() not in {(a or "").casefold() for a in actual}]
        if missing:
            findings.append(Finding(subject, f"{label} targets", ", ".join(level.targets),
                                    ", ".join(map(str, actual)) or "none", "field", source))
        if level.escalate_after is not None:
            delay = rule.get("escalation_delay_in_minutes")
            if delay is None or float(delay) * 60 != level.escalate_after:
                findings.append(Finding(subject, f"{label} escalates after", f"{level.escalate_after / 60:g} min",
                                        f"{delay} min", "field", source,
                                        "§8: the engineering lead if unresolved in 1 hour"))
    return findings
