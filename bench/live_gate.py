"""The live gate's wall time against its slowest single wait (issue 12): is a gate run as long as
the longest thing it must wait for, or the sum of its waits?

    python bench/live_gate.py [--slack-delay 3] [--pagerduty-delay 20] [--workers 2] [--runs 1]

A golden sandbox is served as `paymon sandbox serve` does (the app takes its latency for real),
with realistic delivery delays: Sentry's Slack post a few seconds after the alert fires, and
PagerDuty's incident ~20 s after the event is accepted. Then `pytest --target live -n N` — the gate
with its defaults, configured only through the documented variables (`live_environment()`) — runs
in a fresh interpreter, as CI runs it.

Reported per run:
  wall s        the gate's wall time (child interpreter, start to exit) and its exit code
  slack s, pd s the delivery times the checks measured (JUnit properties: service stamp - sent)
  slowest s     the slowest single wait: max(slack s, pd s)
  wall/slowest  their ratio: 1.0 would be a gate that costs only its slowest wait

Machines here are noisy: compare rows of one invocation, not across invocations.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def _properties(junit: Path) -> dict[str, str]:
    found = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        for prop in case.iter("property"):
            found[prop.get("name")] = prop.get("value")
    return found


def one_run(slack_delay: float, pagerduty_delay: float, workers: int) -> dict:
    from paymon.sandbox.server import SandboxServer
    from paymon.sandbox.world import golden_world

    world = golden_world()
    world["app"].setdefault("knobs", {})["latency_mode"] = "wait"
    # Sentry's engine hands each firing to Slack / PagerDuty at its own `delivery_delay[kind]`
    # (paymon/sandbox/sentry/engine.py); PagerDuty's incident exists from then.
    delays = world["sentry"].setdefault("knobs", {}).setdefault("delivery_delay", {})
    delays.update(slack=slack_delay, pagerduty=pagerduty_delay)
    with SandboxServer(world) as server, tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SENTRY_", "PAYMON_", "SLACK_", "PAGERDUTY_", "LEMONSQUEEZY_"))}
        env.update(server.live_environment())
        junit = Path(tmp) / "junit.xml"
        command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--target", "live",
                   f"--junitxml={junit}", *(["-n", str(workers)] if workers else [])]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
        wall = time.perf_counter() - start
        props = _properties(junit) if junit.exists() else {}
    slack = float(props.get("slack_delivery_seconds") or "nan")
    pagerduty = float(props.get("pagerduty_delivery_seconds") or "nan")
    slowest = max(slack, pagerduty)
    return {"exit": done.returncode, "wall": wall, "slack": slack, "pd": pagerduty, "slowest": slowest,
            "ratio": wall / slowest if slowest == slowest and slowest > 0 else float("nan"),
            "tail": done.stdout.strip().splitlines()[-1:] if done.returncode else []}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slack-delay", type=float, default=3.0)
    parser.add_argument("--pagerduty-delay", type=float, default=20.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    print(f"slack delay {args.slack_delay:g} s, PagerDuty delay {args.pagerduty_delay:g} s, -n {args.workers}")
    print(f"{'run':>3} {'exit':>4} {'wall s':>7} {'slack s':>8} {'pd s':>6} {'slowest s':>9} {'wall/slowest':>12}")
    for n in range(args.runs):
        row = one_run(args.slack_delay, args.pagerduty_delay, args.workers)
        print(f"{n + 1:>3} {row['exit']:>4} {row['wall']:>7.1f} {row['slack']:>8.1f} {row['pd']:>6.1f} "
              f"{row['slowest']:>9.1f} {row['ratio']:>12.2f}  {' '.join(row['tail'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
