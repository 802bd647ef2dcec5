"""Routes of the emulated Slack Web API: `/api/<method>` -> handler.

Slack's Web API is RPC: one URL per method name, GET (query string) or POST (form or JSON body) for
every method. The service is mounted under `/slack`, so slack-sdk's `base_url` is
`<sandbox>/slack/api/`. Rate-limit tiers per method are not here but in the world's knobs
(`knobs.rate_limits.methods`), because tests turn them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    name: str  # the Web API method, e.g. "conversations.history"
    handler: str  # method name on SlackResponse
    scope_kind: str | None
    """Which family of OAuth scopes grants it ("read", "history", "write"; None: any valid token).
    The exact scope depends on the conversation type (channels:* public, groups:* private)."""


url_paths: list[Method] = [
    Method("auth.test", "auth_test", None),
    Method("conversations.list", "conversations_list", "read"),
    Method("conversations.info", "conversations_info", "read"),
    Method("conversations.members", "conversations_members", "read"),
    Method("conversations.history", "conversations_history", "history"),
    Method("conversations.replies", "conversations_replies", "history"),
    Method("chat.postMessage", "chat_post_message", "write"),
    # users:read.email, checked by the handler (paymon.sandbox.slack.users)
    Method("users.lookupByEmail", "users_lookup_by_email", None),
]

METHODS: dict[str, Method] = {m.name: m for m in url_paths}


def build_routes(responder) -> list:
    """One Starlette route for every `/api/<method>`; unknown names are answered by the responder
    (404 `unknown_method`, as Slack does), so a typo in a client shows up as Slack would show it."""
    from starlette.routing import Route

    async def view(request):
        return await responder.dispatch(request, METHODS.get(request.path_params["method"]))

    return [Route("/api/{method}", view, methods=["GET", "POST"])]
