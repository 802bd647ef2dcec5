"""monitoring.yaml → request bodies of the legacy alerting API (2026-05 spec, deprecated).

    across_events alert   metric alert rule (`O/alert-rules/`): timeWindow in minutes, a critical
                          trigger with the actions
    per_issue alert       issue alert rule (`P/rules/`): a frequency condition (or "a new issue")
                          and the filters, all or any
    performance budget    metric alert rule on transactions, critical and warning triggers

What the legacy form cannot say raises `Unexpressible`: a comparator other than above/below, a
window metric alerts do not offer (1, 5, 10, 15, 30, 60, 120, 240, 1440 min), an issue-rule
interval other than 1m/5m/15m/1h/1d/1w/30d, or filters issue rules cannot combine.
"""

from __future__ import annotations

from paymon.remedy.filters import Unexpressible, issue_filters
from paymon.remedy.render_workflow import interval_label, metric_query, window_seconds, _num
from paymon.remedy.resolve import EmailTarget, PagerDutyTarget, SlackTarget, Target
from paymon.rules import query as q
from paymon.findings.alerts import _spec_filter
from paymon.config.spec import AlertSpec, PerformanceBudget, PerformanceSpec

METRIC_WINDOWS_MIN = (1, 5, 10, 15, 30, 60, 120, 240, 1440)
_THRESHOLD_TYPES = {">": 0, "<": 1}
_FILTER_CLASSES = {
    "tagged_event": "sentry.rules.filters.tagged_event.TaggedEventFilter",
    "event_attribute": "sentry.rules.filters.event_attribute.EventAttributeFilter",
    "level": "sentry.rules.filters.level.LevelFilter",
}


def _minutes(seconds: int) -> int:
    if seconds % 60 or seconds // 60 not in METRIC_WINDOWS_MIN:
        raise Unexpressible(f"metric alerts offer {', '.join(map(str, METRIC_WINDOWS_MIN))}-minute windows, "
                            f"not {seconds}s")
    return seconds // 60


def _threshold_type(comparator: str) -> int:
    if comparator not in _THRESHOLD_TYPES:
        raise Unexpressible(f"metric alerts compare above or below, not {comparator!r}")
    return _THRESHOLD_TYPES[comparator]


def trigger_action(target: Target, label: str) -> dict:
    if isinstance(target, SlackTarget):
        return {"type": "slack", "targetType": "specific", "targetIdentifier": target.channel,
                "inputChannelId": target.channel_id, "integrationId": int(target.integration_id)}
    if isinstance(target, PagerDutyTarget):
        return {"type": "pagerduty", "targetType": "specific", "targetIdentifier": int(target.row_id),
                "integrationId": int(target.integration_id), "priority": target.severity}
    assert isinstance(target, EmailTarget)
    return {"type": "email", "targetType": target.kind, "targetIdentifier": target.identifier,
            "integrationId": None}


def metric_alert_rule(alert: AlertSpec, project_slug: str, targets: list[Target]) -> dict:
    return {
        "name": alert.name, "aggregate": alert.aggregate, "dataset": "events", "queryType": 0,
        "query": metric_query(alert), "eventTypes": sorted(alert.events.types),
        "timeWindow": _minutes(window_seconds(alert)), "thresholdType": _threshold_type(alert.comparator),
        "resolveThreshold": None, "environment": alert.environment, "projects": [project_slug],
        "triggers": [{"label": "critical", "alertThreshold": _num(alert.threshold),
                      "actions": [trigger_action(t, "critical") for t in targets]}],
    }


def performance_alert_rule(budget: PerformanceBudget, perf: PerformanceSpec, project_slug: str,
                           critical: list[Target], warning: list[Target]) -> dict:
    return {
        "name": budget.name, "aggregate": perf.aggregate, "dataset": "transactions", "queryType": 1,
        "query": q.render(q.Term("transaction", "eq", budget.transaction)), "eventTypes": ["transaction"],
        "timeWindow": _minutes(perf.window), "thresholdType": 0, "resolveThreshold": None,
        "environment": perf.environment, "projects": [project_slug],
        "triggers": [
            {"label": "critical", "alertThreshold": _num(budget.critical),
             "actions": [trigger_action(t, "critical") for t in critical]},
            {"label": "warning", "alertThreshold": _num(budget.warning),
             "actions": [trigger_action(t, "warning") for t in warning]},
        ],
    }


def issue_action(target: Target) -> dict:
    if isinstance(target, SlackTarget):
        body = {"id": "sentry.integrations.slack.notify_action.SlackNotifyServiceAction",
                "workspace": target.integration_id, "channel": target.channel, "tags": "environment,level",
                "notes": ""}
        if target.channel_id:
            body["channel_id"] = target.channel_id
        return body
    if isinstance(target, PagerDutyTarget):
        return {"id": "sentry.integrations.pagerduty.notify_action.PagerDutyNotifyServiceAction",
                "account": target.integration_id, "service": target.row_id, "severity": target.severity}
    assert isinstance(target, EmailTarget)
    kind = "Team" if target.kind == "team" else "Member"
    return {"id": "sentry.mail.actions.NotifyEmailAction", "targetType": kind,
            "targetIdentifier": int(target.identifier) if target.identifier.isdigit() else target.identifier,
            "fallthroughType": "ActiveMembers" if kind == "Team" else "NoOne"}


def issue_rule(alert: AlertSpec, targets: list[Target]) -> dict:
    levels, rest = _spec_filter(alert)
    logic, filters = issue_filters(levels, rest)
    if alert.comparator != ">":
        raise Unexpressible(f"an issue rule counts 'more than', not {alert.comparator!r}")
    if alert.threshold > 0 or alert.count == "across_events":  # "any occurrence": > 0 in 1m, every event
        conditions = [{"id": "sentry.rules.conditions.event_frequency.EventFrequencyCondition",
                       "comparisonType": "count", "value": _num(alert.threshold),
                       "interval": interval_label(alert.window) if alert.threshold > 0 else "1m"}]
    else:
        conditions = [{"id": "sentry.rules.conditions.first_seen_event.FirstSeenEventCondition"}]
    rendered = []
    for f in filters:
        params = dict(f.params)
        if f.kind == "level":
            params["level"] = str(params["level"])  # the legacy LevelFilter stores "50", not 50
        rendered.append({"id": _FILTER_CLASSES[f.kind], **params})
    return {
        "name": alert.name, "environment": alert.environment, "actionMatch": "all", "filterMatch": logic,
        "frequency": 5, "conditions": conditions, "filters": rendered,
        "actions": [issue_action(t) for t in targets],
    }


def as_stored_rule(body: dict, rule_id: str) -> dict:
    return {"id": rule_id, "status": "active" if "conditions" in body else 0, **body}

