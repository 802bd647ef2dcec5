"""The Allure attachments of the measuring checks, built ready to attach: the latency histogram
and statistics of a p95 check, the delivery timeline of a delivery check.

Each is an `Attachment` whose text has been scrubbed of secrets and whose PNG was drawn from
scrubbed text (charts.py); fixtures/reporting.py only hands them to allure.attach.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from paymon.reporting import charts
from paymon.reporting.secrets import scrub
from paymon.reporting.timeline import Timeline
from paymon.reporting.timeline import to_csv as timeline_csv

PNG, CSV = "png", "csv"


@dataclass(frozen=True)
class Attachment:
    name: str
    body: bytes | str
    kind: str
    """PNG or CSV (the extension; fixtures/reporting.py maps it to Allure's attachment type)."""


def _ms(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def latency_statistics(report, endpoint: str) -> list[tuple[str, str]]:
    """(statistic, value) rows of one p95 run: what the verdict rests on, in the order one reads it."""
    low, high = report.p95_ci_ms
    budget = report.budget
    rows = [
        ("endpoint", endpoint),
        ("verdict", report.verdict or "no budget"),
        ("reason", report.reason),
        ("samples", str(report.samples)),
        ("rate (requests/s)", f"{report.rate:g}"),
        ("p50 (ms)", _ms(report.p50_ms)),
        ("p95 (ms)", _ms(report.p95_ms)),
        ("p95 CI low (ms)", _ms(low)),
        ("p95 CI high (ms)", _ms(high) if high is not None else "no upper bound"),
        ("p95 CI coverage", f"{report.p95_ci_coverage:.4f}"),
        ("p99 (ms)", _ms(report.p99_ms)),
        ("mean (ms)", _ms(report.mean_ms)),
        ("max (ms)", _ms(report.max_ms)),
        ("warning budget (ms)", f"{budget.warning_ms:g}" if budget else ""),
        ("critical budget (ms)", f"{budget.critical_ms:g}" if budget else ""),
        ("errors", str(report.errors)),
        ("errors by kind", ", ".join(f"{k}: {n}" for k, n in sorted(report.errors_by_kind.items()))),
        ("timeouts", str(report.timeouts)),
        ("service-time p95 (ms)", _ms(report.service_p95_ms)),
        ("max send lag (ms)", _ms(report.max_send_lag_ms)),
        ("late sends", str(report.late_sends)),
        ("utilisation", "" if report.utilisation is None else f"{report.utilisation:.3f}"),
        ("samples needed", "" if report.samples_needed is None else str(report.samples_needed)),
    ]
    rows += [("note", note) for note in report.notes]
    return rows


def _csv(header: list[str], rows: list[tuple[str, ...]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def latency_attachments(report, endpoint: str) -> list[Attachment]:
    png = charts.png_bytes(charts.latency_histogram(report, endpoint))
    table = scrub(_csv(["statistic", "value"], latency_statistics(report, endpoint)))
    return [Attachment("latency histogram", png, PNG), Attachment("latency statistics", table, CSV)]


def delivery_attachments(timeline: Timeline) -> list[Attachment]:
    png = charts.png_bytes(charts.delivery_timeline(timeline))
    return [Attachment("delivery timeline", png, PNG),
            Attachment("delivery timeline (table)", scrub(timeline_csv(timeline)), CSV)]
