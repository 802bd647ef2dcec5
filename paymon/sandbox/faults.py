"""Named one-fault worlds: each breaks exactly one thing the guide asks for.

`apply_fault(world, name)` returns a deep copy with the fault applied to every alerting generation
present in the world (legacy rules and/or detectors + workflows, as a dual-written org would show
the change in both), so the same fault works on the legacy, workflow and both golden worlds. A
fault that finds nothing to break raises, rather than silently returning an unchanged world.
"""

from __future__ import annotations

import copy
import uuid
from collections.abc import Callable

from paymon.errors import ConfigError

SLACK_SECURITY = {"channel": "#security-alerts", "id": "C07S3CUR1TY"}
PAGERDUTY_INTEGRATION_ID = "187264"


class _Changes:
    """Counts what a fault touched, so a fault that matched nothing is an error."""

    def __init__(self, fault: str):
        self.fault, self.count = fault, 0

    def __call__(self, n: int = 1) -> None:
        self.count += n

    def require(self) -> None:
        if not self.count:
            raise ConfigError(f"fault {self.fault!r} found nothing to change in this world")


# --- lookups -------------------------------------------------------------------------------------

def _production(sentry: dict) -> dict:
    """The configured project (the world's first): other projects' same-named alerts stay as they are."""
    return sentry["projects"][0]


def _metric_rules(sentry: dict, name: str) -> list[dict]:
    slug = _production(sentry)["slug"]
    return [r for r in sentry.get("metric_alert_rules", []) if r["name"] == name and slug in r.get("projects", [])]


def _issue_rules(sentry: dict, name: str) -> list[dict]:
    return [r for rules in sentry.get("issue_rules", {}).values() for r in rules if r["name"] == name]


def _detectors(sentry: dict, name: str, type_: str = "metric_issue") -> list[dict]:
    project_id = str(_production(sentry)["id"])
    return [d for d in sentry.get("detectors", [])
            if d["name"] == name and d["type"] == type_ and str(d.get("projectId")) == project_id]


def _workflows(sentry: dict, name: str) -> list[dict]:
    return [w for w in sentry.get("workflows", []) if w["name"] == name]


def _snuba_queries(detector: dict) -> list[dict]:
    return [s["queryObj"]["snubaQuery"] for s in detector.get("dataSources") or []
            if s.get("type") == "snuba_query_subscription"]


def _workflow_actions(workflow: dict) -> list[dict]:
    return [a for group in workflow.get("actionFilters", []) for a in group.get("actions", [])]


def _critical_trigger(rule: dict) -> dict:
    return next(t for t in rule["triggers"] if t["label"] == "critical")


def _detector_condition(detector: dict, priority: int) -> dict:
    return next(c for c in detector["conditionGroup"]["conditions"]
                if c["type"] == "gt" and c["conditionResult"] == priority)


# --- the faults ----------------------------------------------------------------------------------

def _threshold(sentry: dict, changed: _Changes) -> None:
    """Alert 1's critical threshold 10 -> 20 (the resolve condition follows, as the UI keeps it)."""
    for rule in _metric_rules(sentry, "Payment Failure Rate Spike"):
        _critical_trigger(rule)["alertThreshold"] = 20.0
        changed()
    for detector in _detectors(sentry, "Payment Failure Rate Spike"):
        for condition in detector["conditionGroup"]["conditions"]:
            if condition["comparison"] == 10:
                condition["comparison"] = 20
                changed()


def _window(sentry: dict, changed: _Changes) -> None:
    """Alert 2's window 10 -> 15 minutes (AlertRule.timeWindow minutes, snubaQuery seconds)."""
    for rule in _metric_rules(sentry, "Webhook Processing Failure"):
        rule["timeWindow"] = 15.0
        changed()
    for detector in _detectors(sentry, "Webhook Processing Failure"):
        for query in _snuba_queries(detector):
            query["timeWindow"] = 900
            changed()


def _environment_missing(sentry: dict, changed: _Changes) -> None:
    """Alert 4 watches every environment instead of production."""
    name = "Usage Reporting Failure Rate"
    for rule in _metric_rules(sentry, name):
        rule["environment"] = None
        changed()
    for detector in _detectors(sentry, name):
        for query in _snuba_queries(detector):
            query["environment"] = None
            changed()
    for workflow in _workflows(sentry, name):
        workflow["environment"] = None
        changed()


def _slack_wrong_channel(sentry: dict, changed: _Changes) -> None:
    """Alert 1 posts to #security-alerts instead of #payments-alerts."""
    name = "Payment Failure Rate Spike"
    for rule in _metric_rules(sentry, name):
        for trigger in rule["triggers"]:
            for action in trigger["actions"]:
                if action["type"] == "slack":
                    action["targetIdentifier"] = SLACK_SECURITY["channel"]
                    action["inputChannelId"] = SLACK_SECURITY["id"]
                    action["desc"] = f"Send a Slack notification to {SLACK_SECURITY['channel']}"
                    changed()
    for rule in _issue_rules(sentry, name):  # the per-issue variant, if both faults are stacked
        for action in rule["actions"]:
            if action["id"].endswith("SlackNotifyServiceAction"):
                action.update(channel=SLACK_SECURITY["channel"], channel_id=SLACK_SECURITY["id"])
                changed()
    for workflow in _workflows(sentry, name):
        for action in _workflow_actions(workflow):
            if action["type"] == "slack":
                action["config"]["targetIdentifier"] = SLACK_SECURITY["id"]
                action["config"]["targetDisplay"] = SLACK_SECURITY["channel"]
                changed()


def _pagerduty_missing(sentry: dict, changed: _Changes) -> None:
    """Alert 6 no longer pages: its PagerDuty action is removed."""
    name = "Test Mode Detected in Production"
    for rule in _issue_rules(sentry, name):
        before = len(rule["actions"])
        rule["actions"] = [a for a in rule["actions"] if not a["id"].endswith("PagerDutyNotifyServiceAction")]
        changed(before - len(rule["actions"]))
    for rule in _metric_rules(sentry, name):
        for trigger in rule["triggers"]:
            before = len(trigger["actions"])
            trigger["actions"] = [a for a in trigger["actions"] if a["type"] != "pagerduty"]
            changed(before - len(trigger["actions"]))
    for workflow in _workflows(sentry, name):
        for group in workflow["actionFilters"]:
            before = len(group["actions"])
            group["actions"] = [a for a in group["actions"] if a["type"] != "pagerduty"]
            changed(before - len(group["actions"]))


def _rule_disabled(sentry: dict, changed: _Changes) -> None:
    """Alert 3 is switched off.

    A disabled metric alert keeps being listed with `status: 5` (AlertRuleStatus.DISABLED; the
    manager only hides snapshots, status 4) — `snooze` is a per-user mute, not "disabled". In the
    workflow engine both the detector and its workflow carry `enabled: false`."""
    name = "Webhook Signature Verification Failure Spike"
    for rule in _metric_rules(sentry, name):
        rule["status"] = 5
        changed()
    for obj in _detectors(sentry, name) + _workflows(sentry, name):
        obj["enabled"] = False
        changed()


def _per_issue(sentry: dict, changed: _Changes) -> None:
    """Alert 1 counts one issue's events (> 10 in 5m) instead of all matching events: the metric
    alert / metric detector is replaced by an issue rule / a workflow on the project's error
    detector with the same filters and actions."""
    name = "Payment Failure Rate Spike"
    for rule in _metric_rules(sentry, name):
        sentry["metric_alert_rules"].remove(rule)
        for slug in rule["projects"]:
            sentry.setdefault("issue_rules", {}).setdefault(slug, []).append(_per_issue_rule(rule))
        changed()
    for detector in _detectors(sentry, name):
        sentry["detectors"].remove(detector)
        error_detector = next(d for d in sentry["detectors"]
                              if d["type"] == "error" and d["projectId"] == detector["projectId"])
        for workflow in sentry.get("workflows", []):
            if detector["id"] in workflow["detectorIds"]:
                workflow["detectorIds"] = [error_detector["id"]]
                error_detector["workflowIds"].append(workflow["id"])
                _make_per_issue_workflow(workflow, sentry["organization"]["id"])
        changed()


_FILTER_CLASS = "sentry.rules.filters"


def _per_issue_rule(metric_rule: dict) -> dict:
    """The issue rule a user builds for alert 1 in the legacy UI (ids as the server renders them)."""
    slack, *emails = _critical_trigger(metric_rule)["actions"]
    return {
        "id": "611201",
        "conditions": [{"id": "sentry.rules.conditions.event_frequency.EventFrequencyCondition",
                        "comparisonType": "count", "interval": "5m", "value": 10,
                        "name": "The issue is seen more than 10 times in 5m"}],
        "filters": [
            {"id": f"{_FILTER_CLASS}.tagged_event.TaggedEventFilter", "key": "payment_flow", "match": "eq",
             "value": "checkout", "name": "The event's tags match payment_flow equals checkout"},
            {"id": f"{_FILTER_CLASS}.event_attribute.EventAttributeFilter", "attribute": "message", "match": "co",
             "value": "checkout", "name": "The event's message value contains checkout"},
            {"id": f"{_FILTER_CLASS}.event_attribute.EventAttributeFilter", "attribute": "message", "match": "co",
             "value": "payment", "name": "The event's message value contains payment"},
        ],
        "actions": [
            _slack_issue_action(slack, "611201", metric_rule),
            *[_email_action(a) for a in emails],
        ],
        "actionMatch": "all",
        "filterMatch": "any",
        "frequency": 5,
        "name": metric_rule["name"],
        "dateCreated": metric_rule["dateCreated"],
        "owner": metric_rule["owner"],
        "createdBy": metric_rule["createdBy"],
        "environment": metric_rule["environment"],
        "projects": list(metric_rule["projects"]),
        "status": "active",
        "snooze": False,
    }


def _slack_issue_action(slack: dict, rule_id: str, metric_rule: dict) -> dict:
    """The Slack action of an issue rule a user rebuilt from a metric rule's critical trigger. The
    runbook link moves with the rule (an issue alert carries it in its Slack notes): a world's one
    fault is the rule's form, not a dropped link."""
    notes = metric_rule.get("description") or ""
    return {"id": "sentry.integrations.slack.notify_action.SlackNotifyServiceAction",
            "workspace": str(slack["integrationId"]), "channel": slack["targetIdentifier"],
            "channel_id": slack["inputChannelId"], "tags": "environment,level", "notes": notes,
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"paymon/{rule_id}/slack")),
            "name": f"Send a notification to the TowerOfBabel Slack workspace to {slack['targetIdentifier']} "
                    f"(optionally, an ID: {slack['inputChannelId']}) and show tags [environment,level] "
                    f"and notes {notes} in notification"}


def _email_action(trigger_action: dict) -> dict:
    target_type = {"team": "Team", "user": "Member"}[trigger_action["targetType"]]
    fallthrough = "ActiveMembers" if target_type == "Team" else "NoOne"
    return {"id": "sentry.mail.actions.NotifyEmailAction", "targetType": target_type,
            "targetIdentifier": int(trigger_action["targetIdentifier"]), "fallthroughType": fallthrough,
            "uuid": str(uuid.uuid5(uuid.NAMESPACE_URL, f"paymon/611201/{trigger_action['id']}")),
            "name": f"Send a notification to {target_type} and if none can be found then send a "
                    f"notification to {fallthrough}"}


def _make_per_issue_workflow(workflow: dict, organization_id: str) -> None:
    """Rewrite alert 1's workflow as a per-issue one on the error detector.

    The frequency condition goes into `triggers` (logicType "all"), the three ORed filters into one
    "any-short" action-filter group: a workflow runs a group's actions only when triggers *and* the
    group pass, which is "> 10 events of this issue in 5m AND (tag OR message OR message)". Putting
    the frequency into the ORed group would change the meaning (that is how the early legacy
    migration stored rule conditions, so verifiers read both places)."""
    workflow["triggers"] = {
        "id": workflow["triggers"]["id"] if workflow.get("triggers") else "8801900",
        "organizationId": organization_id, "logicType": "all",
        "conditions": [{"id": "8801901", "type": "event_frequency_count",
                        "comparison": {"value": 10, "interval": "5m"}, "conditionResult": True}],
        "actions": [],
    }
    group = workflow["actionFilters"][0]
    group["logicType"] = "any-short"
    group["conditions"] = [
        {"id": "8801902", "type": "tagged_event",
         "comparison": {"key": "payment_flow", "match": "eq", "value": "checkout"}, "conditionResult": True},
        {"id": "8801903", "type": "event_attribute",
         "comparison": {"attribute": "message", "match": "co", "value": "checkout"}, "conditionResult": True},
        {"id": "8801904", "type": "event_attribute",
         "comparison": {"attribute": "message", "match": "co", "value": "payment"}, "conditionResult": True},
    ]
    workflow["actionFilters"] = [group]


def _widget_missing(sentry: dict, changed: _Changes) -> None:
    """The "Webhook Processing Time" widget is gone from the Payment Monitoring dashboard."""
    for dashboard in sentry.get("dashboards", []):
        before = len(dashboard["widgets"])
        dashboard["widgets"] = [w for w in dashboard["widgets"] if w["title"] != "Webhook Processing Time"]
        changed(before - len(dashboard["widgets"]))


def _widget(sentry: dict, title: str) -> list[dict]:
    return [w for d in sentry.get("dashboards", []) for w in d["widgets"] if w["title"] == title]


def _widget_trend_changed(sentry: dict, changed: _Changes) -> None:
    """The Payment Monitoring dashboard shows the last 24 hours: widget 1's 7-day trend is gone."""
    for dashboard in sentry.get("dashboards", []):
        if dashboard.get("title") == "Payment Monitoring" and dashboard.get("period") != "24h":
            dashboard["period"] = "24h"
            changed()


def _widget_thresholds_dropped(sentry: dict, changed: _Changes) -> None:
    """Widget 3 no longer states its warning/critical thresholds (1000/2000 ms)."""
    for widget in _widget(sentry, "Webhook Processing Time"):
        widget["description"] = None
        changed()


def _widget_success_rate_dropped(sentry: dict, changed: _Changes) -> None:
    """Widget 5 shows the failure rate only: its "(1 - failure_rate()) * 100" success rate is removed."""
    for widget in _widget(sentry, "Usage Reporting Success Rate"):
        for query in widget["queries"]:
            for key in ("fields", "aggregates"):
                query[key] = [a for a in query[key] if not a.startswith("equation|")]
            query["fieldAliases"] = query["fieldAliases"][:len(query["fields"])]
        changed()


def _perf_window(sentry: dict, changed: _Changes) -> None:
    """The p95 alert of /api/checkout/pro judges 15 minutes, not monitoring.yaml's 10 (a window the
    guide does not give: an interpretation, so a warning)."""
    name = "Checkout p95 Latency (/api/checkout/pro)"
    for rule in _metric_rules(sentry, name):
        rule["timeWindow"] = 15.0
        changed()
    for detector in _detectors(sentry, name):
        for query in _snuba_queries(detector):
            query["timeWindow"] = 900
            changed()


def _right_rule_wrong_project(sentry: dict, changed: _Changes) -> None:
    """Alert 2, exactly as the guide wants it, but in the staging project (the org-level lists show
    it; it never sees production's events)."""
    staging = next(p for p in sentry["projects"] if p["slug"] == "towerofbabel-staging")
    for rule in _metric_rules(sentry, "Webhook Processing Failure"):
        rule["projects"] = [staging["slug"]]
        changed()
    for detector in _detectors(sentry, "Webhook Processing Failure"):
        detector["projectId"] = str(staging["id"])
        changed()


def _token_sees_no_project(sentry: dict, changed: _Changes) -> None:
    """paymon's token belongs to a member of no team with a project (open membership off): every
    org-level list and events query answers empty, as if nothing had happened."""
    for token in sentry.get("tokens", []):
        token["projects"] = []
        changed()


def _integration_disabled(sentry: dict, changed: _Changes) -> None:
    """The PagerDuty integration is disabled (alerts keep their action but nothing is sent)."""
    for integration in sentry.get("integrations", []):
        if integration["provider"]["key"] == "pagerduty":
            integration["status"] = "disabled"
            changed()


def _cron_wrong_hour(sentry: dict, changed: _Changes) -> None:
    """The reconciliation monitor expects 03:00 UTC instead of 02:00 (past check-ins keep the
    config snapshot they were taken with)."""
    monitors = [m for m in sentry.get("monitors", []) if m["slug"] == "reconciliation-daily"]
    monitors += [s["queryObj"] for d in sentry.get("detectors", []) if d["type"] == "monitor_check_in_failure"
                 for s in d.get("dataSources") or [] if s["queryObj"].get("slug") == "reconciliation-daily"]
    for monitor in monitors:
        monitor["config"]["schedule"] = "0 3 * * *"
        for environment in monitor.get("environments", []):
            for key in ("nextCheckIn", "nextCheckInLatest"):
                if environment.get(key):
                    environment[key] = environment[key].replace("T02:", "T03:")
        changed()


def _perf_threshold(sentry: dict, changed: _Changes) -> None:
    """The p95 budget of /api/subscription/payg/create: critical 500 -> 800 ms."""
    name = "PAYG Subscription Creation p95 Latency"
    for rule in _metric_rules(sentry, name):
        _critical_trigger(rule)["alertThreshold"] = 800.0
        changed()
    for detector in _detectors(sentry, name):
        _detector_condition(detector, 75)["comparison"] = 800
        changed()


def _event_types_error_only(sentry: dict, changed: _Changes) -> None:
    """Alert 4 counts error events only, so captureMessage ("default") events never trip it."""
    name = "Usage Reporting Failure Rate"
    for rule in _metric_rules(sentry, name):
        rule["eventTypes"] = ["error"]
        changed()
    for detector in _detectors(sentry, name):
        for query in _snuba_queries(detector):
            query["eventTypes"] = ["error"]
            changed()


# --- the delivery path: what a "send test notification" button never exercises ------------------

PAYMENTS_ALERTS = "C07PAYM3NT5"
SENTRY_BOT_USER = "U07SENTRYBT"
PAGERDUTY_SERVICE = "PTOWPAY"


def _synthetic_slack_action_removed(sentry: dict, changed: _Changes) -> None:
    """The synthetic Slack check's rule loses its Slack action (it still exists, it just says nothing)."""
    name = "paymon synthetic check: Slack"
    for rule in _issue_rules(sentry, name):
        rule["actions"] = [a for a in rule["actions"] if "slack" not in a["id"]]
        changed()
    for workflow in _workflows(sentry, name):
        for group in workflow["actionFilters"]:
            group["actions"] = [a for a in group["actions"] if a["type"] != "slack"]
        changed()


def _channel_archived(world: dict, changed: _Changes) -> None:
    for channel in world["slack"]["channels"]:
        if channel["id"] == PAYMENTS_ALERTS:
            channel["is_archived"] = True
            changed()


ON_CALL_SLACK_USER = "U07ADAOKNW"  # Ada Okonkwo: on call at level 1 in PagerDuty (PUONCAL)


def _on_call_not_in_channel(world: dict, changed: _Changes) -> None:
    """The engineer on call now left #payments-alerts (or was never invited)."""
    members = world["slack"]["members"].get(PAYMENTS_ALERTS, [])
    if ON_CALL_SLACK_USER in members:
        members.remove(ON_CALL_SLACK_USER)
        changed()


def _channel_purpose_changed(world: dict, changed: _Changes) -> None:
    """#payments-alerts' purpose no longer says what §3 gives it."""
    for channel in world["slack"]["channels"]:
        if channel["id"] == PAYMENTS_ALERTS:
            channel["purpose"]["value"] = "Sentry + PagerDuty noise, muted"
            changed()


def _bot_not_in_channel(world: dict, changed: _Changes) -> None:
    members = world["slack"]["members"].get(PAYMENTS_ALERTS, [])
    if SENTRY_BOT_USER in members:
        members.remove(SENTRY_BOT_USER)
        changed()


def _others_talk_at_once(world: dict) -> None:
    """The alert channel's other voices (paymon/sandbox/slack/models.py knob `voices`) speak within
    a second of a firing, inside the short test deadlines: PagerDuty's app ("Triggered: ..."), and the
    on-call asking about the alert by name, pasting the issue's title (markers included)."""
    voices = world["slack"].setdefault("knobs", {}).setdefault("voices", {})
    voices["pagerduty_app"] = {"bot": "pagerduty", "services": {PAGERDUTY_SERVICE: ["#payments-alerts"]}, "delay": 1.0}
    voices["people"] = {"user": "U07ONCALL01", "channels": ["#payments-alerts"], "delay": 1.0, "alerts": None,
                        "quote_issue": True}


def _synthetic_slack_removed_others_talk(world: dict, changed: _Changes) -> None:
    """The synthetic Slack check's route is broken (its Slack action removed) while PagerDuty's app
    and a person talk about the alert in #payments-alerts, the person quoting the test event."""
    _synthetic_slack_action_removed(world["sentry"], changed)
    _others_talk_at_once(world)


def _test_mode_slack_removed_others_talk(world: dict, changed: _Changes) -> None:
    """Alert 6 no longer posts to #payments-alerts (its other actions stay: it still pages), while
    PagerDuty's app posts the page there and a person asks about the alert by name."""
    name = "Test Mode Detected in Production"
    for rule in _issue_rules(world["sentry"], name):
        rule["actions"] = [a for a in rule["actions"] if not (a["id"].endswith("SlackNotifyServiceAction")
                                                              and a.get("channel_id") == PAYMENTS_ALERTS)]
        changed()
    for rule in _metric_rules(world["sentry"], name):
        for trigger in rule["triggers"]:
            trigger["actions"] = [a for a in trigger["actions"]
                                  if not (a["type"] == "slack" and a.get("inputChannelId") == PAYMENTS_ALERTS)]
        changed()
    for workflow in _workflows(world["sentry"], name):
        for group in workflow["actionFilters"]:
            group["actions"] = [a for a in group["actions"] if not (
                a["type"] == "slack" and (a.get("config") or {}).get("targetIdentifier") == PAYMENTS_ALERTS)]
        changed()
    _others_talk_at_once(world)


def _bot_not_in_channel_without_public_scope(world: dict, changed: _Changes) -> None:
    """Sentry's bot left #payments-alerts, and Sentry's Slack app lacks chat:write.public (installed
    before it asked for it): every post there fails with not_in_channel."""
    _bot_not_in_channel(world, changed)
    for token in world["slack"]["tokens"]:
        if token["user_id"] == SENTRY_BOT_USER and "chat:write.public" in token["scopes"]:
            token["scopes"].remove("chat:write.public")
            changed()
    for integration in world["sentry"]["integrations"]:
        if (integration.get("provider") or {}).get("key") == "slack" and "chat:write.public" in (
                integration.get("scopes") or []):
            integration["scopes"].remove("chat:write.public")
            changed()


def _pagerduty_service_disabled(world: dict, changed: _Changes) -> None:
    for service in world["pagerduty"]["services"]:
        if service["id"] == PAGERDUTY_SERVICE:
            service["status"] = "disabled"
            changed()


def _pagerduty_service(world: dict) -> dict:
    return next(s for s in world["pagerduty"]["services"] if s["id"] == PAGERDUTY_SERVICE)


def _pagerduty_level(world: dict, level: int) -> dict:
    policy_id = _pagerduty_service(world)["escalation_policy"]["id"]
    policy = next(p for p in world["pagerduty"]["escalation_policies"] if p["id"] == policy_id)
    return policy["escalation_rules"][level - 1]


def _pagerduty_nobody_on_call(world: dict, changed: _Changes) -> None:
    """The primary rotation ended last year (nobody renewed it): level 1 has nobody on call."""
    for target in _pagerduty_level(world, 1)["targets"]:
        for schedule in world["pagerduty"]["schedules"]:
            if schedule["id"] == target["id"]:
                for layer in schedule["schedule_layers"]:
                    layer["end"] = "2025-09-08T09:00:00Z"
                    changed()


def _pagerduty_urgency_constant_low(world: dict, changed: _Changes) -> None:
    _pagerduty_service(world)["incident_urgency_rule"] = {"type": "constant", "urgency": "low"}
    changed()


def _pagerduty_no_high_urgency_rules(world: dict, changed: _Changes) -> None:
    """The on-call engineer's profile keeps only the low-urgency e-mail rule."""
    for target in _pagerduty_level(world, 1)["targets"]:
        schedule = next(s for s in world["pagerduty"]["schedules"] if s["id"] == target["id"])
        for layer in schedule["schedule_layers"]:
            for entry in layer["users"]:
                user = next(u for u in world["pagerduty"]["users"] if u["id"] == entry["user"]["id"])
                before = len(user["notification_rules"])
                user["notification_rules"] = [r for r in user["notification_rules"] if r.get("urgency") == "low"]
                changed(before - len(user["notification_rules"]))


def _pagerduty_lead_after_two_hours(world: dict, changed: _Changes) -> None:
    _pagerduty_level(world, 1)["escalation_delay_in_minutes"] = 120
    changed()


def _pagerduty_nobody_acknowledges(world: dict, changed: _Changes) -> None:
    world["pagerduty"]["knobs"]["acknowledge_after"] = None
    changed()


def _pagerduty_maintenance(world: dict, changed: _Changes) -> None:
    world["pagerduty"]["knobs"]["maintenance"] = [PAGERDUTY_SERVICE]
    changed()


def _wrong_routing_key(world: dict, changed: _Changes) -> None:
    """Sentry's service table holds a routing key PagerDuty does not know (a rotated integration)."""
    for integration in world["sentry"]["integrations"]:
        for row in (integration.get("configData") or {}).get("service_table") or []:
            row["integration_key"] = "0" * 32
            changed()


def _slack_late(world: dict, changed: _Changes) -> None:
    """Sentry's Slack posts arrive 5 s late (past the 4 s deadline the tests use)."""
    world["sentry"]["knobs"].setdefault("delivery_delay", {})["slack"] = 5.0
    changed()


def _pagerduty_late(world: dict, changed: _Changes) -> None:
    world["sentry"]["knobs"].setdefault("delivery_delay", {})["pagerduty"] = 9.0
    changed()


# --- the payment app (world["app"]): what Sentry has seen of it --------------------------------------

def _app(world: dict, changed: _Changes) -> dict:
    app = world.get("app")
    if app is None:
        raise ConfigError(f"fault {changed.fault!r} needs the world's payment app ('app')")
    return app


def _app_knob(key: str, value) -> Callable[[dict, _Changes], None]:
    def fault(world: dict, changed: _Changes) -> None:
        knobs = _app(world, changed).setdefault("knobs", {})
        if knobs.get(key) != value:
            knobs[key] = value
            changed()
    return fault


def _app_history(key: str, value) -> Callable[[dict, _Changes], None]:
    def fault(world: dict, changed: _Changes) -> None:
        history = _app(world, changed).setdefault("history", {})
        if history.get(key) != value:
            history[key] = copy.deepcopy(value)
            changed()
    return fault


def _reconciliation_issue_open(world: dict, changed: _Changes) -> None:
    """Lemon Squeezy says the synthetic Pro subscription is cancelled, the app's DB says active (a
    missed webhook): last nights' runs reported "reconciliation discrepancies detected", unresolved."""
    app = _app(world, changed)
    rows = [{k: v for k, v in r.items() if k not in ("user_id", "tier")}  # LS knows no app user ids
            for r in app.get("subscriptions", []) if r.get("status") != "pending"]
    for row in rows:
        if row["id"] == "1287450":
            row["status"] = "cancelled"
            changed()
    app.setdefault("lemonsqueezy", {})["subscriptions"] = rows


# --- the operations runbook (world["gitlab"]: the repository file paymon reads) ----------------------

RUNBOOK_FILE = "docs/payment-monitoring.md"


def _runbook_files(world: dict, changed: _Changes) -> list[dict]:
    files = [p["files"][RUNBOOK_FILE] for p in (world.get("gitlab") or {}).get("projects", [])
             if RUNBOOK_FILE in p.get("files", {})]
    if not files:
        raise ConfigError(f"fault {changed.fault!r} needs the world's runbook ('gitlab', {RUNBOOK_FILE})")
    return files


def _runbook_section_missing(world: dict, changed: _Changes) -> None:
    """§6's "Usage Reporting Failure" procedure is gone from the runbook (alert 4's link dangles)."""
    import re

    for file in _runbook_files(world, changed):
        content = re.sub(r"### Usage Reporting Failure\n.*?(?=\n### )", "", file["content"], flags=re.DOTALL)
        if content != file["content"]:
            file["content"] = content
            changed()


def _runbook_stale(world: dict, changed: _Changes) -> None:
    """The runbook was last reviewed 200 days ago."""
    for file in _runbook_files(world, changed):
        if file.get("last_reviewed_days_ago") != 200:
            file["last_reviewed_days_ago"] = 200
            changed()


def _reconciliation_issue_alert(sentry: dict, changed: _Changes) -> None:
    """Alert 5 built as an issue alert, as the UI builds "any occurrence" (alert 6 is one): the same
    tag-or-message filters, threshold and actions, but Sentry records no incident when it fires. An
    issue alert's filters are one list (all/any), so "any" of tag and message leaves the guide's
    level range (error or warning) out too."""
    name = "Reconciliation Discrepancy Detected"
    filters = [("tagged_event", {"key": "reconciliation", "match": "eq", "value": "true"}),
               ("event_attribute", {"attribute": "message", "match": "co",
                                    "value": "reconciliation discrepancies detected"})]
    for rule in _metric_rules(sentry, name):
        sentry["metric_alert_rules"].remove(rule)
        slack, *emails = _critical_trigger(rule)["actions"]
        issue_rule = {
            "id": "611209",
            "conditions": [{"id": "sentry.rules.conditions.event_frequency.EventFrequencyCondition",
                            "comparisonType": "count", "interval": "1m", "value": 0,
                            "name": "The issue is seen more than 0 times in 1m"}],
            "filters": [
                {"id": f"{_FILTER_CLASS}.tagged_event.TaggedEventFilter", **filters[0][1],
                 "name": "The event's tags match reconciliation equals true"},
                {"id": f"{_FILTER_CLASS}.event_attribute.EventAttributeFilter", **filters[1][1],
                 "name": "The event's message value contains reconciliation discrepancies detected"}],
            "actions": [
                _slack_issue_action(slack, "611209", rule),
                *[_email_action(a) for a in emails]],
            "actionMatch": "all", "filterMatch": "any", "frequency": 5, "name": rule["name"],
            "dateCreated": rule["dateCreated"], "owner": rule["owner"], "createdBy": rule["createdBy"],
            "environment": rule["environment"], "projects": list(rule["projects"]), "status": "active",
            "snooze": False,
        }
        for slug in rule["projects"]:
            sentry.setdefault("issue_rules", {}).setdefault(slug, []).append(issue_rule)
        changed()
    for detector in _detectors(sentry, name):
        sentry["detectors"].remove(detector)
        error_detector = next(d for d in sentry["detectors"]
                              if d["type"] == "error" and d["projectId"] == detector["projectId"])
        for workflow in sentry.get("workflows", []):
            if detector["id"] not in workflow["detectorIds"]:
                continue
            workflow["detectorIds"] = [error_detector["id"]]
            error_detector["workflowIds"].append(workflow["id"])
            workflow["triggers"] = {
                "id": workflow["triggers"]["id"] if workflow.get("triggers") else "8801950",
                "organizationId": sentry["organization"]["id"], "logicType": "all", "actions": [],
                "conditions": [{"id": "8801951", "type": "event_frequency_count",
                                "comparison": {"value": 0, "interval": "1m"}, "conditionResult": True}]}
            group = workflow["actionFilters"][0]
            group["logicType"] = "any-short"
            group["conditions"] = [{"id": f"880195{i + 2}", "type": kind, "comparison": params,
                                    "conditionResult": True} for i, (kind, params) in enumerate(filters)]
            workflow["actionFilters"] = [group]
        changed()


def _runbook_link_dropped(sentry: dict, changed: _Changes) -> None:
    """Alert 2's description (metric alert / detector) no longer links to its runbook section."""
    name = "Webhook Processing Failure"
    for obj in _metric_rules(sentry, name) + _detectors(sentry, name):
        if obj.get("description"):
            obj["description"] = "Webhooks from Lemon Squeezy are failing"
            changed()


# --- the post-deployment watch (the app's deploys in Sentry's releases, its errors around them) ------

def _no_deploy_recorded(world: dict, changed: _Changes) -> None:
    """Nobody records deploys in Sentry: the app's deploy job dropped `sentry-cli releases deploys
    new`, and the older releases' production deploys are gone with it (releases stay)."""
    history = _app(world, changed).setdefault("history", {})
    kept = [d for d in history.get("deploys") or [] if d.get("environment") != "production"]
    if len(kept) != len(history.get("deploys") or []):
        history["deploys"] = kept
        changed()
    for release in (world.get("sentry") or {}).get("releases") or []:
        deploys = [d for d in release.get("deploys") or [] if d.get("environment") != "production"]
        if len(deploys) != len(release.get("deploys") or []):
            release["deploys"] = deploys
            changed()


# --- §7 "Review payment dashboard metrics daily for first week" ------------------------------------

DASHBOARD_REVIEW_DEPLOY_HOURS_AGO = 50.0
"""Two days and a bit: the UTC day before the clock's lies wholly after the deploy, whatever the hour."""


def dashboard_review_two_days_in(world: dict, changed: _Changes) -> None:
    """The production deploy 50 h ago, the app's traffic, usage reports and payment errors spread
    over the hours since it (the same rates as the golden world's), so the review has whole days
    to judge. Not a fault on its own: the control world of `dashboard-day-without-usage-reports`."""
    history = _app(world, changed).setdefault("history", {})
    for deploy in history.get("deploys") or []:
        if deploy.get("environment") == "production" and deploy.get("hours_ago") != DASHBOARD_REVIEW_DEPLOY_HOURS_AGO:
            deploy["hours_ago"] = DASHBOARD_REVIEW_DEPLOY_HOURS_AGO
            changed()
    span = f"{DASHBOARD_REVIEW_DEPLOY_HOURS_AGO:g}h"
    history["traffic"] = {**(history.get("traffic") or {}), "per_endpoint": 100, "over": span}
    history["usage_reports"] = {**(history.get("usage_reports") or {}), "count": 200, "over": span}
    history["subscriptions_gauge"] = {**(history.get("subscriptions_gauge") or {}), "over": span}
    history["payment_errors"] = {**(history.get("payment_errors") or {}), "over": f"{2 * DASHBOARD_REVIEW_DEPLOY_HOURS_AGO:g}h"}


def _dashboard_day_without_usage_reports(world: dict, changed: _Changes) -> None:
    """Two days since the deploy, and no usage report at all yesterday (UTC): the usage-reporting job
    was down, widget 5 ("Usage Reporting Success Rate") showed nothing for the day."""
    dashboard_review_two_days_in(world, changed)
    usage = _app(world, changed)["history"]["usage_reports"]
    usage["none_on_utc_day_ago"] = 1
    changed()


def _dashboard_webhook_p95_over_critical(world: dict, changed: _Changes) -> None:
    """The webhook requests of the hour before the run took p50 1.5 s, p95 2.6 s (the app's latency
    knob, what the probes meet now, unchanged): widget 3's p95 for today is past its 2000 ms marker."""
    traffic = _app(world, changed).setdefault("history", {}).setdefault("traffic", {})
    then = traffic.setdefault("latency_ms", {})
    if then.get("/api/webhooks/lemonsqueezy") != {"p50": 1500, "p95": 2600}:
        then["/api/webhooks/lemonsqueezy"] = {"p50": 1500, "p95": 2600}
        changed()


_WORLD_FAULTS: dict[str, Callable[[dict, _Changes], None]] = {
    "checkout-without-test-mode": _app_knob("answer_test_mode", False),
    "runbook-section-missing": _runbook_section_missing,
    "runbook-stale": _runbook_stale,
    "usage-failures": _app_knob("usage_error_rate", 0.2),
    "cron-missed": _app_history("reconciliation", ["ok", "missed", "missed"]),
    "cron-last-error": _app_history("reconciliation", ["ok", "error"]),
    "reconciliation-issue-open": _reconciliation_issue_open,
    "test-mode-event": _app_history("test_mode_hours_ago", [3]),
    "no-transactions": _app_knob("traces_sample_rate", 0.0),
    "transactions-untagged": _app_knob("tag_payment_flow", False),
    "signature-warning-not-sent": _app_knob("log_invalid_signature", False),
    "signature-not-verified": _app_knob("skip_signature_verification", True),
    "signature-500-on-short-header": _app_knob("signature_compare_throws", True),
    "webhook-500": _app_knob("fail_endpoints", {"/api/webhooks/lemonsqueezy": 500}),
    "channel-archived": _channel_archived,
    "bot-not-in-channel": _bot_not_in_channel,
    "on-call-not-in-channel": _on_call_not_in_channel,
    "channel-purpose-changed": _channel_purpose_changed,
    "bot-not-in-channel-without-public-scope": _bot_not_in_channel_without_public_scope,
    "synthetic-slack-removed-others-talk": _synthetic_slack_removed_others_talk,
    "test-mode-slack-removed-others-talk": _test_mode_slack_removed_others_talk,
    "pagerduty-service-disabled": _pagerduty_service_disabled,
    "pagerduty-maintenance": _pagerduty_maintenance,
    "pagerduty-nobody-on-call": _pagerduty_nobody_on_call,
    "pagerduty-urgency-constant-low": _pagerduty_urgency_constant_low,
    "pagerduty-no-high-urgency-rules": _pagerduty_no_high_urgency_rules,
    "escalation-lead-after-two-hours": _pagerduty_lead_after_two_hours,
    "pagerduty-nobody-acknowledges": _pagerduty_nobody_acknowledges,
    "wrong-routing-key": _wrong_routing_key,
    "post-deploy-regression": _app_history("payment_errors", {"per_hour": 2, "over": "8h", "after_deploy": 6.0}),
    "no-deploy-recorded": _no_deploy_recorded,
    "dashboard-day-without-usage-reports": _dashboard_day_without_usage_reports,
    "dashboard-webhook-p95-over-critical": _dashboard_webhook_p95_over_critical,
    "slack-late": _slack_late,
    "pagerduty-late": _pagerduty_late,
}


_FAULTS: dict[str, Callable[[dict, _Changes], None]] = {
    "synthetic-slack-action-removed": _synthetic_slack_action_removed,
    "threshold": _threshold,
    "right-rule-wrong-project": _right_rule_wrong_project,
    "token-sees-no-project": _token_sees_no_project,
    "window": _window,
    "environment-missing": _environment_missing,
    "slack-wrong-channel": _slack_wrong_channel,
    "pagerduty-missing": _pagerduty_missing,
    "rule-disabled": _rule_disabled,
    "per-issue": _per_issue,
    "widget-missing": _widget_missing,
    "widget-trend-changed": _widget_trend_changed,
    "widget-thresholds-dropped": _widget_thresholds_dropped,
    "widget-success-rate-dropped": _widget_success_rate_dropped,
    "integration-disabled": _integration_disabled,
    "cron-wrong-hour": _cron_wrong_hour,
    "perf-threshold": _perf_threshold,
    "perf-window": _perf_window,
    "event-types-error-only": _event_types_error_only,
    "runbook-link-dropped": _runbook_link_dropped,
    "reconciliation-issue-alert": _reconciliation_issue_alert,
}

FAULTS: dict[str, str] = {
    "perf-window": "p95 alert for /api/checkout/pro: window 10 -> 15 minutes (paymon's interpretation, not the guide's)",
    "checkout-without-test-mode": "payment app: the checkout answer carries no test_mode field",
    "widget-trend-changed": 'dashboard "Payment Monitoring": period 7d -> 24h (widget 1\'s 7-day trend gone)',
    "widget-thresholds-dropped": 'dashboard "Payment Monitoring": widget "Webhook Processing Time" no longer '
                                 "states its 1000/2000 ms thresholds",
    "widget-success-rate-dropped": 'dashboard "Payment Monitoring": widget "Usage Reporting Success Rate" shows '
                                   "the failure rate only (success-rate equation removed)",
    "on-call-not-in-channel": "Slack: the engineer on call now (PagerDuty level 1) is not a member of #payments-alerts",
    "channel-purpose-changed": "Slack: #payments-alerts' purpose no longer says what §3 gives it",
    "reconciliation-issue-alert": 'alert "Reconciliation Discrepancy Detected": an issue alert (as the UI builds '
                                  '"any occurrence"), which records no incident',
    "runbook-section-missing": 'runbook: the "Usage Reporting Failure" section (§6 procedure, alert 4) removed',
    "runbook-stale": "runbook: last reviewed 200 days ago",
    "runbook-link-dropped": 'alert "Webhook Processing Failure": description no longer links to its runbook section',
    "synthetic-slack-action-removed": 'alert "paymon synthetic check: Slack": Slack action removed',
    "channel-archived": "Slack: #payments-alerts archived",
    "bot-not-in-channel": "Slack: the Sentry bot is not a member of #payments-alerts",
    "bot-not-in-channel-without-public-scope": "Slack: the Sentry bot is not a member of #payments-alerts and "
                                               "Sentry's app lacks chat:write.public",
    "synthetic-slack-removed-others-talk": 'alert "paymon synthetic check: Slack": Slack action removed, while '
                                           "PagerDuty's app and a person (quoting the event) talk in #payments-alerts",
    "test-mode-slack-removed-others-talk": 'alert "Test Mode Detected in Production": no post to #payments-alerts, '
                                           "while PagerDuty's app and a person name the alert there",
    "pagerduty-service-disabled": 'PagerDuty: service "TowerOfBabel Payments" disabled',
    "pagerduty-maintenance": 'PagerDuty: service "TowerOfBabel Payments" in a maintenance window',
    "pagerduty-nobody-on-call": "PagerDuty: the primary rotation ended, nobody on call at escalation level 1",
    "pagerduty-urgency-constant-low": 'PagerDuty: service "TowerOfBabel Payments" urgency rule constant low',
    "pagerduty-no-high-urgency-rules": "PagerDuty: the on-call engineer has no high-urgency notification rules",
    "escalation-lead-after-two-hours": "PagerDuty: the escalation policy calls the engineering lead after 2 h, not 1 h",
    "pagerduty-nobody-acknowledges": "PagerDuty: the on-call engineer never acknowledges a page (drill)",
    "wrong-routing-key": "Sentry's PagerDuty service table holds a routing key PagerDuty does not know",
    "post-deploy-regression": "payment app: checkout failures six times as frequent since the production deploy "
                              "(2 an hour before it, 12 after)",
    "no-deploy-recorded": "no deploy to production recorded in Sentry (the deploy job stopped recording them)",
    "dashboard-day-without-usage-reports": "payment app: deployed 50 h ago, and no PAYG usage report at all "
                                           "yesterday (UTC): the usage-reporting job was down for the day",
    "dashboard-webhook-p95-over-critical": "payment app: webhook requests of the last hour took p95 2.6 s "
                                           "(widget 3's critical marker: 2000 ms)",
    "slack-late": "Sentry's Slack posts arrive 5 s after the event",
    "pagerduty-late": "Sentry's page reaches PagerDuty 9 s after the event",
    "threshold": 'alert "Payment Failure Rate Spike": critical threshold 10 -> 20',
    "right-rule-wrong-project": 'alert "Webhook Processing Failure": configured right, in the staging project',
    "token-sees-no-project": "Sentry: paymon's token sees no project (a member of no team with one)",
    "window": 'alert "Webhook Processing Failure": window 10 -> 15 minutes',
    "environment-missing": 'alert "Usage Reporting Failure Rate": environment production -> all (null)',
    "slack-wrong-channel": 'alert "Payment Failure Rate Spike": Slack to #security-alerts, not #payments-alerts',
    "pagerduty-missing": 'alert "Test Mode Detected in Production": PagerDuty action removed',
    "rule-disabled": 'alert "Webhook Signature Verification Failure Spike": disabled',
    "per-issue": 'alert "Payment Failure Rate Spike": per-issue frequency rule (> 10 of one issue in 5m), '
                 "not an aggregate metric alert",
    "widget-missing": 'dashboard "Payment Monitoring": widget "Webhook Processing Time" removed',
    "integration-disabled": "PagerDuty integration: status disabled",
    "cron-wrong-hour": 'cron monitor "reconciliation-daily": schedule 0 3 * * * instead of 0 2 * * *',
    "perf-threshold": "p95 alert for /api/subscription/payg/create: critical 500 -> 800 ms",
    "event-types-error-only": 'alert "Usage Reporting Failure Rate": event types error only (messages ignored)',
    "usage-failures": "payment app: 20% of PAYG usage reports fail over the last 24 h (\"Usage reporting failed\")",
    "cron-missed": "reconciliation job: the last two 02:00 UTC runs never happened (missed check-ins)",
    "cron-last-error": "reconciliation job: last night's run checked in error",
    "reconciliation-issue-open": 'reconciliation job: a status mismatch reported, issue '
                                 '"reconciliation discrepancies detected" unresolved',
    "test-mode-event": 'payment app: "Test mode detected in production" fired 3 h ago (since fixed)',
    "no-transactions": "payment app: performance tracing off (tracesSampleRate 0): no transactions in Sentry",
    "transactions-untagged": "payment app: beforeSendTransaction lost: transactions not tagged payment_flow",
    "signature-warning-not-sent": 'payment app: rejects bad signatures but sends no "Invalid webhook signature"',
    "signature-not-verified": "payment app: the webhook handler skips X-Signature verification (accepts forgeries)",
    "signature-500-on-short-header": "payment app: a short or non-hex X-Signature crashes the handler (500, not 401)",
    "webhook-500": "payment app: the webhook handler answers 500 to every verified delivery (its error logged)",
}


def apply_fault(world: dict, name: str) -> dict:
    """A deep copy of `world` with the named fault applied."""
    if name not in _FAULTS and name not in _WORLD_FAULTS:
        raise ConfigError(f"unknown fault {name!r}; known: {', '.join(FAULTS)}")
    broken = copy.deepcopy(world)
    changed = _Changes(name)
    if name in _WORLD_FAULTS:
        _WORLD_FAULTS[name](broken, changed)
    else:
        _FAULTS[name](broken["sentry"], changed)
    changed.require()
    return broken
