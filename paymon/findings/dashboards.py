"""The "Payment Monitoring" dashboard: compare Sentry's stored widgets with monitoring.yaml.

Sentry has no pie chart and no gauge, so monitoring.yaml lists every display type it accepts for a
widget. Span-based widgets (`spans` dataset, `p95(span.duration)`, `is_transaction:true`) are the
same widget as their transaction-based form.
"""

from __future__ import annotations

import re

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


def compare_widget(spec: WidgetSpec, dashboard_title: str, widget: dict | None,
                   dashboard: dict | None = None) -> list[Finding]:
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
    return findings + _detail_findings(spec, name, widget, query, dashboard, source)


# §4's widget details (issue 15 item 4): "Daily", "7-day trend", "threshold markers", a formula.

def _detail_findings(spec: WidgetSpec, name: str, widget: dict, query: dict, dashboard: dict | None,
                     source: str) -> list[Finding]:
    findings = []
    if spec.interval is not None:
        interval = _seconds_or_none(widget.get("interval"))
        if interval != spec.interval:
            findings.append(Finding(name, "interval", _span(spec.interval), widget.get("interval") or "none",
                                    "field", source))
    if spec.period is not None:
        # A widget has no span of its own: the dashboard's `period` (or start/end) sets it for all.
        board = dashboard or {}
        period = _seconds_or_none(board.get("period"))
        if period is None and board.get("start") and board.get("end"):
            period = _span_of(board["start"], board["end"])
        if period is None or period < spec.period:
            shown = board.get("period") or (f"{board['start']} to {board['end']}" if board.get("start") else "none set")
            findings.append(Finding(name, "trend (dashboard period)", f"at least {_span(spec.period)}", shown,
                                    "field", f"dashboard {board.get('id')}",
                                    "Sentry sets the span on the dashboard, for every widget"))
    if spec.thresholds is not None:
        findings += _threshold_findings(spec, name, widget, source)
    if spec.equation is not None:
        wanted = _compact(spec.equation)
        equations = [a.split("|", 1)[1] for a in query.get("aggregates") or [] if a.startswith("equation|")]
        if wanted not in {_compact(e) for e in equations}:
            findings.append(Finding(name, "equation", spec.equation, ", ".join(equations) or "none", "field", source))
    return findings


def _threshold_findings(spec: WidgetSpec, name: str, widget: dict, source: str) -> list[Finding]:
    """Markers where Sentry draws them (`thresholds.max_values`: big-number widgets); a line chart
    has none (Sentry draws no threshold lines on line charts), so there the widget's description
    must state both values, as the golden dashboard does."""
    t = spec.thresholds
    expected = f"warning {_number(t.warning)} {t.unit}, critical {_number(t.critical)} {t.unit}"
    stored = ((widget.get("thresholds") or {}).get("max_values") or {})
    if stored:
        actual = (stored.get("max1"), stored.get("max2"))
        if actual != (t.warning, t.critical):
            return [Finding(name, "threshold markers", expected,
                            f"max1 {actual[0]}, max2 {actual[1]} (widget thresholds)", "field", source)]
        return []
    description = widget.get("description") or ""
    numbers = {float(n) for n in re.findall(r"(\d+(?:\.\d+)?)\s*" + re.escape(t.unit) + r"\b", description)}
    if {t.warning, t.critical} <= numbers:
        return []
    return [Finding(name, "threshold markers", f"{expected} (widget thresholds, or its description: line charts "
                    "draw none)", repr(description) if description else "none", "field", source)]


def _compact(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _number(value: float) -> str:
    return f"{value:g}"


_SPAN = re.compile(r"^(\d+)([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def _seconds_or_none(text) -> int | None:
    match = _SPAN.match(str(text or "").strip())
    return int(match.group(1)) * _UNIT[match.group(2)] if match else None


def _span(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _span_of(start: str, end: str) -> int | None:
    from datetime import datetime

    try:
        return int((datetime.fromisoformat(end.replace("Z", "+00:00"))
                    - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds())
    except ValueError:
        return None
