"""The four reviews against one session (paymon.reviews.session): what the CLI and the scheduled
check both call.

    backtest_with_actuals(session, spec, days)  -> BacktestReport (actual firings from Slack/PagerDuty)
    alerts(session, spec, days)                 -> AlertsReview
    thresholds(session, spec, weeks)            -> ThresholdReview
    failures(session, spec, weeks)              -> FailureTrend
"""

from __future__ import annotations

from paymon.reviews.backtest import BacktestReport, add_actuals, backtest, live_alerts
from paymon.reviews.effectiveness import AlertsReview, review_alerts
from paymon.reviews.failures import FailureTrend, review_failures
from paymon.reviews.notifications import read_notifications
from paymon.reviews.thresholds import ThresholdReview, review_thresholds
from paymon.config.spec import Spec

DAY = 86400


def alert_channels(spec: Spec) -> list[str]:
    """Every Slack channel an alert of monitoring.yaml posts to (the performance alerts' too)."""
    actions = [a for alert in spec.all_alerts for a in alert.actions]
    actions += spec.performance.actions.critical + spec.performance.actions.warning
    return list(dict.fromkeys(a.slack for a in actions if a.slack))


def notifications_for(session, spec: Spec, names: list[str], since: float):
    service = spec.integrations.pagerduty.service if spec.integrations.pagerduty else None
    return read_notifications(session.slack(), session.pagerduty(), channels=alert_channels(spec), service=service,
                              names=names, since=since, sentry_bot_user=spec.integrations.slack.sentry_bot_user)


def _backtest_and_notifications(session, spec: Spec, days: float):
    calls_before = session.api_calls()
    alerts = live_alerts(session.sentry, spec)
    report = backtest(session.sentry, spec, days=days, now=session.now, alerts=alerts)
    # Read after Sentry: what its rules sent by now (the sandbox resolves lazily, on Sentry reads).
    seen = notifications_for(session, spec, [a.name for a in alerts], report.start)
    add_actuals(report, seen)
    report.api_calls = session.api_calls() - calls_before  # Sentry, Slack and PagerDuty together
    return report, seen


def backtest_with_actuals(session, spec: Spec, days: float) -> BacktestReport:
    return _backtest_and_notifications(session, spec, days)[0]


def alerts(session, spec: Spec, days: float) -> AlertsReview:
    report, seen = _backtest_and_notifications(session, spec, days)
    review = review_alerts(report, seen)
    review.api_calls = report.api_calls
    return review


def thresholds(session, spec: Spec, weeks: int) -> ThresholdReview:
    return review_thresholds(session.sentry, spec, weeks=weeks, now=session.now)


def failures(session, spec: Spec, weeks: int) -> FailureTrend:
    return review_failures(session.sentry, spec, weeks=weeks, now=session.now)
