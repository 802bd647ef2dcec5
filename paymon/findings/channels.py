"""§3 "Create Dedicated Slack Channels": who is in them and what they say they are for.

- Members: #payments-alerts holds the "on-call rotation". The people on call now (PagerDuty's
  on-calls at level 1 of the service's escalation policy) are matched to Slack users by e-mail
  (`users.lookupByEmail`), and each must be a member of the channel: a page says "see
  #payments-alerts", and a person outside a private channel cannot see it.
- Purpose: the channel's purpose says what monitoring.yaml's `purpose` says (the guide's words),
  compared case- and whitespace-insensitively, as a phrase the purpose contains.
"""

from __future__ import annotations

import re

from paymon.clients.slack import find_channel
from paymon.config.spec import ChannelSpec
from paymon.findings.model import Finding


def _words(text: str) -> str:
    return re.sub(r"\s+", " ", text or "").strip().casefold()


def purpose_findings(channel_spec: ChannelSpec, reader) -> list[Finding]:
    channel = find_channel(reader.channels(), channel_spec.name)
    if channel is None:
        return [Finding(channel_spec.name, "channel", "present", "missing (or private and the bot cannot see it)",
                        "field", "Slack conversations.list")]
    actual = (channel.get("purpose") or {}).get("value") or ""
    if _words(channel_spec.purpose) in _words(actual):
        return []
    return [Finding(channel_spec.name, "purpose", repr(channel_spec.purpose), repr(actual) if actual else "none",
                    "field", f"Slack channel {channel['id']}", "set it in the channel's details (Edit purpose)")]


def on_call_users(pagerduty, service_name: str) -> tuple[list[dict], str]:
    """The PagerDuty users on call now at level 1 of the service's escalation policy (each with its
    e-mail, read from /users/{id}), and the policy's description for messages."""
    service = pagerduty.find_service(service_name)
    if service is None:
        return [], f"PagerDuty service {service_name!r} missing"
    policy = service.get("escalation_policy") or {}
    if not policy.get("id"):
        return [], f"PagerDuty service {service_name!r} has no escalation policy"
    users, seen = [], set()
    for oncall in pagerduty.oncalls(policy["id"]):
        user = oncall.get("user") or {}
        if oncall.get("escalation_level") != 1 or not user.get("id") or user["id"] in seen:
            continue
        seen.add(user["id"])
        # /oncalls gives a user reference; the e-mail is on the user itself.
        users.append(user if user.get("email") else pagerduty.get(f"/users/{user['id']}")["user"])
    return users, f"escalation policy {policy.get('summary') or policy['id']}"


def on_call_member_findings(channel_name: str, reader, pagerduty, service_name: str) -> list[Finding]:
    users, where = on_call_users(pagerduty, service_name)
    if not users:
        return [Finding(channel_name, "on-call members", "the people on call at level 1",
                        f"nobody on call ({where})", "field", f"PagerDuty {where}")]
    channel = find_channel(reader.channels(), channel_name)
    if channel is None:
        return [Finding(channel_name, "channel", "present", "missing (or private and the bot cannot see it)",
                        "field", "Slack conversations.list")]
    members = set(reader.members(channel["id"]))
    findings = []
    for user in users:
        who = f"{user.get('name') or user.get('summary') or user['id']} ({user.get('email') or 'no e-mail'})"
        slack_user = reader.user_by_email(user["email"]) if user.get("email") else None
        if slack_user is None:
            findings.append(Finding(channel_name, "on-call member", f"{who}, on call now",
                                    "no Slack user with that e-mail", "field", f"PagerDuty {where}",
                                    "the on-call person's PagerDuty and Slack e-mails must match"))
        elif slack_user.get("deleted"):
            findings.append(Finding(channel_name, "on-call member", f"{who}, on call now",
                                    f"Slack user {slack_user['id']} is deactivated", "field", f"PagerDuty {where}"))
        elif slack_user["id"] not in members:
            findings.append(Finding(channel_name, "on-call member", f"{who} (Slack {slack_user['id']}) a member",
                                    "not a member", "field", f"Slack channel {channel['id']}",
                                    f"invite them: /invite @{slack_user.get('name', slack_user['id'])} in {channel_name}"))
    return findings
