"""Where an alert's firings arrived: Sentry's posts in Slack and the incidents it opened in PagerDuty,
joined by the alert's identity.

    seen = read_notifications(slack_reader, pagerduty_client, spec, alert_names, since)
    seen.firings["Webhook Processing Failure"] -> [DeliveredFiring(at, slack=[...], incident=...)]

Identity: a metric alert's Slack post says "Critical: <alert name>" (and "Resolved: ..." when it
resolves); its PagerDuty incident is titled with the alert name. An issue alert's Slack post names
the alert ("Alert: <name>") and the issue's short ID; its PagerDuty incident's `incident_key` is
that short ID (Sentry's dedup key). Notifications of one alert less than CLUSTER_S apart are one
firing (one post per channel, one page).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime

from paymon.delivery.endtoend import parse_iso
from paymon.clients.slack import SentryApp, find_channel, message_texts
from paymon.rules.names import mentions

CLUSTER_S = 120.0
_SHORT_ID = re.compile(r"Short ID:\s*([A-Z0-9][A-Z0-9-]*-[A-Z0-9]+)")


@dataclass
class Post:
    alert: str
    channel: str
    at: float
    resolved: bool
    short_id: str | None = None


@dataclass
class Page:
    alert: str
    incident_id: str
    at: float
    status: str
    acknowledged_at: float | None = None
    resolved_at: float | None = None


@dataclass
class DeliveredFiring:
    at: float
    posts: list[Post] = field(default_factory=list)
    pages: list[Page] = field(default_factory=list)
    resolved: bool = False

    @property
    def acknowledged_at(self) -> float | None:
        times = [p.acknowledged_at for p in self.pages if p.acknowledged_at is not None]
        return min(times) if times else None

    @property
    def time_to_ack(self) -> float | None:
        ack = self.acknowledged_at
        return None if ack is None else ack - min(p.at for p in self.pages)


@dataclass
class Notifications:
    firings: dict[str, list[DeliveredFiring]] = field(default_factory=dict)
    read: list[str] = field(default_factory=list)
    """The sources read ("slack #payments-alerts", "pagerduty TowerOfBabel Payments")."""
    unavailable: list[str] = field(default_factory=list)
    """Sources that could not be read, with the reason (the counts then miss what they held)."""


def parse_time(text: str | None) -> float | None:
    return parse_iso(text) if text else None


def alert_named(text: str, names: list[str]) -> str | None:
    """The longest alert name the text mentions (names may prefix one another)."""
    for name in sorted(names, key=len, reverse=True):
        if mentions(text, name):
            return name
    return None


def slack_posts(reader, channels: list[str], names: list[str], since: float, sentry: SentryApp | None = None
                ) -> list[Post]:
    """Sentry's posts naming an alert. With `sentry` known (its bot user or app), another app's or a
    person's message naming the alert (PagerDuty's "Triggered: …", "is anyone looking at …?") is
    not a delivery of it (issue 13 item 2); without it every message counts, as before."""
    posts, listed = [], reader.channels()  # one channel list for every channel read
    for channel in channels:
        found = find_channel(listed, channel)
        if found is None:
            continue
        messages = reader.history(found["id"], oldest=since)
        if sentry is not None and sentry.known:
            sentry.learn(messages)
            messages = [m for m in messages if sentry.posted(m)]
        for message in messages:
            text = html.unescape(" ".join(message_texts(message)))
            name = alert_named(text, names)
            if name is None:
                continue
            short = _SHORT_ID.search(text)
            posts.append(Post(name, channel, float(message.get("ts") or 0), "Resolved:" in text,
                              short.group(1) if short else None))
    return sorted(posts, key=lambda p: p.at)


def pagerduty_pages(client, service_name: str, names: list[str], short_ids: dict[str, str], since: float
                    ) -> list[Page]:
    """Incidents of the service since `since` that an alert opened (by title, or by the issue's
    short ID as incident key), with when they were acknowledged and resolved (log entries)."""
    service = client.find_service(service_name)
    if service is None:
        return []
    pages = []
    for incident in client.incidents(since=datetime.fromtimestamp(since, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                                     service_id=service["id"]):
        title = re.sub(r"^(Critical|Warning|Resolved):\s*", "", incident.get("title") or "")
        name = title if title in names else None
        if name is None:
            name = short_ids.get(incident.get("incident_key") or "")
        if name is None:
            continue
        acknowledged = resolved = None
        for entry in client.log_entries(incident["id"]):
            at = parse_time(entry.get("created_at"))
            if entry.get("type") == "acknowledge_log_entry" and (acknowledged is None or at < acknowledged):
                acknowledged = at
            if entry.get("type") == "resolve_log_entry":
                resolved = at
        pages.append(Page(name, incident["id"], parse_time(incident.get("created_at")) or 0.0,
                          incident.get("status") or "", acknowledged, resolved))
    return sorted(pages, key=lambda p: p.at)


def cluster(posts: list[Post], pages: list[Page]) -> list[DeliveredFiring]:
    """One alert's notifications, grouped into firings; a "Resolved" post closes the open one."""
    firings: list[DeliveredFiring] = []
    moments = sorted([(p.at, 0, p) for p in posts] + [(p.at, 1, p) for p in pages], key=lambda x: (x[0], x[1]))
    for at, _, item in moments:
        if isinstance(item, Post) and item.resolved:
            if firings:
                firings[-1].resolved = True
            continue
        if not firings or at - firings[-1].at > CLUSTER_S:
            firings.append(DeliveredFiring(at))
        target = firings[-1]
        (target.posts if isinstance(item, Post) else target.pages).append(item)
        if isinstance(item, Page) and item.resolved_at is not None:
            target.resolved = True
    return firings


def read_notifications(slack, pagerduty, *, channels: list[str], service: str | None, names: list[str],
                       since: float, sentry_bot_user: str | None = None) -> Notifications:
    """Slack and PagerDuty are each optional (None); a source that fails is noted, not fatal."""
    from paymon.errors import PaymonError

    seen = Notifications()
    posts: list[Post] = []
    if slack is not None:
        try:
            posts = slack_posts(slack, channels, names, since, SentryApp(bot_user=sentry_bot_user))
            seen.read.append("slack " + ", ".join(channels))
        except PaymonError as exc:
            seen.unavailable.append(f"Slack: {exc}")
    pages: list[Page] = []
    if pagerduty is not None and service:
        short_ids = {p.short_id: p.alert for p in posts if p.short_id}
        try:
            pages = pagerduty_pages(pagerduty, service, names, short_ids, since)
            seen.read.append(f"pagerduty {service}")
        except PaymonError as exc:
            seen.unavailable.append(f"PagerDuty: {exc}")
    for name in names:
        seen.firings[name] = cluster([p for p in posts if p.alert == name], [p for p in pages if p.alert == name])
    return seen
