"""How right is the probe's p95, how honest is its interval, and what does the probe itself add?

    python bench/p95_accuracy.py [--reps 50] [--samples 120] [--rate 30] [--p50 8 --p95 16]
                                 [--wrk-seconds 10] [--skip-http] [--skip-wrk]

1. Statistics alone (no HTTP): 2000 runs of `--samples` draws from the lognormal the sandbox app
   uses (median p50, 95th percentile p95): the reported p95's error and how often the 95%
   order-statistic interval contains the true p95 (its coverage; distribution-free, so >= 95%).
2. End to end: the sandbox app (in a child process, so probe and server do not share a GIL) with
   that latency distribution on /api/checkout/pro, probed `--reps` times with probe_http exactly
   as the gate does. Truth is the configured p95 of the app's simulated work; the request itself
   adds loopback HTTP and the app's own cost on top, so the bias is reported, and coverage is given
   against the configured p95 and against a reference p95 of the whole request (one long run).
3. The probe's own added latency per request against wrk (C, one connection, closed loop) on the
   same loopback endpoint: the tiny one-route server of bench/latency_probe.py (GET) and the
   sandbox app's /api/checkout/pro with no simulated work (POST). Both tools run closed loop (the
   probe at a rate it cannot keep, timed from the actual send) so the server sees the same load.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from paymon.probes.latency import (  # noqa: E402
    HttpSender,
    HttpTarget,
    http_client,
    order_statistic_ranks,
    percentile,
    probe_http,
    run_schedule,
)

Z95 = 1.6448536269514722
PRO = "/api/checkout/pro"


# --- 1. the estimator alone ---------------------------------------------------------------------------

def lognormal(p50: float, p95: float):
    sigma = math.log(p95 / p50) / Z95
    return lambda rng: p50 * math.exp(rng.gauss(0.0, sigma))


def statistics_only(p50: float, p95: float, samples: int, runs: int = 2000, seed: int = 1) -> dict:
    rng, draw = random.Random(seed), lognormal(p50, p95)
    ranks = order_statistic_ranks(samples)
    errors, covered, widths = [], 0, []
    for _ in range(runs):
        values = sorted(draw(rng) for _ in range(samples))
        estimate = percentile(values, 0.95)
        low = values[ranks.lower - 1] if ranks.lower else None
        high = values[ranks.upper - 1] if ranks.upper else None
        errors.append(estimate - p95)
        covered += (low is None or low <= p95) and (high is None or p95 <= high)  # a missing end: unbounded
        if low is not None and high is not None:
            widths.append(high - low)
    return {"runs": runs, "samples": samples, "true_p95": p95, "mean_error": statistics.fmean(errors),
            "median_abs_error": statistics.median(abs(e) for e in errors),
            "rmse": math.sqrt(statistics.fmean(e * e for e in errors)), "coverage": covered / runs,
            "median_ci_width": statistics.median(widths) if widths else None,
            "ranks": (ranks.lower, ranks.upper)}


# --- 2. end to end through the sandbox app ----------------------------------------------------------------

def serve_sandbox(latency: str) -> None:
    """Child process: the golden sandbox with the app's latency overridden; prints its description."""
    import threading

    from paymon.sandbox.server import SandboxServer
    from paymon.sandbox.world import golden_world

    world = golden_world()
    world["app"]["knobs"]["latency_ms"] = json.loads(latency)
    with SandboxServer(world) as server:
        print(json.dumps(server.describe()), flush=True)
        threading.Event().wait()


def start_sandbox(latency: dict) -> tuple[subprocess.Popen, dict]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve-sandbox", json.dumps(latency)],
                            stdout=subprocess.PIPE, text=True)
    return proc, json.loads(proc.stdout.readline())


def pro_target(app_url: str) -> HttpTarget:
    return HttpTarget(app_url + PRO, method="POST", timeout_s=10,
                      headers={"Content-Type": "application/json", "User-Agent": "paymon/bench"},
                      body=b'{"user_id":"paymon-synthetic"}')


def end_to_end(p50: float, p95: float, reps: int, samples: int, rate: float, reference_samples: int) -> dict:
    proc, info = start_sandbox({PRO: {"p50": p50, "p95": p95}, "default": 0})
    try:
        target = pro_target(info["app"]["base_url"])
        reference = probe_http(target, samples=reference_samples, rate=rate, warmup=5)
        runs = [probe_http(target, samples=samples, rate=rate, warmup=1) for _ in range(reps)]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    ref = reference.p95_ms

    def covers(run, truth):
        low, high = run.p95_ci_ms
        return (low is None or low <= truth) and (high is None or truth <= high)  # a missing end: unbounded

    p95s = [r.p95_ms for r in runs]
    return {"reps": reps, "samples": samples, "rate": rate, "configured_p95": p95, "reference_p95": ref,
            "reference_samples": reference_samples, "reference_p50": reference.p50_ms,
            "mean_reported_p95": statistics.fmean(p95s), "sd_reported_p95": statistics.stdev(p95s),
            "mean_error_vs_configured": statistics.fmean(p - p95 for p in p95s),
            "mean_error_vs_reference": statistics.fmean(p - ref for p in p95s),
            "median_abs_error_vs_reference": statistics.median(abs(p - ref) for p in p95s),
            "coverage_vs_configured": sum(covers(r, p95) for r in runs) / reps,
            "coverage_vs_reference": sum(covers(r, ref) for r in runs) / reps,
            "median_ci": [_median_or_none(r.p95_ci_ms[0] for r in runs),
                          _median_or_none(r.p95_ci_ms[1] for r in runs)]}


def _median_or_none(values):
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _show(value) -> str:
    return "unbounded" if value is None else f"{value:.2f}"


# --- 3. the probe's own cost against wrk ---------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(output: str) -> dict:
    found = {}
    for label, value, unit in re.findall(r"^\s*(50|75|90|99)%\s+([\d.]+)(us|ms|s)\s*$", output, re.M):
        found[f"p{label}"] = float(value) * _UNITS[unit]
    avg = re.search(r"Latency\s+([\d.]+)(us|ms|s)", output)
    if avg:
        found["avg"] = float(avg.group(1)) * _UNITS[avg.group(2)]
    rps = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if rps:
        found["rps"] = float(rps.group(1))
    return found


def run_wrk(url: str, seconds: int, post_body: str | None = None) -> dict:
    cmd = ["wrk", "-t1", "-c1", f"-d{seconds}s", "--latency"]
    script = None
    if post_body is not None:
        script = tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False)
        script.write(f'wrk.method = "POST"\nwrk.body = {json.dumps(post_body)}\n'
                     'wrk.headers["Content-Type"] = "application/json"\n')
        script.close()
        cmd += ["-s", script.name]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, timeout=seconds + 30)
    if script:
        Path(script.name).unlink()
    if out.returncode != 0:
        raise SystemExit(f"wrk failed: {out.stderr.strip()}")
    return parse_wrk(out.stdout)


def run_probe_closed_loop(target: HttpTarget, seconds: float) -> dict:
    """The probe's sender (one reused httpx client) back to back for `seconds`: timed from the
    actual send (service time), as wrk times its requests."""
    rate = 5000.0  # far above what one connection does: the schedule never waits
    with http_client(target, rate) as client:
        sender = HttpSender(client, target)
        run_schedule(sender, samples=50, rate=rate, warmup=0, slots=1)  # warm the connection and the server
        started, service = time.monotonic(), []
        while time.monotonic() - started < seconds:
            attempts, _ = run_schedule(sender, samples=200, rate=rate, warmup=0, slots=1)  # closed loop, as wrk -c1
            service += [a.service_ms for a in attempts if a.outcome.ok]
    service.sort()
    return {"p50": percentile(service, 0.5), "p75": percentile(service, 0.75), "p90": percentile(service, 0.9),
            "p99": percentile(service, 0.99), "avg": statistics.fmean(service), "rps": len(service) / seconds,
            "n": len(service)}


def overhead(seconds: int) -> list[dict]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import latency_probe  # the tiny server

    results = []
    proc, url = latency_probe.start_server()
    try:
        wrk = run_wrk(url, seconds)
        probe = run_probe_closed_loop(HttpTarget(url=url, timeout_s=10), seconds)
        results.append({"endpoint": "tiny server GET /ok", "wrk": wrk, "probe": probe})
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    proc, info = start_sandbox({"default": 0})
    try:
        target = pro_target(info["app"]["base_url"])
        wrk = run_wrk(target.url, seconds, post_body=target.body.decode())
        probe = run_probe_closed_loop(target, seconds)
        results.append({"endpoint": f"sandbox app POST {PRO} (no simulated work)", "wrk": wrk, "probe": probe})
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=50)
    parser.add_argument("--samples", type=int, default=120)
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--p50", type=float, default=8.0)
    parser.add_argument("--p95", type=float, default=16.0)
    parser.add_argument("--reference-samples", type=int, default=2000)
    parser.add_argument("--wrk-seconds", type=int, default=10)
    parser.add_argument("--skip-http", action="store_true")
    parser.add_argument("--skip-wrk", action="store_true")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--serve-sandbox", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_sandbox is not None:
        serve_sandbox(args.serve_sandbox)
        return

    out = {"statistics_only": statistics_only(args.p50, args.p95, args.samples)}
    s = out["statistics_only"]
    width = "n/a (no upper bound at this n)" if s["median_ci_width"] is None else f"{s['median_ci_width']:.2f} ms"
    print(f"1. estimator alone: {s['runs']} runs x {s['samples']} lognormal draws (p50 {args.p50:g} ms, "
          f"true p95 {args.p95:g} ms), CI ranks {s['ranks']}")
    print(f"   p95 error: mean {s['mean_error']:+.2f} ms, median |error| {s['median_abs_error']:.2f} ms, "
          f"RMSE {s['rmse']:.2f} ms; 95% CI coverage {s['coverage']:.1%}, median width {width}")
    if not args.skip_http:
        e = out["end_to_end"] = end_to_end(args.p50, args.p95, args.reps, args.samples, args.rate,
                                           args.reference_samples)
        print(f"2. end to end: {e['reps']} probe runs x {e['samples']} requests at {e['rate']:g}/s, sandbox app "
              f"{PRO} with lognormal work (p50 {args.p50:g}, p95 {args.p95:g} ms)")
        print(f"   reference run ({e['reference_samples']} requests): p50 {e['reference_p50']:.2f} ms, "
              f"p95 {e['reference_p95']:.2f} ms (work + HTTP + app)")
        print(f"   reported p95: mean {e['mean_reported_p95']:.2f} ms (sd {e['sd_reported_p95']:.2f}); error "
              f"{e['mean_error_vs_configured']:+.2f} ms vs configured, {e['mean_error_vs_reference']:+.2f} ms vs "
              f"reference (median |error| {e['median_abs_error_vs_reference']:.2f} ms)")
        print(f"   CI coverage: {e['coverage_vs_reference']:.0%} of the reference p95, "
              f"{e['coverage_vs_configured']:.0%} of the configured p95; median CI "
              f"[{_show(e['median_ci'][0])}, {_show(e['median_ci'][1])}] ms")
    if not args.skip_wrk:
        if shutil.which("wrk") is None:
            raise SystemExit("wrk is not installed (apt-get install wrk)")
        out["overhead"] = overhead(args.wrk_seconds)
        print(f"3. probe vs wrk, one connection, closed loop, {args.wrk_seconds} s each (ms):")
        print(f"   {'endpoint':<48} {'tool':<6} {'p50':>7} {'p90':>7} {'p99':>7} {'avg':>7} {'req/s':>8}")
        for row in out["overhead"]:
            for tool in ("wrk", "probe"):
                r = row[tool]
                print(f"   {row['endpoint']:<48} {tool:<6} {r.get('p50', 0):>7.3f} {r.get('p90', 0):>7.3f} "
                      f"{r.get('p99', 0):>7.3f} {r.get('avg', 0):>7.3f} {r.get('rps', 0):>8.0f}")
            added = row["probe"]["p50"] - row["wrk"]["p50"]
            print(f"   {'':<48} probe adds {added:+.3f} ms per request at p50 "
                  f"({row['probe']['avg'] - row['wrk']['avg']:+.3f} ms on average)")
    if args.json:
        print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
