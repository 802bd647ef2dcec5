"""`paymon review failures`: payment failures by error type per day (guide §7 "Weekly review of
payment failure trends"), the numbers the dashboard's "Payment Failure Rate" widget shows.

The widget is the one in monitoring.yaml grouped by `error.type`; its query and environment are
used as they are, through Discover (`O/events/`, fields error.type, timestamp.to_day, count(), all
pages). Days are UTC dates; a day with no failures shows zeros.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime

from paymon.errors import ConfigError
from paymon.reviews import events_api
from paymon.config.spec import Spec

DAY = 86400


@dataclass
class FailureTrend:
    start: float
    end: float
    weeks: int
    query: str
    days: list[str]
    counts: dict[str, list[int]] = field(default_factory=dict)
    """error type -> count per day (same order as `days`)."""
    api_calls: int = 0

    @property
    def totals(self) -> list[int]:
        return [sum(values[i] for values in self.counts.values()) for i in range(len(self.days))]

    def total(self, error_type: str) -> int:
        return sum(self.counts.get(error_type, []))

    def to_json(self) -> dict:
        data = asdict(self)
        data["totals"] = self.totals
        return data


def failure_widget(spec: Spec):
    for widget in spec.dashboard.widgets:
        if "error.type" in widget.group_by:
            return widget
    raise ConfigError("monitoring.yaml: dashboard.widgets: no widget is grouped by error.type "
                      "(the payment failure widget the failure review reads)")


def _day(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%d")


def review_failures(client, spec: Spec, *, weeks: int = 4, now: float) -> FailureTrend:
    calls_before = client.request_count
    widget = failure_widget(spec)
    start = now - weeks * 7 * DAY
    first_day = int(start // DAY) * DAY
    days = [_day(t) for t in range(first_day, int(now) + 1, DAY)]
    environment = spec.dashboard.environment or spec.environment
    rows = events_api.table(client, "errors", ["error.type", "timestamp.to_day", "count()"], widget.query,
                            environment, start, now)
    trend = FailureTrend(start, now, weeks, widget.query, days)
    for row in rows:
        error_type = row.get("error.type") or "(none)"
        if isinstance(error_type, list):  # Sentry may answer the exception chain's types
            error_type = error_type[-1] if error_type else "(none)"
        day = str(row.get("timestamp.to_day") or "")[:10]
        if day not in days:
            continue
        values = trend.counts.setdefault(str(error_type), [0] * len(days))
        values[days.index(day)] += int(row.get("count()") or 0)
    trend.counts = dict(sorted(trend.counts.items(), key=lambda item: -sum(item[1])))
    trend.api_calls = client.request_count - calls_before
    return trend


@dataclass(frozen=True)
class WeekOverWeek:
    last_week: int
    week_before: int
    last_days: tuple[str, str]
    """The last week's first and last day (UTC)."""

    @property
    def ratio(self) -> float | None:
        return None if self.week_before == 0 else self.last_week / self.week_before


def week_over_week(trend: FailureTrend) -> WeekOverWeek | None:
    """Failures of the last 7 complete UTC days and of the 7 before (the day `trend.end` falls in is
    incomplete and left out); None when the trend does not reach two full weeks back."""
    complete = [i for i, day in enumerate(trend.days) if day != _day(trend.end)]
    first_full = 0 if trend.start % DAY == 0 else 1  # the first day may start after midnight
    complete = [i for i in complete if i >= first_full]
    if len(complete) < 14:
        return None
    totals = trend.totals
    last, before = complete[-7:], complete[-14:-7]
    return WeekOverWeek(sum(totals[i] for i in last), sum(totals[i] for i in before),
                        (trend.days[last[0]], trend.days[last[-1]]))


def trend_findings(trend: FailureTrend, rule) -> list[str]:
    """The review's finding by monitoring.yaml's `reviews.failure_trend` rule: the last week's payment
    failures above `rule.max_ratio` times the week before, once there are `rule.min_failures`."""
    change = week_over_week(trend)
    if change is None:
        return [f"payment failures: fewer than 14 complete days in {trend.weeks} weeks: no week-over-week trend "
                "to judge (review at least 3 weeks)"]
    if change.last_week < rule.min_failures:
        return []
    if change.week_before == 0 or change.last_week > rule.max_ratio * change.week_before:
        rise = "from none" if change.week_before == 0 else f"x{change.ratio:.2f}"
        return [f"payment failures ({trend.query}) {change.last_days[0]}..{change.last_days[1]}: {change.last_week}, "
                f"week before: {change.week_before} ({rise}), expected at most x{rule.max_ratio:g} "
                f"(reviews.failure_trend.max_ratio); by type: " + ", ".join(
                    f"{t} {sum(v[-8:-1])}" for t, v in list(trend.counts.items())[:4])]
    return []
