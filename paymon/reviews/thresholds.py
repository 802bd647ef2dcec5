"""`paymon review thresholds`: the quarterly review of the p95 budgets (guide §7 "Quarterly review of
performance thresholds").

For each budget in monitoring.yaml, per week over the last `weeks` weeks (weeks end at `now`):
the transaction's count, p50, p95 and p99 from Sentry's events API (one Discover query per week for
all budgets), and the p95's distribution-free 95% interval — the order statistics at the ranks
paymon.probes.latency.order_statistic_ranks gives for that week's count, read as
`percentile(transaction.duration, q)` with q = (rank - 1) / (n - 1). A week breaches a budget when
its p95 is above it.

The suggested warning budget is the highest p95 of the last four weeks (the current normal, after
any deploy) with 20% headroom, rounded up to 50 ms; the critical budget keeps the current
critical/warning ratio. The reasoning says how many weeks breached, and whether to keep, tighten
(no week came within half of the budget) or revisit (the budget was breached in recent weeks:
either a regression to fix or a budget that no longer fits).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from paymon.probes.latency import order_statistic_ranks
from paymon.reviews import events_api
from paymon.config.spec import PerformanceBudget, Spec

WEEK = 7 * 86400
HEADROOM = 1.2
RECENT_WEEKS = 4
ROUND_TO = 50.0
P50, P95, P99 = "p50(transaction.duration)", "p95(transaction.duration)", "p99(transaction.duration)"


@dataclass
class WeekStats:
    start: float
    end: float
    count: int = 0
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    p95_low: float | None = None
    p95_high: float | None = None
    breach: str = "no data"
    """"ok", "warning", "critical" or "no data"."""


@dataclass
class BudgetReview:
    name: str
    transaction: str
    warning: float
    critical: float
    weeks: list[WeekStats] = field(default_factory=list)
    breached_warning: int = 0
    breached_critical: int = 0
    suggested_warning: float | None = None
    suggested_critical: float | None = None
    verdict: str = "no data"
    """"keep", "tighten", "revisit" or "no data"."""
    reasoning: str = ""


@dataclass
class ThresholdReview:
    start: float
    end: float
    weeks: int
    budgets: list[BudgetReview]
    api_calls: int = 0

    def to_json(self) -> dict:
        return asdict(self)


def round_up(value: float, step: float = ROUND_TO) -> float:
    return float(math.ceil(value / step) * step)


def _breach(p95: float | None, budget: PerformanceBudget) -> str:
    if p95 is None:
        return "no data"
    return "critical" if p95 > budget.critical else "warning" if p95 > budget.warning else "ok"


def p95_interval(client, spec: Spec, transaction: str, n: int, start: float, end: float) -> tuple[float | None, float | None]:
    ranks = order_statistic_ranks(n)
    if n < 2 or ranks.lower is None and ranks.upper is None:
        return None, None
    fields = []
    for rank in (ranks.lower, ranks.upper):
        if rank is not None:
            fields.append(f"percentile(transaction.duration,{(rank - 1) / (n - 1):.6f})")
    rows = events_api.table(client, "transactions", fields, f"transaction:{transaction}",
                            spec.performance.environment, start, end)
    row = rows[0] if rows else {}
    values = [row.get(f) for f in fields]
    low = values.pop(0) if ranks.lower is not None else None
    high = values.pop(0) if ranks.upper is not None else None
    return low, high


def suggest(review: BudgetReview) -> None:
    measured = [w for w in review.weeks if w.p95 is not None]
    review.breached_warning = sum(1 for w in measured if w.breach in ("warning", "critical"))
    review.breached_critical = sum(1 for w in measured if w.breach == "critical")
    if not measured:
        review.reasoning = f"no {review.transaction} transactions in {len(review.weeks)} weeks: nothing to judge"
        return
    recent = [w for w in review.weeks[-RECENT_WEEKS:] if w.p95 is not None] or measured
    top = max(w.p95 for w in recent)
    review.suggested_warning = round_up(top * HEADROOM)
    review.suggested_critical = round_up(review.suggested_warning * review.critical / review.warning)
    low, high = min(w.p95 for w in measured), max(w.p95 for w in measured)
    recent_breaches = sum(1 for w in recent if w.breach != "ok")
    text = (f"weekly p95 {low:.0f}-{high:.0f} ms over {len(measured)} weeks with data; "
            f"{review.breached_warning} of {len(measured)} weeks above the warning budget ({review.warning:g} ms), "
            f"{review.breached_critical} above critical ({review.critical:g} ms); "
            f"suggested warning {review.suggested_warning:g} ms = the last {len(recent)} weeks' highest p95 "
            f"({top:.0f} ms) + {round((HEADROOM - 1) * 100)}%, rounded up to {ROUND_TO:g} ms")
    if recent_breaches:
        review.verdict = "revisit"
        text += (f"; the budget was breached in {recent_breaches} of the last {len(recent)} weeks: fix the "
                 f"regression, or raise the budget if the new latency is accepted")
    elif high < review.warning / 2:
        review.verdict = "tighten"
        text += "; no week came within half of the warning budget: tighten it so a regression shows"
    else:
        review.verdict = "keep"
        text += "; the budget fits"
    review.reasoning = text


def review_thresholds(client, spec: Spec, *, weeks: int = 13, now: float) -> ThresholdReview:
    calls_before = client.request_count
    budgets = spec.performance.budgets
    reviews = [BudgetReview(b.name, b.transaction, b.warning, b.critical) for b in budgets]
    names = ",".join(b.transaction for b in budgets)
    start = now - weeks * WEEK
    for index in range(weeks):
        week_start, week_end = start + index * WEEK, start + (index + 1) * WEEK
        rows = events_api.table(client, "transactions", ["transaction", "count()", P50, P95, P99],
                                f"transaction:[{names}]", spec.performance.environment, week_start, week_end)
        by_name = {r.get("transaction"): r for r in rows}
        for budget, review in zip(budgets, reviews):
            row = by_name.get(budget.transaction)
            stats = WeekStats(week_start, week_end)
            if row and row.get("count()"):
                stats.count = int(row["count()"])
                stats.p50, stats.p95, stats.p99 = row.get(P50), row.get(P95), row.get(P99)
                stats.p95_low, stats.p95_high = p95_interval(client, spec, budget.transaction, stats.count,
                                                             week_start, week_end)
            stats.breach = _breach(stats.p95, budget)
            review.weeks.append(stats)
    for review in reviews:
        suggest(review)
    return ThresholdReview(start, now, weeks, reviews, client.request_count - calls_before)


def budget_findings(review: ThresholdReview, rule) -> list[str]:
    """The review's findings by monitoring.yaml's `reviews.budgets` rule: a budget whose weekly p95
    breached `rule.level` in more than `rule.max_breached_share` of the weeks that had data. A budget
    with no data at all is a finding too: nothing says it fits."""
    lines = []
    for budget in review.budgets:
        measured = [w for w in budget.weeks if w.p95 is not None]
        if not measured:
            lines.append(f"{budget.transaction}: no transactions in {len(budget.weeks)} weeks: the budget cannot "
                         "be judged")
            continue
        breached = budget.breached_critical if rule.level == "critical" else budget.breached_warning
        share = breached / len(measured)
        if share > rule.max_breached_share:
            limit = budget.critical if rule.level == "critical" else budget.warning
            lines.append(f"{budget.transaction}: weekly p95 above the {rule.level} budget ({limit:g} ms) in "
                         f"{breached} of {len(measured)} weeks ({share:.0%}), expected at most "
                         f"{rule.max_breached_share:.0%}: {budget.reasoning}")
    return lines
