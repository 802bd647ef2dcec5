"""paymon's own tests, the way CI and a developer before each commit run them: one command.

    python tests/run.py [pytest options]          e.g. python tests/run.py -x -k sandbox

1. Every test not marked `wall_time`, in parallel under pytest-xdist (`--workers`, default: twice
   the cores, as most of the time goes to subprocess suite runs and sockets, not to the CPU).
2. The few `wall_time` tests, which measure real elapsed time, afterwards and alone, so the rest
   of the machine's load cannot bend what they measure.

Extra arguments go to both phases. The exit code is the first failing phase's; the last line
counts both phases. `pytest tests -m wall_time` and `pytest tests -n 4 -m "not wall_time"` run
the phases by hand.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
NO_TESTS = 5  # pytest's exit code when a selection is empty


def _workers(argv: list[str]) -> tuple[str, list[str]]:
    for i, arg in enumerate(argv):
        if arg.startswith("--workers="):
            return arg.split("=", 1)[1], argv[:i] + argv[i + 1:]
        if arg == "--workers" and i + 1 < len(argv):
            return argv[i + 1], argv[:i] + argv[i + 2:]
    return str(max(2, 2 * (os.cpu_count() or 1))), argv


def _phase(title: str, args: list[str]) -> tuple[int, dict[str, int]]:
    print(f"== {title}: pytest {' '.join(args)}", flush=True)
    proc = subprocess.Popen([sys.executable, "-m", "pytest", *args], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, bufsize=1)
    last = ""
    for line in proc.stdout:
        sys.stdout.write(line)
        if line.strip():
            last = line
    code = proc.wait()
    counts = {word: int(n) for n, word in re.findall(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)",
                                                     last)}
    if "error" in counts:
        counts["errors"] = counts.pop("error")
    return code, counts


def main(argv: list[str]) -> int:
    workers, extra = _workers(argv)
    started = time.perf_counter()
    phases = [
        # worksteal: a worker that runs out of tests takes some of a busy one's, so a few long ones at
        # the end do not leave the other workers idle.
        ("in parallel", ["tests", "-p", "no:cacheprovider", "-n", workers, "--dist=worksteal", "-m", "not wall_time",
                         *extra]),
        # Its own report files: the default ones (reports/selftest/) hold the first phase's.
        ("wall-time tests, alone", ["tests", "-p", "no:cacheprovider", "-m", "wall_time",
                                    "--junitxml=reports/selftest/junit-wall-time.xml",
                                    "--alluredir=reports/selftest/allure-results-wall-time", *extra]),
    ]
    code, total = 0, {}
    for title, args in phases:
        phase_code, counts = _phase(title, args)
        for key, value in counts.items():
            total[key] = total.get(key, 0) + value
        if phase_code not in (0, NO_TESTS) and code == 0:
            code = phase_code
    failed = total.get("failed", 0) + total.get("errors", 0)
    if failed and code == 0:
        code = 1
    print(f"== both phases took {time.perf_counter() - started:.0f} s", flush=True)
    print(f"selftest: {total.get('passed', 0)} passed, {failed} failed", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
