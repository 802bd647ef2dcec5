"""The reviews' plots (matplotlib, Agg, via paymon.reporting.charts) and their Allure attachments."""

from __future__ import annotations

from datetime import UTC, datetime

from paymon.reporting.attachments import CSV, PNG, Attachment
from paymon.reporting.charts import SERIES, category_bars, new_figure, plain_text, png_bytes
from paymon.reporting.secrets import scrub
from paymon.reviews import output


def _dates(epochs):
    return [datetime.fromtimestamp(e, tz=UTC) for e in epochs]


@plain_text
def backtest_figure(report):
    """Peak against threshold per replayed alert, with the would-be firings counted on the bar."""
    replayed = [a for a in report.alerts if a.replayed and a.threshold is not None]
    figure = new_figure(10, 0.5 + 0.45 * max(1, len(replayed)))
    axes = figure.add_subplot()
    names = [scrub(a.name) for a in replayed]
    ratios = [a.peak / a.threshold if a.threshold else (a.peak if a.peak else 0.0) for a in replayed]
    colours = ["#c62828" if a.noisy else "#ef6c00" if a.blind else SERIES[0] for a in replayed]
    axes.barh(names, ratios, color=colours)
    axes.axvline(1.0, color="#555", linestyle="--", linewidth=1)
    for y, a in enumerate(replayed):
        axes.text(max(ratios[y], 0) + 0.02, y, f"peak {a.peak:g} / {a.threshold:g}: {a.would_fire} firings",
                  va="center", fontsize=8)
    axes.set_xlabel("peak / threshold (dashed: the threshold)")
    axes.set_title(f"Backtest, {report.days:g} days: peak against threshold (red: noisy, orange: blind)", fontsize=11)
    axes.invert_yaxis()
    axes.set_xlim(0, max(ratios + [1.0]) * 1.5)
    return figure


@plain_text
def thresholds_figure(review):
    """Weekly p95 (with its interval) per budget against the warning and critical budgets."""
    count = max(1, len(review.budgets))
    figure = new_figure(10, 2.4 * count)
    for n, budget in enumerate(review.budgets):
        axes = figure.add_subplot(count, 1, n + 1)
        weeks = [w for w in budget.weeks if w.p95 is not None]
        dates = _dates([w.start for w in weeks])
        p95 = [w.p95 for w in weeks]
        low = [w.p95 - (w.p95_low if w.p95_low is not None else w.p95) for w in weeks]
        high = [(w.p95_high if w.p95_high is not None else w.p95) - w.p95 for w in weeks]
        axes.errorbar(dates, p95, yerr=[low, high], fmt="o-", color=SERIES[0], label="p95 (95% CI)", capsize=3)
        axes.plot(dates, [w.p50 for w in weeks], ".-", color=SERIES[2], label="p50", linewidth=1)
        axes.axhline(budget.warning, color="#ef6c00", linestyle="--", linewidth=1, label="warning")
        axes.axhline(budget.critical, color="#c62828", linestyle="--", linewidth=1, label="critical")
        if budget.suggested_warning:
            axes.axhline(budget.suggested_warning, color="#2e7d32", linestyle=":", linewidth=1,
                         label="suggested warning")
        axes.set_title(scrub(budget.transaction), fontsize=10)
        axes.set_ylabel("ms")
        axes.grid(alpha=0.3)
        if n == 0:
            axes.legend(fontsize=7, loc="upper left", ncols=5)
    return figure


@plain_text
def alerts_figure(review):
    figure = new_figure(10, 0.5 + 0.5 * max(1, len(review.alerts)))
    axes = figure.add_subplot()
    names = [scrub(a.name) for a in review.alerts]
    height = 0.2
    for k, (label, values) in enumerate([("fired", [a.fired for a in review.alerts]),
                                         ("delivered", [a.delivered for a in review.alerts]),
                                         ("acknowledged", [a.acknowledged for a in review.alerts]),
                                         ("resolved", [a.resolved for a in review.alerts])]):
        axes.barh([i + (k - 1.5) * height for i in range(len(names))], values, height=height, label=label,
                  color=SERIES[k])
    axes.set_yticks(range(len(names)), names)
    axes.invert_yaxis()
    axes.set_xlabel("firings")
    axes.set_title(f"Alert effectiveness, {review.days:g} days", fontsize=11)
    axes.legend(fontsize=8, loc="lower right")
    axes.grid(axis="x", alpha=0.3)
    return figure


@plain_text
def failures_figure(trend):
    days = [d[5:] for d in trend.days]
    return category_bars(days, trend.counts, {}, "failures", f"Payment failures by error type ({trend.query})")


def attachments(kind: str, result) -> list[Attachment]:
    """The PNG and the table(s) of one review, for allure.attach."""
    figure = {"backtest": backtest_figure, "thresholds": thresholds_figure, "alerts": alerts_figure,
              "failures": failures_figure}[kind](result)
    tables = {
        "backtest": lambda r: [("backtest per alert", output.BACKTEST_HEADERS, output.backtest_rows(r))],
        "thresholds": lambda r: [("p95 per week", output.THRESHOLD_HEADERS, output.threshold_rows(r)),
                                 ("suggested budgets", output.SUGGESTION_HEADERS, output.suggestion_rows(r))],
        "alerts": lambda r: [("alert effectiveness", output.ALERT_HEADERS, output.alert_rows(r))],
        "failures": lambda r: [("failures per day", output.failure_headers(r), output.failure_rows(r))],
    }[kind](result)
    found = [Attachment(f"{kind} (plot)", png_bytes(figure), PNG)]
    found += [Attachment(name, scrub(output.to_csv(headers, rows)).encode(), CSV) for name, headers, rows in tables]
    return found
