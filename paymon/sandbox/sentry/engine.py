"""The emulated alert engine: every stored event is run through the world's alerts, as Sentry does.

Alerts are read with `paymon.rules.normalise.read_alerts` (both generations, one model) and
evaluated with the shared search matcher (`paymon.rules.query.matcher`), so the sandbox fires by
exactly the semantics paymon verifies:

* per-issue alerts (legacy issue rules, issue workflows): the event must pass the filters (levels
  AND filter, environment, event types); the frequency condition counts events **of that event's
  issue** in the window (`>`, strictly); the actions then wait `repeat_minutes` per issue.
* aggregate alerts (legacy metric alerts, metric detectors): `aggregate` over the matching events
  in the rolling window across issues; crossing `critical`/`warning` opens or escalates an incident
  and runs the actions whose `fires_at` is reached (deduplicated by target, as Sentry dedupes a
  warning and critical action on the same target); dropping back resolves it (Slack "Resolved",
  PagerDuty `resolve`). An open incident does not re-notify.

Time is the sandbox clock: issue alerts are evaluated per event at its `received` time; aggregate
alerts on their subscription's cadence (below), lazily: `advance(now)` evaluates every update due up
to `now`, and the backend calls it before anything reads state (`hub.settle()` before any Slack or
PagerDuty request) - nothing sleeps or polls.

**Subscription cadence (knobs `evaluation_cadence`, `detector_cadence`, `evaluation_phase`).** Real
Sentry does not evaluate metric alerts per event: a Snuba query subscription re-runs the aggregate
over the window once per *resolution* and the subscription processor judges each update
(verified-2026-12.md §5; getsentry/sentry `src/sentry/incidents/logic.py` `get_alert_resolution`,
`DEFAULT_ALERT_RULE_WINDOW_TO_RESOLUTION`, `DEFAULT_CMP_ALERT_RULE_RESOLUTION_MULTIPLIER`;
`src/sentry/snuba/snuba_query_validator.py` `create_source`; `src/sentry/incidents/
subscription_processor.py`):

* legacy metric alert rules: window < 30 min -> every 1 min, 30-59 -> 2, 60-239 -> 3, 240-1439 -> 5,
  >= 1440 -> 15; a percent-change rule (`comparisonDelta`) twice that; a dynamic rule its window.
  An incident opens on the `thresholdPeriod`-th consecutive breaching update (default 1), and
  resolves on as many consecutive non-breaching ones; any other update resets the count.
* workflow-engine metric detectors: every minute whatever the window (the detector API hard-codes
  `resolution=timedelta(minutes=1)`); an issue opens on the first breaching update (the metric
  handler does not read `config.threshold_period`). `detector_cadence: "migrated"` gives a
  detector the legacy table instead (a rule migrated from legacy keeps its SnubaQuery; inference).
* an update at time T sees the events received in (T - window, T]. Each subscription runs at its
  own offset within its period (Snuba spreads subscriptions over the period; inference): offset =
  crc32(alert source) mod period, or `evaluation_phase` seconds for every alert.

`evaluation_cadence: "real"` (default) is the above; a number of seconds makes every aggregate alert
update that often and ignores thresholdPeriod; 0 judges on every event and every expiry, which no
Sentry does: only for tests of window semantics, where the cadence would blur the boundary.
Every firing, and every incident (legacy `O/incidents/`: `dateDetected` = the update that tripped
it, §8) or open period (workflow `O/open-periods/`), carries the update's time. Notifications go through `hub.backends["slack"|"pagerduty"]` with
`visible_at = now + knobs.delivery_delay[kind]`; e-mail goes to `backend.outbox`. Every firing is
appended to `backend.alert_firings`.

Dual-written alerts (the same alert in both generations, as Sentry's migration leaves an org)
notify once: the workflow-engine copy runs, the legacy copy is shadowed (knob
`dual_written_alerts`: "workflow" (default), "legacy" or "both").
"""

from __future__ import annotations

import bisect
import json
import math
import zlib
from collections import deque
from dataclasses import dataclass, field

from paymon.rules import query as q
from paymon.rules import semantics
from paymon.rules.model import Action, Alert
from paymon.rules.normalise import Directory, read_alerts
from paymon.sandbox.sentry import notify
from paymon.sandbox.sentry.discover import aggregate_column
from paymon.sandbox.sentry.events import Issue, StoredEvent

LEVEL_RANK = semantics.LEVEL_RANK
_COMPARATORS = semantics.COMPARATORS
DEFAULT_DELIVERY_DELAY = {"slack": 0.0, "pagerduty": 0.0, "email": 0.0}


@dataclass(frozen=True)
class Delivery:
    kind: str  # "slack" | "pagerduty" | "email" | "other"
    target: str  # "#channel", service name, "team:on-call", ...
    status: str  # "sent" | "undeliverable"
    visible_at: float | None = None
    reason: str | None = None
    payload: dict | None = None


@dataclass
class AlertFiring:
    alert: str
    source: str
    generation: str
    at: float
    level: str  # "critical" | "warning" | "resolved"
    issue_id: str | None
    short_id: str | None
    event_ids: tuple[str, ...]
    value: float | None
    deliveries: list[Delivery] = field(default_factory=list)


@dataclass
class _Compiled:
    alert: Alert
    test: object  # event dict -> bool
    compute: object | None  # list[StoredEvent] -> value (aggregate alerts)
    comparator: object
    slack_options: dict  # channel id -> (tags, notes)
    period: float = 0.0
    """Aggregate alerts: seconds between two subscription updates (module docstring)."""
    phase: float = 0.0
    """Aggregate alerts: updates happen at phase + k * period."""
    threshold_period: int = 1
    """Consecutive breaching (or resolving) updates before the incident opens (or closes)."""
    project_ids: frozenset[str] | None = None
    """The projects whose events the alert sees (a rule's `projects`, a detector's `projectId`,
    the project an issue rule belongs to); None: not known, every project."""


# getsentry/sentry src/sentry/incidents/logic.py: DEFAULT_ALERT_RULE_RESOLUTION = 1 and
# DEFAULT_ALERT_RULE_WINDOW_TO_RESOLUTION, bisected on the window by get_alert_resolution (minutes).
_RESOLUTION_BY_WINDOW = ((1440, 15), (720, 5), (240, 5), (120, 3), (90, 3), (60, 3), (30, 2))
DEFAULT_RESOLUTION_MINUTES = 1
PERCENT_CHANGE_MULTIPLIER = 2  # DEFAULT_CMP_ALERT_RULE_RESOLUTION_MULTIPLIER
DETECTOR_RESOLUTION_MINUTES = 1  # snuba_query_validator.py create_source: resolution=timedelta(minutes=1)


def alert_resolution_minutes(window_minutes: float, percent_change: bool = False) -> int:
    """`get_alert_resolution`: how often Sentry evaluates a legacy metric alert of this window."""
    minutes = DEFAULT_RESOLUTION_MINUTES
    for bound, resolution in _RESOLUTION_BY_WINDOW:
        if window_minutes >= bound:
            minutes = resolution
            break
    return minutes * (PERCENT_CHANGE_MULTIPLIER if percent_change else 1)


@dataclass
class _MetricState:
    """One aggregate alert's window (matching events, oldest first) and incident state."""

    events: deque = field(default_factory=deque)
    level: str = "ok"
    incident: int | None = None
    evaluated_at: float = 0.0
    """The time of the last subscription update judged (updates after it are still due)."""
    pending: str | None = None
    """A level the value reached that thresholdPeriod has not confirmed yet, and for how many updates."""
    count: int = 0
    record: dict | None = None
    """The open incident (legacy) or open period (workflow engine), as the API serves it."""


_predicate = semantics.predicate  # shared with paymon's backtest (paymon.reviews.replay)


def _slack_options(raw_objects: list[dict]) -> dict:
    """Slack `tags`/`notes` per channel id, from the raw rule/workflow actions: presentation
    details the normalised model does not keep (they change what the message shows, not when)."""
    options = {}
    for obj in raw_objects:
        for action in obj.get("actions") or ():
            if str(action.get("id", "")).endswith("SlackNotifyServiceAction"):
                options[str(action.get("channel_id"))] = (action.get("tags"), action.get("notes"))
        for group in obj.get("actionFilters") or ():
            for action in group.get("actions") or ():
                if action.get("type") == "slack":
                    data = action.get("data") or {}
                    channel = (action.get("config") or {}).get("targetIdentifier")
                    options[str(channel)] = (data.get("tags"), data.get("notes"))
    return options


class AlertEngine:
    def __init__(self, backend):
        self.backend = backend
        self._signature: str | None = None
        self._compiled: list[_Compiled] = []
        self.unsupported: dict[str, str] = {}
        """alert source -> why the sandbox cannot evaluate it (anomaly detection, % comparisons)."""
        self._metric: dict[str, _MetricState] = {}
        self._intervals: dict[str, semantics.ActionInterval] = {}
        self._incident_counter = 0
        self._slack_threads: dict[tuple, str] = {}
        """(alert, "issue"|"incident", id, channel) -> ts of Sentry's first post there (the thread)."""
        self.incidents: list[dict] = []
        """Legacy metric alert incidents, oldest first (`O/incidents/`, verified-2026-12.md §8)."""
        self.open_periods: list[dict] = []
        """Workflow-engine open periods of metric detectors, oldest first (`O/open-periods/`, §8)."""

    # --- the alert definitions -------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read the alerts when the world's rules, detectors, workflows or directory changed
        (tests and faults edit them in place)."""
        backend = self.backend
        sources = [backend.issue_rules, backend.metric_alert_rules, backend.detectors, backend.workflows,
                   backend.members, backend.teams, backend.integrations, backend.dual_written_alerts,
                   backend.evaluation_cadence, backend.detector_cadence, backend.evaluation_phase]
        signature = json.dumps(sources, sort_keys=True, default=str)
        if signature == self._signature:
            return
        self._signature = signature
        directory = Directory(backend.members, backend.teams, backend.integrations)
        issue_rules = [r for rules in backend.issue_rules.values() for r in rules]
        alert_set = read_alerts(issue_rules, backend.metric_alert_rules, backend.detectors, backend.workflows,
                                directory)
        raw_by_id = {str(o.get("id")): o for o in [*issue_rules, *backend.workflows]}
        metric_by_id = {str(o.get("id")): o for o in [*backend.metric_alert_rules, *backend.detectors]}
        compiled, self.unsupported = [], {}
        projects = self._alert_projects(backend, alert_set.all)
        for alert in self._active(alert_set.all, projects):
            item = self._compile(alert, [raw_by_id[i] for i in alert.raw_ids if i in raw_by_id])
            if item is not None:
                item.project_ids = projects.get(alert.source)
                if alert.counting == "across_events":
                    self._schedule(item, metric_by_id.get(alert.raw_ids[0]) if alert.raw_ids else None)
                compiled.append(item)
        previous = {c.alert.source: c.alert for c in self._compiled}
        self._compiled = compiled
        now = backend.hub.clock.now()
        for item in compiled:
            if item.alert.counting == "across_events" and previous.get(item.alert.source) != item.alert:
                # A new or changed aggregate alert starts from what is in its window now, as a new
                # subscription would query it.
                self._metric[item.alert.source] = self._seeded_state(item, now)

    def _schedule(self, item: _Compiled, raw: dict | None) -> None:
        """The subscription's period, offset and thresholdPeriod (module docstring, knobs)."""
        raw = raw or {}
        window_minutes = (item.alert.window_seconds or 0) / 60
        config = raw.get("config") or {}
        percent_change = bool(raw.get("comparisonDelta") or config.get("comparisonDelta"))
        dynamic = (raw.get("detectionType") or config.get("detectionType")) == "dynamic"
        cadence = self.backend.evaluation_cadence
        if cadence != "real":
            item.period, item.threshold_period = float(cadence), 1
        elif dynamic:
            item.period = float(item.alert.window_seconds or 60)
        elif item.alert.generation == "workflow" and self.backend.detector_cadence != "migrated":
            item.period = 60.0 * DETECTOR_RESOLUTION_MINUTES
        else:
            item.period = 60.0 * alert_resolution_minutes(window_minutes, percent_change)
        if cadence == "real" and item.alert.generation == "legacy":
            # subscription_processor.py: the trigger fires on the thresholdPeriod-th consecutive
            # breaching update. The workflow engine's metric handler ignores it (§5).
            item.threshold_period = max(1, int(raw.get("thresholdPeriod") or 1))
        if item.period <= 0:
            item.period, item.phase = 0.0, 0.0
            return
        phase = self.backend.evaluation_phase
        item.phase = (float(phase) if phase != "spread"
                      else float(zlib.crc32(item.alert.source.encode()) % int(max(item.period, 1))))
        item.phase %= item.period

    def active_alerts(self) -> list[Alert]:
        """The alerts being evaluated now (enabled, not shadowed, emulated)."""
        self.refresh()
        return [c.alert for c in self._compiled]

    @staticmethod
    def _alert_projects(backend, alerts: list[Alert]) -> dict[str, frozenset[str]]:
        """alert source -> ids of the projects it belongs to. An alert sees only its projects'
        events: Sentry's subscription queries and issue rules are per project."""
        by_slug = {p["slug"]: str(p["id"]) for p in backend.projects}
        rules = {str(r.get("id")): frozenset(by_slug.get(s, s) for s in r.get("projects") or ())
                 for r in backend.metric_alert_rules}
        rules.update({str(r.get("id")): frozenset({by_slug.get(slug, slug)})
                      for slug, items in backend.issue_rules.items() for r in items})
        detectors = {str(d.get("id")): str(d.get("projectId")) for d in backend.detectors}
        out = {}
        for alert in alerts:
            if not alert.raw_ids:
                continue
            if alert.source.split(" ", 1)[0] in ("metric_alert", "issue_rule"):
                found = rules.get(alert.raw_ids[0])
            else:
                found = frozenset(detectors[i] for i in alert.raw_ids if i in detectors) or None
            if found is not None:
                out[alert.source] = found
        return out

    def _active(self, alerts: list[Alert], projects: dict[str, frozenset[str]] | None = None) -> list[Alert]:
        alerts = [a for a in alerts if a.enabled]
        mode = self.backend.dual_written_alerts
        if mode == "both":
            return alerts
        projects = projects or {}

        def key(alert: Alert) -> tuple:
            # The same alert in both generations is the same name in the same project(s).
            return " ".join(alert.name.split()).casefold(), projects.get(alert.source)

        names = {key(a): set() for a in alerts}
        for alert in alerts:
            names[key(alert)].add(alert.generation)
        shadowed = "legacy" if mode == "workflow" else "workflow"
        return [a for a in alerts if not (a.generation == shadowed and len(names[key(a)]) > 1)]

    def _compile(self, alert: Alert, raw_objects: list[dict]) -> _Compiled | None:
        comparator = _COMPARATORS.get(alert.comparator)
        if comparator is None:
            self.unsupported[alert.source] = f"comparator {alert.comparator!r} is not emulated"
            return None
        compute = None
        if alert.counting == "across_events":
            dataset = "transactions" if alert.dataset == "transactions" else "discover"
            try:
                # count() is the common case and runs per event: the window's length, no copy.
                compute = (len if alert.aggregate == "count()"
                           else aggregate_column(alert.aggregate, dataset).compute)
            except ValueError as exc:
                self.unsupported[alert.source] = f"aggregate {alert.aggregate!r}: {exc}"
                return None
            if alert.window_seconds is None:
                self.unsupported[alert.source] = "no time window"
                return None
        elif alert.aggregate != "count()":
            self.unsupported[alert.source] = f"per-issue {alert.aggregate} is not emulated"
            return None
        return _Compiled(alert, q.matcher(_predicate(alert)), compute, comparator, _slack_options(raw_objects))

    def _seeded_state(self, item: _Compiled, now: float) -> _MetricState:
        state = _MetricState(evaluated_at=self._last_update(item, now, inclusive=True))
        window = item.alert.window_seconds
        for event in self.backend.events.window(now - window, now):
            if self._selects(item.alert, item, event):
                state.events.append(event)
        return state

    @staticmethod
    def _selects(alert: Alert, item: _Compiled, event: StoredEvent) -> bool:
        if item.project_ids is not None and event.project_id not in item.project_ids:
            return False
        return semantics.selects(alert, event.environment, event.type) and item.test(event.data)

    # --- evaluation ------------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Judge every subscription update due up to `now` (alerts fire, escalate and resolve on
        them, also when events only age out of the window)."""
        for item in self._compiled:
            if item.alert.counting == "across_events":
                self._catch_up(item, self._state(item), now, inclusive=True)

    def _state(self, item: _Compiled) -> _MetricState:
        if item.alert.source not in self._metric:
            self._metric[item.alert.source] = _MetricState(
                evaluated_at=self._last_update(item, self.backend.hub.clock.now(), inclusive=True))
        return self._metric[item.alert.source]

    @staticmethod
    def _next_update(item: _Compiled, after: float) -> float:
        """The first update strictly after `after`."""
        if item.period == 0:
            return after
        k = math.floor((after - item.phase) / item.period) + 1
        update = item.phase + k * item.period
        return update if update > after else update + item.period

    @staticmethod
    def _last_update(item: _Compiled, until: float, inclusive: bool) -> float:
        """The last update at or before `until` (strictly before when not inclusive)."""
        if item.period == 0:
            return until
        k = math.floor((until - item.phase) / item.period)
        update = item.phase + k * item.period
        if update > until or (update == until and not inclusive):
            update -= item.period
        return update

    def _catch_up(self, item: _Compiled, state: _MetricState, until: float, inclusive: bool) -> None:
        """Judge the updates after `state.evaluated_at` up to `until`. Between two changes of the
        window (an event arriving, the oldest leaving) the value cannot change, so a settled state
        skips the updates in between: the cost follows the events, not the hours passed."""
        window = item.alert.window_seconds
        if item.period == 0:
            # Every event (on_event) and every expiry is an update.
            while state.events and (state.events[0].received + window < until
                                    or (inclusive and state.events[0].received + window == until)):
                moment = state.events[0].received + window
                while state.events and state.events[0].received + window <= moment:
                    state.events.popleft()
                self._evaluate_metric(item, state, moment)
            state.evaluated_at = max(state.evaluated_at, until)
            return
        update = self._next_update(item, state.evaluated_at)
        while update < until or (inclusive and update == until):
            while state.events and state.events[0].received + window <= update:
                state.events.popleft()
            self._evaluate_metric(item, state, update)
            state.evaluated_at = update
            if state.pending is not None:
                update = self._next_update(item, update)
            elif state.events:
                leaves = state.events[0].received + window  # the first update the oldest event is out of
                update = max(self._next_update(item, update), self._next_update(item, leaves - 1e-6))
            else:
                break
        state.evaluated_at = max(state.evaluated_at, self._last_update(item, until, inclusive))

    def on_event(self, event: StoredEvent, issue: Issue | None, project: dict) -> None:
        now = event.received
        for item in self._compiled:
            alert = item.alert
            if alert.counting == "across_events":
                state = self._state(item)
                selected = self._selects(alert, item, event)
                if (selected and now <= state.evaluated_at and not state.events and state.level == "ok"
                        and state.pending is None):
                    # A backfill (a history stored with past `received` times) into an idle
                    # subscription: judged as if it had arrived on time.
                    state.evaluated_at = self._last_update(item, now, inclusive=False)
                self._catch_up(item, state, now, inclusive=False)
                if not selected or (item.period and now + alert.window_seconds
                                    <= self._next_update(item, state.evaluated_at)):
                    continue  # never inside a window still to be judged
                if state.events and state.events[-1].received > now:
                    # Keep the window ordered even if an event is stored with an earlier time.
                    position = bisect.bisect_right([e.received for e in state.events], now)
                    state.events.insert(position, event)
                else:
                    state.events.append(event)
                if item.period == 0:
                    self._evaluate_metric(item, state, now)
            elif issue is not None and self._selects(alert, item, event):
                self._evaluate_issue_alert(item, event, issue, project, now)

    def _level_for(self, item: _Compiled, value: float | None) -> str:
        return semantics.level_for(item.alert, value)

    def _evaluate_metric(self, item: _Compiled, state: _MetricState, now: float) -> None:
        """One subscription update at `now`: the window holds the events received in (now - window, now]."""
        events = state.events
        if events and events[-1].received > now:
            events = [e for e in events if e.received <= now]
        value = item.compute(events if item.compute is len else list(events))
        level = self._level_for(item, value)
        if level == state.level:
            state.pending, state.count = None, 0
            return
        if state.pending == level:
            state.count += 1
        else:
            state.pending, state.count = level, 1
        if state.count < item.threshold_period:
            return
        state.pending, state.count = None, 0
        previous = state.level
        if previous == "ok":
            self._incident_counter += 1
            state.incident = self._incident_counter
        state.level = level
        shown = "resolved" if level == "ok" else level
        # Resolution goes to the actions of the level that was active; an escalation or a
        # downgrade to the actions of the new level.
        reach = previous if level == "ok" else level
        actions = [a for a in item.alert.actions if LEVEL_RANK[a.fires_at] <= LEVEL_RANK[reach]]
        project = self._project_of(item, events[-1] if events else None)
        self._record_incident(item, state, now, previous, level, project)
        ctx = notify.AlertContext(
            rule_name=item.alert.name, rule_id=item.alert.raw_ids[0] if item.alert.raw_ids else "",
            organization=self.backend.organization, project=project, web_base=self.backend.web_base, level=shown,
            at=now, value=None if value is None else float(value), aggregate=item.alert.aggregate,
            window_seconds=item.alert.window_seconds, incident_identifier=state.incident)
        event_ids = tuple(e.event_id for e in events)
        self._fire(item, ctx, _dedupe(actions), None, event_ids)
        if level == "ok":
            state.incident = None

    def _record_incident(self, item: _Compiled, state: _MetricState, now: float, previous: str, level: str,
                         project: dict) -> None:
        """The incident (legacy) or open period (workflow engine) the API shows for this change."""
        alert = item.alert
        if previous == "ok":
            if alert.generation == "legacy":
                # subscription_processor.py calculate_event_date_from_update_date (§8).
                started = now - (alert.window_seconds or 0) - item.period * (item.threshold_period - 1)
                state.record = {
                    "identifier": str(state.incident), "ruleId": alert.raw_ids[0] if alert.raw_ids else "",
                    "projects": [project["slug"]], "title": alert.name, "status": level,
                    "dateStarted": started, "dateDetected": now, "dateCreated": now, "dateClosed": None}
                self.incidents.append(state.record)
            else:
                state.record = {
                    "id": str(state.incident), "detectorId": alert.raw_ids[0] if alert.raw_ids else "",
                    "projectId": str(project["id"]), "title": alert.name, "start": now, "end": None,
                    "activities": [{"id": f"{state.incident}-1", "type": "opened", "value": level,
                                    "dateCreated": now, "eventId": None}]}
                self.open_periods.append(state.record)
        elif state.record is not None:
            record = state.record
            if level == "ok":
                if "dateClosed" in record:
                    record["dateClosed"], record["status"] = now, "closed"
                else:
                    record["end"] = now
                    record["activities"].append({"id": f"{state.incident}-{len(record['activities']) + 1}",
                                                 "type": "closed", "value": None, "dateCreated": now,
                                                 "eventId": None})
                state.record = None
            elif "dateClosed" in record:
                record["status"] = level
            else:
                record["activities"].append({"id": f"{state.incident}-{len(record['activities']) + 1}",
                                             "type": "status_change", "value": level, "dateCreated": now,
                                             "eventId": None})

    def _evaluate_issue_alert(self, item: _Compiled, event: StoredEvent, issue: Issue, project: dict,
                              now: float) -> None:
        alert = item.alert
        window = alert.window_seconds
        if window is not None:
            # The issue's events are in arrival order: bisect to the window, then count (strictly
            # after now - window, as Sentry's rolling window).
            start = bisect.bisect_right(issue.events, now - window, key=lambda e: e.received)
            count = sum(1 for e in issue.events[start:]
                        if e.received <= now and (alert.environment is None or e.environment == alert.environment))
            if not semantics.crosses(alert, count):
                return
        interval = self._intervals.setdefault(alert.source, semantics.ActionInterval(alert.repeat_minutes))
        interval.minutes = alert.repeat_minutes
        if not interval.allow(issue.id, now):
            return  # the rule's action interval: at most once per `frequency` minutes per issue
        ctx = notify.AlertContext(
            rule_name=alert.name, rule_id=alert.raw_ids[0] if alert.raw_ids else "",
            organization=self.backend.organization, project=project, web_base=self.backend.web_base,
            level="critical", at=now, issue=issue, event=event)
        self._fire(item, ctx, list(alert.actions), issue, (event.event_id,))

    def _project_of(self, item: _Compiled, event: StoredEvent | None) -> dict:
        if event is not None:
            for project in self.backend.projects:
                if str(project["id"]) == event.project_id:
                    return project
        return self.backend.projects[0]

    # --- delivering ------------------------------------------------------------------------------

    def _fire(self, item: _Compiled, ctx: notify.AlertContext, actions: list[Action], issue: Issue | None,
              event_ids: tuple[str, ...]) -> None:
        firing = AlertFiring(item.alert.name, item.alert.source, item.alert.generation, ctx.at, ctx.level,
                             issue.id if issue else None, issue.short_id if issue else None, event_ids, ctx.value)
        for action in actions:
            try:
                firing.deliveries.append(self._deliver(item, ctx, action))
            except Exception as exc:  # a broken stand-in must not break ingestion; Sentry logs and drops
                firing.deliveries.append(Delivery(action.kind, action.target, "undeliverable",
                                                  reason=f"{type(exc).__name__}: {exc}"))
        self.backend.record_firing(firing)

    def _delay(self, kind: str) -> float:
        return float(self.backend.delivery_delay.get(kind, 0.0))

    def _integration(self, provider: str, integration_id: str | None) -> tuple[dict | None, str | None]:
        for integration in self.backend.integrations:
            if (integration.get("provider") or {}).get("key") != provider:
                continue
            if integration_id is not None and str(integration.get("id")) != str(integration_id):
                continue
            if integration.get("status") != "active" or integration.get("organizationIntegrationStatus",
                                                                         "active") != "active":
                return None, f"{provider} integration {integration.get('id')} is {integration.get('status')}"
            return integration, None
        return None, f"no {provider} integration {integration_id or ''}".strip()

    def _deliver(self, item: _Compiled, ctx: notify.AlertContext, action: Action) -> Delivery:
        if action.kind == "slack":
            return self._slack(item, ctx, action)
        if action.kind == "pagerduty":
            return self._pagerduty(ctx, action)
        if action.kind == "email":
            return self._email(ctx, action)
        return Delivery(action.kind, action.target, "undeliverable", reason="action type is not emulated")

    def _slack(self, item: _Compiled, ctx: notify.AlertContext, action: Action) -> Delivery:
        _, problem = self._integration("slack", action.integration_id)
        channel = action.target_id or action.target
        if ctx.issue is not None:
            tags, notes = item.slack_options.get(str(channel), (None, None))
            payload = notify.slack_issue_alert(ctx, channel, tags, notes)
        else:
            payload = notify.slack_metric_alert(ctx, channel)
        if problem:
            return Delivery("slack", action.target, "undeliverable", reason=problem, payload=payload)
        slack = self.backend.hub.backends.get("slack")
        if slack is None:
            return Delivery("slack", action.target, "undeliverable", reason="no Slack backend in the hub",
                            payload=payload)
        visible_at = ctx.at + self._delay("slack")
        # Sentry threads what it says again about one issue (issue alerts) or one incident (metric
        # alerts) under its first post in the channel: `thread_ts` = that post; an issue alert's
        # repeat is always broadcast to the channel, a metric alert's reply only while the incident
        # is critical (so "Resolved" stays in the thread, which conversations.history never shows).
        # getsentry/sentry integrations/slack/actions/notification.py (`reply_broadcast = thread_ts
        # is not None`) and integrations/slack/utils/notifications.py (`IncidentStatus.CRITICAL`);
        # org options sentry:issue_alerts_thread_flag / sentry:metric_alerts_thread_flag, default on
        # (knob `slack_threads`); verified-2026-12.md §10.
        threads = getattr(self.backend, "slack_threads", {"issue_alerts": True, "metric_alerts": True})
        subject = ctx.issue.id if ctx.issue is not None else ctx.incident_identifier
        key = (item.alert.source, "issue" if ctx.issue is not None else "incident", subject, str(channel))
        parent = self._slack_threads.get(key) if threads.get(
            "issue_alerts" if ctx.issue is not None else "metric_alerts", True) else None
        if parent is not None:
            payload = {**payload, "thread_ts": parent}
            if ctx.issue is not None or ctx.level == "critical":
                payload["reply_broadcast"] = True
        posted = slack.post_message(channel, payload, as_user="sentry", visible_at=visible_at)
        if parent is None and subject is not None and (posted or {}).get("ts"):
            self._slack_threads[key] = posted["ts"]
        return Delivery("slack", action.target, "sent", visible_at, payload=payload)

    def _pagerduty(self, ctx: notify.AlertContext, action: Action) -> Delivery:
        integration, problem = self._integration("pagerduty", action.integration_id)
        routing_key = None
        if integration is not None:
            for row in (integration.get("configData") or {}).get("service_table") or ():
                if str(row.get("id")) == str(action.target_id):
                    routing_key = row.get("integration_key")
            if routing_key is None:
                problem = f"PagerDuty service row {action.target_id} is not in the integration's service_table"
        if problem:
            return Delivery("pagerduty", action.target, "undeliverable", reason=problem)
        if ctx.issue is not None:
            event = notify.pagerduty_issue_alert(ctx, routing_key, action.severity)
        else:
            event = notify.pagerduty_metric_alert(ctx, routing_key, action.severity)
        pagerduty = self.backend.hub.backends.get("pagerduty")
        if pagerduty is None:
            return Delivery("pagerduty", action.target, "undeliverable", reason="no PagerDuty backend in the hub",
                            payload=event)
        visible_at = ctx.at + self._delay("pagerduty")
        pagerduty.enqueue(event, visible_at=visible_at)
        return Delivery("pagerduty", action.target, "sent", visible_at, payload=event)

    def _email(self, ctx: notify.AlertContext, action: Action) -> Delivery:
        recipients, problem = self.backend.email_recipients(action.target)
        if problem:
            return Delivery("email", action.target, "undeliverable", reason=problem)
        visible_at = ctx.at + self._delay("email")
        message = {**notify.email(ctx, recipients, action.target), "sent_at": ctx.at, "visible_at": visible_at}
        self.backend.send_email(message)
        return Delivery("email", action.target, "sent", visible_at, payload=message)


def _dedupe(actions: list[Action]) -> list[Action]:
    """One notification per target when a warning and a critical action share it (Sentry's
    `deduplicate_trigger_actions` keeps the critical one, which comes first in trigger order)."""
    ordered = sorted(actions, key=lambda a: -LEVEL_RANK[a.fires_at])
    seen, kept = set(), []
    for action in ordered:
        key = (action.kind, action.target_id or action.target)
        if key not in seen:
            seen.add(key)
            kept.append(action)
    return kept


__all__ = ["AlertEngine", "AlertFiring", "Delivery", "DEFAULT_DELIVERY_DELAY"]
