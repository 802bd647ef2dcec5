"""§1 alerts 3 and 5, "Create incident log entry" (monitoring.yaml `incident_log: sentry`): a metric
alert's firings are Sentry's incident log; an issue alert keeps none; a log this Sentry does not
serve is "could not check", never a pass."""

from __future__ import annotations

import pytest

from paymon.clients.sentry.client import SentryClient
from paymon.config.spec import load_spec
from paymon.config.target import Target
from paymon.errors import TargetUnavailable
from paymon.findings.incident_log import incident_log
from paymon.findings.snapshot import SentrySnapshot
from paymon.sandbox.faults import apply_fault
from paymon.sandbox.server import SandboxServer
from paymon.sandbox.world import golden_world
from tests.conftest import REPO

SPEC = load_spec(REPO / "monitoring.yaml")
ALERT_5 = SPEC.alert("Reconciliation Discrepancy Detected")


def _judge(world):
    with SandboxServer(world) as server:
        target = Target("sandbox", sandbox=server.describe())
        with SentryClient(target.sentry(), deadline=5) as client:
            snapshot = SentrySnapshot(client, SPEC)
            now = server.clock.now()
            return incident_log(ALERT_5, snapshot.alert(ALERT_5.name), client, snapshot.project["id"], now)


@pytest.mark.parametrize("generation", ["legacy", "workflow"])
def test_a_metric_alert_keeps_a_readable_log(generation):
    findings, entries = _judge(golden_world(generation))
    assert findings == [] and entries == []


@pytest.mark.parametrize("generation", ["legacy", "workflow"])
def test_an_issue_alert_keeps_none(generation):
    findings, entries = _judge(apply_fault(golden_world(generation), "reconciliation-issue-alert"))
    assert entries is None
    assert [f.field for f in findings] == ["incident log entry"]


def test_a_log_this_sentry_does_not_serve_is_could_not_check():
    world = golden_world("workflow")
    world["sentry"]["knobs"]["fail"] = [{"path": "/open-periods/", "status": 404}]
    with pytest.raises(TargetUnavailable, match="incident log .* is not served by this Sentry"):
        _judge(world)
