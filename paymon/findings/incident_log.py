"""§1 alerts 3 and 5, "Create incident log entry": each firing leaves an entry in Sentry's own
incident log (monitoring.yaml `incident_log: sentry` says why that is the log).

Sentry records a firing of a metric alert as an incident (legacy `O/incidents/`: dateStarted,
dateDetected, dateClosed) and of a metric detector as an open period (`O/open-periods/`), both
listed under Alerts -> History (verified-2026-12.md §8). An issue alert opens no incident: its
firings are only notifications about an issue. So the alert must be a metric alert or detector,
and its log must be readable, or paymon cannot say an entry will be there.
"""

from __future__ import annotations

from paymon.clients.sentry import api
from paymon.config.spec import AlertSpec
from paymon.errors import TargetUnavailable
from paymon.findings.model import Finding
from paymon.rules.model import Alert

LOOKBACK_S = 30 * 86400


def incident_log(alert_spec: AlertSpec, alert: Alert, client, project_id, now: float
                 ) -> tuple[list[Finding], list[dict] | None]:
    """(findings, the log's entries of the last 30 days; None when the alert keeps no log)."""
    if alert_spec.incident_log is None:
        return [], None
    kind = alert.source.split(" ", 1)[0]
    if kind not in ("metric_alert", "detector"):
        return [Finding(alert_spec.name, "incident log entry",
                        "a metric alert (Sentry records each firing as an incident)",
                        f"an issue alert ({alert.source}): its firings leave no incident, only the issue",
                        "field", alert.source,
                        "create it as a metric alert / metric monitor (Alerts -> Create Alert -> Number of "
                        "Errors), which keeps one incident per firing")], None
    rule_id = alert.raw_ids[0]
    if kind == "metric_alert":
        entries = api.list_incidents(client, rule_id, project_id, now - LOOKBACK_S)
        where = f"O/incidents/?alertRule={rule_id}"
    else:
        entries = api.list_open_periods(client, rule_id, now - LOOKBACK_S, now)
        where = f"O/open-periods/?detectorId={rule_id}"
    if entries is None:
        raise TargetUnavailable(f"{alert_spec.name}: Sentry's incident log ({where}) is not served by this "
                                "Sentry, so no entry can be shown to exist")
    return [], entries


def firing_times(alert: Alert, client, project_id, start: float, end: float) -> list[float] | None:
    """When the alert fired in [start, end], from Sentry's incident log: a metric alert's incidents
    (`dateDetected`, the update that tripped it, verified §8) or a detector's open periods (`start`).
    None for an issue alert (no incident log) or a log this Sentry does not serve."""
    from datetime import datetime

    kind = alert.source.split(" ", 1)[0]
    if kind == "metric_alert":
        entries = api.list_incidents(client, alert.raw_ids[0], project_id, start)
        key = "dateDetected"
    elif kind == "detector":
        entries = api.list_open_periods(client, alert.raw_ids[0], start, end)
        key = "start"
    else:
        return None
    if entries is None:
        return None
    times = []
    for entry in entries:
        stamp = entry.get(key) or entry.get("dateStarted")
        if stamp:
            at = datetime.fromisoformat(str(stamp).replace("Z", "+00:00")).timestamp()
            if start <= at <= end:
                times.append(at)
    return sorted(times)
