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
from paymon.clients.slack import SentryApp, SlackRateLimited, SlackReader, app_of, contains



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


@dataclass(frozen=True)
class WaitProgress:
    """What a watcher is waiting for, and how far along, on the clock it waits on (the sandbox's
    in the sandbox, so a display shows the time the watcher judges by, not the wall clock's)."""

    service: str
    """"Slack", "PagerDuty", "the drill"."""
    waiting_for: str
    """What has not arrived yet (markers, actions); empty once everything has."""
    elapsed_s: float
    """Since the first event was fired."""
    deadline_s: float
    """The latest deadline, from the same start."""
    done: bool = False
    """The watcher stopped waiting (everything arrived, or it gave up)."""


Progress = Callable[[WaitProgress], None]
"""How a watcher tells its caller what it waits for (the pytest side draws it: fixtures/progress.py).
Called before every poll and once when the wait ends."""


def no_progress(_: WaitProgress) -> None:
    """The default: nobody is shown anything."""


@dataclass
class Delivery:
    marker: str
    fired_at: float
    deadline_s: float
    arrived_at: float | None = None
    evidence: dict = field(default_factory=dict)
    polls: int = 0
    waited_for_rate_limit_s: float = 0.0
    impossible: str | None = None
    """Why the delivery certainly cannot come (the watcher stopped at once instead of waiting)."""

    @property
    def seconds(self) -> float | None:
        return None if self.arrived_at is None else self.arrived_at - self.fired_at

    @property
    def on_time(self) -> bool:
        return self.seconds is not None and self.seconds <= self.deadline_s


def slack_delivery_blocked(reader: SlackReader, channel_id: str, sentry: SentryApp, *,
                           sentry_posts_publicly: bool = True) -> str | None:
    """Why Sentry's post certainly cannot reach the channel, or None while it still may.

    Certain: the channel is archived (chat.postMessage answers is_archived), or Sentry's bot is not
    a member where membership is needed: a private channel, or any channel when Sentry's Slack
    integration lacks `chat:write.public` (chat.postMessage answers not_in_channel). A public
    channel is not enough to be sure: with chat:write.public Sentry posts without joining."""
    info = reader.channel_info(channel_id)
    name = "#" + (info.get("name") or channel_id)
    if info.get("is_archived"):
        return f"{name} is archived: Slack refuses every post there (is_archived)"
    if sentry.bot_user and (info.get("is_private") or not sentry_posts_publicly):
        if sentry.bot_user not in reader.members(channel_id):
            why = ("a private channel" if info.get("is_private")
                   else "Sentry's Slack integration lacks chat:write.public")
            return (f"Sentry's bot {sentry.bot_user} is not a member of {name} ({why}): its posts fail with "
                    "not_in_channel")
    return None


class SlackChannelWatcher:
    """One poller for one channel, serving every marker waiting on it (one history call per poll).

    Only Sentry's posts count (`sentry`: its app, clients/slack.SentryApp), and only those carrying
    a marker: a person quoting the marker, PagerDuty's app or another run's post never delivers it.
    `blocked` says why the delivery certainly cannot come (slack_delivery_blocked); asked once the
    first poll found not everything, it ends the wait at once with that reason."""

    def __init__(self, reader: SlackReader, channel_id: str, since: float, *, poll_interval: float = 1.0,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 progress: Progress = no_progress, sentry: SentryApp | None = None,
                 blocked: Callable[[], str | None] | None = None):
        self.reader, self.channel_id = reader, channel_id
        self.progress = progress
        self.sentry = sentry if sentry is not None else SentryApp()
        self.blocked = blocked
        # CI clocks drift: start a little before the first send.
        self.oldest = since - 5.0
        self.poll_interval = poll_interval
        self._clock, self._sleep = clock, sleep
        self.found: dict[str, dict] = {}
        self.polls = 0
        self.rate_limited_s = 0.0

    def _poll(self, markers: list[str]) -> None:
        self.polls += 1
        messages = self.reader.history(self.channel_id, self.oldest)
        self.sentry.learn(messages)
        for message in messages:
            if not self.sentry.posted(message):
                continue  # a person, PagerDuty's app, another bot: never Sentry's delivery
            for marker in markers:
                if marker not in self.found and contains(message, marker):
                    self.found[marker] = message

    def wait_for(self, deliveries: list[Delivery], read_budget: float = 30.0) -> list[Delivery]:
        """Poll until every marker is found or the latest deadline (plus grace) has passed, with
        at least one successful poll at or after that moment. Waiting out Slack's rate limits has
        its own budget (`read_budget` past the start or the deadline, whichever is later): a
        slow reader must not turn an on-time delivery into a missing one."""
        if not self.sentry.known:
            raise TargetUnavailable("paymon cannot tell Sentry's posts from others' in Slack: set "
                                    "integrations.slack.sentry_bot_user in monitoring.yaml (Sentry's app's Member ID)")
        markers = [d.marker for d in deliveries]
        give_up = max(d.fired_at + d.deadline_s + late_grace(d.deadline_s) for d in deliveries)
        read_until = max(give_up, self._clock() + read_budget)
        impossible, asked = None, False
        interval = self.poll_interval
        start = min(d.fired_at for d in deliveries)
        deadline = max(d.fired_at + d.deadline_s for d in deliveries) - start
        while True:
            polled_at = self._clock()
            self.progress(WaitProgress("Slack", " ".join(m for m in markers if m not in self.found),
                                       polled_at - start, deadline))
            try:
                self._poll(markers)
            except SlackRateLimited as exc:
                wait = min(exc.retry_after, read_until - self._clock())
                if wait <= 0:
                    raise TargetUnavailable(f"{exc}; paymon's read budget ran out while waiting") from None
                self.rate_limited_s += wait
                self._sleep(wait)
                continue
            if all(m in self.found for m in markers):
                break
            if self.blocked is not None and not asked:
                # Asked even when the deadline has passed already: the reason is the finding.
                asked = True
                impossible = self.blocked()
                if impossible is not None:
                    break  # certain: waiting out the deadline would only delay the same verdict
            if polled_at >= give_up:
                break
            # Poll fast first, then back off; the last poll lands on give_up itself.
            self._sleep(min(interval, max(give_up - self._clock(), 0.0)))
            interval = min(interval * 1.5, 10.0)
        self.progress(WaitProgress("Slack", " ".join(m for m in markers if m not in self.found),
                                   self._clock() - start, deadline, done=True))
        for delivery in deliveries:
            message = self.found.get(delivery.marker)
            delivery.polls, delivery.waited_for_rate_limit_s = self.polls, self.rate_limited_s
            if message is not None:
                delivery.arrived_at = float(message["ts"])
                delivery.evidence = {"ts": message["ts"], "text": (message.get("text") or "")[:200],
                                     "bot_id": message.get("bot_id"), "app_id": app_of(message)}
            else:
                delivery.impossible = impossible
        return deliveries


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@dataclass
class PageWatch:
    """What the PagerDuty watcher found for one test event."""

    delivery: Delivery
    incident: dict | None = None
    alert: dict | None = None
    """paymon's alert: from Sentry's integration on the service, carrying the event id or marker."""
    entries: list[dict] = field(default_factory=list)
    grouped: bool = False
    """The alert joined an incident another alert opened (alert grouping, verified §13): that
    incident's title, urgency and assignees are not paymon's doing."""
    cannot_arrive: str | None = None
    """Why the watcher stopped before its deadline: it is certain the delivery cannot come."""

    def assigned(self, user_ids: set[str]) -> set[str]:
        """The on-call users (of `user_ids`) an assign_log_entry gave the incident to."""
        return {u for e in self.entries if e.get("type") == "assign_log_entry" for u in _entry_users(e)} & user_ids

    def notified_high(self) -> list[str]:
        """Who a notify_log_entry reached while the incident was high urgency (a person paged)."""
        if (self.incident or {}).get("urgency") != "high":
            return []
        return sorted({u for e in self.entries if e.get("type") == "notify_log_entry" for u in _entry_users(e)})


class PagerDutyWatcher:
    """Finds the alert a test event opened on one service, by the incidents' alerts (not their
    titles: grouping keeps the first alert's title, verified §13), counting only alerts of Sentry's
    integration on that service; then waits for the incident's assignment to the on-call user.

    It stops early, failing with the reason, once the delivery cannot come: the service disabled or
    in maintenance (PagerDuty accepts the event and opens nothing), nobody on call at level 1 (the
    incident would be assigned to nobody), or no integration of the service holding Sentry's key."""

    def __init__(self, client, service: dict, *, sentry_integration_ids: set[str] | None = None,
                 poll_interval: float = 2.0, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, progress: Progress = no_progress):
        self.client, self.service = client, service
        self.progress = progress
        self.sentry_integration_ids = sentry_integration_ids
        """None: unknown (the alert is then pinned by the event id alone)."""
        self.poll_interval = poll_interval
        self._clock, self._sleep = clock, sleep
        self.polls = 0
        self._alert_counts: dict[str, int] = {}

    @property
    def _name(self) -> str:
        return repr(self.service.get("name") or self.service.get("id"))

    def wait_for(self, delivery: Delivery, *, event_id: str | None, on_call_user_ids: set[str]) -> PageWatch:
        watch = PageWatch(delivery)
        give_up = delivery.fired_at + delivery.deadline_s + late_grace(delivery.deadline_s)
        since = iso(delivery.fired_at - 60)
        interval = self.poll_interval
        deadline = delivery.deadline_s
        watch.cannot_arrive = self._cannot_arrive_before(on_call_user_ids)
        while watch.cannot_arrive is None:
            self.progress(WaitProgress("PagerDuty", delivery.marker if watch.alert is None else
                                       f"{delivery.marker} (assignment)", self._clock() - delivery.fired_at, deadline))
            self.polls += 1
            if watch.alert is None:
                found = self._find(delivery.marker, event_id, since)
                if found is not None:
                    watch.incident, watch.alert = found
                    watch.grouped = not _opened_by(watch.incident, watch.alert)
            if watch.alert is not None:
                watch.entries = self.client.log_entries(watch.incident["id"])
                if watch.grouped or watch.assigned(on_call_user_ids):
                    break
            else:
                watch.cannot_arrive = self._cannot_arrive_now()
                if watch.cannot_arrive:
                    break
            if self._clock() >= give_up:
                break
            # The last poll lands on give_up itself, so a late delivery is seen as late, not missing.
            self._sleep(min(interval, max(give_up - self._clock(), 0.0)))
            interval = min(interval * 1.5, 15.0)
        self.progress(WaitProgress("PagerDuty", "" if watch.alert is not None else delivery.marker,
                                   self._clock() - delivery.fired_at, deadline, done=True))
        delivery.polls = self.polls
        if watch.alert is not None:
            # PagerDuty stamps whole seconds: the alert came within the second after created_at, so
            # judge by the end of that second (never flatter a late page).
            created = parse_iso(watch.alert["created_at"])
            delivery.arrived_at = created + 0.999 if created == int(created) else created
            delivery.evidence = {"incident": watch.incident.get("id"), "alert": watch.alert.get("id"),
                                 "urgency": watch.incident.get("urgency"), "title": watch.incident.get("title"),
                                 "grouped": watch.grouped, "created_at": watch.alert.get("created_at")}
        return watch

    # --- certain failures ------------------------------------------------------------------------

    def _cannot_arrive_before(self, on_call_user_ids: set[str]) -> str | None:
        if self.sentry_integration_ids is not None and not self.sentry_integration_ids:
            return (f"no integration of PagerDuty service {self._name} holds the routing key in Sentry's service "
                    "table, so PagerDuty refuses Sentry's events")
        if not on_call_user_ids:
            policy = (self.service.get("escalation_policy") or {}).get("summary") or "its escalation policy"
            return (f"nobody is on call at level 1 of {policy!r} (service {self._name}): the incident would be "
                    "assigned to nobody (its incident, if one opens, is left to the next run's sweep)")
        return None

    def _cannot_arrive_now(self) -> str | None:
        status = self.client.service(self.service["id"]).get("status")
        if status == "disabled":
            return f"PagerDuty service {self._name} is disabled: it accepts Sentry's event and opens no incident"
        if status == "maintenance":
            return (f"PagerDuty service {self._name} is in a maintenance window: events open no incident "
                    "until it ends")
        return None

    # --- finding paymon's alert -------------------------------------------------------------------

    def _find(self, marker: str, event_id: str | None, since: str) -> tuple[dict, dict] | None:
        service_id = self.service["id"]
        candidates = {i["id"]: i for i in self.client.incidents(since=since, service_id=service_id)}
        for incident in self.client.open_incidents(service_id):
            candidates.setdefault(incident["id"], incident)
        for incident in candidates.values():
            count = (incident.get("alert_counts") or {}).get("all")
            if count is not None and self._alert_counts.get(incident["id"]) == count:
                continue  # no new alert on it since the last look
            alerts = self.client.incident_alerts(incident["id"])
            self._alert_counts[incident["id"]] = len(alerts) if count is None else count
            for alert in alerts:
                if self._is_ours(alert, marker, event_id):
                    return incident, alert
        return None

    def _is_ours(self, alert: dict, marker: str, event_id: str | None) -> bool:
        integration = (alert.get("integration") or {}).get("id")
        if self.sentry_integration_ids is not None and integration not in self.sentry_integration_ids:
            return False  # another integration (or a person) on the same service
        details = (alert.get("body") or {}).get("details") or {}
        if event_id and isinstance(details, dict) and details.get("eventID") == event_id:
            return True
        return self.sentry_integration_ids is not None and marker in (alert.get("summary") or "")


def _opened_by(incident: dict, alert: dict) -> bool:
    """The incident's first alert is this one: its dedup key is the incident's key."""
    key = incident.get("incident_key")
    return key is None or key == alert.get("alert_key")


def _entry_users(entry: dict) -> list[str]:
    users = [a.get("id") for a in entry.get("assignees") or []]
    if (entry.get("user") or {}).get("id"):
        users.append(entry["user"]["id"])
    return [u for u in users if u]


def sentry_integration_ids(service: dict, sentry_integrations: list[dict]) -> set[str]:
    """The service's integrations holding a routing key Sentry's PagerDuty integration sends this
    service's alerts with (its service table), from `GET /services/{id}?include[]=integrations`."""
    name = (service.get("name") or "").casefold()
    keys = {row.get("integration_key") for i in sentry_integrations
            if (i.get("provider") or {}).get("key") == "pagerduty"
            for row in (i.get("configData") or {}).get("service_table") or ()
            if (row.get("service") or "").casefold() == name}
    return {i["id"] for i in service.get("integrations") or () if i.get("integration_key") in keys - {None}}


def acknowledgements(entries: list[dict]) -> list[tuple[float, str]]:
    """(when, who) of every acknowledgement in an incident's log, oldest first. The incident's own
    `acknowledgements[]` empties once it is resolved (verified §15), so the log is the record; the
    spec names the type both acknowledge_log_entry and acknowledgement_log_entry: both count."""
    found = []
    for entry in entries:
        if entry.get("type") in ("acknowledge_log_entry", "acknowledgement_log_entry"):
            agent = entry.get("agent") or {}
            if agent.get("type", "user_reference").startswith("user") and agent.get("id"):
                found.append((parse_iso(entry["created_at"]), agent["id"]))
    return sorted(found)
