"""The write side of the emulated Sentry API: create, update and delete alerts (both generations),
dashboards and cron monitors, as the real endpoints do.

`SentryWrites(backend)` validates a request body like the server's serializers (400 with a DRF
field map, `{"timeWindow": ["..."]}`), assigns ids and server-side fields (`dateCreated`,
`createdBy`, `organizationId`, rendered `name`s of issue-rule parts, the Slack channel id looked up
from the channel name through the Slack workspace) and stores the object in the backend's world, so
the reads, the alert engine (`engine.refresh()` sees the change) and `dump-world` show it.

Request bodies are accepted in snake_case (the 2026-08 spec's request schemas) and camelCase (what
Sentry's CamelSnakeSerializer also takes, and what its responses use).
"""

from __future__ import annotations

import copy
import itertools
import re
import uuid
from datetime import datetime, timezone

from paymon.rules.normalise import ISSUE_ALERT_INTERVALS
from paymon.sandbox.sentry.exceptions import ResourceDoesNotExist, SentryAPIError


class ValidationFailed(SentryAPIError):
    """400 with DRF's field map: `{"field": ["message", ...]}`."""

    status = 400

    def __init__(self, errors: dict[str, list[str]]):
        super().__init__("; ".join(f"{k}: {' '.join(v)}" for k, v in errors.items()))
        self.errors = errors

    def body(self) -> dict:
        return self.errors


class Conflict(SentryAPIError):
    status = 409


# What the servers accept (sentry-api.md §2-§6).
METRIC_ALERT_WINDOWS_MIN = {1, 5, 10, 15, 30, 60, 120, 240, 1440}
DETECTOR_WINDOWS_S = {60 * m for m in METRIC_ALERT_WINDOWS_MIN}
DETECTOR_TYPES = {"metric_issue", "error", "issue_stream", "monitor_check_in_failure", "uptime_domain_failure"}
DETECTOR_CONDITION_TYPES = {"gt", "gte", "lt", "lte", "eq", "anomaly_detection"}
PRIORITIES = {0, 25, 50, 75}
LOGIC_TYPES = {"any", "any-short", "all", "none"}
WORKFLOW_FREQUENCIES = {0, 5, 10, 30, 60, 180, 720, 1440}
ACTION_TYPES = {"slack", "pagerduty", "email", "msteams", "discord", "opsgenie", "sentry_app", "webhook"}
DISPLAY_TYPES = {"line", "area", "bar", "table", "big_number", "details", "categorical_bar", "wheel",
                 "rage_and_dead_clicks", "server_tree", "text", "agents_traces_table", "heatmap"}
WIDGET_TYPES = {"discover", "issue", "metrics", "error-events", "transaction-like", "spans", "logs",
                "tracemetrics", "preprod-app-size", None}
DATASETS = {"events", "transactions", "generic_metrics", "events_analytics_platform", "spans", "sessions",
            "metrics"}
_CRON = re.compile(r"^\s*(\S+\s+){4}\S+\s*$")


def _get(body: dict, snake: str, default=None):
    """A request field by its snake_case name or its camelCase twin."""
    if snake in body:
        return body[snake]
    camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), snake)
    return body.get(camel, default)


def _now_iso(clock) -> str:
    return datetime.fromtimestamp(clock.now(), timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class _Errors:
    def __init__(self):
        self.errors: dict[str, list[str]] = {}

    def add(self, field: str, message: str) -> None:
        self.errors.setdefault(field, []).append(message)

    def required(self, body: dict, *fields: str) -> None:
        for field in fields:
            value = _get(body, field)
            if value is None or value == "" or value == []:
                self.add(field, "This field is required.")

    def raise_if_any(self) -> None:
        if self.errors:
            raise ValidationFailed(self.errors)


class SentryWrites:
    def __init__(self, backend):
        self.backend = backend
        existing = [o.get("id") for o in [*backend.detectors, *backend.workflows, *backend.metric_alert_rules,
                                           *backend.dashboards,
                                           *(r for rules in backend.issue_rules.values() for r in rules)]]
        numeric = [int(i) for i in existing if str(i).isdigit()]
        self._ids = itertools.count(max(numeric, default=9_000_000) + 1000)

    # --- shared ----------------------------------------------------------------------------------

    def _id(self) -> str:
        return str(next(self._ids))

    def _now(self) -> str:
        return _now_iso(self.backend.hub.clock)

    def _creator(self, scopes_owner: str | None = None) -> dict | None:
        # Tokens of internal integrations have no user; Sentry serialises createdBy as null then.
        return None

    def _integration(self, integration_id, provider: str) -> dict | None:
        for integration in self.backend.integrations:
            if str(integration.get("id")) == str(integration_id) and integration["provider"]["key"] == provider:
                return integration
        return None

    def _slack_channel_id(self, name_or_id: str | None) -> str | None:
        """Sentry looks the channel up in the workspace (and rejects unknown names)."""
        slack = self.backend.hub.backends.get("slack")
        if not name_or_id:
            return None
        if slack is None:
            return None if not re.match(r"^[CG][A-Z0-9]{6,}$", name_or_id) else name_or_id
        try:
            return slack.resolve_channel(name_or_id)["id"]
        except Exception:
            return None

    def _slack_channel_name(self, channel_id: str) -> str | None:
        slack = self.backend.hub.backends.get("slack")
        if slack is None:
            return None
        try:
            return "#" + slack.resolve_channel(channel_id)["name"]
        except Exception:
            return None

    def _user_ids(self) -> set[str]:
        return {str((m.get("user") or {}).get("id")) for m in self.backend.members} | {
            str(m.get("id")) for m in self.backend.members}

    def _team_ids(self) -> set[str]:
        return {str(t.get("id")) for t in self.backend.teams}

    def _pagerduty_row(self, integration: dict, row_id) -> dict | None:
        for row in (integration.get("configData") or {}).get("service_table") or ():
            if str(row.get("id")) == str(row_id):
                return row
        return None

    # --- workflow engine: detectors --------------------------------------------------------------

    def create_detector(self, project: dict, body: dict) -> dict:
        detector = self._detector_from(body, project, None)
        self.backend.detectors.append(detector)
        self._link_detector_workflows(detector)
        return detector

    def update_detector(self, detector_id: str, body: dict) -> dict:
        current = self.backend.get_detector(detector_id)
        project = self.backend.get_project(str(current["projectId"]))
        merged = {"name": current["name"], "type": current["type"], **body}
        detector = self._detector_from(merged, project, current)
        index = self.backend.detectors.index(current)
        self.backend.detectors[index] = detector
        self._link_detector_workflows(detector)
        return detector

    def _detector_from(self, body: dict, project: dict, current: dict | None) -> dict:
        errors = _Errors()
        errors.required(body, "name", "type")
        kind = _get(body, "type")
        if kind and kind not in DETECTOR_TYPES:
            errors.add("type", f'"{kind}" is not a valid choice.')
        errors.raise_if_any()
        if kind != "metric_issue":
            if current is None:
                raise ValidationFailed({"type": [f"Creating {kind} monitors is not supported."]})
            return {**current, "name": _get(body, "name"), "enabled": bool(_get(body, "enabled", current["enabled"]))}
        org_id = self.backend.organization["id"]
        sources = _get(body, "data_sources")
        if sources is None and current is not None:
            sources = [_source_request(s) for s in current.get("dataSources") or ()]
        if not isinstance(sources, list) or len(sources) != 1:
            errors.add("dataSources", "A metric monitor needs exactly one data source.")
        group = _get(body, "condition_group")
        if group is None and current is not None:
            group = current.get("conditionGroup")
        if not isinstance(group, dict):
            errors.add("conditionGroup", "This field is required.")
        errors.raise_if_any()
        source = sources[0]
        for field in ("aggregate", "dataset", "time_window"):
            if _get(source, field) in (None, ""):
                errors.add(f"dataSources.{field}", "This field is required.")
        errors.raise_if_any()
        window = _get(source, "time_window")
        if not isinstance(window, (int, float)) or int(window) not in DETECTOR_WINDOWS_S:
            errors.add("dataSources", f"Invalid time window {window!r}: choose one of "
                                      f"{', '.join(str(w) for w in sorted(DETECTOR_WINDOWS_S))} seconds.")
        if _get(source, "dataset") not in DATASETS:
            errors.add("dataSources", f"Invalid dataset {_get(source, 'dataset')!r}.")
        conditions = group.get("conditions") or []
        logic = _get(group, "logic_type")
        if logic not in LOGIC_TYPES:
            errors.add("conditionGroup", f'"{logic}" is not a valid logic type.')
        for condition in conditions:
            if condition.get("type") not in DETECTOR_CONDITION_TYPES:
                errors.add("conditionGroup", f"Invalid condition type {condition.get('type')!r}.")
            elif condition.get("type") != "anomaly_detection" and not isinstance(condition.get("comparison"),
                                                                                   (int, float)):
                errors.add("conditionGroup", "A threshold condition's comparison must be a number.")
            if _get(condition, "condition_result") not in PRIORITIES:
                errors.add("conditionGroup", f"Invalid condition result {_get(condition, 'condition_result')!r}.")
        if not any(_get(c, "condition_result") in (50, 75) for c in conditions):
            errors.add("conditionGroup", "At least one condition must create an issue (priority 50 or 75).")
        workflow_ids = [str(i) for i in _get(body, "workflow_ids", None) or
                        ((current or {}).get("workflowIds") or [])]
        known = {str(w["id"]) for w in self.backend.workflows}
        for wid in workflow_ids:
            if wid not in known:
                errors.add("workflowIds", f"Alert {wid} does not exist.")
        errors.raise_if_any()
        ids = _ChildIds(self, current)
        snuba = {
            "id": ids.snuba, "dataset": _get(source, "dataset"), "query": _get(source, "query") or "",
            "aggregate": _get(source, "aggregate"), "timeWindow": int(window),
            "environment": _get(source, "environment"),
            "eventTypes": sorted(_get(source, "event_types") or _default_event_types(_get(source, "dataset"))),
            "extrapolationMode": _get(source, "extrapolation_mode") or "unknown",
        }
        now = self._now()
        return {
            "id": current["id"] if current else self._id(),
            "projectId": str(project["id"]),
            "name": _get(body, "name"),
            "description": _get(body, "description"),
            "type": "metric_issue",
            "workflowIds": workflow_ids,
            "owner": _owner_object(_get(body, "owner"), self.backend.teams) if _get(body, "owner") else
                     (current or {}).get("owner"),
            "createdBy": (current or {}).get("createdBy"),
            "dateCreated": current["dateCreated"] if current else now,
            "dateUpdated": now,
            "dataSources": [{
                "id": ids.source, "organizationId": org_id, "type": "snuba_query_subscription",
                "sourceId": ids.query_obj,
                "queryObj": {"id": ids.query_obj, "status": 0,
                             "subscription": f"{ids.query_obj[-2:]}/{uuid.uuid5(uuid.NAMESPACE_URL, ids.query_obj).hex}",
                             "snubaQuery": snuba},
            }],
            "conditionGroup": {
                "id": ids.group, "organizationId": org_id, "logicType": logic,
                "conditions": [{"id": self._id(), "type": c["type"], "comparison": c.get("comparison"),
                                "conditionResult": _get(c, "condition_result")} for c in conditions],
                "actions": [],
            },
            "config": {"detectionType": "static", "comparisonDelta": None, **(_get(body, "config") or {})},
            "enabled": bool(_get(body, "enabled", (current or {}).get("enabled", True))),
            "latestGroup": (current or {}).get("latestGroup"),
            "openIssues": (current or {}).get("openIssues", 0),
        }

    def _link_detector_workflows(self, detector: dict) -> None:
        wanted = set(detector["workflowIds"])
        for workflow in self.backend.workflows:
            ids = [str(i) for i in workflow.get("detectorIds") or ()]
            has = detector["id"] in ids
            if str(workflow["id"]) in wanted and not has:
                workflow["detectorIds"] = ids + [detector["id"]]
            elif str(workflow["id"]) not in wanted and has:
                workflow["detectorIds"] = [i for i in ids if i != detector["id"]]

    def delete_detector(self, detector_id: str) -> None:
        detector = self.backend.get_detector(detector_id)
        if detector["type"] != "metric_issue":
            raise ValidationFailed({"detail": [f"{detector['type']} monitors cannot be deleted."]})
        self.backend.detectors.remove(detector)
        for workflow in self.backend.workflows:
            workflow["detectorIds"] = [i for i in workflow.get("detectorIds") or () if str(i) != detector["id"]]

    # --- workflow engine: workflows --------------------------------------------------------------

    def create_workflow(self, body: dict) -> dict:
        workflow = self._workflow_from(body, None)
        self.backend.workflows.append(workflow)
        self._link_workflow_detectors(workflow)
        return workflow

    def update_workflow(self, workflow_id: str, body: dict) -> dict:
        current = self.backend.get_workflow(workflow_id)
        workflow = self._workflow_from({"name": current["name"], **body}, current)
        self.backend.workflows[self.backend.workflows.index(current)] = workflow
        self._link_workflow_detectors(workflow)
        return workflow

    def delete_workflow(self, workflow_id: str) -> None:
        workflow = self.backend.get_workflow(workflow_id)
        self.backend.workflows.remove(workflow)
        for detector in self.backend.detectors:
            detector["workflowIds"] = [i for i in detector.get("workflowIds") or () if str(i) != workflow["id"]]

    def _workflow_from(self, body: dict, current: dict | None) -> dict:
        errors = _Errors()
        errors.required(body, "name")
        detector_ids = _get(body, "detector_ids")
        if detector_ids is None:
            detector_ids = (current or {}).get("detectorIds") or []
        known = {str(d["id"]) for d in self.backend.detectors}
        for did in detector_ids:
            if str(did) not in known:
                errors.add("detectorIds", f"Monitor {did} does not exist.")
        config = _get(body, "config") or (current or {}).get("config") or {}
        frequency = config.get("frequency")
        if frequency is not None and frequency not in WORKFLOW_FREQUENCIES:
            errors.add("config", f"Invalid frequency {frequency!r}: choose one of "
                                 f"{', '.join(map(str, sorted(WORKFLOW_FREQUENCIES)))} minutes.")
        environment = _get(body, "environment", (current or {}).get("environment"))
        project_envs = {e for p in self.backend.projects for e in p.get("environments") or ()}
        if environment is not None and project_envs and environment not in project_envs:
            errors.add("environment", f"Environment {environment!r} does not exist.")
        triggers = _get(body, "triggers")
        if triggers is None:
            triggers = (current or {}).get("triggers") or {"logicType": "any-short", "conditions": []}
        filters = _get(body, "action_filters")
        if filters is None:
            filters = (current or {}).get("actionFilters") or []
        if _get(triggers, "logic_type") not in LOGIC_TYPES:
            errors.add("triggers", f'"{_get(triggers, "logic_type")}" is not a valid logic type.')
        rendered_filters = []
        for index, group in enumerate(filters):
            if _get(group, "logic_type") not in LOGIC_TYPES:
                errors.add(f"actionFilters.{index}", f'"{_get(group, "logic_type")}" is not a valid logic type.')
                continue
            actions = [self._workflow_action(a, errors, f"actionFilters.{index}") for a in group.get("actions") or ()]
            rendered_filters.append({
                "id": str(group.get("id") or self._id()), "organizationId": self.backend.organization["id"],
                "logicType": _get(group, "logic_type"),
                "conditions": [self._condition(c) for c in group.get("conditions") or ()],
                "actions": actions,
            })
        errors.raise_if_any()
        now = self._now()
        return {
            "id": current["id"] if current else self._id(),
            "name": _get(body, "name"),
            "organizationId": self.backend.organization["id"],
            "createdBy": (current or {}).get("createdBy"),
            "dateCreated": current["dateCreated"] if current else now,
            "dateUpdated": now,
            "triggers": {"id": str((current or {}).get("triggers", {}) and current["triggers"].get("id") or self._id()),
                         "organizationId": self.backend.organization["id"],
                         "logicType": _get(triggers, "logic_type"),
                         "conditions": [self._condition(c) for c in triggers.get("conditions") or ()],
                         "actions": []},
            "actionFilters": rendered_filters,
            "environment": environment,
            "config": {k: v for k, v in config.items()},
            "detectorIds": [str(d) for d in detector_ids],
            "enabled": bool(_get(body, "enabled", (current or {}).get("enabled", True))),
            "lastTriggered": (current or {}).get("lastTriggered"),
            "owner": _get(body, "owner", (current or {}).get("owner")),
        }

    def _condition(self, condition: dict) -> dict:
        return {"id": str(condition.get("id") or self._id()), "type": condition.get("type"),
                "comparison": copy.deepcopy(condition.get("comparison")),
                "conditionResult": _get(condition, "condition_result", True)}

    def _workflow_action(self, action: dict, errors: _Errors, where: str) -> dict:
        kind = action.get("type")
        config = dict(action.get("config") or {})
        data = dict(action.get("data") or {})
        integration_id = _get(action, "integration_id")
        if kind not in ACTION_TYPES:
            errors.add(where, f"Invalid action type {kind!r}.")
        elif kind in ("slack", "pagerduty"):
            integration = self._integration(integration_id, kind)
            if integration is None:
                errors.add(where, f"Integration {integration_id} is not a {kind} integration of this organization.")
            elif kind == "slack":
                target = _get(config, "target_identifier") or _get(config, "target_display")
                channel_id = self._slack_channel_id(target)
                if channel_id is None:
                    errors.add(where, f"Could not find the Slack channel {target!r} in the workspace.")
                else:
                    config = {"targetType": "specific", "targetIdentifier": channel_id,
                              "targetDisplay": _get(config, "target_display") or self._slack_channel_name(channel_id)}
            elif self._pagerduty_row(integration, _get(config, "target_identifier")) is None:
                errors.add(where, f"PagerDuty service {_get(config, 'target_identifier')!r} is not in the "
                                  f"integration's service table.")
            else:
                row = self._pagerduty_row(integration, _get(config, "target_identifier"))
                config = {"targetType": "specific", "targetIdentifier": str(row["id"]),
                          "targetDisplay": row["service"]}
        elif kind == "email":
            target_type = _get(config, "target_type")
            ident = str(_get(config, "target_identifier") or "")
            if target_type == "user" and ident not in self._user_ids():
                errors.add(where, f"User {ident} is not a member of this organization.")
            elif target_type == "team" and ident not in self._team_ids():
                errors.add(where, f"Team {ident} does not exist.")
            elif target_type not in ("user", "team", "issue_owners"):
                errors.add(where, f"Invalid e-mail target type {target_type!r}.")
            config = {"targetType": target_type, "targetIdentifier": ident or None, "targetDisplay": None}
        return {"id": str(action.get("id") or self._id()), "type": kind,
                "integrationId": None if integration_id is None else str(integration_id),
                "data": data, "config": config, "status": "active"}

    def _link_workflow_detectors(self, workflow: dict) -> None:
        wanted = set(workflow["detectorIds"])
        for detector in self.backend.detectors:
            ids = [str(i) for i in detector.get("workflowIds") or ()]
            has = workflow["id"] in ids
            if str(detector["id"]) in wanted and not has:
                detector["workflowIds"] = ids + [workflow["id"]]
            elif str(detector["id"]) not in wanted and has:
                detector["workflowIds"] = [i for i in ids if i != workflow["id"]]

    # --- legacy metric alert rules ---------------------------------------------------------------

    def create_metric_alert_rule(self, body: dict) -> dict:
        rule = self._metric_rule_from(body, None)
        self.backend.metric_alert_rules.append(rule)
        return rule

    def update_metric_alert_rule(self, rule_id: str, body: dict) -> dict:
        current = self.backend.get_metric_alert_rule(rule_id)
        rule = self._metric_rule_from(body, current)
        self.backend.metric_alert_rules[self.backend.metric_alert_rules.index(current)] = rule
        return rule

    def delete_metric_alert_rule(self, rule_id: str) -> None:
        self.backend.metric_alert_rules.remove(self.backend.get_metric_alert_rule(rule_id))

    def _metric_rule_from(self, body: dict, current: dict | None) -> dict:
        errors = _Errors()
        errors.required(body, "name", "aggregate", "time_window", "projects", "triggers")
        for field in ("query", "threshold_type"):
            if _get(body, field) is None:
                errors.add(field, "This field is required.")
        errors.raise_if_any()
        window = _get(body, "time_window")
        if not isinstance(window, (int, float)) or int(window) not in METRIC_ALERT_WINDOWS_MIN:
            errors.add("timeWindow", f"Invalid time window {window!r}: choose one of "
                                     f"{', '.join(map(str, sorted(METRIC_ALERT_WINDOWS_MIN)))} minutes.")
        dataset = _get(body, "dataset") or "events"
        if dataset not in DATASETS:
            errors.add("dataset", f"Invalid dataset {dataset!r}.")
        slugs = {p["slug"] for p in self.backend.projects}
        for slug in _get(body, "projects") or []:
            if slug not in slugs:
                errors.add("projects", f"Invalid project {slug!r}.")
        triggers = _get(body, "triggers") or []
        labels = [t.get("label") for t in triggers]
        if "critical" not in labels:
            errors.add("nonFieldErrors", ['Trigger 1 must be labeled "critical"'][0])
        for trigger in triggers:
            if not isinstance(_get(trigger, "alert_threshold"), (int, float)):
                errors.add("triggers", "alertThreshold must be a number.")
        errors.raise_if_any()
        rule_id = current["id"] if current else self._id()
        now = self._now()
        rendered_triggers = []
        for trigger in sorted(triggers, key=lambda t: t.get("label") != "critical"):
            trigger_id = self._id()
            actions = [self._trigger_action(a, trigger_id, trigger.get("label"), errors)
                       for a in trigger.get("actions") or ()]
            rendered_triggers.append({
                "id": trigger_id, "alertRuleId": rule_id, "label": trigger["label"],
                "thresholdType": int(_get(body, "threshold_type")),
                "alertThreshold": float(_get(trigger, "alert_threshold")),
                "resolveThreshold": _get(trigger, "resolve_threshold"), "dateCreated": now, "actions": actions})
        errors.raise_if_any()
        query_type = _get(body, "query_type")
        if query_type is None:
            query_type = 1 if dataset in ("transactions", "generic_metrics", "events_analytics_platform") else 0
        return {
            "id": rule_id, "name": _get(body, "name"), "organizationId": self.backend.organization["id"],
            "status": 0, "queryType": query_type, "dataset": dataset, "query": _get(body, "query"),
            "aggregate": _get(body, "aggregate"), "thresholdType": int(_get(body, "threshold_type")),
            "resolveThreshold": _get(body, "resolve_threshold"), "timeWindow": float(window),
            "environment": _get(body, "environment"), "resolution": 1.0, "thresholdPeriod": 1,
            "triggers": rendered_triggers, "projects": list(_get(body, "projects")),
            "owner": _get(body, "owner", (current or {}).get("owner")), "originalAlertRuleId": None,
            "comparisonDelta": _get(body, "comparison_delta"), "dateModified": now,
            "dateCreated": current["dateCreated"] if current else now,
            "createdBy": (current or {}).get("createdBy"), "description": _get(body, "description") or "",
            "sensitivity": None, "seasonality": None, "detectionType": "static",
            "eventTypes": sorted(_get(body, "event_types") or _default_event_types(dataset)), "snooze": False,
        }

    def _trigger_action(self, action: dict, trigger_id: str, label: str, errors: _Errors) -> dict:
        kind = action.get("type")
        target_type = _get(action, "target_type")
        ident = _get(action, "target_identifier")
        integration_id = _get(action, "integration_id")
        channel_id, desc, priority = None, "", _get(action, "priority")
        if kind == "slack":
            if self._integration(integration_id, "slack") is None:
                errors.add("triggers", f"Integration {integration_id} is not a Slack integration.")
            channel_id = _get(action, "input_channel_id") or self._slack_channel_id(str(ident or ""))
            if channel_id is None:
                errors.add("triggers", f"Could not find channel {ident}. Channel may not exist, or Sentry may "
                                       "not have been granted permission to access it")
            desc = f"Send a Slack notification to {ident}"
        elif kind == "pagerduty":
            integration = self._integration(integration_id, "pagerduty")
            row = self._pagerduty_row(integration, ident) if integration else None
            if row is None:
                errors.add("triggers", f"PagerDuty service {ident!r} of integration {integration_id} not found.")
            else:
                ident = int(row["id"])
                desc = f"Send a {priority or label} level PagerDuty notification to {row['service']}"
        elif kind == "email":
            ident = str(ident or "")
            if target_type == "user" and ident not in self._user_ids():
                errors.add("triggers", f"User {ident} is not a member of this organization.")
            elif target_type == "team" and ident not in self._team_ids():
                errors.add("triggers", f"Team {ident} does not exist.")
            desc = "Send an email"
        else:
            errors.add("triggers", f"Invalid action type {kind!r}.")
        return {"id": self._id(), "alertRuleTriggerId": trigger_id, "type": kind, "targetType": target_type,
                "targetIdentifier": ident, "inputChannelId": channel_id,
                "integrationId": None if integration_id is None else int(integration_id), "sentryAppId": None,
                "dateCreated": self._now(), "desc": desc, "priority": priority}

    # --- legacy issue rules ----------------------------------------------------------------------

    def create_issue_rule(self, project: dict, body: dict) -> dict:
        rule = self._issue_rule_from(project, body, None)
        self.backend.issue_rules.setdefault(project["slug"], []).append(rule)
        return rule

    def update_issue_rule(self, project: dict, rule_id: str, body: dict) -> dict:
        current = self.backend.get_issue_rule(project, rule_id)
        rule = self._issue_rule_from(project, body, current)
        rules = self.backend.issue_rules[project["slug"]]
        rules[rules.index(current)] = rule
        return rule

    def delete_issue_rule(self, project: dict, rule_id: str) -> None:
        rules = self.backend.issue_rules.get(project["slug"], [])
        rules.remove(self.backend.get_issue_rule(project, rule_id))

    def _issue_rule_from(self, project: dict, body: dict, current: dict | None) -> dict:
        errors = _Errors()
        errors.required(body, "name", "action_match", "actions", "frequency")
        if _get(body, "conditions") is None:
            errors.add("conditions", "This field is required.")
        errors.raise_if_any()
        frequency = _get(body, "frequency")
        if not isinstance(frequency, int) or not 5 <= frequency <= 43200:
            errors.add("frequency", "Ensure this value is between 5 and 43200.")
        for match in ("action_match", "filter_match"):
            value = _get(body, match)
            if value is not None and value not in ("all", "any", "none"):
                errors.add(match, f'"{value}" is not a valid choice.')
        conditions = [dict(c) for c in _get(body, "conditions") or ()]
        for condition in conditions:
            if condition.get("id", "").endswith("FrequencyCondition") and \
                    condition.get("interval") not in ISSUE_ALERT_INTERVALS:
                errors.add("conditions", f"Select a valid choice. {condition.get('interval')} is not one of the "
                                         "available choices.")
        filters = [dict(f) for f in _get(body, "filters") or ()]
        actions = [dict(a) for a in _get(body, "actions") or ()]
        for action in actions:
            name = action.get("id", "")
            if name.endswith("SlackNotifyServiceAction"):
                if self._integration(action.get("workspace"), "slack") is None:
                    errors.add("actions", f"Slack workspace {action.get('workspace')} is not installed.")
                channel_id = action.get("channel_id") or self._slack_channel_id(action.get("channel"))
                if channel_id is None:
                    errors.add("actions", f"Did not recognize the channel {action.get('channel')!r}.")
                action["channel_id"] = channel_id
            elif name.endswith("PagerDutyNotifyServiceAction"):
                integration = self._integration(action.get("account"), "pagerduty")
                if integration is None or self._pagerduty_row(integration, action.get("service")) is None:
                    errors.add("actions", f"PagerDuty service {action.get('service')!r} not found.")
            elif name.endswith("NotifyEmailAction"):
                ident = str(action.get("targetIdentifier") or "")
                if action.get("targetType") == "Member" and ident not in self._user_ids():
                    errors.add("actions", f"Member {ident} is not a member of this organization.")
                elif action.get("targetType") == "Team" and ident not in self._team_ids():
                    errors.add("actions", f"Team {ident} does not exist.")
            action.setdefault("uuid", str(uuid.uuid4()))
        errors.raise_if_any()
        for part in [*conditions, *filters, *actions]:
            part["name"] = _rendered_name(part)
        now = self._now()
        return {
            "id": current["id"] if current else self._id(),
            "conditions": conditions, "filters": filters, "actions": actions,
            "actionMatch": _get(body, "action_match"), "filterMatch": _get(body, "filter_match") or "all",
            "frequency": frequency, "name": _get(body, "name"),
            "dateCreated": current["dateCreated"] if current else now,
            "owner": _get(body, "owner", (current or {}).get("owner")),
            "createdBy": (current or {}).get("createdBy"), "environment": _get(body, "environment"),
            "projects": [project["slug"]], "status": "active", "snooze": False,
        }

    # --- dashboards ------------------------------------------------------------------------------

    def create_dashboard(self, body: dict) -> dict:
        title = (_get(body, "title") or "").strip()
        if any(d["title"] == title for d in self.backend.dashboards):
            raise Conflict("Dashboard with that title already exists.")
        dashboard = self._dashboard_from(body, None)
        self.backend.dashboards.append(dashboard)
        return dashboard

    def update_dashboard(self, dashboard_id: str, body: dict) -> dict:
        if dashboard_id == "default-overview":
            raise ValidationFailed({"detail": ["Cannot edit the prebuilt dashboard."]})
        current = self.backend.get_dashboard(dashboard_id)
        dashboard = self._dashboard_from({"title": current["title"], **body}, current)
        self.backend.dashboards[self.backend.dashboards.index(current)] = dashboard
        return dashboard

    def _dashboard_from(self, body: dict, current: dict | None) -> dict:
        errors = _Errors()
        errors.required(body, "title")
        widgets = _get(body, "widgets")
        if widgets is None:
            widgets = (current or {}).get("widgets") or []
        dashboard_id = current["id"] if current else self._id()
        existing = {str(w["id"]): w for w in (current or {}).get("widgets") or ()}
        rendered = []
        for index, widget in enumerate(widgets):
            display = _get(widget, "display_type")
            if display not in DISPLAY_TYPES:
                errors.add(f"widgets.{index}.displayType", f'"{display}" is not a valid choice.')
            if _get(widget, "widget_type") not in WIDGET_TYPES:
                errors.add(f"widgets.{index}.widgetType", f'"{_get(widget, "widget_type")}" is not a valid choice.')
            if not _get(widget, "title"):
                errors.add(f"widgets.{index}.title", "This field is required.")
            if not widget.get("queries"):
                errors.add(f"widgets.{index}.queries", "This field is required.")
            previous = existing.get(str(widget.get("id")))
            widget_id = str(previous["id"]) if previous else self._id()
            rendered.append({
                "id": widget_id, "title": _get(widget, "title"), "description": _get(widget, "description"),
                "displayType": display, "thresholds": _get(widget, "thresholds"),
                "interval": _get(widget, "interval") or "5m", "dateCreated": (previous or {}).get(
                    "dateCreated") or self._now(), "dashboardId": dashboard_id,
                "datasetSource": _get(widget, "dataset_source") or "user", "limit": _get(widget, "limit"),
                "widgetType": _get(widget, "widget_type"),
                "layout": _get(widget, "layout") or {"x": (index % 2) * 3, "y": (index // 2) * 2, "w": 3, "h": 2,
                                                       "minH": 2},
                "exploreUrls": None, "changedReason": None, "axisRange": _get(widget, "axis_range"),
                "legendType": _get(widget, "legend_type"),
                "queries": [self._widget_query(q, widget_id) for q in widget.get("queries") or ()],
            })
        errors.raise_if_any()
        environment = _get(body, "environment")
        if environment is None:
            environment = (current or {}).get("environment", [])
        return {
            "id": dashboard_id, "title": _get(body, "title").strip(),
            "dateCreated": current["dateCreated"] if current else self._now(),
            "createdBy": (current or {}).get("createdBy") or _api_user(),
            "widgets": rendered, "projects": [int(p) for p in _get(body, "projects") or
                                              (current or {}).get("projects") or []],
            "environment": list(environment), "period": _get(body, "period") or (current or {}).get("period") or "7d",
            **{k: _get(body, k) for k in ("utc", "start", "end") if _get(body, k) is not None},
            "filters": _get(body, "filters") or (current or {}).get("filters") or {},
            "permissions": _get(body, "permissions") or (current or {}).get("permissions") or
                           {"isEditableByEveryone": True, "teamsWithEditAccess": []},
            "isFavorited": (current or {}).get("isFavorited", False), "prebuiltId": None,
        }

    def _widget_query(self, query: dict, widget_id: str) -> dict:
        fields = _get(query, "fields") or [*(_get(query, "columns") or []), *(_get(query, "aggregates") or [])]
        return {
            "id": str(query.get("id") or self._id()), "name": query.get("name") or "", "fields": list(fields),
            "aggregates": list(_get(query, "aggregates") or []), "columns": list(_get(query, "columns") or []),
            "fieldAliases": list(_get(query, "field_aliases") or []), "conditions": query.get("conditions") or "",
            "orderby": query.get("orderby") or "", "widgetId": widget_id, "onDemand": [],
            "isHidden": bool(_get(query, "is_hidden", False)),
            "selectedAggregate": _get(query, "selected_aggregate"), "linkedDashboards": [],
        }

    # --- cron monitors ---------------------------------------------------------------------------

    def create_monitor(self, body: dict) -> dict:
        monitor = self._monitor_from(body, None)
        if any(m["slug"] == monitor["slug"] for m in self.backend.monitors):
            raise ValidationFailed({"slug": [f'The slug "{monitor["slug"]}" is already in use.']})
        self.backend.monitors.append(monitor)
        return monitor

    def update_monitor(self, id_or_slug: str, body: dict, project: dict | None = None) -> dict:
        current = self.backend.get_monitor(id_or_slug, project)
        merged = {"name": current["name"], "project": current["project"]["slug"], **body}
        if "config" in body:
            merged["config"] = {**current["config"], **body["config"]}
        else:
            merged["config"] = current["config"]
        monitor = self._monitor_from(merged, current)
        self.backend.monitors[self.backend.monitors.index(current)] = monitor
        for detector in self.backend.detectors:  # the monitor's detector serialises it too
            for source in detector.get("dataSources") or ():
                if source.get("type") == "cron_monitor" and (source.get("queryObj") or {}).get("id") == monitor["id"]:
                    source["queryObj"] = {k: copy.deepcopy(v) for k, v in monitor.items()
                                          if k not in ("environments", "owner")}
        return monitor

    def _monitor_from(self, body: dict, current: dict | None) -> dict:
        errors = _Errors()
        errors.required(body, "name", "project", "config")
        errors.raise_if_any()
        config = dict(_get(body, "config"))
        schedule_type = config.get("schedule_type", "crontab")
        schedule = config.get("schedule")
        if schedule_type == "crontab" and (not isinstance(schedule, str) or not _CRON.match(schedule)):
            errors.add("config", f"Schedule was not parseable: {schedule!r}")
        if schedule_type not in ("crontab", "interval"):
            errors.add("config", f'"{schedule_type}" is not a valid schedule type.')
        try:
            project = self.backend.get_project(str(_get(body, "project")))
        except ResourceDoesNotExist:
            errors.add("project", "Invalid project.")
            project = None
        errors.raise_if_any()
        slug = _get(body, "slug") or (current or {}).get("slug") or re.sub(r"[^a-z0-9]+", "-",
                                                                           _get(body, "name").lower()).strip("-")
        full_config = {"schedule_type": schedule_type, "schedule": schedule, "checkin_margin": 5, "max_runtime": 30,
                       "timezone": "UTC", "failure_issue_threshold": 1, "recovery_threshold": 1,
                       "alert_rule_id": None, **config}
        return {
            "id": current["id"] if current else str(uuid.uuid4()),
            "name": _get(body, "name"), "slug": slug,
            "status": _get(body, "status") or (current or {}).get("status") or "active",
            "isMuted": bool(_get(body, "is_muted", (current or {}).get("isMuted", False))),
            "isUpserting": False, "config": full_config,
            "dateCreated": current["dateCreated"] if current else self._now(),
            "project": (current or {}).get("project") if current and str(current["project"]["id"]) == str(
                project["id"]) else copy.deepcopy(project),
            "environments": (current or {}).get("environments") or [],
            "owner": (current or {}).get("owner"),
        }


class _ChildIds:
    """Ids of a detector's data source, query and condition group: kept on update, as the server
    updates those rows in place."""

    def __init__(self, writes: SentryWrites, current: dict | None):
        source = ((current or {}).get("dataSources") or [{}])[0]
        query_obj = source.get("queryObj") or {}
        self.source = str(source.get("id") or writes._id())
        self.query_obj = str(query_obj.get("id") or writes._id())
        self.snuba = str((query_obj.get("snubaQuery") or {}).get("id") or writes._id())
        self.group = str(((current or {}).get("conditionGroup") or {}).get("id") or writes._id())


def _source_request(source: dict) -> dict:
    return dict(((source.get("queryObj") or {}).get("snubaQuery") or {}))


def _default_event_types(dataset: str | None) -> list[str]:
    if dataset in ("transactions", "generic_metrics"):
        return ["transaction"]
    if dataset in ("events_analytics_platform", "spans"):
        return ["trace_item_span"]
    return ["default", "error"]


def _owner_object(owner: str, teams: list[dict]) -> dict | None:
    kind, _, ident = str(owner).partition(":")
    name = next((t.get("slug") for t in teams if str(t.get("id")) == ident), None) if kind == "team" else None
    return {"type": kind, "id": ident, "name": name or ident}


def _api_user() -> dict:
    """Who created an object through the API with an internal integration's token."""
    return {"id": "0", "name": "paymon (internal integration)", "email": "", "username": "paymon",
            "avatarUrl": "", "isActive": True, "isSuspended": False, "hasPasswordAuth": False, "isManaged": True,
            "dateJoined": "2025-09-01T00:00:00Z", "lastLogin": None, "has2fa": False, "lastActive": None,
            "isSuperuser": False, "isStaff": False, "experiments": {}, "emails": [],
            "avatar": {"avatarType": "letter_avatar", "avatarUuid": None, "avatarUrl": None}}


_LEVEL_NAMES = {"50": "fatal", "40": "error", "30": "warning", "20": "info", "10": "debug", "0": "sample"}


def _rendered_name(part: dict) -> str:
    """The cosmetic `name` the server renders for an issue-rule condition, filter or action."""
    name = str(part.get("id", "")).rsplit(".", 1)[-1]
    if name == "EventFrequencyCondition":
        return f"The issue is seen more than {part.get('value')} times in {part.get('interval')}"
    if name == "FirstSeenEventCondition":
        return "A new issue is created"
    if name == "TaggedEventFilter":
        return f"The event's tags match {part.get('key')} {part.get('match')} {part.get('value')}"
    if name == "EventAttributeFilter":
        return f"The event's {part.get('attribute')} value {part.get('match')} {part.get('value')}"
    if name == "LevelFilter":
        return f"The event's level is {part.get('match')} {_LEVEL_NAMES.get(str(part.get('level')), part.get('level'))}"
    if name == "SlackNotifyServiceAction":
        return f"Send a notification to the Slack workspace to {part.get('channel')}"
    if name == "PagerDutyNotifyServiceAction":
        return f"Send a notification to PagerDuty service {part.get('service')} with {part.get('severity')} severity"
    if name == "NotifyEmailAction":
        return f"Send a notification to {part.get('targetType')}"
    return name


_WORLD_KEYS = ("organization", "projects", "tokens", "members", "teams", "legacy_alerts", "issue_rules",
               "metric_alert_rules", "detectors", "workflows", "dashboards", "monitors", "monitor_checkins",
               "integrations")


def current_world(backend, world_sentry: dict) -> dict:
    """`world["sentry"]` as the backend holds it now (after writes), knobs kept from `world_sentry`:
    a world file for `pytest --sandbox-world` that shows what the writes did."""
    current = copy.deepcopy(world_sentry)
    for key in _WORLD_KEYS:
        if hasattr(backend, key):
            current[key] = copy.deepcopy(getattr(backend, key))
    return current
