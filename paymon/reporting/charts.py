"""PNG charts for people: the latency histogram of a p95 check, the delivery timeline of a delivery
check (both Allure attachments) and the weekly page's trend plots.

matplotlib's object API (Figure + the Agg canvas), never pyplot: no global figure state, no GUI
backend, safe in a worker thread and on a CI box without a display. matplotlib is imported only
when a chart is drawn, so runs without p95 or delivery checks do not pay for it.

Every text drawn goes through `scrub` first: a PNG cannot be redacted after the fact (the last
pass over the results directory only reads text files).
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from paymon.reporting.secrets import scrub

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from paymon.probes.latency import LatencyReport
    from paymon.reporting.timeline import Timeline

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

# One meaning per colour across every chart and the weekly page's tables.
COLOURS = {
    "samples": "#90a4ae",
    "p95": "#1565c0",
    "warning": "#f9a825",
    "critical": "#c62828",
    "on time": "#2e7d32",
    "late": "#c62828",
    "missing": "#c62828",  # a step never seen fails the check, as a late one does
}
SERIES = ("#1565c0", "#6a1b9a", "#00838f", "#ef6c00", "#2e7d32", "#ad1457")


def plain_text(draw):
    """Draw with matplotlib's mathtext off: every text paymon draws (incident titles, error types,
    endpoint names) is data, and a `$` in it ("Charge $x^$ failed") would otherwise be parsed as
    a formula, or raise ValueError and take the whole page down with it. Text objects read the
    setting when they are made, tick labels when the figure is drawn: wrap both."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context({"text.parse_math": False}):
            return draw(*args, **kwargs)

    return wrapper


def new_figure(width_in: float, height_in: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width_in, height_in), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


@plain_text
def png_bytes(figure: Figure) -> bytes:
    out = io.BytesIO()
    # No metadata: nothing but pixels leaves in the file.
    figure.savefig(out, format="png", metadata={"Software": None})
    return out.getvalue()


def _ms(value: float | None) -> str:
    return "unknown" if value is None else f"{value:,.1f} ms"


# --- latency histogram --------------------------------------------------------------------------------


@plain_text
def latency_histogram(report: LatencyReport, endpoint: str) -> Figure:
    """The samples on a log axis (latencies are right-skewed, and the budgets are often 100x the
    typical request), the warning and critical budgets, and the p95 with its confidence interval."""
    endpoint = scrub(endpoint)
    figure = new_figure(8, 4.2)
    axes = figure.add_subplot()
    values = [v for v in report.sorted_ms if v > 0]
    budget = report.budget
    marks = [v for v in (budget.warning_ms, budget.critical_ms) if budget] if budget else []
    low_end = min(values + marks) if values or marks else 1.0
    high_end = max(values + marks) if values or marks else 10.0
    left, right = low_end / 1.5, high_end * 1.5
    if values:
        bins = _log_bins(left, right, 40)
        axes.hist(values, bins=bins, color=COLOURS["samples"], edgecolor="white", linewidth=0.5,
                  label=f"{report.samples} samples")
    axes.set_xscale("log")
    axes.set_xlim(left, right)
    _plain_log_ticks(axes.xaxis)
    low, high = report.p95_ci_ms
    if report.p95_ms is not None:
        axes.axvline(report.p95_ms, color=COLOURS["p95"], linewidth=2, label=f"p95 {_ms(report.p95_ms)}")
    if low is not None:
        coverage = f"{report.p95_ci_coverage:.1%}" if report.p95_ci_coverage else f"{report.confidence:.0%}"
        axes.axvspan(low, high if high is not None else right, color=COLOURS["p95"], alpha=0.15,
                     label=f"p95 {coverage} CI {_ms(low)} – {_ms(high) if high is not None else 'no upper bound'}")
    if budget is not None:
        axes.axvline(budget.warning_ms, color=COLOURS["warning"], linestyle="--", linewidth=2,
                     label=f"warning budget > {budget.warning_ms:g} ms")
        axes.axvline(budget.critical_ms, color=COLOURS["critical"], linestyle="--", linewidth=2,
                     label=f"critical budget > {budget.critical_ms:g} ms")
    verdict = (report.verdict or "no budget").upper()
    axes.set_title(f"{endpoint}: {verdict}, p95 {_ms(report.p95_ms)} ({report.samples} samples at {report.rate:g}/s)",
                   fontsize=11)
    axes.set_xlabel("latency, ms (log scale; from each request's scheduled send time)")
    axes.set_ylabel("requests")
    axes.yaxis.get_major_locator().set_params(integer=True)
    # Below the plot: inside it the legend hides bars or budget lines, whichever side they are on.
    figure.legend(loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    axes.grid(axis="y", alpha=0.3)
    return figure


def _plain_log_ticks(axis) -> None:
    """"20", "500", "1000" instead of "2x10^1": people read budgets in plain ms."""
    from matplotlib.ticker import FuncFormatter, LogLocator

    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_locator(LogLocator(subs=(2.0, 5.0)))
    axis.set_minor_formatter(FuncFormatter(lambda value, _: f"{value:g}"))


def _log_bins(left: float, right: float, count: int) -> list[float]:
    ratio = (right / left) ** (1 / count)
    return [left * ratio**i for i in range(count + 1)]


# --- delivery timeline --------------------------------------------------------------------------------


@plain_text
def delivery_timeline(timeline: Timeline) -> Figure:
    """One row per step after firing (seen in Slack; incident created, assigned, notified), each at
    its seconds since firing, against the deadline; a step never seen is drawn at the right edge."""
    steps = timeline.steps
    figure = new_figure(8, 1.6 + 0.55 * (len(steps) + 1))
    axes = figure.add_subplot()
    seen = [s.seconds for s in steps if s.seconds is not None]
    right = max([timeline.deadline_s * 1.15, *(s * 1.1 for s in seen)])
    axes.plot([0], [0], marker="D", color=COLOURS["p95"], markersize=7)
    axes.annotate(_utc(timeline.fired_at), (0, 0), xytext=(6, 5), textcoords="offset points", fontsize=8)
    for row, step in enumerate(steps, start=1):
        status = step.status(timeline.deadline_s)
        colour = COLOURS[status]
        if step.seconds is None:
            axes.plot([0, right], [row, row], color=colour, linestyle=":", linewidth=1.5)
            axes.annotate(scrub(f"not seen ({step.what})"), (right, row), xytext=(-4, 6), textcoords="offset points",
                          ha="right", fontsize=8, color=colour)
            continue
        axes.plot([0, step.seconds], [row, row], color=colour, linewidth=4, solid_capstyle="butt")
        axes.plot([step.seconds], [row], marker="o", color=colour, markersize=7)
        axes.annotate(f"{step.seconds:.1f} s", (step.seconds, row), xytext=(6, 5), textcoords="offset points",
                      fontsize=8, color=colour)
    axes.axvline(timeline.deadline_s, color=COLOURS["critical"], linestyle="--", linewidth=2,
                 label=f"deadline {timeline.deadline_s:g} s")
    axes.set_yticks(range(len(steps) + 1), ["test event fired", *(scrub(s.what) for s in steps)])
    axes.set_ylim(len(steps) + 0.5, -0.7)
    axes.set_xlim(0, right)
    axes.set_xlabel("seconds since the test event was fired (each service's own timestamp)")
    axes.set_title(scrub(f"{timeline.title}: {timeline.outcome}"), fontsize=11)
    axes.legend(loc="upper right", fontsize=8)
    axes.grid(axis="x", alpha=0.3)
    return figure


def _utc(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


# --- weekly trends ---------------------------------------------------------------------------------------


def _dates(epochs: Sequence[float]):
    return [datetime.fromtimestamp(e, tz=timezone.utc) for e in epochs]


def _time_axis(axes) -> None:
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter

    low, high = axes.dataLim.intervalx  # the data's span: autoscaling widens one point to years
    if high - low < 1 / 24:  # one run (or all within the hour): give the date axis a day to label
        axes.set_xlim(low - 0.5, high + 0.5)
    locator = AutoDateLocator(maxticks=8)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _shared_legend(figure: Figure) -> None:
    """One legend under all panels (same label, same meaning): inside a panel it hides points."""
    handles: dict[str, object] = {}
    for axes in figure.axes:
        for handle, label in zip(*axes.get_legend_handles_labels()):
            handles.setdefault(label, handle)
    if handles:
        figure.legend(handles.values(), handles.keys(), loc="outside lower center", ncols=len(handles),
                      fontsize=8, frameon=False)


@plain_text
def delivery_trend(series: dict[str, list[tuple[float, float | None]]], deadlines: dict[str, float]) -> Figure:
    """Per route, each run's delivery time against the route's deadline; a run that never saw
    its delivery is a cross on the deadline line."""
    routes = sorted(series)
    figure = new_figure(10, 3.2)
    for n, route in enumerate(routes, start=1):
        axes = figure.add_subplot(1, len(routes), n)
        points = series[route]
        deadline = deadlines.get(route)
        seen = [(t, s) for t, s in points if s is not None]
        missing = [t for t, s in points if s is None]
        if seen:
            on_time = [(t, s) for t, s in seen if deadline is None or s <= deadline]
            late = [(t, s) for t, s in seen if deadline is not None and s > deadline]
            for group, key in ((on_time, "on time"), (late, "late")):
                if group:
                    axes.plot(_dates([t for t, _ in group]), [s for _, s in group], "o", color=COLOURS[key],
                              label=key, markersize=5)
            axes.plot(_dates([t for t, _ in seen]), [s for _, s in seen], color=COLOURS["samples"], linewidth=1,
                      zorder=0)
        if deadline is not None:
            axes.axhline(deadline, color=COLOURS["critical"], linestyle="--", linewidth=2,
                         label="deadline")
            if missing:
                axes.plot(_dates(missing), [deadline] * len(missing), "x", color=COLOURS["late"], markersize=9,
                          markeredgewidth=2, label="not delivered")
            axes.set_ylim(0, max([deadline * 1.15, *(s * 1.1 for _, s in seen)]))
        axes.set_title(scrub(f"{route} (deadline {deadline:g} s)" if deadline is not None else route), fontsize=11)
        axes.set_ylabel("seconds from firing")
        _time_axis(axes)
        axes.grid(alpha=0.3)
    _shared_legend(figure)
    return figure


@plain_text
def p95_trend(series: dict[str, list[dict]]) -> Figure:
    """Per endpoint, each run's p95 with its confidence interval, under the warning and critical
    budgets (log scale: a healthy p95 is often far below its budget)."""
    endpoints = sorted(series)
    columns = min(2, len(endpoints)) or 1
    rows = max(1, math.ceil(len(endpoints) / columns))
    figure = new_figure(10, 2.9 * rows)
    for n, endpoint in enumerate(endpoints, start=1):
        axes = figure.add_subplot(rows, columns, n)
        points = [p for p in series[endpoint] if p.get("p95_ms") is not None]
        if points:
            when = _dates([p["started"] for p in points])
            p95 = [p["p95_ms"] for p in points]
            lows = [p95[i] - (p.get("ci_low_ms") if p.get("ci_low_ms") is not None else p95[i])
                    for i, p in enumerate(points)]
            highs = [(p.get("ci_high_ms") if p.get("ci_high_ms") is not None else p95[i]) - p95[i]
                     for i, p in enumerate(points)]
            axes.errorbar(when, p95, yerr=[lows, highs], fmt="o-", color=COLOURS["p95"], markersize=4,
                          capsize=3, linewidth=1, label="p95 (95% CI)")
        latest = series[endpoint][-1]
        values = [v for p in points for v in (p["p95_ms"], p.get("ci_high_ms")) if v]
        for key in ("warning", "critical"):
            budget = latest.get(f"{key}_ms")
            if budget:
                axes.axhline(budget, color=COLOURS[key], linestyle="--", linewidth=2, label=f"{key} budget")
                values.append(budget)
        axes.set_yscale("log")
        _plain_log_ticks(axes.yaxis)
        if values:
            axes.set_ylim(min(values) / 2, max(values) * 2)
        axes.set_title(scrub(endpoint), fontsize=10)
        axes.set_ylabel("ms (log)")
        _time_axis(axes)
        axes.grid(alpha=0.3, which="both")
    _shared_legend(figure)
    return figure


@plain_text
def category_bars(days: list[str], counts: dict[str, list[int]], colours: dict[str, str],
                  ylabel: str, title: str) -> Figure:
    """Stacked bars per day, one colour per kind (failures by category, real alerts by alert)."""
    figure = new_figure(10, 3.2)
    axes = figure.add_subplot()
    bottom = [0] * len(days)
    for n, (kind, values) in enumerate(counts.items()):
        axes.bar(days, values, bottom=bottom, label=scrub(kind), color=colours.get(kind, SERIES[n % len(SERIES)]))
        bottom = [b + v for b, v in zip(bottom, values)]
    axes.set_ylabel(ylabel)
    axes.set_title(scrub(title), fontsize=11)
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.set_ylim(0, max(bottom + [1]) * 1.2)
    if counts:
        axes.legend(fontsize=8, loc="upper left", ncols=min(3, len(counts)))
    axes.grid(axis="y", alpha=0.3)
    return figure
