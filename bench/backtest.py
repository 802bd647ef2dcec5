"""How long a backtest takes against the sandbox, and how many API calls it makes.

    python bench/backtest.py [--days 7] [--runs 3] [--generation workflow] [--page-size 100]

One sandbox per generation, with the generated history (paymon.sandbox.history, seed 7) loaded
once; then, per run, `paymon backtest`'s work (paymon.reviews.run.backtest_with_actuals): reading
the alerts, the per-minute counts of each alert (events-timeseries) and, for the actual firings,
Slack and PagerDuty. Prints the median wall time of the backtest, its API calls split by service
and endpoint, and what loading the history cost. Machines here are noisy: compare within one run.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from paymon.reviews import run
from paymon.reviews.session import ReviewSession
from paymon.sandbox.history import load_sandbox_history
from paymon.sandbox.server import SandboxServer
from paymon.sandbox.world import golden_world
from paymon.clients.sentry.client import SentryClient
from paymon.config.spec import load_spec
from paymon.config.target import Target

REPO = Path(__file__).resolve().parent.parent


def _endpoint(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    return "/".join(parts[4:6] if len(parts) > 4 and parts[2] == "organizations" else parts[-2:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--generation", choices=("legacy", "workflow", "both"), default="workflow")
    parser.add_argument("--page-size", type=int, default=None, help="the sandbox's page size knob")
    args = parser.parse_args()
    spec = load_spec(REPO / "monitoring.yaml")
    world = golden_world(args.generation)
    if args.page_size:
        world["sentry"]["knobs"]["page_size"] = args.page_size
    with SandboxServer(world) as server:
        began = time.perf_counter()
        summary = load_sandbox_history(server, days=int(max(7, args.days + 1)), seed=7)
        loaded = time.perf_counter() - began
        print(f"history: {summary.events} error events, {summary.transactions} transactions, "
              f"{summary.firings} engine firings, loaded in {loaded:.2f} s")
        walls, calls = [], []
        for _ in range(args.runs):
            target = Target("sandbox", sandbox=server.describe())
            client = SentryClient(target.sentry(), deadline=30)
            session = ReviewSession(target, client, server.clock.now())
            before = len(server.sentry.requests)
            start = time.perf_counter()
            report = run.backtest_with_actuals(session, spec, args.days)
            walls.append(time.perf_counter() - start)
            calls.append(report.api_calls)
            sentry_paths = collections.Counter(_endpoint(r.path) for r in server.sentry.requests[before:])
            client.close()
        print(f"backtest --days {args.days:g} ({args.generation}): median {statistics.median(walls):.3f} s "
              f"over {args.runs} runs (min {min(walls):.3f}, max {max(walls):.3f})")
        print(f"API calls per backtest: {calls[-1]} in all; Sentry {sum(sentry_paths.values())}: "
              + ", ".join(f"{k} {v}" for k, v in sorted(sentry_paths.items())))
        print(f"  Slack and PagerDuty (actual firings): {calls[-1] - sum(sentry_paths.values())}")
        replayed = [a for a in report.alerts if a.replayed]
        print(f"  alerts replayed {len(replayed)} of {len(report.alerts)}; would fire: "
              + ", ".join(f"{a.name} {a.would_fire}" for a in replayed if a.would_fire))


if __name__ == "__main__":
    main()
