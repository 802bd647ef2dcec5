"""The "Payment Monitoring" dashboard: compare Sentry's stored widgets with monitoring.yaml.

Sentry has no pie chart and no gauge, so monitoring.yaml lists every display type it accepts for a
widget. Span-based widgets (`spans` dataset, `p95(span.duration)`, `is_transaction:true`) are the
same widget as their transaction-based form.
"""

from __future__ import annotations

from paymon.findings.model import Finding
from paymon.rules.query import parse
from paymon.config.spec import DashboardSpec, WidgetSpec

# Old stored dashboards still carry retired display types; they read as their current equivalent.
_RETIRED_DISPLAY_TYPES = {"top_n": "table", "stacked_area": "area", "world_map": "table"}
_SPAN_AGGREGATE_EQUIVALENTS = {
    "count(span.duration)": "count()",
    "p50(span.duration)": "p50(transaction.duration)",
    "p75(span.duration)": "p75(transaction.duration)",
    "p95(span.duration)": "p95(transaction.duration)",
    "p99(span.duration)": "p99(transaction.duration)",
}


def _aggregate(expr: str) -> str:
    compact = expr.replace(" ", "")
    return _SPAN_AGGREGATE_EQUIVALENTS.get(compact, compact)


def _query(text: str):
    """Parse a widget query; `is_transaction:true` is implied by span-based transaction widgets."""
    from paymon.rules.query import drop_terms

    return drop_terms(parse(text), {"is_transaction"})


def widget_query(widget: dict) -> dict:
    queries = widget.get("queries") or [{}]
    return queries[0]


def find_widget(dashboard: dict, title: str) -> dict | None:
    wanted = title.strip().casefold()
    for widget in dashboard.get("widgets") or []:
        if (widget.get("title") or "").strip().casefold() == wanted:
            return widget
    return None


def compare_dashboard(spec: DashboardSpec, dashboard: dict | None) -> list[Finding]:
    """The dashboard as a whole: it exists, its environment, and that every widget is there."""
    source = f"dashboard {dashboard.get('id')}" if dashboard else "dashboards"
    if dashboard is None:
        return [Finding(spec.title, "dashboard", "present", "missing", "field", source,
                        "create it under Dashboards -> Create Dashboard")]
    findings = []
    if spec.environment and spec.environment not in (dashboard.get("environment") or []):
        findings.append(Finding(spec.title, "environment", spec.environment,
                                ", ".join(dashboard.get("environment") or []) or "all environments",
                                "field", source))
    present = [w.get("title") for w in dashboard.get("widgets") or []]
    for widget in spec.widgets:
        if find_widget(dashboard, widget.title) is None:
            findings.append(Finding(spec.title, f"widget {widget.title!r}", "present",
                                    f"missing (widgets: {', '.join(map(repr, present)) or 'none'})",
                                    "field", source))
    return findings


def compare_widget(spec: WidgetSpec, dashboard_title: str, widget: dict | None) -> list[Finding]:
    name = f"{dashboard_title} / {spec.title}"
    if widget is None:
        return [Finding(name, "widget", "present", "missing", "field", "dashboard")]
    source = f"widget {widget.get('id')}"
    findings = []
    display = widget.get("displayType")
    display = _RETIRED_DISPLAY_TYPES.get(display, display)
    if display not in spec.display:
        findings.append(Finding(name, "display type", " or ".join(spec.display), str(display), "field",
                                source, "Sentry has no pie or gauge; accepted: " + ", ".join(spec.display)))
    query = widget_query(widget)
    expected_query, actual_query = _query(spec.query), _query(query.get("conditions") or "")
    if expected_query != actual_query:
        findings.append(Finding(name, "query", repr(spec.query), repr(query.get("conditions") or ""),
                                "field", source))
    expected_aggs = {_aggregate(a) for a in spec.aggregates}
    actual_aggs = {_aggregate(a) for a in query.get("aggregates") or []
                   if not a.startswith("equation|")}
    missing = sorted(expected_aggs - actual_aggs)
    if missing:
        findings.append(Finding(name, "aggregates", ", ".join(sorted(expected_aggs)),
                                ", ".join(sorted(actual_aggs)) or "none", "field", source))
    if sorted(spec.group_by) != sorted(query.get("columns") or []):
        findings.append(Finding(name, "group by", ", ".join(spec.group_by) or "nothing",
                                ", ".join(query.get("columns") or []) or "nothing", "field", source))
    return findings
