"""paymon.reviews.real_alerts: the weekly review's "alerts that fired for real" from PagerDuty."""

from __future__ import annotations

import time

import httpx

from paymon.delivery.endtoend import iso
from paymon.clients.pagerduty import PagerDutyClient
from paymon.reviews.real_alerts import real_incidents
from paymon.sandbox.server import SandboxServer
from paymon.sandbox.world import golden_world
from paymon.config.target import Target
from paymon.config.spec import load_spec
from tests.conftest import REPO


def _page(server, routing_key: str, summary: str) -> None:
    response = httpx.post(f"{server.base_url}/pagerduty/v2/enqueue", json={
        "routing_key": routing_key, "event_action": "trigger", "dedup_key": summary,
        "payload": {"summary": summary, "source": "sentry", "severity": "critical"}})
    assert response.status_code == 202, response.text


def test_paymons_own_pages_are_not_counted_as_real():
    spec = load_spec(REPO / "monitoring.yaml")
    with SandboxServer(golden_world("workflow")) as server:
        target = Target("sandbox", sandbox=server.describe(), org=spec.organization, project=spec.project)
        settings = target.pagerduty()
        with PagerDutyClient(settings) as client:
            service = client.find_service(spec.delivery.pagerduty.service)
            key = _routing_key(server, service["id"])
            _page(server, key, "PaymentError: card declined for 40% of checkouts")
            _page(server, key, "PAYMON-TEST-ABC-PAGE paymon synthetic check")
            _page(server, key, "Critical: Payment Failure Rate Spike")  # a drill's metric page, resolved by paymon
            server.clock.advance(10)  # past the world's PagerDuty delivery delay
            incidents = client.incidents(since=iso(time.time() - 3600), service_id=service["id"])
            drill_page = next(i for i in incidents if i["title"] == "Critical: Payment Failure Rate Spike")
            client.resolve(drill_page["id"], "paymon: alert drill incident, auto-resolved")
            paymon_user = client.user_id_by_email(settings.from_email)
            assert paymon_user is not None
            real = real_incidents(client, service["id"], paymon_user_id=paymon_user)
    assert [r["alert"] for r in real] == ["PaymentError: card declined for 40% of checkouts"]
    assert real[0]["source"] == "PagerDuty" and real[0]["kind"] == "real_alert" and real[0]["at"] > 0


def _routing_key(server, service_id: str) -> str:
    return next(i["integration_key"] for i in server.backends["pagerduty"].integrations
                if i["service"]["id"] == service_id)
