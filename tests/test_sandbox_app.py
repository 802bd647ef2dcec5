"""The sandbox's reference payment app: endpoints, LS webhook signatures (the reference's worked
example), idempotent processing, and each knob."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import httpx
import pytest

from paymon.sandbox.app import (
    AppBackend,
    golden_app_world,
    lemonsqueezy_signature,
    verify_signature,
)
from paymon.sandbox.app.models import Latency
from paymon.sandbox.server import SandboxServer
from paymon.sandbox.world import golden_world

DATA = Path(__file__).parent / "data" / "lemonsqueezy"
SIGNATURES = json.loads((DATA / "signatures.json").read_text())
WORKED = SIGNATURES["worked_example"]
WORKED_BODY = (DATA / WORKED["file"]).read_bytes()
WEBHOOK = "/app/api/webhooks/lemonsqueezy"


def _world(**knobs) -> dict:
    world = golden_world()
    world["app"]["knobs"].update(knobs)
    return world


@pytest.fixture
def server():
    # The worked example's secret, so its published signature is the one the app must accept.
    with SandboxServer(_world(webhook_secret=WORKED["secret"])) as sandbox:
        yield sandbox


def _events(sandbox: SandboxServer, message: str) -> list:
    sandbox.backend("app").telemetry.flush()  # the app's SDK sends from a background worker
    return [e for e in sandbox.sentry.events.visible_events(float("inf")) if e.data.get("message") == message]


def _post(sandbox: SandboxServer, path: str, **kwargs) -> httpx.Response:
    return httpx.post(f"{sandbox.base_url}{path}", timeout=10, **kwargs)


def _signed(body: bytes, secret: str) -> dict:
    return {"X-Signature": lemonsqueezy_signature(body, secret), "Content-Type": "application/json"}


# --- signatures ------------------------------------------------------------------------------------

def test_worked_example_signature_matches_the_reference():
    assert len(WORKED_BODY) == WORKED["bytes"]
    assert lemonsqueezy_signature(WORKED_BODY, WORKED["secret"]) == WORKED["x_signature"]


def test_example_webhook_file_signature_matches_the_reference():
    body = (DATA / "webhook-subscription_updated.json").read_bytes()
    expected = SIGNATURES["signatures"]["webhook-subscription_updated.json"]["x_signature"]
    assert lemonsqueezy_signature(body, SIGNATURES["secret"]) == expected


@pytest.mark.parametrize("header, ok", [
    (WORKED["x_signature"], True),
    (WORKED["x_signature"].upper() + " ", True),                          # hex case and whitespace
    (lemonsqueezy_signature(WORKED_BODY, "not-the-secret"), False),       # valid hex, wrong secret
    (None, False), ("", False), ("abc", False),                           # missing, short
    ("zz" * 32, False), ("é" * 64, False),                                # non-hex, non-ASCII: no crash
])
def test_verify_signature_is_strict_and_never_raises(header, ok):
    assert verify_signature(WORKED_BODY, header, WORKED["secret"]) is ok
    assert verify_signature(WORKED_BODY + b"\n", WORKED["x_signature"], WORKED["secret"]) is False


# --- endpoints -------------------------------------------------------------------------------------

def test_golden_world_serves_the_app_and_describes_it():
    assert "app" in golden_world()
    with SandboxServer(golden_world()) as sandbox:
        info = sandbox.describe()["app"]
        assert info == {"base_url": f"{sandbox.base_url}/app",
                        "webhook_secret": golden_app_world()["knobs"]["webhook_secret"],
                        "cron_secret": golden_app_world()["knobs"]["cron_secret"],
                        "latency_mode": "wait"}  # a served sandbox's app takes its time, as the real one does


@pytest.mark.parametrize("path", ["/app/api/checkout/pro", "/app/api/checkout/payg"])
def test_checkout_returns_a_live_lemonsqueezy_url(server, path):
    response = _post(server, path, json={"user_id": "u1"})
    assert response.status_code == 200
    body = response.json()
    assert body["test_mode"] is False
    assert body["url"].startswith("https://towerofbabel.lemonsqueezy.com/checkout/custom/")
    checkout = server.backend("app").lemonsqueezy.checkouts[body["checkout_id"]]
    assert checkout["attributes"]["checkout_data"]["custom"]["user_id"] == "u1"


def test_payg_create_is_one_pending_row_per_user(server):
    first = _post(server, "/app/api/subscription/payg/create", json={"user_id": "u2"}).json()
    second = _post(server, "/app/api/subscription/payg/create", json={"user_id": "u2"}).json()
    assert first["subscription"] == second["subscription"] == {"id": "pending-u2", "status": "pending", "tier": "payg"}
    rows = [s for s in server.backend("app").subscriptions.values() if s["user_id"] == "u2"]
    assert len(rows) == 1
    assert first["url"] != second["url"]  # a new checkout each time


def test_only_post_routes_exist(server):
    assert httpx.get(f"{server.base_url}/app/api/checkout/pro").status_code == 405
    assert _post(server, "/app/api/nope").status_code == 404


# --- webhooks --------------------------------------------------------------------------------------

def test_worked_example_delivery_is_accepted_and_applied(server):
    response = _post(server, WEBHOOK, content=WORKED_BODY, headers={"X-Signature": WORKED["x_signature"]})
    assert response.status_code == 200
    assert response.json() == {"received": True, "duplicate": False}
    app = server.backend("app")
    assert app.processed["6f1d2c4e-9a7b-4c3d-8e2f-1a0b9c8d7e6f"]["subscription_id"] == "1287450"
    assert app.subscriptions["1287450"]["status"] == "active"


@pytest.mark.parametrize("headers", [
    {"X-Signature": lemonsqueezy_signature(WORKED_BODY, "not-the-secret")},
    {},
    {"X-Signature": "not-hex"},
    {"X-Signature": WORKED["x_signature"][:-2]},
])
def test_bad_or_missing_signature_is_401_logged_and_not_processed(server, headers):
    response = _post(server, WEBHOOK, content=WORKED_BODY, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid webhook signature"}
    app = server.backend("app")
    assert app.processed == {} and app.rejected == 1
    [event] = _events(server, "Invalid webhook signature")
    assert event.data["level"] == "warning"
    assert event.data["tags"]["webhook"] == "true"
    assert event.data["environment"] == "production"


def test_resigned_reserialised_body_is_rejected(server):
    """Re-serialising changes the bytes: the header signed the original body."""
    reserialised = json.dumps(json.loads(WORKED_BODY)).encode()
    response = _post(server, WEBHOOK, content=reserialised, headers={"X-Signature": WORKED["x_signature"]})
    assert response.status_code == 401


def test_redelivery_is_processed_once(server):
    headers = {"X-Signature": WORKED["x_signature"]}
    assert _post(server, WEBHOOK, content=WORKED_BODY, headers=headers).json()["duplicate"] is False
    assert _post(server, WEBHOOK, content=WORKED_BODY, headers=headers).json()["duplicate"] is True
    assert len(server.backend("app").processed) == 1


def test_without_webhook_id_dedupes_on_body_hash(server):
    payload = json.loads(WORKED_BODY)
    del payload["meta"]["webhook_id"]
    body = json.dumps(payload).encode()
    headers = _signed(body, WORKED["secret"])
    assert _post(server, WEBHOOK, content=body, headers=headers).json()["duplicate"] is False
    assert _post(server, WEBHOOK, content=body, headers=headers).json()["duplicate"] is True


def test_signed_garbage_is_400_not_500(server):
    body = b"not json"
    assert _post(server, WEBHOOK, content=body, headers=_signed(body, WORKED["secret"])).status_code == 400


def test_older_update_does_not_overwrite_newer_state():
    backend = AppBackend(golden_app_world())
    stale = {"meta": {"event_name": "subscription_updated", "webhook_id": "w-old"},
             "data": {"type": "subscriptions", "id": "1287450",
                      "attributes": {"status": "expired", "updated_at": "2020-01-01T00:00:00.000000Z"}}}
    backend.process_webhook(json.dumps(stale).encode(), stale)
    assert backend.subscriptions["1287450"]["status"] == "active"


# --- knobs -----------------------------------------------------------------------------------------

def test_test_mode_knob_makes_checkouts_test_mode_and_logs_fatal():
    with SandboxServer(_world(test_mode=True)) as sandbox:
        [startup] = _events(sandbox, "Test mode detected in production")  # the start-up guard
        assert startup.data["level"] == "fatal" and startup.data["tags"]["startup"] == "true"
        assert _post(sandbox, "/app/api/checkout/pro", json={}).json()["test_mode"] is True
        events = _events(sandbox, "Test mode detected in production")
        assert len(events) == 2 and all(e.data["level"] == "fatal" for e in events)


def test_skip_signature_verification_accepts_forgeries():
    with SandboxServer(_world(skip_signature_verification=True)) as sandbox:
        response = _post(sandbox, WEBHOOK, content=WORKED_BODY, headers={"X-Signature": "forged"})
        assert response.status_code == 200
        assert sandbox.backend("app").processed


def test_error_rate_one_fails_every_request():
    with SandboxServer(_world(error_rate=1.0)) as sandbox:
        assert _post(sandbox, "/app/api/checkout/pro", json={}).status_code == 500


def test_a_failing_webhook_answers_every_verified_delivery_500_and_logs_it():
    """`fail_endpoints`: the handler fails after verifying (a forged delivery is still 401), and the
    route's error reaches Sentry tagged webhook=true, which §1 Alert 2 counts."""
    with SandboxServer(_world(webhook_secret=WORKED["secret"],
                              fail_endpoints={"/api/webhooks/lemonsqueezy": 500})) as sandbox:
        signed = _post(sandbox, WEBHOOK, content=WORKED_BODY, headers={"X-Signature": WORKED["x_signature"]})
        assert signed.status_code == 500
        assert _post(sandbox, WEBHOOK, content=WORKED_BODY, headers={"X-Signature": "0" * 64}).status_code == 401
        assert sandbox.backend("app").processed == {}
        [error] = _events(sandbox, "Webhook processing failed: HTTP 500")
        assert error.data["level"] == "error" and error.data["tags"]["webhook"] == "true"
        assert _post(sandbox, "/app/api/checkout/pro", json={}).status_code == 200  # only that endpoint


def test_a_new_subscription_takes_its_user_from_meta_custom_data():
    """Our user id comes back in meta.custom_data (verified-2026-12 §16), not in the attributes."""
    backend = AppBackend(golden_app_world())
    new = {"meta": {"event_name": "subscription_created", "webhook_id": "w-new", "custom_data": {"user_id": "u-42"}},
           "data": {"type": "subscriptions", "id": "999", "attributes": {"status": "on_trial"}}}
    backend.process_webhook(json.dumps(new).encode(), new)
    assert backend.subscriptions["999"]["user_id"] == "u-42"
    assert backend.subscriptions["999"]["status"] == "on_trial"


def test_the_lemonsqueezy_account_holds_what_the_app_holds_with_its_own_attributes():
    """By default the account mirrors the app's rows (no discrepancy), keeping LS's attributes (the
    checkout's e-mail) and dropping the app's own columns (its user id, tier)."""
    backend = AppBackend(golden_app_world())
    row = backend.lemonsqueezy.subscriptions["1287450"]
    assert row["status"] == backend.subscriptions["1287450"]["status"]
    assert row["user_email"] == "paymon-synthetic@towerofbabel.com"
    assert "user_id" not in row and "tier" not in row
    assert backend.reconcile()["discrepancies"] == []


def test_fixed_latency_per_endpoint_is_slept():
    knobs = {"latency_ms": {"/api/checkout/pro": 60, "default": 0}}
    backend = AppBackend({**golden_app_world(), "knobs": knobs})
    assert backend.draw_work("/api/checkout/pro") == (0.060, False)
    assert backend.draw_work("/api/checkout/payg") == (0.0, False)
    with SandboxServer(_world(**knobs)) as sandbox:
        start = time.perf_counter()
        assert _post(sandbox, "/app/api/checkout/pro", json={}).status_code == 200
        assert time.perf_counter() - start >= 0.060


def test_latency_distribution_hits_its_percentiles_and_is_seeded():
    latency = Latency.from_spec({"p50": 10, "p95": 20})
    rng = random.Random(1)
    values = sorted(latency.draw(rng) for _ in range(4000))
    assert 9.0 < values[2000] < 11.0
    assert 18.0 < values[3800] < 22.0
    first, second = random.Random(7), random.Random(7)
    assert [latency.draw(first) for _ in range(5)] == [latency.draw(second) for _ in range(5)]
    assert Latency.from_spec(25).draw(rng) == 25.0
    with pytest.raises(ValueError):
        Latency.from_spec({"p50": 20, "p95": 10})
