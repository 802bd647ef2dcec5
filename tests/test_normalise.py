"""paymon.rules.normalise: both alert generations read into one `Alert` model.

Input is the shared example JSON (copied to tests/data/sentry/, one consistent world: Slack
integration 187263, PagerDuty 187264 with service row 22451, team on-call 4509876, user ops@ 3984213).
"""

import copy
import json
from pathlib import Path

import pytest

from paymon.findings.alerts import disagreements
from paymon.rules.model import Action
from paymon.rules.normalise import (
    Directory,
    normalise_detector,
    normalise_issue_rule,
    normalise_metric_alert,
    normalise_workflow,
    read_alerts,
)
from paymon.rules.query import parse

DATA = Path(__file__).parent / "data" / "sentry"


def load(name: str) -> list[dict]:
    return json.loads((DATA / f"{name}.json").read_text())


@pytest.fixture(scope="module")
def directory() -> Directory:
    return Directory(load("members-list"), load("teams-list"), load("integrations-list"))


def by_id(items: list[dict], item_id: str) -> dict:
    return copy.deepcopy(next(i for i in items if str(i["id"]) == item_id))


# --- Directory -------------------------------------------------------------------------------------


def test_directory_resolves_ids_compared_as_strings(directory):
    assert directory.email_target("user", "3984213") == ("member:ops@towerofbabel.com", True)
    assert directory.email_target("Member", 3984214) == ("member:exec@towerofbabel.com", True)
    assert directory.email_target("Team", 4509876) == ("team:on-call", True)
    assert directory.email_target("team", "4509877") == ("team:security", True)
    assert directory.email_target("IssueOwners", None) == ("issue_owners", True)
    assert directory.email_target("user", "3984299") == ("user:3984299", False)
    assert directory.email_target("team", "1") == ("team:1", False)
    assert directory.pagerduty_service(22451, 187264) == ("TowerOfBabel Payments", True)
    assert directory.pagerduty_service("22451", "187264") == ("TowerOfBabel Payments", True)
    assert directory.pagerduty_service("99999", "187264", "Old service") == ("Old service", False)
    assert directory.slack_channel(("payments-alerts",), "C07PAYM3NT5", 187263) == ("#payments-alerts", True)
    assert directory.slack_channel((None, "C07PAYM3NT5"), "C07PAYM3NT5", "187263") == ("slack:C07PAYM3NT5", False)
    assert directory.slack_channel(("#x",), None, "999") == ("#x", False)  # Slack integration gone


# --- legacy issue rules ----------------------------------------------------------------------------


def test_issue_rule_with_any_filters_is_an_or_counted_per_issue(directory):
    alert = normalise_issue_rule(by_id(load("legacy-issue-rules-list"), "611202"), directory)
    assert alert.name == "Webhook Processing Failure"
    assert alert.source == "issue_rule 611202" and alert.generation == "legacy"
    assert alert.enabled and alert.environment == "production"
    assert alert.event_types is None and alert.levels == frozenset()
    assert alert.filter == parse('cron:webhook OR webhook:true OR message:"*webhook*"')
    assert (alert.aggregate, alert.comparator, alert.thresholds) == ("count()", ">", {"critical": 5.0})
    assert alert.window_seconds == 900 and alert.counting == "per_issue"
    assert alert.filter_match == "any" and alert.repeat_minutes == 10
    assert set(alert.actions) == {
        Action("slack", "#payments-alerts", "critical", None, "187263", "C07PAYM3NT5"),
        Action("pagerduty", "TowerOfBabel Payments", "critical", "critical", "187264", "22451"),
        Action("email", "team:on-call", "critical", None, None, "4509876"),
    }


def test_issue_rule_with_all_filters_moves_the_level_out(directory):
    alert = normalise_issue_rule(by_id(load("legacy-issue-rules-list"), "611206"), directory)
    assert alert.levels == {"fatal"}
    assert alert.filter == parse('message:"Test mode detected in production"')
    assert alert.thresholds == {"critical": 0.0} and alert.window_seconds == 60
    assert {a.describe() for a in alert.actions} == {
        "pagerduty TowerOfBabel Payments (critical)", "email team:on-call", "slack #payments-alerts",
        "slack #exec-alerts", "email member:exec@towerofbabel.com"}


def test_issue_rule_level_filter_inside_any_stays_in_the_or(directory):
    rule = by_id(load("legacy-issue-rules-list"), "611202")
    rule["filters"].append({"id": "sentry.rules.filters.level.LevelFilter", "match": "gte", "level": "40"})
    alert = normalise_issue_rule(rule, directory)
    assert alert.levels == frozenset()
    assert alert.filter == parse("cron:webhook OR webhook:true OR message:webhook OR level:[error,fatal]")


def test_issue_rule_without_frequency_condition_fires_on_every_event(directory):
    rule = by_id(load("legacy-issue-rules-list"), "611206")
    rule["conditions"] = [{"id": "sentry.rules.conditions.first_seen_event.FirstSeenEventCondition"}]
    alert = normalise_issue_rule(rule, directory)
    assert alert.thresholds == {"critical": 0.0} and alert.window_seconds is None


@pytest.mark.parametrize("change", [{"snooze": True}, {"status": "disabled"}])
def test_issue_rule_snoozed_or_disabled_is_not_enabled(directory, change):
    rule = by_id(load("legacy-issue-rules-list"), "611206") | change
    assert not normalise_issue_rule(rule, directory).enabled


def test_issue_rule_unknown_member_stays_unresolved(directory):
    rule = by_id(load("legacy-issue-rules-list"), "611206")
    rule["actions"][-1]["targetIdentifier"] = 3984299
    email = normalise_issue_rule(rule, directory).actions[-1]
    assert (email.target, email.resolved, email.describe()) == ("user:3984299", False, "email user:3984299 [unresolved]")


# --- legacy metric alerts --------------------------------------------------------------------------


def test_metric_alert_reads_window_thresholds_and_actions(directory):
    alert = normalise_metric_alert(by_id(load("legacy-metric-alert-rules-list"), "7101"), directory)
    assert alert.source == "metric_alert 7101" and alert.counting == "across_events"
    assert alert.window_seconds == 300 and alert.thresholds == {"critical": 10.0} and alert.comparator == ">"
    assert alert.event_types == {"default", "error"}
    assert alert.filter == parse('payment_flow:checkout OR message:checkout OR message:payment')
    assert {a.describe() for a in alert.actions} == {
        "slack #payments-alerts", "email team:on-call", "email member:ops@towerofbabel.com"}
    assert all(a.resolved for a in alert.actions)


def test_metric_alert_level_terms_become_levels(directory):
    rules = load("legacy-metric-alert-rules-list")
    signature = normalise_metric_alert(by_id(rules, "7103"), directory)
    assert signature.levels == {"warning"}
    assert signature.filter == parse('message:"Invalid webhook signature" OR message:"signature verification failed"')
    reconciliation = normalise_metric_alert(by_id(rules, "7105"), directory)
    assert reconciliation.levels == {"error", "warning"} and reconciliation.thresholds == {"critical": 0.0}


def test_metric_alert_warning_trigger_and_pagerduty_priority(directory):
    alert = normalise_metric_alert(by_id(load("legacy-metric-alert-rules-list"), "7111"), directory)
    assert alert.thresholds == {"critical": 1000.0, "warning": 500.0}
    assert alert.aggregate == "p95(transaction.duration)" and alert.dataset == "transactions"
    assert alert.filter == parse("transaction:/api/checkout/pro")
    assert sorted((a.fires_at, a.describe()) for a in alert.actions) == [
        ("critical", "pagerduty TowerOfBabel Payments (critical)"),
        ("critical", "slack #payments-alerts"),
        ("warning", "slack #payments-alerts"),
    ]


@pytest.mark.parametrize(
    "change, enabled",
    [({"status": 0}, True), ({"status": 5}, False), ({"status": 4}, False), ({"status": 6}, False),
     ({"snooze": True}, False), ({"snooze": None}, True)],
)
def test_metric_alert_enabled_means_running_and_not_snoozed(directory, change, enabled):
    rule = by_id(load("legacy-metric-alert-rules-list"), "7101") | change
    assert normalise_metric_alert(rule, directory).enabled is enabled


def test_metric_alert_below_threshold_and_coerced_numbers(directory):
    rule = by_id(load("legacy-metric-alert-rules-list"), "7101")
    rule |= {"thresholdType": 1, "timeWindow": "10"}
    rule["triggers"][0]["alertThreshold"] = "80"
    alert = normalise_metric_alert(rule, directory)
    assert (alert.comparator, alert.thresholds, alert.window_seconds) == ("<", {"critical": 80.0}, 600)


def test_span_based_metric_alert_is_the_transaction_alert(directory):
    rule = by_id(load("legacy-metric-alert-rules-list"), "7111")
    rule |= {"dataset": "events_analytics_platform", "aggregate": "p95(span.duration)",
             "query": "is_transaction:true transaction:/api/checkout/pro", "eventTypes": ["trace_item_span"]}
    alert = normalise_metric_alert(rule, directory)
    assert alert.aggregate == "p95(transaction.duration)" and alert.dataset == "transactions"
    assert alert.filter == parse("transaction:/api/checkout/pro") and alert.event_types == {"transaction"}


def test_percentile_aggregate_and_generic_metrics(directory):
    rule = by_id(load("legacy-metric-alert-rules-list"), "7111")
    rule |= {"dataset": "generic_metrics", "aggregate": "percentile(transaction.duration, 0.95)"}
    alert = normalise_metric_alert(rule, directory)
    assert alert.aggregate == "p95(transaction.duration)" and alert.dataset == "transactions"


# --- workflow engine -------------------------------------------------------------------------------


def test_metric_detector_with_its_workflow(directory):
    detector = by_id(load("detectors-list"), "5801004")
    alert = normalise_detector(detector, load("workflows-list"), directory)
    assert alert.source == "detector 5801004 + workflow 9301001" and alert.generation == "workflow"
    assert alert.window_seconds == 600 and alert.thresholds == {"critical": 5.0} and alert.comparator == ">"
    assert alert.environment == "production" and alert.repeat_minutes == 10 and alert.enabled
    assert {a.describe() for a in alert.actions} == {
        "slack #payments-alerts", "pagerduty TowerOfBabel Payments (critical)", "email team:on-call"}


def test_p95_detector_priority_groups_set_fires_at(directory):
    alert = normalise_detector(by_id(load("detectors-list"), "5801010"), load("workflows-list"), directory)
    assert alert.thresholds == {"critical": 2000.0, "warning": 1000.0}
    assert alert.aggregate == "p95(transaction.duration)" and alert.dataset == "transactions"
    assert alert.filter == parse("transaction:/api/webhooks/lemonsqueezy")
    assert sorted((a.fires_at, a.describe()) for a in alert.actions) == [
        ("critical", "pagerduty TowerOfBabel Payments (critical)"),
        ("critical", "slack #payments-alerts"),
        ("warning", "slack #payments-alerts"),
    ]


def test_detector_environment_falls_back_to_the_workflow(directory):
    detector = by_id(load("detectors-list"), "5801003")
    detector["dataSources"][0]["queryObj"]["snubaQuery"]["environment"] = None
    assert normalise_detector(detector, load("workflows-list"), directory).environment == "production"


def test_detector_or_workflow_disabled_disables_the_alert(directory):
    detector = by_id(load("detectors-list"), "5801003")
    workflows = copy.deepcopy(load("workflows-list"))
    assert normalise_detector(detector | {"enabled": False}, workflows, directory).enabled is False
    next(w for w in workflows if w["id"] == "9301000")["enabled"] = False
    assert normalise_detector(detector, workflows, directory).enabled is False


def test_non_metric_detectors_are_not_metric_alerts(directory):
    assert normalise_detector(by_id(load("detectors-list"), "5801002"), load("workflows-list"), directory) is None


def test_issue_workflow_reads_filters_and_frequency_from_action_filters(directory):
    detectors = {d["id"]: d for d in load("detectors-list")}
    alert = normalise_workflow(by_id(load("workflows-list"), "9301005"), detectors, directory)
    assert alert.source == "workflow 9301005 + detector 5801002"
    assert alert.levels == {"fatal"} and alert.filter == parse('message:"Test mode detected in production"')
    assert alert.thresholds == {"critical": 0.0} and alert.window_seconds == 60
    assert alert.counting == "per_issue" and alert.event_types is None and alert.filter_match == "all"
    assert len(alert.actions) == 5 and all(a.resolved for a in alert.actions)


def test_issue_workflow_frequency_in_triggers_is_read_too(directory):
    detectors = {d["id"]: d for d in load("detectors-list")}
    workflow = by_id(load("workflows-list"), "9301005")
    group = workflow["actionFilters"][0]
    frequency = group["conditions"].pop(0)
    frequency["comparison"] = {"value": 3, "interval": "15m"}
    workflow["triggers"]["conditions"].append(frequency)
    alert = normalise_workflow(workflow, detectors, directory)
    assert alert.thresholds == {"critical": 3.0} and alert.window_seconds == 900


def test_workflow_serving_only_metric_detectors_is_not_an_issue_alert(directory):
    detectors = {d["id"]: d for d in load("detectors-list")}
    assert normalise_workflow(by_id(load("workflows-list"), "9301000"), detectors, directory) is None


# --- read_alerts and de-duplication ----------------------------------------------------------------


def test_read_alerts_prefers_the_workflow_record_and_keeps_the_legacy_copies(directory):
    alerts = read_alerts(load("legacy-issue-rules-list"), load("legacy-metric-alert-rules-list"),
                         load("detectors-list"), load("workflows-list"), directory)
    assert len(alerts.all) == 2 + 9 + 9 + 1
    records = alerts.named("Webhook Processing Failure")
    assert [r.source for r in records] == ["detector 5801004 + workflow 9301001", "metric_alert 7102",
                                           "issue_rule 611202"]
    assert alerts.by_name("webhook processing  failure") is records[0]
    assert alerts.by_name("No such alert") is None
    lines = [f.line() for f in disagreements(alerts)]
    assert lines == [
        "Webhook Processing Failure: window expected 600s, actual 900s (issue_rule 611202 vs detector "
        "5801004 + workflow 9301001) — the copies in the two alerting generations disagree; fix or "
        "delete the stale one",
        "Webhook Processing Failure: counting expected across_events, actual per_issue (issue_rule 611202 "
        "vs detector 5801004 + workflow 9301001) — the copies in the two alerting generations disagree; "
        "fix or delete the stale one",
    ]


def test_read_alerts_legacy_only_prefers_the_metric_alert(directory):
    alerts = read_alerts(load("legacy-issue-rules-list"), load("legacy-metric-alert-rules-list"), [], [], directory)
    assert alerts.by_name("Webhook Processing Failure").source == "metric_alert 7102"
    assert alerts.by_name("Test Mode Detected in Production").source == "issue_rule 611206"


def test_read_alerts_tolerates_missing_generations(directory):
    assert read_alerts(None, None, None, None, directory).all == []
