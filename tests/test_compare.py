"""paymon.findings.alerts against the real monitoring.yaml and the shared example JSON.

The example world is faithful except for one deliberate issue-rule copy of alert 2 (15m, per issue).
Each single fault below yields exactly the expected finding, in both alerting generations.
"""

import copy
import json
from dataclasses import replace
from pathlib import Path

import pytest

from paymon.findings.alerts import (
    Finding,
    compare_alert,
    compare_performance,
    routing_findings,
    semantic_findings,
)
from paymon.rules.normalise import Directory, read_alerts
from paymon.rules.query import parse
from paymon.config.spec import load_spec

REPO = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / "data" / "sentry"
SPEC = load_spec(REPO / "monitoring.yaml")
ALERT_NAMES = [a.name for a in SPEC.alerts]
BUDGET_NAMES = [b.name for b in SPEC.performance.budgets]
GENERATIONS = ["legacy", "workflow"]


def load(name: str) -> list[dict]:
    return json.loads((DATA / f"{name}.json").read_text())


DIRECTORY = Directory(load("members-list"), load("teams-list"), load("integrations-list"))


def world(generation: str) -> dict:
    """Raw API lists of one generation, ready to be broken by a fault."""
    legacy = generation == "legacy"
    return {
        "issue_rules": load("legacy-issue-rules-list") if legacy else [],
        "metric_rules": load("legacy-metric-alert-rules-list") if legacy else [],
        "detectors": [] if legacy else load("detectors-list"),
        "workflows": [] if legacy else load("workflows-list"),
    }


def read(raw: dict):
    return read_alerts(raw["issue_rules"], raw["metric_rules"], raw["detectors"], raw["workflows"], DIRECTORY)


def all_findings(name: str, actual) -> list[Finding]:
    spec = SPEC.alert(name)
    return (compare_alert(spec, actual, SPEC) + semantic_findings(spec, actual, SPEC)
            + routing_findings(spec, SPEC.severity_routing[spec.severity], actual, SPEC))


# --- the faithful example data compares clean ------------------------------------------------------


@pytest.mark.parametrize("generation", GENERATIONS)
@pytest.mark.parametrize("name", ALERT_NAMES)
def test_every_alert_compares_clean(generation, name):
    actual = read(world(generation)).by_name(name)
    assert actual is not None
    spec = SPEC.alert(name)
    assert compare_alert(spec, actual, SPEC) == []
    assert semantic_findings(spec, actual, SPEC) == []
    assert routing_findings(spec, SPEC.severity_routing[spec.severity], actual, SPEC) == []


@pytest.mark.parametrize("generation", GENERATIONS)
@pytest.mark.parametrize("name", BUDGET_NAMES)
def test_every_performance_budget_compares_clean(generation, name):
    actual = read(world(generation)).by_name(name)
    budget = next(b for b in SPEC.performance.budgets if b.name == name)
    assert compare_performance(budget, SPEC.performance, actual, SPEC) == []


def test_metric_alert_copy_of_alert_2_is_clean_and_the_issue_rule_copy_is_not():
    metric, issue_rule = read(world("legacy")).named("Webhook Processing Failure")
    assert metric.source == "metric_alert 7102" and all_findings(metric.name, metric) == []
    lines = [f.line() for f in all_findings(issue_rule.name, issue_rule)]
    assert lines[:2] == [
        "Webhook Processing Failure: window expected 600s, actual 900s (issue_rule 611202)",
        "Webhook Processing Failure: counting expected across_events, actual per_issue (issue_rule 611202)",
    ]
    assert [f.field for f in all_findings(issue_rule.name, issue_rule)[2:]] == ["counting", "window"]
    per_issue, no_10m = all_findings(issue_rule.name, issue_rule)[2:]
    assert per_issue.kind == no_10m.kind == "semantic"
    assert "single issue" in per_issue.hint and "Fix: use a metric alert" in per_issue.hint
    assert "1m, 5m, 15m, 1h, 1d, 1w, 30d" in no_10m.hint and "timeWindow 10 min" in no_10m.hint


# --- equivalent forms compare equal ----------------------------------------------------------------


def _metric(raw: dict, name: str) -> dict:
    return next(r for r in raw["metric_rules"] if r["name"] == name)


def _detector(raw: dict, name: str) -> dict:
    return next(d for d in raw["detectors"] if d["name"] == name)


def _snuba(raw: dict, name: str) -> dict:
    return _detector(raw, name)["dataSources"][0]["queryObj"]["snubaQuery"]


def _workflow(raw: dict, name: str) -> dict:
    detector = _detector(raw, name)
    return next(w for w in raw["workflows"] if w["id"] in detector["workflowIds"])


def _set_query(raw: dict, name: str, query: str) -> None:
    if raw["metric_rules"]:
        _metric(raw, name)["query"] = query
    else:
        _snuba(raw, name)["query"] = query


EQUIVALENT_QUERIES = [
    'message:"*payment*" OR tags[payment_flow]:checkout OR message:checkout',   # reordered, tags[x]
    'tags.payment_flow:"checkout" OR (message:"*checkout*" OR message:PAYMENT)',  # guide's form, quoting
]


@pytest.mark.parametrize("generation", GENERATIONS)
@pytest.mark.parametrize("query", EQUIVALENT_QUERIES)
def test_equivalent_queries_compare_equal(generation, query):
    raw = copy.deepcopy(world(generation))
    _set_query(raw, "Payment Failure Rate Spike", query)
    assert compare_alert(SPEC.alert("Payment Failure Rate Spike"), read(raw).by_name("Payment Failure Rate Spike"), SPEC) == []


def test_coerced_numbers_ids_and_reordered_actions_compare_equal():
    raw = copy.deepcopy(world("legacy"))
    rule = _metric(raw, "Webhook Processing Failure")
    rule["timeWindow"] = 10                       # 10 vs 10.0
    trigger = rule["triggers"][0]
    trigger["alertThreshold"] = "5"               # "5" vs 5.0
    trigger["actions"].reverse()
    for action in trigger["actions"]:
        if action["integrationId"] is not None:
            action["integrationId"] = str(action["integrationId"])   # int vs string
        if action["type"] == "pagerduty":
            action["targetIdentifier"] = str(action["targetIdentifier"])
    actual = read(raw).by_name("Webhook Processing Failure")
    assert all_findings("Webhook Processing Failure", actual) == []


def test_levels_in_the_spec_filter_equal_levels_in_events():
    spec = SPEC.alert("Test Mode Detected in Production")
    moved = spec.model_copy(update={"events": spec.events.model_copy(update={"levels": []}),
                                    "filter": 'level:fatal message:"Test mode detected in production"'})
    actual = read(world("workflow")).by_name(spec.name)
    assert compare_alert(moved, actual, SPEC) == []


# --- each single fault yields exactly its finding --------------------------------------------------


def fault_threshold(raw):
    if raw["metric_rules"]:
        _metric(raw, "Payment Failure Rate Spike")["triggers"][0]["alertThreshold"] = 20.0
    else:
        for condition in _detector(raw, "Payment Failure Rate Spike")["conditionGroup"]["conditions"]:
            condition["comparison"] = 20


def fault_window(raw):
    if raw["metric_rules"]:
        _metric(raw, "Webhook Processing Failure")["timeWindow"] = 15.0
    else:
        _snuba(raw, "Webhook Processing Failure")["timeWindow"] = 900


def fault_environment_missing(raw):
    if raw["metric_rules"]:
        _metric(raw, "Usage Reporting Failure Rate")["environment"] = None
    else:
        _snuba(raw, "Usage Reporting Failure Rate")["environment"] = None
        _workflow(raw, "Usage Reporting Failure Rate")["environment"] = None


def fault_slack_wrong_channel(raw):
    if raw["metric_rules"]:
        action = _metric(raw, "Payment Failure Rate Spike")["triggers"][0]["actions"][0]
        action.update(targetIdentifier="#security-alerts", inputChannelId="C07S3CUR1TY")
    else:
        action = _workflow(raw, "Payment Failure Rate Spike")["actionFilters"][0]["actions"][0]
        action["config"].update(targetIdentifier="C07S3CUR1TY", targetDisplay="#security-alerts")


def fault_pagerduty_missing(raw):
    if raw["issue_rules"]:
        rule = next(r for r in raw["issue_rules"] if r["name"] == "Test Mode Detected in Production")
        rule["actions"] = [a for a in rule["actions"] if "PagerDuty" not in a["id"]]
    else:
        workflow = next(w for w in raw["workflows"] if w["name"] == "Test Mode Detected in Production")
        group = workflow["actionFilters"][0]
        group["actions"] = [a for a in group["actions"] if a["type"] != "pagerduty"]


def fault_per_issue(raw):
    """Alert 1 rebuilt as an issue alert: same filters, "seen more than 10 times in 5m" per issue."""
    if raw["metric_rules"]:
        metric = _metric(raw, "Payment Failure Rate Spike")
        raw["metric_rules"].remove(metric)
        issue_rule = copy.deepcopy(raw["issue_rules"][1]) | {"id": "611201", "name": metric["name"], "frequency": 5}
        issue_rule["conditions"][0].update(interval="5m", value=10)
        issue_rule["filters"] = [
            {"id": "sentry.rules.filters.tagged_event.TaggedEventFilter", "key": "payment_flow", "match": "eq", "value": "checkout"},
            {"id": "sentry.rules.filters.event_attribute.EventAttributeFilter", "attribute": "message", "match": "co", "value": "checkout"},
            {"id": "sentry.rules.filters.event_attribute.EventAttributeFilter", "attribute": "message", "match": "co", "value": "payment"},
        ]
        issue_rule["actions"] = [
            {"id": "sentry.integrations.slack.notify_action.SlackNotifyServiceAction", "workspace": 187263,
             "channel": "#payments-alerts", "channel_id": "C07PAYM3NT5"},
            {"id": "sentry.mail.actions.NotifyEmailAction", "targetType": "Team", "targetIdentifier": "4509876"},
            {"id": "sentry.mail.actions.NotifyEmailAction", "targetType": "Member", "targetIdentifier": "3984213"},
        ]
        raw["issue_rules"].append(issue_rule)
    else:
        detector = _detector(raw, "Payment Failure Rate Spike")
        workflow = _workflow(raw, "Payment Failure Rate Spike")
        raw["detectors"].remove(detector)
        workflow["detectorIds"] = ["5801001"]  # the project's error detector
        workflow["actionFilters"][0]["conditions"] = [
            {"type": "event_frequency_count", "comparison": {"value": 10, "interval": "5m"}, "conditionResult": True},
            {"type": "tagged_event", "comparison": {"key": "payment_flow", "match": "eq", "value": "checkout"}},
            {"type": "event_attribute", "comparison": {"attribute": "message", "match": "co", "value": "checkout"}},
            {"type": "event_attribute", "comparison": {"attribute": "message", "match": "co", "value": "payment"}},
        ]


def fault_event_types_error_only(raw):
    if raw["metric_rules"]:
        _metric(raw, "Usage Reporting Failure Rate")["eventTypes"] = ["error"]
    else:
        _snuba(raw, "Usage Reporting Failure Rate")["eventTypes"] = ["error"]


def fault_any_occurrence_threshold_1(raw):
    if raw["metric_rules"]:
        _metric(raw, "Reconciliation Discrepancy Detected")["triggers"][0]["alertThreshold"] = 1.0
    else:
        for condition in _detector(raw, "Reconciliation Discrepancy Detected")["conditionGroup"]["conditions"]:
            condition["comparison"] = 1


SOURCES = {
    "legacy": {"Payment Failure Rate Spike": "metric_alert 7101", "Webhook Processing Failure": "metric_alert 7102",
               "Usage Reporting Failure Rate": "metric_alert 7104",
               "Reconciliation Discrepancy Detected": "metric_alert 7105",
               "Test Mode Detected in Production": "issue_rule 611206"},
    "workflow": {"Payment Failure Rate Spike": "detector 5801003 + workflow 9301000",
                 "Webhook Processing Failure": "detector 5801004 + workflow 9301001",
                 "Usage Reporting Failure Rate": "detector 5801006 + workflow 9301003",
                 "Reconciliation Discrepancy Detected": "detector 5801007 + workflow 9301004",
                 "Test Mode Detected in Production": "workflow 9301005 + detector 5801002"},
}
PER_ISSUE_SOURCES = {"legacy": "issue_rule 611201", "workflow": "workflow 9301000 + detector 5801001"}
ALERT_1_ACTIONS = "[email member:ops@towerofbabel.com, email team:on-call, slack #payments-alerts]"

# fault -> (alert, [(kind, line without the source)...])
FAULTS = {
    "threshold": (fault_threshold, "Payment Failure Rate Spike", [
        ("field", "Payment Failure Rate Spike: threshold expected 10, actual 20")]),
    "window": (fault_window, "Webhook Processing Failure", [
        ("field", "Webhook Processing Failure: window expected 600s, actual 900s")]),
    "environment-missing": (fault_environment_missing, "Usage Reporting Failure Rate", [
        ("field", "Usage Reporting Failure Rate: environment expected production, actual all environments")]),
    "slack-wrong-channel": (fault_slack_wrong_channel, "Payment Failure Rate Spike", [
        ("field", f"Payment Failure Rate Spike: actions expected {ALERT_1_ACTIONS}, actual [email "
                  "member:ops@towerofbabel.com, email team:on-call, slack #security-alerts]"),
        ("routing", "Payment Failure Rate Spike: slack route expected #payments-alerts, actual #security-alerts")]),
    "pagerduty-missing": (fault_pagerduty_missing, "Test Mode Detected in Production", [
        ("field", "Test Mode Detected in Production: actions expected [email member:exec@towerofbabel.com, "
                  "email team:on-call, pagerduty TowerOfBabel Payments (critical), slack #exec-alerts, "
                  "slack #payments-alerts], actual [email member:exec@towerofbabel.com, email team:on-call, "
                  "slack #exec-alerts, slack #payments-alerts]"),
        ("routing", "Test Mode Detected in Production: pagerduty route expected pagerduty TowerOfBabel "
                    "Payments, actual no PagerDuty action")]),
    "per-issue": (fault_per_issue, "Payment Failure Rate Spike", [
        ("field", "Payment Failure Rate Spike: counting expected across_events, actual per_issue"),
        ("semantic", "Payment Failure Rate Spike: counting expected > 10 matching events in 5m, across all "
                     "issues, actual per-issue: > 10 events of one issue in 5m")]),
    "event-types-error-only": (fault_event_types_error_only, "Usage Reporting Failure Rate", [
        ("field", "Usage Reporting Failure Rate: event types expected default, error, actual error"),
        ("semantic", "Usage Reporting Failure Rate: event types expected default, error, actual error")]),
    "any-occurrence-threshold-1": (fault_any_occurrence_threshold_1, "Reconciliation Discrepancy Detected", [
        ("field", "Reconciliation Discrepancy Detected: threshold expected 0, actual 1"),
        ("semantic", "Reconciliation Discrepancy Detected: threshold expected > 0 (any occurrence), actual > 1")]),
}


@pytest.mark.parametrize("generation", GENERATIONS)
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_single_fault_yields_exactly_its_finding(fault, generation):
    apply, name, expected = FAULTS[fault]
    raw = copy.deepcopy(world(generation))
    apply(raw)
    actual = read(raw).by_name(name)
    source = PER_ISSUE_SOURCES[generation] if fault == "per-issue" else SOURCES[generation][name]
    assert actual.source == source
    findings = all_findings(name, actual)
    got = [(f.kind, f.line().split(f" ({source})")[0]) for f in findings]
    assert got == expected
    for finding in findings:
        assert finding.line().startswith(f"{name}: {finding.field} expected ")
        assert f"({source})" in finding.line()
        if finding.kind == "semantic":
            assert "Fix:" in finding.hint


def test_semantic_hints_explain_why_and_how():
    raw = copy.deepcopy(world("legacy"))
    fault_event_types_error_only(raw)
    (finding,) = semantic_findings(SPEC.alert("Usage Reporting Failure Rate"),
                                   read(raw).by_name("Usage Reporting Failure Rate"), SPEC)
    assert "captureMessage events have type `default`" in finding.hint and "Fix: select both" in finding.hint
    raw = copy.deepcopy(world("workflow"))
    fault_any_occurrence_threshold_1(raw)
    (finding,) = semantic_findings(SPEC.alert("Reconciliation Discrepancy Detected"),
                                   read(raw).by_name("Reconciliation Discrepancy Detected"), SPEC)
    assert "misses the first" in finding.hint and "count() > 0" in finding.hint


# --- further semantics -----------------------------------------------------------------------------


def test_email_to_an_unknown_member_is_reported_with_reason():
    raw = copy.deepcopy(world("workflow"))
    action = _workflow(raw, "Usage Reporting Failure Rate")["actionFilters"][0]["actions"][1]
    action["config"]["targetIdentifier"] = "3984299"
    actual = read(raw).by_name("Usage Reporting Failure Rate")
    spec = SPEC.alert("Usage Reporting Failure Rate")
    assert [f.field for f in compare_alert(spec, actual, SPEC)] == ["actions"]
    (finding,) = semantic_findings(spec, actual, SPEC)
    assert finding.line().startswith("Usage Reporting Failure Rate: email expected ops@towerofbabel.com "
                                     "(member:ops@towerofbabel.com), actual email user:3984299 [unresolved]")
    assert "e-mails nobody" in finding.hint


def test_level_filter_inside_an_any_issue_rule_is_reported():
    raw = copy.deepcopy(world("legacy"))
    rule = next(r for r in raw["issue_rules"] if r["id"] == "611202")
    rule["filters"].append({"id": "sentry.rules.filters.level.LevelFilter", "match": "eq", "level": "40"})
    actual = next(a for a in read(raw).named("Webhook Processing Failure") if a.source == "issue_rule 611202")
    fields = [f.field for f in semantic_findings(SPEC.alert("Webhook Processing Failure"), actual, SPEC)]
    assert fields == ["counting", "window", "filter"]


def test_disabled_alert_and_performance_faults():
    actual = read(world("workflow")).by_name("PAYG Subscription Creation p95 Latency")
    budget = next(b for b in SPEC.performance.budgets if b.name == actual.name)
    broken = replace(actual, enabled=False, thresholds={"critical": 800.0, "warning": 300.0},
                     filter=parse("transaction:/api/subscription/*"),
                     actions=tuple(a for a in actual.actions if a.kind != "pagerduty"))
    lines = [f.line().split(" (detector")[0] for f in compare_performance(budget, SPEC.performance, broken, SPEC)]
    assert lines == [
        "PAYG Subscription Creation p95 Latency: enabled expected true, actual false",
        "PAYG Subscription Creation p95 Latency: transaction expected transaction:/api/subscription/payg/create, "
        "actual transaction:/api/subscription/*",
        "PAYG Subscription Creation p95 Latency: critical threshold expected 500, actual 800",
        "PAYG Subscription Creation p95 Latency: critical actions expected [pagerduty TowerOfBabel Payments "
        "(critical), slack #payments-alerts], actual [slack #payments-alerts]",
    ]


def test_medium_and_low_alerts_must_not_post_to_slack():
    actual = read(world("workflow")).by_name("Payment Failure Rate Spike")
    spec = SPEC.alert("Payment Failure Rate Spike")
    (finding,) = routing_findings(spec, SPEC.severity_routing["medium"], actual, SPEC)
    assert finding.kind == "routing"
    assert finding.line().startswith("Payment Failure Rate Spike: slack route expected no Slack notification "
                                     "(weekly digest e-mail), actual #payments-alerts")


def test_critical_routing_needs_on_call_and_pagerduty():
    actual = read(world("workflow")).by_name("Payment Failure Rate Spike")
    spec = SPEC.alert("Payment Failure Rate Spike")
    findings = routing_findings(spec, SPEC.severity_routing["critical"], actual, SPEC)
    assert [f.field for f in findings] == ["pagerduty route"]
    no_on_call = replace(actual, actions=tuple(a for a in actual.actions if a.target != "team:on-call"))
    assert [f.field for f in routing_findings(spec, SPEC.severity_routing["critical"], no_on_call, SPEC)] == [
        "on-call route", "pagerduty route"]


def test_alert_3_dedicated_channel_satisfies_the_high_route():
    actual = read(world("workflow")).by_name("Webhook Signature Verification Failure Spike")
    spec = SPEC.alert(actual.name)
    assert routing_findings(spec, SPEC.severity_routing["high"], actual, SPEC) == []
    no_slack = replace(actual, actions=tuple(a for a in actual.actions if a.kind != "slack"))
    (finding,) = routing_findings(spec, SPEC.severity_routing["high"], no_slack, SPEC)
    assert "expected #security-alerts, actual no Slack action" in finding.line()
