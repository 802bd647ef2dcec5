"""What paymon reads from one Sentry organisation, read once and judged against monitoring.yaml.

Each area (alerts, dashboard, cron monitor, integrations) is fetched on first use and cached, so
a run makes each API call once: the raw reads go through a `RunCache`, which xdist workers share. A failure to read an area raises `TargetUnavailable` in the
checks that need it ("could not check") and leaves the other areas' checks alone.
"""

from __future__ import annotations

import functools

from paymon.errors import TargetUnavailable

from paymon.findings import crons, dashboards, integrations, runbook
from paymon.clients.run_cache import RunCache
from paymon.findings import alerts as compare
from paymon.findings.model import Finding
from paymon.rules.model import Alert
from paymon.rules.normalise import AlertSet, Directory, read_alerts
from paymon.clients.sentry import api
from paymon.config.spec import AlertSpec, PerformanceBudget, Spec, WidgetSpec


def in_project(obj: dict, project: dict) -> bool:
    """Does an org-level list's item belong to `project`? A legacy metric alert rule names its
    projects by slug (`projects`), a detector by id (`projectId`)."""
    if "projects" in obj:
        return project["slug"] in (obj.get("projects") or ())
    return str(obj.get("projectId")) == str(project["id"])


def project_workflows(workflows: list[dict] | None, detectors: list[dict]) -> list[dict]:
    """The workflows of the project's detectors (and those connected to none, which any project's
    review should see); a workflow of only other projects' detectors is theirs."""
    ids = {str(d.get("id")) for d in detectors}
    return [w for w in workflows or () if not w.get("detectorIds") or ids & {str(i) for i in w["detectorIds"]}]


def _read_once(method):
    """Cache an area's result, or the reason it could not be read, so a dead API costs one
    deadline per session rather than one per check."""
    name = "_" + method.__name__

    @functools.wraps(method)
    def wrapper(self):
        if name not in self.__dict__:
            try:
                self.__dict__[name] = (method(self), None)
            except TargetUnavailable as exc:
                self.__dict__[name] = (None, exc)
        value, error = self.__dict__[name]
        if error is not None:
            raise error
        return value

    return property(wrapper)


class SentrySnapshot:
    def __init__(self, client, spec: Spec, cache: RunCache | None = None):
        self.client = client
        self.spec = spec
        self.cache = cache or RunCache()

    def _read(self, key: str, read, *args):
        return self.cache.get(f"sentry.{key}", lambda: read(self.client, *args))

    # --- raw reads -------------------------------------------------------------------------------

    @_read_once
    def project(self) -> dict:
        return self._read("project", api.get_project, self.client.settings.project)

    @_read_once
    def integrations(self) -> list[dict]:
        return self._read("integrations", api.list_integrations)

    @_read_once
    def directory(self) -> Directory:
        return Directory(
            members=self._read("members", api.list_members),
            teams=self._read("teams", api.list_teams),
            integrations=self.integrations,
        )

    @_read_once
    def alerts(self) -> AlertSet:
        raw = self.raw_alerts
        return read_alerts(
            issue_rules=raw["issue_rules"],
            metric_rules=raw["metric_rules"],
            detectors=raw["detectors"],
            workflows=raw["workflows"],
            directory=self.directory,
        )

    @_read_once
    def raw_alerts(self) -> dict:
        """The configured project's alert objects as Sentry returned them (the same cached reads
        `alerts` is built from), for the fields the model leaves out: descriptions and Slack notes
        (the runbook links). The org-level lists hold every project's alerts (staging, other teams'
        apps): each is cut to the configured project, so another project's rule never passes a
        production check and `paymon apply --delete-unknown` never sees it (issue 13 item 4)."""
        project = self.project
        metric = self._read("metric_rules", api.list_metric_alert_rules)
        detectors = [d for d in self._read("detectors", api.list_detectors, project["id"])
                     if in_project(d, project)]
        return {"issue_rules": self._read("issue_rules", api.list_issue_rules, project["slug"]),
                "metric_rules": None if metric is None else [r for r in metric if in_project(r, project)],
                "detectors": detectors,
                "workflows": project_workflows(self._read("workflows", api.list_workflows), detectors)}

    def elsewhere(self, name: str) -> list[str]:
        """'<project> (<source>)' for every alert of that name in another project of the
        organisation (read only when the alert is missing from the configured one)."""
        project = self.project
        try:
            slugs = {str(p.get("id")): str(p.get("slug")) for p in self._read("projects", api.list_projects)}
            metric = [r for r in self._read("metric_rules", api.list_metric_alert_rules) or ()
                      if not in_project(r, project)]
            detectors = [d for d in self._read("detectors_all", api.list_detectors, None) if not in_project(d, project)]
            workflows = self._read("workflows", api.list_workflows)
            found = read_alerts(None, metric, detectors, workflows, self.directory).named(name)
        except TargetUnavailable:
            return []
        rules = {str(r.get("id")): r for r in metric}
        out = []
        for alert in found:
            rule = rules.get(alert.raw_ids[0]) if alert.source.startswith("metric_alert") else None
            if rule is not None:
                where = ", ".join(rule.get("projects") or ()) or "no project"
            else:
                where = ", ".join(sorted({slugs.get(str(d.get("projectId")), str(d.get("projectId")))
                                          for d in detectors if str(d.get("id")) in alert.raw_ids})) or "?"
            out.append(f"{where} ({alert.source})")
        return out

    @_read_once
    def dashboard(self) -> dict | None:
        return self._read("dashboard", api.find_dashboard, self.spec.dashboard.title)

    @_read_once
    def monitor(self) -> dict | None:
        return self._read("monitor", api.get_monitor, self.spec.cron.slug, self.project["slug"])

    # --- judgements ------------------------------------------------------------------------------

    def alert(self, name: str) -> Alert | None:
        return self.alerts.by_name(name)

    def _missing(self, name: str) -> list[Finding]:
        elsewhere = self.elsewhere(name)
        if elsewhere:
            project = self.project["slug"]
            return [Finding(name, "project", project, "; ".join(elsewhere), "field", "alerts",
                            f"an alert sees only its own project's events: create it in {project}")]
        known = ", ".join(sorted({a.name for a in self.alerts.all})) or "none"
        return [Finding(name, "alert", "present", f"missing (alerts in Sentry: {known})", "field",
                        "alerts", "create it as described in the guide (see the runbook link)")]

    def alert_findings(self, alert_spec: AlertSpec) -> list[Finding]:
        actual = self.alert(alert_spec.name)
        if actual is None:
            return self._missing(alert_spec.name)
        findings = compare.compare_alert(alert_spec, actual, self.spec)
        findings += [d for d in compare.disagreements(self.alerts) if d.alert == alert_spec.name]
        return findings

    def semantic_findings(self, alert_spec: AlertSpec) -> list[Finding]:
        actual = self.alert(alert_spec.name)
        if actual is None:
            return self._missing(alert_spec.name)
        return compare.semantic_findings(alert_spec, actual, self.spec)

    def routing_findings(self, alert_spec: AlertSpec) -> list[Finding]:
        actual = self.alert(alert_spec.name)
        if actual is None:
            return self._missing(alert_spec.name)
        route = self.spec.severity_routing[alert_spec.severity]
        return compare.routing_findings(alert_spec, route, actual, self.spec)

    def runbook_link_findings(self, alert_spec: AlertSpec) -> list[Finding]:
        actual = self.alert(alert_spec.name)
        if actual is None:
            return self._missing(alert_spec.name)
        return runbook.link_findings(alert_spec, actual, self.raw_alerts, self.spec)

    def performance_findings(self, budget: PerformanceBudget) -> list[Finding]:
        actual = self.alert(budget.name)
        if actual is None:
            return self._missing(budget.name)
        return compare.compare_performance(budget, self.spec.performance, actual, self.spec)

    def dashboard_findings(self) -> list[Finding]:
        return dashboards.compare_dashboard(self.spec.dashboard, self.dashboard)

    def widget_findings(self, widget_spec: WidgetSpec) -> list[Finding]:
        if self.dashboard is None:
            return dashboards.compare_dashboard(self.spec.dashboard, None)
        widget = dashboards.find_widget(self.dashboard, widget_spec.title)
        return dashboards.compare_widget(widget_spec, self.spec.dashboard.title, widget, self.dashboard)

    def slack_integration_findings(self) -> list[Finding]:
        return integrations.compare_slack(self.spec.integrations.slack, self.integrations)

    def pagerduty_integration_findings(self) -> list[Finding]:
        if self.spec.integrations.pagerduty is None:
            return []
        return integrations.compare_pagerduty(self.spec.integrations.pagerduty, self.integrations)

    def cron_findings(self) -> list[Finding]:
        return crons.compare_monitor(self.spec.cron, self.monitor)
