"""Positive controls (issue 13 item 5): a production-health check that passes because something
did *not* happen first proves its query could have seen it. The same query, over the same project,
environment and window, must return this run's own test-tagged event (or, when the run sent none,
any event of the project); otherwise the answer is "could not check" with the reason.

Against a bare sandbox (no history: an empty organisation) the checks' queries answer empty; only
once this run's own test event is there does empty mean "nothing happened"."""

from __future__ import annotations

import time

import pytest

from paymon.errors import TargetUnavailable
from paymon.findings import production as pm
from paymon.findings.production import Control
from paymon.sandbox.server import SandboxServer
from paymon.sandbox.world import golden_world
from paymon.clients.sentry.client import SentryClient
from paymon.config.spec import load_spec
from paymon.config.target import Target
from tests.conftest import REPO

SPEC = load_spec(REPO / "monitoring.yaml")
OWN = Control.own_events("run42", ["PAYMON-TEST-RUN42-SLACK"], patience_s=0)  # the sandbox indexes at once


def _client(server: SandboxServer) -> SentryClient:
    target = Target("sandbox", sandbox=server.describe(), org=SPEC.organization, project=SPEC.project)
    return SentryClient(target.sentry(), deadline=5)


def _own_test_event(server: SandboxServer, environment: str = "production", project: str | None = None) -> None:
    server.sentry.store_event({"message": "PAYMON-TEST-RUN42-SLACK synthetic delivery check from paymon (ignore)",
                               "level": "warning", "environment": environment,
                               "tags": {"test": "true", "paymon_run": "run42", "paymon_check": "slack"}},
                              project=project)


def _usage_reports(server: SandboxServer, n: int = 3) -> None:
    now = server.clock.now()
    for i in range(n):
        server.sentry.store_event({"type": "transaction", "transaction": SPEC.usage_reporting.transaction,
                                   "environment": "production", "start_timestamp": now - 0.2, "timestamp": now,
                                   "contexts": {"trace": {"op": "task", "status": "ok"}}}, item_type="transaction")


def test_no_test_mode_issue_is_could_not_check_until_the_search_sees_this_runs_event():
    with SandboxServer(golden_world()) as server, _client(server) as client:
        with pytest.raises(TargetUnavailable, match="does not show this run's own test event "
                                                    r"\(PAYMON-TEST-RUN42-SLACK\) either"):
            pm.test_mode_findings(client, SPEC, OWN)
        _own_test_event(server)
        assert pm.test_mode_findings(client, SPEC, OWN) == []


def test_a_control_in_another_project_or_environment_proves_nothing():
    """The control goes through the very same query: paymon's event in staging, or in another
    project, is not one the production search could have missed."""
    world = golden_world()
    with SandboxServer(world) as server, _client(server) as client:
        _own_test_event(server, environment="staging")
        _own_test_event(server, project="towerofbabel-staging")
        with pytest.raises(TargetUnavailable, match="an empty answer proves nothing"):
            pm.test_mode_findings(client, SPEC, OWN)


def test_no_reconciliation_issue_needs_the_control_too():
    with SandboxServer(golden_world()) as server, _client(server) as client:
        with pytest.raises(TargetUnavailable, match="open reconciliation-discrepancy issues came back empty"):
            pm.reconciliation_findings(client, SPEC, control=OWN)
        _own_test_event(server)
        findings = pm.reconciliation_findings(client, SPEC, control=OWN)
        assert not [f for f in findings if f.alert.startswith("issue ")]


def test_no_usage_failure_is_only_zero_when_the_events_query_sees_an_event():
    with SandboxServer(golden_world()) as server, _client(server) as client:
        _usage_reports(server)
        with pytest.raises(TargetUnavailable, match="'Usage Reporting Failure Rate' events query over 24h came back "
                                                    "empty"):
            pm.usage_reporting_findings(client, SPEC, OWN)
        _own_test_event(server)
        findings, measured = pm.usage_reporting_findings(client, SPEC, OWN)
        assert findings == [] and measured.failures == 0 and measured.rate == 0.0


def test_without_the_runs_own_event_any_event_of_the_project_is_the_control():
    with SandboxServer(golden_world()) as server, _client(server) as client:
        with pytest.raises(TargetUnavailable, match="does not show any event of the project either"):
            pm.prove_issue_search(client, "qa", None, "the search for open issues in qa")
        server.sentry.store_event({"message": "TypeError: x is undefined", "level": "error", "environment": "qa"})
        assert pm.prove_issue_search(client, "qa", None, "the search for open issues in qa") == 1


def test_a_control_sent_moments_ago_is_waited_for_within_its_patience():
    calls = []

    def seen():
        calls.append(1)
        return 1 if len(calls) >= 3 else 0

    clock = iter(range(100))
    assert pm._prove(seen, Control("x", "it", patience_s=10), "q", clock=lambda: next(clock),
                     sleep=lambda _s: None) == 1
    with pytest.raises(TargetUnavailable):
        pm._prove(lambda: 0, Control("x", "it", patience_s=2), "q", clock=time.monotonic, sleep=lambda _s: None)
