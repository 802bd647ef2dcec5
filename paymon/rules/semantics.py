"""When an alert fires: the semantics the sandbox's alert engine and paymon's backtest share.

An `Alert` (paymon.rules.model) selects events by environment, event type, levels AND filter;
its value is compared with its thresholds by its comparator (strictly for `>`); an aggregate
alert notifies when its level rises (ok -> warning -> critical) and once more when it drops back
to ok (resolved), never while it stays; a per-issue alert notifies at most once per action
interval (`repeat_minutes`) per issue.

    predicate(alert)            levels AND filter, for paymon.rules.query.matcher
    selects(alert, env, type)   the environment and event-type part of the selection
    level_for(alert, value)     "critical" | "warning" | "ok"
    IncidentState               the level of one aggregate alert; step(level) -> the transition
    ActionInterval              per-issue throttling: allow(issue, now)
"""

from __future__ import annotations

from dataclasses import dataclass, field

from paymon.rules import query as q
from paymon.rules.model import Alert

COMPARATORS = {">": float.__gt__, ">=": float.__ge__, "<": float.__lt__, "<=": float.__le__}
LEVEL_RANK = {"ok": 0, "warning": 1, "critical": 2}


def predicate(alert: Alert):
    """The alert's levels ANDed with its filter, as one predicate."""
    levels = q.any_of(q.Term("level", "eq", level) for level in sorted(alert.levels)) if alert.levels else None
    return q.all_of([levels, alert.filter])


def selects(alert: Alert, environment: str | None, event_type: str) -> bool:
    if alert.environment is not None and environment != alert.environment:
        return False
    return alert.event_types is None or event_type in alert.event_types


def level_for(alert: Alert, value: float | None) -> str:
    """The highest threshold level `value` crosses; None (no data) is "ok"."""
    compare = COMPARATORS[alert.comparator]
    if value is None:
        return "ok"
    for level in ("critical", "warning"):
        threshold = alert.thresholds.get(level)
        if threshold is not None and compare(float(value), float(threshold)):
            return level
    return "ok"


def crosses(alert: Alert, value: float) -> bool:
    """A per-issue condition: does the count cross the (critical) threshold?"""
    return COMPARATORS[alert.comparator](float(value), float(alert.thresholds.get("critical", 0.0)))


@dataclass
class IncidentState:
    level: str = "ok"

    def step(self, level: str) -> tuple[str, str] | None:
        """(previous, new) when the level changes (a notification), else None."""
        if level == self.level:
            return None
        previous, self.level = self.level, level
        return previous, level


@dataclass
class ActionInterval:
    """At most one notification per `minutes` per issue (an issue rule's action interval)."""

    minutes: float | None
    last: dict = field(default_factory=dict)

    def allow(self, key, now: float) -> bool:
        previous = self.last.get(key)
        if previous is not None and now - previous < 60.0 * float(self.minutes or 0):
            return False
        self.last[key] = now
        return True
