"""The golden `world["slack"]`: TowerOfBabel's workspace as paymon expects to find it.

Shape (each value is the JSON Slack returns, plus `knobs` for the emulator):

    team        {"id", "name", "domain"}
    users       [user]                       humans and the bot users of the Sentry and paymon apps
    bots        [bot_profile + "user_id"]    `bot_profile` of app-posted messages (minus user_id)
    tokens      [{"token", "scopes", "user_id", "bot_id"}]   first one: paymon's reader bot
                                                             (no "bot_id": a person's user token)
    channels    [conversation]               without the per-caller `is_member` / `num_members`
    members     {channel id: [user id]}      membership; num_members and is_member derive from it
    history     {channel id: [message]}      existing messages, newest first, visible from the start
    knobs       page_size                    largest page served whatever `limit` asks (small: paging)
                history_limit_mode           "marketplace" | "non_marketplace" (1 history call/min, 15 items)
                delivery_delay               s between Sentry posting (post_message) and the message showing
                query_string_tokens          accept `?token=` (only apps created before 2021-02-24)
                rate_limits                  {"window", "tiers": {tier: per window},
                                              "methods": {method: tier | {"limit", "window", "per_channel"}},
                                              "non_marketplace_history": {"limit", "window", "max_items"}}
                fail                         [{"method": regex?, "status"?, "error"?, "retry_after"?, "times"?}]
                seed                         for generated block_ids

Tokens are obviously fake (`sandbox-slack-…`): they must never look like a real `xoxb-` secret.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

WORLD_FILE = Path(__file__).resolve().parent.parent / "worlds" / "slack.json"


@cache
def _read() -> dict:
    return json.loads(WORLD_FILE.read_text())


def golden_slack_world() -> dict:
    """A fresh copy of the golden Slack world (callers may change it freely)."""
    return copy.deepcopy(_read())
