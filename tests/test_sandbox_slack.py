"""The emulated Slack Web API behaves like Slack, driven by the real slack-sdk `WebClient`.

Every test talks HTTP to a SandboxServer (the Slack service mounted at `/slack`) and asserts exact
error codes, statuses and headers from slack-api.md §2-§5. Time is the hub's clock: delivery delays
and rate-limit windows are crossed with `clock.advance`, and slack-sdk's retry handler "sleeps" by
advancing that clock, so nothing here waits.
"""

from __future__ import annotations

import json
import math
import re
from types import SimpleNamespace

import httpx
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry import builtin_handlers
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from paymon.sandbox import server as sandbox_server
from paymon.sandbox.server import SandboxServer, build_app
from paymon.sandbox.slack import SERVICE, SlackBackend, golden_slack_world
from paymon.sandbox.slack.exceptions import SlackAPIError
from paymon.sandbox.slack.models import format_ts, ts_to_micros

PAYMENTS, SECURITY, EXEC = "C07PAYM3NT5", "C07S3CUR1TY", "C07EX3CALRT"
GENERAL, PRIVATE_MEMBER, PRIVATE_OTHER, ARCHIVED = "C07GENERAL1", "C07PAYENGPR", "C07LEADRSHP", "C06OLDALRTS"
SENTRY_USER, PAYMON_USER = "U07SENTRYBT", "U07PAYMONBT"
SENTRY_BOT, SENTRY_APP = "B07SENTRY01", "A07SENTRYAP"
TS = re.compile(r"^\d{10}\.\d{6}$")

# What Sentry's SlackSdkClient sends for an issue alert (chat.postMessage.request-from-sentry.json,
# with this workspace's channel): blocks as a JSON *string*, no block_ids on most blocks.
SENTRY_BLOCKS = [
    {"type": "section", "block_id": '{"issue":4821337,"rule":611301}',
     "text": {"type": "mrkdwn",
              "text": ":red_circle: <https://towerofbabel.sentry.io/issues/4821337/|*PaymentWebhookError*>"}},
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "app.payments.webhooks in process_event"}]},
    {"type": "section", "text": {"type": "mrkdwn", "text": "```PAYMON-TEST-7F3C2A9E synthetic failure```"}},
    {"type": "actions", "elements": [{"type": "button", "action_id": "resolved",
                                      "text": {"type": "plain_text", "text": "Resolve"}, "value": "resolved"}]},
    {"type": "context", "elements": [{"type": "mrkdwn", "text": "Project: <https://towerofbabel.sentry.io/issues/"
                                      "?project=4507005480140800|towerofbabel-web>    Alert: <https://x|paymon "
                                      "synthetic check: Slack>    Short ID: TOWEROFBABEL-WEB-5A"}]},
    {"type": "divider"},
]
SENTRY_PAYLOAD = {
    "channel": PAYMENTS,
    "text": "[towerofbabel-web] PaymentWebhookError: PAYMON-TEST-7F3C2A9E synthetic failure",
    "blocks": json.dumps(SENTRY_BLOCKS),
    "unfurl_links": False,
    "unfurl_media": False,
}


def _world(**knobs) -> dict:
    world = golden_slack_world()
    for key, value in knobs.items():
        world["knobs"][key] = value
    return {"slack": world}


@pytest.fixture(scope="module", autouse=True)
def slack_registered():
    """The lead registers Slack in server.SERVICES; until then (and regardless) the tests do."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sandbox_server.SERVICES, "slack", SERVICE)
        yield


@pytest.fixture
def sandbox():
    with SandboxServer(_world()) as server:
        server.clock.freeze()
        yield server


def _client(server: SandboxServer, token: str | None = "reader", **kwargs) -> WebClient:
    backend: SlackBackend = server.backend("slack")
    if token == "reader":
        token = backend.default_token
    elif token == "sentry":
        token = backend.token_for("sentry")
    return WebClient(token=token, base_url=f"{server.base_url}/slack/api/", timeout=10, **kwargs)


def _pages(first) -> list[dict]:
    """Every page of a paginated call. slack-sdk's iterator turns the *same* SlackResponse into the
    next page, so each page's data is copied while iterating."""
    return [dict(page.data) for page in first]


def _error(call) -> SlackApiError:
    with pytest.raises(SlackApiError) as caught:
        call()
    return caught.value


def _code(call) -> tuple[int, str]:
    response = _error(call).response
    return response.status_code, response["error"]


# --- identity and wiring -------------------------------------------------------------------------

def test_auth_test_names_the_reader_bot(sandbox):
    me = _client(sandbox).auth_test()
    assert me.status_code == 200
    assert me.data == {"ok": True, "url": "https://towerofbabel.slack.com/", "team": "TowerOfBabel", "user": "paymon",
                       "team_id": "T07TOWERBBL", "user_id": PAYMON_USER, "bot_id": "B07PAYMON01",
                       "is_enterprise_install": False}
    raw = httpx.post(f"{sandbox.base_url}/slack/api/auth.test",
                     headers={"Authorization": f"Bearer {sandbox.backend('slack').default_token}"})
    assert raw.headers["content-type"] == "application/json; charset=utf-8"
    assert raw.headers["x-oauth-scopes"] == ("channels:read,groups:read,channels:history,groups:history,users:read,"
                                             "users:read.email")


def test_service_mounts_under_slack_next_to_sentry():
    from paymon.sandbox.world import golden_world

    world = {**golden_world("workflow"), **_world()}
    app = build_app(world)
    assert {"sentry", "slack"} <= set(app.state.backends)
    assert isinstance(app.state.backends["slack"], SlackBackend)
    assert app.state.backends["slack"].hub is app.state.hub  # one clock for every service


def test_golden_world_has_the_alert_channels_with_both_bots():
    world = golden_slack_world()
    names = {c["id"]: c["name"] for c in world["channels"]}
    assert (names[PAYMENTS], names[SECURITY], names[EXEC]) == ("payments-alerts", "security-alerts", "exec-alerts")
    for channel in (PAYMENTS, SECURITY, EXEC):
        assert {SENTRY_USER, PAYMON_USER} <= set(world["members"][channel])
    assert any(c["is_archived"] for c in world["channels"])
    assert world["team"] == {"id": "T07TOWERBBL", "name": "TowerOfBabel", "domain": "towerofbabel"}
    # Fake tokens must never look like real Slack secrets (secret scanners, copy-paste accidents).
    for token in world["tokens"]:
        assert not re.search(r"xox[bpa]-[0-9A-Za-z-]{10,}", token["token"])


# --- authentication ------------------------------------------------------------------------------

def test_no_token_is_not_authed_and_unknown_token_is_invalid_auth(sandbox):
    assert _code(lambda: _client(sandbox, token=None).auth_test()) == (200, "not_authed")
    assert _code(lambda: _client(sandbox, token="sandbox-slack-nope").conversations_list()) == (200, "invalid_auth")


def test_token_in_form_body_works_but_not_in_query_string(sandbox):
    backend = sandbox.backend("slack")
    url = f"{sandbox.base_url}/slack/api/auth.test"
    form = httpx.post(url, data={"token": backend.default_token})
    assert form.status_code == 200 and form.json()["user_id"] == PAYMON_USER
    query = httpx.get(url, params={"token": backend.default_token})
    assert query.json() == {"ok": False, "error": "not_authed"}
    json_body = httpx.post(url, json={"token": backend.default_token})
    assert json_body.json() == {"ok": False, "error": "not_authed"}  # JSON needs the header


def test_query_string_token_accepted_for_old_apps():
    with SandboxServer(_world(query_string_tokens=True)) as server:
        backend = server.backend("slack")
        answer = httpx.get(f"{server.base_url}/slack/api/auth.test", params={"token": backend.default_token})
        assert answer.json()["ok"] is True


def test_get_query_post_form_and_post_json_read_the_same_arguments(sandbox):
    backend = sandbox.backend("slack")
    url = f"{sandbox.base_url}/slack/api/conversations.info"
    headers = {"Authorization": f"Bearer {backend.default_token}"}
    by_get = httpx.get(url, params={"channel": PAYMENTS}, headers=headers).json()
    by_form = httpx.post(url, data={"channel": PAYMENTS}, headers=headers).json()
    by_json = httpx.post(url, json={"channel": PAYMENTS}, headers=headers).json()
    assert by_get == by_form == by_json and by_get["channel"]["name"] == "payments-alerts"
    bad = httpx.post(url, content=b"{nope", headers={**headers, "Content-Type": "application/json"})
    assert bad.json() == {"ok": False, "error": "invalid_json"}


def test_unknown_method_is_404_unknown_method(sandbox):
    answer = httpx.post(f"{sandbox.base_url}/slack/api/conversations.hsitory",
                        headers={"Authorization": f"Bearer {sandbox.backend('slack').default_token}"})
    assert answer.status_code == 404
    assert answer.json() == {"ok": False, "error": "unknown_method", "req_method": "conversations.hsitory"}


# --- conversations.list / info / members ---------------------------------------------------------

def test_list_defaults_to_public_channels_and_hides_private_ones_the_bot_is_not_in(sandbox):
    client = _client(sandbox)
    public = [c["name"] for c in client.conversations_list()["channels"]]
    assert public == ["general", "random", "payments-alerts", "security-alerts", "exec-alerts", "alerts-legacy"]
    both = [c["name"] for c in client.conversations_list(types="public_channel,private_channel")["channels"]]
    assert "payments-eng" in both and "leadership" not in both
    active = [c["name"] for c in client.conversations_list(exclude_archived=True)["channels"]]
    assert "alerts-legacy" not in active
    assert _code(lambda: client.conversations_list(types="public_channel,dm")) == (200, "invalid_types")


def test_list_pages_with_cursor_until_next_cursor_is_empty():
    with SandboxServer(_world(page_size=2)) as server:
        client = _client(server)
        pages = _pages(client.conversations_list(types="public_channel,private_channel", limit=200))
        assert [len(p["channels"]) for p in pages] == [2, 2, 2, 1]
        assert all(p["response_metadata"]["next_cursor"] for p in pages[:-1])
        assert pages[-1]["response_metadata"]["next_cursor"] == ""
        names = [c["name"] for p in pages for c in p["channels"]]
        assert len(names) == len(set(names)) == 7
        assert server.backend("slack").request_count("conversations.list") == 4


def test_limit_and_cursor_errors(sandbox):
    client = _client(sandbox)
    assert _code(lambda: client.conversations_list(cursor="bm9wZQ==")) == (200, "invalid_cursor")
    assert _code(lambda: client.conversations_list(cursor="%%%")) == (200, "invalid_cursor")
    assert _code(lambda: client.conversations_members(channel=PAYMENTS, limit=0)) == (200, "invalid_limit")
    assert _code(lambda: client.conversations_history(channel=PAYMENTS, cursor="Y2hhbm5lbDpDMQ==")) == \
        (200, "invalid_cursor")


def test_list_private_channels_needs_groups_read(sandbox):
    backend = sandbox.backend("slack")
    backend.tokens[0]["scopes"] = ["channels:read", "channels:history"]
    error = _error(lambda: _client(sandbox).conversations_list(types="public_channel,private_channel")).response
    assert error.data == {"ok": False, "error": "missing_scope", "needed": "groups:read",
                          "provided": "channels:read,channels:history"}
    assert error.headers["x-accepted-oauth-scopes"] == "channels:read,groups:read,mpim:read,im:read"


def test_info_reports_membership_archive_and_hides_foreign_private_channels(sandbox):
    client = _client(sandbox)
    channel = client.conversations_info(channel=PAYMENTS)["channel"]
    assert (channel["id"], channel["is_member"], channel["is_archived"]) == (PAYMENTS, True, False)
    assert channel["previous_names"] == ["pay-alerts"] and "num_members" not in channel
    assert client.conversations_info(channel=PAYMENTS, include_num_members=True)["channel"]["num_members"] == 6  # + PagerDuty's app, + the on-call Ada
    assert client.conversations_info(channel=GENERAL)["channel"]["is_member"] is False
    assert client.conversations_info(channel=ARCHIVED)["channel"]["is_archived"] is True
    assert _code(lambda: client.conversations_info(channel=PRIVATE_OTHER)) == (200, "channel_not_found")
    assert _code(lambda: client.conversations_info(channel="C07NOTHERE1")) == (200, "channel_not_found")
    # conversations.* take IDs only; the name is chat.postMessage's convenience.
    assert _code(lambda: client.conversations_info(channel="#payments-alerts")) == (200, "channel_not_found")


def test_members_include_sentry_and_paymon_and_page(sandbox):
    client = _client(sandbox)
    assert {SENTRY_USER, PAYMON_USER} <= set(client.conversations_members(channel=PAYMENTS)["members"])
    pages = _pages(client.conversations_members(channel=PAYMENTS, limit=3))
    assert [len(p["members"]) for p in pages] == [3, 3]
    sandbox.backend("slack").remove_member(PAYMENTS, SENTRY_USER)
    assert SENTRY_USER not in client.conversations_members(channel=PAYMENTS)["members"]


# --- conversations.history -----------------------------------------------------------------------

def test_history_is_newest_first_with_sentry_alerts_from_the_world(sandbox):
    history = _client(sandbox).conversations_history(channel=PAYMENTS)
    messages = history["messages"]
    assert [m["ts"] for m in messages] == sorted((m["ts"] for m in messages), reverse=True)
    assert all(TS.match(m["ts"]) for m in messages)
    assert (history["has_more"], history["pin_count"], history["channel_actions_ts"]) == (False, 0, None)
    assert "response_metadata" not in history.data
    sentry = [m for m in messages if m.get("bot_id") == SENTRY_BOT]
    assert sentry and all("subtype" not in m and m["app_id"] == SENTRY_APP for m in sentry)
    assert any("Alert: <" in json.dumps(m.get("blocks", [])) for m in sentry)  # issue alert: rule in the footer
    assert any(m.get("attachments", [{}])[0].get("color") == "FA4747" for m in sentry)  # metric alert


def test_history_oldest_and_latest_are_exclusive_unless_inclusive(sandbox):
    client = _client(sandbox)
    all_ts = [m["ts"] for m in client.conversations_history(channel=PAYMENTS)["messages"]]
    newest, second, third = all_ts[0], all_ts[1], all_ts[2]
    assert [m["ts"] for m in client.conversations_history(channel=PAYMENTS, oldest=second)["messages"]] == [newest]
    assert [m["ts"] for m in client.conversations_history(channel=PAYMENTS, oldest=second, inclusive=True)
            ["messages"]] == [newest, second]
    assert [m["ts"] for m in client.conversations_history(channel=PAYMENTS, oldest=third, latest=newest)
            ["messages"]] == [second]
    assert _code(lambda: client.conversations_history(channel=PAYMENTS, oldest="yesterday")) == \
        (200, "invalid_ts_oldest")


def test_history_pages_with_has_more_and_cursor(sandbox):
    client = _client(sandbox)
    everything = [m["ts"] for m in client.conversations_history(channel=PAYMENTS)["messages"]]
    pages = _pages(client.conversations_history(channel=PAYMENTS, limit=1))
    assert [p["has_more"] for p in pages] == [True] * (len(everything) - 1) + [False]
    assert [p["messages"][0]["ts"] for p in pages] == everything


def test_message_becomes_visible_only_once_the_clock_passes_visible_at(sandbox):
    backend, client = sandbox.backend("slack"), _client(sandbox)
    sent_at = sandbox.clock.now()
    posted = backend.post_message(PAYMENTS, SENTRY_PAYLOAD, as_user="sentry", visible_at=sent_at + 4.25)
    assert posted["ts"] == format_ts(sent_at + 4.25) and TS.match(posted["ts"])
    oldest = f"{sent_at - 5:.6f}"

    def new_messages():
        return client.conversations_history(channel=PAYMENTS, oldest=oldest)["messages"]

    assert new_messages() == []
    assert backend.messages(PAYMENTS)[-1]["ts"] == posted["ts"]  # stored, not yet delivered
    assert backend.pending_messages(PAYMENTS)[0][0] == sent_at + 4.25
    sandbox.clock.advance(4.2)
    assert new_messages() == []
    sandbox.clock.advance(0.05)
    [delivered] = new_messages()
    assert delivered["ts"] == posted["ts"]
    assert float(delivered["ts"]) - sent_at == pytest.approx(4.25, abs=1e-6)  # latency read from ts
    assert delivered["bot_id"] == SENTRY_BOT and delivered["user"] == SENTRY_USER and "subtype" not in delivered
    assert delivered["bot_profile"]["name"] == "Sentry" and "user_id" not in delivered["bot_profile"]


def test_default_visible_at_uses_the_delivery_delay_knob():
    with SandboxServer(_world(delivery_delay=7.0)) as server:
        server.clock.freeze()
        posted = server.backend("slack").post_message("#security-alerts", {"text": "x"})
        assert posted["ts"] == format_ts(server.clock.now() + 7.0)


def test_ts_is_unique_and_increasing_on_a_frozen_clock(sandbox):
    backend = sandbox.backend("slack")
    first = backend.post_message(PAYMENTS, {"text": "one"}, visible_at=sandbox.clock.now())
    second = backend.post_message(PAYMENTS, {"text": "two"}, visible_at=sandbox.clock.now())
    third = _client(sandbox, token="sentry").chat_postMessage(channel=EXEC, text="three")
    assert ts_to_micros(second["ts"]) - ts_to_micros(first["ts"]) == 1
    assert TS.match(third["ts"])


def test_sentry_issue_alert_posted_over_http_reads_back_normalised(sandbox):
    posted = _client(sandbox, token="sentry").chat_postMessage(**SENTRY_PAYLOAD)
    assert posted["ok"] and posted["channel"] == PAYMENTS and posted["ts"] == posted["message"]["ts"]
    message = posted["message"]
    assert (message["app_id"], message["bot_id"], message["user"], message["team"]) == \
        (SENTRY_APP, SENTRY_BOT, SENTRY_USER, "T07TOWERBBL")
    blocks = message["blocks"]
    assert [b["type"] for b in blocks] == [b["type"] for b in SENTRY_BLOCKS]
    assert blocks[0]["block_id"] == SENTRY_BLOCKS[0]["block_id"]  # kept when sent
    assert all(re.fullmatch(r"[A-Za-z0-9]{5}", b["block_id"]) for b in blocks[1:])  # invented when not
    assert blocks[1]["elements"][0]["verbatim"] is False and blocks[3]["elements"][0]["text"]["emoji"] is True
    read = _client(sandbox).conversations_history(channel=PAYMENTS, limit=1)["messages"][0]
    assert read == message
    assert "PAYMON-TEST-7F3C2A9E" in read["text"] and "paymon synthetic check: Slack" in json.dumps(read["blocks"])


def test_channel_name_works_for_post_message(sandbox):
    posted = _client(sandbox, token="sentry").chat_postMessage(channel="#exec-alerts", text="by name")
    assert posted["channel"] == EXEC


def test_metric_alert_attachments_gain_id_fallback_and_lose_the_hash(sandbox):
    attachments = [{"color": "#FA4747", "blocks": [{"type": "section", "text": {
        "type": "mrkdwn", "text": "12 events in the last 5 minutes"}}]}]
    message = sandbox.backend("slack").post_message(
        PAYMENTS, {"text": "<https://x|*Critical: Payment Failure Rate Spike*>",
                   "attachments": json.dumps(attachments)})
    [attachment] = message["attachments"]
    assert (attachment["id"], attachment["color"], attachment["fallback"]) == (1, "FA4747", "[no preview available]")
    assert attachment["blocks"][0]["text"]["verbatim"] is False and "blocks" not in message


def test_thread_replies_hide_unless_broadcast(sandbox):
    backend, client = sandbox.backend("slack"), _client(sandbox)
    parent = backend.post_message(PAYMENTS, {"text": "first alert"}, visible_at=sandbox.clock.now())
    backend.post_message(PAYMENTS, {"text": "quiet reply", "thread_ts": parent["ts"]}, visible_at=sandbox.clock.now())
    backend.post_message(PAYMENTS, {"text": "repeat alert", "thread_ts": parent["ts"], "reply_broadcast": True},
                         visible_at=sandbox.clock.now())
    shown = client.conversations_history(channel=PAYMENTS, oldest=f"{float(parent['ts']) - 1:.6f}")["messages"]
    assert [m["text"] for m in shown] == ["repeat alert", "first alert"]
    assert shown[0]["subtype"] == "thread_broadcast" and shown[0]["thread_ts"] == parent["ts"]
    assert shown[1]["reply_count"] == 2 and shown[1]["thread_ts"] == parent["ts"]


# --- error codes ---------------------------------------------------------------------------------

def test_history_needs_membership_scope_and_a_visible_channel(sandbox):
    backend, client = sandbox.backend("slack"), _client(sandbox)
    assert _code(lambda: client.conversations_history(channel=GENERAL)) == (200, "not_in_channel")
    assert _code(lambda: client.conversations_history(channel=PRIVATE_OTHER)) == (200, "channel_not_found")
    assert client.conversations_history(channel=PRIVATE_MEMBER)["messages"]
    backend.remove_member(PAYMENTS, PAYMON_USER)
    assert _code(lambda: client.conversations_history(channel=PAYMENTS)) == (200, "not_in_channel")
    backend.tokens[0]["scopes"] = ["channels:read", "chat:write"]
    error = _error(lambda: client.conversations_history(channel=SECURITY)).response
    assert error.data == {"ok": False, "error": "missing_scope", "needed": "channels:history",
                          "provided": "channels:read,chat:write"}


def test_archived_channel_refuses_posts_but_keeps_history(sandbox):
    backend = sandbox.backend("slack")
    backend.archive(EXEC)
    assert _code(lambda: _client(sandbox, token="sentry").chat_postMessage(channel=EXEC, text="x")) == \
        (200, "is_archived")
    with pytest.raises(SlackAPIError) as caught:
        backend.post_message(EXEC, {"text": "x"})
    assert caught.value.error == "is_archived"
    assert _client(sandbox).conversations_history(channel=ARCHIVED)["messages"]


@pytest.mark.filterwarnings("ignore:The top-level `text` argument is missing")
def test_post_message_errors_are_slacks(sandbox):
    backend = sandbox.backend("slack")
    sentry = _client(sandbox, token="sentry")

    def attempt(**arguments) -> tuple[int, str]:
        # Refused posts count against the 1/s per-channel limit too: a second between attempts.
        sandbox.clock.advance(1)
        return _code(lambda: sentry.chat_postMessage(**arguments))

    assert attempt(channel="C07NOTHERE1", text="x") == (200, "channel_not_found")
    # Sentry is not in the private #payments-eng: for it the channel does not exist.
    assert attempt(channel=PRIVATE_MEMBER, text="x") == (200, "channel_not_found")
    assert attempt(channel=PAYMENTS, text="x", blocks="[not json") == (200, "invalid_blocks")
    assert attempt(channel=PAYMENTS, text="") == (200, "no_text")
    assert attempt(channel=PAYMENTS, text="x" * 40_001) == (200, "msg_too_long")
    assert attempt(channel=PAYMENTS, text="x", attachments=[{"text": "a"}] * 101) == (200, "too_many_attachments")
    # chat:write.public lets Sentry post to a public channel it has left; without it: not_in_channel.
    backend.remove_member(PAYMENTS, SENTRY_USER)
    sandbox.clock.advance(1)
    assert sentry.chat_postMessage(channel=PAYMENTS, text="still delivered")["ok"]
    backend.tokens[1]["scopes"].remove("chat:write.public")
    assert attempt(channel=PAYMENTS, text="x") == (200, "not_in_channel")


def test_injected_failures(sandbox):
    backend, client = sandbox.backend("slack"), _client(sandbox)
    backend.inject_failure(503, method="conversations.history", times=1)
    assert _code(lambda: client.conversations_history(channel=PAYMENTS)) == (503, "service_unavailable")
    assert client.conversations_history(channel=PAYMENTS)["ok"]  # times=1: over
    backend.inject_failure(error="token_revoked", method="auth")
    assert _code(lambda: client.auth_test()) == (200, "token_revoked")
    backend.inject_failure(429, method="conversations.info", retry_after=42)
    response = _error(lambda: client.conversations_info(channel=PAYMENTS)).response
    assert (response.status_code, response["error"], response.headers["retry-after"]) == (429, "ratelimited", "42")


def test_fail_knob_in_the_world():
    world = _world(fail=[{"method": "conversations\\.list", "status": 500, "times": 2}])
    with SandboxServer(world) as server:
        client = _client(server)
        assert _code(client.conversations_list) == (500, "fatal_error")
        assert _code(client.conversations_list) == (500, "fatal_error")
        assert client.conversations_list()["ok"]


# --- rate limits ---------------------------------------------------------------------------------

def _tight_list_world() -> dict:
    world = _world()
    world["slack"]["knobs"]["rate_limits"]["tiers"]["tier2"] = 2  # conversations.list is Tier 2
    return world


def test_ratelimited_is_429_with_retry_after_and_raises_without_a_handler():
    with SandboxServer(_tight_list_world()) as server:
        server.clock.freeze()
        client = _client(server)
        client.conversations_list()
        client.conversations_list()
        response = _error(client.conversations_list).response
        assert (response.status_code, response.data) == (429, {"ok": False, "error": "ratelimited"})
        retry_after = int(response.headers["retry-after"])
        assert 1 <= retry_after <= 60
        assert client.conversations_info(channel=PAYMENTS)["ok"]  # limits are per method
        assert _client(server, token="sentry").conversations_list()["ok"]  # ... and per app
        server.clock.advance(retry_after)
        assert client.conversations_list()["ok"]


def test_rate_limit_retry_handler_waits_retry_after_then_succeeds(monkeypatch):
    with SandboxServer(_tight_list_world()) as server:
        server.clock.freeze()
        slept = []

        def sleep_on_the_sandbox_clock(seconds):
            slept.append(seconds)
            server.clock.advance(seconds)

        # slack-sdk's handler calls time.sleep(Retry-After + jitter): make that move the sandbox clock.
        monkeypatch.setattr(builtin_handlers, "time", SimpleNamespace(sleep=sleep_on_the_sandbox_clock))
        client = _client(server, retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)])
        client.conversations_list()
        client.conversations_list()
        now = server.clock.now()
        window_left = math.ceil((math.floor(now / 60) + 1) * 60 - now)
        assert client.conversations_list()["ok"]
        assert server.backend("slack").request_count("conversations.list", status=429) == 1
        # Retry-After whole seconds plus up to 1 s of jitter, then one successful retry.
        assert len(slept) == 1 and int(slept[0]) == window_left
        assert server.backend("slack").request_count("conversations.list") == 4


def test_post_message_is_limited_per_channel(sandbox):
    sentry = _client(sandbox, token="sentry")
    assert sentry.chat_postMessage(channel=PAYMENTS, text="one")["ok"]
    assert _code(lambda: sentry.chat_postMessage(channel="#payments-alerts", text="two")) == (429, "ratelimited")
    assert sentry.chat_postMessage(channel=SECURITY, text="elsewhere")["ok"]
    sandbox.clock.advance(1)
    assert sentry.chat_postMessage(channel=PAYMENTS, text="two")["ok"]


def test_non_marketplace_history_is_1_per_minute_and_15_messages():
    with SandboxServer(_world(history_limit_mode="non_marketplace")) as server:
        server.clock.freeze()
        backend, client = server.backend("slack"), _client(server)
        for n in range(20):
            backend.post_message(PAYMENTS, {"text": f"alert {n}"}, visible_at=server.clock.now())
        first = client.conversations_history(channel=PAYMENTS, limit=200)
        assert len(first["messages"]) == 15 and first["has_more"] is True
        assert first["messages"][0]["text"] == "alert 19"
        response = _error(lambda: client.conversations_history(channel=PAYMENTS)).response
        assert (response.status_code, response["error"]) == (429, "ratelimited")
        assert 1 <= int(response.headers["retry-after"]) <= 60
        server.clock.advance(int(response.headers["retry-after"]))
        second = client.conversations_history(channel=PAYMENTS, cursor=first["response_metadata"]["next_cursor"])
        # 20 new + 4 from the world: the second (and last) page holds the other 9.
        assert len(second["messages"]) == 9 and second["messages"][0]["text"] == "alert 4"
        assert second["has_more"] is False


def test_marketplace_history_serves_large_pages():
    with SandboxServer(_world()) as server:
        server.clock.freeze()
        backend, client = server.backend("slack"), _client(server)
        for n in range(20):
            backend.post_message(PAYMENTS, {"text": f"alert {n}"}, visible_at=server.clock.now())
        assert len(client.conversations_history(channel=PAYMENTS, limit=200)["messages"]) == 24
        assert client.conversations_history(channel=PAYMENTS)["ok"]


# --- the internal API ----------------------------------------------------------------------------

def test_request_log_counts_calls_without_tokens(sandbox):
    backend, client = sandbox.backend("slack"), _client(sandbox)
    client.auth_test()
    client.conversations_history(channel=PAYMENTS, oldest="1795000000.000000")
    _error(lambda: client.conversations_history(channel=GENERAL))
    assert backend.request_count() == 3
    assert backend.request_count("conversations.history") == 2
    assert backend.request_count("history", error="not_in_channel") == 1
    last = backend.requests[-1]
    assert (last.method, last.param("channel"), last.error) == ("conversations.history", GENERAL, "not_in_channel")
    assert all("token" not in dict(r.params) for r in backend.requests)


def test_reset_restores_the_world(sandbox):
    backend = sandbox.backend("slack")
    before = backend.messages(PAYMENTS)
    backend.post_message(PAYMENTS, {"text": "x"})
    backend.archive(PAYMENTS)
    backend.remove_member(PAYMENTS, PAYMON_USER)
    _client(sandbox).auth_test()
    backend.inject_failure(503)
    backend.reset()
    assert backend.messages(PAYMENTS) == before
    assert backend.channels[PAYMENTS]["is_archived"] is False and backend.is_member(PAYMENTS, PAYMON_USER)
    assert backend.requests == [] and _client(sandbox).auth_test()["ok"]


def test_backend_works_without_a_server():
    backend = SlackBackend(golden_slack_world())
    message = backend.post_message("payments-alerts", {"text": "hello"}, visible_at=backend.clock.now())
    assert backend.messages(PAYMENTS)[-1] == message and backend.messages("#payments-alerts", visible_only=True)
    with pytest.raises(KeyError):
        backend.post_message(PAYMENTS, {"text": "x"}, as_user="nobody")
    with pytest.raises(SlackAPIError) as caught:
        backend.post_message("#no-such-channel", {"text": "x"})
    assert caught.value.body() == {"ok": False, "error": "channel_not_found"}


def test_a_person_posts_with_a_user_token(sandbox):
    """People talk in the alert channels too. A user token (`xoxp-`) has no bot: auth.test names
    none, and the message carries the person's user id without bot_id / app_id / bot_profile (as
    Slack's conversations.history shows a person's message). It once answered HTTP 500 (KeyError)."""
    world = _world()["slack"]
    person = {"token": "xoxp-" + "7" * 12 + "-oncall", "scopes": ["chat:write", "channels:read", "channels:history"],
              "user_id": "U07ONCALL01"}
    world["tokens"].append(person)
    with SandboxServer({"slack": world}) as server:
        client = _client(server, token=person["token"])
        assert "bot_id" not in client.auth_test().data
        posted = client.chat_postMessage(channel=PAYMENTS, text="is anyone looking at *Critical: Payment Failure Rate Spike*?")
        message = posted["message"]
        assert message["user"] == "U07ONCALL01" and not {"bot_id", "app_id", "bot_profile"} & set(message)
        history = _client(server).conversations_history(channel=PAYMENTS)["messages"]
        assert any(m["ts"] == message["ts"] and "bot_id" not in m for m in history)
