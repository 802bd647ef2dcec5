"""The reviews give the expected numbers on a history the test controls, the sandbox history is
deterministic and realistic, and the commands fail with one line on bad input."""

from __future__ import annotations

import datetime
import itertools
import json
import math
import statistics

import pytest

from paymon import cli
from paymon.probes.latency import order_statistic_ranks
from paymon.reviews import run
from paymon.reviews.failures import review_failures
from paymon.reviews.session import ReviewSession
from paymon.reviews.thresholds import review_thresholds
from paymon.sandbox.history import (
    CHECKOUT,
    acknowledge_incidents,
    activity,
    generate_history,
    transaction,
)
from paymon.sandbox.server import SandboxServer
from paymon.sandbox.world import golden_world
from paymon.clients.sentry.client import SentryClient
from paymon.config.spec import load_spec
from paymon.config.target import Target

DAY, WEEK = 86400, 7 * 86400
SPEC = load_spec("monitoring.yaml")


def _world(slack_active: bool = True) -> dict:
    world = golden_world("workflow")
    world["app"]["history"] = {}  # only what each test stores
    world["pagerduty"]["knobs"]["acknowledge_after"] = None  # the tests script the acknowledgements
    if not slack_active:
        for integration in world["sentry"]["integrations"]:
            if (integration.get("provider") or {}).get("key") == "slack":
                integration["status"] = "disabled"
    return world


@pytest.fixture
def sandbox():
    with SandboxServer(_world()) as server:
        yield server


def _session(server) -> ReviewSession:
    target = Target("sandbox", sandbox=server.describe())
    return ReviewSession(target, SentryClient(target.sentry(), deadline=5), server.clock.now())


# --- thresholds ------------------------------------------------------------------------------------

def test_threshold_review_numbers(sandbox):
    import random

    rng = random.Random(1)
    now = sandbox.clock.now()
    start = now - 2 * WEEK
    older = [10.0 * i for i in range(1, 101)]       # 10 .. 1000 ms
    newer = [5.0 * i for i in range(1, 101)]        # 5 .. 500 ms
    items = [transaction(start + DAY + 60 * i, "/api/checkout/pro", d, rng) for i, d in enumerate(older)]
    items += [transaction(start + WEEK + DAY + 60 * i, "/api/checkout/pro", d, rng) for i, d in enumerate(newer)]
    sandbox.sentry.store_events([i.payload for i in items], item_type="transaction", received=[i.at for i in items])
    with _session(sandbox).sentry as client:
        review = review_thresholds(client, SPEC, weeks=2, now=now)
    pro = next(b for b in review.budgets if b.transaction == "/api/checkout/pro")
    first, second = pro.weeks
    # Linear interpolation between closest ranks (Sentry's quantile): p95 of 10..1000 = 950 + 0.05 x 10.
    ms = pytest.approx  # durations travel as start/end timestamps: equal to a microsecond
    assert (first.count, first.p50, first.p95, first.p99) == (100, ms(505.0), ms(950.5), ms(990.1))
    assert (second.count, second.p50, second.p95, second.p99) == (100, ms(252.5), ms(475.25), ms(495.05))
    ranks = order_statistic_ranks(100)
    assert (first.p95_low, first.p95_high) == (ms(older[ranks.lower - 1]), ms(older[ranks.upper - 1]))
    assert (first.breach, second.breach) == ("warning", "ok")
    assert (pro.breached_warning, pro.breached_critical) == (1, 0)
    # Highest p95 of the last four weeks (950.5) + 20%, rounded up to 50 ms; critical keeps the 2x ratio.
    assert (pro.suggested_warning, pro.suggested_critical, pro.verdict) == (1150.0, 2300.0, "revisit")
    assert "1 of 2 weeks above the warning budget (500 ms)" in pro.reasoning
    quiet = next(b for b in review.budgets if b.transaction == "/api/webhooks/lemonsqueezy")
    assert quiet.verdict == "no data" and all(w.breach == "no data" for w in quiet.weeks)
    # One table query per week, one interval query per week with data.
    assert review.api_calls == 2 + 2


# --- failure trends --------------------------------------------------------------------------------

def _failure(at: float, error_type: str, flow: str = "checkout", environment: str = "production") -> dict:
    return {"level": "error", "environment": environment, "tags": {"payment_flow": flow},
            "exception": {"values": [{"type": error_type, "value": "x"}]}, "timestamp": at}


def test_failure_review_counts_per_day_and_type(sandbox):
    now = sandbox.clock.now()
    today = math.floor(now / DAY) * DAY
    events = [(today - 2 * DAY + 3600 * h, "CardDeclinedError") for h in (1, 2, 3)]
    events += [(today - 2 * DAY + 7200, "GatewayTimeoutError"), (today - DAY + 600, "FraudSuspectedError"),
               (today - DAY + 900, "FraudSuspectedError")]
    payloads = [_failure(t, kind) for t, kind in events]
    payloads += [_failure(today - DAY + 1000, "CardDeclinedError", flow="webhook"),           # not widget 2's
                 _failure(today - DAY + 1100, "CardDeclinedError", environment="staging")]     # not production
    times = [t for t, _ in events] + [today - DAY + 1000, today - DAY + 1100]
    order = sorted(range(len(times)), key=times.__getitem__)
    sandbox.sentry.store_events([payloads[i] for i in order], received=[times[i] for i in order])
    with _session(sandbox).sentry as client:
        trend = review_failures(client, SPEC, weeks=1, now=now)
    assert len(trend.days) == 8
    dates = [datetime.date.fromisoformat(day) for day in trend.days]
    assert [later - earlier for earlier, later in itertools.pairwise(dates)] == [datetime.timedelta(days=1)] * 7
    at = {day: i for i, day in enumerate(trend.days)}
    two, one = trend.days[-3], trend.days[-2]
    assert trend.counts == {
        "CardDeclinedError": [3 if d == two else 0 for d in trend.days],
        "FraudSuspectedError": [2 if d == one else 0 for d in trend.days],
        "GatewayTimeoutError": [1 if d == two else 0 for d in trend.days],
    }
    assert trend.totals[at[two]] == 4 and sum(trend.totals) == 6
    assert trend.query == "event.type:error payment_flow:checkout"


# --- alert effectiveness ---------------------------------------------------------------------------

def _webhook(at: float) -> dict:
    return {"message": "Webhook processing failed", "level": "error", "environment": "production",
            "tags": {"webhook": "true"}, "timestamp": at}


def _review_alerts(server, burst_at: float):
    times = [burst_at + 20 * i for i in range(6)]  # 6 > 5 in 10 minutes: one firing
    server.sentry.store_events([_webhook(t) for t in times], received=times)
    pagerduty = server.backends["pagerduty"]
    acknowledge_incidents(pagerduty, since=burst_at, until=burst_at + 3600, seed=1, share=1.0, minutes=(4.0, 4.0))
    session = _session(server)
    with session.sentry:
        return run.alerts(session, SPEC, days=1)


def test_alert_review_joins_sentry_slack_and_pagerduty(sandbox):
    burst = math.floor(sandbox.clock.now() / 60) * 60 - 6 * 3600
    review = _review_alerts(sandbox, burst)
    webhook = review.alert("Webhook Processing Failure")
    assert (webhook.fired, webhook.delivered, webhook.acknowledged, webhook.resolved) == (1, 1, 1, 1)
    assert webhook.median_time_to_ack_s == pytest.approx(240, abs=1)
    assert webhook.pages == 1
    # Its messages also say "webhook": the security alert's filter does not match them (level warning).
    quiet = review.alert("Usage Reporting Failure Rate")
    assert (quiet.fired, quiet.delivered, quiet.reached_no_one) == (0, 0, False)
    assert review.reached_no_one == []


def test_an_alert_that_fired_but_reached_no_one_is_listed():
    with SandboxServer(_world(slack_active=False)) as server:
        now = server.clock.now()
        burst = math.floor(now / 60) * 60 - 3 * 3600
        times = [burst + 5 * i for i in range(11)]
        server.sentry.store_events([_failure(t, "GatewayTimeoutError") for t in times], received=times)
        review = _review_alerts(server, burst + 3600)
    payment = review.alert("Payment Failure Rate Spike")
    assert (payment.fired, payment.delivered, payment.reached_no_one) == (1, 0, True)
    assert review.reached_no_one == ["Payment Failure Rate Spike"]
    # The webhook alert still paged (PagerDuty works); Slack carried nothing.
    assert review.alert("Webhook Processing Failure").delivered == 1


# --- the sandbox history ---------------------------------------------------------------------------

END = 20_784 * 86400.0  # a UTC midnight


def test_history_is_deterministic_from_its_seed():
    one = generate_history(seed=3, days=7, end=END, transaction_days=7)
    again = generate_history(seed=3, days=7, end=END, transaction_days=7)
    other = generate_history(seed=4, days=7, end=END, transaction_days=7)
    assert [(i.at, i.payload) for i in one] == [(i.at, i.payload) for i in again]
    assert [i.at for i in one] != [i.at for i in other]
    assert all(a.at <= b.at for a, b in itertools.pairwise(one))


def test_history_has_quiet_nights_bursts_and_a_slower_checkout_after_the_deploy():
    items = generate_history(seed=7, days=7, end=END, transaction_days=14, deploy_days_ago=3)
    errors = [i for i in items if i.kind == "payment_error"]
    night = sum(1 for i in errors if (i.at % DAY) / 3600 < 6)
    afternoon = sum(1 for i in errors if 12 <= (i.at % DAY) / 3600 < 18)
    assert afternoon > 4 * night and activity(END - DAY + 3 * 3600) < activity(END - DAY + 15 * 3600)
    kinds = {i.kind for i in items}
    assert {"checkout_burst", "webhook_outage", "signature_burst", "usage_failure", "reconciliation"} <= kinds
    deploy = END - 3 * DAY

    def median(selected):
        return statistics.median((i.payload["timestamp"] - i.payload["start_timestamp"]) * 1000 for i in selected)

    checkout = [i for i in items if i.kind == "transaction" and i.payload["transaction"] in CHECKOUT]
    before, after = [i for i in checkout if i.at < deploy], [i for i in checkout if i.at >= deploy]
    assert median(after) > 1.4 * median(before)


# --- the commands ----------------------------------------------------------------------------------

def test_bad_input_is_one_line_and_exit_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["backtest", "--days", "0"])
    assert exit_info.value.code == 2
    assert "expected a finite positive number" in capsys.readouterr().err


def test_live_without_a_token_says_which_variable(monkeypatch, capsys):
    monkeypatch.delenv("SENTRY_AUTH_TOKEN", raising=False)
    assert cli.main(["review", "failures", "--target", "live"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SENTRY_AUTH_TOKEN is not set" in err[0]


def test_backtest_json_against_the_sandbox_history(capsys):
    assert cli.main(["backtest", "--days", "7", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    by_name = {a["name"]: a for a in report["alerts"]}
    assert by_name["Payment Failure Rate Spike"]["would_fire"] == 1
    assert by_name["Webhook Processing Failure"]["would_fire"] == 2
    assert by_name["Usage Reporting Failure Rate"]["flags"] == []
    assert report["api_calls"] > 0


def test_sandbox_serve_takes_a_history():
    args = cli.build_parser().parse_args(["sandbox", "serve", "--history", "7d", "--history-seed", "3"])
    assert (args.history, args.history_seed) == (7, 3)
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["sandbox", "serve", "--history", "2h"])


# --- reviews that can fail (issue 15 item 5): a defined finding on a generated history -------------

def _history_session(server, **shape):
    from paymon.sandbox.history import load_sandbox_history

    load_sandbox_history(server, days=31, seed=7, **shape)
    return _session(server)


@pytest.mark.parametrize("factor, finding", [(1.0, False), (2.5, True)])
def test_failure_trend_finds_a_week_worse_than_the_one_before(factor, finding):
    from paymon.reviews.failures import trend_findings, week_over_week

    with SandboxServer(_world()) as server:
        session = _history_session(server, transaction_days=31, recent_failure_factor=factor)
        with session.sentry as client:
            trend = review_failures(client, SPEC, weeks=4, now=session.now)
    change = week_over_week(trend)
    lines = trend_findings(trend, SPEC.reviews.failure_trend)
    assert change.last_week >= SPEC.reviews.failure_trend.min_failures
    assert bool(lines) == finding, (change, lines)
    if finding:
        assert change.ratio > SPEC.reviews.failure_trend.max_ratio
        assert "expected at most x1.5 (reviews.failure_trend.max_ratio)" in lines[0]
    else:
        assert change.ratio <= SPEC.reviews.failure_trend.max_ratio


def test_failure_trend_rule_edges():
    from paymon.config.spec import FailureTrendRule
    from paymon.reviews.failures import FailureTrend, trend_findings

    days = [f"2026-11-{d:02d}" for d in range(1, 16)]  # 15 days; the last is the incomplete one
    start = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC).timestamp()
    end = start + 14 * DAY + 3600

    def trend(before: int, last: int) -> FailureTrend:
        per_day = [before // 7] * 7 + [last // 7] * 7 + [999]
        return FailureTrend(start, end, 2, "q", days, {"CardDeclinedError": per_day})

    rule = FailureTrendRule(max_ratio=1.5, min_failures=20)
    assert trend_findings(trend(70, 105), rule) == []              # x1.5 exactly: not above
    assert len(trend_findings(trend(70, 112), rule)) == 1          # x1.6
    assert trend_findings(trend(0, 14), rule) == []                # too few to call a trend
    assert "from none" in trend_findings(trend(0, 21), rule)[0]    # from nothing to 21
    short = FailureTrend(start, start + 5 * DAY, 1, "q", days[:6], {})
    assert "fewer than 14 complete days" in trend_findings(short, rule)[0]


@pytest.mark.parametrize("shape, flagged", [
    ({}, set()),  # the deploy 3 days ago: one slow week of 13 is not a finding
    ({"deploy_days_ago": 35.0, "deploy_slowdown": 2.5}, set(CHECKOUT)),  # 5 of 13 weeks over 500 ms
])
def test_budget_review_finds_a_budget_breached_in_too_many_weeks(shape, flagged):
    from paymon.reviews.thresholds import budget_findings

    with SandboxServer(_world()) as server:
        session = _history_session(server, **shape)
        with session.sentry as client:
            review = review_thresholds(client, SPEC, weeks=13, now=session.now)
    lines = budget_findings(review, SPEC.reviews.budgets)
    assert {line.split(":", 1)[0] for line in lines} == flagged, lines
    for line in lines:
        assert "expected at most 25%" in line
