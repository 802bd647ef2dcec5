"""`paymon review alerts`: the monthly review of alert effectiveness (guide §7 "Monthly review of
alert rule effectiveness").

Per alert over the last `days` days, joined across the three services by the alert's identity
(paymon.reviews.notifications):

* fired — what Sentry's rule fired on: the backtest's replay of the alert over Sentry's events
  (for an alert the backtest cannot replay, the p95 alerts, the firings the notifications show);
* delivered — firings that reached Slack or PagerDuty;
* acknowledged — firings whose PagerDuty incident someone acknowledged; resolved — firings that
  were resolved (Sentry's "Resolved" post, or the incident resolved);
* median time to acknowledge, from the incident's creation to its first acknowledgement.

An alert that fired but whose firings reached no one is listed as such: the failure the guide's
checklist exists to catch.
"""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field

from paymon.reviews.backtest import BacktestReport


@dataclass
class AlertEffectiveness:
    name: str
    fired: int
    delivered: int
    acknowledged: int
    resolved: int
    median_time_to_ack_s: float | None
    pages: int = 0
    fired_source: str = "sentry events (replayed)"
    reached_no_one: bool = False
    note: str = ""


@dataclass
class AlertsReview:
    start: float
    end: float
    days: float
    alerts: list[AlertEffectiveness]
    sources: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    api_calls: int = 0

    def alert(self, name: str) -> AlertEffectiveness:
        return next(a for a in self.alerts if a.name == name)

    @property
    def reached_no_one(self) -> list[str]:
        return [a.name for a in self.alerts if a.reached_no_one]

    def to_json(self) -> dict:
        data = asdict(self)
        data["reached_no_one"] = self.reached_no_one
        return data


def review_alerts(backtest: BacktestReport, notifications) -> AlertsReview:
    """`backtest` over the period, with `notifications` read for the same period."""
    rows = []
    for alert in backtest.alerts:
        delivered = notifications.firings.get(alert.name, [])
        acks = [f.time_to_ack for f in delivered if f.time_to_ack is not None]
        if alert.replayed:
            fired, source = alert.would_fire, "sentry events (replayed)"
        else:
            fired, source = len(delivered), "notifications (not replayed)"
        row = AlertEffectiveness(
            alert.name, fired, len(delivered), len(acks), sum(1 for f in delivered if f.resolved),
            statistics.median(acks) if acks else None, sum(1 for f in delivered if f.pages), source)
        row.reached_no_one = fired > 0 and not delivered
        if alert.replayed and len(delivered) > fired:
            row.note = (f"{len(delivered)} notifications for {fired} replayed firings: notifications without the "
                        f"events in Sentry's data (older posts, deleted events), or a burst shorter than a minute "
                        f"that the once-a-minute replay smooths")
        elif alert.replayed and 0 < len(delivered) < fired:
            row.note = (f"{fired - len(delivered)} of {fired} replayed firings reached neither Slack nor PagerDuty "
                        f"(e-mail is not read)")
        rows.append(row)
    return AlertsReview(backtest.start, backtest.end, backtest.days, rows, list(notifications.read),
                        list(notifications.unavailable))
