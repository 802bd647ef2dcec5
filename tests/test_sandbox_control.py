"""The sandbox's control API (/_sandbox/): what an xdist worker uses to drive the controller's sandbox."""

from __future__ import annotations

import httpx
import pytest

from paymon.sandbox.control import SandboxControl
from paymon.sandbox.server import SandboxServer
from paymon.sandbox.world import golden_world


@pytest.fixture(scope="module")
def server():
    with SandboxServer(golden_world("workflow")) as running:
        yield running


def test_the_clock_moves_for_every_process(server):
    control = SandboxControl(server.base_url, server.sentry_token)
    before = server.clock.now()
    moved = control.advance(600)
    assert moved >= before + 600
    assert server.clock.now() >= moved  # the in-process clock is the same clock
    assert abs(control.now() - server.clock.now()) < 5


def test_firings_outbox_and_recipients_match_the_backend(server):
    control = SandboxControl(server.base_url, server.sentry_token)
    payload = {"level": "fatal", "environment": "production", "message": "Test mode detected in production",
               "tags": {"test": "true"}}
    server.sentry.store_event(payload)
    firings = control.alert_firings()
    assert [f.alert for f in firings] == [f.alert for f in server.sentry.alert_firings]
    assert any(f.alert == "Test Mode Detected in Production" for f in firings)
    fired = next(f for f in firings if f.alert == "Test Mode Detected in Production")
    assert {d.kind for d in fired.deliveries} >= {"slack", "pagerduty"}
    assert control.outbox() == server.sentry.outbox
    assert control.email_recipients("team:on-call") == server.sentry.email_recipients("team:on-call")


def test_it_needs_the_sandbox_token(server):
    response = httpx.post(f"{server.base_url}/_sandbox/clock/advance", json={"seconds": 60})
    assert response.status_code == 401
    bad = httpx.post(f"{server.base_url}/_sandbox/clock/advance", json={"seconds": "soon"},
                     headers={"Authorization": f"Bearer {server.sentry_token}"})
    assert bad.status_code == 400
