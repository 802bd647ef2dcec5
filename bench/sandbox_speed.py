"""How fast the sandbox's parts are: server start and stop, the alert engine under a burst, the
order-statistic ranks for a large sample. These used to be wall-clock limits inside paymon's own
tests; a test must not depend on a quiet machine, so they are measured here instead.

    python bench/sandbox_speed.py [--runs 5]

Prints the median and the spread of each over the runs. Compare within one run of this script:
machines here are 2 cores and noisy.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from paymon.probes.latency import order_statistic_ranks  # noqa: E402
from paymon.sandbox.hub import Hub, SandboxClock  # noqa: E402
from paymon.sandbox.sentry import SentryBackend  # noqa: E402
from paymon.sandbox.server import SandboxServer  # noqa: E402
from paymon.sandbox.world import golden_world  # noqa: E402


def server_start_stop() -> tuple[float, float]:
    started = time.perf_counter()
    server = SandboxServer(golden_world("workflow")).start()
    up = time.perf_counter() - started
    stopping = time.perf_counter()
    server.stop()
    return up, time.perf_counter() - stopping


def engine_burst(events: int = 5000) -> float:
    """Events per second the engine takes: `events` payment errors in chunks of 500."""
    world = golden_world("both")
    hub = Hub(clock=SandboxClock(start=1_780_000_000.0, frozen=True))
    backend = SentryBackend(world["sentry"], hub=hub)
    payloads = [{"message": f"Checkout failed {i}", "level": "error", "environment": "production",
                 "tags": {"payment_flow": "checkout"}, "exception": {"values": [{"type": "CardDeclinedError"}]}}
                for i in range(events)]
    started = time.perf_counter()
    for chunk in range(0, events, 500):
        backend.store_events(payloads[chunk:chunk + 500])
        hub.clock.advance(0.1)
    return events / (time.perf_counter() - started)


def ranks_large_n() -> float:
    started = time.perf_counter()
    order_statistic_ranks(100_000)
    return (time.perf_counter() - started) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    starts, stops, rates, ranks = [], [], [], []
    for _ in range(args.runs):
        up, down = server_start_stop()
        starts.append(up)
        stops.append(down)
        rates.append(engine_burst())
        ranks.append(ranks_large_n())

    def line(name: str, values: list[float], unit: str) -> str:
        return (f"{name:<34} median {statistics.median(values):>9.3f} {unit:<9} "
                f"(min {min(values):.3f}, max {max(values):.3f})")

    print(line("sandbox server start (golden)", starts, "s"))
    print(line("sandbox server stop", stops, "s"))
    print(line("alert engine, 5000-event burst", rates, "events/s"))
    print(line("order_statistic_ranks(100000)", ranks, "ms"))


if __name__ == "__main__":
    main()
