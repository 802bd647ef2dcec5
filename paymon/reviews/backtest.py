"""`paymon backtest`: each live alert replayed over the real events of the last days.

    report = backtest(client, spec, days=7, now=time.time(), notifications=None)

The alerts are the ones Sentry runs (read in either API generation, paymon.rules.normalise); a
dual-written alert is replayed once (the preferred record). For each count() alert the matching
events are read as counts per minute (paymon.reviews.events_api) and replayed with the alert's own
window, comparator, thresholds, counting and action interval (paymon.reviews.replay). Alerts on
another aggregate (the p95 performance alerts) cannot be rebuilt from counts: they are listed as
not replayed (`paymon review thresholds` covers them).

Per alert: how often it would have fired and when, its peak against its threshold, how often it
really fired as far as the notifications show (Sentry's public API keeps no alert history; Slack
and PagerDuty do, when read), and two flags from monitoring.yaml's `backtest` section: noisy (more
firings than the limit) and blind (events it matches occurred, but the peak never reached
`blind_ratio` of the threshold).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

from paymon.reviews import events_api
from paymon.reviews.replay import Firing, replay_across_events, replay_per_issue
from paymon.rules.model import Alert
from paymon.config.spec import Spec

WEEK = 7 * 86400


@dataclass
class AlertBacktest:
    name: str
    source: str
    counting: str
    condition: str
    """e.g. "count() > 10 in 5m across events"."""
    threshold: float | None
    replayed: bool = True
    would_fire: int = 0
    firings: list[Firing] = field(default_factory=list)
    peak: float = 0.0
    peak_at: float | None = None
    matching_events: int = 0
    actual: int | None = None
    """Firings that reached Slack or PagerDuty in the period (None: not read)."""
    noisy: bool = False
    blind: bool = False
    note: str = ""

    @property
    def flags(self) -> list[str]:
        return [f for f, on in (("noisy", self.noisy), ("blind", self.blind)) if on]


@dataclass
class BacktestReport:
    start: float
    end: float
    days: float
    noisy_limit: float
    blind_ratio: float
    alerts: list[AlertBacktest]
    api_calls: int = 0
    seconds: float = 0.0
    notifications_read: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def alert(self, name: str) -> AlertBacktest:
        return next(a for a in self.alerts if a.name == name)

    def to_json(self) -> dict:
        data = asdict(self)
        for alert, source in zip(data["alerts"], self.alerts):
            alert["flags"] = source.flags
        return data


def describe_condition(alert: Alert) -> str:
    window = alert.window_seconds
    span = "any time" if not window else f"{window // 60}m" if window % 60 == 0 else f"{window}s"
    counting = "per issue" if alert.counting == "per_issue" else "across events"
    repeat = f", at most every {alert.repeat_minutes}m per issue" if alert.counting == "per_issue" and \
        alert.repeat_minutes else ""
    return f"{alert.aggregate} {alert.comparator} {alert.threshold:g} in {span} {counting}{repeat}"


def live_alerts(client, spec: Spec) -> list[Alert]:
    """The alerts Sentry runs: enabled, one record per name (the preferred generation)."""
    from paymon.findings.snapshot import SentrySnapshot

    alert_set = SentrySnapshot(client, spec).alerts
    chosen, seen = [], set()
    for alert in alert_set.all:
        key = " ".join(alert.name.split()).casefold()
        if key in seen or not alert.enabled:
            continue
        seen.add(key)
        chosen.append(alert_set.by_name(alert.name))
    return [a for a in chosen if a is not None and a.enabled]


def judge(result: AlertBacktest, alert: Alert, noisy_limit: float, blind_ratio: float) -> None:
    result.noisy = result.would_fire > noisy_limit
    threshold = alert.threshold
    if alert.comparator in (">", ">=") and threshold and result.matching_events and not result.would_fire:
        result.blind = result.peak < blind_ratio * threshold


def replay_alert(client, alert: Alert, project_id, start: float, end: float) -> AlertBacktest:
    result = AlertBacktest(alert.name, alert.source, alert.counting, describe_condition(alert), alert.threshold)
    if alert.aggregate != "count()":
        result.replayed = False
        result.note = f"{alert.aggregate} is not rebuilt from counts per minute (see `paymon review thresholds`)"
        return result
    if alert.comparator not in (">", ">=", "<", "<="):
        result.replayed = False
        result.note = f"comparator {alert.comparator!r} is not replayed"
        return result
    if alert.counting == "per_issue":
        per_issue, truncated = events_api.minute_counts_per_issue(client, alert, project_id, start, end)
        replay = replay_per_issue(alert, per_issue)
        if truncated:
            result.note = f"more than {events_api.TOP_EVENTS} issues in a chunk: only the busiest were replayed"
    else:
        replay = replay_across_events(alert, events_api.minute_counts(client, alert, project_id, start, end))
    result.firings = replay.firings
    result.would_fire = len(replay.firings)
    result.peak, result.peak_at, result.matching_events = replay.peak, replay.peak_at, replay.matching_events
    return result


def backtest(client, spec: Spec, *, days: float = 7, now: float | None = None, notifications=None,
             alerts: list[Alert] | None = None) -> BacktestReport:
    """`notifications`: a paymon.reviews.notifications.Notifications for the same period (the
    actual firings), or None."""
    from paymon.clients.sentry import api

    began = time.monotonic()
    calls_before = client.request_count
    end = float(now if now is not None else time.time())
    start = end - days * 86400
    noisy_limit = spec.backtest.noisy_firings_per_week * days * 86400 / WEEK
    alerts = live_alerts(client, spec) if alerts is None else alerts
    project_id = api.project_id(client, client.settings.project)
    results = []
    for alert in alerts:
        result = replay_alert(client, alert, project_id, start, end)
        if result.replayed:
            judge(result, alert, noisy_limit, spec.backtest.blind_ratio)
        results.append(result)
    report = BacktestReport(start, end, days, noisy_limit, spec.backtest.blind_ratio, results)
    if notifications is not None:
        add_actuals(report, notifications)
    report.api_calls = client.request_count - calls_before
    report.seconds = time.monotonic() - began
    return report


def add_actuals(report: BacktestReport, notifications) -> None:
    """How often each alert really fired, from the notifications read for the same period."""
    for result in report.alerts:
        if result.name in notifications.firings:
            result.actual = len(notifications.firings[result.name])
    report.notifications_read = list(notifications.read)
    report.notes += notifications.unavailable


def findings(report: BacktestReport) -> list[str]:
    """One line per noisy or blind alert: what the scheduled check fails with."""
    lines = []
    for alert in report.alerts:
        if alert.noisy:
            lines.append(f"{alert.name}: noisy: would have fired {alert.would_fire} times in {report.days:g} days "
                         f"(limit {report.noisy_limit:g}; {alert.condition})")
        if alert.blind:
            lines.append(f"{alert.name}: blind: {alert.matching_events} matching events, but the peak was "
                         f"{alert.peak:g} against a threshold of {alert.threshold:g} ({alert.condition})")
    return lines
