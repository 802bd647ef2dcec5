"""The gate blocks what the guide says blocks, and lets the fix through (issue 12, item 4).

Test mode in production (§1 Alert 6) is judged on what is still open, an unresolved Sentry issue,
not on a 24-hour look-back: with the issue open the gate fails; once it is resolved (or "resolved
in the next release") the remedy deploy passes; and an explicit override (`--override test-mode:
REASON`, or PAYMON_OVERRIDE) lets it pass with a warning that records the reason.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import httpx
import pytest

from fixtures.outcome import parse_override
from paymon.clients.sentry.client import SentryClient
from paymon.config.spec import load_spec
from paymon.config.target import Target
from paymon.findings.production import test_mode_findings
from paymon.sandbox.faults import apply_fault
from paymon.sandbox.server import SandboxServer
from paymon.sandbox.world import golden_world
from tests.conftest import REPO

SPEC = load_spec(REPO / "monitoring.yaml")
CHECK = "checks/test_payment_endpoints.py::test_no_test_mode_event_in_production"
NAME = "test_no_test_mode_event_in_production"


@pytest.fixture
def test_mode_world():
    """The app ran in test mode 3 h ago: one unresolved "Test mode detected in production" issue."""
    with SandboxServer(apply_fault(golden_world("workflow"), "test-mode-event")) as server:
        yield server


def _client(server) -> SentryClient:
    target = Target("sandbox", sandbox=server.describe(), org=SPEC.organization, project=SPEC.project)
    return SentryClient(target.sentry(), deadline=5)


def _set_status(server, finding_issue: str, body: dict) -> None:
    info = server.describe()
    response = httpx.put(f"{info['base_url']}/api/0/organizations/{info['org']}/issues/{finding_issue}/",
                         json=body, headers={"Authorization": f"Bearer {info['token']}"})
    assert response.status_code == 200, response.text


def _issue_of(finding) -> str:
    return finding.field.split("open issue ", 1)[1].split(" ", 1)[0]


def _live_env(info: dict, **extra) -> dict:
    return {"SENTRY_BASE_URL": info["base_url"], "SENTRY_AUTH_TOKEN": info["token"], "SENTRY_ORG": info["org"],
            "SENTRY_PROJECT": info["project"], **extra}


@pytest.mark.parametrize("resolution", [{"status": "resolved"}, {"status": "resolvedInNextRelease"}],
                         ids=["resolved", "resolved in the next release"])
def test_an_open_test_mode_issue_fails_and_a_resolved_one_passes(test_mode_world, resolution):
    with _client(test_mode_world) as client:
        (finding,) = test_mode_findings(client, SPEC)
        assert finding.alert == "Test Mode Detected in Production"
        assert finding.field.startswith("open issue ") and finding.field.endswith(" in production")
        assert finding.expected == "none (resolved)" and '"Test mode detected in production' in finding.actual
        _set_status(test_mode_world, _issue_of(finding), resolution)
        assert test_mode_findings(client, SPEC) == []


def test_the_gate_fails_then_lets_the_remedy_through(test_mode_world, run_suite, tmp_path):
    """`pytest --target live` on that org: fails while the issue is open, passes with the override
    (recorded), and passes plainly once the issue is resolved."""
    env = _live_env(test_mode_world.describe())
    blocked = run_suite("--target=live", CHECK, env=env)
    assert blocked.returncode == 1 and blocked.failed == {NAME}, blocked.output
    assert "Test Mode Detected in Production: open issue" in blocked.failures[NAME]

    reason = "redeploying the LEMONSQUEEZY_TEST_MODE=false fix (INC-42)"
    overridden = run_suite("--target=live", CHECK, env={**env, "PAYMON_OVERRIDE": f"test-mode: {reason}"})
    assert overridden.returncode == 0 and overridden.passed == {NAME}, overridden.output
    assert f"overridden ({reason})" in overridden.output  # the verdict's reason line
    junit = max(tmp_path.glob("junit-*.xml"), key=lambda p: p.stat().st_mtime)  # run_suite's files
    properties = {p.get("name"): p.get("value") for p in ET.parse(junit).getroot().iter("property")}
    assert properties["override"] == f"test-mode: {reason}" and properties["verdict"] == "warning"

    with _client(test_mode_world) as client:
        _set_status(test_mode_world, _issue_of(test_mode_findings(client, SPEC)[0]), {"status": "resolved"})
    fixed = run_suite("--target=live", CHECK, env=env)
    assert fixed.returncode == 0 and fixed.passed == {NAME}, fixed.output


@pytest.mark.parametrize("text, problem", [
    ("test-mode", "expects 'KEY[,KEY]: REASON'"),
    ("test-mode:   ", "expects 'KEY[,KEY]: REASON'"),
    ("alerts: because", "unknown key alerts"),
])
def test_a_malformed_override_is_one_line(text, problem):
    with pytest.raises(ValueError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        parse_override(text)
    assert parse_override("  ") is None
    assert parse_override("test-mode: fix INC-1") == (frozenset({"test-mode"}), "fix INC-1")


def test_a_malformed_override_stops_the_run_with_one_line(run_suite):
    run = run_suite(CHECK, env={"PAYMON_OVERRIDE": "alerts: skip them"})
    assert run.returncode == 4  # pytest's usage error
    assert "--override: unknown key alerts" in run.output and "Traceback" not in run.output


# --- usage failures and Sentry's p95: the other production-health findings ---------------------------

def test_usage_failures_over_the_limit_pass_once_their_issues_are_resolved():
    from paymon.findings.production import usage_reporting_findings

    with SandboxServer(apply_fault(golden_world("workflow"), "usage-failures")) as server, _client(server) as client:
        findings, measured = usage_reporting_findings(client, SPEC)
        assert findings and measured.open_issues >= 1 and not measured.resolved_over_limit
        assert "unresolved issue(s)" in findings[0].source
        info = server.describe()
        response = httpx.put(f"{info['base_url']}/api/0/organizations/{info['org']}/issues/",
                             params={"query": 'is:unresolved message:"*Usage reporting failed*"'},
                             json={"status": "resolved"}, headers={"Authorization": f"Bearer {info['token']}"})
        assert response.status_code == 200, response.text
        findings, measured = usage_reporting_findings(client, SPEC)
        assert findings == [] and measured.resolved_over_limit and measured.rate > 0.01


def test_usage_failures_resolved_pass_with_a_warning_in_the_verdict(run_suite):
    """The same through the check: over the limit with every issue resolved is a warning."""
    world = apply_fault(golden_world("workflow"), "usage-failures")
    world["app"]["history"]["resolved_issues"] = ["Usage reporting failed"]
    run = run_suite("checks/test_usage_reporting.py", world=world)
    assert run.returncode == 0 and run.passed == {"test_usage_reporting_failure_rate"}, run.output
    assert "every issue of it is resolved" in run.output


def test_a_sentry_p95_override_passes_the_slow_endpoint_and_nothing_else(run_suite):
    world = golden_world("workflow")
    world["app"]["knobs"]["latency_ms"] = {"default": {"p50": 4, "p95": 8},
                                           "/api/checkout/pro": {"p50": 1200, "p95": 1600}}
    check = "checks/test_performance_alerts.py::test_payment_transactions_in_sentry"
    blocked = run_suite(check, world=world)
    assert blocked.failed == {"test_payment_transactions_in_sentry[/api/checkout/pro]"}, blocked.output
    passed = run_suite(check, world=world, env={"PAYMON_OVERRIDE": "sentry-p95: INC-7 rollback under way"})
    assert passed.returncode == 0, passed.output
    assert "overridden (INC-7 rollback under way)" in passed.output
