"""When Sentry fired an alert, by Sentry's own record: the other end of a delivery's time.

A delivery deadline counted from the event sent mixes two delays: Sentry's (ingestion, and for an
alert counted across events its query subscription's next update) and the integration's (Slack,
PagerDuty). Measured also from the moment Sentry fired, the report tells a slow Sentry from a
slow Slack (verified-2026-12.md §8):

* legacy metric alert rule: the incident's `dateDetected` (`O/incidents/?alertRule=`), the update
  that tripped the rule;
* workflow-engine metric detector: the open period's `start` (`O/open-periods/?detectorId=`);
* per-issue alert (issue rule, issue workflow): the issue's `firstSeen`. For an "any occurrence"
  alert that is the firing; for one counting N events of an issue it is earlier than the firing,
  so the figure errs towards blaming the integration, never towards excusing it.

`None` when Sentry shows nothing (the alert did not fire, or the endpoint is not served): the
figure is then "unknown", and only the time from the event sent is judged.
"""

from __future__ import annotations

from datetime import datetime

from paymon.clients.sentry import api
from paymon.rules.model import Alert

DRIFT_S = 5.0
"""CI clocks drift: a record stamped this much before the send still counts."""


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def sentry_fired_at(client, alert: Alert | None, since: float, *, project_id: str, issue_query: str,
                    until: float | None = None) -> float | None:
    """When Sentry fired `alert` for events sent at `since` (the earliest record at or after it),
    or None. `issue_query` finds the events' issue (per-issue alerts)."""
    if alert is None or not alert.raw_ids:
        return None
    start = since - DRIFT_S
    if alert.counting == "across_events":
        if alert.generation == "legacy":
            records = api.list_incidents(client, alert.raw_ids[0], project_id, start) or []
            times = [_epoch(r.get("dateDetected")) for r in records]
        else:
            records = api.list_open_periods(client, alert.raw_ids[0], start, (until or since) + 86400) or []
            times = [_epoch(r.get("start")) for r in records]
    else:
        issues = client.get(client.org_path("issues"), params={
            "project": project_id, "query": issue_query, "statsPeriod": "24h", "sort": "date"}) or []
        times = [_epoch(i.get("firstSeen")) for i in issues]
    times = [t for t in times if t is not None and t >= start]
    return min(times) if times else None


__all__ = ["sentry_fired_at"]
