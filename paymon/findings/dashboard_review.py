"""§7 Post-Deployment "Review payment dashboard metrics daily for first week": each widget of the
"Payment Monitoring" dashboard, its own query run per UTC day since the latest deploy (read-only).

    deploy_to_review(client, spec, now) (the latest deploy, why not to review it now or None)
    review(client, spec, deploy, now)   a DashboardReview (per widget: per day, count and aggregates)
    findings(review, spec)              (failures, warnings) as Findings

A widget's query is the one Sentry stores (its `widgetType` as the dataset, its conditions,
aggregates and group-by), read with `find_dashboard`; a widget missing there is run as
monitoring.yaml declares it (the configuration check reports the missing widget). Each query is
`GET O/events-timeseries/` (verified-2026-12.md §1) with `interval` one day, the deploy to now,
the configured project and the dashboard's environment; one request per aggregate (the sandbox
takes one `yAxis`) and one `count()` under the same query, which says whether the day had data at
all (a rate or a percentile of nothing reads 0, like a real 0). Grouped widgets are read per group
(`groupBy`, `topEvents` 10). Days are Sentry's buckets (UTC midnights); the first and the last are
partial (the deploy's day, today).

Findings (monitoring.yaml `post_deploy.dashboard_review`): a widget whose query finds nothing on a
complete day since the deploy fails naming the day (a blind widget cannot be reviewed), unless it
`may_be_empty`; a widget with `thresholds` judged on the aggregate `thresholds_on` names warns /
fails on each day whose value crosses warning / critical. Widget 4 reads trace metrics (the app's
`subscriptions.active` gauge), which events-timeseries serves as `dataset=tracemetrics` (getsentry/
sentry `tests/snuba/api/endpoints/test_organization_events_timeseries_trace_metrics.py`;
`src/sentry/search/eap/trace_metrics/aggregates.py` for `max(value,<name>,<type>,<unit>)`), its
presence counted with `count(value,<name>,<type>,<unit>)`. A server that refuses such a query (a
self-hosted Sentry without trace metrics) leaves that widget "could not check", a warning naming the
reason; a refused query on the events datasets is "could not check" for the whole review.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone

from paymon.clients.sentry.api import configured_project_id, discover_time, find_dashboard
from paymon.config.spec import Spec, WidgetSpec
from paymon.errors import TargetUnavailable
from paymon.findings.dashboards import find_widget, widget_query
from paymon.findings.model import Finding
from paymon.findings.post_deploy import Deploy, latest_deploy

DAY = 86400
TOP_EVENTS = 10
"""The endpoint's most groups per request (verified §1, `MAX_TOP_EVENTS`)."""

# The stored widget's `widgetType` -> the events dataset that serves it (Sentry's dashboards read
# error-events from `errors`, transaction-like from `transactions`).
DATASETS = {"error-events": "errors", "transaction-like": "transactions", "discover": "discover",
            "spans": "spans", "tracemetrics": "tracemetrics", "logs": "logs"}
OPTIONAL_DATASETS = {"tracemetrics", "logs"}
"""Datasets newer than the events paymon's other checks read: a server that refuses one leaves that
widget unchecked (a warning), not the whole review."""


def day_label(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d")


@dataclass
class Day:
    start: float
    complete: bool
    """The whole UTC day lies between the deploy and the run."""
    count: int = 0
    values: dict[str, float] = field(default_factory=dict)
    """aggregate (or "aggregate [group]") -> the day's value."""

    @property
    def label(self) -> str:
        return day_label(self.start)


@dataclass
class WidgetReview:
    title: str
    dataset: str
    query: str
    aggregates: list[str]
    group_by: list[str]
    source: str
    """"dashboard <id>" or "monitoring.yaml (not on the dashboard)"."""
    days: list[Day] = field(default_factory=list)
    unchecked: str = ""
    """Why this widget could not be checked ("" when it was)."""

    def series(self) -> list[str]:
        names: list[str] = []
        for day in self.days:
            for key in day.values:
                if key not in names:
                    names.append(key)
        return names


@dataclass
class DashboardReview:
    deploy: object
    now: float
    widgets: list[WidgetReview]
    notes: list[str] = field(default_factory=list)

    ROW_HEADER = ("widget", "day (UTC)", "complete day", "events", "series", "value")

    def rows(self) -> list[tuple]:
        out = []
        for widget in self.widgets:
            if widget.unchecked:
                out.append((widget.title, "", "", "", "could not check", widget.unchecked))
                continue
            for day in widget.days:
                if not day.values:
                    out.append((widget.title, day.label, day.complete, day.count, "", ""))
                for name, value in day.values.items():
                    out.append((widget.title, day.label, day.complete, day.count, name, value))
        return out


def _dataset(stored: dict | None, spec: WidgetSpec) -> str:
    if stored is not None and stored.get("widgetType") in DATASETS:
        return DATASETS[stored["widgetType"]]
    if any(a.count(",") == 3 for a in spec.aggregates):  # max(value,<metric>,<type>,<unit>)
        return "tracemetrics"
    return "errors" if "event.type:error" in spec.query else "transactions"


def _widget(spec: WidgetSpec, dashboard: dict | None) -> WidgetReview:
    stored = find_widget(dashboard, spec.title) if dashboard else None
    if stored is None:
        return WidgetReview(spec.title, _dataset(None, spec), spec.query, list(spec.aggregates),
                            list(spec.group_by), "monitoring.yaml (not on the dashboard)")
    query = widget_query(stored)
    aggregates = [a for a in query.get("aggregates") or [] if not a.startswith("equation|")]
    return WidgetReview(spec.title, _dataset(stored, spec), query.get("conditions") or "", aggregates,
                        list(query.get("columns") or []), f"dashboard {dashboard.get('id')}")


def _series(client, widget: WidgetReview, y_axis: str, grouped: bool, project: str, environment: str | None,
            start: float, end: float) -> list[tuple[str, dict[int, float]]]:
    params = {"dataset": widget.dataset, "yAxis": y_axis, "interval": DAY, "query": widget.query,
              "project": project, "start": discover_time(start), "end": discover_time(end)}
    if environment:
        params["environment"] = environment
    if grouped and widget.group_by:
        params.update({"groupBy": widget.group_by, "topEvents": TOP_EVENTS, "excludeOther": 0,
                       "sort": f"-{y_axis}"})
    body = client.get(client.org_path("events-timeseries"), params=params) or {}
    out = []
    for series in body.get("timeSeries") or []:
        groups = [str(g.get("value")) for g in series.get("groupBy") or []]
        name = y_axis if not groups else f"{y_axis} [{', '.join(groups)}]"
        if (series.get("meta") or {}).get("isOther"):
            name = f"{y_axis} [other]"
        values = {int(p["timestamp"] // 1000): float(p.get("value") or 0) for p in series.get("values") or []}
        out.append((name, values))
    return out


def _count_axis(widget: WidgetReview) -> str:
    """count() under the widget's query; for trace metrics, of the widget's metric: the dataset holds
    every metric the app sends, and an aggregate names its metric in its arguments."""
    if widget.dataset == "tracemetrics" and widget.aggregates:
        inner = widget.aggregates[0][widget.aggregates[0].index("(") + 1:-1]
        if inner.count(",") == 3:
            return f"count({inner})"
    return "count()"


def review_widget(client, widget: WidgetReview, project: str, environment: str | None, start: float,
                  end: float) -> WidgetReview:
    first = int(start // DAY) * DAY
    widget.days = [Day(d, d >= start and d + DAY <= end) for d in range(first, int(end), DAY)]
    by_start = {d.start: d for d in widget.days}
    try:
        for _, counts in _series(client, widget, _count_axis(widget), False, project, environment, start, end):
            for at, value in counts.items():
                if at in by_start:
                    by_start[at].count += int(value)
        for aggregate in widget.aggregates:
            for name, values in _series(client, widget, aggregate, True, project, environment, start, end):
                for at, value in values.items():
                    if at in by_start:
                        by_start[at].values[name] = value
    except TargetUnavailable as exc:
        if widget.dataset not in OPTIONAL_DATASETS:
            raise
        widget.days = []
        widget.unchecked = f"Sentry refused its {widget.dataset} query (a dataset or aggregate it does not serve): {exc}"
    return widget


def deploy_to_review(client, spec: Spec, now: float) -> tuple[Deploy, str | None]:
    """The latest deploy to the spec's environment, and why the review does not run now (its first
    days are over), or None. Raises TargetUnavailable when Sentry records no deploy: no deploy is no
    first week, and saying "skipped" would hide a deploy job that stopped recording."""
    deploy = latest_deploy(client, spec.environment, spec.post_deploy.releases_read)
    if deploy is None:
        raise TargetUnavailable(f"no deploy to {spec.environment} recorded in Sentry for project "
                                f"{client.settings.project}: no first week to review. Record each deploy "
                                "(sentry-cli releases deploys new) in the deploy job")
    age = now - deploy.finished
    if age < 0:
        raise TargetUnavailable(f"the latest deploy ({deploy.describe()}) is in the future of this run's clock")
    first_days = spec.post_deploy.dashboard_review.first_days
    if age >= first_days:
        return deploy, (f"the latest deploy ({deploy.describe()}) is {age / DAY:.1f} days old: past the first "
                        f"{first_days / DAY:g} days the guide asks a daily dashboard review for")
    return deploy, None


def review(client, spec: Spec, deploy: Deploy, now: float) -> DashboardReview:
    """Every widget of monitoring.yaml's dashboard, per day from the deploy to `now`."""
    dashboard = find_dashboard(client, spec.dashboard.title)
    project = configured_project_id(client)
    environment = spec.dashboard.environment
    result = DashboardReview(deploy, now, [])
    if dashboard is None:
        result.notes.append(f"dashboard {spec.dashboard.title!r} not found: its widgets run as monitoring.yaml "
                            "declares them")
    for widget_spec in spec.dashboard.widgets:
        widget = review_widget(client, _widget(widget_spec, dashboard), project, environment,
                               deploy.finished, now)
        result.widgets.append(widget)
        if widget.source.startswith("monitoring.yaml") and dashboard is not None:
            result.notes.append(f"{widget.title}: not on the dashboard, run as monitoring.yaml declares it")
    return result


def findings(result: DashboardReview, spec: Spec) -> tuple[list[Finding], list[Finding]]:
    """(failures, warnings): an empty complete day fails (unless the widget `may_be_empty`); a
    day's value past a widget's thresholds warns (warning) or fails (critical); a widget paymon could
    not query warns, naming why."""
    settings = spec.post_deploy.dashboard_review
    widgets = {w.title: w for w in spec.dashboard.widgets}
    since = f"since the deploy {result.deploy.describe()}"
    failures, warnings = [], []
    for widget in result.widgets:
        if widget.unchecked:
            warnings.append(Finding(widget.title, "daily review", "checked", f"could not check: {widget.unchecked}",
                                    "field", f"dataset {widget.dataset}"))
            continue
        source = f"{widget.source}; dataset {widget.dataset}, query {widget.query!r}"
        if widget.title not in settings.may_be_empty:
            for day in widget.days:
                if day.complete and day.count == 0:
                    failures.append(Finding(
                        widget.title, f"events on {day.label} (UTC, a whole day {since})", "> 0", "0 (no data)",
                        "field", source, "a widget that shows nothing cannot be reviewed: is tracing on, the "
                                         "transaction tagged, the job running?"))
        thresholds = widgets[widget.title].thresholds if widget.title in widgets else None
        judged = settings.thresholds_on.get(widget.title)
        if thresholds is None or judged is None:
            continue
        for day in widget.days:
            value = day.values.get(judged)
            if value is None or day.count == 0:
                continue
            level = ("critical" if value > thresholds.critical else
                     "warning" if value > thresholds.warning else None)
            if level is None:
                continue
            limit = thresholds.critical if level == "critical" else thresholds.warning
            finding = Finding(widget.title, f"{judged} on {day.label} (UTC{'' if day.complete else ', part of the day'})",
                              f"at most {limit:g} {thresholds.unit} ({level} marker)",
                              f"{value:.0f} {thresholds.unit}", "field", source)
            (failures if level == "critical" else warnings).append(finding)
    return failures, warnings
