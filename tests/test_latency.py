"""paymon.probes.latency and `paymon probe`: percentiles, the order-statistic CI, verdicts, the schedule.

Statistics are checked against brute-force exact arithmetic (fractions) and a seeded coverage
simulation; the open-loop schedule runs on a modelled clock (its timeline computed from each
request's work) or, for the threaded timetable, on a fake clock, so nothing here waits for real
time except a few thread tests and the CLI runs against a local uvicorn app.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import socket
import threading
import time
from fractions import Fraction
from itertools import accumulate
from pathlib import Path

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from paymon import cli
from paymon.probes.latency import (
    COULD_NOT_CHECK, CRITICAL, FAIL, INCONCLUSIVE, OK, PASS, WARNING, Attempt, Budget, ModelledClock, Outcome,
    binomial_table, decide, default_edges, estimate_samples_needed, histogram, in_flight_slots, judge, measure,
    min_samples_for_upper_bound, nearest_rank, order_statistic_ranks, peak_in_flight, percentile,
    predicted_interval, run_schedule, summarize,
)

CHECKOUT = Budget(500, 1000, "checkout")
REPO = Path(__file__).resolve().parent.parent


# --- clocks that only move when told -------------------------------------------------------------

class FakeClock:
    """The threaded timetable's clock: it moves only when the timetable sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def synthetic_sender(clock: ModelledClock, latencies_ms, outcomes=None):
    """A `send` that takes the next latency off the list (as the modelled clock's work) and returns an outcome."""
    latencies = iter(latencies_ms)
    results = iter(outcomes) if outcomes is not None else None

    def send():
        clock.served(next(latencies) / 1000)
        return next(results) if results is not None else OK

    return send


def run_synthetic(latencies_ms, *, rate=10.0, warmup=0, budget=CHECKOUT, outcomes=None, slots=4):
    """The open-loop schedule on a modelled clock: each request lasts exactly its latency."""
    clock = ModelledClock()
    samples = len(latencies_ms) - warmup
    report = measure(synthetic_sender(clock, latencies_ms, outcomes), samples=samples, rate=rate, warmup=warmup,
                     slots=slots, budget=budget, modelled=clock)
    return report, clock


def attempts_from(latencies_ms):
    """Attempts sent exactly on time, far apart: latency == service time."""
    return [Attempt(intended=i * 10.0, sent=i * 10.0, done=i * 10.0 + x / 1000, outcome=OK)
            for i, x in enumerate(latencies_ms)]


# --- percentiles ---------------------------------------------------------------------------------

def test_nearest_rank_is_exact_ceiling():
    assert nearest_rank(100, 0.95) == 95  # 0.95 * 100 in floats is not a reliable 95.0
    assert nearest_rank(20, 0.95) == 19
    assert nearest_rank(21, 0.95) == 20  # ceil(19.95)
    assert nearest_rank(100, 0.99) == 99
    assert nearest_rank(10, 0.5) == 5
    assert nearest_rank(1, 0.5) == 1
    for n in range(1, 2000):
        assert nearest_rank(n, 0.95) == -(-19 * n // 20)


def test_percentile_of_one_to_hundred():
    values = list(range(1, 101))
    assert [percentile(values, q) for q in (0.5, 0.95, 0.99, 1.0)] == [50, 95, 99, 100]


# --- binomial and the CI ranks -------------------------------------------------------------------

def exact_ranks(n: int):
    """Brute force in integers, B ~ Binomial(n, 19/20), tails of 1/40: P(B = k) = C(n,k) 19^k / 20^n.

    l: largest with P(B < l) <= 1/40; u: smallest u <= n with P(B >= u) <= 1/40.
    """
    weights = [math.comb(n, k) * 19 ** k for k in range(n + 1)]  # P(B = k) * 20^n
    whole = 20 ** n
    below = list(accumulate(weights, initial=0))  # below[k] = P(B < k) * 20^n
    lower = max((l for l in range(1, n + 1) if 40 * below[l] <= whole), default=None)
    upper = min((u for u in range(1, n + 1) if 40 * (whole - below[u]) <= whole), default=None)
    return lower, upper


def test_binomial_table_matches_exact_pmf():
    n, p = 60, Fraction(19, 20)
    table = binomial_table(n, 0.95)
    for k in range(n + 1):
        exact = float(math.comb(n, k) * p ** k * (1 - p) ** (n - k))
        i = k - table.first
        approx = table.pmf[i] if 0 <= i < len(table.pmf) else 0.0
        assert approx == pytest.approx(exact, rel=1e-9, abs=1e-25)


def test_ranks_for_100_samples():
    ranks = order_statistic_ranks(100)
    assert (ranks.lower, ranks.upper) == (90, 100) == exact_ranks(100)
    # P(90 <= B < 100) for B ~ Binomial(100, 0.95), summed exactly
    exact = sum(math.comb(100, k) * Fraction(19, 20) ** k * Fraction(1, 20) ** (100 - k) for k in range(90, 100))
    assert ranks.coverage == pytest.approx(float(exact), abs=1e-12)
    assert ranks.coverage >= 0.95


@pytest.mark.parametrize("ns", [range(1, 160), [200, 333, 500, 1000]])
def test_ranks_match_brute_force(ns):
    for n in ns:
        ranks = order_statistic_ranks(n)
        assert (ranks.lower, ranks.upper) == exact_ranks(n), n


def test_minimum_samples_for_an_upper_bound():
    assert min_samples_for_upper_bound() == 72  # two-sided 95%: 0.95^n <= 2.5%
    assert min_samples_for_upper_bound(two_sided=False) == 59  # one-sided 95%: 0.95^n <= 5%
    assert order_statistic_ranks(71).upper is None
    assert order_statistic_ranks(72).upper == 72
    assert order_statistic_ranks(1).lower is None and order_statistic_ranks(2).lower == 1


def test_ranks_for_large_n_are_near_the_normal_approximation():
    ranks = order_statistic_ranks(100_000)  # its speed: bench/sandbox_speed.py
    sigma = math.sqrt(100_000 * 0.95 * 0.05)
    assert abs(ranks.lower - (95_000 - 1.96 * sigma)) < 3
    assert abs(ranks.upper - (95_000 + 1.96 * sigma)) < 3
    assert 0.95 <= ranks.coverage < 0.952


def test_coverage_simulation():
    """Seeded: the interval holds the true p95 as often as its exact coverage says, and >= 95%.

    n = 112 is the hardest case up to 150 (exact coverage 95.3%, the closest to 95%). Ties
    (a discrete distribution) can only raise coverage: the interval is closed.
    """
    rng = random.Random(20240611)
    n, trials = 112, 2000
    ranks = order_statistic_ranks(n)
    assert ranks.coverage >= 0.95
    tolerance = 3 * math.sqrt(ranks.coverage * (1 - ranks.coverage) / trials)
    uniform, exp, log, gauss = rng.random, math.exp, math.log, rng.gauss
    distributions = {  # (one sample of n, the true p95)
        "exponential": (lambda: [-log(1.0 - uniform()) for _ in range(n)], -math.log(0.05)),
        "lognormal": (lambda: [exp(gauss(0.0, 1.0)) for _ in range(n)], math.exp(1.6448536269514722)),
        "uniform": (lambda: [uniform() for _ in range(n)], 0.95),
        # 10 ms 90%, 20 ms 7%, 30 ms 3%: the 95th percentile is 20, and ties are everywhere
        "discrete": (lambda: rng.choices((10, 20, 30), (90, 7, 3), k=n), 20),
    }
    observed = {}
    for name, (draw, true_p95) in distributions.items():
        hits = 0
        for _ in range(trials):
            sample = sorted(draw())
            hits += sample[ranks.lower - 1] <= true_p95 <= sample[ranks.upper - 1]
        observed[name] = hits / trials
    print(f"coverage at n={n}: exact {ranks.coverage:.4f}, observed {observed}")
    for name in ("exponential", "lognormal", "uniform"):
        assert abs(observed[name] - ranks.coverage) <= tolerance, (name, observed[name])
    assert observed["discrete"] >= ranks.coverage - tolerance
    continuous = [observed[name] for name in ("exponential", "lognormal", "uniform")]
    assert sum(continuous) / 3 >= 0.95


# --- verdicts ------------------------------------------------------------------------------------

def test_judge_boundaries():
    assert judge(100, 500, CHECKOUT) == PASS  # budgets are "> 500": exactly 500 passes
    assert judge(100, 500.1, CHECKOUT) == INCONCLUSIVE
    assert judge(500.1, 1000, CHECKOUT) == WARNING
    assert judge(1000, 1200, CHECKOUT) == INCONCLUSIVE  # lower bound must exceed critical
    assert judge(1000.1, None, CHECKOUT) == CRITICAL
    assert judge(600, None, CHECKOUT) == INCONCLUSIVE
    assert judge(None, 400, CHECKOUT) == PASS


def test_clear_pass():
    rng = random.Random(1)
    report = summarize(attempts_from([rng.uniform(100, 200) for _ in range(200)]), rate=1, budget=CHECKOUT)
    assert report.verdict == PASS
    assert report.p95_ci_ms[1] <= 200
    assert report.samples_needed is None


def test_clear_critical_even_from_few_samples():
    """No upper bound below 72 samples, but the lower bound alone can prove critical."""
    report = summarize(attempts_from([1500 + i for i in range(20)]), rate=1, budget=CHECKOUT)
    assert report.p95_ci_ms[1] is None
    assert report.verdict == CRITICAL
    assert report.p95_ci_ms[0] > 1000


def test_warning():
    rng = random.Random(2)
    report = summarize(attempts_from([rng.uniform(600, 800) for _ in range(200)]), rate=1, budget=CHECKOUT)
    assert report.verdict == WARNING


def test_straddle_is_inconclusive_with_samples_needed():
    rng = random.Random(3)
    values = [rng.uniform(0, 520) for _ in range(200)]  # p95 ~ 494: just under the 500 ms warning
    report = summarize(attempts_from(values), rate=1, budget=CHECKOUT)
    low, high = report.p95_ci_ms
    assert report.verdict == INCONCLUSIVE
    assert low <= 500 < high
    assert "straddles the warning budget" in report.reason
    needed = report.samples_needed
    assert isinstance(needed, int) and needed > 200
    ordered = sorted(values)
    assert judge(*predicted_interval(ordered, needed), CHECKOUT) != INCONCLUSIVE
    assert judge(*predicted_interval(ordered, needed - 1), CHECKOUT) == INCONCLUSIVE
    assert str(needed) in report.reason


def test_too_few_for_an_upper_bound_needs_72():
    report = summarize(attempts_from([100 + i for i in range(20)]), rate=1, budget=CHECKOUT)
    assert report.verdict == INCONCLUSIVE
    assert "72" in report.reason
    assert report.samples_needed == 72


def test_p95_on_the_budget_never_settles():
    # 199 values, the plug-in quantile at 0.95 (position 190 of 200) is exactly 500: every predicted
    # interval has lo < 500 < hi, however many samples
    values = [float(x) for x in range(311, 510)]
    assert estimate_samples_needed(values, CHECKOUT, cap=10_000) is None


# --- the decision: verdict x kind of run -> outcome ----------------------------------------------

def _report_with(verdict: str):
    """A report with that verdict against CHECKOUT (500 / 1000 ms), from fixed samples."""
    latencies = {PASS: [100.0] * 100, WARNING: [700.0] * 100, CRITICAL: [1500.0] * 20,
                 INCONCLUSIVE: [100.0] * 20}[verdict]
    report = summarize(attempts_from(latencies), rate=1, budget=CHECKOUT)
    assert report.verdict == verdict
    return report


@pytest.mark.parametrize("verdict, gate, canary", [
    (PASS, PASS, PASS),
    (WARNING, WARNING, WARNING),
    (CRITICAL, FAIL, FAIL),
    (INCONCLUSIVE, COULD_NOT_CHECK, WARNING),
])
def test_decision_table(verdict, gate, canary):
    report = _report_with(verdict)
    assert decide(report, canary=False).outcome == gate
    assert decide(report, canary=True).outcome == canary


def test_canary_inconclusive_is_a_warning_that_names_n_and_the_samples_needed():
    report = _report_with(INCONCLUSIVE)
    decision = decide(report, canary=True)
    assert decision.headline == "inconclusive at n=20"
    assert "fails only on what it proves" in decision.why
    assert report.samples_needed == 72 and "about 72 samples in total would settle it" in report.reason
    assert decide(report, canary=False).headline == INCONCLUSIVE


def test_every_request_failed_fails_either_way():
    failed = [Attempt(0.0, 0.0, 0.01, Outcome(ok=False, status=500))] * 5
    report = summarize(failed, rate=1, budget=CHECKOUT)
    for canary in (False, True):
        assert decide(report, canary=canary).outcome == FAIL
    assert decide(summarize(attempts_from([5.0] * 3), rate=1), canary=False).outcome == PASS  # no budget


# --- the schedule --------------------------------------------------------------------------------

def _schedule(latencies_ms, *, rate, slots):
    clock = ModelledClock()
    attempts, _ = run_schedule(synthetic_sender(clock, latencies_ms), samples=len(latencies_ms), rate=rate,
                               slots=slots, modelled=clock)
    return attempts


def test_open_loop_a_slow_request_does_not_delay_the_next_send():
    """10 ms schedule, 1 ms responses, one 1 s stall, 4 slots: every other request leaves on time
    and takes its own 1 ms; the stall is charged to the slow request alone."""
    latencies = [1.0] * 300
    latencies[10] = 1000.0
    attempts = _schedule(latencies, rate=100, slots=4)
    assert attempts[10].latency_ms == pytest.approx(1000)
    assert all(a.sent == a.intended and not a.queued for a in attempts)
    assert [a.latency_ms for i, a in enumerate(attempts) if i != 10] == pytest.approx([1.0] * 299)
    report = summarize(attempts, rate=100, slots=4)
    assert report.p95_ms == pytest.approx(1.0) and report.max_ms == pytest.approx(1000)
    assert report.slot_waits == 0 and report.late_sends == 0 and report.peak_in_flight == 2
    assert not any("in-flight" in note for note in report.notes)


def test_cap_reached_the_wait_counts_in_latency():
    """The same stall with one slot (the old one-at-a-time probe): the requests due during the stall
    wait for the slot, and each counts its wait (no coordinated omission)."""
    latencies = [1.0] * 300
    latencies[10] = 1000.0
    attempts = _schedule(latencies, rate=100, slots=1)
    assert attempts[10].latency_ms == pytest.approx(1000)
    # request 10+j was due at 100+10j ms; it went out when its predecessor finished, at 1100+(j-1) ms
    for j in (1, 2, 50, 100):
        assert attempts[10 + j].queued
        assert attempts[10 + j].latency_ms == pytest.approx(1000 - 9 * j, abs=1e-6)
        assert attempts[10 + j].service_ms == pytest.approx(1.0)
    report = summarize(attempts, rate=100, slots=1)
    # p95 sees the queue that a closed-loop probe (timing from the actual send) would hide
    assert report.p95_ms > 500
    assert report.service_p95_ms == pytest.approx(1.0)
    # lag of request 10+j is 999 - 9j ms: late (> 1 ms) for j = 1..110
    assert report.late_sends == 110 and report.slot_waits >= 110
    assert report.max_slot_wait_ms == pytest.approx(990.0)
    assert any("in-flight cap reached" in note and "all 1 in-flight slots busy" in note for note in report.notes)


def test_cap_reached_by_slow_requests_filling_every_slot():
    """Two slots at 10/s; requests 0 and 1 take 1 s: request 2 (due at 200 ms) waits until request 0
    is done at 1000 ms, request 3 (due at 300 ms) until request 2 is done; then the queue drains."""
    latencies = [1000.0, 1000.0] + [10.0] * 20
    attempts = _schedule(latencies, rate=10, slots=2)
    assert [a.queued for a in attempts[:2]] == [False, False]
    assert attempts[2].queued and attempts[2].sent == pytest.approx(1.0)
    assert attempts[2].latency_ms == pytest.approx(800 + 10)  # its 800 ms wait counts
    assert attempts[3].sent == pytest.approx(1.01) and attempts[3].latency_ms == pytest.approx(710 + 10)
    assert not attempts[-1].queued and attempts[-1].latency_ms == pytest.approx(10.0)
    report = summarize(attempts, rate=10, slots=2)
    assert report.peak_in_flight == 2 and report.slot_waits > 0
    assert report.max_slot_wait_ms == pytest.approx(800.0)
    assert any("all 2 in-flight slots busy" in note for note in report.notes)


def test_no_queueing_while_work_stays_under_slots_times_the_interval():
    """4 slots at 10/s: work of 390 ms never waits for a slot; work of 450 ms piles up."""
    under = _schedule([390.0] * 50, rate=10, slots=4)
    assert not any(a.queued for a in under)
    assert [a.latency_ms for a in under] == pytest.approx([390.0] * 50)
    over = _schedule([450.0] * 50, rate=10, slots=4)
    assert over[-1].queued and over[-1].latency_ms > over[10].latency_ms > 450


def test_slots_are_sized_for_rate_times_critical_and_capped():
    assert in_flight_slots(1, 0.5) == 1     # live PAYG create: 500 ms critical at 1/s
    assert in_flight_slots(1, 1.0) == 2     # live checkout: one due as the other reaches critical
    assert in_flight_slots(1, 2.0) == 3     # live webhook
    assert in_flight_slots(25, 1.0, cap=32) == 26
    assert in_flight_slots(25, 1.0) == 4    # the default cap
    with pytest.raises(ValueError):
        in_flight_slots(1, 1.0, cap=0)


def test_peak_in_flight_does_not_count_back_to_back_requests_as_overlap():
    back_to_back = [Attempt(0.0, 0.0, 1.0, OK), Attempt(1.0, 1.0, 2.0, OK)]
    overlapping = back_to_back + [Attempt(0.5, 0.5, 1.5, OK)]
    assert peak_in_flight(back_to_back) == 1 and peak_in_flight(overlapping) == 2


def test_threaded_timetable_sleeps_to_the_intended_times():
    """On the wall-clock path the timetable sleeps to each due time, however long sends take."""
    clock = FakeClock()
    attempts, interrupted = run_schedule(lambda: OK, samples=5, rate=10, clock=clock, sleep=clock.sleep)
    assert clock.sleeps == pytest.approx([0.1] * 4) and not interrupted
    assert [a.intended for a in attempts] == pytest.approx([0.0, 0.1, 0.2, 0.3, 0.4])


def test_threaded_slow_request_does_not_hold_back_the_next():
    """Request 0 does not return until request 2 has been sent: one request at a time would never
    get there (the wait below is a deadlock guard, not a time limit)."""
    third_sent = threading.Event()
    calls = 0
    lock = threading.Lock()

    def send():
        nonlocal calls
        with lock:
            calls += 1
            mine = calls
        if mine == 1:
            assert third_sent.wait(60), "request 2 was never sent while request 0 was in flight"
        if mine == 3:
            third_sent.set()

    attempts, _ = run_schedule(send, samples=4, rate=200, slots=4)
    assert third_sent.is_set()
    assert attempts[0].done >= attempts[2].sent and peak_in_flight(attempts) >= 2


@pytest.mark.wall_time  # a machine too loaded to wake the timetable within 30 ms would see no queue
def test_threaded_cap_makes_the_request_wait_and_counts_it():
    """One slot at 100/s, 30 ms requests: each waits for the slot, and the wait is in its latency."""
    attempts, _ = run_schedule(lambda: time.sleep(0.03), samples=3, rate=100, slots=1)
    assert not attempts[0].queued and attempts[1].queued and attempts[2].queued
    for before, after in zip(attempts, attempts[1:]):
        assert after.sent >= before.done  # one slot: never two in flight
        assert after.latency_ms == pytest.approx(after.lag_ms + after.service_ms)
    report = summarize(attempts, rate=100, slots=1)
    assert report.slot_waits == 2 and any("in-flight cap reached" in note for note in report.notes)


def test_threaded_send_failure_stops_the_run_and_is_raised():
    from paymon.probes.latency import ProbeUnreachable

    def send():
        raise ProbeUnreachable("http://app.invalid/x: ConnectError")

    with pytest.raises(ProbeUnreachable, match="ConnectError"):
        run_schedule(send, samples=50, rate=1000, slots=2)


def test_warmup_is_discarded_and_does_not_delay_the_schedule():
    latencies = [900.0, 700.0] + [10.0] * 50
    report, _ = run_synthetic(latencies, rate=10, warmup=2, budget=None)
    assert report.warmup_ms == pytest.approx([900.0, 700.0])  # open loop: the 2nd went out at 100 ms, on time
    assert report.samples == 50
    assert report.max_ms == pytest.approx(10.0)  # the schedule restarted: no queue from the cold start


def test_errors_are_counted_and_timeouts_are_censored_samples():
    n = 100
    latencies = [50.0] * n
    outcomes = [OK] * n
    for i in (5, 6, 7):
        outcomes[i] = Outcome(ok=False, status=500)
    for i in (20, 40):
        latencies[i] = 2000.0
        outcomes[i] = Outcome(ok=False, timed_out=True, error="timeout: ReadTimeout")
    report, _ = run_synthetic(latencies, rate=0.25, outcomes=outcomes)
    assert report.errors == 5
    assert report.errors_by_kind == {"HTTP 500": 3, "timeout": 2}
    assert report.timeouts == 2
    assert report.samples == 97  # 95 OK + 2 timeouts; the 500s are not latency samples
    assert report.max_ms == pytest.approx(2000.0)
    # the upper rank (97) lands on a timeout, a lower bound only: no upper bound, so no pass
    assert report.p95_ci_ms[1] is None
    assert report.verdict == INCONCLUSIVE
    assert any("lower bound" in note for note in report.notes)
    assert any("HTTP 500 x3" in note for note in report.notes)


def test_ctrl_c_keeps_what_was_measured():
    clock = ModelledClock()
    calls = 0

    def send():
        nonlocal calls
        calls += 1
        if calls == 4:
            raise KeyboardInterrupt
        clock.served(0.001)

    report = measure(send, samples=10, rate=10, modelled=clock)
    assert report.interrupted and report.samples == 3


# --- histogram and JSON --------------------------------------------------------------------------

def test_histogram_counts_and_edges():
    values = [1, 2, 2, 5, 9, 10, 700]
    buckets = histogram(values, [2, 5, 10])
    assert [(b.low, b.high, b.count) for b in buckets] == [
        (-math.inf, 2, 1), (2, 5, 2), (5, 10, 2), (10, math.inf, 2)]
    edges = default_edges([120.0, 180.0, 950.0], CHECKOUT)
    assert 500 in edges and 1000 in edges and edges[0] <= 120
    assert sum(b.count for b in histogram([120.0, 180.0, 950.0], edges)) == 3


def test_json_has_the_documented_keys():
    report, _ = run_synthetic([100.0] * 30, rate=10)
    data = json.loads(json.dumps(report.to_json(), allow_nan=False))
    for key in ("p50_ms", "p95_ms", "p99_ms", "p95_ci_ms", "samples", "errors", "verdict", "reason",
                "samples_needed", "in_flight_slots", "peak_in_flight", "slot_waits", "max_slot_wait_ms"):
        assert key in data
    assert data["p95_ci_ms"] == [100.0, None]
    assert data["verdict"] == INCONCLUSIVE and data["samples_needed"] == 72


# --- the CLI against a real HTTP server ----------------------------------------------------------

async def _timed(request: Request) -> JSONResponse:
    await asyncio.sleep(float(request.query_params.get("delay_ms", 0)) / 1000)
    return JSONResponse({"ok": True})


async def _echo(request: Request) -> JSONResponse:
    body = await request.body()
    good = body == b'{"event": "subscription_updated"}\n' and request.headers.get("x-probe") == "yes"
    return JSONResponse({"good": good}, status_code=200 if good else 400)


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # the test runner owns signals
        pass


@pytest.fixture(scope="module")
def app_url():
    app = Starlette(routes=[Route("/timed", _timed), Route("/echo", _echo, methods=["POST"])])
    # IPPROTO_TCP so asyncio sets TCP_NODELAY; otherwise responses wait ~40 ms for a delayed ACK
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    server = _Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "test server did not start"
        time.sleep(0.005)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    server.should_exit = True
    thread.join(timeout=5)
    sock.close()


@pytest.mark.wall_time  # 75 requests at 250/s (4 in flight at most): a loaded machine can push them past 250 ms
def test_cli_pass_table(app_url, capsys):
    code = cli.main(["probe", f"{app_url}/timed", "--samples", "75", "--rate", "250",
                           "--warning", "250", "--critical", "500"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "PASS" in out and "p95" in out and "histogram" in out


def test_cli_critical_json(app_url, capsys):
    code = cli.main(["probe", f"{app_url}/timed?delay_ms=20", "--samples", "12", "--rate", "40",
                           "--warning", "5", "--critical", "10", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 1
    assert data["verdict"] == CRITICAL and data["samples"] == 12 and data["errors"] == 0
    assert data["p95_ci_ms"][0] >= 20 and data["p95_ci_ms"][1] is None


def test_cli_post_body_file_is_sent_verbatim(app_url, tmp_path, capsys):
    body = tmp_path / "event.json"
    body.write_bytes(b'{"event": "subscription_updated"}\n')
    code = cli.main(["probe", f"{app_url}/echo", "--method", "post", "--body", f"@{body}",
                           "--header", "X-Probe: yes", "--samples", "3", "--rate", "100", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["errors"] == 0 and data["samples"] == 3


@pytest.mark.parametrize("argv, code, message", [
    (["probe", "ftp://example.com/x"], 2, "not an http(s) URL"),
    (["probe", "http://127.0.0.1:9/x", "--warning", "5"], 2, "--warning and --critical go together"),
    (["probe", "http://127.0.0.1:9/x", "--method", "POST", "--body", "{nope"], 2, "not valid JSON"),
    (["probe", "http://127.0.0.1:9/x", "--header", "no-colon"], 2, "--header must look like"),
    (["probe", "http://127.0.0.1:1/x", "--samples", "5"], 3, "could not reach"),
])
def test_cli_bad_input_and_unreachable_are_one_line(argv, code, message, capsys):
    assert cli.main(argv) == code
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_cli_inconclusive_is_could_not_check(app_url, capsys):
    """5 samples give no upper bound for p95: exit 3, with how many would."""
    code = cli.main(["probe", f"{app_url}/timed", "--samples", "5", "--rate", "200",
                           "--budget", "/api/checkout/pro", "--spec", str(REPO / "monitoring.yaml")])
    out = capsys.readouterr().out
    assert code == 3
    assert "INCONCLUSIVE" in out and "to settle" in out
    assert "COULD NOT CHECK (inconclusive: judged as a gate, where not enough evidence is not a pass)" in out


def test_cli_canary_inconclusive_is_a_warning(app_url, capsys):
    """--canary judges as the live checks do: the same 5 samples pass with a warning (exit 0)."""
    code = cli.main(["probe", f"{app_url}/timed", "--samples", "5", "--rate", "200", "--canary", "--json",
                     "--budget", "/api/checkout/pro", "--spec", str(REPO / "monitoring.yaml")])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["verdict"] == INCONCLUSIVE and data["outcome"] == WARNING and data["canary"] is True
    assert data["outcome_reason"].startswith("inconclusive at n=5: judged as a canary, which fails only on what")
    assert data["samples_needed"] == 72 and data["in_flight_slots"] == 4


# --- modelled latency: the sandbox app reports its work, the probe times on it ---------------------

def test_server_timing_reads_the_app_metric():
    from paymon.probes.latency import server_timing_ms

    assert server_timing_ms("app;dur=123.5") == 123.5
    assert server_timing_ms('db;dur=2, app;desc="work";dur="40"') == 40.0
    assert server_timing_ms("cache;dur=3") is None
    assert server_timing_ms(None) is None
    for bad in ("app;dur=abc", "app;dur=-1", "app;dur=nan", "app;dur=inf"):
        assert server_timing_ms(bad) is None


def _modelled_transport(work_ms):
    import httpx

    draws = iter(work_ms)

    def handler(request):
        headers = {} if (ms := next(draws)) is None else {"Server-Timing": f"app;dur={ms}"}
        return httpx.Response(200, headers=headers)

    return httpx.MockTransport(handler)


def test_modelled_open_loop_gives_exactly_the_models_latencies():
    """Open loop at 10/s with critical 400 ms (5 slots, capped at 4): a 350 ms request holds no one
    up, so every latency is exactly the work the app reported."""
    from paymon.probes.latency import Budget, HttpTarget, ModelledClock, probe_http

    work = [50.0] * 3 + [350.0] + [50.0] * 96
    clock = ModelledClock()
    report = probe_http(HttpTarget("http://app.invalid/x", method="POST"), samples=99, rate=10, warmup=1,
                        budget=Budget(warning_ms=100, critical_ms=400), modelled=clock,
                        transport=_modelled_transport(work))
    assert report.slots == 4 and report.slot_waits == 0 and report.peak_in_flight == 2
    assert report.sorted_ms == pytest.approx(sorted(work[1:]))
    assert report.p95_ms == pytest.approx(50.0)
    assert clock() == pytest.approx(sum(work) / 1000)  # the modelled work of the run, not the wall's time


def test_modelled_probe_with_one_slot_queues_exactly_as_the_model_says():
    """The cap at one slot (the old one-at-a-time probe) at 10/s: a single 350 ms request makes the
    next five wait 250, 200, 150, 100 and 50 ms (latency counts from the intended send time)."""
    from paymon.probes.latency import Budget, HttpTarget, ModelledClock, probe_http

    work = [50.0] * 3 + [350.0] + [50.0] * 96
    report = probe_http(HttpTarget("http://app.invalid/x", method="POST"), samples=99, rate=10, warmup=1,
                        budget=Budget(warning_ms=100, critical_ms=400), max_in_flight=1,
                        modelled=ModelledClock(), transport=_modelled_transport(work))
    assert report.sorted_ms[-7:] == pytest.approx([50.0, 100.0, 150.0, 200.0, 250.0, 300.0, 350.0])
    assert report.p95_ms == pytest.approx(150.0)
    assert report.slot_waits == 5 and report.max_slot_wait_ms == pytest.approx(250.0)


def test_a_sender_that_builds_each_request_sends_each_one_once_from_concurrent_slots():
    """The signed-webhook sender builds each request anew (a fresh signed body); with several
    requests in flight each must send its own body, never another thread's."""
    import dataclasses

    import httpx

    from paymon.probes.latency import HttpSender, HttpTarget, http_client

    bodies, lock = [], threading.Lock()

    def handler(request):
        with lock:
            bodies.append(request.content)
        return httpx.Response(200)

    class NumberedSender(HttpSender):
        def __init__(self, client, target):
            super().__init__(client, target)
            self.count = 0

        def request_target(self):
            with lock:
                self.count += 1
                number = self.count
            time.sleep(0.005)  # let the other slots build theirs in between
            return dataclasses.replace(self.target, body=str(number).encode())

    target = HttpTarget("http://app.invalid/hook", method="POST", body=b"template")
    with http_client(target, 400, transport=httpx.MockTransport(handler), connections=4) as client:
        report = measure(NumberedSender(client, target), samples=40, rate=400, slots=4)
    assert report.samples == 40 and report.peak_in_flight >= 1
    assert sorted(bodies, key=int) == [str(n).encode() for n in range(1, 41)]


def test_modelled_probe_without_server_timing_cannot_check():
    from paymon.probes.latency import HttpTarget, ModelledClock, ProbeUnreachable, probe_http

    with pytest.raises(ProbeUnreachable, match="Server-Timing"):
        probe_http(HttpTarget("http://app.invalid/x"), samples=3, rate=10, modelled=ModelledClock(),
                   transport=_modelled_transport([None] * 5))


def test_modelled_work_beyond_the_timeout_is_a_timeout():
    from paymon.probes.latency import HttpTarget, ModelledClock, probe_http

    report = probe_http(HttpTarget("http://app.invalid/x", timeout_s=1.0), samples=5, rate=1, warmup=0,
                        modelled=ModelledClock(), transport=_modelled_transport([5000.0] * 5))
    assert report.timeouts == 5
