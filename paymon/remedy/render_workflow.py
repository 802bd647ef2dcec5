"""monitoring.yaml → request bodies of the workflow engine (detectors + workflows).

Bodies are camelCase, as Sentry's serializers take them (the spec's snake_case names are accepted
too) and as the responses show them, so `as_stored_detector` can turn a body into what a read would
return for paymon's self-check (normalise + compare the rendering before writing it).

    across_events alert   metric_issue detector (events dataset, count() over the query) + a
                          workflow connected to it, actions at priority >= 75 (critical)
    per_issue alert       workflow on the project's issue_stream detector: filters in one action
                          filter group; > N in a window as an event_frequency_count trigger
    performance budget    metric_issue detector (spans: p95(span.duration), is_transaction:true),
                          critical 75 / warning 50; one workflow for every budget's detector
"""

from __future__ import annotations

from paymon.remedy.filters import issue_filters
from paymon.remedy.resolve import EmailTarget, PagerDutyTarget, SlackTarget, Target
from paymon.rules import query as q
from paymon.findings.alerts import _spec_filter
from paymon.rules.normalise import INTERVAL_SECONDS, ISSUE_ALERT_INTERVALS
from paymon.remedy.filters import Unexpressible
from paymon.config.spec import AlertSpec, PerformanceBudget, PerformanceSpec

PERFORMANCE_WORKFLOW = "Payment endpoint latency (p95)"
ANY_OCCURRENCE_WINDOW = 300  # seconds; "any occurrence" needs some window, the count is > 0 in any
_COMPARATORS = {">": ("gt", "lte"), ">=": ("gte", "lt"), "<": ("lt", "gte"), "<=": ("lte", "gt")}
_REPEAT_MINUTES = 5


def metric_query(alert: AlertSpec) -> str:
    """The search query of an aggregate alert: its levels ANDed with its filter."""
    levels, rest = _spec_filter(alert)
    level_pred = q.any_of(q.Term("level", "eq", level) for level in sorted(levels)) if levels else None
    return q.render(q.all_of([p for p in (level_pred, rest) if p is not None])) or ""


def window_seconds(alert: AlertSpec) -> int:
    return alert.window if alert.window is not None else ANY_OCCURRENCE_WINDOW


def _conditions(comparator: str, critical: float, warning: float | None = None) -> list[dict]:
    if comparator not in _COMPARATORS:
        raise Unexpressible(f"comparator {comparator!r} has no detector condition")
    fire, resolve = _COMPARATORS[comparator]
    conditions = [{"type": fire, "comparison": _num(critical), "conditionResult": 75}]
    if warning is not None:
        conditions.append({"type": fire, "comparison": _num(warning), "conditionResult": 50})
    conditions.append({"type": resolve, "comparison": _num(warning if warning is not None else critical),
                       "conditionResult": 0})
    return conditions


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def metric_detector(alert: AlertSpec) -> dict:
    return {
        "name": alert.name,
        "type": "metric_issue",
        "dataSources": [{
            "aggregate": alert.aggregate, "dataset": "events", "query": metric_query(alert),
            "queryType": 0, "timeWindow": window_seconds(alert), "environment": alert.environment,
            "eventTypes": sorted(alert.events.types),
        }],
        "conditionGroup": {"logicType": "any", "conditions": _conditions(alert.comparator, alert.threshold)},
        "config": {"detectionType": "static"},
        "enabled": True,
    }


def performance_detector(budget: PerformanceBudget, perf: PerformanceSpec) -> dict:
    aggregate = perf.aggregate.replace("(transaction.duration)", "(span.duration)")
    return {
        "name": budget.name,
        "type": "metric_issue",
        "dataSources": [{
            "aggregate": aggregate, "dataset": "events_analytics_platform",
            "query": f"is_transaction:true {q.render(q.Term('transaction', 'eq', budget.transaction))}",
            "queryType": 1, "timeWindow": perf.window, "environment": perf.environment,
            "eventTypes": ["trace_item_span"],
        }],
        "conditionGroup": {"logicType": "any", "conditions": _conditions(">", budget.critical, budget.warning)},
        "config": {"detectionType": "static"},
        "enabled": True,
    }


def action(target: Target) -> dict:
    if isinstance(target, SlackTarget):
        config = {"targetType": "specific", "targetDisplay": target.channel}
        if target.channel_id:
            config["targetIdentifier"] = target.channel_id
        return {"type": "slack", "integrationId": target.integration_id, "config": config,
                "data": {"tags": "environment,level", "notes": ""}}
    if isinstance(target, PagerDutyTarget):
        return {"type": "pagerduty", "integrationId": target.integration_id,
                "config": {"targetType": "specific", "targetIdentifier": target.row_id,
                           "targetDisplay": target.service},
                "data": {"priority": target.severity}}
    assert isinstance(target, EmailTarget)
    return {"type": "email", "integrationId": None,
            "config": {"targetType": target.kind, "targetIdentifier": target.identifier}, "data": {}}


def _priority_group(priority: int, targets: list[Target]) -> dict:
    return {"logicType": "any-short",
            "conditions": [{"type": "issue_priority_greater_or_equal", "comparison": priority,
                            "conditionResult": True}],
            "actions": [action(t) for t in targets]}


def metric_workflow(alert: AlertSpec, detector_ids: list[str], targets: list[Target]) -> dict:
    return {
        "name": alert.name, "enabled": True, "environment": alert.environment,
        "config": {"frequency": _REPEAT_MINUTES}, "detectorIds": [str(i) for i in detector_ids],
        "triggers": {"logicType": "any-short", "conditions": []},
        "actionFilters": [_priority_group(75, targets)],
    }


def performance_workflow(perf: PerformanceSpec, detector_ids: list[str], critical: list[Target],
                         warning: list[Target]) -> dict:
    groups = [_priority_group(75, critical)]
    if warning:
        groups.append(_priority_group(50, warning))
    return {
        "name": PERFORMANCE_WORKFLOW, "enabled": True, "environment": perf.environment,
        "config": {"frequency": 30}, "detectorIds": [str(i) for i in detector_ids],
        "triggers": {"logicType": "any-short", "conditions": []}, "actionFilters": groups,
    }


def interval_label(seconds: int | None) -> str:
    for label in ISSUE_ALERT_INTERVALS:
        if INTERVAL_SECONDS[label] == seconds:
            return label
    raise Unexpressible(f"issue alerts offer only {', '.join(ISSUE_ALERT_INTERVALS)} intervals, not "
                        f"{seconds}s")


def issue_workflow(alert: AlertSpec, issue_detector_id: str, targets: list[Target]) -> dict:
    levels, rest = _spec_filter(alert)
    logic, filters = issue_filters(levels, rest)
    if alert.comparator != ">":
        raise Unexpressible(f"an issue alert counts 'more than', not {alert.comparator!r}")
    if alert.threshold > 0 or alert.count == "across_events":
        # > N events of the issue in the window; "any occurrence" of an aggregate alert: > 0 in 1m,
        # i.e. every event (a new issue only would miss repeats).
        interval = interval_label(alert.window) if alert.threshold > 0 else "1m"
        triggers = {"logicType": "all", "conditions": [{
            "type": "event_frequency_count", "conditionResult": True,
            "comparison": {"value": _num(alert.threshold), "interval": interval}}]}
    else:
        triggers = {"logicType": "any-short",
                    "conditions": [{"type": "first_seen_event", "comparison": True, "conditionResult": True}]}
    return {
        "name": alert.name, "enabled": True, "environment": alert.environment,
        "config": {"frequency": _REPEAT_MINUTES}, "detectorIds": [str(issue_detector_id)],
        "triggers": triggers,
        "actionFilters": [{
            "logicType": "all" if logic == "all" else "any-short",
            "conditions": [{"type": f.kind, "comparison": dict(f.params), "conditionResult": True} for f in filters],
            "actions": [action(t) for t in targets],
        }],
    }


def as_stored_detector(body: dict, detector_id: str, project_id: str, workflow_ids: list[str]) -> dict:
    """What a read returns for this body (for normalising the rendering before it is written)."""
    source = body["dataSources"][0]
    return {
        "id": detector_id, "projectId": project_id, "name": body["name"], "type": body["type"],
        "workflowIds": list(workflow_ids), "enabled": body.get("enabled", True),
        "dataSources": [{"type": "snuba_query_subscription", "queryObj": {"snubaQuery": dict(source)}}],
        "conditionGroup": dict(body["conditionGroup"]),
    }


def as_stored_workflow(body: dict, workflow_id: str) -> dict:
    return {"id": workflow_id, **body}
