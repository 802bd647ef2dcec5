"""monitoring.yaml's dashboard and cron monitor → request bodies (`O/dashboards/`, `O/monitors/`).

A widget's dataset (`widgetType`) is not in monitoring.yaml; it follows from the query and the
aggregates: trace metrics (`max(value,<metric>,gauge,-)`) → `tracemetrics`, transaction queries or
duration/failure-rate aggregates → `transaction-like`, everything else → `error-events`.
"""

from __future__ import annotations

from paymon.config.spec import CronSpec, DashboardSpec, WidgetSpec

_TRANSACTION_HINTS = ("event.type:transaction", "transaction:", "transaction.")
_TRANSACTION_AGGREGATES = ("transaction.duration", "failure_rate(", "apdex(", "epm(", "tpm(")


def widget_type(widget: WidgetSpec) -> str:
    aggregates = " ".join(widget.aggregates)
    if aggregates.startswith("max(value,") or ",gauge," in aggregates or ",counter," in aggregates:
        return "tracemetrics"
    if any(h in widget.query for h in _TRANSACTION_HINTS) or any(a in aggregates for a in _TRANSACTION_AGGREGATES):
        return "transaction-like"
    return "error-events"


def _span(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def widget(spec: WidgetSpec, index: int, widget_id: str | None = None) -> dict:
    aggregates = [*spec.aggregates, *([f"equation|{spec.equation}"] if spec.equation else [])]
    body = {
        "title": spec.title, "displayType": spec.display[0], "widgetType": widget_type(spec),
        "interval": _span(spec.interval) if spec.interval else "5m", "limit": 5 if spec.group_by else None,
        "layout": {"x": (index % 2) * 3, "y": (index // 2) * 2, "w": 3, "h": 2, "minH": 2},
        "queries": [{
            "name": "", "conditions": spec.query, "aggregates": aggregates,
            "columns": list(spec.group_by), "fields": [*spec.group_by, *aggregates],
            "orderby": f"-{spec.aggregates[0]}" if spec.group_by and spec.aggregates else "",
        }],
    }
    if spec.thresholds is not None:
        # Sentry draws no threshold markers on a line chart: the description states them.
        t = spec.thresholds
        body["description"] = f"Warning {t.warning:g} {t.unit}, critical {t.critical:g} {t.unit}"
    if widget_id is not None:
        body["id"] = widget_id
    return body


def dashboard(spec: DashboardSpec, widgets: list[dict], project_id: str | None) -> dict:
    return {
        "title": spec.title, "widgets": widgets,
        "environment": [spec.environment] if spec.environment else [],
        "projects": [int(project_id)] if project_id and str(project_id).isdigit() else [],
        # the longest span a widget asks for (§4 widget 1: "7-day trend"), at least 7 days
        "period": _span(max([7 * 86400] + [w.period for w in spec.widgets if w.period])),
    }


def monitor(spec: CronSpec, project_slug: str) -> dict:
    return {
        "name": spec.name, "slug": spec.slug, "project": project_slug, "status": "active", "isMuted": False,
        "config": {"schedule_type": "crontab", "schedule": spec.schedule, "timezone": spec.timezone,
                   "checkin_margin": 5, "max_runtime": 30},
    }
