"""HTTP side of the emulated Slack Web API: parse the call, ask the backend, serialise the answer.

Every call goes through `SlackResponse.dispatch`, in the order Slack applies: method lookup (404
`unknown_method`), injected failures (standing in for Slack's own trouble), authentication
(`not_authed` / `invalid_auth`), the per-app, per-method rate limit (429 + `Retry-After`), then the
method itself (scopes, channel checks, pagination). Failures other than 404/429/5xx are HTTP 200 with
`{"ok": false, "error": ...}`.

Arguments are read like Slack reads them: query string for GET, and for POST the query string plus
a form (`application/x-www-form-urlencoded`, multipart) or JSON body. The token comes from
`Authorization: Bearer …` or a `token` field of a form body; a `token` in the query string is refused
(apps created after 2021-02-24) unless the world's `query_string_tokens` knob allows it, and a JSON
body's `token` is ignored (Slack needs the header with JSON).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from paymon.sandbox.slack.exceptions import (
    InvalidCursor,
    InvalidFormData,
    InvalidJson,
    InvalidLimit,
    JsonNotObject,
    SlackAPIError,
    UnknownMethod,
)
from paymon.sandbox.slack.models import SCOPES, WRITE_SCOPE, SlackBackend, TokenGrant, ts_to_micros
from paymon.sandbox.slack.urls import Method


class SlackJSONResponse(JSONResponse):
    media_type = "application/json; charset=utf-8"  # what slack.com sends


DEFAULT_LIMIT = 100
MAX_LIST_LIMIT = 1000  # conversations.list / .members: "a limit value under 1000" is recommended
MAX_HISTORY_LIMIT = 999
MAX_REPLIES_LIMIT = 1000  # conversations.replies: default and most per page (docs.slack.dev), 15 for non-Marketplace apps


class SlackResponse:
    def __init__(self, backend: SlackBackend):
        self.backend = backend

    # --- the request pipeline --------------------------------------------------------------------

    async def dispatch(self, request: Request, method: Method | None) -> Response:
        name = request.path_params["method"]
        params: dict = {}
        status, error = 500, None  # what the log keeps if the emulator itself breaks
        try:
            try:
                params, body_token = await _read_arguments(request)
                unreadable = None
            except SlackAPIError as failure:
                body_token, unreadable = None, failure
            response = self._respond(request, name, method, params, body_token, unreadable)
            status = response.status_code
            answer = json.loads(response.body)
            error = None if answer.get("ok") is True else answer.get("error")
            return response
        finally:
            self.backend.record_request(name, request.method, params, status, error)

    def _respond(self, request: Request, name: str, method: Method | None, params: dict,
                 body_token: str | None, unreadable: SlackAPIError | None) -> Response:
        grant: TokenGrant | None = None
        try:
            if method is None:
                raise UnknownMethod(name)
            if unreadable is not None:
                raise unreadable
            injected = self.backend.take_failure(name)
            if injected is not None:
                raise injected
            grant = self.backend.authenticate(self._token(request, body_token))
            self.backend.count_call(grant, name, channel=self._channel_key(params.get("channel")))
            body = getattr(self, method.handler)(grant, params)
            return SlackJSONResponse(body, headers=self._headers(grant, method))
        except SlackAPIError as failure:
            headers = {**self._headers(grant, method), **failure.headers}
            return SlackJSONResponse(failure.body(), status_code=failure.status, headers=headers)

    def _token(self, request: Request, body_token: str | None) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, credentials = header.strip().partition(" ")
        if scheme.lower() == "bearer" and credentials.strip():
            return credentials.strip()
        if body_token:
            return body_token
        if self.backend.query_string_tokens:
            return request.query_params.get("token")
        return None

    def _channel_key(self, channel) -> str | None:
        """chat.postMessage is limited per channel; `#name` and the ID count as the same channel."""
        if not channel:
            return None
        try:
            return self.backend.resolve_channel(str(channel))["id"]
        except SlackAPIError:
            return str(channel)

    @staticmethod
    def _headers(grant: TokenGrant | None, method: Method | None) -> dict[str, str]:
        # Slack tells every caller which scopes it holds and which scopes the method accepts.
        headers = {"X-Slack-Req-Id": secrets.token_hex(16)}
        if grant is not None:
            headers["X-OAuth-Scopes"] = ",".join(grant.scopes)
        if method is not None and method.scope_kind is not None:
            accepted = [WRITE_SCOPE] if method.scope_kind == "write" else list(SCOPES[method.scope_kind].values())
            headers["X-Accepted-OAuth-Scopes"] = ",".join(accepted)
        return headers

    # --- handlers --------------------------------------------------------------------------------

    def auth_test(self, grant: TokenGrant, params: dict) -> dict:
        return self.backend.auth_test(grant)

    def conversations_list(self, grant: TokenGrant, params: dict) -> dict:
        types = [t.strip() for t in str(params.get("types") or "public_channel").split(",") if t.strip()]
        channels = self.backend.list_conversations(grant, types, _truthy(params.get("exclude_archived")))
        limit = self._limit(params, DEFAULT_LIMIT, MAX_LIST_LIMIT)
        page, next_cursor = _page_by_id(channels, params.get("cursor"), limit, "channel", lambda c: c["id"])
        return {"ok": True, "channels": page, "response_metadata": {"next_cursor": next_cursor}}

    def conversations_info(self, grant: TokenGrant, params: dict) -> dict:
        channel = self.backend.conversation_info(grant, params.get("channel"),
                                                 include_num_members=_truthy(params.get("include_num_members")))
        return {"ok": True, "channel": channel}

    def conversations_members(self, grant: TokenGrant, params: dict) -> dict:
        members = self.backend.conversation_members(grant, params.get("channel"))
        limit = self._limit(params, DEFAULT_LIMIT, MAX_LIST_LIMIT)
        page, next_cursor = _page_by_id(members, params.get("cursor"), limit, "user", lambda u: u)
        return {"ok": True, "members": page, "response_metadata": {"next_cursor": next_cursor}}

    def conversations_history(self, grant: TokenGrant, params: dict) -> dict:
        cap = self.backend.history_page_cap()
        # Non-Marketplace apps: 15 is both the default and the maximum (larger limits are cut, not refused).
        limit = self._limit(params, cap or DEFAULT_LIMIT, cap or MAX_HISTORY_LIMIT)
        messages = self.backend.history(grant, params.get("channel"), oldest=params.get("oldest"),
                                        latest=params.get("latest"), inclusive=_truthy(params.get("inclusive")))
        start = _history_cursor_start(messages, params.get("cursor"))
        page = messages[start:start + limit]
        has_more = start + limit < len(messages)
        body = {"ok": True, "messages": page, "has_more": has_more, "pin_count": 0,
                "channel_actions_ts": None, "channel_actions_count": 0}
        if has_more:
            # Slack's history cursor: base64 of "next_ts:<ts without the dot>" of the next message.
            next_micros = ts_to_micros(messages[start + limit]["ts"])
            body["response_metadata"] = {"next_cursor": _encode_cursor(f"next_ts:{next_micros}")}
        return body

    def conversations_replies(self, grant: TokenGrant, params: dict) -> dict:
        """The thread, oldest first (parent leading), paged like history but forwards: the cursor
        names the next message's ts. Non-Marketplace apps: at most 15 a call, as for history."""
        cap = self.backend.history_page_cap()
        limit = self._limit(params, cap or MAX_REPLIES_LIMIT, cap or MAX_REPLIES_LIMIT)
        messages = self.backend.replies(grant, params.get("channel"), params.get("ts"), oldest=params.get("oldest"),
                                        latest=params.get("latest"), inclusive=_truthy(params.get("inclusive")))
        start = 0
        if params.get("cursor"):
            raw = _decode_cursor(str(params["cursor"]), "next_ts")
            if not raw.isdigit():
                raise InvalidCursor()
            start = next((i for i, m in enumerate(messages) if ts_to_micros(m["ts"]) >= int(raw)), len(messages))
        page = messages[start:start + limit]
        has_more = start + limit < len(messages)
        body = {"ok": True, "messages": page, "has_more": has_more}
        if has_more:
            body["response_metadata"] = {
                "next_cursor": _encode_cursor(f"next_ts:{ts_to_micros(messages[start + limit]['ts'])}")}
        return body

    def chat_post_message(self, grant: TokenGrant, params: dict) -> dict:
        channel_id, message = self.backend.chat_post_message(grant, params)
        return {"ok": True, "channel": channel_id, "ts": message["ts"], "message": message}

    # --- argument helpers ------------------------------------------------------------------------

    def _limit(self, params: dict, default: int, maximum: int) -> int:
        """The page size served: the client's `limit` (default per method), cut at the method's
        maximum and at the world's `page_size` knob, which may serve fewer items than asked, as Slack may."""
        raw = params.get("limit")
        if raw is None or str(raw).strip() == "":
            limit = default
        else:
            try:
                limit = int(str(raw).strip())
            except ValueError:
                raise InvalidLimit() from None
            if limit < 1:
                raise InvalidLimit()
        return max(1, min(limit, maximum, self.backend.page_size))

    # --- users.lookupByEmail (issue 15 item 4; the method lives in paymon.sandbox.slack.users) -----

    def users_lookup_by_email(self, grant: TokenGrant, params: dict) -> dict:
        from paymon.sandbox.slack.users import lookup_by_email

        return lookup_by_email(self.backend, grant, params)


# --- argument parsing ----------------------------------------------------------------------------

async def _read_arguments(request: Request) -> tuple[dict, str | None]:
    """All arguments of a call as one dict (body over query string), and the token of a form body."""
    params: dict = {k: v for k, v in request.query_params.items() if k != "token"}
    body_token = None
    if request.method == "POST":
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        raw = await request.body()
        if content_type == "application/json":
            if raw.strip():
                try:
                    data = json.loads(raw)
                except ValueError:
                    raise InvalidJson() from None
                if not isinstance(data, dict):
                    raise JsonNotObject()
                data.pop("token", None)  # JSON bodies carry no token: Slack wants the header
                params.update(data)
        elif content_type == "application/x-www-form-urlencoded":
            form = dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
            body_token = form.pop("token", None)
            params.update(form)
        elif content_type == "multipart/form-data":
            try:
                form = await request.form()
            except Exception:  # noqa: BLE001 - a body Slack cannot parse, whatever the parser says
                raise InvalidFormData() from None
            fields = {k: v for k, v in form.items() if isinstance(v, str)}
            body_token = fields.pop("token", None)
            params.update(fields)
    return params, body_token


def _truthy(value) -> bool:
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("1", "true", "yes")


# --- cursors -------------------------------------------------------------------------------------

def _encode_cursor(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _decode_cursor(cursor: str, prefix: str) -> str:
    try:
        text = base64.b64decode(cursor.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidCursor() from None
    kind, _, value = text.partition(":")
    if kind != prefix or not value:
        raise InvalidCursor()
    return value


def _page_by_id(items: list, cursor: str | None, limit: int, prefix: str, key) -> tuple[list, str]:
    """Slack's list cursors name the first item of the next page ("channel:C…", "user:U…"); the end is
    `next_cursor: ""`. A cursor whose item is gone (or that is not one of ours) is invalid_cursor."""
    start = 0
    if cursor:
        wanted = _decode_cursor(str(cursor), prefix)
        ids = [key(item) for item in items]
        if wanted not in ids:
            raise InvalidCursor()
        start = ids.index(wanted)
    page = items[start:start + limit]
    following = start + limit
    next_cursor = _encode_cursor(f"{prefix}:{key(items[following])}") if following < len(items) else ""
    return page, next_cursor


def _history_cursor_start(messages: list[dict], cursor: str | None) -> int:
    """Index of the first message at or before the cursor's ts (messages are newest first)."""
    if not cursor:
        return 0
    raw = _decode_cursor(str(cursor), "next_ts")
    if not raw.isdigit():
        raise InvalidCursor()
    bound = int(raw)
    for index, message in enumerate(messages):
        if ts_to_micros(message["ts"]) <= bound:
            return index
    return len(messages)
