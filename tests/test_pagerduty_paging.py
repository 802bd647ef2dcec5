"""PagerDuty proven without waking anyone (issue 12 item 2), read back by its alerts (issue 13 item
7), failing fast when the page cannot come (issue 14 item 6).

- A gate run (`pytest --target live` against a served sandbox, only the documented variables)
  leaves the sandbox PagerDuty's log with the synthetic incident low urgency, assigned to the
  level-1 on-call, resolved by paymon, and not one high-urgency notification to a person.
- The watcher finds paymon's alert when alert grouping merged it into another incident (whose
  title is not paymon's), ignores an incident titled with the marker that no Sentry alert opened,
  and stops after one poll when the service is disabled: on the sandbox clock, so the deadline is
  never waited out.
"""

from __future__ import annotations

import os

import pytest

from paymon.clients.pagerduty import PagerDutyClient
from paymon.config.target import Target
from paymon.delivery.endtoend import Delivery, PagerDutyWatcher, sentry_integration_ids
from paymon.sandbox.hub import SandboxClock
from paymon.sandbox.server import SandboxServer
from paymon.sandbox.world import golden_world

from conftest import REPO, live_run, spec_with_deadlines
from tests import forked_pytest

SERVICE_ID, ON_CALL = "PTOWPAY", "PUONCAL"
ROUTING_KEY = "3f9c1e7a2b6d4c08a5e1f7b9d2c4a6e8"  # Sentry's service-table key for the service
START = 1_780_000_000.0


def test_a_gate_run_pages_nobody(tmp_path):
    spec = spec_with_deadlines(tmp_path, slack="30s", pagerduty="60s")
    junit = tmp_path / "junit.xml"
    with SandboxServer(golden_world()) as server:
        run = live_run(server, junit, "--no-drill", f"--spec={spec}", "checks/test_delivery.py",
                       env={"PAYMON_API_DEADLINE": "10"})
        assert run.returncode == 0 and "test_pagerduty_delivery" in run.passed, run.output

        backend = server.backend("pagerduty")
        ours = [i for i in backend.incidents if "PAYMON-TEST-" in i.title]
        assert len(ours) == 1, [i.title for i in backend.incidents]
        (incident,) = ours
        entries = {e.type: e for e in incident.log_entries}
        assert incident.urgency == "low" and incident.status == "resolved"
        assert entries["assign_log_entry"].extra["assignees"] == [ON_CALL]
        assert "paymon: synthetic test incident" in entries["resolve_log_entry"].extra.get("note", "")
        # Not one high-urgency notification to a person, from anything the run did.
        high = [(i.title, e.extra.get("user")) for i in backend.incidents if i.urgency == "high"
                for e in i.log_entries if e.type == "notify_log_entry"]
        assert high == [] and all(i.urgency == "low" for i in backend.incidents)


def test_a_real_page_open_during_a_run_is_neither_its_delivery_nor_resolved_by_it(tmp_path):
    """A real page (Sentry's integration, "Critical: Payment Failure Rate Spike") is open on the
    payments service when a live run starts (knob open_incidents): the run proves its own low-urgency
    page, and the real one is still open afterwards, untouched by the sweep and the cleanup."""
    spec = spec_with_deadlines(tmp_path, slack="30s", pagerduty="60s")
    junit = tmp_path / "junit.xml"
    world = golden_world()
    key = next(i["integration_key"] for i in world["pagerduty"]["integrations"] if i["name"] == "Sentry")
    world["pagerduty"]["knobs"]["open_incidents"] = [
        {"summary": "Critical: Payment Failure Rate Spike", "routing_key": key, "dedup_key": "incident_7101_real",
         "severity": "critical", "opened_before": 3 * 3600}]  # older than delivery.sweep_after: swept if it could be
    with SandboxServer(world) as server:
        run = live_run(server, junit, "--no-drill", f"--spec={spec}", "checks/test_delivery.py",
                       env={"PAYMON_API_DEADLINE": "10"})
        assert run.returncode == 0 and "test_pagerduty_delivery" in run.passed, run.output
        backend = server.backend("pagerduty")
        (real,) = [i for i in backend.incidents if i.title == "Critical: Payment Failure Rate Spike"]
        assert real.status in ("triggered", "acknowledged") and real.urgency == "high"
        assert not [e for e in real.log_entries if e.type == "resolve_log_entry"]
        (ours,) = [i for i in backend.incidents if "PAYMON-TEST-" in i.title]
        assert ours.status == "resolved" and ours.id != real.id


# --- the watcher, on a frozen sandbox clock -------------------------------------------------------


@pytest.fixture
def pagerduty(request):
    world = golden_world()
    part = world["pagerduty"]
    part["knobs"].update(delivery_delay=2.0, notify_delay=0.0)
    # A second integration on the payments service (a person's e-mail integration, say): its
    # incidents are not Sentry's, whatever their title.
    part["integrations"].append({"id": "PINTMAN", "type": "events_api_v2_inbound_integration", "name": "Manual",
                                 "service": {"id": SERVICE_ID, "type": "service_reference"},
                                 "integration_key": "feedfacefeedfacefeedfacefeedface"})
    next(s for s in part["services"] if s["id"] == SERVICE_ID)["integrations"].append(
        {"id": "PINTMAN", "type": "events_api_v2_inbound_integration_reference"})
    for name, value in getattr(request, "param", {}).items():
        next(s for s in part["services"] if s["id"] == SERVICE_ID)[name] = value
    with SandboxServer(world, clock=SandboxClock(start=START, frozen=True)) as server:
        with PagerDutyClient(Target("sandbox", sandbox=server.describe()).pagerduty(), deadline=10) as client:
            yield server, client


def _event(summary: str, key: str, event_id: str | None = None, routing_key: str = ROUTING_KEY) -> dict:
    return {"routing_key": routing_key, "event_action": "trigger", "dedup_key": key,
            "payload": {"summary": summary, "severity": "warning", "source": "paymon",
                        "custom_details": {"eventID": event_id} if event_id else {}}}


def _watch(server, client, marker: str, event_id: str, deadline: float = 300):
    service = client.service(SERVICE_ID, integrations=True)
    sentry = golden_world()["sentry"]["integrations"]
    watcher = PagerDutyWatcher(client, service, sentry_integration_ids=sentry_integration_ids(service, sentry),
                               clock=server.clock.now, sleep=server.clock.advance)
    delivery = Delivery(marker, server.clock.now(), deadline)
    return watcher, watcher.wait_for(delivery, event_id=event_id, on_call_user_ids={ON_CALL})


def test_sentrys_integration_is_told_apart_by_its_routing_key(pagerduty):
    server, client = pagerduty
    service = client.service(SERVICE_ID, integrations=True)
    assert sentry_integration_ids(service, golden_world()["sentry"]["integrations"]) == {"PINTSEN"}


@pytest.mark.parametrize("pagerduty", [{"alert_grouping_parameters": {"type": "time", "config": {"timeout": 0}}}],
                         indirect=True)
def test_grouped_into_a_real_incident_it_is_found_by_its_alert(pagerduty):
    server, client = pagerduty
    backend = server.backend("pagerduty")
    backend.enqueue(_event("Critical: Webhook Processing Failure", "incident_1_42"))
    server.clock.advance(5)
    backend.enqueue(_event("PAYMON-TEST-X-PAGE synthetic on-call verification", "WEB-1A", event_id="e" * 32))
    watcher, watch = _watch(server, client, "PAYMON-TEST-X-PAGE", "e" * 32)
    assert watch.alert is not None and watch.grouped
    assert watch.incident["title"] == "Critical: Webhook Processing Failure"
    assert watch.alert["alert_key"] == "WEB-1A" and watch.delivery.on_time
    # Cleanup resolves paymon's alert only: the real page stays open.
    client.resolve_alert(watch.incident["id"], watch.alert["id"])
    assert backend.get_incident(watch.incident["id"]).status == "triggered"


def test_an_incident_titled_with_the_marker_but_not_from_sentry_does_not_count(pagerduty):
    server, client = pagerduty
    backend = server.backend("pagerduty")
    backend.enqueue(_event("PAYMON-TEST-Y-PAGE copied into a manual page", "MANUAL",
                           routing_key="feedfacefeedfacefeedfacefeedface"))
    watcher, watch = _watch(server, client, "PAYMON-TEST-Y-PAGE", "f" * 32, deadline=20)
    assert watch.alert is None and watch.cannot_arrive is None
    assert backend.incidents[0].title.startswith("PAYMON-TEST-Y-PAGE")  # it was there all along


def test_the_synthetic_incident_is_low_urgency_and_assigned(pagerduty):
    server, client = pagerduty
    server.backend("pagerduty").enqueue(_event("PAYMON-TEST-Z-PAGE synthetic", "WEB-2B", event_id="a" * 32))
    _watcher, watch = _watch(server, client, "PAYMON-TEST-Z-PAGE", "a" * 32)
    assert not watch.grouped and watch.incident["urgency"] == "low"
    assert watch.assigned({ON_CALL}) == {ON_CALL} and watch.notified_high() == []


@pytest.mark.parametrize("pagerduty", [{"status": "disabled"}], indirect=True)
def test_a_disabled_service_stops_the_watcher_at_once(pagerduty):
    server, client = pagerduty
    started = server.clock.now()
    watcher, watch = _watch(server, client, "PAYMON-TEST-D-PAGE", "b" * 32)
    assert watch.cannot_arrive.startswith("PagerDuty service 'TowerOfBabel Payments' is disabled")
    assert watcher.polls == 1 and server.clock.now() == started  # no deadline waited out


def test_nobody_on_call_stops_before_the_first_poll(pagerduty):
    server, client = pagerduty
    service = client.service(SERVICE_ID)
    watcher = PagerDutyWatcher(client, service, sentry_integration_ids={"PINTSEN"}, clock=server.clock.now,
                               sleep=server.clock.advance)
    watch = watcher.wait_for(Delivery("PAYMON-TEST-N-PAGE", server.clock.now(), 300), event_id="c" * 32,
                             on_call_user_ids=set())
    assert "nobody is on call at level 1 of 'Payments Escalation'" in watch.cannot_arrive and watcher.polls == 0


@pytest.mark.parametrize("pagerduty", [{"alert_grouping_parameters": {"type": "intelligent", "config": {}}}],
                         indirect=True)
def test_cleanup_resolves_paymons_alert_not_a_real_one_grouped_onto_its_incident(pagerduty):
    from paymon.delivery.cleanup import resolve_own_alerts

    server, client = pagerduty
    backend = server.backend("pagerduty")
    backend.enqueue(_event("PAYMON-TEST-G-PAGE synthetic", "WEB-3C", event_id="d" * 32))
    server.clock.advance(5)
    backend.enqueue(_event("Critical: Test Mode Detected in Production", "incident_1_77"))  # real, grouped on
    server.clock.advance(5)
    (incident,) = backend.incidents
    ours = next(a.id for a in backend.alerts_of(incident) if a.alert_key == "WEB-3C")
    assert resolve_own_alerts(client, incident.id, {ours}, "paymon cleanup") == "alerts"
    assert backend.get_incident(incident.id).status == "triggered"  # the real page is still open
    assert [a.status for a in backend.alerts_of(incident)] == ["resolved", "triggered"]
    # Alone on its incident, paymon's alert takes the incident with it.
    backend.enqueue(_event("PAYMON-TEST-H-PAGE synthetic", "WEB-4D"))
    server.clock.advance(600)
    backend.enqueue(_event("PAYMON-TEST-H-PAGE synthetic", "WEB-5E"))
    server.clock.advance(5)
    alone = next(i for i in backend.incidents if i.incident_key == "WEB-5E")
    assert resolve_own_alerts(client, alone.id, set(alone.alert_ids), "paymon cleanup") == "incident"


def test_a_plain_pytest_run_pages_nobody_with_its_synthetic_check(tmp_path):
    """The run's own sandbox (a plain `pytest`, drill off): the synthetic incident is low urgency,
    assigned to the on-call, resolved by paymon, and no notify_log_entry reached a person at high
    urgency. (The drill, when on, pages for real: that is its job.)"""
    import json

    log = tmp_path / "pagerduty.json"
    spec = spec_with_deadlines(tmp_path, slack="30s", pagerduty="60s")
    args = ["-p", "no:cacheprovider", "-o", "addopts=", "-q", "-p", "tests.pagerduty_log_probe", "--no-drill",
            f"--spec={spec}", "checks/test_delivery.py"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "PAYMON_"))}
    proc = forked_pytest.run(args, cwd=REPO, env={**env, "PAYMON_PD_LOG": str(log)}, timeout=240)
    assert proc.returncode == 0, proc.stdout
    incidents = json.loads(log.read_text())
    (synthetic,) = [i for i in incidents if "PAYMON-TEST-" in i["title"]]
    assert synthetic["urgency"] == "low" and synthetic["status"] == "resolved"
    assert [e["assignees"] for e in synthetic["entries"] if e["type"] == "assign_log_entry"] == [[ON_CALL]]
    paged = [(i["title"], e["user"]) for i in incidents if i["urgency"] == "high"
             for e in i["entries"] if e["type"] == "notify_log_entry"]
    assert paged == []
