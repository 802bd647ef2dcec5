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

Time is the sandbox clock: events are evaluated at their `received` time, and window expiries are
evaluated lazily by `advance(now)`, which the backend calls before anything reads state - nothing
sleeps or polls. Notifications go through `hub.backends["slack"|"pagerduty"]` with
`visible_at = now + knobs.delivery_delay[kind]`; e-mail goes to `backend.outbox`. Every firing is
appended to `backend.alert_firings`.

Dual-written alerts (the same alert in both generations, as Sentry's migration leaves an org)
notify once: the workflow-engine copy runs, the legacy copy is shadowed (knob
`dual_written_alerts`: "workflow" (default), "legacy" or "both").
"""

from __future__ import annotations

import bisect
import json
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


@dataclass
class _MetricState:
    """One aggregate alert's window (matching events, oldest first) and incident state."""

    events: deque = field(default_factory=deque)
    level: str = "ok"
    incident: int | None = None
    evaluated_at: float = 0.0


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

    # --- the alert definitions -------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read the alerts when the world's rules, detectors, workflows or directory changed
        (tests and faults edit them in place)."""
        backend = self.backend
        sources = [backend.issue_rules, backend.metric_alert_rules, backend.detectors, backend.workflows,
                   backend.members, backend.teams, backend.integrations, backend.dual_written_alerts]
        signature = json.dumps(sources, sort_keys=True, default=str)
        if signature == self._signature:
            return
        self._signature = signature
        directory = Directory(backend.members, backend.teams, backend.integrations)
        issue_rules = [r for rules in backend.issue_rules.values() for r in rules]
        alert_set = read_alerts(issue_rules, backend.metric_alert_rules, backend.detectors, backend.workflows,
                                directory)
        raw_by_id = {str(o.get("id")): o for o in [*issue_rules, *backend.workflows]}
        compiled, self.unsupported = [], {}
        for alert in self._active(alert_set.all):
            item = self._compile(alert, [raw_by_id[i] for i in alert.raw_ids if i in raw_by_id])
            if item is not None:
                compiled.append(item)
        previous = {c.alert.source: c.alert for c in self._compiled}
        self._compiled = compiled
        now = backend.hub.clock.now()
        for item in compiled:
            if item.alert.counting == "across_events" and previous.get(item.alert.source) != item.alert:
                # A new or changed aggregate alert starts from what is in its window now, as a new
                # subscription would query it.
                self._metric[item.alert.source] = self._seeded_state(item, now)

    def active_alerts(self) -> list[Alert]:
        """The alerts being evaluated now (enabled, not shadowed, emulated)."""
        self.refresh()
        return [c.alert for c in self._compiled]

    def _active(self, alerts: list[Alert]) -> list[Alert]:
        alerts = [a for a in alerts if a.enabled]
        mode = self.backend.dual_written_alerts
        if mode == "both":
            return alerts
        names = {" ".join(a.name.split()).casefold(): set() for a in alerts}
        for alert in alerts:
            names[" ".join(alert.name.split()).casefold()].add(alert.generation)
        shadowed = "legacy" if mode == "workflow" else "workflow"
        return [a for a in alerts
                if not (a.generation == shadowed and len(names[" ".join(a.name.split()).casefold()]) > 1)]

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
        state = _MetricState(evaluated_at=now)
        window = item.alert.window_seconds
        for event in self.backend.events.window(now - window, now):
            if self._selects(item.alert, item, event):
                state.events.append(event)
        return state

    @staticmethod
    def _selects(alert: Alert, item: _Compiled, event: StoredEvent) -> bool:
        return semantics.selects(alert, event.environment, event.type) and item.test(event.data)

    # --- evaluation ------------------------------------------------------------------------------

    def advance(self, now: float) -> None:
        """Evaluate every window expiry up to `now` (metric alerts resolve, or "below" alerts fire,
        when events age out)."""
        for item in self._compiled:
            if item.alert.counting == "across_events":
                self._expire(item, self._metric.setdefault(item.alert.source, _MetricState()), now)

    def _expire(self, item: _Compiled, state: _MetricState, now: float) -> None:
        window = item.alert.window_seconds
        while state.events and state.events[0].received + window <= now:
            moment = state.events[0].received + window
            while state.events and state.events[0].received + window <= moment:
                state.events.popleft()
            self._evaluate_metric(item, state, moment, None)
        state.evaluated_at = max(state.evaluated_at, now)

    def on_event(self, event: StoredEvent, issue: Issue | None, project: dict) -> None:
        now = event.received
        for item in self._compiled:
            alert = item.alert
            if alert.counting == "across_events":
                state = self._metric.setdefault(alert.source, _MetricState())
                self._expire(item, state, now)
                if self._selects(alert, item, event):
                    # Keep the window ordered even if an event is stored with an earlier time.
                    if state.events and state.events[-1].received > now:
                        position = bisect.bisect_right([e.received for e in state.events], now)
                        state.events.insert(position, event)
                    else:
                        state.events.append(event)
                    self._evaluate_metric(item, state, now, event)
            elif issue is not None and self._selects(alert, item, event):
                self._evaluate_issue_alert(item, event, issue, project, now)

    def _level_for(self, item: _Compiled, value: float | None) -> str:
        return semantics.level_for(item.alert, value)

    def _evaluate_metric(self, item: _Compiled, state: _MetricState, now: float, event: StoredEvent | None) -> None:
        value = item.compute(state.events if item.compute is len else list(state.events))
        level = self._level_for(item, value)
        if level == state.level:
            return
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
        project = self._project_of(item, event)
        ctx = notify.AlertContext(
            rule_name=item.alert.name, rule_id=item.alert.raw_ids[0] if item.alert.raw_ids else "",
            organization=self.backend.organization, project=project, web_base=self.backend.web_base, level=shown,
            at=now, value=None if value is None else float(value), aggregate=item.alert.aggregate,
            window_seconds=item.alert.window_seconds, incident_identifier=state.incident)
        event_ids = tuple(e.event_id for e in state.events)
        self._fire(item, ctx, _dedupe(actions), None, event_ids)
        if level == "ok":
            state.incident = None

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
