"""§7 Monitoring Checklist, after deployment and ongoing: the reviews the guide asks for, from the
events Sentry really received and the notifications Slack and PagerDuty really got (paymon.reviews).

- Post-Deployment: "Verify no false positives from alert rules" — each alert replayed over the last
  week: none would fire more often than monitoring.yaml's `backtest.noisy_firings_per_week`, and
  none is blind (its events occurred, its peak never came near its threshold).
- Ongoing: "Weekly review of payment failure trends" (last week over `reviews.failure_trend.max_ratio`
  times the week before is a finding), "Monthly review of alert rule effectiveness" (every alert
  that fired reached someone), "Quarterly review of performance thresholds" (a budget breached in
  more than `reviews.budgets.max_breached_share` of the weeks is a finding), "Update runbook as new
  issues discovered" (an alert that fired since its runbook section last changed, by the file's
  history and Sentry's incident log, is listed; from `runbook.update_after_firings` on, a finding).

Scheduled: these run only with `--reviews` (the scheduled CI job); each attaches its plot and tables.
"""

import warnings

import pytest

from fixtures.outcome import ReviewWarning

from paymon.reviews import backtest, run
from paymon.reporting.review_attach import attach

pytestmark = pytest.mark.scheduled


def _fail(lines: list[str]) -> None:
    __tracebackhide__ = True
    if lines:
        pytest.fail(f"{len(lines)} finding{'s' if len(lines) > 1 else ''}\n" + "\n".join(f"  - {l}" for l in lines),
                    pytrace=False)


@pytest.mark.criterion("Verify no false positives from alert rules")
def test_no_alert_would_have_been_noisy_or_blind_last_week(reviews, spec, record_property):
    report = run.backtest_with_actuals(reviews, spec, days=7)
    attach("backtest", report)
    record_property("backtest_api_calls", report.api_calls)
    for alert in report.alerts:
        if alert.replayed:
            record_property(f"would_fire[{alert.name}]", alert.would_fire)
    _fail(backtest.findings(report))


@pytest.mark.criterion("Monthly review of alert rule effectiveness")
def test_every_alert_that_fired_last_month_reached_someone(reviews, spec):
    review = run.alerts(reviews, spec, days=30)
    attach("alerts", review)
    _fail([f"{a.name}: fired {a.fired} times in {review.days:g} days, none reached Slack or PagerDuty"
           for a in review.alerts if a.reached_no_one])


@pytest.mark.criterion("Quarterly review of performance thresholds")
def test_performance_budgets_fit_the_last_quarter(reviews, spec, request):
    """A budget breached (monitoring.yaml `reviews.budgets`: its level) in more than the declared
    share of the quarter's weeks is a finding (fails or warns, as declared); a budget to revisit or
    tighten that is not one is a warning with the suggested budget."""
    from paymon.reviews.thresholds import budget_findings

    review = run.thresholds(reviews, spec, weeks=13)
    attach("thresholds", review)
    findings = budget_findings(review, spec.reviews.budgets)
    _fail_or_warn(request, findings, spec.reviews.budgets.outcome)
    flagged = {line.split(":", 1)[0] for line in findings}
    suggestions = [b for b in review.budgets if b.verdict in ("revisit", "tighten") and b.transaction not in flagged]
    if suggestions:
        request.node.user_properties.append(("verdict", "warning"))
        for budget in suggestions:
            warnings.warn(ReviewWarning(f"warning: {budget.transaction}: {budget.verdict}: {budget.reasoning}"),
                          stacklevel=1)


@pytest.mark.criterion("Weekly review of payment failure trends")
def test_payment_failure_trend_reviewed(reviews, spec, record_property, request):
    """Payment failures of the last 7 complete days against the 7 before: more than
    `reviews.failure_trend.max_ratio` times as many (and at least `min_failures`) is a finding."""
    from paymon.reviews.failures import trend_findings, week_over_week

    trend = run.failures(reviews, spec, weeks=4)
    attach("failures", trend)
    record_property("payment_failures", sum(trend.totals))
    change = week_over_week(trend)
    if change is not None:
        record_property("payment_failures_last_week", change.last_week)
        record_property("payment_failures_week_before", change.week_before)
    _fail_or_warn(request, trend_findings(trend, spec.reviews.failure_trend), spec.reviews.failure_trend.outcome)


@pytest.mark.criterion("Update runbook as new issues discovered")
def test_runbook_updated_after_alerts_fired(reviews, spec, pytestconfig, request, record_property):
    """Each alert's firings (Sentry's incident log, the last 90 days) against when its runbook
    section last changed (GitLab's blame of the file): firings after the change are issues the
    runbook has not learnt from. Issue alerts keep no incident log and are not judged."""
    from fixtures.plugin import _spec_path
    from paymon.clients.runbook import read_runbook, read_runbook_history
    from paymon.findings.incident_log import firing_times
    from paymon.findings.runbook import parse_runbook, update_findings
    from paymon.findings.snapshot import SentrySnapshot

    settings = reviews.target.runbook(spec.runbook, str(_spec_path(pytestconfig).parent))
    runbook = parse_runbook(read_runbook(settings).text)
    stamps = read_runbook_history(settings)
    snapshot = SentrySnapshot(reviews.sentry, spec)
    firings = {}
    for alert_spec in spec.alerts:
        alert = snapshot.alert(alert_spec.name)
        firings[alert_spec.name] = None if alert is None else firing_times(
            alert, reviews.sentry, snapshot.project["id"], reviews.now - 90 * 86400, reviews.now)
    lines, listed = update_findings(spec, runbook, stamps, firings, spec.runbook.update_after_firings)
    record_property("runbook_alerts_fired_since_their_section_changed",
                    ", ".join(f"{u.alert} ({len(u.fired_at)})" for u in listed) or "none")
    record_property("runbook_alerts_not_judged", ", ".join(n for n, f in firings.items() if f is None) or "none")
    from paymon.reporting.measurements import MEASUREMENT_PROPERTY, encode

    for unlearnt in listed:  # the weekly page lists them
        record_property(MEASUREMENT_PROPERTY, encode(unlearnt.measurement()))
    _fail_or_warn(request, lines, spec.runbook.update_outcome)


def _fail_or_warn(request, lines: list[str], outcome: str) -> None:
    """monitoring.yaml's `reviews.*.outcome`: a finding fails the scheduled run, or warns."""
    __tracebackhide__ = True
    if outcome == "fail":
        _fail(lines)
    elif lines:
        request.node.user_properties.append(("verdict", "warning"))
        for line in lines:
            warnings.warn(ReviewWarning(f"warning: {line}"), stacklevel=2)
