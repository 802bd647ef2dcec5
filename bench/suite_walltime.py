"""Wall time of the whole suite against the sandbox, per alerting API generation.

    python bench/suite_walltime.py [--runs 3]

Prints, per generation, the median wall time of `pytest` (a fresh interpreter each run, as a user
runs it), the time pytest itself reports for the session, and the Sentry API calls one run makes.
Machines here are noisy: compare generations within one run of this script, not across runs.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def run_once(generation: str, extra: list[str]) -> tuple[float, float, str]:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts=",
           f"--sandbox-generation={generation}", *extra]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"suite failed for {generation}:\n{proc.stdout[-2000:]}")
    match = re.search(r"(\d+) passed.* in ([\d.]+)s", proc.stdout)
    return wall, float(match.group(2)) if match else float("nan"), match.group(1) if match else "?"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("pytest_args", nargs="*")
    args = parser.parse_args()
    print(f"{'generation':<10} {'checks':>6} {'wall s (median)':>16} {'pytest s':>9}")
    for generation in ("legacy", "workflow", "both"):
        results = [run_once(generation, args.pytest_args) for _ in range(args.runs)]
        walls = [r[0] for r in results]
        print(f"{generation:<10} {results[0][2]:>6} {statistics.median(walls):>16.2f} "
              f"{statistics.median(r[1] for r in results):>9.2f}")


if __name__ == "__main__":
    main()
