"""The alert channels are not Sentry's alone, and Sentry threads what it says again (issue 13 item 1).

- Threads: a reply without `reply_broadcast` is only in `conversations.replies`; a broadcast one is
  also in `conversations.history` as subtype `thread_broadcast` with its `root` (verified-2026-12
  §10). Sentry's alert engine threads a metric alert's later notifications under its first post
  (critical broadcast, "Resolved" not) and an issue alert's repeats (always broadcast).
- Other voices (knob `voices`, on by default): PagerDuty's Slack app posts "Triggered: …" when an
  incident opens; a person asks about a firing by name; Sentry's app posts real firings of an alert
  (warning parent, critical broadcast, resolution in the thread).

Everything runs on a frozen sandbox clock.
"""

from __future__ import annotations

import time

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from paymon.sandbox.hub import Hub, SandboxClock
from paymon.sandbox.pagerduty import PagerDutyBackend
from paymon.sandbox.sentry import SentryBackend
from paymon.sandbox.sentry.engine import AlertFiring
from paymon.sandbox.server import SandboxServer
from paymon.sandbox.slack import SlackBackend, golden_slack_world
from paymon.sandbox.world import golden_world

PAYMENTS = "C07PAYM3NT5"
SENTRY_APP, PAGERDUTY_APP = "A07SENTRYAP", "A07PGRDUTYA"
START = 1_800_000_000.0


def _quiet(world_slack: dict) -> dict:
    world_slack.setdefault("knobs", {})["voices"] = {"enabled": False}
    return world_slack


def _client(server: SandboxServer) -> WebClient:
    return WebClient(token=server.backend("slack").default_token, base_url=f"{server.base_url}/slack/api/")


def _texts(messages: list[dict]) -> list[str]:
    return [m["text"] for m in messages]


def _hub(*, voices: dict | None = None, **sentry_knobs):
    """Sentry, Slack and PagerDuty backends on one frozen clock (in-process, as the server wires them)."""
    world = golden_world("workflow")
    if voices is not None:  # only these voices
        world["slack"]["knobs"]["voices"] = {"pagerduty_app": None, "people": None, "real_firings": [], **voices}
    world["sentry"]["knobs"].update({"evaluation_cadence": 0, **sentry_knobs})
    hub = Hub(clock=SandboxClock(start=START, frozen=True))
    hub.backends["slack"] = SlackBackend(world["slack"], hub=hub)
    hub.backends["pagerduty"] = PagerDutyBackend(world["pagerduty"], hub=hub)
    hub.backends["sentry"] = SentryBackend(world["sentry"], hub=hub)
    return hub


def _reader(hub: Hub):
    slack = hub.backends["slack"]
    return slack, slack.authenticate(slack.default_token)


def _error(message: str, **extra) -> dict:
    return {"level": "error", "environment": "production", "platform": "python", "timestamp": time.time(),
            "exception": {"values": [{"type": "CheckoutError", "value": message}]}, **extra}


# --- threads -------------------------------------------------------------------------------------

def test_replies_show_the_whole_thread_history_only_parents_and_broadcasts():
    world = _quiet(golden_slack_world())
    with SandboxServer({"slack": world}) as server:
        server.clock.freeze()
        backend, client = server.backend("slack"), _client(server)
        now = server.clock.now()
        parent = backend.post_message(PAYMENTS, {"text": "Warning: X"}, visible_at=now)
        backend.post_message(PAYMENTS, {"text": "Resolved: X", "thread_ts": parent["ts"]}, visible_at=now + 1)
        broadcast = backend.post_message(PAYMENTS, {"text": "Critical: X", "thread_ts": parent["ts"],
                                                    "reply_broadcast": True}, visible_at=now + 2)
        server.clock.advance(3)
        history = client.conversations_history(channel=PAYMENTS, oldest=f"{now - 1:.6f}")["messages"]
        assert _texts(history) == ["Critical: X", "Warning: X"]
        assert history[0]["subtype"] == "thread_broadcast" and history[0]["root"]["ts"] == parent["ts"]
        thread = client.conversations_replies(channel=PAYMENTS, ts=parent["ts"])
        assert _texts(thread["messages"]) == ["Warning: X", "Resolved: X", "Critical: X"]
        assert thread["messages"][0]["reply_count"] == 2 and thread["has_more"] is False
        assert all(m["parent_user_id"] == "U07SENTRYBT" for m in thread["messages"][1:])
        assert broadcast["thread_ts"] == parent["ts"]
        # A message without replies is "just the single message"; an unknown ts is thread_not_found.
        lone = backend.post_message(PAYMENTS, {"text": "alone"}, visible_at=server.clock.now())
        assert _texts(client.conversations_replies(channel=PAYMENTS, ts=lone["ts"])["messages"]) == ["alone"]
        with pytest.raises(SlackApiError) as caught:
            client.conversations_replies(channel=PAYMENTS, ts="1.000001")
        assert caught.value.response["error"] == "thread_not_found"


def test_replies_are_limited_like_history_for_non_marketplace_apps():
    world = _quiet(golden_slack_world())
    world["knobs"]["history_limit_mode"] = "non_marketplace"
    with SandboxServer({"slack": world}) as server:
        server.clock.freeze()
        backend, client = server.backend("slack"), _client(server)
        parent = backend.post_message(PAYMENTS, {"text": "parent"}, visible_at=server.clock.now())
        for n in range(20):
            backend.post_message(PAYMENTS, {"text": f"reply {n}", "thread_ts": parent["ts"]},
                                 visible_at=server.clock.now())
        first = client.conversations_replies(channel=PAYMENTS, ts=parent["ts"], limit=200)
        assert len(first["messages"]) == 15 and first["has_more"] is True
        with pytest.raises(SlackApiError) as caught:
            client.conversations_replies(channel=PAYMENTS, ts=parent["ts"])
        assert caught.value.response.status_code == 429
        server.clock.advance(int(caught.value.response.headers["retry-after"]))
        second = client.conversations_replies(channel=PAYMENTS, ts=parent["ts"],
                                              cursor=first["response_metadata"]["next_cursor"])
        assert _texts(second["messages"])[-1] == "reply 19" and second["has_more"] is False


def test_sentry_threads_a_metric_alerts_resolution_out_of_the_channel():
    hub = _hub(voices={})
    sentry = hub.backends["sentry"]
    slack, reader = _reader(hub)
    for i in range(11):
        sentry.store_event(_error(f"Checkout session {i} could not be created"))
    hub.clock.advance(301)  # the window empties: the incident resolves
    sentry.sync()
    history = slack.history(reader, PAYMENTS, oldest=f"{START - 1:.6f}")
    spike = [m for m in history if "Payment Failure Rate Spike" in m["text"]]
    assert [("Critical:" in m["text"], m.get("subtype")) for m in spike] == [(True, None)]
    assert spike[0]["reply_count"] == 1  # the resolution, in its thread only
    thread = slack.replies(reader, PAYMENTS, spike[0]["ts"])
    assert "*Resolved: Payment Failure Rate Spike*" in thread[-1]["text"]
    assert thread[-1]["thread_ts"] == spike[0]["ts"] and "subtype" not in thread[-1]


def test_sentry_broadcasts_an_issue_alerts_repeat_in_the_first_posts_thread():
    hub = _hub(voices={})
    sentry = hub.backends["sentry"]
    slack, reader = _reader(hub)
    event = {"level": "warning", "environment": "production", "message": "PAYMON-TEST-X-SLACK synthetic",
             "tags": {"test": "true", "paymon_check": "slack"}, "fingerprint": ["paymon", "x"]}
    sentry.store_event(dict(event))
    hub.clock.advance(24 * 3600)  # past any action interval: the same issue notifies again
    sentry.store_event(dict(event))
    history = [m for m in slack.history(reader, PAYMENTS, oldest=f"{START - 1:.6f}") if "PAYMON-TEST-X" in m["text"]]
    repeat, first = history
    assert first.get("subtype") is None and repeat["subtype"] == "thread_broadcast"
    assert repeat["thread_ts"] == first["ts"] and repeat["app_id"] == SENTRY_APP


# --- other voices --------------------------------------------------------------------------------

def test_pagerdutys_app_posts_when_an_incident_opens():
    hub = _hub(voices={"pagerduty_app": {"bot": "pagerduty", "services": {"PTOWPAY": ["#payments-alerts"]},
                                         "delay": 2.0}})
    pagerduty = hub.backends["pagerduty"]
    pagerduty.enqueue({"routing_key": _routing_key(hub), "event_action": "trigger", "payload": {
        "summary": "Critical: Payment Failure Rate Spike", "severity": "critical", "source": "sentry"}},
        visible_at=hub.clock.now())
    hub.clock.advance(5)
    slack, reader = _reader(hub)
    [post] = [m for m in slack.history(reader, PAYMENTS, oldest=f"{START - 1:.6f}") if m.get("app_id") == PAGERDUTY_APP]
    assert post["text"].startswith("Triggered: ") and "Critical: Payment Failure Rate Spike" in post["text"]
    assert post["bot_profile"]["name"] == "PagerDuty" and float(post["ts"]) >= START + 2


def _routing_key(hub: Hub) -> str:
    for integration in hub.backends["sentry"].integrations:
        for row in (integration.get("configData") or {}).get("service_table") or ():
            return row["integration_key"]
    raise AssertionError("no PagerDuty routing key in the golden world")


def test_a_person_asks_about_a_firing_by_name():
    hub = _hub(voices={"people": {"user": "U07ONCALL01", "channels": ["#payments-alerts"], "delay": 20.0}})
    sentry = hub.backends["sentry"]
    sentry.record_firing(AlertFiring("Webhook Processing Failure", "x", "workflow", hub.clock.now(), "critical",
                                     None, None, (), 6.0))
    slack, reader = _reader(hub)
    assert [m for m in slack.history(reader, PAYMENTS, oldest=f"{START - 1:.6f}") if m["user"] == "U07ONCALL01"] == []
    hub.clock.advance(20)
    [asked] = [m for m in slack.history(reader, PAYMENTS, oldest=f"{START - 1:.6f}") if m["user"] == "U07ONCALL01"]
    assert asked["text"] == "is anyone looking at *Critical: Webhook Processing Failure*?"
    assert not {"bot_id", "app_id", "bot_profile"} & set(asked)


def test_real_firings_open_escalate_and_resolve_in_a_thread():
    voice = {"alert": "Webhook Processing Failure", "channel": "#payments-alerts", "every": 3600.0,
             "first_after": 100.0, "escalate_after": 60.0, "resolve_after": 300.0}
    hub = _hub(voices={"real_firings": [voice]})
    slack, reader = _reader(hub)
    hub.clock.advance(100 + 60)
    shown = [m for m in slack.history(reader, PAYMENTS, oldest=f"{START:.6f}") if m.get("app_id") == SENTRY_APP]
    assert ["Critical:" in m["text"] for m in shown] == [True, False]
    critical, warning = shown
    assert critical["subtype"] == "thread_broadcast" and critical["thread_ts"] == warning["ts"]
    hub.clock.advance(300)
    again = [m for m in slack.history(reader, PAYMENTS, oldest=f"{START:.6f}") if m.get("app_id") == SENTRY_APP]
    assert len(again) == 2  # the resolution stays in the thread
    assert "Resolved: Webhook Processing Failure" in slack.replies(reader, PAYMENTS, warning["ts"])[-1]["text"]
    hub.clock.advance(3600)  # the next one
    assert len([m for m in slack.history(reader, PAYMENTS, oldest=f"{START:.6f}")
                if m.get("app_id") == SENTRY_APP]) == 4  # its warning and its critical


def test_voices_are_on_by_default_and_ignore_the_generated_past():
    knobs = golden_slack_world()["knobs"]
    assert "voices" not in knobs  # the defaults apply: paymon/sandbox/slack/models.py DEFAULT_KNOBS
    backend = SlackBackend(golden_slack_world())
    assert set(backend.voices) >= {"pagerduty_app", "people", "real_firings"}
