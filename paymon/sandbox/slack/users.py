"""`users.lookupByEmail`, kept apart from the channel and message methods (issue 15 item 4).

After https://docs.slack.dev/reference/methods/users.lookupByEmail (verified-2026-12 §9):
- scope `users:read.email` (bot or user token), else `missing_scope` naming it;
- `email` required (`invalid_arguments` without it); a match is case-insensitive;
- found: `{"ok": true, "user": <user object>}`, with `profile.email`; deleted users are found too
  (`deleted: true`), as Slack returns them;
- not found: `{"ok": false, "error": "users_not_found"}`.
Rate limit: Tier 3, through the world's `knobs.rate_limits.methods` like every method.
"""

from __future__ import annotations

import copy

from paymon.sandbox.slack.exceptions import InvalidArguments, SlackAPIError

EMAIL_SCOPE = "users:read.email"


class UsersNotFound(SlackAPIError):
    error = "users_not_found"


def lookup_by_email(backend, grant, params: dict) -> dict:
    grant.require(EMAIL_SCOPE)
    email = (params.get("email") or "").strip()
    if not email:
        raise InvalidArguments()
    for user in backend.users:
        if (user.get("profile") or {}).get("email", "").casefold() == email.casefold():
            return {"ok": True, "user": copy.deepcopy(user)}
    raise UsersNotFound()
