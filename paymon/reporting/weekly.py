"""The weekly review page (guide §7 "Weekly review of payment failure trends"): one static HTML
file from the stored run summaries (reports/runs.jsonl, one verdict.json per line), with inline
SVG so it needs no JavaScript, no plotting library and no network.

It answers the review's questions: did the gate hold all week, which criteria broke how often,
and for what reasons.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

WEEK_SECONDS = 7 * 24 * 3600
_COLOURS = {"pass": "#2e7d32", "warning": "#f9a825", "could not check": "#ef6c00", "fail": "#c62828"}
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
        for status in ("pass", "warning", "could not check", "fail"):
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


def render_weekly(runs: list[dict], now: float | None = None) -> str:
    week = last_week(runs, now)
    outcomes = Counter(_EXIT_STATUS.get(r.get("exit_code"), "fail") for r in week)
    period = f"{_when(week[0]['started'])} – {_when(week[-1]['started'])}" if week else "no runs stored"
    summary = ", ".join(f"{n} {s}" for s, n in outcomes.most_common()) or "none"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>paymon weekly review</title>
<style>body{{font:14px system-ui,sans-serif;margin:2em;max-width:70em}}td,th{{padding:.3em .8em;text-align:left}}
tr:nth-child(even){{background:#f5f5f5}}</style></head><body>
<h1>Payment monitoring: weekly review</h1>
<p>{html.escape(period)} · {len(week)} runs: {html.escape(summary)}</p>
{_strip(week)}
<h2>Criteria</h2>
<table><tr><th>Criterion</th><th>Outcomes</th><th>Passed</th><th>Most frequent reason</th></tr>
{"".join(_criterion_rows(week))}
</table>
<p><small>Green pass · yellow warning · orange could not check · red fail. From reports/runs.jsonl.</small></p>
</body></html>
"""


def write_weekly(runs_file: Path, output: Path, now: float | None = None) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(render_weekly(load_runs(runs_file), now), encoding="utf-8")
    return output
