"""A delivery check's timeline: the test event fired, then each place it had to reach (seen in
Slack; the PagerDuty alert created, the incident assigned to the on-call), each with the time since
firing, against the route's deadline.

Every time is the service's own stamp (Slack `ts`, PagerDuty `created_at` of the incident and of
its log entries) minus the moment paymon sent the event, as the delivery checks judge it.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime, timezone

from paymon.delivery.endtoend import Delivery, parse_iso

ON_TIME, LATE, MISSING = "on time", "late", "missing"


@dataclass(frozen=True)
class Step:
    what: str
    at: float | None
    """Epoch seconds the service stamped; None when it never happened within the watch."""
    fired_at: float
    detail: str = ""

    @property
    def seconds(self) -> float | None:
        return None if self.at is None else self.at - self.fired_at

    def status(self, deadline_s: float) -> str:
        if self.seconds is None:
            return MISSING
        return ON_TIME if self.seconds <= deadline_s else LATE


@dataclass(frozen=True)
class Timeline:
    title: str
    fired_at: float
    deadline_s: float
    steps: list[Step]

    @property
    def outcome(self) -> str:
        """One phrase: the worst step, e.g. "all 3 steps within 300 s" or "notified on-call: missing"."""
        bad = [s for s in self.steps if s.status(self.deadline_s) != ON_TIME]
        if not bad:
            return f"all {len(self.steps)} step{'s' if len(self.steps) != 1 else ''} within {self.deadline_s:g} s"
        return "; ".join(f"{s.what}: {s.status(self.deadline_s)}" for s in bad)


def slack_timeline(delivery: Delivery, channel: str) -> Timeline:
    detail = f"message ts {delivery.evidence['ts']}" if delivery.evidence.get("ts") else \
        f"polled {delivery.polls}x"
    step = Step(f"seen in Slack {channel}", delivery.arrived_at, delivery.fired_at, detail)
    return Timeline(f"{delivery.marker} → Slack", delivery.fired_at, delivery.deadline_s, [step])


def _first_entry(entries: list[dict], kind: str, user_ids: set[str]) -> dict | None:
    from paymon.delivery.endtoend import _entry_users

    matching = [e for e in entries if e.get("type") == kind and e.get("created_at")
                and (not user_ids or set(_entry_users(e)) & user_ids)]
    return min(matching, key=lambda e: parse_iso(e["created_at"]), default=None)


def _end_of_stamp(epoch: float) -> float:
    """PagerDuty stamps whole seconds: the entry happened within the second after its stamp. As
    for the incident (paymon.delivery.endtoend), judge by the end of that second, never flatter a page."""
    return epoch + 0.999 if epoch == int(epoch) else epoch


def pagerduty_timeline(delivery: Delivery, incident: dict | None, entries: list[dict],
                       on_call_user_ids: set[str]) -> Timeline:
    """Alert created (the delivery the check judges) and the incident assigned to the on-call user,
    from the incident's log entries. The synthetic incident is low urgency and resolved at once:
    nobody is paged (the drill pages, and checks the acknowledgement)."""
    steps = [Step("alert created", delivery.arrived_at, delivery.fired_at,
                  f"incident {incident.get('id')}, urgency {incident.get('urgency')}" if incident else
                  f"polled {delivery.polls}x")]
    for what, kind in (("assigned to on-call", "assign_log_entry"),):
        entry = _first_entry(entries, kind, on_call_user_ids)
        at = _end_of_stamp(parse_iso(entry["created_at"])) if entry else None
        detail = (entry.get("summary") or kind) if entry else f"no {kind} for the on-call user"
        steps.append(Step(what, at, delivery.fired_at, detail))
    return Timeline(f"{delivery.marker} → PagerDuty", delivery.fired_at, delivery.deadline_s, steps)


def _utc(epoch: float | None) -> str:
    if epoch is None:
        return ""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def to_csv(timeline: Timeline) -> str:
    """The timeline as a table (Allure shows CSV as one): the firing, then one row per step."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["step", "at (UTC)", "seconds since firing", "deadline (s)", "status", "detail"])
    writer.writerow(["test event fired", _utc(timeline.fired_at), "0.0", f"{timeline.deadline_s:g}", "", timeline.title])
    for step in timeline.steps:
        seconds = "" if step.seconds is None else f"{step.seconds:.1f}"
        writer.writerow([step.what, _utc(step.at), seconds, f"{timeline.deadline_s:g}",
                         step.status(timeline.deadline_s), step.detail])
    return out.getvalue()
