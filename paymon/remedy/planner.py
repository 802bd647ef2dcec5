"""`plan()`: the changes that make a Sentry organisation match monitoring.yaml.

The plan is built from the same reads and the same comparison as the checks (`SentrySnapshot`,
`paymon.findings.alerts`, `paymon.findings.dashboards`, `paymon.findings.crons`): an alert, widget or monitor is changed
exactly when a check would report a finding for it, so "the plan is empty" means "the configuration
checks pass", and fields the server adds or coerces never show up as drift. Each live copy of an
alert (an org mid-migration has one per generation) is judged and fixed in its own generation; new
alerts go to the generation the organisation uses (`choose_generation`).

Before a rendering is planned it is read back through the normaliser and compared like live data
(`_self_check`), so the plan never proposes a write that would not make the check pass; what cannot
be expressed is reported under "cannot be written".
"""

from __future__ import annotations

from paymon.findings.dashboards import find_widget
from paymon.remedy import render_dashboard as rd
from paymon.remedy import render_legacy as rl
from paymon.remedy import render_workflow as rw
from paymon.remedy.delivery_path import integration_problems, pagerduty_problems, slack_problems
from paymon.remedy.filters import Unexpressible
from paymon.remedy.model import Change, Plan, Write
from paymon.remedy.resolve import Resolver, channels_from_alerts, channels_from_slack
from paymon.findings import alerts as compare
from paymon.findings.model import Finding
from paymon.rules.model import Alert
from paymon.rules.normalise import normalise_detector, normalise_issue_rule, normalise_metric_alert, normalise_workflow
from paymon.findings.snapshot import SentrySnapshot
from paymon.config.spec import AlertSpec, PerformanceBudget, Spec

_METRIC_DETECTOR_TYPES = {"metric_issue", "metric_alert_fire"}
_WORKFLOW_FIELDS = {"actions", "critical actions", "warning actions", "enabled", "environment", "slack route",
                    "on-call route", "pagerduty route", "email"}


def choose_generation(issue_rules, metric_rules, detectors, workflows) -> tuple[str, str]:
    """(generation, why): the workflow engine unless the org still has only legacy alerts."""
    if issue_rules is None or metric_rules is None:
        return "workflow", "the legacy alert endpoints are gone"
    engine_in_use = bool(workflows) or any(d.get("type") in _METRIC_DETECTOR_TYPES for d in detectors or ())
    if engine_in_use:
        return "workflow", "the organisation uses detectors and workflows"
    if any(issue_rules) or any(metric_rules):
        return "legacy", "the organisation has only legacy alert rules"
    return "workflow", "no alerts yet; the workflow engine is the default"


def _details(findings: list[Finding]) -> list[str]:
    seen, lines = set(), []
    for f in findings:
        line = f"{f.field}: {f.actual} → {f.expected}"
        if f.hint and f.kind == "field" and f.field.endswith("actions"):
            line += f" ({f.hint})"
        if f.field not in seen:
            seen.add(f.field)
            lines.append(line)
    return lines


class Planner:
    def __init__(self, client, spec: Spec, *, delete_unknown: bool = False, slack_reader=None,
                 pagerduty_client=None, unchecked: list[str] | None = None):
        self.client, self.spec, self.delete_unknown = client, spec, delete_unknown
        self.snap = SentrySnapshot(client, spec)
        self.project = self.snap.project
        # The configured project's alerts only: the org-level lists also hold staging's and other
        # teams' rules, which a plan must never change or delete (issue 13 item 4).
        raw = self.snap.raw_alerts
        self.issue_rules, self.metric_rules = raw["issue_rules"], raw["metric_rules"]
        self.detectors, self.workflows = raw["detectors"], raw["workflows"]
        self.alerts = self.snap.alerts
        self.directory = self.snap.directory
        generation, why = choose_generation(self.issue_rules, self.metric_rules, self.detectors, self.workflows)
        settings = client.settings
        self.plan = Plan(f"{settings.org}/{settings.project} at {settings.base_url}", generation, why)
        channels = channels_from_alerts(self.issue_rules, self.metric_rules, self.workflows)
        if slack_reader is not None:
            try:
                channels.update(channels_from_slack(slack_reader))
            except Exception as exc:  # noqa: BLE001 - Slack is optional for planning
                self.plan.notes.append(f"Slack channel ids not read: {exc}")
        self.resolver = Resolver(spec, self.directory.members, self.directory.teams, self.directory.integrations,
                                 channels)
        self.slack_reader, self.pagerduty_client = slack_reader, pagerduty_client
        self.plan.notes += unchecked or []
        self._keys = 0

    # --- the whole plan ---------------------------------------------------------------------------

    def build(self) -> Plan:
        for alert in [*self.spec.alerts, *self.spec.synthetic_checks]:
            self.plan_alert(alert)
        self.plan_performance()
        self.plan_dashboard()
        self.plan_cron()
        self.plan_unknown()
        self.plan.blocked = self.resolver.problems + self.plan.blocked
        self.plan.notes += self.resolver.notes
        self.plan.unfixable += integration_problems(self.spec, self.snap.integrations)
        if self.slack_reader is not None:
            self.plan.unfixable += slack_problems(self.spec, self.slack_reader)
        if self.pagerduty_client is not None:
            self.plan.unfixable += pagerduty_problems(self.spec, self.pagerduty_client, self.snap.integrations)
        return self.plan

    def _key(self, kind: str) -> str:
        self._keys += 1
        return f"{kind}{self._keys}"

    # --- paths -----------------------------------------------------------------------------------

    def _org(self, *parts) -> str:
        return self.client.org_path(*parts)

    def _detectors_path(self) -> str:
        return self.client.org_path("projects", self.project["slug"], "detectors")

    def _rules(self, *parts) -> str:
        return self.client.project_path("rules", *parts, project=self.project["slug"])

    def _issue_detector(self) -> dict | None:
        pid = str(self.project["id"])
        for kind in ("issue_stream", "error"):
            found = next((d for d in self.detectors or () if d.get("type") == kind and str(d.get("projectId")) == pid),
                         None)
            if found:
                return found
        return None

    # --- the six alerts and the synthetic checks -------------------------------------------------

    def findings(self, spec: AlertSpec, record: Alert) -> list[Finding]:
        found = compare.compare_alert(spec, record, self.spec) + compare.semantic_findings(spec, record, self.spec)
        # §3 routing is checked for the six alerts; the synthetic checks are exempt (as in the checks).
        route = self.spec.severity_routing.get(spec.severity) if spec in self.spec.alerts else None
        if route is not None:
            found += compare.routing_findings(spec, route, record, self.spec)
        return found

    def plan_alert(self, spec: AlertSpec) -> None:
        subject = f'alert "{spec.name}"'
        targets, complete = self.resolver.actions(spec.actions, subject)
        records = self.alerts.named(spec.name)
        if not complete:
            if not records or any(self.findings(spec, r) for r in records):
                self.plan.blocked.append(f"{subject}: not written until its actions resolve (see above)")
            return
        if not records:
            self._create_alert(spec, targets, subject)
            return
        for record in records:
            found = self.findings(spec, record)
            if found:
                self._update_alert(spec, record, targets, found, subject)

    def _render(self, spec: AlertSpec, generation: str, targets, subject: str, metric: bool) -> dict | None:
        """{"detector"|"workflow"|"rule": body} for the generation, or None (reported); each carries
        the alert's runbook link where Sentry keeps it (checks/test_runbook.py)."""
        bodies = self._render_bodies(spec, generation, targets, subject, metric)
        if bodies is not None and spec.runbook:
            _add_runbook_link(bodies, self.spec.runbook_link(spec.runbook), metric)
        return bodies

    def _render_bodies(self, spec: AlertSpec, generation: str, targets, subject: str, metric: bool) -> dict | None:
        try:
            if generation == "workflow":
                if metric:
                    return {"detector": rw.metric_detector(spec), "workflow": rw.metric_workflow(spec, [], targets)}
                issue_detector = self._issue_detector()
                if issue_detector is None:
                    self.plan.blocked.append(f"{subject}: the project has no issue_stream/error detector to attach "
                                             "an issue alert to")
                    return None
                return {"workflow": rw.issue_workflow(spec, issue_detector["id"], targets)}
            if metric:
                return {"rule": rl.metric_alert_rule(spec, self.project["slug"], targets)}
            return {"rule": rl.issue_rule(spec, targets)}
        except Unexpressible as exc:
            self.plan.blocked.append(f"{subject}: cannot be expressed in the {generation} generation: {exc}")
            return None

    def _self_check(self, spec: AlertSpec, generation: str, bodies: dict, subject: str, metric: bool) -> bool:
        if generation == "workflow" and metric:
            detector = rw.as_stored_detector(bodies["detector"], "new", str(self.project["id"]), ["new-w"])
            workflow = rw.as_stored_workflow({**bodies["workflow"], "detectorIds": ["new"]}, "new-w")
            alert = normalise_detector(detector, [workflow], self.directory)
        elif generation == "workflow":
            issue_detector = self._issue_detector()
            alert = normalise_workflow(rw.as_stored_workflow(bodies["workflow"], "new"),
                                       {str(issue_detector["id"]): issue_detector}, self.directory)
        elif metric:
            alert = normalise_metric_alert(rl.as_stored_rule(bodies["rule"], "new"), self.directory)
        else:
            alert = normalise_issue_rule(rl.as_stored_rule(bodies["rule"], "new"), self.directory)
        left = self.findings(spec, alert)
        if left:
            self.plan.blocked.append(f"{subject}: cannot be expressed in the {generation} generation: "
                                     + "; ".join(f.line() for f in left))
            return False
        return True

    def _create_alert(self, spec: AlertSpec, targets, subject: str) -> None:
        generation = self.plan.generation
        metric = spec.count == "across_events"
        bodies = self._render(spec, generation, targets, subject, metric)
        if bodies is None or not self._self_check(spec, generation, bodies, subject, metric):
            return
        change = Change("create", subject, self._form(metric, generation), [_summary(spec)])
        change.writes = self._create_writes(spec, generation, bodies, metric)
        self.plan.changes.append(change)

    def _create_writes(self, spec: AlertSpec, generation: str, bodies: dict, metric: bool) -> list[Write]:
        if generation == "legacy":
            path = self._org("alert-rules") if metric else self._rules()
            return [Write("POST", path, bodies["rule"], f'create {self._form(metric, generation)} "{spec.name}"')]
        if "detector" not in bodies:
            return [Write("POST", self._org("workflows"), bodies["workflow"], f'create workflow "{spec.name}"')]
        key = self._key("detector")
        workflow = bodies["workflow"]
        return [
            Write("POST", self._detectors_path(), bodies["detector"], f'create metric detector "{spec.name}"', key),
            Write("POST", self._org("workflows"), lambda ids: {**workflow, "detectorIds": [ids[key]]},
                  f'create workflow "{spec.name}" for it'),
        ]

    @staticmethod
    def _form(metric: bool, generation: str) -> str:
        if generation == "workflow":
            return "metric detector + workflow" if metric else "issue-alert workflow"
        return "metric alert rule" if metric else "issue alert rule"

    def _update_alert(self, spec: AlertSpec, record: Alert, targets, found: list[Finding], subject: str) -> None:
        generation = record.generation
        metric = _wants_metric(spec, record)
        bodies = self._render(spec, generation, targets, subject, metric)
        if bodies is None or not self._self_check(spec, generation, bodies, subject, metric):
            return
        self._keep_slack_extras(bodies, record)
        kind = record.source.split(" ", 1)[0]
        details = _details(found)
        writes: list[Write] = []
        action = "update"
        if kind == "metric_alert" and metric:
            writes.append(Write("PUT", self._org("alert-rules", record.raw_ids[0]), bodies["rule"],
                                f"update metric alert rule {record.raw_ids[0]}"))
        elif kind == "issue_rule" and not metric:
            writes.append(Write("PUT", self._rules(record.raw_ids[0]), bodies["rule"],
                                f"update issue alert rule {record.raw_ids[0]}"))
        elif kind in ("metric_alert", "issue_rule"):
            action = "replace"
            writes += self._create_writes(spec, generation, bodies, metric)
            old = self._org("alert-rules", record.raw_ids[0]) if kind == "metric_alert" else self._rules(record.raw_ids[0])
            writes.append(Write("DELETE", old, None, f"delete the old {kind.replace('_', ' ')} {record.raw_ids[0]}"))
        elif kind == "detector":
            writes += self._update_metric_detector(spec, record, bodies, found, metric)
            if not metric:
                action = "replace"
        else:  # an issue-alert workflow
            workflow_id = record.raw_ids[0]
            if metric:  # per-issue → aggregate: a metric detector, and the workflow moves onto it
                key = self._key("detector")
                workflow = bodies["workflow"]
                writes += [
                    Write("POST", self._detectors_path(), bodies["detector"], f'create metric detector "{spec.name}"',
                          key),
                    Write("PUT", self._org("workflows", workflow_id), lambda ids: {**workflow, "detectorIds": [ids[key]]},
                          f"update workflow {workflow_id}: connect it to the new detector, actions on priority"),
                ]
                details.append("form: per-issue workflow → metric detector + the same workflow")
            else:
                writes.append(Write("PUT", self._org("workflows", workflow_id), bodies["workflow"],
                                    f"update workflow {workflow_id}"))
        if action == "replace" and not any("form:" in d for d in details):
            details.append(f"form: {record.source} → {self._form(metric, generation)}")
        self.plan.changes.append(Change(action, subject, record.source, details, writes))

    def _keep_slack_extras(self, bodies: dict, record: Alert) -> None:
        """Keep what monitoring.yaml does not model on a Slack action that stays (its `tags` and
        `notes`, e.g. a mention of the on-call group), rather than blanking it on update."""
        live_extras: dict[str, dict] = {}
        for raw in self._raw_objects(record):
            for action in raw.get("actions") or ():  # legacy issue rule
                extras = {k: action[k] for k in ("tags", "notes") if k in action}
                for key in (action.get("channel"), action.get("channel_id")):
                    if key:
                        live_extras.setdefault(str(key), extras)
            for group in raw.get("actionFilters") or ():  # workflow
                for action in group.get("actions") or ():
                    if action.get("type") == "slack":
                        config, data = action.get("config") or {}, action.get("data") or {}
                        extras = {k: data[k] for k in ("tags", "notes") if k in data}
                        for key in (config.get("targetDisplay"), config.get("targetIdentifier")):
                            if key:
                                live_extras.setdefault(str(key), extras)
        if not live_extras:
            return
        rule = bodies.get("rule") or {}
        for action in rule.get("actions") or ():
            if action.get("id", "").endswith("SlackNotifyServiceAction"):
                action.update(live_extras.get(action["channel"]) or live_extras.get(str(action.get("channel_id"))) or {})
        for group in (bodies.get("workflow") or {}).get("actionFilters") or ():
            for action in group.get("actions") or ():
                if action.get("type") == "slack":
                    config = action["config"]
                    extras = live_extras.get(config.get("targetDisplay")) or live_extras.get(
                        str(config.get("targetIdentifier"))) or {}
                    action["data"] = {**action.get("data", {}), **extras}

    def _raw_objects(self, record: Alert) -> list[dict]:
        pools = {"issue_rule": [r for r in self.issue_rules or ()], "metric_alert": list(self.metric_rules or ()),
                 "workflow": list(self.workflows or ()), "detector": list(self.workflows or ())}
        ids = set(record.raw_ids)
        return [o for o in pools.get(record.source.split(" ", 1)[0], []) if str(o.get("id")) in ids]

    def _update_metric_detector(self, spec: AlertSpec, record: Alert, bodies: dict, found: list[Finding],
                                metric: bool) -> list[Write]:
        detector_id, workflow_ids = record.raw_ids[0], list(record.raw_ids[1:])
        writes = []
        if not metric:  # aggregate → per-issue: an issue-alert workflow, the detector goes
            workflow = bodies["workflow"]
            if workflow_ids:
                writes.append(Write("PUT", self._org("workflows", workflow_ids[0]), workflow,
                                    f"update workflow {workflow_ids[0]}: an issue alert on the issue stream"))
            else:
                writes.append(Write("POST", self._org("workflows"), workflow, f'create workflow "{spec.name}"'))
            writes += self._disconnect(workflow_ids[1:], detector_id)
            writes.append(Write("DELETE", self._org("detectors", detector_id), None,
                                f"delete metric detector {detector_id} (replaced by the workflow)"))
            return writes
        detector_fields = {f.field for f in found} - _WORKFLOW_FIELDS
        if detector_fields or any(f.field in ("enabled", "environment") for f in found):
            writes.append(Write("PUT", self._org("detectors", detector_id), bodies["detector"],
                                f"update metric detector {detector_id}"))
        workflow = bodies["workflow"]
        if not workflow_ids:
            writes.append(Write("POST", self._org("workflows"), {**workflow, "detectorIds": [detector_id]},
                                f'create workflow "{spec.name}" for detector {detector_id}'))
        elif {f.field for f in found} & _WORKFLOW_FIELDS:
            live = self._workflow(workflow_ids[0])
            connected = [str(i) for i in (live or {}).get("detectorIds") or ()] or [detector_id]
            writes.append(Write("PUT", self._org("workflows", workflow_ids[0]),
                                {**workflow, "name": (live or {}).get("name", spec.name), "detectorIds": connected},
                                f"update workflow {workflow_ids[0]}"))
            writes += self._disconnect(workflow_ids[1:], detector_id)
        return writes

    def _workflow(self, workflow_id: str) -> dict | None:
        return next((w for w in self.workflows or () if str(w.get("id")) == str(workflow_id)), None)

    def _disconnect(self, workflow_ids: list[str], detector_id: str) -> list[Write]:
        writes = []
        for workflow_id in workflow_ids:
            live = self._workflow(workflow_id) or {}
            remaining = [str(i) for i in live.get("detectorIds") or () if str(i) != str(detector_id)]
            writes.append(Write("PUT", self._org("workflows", workflow_id),
                                {"name": live.get("name"), "detectorIds": remaining},
                                f"update workflow {workflow_id}: disconnect it from detector {detector_id}"))
        return writes

    # --- performance alerts ----------------------------------------------------------------------

    def plan_performance(self) -> None:
        perf = self.spec.performance
        critical, ok_critical = self.resolver.actions(perf.actions.critical, "performance alerts")
        warning, ok_warning = self.resolver.actions(perf.actions.warning, "performance alerts")
        if not (ok_critical and ok_warning):
            self.plan.blocked.append("performance alerts: not written until their actions resolve (see above)")
            return
        live_detectors: list[str] = []
        new_keys: list[str] = []
        shared: dict | None = None
        workflow_details: list[str] = []
        for budget in perf.budgets:
            subject = f'performance alert "{budget.name}"'
            records = self.alerts.named(budget.name)
            if not records:
                if self.plan.generation == "legacy":
                    body = rl.performance_alert_rule(budget, perf, self.project["slug"], critical, warning)
                    if self._perf_self_check(budget, "legacy", body, None, subject):
                        self.plan.changes.append(Change("create", subject, "metric alert rule", [_perf_summary(budget)],
                                                        [Write("POST", self._org("alert-rules"), body,
                                                               f'create metric alert rule "{budget.name}"')]))
                    continue
                body = rw.performance_detector(budget, perf)
                if not self._perf_self_check(budget, "workflow", body, (critical, warning), subject):
                    continue
                key = self._key("detector")
                new_keys.append(key)
                self.plan.changes.append(Change("create", subject, "metric detector", [_perf_summary(budget)],
                                                [Write("POST", self._detectors_path(), body,
                                                       f'create metric detector "{budget.name}"', key)]))
                workflow_details.append(f"connect the new detector {budget.name!r}")
                continue
            for record in records:
                found = compare.compare_performance(budget, perf, record, self.spec)
                kind = record.source.split(" ", 1)[0]
                if kind == "detector":
                    live_detectors.append(record.raw_ids[0])
                    shared = shared or next((self._workflow(w) for w in record.raw_ids[1:] if self._workflow(w)), None)
                if not found:
                    continue
                details = _details(found)
                if kind == "metric_alert":
                    body = rl.performance_alert_rule(budget, perf, self.project["slug"], critical, warning)
                    self.plan.changes.append(Change("update", subject, record.source, details, [
                        Write("PUT", self._org("alert-rules", record.raw_ids[0]), body,
                              f"update metric alert rule {record.raw_ids[0]}")]))
                elif kind == "detector":
                    fields = {f.field for f in found}
                    writes = []
                    if fields - _WORKFLOW_FIELDS or fields & {"enabled", "environment"}:
                        writes.append(Write("PUT", self._org("detectors", record.raw_ids[0]),
                                            rw.performance_detector(budget, perf),
                                            f"update metric detector {record.raw_ids[0]}"))
                    if fields & _WORKFLOW_FIELDS or len(record.raw_ids) == 1:
                        workflow_details += [f"{budget.name}: {d}" for d in details
                                             if d.split(":")[0] in _WORKFLOW_FIELDS]
                        if len(record.raw_ids) == 1:
                            workflow_details.append(f"connect detector {record.raw_ids[0]} ({budget.name!r})")
                    if writes:
                        self.plan.changes.append(Change("update", subject, record.source, details, writes))
                else:
                    self.plan.blocked.append(f"{subject}: {record.source} is not a metric alert; delete it and plan "
                                             "again")
        needs_engine = self.plan.generation == "workflow" or live_detectors
        if needs_engine and (new_keys or workflow_details or (live_detectors and shared is None)):
            self._plan_performance_workflow(shared, live_detectors, new_keys, critical, warning, workflow_details)

    def _plan_performance_workflow(self, shared, live_detectors, new_keys, critical, warning, details) -> None:
        perf = self.spec.performance
        if shared is None:
            shared = next((w for w in self.workflows or () if w.get("name") == rw.PERFORMANCE_WORKFLOW), None)
        keep = [str(i) for i in (shared or {}).get("detectorIds") or ()]
        base = list(dict.fromkeys([*keep, *map(str, live_detectors)]))

        def body(ids: dict) -> dict:
            rendered = rw.performance_workflow(perf, [*base, *(ids[k] for k in new_keys)], critical, warning)
            if shared is not None:
                rendered["name"] = shared.get("name") or rendered["name"]
            return rendered

        subject = f'performance alerts workflow "{(shared or {}).get("name") or rw.PERFORMANCE_WORKFLOW}"'
        if shared is None:
            self.plan.changes.append(Change("create", subject, "workflow", details or ["actions for every budget"],
                                            [Write("POST", self._org("workflows"), body, f"create {subject}")]))
        else:
            self.plan.changes.append(Change("update", subject, f"workflow {shared['id']}", details,
                                            [Write("PUT", self._org("workflows", shared["id"]), body,
                                                   f"update workflow {shared['id']}")]))

    def _perf_self_check(self, budget: PerformanceBudget, generation: str, body: dict, targets, subject: str) -> bool:
        if generation == "legacy":
            alert = normalise_metric_alert(rl.as_stored_rule(body, "new"), self.directory)
        else:
            critical, warning = targets
            workflow = rw.performance_workflow(self.spec.performance, ["new"], critical, warning)
            detector = rw.as_stored_detector(body, "new", str(self.project["id"]), ["new-w"])
            alert = normalise_detector(detector, [rw.as_stored_workflow(workflow, "new-w")], self.directory)
        left = compare.compare_performance(budget, self.spec.performance, alert, self.spec)
        if left:
            self.plan.blocked.append(f"{subject}: cannot be expressed in the {generation} generation: "
                                     + "; ".join(f.line() for f in left))
        return not left

    # --- dashboard and cron monitor --------------------------------------------------------------

    def plan_dashboard(self) -> None:
        spec = self.spec.dashboard
        subject = f'dashboard "{spec.title}"'
        live = self.snap.dashboard
        if live is None:
            widgets = [rd.widget(w, i) for i, w in enumerate(spec.widgets)]
            self.plan.changes.append(Change("create", subject, "dashboards", [
                f"widgets: {', '.join(w.title for w in spec.widgets)}"], [
                Write("POST", self._org("dashboards"), rd.dashboard(spec, widgets, self.project["id"]),
                      f"create {subject}")]))
            return
        found = self.snap.dashboard_findings()
        by_title = {w.title.strip().casefold(): w for w in spec.widgets}
        changed_titles = set()
        for widget_spec in spec.widgets:
            # A missing widget is already one of the dashboard's findings.
            widget_found = [f for f in self.snap.widget_findings(widget_spec) if f.field != "widget"]
            if widget_found or find_widget(live, widget_spec.title) is None:
                found += widget_found
                changed_titles.add(widget_spec.title.strip().casefold())
        if not found:
            return
        widgets, seen = [], set()
        for index, widget in enumerate(live.get("widgets") or ()):
            title = (widget.get("title") or "").strip().casefold()
            if title in by_title and title in changed_titles and title not in seen:
                widgets.append(rd.widget(by_title[title], index, str(widget.get("id"))))
            else:
                widgets.append(widget)
            seen.add(title)
        for widget_spec in spec.widgets:
            if widget_spec.title.strip().casefold() not in seen:
                widgets.append(rd.widget(widget_spec, len(widgets)))
        body = {"title": live.get("title"), "widgets": widgets,
                "environment": [spec.environment] if spec.environment else live.get("environment") or [],
                "projects": live.get("projects") or []}
        self.plan.changes.append(Change("update", subject, f"dashboard {live.get('id')}", _details(found), [
            Write("PUT", self._org("dashboards", live.get("id")), body, f"update dashboard {live.get('id')}")]))

    def plan_cron(self) -> None:
        spec = self.spec.cron
        subject = f'cron monitor "{spec.slug}"'
        live = self.snap.monitor
        body = rd.monitor(spec, self.project["slug"])
        if live is None:
            self.plan.changes.append(Change("create", subject, "monitors", [
                f"schedule {spec.schedule} ({spec.timezone}); its environment appears with the first check-in"],
                [Write("POST", self._org("monitors"), body, f"create {subject}")]))
            return
        found = self.snap.cron_findings()
        fixable = [f for f in found if f.field != "environment"]
        self.plan.unfixable += [f"{f.line()} — the job checks in to that environment; fix the job's "
                                "SENTRY_ENVIRONMENT" for f in found if f.field == "environment"]
        if fixable:
            body = {**body, "name": live.get("name") or spec.name}
            body.pop("slug", None)
            self.plan.changes.append(Change("update", subject, f"monitor {live.get('slug')}", _details(fixable), [
                Write("PUT", self._org("monitors", live.get("slug")), body, f"update {subject}")]))

    # --- alerts monitoring.yaml does not know ----------------------------------------------------

    def plan_unknown(self) -> None:
        known = {_key(a.name) for a in [*self.spec.alerts, *self.spec.synthetic_checks]}
        known |= {_key(b.name) for b in self.spec.performance.budgets}
        for alert in self.alerts.all:
            if _key(alert.name) in known:
                continue
            line = f'"{alert.name}" ({alert.source})'
            if not self.delete_unknown:
                self.plan.unknown.append(line)
                continue
            self.plan.changes.append(Change("delete", f'alert "{alert.name}"', alert.source,
                                            ["not in monitoring.yaml (--delete-unknown)"], self._delete_writes(alert)))

    def _delete_writes(self, alert: Alert) -> list[Write]:
        kind, first = alert.source.split(" ", 1)[0], alert.raw_ids[0]
        if kind == "metric_alert":
            return [Write("DELETE", self._org("alert-rules", first), None, f"delete metric alert rule {first}")]
        if kind == "issue_rule":
            return [Write("DELETE", self._rules(first), None, f"delete issue alert rule {first}")]
        if kind == "workflow":
            return [Write("DELETE", self._org("workflows", first), None, f"delete workflow {first}")]
        writes = [Write("DELETE", self._org("detectors", first), None, f"delete metric detector {first}")]
        for workflow_id in alert.raw_ids[1:]:
            live = self._workflow(workflow_id) or {}
            if {str(i) for i in live.get("detectorIds") or ()} <= {str(first)}:
                writes.append(Write("DELETE", self._org("workflows", workflow_id), None, f"delete workflow {workflow_id}"))
        return writes


def _wants_metric(spec: AlertSpec, record: Alert) -> bool:
    """An aggregate (metric) alert, unless "any occurrence" is already met by a per-issue alert
    that fires on every event (counting does not matter when one event is enough)."""
    if spec.count != "across_events":
        return False
    return not (spec.any_occurrence and record.counting == "per_issue")


def _key(name: str) -> str:
    return " ".join(name.split()).casefold()


def _summary(spec: AlertSpec) -> str:
    actions = ", ".join(a.slack or (f"pagerduty {a.pagerduty.service}" if a.pagerduty else f"email {a.email}")
                        for a in spec.actions)
    window = f" in {spec.window}s" if spec.window else ""
    return (f"{spec.count}, {spec.aggregate} {spec.comparator} {spec.threshold:g}{window}, "
            f"environment {spec.environment or 'all'}, filter {spec.filter!r}; actions: {actions}")


def _perf_summary(budget: PerformanceBudget) -> str:
    return f"transaction {budget.transaction}: warning > {budget.warning:g} ms, critical > {budget.critical:g} ms"


def plan(client, spec: Spec, **options) -> Plan:
    return Planner(client, spec, **options).build()


def _add_runbook_link(bodies: dict, link: str, metric: bool) -> None:
    """A metric alert's or detector's description; an issue alert's Slack notes (which Sentry puts
    into the Slack message; paymon.findings.runbook says why these two places)."""
    text = f"Runbook: {link}"
    for kind, body in bodies.items():
        if metric and kind in ("detector", "rule"):
            body["description"] = text
        elif not metric and kind == "rule":
            for action in body.get("actions") or []:
                if str(action.get("id", "")).endswith("SlackNotifyServiceAction"):
                    action["notes"] = " ".join(filter(None, [action.get("notes"), text]))
        elif not metric and kind == "workflow":
            for group in body.get("actionFilters") or []:
                for action in group.get("actions") or []:
                    if action.get("type") == "slack":
                        data = action.setdefault("data", {})
                        data["notes"] = " ".join(filter(None, [data.get("notes"), text]))
