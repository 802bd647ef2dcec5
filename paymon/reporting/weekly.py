"""The weekly review page (guide §7 "Weekly review of payment failure trends"): one static HTML
file from the stored run summaries (reports/runs.jsonl, one verdict.json per line). The run strip
and criteria bars are inline SVG; the trend plots are PNGs drawn with matplotlib (charts.py) and
embedded as data: URIs, so the page is one file that needs no JavaScript and no network.

It answers the review's questions: did the gate hold all week, which criteria broke how often and
for what reasons, how long deliveries took against their deadlines, how each endpoint's p95 moved
against its budgets, which kinds of failure dominated, and which alerts fired for real (not
paymon's test events).
"""

from __future__ import annotations

import base64
import html
import json
import statistics
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

from paymon.reporting import charts
from paymon.reporting.measurements import DELIVERY, P95
from paymon.reviews.real_alerts import REAL_ALERT
from paymon.findings.runbook import RUNBOOK_UNLEARNT

WEEK_SECONDS = 7 * 24 * 3600
_COLOURS = {"pass": "#2e7d32", "warning": "#f9a825", "could not check": "#ef6c00", "fail": "#c62828",
            "not covered": "#b0bec5"}
_EXIT_STATUS = {0: "pass", 1: "fail", 3: "could not check"}


def load_runs(runs_file: Path) -> list[dict]:
    if not runs_file.is_file():
        return []
    runs = [json.loads(line) for line in runs_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    return sorted(runs, key=lambda r: r.get("started", 0))


def last_week(runs: list[dict], now: float | None = None) -> list[dict]:
    end = now if now is not None else max((r.get("started", 0) for r in runs), default=0)
    return [r for r in runs if end - WEEK_SECONDS < r.get("started", 0) <= end]


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%a %d %b %H:%M UTC")


def _strip(runs: list[dict]) -> str:
    """One bar per run, coloured by the run's outcome, oldest left."""
    width, gap, height = 14, 3, 40
    bars = []
    for n, run in enumerate(runs):
        status = _EXIT_STATUS.get(run.get("exit_code"), "fail")
        failing = sum(1 for c in run.get("criteria", []) if c["status"] in ("fail", "could not check"))
        title = html.escape(f"{_when(run.get('started', 0))}: {status}, {failing} criteria failing or unchecked")
        bars.append(f'<rect x="{n * (width + gap)}" y="0" width="{width}" height="{height}" '
                    f'fill="{_COLOURS[status]}"><title>{title}</title></rect>')
    total = max(len(runs) * (width + gap), width)
    return f'<svg role="img" aria-label="runs" width="{total}" height="{height}">{"".join(bars)}</svg>'


def _criterion_rows(runs: list[dict]) -> list[str]:
    seen: dict[str, Counter] = {}
    reasons: dict[str, Counter] = {}
    for run in runs:
        for c in run.get("criteria", []):
            seen.setdefault(c["criterion"], Counter())[c["status"]] += 1
            if c["status"] != "pass" and c.get("reason"):
                reasons.setdefault(c["criterion"], Counter())[c["reason"]] += 1
    rows = []
    for criterion, counts in seen.items():
        total = sum(counts.values())
        segments, x = [], 0.0
        for status in ("pass", "warning", "could not check", "fail", "not covered"):
            share = 200 * counts[status] / total
            if share:
                segments.append(f'<rect x="{x:.1f}" y="0" width="{share:.1f}" height="12" fill="{_COLOURS[status]}">'
                                f'<title>{counts[status]} {status}</title></rect>')
                x += share
        top = reasons.get(criterion, Counter()).most_common(1)
        reason = html.escape(f"{top[0][0]} ({top[0][1]}x)") if top else ""
        rows.append(f"<tr><td>{html.escape(criterion)}</td><td><svg width='200' height='12'>{''.join(segments)}</svg></td>"
                    f"<td>{counts['pass']}/{total}</td><td>{reason}</td></tr>")
    return rows


def _measured(runs: list[dict], kind: str) -> list[dict]:
    """Every measurement of one kind, each with its run's start time."""
    return [{**m, "started": run.get("started", 0)} for run in runs for m in run.get("measurements", [])
            if m.get("kind") == kind]


def _image(figure, alt: str) -> str:
    data = base64.b64encode(charts.png_bytes(figure)).decode("ascii")
    return f'<img class="plot" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _seconds(value: float | None) -> str:
    return "not delivered" if value is None else f"{value:.1f} s"


def _delivery_section(runs: list[dict]) -> str:
    measured = _measured(runs, DELIVERY)
    if not measured:
        return "<p class='empty'>No delivery measured in these runs.</p>"
    series: dict[str, list[tuple[float, float | None]]] = defaultdict(list)
    deadlines: dict[str, float] = {}
    for m in measured:
        series[m["route"]].append((m["started"], m.get("seconds")))
        deadlines[m["route"]] = m["deadline_s"]
    rows = []
    for route, points in sorted(series.items()):
        seen = [s for _, s in points if s is not None]
        late = sum(1 for _, s in points if s is None or s > deadlines[route])
        rows.append([route, len(points), _seconds(statistics.median(seen)) if seen else "–",
                     _seconds(max(seen)) if seen else "–", f"{deadlines[route]:g} s", late])
    return (_image(charts.delivery_trend(dict(series), deadlines), "delivery times against their deadlines")
            + _table(["Route", "Runs", "Median", "Slowest", "Deadline", "Late or missing"], rows))


def _p95_section(runs: list[dict]) -> str:
    measured = _measured(runs, P95)
    if not measured:
        return "<p class='empty'>No p95 measured in these runs.</p>"
    series: dict[str, list[dict]] = defaultdict(list)
    for m in measured:
        series[m["endpoint"]].append(m)
    rows = []
    for endpoint, points in sorted(series.items()):
        p95s = [p["p95_ms"] for p in points if p.get("p95_ms") is not None]
        verdicts = Counter(p.get("verdict") or "none" for p in points)
        latest = points[-1]
        rows.append([endpoint, len(points), f"{latest['p95_ms']:.1f} ms" if latest.get("p95_ms") is not None else "–",
                     f"{max(p95s):.1f} ms" if p95s else "–", f"{latest.get('warning_ms') or 0:g} ms",
                     f"{latest.get('critical_ms') or 0:g} ms",
                     ", ".join(f"{n} {v}" for v, n in verdicts.most_common())])
    return (_image(charts.p95_trend(dict(series)), "p95 per endpoint against its budgets")
            + _table(["Endpoint", "Runs", "Latest p95", "Worst p95", "Warning >", "Critical >", "Verdicts"], rows))


def _day(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%a %d %b")


def _per_day(items: list[tuple[float, str, int]]) -> tuple[list[str], dict[str, list[int]]]:
    """(day labels, kind -> count per day) from (time, kind, count) items, days in order."""
    days = list(dict.fromkeys(_day(t) for t, _, _ in sorted(items)))
    counts: dict[str, list[int]] = {}
    for when, kind, count in items:
        counts.setdefault(kind, [0] * len(days))[days.index(_day(when))] += count
    return days, counts


_CATEGORY_COLOURS = {"Could not check": "#ef6c00", "Delivery failure": "#6a1b9a", "Security": "#ad1457",
                     "Latency budget": "#1565c0", "Config drift": "#c62828", "Other": "#757575"}


def _category_section(runs: list[dict]) -> str:
    items = [(run.get("started", 0), category, count) for run in runs
             for category, count in (run.get("failures_by_category") or {}).items() if count]
    if not items:
        return "<p class='empty'>No failed or unchecked check in these runs.</p>"
    days, counts = _per_day(items)
    totals = Counter()
    for _, category, count in items:
        totals[category] += count
    return (_image(charts.category_bars(days, counts, _CATEGORY_COLOURS, "failing checks", "Failures by category"),
                   "failures by category per day")
            + _table(["Category", "Failing checks this week"], [[c, n] for c, n in totals.most_common()]))


def _real_alerts_section(runs: list[dict]) -> str:
    # Each run reports what it saw; runs overlap, so one firing is counted once (by its id).
    unique = {(m.get("source"), m.get("id") or m.get("at")): m for m in _measured(runs, REAL_ALERT)}
    alerts = sorted(unique.values(), key=lambda m: m.get("at") or m["started"])
    if not alerts:
        return ("<p class='empty'>No alert fired for real in these runs' view (paymon's own test events and "
                "drills are not counted).</p>")
    days, counts = _per_day([(m.get("at") or m["started"], m.get("alert", "?"), 1) for m in alerts])
    rows = Counter((m.get("alert", "?"), m.get("source", "")) for m in alerts)
    return (_image(charts.category_bars(days, counts, {}, "firings", "Alerts that fired for real"),
                   "alerts that fired for real per day")
            + _table(["Alert", "Seen in", "Firings"], [[a, s, n] for (a, s), n in rows.most_common()]))


def _runbook_section(runs: list[dict]) -> str:
    """§7 "Update runbook as new issues discovered": the alerts that fired since their runbook
    section last changed, as the latest review of the week saw them."""
    latest: dict[str, dict] = {}
    for m in sorted(_measured(runs, RUNBOOK_UNLEARNT), key=lambda m: m["started"]):
        latest[m.get("alert", "?")] = m
    if not latest:
        return ("<p class='empty'>No alert fired since its runbook section last changed (or no scheduled "
                "review ran this week: <code>pytest --reviews</code>).</p>")
    rows = [[m.get("alert", "?"), m.get("anchor", ""), _day(m["section_changed_at"]) if m.get("section_changed_at")
             else "never", m.get("firings", 0), _day(m["last_fired_at"]) if m.get("last_fired_at") else "–"]
            for m in sorted(latest.values(), key=lambda m: -(m.get("firings") or 0))]
    return _table(["Alert", "Runbook section", "Section last changed", "Firings since", "Last fired"], rows)


def render_weekly(runs: list[dict], now: float | None = None) -> str:
    week = last_week(runs, now)
    outcomes = Counter(_EXIT_STATUS.get(r.get("exit_code"), "fail") for r in week)
    period = f"{_when(week[0]['started'])} – {_when(week[-1]['started'])}" if week else "no runs stored"
    summary = ", ".join(f"{n} {s}" for s, n in outcomes.most_common()) or "none"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>paymon weekly review</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:70em}}td,th{{padding:.3em .8em;text-align:left}}
tr:nth-child(even){{background:#f5f5f5}}img.plot{{display:block;max-width:100%;margin:.5em 0}}
.empty{{color:#616161;font-style:italic}}</style></head><body>
<h1>Payment monitoring: weekly review</h1>
<p>{html.escape(period)} · {len(week)} runs: {html.escape(summary)}</p>
{_strip(week)}
<h2>Criteria</h2>
<table><tr><th>Criterion</th><th>Outcomes</th><th>Passed</th><th>Most frequent reason</th></tr>
{"".join(_criterion_rows(week))}
</table>
<p><small>Green pass · yellow warning · orange could not check · red fail. From reports/runs.jsonl.</small></p>
<h2>Delivery times against their deadlines</h2>
{_delivery_section(week)}
<h2>p95 per endpoint against budgets</h2>
{_p95_section(week)}
<h2>Failures by category</h2>
{_category_section(week)}
<h2>Alerts that fired for real</h2>
{_real_alerts_section(week)}
<h2>Alerts that fired since their runbook section last changed</h2>
{_runbook_section(week)}
</body></html>
"""


def write_weekly(runs_file: Path, output: Path, now: float | None = None) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_weekly(load_runs(runs_file), now), encoding="utf-8")
    return output
