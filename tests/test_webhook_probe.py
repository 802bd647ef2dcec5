"""The webhook probe changes nothing (issue 12 item 6): it replays the synthetic subscription as the
sandbox's Lemon Squeezy API holds it, only if it is the synthetic user's, and stops after a few
failed deliveries, below the "Webhook Processing Failure" alert's threshold. Also the Lemon Squeezy
API emulator it reads (auth, modes, rate limit, the documented subscription object)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import httpx
import pytest
import yaml

from paymon.config.settings import LemonSqueezySettings
from paymon.config.spec import load_spec
from paymon.errors import AuthError, ConfigError, SettingsError, TargetUnavailable
from paymon.probes.latency import Outcome
from paymon.probes.webhook import (
    FailureBudget,
    NotTheSyntheticSubscription,
    check_synthetic,
    read_subscription,
    replay_body,
    synthetic_subscription,
)
from paymon.sandbox.faults import apply_fault
from paymon.sandbox.hub import SandboxClock
from paymon.sandbox.server import SandboxServer
from paymon.sandbox.world import golden_world
from tests.conftest import REPO

SPEC = load_spec(REPO / "monitoring.yaml")
SYNTHETIC = SPEC.webhook_probe.synthetic_user
PRO = "1287450"          # the synthetic user's subscription in the golden app world
OTHER = "1287466"        # the PAYG synthetic user's: another user, as far as this probe is concerned
WEBHOOK = "/api/webhooks/lemonsqueezy"
EXAMPLE = json.loads((Path(__file__).parent / "data" / "lemonsqueezy" / "api-subscription-get-response.json")
                     .read_text())


def _settings(server: SandboxServer, key: str | None = None) -> LemonSqueezySettings:
    info = server.describe()["lemonsqueezy"]
    return LemonSqueezySettings(key or info["api_key"], info["base_url"])


def _modelled(world: dict) -> dict:
    """The app reports its latency instead of sleeping it (as in a plain `pytest` run): no wall
    time; and no past to replay into Sentry at start (these tests do not read it)."""
    world = copy.deepcopy(world)
    world["app"]["knobs"]["latency_mode"] = "report"
    world["app"]["history"] = {}
    return world


def _with_status(world: dict, subscription_id: str, status: str) -> dict:
    """The app's DB and Lemon Squeezy both hold `status` for the subscription: no discrepancy."""
    world = _modelled(world)
    for row in world["app"]["subscriptions"]:
        if row["id"] == subscription_id:
            row["status"] = status
    return world


# --- the Lemon Squeezy API emulator ---------------------------------------------------------------

def test_the_subscription_object_has_the_documented_shape():
    """Every attribute, relationship and link of the reference's GET /v1/subscriptions/{id} example."""
    with SandboxServer(_modelled(golden_world())) as server:
        response = httpx.get(f"{_settings(server).base_url}/v1/subscriptions/{PRO}",
                             headers={"Authorization": f"Bearer {_settings(server).api_key.get_secret_value()}"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/vnd.api+json"
    assert response.headers["x-ratelimit-limit"] == "300" and response.headers["x-ratelimit-remaining"] == "299"
    body = response.json()
    assert set(body) == set(EXAMPLE)  # jsonapi, links, data: no top-level meta on a single object
    data = body["data"]
    assert set(data) == set(EXAMPLE["data"])
    assert set(data["attributes"]) == set(EXAMPLE["data"]["attributes"])
    assert set(data["relationships"]) == set(EXAMPLE["data"]["relationships"])
    assert set(data["attributes"]["first_subscription_item"]) == set(
        EXAMPLE["data"]["attributes"]["first_subscription_item"])
    assert data["type"] == "subscriptions" and data["id"] == PRO
    attributes = data["attributes"]
    assert attributes["user_email"] == SYNTHETIC.email and attributes["store_id"] == SYNTHETIC.store_id
    assert (attributes["status"], attributes["status_formatted"], attributes["test_mode"]) == ("active", "Active", False)
    assert data["links"]["self"].endswith(f"/lemonsqueezy/v1/subscriptions/{PRO}")


@pytest.mark.parametrize("authorization", [None, "Bearer not-a-key", "not-a-key"])
def test_a_missing_or_unknown_key_is_401_in_json_api(authorization):
    with SandboxServer(_modelled(golden_world())) as server:
        headers = {"Authorization": authorization} if authorization else {}
        response = httpx.get(f"{_settings(server).base_url}/v1/subscriptions/{PRO}", headers=headers)
    assert response.status_code == 401
    assert response.json()["errors"][0]["status"] == "401"


def test_a_test_mode_key_sees_only_test_mode_objects():
    world = golden_world()
    world["app"]["lemonsqueezy"] = {"api_keys": [{"key": "live-key", "test_mode": False},
                                                 {"key": "test-key", "test_mode": True}]}
    with SandboxServer(_modelled(world)) as server:
        assert read_subscription(_settings(server, "live-key"), PRO)["id"] == PRO
        with pytest.raises(TargetUnavailable, match="live-mode key"):
            read_subscription(_settings(server, "test-key"), PRO)
        me = httpx.get(f"{_settings(server).base_url}/v1/users/me", headers={"Authorization": "Bearer test-key"})
        assert me.json()["meta"]["test_mode"] is True


def test_the_api_allows_300_calls_a_minute_per_key_on_the_sandbox_clock():
    world = golden_world()
    world["app"]["lemonsqueezy"] = {"knobs": {"rate_limit_per_minute": 3}}
    with SandboxServer(_modelled(world), clock=SandboxClock(start=1_800_000_000, frozen=True)) as server:
        settings = _settings(server)
        url = f"{settings.base_url}/v1/subscriptions/{PRO}"
        headers = {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"}
        statuses = [httpx.get(url, headers=headers).status_code for _ in range(4)]
        assert statuses == [200, 200, 200, 429]
        server.clock.advance(61)
        assert httpx.get(url, headers=headers).status_code == 200
        # paymon's read retries a 429 (no Retry-After is documented) and gives up with one line
        for _ in range(3):
            httpx.get(url, headers=headers)
        waits = []
        with pytest.raises(TargetUnavailable, match="answered 429"):
            read_subscription(settings, PRO, deadline_s=3, sleep=waits.append)
        assert waits == [1.0, 2.0]


# --- reading and checking the synthetic subscription ----------------------------------------------

def test_the_synthetic_subscription_is_read_back_as_lemon_squeezy_holds_it():
    with SandboxServer(_with_status(golden_world(), PRO, "past_due")) as server:
        subscription = synthetic_subscription(_settings(server), PRO, SYNTHETIC)
    assert subscription.status == "past_due"
    body = json.loads(subscription.body("w-1"))
    assert body["meta"] == {"event_name": "subscription_updated", "test_mode": False, "webhook_id": "w-1",
                            "custom_data": {"user_id": SYNTHETIC.user_id}}
    assert body["data"] == subscription.resource  # the webhook's data is the API's resource object (§16)
    assert json.loads(subscription.body())["meta"]["webhook_id"] != "w-1"  # a fresh id per delivery


def test_another_users_subscription_is_refused_without_naming_their_address():
    with SandboxServer(_modelled(golden_world())) as server:
        with pytest.raises(NotTheSyntheticSubscription) as refused:
            synthetic_subscription(_settings(server), OTHER, SYNTHETIC)
    message = str(refused.value)
    assert message.startswith(f"PAYMON_SYNTHETIC_SUBSCRIPTION_ID={OTHER} is not the synthetic user's subscription")
    assert "another customer's" in message and SYNTHETIC.email in message
    assert "paymon-synthetic-payg@" not in message  # the other customer's e-mail is personal data
    assert "\n" not in message


@pytest.mark.parametrize("change, words", [
    ({"store_id": 1}, "store_id expected 48213 (monitoring.yaml webhook_probe.synthetic_user.store_id), actual 1"),
    ({"test_mode": True}, "it is a test-mode object"),
    ({"user_email": ""}, "its user_email is empty"),
    ({"user_email": SYNTHETIC.email.upper()}, None),  # e-mail addresses compare case-insensitively
])
def test_the_ownership_check_names_what_differs(change, words):
    resource = copy.deepcopy(EXAMPLE["data"])
    resource["id"] = PRO
    resource["attributes"].update({"user_email": SYNTHETIC.email, "store_id": SYNTHETIC.store_id, **change})
    if words is None:
        check_synthetic(resource, PRO, SYNTHETIC)
        return
    with pytest.raises(NotTheSyntheticSubscription, match=words.replace("(", r"\(").replace(")", r"\)")):
        check_synthetic(resource, PRO, SYNTHETIC)


def test_another_id_in_the_answer_is_refused():
    resource = copy.deepcopy(EXAMPLE["data"])  # id 1287466
    with pytest.raises(NotTheSyntheticSubscription, match="answered 'subscriptions' '1287466'"):
        check_synthetic(resource, PRO, SYNTHETIC)


def test_a_refused_key_is_one_line_naming_the_variable_and_never_the_key():
    with SandboxServer(_modelled(golden_world())) as server:
        with pytest.raises(AuthError) as refused:
            read_subscription(_settings(server, "eyJ0eXAiOiJKV1QiLCJhbGciOi.secretpart0123456789"), PRO)
    assert "LEMONSQUEEZY_API_KEY" in str(refused.value) and "secretpart" not in str(refused.value)


def test_without_the_key_the_probe_cannot_check_and_says_which_variable():
    with pytest.raises(SettingsError, match="LEMONSQUEEZY_API_KEY is not set"):
        LemonSqueezySettings.from_env({})
    settings = LemonSqueezySettings.from_env({"LEMONSQUEEZY_API_KEY": "k" * 20,
                                              "LEMONSQUEEZY_BASE_URL": "http://127.0.0.1:9/lemonsqueezy/v1/"})
    assert settings.base_url == "http://127.0.0.1:9/lemonsqueezy"
    assert "k" * 20 not in repr(settings)
    with pytest.raises(SettingsError, match="LEMONSQUEEZY_BASE_URL"):
        LemonSqueezySettings("k", "ftp://example.com")


# --- the probe changes nothing ---------------------------------------------------------------------

def _webhook_runs(server: SandboxServer, subscription_id: str = PRO):
    """What a run sends to the webhook endpoint, in process: the p95 probe and the signature check's
    deliveries (its mis-signed ones and its signed one), as checks/test_payment_endpoints.py does."""
    from checks.test_payment_endpoints import _probe, malformed_deliveries
    from fixtures.app import AppSettings, WebhookReplay
    from paymon.probes.webhook import sign, webhook_headers

    info = server.describe()
    app = AppSettings(info["app"]["base_url"], False, 72, 25.0, info["app"]["webhook_secret"], subscription_id,
                      modelled_latency=True, max_in_flight=4)
    replay = WebhookReplay(app, SPEC, info)
    budget = next(b for b in SPEC.performance.budgets if b.transaction == WEBHOOK)
    outcome = _probe(budget, app, replay, SPEC)
    body = replay.subscription().body()
    with httpx.Client(timeout=10) as client:
        for _, sent, signature in malformed_deliveries(body, app.webhook_secret, False, app.run_id):
            client.post(app.url(WEBHOOK), content=sent, headers=webhook_headers(sent, signature))
        client.post(app.url(WEBHOOK), content=body, headers=webhook_headers(body, sign(body, app.webhook_secret)))
    return outcome


@pytest.mark.parametrize("status", ["past_due", "cancelled", "active"])
def test_a_run_leaves_the_synthetic_subscription_as_it_was_stored(status):
    with SandboxServer(_with_status(golden_world(), PRO, status)) as server:
        app = server.backend("app")
        before = copy.deepcopy(app.subscriptions)
        report = _webhook_runs(server)
        assert report.samples == 72 and report.errors == 0
        assert len([p for p in app.processed.values() if p["subscription_id"] == PRO]) == 74  # really processed
        assert app.subscriptions == before


def test_the_app_is_not_kind_an_active_delivery_does_overwrite_a_past_due_subscription():
    """The control: the probe's old body (`status: active`) changes the stored state, so the test
    above would catch a probe that went back to it."""
    from paymon.probes.webhook import sign, webhook_headers

    with SandboxServer(_with_status(golden_world(), PRO, "past_due")) as server:
        old = json.dumps({"meta": {"event_name": "subscription_updated", "test_mode": False, "webhook_id": "old-1",
                                   "custom_data": {"user_id": "paymon-synthetic"}},
                          "data": {"type": "subscriptions", "id": PRO, "attributes": {"status": "active"}}},
                         separators=(",", ":")).encode()
        secret = server.describe()["app"]["webhook_secret"]
        response = httpx.post(f"{server.base_url}/app{WEBHOOK}", content=old, headers=webhook_headers(old, sign(old, secret)))
        assert response.status_code == 200
        assert server.backend("app").subscriptions[PRO]["status"] == "active"


def test_the_probe_refuses_another_users_subscription_and_sends_nothing():
    with SandboxServer(_modelled(golden_world())) as server:
        with pytest.raises(NotTheSyntheticSubscription):
            _webhook_runs(server, OTHER)
        assert server.backend("app").requests.get(WEBHOOK, 0) == 0
        assert server.backend("app").processed == {}


def test_a_failing_endpoint_stops_the_probe_below_the_alerts_threshold():
    """One fault, the webhook endpoint answering 500: the probe stops after stop_after_failures
    deliveries, each of which the app logs as an error "Webhook Processing Failure" counts."""
    from checks.test_payment_endpoints import _probe
    from fixtures.app import AppSettings, WebhookReplay
    from paymon.probes.webhook import WebhookProbeStopped

    limit, alert = SPEC.webhook_probe.stop_after_failures, SPEC.alert(SPEC.webhook_probe.alert)
    with SandboxServer(_modelled(apply_fault(golden_world(), "webhook-500"))) as server:
        info = server.describe()
        app = AppSettings(info["app"]["base_url"], False, 72, 25.0, info["app"]["webhook_secret"], PRO,
                          modelled_latency=True, max_in_flight=4)
        budget = next(b for b in SPEC.performance.budgets if b.transaction == WEBHOOK)
        with pytest.raises(WebhookProbeStopped) as stopped:
            _probe(budget, app, WebhookReplay(app, SPEC, info), SPEC)
        sent = server.backend("app").requests[WEBHOOK]
        server.backend("app").telemetry.flush()
        errors = [e for e in server.sentry.events.visible_events(float("inf"))
                  if e.data.get("message") == "Webhook processing failed: HTTP 500"]
    assert stopped.value.sent == sent == stopped.value.failures == limit
    assert stopped.value.statuses == {500: limit}
    assert len(errors) == limit and errors[0].data["tags"]["webhook"] == "true"
    assert sent + 1 <= alert.threshold  # with the signature check's signed delivery: still not over
    assert f"{WEBHOOK} answered HTTP 500 x{limit}" in str(stopped.value)


# --- the failure budget ---------------------------------------------------------------------------

def test_the_budget_counts_answers_not_timeouts_and_holds_with_requests_in_flight():
    budget = FailureBudget(2)
    assert budget.before_send() and budget.before_send()      # two in flight, nothing failed yet
    budget.after(Outcome(ok=False, status=500))                # one failed, one still in flight ...
    assert not budget.before_send()                            # ... which could be the second failure
    budget.after(Outcome(ok=True, status=200))
    assert budget.before_send()
    budget.after(Outcome(ok=False, timed_out=True, error="timeout"))  # a latency sample, not an answer
    assert budget.before_send()
    budget.after(Outcome(ok=False, status=502))
    assert budget.spent and not budget.before_send()
    assert (budget.sent, budget.failures, dict(budget.statuses)) == (4, 2, {500: 1, 502: 1})


# --- monitoring.yaml -------------------------------------------------------------------------------

def _spec_with(tmp_path, **changes) -> Path:
    data = yaml.safe_load((REPO / "monitoring.yaml").read_text())
    for key, value in changes.items():
        data["webhook_probe"][key] = value
    path = tmp_path / "monitoring.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_the_stop_is_validated_against_the_alerts_threshold(tmp_path):
    with pytest.raises(ConfigError, match=r"webhook_probe.stop_after_failures: 3 is too many: .* more than half "
                                          r"of the 6 events that fire 'Webhook Processing Failure'.*at most 2"):
        load_spec(_spec_with(tmp_path, stop_after_failures=3))
    with pytest.raises(ConfigError, match="webhook_probe.alert: 'Nope' is not one of the alerts"):
        load_spec(_spec_with(tmp_path, alert="Nope"))
    with pytest.raises(ConfigError, match="synthetic_user.email"):
        load_spec(_spec_with(tmp_path, synthetic_user={"email": "nobody", "store_id": 1}))
    assert load_spec(_spec_with(tmp_path, stop_after_failures=1)).webhook_probe.stop_after_failures == 1
