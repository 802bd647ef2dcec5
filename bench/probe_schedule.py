"""Open loop vs one request at a time: what the probe reports against an endpoint of known latency.

    python bench/probe_schedule.py [--samples 500] [--rate 50] [--p50 40] [--p95 48] [--tail 0.03]

A loopback server (a child process, so probe and server do not share a GIL) sleeps each request for
a drawn time: lognormal through (--p50, --p95) ms, and with probability --tail a slow one, uniform
in 80..200 ms. It records every draw, so each run's *true* p95 is the nearest-rank p95 of the sleeps
it actually served (the request adds ~1 ms of loopback HTTP on top).

Each schedule times the same endpoint with probe_http, at --rate, budget warning 100 / critical 200 ms:

    one at a time   max_in_flight=1: the probe before the open-loop schedule (one connection; each
                    request waits for its predecessor and is timed from its intended send time)
    open loop       the default cap (4 in flight) and a wider one (16): each request leaves at its
                    time; slots = min(cap, floor(rate x critical) + 1)

Columns: reported p95 (what the probe judges), its 95% CI, from-send p95 (timed from the actual send,
as a closed-loop tool like wrk -c1 reports: the probe's own queue hidden), the achieved send rate,
requests that waited for a slot, and the run's wall time.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from paymon.probes.latency import Budget, HttpTarget, percentile, probe_http  # noqa: E402

Z95 = 1.6448536269514722
TAIL_MS = (80.0, 200.0)


def serve(p50: float, p95: float, tail: float, seed: int) -> None:
    """Child process: GET /slow sleeps a drawn time; GET /drawn returns (and forgets) the draws."""
    import asyncio

    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    rng, sigma, drawn = random.Random(seed), math.log(p95 / p50) / Z95, []

    async def slow(request):
        ms = rng.uniform(*TAIL_MS) if rng.random() < tail else p50 * math.exp(rng.gauss(0.0, sigma))
        drawn.append(ms)
        await asyncio.sleep(ms / 1000)
        return JSONResponse({"slept_ms": ms})

    async def report(request):
        served = list(drawn)
        drawn.clear()
        return JSONResponse(served)

    # IPPROTO_TCP so asyncio sets TCP_NODELAY (else ~40 ms delayed-ACK stalls)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    app = Starlette(routes=[Route("/slow", slow), Route("/drawn", report)])
    uvicorn.Server(uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)).run(sockets=[sock])


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve", "--p50", str(args.p50), "--p95", str(args.p95),
                             "--tail", str(args.tail), "--seed", str(args.seed)], stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    deadline = time.monotonic() + 10
    while True:  # the port is bound before uvicorn listens; wait until it answers
        try:
            draws(port)
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("bench server did not start")
            time.sleep(0.05)


def draws(port: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    conn.request("GET", "/drawn")
    return json.loads(conn.getresponse().read())


def run(name: str, base_url: str, port: int, args: argparse.Namespace, max_in_flight: int) -> dict:
    draws(port)  # forget what an earlier run left
    sent = []
    started = time.perf_counter()
    report = probe_http(HttpTarget(base_url + "/slow", timeout_s=10), samples=args.samples, rate=args.rate,
                        warmup=1, budget=Budget(100, 200), max_in_flight=max_in_flight,
                        on_attempt=lambda attempt: sent.append(attempt.sent) if not attempt.warmup else None)
    wall = time.perf_counter() - started
    true_p95 = percentile(sorted(draws(port)[1:]), 0.95)  # the warm-up's draw is not a sample
    low, high = report.p95_ci_ms
    return {"schedule": name, "slots": report.slots, "true_p95": true_p95, "reported_p95": report.p95_ms,
            "ci": (low, high), "from_send_p95": report.service_p95_ms, "verdict": report.verdict,
            "achieved_rate": (len(sent) - 1) / (max(sent) - min(sent)), "slot_waits": report.slot_waits,
            "peak_in_flight": report.peak_in_flight, "wall_s": wall, "errors": report.errors}


def _ms(value) -> str:
    return "unbounded" if value is None else f"{value:.1f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50.0)
    parser.add_argument("--p50", type=float, default=40.0)
    parser.add_argument("--p95", type=float, default=48.0)
    parser.add_argument("--tail", type=float, default=0.03, help="share of slow requests (80..200 ms)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.p50, args.p95, args.tail, args.seed)
        return
    proc, base_url = start_server(args)
    port = int(base_url.rsplit(":", 1)[1])
    try:
        rows = [run("one at a time (old)", base_url, port, args, max_in_flight=1),
                run("open loop, cap 4", base_url, port, args, max_in_flight=4),
                run("open loop, cap 16", base_url, port, args, max_in_flight=16)]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"{args.samples} samples at {args.rate:g}/s against {base_url}/slow: sleeps lognormal p50 {args.p50:g} "
          f"/ p95 {args.p95:g} ms, {args.tail:.0%} slow ({TAIL_MS[0]:g}..{TAIL_MS[1]:g} ms); budget 100 / 200 ms")
    header = (f"{'schedule':<20} {'slots':>5} {'true p95':>8} {'reported p95':>12} {'95% CI':>19} "
              f"{'from-send p95':>13} {'sent/s':>6} {'waited':>6} {'peak':>4} {'wall s':>6}  verdict")
    print(header)
    for row in rows:
        ci = f"[{_ms(row['ci'][0])}, {_ms(row['ci'][1])}]"
        print(f"{row['schedule']:<20} {row['slots']:>5} {row['true_p95']:>8.1f} {row['reported_p95']:>12.1f} "
              f"{ci:>19} {row['from_send_p95']:>13.1f} {row['achieved_rate']:>6.1f} {row['slot_waits']:>6} "
              f"{row['peak_in_flight']:>4} {row['wall_s']:>6.1f}  {row['verdict']}"
              + (f" ({row['errors']} errors)" if row["errors"] else ""))


if __name__ == "__main__":
    main()
