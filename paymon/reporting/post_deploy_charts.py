"""The post-deployment watch's attachments: per alert, its events in the hours before the deploy and
since it, and what fired (a CSV table, and a bar chart drawn only when Allure results are written)."""

from __future__ import annotations

import csv
import io

from paymon.reporting import charts
from paymon.reporting.attachments import CSV, PNG, Attachment
from paymon.reporting.secrets import scrub


def table_csv(report) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["deploy", report.deploy.describe()])
    writer.writerow(["hours since the deploy", f"{report.hours:.2f}"])
    writer.writerow([])
    writer.writerow(report.ROW_HEADER)
    writer.writerows(report.rows())
    for note in report.notes:
        writer.writerow(["note", note])
    return scrub(out.getvalue())


@charts.plain_text
def before_after_bars(report):
    """Horizontal bars: each alert's events before (grey) and after (blue, red if it fired) the deploy."""
    alerts = report.alerts
    figure = charts.new_figure(9.0, 1.2 + 0.55 * len(alerts))
    axes = figure.add_subplot(1, 1, 1)
    rows = range(len(alerts))
    axes.barh([r + 0.2 for r in rows], [a.before for a in alerts], height=0.4, color=charts.COLOURS["samples"],
              label=f"{report.hours:.1f} h before the deploy")
    axes.barh([r - 0.2 for r in rows], [a.after for a in alerts], height=0.4,
              color=[charts.COLOURS["critical"] if a.fired else charts.COLOURS["p95"] for a in alerts],
              label="since the deploy (red: the alert fired)")
    axes.set_yticks(list(rows), [scrub(a.name) for a in alerts])
    axes.invert_yaxis()
    axes.set_xlabel("matching events (paymon's test events left out)")
    axes.set_title(scrub(f"{report.hours:.1f} h since the deploy of {report.deploy.version} to "
                         f"{report.deploy.environment}"), fontsize=9)
    axes.legend(fontsize=8, loc="lower right")
    return figure


def attachments(report, draw: bool) -> list[Attachment]:
    found = [Attachment("post-deploy watch (table)", table_csv(report), CSV)]
    if draw:
        found.insert(0, Attachment("post-deploy watch", charts.png_bytes(before_after_bars(report)), PNG))
    return found


# --- §7 "Review payment dashboard metrics daily for first week" ------------------------------------

def review_csv(review, widget) -> str:
    """One widget's days since the deploy: events under its query, then each series' value."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["deploy", review.deploy.describe()])
    writer.writerow(["widget", widget.title, widget.source, f"dataset {widget.dataset}", f"query {widget.query}"])
    if widget.unchecked:
        writer.writerow(["could not check", widget.unchecked])
        return scrub(out.getvalue())
    series = widget.series()
    writer.writerow([])
    writer.writerow(["day (UTC)", "complete day", "events", *series])
    for day in widget.days:
        writer.writerow([day.label, day.complete, day.count, *(day.values.get(name, "") for name in series)])
    return scrub(out.getvalue())


@charts.plain_text
def daily_widget(review, widget, thresholds=None):
    """One widget's days since the deploy: each series as a line (a marker per day, a gap on a day
    without events), each day's events under its date, an empty whole day red, threshold markers
    dashed."""
    figure = charts.new_figure(8.0, 3.6)
    axes = figure.add_subplot(1, 1, 1)
    labels = [f"{day.label}{'' if day.complete else ' (part)'}\n{day.count} events" for day in widget.days]
    positions = list(range(len(widget.days)))
    for name in widget.series():
        # A day without events has no value (a rate or percentile of nothing is not 0): a gap.
        axes.plot(positions, [day.values.get(name, 0) if day.count else float("nan") for day in widget.days],
                  marker="o", label=scrub(name))
    for position, day in zip(positions, widget.days):
        if day.complete and day.count == 0:
            axes.axvspan(position - 0.4, position + 0.4, color=charts.COLOURS["missing"], alpha=0.2)
    if thresholds is not None:
        axes.axhline(thresholds.warning, color=charts.COLOURS["warning"], linestyle="--",
                     label=f"warning {thresholds.warning:g} {thresholds.unit}")
        axes.axhline(thresholds.critical, color=charts.COLOURS["critical"], linestyle="--",
                     label=f"critical {thresholds.critical:g} {thresholds.unit}")
    axes.set_xticks(positions, labels, fontsize=7, rotation=20)
    axes.set_title(scrub(f"{widget.title}, per day since the deploy of {review.deploy.version}"), fontsize=9)
    if not widget.series():
        axes.text(0.5, 0.5, "no data on any day", transform=axes.transAxes, ha="center")
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=7, loc="best")
    return figure


def review_attachments(review, spec, draw: bool) -> list[Attachment]:
    """Per widget: its table (CSV) and, when Allure results are written, its per-day plot (PNG)."""
    declared = {w.title: w for w in spec.dashboard.widgets}
    found = []
    for widget in review.widgets:
        if draw and not widget.unchecked:
            thresholds = declared[widget.title].thresholds if widget.title in declared else None
            found.append(Attachment(f"dashboard review: {widget.title}",
                                    charts.png_bytes(daily_widget(review, widget, thresholds)), PNG))
        found.append(Attachment(f"dashboard review: {widget.title} (table)", review_csv(review, widget), CSV))
    return found
