"""What one run does to production, computed from the numbers the run itself uses, and judged
against its profile's allowance and the daily budgets (paymon.config.profiles).

A live run's actions: the delivery check's test events and its one synthetic PagerDuty incident,
the drill's events and pages, the endpoint probes' checkouts and signed webhooks. Each is declared
here once, from the same constants the checks send with, so "the gate creates 14 checkouts" is
not a comment that drifts from the code. The daily budgets are shared by every run: a run reads
the history of earlier runs (runs.jsonl, carried by the `pages` job; `PAYMON_HISTORY`) and
refuses the actions that would overspend them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from paymon.config.profiles import ACTIONS, Profile
from paymon.delivery.drill import batch_sizes
from paymon.delivery.endtoend import plan_test_events
from paymon.errors import ConfigError
from paymon.config.history import read_runs

WEBHOOK = "/api/webhooks/lemonsqueezy"
"""The payment app's Lemon Squeezy webhook: probed with signed deliveries, not checkouts."""
TEST_MODE_CHECKOUTS = ("/api/checkout/pro", "/api/checkout/payg")
"""The checkout endpoints whose answer's `test_mode` the test-mode check reads (one checkout each)."""
PROBE_WARMUP = 1
"""Requests each probed endpoint gets before the measured ones (a cold connection is not timed)."""
MISSIGNED_PER_RUN = 2
"""Live mis-signed webhooks per run (reference §3: the security alert pages at > 5 in 5 min)."""
SIGNED_DELIVERIES_PER_RUN = 1
"""The correctly signed delivery the signature check sends after the rejected ones."""
DAY_S = 86400


@dataclass(frozen=True)
class RunCost:
    """What a run of a profile does to production (the keys of `ACTIONS`)."""

    counts: dict[str, int]

    def __getitem__(self, action: str) -> int:
        return self.counts.get(action, 0)

    def over(self, profile: Profile) -> list[str]:
        """The actions this run would take beyond its profile's allowance, as one phrase each."""
        allowed = profile.may.model_dump()
        return [f"{action.replace('_', ' ')}: {self[action]} needed, {allowed[action]} allowed"
                for action in ACTIONS if self[action] > allowed[action]]


def run_cost(spec, profile: Profile, *, probe_samples: int | None = None, drill: bool | None = None,
             run_id: str = "0" * 12) -> RunCost:
    """The actions one live run of `profile` takes (`probe_samples` / `drill` as the run was told)."""
    areas = set(profile.areas)
    drilling = ("drill" in areas) if drill is None else drill
    samples = profile.probe_samples if probe_samples is None else probe_samples
    counts = dict.fromkeys(ACTIONS, 0)
    if "delivery" in areas:
        events = plan_test_events(run_id)
        counts["test_events"] += len(events)
        # The synthetic PagerDuty event opens one incident (low urgency: see README "Delivery checks").
        counts["incidents"] += sum(1 for e in events if e.route == "pagerduty")
    if drilling:
        for alert in spec.alerts:
            counts["test_events"] += batch_sizes(alert)[1]  # live: the just-over batch only
            pages = sum(1 for action in alert.actions if action.pagerduty is not None)
            counts["pages"] += pages
            counts["incidents"] += pages
    if "endpoints" in areas:
        per_endpoint = samples + PROBE_WARMUP
        checkout_endpoints = [b for b in spec.performance.budgets if b.transaction != WEBHOOK]
        counts["checkouts"] += per_endpoint * len(checkout_endpoints) + len(TEST_MODE_CHECKOUTS)
        if any(b.transaction == WEBHOOK for b in spec.performance.budgets):
            counts["signed_webhooks"] += per_endpoint
        counts["signed_webhooks"] += MISSIGNED_PER_RUN + SIGNED_DELIVERIES_PER_RUN
    return RunCost(counts)


def profile_problems(spec) -> list[str]:
    """What monitoring.yaml's profiles declare that cannot hold: a profile whose run needs more
    than its allowance, or a schedule whose daily checkouts exceed the shared budget."""
    problems = []
    per_day = 0.0
    for name, profile in spec.profiles.profiles.items():
        cost = run_cost(spec, profile)
        problems += [f"profiles.{name}.may: {phrase}" for phrase in cost.over(profile)]
        per_day += profile.runs_per_day * cost["checkouts"]
    budget = spec.profiles.budgets.checkouts_per_day
    if per_day > budget:
        problems.append(f"profiles: the declared schedule creates {math.ceil(per_day)} checkouts a day "
                        f"(runs_per_day x each run's checkouts), over budgets.checkouts_per_day {budget}")
    return problems


def check_profiles(spec) -> None:
    problems = profile_problems(spec)
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(f"monitoring.yaml: {problems[0]}{more}")


# --- the shared daily budgets ------------------------------------------------------------------


@dataclass
class Ledger:
    """What earlier live runs did to production in the last day, from their run summaries."""

    runs: int = 0
    used: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ACTIONS, 0))
    source: str | None = None
    """Where it was read from; None when no history was given (the schedule alone keeps the budget)."""

    def remaining(self, action: str, budget: int) -> int:
        return max(0, budget - self.used.get(action, 0))


def read_ledger(path: str | Path | None, now: float, *, target: str = "live") -> Ledger:
    """Sum the `actions` of the runs against `target` recorded at `path` (runs.jsonl) that started
    within the last day: a sandbox run never spends production's budget. No file is "no history":
    the caller says so."""
    runs, source = read_runs(path)
    ledger = Ledger(source=source)
    for run in runs:
        if (run.get("environment") or {}).get("target") != target or not now - DAY_S <= run["started"] <= now:
            continue
        ledger.runs += 1
        for action, value in (run.get("actions") or {}).items():
            if action in ledger.used and isinstance(value, int) and value > 0:
                ledger.used[action] += value
    return ledger


def refusals(name: str, profile: Profile, budgets, cost: RunCost, ledger: Ledger, now: float) -> dict[str, str]:
    """area -> why this run may not act there now: the day's checkouts spent, a page outside the
    profile's paging hours, the day's pages spent. The area's checks fail "could not check"."""
    refused = {}
    if cost["checkouts"] and cost["checkouts"] > ledger.remaining("checkouts", budgets.checkouts_per_day):
        refused["endpoints"] = (
            f"the day's checkout budget is spent: {ledger.used['checkouts']} of {budgets.checkouts_per_day} used "
            f"by {ledger.runs} run(s) in the last 24 h ({ledger.source}), this run needs {cost['checkouts']}; "
            "nothing was sent")
    if cost["pages"]:
        hours = profile.paging_hours
        if hours is not None and not hours.allows(now):
            refused["drill"] = f"outside profile {name}'s paging hours ({hours.describe()}): nobody was paged"
        elif cost["pages"] > ledger.remaining("pages", budgets.pages_per_day):
            refused["drill"] = (
                f"the day's paging budget is spent: {ledger.used['pages']} of {budgets.pages_per_day} pages sent "
                f"in the last 24 h ({ledger.source}), this run would page {cost['pages']} times; nobody was paged")
    return refused


def profile_table(spec) -> list[str]:
    """A Markdown table: per profile, its areas, runs a day, and each action per run / per day."""
    header = ["Profile", "Checks (areas)", "Runs/day", *(a.replace("_", " ") for a in ACTIONS)]
    rows = [header, ["---"] * len(header)]
    for name, profile in spec.profiles.profiles.items():
        cost = run_cost(spec, profile)
        cells = [f"{cost[a]} ({_per_day(cost[a] * profile.runs_per_day)})" if cost[a] else "0" for a in ACTIONS]
        rows.append([f"`{name}`", ", ".join(profile.areas), f"{profile.runs_per_day:g}", *cells])
    budgets = spec.profiles.budgets
    rows.append(["budget a day", "(all runs)", "", "", str(budgets.checkouts_per_day), "", "",
                 str(budgets.pages_per_day)])
    return ["| " + " | ".join(r) + " |" for r in rows]


def _per_day(value: float) -> str:
    return f"{math.ceil(value)}/day"

