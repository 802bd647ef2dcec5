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
