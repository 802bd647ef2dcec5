"""`paymon backtest` and `paymon review thresholds|alerts|failures`: the guide's post-deployment and
ongoing reviews (paymon.reviews), against a sandbox with a generated history unless `--target live`.

    paymon backtest --days 7 [--json] [--target live]
    paymon review thresholds [--weeks 13]
    paymon review alerts --days 30
    paymon review failures --weeks 4

Exit codes: 0 fine; 1 a criterion failed (backtest: an alert is noisy or blind; review alerts: an
alert fired but reached no one); 2 bad input; 3 could not check (a service could not be read).
"""

from __future__ import annotations

import argparse
import json
import math
import os
from contextlib import contextmanager

EXIT_OK, EXIT_FAILED = 0, 1


@contextmanager
def open_review_session(target_name: str, spec, *, history_days: int = 30, seed: int = 7, deadline: float = 30.0,
                        generation: str = "workflow", environ=None, world: dict | None = None):
    """A review session on the live services, or on a fresh sandbox with `history_days` of generated
    history: the edge's choice of target (`paymon review`, `paymon backtest`, the `reviews` fixture)."""
    from paymon.config.target import Target
    from paymon.reviews.session import review_session

    if target_name == "live":
        environ = dict(os.environ if environ is None else environ)
        target = Target("live", environ=environ, org=spec.organization, project=spec.project)
        with review_session(target, deadline=deadline) as session:
            yield session
        return
    from paymon.sandbox.history import sandbox_with_history

    with sandbox_with_history(days=history_days, seed=seed, generation=generation, world=world) as (server, summary):
        target = Target("sandbox", sandbox=server.describe())
        with review_session(target, now=server.clock.now(), history=summary, deadline=deadline) as session:
            yield session


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
        if not math.isfinite(value) or value <= 0:
            raise argparse.ArgumentTypeError(f"expected a finite positive number, got {text!r}")
        return value
    return parse


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", choices=("sandbox", "live"), default=os.environ.get("PAYMON_TARGET", "sandbox"),
                        help="sandbox (default): a sandbox with a generated history; live: SENTRY_* etc. as "
                             "for `pytest --target live`")
    parser.add_argument("--spec", default=os.environ.get("PAYMON_SPEC", "monitoring.yaml"))
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--seed", type=int, default=7, help="the sandbox history's seed (default 7)")
    parser.add_argument("--generation", choices=("legacy", "workflow", "both"), default="workflow",
                        help="the sandbox's alerting API generation (default: workflow)")
    parser.add_argument("--api-deadline", default=None, metavar="SECONDS",
                        help="how long one API read may keep retrying 429/5xx (default 30)")


def _run(args: argparse.Namespace, history_days: float, work, text, failed=lambda result: False) -> int:
    from paymon.config.settings import api_deadline, redact
    from paymon.config.spec import load_spec

    spec = load_spec(args.spec)
    with open_review_session(args.target, spec, history_days=int(max(7, history_days + 1)), seed=args.seed,
                        deadline=api_deadline(args.api_deadline), generation=args.generation) as session:
        result = work(session, spec)
        secrets = session.target.secrets()
    body = json.dumps(result.to_json(), indent=2, default=str) if args.json else text(result)
    print(redact(body, secrets))
    return EXIT_FAILED if failed(result) else EXIT_OK


def _cmd_backtest(args: argparse.Namespace) -> int:
    from paymon.reviews import output, run

    return _run(args, args.days, lambda s, spec: run.backtest_with_actuals(s, spec, args.days), output.backtest_text,
                lambda r: any(a.noisy or a.blind for a in r.alerts))


def _cmd_thresholds(args: argparse.Namespace) -> int:
    from paymon.reviews import output, run

    return _run(args, 7, lambda s, spec: run.thresholds(s, spec, args.weeks), output.thresholds_text)


def _cmd_alerts(args: argparse.Namespace) -> int:
    from paymon.reviews import output, run

    return _run(args, args.days, lambda s, spec: run.alerts(s, spec, args.days), output.alerts_text,
                lambda r: bool(r.reached_no_one))


def _cmd_failures(args: argparse.Namespace) -> int:
    from paymon.reviews import output, run

    return _run(args, args.weeks * 7, lambda s, spec: run.failures(s, spec, args.weeks), output.failures_text)


def add_review_parsers(sub: argparse._SubParsersAction) -> None:
    backtest = sub.add_parser("backtest", help="replay each alert over the events of the last days: would-be "
                                               "firings, peak vs threshold, noisy and blind alerts")
    backtest.add_argument("--days", type=_positive(float), default=7.0, help="how far back (default 7)")
    _common(backtest)
    backtest.set_defaults(func=_cmd_backtest)

    review = sub.add_parser("review", help="the guide's ongoing reviews: thresholds, alerts, failures")
    review_sub = review.add_subparsers(dest="review_command", required=True)
    thresholds = review_sub.add_parser("thresholds", help="weekly p50/p95/p99 per performance budget, "
                                                          "with a suggested budget")
    thresholds.add_argument("--weeks", type=_positive(int), default=13, help="how many weeks (default 13)")
    _common(thresholds)
    thresholds.set_defaults(func=_cmd_thresholds)
    alerts = review_sub.add_parser("alerts", help="per alert: fired, delivered, acknowledged, resolved, "
                                                  "median time to acknowledge")
    alerts.add_argument("--days", type=_positive(float), default=30.0, help="how far back (default 30)")
    _common(alerts)
    alerts.set_defaults(func=_cmd_alerts)
    failures = review_sub.add_parser("failures", help="payment failures by error type per day")
    failures.add_argument("--weeks", type=_positive(int), default=4, help="how many weeks (default 4)")
    _common(failures)
    failures.set_defaults(func=_cmd_failures)


def _history_days(text: str) -> int:
    """`7d`, `30d` or a number of days."""
    from paymon.config.spec import parse_duration

    try:
        seconds = parse_duration(text if not text.strip().isdigit() else f"{text}d")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    if seconds < 86400:
        raise argparse.ArgumentTypeError(f"expected at least one day, like 7d, got {text!r}")
    return int(seconds // 86400)


def add_history_option(serve: argparse.ArgumentParser) -> None:
    """`paymon sandbox serve --history 7d [--history-seed N]`: load a generated past first."""
    serve.add_argument("--history", type=_history_days, default=None, metavar="DAYS",
                       help="load a generated history first: DAYS of payment errors (e.g. 7d) and a quarter of "
                            "transactions, with the alerts' firings in Slack and PagerDuty (paymon.sandbox.history)")
    serve.add_argument("--history-seed", type=int, default=7, metavar="N", help="the history's seed (default 7)")
