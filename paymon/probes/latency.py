"""Latency probe: send requests on a fixed schedule, judge p95 against a budget with a confidence interval.

The guide (§2) sets p95 budgets per payment endpoint (checkout: warning > 500 ms, critical > 1000 ms;
webhook > 1000 / > 2000; PAYG create > 300 / > 500). A handful of timings cannot prove a p95; this
module says what the samples do prove, and how many more would settle the rest.

Schedule and coordinated omission (open loop)
    Request i is *intended* at t0 + i/rate and is sent then, whatever earlier requests are doing:
    the schedule is open-loop, as k6's constant-arrival-rate executor is, so a slow response does
    not hold back the next send and the probe measures the endpoint, not its own queue. (The probe
    used to send one request at a time on one connection: once the service time neared the
    interval, every later request waited behind its predecessors, and a loopback server with a true
    p95 of 48 ms probed at 50/s read 1,377 ms; bench/probe_schedule.py measures both.)
      * In-flight slots, like k6's pre-allocated VUs: threads sharing one httpx.Client, one
        keep-alive connection each. `in_flight_slots` sizes them so that no request lasting at most
        the critical budget ever waits for one (the requests in flight when request i is due were
        all due in the last `critical` seconds: floor(rate x critical) of them, plus i), or the
        timeout without a budget; capped by `max_in_flight`, small by default (4) because every
        probe request is real load on production and every checkout POST creates a live object
        (reference §3). At the live rate of 1/s the budgets need 1 to 3 slots (critical 0.5 to 2 s).
      * If every slot is busy when a request is due, it waits for one, and the wait counts: every
        latency is measured from the intended send time, not the actual one, so a stall is charged
        to each request that had to wait behind it, as it would be for users arriving on their own
        schedule (no coordinated omission; wrk2's correction). That happens only behind requests
        slower than critical (or than the cap allows); it errs high, never low, and a note says how
        many requests waited and for how long.
      * Threads rather than asyncio: the senders (HttpSender, the signed-webhook sender) stay plain
        blocking callables, testable with any clock. A thread's wake-up adds tens of microseconds
        to its send, which is counted as send lag; the report gives the peak number in flight.
    The schedule restarts once the warm-up's requests are done, so a cold start is reported but not
    charged to the first measured requests. Against a server whose latency is a model it reports
    rather than a wait (the sandbox's app in `latency_mode: report`), `ModelledClock` replaces the
    wall clock: it moves only by each response's `Server-Timing: app;dur=` (W3C Server Timing). The
    requests then run one after another in wall time and the schedule is computed instead of
    waited: request i is sent at max(intended, when the first slot is free) and done its reported
    work later. With k slots and every request's work under k intervals nothing waits, so the
    latencies are exactly the model's; beyond that the queueing is exactly the open-loop probe's,
    in no wall time and whatever the machine's load. One httpx.Client is shared by the slots (a new
    one per request costs a TCP, maybe TLS, handshake, ~20 ms locally); its keep-alive expiry is
    stretched beyond the interval.

Samples and errors
    A sample is a measured request that returned an expected status (default: any 2xx) or timed
    out. A timeout counts as a sample at its measured latency (lateness + about the timeout) and is
    *censored*: the real latency is at least that. Other failures (unexpected status, connection
    errors) are counted and reported separately and are not latency samples: a fast 500 or 401 times
    a different code path. Every sample is kept; percentiles are exact.

Percentiles (nearest rank)
    On the n samples sorted ascending x(1) <= ... <= x(n), the q-th percentile is x(ceil(q*n)),
    with ceil computed exactly (q is read as a fraction, so 0.95*100 is rank 95, never 96).

Confidence interval for p95 (distribution-free, from order statistics)
    B = #{samples <= the true p95} ~ Binomial(n, 0.95) for any continuous latency distribution, and
    x(l) <= p95 < x(u) exactly when l <= B < u. The ranks are equal-tailed: l is the largest rank with
    P(B < l) <= 2.5%, u the smallest with P(B >= u) <= 2.5%, so P(l <= B < u) >= 95% (the exact
    coverage is reported). The closed interval [x(l), x(u)] keeps >= 95% with ties too. The binomial
    is summed exactly in floating point: the pmf at the mode from lgamma, then the ratio recurrence
    outward until terms are negligible, so n = 100k costs a few thousand steps. An upper bound needs
    P(B = n) = 0.95^n <= 2.5%, i.e. n >= 72 (a one-sided 95% bound would need 0.95^n <= 5%, n >= 59;
    the two-sided interval spends 2.5% per side). A lower bound exists from n = 2. If a timeout lies
    at or below rank u, the upper bound is unknown (None): the censored value may be too low.

Verdict per budget (warning W, critical C; budgets are "p95 > W", "p95 > C"), on the CI [lo, hi]
    critical      lo > C
    warning       lo > W and hi <= C
    pass          hi <= W
    inconclusive  otherwise: too few samples for the needed bound, or the interval straddles W or C.
    Each verdict is implied by the 95% interval, so it is wrong with probability <= 2.5% (one side).

What a run does with the verdict (`decide`: the checks and `paymon probe` both ask it)
    verdict        gate (sandbox; `paymon probe`)   canary (live; `paymon probe --canary`)
    pass           pass                             pass
    warning        warning                          warning
    critical       fail                             fail
    inconclusive   could not check                  warning: "inconclusive at n=20", with the
                                                    samples that would settle it
    no samples     fail (every request failed)      fail
    A canary is the live probe: a few requests a run (each checkout POST is a live object), which
    can prove "critical" but, below 72 samples, never "within budget"; so it fails only on what it
    proves. The primary evidence for a live budget is Sentry's own p95 of production transactions.
    A gate that can take as many samples as it likes (the sandbox) has no excuse for too few: not
    enough evidence is not a pass. "could not check" is the run verdict's word (exit code 3).

Samples needed (for inconclusive)
    Plug-in estimate: take the observed distribution as the truth, with its quantile function
    interpolated linearly between order statistics at plotting positions k/(m+1). For a candidate n
    the interval is predicted as [Q(l_n/(n+1)), Q(u_n/(n+1))] (E[U(k)] = k/(n+1) for uniform order
    statistics). The smallest n whose predicted interval gives a verdict is found by galloping and
    bisection (capped at 1,000,000; None if p95 sits on the budget). Beyond the observed range Q is
    clamped to the observed extremes, so from a small sample the estimate is optimistic: the unseen
    tail is assumed no heavier than what was seen.
"""

from __future__ import annotations

import bisect
import heapq
import math
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TYPE_CHECKING

from paymon.errors import TargetUnavailable

if TYPE_CHECKING:  # httpx is imported lazily: the statistics need no HTTP stack.
    import httpx

    from paymon.config.spec import PerformanceBudget

Clock = Callable[[], float]
Sleeper = Callable[[float], None]

P95 = 0.95
DEFAULT_CONFIDENCE = 0.95
SAMPLES_NEEDED_CAP = 1_000_000
# Binomial terms below this fraction of the mode's are dropped; the mass beyond is < 1e-18.
_NEGLIGIBLE_TERM = 1e-22
# Requests in flight at most per probed endpoint, unless told otherwise: a probe is a canary, not a
# load test (reference §3). With k slots, only requests slower than k intervals ever wait for one.
DEFAULT_MAX_IN_FLIGHT = 4

PASS, WARNING, CRITICAL, INCONCLUSIVE = "pass", "warning", "critical", "inconclusive"
# What a run does with a verdict (`decide`); pass and warning are spelt as above. The run verdict's
# words (paymon.reporting.verdict), so a check and `paymon probe` report alike.
FAIL, COULD_NOT_CHECK = "fail", "could not check"


# --- percentiles ---------------------------------------------------------------------------------

def nearest_rank(n: int, q: float) -> int:
    """1-based rank ceil(q*n), computed exactly: q is read as the fraction it was written as."""
    if n < 1:
        raise ValueError("no samples")
    if not 0 < q <= 1:
        raise ValueError(f"quantile must be in (0, 1], not {q}")
    fraction = Fraction(q).limit_denominator(1_000_000)  # 0.95 -> 19/20, not 0.94999999999999995559
    return max(1, -(-fraction.numerator * n // fraction.denominator))


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile of values already sorted ascending."""
    return sorted_values[nearest_rank(len(sorted_values), q) - 1]


# --- exact binomial ------------------------------------------------------------------------------

@dataclass(frozen=True)
class BinomialTable:
    """P(B = k) for k in [first, first + len(pmf)), B ~ Binomial(n, p); mass outside is negligible."""

    n: int
    p: float
    first: int
    pmf: tuple[float, ...]
    cdf: tuple[float, ...]  # P(B <= k), summed from the low end
    sf: tuple[float, ...]   # P(B >= k), summed from the high end (no 1 - cdf cancellation)

    def p_below(self, k: int) -> float:
        """P(B < k)."""
        i = k - 1 - self.first
        return 0.0 if i < 0 else 1.0 if i >= len(self.cdf) else self.cdf[i]

    def p_at_least(self, k: int) -> float:
        """P(B >= k)."""
        i = k - self.first
        return 1.0 if i <= 0 else 0.0 if i >= len(self.sf) else self.sf[i]


def binomial_table(n: int, p: float) -> BinomialTable:
    """The binomial pmf around its mode, from lgamma at the mode and the ratio recurrence outward."""
    if n < 0 or not 0 < p < 1:
        raise ValueError("need n >= 0 and 0 < p < 1")
    mode = min(n, int((n + 1) * p))
    log_mode = (math.lgamma(n + 1) - math.lgamma(mode + 1) - math.lgamma(n - mode + 1)
                + mode * math.log(p) + (n - mode) * math.log1p(-p))
    at_mode = math.exp(log_mode)
    odds = p / (1 - p)
    upper = [at_mode]  # mode, mode+1, ...
    k = mode
    while k < n and upper[-1] > at_mode * _NEGLIGIBLE_TERM:
        upper.append(upper[-1] * (n - k) / (k + 1) * odds)
        k += 1
    lower = []  # mode-1, mode-2, ...
    term, k = at_mode, mode
    while k > 0 and term > at_mode * _NEGLIGIBLE_TERM:
        term = term * k / (n - k + 1) / odds
        lower.append(term)
        k -= 1
    pmf = lower[::-1] + upper
    total = math.fsum(pmf)  # normalising cancels lgamma's rounding at the mode
    pmf = [x / total for x in pmf]
    return BinomialTable(n, p, mode - len(lower), tuple(pmf), _running_sums(pmf), _running_sums(pmf[::-1])[::-1])


def _running_sums(values: Sequence[float]) -> tuple[float, ...]:
    sums, acc = [], 0.0
    for value in values:
        acc += value
        sums.append(min(acc, 1.0))
    return tuple(sums)


# --- order-statistic confidence interval ---------------------------------------------------------

@dataclass(frozen=True)
class RankInterval:
    """1-based ranks of the CI's ends (None: no such bound at this n) and the exact coverage."""

    n: int
    lower: int | None
    upper: int | None
    coverage: float


def order_statistic_ranks(n: int, q: float = P95, confidence: float = DEFAULT_CONFIDENCE) -> RankInterval:
    """Equal-tailed ranks l, u with P(l <= B < u) >= confidence, B ~ Binomial(n, q)."""
    if n < 1:
        return RankInterval(n, None, None, 0.0)
    tail = (1 - confidence) / 2
    table = binomial_table(n, q)
    # P(B < l) grows with l: the largest l with P(B < l) <= tail. Ranks below table.first have ~0 mass.
    lower = None
    for l in range(min(n, table.first + len(table.pmf)), 0, -1):
        if table.p_below(l) <= tail:
            lower = l
            break
    # P(B >= u) shrinks with u: the smallest u <= n with P(B >= u) <= tail.
    upper = None
    for u in range(max(1, table.first), n + 1):
        if table.p_at_least(u) <= tail:
            upper = u
            break
    miss_low = table.p_below(lower) if lower else 0.0
    miss_high = table.p_at_least(upper) if upper else 0.0
    return RankInterval(n, lower, upper, 1.0 - miss_low - miss_high)


def min_samples_for_upper_bound(q: float = P95, confidence: float = DEFAULT_CONFIDENCE,
                                two_sided: bool = True) -> int:
    """Smallest n with q^n <= the tail: below it, the largest sample is not an upper bound for p_q."""
    tail = (1 - confidence) / 2 if two_sided else 1 - confidence
    n = max(1, math.ceil(math.log(tail) / math.log(q)))
    while q ** n > tail:  # guard the float log against an off-by-one
        n += 1
    while n > 1 and q ** (n - 1) <= tail:
        n -= 1
    return n


# --- budgets and verdicts ------------------------------------------------------------------------

@dataclass(frozen=True)
class Budget:
    """p95 budget in ms: warning when p95 > warning_ms, critical when p95 > critical_ms."""

    warning_ms: float
    critical_ms: float
    name: str = ""

    def __post_init__(self) -> None:
        if not 0 < self.warning_ms < self.critical_ms:
            raise ValueError("need 0 < warning < critical")

    @classmethod
    def from_spec(cls, budget: PerformanceBudget) -> Budget:
        return cls(float(budget.warning), float(budget.critical), budget.name)


def judge(low: float | None, high: float | None, budget: Budget) -> str:
    """The verdict the interval [low, high] supports (None ends are unbounded)."""
    lo = -math.inf if low is None else low
    hi = math.inf if high is None else high
    if lo > budget.critical_ms:
        return CRITICAL
    if hi <= budget.warning_ms:
        return PASS
    if lo > budget.warning_ms and hi <= budget.critical_ms:
        return WARNING
    return INCONCLUSIVE


def _ms(value: float | None) -> str:
    return "unbounded" if value is None else f"{value:.1f} ms"


def explain(verdict: str, low: float | None, high: float | None, budget: Budget, n: int,
            confidence: float) -> str:
    """One sentence: why this verdict, in the budget's terms."""
    pct = f"{confidence:.0%}"
    ci = f"{pct} CI [{_ms(low)}, {_ms(high)}]"
    w, c = f"{budget.warning_ms:g} ms", f"{budget.critical_ms:g} ms"
    if verdict == CRITICAL:
        return f"p95 > critical {c} with {pct} confidence ({ci})"
    if verdict == WARNING:
        return f"p95 is above warning {w} and at most critical {c} with {pct} confidence ({ci})"
    if verdict == PASS:
        return f"p95 <= warning {w} with {pct} confidence ({ci})"
    if high is None:
        needed = min_samples_for_upper_bound(P95, confidence)
        why = (f"no upper bound for p95 from {n} samples at {pct} (needs >= {needed} samples"
               f" with no timeout at or below the upper rank)")
        if low is not None and low > budget.warning_ms:
            why += f"; p95 is already above warning {w}"
        return why
    straddled = [label for label, edge in (("warning", budget.warning_ms), ("critical", budget.critical_ms))
                 if (low is None or low <= edge) and high > edge]
    return f"{ci} straddles the {' and '.join(straddled)} budget{'s' if len(straddled) > 1 else ''} ({w}, {c})"


def plugin_quantile(sorted_values: Sequence[float], p: float) -> float:
    """Observed quantile function, linear between order statistics at plotting positions k/(m+1)."""
    m = len(sorted_values)
    h = p * (m + 1)
    if h <= 1:
        return sorted_values[0]
    if h >= m:
        return sorted_values[-1]
    k = int(h)
    return sorted_values[k - 1] + (h - k) * (sorted_values[k] - sorted_values[k - 1])


def predicted_interval(sorted_values: Sequence[float], n: int, q: float = P95,
                       confidence: float = DEFAULT_CONFIDENCE) -> tuple[float | None, float | None]:
    """The CI a sample of n would give if the observed distribution were the truth."""
    ranks = order_statistic_ranks(n, q, confidence)
    low = plugin_quantile(sorted_values, ranks.lower / (n + 1)) if ranks.lower else None
    high = plugin_quantile(sorted_values, ranks.upper / (n + 1)) if ranks.upper else None
    return low, high


def estimate_samples_needed(sorted_values: Sequence[float], budget: Budget, q: float = P95,
                            confidence: float = DEFAULT_CONFIDENCE, cap: int = SAMPLES_NEEDED_CAP) -> int | None:
    """Smallest total n whose predicted CI yields a verdict; None if none up to `cap`."""
    if not sorted_values:
        return None

    def settles(n: int) -> bool:
        return judge(*predicted_interval(sorted_values, n, q, confidence), budget) != INCONCLUSIVE

    too_few = len(sorted_values)
    candidate = max(too_few + 1, 2)
    while not settles(candidate):  # gallop: the predicted interval narrows roughly like 1/sqrt(n)
        too_few = candidate
        if candidate >= cap:
            return None
        candidate = min(cap, candidate * 2)
    while candidate - too_few > 1:  # bisect in (too_few, candidate]
        middle = (too_few + candidate) // 2
        if settles(middle):
            candidate = middle
        else:
            too_few = middle
    return candidate


# --- histogram -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Bucket:
    low: float   # inclusive
    high: float  # exclusive; math.inf for the last bucket
    count: int


def histogram(values: Sequence[float], edges: Sequence[float]) -> list[Bucket]:
    """Counts in [e0, e1), [e1, e2), ..., [e_last, inf); a (-inf, e0) bucket only if it is not empty."""
    edges = sorted(set(edges))
    if not edges:
        return [Bucket(-math.inf, math.inf, len(values))] if values else []
    ordered = sorted(values)
    bounds = [-math.inf, *edges, math.inf]
    buckets = []
    for low, high in zip(bounds, bounds[1:]):
        count = bisect.bisect_left(ordered, high) - bisect.bisect_left(ordered, low)
        if low == -math.inf and count == 0:
            continue
        buckets.append(Bucket(low, high, count))
    return buckets


def _round_down_2sig(x: float) -> float:
    if x <= 0:
        return 0.0
    scale = 10 ** (math.floor(math.log10(x)) - 1)
    return math.floor(x / scale) * scale


def default_edges(values: Sequence[float], budget: Budget | None = None, buckets: int = 8) -> list[float]:
    """Log-spaced edges (latencies are right-skewed) rounded to 2 significant digits, plus the budgets."""
    edges: set[float] = set()
    if values:
        low, high = min(values), max(values)
        if low > 0 and high > low:
            ratio = high / low
            edges.update(_round_down_2sig(low * ratio ** (i / buckets)) for i in range(buckets + 1))
        else:
            edges.add(_round_down_2sig(low))
    if budget is not None:
        edges.update((budget.warning_ms, budget.critical_ms))
    return sorted(edges)


# --- running the schedule ------------------------------------------------------------------------

@dataclass(frozen=True)
class Outcome:
    """What one request did. `timed_out` requests still count as (censored) latency samples."""

    ok: bool
    status: int | None = None
    error: str | None = None
    timed_out: bool = False

    @property
    def is_sample(self) -> bool:
        return self.ok or self.timed_out

    @property
    def error_kind(self) -> str | None:
        if self.ok:
            return None
        if self.timed_out:
            return "timeout"
        return f"HTTP {self.status}" if self.status is not None else (self.error or "error").split(":")[0]


OK = Outcome(ok=True)


@dataclass(frozen=True)
class Attempt:
    """One request: clock readings (seconds) for when it was due, sent, and done."""

    intended: float
    sent: float
    done: float
    outcome: Outcome
    warmup: bool = False
    queued: bool = False
    """Every in-flight slot was busy when it was due: it waited for one, and the wait is in its latency."""

    @property
    def latency_ms(self) -> float:
        """From the intended send time: includes any wait for a free slot."""
        return (self.done - self.intended) * 1000

    @property
    def service_ms(self) -> float:
        """From the actual send time: what a closed-loop probe would (wrongly) report."""
        return (self.done - self.sent) * 1000

    @property
    def lag_ms(self) -> float:
        return max(0.0, (self.sent - self.intended) * 1000)


Send = Callable[[], "Outcome | None"]


def in_flight_slots(rate: float, longest_s: float, cap: int = DEFAULT_MAX_IN_FLIGHT) -> int:
    """Slots enough that no request lasting at most `longest_s` waits for one, capped.

    The requests still in flight when request i is due were due less than `longest_s` before it:
    at most floor(rate x longest_s) of them, plus i itself."""
    if cap < 1 or not rate > 0 or longest_s < 0:
        raise ValueError("need cap >= 1, rate > 0 and longest_s >= 0")
    return max(1, min(cap, math.floor(rate * longest_s) + 1))


def run_schedule(send: Send, *, samples: int, rate: float, warmup: int = 0, slots: int = DEFAULT_MAX_IN_FLIGHT,
                 clock: Clock = time.perf_counter, sleep: Sleeper = time.sleep, modelled: Clock | None = None,
                 on_attempt: Callable[[Attempt], None] | None = None) -> tuple[list[Attempt], bool]:
    """Send warmup + samples requests due every 1/rate s, open loop, at most `slots` in flight;
    (attempts in schedule order, interrupted).

    `send` returns an Outcome (None means OK); on the wall clock it is called from `slots` threads at
    once. With `modelled`, a clock that moves only by each request's own (reported) work such as
    `ModelledClock`, the requests run one at a time and the schedule is computed, not waited.
    Ctrl-C stops the run and keeps what was measured; an exception from `send` stops it and is raised.
    """
    if samples < 1 or warmup < 0 or not rate > 0 or slots < 1:
        raise ValueError("need samples >= 1, warmup >= 0, rate > 0 and slots >= 1")
    phases = ((True, warmup), (False, samples))
    if modelled is not None:
        return _run_modelled(send, phases, 1.0 / rate, slots, modelled, on_attempt)
    return _run_on_threads(send, phases, 1.0 / rate, slots, clock, sleep, on_attempt)


# A slot freed this close to a request's due time freed in time: float noise of the computed timeline.
_SAME_INSTANT_S = 1e-9


def _run_modelled(send: Send, phases, interval: float, slots: int, modelled: Clock,
                  on_attempt) -> tuple[list[Attempt], bool]:
    """The open-loop schedule on a timeline computed from each request's work (read off `modelled`)."""
    attempts: list[Attempt] = []
    start = 0.0
    try:
        for is_warmup, count in phases:
            free_at = [start] * slots  # a heap: when each slot is next free
            for i in range(count):
                intended = start + i * interval
                slot_free = heapq.heappop(free_at)
                sent = max(intended, slot_free)
                before = modelled()
                outcome = send() or OK
                done = sent + (modelled() - before)
                heapq.heappush(free_at, done)
                queued = slot_free - intended > _SAME_INSTANT_S
                attempt = Attempt(intended, sent, done, outcome, is_warmup, queued)
                attempts.append(attempt)
                if on_attempt:
                    on_attempt(attempt)
            start = max([start, *(a.done for a in attempts)])  # the warm-up is over when its last request is
    except KeyboardInterrupt:
        return attempts, True
    return attempts, False


def _run_on_threads(send: Send, phases, interval: float, slots: int, clock: Clock, sleep: Sleeper,
                    on_attempt) -> tuple[list[Attempt], bool]:
    """The open-loop schedule in real time: this thread keeps the timetable, `slots` workers send."""
    free = threading.BoundedSemaphore(slots)
    lock = threading.Lock()
    attempts: list[Attempt] = []
    failures: list[BaseException] = []

    def request(intended: float, queued: bool, is_warmup: bool) -> None:
        try:
            sent = clock()
            outcome = send() or OK
            attempt = Attempt(intended, sent, clock(), outcome, is_warmup, queued)
            with lock:
                attempts.append(attempt)
                if on_attempt:
                    on_attempt(attempt)
        except BaseException as exc:  # ProbeUnreachable, or a bug: the timetable stops and raises it
            with lock:
                failures.append(exc)
        finally:
            free.release()

    pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix="paymon-probe-send")
    interrupted = False
    try:
        for is_warmup, count in phases:
            start, pending = clock(), []
            for i in range(count):
                intended = start + i * interval
                delay = intended - clock()
                if delay > 0:
                    sleep(delay)
                queued = not free.acquire(blocking=False)
                if queued:
                    free.acquire()  # the cap: wait, and let the wait count in this request's latency
                if failures:
                    free.release()
                    break
                pending.append(pool.submit(request, intended, queued, is_warmup))
            wait_all(pending)  # the warm-up ends before the schedule restarts; the samples end the run
            if failures:
                break
    except KeyboardInterrupt:
        interrupted = True
    finally:
        # Interrupted: return at once; requests still in flight end with the client (or their timeout).
        pool.shutdown(wait=not interrupted, cancel_futures=True)
    if failures:
        raise failures[0]
    with lock:
        return sorted(attempts, key=lambda a: a.intended), interrupted


# --- the report ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class LatencyReport:
    """Statistics over one run; build with `summarize`. Times in ms."""

    rate: float
    samples: int
    errors: int
    errors_by_kind: dict[str, int]
    timeouts: int
    warmup_ms: list[float]
    sorted_ms: list[float]
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    mean_ms: float | None
    max_ms: float | None
    p95_ci_ms: tuple[float | None, float | None]
    p95_ci_ranks: tuple[int | None, int | None]
    p95_ci_coverage: float
    confidence: float
    service_p95_ms: float | None
    max_send_lag_ms: float
    late_sends: int
    utilisation: float | None
    budget: Budget | None
    verdict: str | None
    reason: str
    samples_needed: int | None
    slots: int | None = None
    """In-flight slots the schedule had (None: not told)."""
    peak_in_flight: int = 0
    slot_waits: int = 0
    """Measured requests that found every slot busy and waited for one (the wait is in their latency)."""
    max_slot_wait_ms: float = 0.0
    interrupted: bool = False
    notes: list[str] = field(default_factory=list)

    def histogram(self, edges: Sequence[float] | None = None) -> list[Bucket]:
        return histogram(self.sorted_ms, default_edges(self.sorted_ms, self.budget) if edges is None else edges)

    def more_samples_time_s(self) -> float | None:
        """How long the extra samples would take at this run's rate."""
        if self.samples_needed is None:
            return None
        return max(0, self.samples_needed - self.samples) / self.rate

    def to_json(self) -> dict:
        """A JSON-ready dict (json.dumps it); unbounded CI ends are null."""
        return {
            "samples": self.samples,
            "errors": self.errors,
            "errors_by_kind": self.errors_by_kind,
            "timeouts": self.timeouts,
            "warmup_ms": [_round(x) for x in self.warmup_ms],
            "p50_ms": _round(self.p50_ms),
            "p95_ms": _round(self.p95_ms),
            "p99_ms": _round(self.p99_ms),
            "mean_ms": _round(self.mean_ms),
            "max_ms": _round(self.max_ms),
            "p95_ci_ms": [_round(self.p95_ci_ms[0]), _round(self.p95_ci_ms[1])],
            "p95_ci_ranks": list(self.p95_ci_ranks),
            "p95_ci_coverage": round(self.p95_ci_coverage, 5),
            "confidence": self.confidence,
            "percentile_method": "nearest-rank: x(ceil(q*n)) of the sorted samples",
            "service_p95_ms": _round(self.service_p95_ms),
            "rate_per_s": self.rate,
            "max_send_lag_ms": _round(self.max_send_lag_ms),
            "late_sends": self.late_sends,
            "utilisation": None if self.utilisation is None else round(self.utilisation, 4),
            "in_flight_slots": self.slots,
            "peak_in_flight": self.peak_in_flight,
            "slot_waits": self.slot_waits,
            "max_slot_wait_ms": _round(self.max_slot_wait_ms),
            "budget": None if self.budget is None else {
                "name": self.budget.name, "warning_ms": self.budget.warning_ms, "critical_ms": self.budget.critical_ms},
            "verdict": self.verdict,
            "reason": self.reason,
            "samples_needed": self.samples_needed,
            "interrupted": self.interrupted,
            "notes": self.notes,
            "histogram": [{"low_ms": _round(b.low), "high_ms": _round(b.high), "count": b.count}
                          for b in self.histogram()],
        }


def _round(value: float | None) -> float | None:
    if value is None or math.isinf(value):
        return None
    return round(value, 3)


# A send counts as late when it left this long after its due time (time.sleep overshoots ~0.1 ms).
_LATE_MS = 1.0


def summarize(attempts: Sequence[Attempt], *, rate: float, budget: Budget | None = None,
              confidence: float = DEFAULT_CONFIDENCE, interrupted: bool = False,
              slots: int | None = None) -> LatencyReport:
    """Statistics, confidence interval and verdict over the measured (non-warm-up) attempts."""
    measured = [a for a in attempts if not a.warmup]
    timed = sorted((a.latency_ms, a.outcome.timed_out) for a in measured if a.outcome.is_sample)
    values = [latency for latency, _ in timed]
    first_censored = next((i + 1 for i, (_, censored) in enumerate(timed) if censored), None)
    ranks = order_statistic_ranks(len(values), P95, confidence)
    low = values[ranks.lower - 1] if ranks.lower else None
    upper_known = ranks.upper is not None and (first_censored is None or first_censored > ranks.upper)
    high = values[ranks.upper - 1] if upper_known else None
    errors = Counter(a.outcome.error_kind for a in measured if not a.outcome.ok)
    services = [a.service_ms for a in measured]
    slot_waits = [a.lag_ms for a in measured if a.queued]
    verdict, reason, needed = _verdict(values, low, high, budget, confidence)
    report = LatencyReport(
        rate=rate,
        samples=len(values),
        errors=sum(errors.values()),
        errors_by_kind=dict(errors),
        timeouts=errors.get("timeout", 0),
        warmup_ms=[a.latency_ms for a in attempts if a.warmup],
        sorted_ms=values,
        p50_ms=percentile(values, 0.50) if values else None,
        p95_ms=percentile(values, 0.95) if values else None,
        p99_ms=percentile(values, 0.99) if values else None,
        mean_ms=math.fsum(values) / len(values) if values else None,
        max_ms=values[-1] if values else None,
        p95_ci_ms=(low, high),
        p95_ci_ranks=(ranks.lower, ranks.upper if upper_known else None),
        p95_ci_coverage=ranks.coverage,
        confidence=confidence,
        service_p95_ms=percentile(sorted(services), 0.95) if services else None,
        max_send_lag_ms=max((a.lag_ms for a in measured), default=0.0),
        late_sends=sum(a.lag_ms > _LATE_MS for a in measured),
        # mean service time x arrival rate: the mean number of requests in flight (Little's law)
        utilisation=(math.fsum(services) / len(services)) * rate / 1000 if services else None,
        budget=budget,
        verdict=verdict,
        reason=reason,
        samples_needed=needed,
        slots=slots,
        peak_in_flight=peak_in_flight(measured),
        slot_waits=len(slot_waits),
        max_slot_wait_ms=max(slot_waits, default=0.0),
        interrupted=interrupted,
    )
    report.notes.extend(_notes(report, first_censored))
    return report


def _verdict(values: list[float], low: float | None, high: float | None, budget: Budget | None,
             confidence: float) -> tuple[str | None, str, int | None]:
    if not values:
        return (INCONCLUSIVE if budget else None), "no latency samples (every request failed)", None
    if budget is None:
        return None, "no budget given", None
    verdict = judge(low, high, budget)
    reason = explain(verdict, low, high, budget, len(values), confidence)
    needed = estimate_samples_needed(values, budget, P95, confidence) if verdict == INCONCLUSIVE else None
    if verdict == INCONCLUSIVE:
        reason += (f"; about {needed} samples in total would settle it if the distribution holds"
                   if needed else "; more samples are unlikely to settle it: p95 sits on the budget")
    return verdict, reason, needed


def peak_in_flight(attempts: Sequence[Attempt]) -> int:
    """Most requests in flight at once ([sent, done) each; one ending as another starts is not overlap)."""
    events = sorted([(a.sent, 1) for a in attempts] + [(a.done, -1) for a in attempts])  # ends sort first
    peak = current = 0
    for _, step in events:
        current += step
        peak = max(peak, current)
    return peak


def _notes(report: LatencyReport, first_censored: int | None) -> list[str]:
    notes = []
    if report.timeouts:
        notes.append(f"{report.timeouts} timeout(s) count as samples at their measured latency "
                     "(a lower bound on the real one)")
        for label, q in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
            if first_censored is not None and nearest_rank(report.samples, q) >= first_censored:
                notes.append(f"{label} falls on or above a timed-out request: it is a lower bound")
    if report.slot_waits:
        slots = f"all {report.slots} in-flight slots" if report.slots else "every in-flight slot"
        notes.append(f"in-flight cap reached: {report.slot_waits} request(s) found {slots} busy and waited up "
                     f"to {report.max_slot_wait_ms:.1f} ms; the wait is in their latency (it errs high), "
                     "so raise the cap or lower the rate to time the endpoint alone")
    if report.errors:
        notes.append(f"{report.errors} failed request(s) are not latency samples: "
                     + ", ".join(f"{kind} x{count}" for kind, count in sorted(report.errors_by_kind.items())))
    if report.interrupted:
        notes.append("interrupted: statistics cover the requests made so far")
    return notes


# --- what a run does with the verdict ----------------------------------------------------------

@dataclass(frozen=True)
class Decision:
    """A run's outcome for one probed endpoint: PASS, WARNING, FAIL or COULD_NOT_CHECK."""

    outcome: str
    headline: str
    """What the message starts with: "critical", "warning", "pass", "inconclusive at n=20", ..."""
    why: str = ""
    """Why this outcome for this kind of run, when the verdict alone does not say."""


def decide(report: LatencyReport, *, canary: bool) -> Decision:
    """The one place a verdict becomes pass / warning / fail / could not check (table in the module
    docstring). `canary`: a live probe of a few requests, which fails only on what it proves."""
    if report.samples == 0:
        return Decision(FAIL, "no samples", "every request failed")
    if report.verdict is None:
        return Decision(PASS, "no budget")
    if report.verdict == CRITICAL:
        return Decision(FAIL, CRITICAL)
    if report.verdict in (PASS, WARNING):
        return Decision(report.verdict, report.verdict)
    # The report's reason already says how many samples would settle it.
    if canary:
        return Decision(WARNING, f"inconclusive at n={report.samples}",
                        "judged as a canary, which fails only on what it proves: p95 above critical")
    return Decision(COULD_NOT_CHECK, INCONCLUSIVE, "judged as a gate, where not enough evidence is not a pass")


def measure(send: Send, *, samples: int, rate: float, warmup: int = 0, slots: int = DEFAULT_MAX_IN_FLIGHT,
            budget: Budget | None = None, confidence: float = DEFAULT_CONFIDENCE,
            clock: Clock = time.perf_counter, sleep: Sleeper = time.sleep, modelled: Clock | None = None,
            on_attempt: Callable[[Attempt], None] | None = None) -> LatencyReport:
    """Run `send` on the schedule and summarize. The seam for tests: any callable, any clock."""
    attempts, interrupted = run_schedule(send, samples=samples, rate=rate, warmup=warmup, slots=slots, clock=clock,
                                         sleep=sleep, modelled=modelled, on_attempt=on_attempt)
    return summarize(attempts, rate=rate, budget=budget, confidence=confidence, interrupted=interrupted,
                     slots=slots)


# --- HTTP ----------------------------------------------------------------------------------------

class ModelledClock:
    """The probe's clock against a server that reports its modelled work instead of doing it.

    It reads 0 at the start and moves only by what the responses say they took (`Server-Timing:
    app;dur=<ms>`; `sleep` moves it too): given as `modelled` to the schedule, it makes the schedule
    computed rather than waited, each request lasting exactly its reported work, so the run's
    latencies and queueing are exactly the model's and cost only the round trips in wall time. One
    per schedule."""

    def __init__(self) -> None:
        self._now = 0.0

    def __call__(self) -> float:
        return self._now

    def sleep(self, seconds: float) -> None:
        self._now += max(0.0, seconds)

    def served(self, seconds: float) -> None:
        self._now += max(0.0, seconds)


def server_timing_ms(header: str | None, metric: str = "app") -> float | None:
    """`dur` of `metric` in a Server-Timing header (`app;dur=123.4, db;dur=5`), in ms; None if absent."""
    for entry in (header or "").split(","):
        name, *params = (part.strip() for part in entry.split(";"))
        if name != metric:
            continue
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "dur":
                try:
                    duration = float(value.strip().strip('"'))
                except ValueError:
                    return None
                return duration if math.isfinite(duration) and duration >= 0 else None
    return None


class ProbeUnreachable(TargetUnavailable):
    """The target never answered: no point in timing the rest of the schedule."""


@dataclass(frozen=True)
class HttpTarget:
    """One request, repeated: the body is sent as given bytes (a webhook signature covers them)."""

    url: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    timeout_s: float = 10.0
    expected_status: frozenset[int] = frozenset()  # empty: any 2xx


class HttpSender:
    """Callable that sends the target's request on a shared client and classifies the result.

    The open-loop schedule calls it from several threads at once (httpx.Client is thread-safe), so
    a request is built per call (`request_target`; the signed-webhook sender signs a fresh body
    there) and nothing about it is stored on the shared sender."""

    def __init__(self, client: httpx.Client, target: HttpTarget, modelled: ModelledClock | None = None):
        self.client = client
        self.target = target
        self.modelled = modelled
        """Set: the server's reported work is the request's duration (see `ModelledClock`)."""
        self.reached = False  # until something answers, a connection failure means "unreachable"

    def request_target(self) -> HttpTarget:
        """The request this call sends: the target itself, unless a subclass makes each one anew."""
        return self.target

    def __call__(self) -> Outcome:
        import httpx

        target = self.request_target()
        try:
            response = self.client.request(target.method, target.url, headers=target.headers, content=target.body)
        except httpx.TimeoutException as exc:
            if not self.reached and isinstance(exc, httpx.ConnectTimeout):
                raise ProbeUnreachable(f"{target.url}: connect timed out") from None
            return Outcome(ok=False, timed_out=True, error=f"timeout: {type(exc).__name__}")
        except httpx.TransportError as exc:
            if not self.reached:
                raise ProbeUnreachable(f"{target.url}: {_describe(exc)}") from None
            return Outcome(ok=False, error=f"network: {_describe(exc)}")
        self.reached = True
        if self.modelled is not None:
            return self._modelled(response, target)
        return Outcome(ok=self._expected(response.status_code, target), status=response.status_code)

    def _modelled(self, response, target: HttpTarget) -> Outcome:
        work_ms = server_timing_ms(response.headers.get("server-timing"))
        if work_ms is None:
            raise ProbeUnreachable(f"{target.url}: no `Server-Timing: app;dur=` in the answer, which a "
                                   "modelled-latency probe needs (the sandbox app reports it)")
        if work_ms / 1000.0 >= target.timeout_s:  # the wall-clock client would have given up here
            self.modelled.served(target.timeout_s)
            return Outcome(ok=False, timed_out=True, error="timeout: modelled work beyond the timeout")
        self.modelled.served(work_ms / 1000.0)
        return Outcome(ok=self._expected(response.status_code, target), status=response.status_code)

    @staticmethod
    def _expected(status: int, target: HttpTarget) -> bool:
        if target.expected_status:
            return status in target.expected_status
        return 200 <= status < 300


def _describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def http_client(target: HttpTarget, rate: float, transport: httpx.BaseTransport | None = None,
                connections: int = 1) -> httpx.Client:
    """One client for the whole run, a keep-alive connection per in-flight slot; keep-alive outlives
    the interval so connections are reused."""
    import httpx

    keepalive = max(5.0, 3.0 / rate)
    return httpx.Client(timeout=httpx.Timeout(target.timeout_s), transport=transport, follow_redirects=False,
                        limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections,
                                            keepalive_expiry=keepalive))


def probe_slots(target: HttpTarget, rate: float, budget: Budget | None, max_in_flight: int) -> int:
    """In-flight slots for probing `target`: none waits below the critical budget (or the timeout)."""
    longest_s = budget.critical_ms / 1000 if budget is not None else target.timeout_s
    return in_flight_slots(rate, longest_s, max_in_flight)


def probe_http(target: HttpTarget, *, samples: int, rate: float, warmup: int = 1, budget: Budget | None = None,
               max_in_flight: int = DEFAULT_MAX_IN_FLIGHT, confidence: float = DEFAULT_CONFIDENCE,
               clock: Clock = time.perf_counter, sleep: Sleeper = time.sleep,
               on_attempt: Callable[[Attempt], None] | None = None, transport: httpx.BaseTransport | None = None,
               modelled: ModelledClock | None = None,
               sender: Callable[[httpx.Client, HttpTarget, ModelledClock | None], Send] = HttpSender) -> LatencyReport:
    """Time `target` on the open-loop schedule over one shared httpx.Client. Raises ProbeUnreachable.
    With `modelled`, the server's reported work is the time (see `ModelledClock`). `sender` builds
    the callable that sends one request (default HttpSender)."""
    slots = probe_slots(target, rate, budget, max_in_flight)
    with http_client(target, rate, transport, connections=slots) as client:
        return measure(sender(client, target, modelled), samples=samples, rate=rate, warmup=warmup, slots=slots,
                       budget=budget, confidence=confidence, clock=clock, sleep=sleep, modelled=modelled,
                       on_attempt=on_attempt)


# --- pooled across runs ----------------------------------------------------------------------------

@dataclass(frozen=True)
class PooledP95:
    """One endpoint's p95 over this run's samples and earlier runs' (the history `pages` carries):
    a canary of a few requests per run, pooled, judges what no single run can."""

    samples: int
    runs: int
    p95_ms: float | None
    ci_ms: tuple[float | None, float | None]
    verdict: str
    reason: str


def pooled_p95(values: Sequence[float], runs: int, budget: Budget,
               confidence: float = DEFAULT_CONFIDENCE) -> PooledP95:
    """The same order-statistic interval and verdict as one run's report, over pooled samples.
    Requests that failed are not in `values` (each run judges its own errors)."""
    ordered = sorted(values)
    n = len(ordered)
    if not n:
        return PooledP95(0, runs, None, (None, None), INCONCLUSIVE, "no pooled samples")
    ranks = order_statistic_ranks(n, P95, confidence)
    low = ordered[ranks.lower - 1] if ranks.lower else None
    high = ordered[ranks.upper - 1] if ranks.upper else None
    verdict = judge(low, high, budget)
    return PooledP95(n, runs, percentile(ordered, P95), (low, high), verdict,
                     explain(verdict, low, high, budget, n, confidence))


def decide_pooled(own: Decision, pooled: PooledP95 | None) -> Decision:
    """A canary's decision with the pooled evidence: what this run proved stands (a proven
    critical fails); otherwise a conclusive pooled verdict replaces "inconclusive"."""
    if pooled is None or own.outcome == FAIL or pooled.verdict == INCONCLUSIVE:
        return own
    headline = f"pooled {pooled.verdict} (n={pooled.samples} over {pooled.runs} run(s))"
    outcome = {CRITICAL: FAIL, WARNING: WARNING, PASS: PASS}[pooled.verdict]
    return Decision(outcome, headline, f"pooled p95 {_ms(pooled.p95_ms)}: {pooled.reason}")
