"""`paymon plan` and `paymon apply`: make the Sentry organisation match monitoring.yaml.

Both read the same settings as `pytest --target live` (SENTRY_BASE_URL, SENTRY_AUTH_TOKEN,
SENTRY_ORG, SENTRY_PROJECT; SLACK_BOT_TOKEN and PAGERDUTY_API_TOKEN, when set, let the plan also
report Slack and PagerDuty problems apply cannot fix). Exit codes: 0 done / no changes, 1 a write
failed or apply was declined, 2 bad input or settings (also a read-only token for apply), 3 could
not read Sentry; `plan --detailed-exitcode`: 2 when changes are pending.
"""

from __future__ import annotations

import argparse
import os
import sys

from paymon.config.settings import api_deadline
from paymon.errors import SettingsError

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_CHANGES = 0, 1, 2, 2


def add_parsers(sub) -> None:
    """Register `plan` and `apply` on the `paymon` command's subparsers."""
    plan = sub.add_parser("plan", help="what paymon apply would change to make Sentry match monitoring.yaml")
    _common(plan)
    plan.add_argument("--detailed-exitcode", action="store_true",
                      help="exit 2 when changes are pending (0: none), as terraform plan does")
    plan.set_defaults(func=cmd_plan)

    apply = sub.add_parser("apply", help="make Sentry match monitoring.yaml (shows the plan and asks first)")
    _common(apply)
    apply.add_argument("--yes", action="store_true", help="do not ask (CI)")
    apply.set_defaults(func=cmd_apply)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--spec", default="monitoring.yaml", help="the expected setup (default: monitoring.yaml)")
    parser.add_argument("--delete-unknown", action="store_true",
                        help="also delete live alerts monitoring.yaml does not know (default: report them)")
    parser.add_argument("--api-deadline", default=None, metavar="SECONDS", help="seconds one API call may keep retrying (default 30)")


def _settings(spec):
    from paymon.config.target import Target

    environ = dict(os.environ)
    if not any(environ.get(v, "").strip() for v in ("SENTRY_AUTH_TOKEN", "SENTRY_BASE_URL", "SENTRY_ORG",
                                                     "SENTRY_PROJECT")):
        raise SettingsError("no Sentry settings: set SENTRY_AUTH_TOKEN (and SENTRY_BASE_URL, SENTRY_ORG, "
                            "SENTRY_PROJECT as for `pytest --target live`; `paymon sandbox serve` prints a "
                            "sandbox's)")
    target = Target("live", environ, org=spec.organization, project=spec.project)
    return target, target.sentry()


def _delivery_readers(target):
    """Slack reader and PagerDuty client when their settings are there, else notes why not."""
    from paymon.clients.pagerduty import PagerDutyClient
    from paymon.clients.slack import SlackReader

    readers, notes = {}, []
    try:
        readers["slack_reader"] = SlackReader(target.slack())
    except SettingsError as exc:
        notes.append(f"Slack channels not checked: {str(exc).split(':')[0]}")
    try:
        readers["pagerduty_client"] = PagerDutyClient(target.pagerduty())
    except SettingsError as exc:
        notes.append(f"PagerDuty service not checked: {str(exc).split(':')[0]}")
    return readers, notes


def _make_plan(args, client, target, spec):
    from paymon.remedy.planner import plan

    readers, notes = _delivery_readers(target)
    try:
        return plan(client, spec, delete_unknown=args.delete_unknown, unchecked=notes, **readers)
    finally:
        if "pagerduty_client" in readers:
            readers["pagerduty_client"].close()


def cmd_plan(args: argparse.Namespace) -> int:
    from paymon.clients.sentry.writer import SentryWriteClient
    from paymon.config.spec import load_spec

    spec = load_spec(args.spec)
    target, settings = _settings(spec)
    with SentryWriteClient(settings, deadline=api_deadline(args.api_deadline)) as client:
        result = _make_plan(args, client, target, spec)
    print(result.render())
    return EXIT_CHANGES if (args.detailed_exitcode and not result.empty) else EXIT_OK


def cmd_apply(args: argparse.Namespace) -> int:
    from paymon.remedy.apply import apply_plan, refuse_inside_pytest, require_write_scopes
    from paymon.clients.sentry.writer import SentryWriteClient
    from paymon.config.spec import load_spec

    refuse_inside_pytest()
    spec = load_spec(args.spec)
    target, settings = _settings(spec)
    with SentryWriteClient(settings, deadline=api_deadline(args.api_deadline)) as client:
        require_write_scopes(client)
        result = _make_plan(args, client, target, spec)
        print(result.render())
        if result.empty:
            return EXIT_OK
        if not args.yes and not _confirmed():
            print("Apply cancelled: nothing was changed.")
            return EXIT_FAILED
        print()
        outcome = apply_plan(client, result, log=lambda line: print(line, flush=True))
    print(outcome.summary())
    return EXIT_OK if outcome.ok else EXIT_FAILED


def _confirmed() -> bool:
    if not sys.stdin.isatty():
        print("paymon apply: no terminal to ask on; run with --yes to apply without asking", file=sys.stderr)
        return False
    try:
        answer = input("\nApply these changes? Only 'yes' applies: ")
    except EOFError:
        return False
    return answer.strip() == "yes"
