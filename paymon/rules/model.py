"""One model for an alert, whichever generation of Sentry's alerting API it was read from.

Legacy issue alert rules, legacy metric alert rules and workflow-engine detectors + workflows are
all turned into `Alert` by `paymon.rules.normalise`; `paymon.findings.alerts` compares an `Alert` with
what monitoring.yaml declares. Names and ids are already resolved here: Slack channels by their
display name ("#payments-alerts"), PagerDuty services by name, e-mail targets as "team:<slug>" or
"member:<email>" (or "user:<id>" / "team:<id>" when the id could not be resolved).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

ActionKind = Literal["slack", "pagerduty", "email", "other"]
TriggerLevel = Literal["critical", "warning"]
Counting = Literal["per_issue", "across_events"]


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    target: str
    """slack: "#channel"; pagerduty: service name; email: "team:on-call" / "member:ops@x.com"."""
    fires_at: TriggerLevel = "critical"
    """The lowest threshold level at which the action runs ("warning" runs at warning and above)."""
    severity: str | None = None
    """PagerDuty severity/priority sent by Sentry (critical, error, warning, info, default)."""
    integration_id: str | None = None
    target_id: str | None = None
    """The raw id the server stores (Slack channel id, PagerDuty service row, user/team id)."""
    resolved: bool = True
    """False when the id could not be resolved to a name (unknown member, channel, service row)."""

    def describe(self) -> str:
        text = f"{self.kind} {self.target}"
        if self.kind == "pagerduty" and self.severity:
            text += f" ({self.severity})"
        if not self.resolved:
            text += " [unresolved]"
        return text


@dataclass(frozen=True)
class Alert:
    name: str
    source: str
    """Provenance for messages: "metric_alert 7101", "issue_rule 611202",
    "detector 5801003 + workflow 9301000"."""
    generation: Literal["legacy", "workflow"]
    enabled: bool
    environment: str | None
    event_types: frozenset[str] | None
    """None = every event type (issue rules do not select event types)."""
    levels: frozenset[str]
    """Levels the alert is restricted to ANDed with the filter; empty = every level."""
    filter: object
    """A canonical predicate (paymon.rules.query) for everything but levels; None = matches all."""
    query: str
    """The raw query / a rendering of the filters, for messages."""
    aggregate: str
    comparator: str
    thresholds: dict[str, float]
    """{"critical": 10.0} or {"critical": 1000.0, "warning": 500.0}."""
    window_seconds: int | None
    counting: Counting
    actions: tuple[Action, ...] = ()
    repeat_minutes: int | None = None
    dataset: str | None = None
    filter_match: str | None = None
    """Issue rules only: how the filters combine ("all", "any", "none")."""
    raw_ids: tuple[str, ...] = field(default_factory=tuple)

    @property
    def threshold(self) -> float | None:
        return self.thresholds.get("critical")
