"""Reading Slack with slack-sdk: channels, membership, and the history Sentry's alerts land in.

paymon never posts to Slack. Slack's errors are HTTP 200 with `ok: false`; configuration errors
(`invalid_auth`, `missing_scope`) become `AuthError` with the fix, `ratelimited` (HTTP 429) is
surfaced as `SlackRateLimited` so the poller can wait what Slack asks, within its deadline.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler

from paymon.errors import AuthError, ServiceError, TargetUnavailable
from paymon.config.settings import SlackSettings, redact



MAX_PAGES = 200
"""At most this many pages of one list (200 x 200 channels or members; 20,000 messages of a channel's
window): far beyond what paymon reads, well short of for ever."""


class SlackRateLimited(TargetUnavailable):
    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


def find_channel(channels: list[dict], name: str) -> dict | None:
    wanted = name.lstrip("#")
    return next((c for c in channels if c.get("name") == wanted), None)


def message_texts(message: dict) -> Iterator[str]:
    """Every piece of text a person sees in a message: fallback, blocks, attachments."""
    yield message.get("text") or ""

    def walk(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("text", "fallback", "pretext", "title", "value") and isinstance(value, str):
                    yield value
                else:
                    yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    yield from walk(message.get("blocks") or [])
    yield from walk(message.get("attachments") or [])


def contains(message: dict, marker: str) -> bool:
    return any(marker in html.unescape(text) for text in message_texts(message))


def app_of(message: dict) -> str | None:
    """The Slack app that posted `message` (`app_id`, or `bot_profile.app_id`); None for a person
    (no bot) and for a classic webhook's `bot_message` without an app."""
    return message.get("app_id") or (message.get("bot_profile") or {}).get("app_id") or None


@dataclass
class SentryApp:
    """Which posts are Sentry's: those of Sentry's Slack app, matched on `app_id` /
    `bot_profile.app_id`, never on the user name or the text (verified-2026-12 §11: "Use the app_id
    field to identify whether a bot belongs to your Slack app"). A channel also holds PagerDuty's
    app, people and other bots naming the same alerts (issue 13 item 2).

    The app is known by its id, or learnt from a post by its bot user (`integrations.slack.
    sentry_bot_user` in monitoring.yaml, the Member ID of Sentry's app in the workspace): that post's
    `app_id` is Sentry's app."""

    bot_user: str | None = None
    app_id: str | None = None

    @property
    def known(self) -> bool:
        return bool(self.app_id or self.bot_user)

    def learn(self, messages: list[dict]) -> None:
        if self.app_id is None and self.bot_user:
            for message in messages:
                if message.get("user") == self.bot_user and app_of(message):
                    self.app_id = app_of(message)
                    return

    def posted(self, message: dict) -> bool:
        """Whether Sentry's app posted `message` (call `learn` with the page first)."""
        app = app_of(message)
        return app is not None and app == self.app_id

    def describe(self) -> str:
        return f"app {self.app_id}" if self.app_id else f"bot user {self.bot_user}"


class SlackReader:
    def __init__(self, settings: SlackSettings, timeout: float = 10.0):
        self.settings = settings
        self.request_count = 0
        self._client = WebClient(token=settings.token.get_secret_value(), base_url=settings.base_url,
                                 timeout=int(timeout), retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=2)])

    def __repr__(self) -> str:
        return f"SlackReader(base_url={self.settings.base_url!r})"

    def _call(self, method: str, **params) -> dict:
        self.request_count += 1
        try:
            return getattr(self._client, method.replace(".", "_"))(**params).data
        except SlackApiError as exc:
            raise self._error(method, exc) from None
        except OSError as exc:
            raise ServiceError(f"cannot reach Slack at {self.settings.base_url} ({method}): {exc}") from None

    def _error(self, method: str, exc: SlackApiError) -> Exception:
        response = exc.response
        code = (response.data or {}).get("error") if isinstance(response.data, dict) else None
        secret = [self.settings.token]
        if response.status_code == 429 or code == "ratelimited":
            wait = float(response.headers.get("Retry-After", response.headers.get("retry-after", 1)) or 1)
            return SlackRateLimited(f"Slack rate-limited {method} (retry after {wait:g}s)", wait)
        if code in ("invalid_auth", "not_authed", "account_inactive", "token_revoked"):
            return AuthError(f"Slack rejected the bot token ({code}) at {method} — check SLACK_BOT_TOKEN")
        if code == "missing_scope":
            needed = response.data.get("needed", "?")
            return AuthError(f"the Slack bot token lacks the scope {needed} for {method} — add it to the app")
        return TargetUnavailable(redact(f"Slack answered {method} with {code or response.status_code}", secret))

    def auth(self) -> dict:
        return self._call("auth.test")

    def _pages(self, method: str, key: str, *, until_no_more: bool = False, **params) -> list:
        """Every item of a cursor-paginated method, within `MAX_PAGES` and never following a cursor
        twice: a misbehaving answer (or proxy) must not turn a check into an endless loop."""
        items, cursor, followed = [], None, set()
        for _ in range(MAX_PAGES):
            page = self._call(method, cursor=cursor, **params)
            items += page.get(key) or []
            cursor = (page.get("response_metadata") or {}).get("next_cursor")
            if not cursor or (until_no_more and not page.get("has_more")):
                return items
            if cursor in followed:
                raise ServiceError(f"Slack answered {method} with a cursor it had already given: stopped after "
                                   f"{len(followed) + 1} pages instead of looping")
            followed.add(cursor)
        raise ServiceError(f"Slack's {method} did not end within {MAX_PAGES} pages: stopped")

    def channels(self) -> list[dict]:
        return self._pages("conversations.list", "channels", types="public_channel,private_channel",
                           exclude_archived=False, limit=200)

    def channel_by_name(self, name: str) -> dict | None:
        return find_channel(self.channels(), name)

    def channel_info(self, channel_id: str) -> dict:
        """conversations.info, read fresh (is_archived as of now)."""
        return self._call("conversations.info", channel=channel_id).get("channel") or {}

    def members(self, channel_id: str) -> list[str]:
        return self._pages("conversations.members", "members", channel=channel_id, limit=200)

    def history(self, channel_id: str, oldest: float) -> list[dict]:
        """Messages since `oldest` (epoch seconds), newest first; one call per page."""
        return self._pages("conversations.history", "messages", until_no_more=True, channel=channel_id,
                           oldest=f"{oldest:.6f}", limit=100)

    # --- people (issue 15 item 4: the on-call engineer can see #payments-alerts) ----------------------

    def user_by_email(self, email: str) -> dict | None:
        """The workspace user with this e-mail (`users.lookupByEmail`, scope users:read.email;
        verified-2026-12 §9), or None when there is none (`users_not_found`; old docs spell it
        `user_not_found`)."""
        self.request_count += 1
        try:
            return self._client.users_lookupByEmail(email=email).data.get("user")
        except SlackApiError as exc:
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            if data.get("error") in ("users_not_found", "user_not_found"):
                return None
            raise self._error("users.lookupByEmail", exc) from None
        except OSError as exc:
            raise ServiceError(f"cannot reach Slack at {self.settings.base_url} (users.lookupByEmail): {exc}") from None
