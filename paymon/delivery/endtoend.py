"""End-to-end delivery: fire test events through the real rules, read them back where people see them.

The flow, for one run:
  1. `plan_test_events` names the events (one per delivery route) with a per-run marker at the start
     of the message (`PAYMON-TEST-<RUN>-SLACK`: `[A-Z0-9-]` only, so Slack's mrkdwn and Sentry's
     truncation leave it intact), a fresh fingerprint (a new issue: no throttling, threading or
     PagerDuty dedup onto an earlier run), and `test:true` tags the synthetic-check alerts select.
  2. `fire` sends them with sentry-sdk (its own client: nothing global) and keeps each event id
     and the epoch time it was sent.
  3. Watchers poll each channel once for every marker waiting on it, within the deadline and the
     service's rate limits, and judge delivery by the time the service stamped (Slack's `ts`,
     PagerDuty's `created_at`), not by when the poller happened to look.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from paymon.config.spec import delivery_grace
from paymon.errors import TargetUnavailable
from paymon.clients.slack import SlackRateLimited, SlackReader, contains



def late_grace(deadline_s: float) -> float:
    """A delivery stamped after the deadline is late, but the poller keeps looking a little past
    it, so it can say "arrived after 64 s" instead of "not delivered" (the grace is config's:
    `delivery.sweep_after` is validated against it)."""
    return delivery_grace(deadline_s)


@dataclass
class TestEvent:
    route: str
    """"slack" or "pagerduty": which synthetic-check alert this event is meant to trip."""
    marker: str
    message: str
    level: str
    tags: dict[str, str]
    fingerprint: list[str]
    event_id: str | None = None
    fired_at: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def run_marker(run_id: str) -> str:
    return "PAYMON-TEST-" + "".join(c for c in run_id.upper() if c.isalnum())[:10]


def plan_test_events(run_id: str) -> list[TestEvent]:
    marker = run_marker(run_id)
    common = {"test": "true", "paymon_run": run_id}
    # Messages avoid the words production alerts match on (payment, checkout, webhook, usage,
    # reconciliation, test mode): a synthetic check must not count towards a real alert.
    return [
        TestEvent("slack", f"{marker}-SLACK", f"{marker}-SLACK synthetic delivery check from paymon (ignore)",
                  "warning", {**common, "paymon_check": "slack"}, ["paymon", run_id, "slack"]),
        TestEvent("pagerduty", f"{marker}-PAGE", f"{marker}-PAGE synthetic on-call verification from paymon (ignore)",
                  "fatal", {**common, "paymon_check": "pagerduty"}, ["paymon", run_id, "pagerduty"]),
    ]


def fire(events: list[TestEvent], dsn: str, environment: str, flush_timeout: float = 10.0) -> list[TestEvent]:
    import sentry_sdk

    # A client of our own, with no integrations: nothing global changes, nothing else is traced.
    client = sentry_sdk.Client(dsn=dsn, environment=environment, default_integrations=False,
                               auto_enabling_integrations=False,
                               release="paymon-synthetic")
    try:
        for event in events:
            with sentry_sdk.new_scope() as scope:
                scope.set_client(client)
                scope.fingerprint = event.fingerprint
                for key, value in event.tags.items():
                    scope.set_tag(key, value)
                event.fired_at = time.time()
                event.event_id = scope.capture_message(event.message, level=event.level)
        client.flush(timeout=flush_timeout)
    finally:
        client.close(timeout=flush_timeout)
    return events


@dataclass
class Delivery:
    marker: str
    fired_at: float
    deadline_s: float
    arrived_at: float | None = None
    evidence: dict = field(default_factory=dict)
    polls: int = 0
    waited_for_rate_limit_s: float = 0.0

    @property
    def seconds(self) -> float | None:
        return None if self.arrived_at is None else self.arrived_at - self.fired_at

    @property
    def on_time(self) -> bool:
        return self.seconds is not None and self.seconds <= self.deadline_s


class SlackChannelWatcher:
    """One poller for one channel, serving every marker waiting on it (one history call per poll)."""

    def __init__(self, reader: SlackReader, channel_id: str, since: float, *, poll_interval: float = 1.0,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep):
        self.reader, self.channel_id = reader, channel_id
        # CI clocks drift: start a little before the first send.
        self.oldest = since - 5.0
        self.poll_interval = poll_interval
        self._clock, self._sleep = clock, sleep
        self.found: dict[str, dict] = {}
        self.polls = 0
        self.rate_limited_s = 0.0

    def _poll(self, markers: list[str]) -> None:
        self.polls += 1
        for message in self.reader.history(self.channel_id, self.oldest):
            for marker in markers:
                if marker not in self.found and contains(message, marker):
                    self.found[marker] = message

    def wait_for(self, deliveries: list[Delivery], read_budget: float = 30.0) -> list[Delivery]:
        """Poll until every marker is found or the latest deadline (plus grace) has passed, with
        at least one successful poll at or after that moment. Waiting out Slack's rate limits has
        its own budget (`read_budget` past the start or the deadline, whichever is later): a
        slow reader must not turn an on-time delivery into a missing one."""
        markers = [d.marker for d in deliveries]
        give_up = max(d.fired_at + d.deadline_s + late_grace(d.deadline_s) for d in deliveries)
        read_until = max(give_up, self._clock() + read_budget)
        interval = self.poll_interval
        while True:
            polled_at = self._clock()
            try:
                self._poll(markers)
            except SlackRateLimited as exc:
                wait = min(exc.retry_after, read_until - self._clock())
                if wait <= 0:
                    raise TargetUnavailable(f"{exc}; paymon's read budget ran out while waiting") from None
                self.rate_limited_s += wait
                self._sleep(wait)
                continue
            if all(m in self.found for m in markers) or polled_at >= give_up:
                break
            # Poll fast first, then back off; the last poll lands on give_up itself.
            self._sleep(min(interval, max(give_up - self._clock(), 0.0)))
            interval = min(interval * 1.5, 10.0)
        for delivery in deliveries:
            message = self.found.get(delivery.marker)
            delivery.polls, delivery.waited_for_rate_limit_s = self.polls, self.rate_limited_s
            if message is not None:
                delivery.arrived_at = float(message["ts"])
                delivery.evidence = {"ts": message["ts"], "text": (message.get("text") or "")[:200],
                                     "bot_id": message.get("bot_id")}
        return deliveries


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


class PagerDutyWatcher:
    """Finds the incident a marker opened on one service, then waits for the page to go out."""

    def __init__(self, client, service_id: str, *, poll_interval: float = 2.0,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep):
        self.client, self.service_id = client, service_id
        self.poll_interval = poll_interval
        self._clock, self._sleep = clock, sleep
        self.polls = 0

    def wait_for(self, delivery: Delivery, on_call_user_ids: set[str]) -> tuple[Delivery, dict | None, list[dict]]:
        give_up = delivery.fired_at + delivery.deadline_s + late_grace(delivery.deadline_s)
        since = iso(delivery.fired_at - 60)
        incident, entries = None, []
        interval = self.poll_interval
        while True:
            self.polls += 1
            if incident is None:
                incident = next((i for i in self.client.incidents(since=since, service_id=self.service_id)
                                 if delivery.marker in (i.get("title") or i.get("summary") or "")), None)
            if incident is not None:
                entries = self.client.log_entries(incident["id"])
                if _paged(entries, on_call_user_ids):
                    break
            if self._clock() >= give_up:
                break
            # The last poll lands on give_up itself, so a late delivery is seen as late, not missing.
            self._sleep(min(interval, max(give_up - self._clock(), 0.0)))
            interval = min(interval * 1.5, 15.0)
        delivery.polls = self.polls
        if incident is not None:
            # PagerDuty stamps whole seconds: the incident opened within the second after
            # created_at, so judge by the end of that second (never flatter a late page).
            created = parse_iso(incident["created_at"])
            delivery.arrived_at = created + 0.999 if created == int(created) else created
            delivery.evidence = {"incident": incident.get("id"), "urgency": incident.get("urgency"),
                                 "title": incident.get("title"), "created_at": incident.get("created_at")}
        return delivery, incident, entries


def _paged(entries: list[dict], user_ids: set[str]) -> bool:
    return all(page_evidence(entries, user_ids).values())


def _entry_user(entry: dict) -> str | None:
    for assignee in entry.get("assignees") or []:
        return assignee.get("id")
    user = entry.get("user") or {}
    return user.get("id")


def page_evidence(entries: list[dict], user_ids: set[str]) -> dict[str, bool]:
    kinds = [(e.get("type"), _entry_user(e)) for e in entries]
    return {
        "assigned": any(k == "assign_log_entry" and (not user_ids or u in user_ids) for k, u in kinds),
        "notified": any(k == "notify_log_entry" and (not user_ids or u in user_ids) for k, u in kinds),
    }
