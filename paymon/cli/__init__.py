"""The `paymon` command: the sandbox, checking monitoring.yaml, probes, reviews, plan/apply, reports.

An edge (as fixtures/ is for pytest): it may import every package of paymon, the sandbox included,
and nothing in the library imports it. `python -m paymon.cli` is the same command.

    paymon spec check | profiles | sandbox serve|dump-world|faults|reconcile | report | scrub   (this module)
    paymon probe                                                               (probe.py)
    paymon backtest | review thresholds|alerts|failures                        (review.py)
    paymon plan | apply                                                        (remedy.py)


Exit codes: 0 fine, 1 a criterion failed, 2 bad input (monitoring.yaml, world file, settings),
3 could not check (an API or credential problem). Errors are one line, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys

from paymon.errors import ConfigError, PaymonError, SettingsError, TargetUnavailable

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_COULD_NOT_CHECK = 0, 1, 2, 3


def _cmd_spec_check(args: argparse.Namespace) -> int:
    from paymon.config.spec import load_spec
    from paymon.delivery.actions import check_profiles

    spec = load_spec(args.spec)
    check_profiles(spec)
    print(
        f"{args.spec}: OK ({len(spec.alerts)} alerts, {len(spec.performance.budgets)} performance budgets, "
        f"{len(spec.dashboard.widgets)} dashboard widgets, cron {spec.cron.slug!r})"
    )
    return EXIT_OK


def _cmd_profiles(args: argparse.Namespace) -> int:
    """What each run profile checks and costs production, per run and per day (README's CI table)."""
    from paymon.config.spec import load_spec
    from paymon.delivery.actions import check_profiles, profile_table

    spec = load_spec(args.spec)
    check_profiles(spec)
    for line in profile_table(spec):
        print(line)
    return EXIT_OK


def _world_from_args(args: argparse.Namespace) -> dict:
    from paymon.sandbox.faults import apply_fault
    from paymon.sandbox.world import golden_world, load_world

    world = load_world(args.world) if getattr(args, "world", None) else golden_world(args.generation)
    for fault in getattr(args, "fault", None) or []:
        world = apply_fault(world, fault)
    return world


def _cmd_sandbox_dump_world(args: argparse.Namespace) -> int:
    from paymon.sandbox.world import dump_world

    sys.stdout.write(dump_world(_world_from_args(args)))
    sys.stdout.write("\n")
    return EXIT_OK


def _cmd_sandbox_faults(args: argparse.Namespace) -> int:
    from paymon.sandbox.faults import FAULTS

    width = max(map(len, FAULTS))
    for name, description in FAULTS.items():
        print(f"{name:<{width}}  {description}")
    return EXIT_OK


def _cmd_sandbox_serve(args: argparse.Namespace) -> int:
    import threading

    from paymon.sandbox.server import SandboxServer

    with SandboxServer(_world_from_args(args), port=args.port) as server:
        if getattr(args, "history", None):  # issue 6: a generated past (paymon.sandbox.history)
            from paymon.sandbox.history import load_sandbox_history

            load_sandbox_history(server, days=args.history, seed=args.history_seed)
        if getattr(args, "env_file", None):
            _write_env_file(args.env_file, server.live_environment())
        print(json.dumps(server.describe()), flush=True)
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass
    return EXIT_OK


def _write_env_file(path: str, env: dict[str, str]) -> None:
    """`export NAME=value` lines (owner-only: they hold the sandbox's tokens) to `source` before
    `pytest --target live`."""
    import os
    import shlex

    lines = "".join(f"export {name}={shlex.quote(value)}\n" for name, value in sorted(env.items()))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(lines)


def _cmd_sandbox_reconcile(args: argparse.Namespace) -> int:
    """Run the sandbox app's reconciliation job now (what Vercel's cron does at 02:00 UTC)."""
    from paymon.sandbox.app.client import run_reconciliation
    from paymon.config.spec import load_spec

    slug = load_spec(args.spec).cron.slug  # the monitor monitoring.yaml's cron section names
    result = run_reconciliation(args.url, cron_secret=args.cron_secret, timeout=args.timeout, monitor_slug=slug)
    print(json.dumps(result, indent=2) if args.json else _reconciliation_text(result))
    if result.get("status") != "ok":
        return EXIT_FAILED
    return EXIT_FAILED if result.get("discrepancies") else EXIT_OK


def _reconciliation_text(result: dict) -> str:
    if result.get("status") != "ok":
        return f"reconciliation job failed: {result.get('error')} (check-in: error)"
    found = result.get("discrepancies") or []
    if not found:
        return "reconciliation: no discrepancies (check-in: ok)"
    lines = [f"reconciliation discrepancies detected: {len(found)} (reported to Sentry; check-in: ok)"]
    lines += [f"  - {d['kind']}: subscription {d['subscription_id']}: app {d['app']}, "
              f"lemonsqueezy {d['lemonsqueezy']}" for d in found]
    return "\n".join(lines)


def _cmd_report(args: argparse.Namespace) -> int:
    from pathlib import Path

    from paymon.reporting.allure_report import ReportPaths, build_report, merge_history, record_run
    from paymon.reporting.weekly import write_weekly

    reports = Path(args.reports)
    paths = ReportPaths.under(reports, results=Path(args.results) if args.results else None,
                              output=Path(args.output) if args.output else None)
    # Earlier published histories are merged run by run, never copied over: none loses a run.
    for note in merge_history(paths, [Path(source) for source in args.merge_history]):
        print(f"history: {note}", file=sys.stderr)
    record_run(paths)
    index = build_report(paths, name=args.name)
    # The weekly page and the run log go with the report, so Pages publishes (and CI carries) them.
    weekly = write_weekly(paths.runs, paths.output / "weekly.html")
    if paths.runs.is_file():
        shutil.copy2(paths.runs, paths.output / "runs.jsonl")
    print(f"report: {index}\nweekly review: {weekly}")
    return EXIT_OK


def _cmd_scrub(args: argparse.Namespace) -> int:
    """Redact the secrets of this environment (and anything shaped like a token) in report files
    left behind: CI's after_script runs it on a job GitLab killed (a timeout), whose JUnit file and
    verdict pytest never finished and never scrubbed, before `artifacts: when: always` uploads them."""
    from pathlib import Path

    from paymon.reporting.secrets import scrub_files

    paths = [Path(path) for path in args.paths]
    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        print(f"paymon: scrub: no such file or directory: {', '.join(missing)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    changed = scrub_files(paths)
    print(f"scrub: {len(changed)} file(s) held a secret and were redacted" if changed
          else "scrub: no secret found")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="paymon", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    spec = sub.add_parser("spec", help="monitoring.yaml")
    spec_sub = spec.add_subparsers(dest="spec_command", required=True)
    check = spec_sub.add_parser("check", help="validate monitoring.yaml")
    check.add_argument("spec", nargs="?", default="monitoring.yaml")
    check.set_defaults(func=_cmd_spec_check)

    profiles = sub.add_parser("profiles", help="what each run profile checks and may do to production, per run "
                                               "and per day (a Markdown table)")
    profiles.add_argument("--spec", default="monitoring.yaml")
    profiles.set_defaults(func=_cmd_profiles)

    sandbox = sub.add_parser("sandbox", help="the built-in stand-ins for Sentry, Slack, PagerDuty and the payment app")
    sandbox_sub = sandbox.add_subparsers(dest="sandbox_command", required=True)

    def world_options(p: argparse.ArgumentParser) -> None:
        source = p.add_mutually_exclusive_group()
        source.add_argument("--world", metavar="FILE", help="a world JSON file")
        source.add_argument("--generation", choices=("legacy", "workflow", "both"), default="workflow",
                            help="the golden world in this alerting API generation (default: workflow)")
        p.add_argument("--fault", action="append", metavar="NAME",
                       help="apply a named fault (see `paymon sandbox faults`); repeatable")

    serve = sandbox_sub.add_parser("serve", help="run the sandbox and print one JSON line to point tools at")
    world_options(serve)
    serve.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    serve.add_argument("--env-file", default=None, metavar="FILE",
                       help="also write the documented --target live variables pointing at this sandbox, as "
                            "`export` lines to source (mode 600)")
    serve.set_defaults(func=_cmd_sandbox_serve)

    dump = sandbox_sub.add_parser("dump-world", help="print a world as JSON")
    world_options(dump)
    dump.set_defaults(func=_cmd_sandbox_dump_world)

    faults = sandbox_sub.add_parser("faults", help="list the named faults")
    faults.set_defaults(func=_cmd_sandbox_faults)

    reconcile = sandbox_sub.add_parser(
        "reconcile", help="run the sandbox payment app's reconciliation job now (cron check-ins, discrepancy report)")
    reconcile.add_argument("url", help="the running sandbox: its base_url or its app.base_url "
                                       "(from `paymon sandbox serve`)")
    reconcile.add_argument("--cron-secret", default=None, metavar="SECRET",
                           help="the app's CRON_SECRET (default: $CRON_SECRET, else the sandbox's)")
    reconcile.add_argument("--timeout", type=float, default=30.0, metavar="SECONDS")
    reconcile.add_argument("--spec", default="monitoring.yaml",
                           help="the cron monitor to check in to is its cron.slug (default: monitoring.yaml)")
    reconcile.add_argument("--json", action="store_true", help="print the job's result as JSON")
    reconcile.set_defaults(func=_cmd_sandbox_reconcile)

    report = sub.add_parser("report", help="build the HTML report (Allure 3) and the weekly review page")
    report.add_argument("--reports", default="reports", metavar="DIR",
                        help="where pytest wrote its outputs and the history is kept (default: reports)")
    report.add_argument("--results", metavar="DIR", help="Allure results (default: <reports>/allure-results)")
    report.add_argument("--output", metavar="DIR", help="the report (default: <reports>/allure-report)")
    report.add_argument("--name", default="paymon: payment monitoring", help="the report's title")
    report.add_argument("--merge-history", action="append", default=[], metavar="DIR",
                        help="a directory with an earlier runs.jsonl / history.jsonl (a published report, or where "
                             "CI fetched them) to merge into <reports>, run by run, never replacing a run; repeatable")
    report.set_defaults(func=_cmd_report)

    scrub = sub.add_parser("scrub", help="redact secrets in report files a killed run left behind (CI after_script)")
    scrub.add_argument("paths", nargs="+", metavar="PATH", help="files or directories, e.g. reports/")
    scrub.set_defaults(func=_cmd_scrub)
    from paymon.cli.probe import add_probe_parser

    add_probe_parser(sub)

    # --- issue 6: backtest and the ongoing reviews (paymon/cli/review.py) ---------------------------
    from paymon.cli.review import add_history_option, add_review_parsers

    add_review_parsers(sub)
    add_history_option(serve)
    # --- end of issue 6 ------------------------------------------------------------------------------

    # --- issue 7: plan / apply, make Sentry match monitoring.yaml (paymon/cli/remedy.py) ------------
    from paymon.cli.remedy import add_parsers as add_remedy_parsers

    add_remedy_parsers(sub)
    # --- end of issue 7 ------------------------------------------------------------------------------
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, SettingsError) as exc:
        print(f"paymon: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except TargetUnavailable as exc:
        print(f"paymon: could not check: {exc}", file=sys.stderr)
        return EXIT_COULD_NOT_CHECK
    except PaymonError as exc:
        print(f"paymon: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyError as exc:
        print(f"paymon: unknown name {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT

