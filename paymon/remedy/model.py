"""What a plan is made of, and how it is shown.

    Write    one API call: method, path below /api/0/ (may name ids created by earlier writes as
             `{key}`), body (or a function of those ids), what it does
    Change   one thing monitoring.yaml describes (an alert, the dashboard, the cron monitor) and the
             writes that make it match: create, update (field by field, old → new), replace
             (create the new form, delete the old: an alert whose form must change), delete
             (only live alerts monitoring.yaml does not know, and only when asked)
    Plan     the changes, plus what is reported but not written: unknown live alerts, what cannot
             be written (names that do not resolve, forms a generation cannot express) and
             problems outside the configuration apply can change (a disabled integration, an
             archived Slack channel, a PagerDuty service in maintenance)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

SYMBOLS = {"create": "+", "update": "~", "replace": "-/+", "delete": "-"}


@dataclass
class Write:
    method: str
    path: str
    body: dict | Callable[[dict], dict] | None
    what: str
    save_as: str | None = None
    """Remember the created object's id under this key (later writes name it as `{key}`)."""

    def resolve(self, ids: dict[str, str]) -> tuple[str, Any]:
        path = self.path.format(**ids) if "{" in self.path else self.path
        body = self.body(ids) if callable(self.body) else self.body
        return path, body


@dataclass
class Change:
    action: str
    subject: str
    where: str
    details: list[str] = field(default_factory=list)
    writes: list[Write] = field(default_factory=list)

    def headline(self) -> str:
        return f"{SYMBOLS[self.action]} {self.action} {self.subject} ({self.where})"


@dataclass
class Plan:
    target: str
    """"towerofbabel/towerofbabel-web at https://sentry.io"."""
    generation: str
    """The alerting API new alerts are written in: "workflow" or "legacy"."""
    generation_reason: str
    changes: list[Change] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    blocked: list[str] = field(default_factory=list)
    unfixable: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.changes

    def count(self, action: str) -> int:
        return sum(1 for c in self.changes if c.action == action)

    def render(self) -> str:
        lines = [f"paymon plan: {self.target}",
                 f"new alerts go to the {_generation_name(self.generation)} ({self.generation_reason})", ""]
        for change in self.changes:
            lines.append(f"  {change.headline()}")
            lines += [f"      {d}" for d in change.details]
        if self.changes:
            lines.append("")
        sections = [
            ("Live alerts monitoring.yaml does not know (kept; `--delete-unknown` deletes them):", self.unknown),
            ("Cannot be written (fix monitoring.yaml or the organisation, then plan again):", self.blocked),
            ("Problems apply cannot fix (the checks will keep failing on them until fixed by hand):",
             self.unfixable),
            ("Notes:", self.notes),
        ]
        for title, items in sections:
            if items:
                lines.append(title)
                lines += [f"  ! {item}" if title != "Notes:" else f"  - {item}" for item in items]
                lines.append("")
        if self.empty:
            lines.append("No changes.")
        else:
            lines.append(f"Plan: {self.count('create')} to create, {self.count('update')} to update, "
                         f"{self.count('replace')} to replace, {self.count('delete')} to delete "
                         f"({sum(len(c.writes) for c in self.changes)} API writes).")
        return "\n".join(lines)


def _generation_name(generation: str) -> str:
    return {"workflow": "workflow engine (detectors + workflows)",
            "legacy": "legacy alert rules (issue + metric alert rules)"}.get(generation, generation)
