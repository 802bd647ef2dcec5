"""State and behaviour of the emulated Slack workspace; never sees an HTTP request.

`SlackBackend(world["slack"], hub=hub)` holds the workspace (team, users, bots, channels, membership,
message history, tokens) and the emulator's own state: injected failures, rate-limit windows and a
log of the Web API calls served. Time is `hub.clock` (shared with the other emulators): a message
posted with `visible_at` in the future is stored at once but shown by `conversations.history` only
once the clock has passed it, and its `ts` is that visible time, so latency measured from `ts` is
the delivery delay the world asked for.

Internal API for Sentry's alert engine and for tests (moto style):

    backend.post_message("C07PAYM3NT5", {"text": ..., "blocks": ...}, as_user="sentry",
                         visible_at=clock.now() + 4)           # Sentry's chat.postMessage, delivered later
    backend.messages("#payments-alerts")                        # everything stored, oldest first
    backend.archive("C07EX3CALRT"); backend.remove_member("C07PAYM3NT5", "U07PAYMONBT")
    backend.inject_failure(429, method="conversations.history", retry_after=30, times=1)
    backend.inject_failure(error="token_revoked", method="auth.test")
    backend.requests; backend.request_count("conversations.history")
    backend.reset()                                             # back to the world it was built from
"""

from __future__ import annotations

import copy
import json
import math
import random
import re
import string
import threading
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from paymon.sandbox.slack.exceptions import (
    ChannelNotFound,
    InjectedError,
    InvalidArguments,
    InvalidAuth,
    InvalidBlocks,
    InvalidTsLatest,
    InvalidTsOldest,
    InvalidTypes,
    IsArchived,
    MissingScope,
    MsgTooLong,
    NoText,
    NotAuthed,
    NotInChannel,
    RateLimited,
    ServerError,
    SlackAPIError,
    ThreadNotFound,
    TooManyAttachments,
)

CONVERSATION_TYPES = ("public_channel", "private_channel", "mpim", "im")

# The scope each method family needs, by conversation type (slack-api.md §1; docs "Required scopes").
SCOPES = {
    "read": {"public_channel": "channels:read", "private_channel": "groups:read",
             "mpim": "mpim:read", "im": "im:read"},
    "history": {"public_channel": "channels:history", "private_channel": "groups:history",
                "mpim": "mpim:history", "im": "im:history"},
}
WRITE_SCOPE = "chat:write"
WRITE_PUBLIC_SCOPE = "chat:write.public"  # post to public channels without joining them

MAX_TEXT_LENGTH = 40_000  # chat.postMessage truncates/refuses beyond this (msg_too_long)
MAX_ATTACHMENTS = 100

HISTORY_MODES = ("marketplace", "non_marketplace")

DEFAULT_KNOBS: dict = {
    # Largest page any list/members/history call serves, whatever `limit` the client asks for
    # (Slack: "fewer than the requested number of items may be returned"). Small values force paging.
    "page_size": 1000,
    # "non_marketplace": a commercially distributed app outside the Slack Marketplace (the 2025-05-29
    # change): conversations.history at 1 request/minute and at most 15 messages per call.
    "history_limit_mode": "marketplace",
    # Default delay between Sentry deciding to post (post_message) and the message showing up.
    "delivery_delay": 0.0,
    # Apps created after 2021-02-24 may not send `token` in the query string (header or POST body only).
    "query_string_tokens": False,
    "rate_limits": {
        "window": 60,
        "tiers": {"tier1": 1, "tier2": 20, "tier3": 50, "tier4": 100},
        "methods": {
            "auth.test": {"limit": 600, "window": 60},  # "special": hundreds per minute
            "conversations.list": "tier2",
            "conversations.info": "tier3",
            "conversations.history": "tier3",
            # Internal and Marketplace apps: Tier 3 (docs.slack.dev conversations.replies; verified-2026-12 §10).
            "conversations.replies": "tier3",
            "conversations.members": "tier4",
            # "special": about one message per second per channel.
            "chat.postMessage": {"limit": 1, "window": 1, "per_channel": True},
        },
        "non_marketplace_history": {"limit": 1, "window": 60, "max_items": 15},
    },
    "fail": [],
    "seed": 0,
    # Other voices in the alert channels (issue 13 item 1): a real alert channel is not Sentry's
    # alone. Each voice reacts to what the other emulators did from the moment this backend was
    # built (never to a generated history), so it is there in every run as it would be live.
    # Names (bots, users, channels, services) that the world does not hold are ignored.
    "voices": {
        "enabled": True,  # False: Sentry's posts alone (unit tests of the emulator's own shapes)
        # PagerDuty's Slack app posts "Triggered: <incident title>" into the channels connected to
        # a service when an incident opens there (PagerDuty's Slack integration, "Incident
        # notifications" per service/channel).
        "pagerduty_app": {"bot": "pagerduty", "services": {"PTOWPAY": ["#payments-alerts"]}, "delay": 2.0},
        # People ask about a firing by name ("is anyone looking at *Critical: <alert>*?"), whether or
        # not Sentry's own post reached the channel (they were paged, or saw it elsewhere).
        # `quote_issue`: they paste the issue's title (an issue alert's event message, markers included).
        "people": {"user": "U07ONCALL01", "channels": ["#payments-alerts"], "delay": 30.0, "alerts": None,
                   "quote_issue": True},
        # Real firings of the alerts, posted by Sentry's app for real traffic: an incident opens
        # ("Warning: <name>", a parent), escalates (a "Critical" reply broadcast to the channel, as
        # Sentry does for a critical metric alert in a thread) and resolves (a reply history never
        # shows). Every `every` s, starting `first_after` s after the backend was built.
        "real_firings": [{"alert": "Webhook Processing Failure", "channel": "#payments-alerts",
                          "every": 21600.0, "first_after": 7200.0, "escalate_after": 120.0,
                          "resolve_after": 900.0}],
        # How far back a read materialises periodic voices (a clock moved by days makes no backlog).
        "horizon": 3600.0,
    },
    # conversations.replies for bot tokens: the method's page says bot tokens "lack sufficient
    # permissions" on channels, yet its facts box lists the bot history scopes and bots read
    # threads in practice (verified-2026-12 §10). False: a bot token gets missing_scope.
    "replies_for_bot_tokens": True,
}


# --- value objects -------------------------------------------------------------------------------

@dataclass(frozen=True)
class TokenGrant:
    """What a token stands for: the installing app's bot user (a bot token, `xoxb-`) or a person
    (a user token, `xoxp-`: no bot), and the scopes it was granted."""

    token: str
    scopes: tuple[str, ...]
    user_id: str
    bot_id: str | None = None

    def require(self, scope: str) -> None:
        if scope not in self.scopes:
            raise MissingScope(scope, list(self.scopes))


@dataclass
class StoredMessage:
    channel: str
    message: dict
    visible_at: float
    """Clock time from which reads show it; world history is visible from the start (0)."""

    @property
    def micros(self) -> int:
        return ts_to_micros(self.message["ts"])

    @property
    def is_hidden_reply(self) -> bool:
        """A thread reply not broadcast to the channel: conversations.history leaves it out."""
        m = self.message
        return "thread_ts" in m and m["thread_ts"] != m["ts"] and m.get("subtype") != "thread_broadcast"


@dataclass(frozen=True)
class RecordedRequest:
    method: str  # Web API method, e.g. "conversations.history"
    http_method: str
    params: tuple[tuple[str, str], ...]  # without the token
    status: int
    error: str | None  # the `error` code of an ok:false answer

    def param(self, name: str) -> str | None:
        return dict(self.params).get(name)


@dataclass
class InjectedFailure:
    method: re.Pattern | None
    status: int  # 200 with `error`, 429, or 5xx
    error: str | None
    retry_after: int
    times: int | None  # None: every matching call until reset()

    def matches(self, method: str) -> bool:
        return self.method is None or self.method.search(method) is not None

    def as_error(self) -> SlackAPIError:
        if self.status == 429:
            return RateLimited(self.retry_after)
        if self.status >= 500:
            error = ServerError(self.status)
            if self.error:
                error.error = self.error
            return error
        error = InjectedError(self.error or "fatal_error")
        error.status = self.status
        return error


@dataclass(frozen=True)
class RateRule:
    limit: int
    window: float
    per_channel: bool = False


# --- ts helpers ----------------------------------------------------------------------------------

def ts_to_micros(value: str | float) -> int:
    """'1795716243.512389' -> 1795716243512389 (exact; floats lose the last digit)."""
    return int((Decimal(str(value)) * 1_000_000).to_integral_value())


def micros_to_ts(micros: int) -> str:
    return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"


def format_ts(seconds: float) -> str:
    return micros_to_ts(round(seconds * 1_000_000))


def _within(micros: int, low: int | None, high: int | None, inclusive: bool) -> bool:
    """`oldest` < ts < `latest` (<= with `inclusive`); a missing bound does not bound."""
    if low is not None and (micros < low or (micros == low and not inclusive)):
        return False
    return not (high is not None and (micros > high or (micros == high and not inclusive)))


def _parse_ts_bound(value: str | None, error: type[SlackAPIError]) -> int | None:
    if value is None or str(value).strip() == "":
        return None
    try:
        micros = ts_to_micros(str(value).strip())
    except (InvalidOperation, ValueError):
        raise error() from None
    if micros < 0:
        raise error()
    return micros


# --- the backend ---------------------------------------------------------------------------------

class SlackBackend:
    def __init__(self, world_slack: dict, hub=None):
        from paymon.sandbox.hub import Hub

        self.hub = hub if hub is not None else Hub()
        self._world = copy.deepcopy(world_slack)
        self._lock = threading.RLock()
        self.reset()

    # --- lifecycle -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every post, membership change, injected failure, rate-limit window and logged call."""
        world = copy.deepcopy(self._world)
        self.team: dict = world["team"]
        self.users: list[dict] = world.get("users", [])
        self.bots: list[dict] = world.get("bots", [])
        self.tokens: list[dict] = world.get("tokens", [])
        self.channels: dict[str, dict] = {c["id"]: c for c in world.get("channels", [])}
        self.members: dict[str, list[str]] = {cid: list(users) for cid, users in world.get("members", {}).items()}
        self._messages: dict[str, list[StoredMessage]] = {cid: [] for cid in self.channels}
        for channel_id, messages in world.get("history", {}).items():
            for message in messages:
                self._messages.setdefault(channel_id, []).append(StoredMessage(channel_id, message, 0.0))
        knobs = _merge(DEFAULT_KNOBS, world.get("knobs", {}))
        self.knobs = knobs
        self.page_size: int = int(knobs["page_size"])
        self.history_limit_mode: str = knobs["history_limit_mode"]
        if self.history_limit_mode not in HISTORY_MODES:
            raise ValueError(f"slack knobs.history_limit_mode must be one of {HISTORY_MODES}, "
                             f"got {self.history_limit_mode!r}")
        self.delivery_delay: float = float(knobs["delivery_delay"])
        self.query_string_tokens: bool = bool(knobs["query_string_tokens"])
        self.rate_limits: dict = knobs["rate_limits"]
        for method, entry in self.rate_limits["methods"].items():
            if isinstance(entry, str) and entry not in self.rate_limits["tiers"]:
                raise ValueError(f"slack knobs.rate_limits.methods[{method!r}] names unknown tier {entry!r}; "
                                 f"expected one of {sorted(self.rate_limits['tiers'])} or {{'limit', 'window'}}")
        self._rng = random.Random(knobs.get("seed", 0))
        self._failures: list[InjectedFailure] = []
        for entry in knobs.get("fail", []):
            self.inject_failure(entry.get("status"), method=entry.get("method"), error=entry.get("error"),
                                retry_after=entry.get("retry_after", 1), times=entry.get("times"))
        self._windows: dict[tuple, tuple[float, int]] = {}  # key -> (window start, count)
        self._requests: list[RecordedRequest] = []
        self.voices: dict = knobs.get("voices") or {}
        self.replies_for_bot_tokens: bool = bool(knobs.get("replies_for_bot_tokens", True))
        self._voices_since = self.clock.now()
        self._heard: set[tuple] = set()
        """What the voices already reacted to: ("incident", id), ("firing", index), ("real", i, k)."""

    @property
    def clock(self):
        return self.hub.clock

    # --- tokens and identity ---------------------------------------------------------------------

    def authenticate(self, token: str | None) -> TokenGrant:
        if not token:
            raise NotAuthed()
        for entry in self.tokens:
            if entry["token"] == token:
                return TokenGrant(entry["token"], tuple(entry.get("scopes", [])), entry["user_id"],
                                  entry.get("bot_id"))
        raise InvalidAuth()

    @property
    def default_token(self) -> str:
        """The verifier's (paymon's) reader token: the first in the world."""
        return self.tokens[0]["token"]

    def token_for(self, who: str) -> str:
        """The token of a bot, by bot/user name or ID (`"sentry"`, `"paymon"`, `"U07SENTRYBT"`)."""
        bot = self._bot(who)
        for entry in self.tokens:
            if entry.get("bot_id") == bot["id"]:
                return entry["token"]
        raise KeyError(f"no token for {who!r} in the slack world")

    def user(self, user_id: str) -> dict:
        for user in self.users:
            if user["id"] == user_id:
                return user
        raise KeyError(user_id)

    def _bot(self, who: str) -> dict:
        wanted = who.lower().lstrip("@")
        for bot in self.bots:
            user = next((u for u in self.users if u["id"] == bot.get("user_id")), {})
            if wanted in (bot["id"].lower(), bot["name"].lower(), bot.get("user_id", "").lower(),
                          user.get("name", "").lower()):
                return bot
        raise KeyError(f"no bot {who!r} in the slack world")

    def _bot_by_id(self, bot_id: str) -> dict:
        return next(b for b in self.bots if b["id"] == bot_id)

    def auth_test(self, grant: TokenGrant) -> dict:
        answer = {
            "ok": True,
            "url": f"https://{self.team['domain']}.slack.com/",
            "team": self.team["name"],
            "user": self.user(grant.user_id)["name"],
            "team_id": self.team["id"],
            "user_id": grant.user_id,
            "is_enterprise_install": False,
        }
        if grant.bot_id is not None:  # auth.test names a bot only for a bot token
            answer["bot_id"] = grant.bot_id
        return answer

    # --- conversations ---------------------------------------------------------------------------

    def resolve_channel(self, id_or_name: str) -> dict:
        """A channel by ID, `#name` or name (chat.postMessage accepts all three; conversations.*
        only IDs). Unknown: ChannelNotFound."""
        key = (id_or_name or "").strip()
        if key in self.channels:
            return self.channels[key]
        name = key.lstrip("#")
        for channel in self.channels.values():
            if channel["name"] == name:
                return channel
        raise ChannelNotFound()

    @staticmethod
    def conversation_type(channel: dict) -> str:
        if channel.get("is_im"):
            return "im"
        if channel.get("is_mpim"):
            return "mpim"
        return "private_channel" if channel.get("is_private") else "public_channel"

    def is_member(self, channel_id: str, user_id: str) -> bool:
        return user_id in self.members.get(channel_id, [])

    def _visible_channel(self, grant: TokenGrant, channel_id: str | None) -> dict:
        """The channel as the caller may see it: a private channel the caller is not in does not
        exist for it (channel_not_found, never a hint that it exists)."""
        channel = self.channels.get(channel_id or "")
        if channel is None:
            raise ChannelNotFound()
        if channel.get("is_private") and not self.is_member(channel["id"], grant.user_id):
            raise ChannelNotFound()
        return channel

    def _as_seen_by(self, channel: dict, user_id: str, num_members: bool = True) -> dict:
        seen = copy.deepcopy(channel)
        seen["is_member"] = self.is_member(channel["id"], user_id)
        if num_members:
            seen["num_members"] = len(self.members.get(channel["id"], []))
        return seen

    def list_conversations(self, grant: TokenGrant, types: list[str], exclude_archived: bool) -> list[dict]:
        unknown = [t for t in types if t not in CONVERSATION_TYPES]
        if unknown or not types:
            raise InvalidTypes()
        for conversation_type in types:
            grant.require(SCOPES["read"][conversation_type])
        found = []
        for channel in self.channels.values():
            kind = self.conversation_type(channel)
            if kind not in types:
                continue
            if kind != "public_channel" and not self.is_member(channel["id"], grant.user_id):
                continue  # private conversations are listed only to their members
            if exclude_archived and channel.get("is_archived"):
                continue
            found.append(self._as_seen_by(channel, grant.user_id))
        return found

    def conversation_info(self, grant: TokenGrant, channel_id: str | None, include_num_members: bool = False) -> dict:
        channel = self._visible_channel(grant, channel_id)
        grant.require(SCOPES["read"][self.conversation_type(channel)])
        return self._as_seen_by(channel, grant.user_id, num_members=include_num_members)

    def conversation_members(self, grant: TokenGrant, channel_id: str | None) -> list[str]:
        channel = self._visible_channel(grant, channel_id)
        grant.require(SCOPES["read"][self.conversation_type(channel)])
        return list(self.members.get(channel["id"], []))

    def history(self, grant: TokenGrant, channel_id: str | None, oldest: str | None = None,
                latest: str | None = None, inclusive: bool = False) -> list[dict]:
        """Visible channel messages newest first, thread replies left out unless broadcast.

        `oldest`/`latest` are exclusive unless `inclusive`; no `latest` means no upper bound (Slack's
        "now"; treating it as the clock's now would hide a message posted in the same microsecond)."""
        low = _parse_ts_bound(oldest, InvalidTsOldest)
        high = _parse_ts_bound(latest, InvalidTsLatest)
        channel = self._visible_channel(grant, channel_id)
        stored = self._readable(grant, channel)
        replies: dict[str, list[StoredMessage]] = {}
        for s in stored:
            if "thread_ts" in s.message and s.message["thread_ts"] != s.message["ts"]:
                replies.setdefault(s.message["thread_ts"], []).append(s)
        shown = []
        for s in stored:
            if not s.is_hidden_reply and _within(s.micros, low, high, inclusive):
                shown.append(s)
        shown.sort(key=lambda s: s.micros, reverse=True)
        return [_with_thread_summary(s.message, replies.get(s.message["ts"], [])) for s in shown]

    def replies(self, grant: TokenGrant, channel_id: str | None, ts: str | None, oldest: str | None = None,
                latest: str | None = None, inclusive: bool = False) -> list[dict]:
        """conversations.replies: the thread of `ts`, its parent first, then the visible replies
        oldest first (broadcast or not: this is where the replies history leaves out are read).
        A `ts` with no replies is "just the single message" (the method's docs). `oldest`/`latest`
        bound the replies; the parent always leads."""
        if ts is None or str(ts).strip() == "":
            raise InvalidArguments()
        try:
            wanted = ts_to_micros(str(ts).strip())
        except (InvalidOperation, ValueError):
            raise ThreadNotFound() from None
        low = _parse_ts_bound(oldest, InvalidTsOldest)
        high = _parse_ts_bound(latest, InvalidTsLatest)
        channel = self._visible_channel(grant, channel_id)
        if grant.bot_id is not None and not self.replies_for_bot_tokens:
            raise MissingScope(SCOPES["history"][self.conversation_type(channel)] + " (user token)",
                               list(grant.scopes))
        stored = self._readable(grant, channel)
        parent = next((s for s in stored if s.micros == wanted), None)
        if parent is None:
            raise ThreadNotFound()
        root_ts = parent.message.get("thread_ts", parent.message["ts"])
        if root_ts != parent.message["ts"]:  # a reply's ts: Slack answers with that thread
            parent = next((s for s in stored if s.message["ts"] == root_ts), parent)
        replies = sorted((s for s in stored if s.message.get("thread_ts") == parent.message["ts"]
                          and s.message["ts"] != parent.message["ts"]), key=lambda s: s.micros)
        shown = [r for r in replies if _within(r.micros, low, high, inclusive)]
        head = _with_thread_summary(parent.message, replies)
        if replies:
            head.setdefault("subscribed", False)
        return [head] + [copy.deepcopy(r.message) for r in shown]

    def _readable(self, grant: TokenGrant, channel: dict) -> list[StoredMessage]:
        """The channel's messages visible now, for a token allowed to read its history (history
        and replies alike: the scope of the conversation's type, and membership)."""
        grant.require(SCOPES["history"][self.conversation_type(channel)])
        if not self.is_member(channel["id"], grant.user_id):
            raise NotInChannel()
        self.hear_voices()
        now = self.clock.now()
        with self._lock:
            return [s for s in self._messages.get(channel["id"], []) if s.visible_at <= now]

    def history_page_cap(self) -> int | None:
        """At most this many messages per conversations.history call (non-Marketplace apps: 15)."""
        if self.history_limit_mode == "non_marketplace":
            return int(self.rate_limits["non_marketplace_history"]["max_items"])
        return None

    # --- posting ---------------------------------------------------------------------------------

    def post_message(self, channel: str, payload: dict, *, as_user: str = "sentry",
                     visible_at: float | None = None) -> dict:
        """Sentry's alert engine posting through its own Slack app (what its chat.postMessage does).

        The message is stored now and shown from `visible_at` (default: now + the `delivery_delay`
        knob); its `ts` is that time. Raises the SlackAPIError Slack would answer (channel_not_found,
        is_archived, not_in_channel, missing_scope, no_text, invalid_blocks, ...). Returns a copy of
        the stored message."""
        bot = self._bot(as_user)
        grant = self.authenticate(self.token_for(bot["id"]))
        when = self.clock.now() + self.delivery_delay if visible_at is None else float(visible_at)
        _channel, message = self._post(grant, channel, payload, when)
        return message

    def chat_post_message(self, grant: TokenGrant, payload: dict) -> tuple[str, dict]:
        """chat.postMessage over HTTP: visible at once. Returns (channel id, message)."""
        return self._post(grant, payload.get("channel"), payload, self.clock.now())

    def _post(self, grant: TokenGrant, channel_ref, payload: dict, visible_at: float) -> tuple[str, dict]:
        # Slack's order: the channel is resolved first, then the token's right to write to it.
        channel = self._visible_channel(grant, self.resolve_channel(str(channel_ref or ""))["id"])
        grant.require(WRITE_SCOPE)
        if channel.get("is_archived"):
            raise IsArchived()
        if not self.is_member(channel["id"], grant.user_id) and WRITE_PUBLIC_SCOPE not in grant.scopes:
            raise NotInChannel()
        content = _message_content(payload, self._rng)
        with self._lock:
            ts = self._unique_ts(channel["id"], visible_at)
            message = {"user": grant.user_id, "type": "message", "ts": ts, "text": content["text"],
                       "team": self.team["id"]}
            if grant.bot_id is not None:  # a bot's post names its bot and app; a person's does not
                bot = self._bot_by_id(grant.bot_id)
                message.update({"bot_id": bot["id"], "app_id": bot["app_id"],
                                "bot_profile": {k: v for k, v in bot.items() if k != "user_id"}})
            if content.get("thread_ts"):
                message["thread_ts"] = content["thread_ts"]
                parent = next((s.message for s in self._messages.get(channel["id"], [])
                               if s.message["ts"] == content["thread_ts"]), None)
                if parent is not None and parent.get("user"):
                    message["parent_user_id"] = parent["user"]
                if content.get("reply_broadcast"):
                    # A reply sent with reply_broadcast=true is also shown in the channel, as subtype
                    # thread_broadcast carrying its `root` (docs.slack.dev events/message/thread_broadcast).
                    message["subtype"] = "thread_broadcast"
                    if parent is not None:
                        message["root"] = {k: copy.deepcopy(v) for k, v in parent.items()
                                           if k in ("user", "type", "ts", "text", "bot_id", "app_id", "team")}
            for key in ("blocks", "attachments", "metadata"):
                if key in content:
                    message[key] = content[key]
            self._messages.setdefault(channel["id"], []).append(StoredMessage(channel["id"], message, visible_at))
        return channel["id"], copy.deepcopy(message)

    def _unique_ts(self, channel_id: str, when: float) -> str:
        """`ts` is the message ID within its channel: the visible time, nudged by a microsecond when
        another message already holds it (a frozen clock posts many messages at one instant)."""
        taken = {s.micros for s in self._messages.get(channel_id, [])}
        micros = round(when * 1_000_000)
        while micros in taken:
            micros += 1
        return micros_to_ts(micros)

    def messages(self, channel: str, *, visible_only: bool = False) -> list[dict]:
        """Every message stored in a channel (ID or name), oldest first, thread replies and
        not-yet-delivered posts included (unless `visible_only`). Copies: edit the world via the API."""
        channel_id = self.resolve_channel(channel)["id"]
        self.hear_voices()
        now = self.clock.now()
        with self._lock:
            stored = sorted(self._messages.get(channel_id, []), key=lambda s: s.micros)
            return [copy.deepcopy(s.message) for s in stored if not visible_only or s.visible_at <= now]

    def pending_messages(self, channel: str) -> list[tuple[float, dict]]:
        """(visible_at, message) of posts not delivered yet, soonest first."""
        channel_id = self.resolve_channel(channel)["id"]
        now = self.clock.now()
        with self._lock:
            pending = [s for s in self._messages.get(channel_id, []) if s.visible_at > now]
            return [(s.visible_at, copy.deepcopy(s.message)) for s in sorted(pending, key=lambda s: s.visible_at)]

    # --- other voices (knob `voices`) ------------------------------------------------------------

    def hear_voices(self) -> None:
        """Post what the other voices have said by now (lazily, like everything clock-driven here:
        reads call it first). The other emulators are read outside this backend's lock, because
        Sentry's alert engine posts here while it holds its own."""
        if not self.voices or not self.voices.get("enabled", True):
            return
        now = self.clock.now()
        self._hear_pagerduty_app(self.voices.get("pagerduty_app"))
        self._hear_people(self.voices.get("people"))
        for index, voice in enumerate(self.voices.get("real_firings") or ()):
            self._hear_real_firing(index, voice, now)

    def _say(self, grant: TokenGrant | None, channel: str, payload: dict, at: float) -> dict | None:
        """Post as another voice; what Slack would refuse (archived, not a member, unknown channel)
        is dropped, as the other app or person would see an error and move on."""
        if grant is None:
            return None
        try:
            return self._post(grant, channel, payload, at)[1]
        except SlackAPIError:
            return None

    def _bot_grant(self, who: str) -> TokenGrant | None:
        try:
            return self.authenticate(self.token_for(who))
        except (KeyError, SlackAPIError):
            return None

    def _person_grant(self, user_id: str) -> TokenGrant | None:
        """A person typing in the Slack client (their own session: no app, no bot)."""
        if not any(u["id"] == user_id and not u.get("is_bot") for u in self.users):
            return None
        return TokenGrant("", (WRITE_SCOPE,), user_id)

    def _heard_once(self, key: tuple) -> bool:
        with self._lock:
            if key in self._heard:
                return True
            self._heard.add(key)
            return False

    def _hear_pagerduty_app(self, voice: dict | None) -> None:
        pagerduty = self.hub.backends.get("pagerduty")
        if not voice or pagerduty is None:
            return
        grant = self._bot_grant(voice.get("bot", "pagerduty"))
        services = voice.get("services") or {}
        for incident in pagerduty.incidents:
            channels = services.get(incident.service_id)
            if not channels or incident.created_at < self._voices_since or self._heard_once(("incident", incident.id)):
                continue
            domain = self.team.get("domain", "example")
            link = f"https://{domain}.pagerduty.com/incidents/{incident.id}"
            text = f"Triggered: <{link}|[#{incident.number}] {incident.title}>"
            attachment = {"color": "#A80000" if incident.urgency == "high" else "#F4B400", "fields": [
                {"title": "Urgency", "value": incident.urgency.title(), "short": True},
                {"title": "Assigned", "value": "on-call", "short": True}]}
            for channel in channels:
                self._say(grant, channel, {"text": text, "attachments": [attachment]},
                          incident.created_at + float(voice.get("delay", 2.0)))

    def _hear_people(self, voice: dict | None) -> None:
        sentry = self.hub.backends.get("sentry")
        if not voice or sentry is None:
            return
        grant = self._person_grant(voice.get("user", ""))
        wanted = voice.get("alerts")
        for index, firing in enumerate(sentry.alert_firings):
            if firing.level == "resolved" or firing.at < self._voices_since:
                continue
            if wanted is not None and firing.alert not in wanted:
                continue
            if self._heard_once(("firing", index)):
                continue
            question = f"is anyone looking at *{firing.level.title()}: {firing.alert}*?"
            issue = sentry.events.issues.get(firing.issue_id or "") if voice.get("quote_issue") else None
            quoted = f' "{issue.title}"' if issue is not None else ""
            blocks = [{"type": "rich_text", "elements": [{"type": "rich_text_section", "elements": [
                {"type": "text", "text": "is anyone looking at "},
                {"type": "text", "text": f"{firing.level.title()}: {firing.alert}", "style": {"bold": True}},
                {"type": "text", "text": "?" + quoted}]}]}]
            question += quoted
            for channel in voice.get("channels") or ():
                self._say(grant, channel, {"text": question, "blocks": blocks},
                          firing.at + float(voice.get("delay", 30.0)))

    def _hear_real_firing(self, index: int, voice: dict, now: float) -> None:
        """Sentry's own posts for real traffic, threaded as Sentry threads a metric alert's
        notifications (one thread per incident; a critical reply broadcast, the resolution not:
        getsentry/sentry integrations/slack/utils/notifications.py, verified-2026-12 §10)."""
        grant = self._bot_grant("sentry")
        every = float(voice.get("every", 21600.0))
        first = self._voices_since + float(voice.get("first_after", every))
        if grant is None or every <= 0 or now < first:
            return
        horizon = float(self.voices.get("horizon", 3600.0))
        start = max(0, math.ceil((now - horizon - first) / every))
        for k in range(start, int((now - first) // every) + 1):
            if self._heard_once(("real", index, k)):
                continue
            at = first + k * every
            alert, channel = voice["alert"], voice["channel"]
            parent = self._say(grant, channel, self._sentry_metric_post(alert, "warning", at, k), at)
            if parent is None:
                continue
            critical = {**self._sentry_metric_post(alert, "critical", at, k), "thread_ts": parent["ts"],
                        "reply_broadcast": True}
            self._say(grant, channel, critical, at + float(voice.get("escalate_after", 120.0)))
            resolved = {**self._sentry_metric_post(alert, "resolved", at, k), "thread_ts": parent["ts"]}
            self._say(grant, channel, resolved, at + float(voice.get("resolve_after", 900.0)))

    def _sentry_metric_post(self, alert: str, level: str, started: float, number: int) -> dict:
        domain = self.team.get("domain", "example")
        link = (f"https://{domain}.sentry.io/organizations/{domain}/alerts/rules/details/0/"
                f"?alert=real-{number}&referrer=metric_alert_slack&detection_type=static")
        colors = {"critical": "#FA4747", "warning": "#FFC227", "resolved": "#4DC771"}
        body = f"real traffic\n<!date^{int(started)}^Started: {{date_pretty}} at {{time}} | Sentry Incident>"
        return {"text": f"<{link}|*{level.title()}: {alert}*>",
                "attachments": [{"color": colors[level],
                                 "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": body}}]}]}

    # --- changing the workspace (faults) ---------------------------------------------------------

    def archive(self, channel: str) -> None:
        self.resolve_channel(channel)["is_archived"] = True

    def unarchive(self, channel: str) -> None:
        self.resolve_channel(channel)["is_archived"] = False

    def add_member(self, channel: str, user_id: str) -> None:
        with self._lock:
            members = self.members.setdefault(self.resolve_channel(channel)["id"], [])
            if user_id not in members:
                members.append(user_id)

    def remove_member(self, channel: str, user_id: str) -> None:
        """Kick a user (e.g. the Sentry bot or paymon's reader) out of a channel."""
        with self._lock:
            members = self.members.get(self.resolve_channel(channel)["id"], [])
            if user_id in members:
                members.remove(user_id)

    # --- injected failures -----------------------------------------------------------------------

    def inject_failure(self, status: int | None = None, *, method: str | None = None, error: str | None = None,
                       retry_after: int = 1, times: int | None = 1) -> None:
        """Make the next `times` calls of methods matching the regex `method` (None: any) fail:
        `status` 429 (+ `Retry-After: retry_after`), 5xx, or `error` as an HTTP-200 ok:false answer
        (e.g. "token_revoked", "account_inactive"). times=None: until reset()."""
        if status is None and error is None:
            raise ValueError("inject_failure needs a status or an error code")
        with self._lock:
            self._failures.append(InjectedFailure(
                re.compile(method) if method else None, int(status or 200), error, int(retry_after),
                None if times is None else int(times)))

    def take_failure(self, method: str) -> SlackAPIError | None:
        with self._lock:
            for failure in self._failures:
                if failure.matches(method):
                    if failure.times is not None:
                        failure.times -= 1
                        if failure.times <= 0:
                            self._failures.remove(failure)
                    return failure.as_error()
        return None

    # --- rate limits -----------------------------------------------------------------------------

    def rate_rule(self, method: str) -> RateRule | None:
        # The 2025-05-29 change limits both history and replies for non-Marketplace apps (§10).
        if method in ("conversations.history", "conversations.replies") and self.history_limit_mode == "non_marketplace":
            rule = self.rate_limits["non_marketplace_history"]
            return RateRule(int(rule["limit"]), float(rule["window"]))
        entry = self.rate_limits["methods"].get(method)
        if entry is None:
            return None
        if isinstance(entry, str):  # a tier name
            return RateRule(int(self.rate_limits["tiers"][entry]), float(self.rate_limits["window"]))
        return RateRule(int(entry["limit"]), float(entry.get("window", self.rate_limits["window"])),
                        bool(entry.get("per_channel", False)))

    def count_call(self, grant: TokenGrant, method: str, channel: str | None = None) -> None:
        """Count one call in the caller's fixed window; RateLimited once the window is full.

        Slack limits per method, per workspace, per app — so the key is the app's bot, not the token
        string — and chat.postMessage additionally per channel."""
        rule = self.rate_rule(method)
        if rule is None:
            return
        now = self.clock.now()
        key = (grant.bot_id or grant.user_id, method, channel if rule.per_channel else None)
        window_start = math.floor(now / rule.window) * rule.window
        with self._lock:
            start, count = self._windows.get(key, (window_start, 0))
            if start != window_start:
                count = 0
            if count >= rule.limit:
                raise RateLimited(math.ceil(window_start + rule.window - now))
            self._windows[key] = (window_start, count + 1)

    # --- request log -----------------------------------------------------------------------------

    def record_request(self, method: str, http_method: str, params: dict, status: int, error: str | None) -> None:
        kept = tuple((k, str(v)) for k, v in params.items() if k != "token")
        with self._lock:
            self._requests.append(RecordedRequest(method, http_method, kept, status, error))

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def request_count(self, method: str | None = None, *, status: int | None = None,
                      error: str | None = None) -> int:
        """How many Web API calls were served whose method matches the regex `method` (and status/error)."""
        pattern = re.compile(method) if method else None
        return sum(1 for r in self.requests
                   if (pattern is None or pattern.search(r.method))
                   and (status is None or r.status == status)
                   and (error is None or r.error == error))


# --- message content -----------------------------------------------------------------------------

def _message_content(payload: dict, rng: random.Random) -> dict:
    """Validate chat.postMessage arguments and normalise them the way Slack stores them."""
    text = payload.get("text")
    text = "" if text is None else str(text)
    blocks = _json_list(payload.get("blocks"), InvalidBlocks)
    attachments = _json_list(payload.get("attachments"), InvalidBlocks)
    if blocks is not None and any(not isinstance(b, dict) or "type" not in b for b in blocks):
        raise InvalidBlocks()
    if attachments is not None:
        if any(not isinstance(a, dict) for a in attachments):
            raise InvalidBlocks()
        if len(attachments) > MAX_ATTACHMENTS:
            raise TooManyAttachments()
    if not text and not blocks and not attachments:
        raise NoText()
    if len(text) > MAX_TEXT_LENGTH:
        raise MsgTooLong()
    content: dict = {"text": text}
    if blocks:
        content["blocks"] = [_normalise_block(b, rng) for b in blocks]
    if attachments:
        content["attachments"] = [_normalise_attachment(a, i, rng) for i, a in enumerate(attachments, start=1)]
    if payload.get("thread_ts"):
        content["thread_ts"] = str(payload["thread_ts"])
        content["reply_broadcast"] = _truthy(payload.get("reply_broadcast"))
    metadata = payload.get("metadata")
    if isinstance(metadata, str) and metadata:
        try:
            metadata = json.loads(metadata)
        except ValueError:
            metadata = None
    if isinstance(metadata, dict):
        content["metadata"] = metadata
    return content


def _json_list(value, error: type[SlackAPIError]) -> list | None:
    """slack-sdk (and Sentry) send blocks/attachments as a JSON *string*; accept arrays too."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise error() from None
    if not isinstance(value, list):
        raise error()
    return value


def _truthy(value) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes")


_BLOCK_ID_ALPHABET = string.ascii_letters + string.digits


def _normalise_block(block: dict, rng: random.Random) -> dict:
    """What Slack reads back: a block_id on every block (random when none was sent), and
    `verbatim: false` / `emoji: true` filled into text objects — so verifiers must not compare
    blocks for equality with what was posted."""
    block = _normalise_text_objects(copy.deepcopy(block))
    if "block_id" in block:
        return block
    generated = "".join(rng.choice(_BLOCK_ID_ALPHABET) for _ in range(5))
    # Slack puts block_id right after type when it reads a block back.
    return {"type": block["type"], "block_id": generated, **{k: v for k, v in block.items() if k != "type"}}


def _normalise_text_objects(node):
    if isinstance(node, list):
        return [_normalise_text_objects(n) for n in node]
    if not isinstance(node, dict):
        return node
    node = {k: _normalise_text_objects(v) for k, v in node.items()}
    if node.get("type") == "mrkdwn" and isinstance(node.get("text"), str):
        node.setdefault("verbatim", False)
    elif node.get("type") == "plain_text" and isinstance(node.get("text"), str):
        node.setdefault("emoji", True)
    return node


def _normalise_attachment(attachment: dict, index: int, rng: random.Random) -> dict:
    stored = copy.deepcopy(attachment)
    stored.setdefault("id", index)
    if isinstance(stored.get("color"), str):
        stored["color"] = stored["color"].lstrip("#")  # Slack returns hex colours without '#'
    if "blocks" in stored and isinstance(stored["blocks"], list):
        stored["blocks"] = [_normalise_block(b, rng) for b in stored["blocks"] if isinstance(b, dict)]
    if not stored.get("fallback"):
        stored["fallback"] = stored.get("text") or "[no preview available]"
    return stored


def _with_thread_summary(message: dict, replies: list[StoredMessage]) -> dict:
    """A thread parent as history shows it once replies are visible: reply_count, latest_reply..."""
    shown = copy.deepcopy(message)
    if replies:
        ordered = sorted(replies, key=lambda s: s.micros)
        users = list(dict.fromkeys(r.message.get("user") for r in ordered if r.message.get("user")))
        shown.update({"thread_ts": message["ts"], "reply_count": len(ordered), "reply_users_count": len(users),
                      "latest_reply": ordered[-1].message["ts"], "reply_users": users})
    return shown


def _merge(defaults: dict, overrides: dict) -> dict:
    """Knobs: nested dicts merge key by key (a world can change one tier), everything else replaces."""
    merged = copy.deepcopy(defaults)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged
