"""`paymon probe URL`: time an endpoint on a fixed schedule and judge its p95 against a budget.

    paymon probe https://app.example/api/checkout/pro --method POST --body @checkout.json \\
        --header "Cookie: session=..." --samples 20 --rate 1 --warning 500 --critical 1000 --canary

The budget comes from --warning/--critical, or from monitoring.yaml with --budget NAME-OR-TRANSACTION.
Requests are sent open loop (each at its time, whatever earlier ones are doing), at most
--max-in-flight at once. Method, statistics and verdict rules: paymon/probes/latency.py. Against
production, mind the reference's §3: every checkout POST creates a live checkout, so keep N small
and the rate at or below 1/s; with under 72 samples p95 can only be shown to be *above* a budget,
never below it, so judge such a run with --canary.

The verdict becomes the outcome exactly as in `pytest` (paymon.probes.latency.decide): a gate (the
default, as the sandbox suite judges) or, with --canary, as `pytest --target live` judges its probes.

Exit codes: 0 pass or warning (or no budget; with --canary also inconclusive, printed as a warning
with the samples that would settle it), 1 critical (or every request failed), 2 bad input,
3 could not check: the target could not be reached, or, without --canary, the verdict is
inconclusive (a gate must not read "not enough evidence" as a pass).
"""

from __future__ import annotations

import argparse
import json
import sys
import uuid
from pathlib import Path

from paymon import __version__
from paymon.errors import ConfigError, PaymonError, TargetUnavailable
from paymon.probes.latency import (
    COULD_NOT_CHECK,
    DEFAULT_MAX_IN_FLIGHT,
    FAIL,
    PASS,
    WARNING,
    Attempt,
    Budget,
    Decision,
    HttpTarget,
    LatencyReport,
    decide,
    probe_http,
)

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_COULD_NOT_CHECK = 0, 1, 2, 3
EXIT_FOR_OUTCOME = {PASS: EXIT_OK, WARNING: EXIT_OK, FAIL: EXIT_FAILED, COULD_NOT_CHECK: EXIT_COULD_NOT_CHECK}


def add_probe_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register `probe` on paymon's subcommands; its func returns the exit code."""
    parser = subparsers.add_parser(
        "probe", help="time an endpoint's latency on a fixed schedule and judge its p95",
        description=__doc__.split("\n\n")[0], epilog="\n\n".join(__doc__.split("\n\n")[1:]).rstrip(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("url", help="http(s) URL to time")
    parser.add_argument("--method", type=str.upper, choices=("GET", "POST"), default="GET")
    parser.add_argument("--body", metavar="JSON|@FILE",
                        help="request body: inline JSON, or @file sent byte for byte (needs --method POST)")
    parser.add_argument("--header", action="append", default=[], metavar="K:V", help="extra header; repeatable")
    parser.add_argument("--samples", type=_positive_int, default=100, help="measured requests (default 100)")
    parser.add_argument("--rate", type=_positive_float, default=1.0, help="requests per second (default 1)")
    parser.add_argument("--max-in-flight", type=_positive_int, default=DEFAULT_MAX_IN_FLIGHT, metavar="K",
                        help=f"requests in flight at most (default {DEFAULT_MAX_IN_FLIGHT}); fewer are used when "
                             "rate x critical budget needs fewer")
    parser.add_argument("--warmup", type=_non_negative_int, default=1,
                        help="requests sent first and reported, not counted (default 1: connection set-up)")
    parser.add_argument("--warning", type=_positive_float, metavar="MS", help="p95 warning budget in ms")
    parser.add_argument("--critical", type=_positive_float, metavar="MS", help="p95 critical budget in ms")
    parser.add_argument("--budget", metavar="NAME", help="take the budget from --spec by name or transaction")
    parser.add_argument("--spec", default="monitoring.yaml", help="monitoring.yaml for --budget")
    parser.add_argument("--timeout", type=_positive_float, default=10.0, metavar="S",
                        help="per-request timeout in s (default 10); a timeout counts at its latency")
    parser.add_argument("--expect-status", type=int, action="append", default=[], metavar="CODE",
                        help="statuses that count as success instead of any 2xx; repeatable")
    parser.add_argument("--canary", action="store_true",
                        help="judge as the live checks do: fail only on a proven critical; an inconclusive "
                             "result is a warning (exit 0) naming the samples that would settle it")
    parser.add_argument("--json", action="store_true", help="print the statistics as JSON")
    parser.set_defaults(func=cmd_probe)
    return parser


def cmd_probe(args: argparse.Namespace) -> int:
    """Run the probe; one line on stderr for anything that stops it, never a traceback."""
    try:
        target = target_from_args(args)
        budget = budget_from_args(args)
        report = probe_http(target, samples=args.samples, rate=args.rate, warmup=args.warmup, budget=budget,
                            max_in_flight=args.max_in_flight, on_attempt=_progress(args.samples + args.warmup))
    except ConfigError as exc:
        return _fail(EXIT_BAD_INPUT, str(exc))
    except TargetUnavailable as exc:
        return _fail(EXIT_COULD_NOT_CHECK, f"could not reach {exc}")
    except PaymonError as exc:
        return _fail(EXIT_FAILED, str(exc))
    decision = decide(report, canary=args.canary)
    if args.json:
        print(json.dumps({**report.to_json(), "outcome": decision.outcome, "canary": args.canary,
                          "outcome_reason": _outcome_text(decision)}, indent=2))
    else:
        print(format_report(report, target, decision))
    return EXIT_FOR_OUTCOME[decision.outcome]


def _fail(code: int, message: str) -> int:
    print(f"paymon probe: {message}", file=sys.stderr)
    return code


# --- arguments -----------------------------------------------------------------------------------

def _positive_int(text: str) -> int:
    value = _non_negative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {text}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number, not {text}")
    return value


def target_from_args(args: argparse.Namespace) -> HttpTarget:
    url = _checked_url(args.url)
    headers = {"User-Agent": f"paymon/{__version__} (latency probe)",
               # lets the app's logs filter (and group) the probe's traffic (reference §3)
               "X-Paymon-Run-Id": uuid.uuid4().hex}
    for raw in args.header:
        name, value = _parse_header(raw)
        headers = {k: v for k, v in headers.items() if k.lower() != name.lower()}
        headers[name] = value
    body = _read_body(args.body) if args.body is not None else None
    if body is not None:
        if args.method == "GET":
            raise ConfigError("--body needs --method POST")
        if _is_json(body) and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
    return HttpTarget(url=url, method=args.method, headers=headers, body=body, timeout_s=args.timeout,
                      expected_status=frozenset(args.expect_status))


def _checked_url(url: str) -> str:
    import httpx

    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise ConfigError(f"not a valid URL: {url!r} ({exc})") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigError(f"not an http(s) URL with a host: {url!r}")
    return str(parsed)


def _parse_header(raw: str) -> tuple[str, str]:
    name, sep, value = raw.partition(":")
    name = name.strip()
    if not sep or not name or any(c.isspace() for c in name):
        raise ConfigError(f"--header must look like 'Name: value', not {raw!r}")
    return name, value.strip()


def _read_body(spec: str) -> bytes:
    if spec.startswith("@"):
        path = Path(spec[1:])
        try:
            return path.read_bytes()  # verbatim: a signature (webhooks) covers these exact bytes
        except OSError as exc:
            raise ConfigError(f"--body {spec}: cannot read ({exc.strerror or exc})") from None
    try:
        json.loads(spec)
    except ValueError as exc:
        raise ConfigError(f"--body is not valid JSON ({exc}); use @file for other bodies") from None
    return spec.encode()


def _is_json(body: bytes) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def budget_from_args(args: argparse.Namespace) -> Budget | None:
    if args.budget is not None:
        if args.warning is not None or args.critical is not None:
            raise ConfigError("give --budget or --warning/--critical, not both")
        return _budget_from_spec(args.spec, args.budget)
    if (args.warning is None) != (args.critical is None):
        raise ConfigError("--warning and --critical go together")
    if args.warning is None:
        return None
    if args.warning >= args.critical:
        raise ConfigError(f"--warning ({args.warning:g} ms) must be below --critical ({args.critical:g} ms)")
    return Budget(args.warning, args.critical)


def _budget_from_spec(spec_path: str, wanted: str) -> Budget:
    from paymon.config.spec import load_spec

    budgets = load_spec(spec_path).performance.budgets
    for budget in budgets:
        if wanted in (budget.name, budget.transaction):
            return Budget.from_spec(budget)
    known = ", ".join(b.transaction for b in budgets)
    raise ConfigError(f"no performance budget named {wanted!r} in {spec_path} (transactions: {known})")


def _progress(total: int):
    """A live counter on an interactive stderr; nothing when piped (CI logs stay clean)."""
    if not sys.stderr.isatty():
        return None
    done = 0

    def show(attempt: Attempt) -> None:
        nonlocal done
        done += 1
        end = "\n" if done == total else ""
        print(f"\r  {done}/{total} requests, last {attempt.latency_ms:.1f} ms   ", end=end, file=sys.stderr,
              flush=True)

    return show


# --- the readable table --------------------------------------------------------------------------

def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _outcome_text(decision: Decision) -> str:
    return decision.headline + (f": {decision.why}" if decision.why else "")


def format_report(report: LatencyReport, target: HttpTarget, decision: Decision | None = None) -> str:
    low, high = report.p95_ci_ms
    rank_low, rank_high = report.p95_ci_ranks
    rows = [
        ("target", f"{target.method} {target.url}"),
        ("samples", f"{report.samples} measured, {report.errors} failed"
                    + (f" ({report.timeouts} timeouts, counted as samples)" if report.timeouts else "")),
        ("warm-up", ", ".join(_ms(x) for x in report.warmup_ms) + " (not counted)" if report.warmup_ms else "none"),
        ("schedule", f"{report.rate:g}/s open loop, {report.slots or '?'} in-flight slots (peak "
                     f"{report.peak_in_flight}, {report.slot_waits} waited for one); max send lag "
                     f"{report.max_send_lag_ms:.1f} ms, {report.late_sends} late"),
        ("p50", _ms(report.p50_ms)),
        ("p95", f"{_ms(report.p95_ms)}   {report.confidence:.0%} CI [{_ms(low)}, "
                f"{'unbounded' if high is None else _ms(high)}]"
                f" (ranks {rank_low or '-'}..{rank_high or '-'} of {report.samples}, "
                f"coverage {report.p95_ci_coverage:.1%})"),
        ("p99", _ms(report.p99_ms)),
        ("mean / max", f"{_ms(report.mean_ms)} / {_ms(report.max_ms)}"),
        ("p95 service", f"{_ms(report.service_p95_ms)} (from the actual send; excludes queueing)"),
    ]
    if report.budget is not None:
        rows.append(("budget", f"warning > {report.budget.warning_ms:g} ms, critical > {report.budget.critical_ms:g} ms"
                               + (f" ({report.budget.name})" if report.budget.name else "")))
    verdict = (report.verdict or "no verdict").upper()
    rows.append(("verdict", f"{verdict}: {report.reason}"))
    if decision is not None:
        rows.append(("outcome", f"{decision.outcome.upper()} ({_outcome_text(decision)})"))
    more = report.more_samples_time_s()
    if report.samples_needed is not None and more is not None:
        rows.append(("to settle", f"~{report.samples_needed} samples ({report.samples_needed - report.samples} more, "
                                  f"~{_duration(more)} at {report.rate:g}/s)"))
    width = max(len(name) for name, _ in rows)
    lines = [f"{name:<{width}}  {value}" for name, value in rows]
    lines += [f"{'note':<{width}}  {note}" for note in report.notes]
    lines += ["", "latency histogram (from the intended send time)", *_histogram_lines(report)]
    return "\n".join(lines)


def _histogram_lines(report: LatencyReport, bar_width: int = 40) -> list[str]:
    buckets = report.histogram()
    if not buckets:
        return ["  (no samples)"]
    peak = max(b.count for b in buckets) or 1
    lines = []
    for bucket in buckets:
        low = "" if bucket.low == float("-inf") else f"{bucket.low:g}"
        high = "inf" if bucket.high == float("inf") else f"{bucket.high:g}"
        bar = "#" * round(bar_width * bucket.count / peak)
        lines.append(f"  {low:>8} .. {high:<8} ms {bucket.count:>6}  {bar}")
    return lines


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
