"""The live gate as a team would switch it on (issue 12, "Done when"): configured only through the
documented variables (`paymon sandbox serve --env-file`, i.e. `SandboxServer.live_environment()`)
against a served golden sandbox, `pytest --target live -n 2` with the gate's defaults exits 0,
proves Slack and PagerDuty delivery, and no high-urgency incident notifies a person; with the
app's p95 over a critical budget the same run fails naming the endpoint."""

from __future__ import annotations

import time

import pytest

from conftest import live_run
from paymon.clients.pagerduty import PagerDutyClient
from paymon.config.target import Target
from paymon.delivery.endtoend import iso
from paymon.sandbox.server import SandboxServer
from paymon.sandbox.world import golden_world


def _served(world: dict) -> SandboxServer:
    world.setdefault("app", {}).setdefault("knobs", {})["latency_mode"] = "wait"  # as `paymon sandbox serve`
    return SandboxServer(world)


@pytest.mark.parametrize("generation", ["workflow", "legacy"])
def test_the_default_gate_passes_on_a_healthy_org_and_pages_nobody(generation, tmp_path):
    started = time.time()
    with _served(golden_world(generation)) as server:
        run = live_run(server, tmp_path / "junit.xml", "-rfE", "-n", "2", "--dist=loadgroup")
        assert run.returncode == 0, run.output
        assert {"test_slack_delivery", "test_pagerduty_delivery"} <= run.passed, run.output
        assert "paymon verdict: profile gate · live, org towerofbabel" in run.output
        with PagerDutyClient(Target("sandbox", sandbox=server.describe()).pagerduty(), deadline=10) as pagerduty:
            incidents = [i for service in pagerduty.paginate("/services", "services", {})
                         for i in pagerduty.incidents(since=iso(started - 60), service_id=service["id"])]
            assert incidents, "the synthetic check opened no incident"
            for incident in incidents:
                notified = [e for e in pagerduty.log_entries(incident["id"]) if e["type"] == "notify_log_entry"]
                if incident.get("urgency") == "high":
                    assert not notified, f"{incident['title']}: a high-urgency page notified {notified}"
            synthetic = [i for i in incidents if "PAYMON-TEST-" in (i.get("title") or "")]
            assert synthetic and {i["urgency"] for i in synthetic} == {"low"}


def test_the_default_gate_fails_naming_an_endpoint_over_its_critical_budget(tmp_path):
    world = golden_world()
    world["app"]["knobs"]["latency_ms"] = {"default": {"p50": 3, "p95": 6}, "/api/checkout/payg": 1400}
    with _served(world) as server:
        run = live_run(server, tmp_path / "junit.xml", "-rfE", "checks/test_payment_endpoints.py", "-k", "p95")
    assert run.returncode == 1, run.output
    assert run.failed == {"test_endpoint_p95[/api/checkout/payg]"}, run.output
    assert "critical: /api/checkout/payg: p95" in run.failures["test_endpoint_p95[/api/checkout/payg]"]
