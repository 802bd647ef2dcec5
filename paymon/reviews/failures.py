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
