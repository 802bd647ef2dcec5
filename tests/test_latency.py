"""paymon.probes.latency and `paymon probe`: percentiles, the order-statistic CI, verdicts, the schedule.

Statistics are checked against brute-force exact arithmetic (fractions) and a seeded coverage
simulation; the schedule runs on a fake clock, so nothing here waits for real time except the few
CLI runs against a local uvicorn app.
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
    CRITICAL, INCONCLUSIVE, OK, PASS, WARNING, Attempt, Budget, Outcome, binomial_table, default_edges,
    estimate_samples_needed, histogram, judge, measure, min_samples_for_upper_bound, nearest_rank,
    order_statistic_ranks, percentile, predicted_interval, run_schedule, summarize,
)

CHECKOUT = Budget(500, 1000, "checkout")
REPO = Path(__file__).resolve().parent.parent


# --- a clock that only moves when told -----------------------------------------------------------

class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def synthetic_sender(clock: FakeClock, latencies_ms, outcomes=None):
    """A `send` that takes the next latency off the list (advancing the fake clock) and returns an outcome."""
    latencies = iter(latencies_ms)
    results = iter(outcomes) if outcomes is not None else None

    def send():
        clock.now += next(latencies) / 1000
        return next(results) if results is not None else OK

    return send


def run_synthetic(latencies_ms, *, rate=10.0, warmup=0, budget=CHECKOUT, outcomes=None):
    clock = FakeClock()
    samples = len(latencies_ms) - warmup
    report = measure(synthetic_sender(clock, latencies_ms, outcomes), samples=samples, rate=rate, warmup=warmup,
                     budget=budget, clock=clock, sleep=clock.sleep)
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


# --- the schedule --------------------------------------------------------------------------------

def test_coordinated_omission_queued_requests_include_the_wait():
    """10 ms schedule, 1 ms responses, one 1 s stall: the requests due during the stall count it."""
    latencies = [1.0] * 300
    latencies[10] = 1000.0
    clock = FakeClock()
    attempts, _ = run_schedule(synthetic_sender(clock, latencies), samples=300, rate=100,
                               clock=clock, sleep=clock.sleep)
    assert attempts[10].latency_ms == pytest.approx(1000)
    # request 10+j was due at 100+10j ms; it went out when its predecessor finished, at 1100+(j-1) ms
    for j in (1, 2, 50, 100):
        assert attempts[10 + j].latency_ms == pytest.approx(1000 - 9 * j, abs=1e-6)
        assert attempts[10 + j].service_ms == pytest.approx(1.0)
    report = summarize(attempts, rate=100)
    # p95 sees the queue that a closed-loop probe (timing from the actual send) would hide
    assert report.p95_ms > 500
    assert report.service_p95_ms == pytest.approx(1.0)
    # lag of request 10+j is 999 - 9j ms: late (> 1 ms) for j = 1..110
    assert report.late_sends == 110


def test_schedule_sleeps_to_the_intended_times():
    report, clock = run_synthetic([2.0] * 5, rate=10, budget=None)
    assert clock.sleeps == pytest.approx([0.098] * 4)  # 100 ms interval minus 2 ms of work
    assert report.max_send_lag_ms == 0 and report.late_sends == 0
    assert report.utilisation == pytest.approx(0.02)


def test_warmup_is_discarded_and_does_not_delay_the_schedule():
    latencies = [900.0, 700.0] + [10.0] * 50
    report, _ = run_synthetic(latencies, rate=10, warmup=2, budget=None)
    assert report.warmup_ms == pytest.approx([900.0, 700.0 + 800.0])  # 2nd was due at 100 ms, sent at 900
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
    clock = FakeClock()
    calls = 0

    def send():
        nonlocal calls
        calls += 1
        if calls == 4:
            raise KeyboardInterrupt
        clock.now += 0.001

    report = measure(send, samples=10, rate=10, clock=clock, sleep=clock.sleep)
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
                "samples_needed"):
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


@pytest.mark.wall_time  # 75 requests at 250/s, one at a time: a loaded machine queues them past 250 ms
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


def test_modelled_probe_queues_and_judges_exactly_as_the_model_says():
    """One request at a time at 10/s: work of 50 ms never queues; a single 350 ms request makes the
    next five wait 250, 200, 150, 100 and 50 ms (latency counts from the intended send time)."""
    from paymon.probes.latency import Budget, HttpTarget, ModelledClock, probe_http

    work = [50.0] * 3 + [350.0] + [50.0] * 96
    clock = ModelledClock()
    report = probe_http(HttpTarget("http://app.invalid/x", method="POST"), samples=99, rate=10, warmup=1,
                        budget=Budget(warning_ms=100, critical_ms=400), modelled=clock,
                        transport=_modelled_transport(work))
    assert report.sorted_ms[-7:] == pytest.approx([50.0, 100.0, 150.0, 200.0, 250.0, 300.0, 350.0])
    assert report.p95_ms == pytest.approx(150.0)
    assert clock() == pytest.approx(0.05 + 98 * 0.1 + 0.05)  # the modelled time of the run, not the wall's


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
