"""What paged the team for real: the weekly review's "alerts that fired for real".

paymon's own pages are told apart by what paymon leaves on them: the synthetic checks' and the
drill's markers (`PAYMON-TEST-…`, `PAYMON-DRILL-…`) in the title, or — for a metric alert's page,
whose title carries only the rule name — being resolved by paymon's own PagerDuty user (the `From`
address it resolves with). Everything else on the service is a real page. Each run looks back a
day; the weekly page counts an incident once however many runs saw it (by its id).
"""

from __future__ import annotations

import re
import time

from paymon.delivery.endtoend import iso, parse_iso

REAL_ALERT = "real_alert"
"""The measurement kind of an alert that fired for real (not paymon's test event): {"kind", "alert",
"source", "id", "at"}."""
LOOKBACK_S = 24 * 3600
PAYMON_MARKER = re.compile(r"PAYMON-(TEST|DRILL)-")
_LEVEL_PREFIX = re.compile(r"^(Critical|Warning|Resolved):\s*", re.IGNORECASE)


def real_incidents(client, service_id: str, *, paymon_user_id: str | None, now: float | None = None,
                   lookback_s: float = LOOKBACK_S) -> list[dict]:
    """REAL_ALERT measurements for the service's incidents of the last `lookback_s` seconds."""
    since = (time.time() if now is None else now) - lookback_s
    found = []
    for incident in client.incidents(since=iso(since), service_id=service_id):
        title = incident.get("title") or incident.get("summary") or ""
        if PAYMON_MARKER.search(title):
            continue
        changed_by = (incident.get("last_status_change_by") or {}).get("id")
        if incident.get("status") == "resolved" and paymon_user_id and changed_by == paymon_user_id:
            continue
        found.append({"kind": REAL_ALERT, "alert": _LEVEL_PREFIX.sub("", title)[:120] or "(untitled)",
                      "source": "PagerDuty", "id": incident.get("id"),
                      "at": parse_iso(incident["created_at"]) if incident.get("created_at") else None})
    return found
