"""The backtest finds exactly the firings it should: the replay on hand-made counts, and end to end
against the sandbox (events stored at chosen times, read back through events-timeseries), where its
answer must equal the sandbox alert engine's own firings."""

from __future__ import annotations

import math

import pytest

from paymon.reviews import backtest as bt
from paymon.reviews.replay import replay_across_events, replay_per_issue
from paymon.reviews.session import ReviewSession
from paymon.rules.model import Alert
from paymon.sandbox.server import SandboxServer
from paymon.sandbox.world import golden_world
from paymon.clients.sentry.client import SentryClient
from paymon.config.spec import load_spec
from paymon.config.target import Target

NOON = 1_795_000_000 // 86400 * 86400 + 12 * 3600  # a UTC noon; minutes are multiples of 60
M = 60


def alert(threshold=10, window=300, counting="across_events", repeat=None, comparator=">") -> Alert:
    return Alert(name="A", source="test", generation="workflow", enabled=True, environment="production",
                 event_types=frozenset({"error", "default"}), levels=frozenset(), filter=None, query="",
                 aggregate="count()", comparator=comparator, thresholds={"critical": float(threshold)},
                 window_seconds=window, counting=counting, repeat_minutes=repeat)


# --- the replay, on counts per minute ----------------------------------------------------------------

def test_ten_events_do_not_fire_eleven_do():
    assert replay_across_events(alert(), {NOON: 10}).firings == []
    assert replay_across_events(alert(), {NOON: 10}).peak == 10
    eleven = replay_across_events(alert(), {NOON: 11})
    assert [(f.at, f.value) for f in eleven.firings] == [(NOON + M, 11.0)]
    assert eleven.resolutions == 1


def test_greater_or_equal_fires_at_ten():
    assert len(replay_across_events(alert(comparator=">="), {NOON: 10}).firings) == 1


def test_a_burst_split_across_two_fixed_five_minute_blocks_still_fills_one_rolling_window():
    # 12:04 and 12:05 fall in different 5-minute blocks, but [12:01, 12:06) holds both minutes.
    result = replay_across_events(alert(), {NOON + 4 * M: 6, NOON + 5 * M: 5})
    assert [(f.at, f.value) for f in result.firings] == [(NOON + 6 * M, 11.0)]


def test_a_burst_split_across_two_windows_never_fires():
    # 12:00 and 12:05 are never in one 5-minute window: the peak is 6, not 12.
    result = replay_across_events(alert(), {NOON: 6, NOON + 5 * M: 6})
    assert result.firings == [] and result.peak == 6 and result.matching_events == 12


def test_an_open_incident_does_not_fire_again_a_resolved_one_does():
    sustained = replay_across_events(alert(), {NOON: 11, NOON + 3 * M: 11})
    assert len(sustained.firings) == 1 and sustained.peak == 22
    again = replay_across_events(alert(), {NOON: 11, NOON + 20 * M: 11})
    assert [f.at for f in again.firings] == [NOON + M, NOON + 21 * M] and again.resolutions == 2


def test_per_issue_counts_one_issue_across_events_counts_all():
    per_issue = {"1": {NOON: 6}, "2": {NOON: 6}}
    merged = {NOON: 12}
    assert len(replay_across_events(alert(), merged).firings) == 1
    assert replay_per_issue(alert(counting="per_issue"), per_issue).firings == []
    fired = replay_per_issue(alert(threshold=5, counting="per_issue"), per_issue).firings
    assert sorted(f.issue for f in fired) == ["1", "2"]


def test_per_issue_window_counts_the_issue_s_events_in_the_window_ending_with_the_minute():
    per_issue = {"1": {NOON: 3, NOON + 4 * M: 3, NOON + 9 * M: 3}}
    fired = replay_per_issue(alert(threshold=5, counting="per_issue"), per_issue).firings
    # 12:04's window (11:59, 12:04] holds 12:00 and 12:04 (6); 12:09's (12:04, 12:09] only 12:09 (3).
    assert [(f.at, f.value) for f in fired] == [(NOON + 4 * M, 6.0)]


def test_action_interval_throttles_each_issue_on_its_own():
    any_occurrence = alert(threshold=0, window=None, counting="per_issue", repeat=30)
    per_issue = {"1": {NOON + m * M: 1 for m in (0, 10, 29, 31, 70)}, "2": {NOON + 10 * M: 1}}
    fired = replay_per_issue(any_occurrence, per_issue).firings
    assert [(f.issue, (f.at - NOON) / M) for f in fired] == [("1", 0), ("2", 10), ("1", 31), ("1", 70)]
    no_interval = replay_per_issue(alert(threshold=0, window=None, counting="per_issue"), per_issue)
    assert len(no_interval.firings) == 6


# --- noisy and blind ----------------------------------------------------------------------------------

def _judged(counts, threshold=10, limit=5.0):
    a = alert(threshold=threshold)
    result = bt.AlertBacktest("A", "test", "across_events", bt.describe_condition(a), a.threshold)
    replay = replay_across_events(a, counts)
    result.firings, result.would_fire = replay.firings, len(replay.firings)
    result.peak, result.matching_events = replay.peak, replay.matching_events
    bt.judge(result, a, limit, 0.5)
    return result


def test_more_firings_than_the_limit_is_noisy_the_limit_itself_is_not():
    five = {NOON + k * 3600: 11 for k in range(5)}
    six = {NOON + k * 3600: 11 for k in range(6)}
    assert not _judged(five).noisy
    assert _judged(six).noisy and _judged(six).flags == ["noisy"]


def test_matching_events_far_below_the_threshold_is_blind():
    assert _judged({NOON: 4}).blind          # peak 4 < 0.5 x 10
    assert not _judged({NOON: 5}).blind      # 5 is near enough
    assert not _judged({}).blind             # nothing happened: nothing to miss


# --- end to end against the sandbox -------------------------------------------------------------------

def _event(at: float, error_type: str = "CardDeclinedError") -> dict:
    return {"level": "error", "environment": "production", "tags": {"payment_flow": "checkout"},
            "exception": {"values": [{"type": error_type, "value": "declined"}]}, "timestamp": at}


@pytest.fixture
def sandbox():
    world = golden_world("workflow")
    world["app"]["history"] = {}
    world["sentry"]["knobs"]["page_size"] = 100
    with SandboxServer(world) as server:
        yield server


def _client(server) -> SentryClient:
    return SentryClient(Target("sandbox", sandbox=server.describe()).sentry(), deadline=5)


def test_backtest_of_the_sandbox_equals_its_alert_engine(sandbox):
    spec = load_spec("monitoring.yaml")
    base = math.floor(sandbox.clock.now() / 3600) * 3600 - 6 * 3600
    times = []
    times += [base + 10 + 4 * i for i in range(10)]                                  # 10 in a minute: no
    times += [base + 3600 + 5 + 4 * i for i in range(11)]                            # 11 in a minute: fires
    times += [base + 7200 + 4 * M + 10 + 5 * i for i in range(6)]                    # 6 at 12:04 ...
    times += [base + 7200 + 5 * M + 10 + 5 * i for i in range(5)]                    # + 5 at 12:05: fires
    times += [base + 10800 + 5 + 5 * i for i in range(6)]                            # 6 at 12:00 ...
    times += [base + 10800 + 5 * M + 40 + 3 * i for i in range(6)]                   # + 6 at 12:05: no
    sandbox.sentry.store_events([_event(t) for t in times], received=times)
    engine = [f for f in sandbox.sentry.alert_firings if f.alert == "Payment Failure Rate Spike"
              and f.level == "critical"]
    with _client(sandbox) as client:
        report = bt.backtest(client, spec, days=1, now=sandbox.clock.now())
    payment = report.alert("Payment Failure Rate Spike")
    assert payment.would_fire == len(engine) == 2
    assert [f.at for f in payment.firings] == [base + 3600 + M, base + 7200 + 6 * M]
    assert payment.peak == 11 and payment.matching_events == len(times)
    # The limit is 5 a week, pro rata: 5/7 for one day, so two firings in a day are noisy.
    assert report.noisy_limit == pytest.approx(5 / 7) and payment.noisy and not payment.blind
    # Counts per minute, never events: one events-timeseries request per replayed alert (a day is
    # one chunk), no event listing; the rest of the calls read the alerts.
    replayed = [a for a in report.alerts if a.replayed]
    assert sandbox.sentry.request_count(r"/events-timeseries/$") == len(replayed) == 8
    assert sandbox.sentry.request_count(r"/events/$") == 0
    assert report.api_calls == len(sandbox.sentry.requests) == 17
    assert {a.name for a in report.alerts if not a.replayed} == {b.name for b in spec.performance.budgets}


def test_a_week_of_generated_history_backtests_to_the_engine_s_firings(sandbox):
    from paymon.reviews import run
    from paymon.sandbox.history import load_sandbox_history

    spec = load_spec("monitoring.yaml")
    load_sandbox_history(sandbox, days=7, seed=7, transaction_days=7)
    engine = {}
    for firing in sandbox.sentry.alert_firings:
        if firing.level == "critical":
            engine[firing.alert] = engine.get(firing.alert, 0) + 1
    with _client(sandbox) as client:
        session = ReviewSession(Target("sandbox", sandbox=sandbox.describe()), client, sandbox.clock.now())
        report = run.backtest_with_actuals(session, spec, days=7)
    would = {a.name: a.would_fire for a in report.alerts if a.replayed and a.would_fire}
    assert would == {"Payment Failure Rate Spike": 1, "Webhook Processing Failure": 2,
                     "Webhook Signature Verification Failure Spike": 1, "Reconciliation Discrepancy Detected": 1}
    assert would == {name: n for name, n in engine.items() if name in would}
    usage = report.alert("Usage Reporting Failure Rate")
    assert (usage.would_fire, usage.peak, usage.matching_events, usage.blind) == (0, 3, 3, False)
    # What reached Slack / PagerDuty: the engine's firings (the golden Slack world adds one older post).
    assert report.alert("Webhook Processing Failure").actual == 2
    assert report.alert("Reconciliation Discrepancy Detected").actual == 1
    assert bt.findings(report) == []
