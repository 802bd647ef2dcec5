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
        project = self.project
        return read_alerts(
            issue_rules=self._read("issue_rules", api.list_issue_rules, project["slug"]),
            metric_rules=self._read("metric_rules", api.list_metric_alert_rules),
            detectors=self._read("detectors", api.list_detectors, project["id"]),
            workflows=self._read("workflows", api.list_workflows),
            directory=self.directory,
        )

    @_read_once
    def raw_alerts(self) -> dict:
        """The alert objects as Sentry returned them (the same cached reads `alerts` is built from),
        for the fields the model leaves out: descriptions and Slack notes (the runbook links)."""
        project = self.project
        return {"issue_rules": self._read("issue_rules", api.list_issue_rules, project["slug"]),
                "metric_rules": self._read("metric_rules", api.list_metric_alert_rules),
                "detectors": self._read("detectors", api.list_detectors, project["id"]),
                "workflows": self._read("workflows", api.list_workflows)}

    @_read_once
    def dashboard(self) -> dict | None:
        return self._read("dashboard", api.find_dashboard, self.spec.dashboard.title)

    @_read_once
    def monitor(self) -> dict | None:
        return self._read("monitor", api.get_monitor, self.spec.cron.slug)

    # --- judgements ------------------------------------------------------------------------------

    def alert(self, name: str) -> Alert | None:
        return self.alerts.by_name(name)

    def _missing(self, name: str) -> list[Finding]:
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
