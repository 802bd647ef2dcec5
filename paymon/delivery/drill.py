"""Alert drill: make each of the six alerts really fire, and prove every action it declares arrived.

Where `paymon.delivery.endtoend` proves the integration path with alerts of paymon's own (the synthetic
checks), the drill trips the production alerts themselves. For each alert of monitoring.yaml:

  1. `plan` derives test-tagged events from the alert's `AlertSpec`: a message and tags that
     satisfy its parsed filter, one of its levels, one of its event types, its environment. Each
     planned event is checked with `paymon.rules.query.matches` against the alert's predicate
     (levels AND filter) before anything is sent, and preferably matches no *other* alert, so one
     alert's batch does not count towards another's. The message starts with the marker
     `PAYMON-DRILL-<RUN>-<N>` (N = the alert's position in monitoring.yaml); every event carries
     `test:true`, `paymon_run:<run>` and `paymon_drill:<alert slug>`.
  2. "Just over": `threshold + 1` events (1 for an any-occurrence alert) must fire the alert.
     "Just under": `threshold` events (none for any-occurrence) must not. The under-batch needs a
     clock paymon controls (the in-process sandbox: it advances the clock past the window between
     the two batches); elsewhere it is skipped, and the result says so.
  3. `Drill.wait` reads every declared action back where people see it: each Slack channel (a
     post by Sentry's app at or after the over-batch naming the alert or carrying the marker:
     metric alerts carry no event data, slack-api.md §6.2; a person or PagerDuty's app naming the
     alert never counts, nor a reply in the thread of an older notification), the PagerDuty
     service (an alert of Sentry's integration on the service, in whatever incident grouping put
     it, created after firing, naming the alert or carrying the marker; then the page's
     acknowledgement by the level-1 on-call, §9 "On-call engineer confirmed PagerDuty page received"),
     e-mail (only in the sandbox's outbox; against live services paymon cannot read anyone's
     mailbox, and says so). Names match as everywhere (paymon/rules/names.py). Afterwards only
     what carries the drill's marker is resolved; an incident matched by name alone is listed.

Deadlines are monitoring.yaml's `delivery` (Slack; PagerDuty); e-mail, which has none, uses
Slack's. All waiting goes through `clock`/`sleep`, so in the sandbox "sleeping" advances the
sandbox clock instead of the wall clock (time is a setting there, see paymon.sandbox.hub).
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from paymon.delivery.endtoend import Progress, WaitProgress, iso, late_grace, no_progress, parse_iso
from paymon.rules import query as q
from paymon.rules.names import mentions
from paymon.clients.slack import SentryApp, find_channel, message_texts

DRILL_TAG = "paymon_drill"
_RESOLVED = re.compile(r"\bResolved\b")


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def run_token(run_id: str) -> str:
    return "".join(c for c in run_id.upper() if c.isalnum())[:10]


def drill_marker(run_id: str, number: int, under: bool = False) -> str:
    """`PAYMON-DRILL-<RUN>-<N>` ([A-Z0-9-] only: Slack's mrkdwn and truncation keep it intact);
    the under-batch's is `PAYMON-DRILL-<RUN>-U<N>`."""
    return f"PAYMON-DRILL-{run_token(run_id)}-{'U' if under else ''}{number}"


def has_marker(text: str, marker: str) -> bool:
    """`marker` as a whole token: PAYMON-DRILL-X-1 is not found in PAYMON-DRILL-X-12."""
    return re.search(re.escape(marker) + r"(?![A-Za-z0-9])", text) is not None


# --- events that satisfy an alert --------------------------------------------------------------------


@dataclass(frozen=True)
class _Choice:
    """What one way of satisfying a predicate asks of an event."""

    message: tuple[str, ...] = ()
    tags: tuple[tuple[str, str], ...] = ()
    fields: tuple[tuple[str, str], ...] = ()

    def merge(self, other: "_Choice") -> "_Choice | None":
        tags, fields = dict(self.tags), dict(self.fields)
        for key, value in other.tags:
            if tags.setdefault(key, value) != value:
                return None
        for key, value in other.fields:
            if fields.setdefault(key, value) != value:
                return None
        return _Choice(self.message + other.message, tuple(sorted(tags.items())), tuple(sorted(fields.items())))


_EVENT_FIELDS = {"level", "environment", "transaction", "release", "platform", "logger"}


def _term_choices(term: q.Term) -> list[_Choice]:
    if term.negated:
        return [_Choice()]  # the event simply lacks it; `matches` confirms
    value = term.value
    if term.op == "glob":
        value = value.replace("\\*", "\x00").replace("*", "x").replace("\x00", "*")
    elif term.op == "has":
        value = "paymon-drill"
    elif term.op in ("gt", "gte", "lt", "lte"):
        bound = float(value)
        value = str(int(bound + 1) if term.op == "gt" else int(bound - 1) if term.op == "lt" else int(bound))
    if term.key == "message" or term.key == "error.value":
        return [_Choice(message=(value,))]
    if term.key == "event.type":
        return [_Choice(fields=(("type", value),))]
    if term.key in _EVENT_FIELDS:
        return [_Choice(fields=((term.key, value),))]
    if term.key in ("error.type", "transaction.status", "user.email", "user.id", "is_transaction"):
        return []  # not produced by a drill message
    return [_Choice(tags=((term.key, value),))]


def _choices(pred) -> list[_Choice]:
    if pred is None:
        return [_Choice()]
    if isinstance(pred, q.Term):
        return _term_choices(pred)
    if isinstance(pred, q.Or):
        return [c for item in pred.items for c in _choices(item)]
    combos = []
    for parts in itertools.product(*(_choices(item) for item in pred.items)):
        merged: _Choice | None = _Choice()
        for part in parts:
            merged = merged.merge(part) if merged is not None else None
        if merged is not None:
            combos.append(merged)
        if len(combos) >= 64:
            break
    return combos


def predicate(alert) -> object:
    """The alert's event predicate from monitoring.yaml: levels AND filter."""
    levels = q.any_of(q.Term("level", "eq", level) for level in alert.events.levels) if alert.events.levels else None
    return q.all_of([levels, q.parse(alert.filter)])


def _original_case(fragment: str, source: str) -> str:
    """The filter's own spelling of a lower-cased `contains` value ("Usage reporting failed")."""
    match = re.search(re.escape(fragment), source, re.IGNORECASE)
    return match.group(0) if match else fragment


@dataclass
class DrillEvent:
    marker: str
    message: str
    level: str
    environment: str
    event_type: str  # "default" (a captureMessage) or "error" (an exception)
    tags: dict[str, str]
    fingerprint: list[str]
    extra: dict = field(default_factory=dict)
    event_id: str | None = None

    def payload(self) -> dict:
        """The event as sent (and as `matches` judges it)."""
        event = {"level": self.level, "environment": self.environment, "tags": dict(self.tags),
                 "fingerprint": list(self.fingerprint), **self.extra}
        if self.event_type == "error":
            event["exception"] = {"values": [{"type": "PaymonDrillError", "value": self.message}]}
        else:
            event["message"] = self.message
        return event


def _event_matches(alert, event: dict, environment: str) -> bool:
    if alert.environment is not None and event.get("environment") != alert.environment:
        return False
    kind = "error" if event.get("exception") else "default"
    if alert.events.types and kind not in alert.events.types:
        return False
    return q.matches(predicate(alert), event)


class PlanError(ValueError):
    """No event satisfying the alert could be derived from monitoring.yaml."""


def plan_event(alert, number: int, run_id: str, *, environment: str, others=(), under: bool = False
               ) -> tuple[DrillEvent, list[str]]:
    """One event that the alert selects (checked with `matches`), preferring one no other alert
    selects. Returns it and the names of the other alerts it also matches (ideally none)."""
    marker = drill_marker(run_id, number, under)
    env = alert.environment or environment
    level = alert.events.levels[0] if alert.events.levels else "error"
    types = alert.events.types or ["default"]
    event_type = "default" if "default" in types else types[0]
    tags = {"test": "true", "paymon_run": run_id, DRILL_TAG: slug(alert.name)}
    fingerprint = ["paymon-drill", run_id, slug(alert.name), "under" if under else "over"]
    candidates = []
    for choice in _choices(q.parse(alert.filter)):
        fields = dict(choice.fields)
        if "level" in fields and alert.events.levels and fields["level"] not in alert.events.levels:
            continue
        words = " ".join(_original_case(m, alert.filter) for m in choice.message)
        message = f"{marker} {words} (paymon alert drill, ignore)" if words else f"{marker} paymon alert drill (ignore)"
        event = DrillEvent(marker, message, fields.pop("level", level), fields.pop("environment", env),
                           fields.pop("type", event_type), {**dict(choice.tags), **tags}, fingerprint, fields)
        payload = event.payload()
        if not _event_matches(alert, payload, env):
            continue
        cross = [o.name for o in others if o.name != alert.name and _event_matches(o, payload, env)]
        # Fewest cross-matches first; then a message over a bare tag (what the guide's errors say).
        candidates.append((len(cross), 0 if choice.message else 1, event, cross))
    if not candidates:
        raise PlanError(f"{alert.name}: no event satisfies filter {alert.filter!r} with levels "
                        f"{alert.events.levels or 'any'} and types {alert.events.types}")
    _, _, event, cross = min(candidates, key=lambda c: (c[0], c[1]))
    return event, cross


def batch_sizes(alert) -> tuple[int, int]:
    """(just under, just over): `threshold` and `threshold + 1` events; any-occurrence: (0, 1)."""
    if alert.comparator != ">":
        raise PlanError(f"{alert.name}: the drill only knows '>' thresholds, got {alert.comparator!r}")
    threshold = int(alert.threshold)
    return threshold, threshold + 1


# --- firing -----------------------------------------------------------------------------------------


def fire(events: list[DrillEvent], dsn: str, flush_timeout: float = 10.0) -> list[DrillEvent]:
    """Send the events with sentry-sdk (a client of its own, no integrations, nothing global)."""
    import sentry_sdk

    client = sentry_sdk.Client(dsn=dsn, default_integrations=False, auto_enabling_integrations=False,
                               release="paymon-drill")
    try:
        for event in events:
            with sentry_sdk.new_scope() as scope:
                scope.set_client(client)
                event.event_id = scope.capture_event(event.payload())
        client.flush(timeout=flush_timeout)
    finally:
        client.close(timeout=flush_timeout)
    return events


# --- reading the actions back ------------------------------------------------------------------------


@dataclass
class Expected:
    """One declared action of one alert, and what was found for it."""

    alert: str
    kind: str  # "slack" | "pagerduty" | "email"
    target: str  # "#payments-alerts", the PagerDuty service, the recipient name
    marker: str
    fired_at: float
    deadline_s: float
    events: int = 0
    arrived_at: float | None = None
    evidence: dict = field(default_factory=dict)
    problem: str | None = None
    """Why it cannot be read (channel missing, recipients unresolvable): a failure."""
    unverifiable: str | None = None
    """Why paymon cannot read this action back at all (e-mail against live services)."""
    allowance_s: float = 0.0
    """Sentry's evaluation cadence (monitoring.yaml `delivery.evaluation`): counted from the events
    sent, the action may take deadline + allowance; counted from when Sentry fired, the deadline."""
    sentry_fired_at: float | None = None
    """When Sentry fired, by its own record (paymon.delivery.fired), or None (unknown)."""
    acknowledge_within: float | None = None
    """PagerDuty only: the page counts as confirmed once a level-1 on-call user acknowledged it
    within this many seconds of the incident opening (monitoring.yaml delivery.pagerduty)."""
    on_call: dict[str, str] = field(default_factory=dict)
    """PagerDuty only: user id -> name of who is on call at level 1 (who must acknowledge)."""
    acknowledged_at: float | None = None
    acknowledged_by: str | None = None
    acknowledgement_final: bool = False
    """The acknowledgement's time is up (or it came): nothing more to wait for."""

    @property
    def awaits_acknowledgement(self) -> bool:
        return (self.kind == "pagerduty" and self.acknowledge_within is not None and self.arrived_at is not None
                and self.problem is None and self.acknowledged_at is None and not self.acknowledgement_final)

    def confirmation_failure(self) -> str | None:
        """§9 "On-call engineer confirmed PagerDuty page received": None once a level-1 on-call
        user acknowledged the incident within `acknowledge_within` of it opening."""
        if self.kind != "pagerduty" or self.acknowledge_within is None:
            return None
        if self.arrived_at is None or self.problem is not None:
            return f"{self.alert}: {self.label} expected a page to confirm, actual none ({self.failure()})"
        incident = self.evidence.get("incident")
        who = ", ".join(f"{name} ({uid})" for uid, name in sorted(self.on_call.items())) or "nobody on call at level 1"
        if self.acknowledged_at is None:
            return (f"{self.alert}: incident {incident} on {self.target!r} expected acknowledged by the on-call "
                    f"engineer ({who}) within {self.acknowledge_within:g}s, actual not acknowledged")
        took = self.acknowledged_at - self.arrived_at
        if took > self.acknowledge_within:
            return (f"{self.alert}: incident {incident} on {self.target!r} expected acknowledged within "
                    f"{self.acknowledge_within:g}s, actual after {took:.0f}s by {self.acknowledged_by}")
        return None

    @property
    def label(self) -> str:
        return f"{self.kind} {self.target}"

    @property
    def seconds(self) -> float | None:
        return None if self.arrived_at is None else self.arrived_at - self.fired_at

    @property
    def seconds_from_sentry(self) -> float | None:
        """From Sentry firing to the action arriving: the integration's own delay."""
        if self.arrived_at is None or self.sentry_fired_at is None:
            return None
        return self.arrived_at - self.sentry_fired_at

    def _timing(self) -> str:
        """Both figures, so a slow Sentry and a slow Slack/PagerDuty are told apart."""
        if self.sentry_fired_at is None:
            return "Sentry's fire time unknown"
        fired = f"Sentry fired {self.sentry_fired_at - self.fired_at:.1f}s after the events"
        if self.arrived_at is None:
            return fired
        return f"{fired}, {self.kind} {self.seconds_from_sentry:.1f}s after that"

    @property
    def done(self) -> bool:
        if self.awaits_acknowledgement:
            return False
        return self.arrived_at is not None or self.problem is not None or self.unverifiable is not None

    def failure(self) -> str | None:
        """'<alert>: <action> expected ..., actual ...' or None when it arrived on time."""
        if self.unverifiable is not None:
            return None
        if self.problem is not None:
            return f"{self.alert}: {self.label} expected delivery, actual {self.problem}"
        if self.arrived_at is None and self.kind == "email" and self.evidence.get("actual_to"):
            return (f"{self.alert}: {self.label} expected mail to {', '.join(self.evidence.get('expected_to') or [])}, "
                    f"actual mail to {', '.join(self.evidence['actual_to'])} only")
        allowed = self.deadline_s + self.allowance_s
        within = (f"{self.deadline_s:g}s of Sentry firing, {allowed:g}s" if self.allowance_s
                  else f"{self.deadline_s:g}s")
        if self.arrived_at is None:
            fired = ("; Sentry shows no firing" if self.sentry_fired_at is None
                     else f"; {self._timing()}")
            return (f"{self.alert}: {self.label} expected a notification within {within} of "
                    f"{self.events or 'the'} drill events ({self.marker}), actual none{fired}")
        from_sentry = self.seconds_from_sentry
        if self.seconds > allowed or (from_sentry is not None and from_sentry > self.deadline_s):
            return (f"{self.alert}: {self.label} expected within {within} of the events, "
                    f"actual after {self.seconds:.1f}s ({self._timing()})")
        return None


def slack_names_alert(message: dict, alert: str, marker: str) -> bool:
    """Sentry's post for this alert: an issue alert shows the event (the marker); a metric alert
    only the rule name (`Critical: <name>`, never `Resolved: <name>`)."""
    import html

    texts = [html.unescape(t) for t in message_texts(message)]
    if any(has_marker(t, marker) for t in texts):
        return True
    head = html.unescape(message.get("text") or "")
    return mentions(head, alert) and not _RESOLVED.search(head)


def counts_as_sentrys_post(message: dict, alert: str, marker: str, sentry: SentryApp, since: float) -> bool:
    """Whether `message` is Sentry's notification of this drill: posted by Sentry's app (never a
    person, PagerDuty's app or another bot naming the alert: issue 13 item 2), at or after `since`,
    naming the alert or carrying the marker (slack_names_alert), and not a reply in the thread of a
    notification older than the drill (Sentry threads an incident's or issue's later notifications
    under its first post: a broadcast "Critical" there is an earlier, real firing escalating)."""
    if float(message.get("ts") or 0) < since or not sentry.posted(message):
        return False
    thread = message.get("thread_ts")
    if thread and thread != message.get("ts") and float(thread) < since:
        return False
    return slack_names_alert(message, alert, marker)


def incident_names_alert(incident: dict, alert: str, marker: str) -> bool:
    title = (incident.get("title") or "") + " " + (incident.get("summary") or "")
    return mentions(title, alert) or has_marker(title, marker)


class Readback:
    """Polls Slack, PagerDuty and (sandbox) the e-mail outbox for every expected action at once,
    one history call per channel per poll, until all arrived or the last deadline (plus grace)."""

    def __init__(self, *, slack_reader=None, pagerduty=None, outbox: Callable[[], list[dict]] | None = None,
                 email_recipients: Callable[[str], tuple[list[str], str | None]] | None = None,
                 clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
                 drift: float = 5.0, poll_interval: float = 1.0,
                 no_outbox_reason: str = "against live services paymon reads no mailbox",
                 progress: Progress = no_progress, sentry: SentryApp | None = None,
                 sentry_integrations: list[dict] | None = None,
                 slack_blocked: Callable[[str], str | None] | None = None):
        self.slack_reader, self.pagerduty = slack_reader, pagerduty
        self.sentry = sentry if sentry is not None else SentryApp()
        """Sentry's Slack app: only its posts count (clients/slack.SentryApp)."""
        self.slack_blocked = slack_blocked
        """channel id -> why Sentry's post certainly cannot reach it (endtoend.slack_delivery_blocked)."""
        self.progress = progress
        self.outbox, self.email_recipients = outbox, email_recipients
        self.clock, self.sleep, self.drift, self.poll_interval = clock, sleep, drift, poll_interval
        self.no_outbox_reason = no_outbox_reason
        self._channels: dict[str, dict | None] = {}
        self._services: dict[str, dict | None] = {}
        self._read_at: dict[str, float] = {}
        """channel name -> when its history was last read (rate limits can hold a read back)."""
        self.polls = 0
        self.incidents: dict[str, str] = {}
        """incident id -> service id, for every incident carrying the drill's marker (to resolve afterwards)."""
        self.sentry_integrations = sentry_integrations
        """Sentry's integrations (GET /organizations/{org}/integrations/): whose PagerDuty alerts count."""
        self._sentry_ids: dict[str, set[str]] = {}
        self._incident_alerts: dict[str, tuple[int | None, list[dict]]] = {}
        self.own_alerts: dict[str, set[str]] = {}
        """incident id -> the drill's alerts on it (carrying the marker): cleanup resolves these, and
        the incident only when nothing else is open on it."""
        self.named_only: dict[str, str] = {}
        """incident id -> title, for incidents matched by the alert's name alone: maybe a real page,
        so cleanup lists them and never touches them (issue 13 item 2)."""

    # --- preparing what can be prepared once -------------------------------------------------------

    def _channel(self, name: str) -> dict | None:
        if name not in self._channels:
            self._channels[name] = find_channel(self.slack_reader.channels(), name)
        return self._channels[name]

    def _service(self, name: str) -> dict | None:
        if name not in self._services:
            self._services[name] = self.pagerduty.find_service(name)
        return self._services[name]

    def _prepare(self, expected: list[Expected], recipients: dict[str, str]) -> None:
        if any(item.kind == "slack" for item in expected) and not self.sentry.known:
            from paymon.errors import TargetUnavailable

            raise TargetUnavailable("paymon cannot tell Sentry's posts from others' in Slack: set "
                                    "integrations.slack.sentry_bot_user in monitoring.yaml (Sentry's app's Member ID)")
        blocked: dict[str, str | None] = {}
        for item in expected:
            if item.kind == "slack" and self._channel(item.target) is None:
                item.problem = f"channel {item.target} not found in Slack"
            elif item.kind == "slack" and self.slack_blocked is not None:
                channel_id = self._channel(item.target)["id"]
                if channel_id not in blocked:
                    blocked[channel_id] = self.slack_blocked(channel_id)
                if blocked[channel_id]:
                    item.problem = blocked[channel_id]  # certain at once: no wait for the deadline
            elif item.kind == "pagerduty" and self._service(item.target) is None:
                item.problem = f"PagerDuty service {item.target!r} not found"
            elif item.kind == "email":
                if self.outbox is None:
                    item.unverifiable = (f"e-mail cannot be read back ({self.no_outbox_reason}); "
                                         "confirm with the recipients")
                    continue
                key = recipients[item.target]
                addresses, problem = self.email_recipients(key)
                if problem:
                    item.problem = f"recipients of {key} cannot be resolved ({problem})"
                item.evidence["expected_to"] = sorted(addresses)
                item.evidence["key"] = key

    # --- polling -------------------------------------------------------------------------------------

    def _poll_slack(self, pending: list[Expected]) -> float:
        """One history read per channel; a rate-limited channel waits for the next poll without
        holding up the others. Returns how long Slack asked to wait (0: not rate-limited)."""
        from paymon.clients.slack import SlackRateLimited

        by_channel: dict[str, list[Expected]] = {}
        for item in pending:
            by_channel.setdefault(item.target, []).append(item)
        retry_after = 0.0
        # The channel read longest ago first: under a per-method rate limit (Slack's non-Marketplace
        # history limit) every channel gets its turn.
        for name in sorted(by_channel, key=lambda n: self._read_at.get(n, float("-inf"))):
            items = by_channel[name]
            channel = self._channel(name)
            oldest = min(i.fired_at for i in items) - self.drift
            try:
                messages = self.slack_reader.history(channel["id"], oldest)
            except SlackRateLimited as exc:
                retry_after = max(retry_after, exc.retry_after)
                continue
            self._read_at[name] = self.clock()
            self.sentry.learn(messages)
            for item in items:
                hits = [m for m in messages
                        if counts_as_sentrys_post(m, item.alert, item.marker, self.sentry, item.fired_at - self.drift)]
                if hits:
                    first = min(hits, key=lambda m: float(m["ts"]))
                    item.arrived_at = float(first["ts"])
                    item.evidence = {"ts": first["ts"], "text": (first.get("text") or "")[:200],
                                     "app_id": first.get("app_id")}
        return retry_after

    def _poll_pagerduty(self, pending: list[Expected]) -> None:
        """Each service's incidents since the drill (and any still open: grouping adds alerts to an
        older one, verified §13), read through their alerts: only an alert of Sentry's integration
        on the service counts (never another integration's or a person's incident naming the alert),
        created after the drill fired, naming the alert or carrying the marker."""
        by_service: dict[str, list[Expected]] = {}
        for item in pending:
            if item.arrived_at is None:
                by_service.setdefault(item.target, []).append(item)
        for name, items in by_service.items():
            service = self._service(name)
            since = iso(min(i.fired_at for i in items) - 60)
            incidents = {i["id"]: i for i in self.pagerduty.incidents(since=since, service_id=service["id"])}
            for incident in self.pagerduty.open_incidents(service["id"]):
                incidents.setdefault(incident["id"], incident)
            sentry_ids = self._sentry_integrations(service)
            alerts = [(incident, alert) for incident in incidents.values() for alert in self._alerts_of(incident)
                      if sentry_ids is None or (alert.get("integration") or {}).get("id") in sentry_ids]
            for item in items:
                # PagerDuty stamps whole seconds: compare with the second the drill fired in.
                hits = [(incident, alert) for incident, alert in alerts
                        if parse_iso(alert["created_at"]) >= int(item.fired_at) - self.drift
                        and incident_names_alert({"title": alert.get("summary")}, item.alert, item.marker)]
                if hits:
                    incident, alert = min(hits, key=lambda hit: parse_iso(hit[1]["created_at"]))
                    if has_marker(alert.get("summary") or "", item.marker):
                        self.incidents[incident["id"]] = service["id"]
                        self.own_alerts.setdefault(incident["id"], set()).add(alert["id"])
                    else:
                        self.named_only[incident["id"]] = incident.get("title") or incident["id"]
                    item.arrived_at = parse_iso(alert["created_at"])
                    item.evidence = {"incident": incident["id"], "alert": alert["id"], "title": incident.get("title"),
                                     "urgency": incident.get("urgency"), "created_at": alert["created_at"],
                                     "incident_created_at": incident.get("created_at")}
        self._poll_acknowledgements([i for i in pending if i.awaits_acknowledgement])

    def _alerts_of(self, incident: dict) -> list[dict]:
        """The incident's alerts, read again only when its alert count changed."""
        count = (incident.get("alert_counts") or {}).get("all")
        cached = self._incident_alerts.get(incident["id"])
        if cached is None or count is None or cached[0] != count:
            cached = (count, self.pagerduty.incident_alerts(incident["id"]))
            self._incident_alerts[incident["id"]] = cached
        return cached[1]

    def _sentry_integrations(self, service: dict) -> set[str] | None:
        """The service's integrations Sentry sends with (its service table's key); None: unknown."""
        if self.sentry_integrations is None:
            return None
        if service["id"] not in self._sentry_ids:
            from paymon.delivery.endtoend import sentry_integration_ids

            detail = self.pagerduty.service(service["id"], integrations=True)
            self._sentry_ids[service["id"]] = sentry_integration_ids(detail, self.sentry_integrations)
        return self._sentry_ids[service["id"]]

    def _on_call(self, service: dict) -> dict[str, str]:
        """user id -> name of everyone on call at level 1 of the service's escalation policy."""
        policy = (service.get("escalation_policy") or {}).get("id")
        if not policy:
            return {}
        return {o["user"]["id"]: o["user"].get("summary") or o["user"]["id"] for o in self.pagerduty.oncalls(policy)
                if o.get("escalation_level") == 1 and o.get("user")}

    def _poll_acknowledgements(self, items: list[Expected]) -> None:
        """The page's acknowledgement, from the incident's log (its acknowledgements[] empties once
        resolved; both spellings of the entry type count: endtoend.acknowledgements)."""
        from paymon.delivery.endtoend import acknowledgements

        now = self.clock()
        for item in items:
            if not item.on_call:
                item.on_call = self._on_call(self._service(item.target))
            for at, user in acknowledgements(self.pagerduty.log_entries(item.evidence["incident"])):
                if user in item.on_call:
                    item.acknowledged_at, item.acknowledged_by = at, f"{item.on_call[user]} ({user})"
                    break
            if item.acknowledged_at is None and now >= _acknowledge_by(item):
                item.acknowledgement_final = True

    def _poll_email(self, pending: list[Expected]) -> None:
        if not pending:
            return
        now = self.clock()
        mails = list(self.outbox())
        for item in pending:
            wanted = set(item.evidence.get("expected_to") or ())
            sent = [m for m in mails if m.get("alert") == item.alert and m.get("level") != "resolved"
                    and float(m.get("sent_at", 0)) >= item.fired_at - self.drift
                    and float(m.get("visible_at", 0)) <= now]
            got = {address for m in sent for address in m.get("to") or ()}
            item.evidence["actual_to"] = sorted(got)
            if sent and wanted <= got:
                item.arrived_at = min(float(m["visible_at"]) for m in sent if set(m.get("to") or ()) & wanted)

    def wait(self, expected: list[Expected], recipients: dict[str, str]) -> list[Expected]:
        self._prepare(expected, recipients)
        if not expected:
            return expected
        give_up = max(_give_up(e) for e in expected)
        # Delivery is judged by the services' own stamps, so a read that Slack's rate limit holds
        # past the deadline still tells on time from late; it may wait this much longer for it.
        channels = len({e.target for e in expected if e.kind == "slack"})
        hard_stop = give_up + max(RATE_LIMIT_PATIENCE, 65.0 * (channels + 1))
        # A page is then waited on for its acknowledgement: at most its deadline + acknowledge_within.
        acks = [e.fired_at + e.deadline_s + e.allowance_s + e.acknowledge_within + late_grace(e.acknowledge_within)
                for e in expected if e.kind == "pagerduty" and e.acknowledge_within is not None]
        hard_stop = max([hard_stop] + [at + 1.0 for at in acks])
        interval = self.poll_interval
        while True:
            self.polls += 1
            pending = [e for e in expected if not e.done]
            self.progress(_drill_progress(expected, pending, self.clock()))
            retry_after = self._poll_slack([e for e in pending if e.kind == "slack"])
            self._poll_pagerduty([e for e in pending if e.kind == "pagerduty"])
            self._poll_email([e for e in pending if e.kind == "email"])
            now = self.clock()
            if not [e for e in expected if not e.done and not self._final(e, now)] or now >= hard_stop:
                break
            if retry_after:
                wait = retry_after
            else:
                # Poll fast first, then back off; the last poll lands on give_up itself.
                wait = min(interval, max(give_up - now, 0.0))
                waiting = [e for e in expected if e.awaits_acknowledgement]
                if waiting:  # past give_up only acknowledgements are awaited: poll to the earliest end
                    wait = min(interval, max(min(_acknowledge_by(e) for e in waiting) - now, 0.0)) or wait
                interval = min(interval * 1.5, 10.0)
            self.sleep(min(wait, max(hard_stop - now, 0.0)))
        self.progress(_drill_progress(expected, [e for e in expected if not e.done], self.clock(), done=True))
        return expected

    def _final(self, item: Expected, now: float) -> bool:
        """Nothing can arrive in time any more: the deadline (plus grace) passed, and for Slack the
        channel was read after that; for a page, its acknowledgement's time passed too."""
        if item.kind == "slack":
            return self._read_at.get(item.target, float("-inf")) >= _give_up(item)
        if item.awaits_acknowledgement:
            return item.acknowledgement_final
        return now >= _give_up(item)


RATE_LIMIT_PATIENCE = 120.0
"""How long past the last deadline a rate-limited Slack read may still be waited for (at least a
minute per channel: a non-Marketplace app reads one history page per minute)."""
PACE_S = 1.5
"""Real time between two alerts' over-batches: Slack takes about one post per second per channel,
and several alerts post to #payments-alerts."""


def _drill_progress(expected: list[Expected], pending: list[Expected], now: float, done: bool = False
                    ) -> WaitProgress:
    """What the drill still waits for; a page already seen waits for its acknowledgement, whose
    deadline (counted from the incident) is then the one that matters."""
    start = min(e.fired_at for e in expected)
    alerts = list(dict.fromkeys(e.alert for e in pending))
    if len(alerts) == 1:
        labels = [f"{e.label} (acknowledgement)" if e.awaits_acknowledgement else e.label for e in pending]
        waiting_for = f"{alerts[0]}: {', '.join(labels)}"
    else:
        waiting_for = f"{len(pending)} actions of {len(alerts)} alerts" if pending else ""
    deadline = max(_deadline(e) for e in expected)
    return WaitProgress("the drill", waiting_for, now - start, deadline - start, done=done)


def _deadline(item: Expected) -> float:
    """The delivery's deadline, or once a page arrived that must be acknowledged, the acknowledgement's."""
    if item.kind == "pagerduty" and item.acknowledge_within is not None and item.arrived_at is not None:
        return item.arrived_at + item.acknowledge_within
    return item.fired_at + item.deadline_s


def _acknowledge_by(item: Expected) -> float:
    """When waiting for a page's acknowledgement stops (the incident's opening + the declared time,
    plus grace, so a late one is seen as late)."""
    return item.arrived_at + item.acknowledge_within + late_grace(item.acknowledge_within)


def _give_up(item: Expected) -> float:
    return item.fired_at + item.deadline_s + item.allowance_s + late_grace(item.deadline_s)


# --- one alert's drill ---------------------------------------------------------------------------------


@dataclass
class AlertDrill:
    alert: str
    marker: str
    over: list[DrillEvent] = field(default_factory=list)
    under: list[DrillEvent] = field(default_factory=list)
    fired_at: float | None = None
    """When the over-batch was sent (the clock the services stamp with)."""
    under_skipped: str | None = None
    """Why the just-under batch was not sent (no controllable clock), or None."""
    under_firings: list[str] = field(default_factory=list)
    """What the just-under batch fired (it must fire nothing)."""
    cross_matches: list[str] = field(default_factory=list)
    expected: list[Expected] = field(default_factory=list)
    error: str | None = None
    engine: str | None = None
    """Sandbox only: what Sentry's alert engine did after the over-batch (explains a failure)."""

    def failures(self) -> list[str]:
        problems = [f"{self.alert}: {self.error}"] if self.error else []
        if self.under_firings:
            problems.append(f"{self.alert}: just-under batch ({len(self.under)} events) expected no firing, "
                            f"actual fired: {'; '.join(self.under_firings)}")
        missing = [f for f in (e.failure() for e in self.expected) if f]
        if missing and self.engine:
            missing = [f"{f} (sandbox Sentry: {self.engine})" for f in missing]
        return problems + missing

    def notes(self) -> list[str]:
        notes = []
        if self.under_skipped:
            notes.append(f"just-under batch not sent: {self.under_skipped}")
        notes += [f"{e.label} not verified: {e.unverifiable}" for e in self.expected if e.unverifiable]
        if self.cross_matches:
            notes.append(f"the drill events also match {', '.join(self.cross_matches)}")
        return notes


def expected_actions(alert, marker: str, fired_at: float, delivery) -> list[Expected]:
    slack_deadline = float(delivery.slack.deadline)
    pd_deadline = float(delivery.pagerduty.deadline) if delivery.pagerduty else slack_deadline
    allowance = delivery.evaluation_allowance(alert.window, alert.count)
    out = []
    for action in alert.actions:
        if action.kind == "slack":
            out.append(Expected(alert.name, "slack", action.slack, marker, fired_at, slack_deadline))
        elif action.kind == "pagerduty":
            out.append(Expected(alert.name, "pagerduty", action.pagerduty.service, marker, fired_at, pd_deadline,
                                acknowledge_within=(float(delivery.pagerduty.acknowledge_within)
                                                    if delivery.pagerduty else None)))
        else:
            out.append(Expected(alert.name, "email", action.email, marker, fired_at, slack_deadline))
    for item in out:
        item.allowance_s = allowance
    return out


def run(alerts, *, spec, run_id: str, dsn: str, readback: Readback, clock: Callable[[], float] = time.time,
        advance: Callable[[float], object] | None = None, firings: Callable[[], list] | None = None,
        numbers: dict[str, int] | None = None, no_clock_reason: str = "",
        sleep: Callable[[float], None] = time.sleep, pace: float = PACE_S,
        sentry_fired: Callable[[str, float], float | None] | None = None) -> dict[str, AlertDrill]:
    """Drill `alerts` (AlertSpecs) one after the other, then read every action back at once.

    `advance` (the sandbox clock's) makes the just-under batch possible: under-batch, check
    `firings()` (the sandbox's alert firings) saw nothing, move past the window, over-batch. Each
    alert also starts a full window after the previous one, so batches never share a window.
    Without `advance` only the over-batches are sent (`no_clock_reason` says why).
    `sentry_fired(alert name, sent at)`: when Sentry fired, by its record (paymon.delivery.fired),
    so each action is timed from the events and from Sentry firing."""
    numbers = numbers or {a.name: i for i, a in enumerate(spec.alerts, 1)}
    longest = max((a.window or 0) for a in spec.alerts) if spec.alerts else 0
    drills: dict[str, AlertDrill] = {}
    recipients = {name: r.key for name, r in spec.recipients.items()}
    for alert in alerts:
        number = numbers[alert.name]
        drill = drills[alert.name] = AlertDrill(alert.name, drill_marker(run_id, number))
        try:
            under_n, over_n = batch_sizes(alert)
            event, drill.cross_matches = plan_event(alert, number, run_id, environment=spec.environment,
                                                    others=spec.alerts)
            under_event, _ = plan_event(alert, number, run_id, environment=spec.environment, others=spec.alerts,
                                        under=True)
        except PlanError as exc:
            drill.error = str(exc)
            continue
        across = alert.count == "across_events"
        drill.over = _batch(event, over_n, across)
        if advance is None:
            drill.under_skipped = no_clock_reason or "no controllable clock"
        elif under_n:
            advance(longest + 1)
            drill.under = _batch(under_event, under_n, across)
            started = clock()
            fire(drill.under, dsn)
            # Sentry judges an alert counted across events on its next subscription update: give
            # it that update before asking whether it fired.
            advance(spec.delivery.evaluation_allowance(alert.window, alert.count) + 1)
            if firings is not None:
                drill.under_firings = [f"{f.level} at +{f.at - started:.1f}s ({len(f.event_ids)} events)"
                                       for f in firings() if f.alert == alert.name and f.level != "resolved"
                                       and f.at >= started]
            advance((alert.window or 0) + 1)
        else:
            advance(longest + 1)  # any occurrence: "just under" is no event at all
        if advance is None and any(d.fired_at for d in drills.values()):
            sleep(pace)
        drill.fired_at = clock()
        fire(drill.over, dsn)
        drill.expected = expected_actions(alert, drill.marker, drill.fired_at, spec.delivery)
        for item in drill.expected:
            item.events = len(drill.over)
        if advance is not None:
            # Time is ours: read this alert back before the next one, so each read sees one alert's posts.
            readback.wait(drill.expected, recipients)
            _when_sentry_fired(drill, sentry_fired)
    if advance is None:
        # Real time: every alert's deliveries travel at once, and are waited for together.
        readback.wait([e for d in drills.values() for e in d.expected], recipients)
        for drill in drills.values():
            _when_sentry_fired(drill, sentry_fired)
    if firings is not None:
        seen = firings()
        for drill in drills.values():
            if drill.fired_at is not None and any(e.failure() for e in drill.expected):
                drill.engine = _engine_summary([f for f in seen if f.alert == drill.alert and f.level != "resolved"
                                                and f.at >= drill.fired_at], drill.fired_at)
    return drills


def _when_sentry_fired(drill: AlertDrill, sentry_fired) -> None:
    if sentry_fired is None or drill.fired_at is None or not drill.expected:
        return
    fired = sentry_fired(drill.alert, drill.fired_at)
    for item in drill.expected:
        item.sentry_fired_at = fired


def _engine_summary(firings: list, since: float) -> str:
    if not firings:
        return "the alert did not fire on the drill events"
    parts = []
    for firing in firings:
        sent = ", ".join(f"{d.kind} {d.target} {d.status}" + (f" ({d.reason})" if d.reason else "")
                         for d in firing.deliveries) or "no actions"
        parts.append(f"{firing.level} at +{firing.at - since:.1f}s: {sent}")
    return "; ".join(parts)


def _batch(event: DrillEvent, count: int, across_events: bool) -> list[DrillEvent]:
    """`count` copies; for an alert counting across issues each is its own issue, so an alert that
    (wrongly) counts per issue stays silent and the drill shows it."""
    return [DrillEvent(event.marker, event.message, event.level, event.environment, event.event_type,
                       dict(event.tags), list(event.fingerprint) + ([str(i)] if across_events else []),
                       dict(event.extra)) for i in range(count)]


__all__ = ["AlertDrill", "DrillEvent", "Expected", "PlanError", "Readback", "batch_sizes", "drill_marker",
           "expected_actions", "fire", "plan_event", "predicate", "slug"]
