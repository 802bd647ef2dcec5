"""Run profiles (issue 12 item 1): which checks a run runs, what it may do to production, and the
day's shared budgets; the probe's samples pooled across runs (item 3); the verdict that lists every
line of the guide's checklists (issue 15 item 7)."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime, timezone

import pytest
import yaml

from conftest import REPO
from paymon.config.profiles import PagingHours
from paymon.config.spec import load_spec, parse_spec
from paymon.delivery.actions import Ledger, RunCost, profile_problems, read_ledger, refusals, run_cost
from paymon.errors import ConfigError
from paymon.sandbox.world import golden_world

SPEC = load_spec(REPO / "monitoring.yaml")


def _spec_text(**profiles_changes) -> str:
    data = yaml.safe_load((REPO / "monitoring.yaml").read_text())
    for path, value in profiles_changes.items():
        node = data
        *parents, leaf = path.split("__")
        for key in parents:
            node = node[key]
        node[leaf] = value
    return yaml.safe_dump(data)


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


# --- what a run costs, from the numbers it sends with ---------------------------------------------------

def test_a_runs_cost_follows_the_numbers_it_sends_with():
    gate = SPEC.profiles.get("gate")
    cost = run_cost(SPEC, gate)
    # 3 checkout endpoints x (3 samples + 1 warm-up) + the test-mode check's 2 checkouts.
    assert cost["checkouts"] == 3 * (3 + 1) + 2
    # the webhook probe (3 + 1) + 2 mis-signed + 1 correctly signed
    assert cost["signed_webhooks"] == 4 + 2 + 1
    assert (cost["test_events"], cost["incidents"], cost["pages"]) == (2, 1, 0)
    assert run_cost(SPEC, gate, probe_samples=20)["checkouts"] == 3 * 21 + 2
    drill = run_cost(SPEC, SPEC.profiles.get("drill"))
    assert drill["pages"] == sum(1 for a in SPEC.alerts for action in a.actions if action.pagerduty)
    assert drill["checkouts"] == 0


def test_the_shipped_profiles_fit_their_allowances_and_the_days_budget():
    assert profile_problems(SPEC) == []


def test_a_profile_whose_run_needs_more_than_it_may_is_refused_in_one_line(tmp_path):
    spec = parse_spec(_spec_text(profiles__profiles__gate__may={"test_events": 2, "incidents": 1, "checkouts": 10,
                                                      "signed_webhooks": 7}))
    assert profile_problems(spec) == ["profiles.gate.may: checkouts: 14 needed, 10 allowed"]
    path = tmp_path / "monitoring.yaml"
    path.write_text(_spec_text(profiles__profiles__synthetic__runs_per_day=96))
    from paymon.cli import main

    assert main(["spec", "check", str(path)]) == 2


@pytest.mark.parametrize("change, message", [
    ({"profiles__profiles__drill__paging_hours": None}, "may.pages needs paging_hours"),
    ({"profiles__default": "nightly"}, "default: 'nightly' is not one of the profiles"),
    ({"profiles__profiles__drill__paging_hours": {"start": "16:00", "end": "10:00"}}, "start 16:00 must be before end 10:00"),
    ({"profiles__profiles__drill__paging_hours": {"timezone": "Mars/Olympus"}}, "unknown time zone"),
    ({"profiles__budgets__pages_per_day": 1}, "over budgets.pages_per_day 1"),
])
def test_bad_profiles_are_one_line(change, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_spec(_spec_text(**change))


# --- paging hours and the day's budgets ---------------------------------------------------------------------

@pytest.mark.parametrize("instant, allowed", [
    ("2026-12-04T09:59:59+00:00", False),   # Friday, London is on UTC in December
    ("2026-12-04T10:00:00+00:00", True),
    ("2026-12-04T15:59:59+00:00", True),
    ("2026-12-04T16:00:00+00:00", False),
    ("2026-12-05T12:00:00+00:00", False),   # Saturday
    ("2026-07-03T09:30:00+00:00", True),    # Friday 10:30 BST
    ("2026-07-03T15:30:00+00:00", False),   # Friday 16:30 BST
])
def test_paging_hours_are_the_teams_local_working_hours(instant, allowed):
    hours = PagingHours(days=["mon", "tue", "wed", "thu", "fri"], start="10:00", end="16:00",
                        timezone="Europe/London")
    assert hours.allows(_epoch(instant)) is allowed


def test_a_drill_out_of_hours_or_over_the_days_pages_pages_nobody():
    drill = SPEC.profiles.get("drill")
    budgets = SPEC.profiles.budgets
    cost = run_cost(SPEC, drill)
    saturday = _epoch("2026-12-05T12:00:00+00:00")
    refused = refusals("drill", drill, budgets, cost, Ledger(source="h"), saturday)
    assert refused == {"drill": "outside profile drill's paging hours (Mon–Fri 10:00–16:00 Europe/London): "
                                "nobody was paged"}
    friday = _epoch("2026-12-04T11:00:00+00:00")
    assert refusals("drill", drill, budgets, cost, Ledger(source="h"), friday) == {}
    spent = Ledger(runs=2, used={"pages": budgets.pages_per_day - 1}, source="runs.jsonl")
    assert "the day's paging budget is spent: 3 of 4 pages" in refusals("drill", drill, budgets, cost, spent,
                                                                          friday)["drill"]


def test_the_days_checkouts_are_shared_by_every_run():
    gate = SPEC.profiles.get("gate")
    budgets = SPEC.profiles.budgets
    cost = run_cost(SPEC, gate)
    room = Ledger(runs=40, used={"checkouts": budgets.checkouts_per_day - cost["checkouts"]}, source="h")
    assert refusals("gate", gate, budgets, cost, room, 0.0) == {}
    full = Ledger(runs=41, used={"checkouts": budgets.checkouts_per_day - cost["checkouts"] + 1}, source="h")
    assert refusals("gate", gate, budgets, cost, full, 0.0)["endpoints"].startswith(
        "the day's checkout budget is spent: 587 of 600 used by 41 run(s)")


def _run(started: float, target: str = "live", checkouts: int = 14, org: str = "towerofbabel", **extra) -> dict:
    return {"started": started, "exit_code": 0, "criteria": [], "environment": {"target": target, "org": org},
            "actions": {"checkouts": checkouts, "pages": 0}, **extra}


def test_the_ledger_counts_the_last_day_of_the_same_target_once(tmp_path):
    now = 1_000_000.0
    runs = [_run(now - 60), _run(now - 86_000), _run(now - 90_000), _run(now - 30, target="sandbox")]
    for copy in ("artifact", "site"):  # the CI job fetches two copies of one history
        (tmp_path / copy).mkdir()
        (tmp_path / copy / "runs.jsonl").write_text("".join(json.dumps(r) + "\n" for r in runs) + "{torn")
    ledger = read_ledger(tmp_path, now)
    assert (ledger.runs, ledger.used["checkouts"]) == (2, 28)
    assert read_ledger(tmp_path, now, target="sandbox").used["checkouts"] == 14
    assert read_ledger(tmp_path / "missing", now).source is None


# --- whole runs ------------------------------------------------------------------------------------------

def test_the_gate_profile_runs_its_areas_and_names_itself(run_suite, tmp_path):
    run = run_suite("--profile", "gate", f"--junitxml={tmp_path / 'reports' / 'junit.xml'}")
    assert run.returncode == 0, run.output
    assert not [t for t in run.passed | run.failed if t.startswith(("test_drill", "test_no_alert_would"))]
    assert "paymon verdict: profile gate · sandbox, not production" in run.output
    # Not run by this profile: listed, with the profiles that run it.
    assert re.search(r"^NOT COVERED\s+–\s+Monthly review of alert rule effectiveness\n\s+profile gate does not "
                     r"run reviews \(run by profile review\)$", run.output, re.M), run.output
    properties = {p.get("name"): p.get("value")
                  for p in ET.parse(tmp_path / "reports" / "junit.xml").getroot().iter("property")}
    assert properties["paymon_profile"] == "gate"
    summary = json.loads((tmp_path / "reports" / "verdict.json").read_text())
    assert summary["profile"]["name"] == "gate" and summary["environment"]["profile"] == "gate"
    assert summary["actions"] == run_cost(SPEC, SPEC.profiles.get("gate")).counts


def test_a_run_that_would_overspend_its_profile_stops_before_sending_anything(run_suite):
    run = run_suite("--profile", "gate", "--probe-samples", "20")
    assert run.returncode == 2, run.output
    assert "paymon: profile gate may not do what this run would: checkouts: 65 needed, 14 allowed" in run.output
    assert "Traceback" not in run.output


def test_unknown_profiles_and_the_sandbox_profile_live_are_usage_errors(run_suite):
    run = run_suite("--profile", "nightly")
    assert run.returncode == 4 and "--profile nightly: not a profile of monitoring.yaml" in run.output
    run = run_suite("--target", "live", "--profile", "sandbox")
    assert run.returncode == 4 and "only against the sandbox" in run.output


def test_a_spent_checkout_budget_refuses_the_probes_as_could_not_check(run_suite, tmp_path):
    import time

    history = tmp_path / "runs.jsonl"
    history.write_text(json.dumps(_run(time.time() - 600, target="sandbox", checkouts=590)) + "\n")
    run = run_suite("--profile", "gate", "--history", str(history), "checks/test_payment_endpoints.py")
    assert run.returncode == 3, run.output
    probe = run.failures["test_endpoint_p95[/api/checkout/pro]"]
    assert "could not check: the day's checkout budget is spent: 590 of 600 used by 1 run(s)" in probe
    assert "this run needs 14; nothing was sent" in probe


def _history_with_samples(path, endpoint: str, values: list[float], runs: int) -> None:
    import time

    now = time.time()
    lines = [json.dumps(_run(now - 1800 * (n + 1), target="sandbox", checkouts=0, measurements=[
        {"kind": "p95", "endpoint": endpoint, "values_ms": values}])) for n in range(runs)]
    path.write_text("\n".join(lines) + "\n")


def test_pooled_samples_settle_what_one_canary_run_cannot(run_suite, tmp_path):
    """3 samples alone are 'inconclusive' (a warning); with 30 earlier runs' samples the gate judges
    p95 on 93 and passes, saying so."""
    alone = run_suite("--profile", "gate", "checks/test_payment_endpoints.py", "-k", "p95 and checkout/pro")
    assert alone.returncode == 0 and "inconclusive at n=3" in alone.output, alone.output
    history = tmp_path / "runs.jsonl"
    _history_with_samples(history, "/api/checkout/pro", [4.0, 5.0, 6.0], runs=30)
    pooled = run_suite("--profile", "gate", "--history", str(history), "checks/test_payment_endpoints.py",
                       "-k", "p95 and checkout/pro", "-rA")
    assert pooled.returncode == 0, pooled.output
    assert "inconclusive" not in pooled.output and "test_endpoint_p95[/api/checkout/pro]" in pooled.passed


def test_pooled_samples_over_critical_fail_the_gate_naming_the_endpoint(run_suite, tmp_path):
    history = tmp_path / "runs.jsonl"
    _history_with_samples(history, "/api/checkout/pro", [1500.0, 1600.0, 1700.0], runs=30)
    run = run_suite("--profile", "gate", "--history", str(history), "checks/test_payment_endpoints.py",
                    "-k", "p95 and checkout/pro")
    assert run.returncode == 1, run.output
    message = run.failures["test_endpoint_p95[/api/checkout/pro]"]
    assert "pooled critical (n=93 over 31 run(s)): /api/checkout/pro: p95" in message


def test_the_gate_fails_on_an_endpoint_its_three_samples_prove_critical(run_suite):
    world = golden_world()
    world["app"]["knobs"]["latency_ms"] = {"default": {"p50": 3, "p95": 6}, "/api/checkout/payg": 1400}
    run = run_suite("--profile", "gate", "checks/test_payment_endpoints.py", "-k", "p95", world=world)
    assert run.returncode == 1, run.output
    assert run.failed == {"test_endpoint_p95[/api/checkout/payg]"}, run.failures
    assert "critical: /api/checkout/payg: p95 1400.0 ms" in run.failures["test_endpoint_p95[/api/checkout/payg]"]


def test_the_readmes_criterion_table_is_what_the_checks_say(run_suite):
    """README's table of the guide's criteria (which checks prove each, in which profiles) is the
    output of `pytest --list-criteria`: a new check or profile that changes it changes the README."""
    run = run_suite("--list-criteria")
    assert run.returncode == 0, run.output
    listed = [line for line in run.output.splitlines() if line.startswith("|")]
    readme = (REPO / "README.md").read_text()
    block = readme.split("<!-- criteria-table:start -->")[1].split("<!-- criteria-table:end -->")[0]
    assert [line for line in block.splitlines() if line.startswith("|")] == listed
