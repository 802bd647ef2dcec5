"""Slack Web API errors, one class per real error code.

Slack answers almost every failure with **HTTP 200** and `{"ok": false, "error": "<code>"}`; only rate
limiting (429 + `Retry-After`), unknown methods (404) and server trouble (5xx) change the status.
Codes and wording: the method pages on docs.slack.dev and slack-api.md §4.

    SlackAPIError                      ok:false, HTTP 200 unless `status` says otherwise
    ├── NotAuthed, InvalidAuth         token missing / unknown
    ├── MissingScope                   + `needed` / `provided`
    ├── ChannelNotFound, NotInChannel, IsArchived
    ├── InvalidCursor, InvalidLimit, InvalidTsOldest, InvalidTsLatest, InvalidTypes
    ├── ThreadNotFound, InvalidArguments   (conversations.replies)
    ├── NoText, InvalidBlocks, TooManyAttachments, MsgTooLong   (chat.postMessage)
    ├── InvalidJson, JsonNotObject, InvalidFormData   an unreadable body
    ├── UnknownMethod                  HTTP 404
    ├── RateLimited                    HTTP 429 + Retry-After
    └── ServerError                    HTTP 5xx (injected: Slack's own trouble)
"""

from __future__ import annotations


class SlackAPIError(Exception):
    error = "fatal_error"
    status = 200

    def __init__(self, **extra):
        super().__init__(self.error)
        self.extra = extra
        self.headers: dict[str, str] = {}

    def body(self) -> dict:
        return {"ok": False, "error": self.error, **self.extra}


class NotAuthed(SlackAPIError):
    """No token in the Authorization header or the POST body."""

    error = "not_authed"


class InvalidAuth(SlackAPIError):
    """A token was sent but Slack does not know it (also: revoked, wrong workspace)."""

    error = "invalid_auth"


class MissingScope(SlackAPIError):
    error = "missing_scope"

    def __init__(self, needed: str, provided: list[str]):
        # Slack lists the token's scopes comma-separated, in the order they were granted.
        super().__init__(needed=needed, provided=",".join(provided))


class ChannelNotFound(SlackAPIError):
    """Unknown ID, or a private channel the caller is not in (Slack does not say which)."""

    error = "channel_not_found"


class NotInChannel(SlackAPIError):
    """A public channel the caller's bot user has not joined."""

    error = "not_in_channel"


class IsArchived(SlackAPIError):
    error = "is_archived"


class InvalidCursor(SlackAPIError):
    error = "invalid_cursor"


class InvalidLimit(SlackAPIError):
    error = "invalid_limit"


class InvalidTsOldest(SlackAPIError):
    error = "invalid_ts_oldest"


class InvalidTsLatest(SlackAPIError):
    error = "invalid_ts_latest"


class InvalidTypes(SlackAPIError):
    """conversations.list `types` holds something other than the four conversation types."""

    error = "invalid_types"


class ThreadNotFound(SlackAPIError):
    """conversations.replies: `ts` names no message of the channel."""

    error = "thread_not_found"


class InvalidArguments(SlackAPIError):
    """A required argument is missing (conversations.replies without `ts`)."""

    error = "invalid_arguments"


class NoText(SlackAPIError):
    """chat.postMessage without text, blocks or attachments."""

    error = "no_text"


class InvalidBlocks(SlackAPIError):
    error = "invalid_blocks"


class TooManyAttachments(SlackAPIError):
    error = "too_many_attachments"


class MsgTooLong(SlackAPIError):
    error = "msg_too_long"


class InvalidFormData(SlackAPIError):
    error = "invalid_form_data"


class InvalidJson(SlackAPIError):
    error = "invalid_json"


class JsonNotObject(SlackAPIError):
    error = "json_not_object"


class UnknownMethod(SlackAPIError):
    """`/api/<name>` that is no Web API method: Slack answers 404 and echoes the name."""

    error = "unknown_method"
    status = 404

    def __init__(self, method: str):
        super().__init__(req_method=method)


class RateLimited(SlackAPIError):
    """429; `Retry-After` holds whole seconds until the caller's window for the method reopens."""

    error = "ratelimited"
    status = 429

    def __init__(self, retry_after: int):
        super().__init__()
        self.retry_after = max(1, int(retry_after))
        self.headers = {"Retry-After": str(self.retry_after)}


class ServerError(SlackAPIError):
    """Slack's own trouble (only ever injected). Slack's generic codes: `fatal_error` for 500,
    `service_unavailable` for the others."""

    def __init__(self, status: int):
        super().__init__()
        self.status = int(status)
        self.error = "fatal_error" if self.status == 500 else "service_unavailable"


class InjectedError(SlackAPIError):
    """An injected `{"ok": false, "error": <any code>}` at HTTP 200 (e.g. `token_revoked`)."""

    def __init__(self, error: str):
        super().__init__()
        self.error = error
