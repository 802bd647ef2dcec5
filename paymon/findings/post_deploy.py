"""§7 Post-Deployment "Monitor alerts for first 24 hours (T+1hr, T+4hr, T+24hr)": what the hours since
the latest deploy did to production, by Sentry's own record (read-only).

    latest_deploy(client, environment, releases_read)  the newest deploy to the environment, or None
    watch(client, spec, alerts, now)                    a PostDeployReport (the deploy, per alert:
                                                        firings since it, events after vs before)
    findings(report, spec)                              (failures, warnings) as Findings

The deploy: Sentry has no org-wide deploy list (verified-2026-12.md §7), so paymon lists the
project's releases in the environment (`GET O/releases/?environment=`, newest first, the first
`post_deploy.releases_read`) and reads the deploys of each that has any
(`GET O/releases/{version}/deploys/`). The newest server returns only the last deploy per project
and environment, older ones every deploy; either way the newest `dateFinished` in the environment
wins, so a rollback to an older release among those read is found too.

Per alert of monitoring.yaml, over the hours since the deploy:
* fired — Sentry's own record of a firing detected since the deploy: a legacy metric alert's
  incidents (`dateDetected`), a metric detector's open periods (`start`) (§8); for a per-issue alert
  (issue rule / issue workflow, which keep no incident) a new issue of its selection first seen
  since the deploy, which is when such an alert fires on a new issue. A firing whose window holds
  no more real events (paymon's test-tagged ones left out) than the threshold was paymon's own
  (a drill's test events) and is listed apart, never judged.
* events after vs before — the alert's selection (filter and levels, paymon's test events left
  out, its environment, the configured project) counted since the deploy and over the same number
  of hours just before it (`GET O/events/`, `count()`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from paymon.clients.sentry import api
from paymon.clients.sentry.api import configured_project_id
from paymon.config.spec import AlertSpec, Spec
from paymon.errors import TargetUnavailable
from paymon.findings.model import Finding
from paymon.findings.production import NOT_A_TEST, alert_query, count, issue_terms
from paymon.rules.model import Alert

SLACK_S = 120
"""Ingestion and the alert's next evaluation: how far before its detection a firing's events may lie
beyond its window."""


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


@dataclass(frozen=True)
class Deploy:
    version: str
    environment: str
    finished: float
    deploy_id: str = ""
    name: str | None = None
    url: str | None = None

    def describe(self) -> str:
        name = f" ({self.name})" if self.name else ""
        return f"{self.version}{name} to {self.environment} at {iso(self.finished)}"


@dataclass
class Firing:
    at: float
    source: str
    """Where Sentry records it: "incident 12", "open period 4", "new issue PAY-1A"."""
    own: bool = False
    """Tripped by paymon's own test-tagged events (a drill), not by production."""


@dataclass
class AlertWatch:
    name: str
    severity: str
    query: str
    before: int
    after: int
    firings: list[Firing] = field(default_factory=list)
    note: str = ""

    @property
    def fired(self) -> list[Firing]:
        return [f for f in self.firings if not f.own]

    def change(self) -> str:
        if self.before == 0:
            return "new" if self.after else "none"
        return f"x{self.after / self.before:.2f}"


@dataclass
class PostDeployReport:
    deploy: Deploy
    now: float
    alerts: list[AlertWatch]
    notes: list[str] = field(default_factory=list)

    @property
    def hours(self) -> float:
        return (self.now - self.deploy.finished) / 3600

    @property
    def before_start(self) -> float:
        return self.deploy.finished - (self.now - self.deploy.finished)

    def rows(self) -> list[tuple]:
        """The table: one row per alert (what the CSV attachment and the plot show)."""
        return [(a.name, a.severity, a.before, a.after, a.change(), len(a.fired),
                 "; ".join(f"{iso(f.at)} {f.source}" for f in a.fired),
                 len(a.firings) - len(a.fired), a.query) for a in self.alerts]

    ROW_HEADER = ("alert", "severity", "events before", "events after", "change", "fired since deploy",
                  "firings", "paymon's own firings", "query")


# --- the deploy ----------------------------------------------------------------------------------

def latest_deploy(client, environment: str, releases_read: int) -> Deploy | None:
    """The newest deploy of the configured project to `environment`, or None when Sentry records none
    among the newest `releases_read` releases of that environment."""
    project = configured_project_id(client)
    releases = client.get(client.org_path("releases"),
                          params={"project": project, "environment": environment, "per_page": releases_read}) or []
    newest: Deploy | None = None
    for release in releases[:releases_read]:
        if release.get("deployCount") == 0:
            continue  # no deploy anywhere: nothing to read (deployCount is in every release's summary)
        version = release["version"]
        for deploy in client.paginate(client.org_path("releases", version, "deploys"), {"project": project}):
            finished = _epoch(deploy.get("dateFinished"))
            if deploy.get("environment") != environment or finished is None:
                continue
            if newest is None or finished > newest.finished:
                newest = Deploy(version, environment, finished, str(deploy.get("id") or ""), deploy.get("name"),
                                deploy.get("url"))
    return newest


# --- per alert -----------------------------------------------------------------------------------

def _metric_firings(client, alert: Alert, project_id: str, since: float, now: float) -> list[Firing] | None:
    kind = alert.source.split(" ", 1)[0]
    rule_id = alert.raw_ids[0]
    if kind == "metric_alert":
        records = api.list_incidents(client, rule_id, project_id, since)
        if records is None:
            return None
        return [Firing(t, f"incident {r.get('identifier') or r.get('id')}") for r in records
                if (t := _epoch(r.get("dateDetected"))) is not None and t >= since]
    records = api.list_open_periods(client, rule_id, since, now)
    if records is None:
        return None
    return [Firing(t, f"open period {r.get('id')}") for r in records
            if (t := _epoch(r.get("start"))) is not None and t >= since]


def _new_issues(client, alert_spec: AlertSpec, project_id: str, since: float, now: float) -> list[Firing]:
    hours = max(1, int((now - since) // 3600) + 1)
    found: dict[str, Firing] = {}
    for term in issue_terms(alert_spec):
        params = {"query": f"{NOT_A_TEST} {term}", "project": project_id, "statsPeriod": f"{hours}h",
                  "sort": "new", "limit": 25}
        if alert_spec.environment:
            params["environment"] = alert_spec.environment
        for issue in client.get(client.org_path("issues"), params=params) or []:
            first = _epoch(issue.get("firstSeen"))
            if first is not None and first >= since:
                found[str(issue.get("id"))] = Firing(first, f"new issue {issue.get('shortId') or issue.get('id')}")
    return sorted(found.values(), key=lambda f: f.at)


def _real_events_before(client, alert_spec: AlertSpec, alert: Alert, query: str, at: float) -> int:
    window = alert.window_seconds or alert_spec.window or 60
    return count(client, "errors", query, alert_spec.environment, start=at - window - SLACK_S, end=at + 1)


def watch_alert(client, alert_spec: AlertSpec, alert: Alert | None, deploy: Deploy, now: float,
                project_id: str) -> AlertWatch:
    span = now - deploy.finished
    query = f"{alert_query(alert_spec)} {NOT_A_TEST}".strip()
    environment = alert_spec.environment
    before = count(client, "errors", query, environment, start=deploy.finished - span, end=deploy.finished)
    after = count(client, "errors", query, environment, start=deploy.finished, end=now)
    result = AlertWatch(alert_spec.name, alert_spec.severity, query, before, after)
    if alert is None or not alert.raw_ids:
        result.note = "not in Sentry: no firing record to read (the configuration checks report it)"
        return result
    if alert.counting == "across_events":
        firings = _metric_firings(client, alert, project_id, deploy.finished, now)
        if firings is None:
            raise TargetUnavailable(f"{alert_spec.name}: Sentry does not serve its firing record "
                                    f"({alert.source}: O/incidents/ or O/open-periods/), so what fired since the "
                                    "deploy cannot be read")
        threshold = alert.threshold if alert.threshold is not None else alert_spec.threshold
        for firing in firings:
            firing.own = _real_events_before(client, alert_spec, alert, query, firing.at) <= threshold
    else:
        firings = _new_issues(client, alert_spec, project_id, deploy.finished, now)
    result.firings = firings
    return result


def watch(client, spec: Spec, alerts: dict[str, Alert | None], now: float) -> PostDeployReport:
    """The latest deploy to the spec's environment and each alert over the hours since it. Raises
    TargetUnavailable ("could not check") when there is no deploy to watch."""
    settings = spec.post_deploy
    deploy = latest_deploy(client, spec.environment, settings.releases_read)
    if deploy is None:
        raise TargetUnavailable(
            f"no deploy to {spec.environment} recorded in Sentry for project {client.settings.project} (the newest "
            f"{settings.releases_read} releases of {spec.environment} and their deploys): nothing to watch. Record "
            "each deploy (sentry-cli releases deploys new / POST O/releases/{version}/deploys/) in the deploy job")
    age = now - deploy.finished
    if age < 0:
        raise TargetUnavailable(f"the latest deploy ({deploy.describe()}) is in the future of this run's clock")
    if age > settings.watch_for:
        raise TargetUnavailable(
            f"the latest deploy ({deploy.describe()}) is {age / 3600:.1f} h old, past post_deploy.watch_for "
            f"({settings.watch_for / 3600:g} h): no recent deploy to watch")
    project_id = configured_project_id(client)
    report = PostDeployReport(deploy, now, [watch_alert(client, a, alerts.get(a.name), deploy, now, project_id)
                                            for a in spec.alerts])
    for watched in report.alerts:
        own = len(watched.firings) - len(watched.fired)
        if own:
            report.notes.append(f"{watched.name}: {own} firing(s) since the deploy tripped by paymon's own "
                                "test-tagged events (a drill), not judged")
    return report


def findings(report: PostDeployReport, spec: Spec) -> tuple[list[Finding], list[Finding]]:
    """(failures, warnings): a payment error count up past `post_deploy.error_increase`, and an
    alert of a `fail_on_fired` severity that fired, fail; an alert of another severity that fired warns."""
    rule = spec.post_deploy.error_increase
    hours = f"{report.hours:.1f} h"
    since = f"since the deploy {report.deploy.describe()}"
    failures, warnings = [], []
    for watched in report.alerts:
        if watched.after >= rule.min_after and watched.after > rule.ratio * watched.before:
            failures.append(Finding(
                watched.name, f"matching events in the {hours} {since}",
                f"at most {rule.ratio:g}x the {hours} before ({watched.before})", f"{watched.after}", "field",
                f"query {watched.query}; before {watched.before}, after {watched.after}",
                "payment errors rose after the deploy: compare the release's new issues, consider a rollback"))
        if watched.fired:
            first = watched.fired[0]
            finding = Finding(watched.name, f"fired {since}", "not fired",
                              f"fired {len(watched.fired)}x, first {iso(first.at)} ({first.source})", "field",
                              f"severity {watched.severity}", "see the alert's runbook section")
            (failures if watched.severity in spec.post_deploy.fail_on_fired else warnings).append(finding)
    return failures, warnings
