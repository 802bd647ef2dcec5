"""`paymon plan` / `paymon apply` against the sandbox.

From every one-fault world apply can fix (in the legacy and the workflow generation), from an empty
org and from a legacy-only org, apply brings the organisation to a state where the configuration
checks' own judgements find nothing, and a second plan is empty. Delivery-path faults apply cannot
fix are reported by the plan, not silently planned around. Twice the whole suite is run on the
world as apply left it.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from paymon.clients.pagerduty import PagerDutyClient
from paymon.remedy.apply import ApplyRefused, apply_plan, refuse_inside_pytest, require_write_scopes
from paymon.remedy.planner import plan
from paymon.sandbox.faults import apply_fault
from paymon.sandbox.sentry.writes import current_world
from paymon.sandbox.server import SandboxServer
from paymon.sandbox.world import golden_world
from paymon.findings.snapshot import SentrySnapshot
from paymon.clients.sentry.writer import SentryWriteClient
from paymon.config.settings import SentrySettings
from paymon.clients.slack import SlackReader
from paymon.config.spec import load_spec
from paymon.config.target import Target

from conftest import REPO

SPEC = load_spec(REPO / "monitoring.yaml")
CONFIG_FAULTS = ["threshold", "window", "environment-missing", "slack-wrong-channel", "pagerduty-missing",
                 "rule-disabled", "per-issue", "widget-missing", "cron-wrong-hour", "perf-threshold",
                 "event-types-error-only", "synthetic-slack-action-removed", "right-rule-wrong-project"]
# fault -> what the plan must say about it (apply cannot change Slack, PagerDuty or an integration)
DELIVERY_FAULTS = {
    "integration-disabled": "PagerDuty service TowerOfBabel Payments: status expected active, actual disabled",
    "channel-archived": "Slack #payments-alerts: archived expected false, actual true",
    "bot-not-in-channel": "Sentry bot member expected U07SENTRYBT, actual not a member",
    "pagerduty-service-disabled": "PagerDuty TowerOfBabel Payments: status expected enabled, actual disabled",
    "pagerduty-maintenance": "maintenance expected none, actual a maintenance window is ongoing",
    "wrong-routing-key": "is not an integration of the PagerDuty service",
}


def empty_org(generation: str = "workflow") -> dict:
    """The golden world with no alerts, dashboard or cron monitor: a fresh organisation."""
    world = golden_world(generation)
    sentry = world["sentry"]
    sentry["metric_alert_rules"], sentry["workflows"] = [], []
    sentry["issue_rules"] = {slug: [] for slug in sentry["issue_rules"]}
    sentry["detectors"] = [d for d in sentry["detectors"] if d["type"] in ("error", "issue_stream")]
    for detector in sentry["detectors"]:
        detector["workflowIds"] = []
    sentry["dashboards"], sentry["monitors"], sentry["monitor_checkins"] = [], [], {}
    return world


def _client(server: SandboxServer, token: str | None = None) -> SentryWriteClient:
    settings = SentrySettings(token=token or server.sentry_token, org=server.org, project=server.project,
                              base_url=server.base_url)
    return SentryWriteClient(settings, deadline=10)


def _config_findings(server: SandboxServer) -> list[str]:
    """Every configuration check's findings, judged the way the checks judge them."""
    with _client(server) as client:
        snap = SentrySnapshot(client, SPEC)
        found = []
        for alert in [*SPEC.alerts, *SPEC.synthetic_checks]:
            found += snap.alert_findings(alert) + snap.semantic_findings(alert)
        for alert in SPEC.alerts:
            found += snap.routing_findings(alert)
        for budget in SPEC.performance.budgets:
            found += snap.performance_findings(budget)
        found += snap.dashboard_findings() + snap.cron_findings()
        for widget in SPEC.dashboard.widgets:
            found += snap.widget_findings(widget)
    return [f.line() for f in found]


def _apply(server: SandboxServer):
    log: list[str] = []
    with _client(server) as client:
        first = plan(client, SPEC)
        result = apply_plan(client, first, log=log.append)
        again = plan(client, SPEC)
    return first, result, again, log


def _run(world: dict):
    with SandboxServer(world) as server:
        first, result, again, log = _apply(server)
        findings = _config_findings(server)
        after = current_world(server.sentry, world["sentry"])
    return first, result, again, findings, {**world, "sentry": after}, log


@pytest.mark.parametrize("generation", ["legacy", "workflow", "both"])
def test_golden_worlds_plan_nothing(generation):
    with SandboxServer(golden_world(generation)) as server, _client(server) as client:
        result = plan(client, SPEC)
    assert result.empty and not result.blocked and not result.unknown, result.render()
    assert result.render().endswith("No changes.")


@pytest.mark.parametrize("fault", CONFIG_FAULTS)
@pytest.mark.parametrize("generation", ["legacy", "workflow"])
def test_apply_fixes_each_config_fault(generation, fault):
    first, result, again, findings, _world, log = _run(apply_fault(golden_world(generation), fault))
    assert not first.empty and result.ok, result.summary()
    assert len(log) == 2 * result.writes  # every write logged (and its outcome)
    assert again.empty, again.render()
    assert not findings, findings
    # Fixing goes in the generation the alert lives in: nothing is created in the other one.
    writes = [w.path for c in first.changes for w in c.writes]
    if generation == "legacy":
        assert not any("/detectors/" in p or "/workflows/" in p for p in writes), writes
    else:
        assert not any("/rules/" in p or "/alert-rules/" in p for p in writes), writes


def test_apply_fixes_both_copies_of_a_dual_written_alert():
    first, result, again, findings, _world, _log = _run(apply_fault(golden_world("both"), "threshold"))
    assert {c.where.split()[0] for c in first.changes} == {"detector", "metric_alert"}
    assert result.ok and again.empty and not findings, findings


def test_plan_shows_old_and_new_field_by_field():
    with SandboxServer(apply_fault(golden_world("workflow"), "window")) as server, _client(server) as client:
        text = plan(client, SPEC).render()
    assert '~ update alert "Webhook Processing Failure" (detector 5801004 + workflow 9301001)' in text
    assert "window: 900s → 600s" in text
    assert "Plan: 0 to create, 1 to update, 0 to replace, 0 to delete (1 API writes)." in text


@pytest.mark.parametrize("fault", sorted(DELIVERY_FAULTS))
def test_delivery_faults_are_reported_not_planned(fault):
    with SandboxServer(apply_fault(golden_world("workflow"), fault)) as server, _client(server) as client:
        target = Target("sandbox", sandbox=server.describe())
        with PagerDutyClient(target.pagerduty(), deadline=10) as pagerduty:
            result = plan(client, SPEC, slack_reader=SlackReader(target.slack()), pagerduty_client=pagerduty)
    assert result.empty, result.render()
    assert any(DELIVERY_FAULTS[fault] in line for line in result.unfixable), result.unfixable
    assert "Problems apply cannot fix" in result.render()


def test_without_slack_and_pagerduty_settings_the_plan_says_what_it_did_not_check():
    with SandboxServer(golden_world("workflow")) as server, _client(server) as client:
        result = plan(client, SPEC, unchecked=["Slack channels not checked: SLACK_BOT_TOKEN is not set"])
    assert "Slack channels not checked: SLACK_BOT_TOKEN is not set" in result.render()


def test_from_an_empty_org_the_whole_suite_passes_after_apply(run_suite):
    first, result, again, findings, world, _log = _run(empty_org("workflow"))
    assert first.count("create") == 15 and result.ok, first.render()
    assert again.empty and not findings, findings
    suite = run_suite(world=world)
    assert suite.returncode == 0, suite.output[-3000:]


def test_an_empty_org_with_the_legacy_endpoints_gets_the_workflow_engine():
    first, result, again, findings, _world, _log = _run(empty_org("legacy"))
    assert first.generation == "workflow" and "default" in first.generation_reason
    assert result.ok and again.empty and not findings, findings


def test_a_legacy_only_org_gets_legacy_rules_and_the_whole_suite_passes(run_suite):
    world = apply_fault(golden_world("legacy"), "per-issue")
    sentry = world["sentry"]
    missing = {"Webhook Processing Failure", "Checkout p95 Latency (/api/checkout/payg)"}
    sentry["metric_alert_rules"] = [r for r in sentry["metric_alert_rules"] if r["name"] not in missing]
    slug = next(iter(sentry["issue_rules"]))
    sentry["issue_rules"][slug] = [r for r in sentry["issue_rules"][slug] if r["name"] != "paymon synthetic check: Slack"]
    first, result, again, findings, after, _log = _run(world)
    assert first.generation == "legacy", first.render()
    writes = [w.path for c in first.changes for w in c.writes]
    assert writes and not any("/detectors/" in p or "/workflows/" in p for p in writes), writes
    assert result.ok and again.empty and not findings, findings
    assert not after["sentry"]["workflows"]
    suite = run_suite(world=after)
    assert suite.returncode == 0, suite.output[-3000:]


def test_a_failure_part_way_is_accounted_for_and_rerunning_continues():
    with SandboxServer(empty_org("workflow")) as server:
        server.sentry.inject_failure(400, path=r"/workflows/$", method="POST", times=3)
        log: list[str] = []
        with _client(server) as client:
            result = apply_plan(client, plan(client, SPEC), log=log.append)
        assert not result.ok
        summary = result.summary()
        assert "Apply stopped: Sentry rejected POST /api/0/organizations/towerofbabel/workflows/ (400)" in summary
        assert 'Partly changed: alert "Payment Failure Rate Spike" (done: create metric detector' in summary
        assert "Not changed (14):" in summary and "Re-run `paymon apply`" in summary
        # The detector exists without its workflow; the next plan completes it instead of duplicating it.
        with _client(server) as client:
            follow_up = plan(client, SPEC)
            change = next(c for c in follow_up.changes if c.subject == 'alert "Payment Failure Rate Spike"')
            assert change.action == "update" and [w.method for w in change.writes] == ["POST"]
            assert change.writes[0].what.startswith('create workflow "Payment Failure Rate Spike" for detector')
            first_retry = apply_plan(client, follow_up, log=log.append)
        assert not first_retry.ok  # the injected failure is still there for two more POSTs
        for _ in range(3):
            with _client(server) as client:
                done = apply_plan(client, plan(client, SPEC), log=log.append)
            if done.ok:
                break
        with _client(server) as client:
            assert plan(client, SPEC).empty
        assert _config_findings(server) == []
        names = [d["name"] for d in server.sentry.detectors]
        assert names.count("Payment Failure Rate Spike") == 1


def test_a_read_only_token_gets_one_line():
    with SandboxServer(golden_world("workflow")) as server:
        with _client(server, server.sentry.tokens[1]["token"]) as client:
            with pytest.raises(ApplyRefused) as refused:
                require_write_scopes(client)
    message = str(refused.value)
    assert "\n" not in message and message.startswith("the Sentry token is read-only")
    assert server.sentry.tokens[1]["token"] not in message


def test_apply_never_writes_inside_a_pytest_run():
    with pytest.raises(ApplyRefused, match="does not write during a pytest run"):
        refuse_inside_pytest({"PYTEST_CURRENT_TEST": "checks/test_alert_rules.py::x (call)"})


def test_unknown_alerts_are_reported_and_deleted_only_when_asked():
    world = golden_world("workflow")
    extra = next(d for d in world["sentry"]["detectors"] if d["name"] == "Webhook Processing Failure")
    world["sentry"]["detectors"].append({**extra, "id": "5809999", "name": "Old experiment", "workflowIds": []})
    with SandboxServer(world) as server, _client(server) as client:
        kept = plan(client, SPEC)
        assert kept.empty and kept.unknown == ['"Old experiment" (detector 5809999 (no workflow))']
        asked = plan(client, SPEC, delete_unknown=True)
        assert [c.action for c in asked.changes] == ["delete"]
        assert apply_plan(client, asked, log=lambda _: None).ok
        assert plan(client, SPEC).unknown == []


def _other_projects(sentry) -> dict:
    """Every alert object of the projects paymon is not configured for (staging's copy of alert 1,
    the growth team's Signup Error Spike), as the org-level lists hold them."""
    ours = sentry.projects[0]
    detectors = [d for d in sentry.detectors if str(d["projectId"]) != str(ours["id"])]
    ids = {str(d["id"]) for d in detectors}
    return {"metric_alert_rules": [r for r in sentry.metric_alert_rules if ours["slug"] not in r["projects"]],
            "detectors": detectors,
            "workflows": [w for w in sentry.workflows if {str(i) for i in w.get("detectorIds") or ()} & ids]}


@pytest.mark.parametrize("generation", ["legacy", "workflow", "both"])
def test_delete_unknown_never_touches_another_projects_alerts(generation):
    """Issue 13 item 4: our own unknown alert is deleted; other projects' alerts (same name as one of
    ours, or unknown to monitoring.yaml) are neither listed, planned nor touched by apply."""
    world = golden_world(generation)
    sentry = world["sentry"]
    if sentry["metric_alert_rules"]:
        rule = next(r for r in sentry["metric_alert_rules"] if r["name"] == "Webhook Processing Failure")
        sentry["metric_alert_rules"].append({**rule, "id": "7999", "name": "Old experiment"})
    else:
        detector = next(d for d in sentry["detectors"] if d["name"] == "Webhook Processing Failure")
        sentry["detectors"].append({**detector, "id": "5809999", "name": "Old experiment", "workflowIds": []})
    with SandboxServer(world) as server, _client(server) as client:
        theirs = _other_projects(server.sentry)
        assert theirs["metric_alert_rules"] or theirs["workflows"]
        kept = plan(client, SPEC)
        assert kept.empty and [u.split(" (")[0] for u in kept.unknown] == ['"Old experiment"'], kept.render()
        asked = plan(client, SPEC, delete_unknown=True)
        targets = " ".join(w.path for c in asked.changes for w in c.writes)
        assert [c.action for c in asked.changes] == ["delete"], asked.render()
        for kind, objects in theirs.items():
            for obj in objects:
                assert f"/{obj['id']}/" not in targets, (kind, obj["id"], targets)
        assert apply_plan(client, asked, log=lambda _: None).ok
        assert _other_projects(server.sentry) == theirs
        assert plan(client, SPEC).unknown == []


# --- the commands ----------------------------------------------------------------------------------

def _paymon(*args: str, env: dict | None = None, stdin: str = "") -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("SENTRY_", "SLACK_", "PAGERDUTY_", "PYTEST_"))}
    return subprocess.run([sys.executable, "-m", "paymon.cli", *args], cwd=REPO, env={**clean, **(env or {})},
                          capture_output=True, text=True, timeout=120, input=stdin)


def _sandbox_env(server: SandboxServer, token: str | None = None) -> dict:
    return {"SENTRY_BASE_URL": server.base_url, "SENTRY_AUTH_TOKEN": token or server.sentry_token,
            "SENTRY_ORG": server.org, "SENTRY_PROJECT": server.project}


def test_commands_with_nothing_set_say_so_in_one_line():
    for command in ("plan", "apply"):
        done = _paymon(command)
        assert done.returncode == 2
        assert done.stderr.count("\n") == 1 and "no Sentry settings: set SENTRY_AUTH_TOKEN" in done.stderr
        assert "Traceback" not in done.stderr


def test_plan_then_apply_then_plan_through_the_commands():
    with SandboxServer(apply_fault(golden_world("workflow"), "threshold")) as server:
        env = _sandbox_env(server)
        pending = _paymon("plan", "--detailed-exitcode", env=env)
        assert pending.returncode == 2, pending.stderr
        assert "threshold: 20 → 10" in pending.stdout
        assert _paymon("plan", env=env).returncode == 0  # without the flag, changes are not an error
        declined = _paymon("apply", env=env, stdin="yes\n")  # no terminal: never applies without --yes
        assert declined.returncode == 1 and "nothing was changed" in declined.stdout
        applied = _paymon("apply", "--yes", env=env)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert "PUT /api/0/organizations/towerofbabel/detectors/5801003/" in applied.stdout
        assert "Apply complete: 1 changes, 1 API writes." in applied.stdout
        clean = _paymon("plan", "--detailed-exitcode", env=env)
        assert clean.returncode == 0 and clean.stdout.rstrip().endswith("No changes.")
        assert server.sentry_token not in applied.stdout + applied.stderr + pending.stdout


def test_apply_with_a_read_only_token_through_the_command():
    with SandboxServer(apply_fault(golden_world("workflow"), "threshold")) as server:
        done = _paymon("apply", "--yes", env=_sandbox_env(server, server.sentry.tokens[1]["token"]))
        assert done.returncode == 2
        assert done.stderr.startswith("paymon: the Sentry token is read-only") and done.stderr.count("\n") == 1
        assert server.sentry.request_count(method="PUT") == 0


def test_names_that_do_not_resolve_are_named_and_block_only_their_alert():
    world = empty_org("workflow")
    sentry = world["sentry"]
    sentry["members"] = [m for m in sentry["members"] if m["email"] != "exec@towerofbabel.com"]
    sentry["teams"] = [t for t in sentry["teams"] if t["slug"] != "security"]
    with SandboxServer(world) as server, _client(server) as client:
        result = plan(client, SPEC)
    text = result.render()
    assert ("alert \"Test Mode Detected in Production\": e-mail 'exec@towerofbabel.com': exec@towerofbabel.com "
            "is not a member of the Sentry organisation") in text
    assert "alert \"Webhook Signature Verification Failure Spike\": e-mail 'security team': Sentry has no team " \
           "'security'" in text
    created = {c.subject for c in result.changes}
    assert 'alert "Test Mode Detected in Production"' not in created
    assert 'alert "Payment Failure Rate Spike"' in created


def test_an_update_keeps_what_monitoring_yaml_does_not_model():
    with SandboxServer(apply_fault(golden_world("workflow"), "pagerduty-missing")) as server:
        _apply(server)
        workflow = next(w for w in server.sentry.workflows if w["name"] == "Test Mode Detected in Production")
    notes = [a["data"].get("notes") for g in workflow["actionFilters"] for a in g["actions"] if a["type"] == "slack"]
    # the live notes are kept as they were (the mention, and the runbook link once)
    assert ("@oncall-payments halt all deployments Runbook: https://gitlab.com/towerofbabel/payments/-/blob/main/"
            "docs/payment-monitoring.md#test-mode-in-production") in notes
