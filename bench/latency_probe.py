"""The latency probe's own overhead: one reused httpx.Client vs a fresh client per request.

    python bench/latency_probe.py [--rounds 5] [--per-round 60] [--rate 100]

A trivial Starlette app runs in a separate process (so client and server do not share a GIL). Three
senders time it through the same scheduler (paymon.probes.latency.run_schedule, with one in-flight
slot), so only the sender differs:

    raw       http.client, one keep-alive connection: the floor for a Python client
    probe     paymon's HttpSender over one httpx.Client (what `paymon probe` does)
    fresh     a new httpx.Client per request (connection set-up on every request)

Rounds interleave the senders so drift on a noisy 2-core machine hits all three alike. Compare
the ratios within one run, not absolute numbers across runs. Open loop vs one request at a time
against a slow endpoint: bench/probe_schedule.py.
"""

from __future__ import annotations

import argparse
import http.client
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from paymon.probes.latency import OK, HttpSender, HttpTarget, Outcome, http_client, percentile, run_schedule  # noqa: E402


def serve() -> None:
    """Child process: a one-route app on a free port; prints the port, then serves until killed."""
    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import JSONResponse
    from starlette.routing import Route

    async def ok(request):
        return JSONResponse({"ok": True})

    # IPPROTO_TCP so asyncio sets TCP_NODELAY (else ~40 ms delayed-ACK stalls)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(Starlette(routes=[Route("/ok", ok)]), lifespan="off", log_level="warning",
                            access_log=False)
    uvicorn.Server(config).run(sockets=[sock])


def start_server() -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, __file__, "--serve"], stdout=subprocess.PIPE, text=True)
    port = int(proc.stdout.readline())
    url = f"http://127.0.0.1:{port}/ok"
    deadline = time.monotonic() + 10
    while True:  # the port is bound before uvicorn listens; wait until it answers
        try:
            http.client.HTTPConnection("127.0.0.1", port, timeout=1).request("GET", "/ok")
            return proc, url
        except OSError:
            if time.monotonic() > deadline:
                proc.kill()
                raise SystemExit("bench server did not start")
            time.sleep(0.05)


class RawSender:
    """http.client over one keep-alive connection."""

    def __init__(self, url: str):
        parts = urlsplit(url)
        self.path = parts.path
        self.conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)

    def __call__(self) -> Outcome:
        self.conn.request("GET", self.path)
        response = self.conn.getresponse()
        response.read()
        return OK if response.status == 200 else Outcome(ok=False, status=response.status)

    def close(self) -> None:
        self.conn.close()


class FreshClientSender:
    """A new httpx.Client per request: what a naive probe does."""

    def __init__(self, target: HttpTarget, rate: float):
        self.target, self.rate = target, rate

    def __call__(self) -> Outcome:
        with http_client(self.target, self.rate) as client:
            return HttpSender(client, self.target)()

    def close(self) -> None:
        pass


class ProbeSender:
    """paymon's sender over one client, as probe_http uses it."""

    def __init__(self, target: HttpTarget, rate: float):
        self.client = http_client(target, rate)
        self.send = HttpSender(self.client, target)

    def __call__(self) -> Outcome:
        return self.send()

    def close(self) -> None:
        self.client.close()


def run_round(name: str, url: str, samples: int, rate: float) -> tuple[list[float], list[float], float]:
    """(service times ms, scheduled latencies ms, CPU s per request) for one round of one sender."""
    target = HttpTarget(url=url, timeout_s=10)
    sender = {"raw": lambda: RawSender(url), "probe": lambda: ProbeSender(target, rate),
              "fresh": lambda: FreshClientSender(target, rate)}[name]()
    try:
        cpu = time.process_time()
        # One slot: the raw sender has one connection, and the senders are compared one request at a time.
        attempts, _ = run_schedule(sender, samples=samples, rate=rate, warmup=3, slots=1)
        cpu = (time.process_time() - cpu) / (samples + 3)
    finally:
        sender.close()
    measured = [a for a in attempts if not a.warmup]
    failed = [a.outcome for a in measured if not a.outcome.ok]
    if failed:
        raise SystemExit(f"{name}: {len(failed)} failed requests, e.g. {failed[0]}")
    return [a.service_ms for a in measured], [a.latency_ms for a in measured], cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--per-round", type=int, default=40)
    parser.add_argument("--rate", type=float, default=25.0, help="schedule, requests/s (default 25)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve()
        return
    proc, url = start_server()
    names = ("raw", "probe", "fresh")
    service = {name: [] for name in names}
    scheduled = {name: [] for name in names}
    cpu = {name: [] for name in names}
    try:
        for _ in range(args.rounds):
            for name in names:
                service_ms, scheduled_ms, cpu_per_request = run_round(name, url, args.per_round, args.rate)
                service[name] += service_ms
                scheduled[name] += scheduled_ms
                cpu[name].append(cpu_per_request)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    print(f"{args.rounds} rounds x {args.per_round} requests per sender, interleaved, at {args.rate:g}/s "
          f"against {url}")
    print("service = from the actual send (the sender's own cost); scheduled = from the intended send "
          "(what the probe reports: includes queueing when a sender cannot keep the schedule)")
    print(f"{'sender':<6} {'service p50':>11} {'p95':>7} {'scheduled p50':>13} {'p95':>8} {'CPU ms/req':>10} "
          f"{'p50 / probe':>11}")
    probe_p50 = percentile(sorted(service["probe"]), 0.5)
    for name in names:
        own, queued = sorted(service[name]), sorted(scheduled[name])
        p50 = percentile(own, 0.5)
        print(f"{name:<6} {p50:>11.2f} {percentile(own, 0.95):>7.2f} {percentile(queued, 0.5):>13.2f} "
              f"{percentile(queued, 0.95):>8.2f} {1000 * statistics.median(cpu[name]):>10.2f} "
              f"{p50 / probe_p50:>11.2f}")


if __name__ == "__main__":
    main()
