"""The sandbox's alert engine fires like Sentry: per-issue vs aggregate counting, strict `>`,
windows on the sandbox clock, action intervals, environments, event types, both generations.

Most tests drive the backend in-process (`backend.store_event`, a frozen clock moved with
`advance`); one drives it with the real sentry-sdk over HTTP. Slack and PagerDuty are tiny fakes
with the emulators' entry points (`post_message`, `enqueue`).
"""

from __future__ import annotations

import json
import time

import pytest
import sentry_sdk

from paymon.sandbox.faults import apply_fault
from paymon.sandbox.hub import Hub, SandboxClock
from paymon.sandbox.sentry import SentryBackend
from paymon.sandbox.server import SandboxServer
from paymon.sandbox.world import golden_world

PAYMENT_SPIKE = "Payment Failure Rate Spike"
WEBHOOK_FAILURE = "Webhook Processing Failure"
TEST_MODE = "Test Mode Detected in Production"
PAGERDUTY_KEY = "3f9c1e7a2b6d4c08a5e1f7b9d2c4a6e8"
START = 1_790_000_000.0


class FakeSlack:
    def __init__(self):
        self.messages = []

    def post_message(self, channel_id, payload, as_user=None, visible_at=None):
        self.messages.append({"channel": channel_id, "payload": payload, "as_user": as_user,
                              "visible_at": visible_at})
        return {"ok": True}


class FakePagerDuty:
    def __init__(self):
        self.events = []

    def enqueue(self, event, visible_at=None):
        self.events.append({"event": event, "visible_at": visible_at})
        return {"status": "success", "dedup_key": event.get("dedup_key")}


def _world(generation: str, fault: str | None = None, **knobs) -> dict:
    world = golden_world(generation)
    if fault:
        world = apply_fault(world, fault)
    sentry = world["sentry"]
    # Team membership, as `O/members/` lists it (`teams`): the golden world leaves it out.
    memberships = {"dana@towerofbabel.com": ["on-call"], "ops@towerofbabel.com": ["on-call"],
                   "exec@towerofbabel.com": ["security"]}
    for member in sentry["members"]:
        member["teams"] = memberships.get(member["email"], [])
    sentry["knobs"].update(knobs)
    return world


def _backend(generation: str = "workflow", fault: str | None = None, slack=True, pagerduty=True, **knobs):
    """Most tests here are about window semantics (strict >, which events count): they judge on
    every event (`evaluation_cadence: 0`), so the subscription cadence does not blur a boundary.
    The cadence itself is tested below with the real default (`cadence="real"`)."""
    knobs.setdefault("evaluation_cadence", 0)
    hub = Hub(clock=SandboxClock(start=START, frozen=True))
    if slack:
        hub.backends["slack"] = FakeSlack()
    if pagerduty:
        hub.backends["pagerduty"] = FakePagerDuty()
    backend = SentryBackend(_world(generation, fault, **knobs)["sentry"], hub=hub)
    hub.backends["sentry"] = backend
    return backend, hub


def _error(message: str, *, level: str = "error", environment: str = "production", tags: dict | None = None,
           exception: str | None = None, fingerprint: list | None = None) -> dict:
    event = {"level": level, "environment": environment, "platform": "python", "tags": tags or {},
             "timestamp": time.time()}
    if exception:
        event["exception"] = {"values": [{"type": exception, "value": message,
                                          "stacktrace": {"frames": [{"module": "app.payments", "function": "charge",
                                                                     "filename": "app/payments.py", "in_app": True}]}}]}
    else:
        event["message"] = message
    if fingerprint:
        event["fingerprint"] = fingerprint
    return event


def _ours(backend, name: str) -> list:
    """The compiled alert of towerofbabel-web (the org also holds staging's copy of alert 1)."""
    ours = str(backend.projects[0]["id"])
    backend.engine.refresh()
    return [c for c in backend.engine._compiled if c.alert.name == name and c.project_ids == {ours}]


def _fired(backend, name: str) -> list:
    return [f for f in backend.alert_firings if f.alert == name and f.level != "resolved"]


GENERATIONS = ["legacy", "workflow"]


# --- alert 1: aggregate count, strict >, 5 minute window -------------------------------------------

@pytest.mark.parametrize("generation", GENERATIONS)
def test_eleven_checkout_errors_in_five_minutes_fire_alert_1_ten_do_not(generation):
    backend, hub = _backend(generation)
    for i in range(10):
        backend.store_event(_error(f"Checkout session {i} could not be created", exception="CheckoutError"))
        hub.clock.advance(25)  # 10 events within 250 s
    assert _fired(backend, PAYMENT_SPIKE) == []
    backend.store_event(_error("Checkout session 10 could not be created", exception="CheckoutError"))
    [firing] = _fired(backend, PAYMENT_SPIKE)
    assert firing.level == "critical" and firing.value == 11.0 and len(firing.event_ids) == 11
    assert firing.generation == generation and firing.issue_id is None
    # An open incident does not notify again.
    backend.store_event(_error("Checkout session 11 could not be created", exception="CheckoutError"))
    assert len(_fired(backend, PAYMENT_SPIKE)) == 1

    slack = hub.backends["slack"].messages
    [message] = [m for m in slack if "Payment Failure Rate Spike" in m["payload"]["text"]]
    assert message["channel"] == "C07PAYM3NT5" and message["as_user"] == "sentry"
    assert "*Critical: Payment Failure Rate Spike*" in message["payload"]["text"]
    attachment = json.loads(message["payload"]["attachments"])[0]
    assert attachment["color"] == "#FA4747"
    assert attachment["blocks"][0]["text"]["text"].startswith("11 events in the last 5 minutes")
    emails = [m for m in backend.outbox if m["alert"] == PAYMENT_SPIKE]
    assert {tuple(m["to"]) for m in emails} == {("dana@towerofbabel.com", "ops@towerofbabel.com"),
                                                ("ops@towerofbabel.com",)}
    assert all(m["subject"] == "Critical: Payment Failure Rate Spike (TowerOfBabel)" for m in emails)
    assert hub.backends["pagerduty"].events == []  # alert 1 does not page


def test_capture_message_events_count_and_tags_match():
    backend, hub = _backend("workflow")
    for i in range(11):
        # capture_message: type default, no exception; matched by the payment_flow tag.
        backend.store_event(_error(f"order {i} declined", tags={"payment_flow": "checkout"}))
    assert backend.events.by_id[next(iter(backend.events.by_id))].type == "default"
    assert len(_fired(backend, PAYMENT_SPIKE)) == 1


def test_staging_events_do_not_count():
    backend, _hub = _backend("workflow")
    for i in range(20):
        backend.store_event(_error(f"Checkout failed {i}", environment="staging"))
    assert _fired(backend, PAYMENT_SPIKE) == []


def test_events_outside_the_window_do_not_count_and_the_incident_resolves():
    backend, hub = _backend("legacy")
    for i in range(8):
        backend.store_event(_error(f"payment declined {i}"))
    hub.clock.advance(301)  # the first 8 leave the 5-minute window
    for i in range(8):
        backend.store_event(_error(f"payment declined again {i}"))
    assert _fired(backend, PAYMENT_SPIKE) == []
    for i in range(3):
        backend.store_event(_error(f"payment declined late {i}"))
    assert len(_fired(backend, PAYMENT_SPIKE)) == 1
    hub.clock.advance(300)  # nothing new: the window empties, the incident resolves on the next read
    resolved = [f for f in backend.alert_firings if f.alert == PAYMENT_SPIKE and f.level == "resolved"]
    assert len(resolved) == 1 and resolved[0].value == 0.0
    texts = [m["payload"]["text"] for m in hub.backends["slack"].messages]
    assert any("*Resolved: Payment Failure Rate Spike*" in t for t in texts)


# --- per-issue semantics ---------------------------------------------------------------------------

@pytest.mark.parametrize("generation", GENERATIONS)
def test_per_issue_rule_counts_one_issue_only(generation):
    backend, _hub = _backend(generation, fault="per-issue")
    [alert] = [c.alert for c in _ours(backend, PAYMENT_SPIKE)]
    assert alert.counting == "per_issue"
    kinds = ["CheckoutTimeout", "CheckoutDeclined", "CheckoutInvalid"]
    for i in range(12):  # 12 checkout errors, spread across 3 issues: 4 each
        backend.store_event(_error(f"checkout failed {i}", exception=kinds[i % 3]))
    assert len(backend.events.issues) == 3
    assert _fired(backend, PAYMENT_SPIKE) == []
    for i in range(8):  # the first issue reaches 12 > 10 events
        backend.store_event(_error(f"checkout failed again {i}", exception=kinds[0]))
    [firing] = _fired(backend, PAYMENT_SPIKE)
    issue = backend.events.issues[firing.issue_id]
    assert issue.metadata["type"] == "CheckoutTimeout" and len(firing.event_ids) == 1


def test_fingerprint_groups_events_into_one_issue():
    backend, _hub = _backend("workflow")
    for i in range(3):
        backend.store_event(_error(f"unrelated text {i}", exception=f"Kind{i}", fingerprint=["paymon-run-1"]))
    assert len(backend.events.issues) == 1
    assert next(iter(backend.events.issues.values())).short_id == "TOWEROFBABEL-WEB-1A"


# --- alert 2: 10 minute window, and PagerDuty for a metric alert ----------------------------------

@pytest.mark.parametrize("generation", GENERATIONS)
def test_six_webhook_errors_across_ten_minutes_fire_alert_2(generation):
    backend, hub = _backend(generation)
    for i in range(6):
        backend.store_event(_error(f"Webhook delivery {i} failed", tags={"webhook": "true"}))
        if i < 5:
            hub.clock.advance(119.9)  # six events within 599.5 s
    [firing] = _fired(backend, WEBHOOK_FAILURE)
    [page] = hub.backends["pagerduty"].events
    event = page["event"]
    assert event["routing_key"] == PAGERDUTY_KEY and event["event_action"] == "trigger"
    assert event["dedup_key"].startswith("incident_4507005475160064_")
    assert event["payload"]["summary"] == WEBHOOK_FAILURE and event["payload"]["severity"] == "critical"
    assert event["payload"]["custom_details"] == {"details": "6 events in the last 10 minutes"}
    assert event["links"][0]["text"] == "Critical: Webhook Processing Failure"
    hub.clock.advance(600)
    assert [f.level for f in backend.alert_firings if f.alert == WEBHOOK_FAILURE] == ["critical", "resolved"]
    resolve = hub.backends["pagerduty"].events[-1]["event"]
    assert resolve["event_action"] == "resolve" and resolve["dedup_key"] == event["dedup_key"]


@pytest.mark.parametrize("generation", GENERATIONS)
def test_six_webhook_errors_spread_over_eleven_minutes_do_not_fire(generation):
    backend, hub = _backend(generation)
    for i in range(6):
        backend.store_event(_error(f"Webhook delivery {i} failed", tags={"webhook": "true"}))
        if i < 5:
            hub.clock.advance(132)  # 660 s from first to last
    assert _fired(backend, WEBHOOK_FAILURE) == []


# --- alert 6: per-issue rule, every fatal event, action interval ----------------------------------

@pytest.mark.parametrize("generation", GENERATIONS)
def test_fatal_test_mode_event_fires_alert_6_once_with_every_action(generation):
    backend, hub = _backend(generation)
    stored = backend.store_event(_error("Test mode detected in production: sk_test key in live checkout",
                                        level="fatal", tags={"test": "true", "paymon_run": "7f3c2a9e"}))
    [firing] = _fired(backend, TEST_MODE)
    issue = backend.events.issues[stored.group_id]
    assert firing.issue_id == issue.id and firing.short_id == issue.short_id
    assert firing.event_ids == (stored.event_id,)
    assert {(d.kind, d.target, d.status) for d in firing.deliveries} == {
        ("pagerduty", "TowerOfBabel Payments", "sent"), ("email", "team:on-call", "sent"),
        ("slack", "#payments-alerts", "sent"), ("slack", "#exec-alerts", "sent"),
        ("email", "member:exec@towerofbabel.com", "sent")}

    [page] = hub.backends["pagerduty"].events
    event = page["event"]
    assert event["routing_key"] == PAGERDUTY_KEY and event["event_action"] == "trigger"
    assert event["dedup_key"] == issue.short_id and event["client"] == "sentry"
    assert event["payload"]["severity"] == "critical"
    assert event["payload"]["summary"].startswith("Test mode detected in production")
    details = event["payload"]["custom_details"]
    assert details["eventID"] == stored.event_id and details["groupID"] == issue.id
    assert {"key": "paymon_run", "value": "7f3c2a9e"} in details["tags"]
    assert event["links"][0]["text"] == "View Sentry Issue Details"

    messages = hub.backends["slack"].messages
    assert {m["channel"] for m in messages} == {"C07PAYM3NT5", "C07EX3CALRT"}
    payments = next(m["payload"] for m in messages if m["channel"] == "C07PAYM3NT5")
    assert payments["text"] == "[towerofbabel-web] Test mode detected in production: sk_test key in live checkout"
    blocks = json.loads(payments["blocks"])
    assert blocks[0]["text"]["text"].startswith(":red_circle: <")
    assert "Alert: <" in blocks[-2]["elements"][0]["text"] and TEST_MODE in blocks[-2]["elements"][0]["text"]
    assert f"Short ID: {issue.short_id}" in blocks[-2]["elements"][0]["text"]
    assert any(b.get("text", {}).get("text", "").startswith("notes: @oncall-payments halt all deployments")
               for b in blocks)
    tags_block = next(b for b in blocks if '"block":"tags"' in b.get("block_id", ""))
    assert tags_block["text"]["text"] == "environment: `production`  level: `fatal`  "

    emails = [m for m in backend.outbox if m["alert"] == TEST_MODE]
    assert sorted(tuple(m["to"]) for m in emails) == [("dana@towerofbabel.com", "ops@towerofbabel.com"),
                                                      ("exec@towerofbabel.com",)]
    assert all(m["subject"].startswith(f"[Sentry] {issue.short_id} - Test mode detected") for m in emails)

    # The rule's action interval (5 minutes) holds repeats of the same issue back.
    hub.clock.advance(120)
    backend.store_event(_error("Test mode detected in production: sk_test key in live checkout", level="fatal"))
    assert len(_fired(backend, TEST_MODE)) == 1
    hub.clock.advance(181)
    backend.store_event(_error("Test mode detected in production: sk_test key in live checkout", level="fatal"))
    assert len(_fired(backend, TEST_MODE)) == 2


def test_error_level_test_mode_event_does_not_fire_alert_6():
    backend, _hub = _backend("workflow")
    backend.store_event(_error("Test mode detected in production", level="error"))
    assert _fired(backend, TEST_MODE) == []


# --- delivery plumbing -----------------------------------------------------------------------------

def test_missing_hub_backends_are_recorded_as_undeliverable():
    backend, _hub = _backend("workflow", slack=False, pagerduty=False)
    backend.store_event(_error("Test mode detected in production", level="fatal"))
    [firing] = _fired(backend, TEST_MODE)
    statuses = {(d.kind, d.status, d.reason) for d in firing.deliveries if d.kind != "email"}
    assert statuses == {("slack", "undeliverable", "no Slack backend in the hub"),
                        ("pagerduty", "undeliverable", "no PagerDuty backend in the hub")}


def test_disabled_integration_is_undeliverable_and_team_without_members_too():
    backend, hub = _backend("workflow", fault="integration-disabled")
    for member in backend.members:
        member.pop("teams")
    backend.store_event(_error("Test mode detected in production", level="fatal"))
    [firing] = _fired(backend, TEST_MODE)
    by_target = {d.target: d for d in firing.deliveries}
    assert by_target["TowerOfBabel Payments"].status == "undeliverable"
    assert "is disabled" in by_target["TowerOfBabel Payments"].reason
    assert by_target["team:on-call"].status == "undeliverable"
    assert hub.backends["pagerduty"].events == []


def test_delivery_delay_knob_sets_visible_at():
    backend, hub = _backend("workflow", delivery_delay={"slack": 7, "pagerduty": 20, "email": 90})
    backend.store_event(_error("Test mode detected in production", level="fatal"))
    now = hub.clock.now()
    assert {m["visible_at"] for m in hub.backends["slack"].messages} == {now + 7}
    assert hub.backends["pagerduty"].events[0]["visible_at"] == now + 20
    assert {m["visible_at"] for m in backend.outbox} == {now + 90}


def test_dual_written_alerts_notify_once():
    backend, hub = _backend("both")
    backend.store_event(_error("Test mode detected in production", level="fatal"))
    assert len(_fired(backend, TEST_MODE)) == 1
    assert len(hub.backends["pagerduty"].events) == 1


def test_rule_edits_take_effect_on_the_next_event():
    backend, _hub = _backend("workflow")
    backend.workflows[:] = [w for w in backend.workflows if w["name"] != TEST_MODE]
    backend.store_event(_error("Test mode detected in production", level="fatal"))
    assert _fired(backend, TEST_MODE) == []


# --- performance alerts ----------------------------------------------------------------------------

def _transaction(name: str, duration_ms: float, now: float) -> dict:
    return {"type": "transaction", "transaction": name, "environment": "production",
            "start_timestamp": now - duration_ms / 1000, "timestamp": now,
            "contexts": {"trace": {"op": "http.server", "status": "ok"}}}


@pytest.mark.parametrize("generation", GENERATIONS)
def test_p95_alert_escalates_warning_then_critical(generation):
    backend, hub = _backend(generation)
    name = "Checkout p95 Latency (/api/checkout/pro)"
    for duration in (600, 650, 700):
        backend.store_event(_transaction("/api/checkout/pro", duration, hub.clock.now()), item_type="transaction")
    assert [f.level for f in backend.alert_firings if f.alert == name] == ["warning"]
    for duration in (1500, 1600, 1700):
        backend.store_event(_transaction("/api/checkout/pro", duration, hub.clock.now()), item_type="transaction")
    assert [f.level for f in backend.alert_firings if f.alert == name] == ["warning", "critical"]
    pages = [p["event"] for p in hub.backends["pagerduty"].events if p["event"]["payload"]["summary"] == name]
    assert len(pages) == 1 and pages[0]["payload"]["severity"] == "critical"
    # Warning and critical both post to #payments-alerts: one message per escalation, not two.
    slack = [m for m in hub.backends["slack"].messages if name in m["payload"]["text"]]
    assert [m["payload"]["text"].split("|")[1].split(":")[0] for m in slack] == ["*Warning", "*Critical"]


# --- throughput ------------------------------------------------------------------------------------

def test_a_burst_of_thousands_of_events_fires_once():
    """5000 payment errors in half a second of sandbox time: one firing, not one per event (how fast
    the engine takes them is measured in bench/sandbox_speed.py, not asserted here)."""
    backend, hub = _backend("both")
    payloads = [_error(f"Checkout failed {i}", tags={"payment_flow": "checkout"}) for i in range(5000)]
    for chunk in range(0, 5000, 500):
        backend.store_events(payloads[chunk:chunk + 500])
        hub.clock.advance(0.1)
    assert len(_fired(backend, PAYMENT_SPIKE)) == 1


# --- end to end with the real SDK ------------------------------------------------------------------

def test_sdk_capture_message_over_http_fires_alert_1():
    world = _world("workflow")
    with SandboxServer(world) as server:
        server.hub.backends["slack"] = FakeSlack()
        sentry_sdk.init(dsn=server.sentry.dsn(), environment="production", default_integrations=False,
                        auto_enabling_integrations=False)
        try:
            for i in range(11):
                sentry_sdk.capture_message(f"Checkout failed for order {i}", level="error")
            sentry_sdk.flush(timeout=10)
        finally:
            sentry_sdk.get_client().close()
        sent = server.clock.now()
        server.clock.advance(60)  # Sentry judges the alert on its next subscription update
        [firing] = _fired(server.sentry, PAYMENT_SPIKE)
        assert len(firing.event_ids) == 11 and firing.at <= sent + 60
        assert any(PAYMENT_SPIKE in m["payload"]["text"] for m in server.hub.backends["slack"].messages)


# --- the subscription cadence (the real default) ---------------------------------------------------

def _checkout_errors(backend, count: int) -> None:
    for i in range(count):
        backend.store_event(_error(f"Checkout session {i} could not be created", exception="CheckoutError"))


def test_legacy_get_alert_resolution_table():
    """getsentry/sentry incidents/logic.py get_alert_resolution, as verified-2026-12.md §5 reads it."""
    from paymon.sandbox.sentry.engine import alert_resolution_minutes

    table = {1: 1, 5: 1, 29: 1, 30: 2, 59: 2, 60: 3, 239: 3, 240: 5, 1439: 5, 1440: 15, 10080: 15}
    assert {w: alert_resolution_minutes(w) for w in table} == table
    assert alert_resolution_minutes(10, percent_change=True) == 2
    assert alert_resolution_minutes(60, percent_change=True) == 6


@pytest.mark.parametrize("generation", GENERATIONS)
def test_metric_alerts_fire_on_the_next_subscription_update_not_on_the_event(generation):
    backend, hub = _backend(generation, evaluation_cadence="real")
    _checkout_errors(backend, 11)
    hub.clock.advance(0.001)
    [alert] = _ours(backend, PAYMENT_SPIKE)
    assert alert.period == 60.0
    if START % 60 != alert.phase:  # no update at the very instant the events arrived
        assert _fired(backend, PAYMENT_SPIKE) == []
        assert not [m for m in hub.backends["slack"].messages if PAYMENT_SPIKE in m["payload"]["text"]]
    hub.clock.advance(60)
    [firing] = _fired(backend, PAYMENT_SPIKE)
    assert START <= firing.at <= START + 60 and (firing.at - alert.phase) % 60 == 0
    [message] = [m for m in hub.backends["slack"].messages if PAYMENT_SPIKE in m["payload"]["text"]]
    assert message["visible_at"] == firing.at  # posted when Sentry judged, not when the events came


def test_issue_alerts_still_fire_on_the_event():
    backend, hub = _backend("workflow", evaluation_cadence="real")
    backend.store_event(_error("Test mode detected in production", level="fatal"))
    [firing] = _fired(backend, TEST_MODE)
    assert firing.at == pytest.approx(START)


def test_longer_legacy_windows_are_judged_less_often():
    backend, hub = _backend("legacy", evaluation_cadence="real", evaluation_phase=0)
    rule = next(r for r in backend.metric_alert_rules if r["name"] == PAYMENT_SPIKE)
    rule["timeWindow"] = 60.0  # an hour: every 3 minutes (get_alert_resolution)
    backend.engine.refresh()
    [alert] = _ours(backend, PAYMENT_SPIKE)
    assert alert.period == 180.0
    _checkout_errors(backend, 11)
    hub.clock.advance(179.999 - START % 180)
    assert _fired(backend, PAYMENT_SPIKE) == []
    hub.clock.advance(0.001)
    [firing] = _fired(backend, PAYMENT_SPIKE)
    assert firing.at % 180 == 0


def test_detectors_are_judged_every_minute_whatever_the_window():
    backend, hub = _backend("workflow", evaluation_cadence="real")
    detector = next(d for d in backend.detectors if d["name"] == PAYMENT_SPIKE)
    detector["dataSources"][0]["queryObj"]["snubaQuery"]["timeWindow"] = 3600
    backend.engine.refresh()
    [alert] = _ours(backend, PAYMENT_SPIKE)
    assert alert.period == 60.0 and alert.threshold_period == 1
    backend.detector_cadence = "migrated"  # a rule migrated from legacy keeps its resolution
    backend.engine.refresh()
    [alert] = _ours(backend, PAYMENT_SPIKE)
    assert alert.period == 180.0


def test_legacy_threshold_period_needs_consecutive_breaching_updates():
    backend, hub = _backend("legacy", evaluation_cadence="real", evaluation_phase=0)
    next(r for r in backend.metric_alert_rules if r["name"] == PAYMENT_SPIKE)["thresholdPeriod"] = 3
    backend.engine.refresh()
    first_update = START - START % 60 + 60
    _checkout_errors(backend, 11)
    hub.clock.advance(first_update + 120 - START - 0.001)  # two breaching updates
    assert _fired(backend, PAYMENT_SPIKE) == []
    hub.clock.advance(0.001)  # the third
    [firing] = _fired(backend, PAYMENT_SPIKE)
    assert firing.at == first_update + 120
    [incident] = backend.engine.incidents
    # §8: dateDetected is the update that tripped it; dateStarted = it - window - resolution x (period - 1).
    assert incident["dateDetected"] == firing.at
    assert incident["dateStarted"] == firing.at - 300 - 60 * 2


def test_a_non_breaching_update_resets_the_threshold_period_count():
    backend, hub = _backend("legacy", evaluation_cadence="real", evaluation_phase=0)
    next(r for r in backend.metric_alert_rules if r["name"] == PAYMENT_SPIKE)["thresholdPeriod"] = 2
    backend.engine.refresh()
    minute = START - START % 60
    hub.clock.advance(minute + 50 - START)
    _checkout_errors(backend, 11)  # breaching from the update at +60 ...
    hub.clock.advance(300 - 50 + 60 + 1)  # ... out of the window after +360: updates +60..+300 breach
    firings = _fired(backend, PAYMENT_SPIKE)
    assert [f.at - minute for f in firings] == [120]


def test_the_workflow_engine_ignores_threshold_period_and_opens_a_period():
    backend, hub = _backend("workflow", evaluation_cadence="real")
    detector = next(d for d in backend.detectors if d["name"] == PAYMENT_SPIKE)
    detector["config"]["thresholdPeriod"] = 5
    _checkout_errors(backend, 11)
    hub.clock.advance(60)
    [firing] = _fired(backend, PAYMENT_SPIKE)
    [period] = backend.engine.open_periods
    assert period["detectorId"] == detector["id"] and period["start"] == firing.at and period["end"] is None
    hub.clock.advance(400)  # the events leave the window: the period closes on an update
    backend.sync()
    assert period["end"] is not None and period["end"] > firing.at


def test_a_served_sandbox_settles_sentry_before_answering_slack():
    """Nobody calls Sentry's backend: a Slack read over HTTP shows the post of the update due."""
    import httpx

    world = _world("workflow")
    with SandboxServer(world, clock=SandboxClock(start=START, frozen=True)) as server:
        _checkout_errors(server.sentry, 11)
        server.clock.advance(61)
        slack = server.backends["slack"]
        token = slack.tokens[0]["token"] if hasattr(slack, "tokens") else None
        channel = "C07PAYM3NT5"
        response = httpx.post(f"{server.base_url}/slack/api/conversations.history",
                              headers={"Authorization": f"Bearer {token}"}, data={"channel": channel})
        texts = [m.get("text", "") for m in response.json().get("messages", [])]
        assert any(PAYMENT_SPIKE in t for t in texts), response.json()
