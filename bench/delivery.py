"""What the end-to-end delivery checks cost: wall time, the delivery wait, and API calls per service.

    python bench/delivery.py [--runs 1] [--workers 0 2] [--generation workflow] [--spec FILE]
    python bench/delivery.py --trust [N]          # the noisy world N times (default 20)

Each run is `pytest` on the checks in a fresh interpreter, as a user runs it (pytest.ini's addopts
included, so `-n 2` uses `--dist=loadgroup` like CI), with its JUnit, verdict and Allure results in
a temporary directory (reports/ is left alone). The served sandbox has no endpoint that counts
requests, so the child interpreter runs `pytest.main` with a plugin that reads, at the end of the
session, the request log of every backend of the sandbox that process started (with xdist the
controller starts it and the workers reach it over HTTP, so one log sees every worker's calls).

Reported per run:
  wall s          the suite's wall time (the child interpreter, start to exit)
  wait s          the slowest delivery check's duration (JUnit `time`, which includes the fixture
                  that polls Slack/PagerDuty): how long the suite waited on one delivery
  wait/wall       their ratio: the share of the run spent waiting on delivery
  slack s, pd s   the delivery latency the checks measured (JUnit properties
                  `slack_delivery_seconds` / `pagerduty_delivery_seconds`: service stamp - sent)
  calls           API requests the sandbox served, per service (Sentry's web API and its event
                  ingestion apart; retries of injected failures included)

Machines here are noisy: compare rows of one invocation, not across invocations.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DELIVERY_TESTS = ("test_slack_delivery", "test_pagerduty_delivery")
SERVICES = ("sentry", "ingest", "slack", "pagerduty", "other")


# --- the child: one suite run in this interpreter --------------------------------------------------

class RequestCounter:
    """pytest plugin: at session end, count the requests of the sandbox this process started."""

    def __init__(self, out: Path):
        self.out = out

    def pytest_sessionfinish(self, session) -> None:
        from fixtures.plugin import SANDBOX_KEY

        config = session.config
        if hasattr(config, "workerinput"):
            return
        server = config.stash.get(SANDBOX_KEY, None)
        counts: Counter = Counter()
        detail: Counter = Counter()
        if server is not None:
            for name, backend in server.backends.items():
                for request in getattr(backend, "requests", None) or []:
                    method, path = getattr(request, "method", None), getattr(request, "path", None)
                    status = getattr(request, "status", "")
                    if name == "sentry":
                        service = "ingest" if str(path).endswith(("/envelope/", "/store/")) else "sentry"
                        what = f"{method} {path}"
                    elif name == "slack":
                        service, what = "slack", method
                    elif name == "pagerduty":
                        service, what = "pagerduty", f"{method} {path}"
                    else:  # a service this bench does not know yet: counted, not broken down
                        service, what = "other", f"{name} {method or ''} {path or request}".strip()
                    counts[service] += 1
                    detail[f"{service} {what} {status}"] += 1
        self.out.write_text(json.dumps({"counts": counts, "detail": detail, "sandbox": server is not None}))


def child(out: str, args: list[str]) -> int:
    import pytest

    os.chdir(REPO)
    sys.path.insert(0, str(REPO))
    return int(pytest.main(args, plugins=[RequestCounter(Path(out))]))


# --- the parent: run, read, tabulate ---------------------------------------------------------------

def run_once(pytest_args: list[str], workdir: Path, label: str) -> dict:
    counts_file, junit = workdir / f"{label}-counts.json", workdir / f"{label}-junit.xml"
    args = ["-q", "-p", "no:cacheprovider", f"--junitxml={junit}",
            f"--alluredir={workdir / (label + '-allure')}", *pytest_args]
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", str(counts_file), "--", *args]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "PAYMON_"))}
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    result = {"label": label, "returncode": proc.returncode, "wall": wall, "output": proc.stdout + proc.stderr,
              "counts": {}, "detail": {}, "failed": [], "wait": None, "slack": None, "pagerduty": None}
    if counts_file.exists():
        data = json.loads(counts_file.read_text())
        result["counts"], result["detail"] = data["counts"], data["detail"]
    if junit.exists():
        waits = []
        for case in ET.parse(junit).getroot().iter("testcase"):
            name = case.get("name")
            if name.rfind("@") > name.rfind("]"):
                name = name.rsplit("@", 1)[0]  # xdist --dist=loadgroup's group suffix
            if case.find("failure") is not None or case.find("error") is not None:
                result["failed"].append(name)
            if name in DELIVERY_TESTS:
                waits.append(float(case.get("time") or 0))
                for prop in case.iter("property"):
                    if prop.get("name") in ("slack_delivery_seconds", "pagerduty_delivery_seconds"):
                        value = prop.get("value")
                        key = prop.get("name").split("_")[0]
                        result[key] = float(value) if value not in (None, "None") else None
        result["wait"] = max(waits) if waits else None
    return result


def _fmt(value, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths)))


def print_table(headers: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows)]
    print(_row(headers, widths))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(_row(row, widths))


def short_spec(workdir: Path) -> Path:
    import yaml

    from paymon.sandbox.trust import TRUST_DEADLINES

    data = yaml.safe_load((REPO / "monitoring.yaml").read_text())
    data["delivery"]["slack"]["deadline"] = f"{TRUST_DEADLINES['slack']:g}s"
    data["delivery"]["pagerduty"]["deadline"] = f"{TRUST_DEADLINES['pagerduty']:g}s"
    path = workdir / "monitoring-short.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def bench(args, workdir: Path) -> int:
    base = [f"--sandbox-generation={args.generation}"]
    if args.spec:
        base.append(f"--spec={args.spec}")
    print(f"suite against the golden {args.generation} sandbox, {args.runs} run(s) per worker count"
          + (f", spec {args.spec}" if args.spec else ", monitoring.yaml"))
    headers = ["run", "exit", "wall s", "wait s", "wait/wall", "slack s", "pd s", *SERVICES, "total"]
    rows, summary, bad = [], [], 0
    for workers in args.workers:
        results = []
        for i in range(args.runs):
            label = f"n{workers}-{i + 1}"
            result = run_once([*base, "-n", str(workers)], workdir, label)
            results.append(result)
            if result["returncode"] != 0:
                bad += 1
                print(f"! {label}: exit {result['returncode']}, failed {result['failed']}\n"
                      f"{result['output'][-1500:]}", file=sys.stderr)
            c = result["counts"]
            rows.append([label, str(result["returncode"]), _fmt(result["wall"]), _fmt(result["wait"]),
                         _fmt(result["wait"] / result["wall"] if result["wait"] is not None else None, ".0%"),
                         _fmt(result["slack"]), _fmt(result["pagerduty"]),
                         *[str(c.get(s, 0)) for s in SERVICES], str(sum(c.values()))])
        summary.append((workers, results))
    print_table(headers, rows)
    if len(args.workers) > 1 or args.runs > 1:
        print("\nmedians")
        srows = []
        for workers, results in summary:
            def med(key, results=results):
                return statistics.median(r[key] for r in results if r[key] is not None)

            counts = {s: statistics.median(r["counts"].get(s, 0) for r in results) for s in SERVICES}
            srows.append([f"-n {workers}", _fmt(med("wall")), _fmt(med("wait")), _fmt(med("wait") / med("wall"), ".0%"),
                          *[f"{counts[s]:g}" for s in SERVICES], f"{sum(counts.values()):g}"])
        print_table(["workers", "wall s", "wait s", "wait/wall", *SERVICES, "total"], srows)
    if args.detail:
        for workers, results in summary:
            print(f"\nrequests of the first -n {workers} run (service, endpoint, status: count)")
            for key, count in sorted(results[0]["detail"].items()):
                print(f"  {count:4d}  {key}")
    return 1 if bad else 0


def trust(args, workdir: Path) -> int:
    from paymon.sandbox.trust import noisy_world
    from paymon.sandbox.world import golden_world

    spec = Path(args.spec) if args.spec else short_spec(workdir)
    print(f"trust: the noisy {args.generation} world, {args.trust} runs, spec {spec.name}, "
          f"workers {' / '.join(map(str, args.workers))} alternating")
    headers = ["run", "seed", "-n", "exit", "wall s", "wait s", "slack s", "pd s",
               *SERVICES, "failed"]
    rows, walls, passed, failures = [], [], 0, []
    for i in range(args.trust):
        workers = args.workers[i % len(args.workers)]
        world_file = workdir / f"noisy-{i}.json"
        world_file.write_text(json.dumps(noisy_world(golden_world(args.generation), seed=i)))
        extra = ["-n", str(workers), f"--spec={spec}", f"--sandbox-world={world_file}"]
        result = run_once(extra, workdir, f"trust-{i + 1}")
        walls.append(result["wall"])
        ok = result["returncode"] == 0 and not result["failed"]
        passed += ok
        if not ok:
            failures.append(result)
        c = result["counts"]
        rows.append([str(i + 1), str(i), str(workers), str(result["returncode"]), _fmt(result["wall"]),
                     _fmt(result["wait"]), _fmt(result["slack"]), _fmt(result["pagerduty"]),
                     *[str(c.get(s, 0)) for s in SERVICES], str(len(result["failed"]))])
        print(f"  run {i + 1}/{args.trust}: exit {result['returncode']}, {result['wall']:.1f}s, "
              f"failed: {','.join(result['failed']) or '-'}", flush=True)
    print()
    print_table(headers, rows)
    print(f"\n{passed} pass, {args.trust - passed} fail of {args.trust}; wall s median {statistics.median(walls):.2f}, "
          f"min {min(walls):.2f}, max {max(walls):.2f}, total {sum(walls):.1f}")
    failing = Counter(name for result in failures for name in result["failed"])
    if failing:
        print("\nfailing checks (runs):")
        for name, count in failing.most_common():
            print(f"  {count:3d}  {name}")
    for result in failures:
        print(f"\n--- {result['label']} (exit {result['returncode']}) ---\n{result['output'][-3000:]}", file=sys.stderr)
    return 1 if failures else 0


def main() -> int:
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        rest = sys.argv[3:]
        return child(sys.argv[2], rest[1:] if rest[:1] == ["--"] else rest)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="runs per worker count (default 1)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2], help="xdist worker counts (default 0 2)")
    parser.add_argument("--generation", default="workflow", choices=("legacy", "workflow", "both"))
    parser.add_argument("--spec", help="monitoring.yaml to use (default: the repo's; --trust: a short-deadline copy)")
    parser.add_argument("--detail", action="store_true", help="also list the requests per endpoint")
    parser.add_argument("--trust", type=int, nargs="?", const=20, default=None, metavar="N",
                        help="run the noisy world N times (default 20) and count passes")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory(prefix="paymon-bench-") as tmp:
        return trust(args, Path(tmp)) if args.trust is not None else bench(args, Path(tmp))


if __name__ == "__main__":
    sys.exit(main())
