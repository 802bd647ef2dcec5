"""The reviews as terminal tables (and the same rows as CSV for the Allure report)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime


def utc(epoch: float | None, seconds: bool = False) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d %H:%M" + (":%S" if seconds else ""))


def num(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:.0f}{unit}" if abs(value - round(value)) < 1e-9 or abs(value) >= 100 else f"{value:.1f}{unit}"


def table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) if rows else len(str(h))
              for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def to_csv(headers: list[str], rows: list[list[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(headers)
    writer.writerows(rows)
    return out.getvalue()


# --- backtest --------------------------------------------------------------------------------------

BACKTEST_HEADERS = ["alert", "condition", "would fire", "first firings (UTC)", "peak", "at (UTC)", "matching",
                    "actual", "flags"]


def backtest_rows(report) -> list[list[str]]:
    rows = []
    for a in report.alerts:
        if not a.replayed:
            rows.append([a.name, a.condition, "-", "not replayed", "-", "-", "-",
                         "-" if a.actual is None else str(a.actual), ""])
            continue
        when = ", ".join(utc(f.at)[5:] for f in a.firings[:3]) + (" ..." if len(a.firings) > 3 else "")
        rows.append([a.name, a.condition, str(a.would_fire), when or "-",
                     f"{num(a.peak)} vs {num(a.threshold)}", utc(a.peak_at), str(a.matching_events),
                     "-" if a.actual is None else str(a.actual), ",".join(a.flags)])
    return rows


def backtest_text(report) -> str:
    head = (f"backtest {utc(report.start)} .. {utc(report.end)} UTC ({report.days:g} days): noisy above "
            f"{report.noisy_limit:g} firings, blind under {report.blind_ratio:g} x threshold; "
            f"{report.api_calls} API calls, {report.seconds:.1f} s")
    lines = [head, "", table(BACKTEST_HEADERS, backtest_rows(report))]
    notes = [f"  {a.name}: {a.note}" for a in report.alerts if a.note] + [f"  {n}" for n in report.notes]
    if report.notifications_read:
        notes.append(f"  actual = firings seen in {'; '.join(report.notifications_read)}")
    if notes:
        lines += ["", "notes:", *notes]
    return "\n".join(lines)


# --- thresholds ------------------------------------------------------------------------------------

THRESHOLD_HEADERS = ["budget", "week from", "n", "p50", "p95", "p95 95% CI", "p99", "vs budget"]


def threshold_rows(review) -> list[list[str]]:
    rows = []
    for b in review.budgets:
        for w in b.weeks:
            ci = f"{num(w.p95_low)}-{num(w.p95_high)}" if w.p95_low is not None or w.p95_high is not None else "-"
            rows.append([b.transaction, utc(w.start)[:10], str(w.count), num(w.p50), num(w.p95), ci, num(w.p99),
                         w.breach])
    return rows


SUGGESTION_HEADERS = ["budget", "warning", "critical", "weeks > warning", "weeks > critical", "suggested",
                      "verdict"]


def suggestion_rows(review) -> list[list[str]]:
    return [[b.transaction, f"{b.warning:g} ms", f"{b.critical:g} ms", str(b.breached_warning),
             str(b.breached_critical),
             "-" if b.suggested_warning is None else f"{b.suggested_warning:g} / {b.suggested_critical:g} ms",
             b.verdict] for b in review.budgets]


def thresholds_text(review) -> str:
    lines = [f"p95 budgets, {review.weeks} weeks to {utc(review.end)} UTC ({review.api_calls} API calls)", "",
             table(THRESHOLD_HEADERS, threshold_rows(review)), "",
             table(SUGGESTION_HEADERS, suggestion_rows(review)), "", "reasoning:"]
    lines += [f"  {b.transaction}: {b.reasoning}" for b in review.budgets]
    return "\n".join(lines)


# --- alert effectiveness -----------------------------------------------------------------------------

ALERT_HEADERS = ["alert", "fired", "delivered", "acknowledged", "resolved", "median ack", "reached no one"]


def alert_rows(review) -> list[list[str]]:
    return [[a.name, str(a.fired), str(a.delivered), str(a.acknowledged) if a.pages else "- (no page)",
             str(a.resolved), "-" if a.median_time_to_ack_s is None else f"{a.median_time_to_ack_s / 60:.1f} min",
             "YES" if a.reached_no_one else ""] for a in review.alerts]


def alerts_text(review) -> str:
    lines = [f"alert effectiveness {utc(review.start)} .. {utc(review.end)} UTC ({review.days:g} days)", "",
             table(ALERT_HEADERS, alert_rows(review)), ""]
    nobody = review.reached_no_one
    lines.append("fired but reached no one: " + (", ".join(nobody) if nobody else "none"))
    lines.append("fired = replayed over Sentry's events; delivered/acknowledged/resolved from "
                 + ("; ".join(review.sources) or "nothing (no Slack or PagerDuty settings)"))
    lines += [f"  {a.name}: {a.note}" for a in review.alerts if a.note]
    lines += [f"  could not read {n}" for n in review.notes]
    return "\n".join(lines)


# --- failures --------------------------------------------------------------------------------------


def failure_headers(trend) -> list[str]:
    return ["day", *trend.counts.keys(), "total"]


def failure_rows(trend) -> list[list[str]]:
    rows = []
    for i, day in enumerate(trend.days):
        rows.append([day, *(str(values[i]) for values in trend.counts.values()), str(trend.totals[i])])
    rows.append(["total", *(str(sum(v)) for v in trend.counts.values()), str(sum(trend.totals))])
    return rows


def failures_text(trend) -> str:
    return "\n".join([f"payment failures by error type per day, {trend.weeks} weeks (query: {trend.query})", "",
                      table(failure_headers(trend), failure_rows(trend))])
