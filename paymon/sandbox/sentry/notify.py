"""What Sentry's integrations send when an alert fires: Slack, PagerDuty and e-mail payloads.

Shapes follow slack-api.md §6 and pagerduty-api.md §9 (and the request-from-sentry examples):

    slack_issue_alert(ctx)       chat.postMessage args: fallback text + blocks (a JSON string)
    slack_metric_alert(ctx)      text + attachments (JSON string), no event data
    pagerduty_issue_alert(ctx)   Events v2 trigger, dedup_key = the issue's short id
    pagerduty_metric_alert(ctx)  Events v2 trigger/resolve, dedup_key = incident_<org>_<identifier>
    email(ctx, recipients)       an outbox entry
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from urllib.parse import urlencode

from paymon.sandbox.sentry.events import Issue, StoredEvent, api_tags, exceptions_of, message_of, title_of
from paymon.sandbox.sentry.ingest import iso

LEVEL_EMOJI = {"fatal": ":red_circle:", "error": ":red_circle:", "warning": ":large_yellow_circle:",
               "info": ":large_blue_circle:", "debug": ":bug:"}
# Severity Sentry sends PagerDuty when the action says "default": from the event level (§9.1).
LEVEL_SEVERITY = {"fatal": "critical", "error": "error", "warning": "warning", "info": "info", "debug": "info"}
PAGERDUTY_SEVERITIES = {"critical", "error", "warning", "info"}
METRIC_COLORS = {"critical": "#FA4747", "warning": "#FFC227", "resolved": "#4DC771"}
STATUS_WORDS = {"critical": "Critical", "warning": "Warning", "resolved": "Resolved"}


@dataclass
class AlertContext:
    """Everything a notification may show about one firing."""

    rule_name: str
    rule_id: str
    organization: dict
    project: dict
    web_base: str
    level: str  # "critical" | "warning" | "resolved" (metric) or "critical" (issue alerts)
    at: float
    issue: Issue | None = None
    event: StoredEvent | None = None
    value: float | None = None
    aggregate: str = "count()"
    window_seconds: int | None = None
    incident_identifier: int | None = None
    notification_uuid: str = field(default_factory=lambda: str(uuid.uuid4()))

    def issue_url(self, referrer: str, **extra) -> str:
        params = {"referrer": referrer, "notification_uuid": self.notification_uuid, **extra}
        return f"{self.web_base}/organizations/{self.organization['slug']}/issues/{self.issue.id}/?{urlencode(params)}"

    def rule_url(self, referrer: str) -> str:
        params = {"alert": self.incident_identifier or "", "referrer": referrer, "detection_type": "static",
                  "notification_uuid": self.notification_uuid}
        return (f"{self.web_base}/organizations/{self.organization['slug']}/alerts/rules/details/"
                f"{self.rule_id}/?{urlencode(params)}")

    def metric_text(self) -> str:
        """'12 events in the last 5 minutes' (count) or '1234.5 p95(transaction.duration) in …'."""
        minutes = (self.window_seconds or 0) // 60
        unit = "minute" if minutes == 1 else "minutes"
        value = self.value if self.value is not None else 0
        shown = f"{int(value)}" if float(value).is_integer() else f"{value:.2f}"
        what = "events" if self.aggregate == "count()" else self.aggregate
        return f"{shown} {what} in the last {minutes} {unit}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _code_block(text: str, limit: int = 256) -> str:
    text = re.sub(r"`{3,}", "`", text.strip())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return f"```{text}```"


def event_title(event: StoredEvent) -> str:
    return title_of(event.data)


def slack_issue_alert(ctx: AlertContext, channel_id: str, tags_option: str | None, notes: str | None) -> dict:
    event, issue = ctx.event, ctx.issue
    data = event.data
    block_id = {"issue": int(issue.id), "rule": int(ctx.rule_id) if ctx.rule_id.isdigit() else ctx.rule_id}
    excs = exceptions_of(data)
    # Error events show the exception type as the title and the value in a code block; message
    # events show the message as the title.
    headline = str(excs[-1].get("type") or "Error") if excs else event_title(event)
    extra = {"environment": data["environment"]} if data.get("environment") else {}
    link = ctx.issue_url("slack", **extra, alert_rule_id=ctx.rule_id, alert_type="issue")
    blocks = [{"type": "section", "block_id": json.dumps(block_id, separators=(",", ":")),
               "text": {"type": "mrkdwn",
                        "text": f"{LEVEL_EMOJI.get(data['level'], ':red_circle:')} <{link}|*{_escape(headline)}*>"}}]
    if issue.culprit:
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": _escape(issue.culprit)}]})
    if excs and excs[-1].get("value"):
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": _code_block(str(excs[-1]["value"]))}})
    wanted = [t.strip() for t in (tags_option or "").split(",") if t.strip()]
    if wanted:
        tags = {t["key"]: t["value"] for t in api_tags(data)}
        shown = "".join(f"{k}: `{tags[k]}`  " for k in sorted(wanted) if k in tags)
        if shown:
            blocks.append({"type": "section",
                           "block_id": json.dumps({**block_id, "block": "tags"}, separators=(",", ":")),
                           "text": {"type": "mrkdwn", "text": shown}})
    state = "New" if issue.substatus == "new" else issue.substatus.replace("_", " ").title()
    blocks.append({"type": "context", "elements": [
        {"type": "mrkdwn", "text": f"State: *{state}*   First Seen: *Just now*"}]})
    blocks.append({"type": "actions", "elements": [
        {"type": "button", "action_id": "resolved", "text": {"type": "plain_text", "text": "Resolve"},
         "value": "resolved"},
        {"type": "button", "action_id": "archive_dialog", "text": {"type": "plain_text", "text": "Archive"},
         "value": "archive_dialog"},
        {"type": "external_select", "action_id": "assign",
         "placeholder": {"type": "plain_text", "text": "Select Assignee...", "emoji": True}}]})
    if notes:
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": f"notes: {notes}"}})
    org, project = ctx.organization["slug"], ctx.project["slug"]
    project_url = f"{ctx.web_base}/organizations/{org}/issues/?project={ctx.project['id']}"
    rule_url = f"{ctx.web_base}/organizations/{org}/alerts/rules/{project}/{ctx.rule_id}/details/"
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": (
        f"Project: <{project_url}|{project}>    Alert: <{rule_url}|{_escape(ctx.rule_name)}>    "
        f"Short ID: {issue.short_id}")}]})
    blocks.append({"type": "divider"})
    return {
        "channel": channel_id,
        "text": f"[{project}] {event_title(event)}",
        "blocks": json.dumps(blocks, separators=(",", ":")),
        "unfurl_links": False,
        "unfurl_media": False,
    }


def slack_metric_alert(ctx: AlertContext, channel_id: str) -> dict:
    status = STATUS_WORDS[ctx.level]
    started = int(ctx.at)
    body = (f"{ctx.metric_text()}\n<!date^{started}^Started: {{date_pretty}} at {{time}} | Sentry Incident>")
    attachment = {"color": METRIC_COLORS[ctx.level],
                  "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": body}}]}
    return {
        "channel": channel_id,
        "text": f"<{ctx.rule_url('metric_alert_slack')}|*{status}: {_escape(ctx.rule_name)}*>",
        "attachments": json.dumps([attachment], separators=(",", ":")),
        "unfurl_links": False,
        "unfurl_media": False,
    }


def pagerduty_severity(action_severity: str | None, event_level: str) -> str:
    chosen = (action_severity or "default").lower()
    if chosen in PAGERDUTY_SEVERITIES:
        return chosen
    return LEVEL_SEVERITY.get(event_level, "error")


def pagerduty_issue_alert(ctx: AlertContext, routing_key: str, action_severity: str | None) -> dict:
    event, issue = ctx.event, ctx.issue
    data = event.data
    url = ctx.issue_url("pagerduty_integration")
    summary = (message_of(data) or event_title(event))[:1024]
    frames = [f for exc in exceptions_of(data) for f in ((exc.get("stacktrace") or {}).get("frames") or [])]
    return {
        "routing_key": routing_key,
        "event_action": "trigger",
        "payload": {
            "summary": summary,
            "severity": pagerduty_severity(action_severity, data["level"]),
            "source": data.get("transaction") or issue.culprit or "<unknown>",
            "custom_details": {
                "groupID": issue.id,
                "eventID": event.event_id,
                "project": str(ctx.project["id"]),
                "message": message_of(data),
                "title": event_title(event),
                "location": (frames[-1].get("filename") if frames else None) or data.get("transaction"),
                "culprit": issue.culprit or None,
                "user": data.get("user") if isinstance(data.get("user"), dict) else None,
                "tags": api_tags(data),
                "platform": data.get("platform") or "other",
                "datetime": iso(data["timestamp"]),
            },
            "component": ctx.project["slug"],
        },
        "client": "sentry",
        "client_url": url,
        "dedup_key": issue.short_id,
        "links": [{"href": url, "text": "View Sentry Issue Details"}],
    }


def pagerduty_metric_alert(ctx: AlertContext, routing_key: str, action_severity: str | None) -> dict:
    resolved = ctx.level == "resolved"
    severity = (action_severity or "").lower()
    if severity not in PAGERDUTY_SEVERITIES:
        severity = {"critical": "critical", "warning": "warning"}.get(ctx.level, "info")
    if resolved:
        severity = "info"
    identifier = ctx.incident_identifier
    return {
        "routing_key": routing_key,
        "event_action": "resolve" if resolved else "trigger",
        "dedup_key": f"incident_{ctx.organization['id']}_{identifier}",
        "payload": {
            "summary": ctx.rule_name,
            "severity": severity,
            "source": str(identifier),
            "custom_details": {"details": ctx.metric_text()},
        },
        "links": [{"href": ctx.rule_url("metric_alert_pagerduty"),
                   "text": f"{STATUS_WORDS[ctx.level]}: {ctx.rule_name}"}],
    }


def email(ctx: AlertContext, recipients: list[str], target: str) -> dict:
    org = ctx.organization
    if ctx.issue is not None and ctx.event is not None:
        subject = f"[Sentry] {ctx.issue.short_id} - {event_title(ctx.event)}"
        body = (f"New alert from {ctx.project['slug']} via {ctx.rule_name}\n\n{event_title(ctx.event)}\n"
                f"{message_of(ctx.event.data)}\n\n{ctx.issue_url('alert_email')}")
    else:
        subject = f"{STATUS_WORDS[ctx.level]}: {ctx.rule_name} ({org.get('name') or org['slug']})"
        body = f"{ctx.metric_text()}\n\n{ctx.rule_url('metric_alert_email')}"
    return {"to": recipients, "target": target, "subject": subject, "alert": ctx.rule_name, "level": ctx.level,
            "body": body, "issue_id": ctx.issue.id if ctx.issue else None}
