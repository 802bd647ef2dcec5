"""State and behaviour of the emulated PagerDuty account; never sees an HTTP request.

`PagerDutyBackend(world["pagerduty"], hub=hub)` holds the account's configuration (services, their
Events API v2 integrations, escalation policies, schedules, users, maintenance windows: the JSON the
real API returns, minus the `self`/`html_url` links, which are built from where the sandbox is
served) and what happens at run time: events received, alerts, incidents and their log entries.

Events are asynchronous, as on the real Events API: `enqueue` validates synchronously (400/429),
answers like the 202, and queues the event until its `visible_at` (default: now + the world's
`delivery_delay` knob). Every read first processes the queued events whose time has come, in
order, stamping what they create with that time. Nothing sleeps: tests move `hub.clock`.

Internal API for Sentry's alert engine and for tests (moto style):

    backend.enqueue(event, visible_at=None) -> {"status": "success", "message": ..., "dedup_key": ...}
        raises InvalidEvent / EventThrottled / EventsUnavailable like the HTTP 400/429/5xx
    backend.incidents                       [Incident], processed up to hub.clock.now()
    backend.events                          [EventRecord]: every event received and what came of it
    backend.disable_service("PTOWPAY")      / enable_service(...): the service drops new triggers
    backend.start_maintenance("PTOWPAY", duration=3600) / end_maintenance(window_id)
    backend.inject_failure(503, path=r"/incidents", times=2)
    backend.acknowledgements_due            [(at, incident id, user id)]: the on-call person's pending acks
    backend.requests, backend.request_count(r"/incidents$", method="GET", status=200)
    backend.reset()                         back to the world it was built from
"""

from __future__ import annotations

import copy
import math
import random
import string
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from paymon.sandbox.pagerduty.exceptions import (
    AccessDenied,
    EventsUnavailable,
    EventThrottled,
    FromHeaderRequired,
    IncidentAlreadyResolved,
    InvalidEvent,
    InvalidInput,
    NotFound,
    RequesterNotFound,
    UnrecognizedEvent,
)
# Generic emulator plumbing, shared with the Sentry stand-in rather than copied.
from paymon.sandbox.core import HttpFaults, InjectedFailure, RecordedRequest

EVENT_ACTIONS = ("trigger", "acknowledge", "resolve")
SEVERITIES = ("critical", "error", "warning", "info")
# PagerDuty's "dynamic notifications" (urgency "severity_based"): these severities page at high urgency.
HIGH_URGENCY_SEVERITIES = frozenset({"critical", "error"})
INCIDENT_STATUSES = ("triggered", "acknowledged", "resolved")
URGENCIES = ("high", "low")
ROUTING_KEY_LENGTH = 32
MAX_DEDUP_KEY = 255
MAX_SUMMARY = 1024  # longer summaries are cut, not refused
REAL_API_URL = "https://api.pagerduty.com"

DEFAULT_KNOBS = {
    "page_limit": 100,  # largest page any list serves (PagerDuty's own maximum for `limit`)
    # REST: 960 requests/minute per API key; Events: ~120 events/minute per integration key.
    "rate_limit": {"limit": 960, "window": 60},
    "events_rate_limit": {"limit": 120, "window": 60},
    "delivery_delay": 0.0,  # seconds between a 202 and the incident existing
    "notify_delay": 0.0,    # seconds between assignment and the first notification
    # The on-call person acknowledges a HIGH-urgency notification this many seconds (sandbox time)
    # after the first one reached them; None: nobody ever acknowledges (the drill must fail). A
    # low-urgency notification (an e-mail, "notify via app") is not acknowledged: nobody is woken.
    "acknowledge_after": 90.0,
    # A service without `alert_grouping_parameters` groups nothing: a new PagerDuty service has no
    # grouping until someone adds one (Service settings -> Reduce Noise -> "New Grouping",
    # https://support.pagerduty.com/docs/intelligent-alert-grouping). A world sets the field on a
    # service (verified-2026-12 §13) to group: time, content_based or intelligent.
    "default_alert_grouping": None,
    "maintenance": [],      # service ids/names in maintenance from the moment the backend is built
    # Real pages already open when a run starts (a payments service is not paymon's alone): each
    # {"summary", "routing_key", "dedup_key", "severity", "opened_before": seconds}, triggered through
    # the Events API at that time in the past, as Sentry's (or another) integration sent them. paymon
    # must neither count them as its delivery nor resolve them (issue 13 items 1 and 6).
    "open_incidents": [],
    "fail": [],
    "error_rate": 0.0,
    "seed": 0,
}

Ref = tuple[str, str]
"""(kind, id) of a referenced object: ("service", "PTOWPAY"), ("user", "PUONCAL"), ..."""


# --- time --------------------------------------------------------------------------------------------

def iso(ts: float | None) -> str | None:
    """PagerDuty's rendering: UTC, whole seconds, `Z`."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str, default_zone: str = "Etc/UTC") -> float:
    """ISO 8601 date or date-time; without an offset it is read in the account's time zone (as the
    real API does, which is why clients should always send `Z`). ValueError when unreadable."""
    text = value.strip()
    if not text:
        raise ValueError("empty time")
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=_zone(default_zone))
    return parsed.timestamp()


def _zone(name: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(name or "Etc/UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("Etc/UTC")


# --- run-time objects --------------------------------------------------------------------------------

@dataclass
class LogEntry:
    id: str
    type: str            # "trigger_log_entry", "assign_log_entry", ...
    at: float            # created_at; entries in the future are not shown yet
    seq: int             # creation order, to sort entries created in the same second
    incident_id: str
    channel: dict
    agent: Ref | None = None
    summary: str = ""
    extra: dict = field(default_factory=dict)
    """Type-specific keys: assignees (user ids), user (id), note, event_details, acknowledgement_timeout."""


@dataclass
class Alert:
    id: str
    incident_id: str
    service_id: str
    integration_id: str
    alert_key: str
    severity: str
    summary: str
    created_at: float
    details: dict
    contexts: list[dict]
    first_trigger_log_entry_id: str
    status: str = "triggered"
    resolved_at: float | None = None
    fields: dict = field(default_factory=dict)
    """The trigger's payload (summary, source, component, group, class, custom_details): what
    content-based grouping compares."""


@dataclass
class Incident:
    id: str
    number: int
    title: str
    service_id: str
    escalation_policy_id: str
    urgency: str
    created_at: float
    incident_key: str
    status: str = "triggered"
    updated_at: float = 0.0
    last_status_change_at: float = 0.0
    last_status_change_by: Ref | None = None
    resolved_at: float | None = None
    escalation_level: int = 1
    assignments: list[tuple[float, str]] = field(default_factory=list)        # (at, user id)
    acknowledgements: list[tuple[float, Ref]] = field(default_factory=list)   # (at, acknowledger)
    alert_ids: list[str] = field(default_factory=list)
    log_entries: list[LogEntry] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status != "resolved"

    def first_trigger(self) -> LogEntry:
        return next(e for e in self.log_entries if e.type == "trigger_log_entry")


@dataclass
class EventRecord:
    """One event the Events API accepted, and what processing it did (moto-style inspection)."""

    received_at: float
    visible_at: float
    event: dict
    dedup_key: str
    via: str                    # "http" or "in-process"
    outcome: str = "queued"
    """queued | incident_created | grouped | deduplicated | acknowledged | resolved | no_open_alert |
    dropped_service_disabled | dropped_maintenance"""
    incident_id: str | None = None


@dataclass(frozen=True)
class OnCall:
    escalation_policy_id: str
    escalation_level: int
    schedule_id: str | None
    user_id: str
    start: float | None
    end: float | None


@dataclass(frozen=True)
class RateLimitState:
    limit: int
    remaining: int
    reset_in: int  # seconds until the window resets
    exceeded: bool = False

    def headers(self) -> dict[str, str]:
        return {"ratelimit-limit": str(self.limit), "ratelimit-remaining": str(self.remaining),
                "ratelimit-reset": str(self.reset_in)}


# --- the backend -------------------------------------------------------------------------------------

class PagerDutyBackend(HttpFaults):
    def __init__(self, world_pagerduty: dict, hub=None):
        from paymon.sandbox.hub import Hub

        self.hub = hub if hub is not None else Hub()
        self._world = copy.deepcopy(world_pagerduty)
        self._lock = threading.RLock()
        self.reset()

    # --- lifecycle -----------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every event, incident, change, injected failure, rate-limit window and request."""
        with self._lock:
            world = copy.deepcopy(self._world)
            self.account: dict = world.get("account", {"subdomain": "sandbox", "time_zone": "Etc/UTC"})
            self.tokens: list[dict] = world.get("tokens", [])
            self.from_email: str | None = world.get("from_email")
            self.teams: list[dict] = world.get("teams", [])
            self.users: list[dict] = world.get("users", [])
            self.schedules: list[dict] = world.get("schedules", [])
            self.escalation_policies: list[dict] = world.get("escalation_policies", [])
            self.services: list[dict] = world.get("services", [])
            self.integrations: list[dict] = world.get("integrations", [])
            self.maintenance_windows: list[dict] = world.get("maintenance_windows", [])
            knobs = {**DEFAULT_KNOBS, **world.get("knobs", {})}
            self.page_limit: int = max(1, int(knobs["page_limit"]))
            self.rate_limit: dict = {**DEFAULT_KNOBS["rate_limit"], **knobs["rate_limit"]}
            self.events_rate_limit: dict = {**DEFAULT_KNOBS["events_rate_limit"], **knobs["events_rate_limit"]}
            self.delivery_delay: float = float(knobs["delivery_delay"])
            self.notify_delay: float = float(knobs["notify_delay"])
            after = knobs["acknowledge_after"]
            self.acknowledge_after: float | None = None if after is None else float(after)
            self.default_alert_grouping: dict | None = knobs["default_alert_grouping"]
            self._acks: list[tuple[float, int, str, str, dict]] = []
            """(at, seq, incident id, user id, channel): acknowledgements the on-call person will make."""
            self.error_rate: float = float(knobs["error_rate"])
            self._rng = random.Random(knobs["seed"])
            self._ids = random.Random(f"pagerduty-ids-{knobs['seed']}")
            self._failures: list[InjectedFailure] = []
            for entry in knobs["fail"]:
                self.inject_failure(entry["status"], path=entry.get("path"), method=entry.get("method"),
                                    times=entry.get("times"))
            self._incidents: list[Incident] = []
            self._alerts: dict[str, Alert] = {}
            self._queue: list[tuple[float, int, EventRecord]] = []
            self._events: list[EventRecord] = []
            self._seq = 0
            self._next_incident_number = int(self.account.get("next_incident_number", 1))
            self._rest_windows: dict[str, tuple[float, int]] = {}
            self._event_times: dict[str, deque] = {}
            self._requests: list[RecordedRequest] = []
            for service in knobs["maintenance"]:
                self.start_maintenance(service, duration=86400, start=self.now() - 60)
            for real in knobs["open_incidents"]:
                self._open_real_incident(real)

    def now(self) -> float:
        return self.hub.clock.now()

    def _open_real_incident(self, real: dict) -> None:
        at = self.now() - float(real.get("opened_before", 300))
        event = {"routing_key": real["routing_key"], "event_action": "trigger",
                 "dedup_key": real.get("dedup_key") or f"real-{self._seq + 1}",
                 "payload": {"summary": real["summary"], "severity": real.get("severity", "critical"),
                             "source": real.get("source", "sentry.io")}}
        self.enqueue(event, visible_at=at)

    # --- links ---------------------------------------------------------------------------------------

    @property
    def api_url(self) -> str:
        """Where clients reach this API: `self` links point here, because clients follow them."""
        return f"{self.hub.base_url}/pagerduty" if self.hub.base_url else REAL_API_URL

    @property
    def web_url(self) -> str:
        return f"https://{self.account.get('subdomain', 'sandbox')}.pagerduty.com"

    # --- directory -----------------------------------------------------------------------------------

    def get_service(self, id_or_name: str) -> dict:
        for service in self.services:
            if service["id"] == id_or_name or service["name"] == id_or_name:
                return service
        raise NotFound()

    def get_user(self, user_id: str) -> dict:
        return _by_id(self.users, user_id)

    def user_by_email(self, email: str) -> dict | None:
        wanted = email.strip().casefold()
        return next((u for u in self.users if u["email"].casefold() == wanted), None)

    def get_escalation_policy(self, policy_id: str) -> dict:
        return _by_id(self.escalation_policies, policy_id)

    def get_schedule(self, schedule_id: str) -> dict:
        return _by_id(self.schedules, schedule_id)

    def get_team(self, team_id: str) -> dict:
        return _by_id(self.teams, team_id)

    def get_integration(self, integration_id: str) -> dict:
        return _by_id(self.integrations, integration_id)

    def get_maintenance_window(self, window_id: str) -> dict:
        return _by_id(self.maintenance_windows, window_id)

    def integration_for_key(self, routing_key: str) -> dict | None:
        return next((i for i in self.integrations if i.get("integration_key") == routing_key), None)

    # --- auth ----------------------------------------------------------------------------------------

    def token_entry(self, token: str) -> dict | None:
        """`{"token", "access": "read"|"write", "user_id"?}` (user_id: a user-level key), or None."""
        return next((t for t in self.tokens if t["token"] == token), None)

    @property
    def default_token(self) -> str:
        return next(t for t in self.tokens if t.get("access") == "write")["token"]

    @property
    def default_from_email(self) -> str | None:
        """The e-mail paymon sends as `From` on writes: the world's `from_email`, else the user
        behind the first user-level key."""
        if self.from_email:
            return self.from_email
        user_id = next((t["user_id"] for t in self.tokens if t.get("user_id")), None)
        return self.get_user(user_id)["email"] if user_id else None

    def requester_for_write(self, token_entry: dict, from_header: str | None) -> dict:
        """The user a write acts as. Account keys need `From` (a user's e-mail); user keys are
        their user unless `From` says otherwise. Read-only keys cannot write at all."""
        if token_entry.get("access") != "write":
            raise AccessDenied()
        if from_header is None or not from_header.strip():
            if token_entry.get("user_id"):
                return self.get_user(token_entry["user_id"])
            raise FromHeaderRequired()
        user = self.user_by_email(from_header)
        if user is None:
            raise RequesterNotFound()
        return user

    # --- Events API v2 -------------------------------------------------------------------------------

    def enqueue(self, event: dict, *, visible_at: float | None = None) -> dict:
        """What Sentry's alert engine calls in-process; same answers as POST /v2/enqueue (failures
        injected for that path apply too). The incident appears at `visible_at`."""
        failure = self.take_failure("POST", "/pagerduty/v2/enqueue")
        if failure is not None:
            if failure == 429:
                raise EventThrottled(headers={"Retry-After": "30"})
            if failure >= 500:
                raise EventsUnavailable(failure)
            raise InvalidEvent(f"Injected failure {failure}")
        return self.accept_event(event, visible_at=visible_at, via="in-process")

    def accept_event(self, event, *, visible_at: float | None = None, via: str = "http") -> dict:
        """Validate (400), throttle (429), queue; the 202 body. Processing happens at `visible_at`."""
        integration, dedup_key = self._validate_event(event)
        with self._lock:
            now = self.now()
            self._throttle_events(event["routing_key"], now)
            at = now + self.delivery_delay if visible_at is None else float(visible_at)
            record = EventRecord(received_at=now, visible_at=at, event=copy.deepcopy(event),
                                 dedup_key=dedup_key, via=via)
            record.event["dedup_key"] = dedup_key
            self._events.append(record)
            self._seq += 1
            self._queue.append((at, self._seq, record))
            self._queue.sort(key=lambda item: (item[0], item[1]))
        return {"status": "success", "message": "Event processed", "dedup_key": dedup_key}

    def _validate_event(self, event) -> tuple[dict, str]:
        if not isinstance(event, dict):
            raise UnrecognizedEvent("JSON parse error")
        errors: list[str] = []
        routing_key = event.get("routing_key")
        if not isinstance(routing_key, str) or not routing_key.strip():
            errors.append("'routing_key' is missing or blank")
        else:
            if len(routing_key) != ROUTING_KEY_LENGTH:
                errors.append(f"Length of 'routing_key' is incorrect (should be {ROUTING_KEY_LENGTH} characters)")
            if not routing_key.isalnum():
                errors.append("'routing_key' cannot contain non-alphanumeric characters.")
        action = event.get("event_action")
        if not isinstance(action, str) or not action:
            errors.append("'event_action' is missing or blank")
        elif action not in EVENT_ACTIONS:
            errors.append("'event_action' must be one of trigger, acknowledge or resolve")
        dedup_key = event.get("dedup_key")
        if dedup_key is not None and not isinstance(dedup_key, str):
            errors.append("'dedup_key' must be a string")
        elif isinstance(dedup_key, str) and len(dedup_key) > MAX_DEDUP_KEY:
            errors.append(f"'dedup_key' is too long (maximum is {MAX_DEDUP_KEY} characters)")
        if action in ("acknowledge", "resolve") and not (isinstance(dedup_key, str) and dedup_key.strip()):
            errors.append("'dedup_key' is missing or blank")
        if action == "trigger":
            errors += _payload_errors(event.get("payload"))
        for name in ("links", "images"):
            if name in event and not isinstance(event[name], list):
                errors.append(f"'{name}' must be an array")
        if errors:
            raise InvalidEvent(*errors)
        integration = self.integration_for_key(routing_key)
        if integration is None:
            # A well-formed key no integration owns (deleted, other account, other region) is
            # refused synchronously, as the real API does: 400 "Invalid routing key".
            raise InvalidEvent("Invalid routing key")
        return integration, dedup_key if isinstance(dedup_key, str) and dedup_key else uuid.uuid4().hex

    def _throttle_events(self, routing_key: str, now: float) -> None:
        """Sliding window per integration key (the Events API's documented shape)."""
        limit, window = int(self.events_rate_limit["limit"]), float(self.events_rate_limit["window"])
        times = self._event_times.setdefault(routing_key, deque())
        while times and times[0] <= now - window:
            times.popleft()
        if len(times) >= limit:
            retry = max(1, math.ceil(times[0] + window - now))
            raise EventThrottled(headers={"Retry-After": str(retry)})
        times.append(now)

    @property
    def events(self) -> list[EventRecord]:
        with self._lock:
            self._process_due()
            return list(self._events)

    # --- processing (the asynchronous half of the Events API) ---------------------------------------

    def _process_due(self) -> None:
        """Process every queued event and every pending acknowledgement whose time has come, in
        time order, each at its own time."""
        now = self.now()
        while True:
            event_at = self._queue[0][0] if self._queue and self._queue[0][0] <= now else None
            ack_at = self._acks[0][0] if self._acks and self._acks[0][0] <= now else None
            if event_at is None and ack_at is None:
                return
            if ack_at is not None and (event_at is None or ack_at < event_at):
                at, _seq, incident_id, user_id, channel = self._acks.pop(0)
                self._person_acknowledges(self._incident(incident_id), user_id, at, channel)
                continue
            at, _seq, record = self._queue.pop(0)
            self._process(record, at)

    @property
    def acknowledgements_due(self) -> list[tuple[float, str, str]]:
        with self._lock:
            return [(at, incident_id, user_id) for at, _seq, incident_id, user_id, _channel in self._acks]

    def _person_acknowledges(self, incident: Incident, user_id: str, at: float, channel: dict) -> None:
        """The on-call person acts on the page: only if it is still theirs and still triggered."""
        if incident.status != "triggered" or user_id not in {u for _at, u in incident.assignments}:
            return
        self._acknowledge(incident, at, ("user", user_id), channel)

    def _process(self, record: EventRecord, at: float) -> None:
        event = record.event
        integration = self.integration_for_key(event["routing_key"])
        service = self.get_service(integration["service"]["id"])
        alert = self._open_alert(integration["id"], record.dedup_key)
        action = event["event_action"]
        if action == "trigger":
            if service.get("status") == "disabled":
                record.outcome = "dropped_service_disabled"
                return
            if self.in_maintenance(service["id"], at):
                record.outcome = "dropped_maintenance"
                return
            if alert is not None:
                incident = self._incident(alert.incident_id)
                self._log(incident, "trigger_log_entry", at, self._api_channel(event), ("service", service["id"]),
                          "Triggered through the API.", event_details={"description": alert.summary})
                incident.updated_at = at
                record.outcome, record.incident_id = "deduplicated", incident.id
                return
            grouped = self._grouping_target(service, event["payload"], at)
            if grouped is not None:
                self._add_alert(grouped, event, record.dedup_key, integration, service, at)
                grouped.updated_at = at
                record.outcome, record.incident_id = "grouped", grouped.id
                return
            incident = self._open_incident(event, record.dedup_key, integration, service, at)
            record.outcome, record.incident_id = "incident_created", incident.id
            return
        if alert is None:
            # Acknowledge/resolve for a key with no open alert are dropped (the 202 cannot tell).
            record.outcome = "no_open_alert"
            return
        incident = self._incident(alert.incident_id)
        record.incident_id = incident.id
        agent: Ref = ("service", service["id"])
        if action == "acknowledge":
            if incident.status == "triggered":
                self._acknowledge(incident, at, agent, {"type": "api"})
            record.outcome = "acknowledged"
            return
        alert.status, alert.resolved_at = "resolved", at
        incident.updated_at = at
        # The incident resolves when its last open alert does.
        if all(self._alerts[a].status == "resolved" for a in incident.alert_ids):
            self._resolve(incident, at, agent, {"type": "api"}, summary="Resolved through the API.")
        record.outcome = "resolved"

    def _open_alert(self, integration_id: str, alert_key: str) -> Alert | None:
        return next((a for a in self._alerts.values() if a.integration_id == integration_id
                     and a.alert_key == alert_key and a.status == "triggered"), None)

    def _open_incident(self, event: dict, dedup_key: str, integration: dict, service: dict, at: float) -> Incident:
        payload = event["payload"]
        summary = payload["summary"][:MAX_SUMMARY]
        incident = Incident(
            id=self._new_id("Q", 14), number=self._next_incident_number, title=summary,
            service_id=service["id"], escalation_policy_id=service["escalation_policy"]["id"],
            urgency=self.urgency_for(service, payload["severity"], at), created_at=at, incident_key=dedup_key,
            updated_at=at, last_status_change_at=at, last_status_change_by=("service", service["id"]),
        )
        self._next_incident_number += 1
        self._incidents.append(incident)
        self._add_alert(incident, event, dedup_key, integration, service, at)
        self._assign_level(incident, 1, at)
        return incident

    def _add_alert(self, incident: Incident, event: dict, dedup_key: str, integration: dict, service: dict,
                   at: float) -> Alert:
        """A new alert on `incident` (its first, or one grouped into it: the incident keeps its
        title, urgency and assignees, support.pagerduty.com/docs/alerts)."""
        payload = event["payload"]
        summary = payload["summary"][:MAX_SUMMARY]
        trigger = self._log(incident, "trigger_log_entry", at, self._api_channel(event), ("service", service["id"]),
                            "Triggered through the API.", event_details={"description": summary})
        contexts = [{"type": "link", **{k: v for k, v in link.items() if k in ("href", "text")}}
                    for link in event.get("links") or [] if isinstance(link, dict)]
        contexts += [{"type": "image", **{k: v for k, v in image.items() if k in ("src", "href", "alt")}}
                     for image in event.get("images") or [] if isinstance(image, dict)]
        alert = Alert(id=self._new_id("Q", 14), incident_id=incident.id, service_id=service["id"],
                      integration_id=integration["id"], alert_key=dedup_key, severity=payload["severity"],
                      summary=summary, created_at=at, details=copy.deepcopy(payload.get("custom_details") or {}),
                      contexts=contexts, first_trigger_log_entry_id=trigger.id, fields=copy.deepcopy(payload))
        self._alerts[alert.id] = alert
        incident.alert_ids.append(alert.id)
        return alert

    # --- alert grouping (verified-2026-12 §13) ----------------------------------------------------

    def _grouping_target(self, service: dict, payload: dict, at: float) -> Incident | None:
        """The open incident of `service` a new alert joins, or None (a new incident). "The first
        alert will create a new incident. Subsequent alerts will be added to that incident ...
        while the incident is open (triggered or acknowledged)"
        (support.pagerduty.com/docs/time-based-alert-grouping); a resolved incident never grows.
          time           config.timeout minutes after the incident's first alert (0: until resolved)
          content_based  config.fields compared with the incident's first alert (aggregate all: every
                         field equal; any: one), within config.time_window seconds of its latest
                         alert (0, "recommended": 300 s here, PagerDuty's smallest window)
          intelligent    a machine-learned model: emulated at its most eager, joining the latest
                         open incident whose latest alert is within config.time_window (default
                         300 s) whatever its content; a reader that survives this survives the model
        """
        parameters = service.get("alert_grouping_parameters") or self.default_alert_grouping or {}
        kind, config = parameters.get("type"), parameters.get("config") or {}
        if kind not in ("time", "content_based", "intelligent"):
            return None
        open_incidents = [i for i in self._incidents if i.service_id == service["id"] and i.is_open
                          and i.created_at <= at]
        for incident in sorted(open_incidents, key=lambda i: (i.created_at, i.number), reverse=True):
            alerts = self.alerts_of(incident)
            first, latest = alerts[0], max(a.created_at for a in alerts)
            if kind == "time":
                timeout = float(config.get("timeout") or 0) * 60
                if not timeout or at - first.created_at <= timeout:
                    return incident
            elif kind == "content_based":
                window = float(config.get("time_window") or 300)
                fields = list(config.get("fields") or [])
                same = [_cef_field(first.fields, f) == _cef_field(payload, f) for f in fields]
                matched = all(same) if config.get("aggregate", "all") == "all" else any(same)
                if fields and matched and at - latest <= window:
                    return incident
            elif at - latest <= float(config.get("time_window") or 300):
                return incident
        return None

    def _assign_level(self, incident: Incident, level: int, at: float) -> None:
        """Assign to everyone on call at `level` of the policy and notify them per their rules.
        Nobody on call: the incident stays unassigned (and nobody is paged)."""
        incident.escalation_level = level
        assignees = self.level_user_ids(incident.escalation_policy_id, level, at)
        incident.assignments = [(at, user_id) for user_id in assignees]
        if not assignees:
            return
        names = ", ".join(self.get_user(u)["name"] for u in assignees)
        self._log(incident, "assign_log_entry", at, {"type": "auto"}, ("service", incident.service_id),
                  f"Assigned to {names}.", assignees=list(assignees))
        for user_id in assignees:
            self._notify(incident, self.get_user(user_id), at)

    def _notify(self, incident: Incident, user: dict, assigned_at: float) -> None:
        methods = {m["id"]: m for m in user.get("contact_methods", [])}
        first_page: tuple[float, dict] | None = None
        for rule in user.get("notification_rules", []):
            if rule.get("urgency", "high") != incident.urgency:
                continue
            method = methods.get(rule["contact_method"]["id"])
            if method is None:
                continue
            kind = _NOTIFICATION_KINDS.get(method["type"].removesuffix("_reference"))
            if kind is None:
                continue
            notification_type, label = kind
            at = assigned_at + 60 * float(rule.get("start_delay_in_minutes", 0)) + self.notify_delay
            address = None if notification_type == "push_notification" else _address(method)
            channel = {"type": "auto", "notification": {"type": notification_type, "status": "success",
                                                        "address": address}}
            self._log(incident, "notify_log_entry", at, channel, None, f"Notified {user['name']} by {label}",
                      user=user["id"])
            if incident.urgency == "high" and (first_page is None or at < first_page[0]):
                first_page = (at, {"type": _ACK_CHANNELS.get(notification_type, "website")})
        if first_page is not None and self.acknowledge_after is not None:
            # The person reacts to the page (the phone rang), from where it reached them.
            at, channel = first_page
            self._seq += 1
            self._acks.append((at + self.acknowledge_after, self._seq, incident.id, user["id"], channel))
            self._acks.sort(key=lambda item: (item[0], item[1]))

    @staticmethod
    def _cancel_pending_notifications(incident: Incident, at: float) -> None:
        """Acknowledged or resolved, PagerDuty stops working through the assignees' notification
        rules: a notification not yet sent never is."""
        incident.log_entries = [e for e in incident.log_entries if not (e.type == "notify_log_entry" and e.at > at)]

    def _acknowledge(self, incident: Incident, at: float, agent: Ref, channel: dict) -> None:
        self._cancel_pending_notifications(incident, at)
        incident.status = "acknowledged"
        incident.acknowledgements.append((at, agent))
        incident.updated_at = incident.last_status_change_at = at
        incident.last_status_change_by = agent
        timeout = self.get_service(incident.service_id).get("acknowledgement_timeout")
        self._log(incident, "acknowledge_log_entry", at, channel, agent,
                  f"Acknowledged by {self._summary(agent)}", acknowledgement_timeout=timeout)

    def _resolve(self, incident: Incident, at: float, agent: Ref, channel: dict, *, summary: str,
                 note: str | None = None) -> None:
        self._cancel_pending_notifications(incident, at)
        incident.status = "resolved"
        incident.resolved_at = at
        incident.updated_at = incident.last_status_change_at = at
        incident.last_status_change_by = agent
        incident.assignments, incident.acknowledgements = [], []  # both empty once resolved
        for alert_id in incident.alert_ids:
            alert = self._alerts[alert_id]
            if alert.status != "resolved":
                alert.status, alert.resolved_at = "resolved", at
        extra = {"note": note} if note else {}
        self._log(incident, "resolve_log_entry", at, channel, agent, summary, **extra)

    def _log(self, incident: Incident, kind: str, at: float, channel: dict, agent: Ref | None, summary: str,
             **extra) -> LogEntry:
        self._seq += 1
        entry = LogEntry(id=self._new_id("R", 26), type=kind, at=at, seq=self._seq, incident_id=incident.id,
                         channel=channel, agent=agent, summary=summary, extra=extra)
        incident.log_entries.append(entry)
        return entry

    @staticmethod
    def _api_channel(event: dict) -> dict:
        payload = event.get("payload") or {}
        summary = str(payload.get("summary", ""))[:MAX_SUMMARY]
        channel = {"type": "api", "summary": summary, "description": summary,
                   "incident_key": event.get("dedup_key")}
        if isinstance(payload.get("custom_details"), dict):
            channel["details"] = copy.deepcopy(payload["custom_details"])
        return channel

    def _new_id(self, prefix: str, length: int) -> str:
        alphabet = string.ascii_uppercase + string.digits
        return prefix + "".join(self._ids.choice(alphabet) for _ in range(length - len(prefix)))

    # --- urgency, on-call, maintenance ---------------------------------------------------------------

    def urgency_for(self, service: dict, severity: str, at: float) -> str:
        """The service's `incident_urgency_rule`: constant high/low, constant `severity_based`
        (critical/error high, warning/info low) or `use_support_hours` around either."""
        rule = service.get("incident_urgency_rule") or {"type": "constant", "urgency": "high"}
        if rule.get("type") == "use_support_hours":
            inside = _in_support_hours(service.get("support_hours"), at)
            rule = rule.get("during_support_hours" if inside else "outside_support_hours") or {}
        urgency = rule.get("urgency", "high")
        if urgency == "severity_based":
            return "high" if severity in HIGH_URGENCY_SEVERITIES else "low"
        return urgency

    def level_user_ids(self, policy_id: str, level: int, at: float) -> list[str]:
        policy = self.get_escalation_policy(policy_id)
        rules = policy.get("escalation_rules", [])
        if not 1 <= level <= len(rules):
            return []
        users: list[str] = []
        for target in rules[level - 1].get("targets", []):
            if target["type"].startswith("user"):
                users.append(target["id"])
            elif target["type"].startswith("schedule"):
                shift = self.on_call_at(self.get_schedule(target["id"]), at)
                if shift is not None:
                    users.append(shift[0])
        return list(dict.fromkeys(users))

    def on_call_at(self, schedule: dict, at: float) -> tuple[str, float, float | None] | None:
        """(user id, shift start, shift end) from the schedule's layers; a later layer overrides an
        earlier one, as higher layers do in PagerDuty's final schedule."""
        zone = schedule.get("time_zone") or self.account.get("time_zone", "Etc/UTC")
        for layer in reversed(schedule.get("schedule_layers", [])):
            users = [u["user"]["id"] for u in layer.get("users", [])]
            start = parse_time(layer["start"], zone)
            end = parse_time(layer["end"], zone) if layer.get("end") else None
            if not users or at < start or (end is not None and at >= end):
                continue
            virtual = parse_time(layer.get("rotation_virtual_start") or layer["start"], zone)
            turn = float(layer["rotation_turn_length_seconds"])
            index = math.floor((at - virtual) / turn)
            shift_start = max(virtual + index * turn, start)
            shift_end = virtual + (index + 1) * turn
            if end is not None:
                shift_end = min(shift_end, end)
            return users[index % len(users)], shift_start, shift_end
        return None

    def oncalls(self, since: float, until: float, *, policy_ids=(), schedule_ids=(), user_ids=(),
                earliest: bool = False) -> list[OnCall]:
        """Every on-call of every policy level overlapping [since, until]; users targeted directly by
        a rule are permanent on-calls (no schedule, no start/end)."""
        found: list[OnCall] = []
        for policy in self.escalation_policies:
            if policy_ids and policy["id"] not in policy_ids:
                continue
            for level, rule in enumerate(policy.get("escalation_rules", []), start=1):
                for target in rule.get("targets", []):
                    if target["type"].startswith("user"):
                        found.append(OnCall(policy["id"], level, None, target["id"], None, None))
                    elif target["type"].startswith("schedule"):
                        schedule = self.get_schedule(target["id"])
                        for user_id, start, end in self._shifts(schedule, since, until):
                            found.append(OnCall(policy["id"], level, schedule["id"], user_id, start, end))
        if schedule_ids:
            found = [o for o in found if o.schedule_id in schedule_ids]
        if user_ids:
            found = [o for o in found if o.user_id in user_ids]
        if earliest:
            seen, first = set(), []
            for oncall in found:
                key = (oncall.escalation_policy_id, oncall.escalation_level, oncall.user_id)
                if key not in seen:
                    seen.add(key)
                    first.append(oncall)
            found = first
        return found

    def _shifts(self, schedule: dict, since: float, until: float, cap: int = 100):
        at = since
        for _ in range(cap):
            shift = self.on_call_at(schedule, at)
            if shift is None:
                return
            yield shift
            if shift[2] is None or shift[2] > until:
                return
            at = shift[2]

    def in_maintenance(self, service_id: str, at: float) -> bool:
        return any(self._window_covers(w, service_id, at) for w in self.maintenance_windows)

    def _window_covers(self, window: dict, service_id: str, at: float) -> bool:
        zone = self.account.get("time_zone", "Etc/UTC")
        return (any(s["id"] == service_id for s in window.get("services", []))
                and parse_time(window["start_time"], zone) <= at < parse_time(window["end_time"], zone))

    def window_state(self, window: dict, at: float) -> str:
        """past / ongoing / future: the real `filter` values for GET /maintenance_windows."""
        zone = self.account.get("time_zone", "Etc/UTC")
        if parse_time(window["end_time"], zone) <= at:
            return "past"
        return "ongoing" if parse_time(window["start_time"], zone) <= at else "future"

    def service_status(self, service: dict) -> str:
        """disabled / maintenance, else critical (a triggered incident) / warning (acked) / active."""
        if service.get("status") == "disabled":
            return "disabled"
        with self._lock:
            self._process_due()
            if self.in_maintenance(service["id"], self.now()):
                return "maintenance"
            statuses = {i.status for i in self._incidents if i.service_id == service["id"]}
        if "triggered" in statuses:
            return "critical"
        return "warning" if "acknowledged" in statuses else "active"

    def last_incident_at(self, service_id: str) -> float | None:
        with self._lock:
            self._process_due()
            times = [i.created_at for i in self._incidents if i.service_id == service_id]
        return max(times) if times else None

    # --- controls for tests and faults ---------------------------------------------------------------

    def disable_service(self, service: str) -> None:
        """The service keeps its integrations but triggers create nothing (status `disabled`)."""
        with self._lock:
            self.get_service(service)["status"] = "disabled"

    def enable_service(self, service: str) -> None:
        with self._lock:
            self.get_service(service)["status"] = "active"

    def start_maintenance(self, service: str, *, duration: float = 3600, start: float | None = None,
                          description: str = "paymon sandbox maintenance") -> dict:
        """A maintenance window on `service` from `start` (default now) for `duration` seconds."""
        with self._lock:
            target = self.get_service(service)
            begin = self.now() if start is None else start
            window = {
                "id": self._new_id("P", 7), "type": "maintenance_window",
                "sequence_number": len(self.maintenance_windows) + 1,
                "start_time": iso(begin), "end_time": iso(begin + duration), "description": description,
                "services": [{"id": target["id"], "type": "service_reference"}],
            }
            self.maintenance_windows.append(window)
            return window

    def end_maintenance(self, window_id: str) -> None:
        with self._lock:
            window = self.get_maintenance_window(window_id)
            window["end_time"] = iso(self.now())

    @property
    def incidents(self) -> list[Incident]:
        with self._lock:
            self._process_due()
            return list(self._incidents)

    def alerts_of(self, incident: Incident) -> list[Alert]:
        return [self._alerts[a] for a in incident.alert_ids]

    def _incident(self, incident_id: str) -> Incident:
        for incident in self._incidents:
            if incident.id == incident_id:
                return incident
        raise NotFound()

    def get_incident(self, incident_id: str) -> Incident:
        with self._lock:
            self._process_due()
            return self._incident(incident_id)

    def visible_log_entries(self, incident: Incident) -> list[LogEntry]:
        """Entries already created (notifications may still be ahead), newest first."""
        now = self.now()
        entries = [e for e in incident.log_entries if e.at <= now]
        return sorted(entries, key=lambda e: (e.at, e.seq), reverse=True)

    # --- REST writes ---------------------------------------------------------------------------------

    def update_incident(self, incident_id: str, changes: dict, requester: dict) -> Incident:
        """PUT /incidents/{id}: status (acknowledged / resolved / triggered), resolution, title,
        urgency. Resolving a resolved incident is error 1001."""
        if not isinstance(changes, dict):
            raise InvalidInput("incident must be an object")
        kind = changes.get("type")
        if kind is not None and kind not in ("incident", "incident_reference"):
            raise InvalidInput("Incident type must be incident or incident_reference")
        status = changes.get("status")
        if status is not None and status not in INCIDENT_STATUSES:
            raise InvalidInput("Status must be one of triggered, acknowledged, or resolved.")
        urgency = changes.get("urgency")
        if urgency is not None and urgency not in URGENCIES:
            raise InvalidInput("Urgency must be one of high or low.")
        with self._lock:
            self._process_due()
            incident = self._incident(incident_id)
            at = self.now()
            agent: Ref = ("user", requester["id"])
            if status == "resolved":
                if incident.status == "resolved":
                    raise IncidentAlreadyResolved()
                resolution = changes.get("resolution")
                self._resolve(incident, at, agent, {"type": "api"}, summary=f"Resolved by {requester['name']}",
                              note=resolution if isinstance(resolution, str) and resolution else None)
            elif status == "acknowledged" and incident.status != "acknowledged":
                if incident.status == "resolved":
                    self._reopen(incident, at)
                    incident.assignments = [(at, requester["id"])]
                self._acknowledge(incident, at, agent, {"type": "api"})
            elif status == "triggered" and incident.status != "triggered":
                was = incident.status
                incident.status, incident.acknowledgements = "triggered", []
                incident.updated_at = incident.last_status_change_at = at
                incident.last_status_change_by = agent
                if was == "resolved":
                    self._reopen(incident, at)
                    self._assign_level(incident, 1, at)
                else:
                    self._log(incident, "unacknowledge_log_entry", at, {"type": "api"}, agent,
                              f"Unacknowledged by {requester['name']}")
            if isinstance(changes.get("title"), str) and changes["title"].strip():
                incident.title = changes["title"]
                incident.updated_at = at
            if urgency is not None and urgency != incident.urgency:
                incident.urgency = urgency
                incident.updated_at = at
            return incident

    def update_alert(self, incident_id: str, alert_id: str, changes: dict, requester: dict) -> Alert:
        """PUT /incidents/{id}/alerts/{alert_id}: resolve one alert (or re-trigger it). The incident
        resolves with its last open alert; another alert keeps it open (a grouped real page)."""
        if not isinstance(changes, dict):
            raise InvalidInput("alert must be an object")
        status = changes.get("status")
        if status not in (None, "resolved", "triggered"):
            raise InvalidInput("Status must be one of resolved or triggered.")
        with self._lock:
            self._process_due()
            incident = self._incident(incident_id)
            alert = self._alerts.get(alert_id)
            if alert is None or alert.incident_id != incident.id:
                raise NotFound()
            at = self.now()
            if status == "resolved" and alert.status != "resolved":
                alert.status, alert.resolved_at = "resolved", at
                incident.updated_at = at
                if incident.is_open and all(self._alerts[a].status == "resolved" for a in incident.alert_ids):
                    self._resolve(incident, at, ("user", requester["id"]), {"type": "api"},
                                  summary=f"Resolved by {requester['name']}")
            elif status == "triggered" and alert.status != "triggered":
                if not incident.is_open:
                    raise InvalidInput("Alerts of a resolved incident cannot be triggered")
                alert.status, alert.resolved_at = "triggered", None
            return alert

    def notification_rules(self, user_id: str, urgency: str = "high") -> list[dict]:
        """A user's notification rules for `urgency` (high, low or all)."""
        user = self.get_user(user_id)
        rules = user.get("notification_rules", [])
        return [r for r in rules if urgency == "all" or r.get("urgency", "high") == urgency]

    def _reopen(self, incident: Incident, at: float) -> None:
        incident.resolved_at = None
        incident.updated_at = incident.last_status_change_at = at

    # Injected failures are HttpFaults': their paths include the `/pagerduty` prefix, and an
    # in-process `enqueue` counts as a POST to /pagerduty/v2/enqueue.

    # --- rate limits -----------------------------------------------------------

    def rest_rate_limit(self, key: str) -> RateLimitState:
        """Count one REST request of `key` (the API token) in the current fixed window."""
        limit, window = int(self.rate_limit["limit"]), max(1.0, float(self.rate_limit["window"]))
        with self._lock:
            now = self.now()
            window_start = math.floor(now / window) * window
            start, count = self._rest_windows.get(key, (window_start, 0))
            if start != window_start:
                count = 0
            count += 1
            self._rest_windows[key] = (window_start, count)
        reset_in = max(1, math.ceil(window_start + window - now))
        return RateLimitState(limit, max(limit - count, 0), reset_in, exceeded=count > limit)

    # the request log (record_request, requests, request_count): HttpFaults

    # --- rendering: the JSON the real API returns ----------------------------------------------------

    _PATHS = {"service": ("services", "service-directory"), "user": ("users", "users"),
              "escalation_policy": ("escalation_policies", "escalation_policies"),
              "schedule": ("schedules", "schedules"), "team": ("teams", "teams"),
              "incident": ("incidents", "incidents"), "maintenance_window": ("maintenance_windows",
                                                                             "maintenance_windows")}

    def _summary(self, ref: Ref) -> str:
        kind, object_id = ref
        if kind == "incident":
            incident = self._incident(object_id)
            return f"[#{incident.number}] {incident.title}"
        if kind == "integration":
            return self.get_integration(object_id).get("name", object_id)
        lookup = {"service": self.get_service, "user": self.get_user, "team": self.get_team,
                  "escalation_policy": self.get_escalation_policy, "schedule": self.get_schedule}[kind]
        return lookup(object_id).get("name", object_id)

    def ref(self, kind: str, object_id: str) -> dict:
        """`{id, type: <kind>_reference, summary, self, html_url}` with links to this sandbox."""
        if kind == "integration":
            integration = self.get_integration(object_id)
            path = f"services/{integration['service']['id']}/integrations/{object_id}"
            return {"id": object_id, "type": f"{integration['type']}_reference",
                    "summary": self._summary((kind, object_id)), "self": f"{self.api_url}/{path}", "html_url": f"{self.web_url}/{path}"}
        api_path, web_path = self._PATHS[kind]
        return {"id": object_id, "type": f"{kind}_reference", "summary": self._summary((kind, object_id)),
                "self": f"{self.api_url}/{api_path}/{object_id}", "html_url": f"{self.web_url}/{web_path}/{object_id}"}

    def _links(self, kind: str, obj: dict) -> dict:
        api_path, web_path = self._PATHS[kind]
        return {"summary": obj.get("name", obj["id"]), "self": f"{self.api_url}/{api_path}/{obj['id']}",
                "html_url": f"{self.web_url}/{web_path}/{obj['id']}"}

    def render_incident(self, incident: Incident) -> dict:
        service = self.get_service(incident.service_id)
        alerts = self.alerts_of(incident)
        trigger = incident.first_trigger()
        resolved_alerts = sum(1 for a in alerts if a.status == "resolved")
        return {
            "id": incident.id,
            "type": "incident",
            "summary": f"[#{incident.number}] {incident.title}",
            "self": f"{self.api_url}/incidents/{incident.id}",
            "html_url": f"{self.web_url}/incidents/{incident.id}",
            "incident_number": incident.number,
            "title": incident.title,
            "description": incident.title,
            "created_at": iso(incident.created_at),
            "updated_at": iso(incident.updated_at),
            "status": incident.status,
            "incident_key": incident.incident_key,
            "service": self.ref("service", incident.service_id),
            "assignments": [{"at": iso(at), "assignee": self.ref("user", user_id)}
                            for at, user_id in incident.assignments],
            "assigned_via": "escalation_policy",
            "last_status_change_at": iso(incident.last_status_change_at),
            "last_status_change_by": self.ref(*incident.last_status_change_by),
            "resolved_at": iso(incident.resolved_at),
            "first_trigger_log_entry": self._log_entry_ref(trigger, incident),
            "alert_counts": {"all": len(alerts), "triggered": len(alerts) - resolved_alerts,
                             "resolved": resolved_alerts},
            "is_mergeable": True,
            "incident_type": {"name": "incident_default"},
            "escalation_policy": self.ref("escalation_policy", incident.escalation_policy_id),
            "teams": [self.ref("team", t["id"]) for t in service.get("teams", [])],
            "pending_actions": self._pending_actions(incident, service),
            "acknowledgements": [{"at": iso(at), "acknowledger": self.ref(*who)}
                                 for at, who in incident.acknowledgements],
            "alert_grouping": None,
            "priority": None,
            "resolve_reason": None,
            "incidents_responders": [],
            "responder_requests": [],
            "urgency": incident.urgency,
        }

    def _pending_actions(self, incident: Incident, service: dict) -> list[dict]:
        """What PagerDuty will do next unless someone acts (shown, not carried out, here)."""
        actions = []
        if incident.status == "triggered":
            rules = self.get_escalation_policy(incident.escalation_policy_id).get("escalation_rules", [])
            if incident.escalation_level <= len(rules) and incident.assignments:
                delay = rules[incident.escalation_level - 1].get("escalation_delay_in_minutes", 30)
                actions.append({"type": "escalate", "at": iso(incident.assignments[0][0] + 60 * delay)})
        if incident.status == "acknowledged" and service.get("acknowledgement_timeout"):
            actions.append({"type": "unacknowledge",
                            "at": iso(incident.acknowledgements[-1][0] + service["acknowledgement_timeout"])})
        if incident.is_open and service.get("auto_resolve_timeout"):
            actions.append({"type": "resolve", "at": iso(incident.created_at + service["auto_resolve_timeout"])})
        return actions

    def _log_entry_ref(self, entry: LogEntry, incident: Incident) -> dict:
        return {"id": entry.id, "type": f"{entry.type}_reference", "summary": entry.summary,
                "self": f"{self.api_url}/log_entries/{entry.id}?incident_id={incident.id}",
                "html_url": f"{self.web_url}/incidents/{incident.id}/log_entries/{entry.id}"}

    def render_log_entry(self, entry: LogEntry) -> dict:
        incident = self._incident(entry.incident_id)
        service = self.get_service(incident.service_id)
        body = {
            "id": entry.id,
            "type": entry.type,
            "summary": entry.summary,
            "self": f"{self.api_url}/log_entries/{entry.id}",
            # Only trigger entries carry a web link in real responses.
            "html_url": (f"{self.web_url}/incidents/{incident.id}/log_entries/{entry.id}"
                         if entry.type == "trigger_log_entry" else None),
            "created_at": iso(entry.at),
            "channel": copy.deepcopy(entry.channel),
        }
        if entry.agent is not None:
            body["agent"] = self.ref(*entry.agent)
        body.update({
            "service": self.ref("service", incident.service_id),
            "incident": self.ref("incident", incident.id),
            "teams": [self.ref("team", t["id"]) for t in service.get("teams", [])],
            "contexts": [],
        })
        for key, value in entry.extra.items():
            if key == "assignees":
                body["assignees"] = [self.ref("user", u) for u in value]
            elif key == "user":
                body["user"] = self.ref("user", value)
            else:
                body[key] = copy.deepcopy(value)
        return body

    def render_alert(self, alert: Alert) -> dict:
        incident = self._incident(alert.incident_id)
        trigger = next(e for e in incident.log_entries if e.id == alert.first_trigger_log_entry_id)
        return {
            "id": alert.id,
            "type": "alert",
            "summary": alert.summary,
            "self": f"{self.api_url}/incidents/{incident.id}/alerts/{alert.id}",
            "html_url": f"{self.web_url}/alerts/{alert.id}",
            "created_at": iso(alert.created_at),
            "status": alert.status,
            "alert_key": alert.alert_key,
            "suppressed": False,
            "severity": alert.severity,
            "service": self.ref("service", alert.service_id),
            "incident": self.ref("incident", incident.id),
            "body": {"type": "alert_body", "contexts": copy.deepcopy(alert.contexts),
                     "details": copy.deepcopy(alert.details)},
            "first_trigger_log_entry": self._log_entry_ref(trigger, incident),
            "integration": self.ref("integration", alert.integration_id),
        }

    def render_service(self, service: dict, include: frozenset[str] = frozenset()) -> dict:
        body = {"id": service["id"], "type": "service", **self._links("service", service)}
        for key, value in service.items():
            if key not in ("id", "type"):
                body[key] = copy.deepcopy(value)
        body["status"] = self.service_status(service)
        body["last_incident_timestamp"] = iso(self.last_incident_at(service["id"]))
        body["escalation_policy"] = self.ref("escalation_policy", service["escalation_policy"]["id"])
        body["teams"] = [self.ref("team", t["id"]) for t in service.get("teams", [])]
        if "integrations" in include:
            body["integrations"] = [self.render_integration(self.get_integration(i["id"]))
                                    for i in service.get("integrations", [])]
        else:
            body["integrations"] = [self.ref("integration", i["id"]) for i in service.get("integrations", [])]
        return body

    def render_integration(self, integration: dict) -> dict:
        ref = self.ref("integration", integration["id"])
        body = {**ref, "type": integration["type"]}
        for key, value in integration.items():
            if key not in ("id", "type", "service"):
                body[key] = copy.deepcopy(value)
        body["service"] = self.ref("service", integration["service"]["id"])
        return body

    def render_escalation_policy(self, policy: dict) -> dict:
        body = {"id": policy["id"], "type": "escalation_policy", **self._links("escalation_policy", policy)}
        for key, value in policy.items():
            if key not in ("id", "type"):
                body[key] = copy.deepcopy(value)
        body["escalation_rules"] = [
            {**{k: v for k, v in rule.items() if k != "targets"},
             "targets": [self.ref("schedule" if t["type"].startswith("schedule") else "user", t["id"])
                         for t in rule.get("targets", [])]}
            for rule in policy.get("escalation_rules", [])
        ]
        body["services"] = [self.ref("service", s["id"]) for s in self.services
                            if s["escalation_policy"]["id"] == policy["id"]]
        body["teams"] = [self.ref("team", t["id"]) for t in policy.get("teams", [])]
        return body

    def render_user(self, user: dict) -> dict:
        body = {"id": user["id"], "type": "user", **self._links("user", user)}
        for key, value in user.items():
            if key not in ("id", "type", "contact_methods", "notification_rules"):
                body[key] = copy.deepcopy(value)
        body["teams"] = [self.ref("team", t["id"]) for t in user.get("teams", [])]
        body["contact_methods"] = [
            {"id": m["id"], "type": m["type"] if m["type"].endswith("_reference") else f"{m['type']}_reference",
             "summary": m.get("label", m["id"]), "self": f"{self.api_url}/users/{user['id']}/contact_methods/{m['id']}",
             "html_url": None} for m in user.get("contact_methods", [])]
        body["notification_rules"] = [
            {"id": r["id"], "type": "assignment_notification_rule_reference",
             "summary": f"{r.get('start_delay_in_minutes', 0)} minutes: channel {r['contact_method']['id']}",
             "self": f"{self.api_url}/users/{user['id']}/notification_rules/{r['id']}", "html_url": None}
            for r in user.get("notification_rules", [])]
        return body

    def render_notification_rule(self, user: dict, rule: dict, contact_methods: bool = False) -> dict:
        """GET /users/{id}/notification_rules' item (verified-2026-12 §12); `include[]=contact_methods`
        expands the reference into the contact method."""
        method = next((m for m in user.get("contact_methods", []) if m["id"] == rule["contact_method"]["id"]), None)
        kind = (method or rule["contact_method"])["type"].removesuffix("_reference")
        contact = {"id": rule["contact_method"]["id"], "type": f"{kind}_reference",
                   "summary": (method or {}).get("label", rule["contact_method"]["id"]),
                   "self": f"{self.api_url}/users/{user['id']}/contact_methods/{rule['contact_method']['id']}",
                   "html_url": None}
        if contact_methods and method is not None:
            # The spec keeps the reference's type (ContactMethodReference) and adds the method's fields.
            contact = {**contact, **{k: copy.deepcopy(v) for k, v in method.items() if k not in ("id", "type")}}
        return {"id": rule["id"], "type": "assignment_notification_rule",
                "summary": f"{rule.get('start_delay_in_minutes', 0)} minutes: channel {rule['contact_method']['id']}",
                "self": f"{self.api_url}/users/{user['id']}/notification_rules/{rule['id']}", "html_url": None,
                "start_delay_in_minutes": int(rule.get("start_delay_in_minutes", 0)),
                "urgency": rule.get("urgency", "high"), "contact_method": contact,
                "created_at": rule.get("created_at") or user.get("created_at") or "2025-09-01T09:00:00Z"}

    def render_oncall(self, oncall: OnCall) -> dict:
        return {
            "escalation_policy": self.ref("escalation_policy", oncall.escalation_policy_id),
            "escalation_level": oncall.escalation_level,
            "schedule": self.ref("schedule", oncall.schedule_id) if oncall.schedule_id else None,
            "user": self.ref("user", oncall.user_id),
            "start": iso(oncall.start),
            "end": iso(oncall.end),
        }

    def render_maintenance_window(self, window: dict) -> dict:
        body = {"id": window["id"], "type": "maintenance_window",
                "summary": window.get("description") or window["id"],
                "self": f"{self.api_url}/maintenance_windows/{window['id']}",
                "html_url": f"{self.web_url}/maintenance_windows#/show/{window['id']}"}
        for key, value in window.items():
            if key not in ("id", "type", "services", "created_by", "teams"):
                body[key] = copy.deepcopy(value)
        if window.get("created_by"):
            body["created_by"] = self.ref("user", window["created_by"]["id"])
        body["services"] = [self.ref("service", s["id"]) for s in window.get("services", [])]
        body["teams"] = [self.ref("team", t["id"]) for t in window.get("teams", [])]
        return body


# notification type -> the channel a person acknowledges it from (an acknowledge_log_entry's channel.type)
_ACK_CHANNELS = {"sms_notification": "sms", "phone_notification": "phone", "email_notification": "email",
                 "push_notification": "mobile"}


def _cef_field(payload: dict, name: str):
    """A PD-CEF field of an event's payload for content-based grouping: summary, source, component,
    group, class, severity, or custom_details.<key>."""
    if name.startswith("custom_details."):
        details = payload.get("custom_details")
        return details.get(name.split(".", 1)[1]) if isinstance(details, dict) else None
    return payload.get(name)


# contact method type -> (notification type, how the log entry's summary names it)
_NOTIFICATION_KINDS = {
    "sms_contact_method": ("sms_notification", "SMS"),
    "phone_contact_method": ("phone_notification", "phone"),
    "email_contact_method": ("email_notification", "email"),
    "push_notification_contact_method": ("push_notification", "push notification"),
}


def _address(method: dict) -> str:
    if method.get("country_code") and method["type"].startswith(("sms", "phone")):
        return f"+{method['country_code']} {method['address']}"
    return method["address"]


def _payload_errors(payload) -> list[str]:
    if not isinstance(payload, dict):
        return ["'payload' is missing or blank"]
    errors = []
    for name in ("summary", "source", "severity"):
        value = payload.get(name)
        if not isinstance(value, str) or not value.strip():
            errors.append(f"'payload.{name}' is missing or blank")
    severity = payload.get("severity")
    if isinstance(severity, str) and severity.strip() and severity not in SEVERITIES:
        errors.append("'payload.severity' must be one of critical, error, warning or info")
    if "custom_details" in payload and payload["custom_details"] is not None \
            and not isinstance(payload["custom_details"], (dict, str)):
        errors.append("'payload.custom_details' must be an object")
    if "timestamp" in payload:
        try:
            parse_time(str(payload["timestamp"]))
        except ValueError:
            errors.append("'payload.timestamp' is not a valid ISO 8601 timestamp")
    return errors


def _in_support_hours(hours: dict | None, at: float) -> bool:
    if not hours:
        return True
    local = datetime.fromtimestamp(at, _zone(hours.get("time_zone")))
    if local.isoweekday() not in hours.get("days_of_week", [1, 2, 3, 4, 5]):
        return False
    start = _clock_time(hours.get("start_time", "00:00:00"))
    end = _clock_time(hours.get("end_time", "23:59:59"))
    since_midnight = timedelta(hours=local.hour, minutes=local.minute, seconds=local.second)
    return start <= since_midnight < end


def _clock_time(text: str) -> timedelta:
    hours, minutes, *seconds = (int(part) for part in text.split(":"))
    return timedelta(hours=hours, minutes=minutes, seconds=seconds[0] if seconds else 0)


def _by_id(objects: list[dict], object_id: str) -> dict:
    for obj in objects:
        if obj.get("id") == object_id:
            return obj
    raise NotFound()
