"""The sandbox's Slack answers validate against Slack's published Web API spec.

Every method is called over real HTTP (a running SandboxServer, httpx, the way slack-sdk calls: POST
form with a Bearer header), in every outcome the emulator produces — each page of every paginated
success, and each error code (`not_authed`, `invalid_auth`, `missing_scope`, `channel_not_found`,
`not_in_channel`, `is_archived`, `invalid_cursor`, `invalid_limit`, `no_text`, 429 `ratelimited`,
an injected 5xx) — and each body is validated against the method's success (`200`) or error
(`default`) schema of `slack-web-openapi-v2-2021.json`, Swagger 2.0, with Draft 4 as
slack-api.md §8 prescribes. The spec is first corrected with paymon's overlay.

The 2021 spec leaves channel objects and `bot_id` effectively unchecked (tuple-style `items` on
non-arrays), so channels are also validated against the first alternative of `objs_conversation`,
and every `bot_id` against `defs_bot_id`.

The spec, its overlay and the Sentry request example are part of the repository, in tests/apis/ (see
its README.md). If the spec is missing these tests fail (never skip): conformance that was not
checked must not look green.
"""

from __future__ import annotations

import copy
import json
from collections import defaultdict

import httpx
import jsonschema
import pytest
from openapi_support import EXAMPLES, apply_patches, load_spec, missing_specs

from paymon.sandbox import server as sandbox_server
from paymon.sandbox.server import SandboxServer
from paymon.sandbox.slack import SERVICE, golden_slack_world
from paymon.sandbox.slack.urls import url_paths

SPEC = "slack-web-openapi-v2-2021.json"
PAYMENTS, GENERAL, PRIVATE_OTHER, EXEC = "C07PAYM3NT5", "C07GENERAL1", "C07LEADRSHP", "C07EX3CALRT"
VERBS = {m.name: ("post" if m.name == "chat.postMessage" else "get") for m in url_paths}

# Channel objects are checked against objs_conversation's first alternative, which is
# additionalProperties:false yet lacks keys every live channel carries (context_team_id, updated,
# properties): those are allowed, everything listed keeps its type.
CHANNEL_EXTRA_KEYS_ALLOWED = True


# --- preparing the spec --------------------------------------------------------------------------

class SlackSpec:
    def __init__(self):
        self.spec = load_spec(SPEC)
        self._validators: dict[str, jsonschema.Draft4Validator] = {}

    def validator(self, pointer: str) -> jsonschema.Draft4Validator:
        if pointer not in self._validators:
            root = dict(self.spec)
            root["$ref"] = "#" + pointer  # Draft 4: the $ref replaces its siblings, the rest stays resolvable
            self._validators[pointer] = jsonschema.Draft4Validator(root)
        return self._validators[pointer]

    def channel_validator(self) -> jsonschema.Draft4Validator:
        key = "#channel"
        if key not in self._validators:
            schema = copy.deepcopy(self.spec["definitions"]["objs_conversation"]["items"][0])
            schema["additionalProperties"] = CHANNEL_EXTRA_KEYS_ALLOWED
            self._validators[key] = jsonschema.Draft4Validator({**self.spec, **schema})
        return self._validators[key]

    def errors(self, method: str, status: str, body) -> list[str]:
        pointer = f"/paths/~1{method}/{VERBS[method]}/responses/{status}/schema"
        found = sorted(self.validator(pointer).iter_errors(body), key=lambda e: list(e.absolute_path))
        problems = [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:200]}" for e in found]
        problems += self._unchecked_by_the_spec(body)
        return problems

    def _unchecked_by_the_spec(self, body) -> list[str]:
        problems = []
        channels = body.get("channels", []) + ([body["channel"]] if isinstance(body.get("channel"), dict) else [])
        for channel in channels:
            problems += [f"channel {channel.get('id')}: {e.message[:200]}"
                         for e in self.channel_validator().iter_errors(channel)]
        bot_ids = self.validator("/definitions/defs_bot_id")
        messages = body.get("messages", []) + ([body["message"]] if "message" in body else [])
        for message in messages:
            if "bot_id" in message:
                problems += [f"message {message['ts']} bot_id: {e.message}"
                             for e in bot_ids.iter_errors(message["bot_id"])]
        if "bot_id" in body:
            problems += [f"bot_id: {e.message}" for e in bot_ids.iter_errors(body["bot_id"])]
        return problems


@pytest.fixture(scope="module")
def slack_spec():
    """Loaded once; a string (the reason) when the spec is missing, so the tests fail."""
    return missing_specs(SPEC) or SlackSpec()


def _require(slack_spec) -> SlackSpec:
    if isinstance(slack_spec, str):
        pytest.fail(slack_spec, pytrace=False)
    return slack_spec


# --- the calls -----------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def answers():
    """(method, HTTP status, body, label) for every outcome, from one frozen-clock sandbox."""
    world = {"slack": golden_slack_world()}
    world["slack"]["knobs"]["page_size"] = 2  # every page of every list gets validated
    world["slack"]["knobs"]["rate_limits"]["tiers"]["tier4"] = 1000
    collected: list[tuple[str, int, dict, str]] = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sandbox_server.SERVICES, "slack", SERVICE)
        with SandboxServer(world) as server, httpx.Client(timeout=10) as http:
            server.clock.freeze()
            backend = server.backend("slack")
            reader, sentry = backend.default_token, backend.token_for("sentry")
            base = f"{server.base_url}/slack/api/"

            def call(method: str, label: str, token: str | None = reader, **arguments) -> dict:
                headers = {"Authorization": f"Bearer {token}"} if token else {}
                response = http.post(base + method, data=arguments, headers=headers)
                collected.append((method, response.status_code, response.json(), label))
                return response.json()

            def walk(method: str, label: str, **arguments) -> None:
                cursor = ""
                for _ in range(50):
                    body = call(method, f"{label} page", **arguments, **({"cursor": cursor} if cursor else {}))
                    cursor = (body.get("response_metadata") or {}).get("next_cursor", "")
                    if not cursor:
                        return
                raise AssertionError(f"{method} pagination does not end")

            # Successes: Sentry posts first (issue alert with blocks, metric alert with attachments,
            # a broadcast thread reply), so history pages hold every message shape the sandbox makes.
            example = EXAMPLES / "slack" / "chat.postMessage.request-from-sentry.json"
            issue = {**json.loads(example.read_text()), "channel": PAYMENTS}
            posted = call("chat.postMessage", "Sentry issue alert", sentry, **{k: str(v) for k, v in issue.items()})
            server.clock.advance(1)
            call("chat.postMessage", "Sentry metric alert", sentry, channel=PAYMENTS,
                 text="<https://x|*Critical: Payment Failure Rate Spike*>",
                 attachments=json.dumps([{"color": "#FA4747", "blocks": [
                     {"type": "section", "text": {"type": "mrkdwn", "text": "12 events in the last 5 minutes"}}]}]))
            server.clock.advance(1)
            call("chat.postMessage", "broadcast reply", sentry, channel=PAYMENTS, text="again",
                 thread_ts=posted["ts"], reply_broadcast="true")
            backend.post_message(PAYMENTS, {"text": "delivered later"}, visible_at=server.clock.now() + 3)
            server.clock.advance(5)
            call("auth.test", "reader")
            call("auth.test", "sentry", sentry)
            for types in ("public_channel", "public_channel,private_channel"):
                walk("conversations.list", types, types=types)
            walk("conversations.list", "exclude_archived", exclude_archived="true")
            for channel in golden_slack_world()["members"]:
                if channel != PRIVATE_OTHER:
                    call("conversations.info", f"info {channel}", channel=channel, include_num_members="true")
                    walk("conversations.members", f"members {channel}", channel=channel)
            call("conversations.info", "info without counts", channel=PAYMENTS)
            for channel in ("C07PAYM3NT5", "C07S3CUR1TY", "C07EX3CALRT", "C07PAYENGPR", "C06OLDALRTS"):
                walk("conversations.history", f"history {channel}", channel=channel)
            call("conversations.history", "empty window", channel=PAYMENTS, oldest=f"{server.clock.now():.6f}")
            call("conversations.history", "inclusive window", channel=PAYMENTS, oldest=posted["ts"],
                 latest=posted["ts"], inclusive="true")
            server.clock.advance(1)
            call("chat.postMessage", "hidden reply", sentry, channel=PAYMENTS, text="resolved", thread_ts=posted["ts"])
            server.clock.advance(1)
            walk("conversations.replies", "thread", channel=PAYMENTS, ts=posted["ts"])
            call("conversations.replies", "replies window", channel=PAYMENTS, ts=posted["ts"], oldest="1",
                 latest="2")
            call("users.lookupByEmail", "found", email="ada.okonkwo@towerofbabel.example")

            # Errors.
            for method in VERBS:
                call(method, "no token", None, channel=PAYMENTS, text="x")
                call(method, "unknown token", "sandbox-slack-nope", channel=PAYMENTS, text="x")
            call("conversations.info", "unknown channel", channel="C07NOTHERE1")
            call("conversations.members", "foreign private channel", channel=PRIVATE_OTHER)
            call("conversations.history", "not a member", channel=GENERAL)
            call("conversations.history", "bad oldest", channel=PAYMENTS, oldest="soon")
            call("conversations.list", "bad cursor", cursor="bm9wZQ==")
            call("conversations.members", "bad cursor", channel=PAYMENTS, cursor="bm9wZQ==")
            call("conversations.history", "bad cursor", channel=PAYMENTS, cursor="bm9wZQ==")
            call("conversations.replies", "no such thread", channel=PAYMENTS, ts="1.000001")
            call("conversations.replies", "no ts", channel=PAYMENTS)
            call("conversations.replies", "not a member", channel=GENERAL, ts="1.000001")
            call("conversations.members", "bad limit", channel=PAYMENTS, limit="lots")
            call("users.lookupByEmail", "nobody", email="nobody@towerofbabel.example")
            call("users.lookupByEmail", "sentry's bot lacks users:read.email", sentry, email="x@towerofbabel.example")
            call("conversations.list", "bad types", types="public_channel,dm")
            call("chat.postMessage", "reader lacks chat:write", channel=PAYMENTS, text="x")
            server.clock.advance(1)
            call("chat.postMessage", "no text", sentry, channel=PAYMENTS)
            server.clock.advance(1)
            call("chat.postMessage", "unknown channel", sentry, channel="#nowhere", text="x")
            backend.archive(EXEC)
            call("chat.postMessage", "archived", sentry, channel=EXEC, text="x")
            call("chat.postMessage", "per-channel limit", sentry, channel=PAYMENTS, text="x")
            backend.tokens[0]["scopes"] = ["channels:read"]
            call("conversations.history", "missing channels:history", channel=PAYMENTS)
            call("conversations.list", "missing groups:read", types="private_channel")
            backend.tokens[0]["scopes"] = []
            call("conversations.members", "missing channels:read", channel=PAYMENTS)
            call("conversations.info", "missing channels:read", channel=PAYMENTS)
            for method in VERBS:
                backend.inject_failure(429, method=method.replace(".", r"\."), retry_after=30)
                call(method, "injected 429", sentry, channel=PAYMENTS, text="x")
                backend.inject_failure(503, method=method.replace(".", r"\."))
                call(method, "injected 503", sentry, channel=PAYMENTS, text="x")
    return collected


def test_every_answer_matches_the_spec(answers, slack_spec):
    spec = _require(slack_spec)
    problems = []
    for method, status, body, label in answers:
        schema = "200" if body.get("ok") is True else "default"
        if schema == "200" and status != 200:
            problems.append(f"{method} [{label}]: ok:true with HTTP {status}")
        problems += [f"{method} [{label}] vs {schema}: {e}" for e in spec.errors(method, schema, body)[:5]]
    assert not problems, f"{len(problems)} conformance problems:\n" + "\n".join(problems)


def test_every_method_was_checked_in_success_and_in_error(answers):
    outcomes = defaultdict(set)
    for method, status, body, _label in answers:
        outcomes[method].add(body.get("error", "ok"))
    assert set(outcomes) == set(VERBS)
    for method, seen in outcomes.items():
        assert {"ok", "not_authed", "invalid_auth", "ratelimited", "service_unavailable"} <= seen, (method, seen)
    errors = set().union(*outcomes.values())
    assert {"missing_scope", "channel_not_found", "not_in_channel", "is_archived", "invalid_cursor",
            "invalid_limit", "invalid_ts_oldest", "invalid_types", "no_text", "thread_not_found",
            "invalid_arguments", "users_not_found"} <= errors


def test_errors_are_http_200_except_rate_limits_and_server_trouble(answers):
    for method, status, body, label in answers:
        expected = {"ratelimited": 429, "service_unavailable": 503}.get(body.get("error"), 200)
        assert status == expected, (method, label, status, body)


def test_validation_bites(slack_spec):
    """The corrected spec still refuses what Slack never sends (so green means something)."""
    spec = _require(slack_spec)
    good = {"ok": True, "messages": [{"type": "message", "text": "x", "ts": "1795716243.512389"}], "has_more": False}
    assert spec.errors("conversations.history", "200", good) == []
    assert spec.errors("conversations.history", "200", {**good, "messages": [{"type": "message", "text": "x",
                                                                               "ts": "1795716243.5"}]})
    assert spec.errors("conversations.history", "200", {"ok": True, "messages": []})  # has_more missing
    assert spec.errors("conversations.history", "200", {"ok": True, "messages": [], "has_more": False,
                                                        "bot_id": "X1"})
    assert spec.errors("conversations.info", "200", {"ok": True, "channel": {"id": "C07PAYM3NT5"}})
    assert spec.errors("auth.test", "default", {"ok": True, "error": "invalid_auth"})


def test_overlay_ops():
    doc = {"a": {"b": 1}, "c": {}}
    apply_patches(doc, [{"op": "add", "path": "/c/d", "value": 2}, {"op": "replace", "path": "/a/b", "value": 3},
                        {"op": "move", "from": "/a/b", "path": "/c/e"}, {"op": "remove", "path": "/c/d"}])
    assert doc == {"a": {}, "c": {"e": 3}}
    with pytest.raises(KeyError):
        apply_patches(doc, [{"op": "replace", "path": "/a/zzz", "value": 1}])
