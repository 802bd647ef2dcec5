"""The sandbox's Sentry write answers (POST/PUT) validate against Sentry's published OpenAPI specs.

Each create/update `paymon apply` uses is sent over real HTTP to a running sandbox, and the 201/200
body is validated against the endpoint's response schema in the 2026-08 spec (detectors, workflows,
dashboards, cron monitors) or the 2026-05 spec (legacy issue and metric alert rules), corrected by
paymon's overlays as in test_conformance.py (specs and overlays are in tests/apis/). Errors are
checked for Sentry's shapes: 400 with a DRF field map, 403 without a write scope, 404 for the legacy
endpoints once they are removed. A missing spec fails the tests (never skips).
"""

from __future__ import annotations

import httpx
import jsonschema
import pytest
from openapi_support import load_spec, missing_specs, to_jsonschema

from paymon.sandbox.server import SandboxServer
from paymon.sandbox.world import golden_world

SPEC_08 = "sentry-openapi-2026-08.json"
SPEC_05 = "sentry-openapi-2026-05-with-deprecated-alerts.json"
O = "/api/0/organizations/{organization_id_or_slug}"
P = "/api/0/projects/{organization_id_or_slug}/{project_id_or_slug}"


@pytest.fixture(scope="module")
def specs():
    """Both specs, corrected; a string (the reason) when a spec is missing, so the tests fail."""
    return missing_specs(SPEC_08, SPEC_05) or {name: load_spec(name) for name in (SPEC_08, SPEC_05)}


def _require(specs) -> dict:
    if isinstance(specs, str):
        pytest.fail(specs, pytrace=False)
    return specs


def _errors(specs, spec_name: str, path: str, method: str, status: int, body) -> list[str]:
    operation = specs[spec_name]["paths"][path][method.lower()]
    schema = operation["responses"][str(status)]["content"]["application/json"]["schema"]
    validator = jsonschema.Draft7Validator(to_jsonschema(schema))
    return [f"{'/'.join(map(str, e.path)) or '<root>'}: {e.message[:200]}"
            for e in sorted(validator.iter_errors(body), key=lambda e: list(e.path))]


@pytest.fixture
def served():
    def serve(generation: str):
        return SandboxServer(golden_world(generation))
    return serve


def _client(server, token=None) -> httpx.Client:
    return httpx.Client(base_url=server.base_url, timeout=10,
                        headers={"Authorization": f"Bearer {token or server.sentry_token}"})


DETECTOR = {"name": "Conformance detector", "type": "metric_issue",
            "dataSources": [{"aggregate": "count()", "dataset": "events", "query": "message:*x*", "queryType": 0,
                             "timeWindow": 600, "environment": "production", "eventTypes": ["default", "error"]}],
            "conditionGroup": {"logicType": "any", "conditions": [
                {"type": "gt", "comparison": 5, "conditionResult": 75},
                {"type": "lte", "comparison": 5, "conditionResult": 0}]},
            "config": {"detectionType": "static"}}
ACTIONS = [{"type": "slack", "integrationId": "187263", "config": {"targetType": "specific",
                                                                   "targetDisplay": "#payments-alerts"},
            "data": {"tags": "environment,level", "notes": ""}},
           {"type": "pagerduty", "integrationId": "187264",
            "config": {"targetType": "specific", "targetIdentifier": "22451"}, "data": {"priority": "critical"}},
           {"type": "email", "integrationId": None, "config": {"targetType": "team", "targetIdentifier": "4509876"},
            "data": {}}]
METRIC_RULE = {"name": "Conformance rule", "aggregate": "count()", "dataset": "events", "query": "message:*x*",
               "eventTypes": ["default", "error"], "timeWindow": 10, "thresholdType": 0, "environment": "production",
               "projects": ["towerofbabel-web"],
               "triggers": [{"label": "critical", "alertThreshold": 5, "actions": [
                   {"type": "slack", "targetType": "specific", "targetIdentifier": "#payments-alerts",
                    "integrationId": 187263},
                   {"type": "pagerduty", "targetType": "specific", "targetIdentifier": 22451, "integrationId": 187264,
                    "priority": "critical"},
                   {"type": "email", "targetType": "user", "targetIdentifier": "3984213"}]}]}
ISSUE_RULE = {"name": "Conformance issue rule", "environment": "production", "actionMatch": "all",
              "filterMatch": "all", "frequency": 5,
              "conditions": [{"id": "sentry.rules.conditions.event_frequency.EventFrequencyCondition",
                              "comparisonType": "count", "value": 3, "interval": "5m"}],
              "filters": [{"id": "sentry.rules.filters.tagged_event.TaggedEventFilter", "key": "test", "match": "eq",
                           "value": "true"},
                          {"id": "sentry.rules.filters.level.LevelFilter", "match": "eq", "level": "50"}],
              "actions": [{"id": "sentry.integrations.slack.notify_action.SlackNotifyServiceAction",
                           "workspace": "187263", "channel": "#payments-alerts"},
                          {"id": "sentry.mail.actions.NotifyEmailAction", "targetType": "Team",
                           "targetIdentifier": 4509876, "fallthroughType": "ActiveMembers"}]}
DASHBOARD = {"title": "Conformance dashboard", "environment": ["production"], "projects": [4507005480140800],
             "widgets": [{"title": "Errors", "displayType": "line", "widgetType": "error-events", "interval": "5m",
                          "queries": [{"name": "", "conditions": "event.type:error", "aggregates": ["count()"],
                                       "columns": [], "fields": ["count()"], "orderby": ""}]}]}
MONITOR = {"name": "Conformance job", "slug": "conformance-job", "project": "towerofbabel-web",
           "config": {"schedule_type": "crontab", "schedule": "0 3 * * *", "timezone": "UTC"}}


def test_workflow_engine_writes_match_the_08_spec(specs, served):
    specs = _require(specs)
    problems = []
    with served("workflow") as server, _client(server) as client:
        o = f"/api/0/organizations/{server.org}"
        created = client.post(f"{o}/projects/{server.project}/detectors/", json=DETECTOR)
        assert created.status_code == 201, created.text
        problems += _errors(specs, SPEC_08, f"{O}/projects/{{project_id_or_slug}}/detectors/", "post", 201,
                            created.json())
        detector = created.json()
        workflow = client.post(f"{o}/workflows/", json={
            "name": "Conformance workflow", "detectorIds": [detector["id"]], "environment": "production",
            "config": {"frequency": 5}, "triggers": {"logicType": "any-short", "conditions": []},
            "actionFilters": [{"logicType": "any-short", "conditions": [
                {"type": "issue_priority_greater_or_equal", "comparison": 75, "conditionResult": True}],
                "actions": ACTIONS}]})
        assert workflow.status_code == 201, workflow.text
        problems += _errors(specs, SPEC_08, f"{O}/workflows/", "post", 201, workflow.json())
        # The server fills in the channel id and the PagerDuty service name, and links both ways.
        slack = workflow.json()["actionFilters"][0]["actions"][0]["config"]
        assert slack["targetIdentifier"] == "C07PAYM3NT5" and slack["targetDisplay"] == "#payments-alerts"
        assert client.get(f"{o}/detectors/{detector['id']}/").json()["workflowIds"] == [workflow.json()["id"]]
        updated = client.put(f"{o}/detectors/{detector['id']}/", json={**DETECTOR, "enabled": False})
        assert updated.status_code == 200 and updated.json()["enabled"] is False
        assert updated.json()["dataSources"][0]["id"] == detector["dataSources"][0]["id"]  # updated in place
        problems += _errors(specs, SPEC_08, f"{O}/detectors/{{detector_id}}/", "put", 200, updated.json())
        renamed = client.put(f"{o}/workflows/{workflow.json()['id']}/", json={"name": "Renamed"})
        assert renamed.status_code == 200 and renamed.json()["name"] == "Renamed"
        problems += _errors(specs, SPEC_08, f"{O}/workflows/{{workflow_id}}/", "put", 200, renamed.json())
        dashboard = client.post(f"{o}/dashboards/", json=DASHBOARD)
        assert dashboard.status_code == 201, dashboard.text
        problems += _errors(specs, SPEC_08, f"{O}/dashboards/", "post", 201, dashboard.json())
        changed = client.put(f"{o}/dashboards/{dashboard.json()['id']}/", json={**DASHBOARD, "title": "Renamed"})
        assert changed.status_code == 200, changed.text
        problems += _errors(specs, SPEC_08, f"{O}/dashboards/{{dashboard_id}}/", "put", 200, changed.json())
        monitor = client.post(f"{o}/monitors/", json=MONITOR)
        assert monitor.status_code == 201, monitor.text
        problems += _errors(specs, SPEC_08, f"{O}/monitors/", "post", 201, monitor.json())
        moved = client.put(f"{o}/monitors/conformance-job/", json={**MONITOR, "config": {"schedule": "0 4 * * *"}})
        assert moved.status_code == 200 and moved.json()["config"]["schedule"] == "0 4 * * *"
        problems += _errors(specs, SPEC_08, f"{O}/monitors/{{monitor_id_or_slug}}/", "put", 200, moved.json())
        assert client.delete(f"{o}/workflows/{workflow.json()['id']}/").status_code == 204
        assert client.delete(f"{o}/detectors/{detector['id']}/").status_code == 204
        assert client.get(f"{o}/detectors/{detector['id']}/").status_code == 404
    assert not problems, "\n".join(problems)


def test_legacy_rule_writes_match_the_05_spec(specs, served):
    specs = _require(specs)
    problems = []
    with served("legacy") as server, _client(server) as client:
        o, p = f"/api/0/organizations/{server.org}", f"/api/0/projects/{server.org}/{server.project}"
        rule = client.post(f"{o}/alert-rules/", json=METRIC_RULE)
        assert rule.status_code == 201, rule.text
        problems += _errors(specs, SPEC_05, f"{O}/alert-rules/", "post", 201, rule.json())
        slack = rule.json()["triggers"][0]["actions"][0]
        assert slack["inputChannelId"] == "C07PAYM3NT5"
        updated = client.put(f"{o}/alert-rules/{rule.json()['id']}/", json={**METRIC_RULE, "timeWindow": 15})
        assert updated.status_code == 200 and updated.json()["timeWindow"] == 15.0
        problems += _errors(specs, SPEC_05, f"{O}/alert-rules/{{alert_rule_id}}/", "put", 200, updated.json())
        issue = client.post(f"{p}/rules/", json=ISSUE_RULE)
        assert issue.status_code == 201, issue.text
        problems += _errors(specs, SPEC_05, f"{P}/rules/", "post", 201, issue.json())
        assert all(part["name"] for part in issue.json()["conditions"] + issue.json()["filters"])
        again = client.put(f"{p}/rules/{issue.json()['id']}/", json={**ISSUE_RULE, "frequency": 30})
        assert again.status_code == 200 and again.json()["frequency"] == 30
        problems += _errors(specs, SPEC_05, f"{P}/rules/{{rule_id}}/", "put", 200, again.json())
        assert client.delete(f"{p}/rules/{issue.json()['id']}/").status_code == 202
        assert client.delete(f"{o}/alert-rules/{rule.json()['id']}/").status_code == 202
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize(("path", "body", "field", "text"), [
    ("alert-rules/", {**METRIC_RULE, "timeWindow": 7}, "timeWindow", "Invalid time window 7"),
    ("rules/", {**ISSUE_RULE, "conditions": [{**ISSUE_RULE["conditions"][0], "interval": "10m"}]}, "conditions",
     "10m is not one of the available choices"),
    ("rules/", {**ISSUE_RULE, "actions": [{**ISSUE_RULE["actions"][0], "channel": "#nowhere"}]}, "actions",
     "Did not recognize the channel"),
    ("alert-rules/", {k: v for k, v in METRIC_RULE.items() if k != "aggregate"}, "aggregate",
     "This field is required."),
])
def test_invalid_writes_answer_400_with_field_errors(served, path, body, field, text):
    with served("legacy") as server, _client(server) as client:
        base = f"/api/0/projects/{server.org}/{server.project}/" if path == "rules/" else \
            f"/api/0/organizations/{server.org}/"
        answer = client.post(base + path, json=body)
    assert answer.status_code == 400
    assert any(text in message for message in answer.json()[field]), answer.json()


def test_write_errors_as_sentry_answers_them(served):
    with served("workflow") as server, _client(server) as client:
        o = f"/api/0/organizations/{server.org}"
        read_only = server.sentry.tokens[1]["token"]
        with _client(server, read_only) as reader:
            assert reader.post(f"{o}/workflows/", json={"name": "x"}).status_code == 403
            assert reader.put(f"{o}/detectors/5801003/", json=DETECTOR).json() == {
                "detail": "You do not have permission to perform this action."}
        assert client.post(f"{o}/alert-rules/", json=METRIC_RULE).status_code == 404  # legacy removed
        assert client.post(f"{o}/dashboards/", json={**DASHBOARD, "title": "Payment Monitoring"}).status_code == 409
        bad = client.post(f"{o}/projects/{server.project}/detectors/", json={**DETECTOR, "dataSources": [
            {**DETECTOR["dataSources"][0], "timeWindow": 700}]})
        assert bad.status_code == 400 and "Invalid time window 700" in bad.json()["dataSources"][0]
        index = client.get("/api/0/").json()
        assert "alerts:write" in index["auth"]["scopes"]
