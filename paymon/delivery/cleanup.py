"""Leave nothing behind: resolve paymon's own test issues and incidents, and sweep what an earlier,
interrupted run left open.

Only what carries paymon's marks is ever touched: a Sentry issue must be tagged `test:true` and
`paymon_run` *and* titled with a marker (`PAYMON-TEST-…`, `PAYMON-DRILL-…`); a PagerDuty incident
must be titled with one. The start-of-run sweep resolves another run's leftover only once it is
older than `delivery.sweep_after` (monitoring.yaml, 30 min): a younger one may belong to a run that
is still waiting for it (another CI job, a colleague's run), so it is listed and left alone. Age is
the time since the leftover last changed, by the services' own stamps (an issue's `lastSeen`, an
incident's `created_at` / `last_status_change_at`); one without a readable stamp is not provably
old, and is left alone too.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from paymon.delivery.endtoend import iso, parse_iso, run_marker
from paymon.errors import PaymonError

log = logging.getLogger(__name__)
MARKER_PREFIX = "PAYMON-TEST-"
MARKERS = (MARKER_PREFIX, "PAYMON-DRILL-")
"""The markers paymon's test and drill events start their messages with (endtoend.run_marker,
drill.drill_marker): what cleanup recognises as its own."""
SWEEP_LOOKBACK_S = 7 * 86400
"""How far back the sweep lists PagerDuty incidents."""


def carries_marker(title: str) -> bool:
    return any(marker in title for marker in MARKERS)


def resolve_own_alerts(client, incident_id: str, own: set[str], resolution: str) -> str:
    """Resolve what paymon caused on one incident: the whole incident when every open alert on it
    is paymon's, else only paymon's alerts (alert grouping may have put someone else's real alert
    on the same incident, verified §13: that stays open). Returns "incident", "alerts" or "none"."""
    alerts = client.incident_alerts(incident_id)
    open_alerts = {a["id"] for a in alerts if a.get("status") != "resolved"}
    if not open_alerts & own:
        return "none"
    if open_alerts <= own:
        client.resolve(incident_id, resolution)
        return "incident"
    for alert_id in sorted(open_alerts & own):
        client.resolve_alert(incident_id, alert_id)
    return "alerts"


def resolve_sentry_test_issues(client, query: str, markers: tuple[str, ...] = MARKERS) -> list[str]:
    """Resolve the unresolved issues matching `query` (always narrowed to test events) whose title
    carries one of `markers` (paymon's marker: its events' messages start with it). An issue the
    query found without one is not provably paymon's: it is named in a warning and left alone."""
    issues = client.paginate(client.org_path("issues"),
                             {"query": f"is:unresolved test:true {query}".strip(), "limit": 100})
    ids = [issue["id"] for issue in issues if any(m in (issue.get("title") or "") for m in markers)]
    unmarked = [issue for issue in issues if issue["id"] not in ids]
    if unmarked:
        log.warning("paymon left %d Sentry issue(s) open that its query matched but whose title carries no "
                    "marker of its own: %s", len(unmarked),
                    "; ".join(f"{i.get('shortId') or i['id']} {(i.get('title') or '')[:80]!r}" for i in unmarked))
    if ids:
        client.put(client.org_path("issues"), {"status": "resolved"}, params={"id": ids})
    return ids


@dataclass
class Leftover:
    service: str
    """"sentry" or "pagerduty"."""
    id: str
    name: str
    """The issue's short id or the incident's number, as people see it."""
    title: str
    age_s: float | None
    """Seconds since it last changed; None when no stamp could be read."""

    def describe(self) -> str:
        age = "age unknown" if self.age_s is None else f"{self.age_s / 60:.0f} min old"
        return f"{self.service} {self.name} {self.title[:80]!r} ({age})"


@dataclass
class Sweep:
    """What the start-of-run sweep did: resolved (old leftovers) and left alone (maybe in flight)."""

    min_age_s: float
    resolved: list[Leftover] = field(default_factory=list)
    left_alone: list[Leftover] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def ids(self, service: str, *, resolved: bool = True) -> list[str]:
        return [x.id for x in (self.resolved if resolved else self.left_alone) if x.service == service]

    def summary(self) -> str:
        """One line for the run's warnings: what was left open, and why (empty when nothing)."""
        if not self.left_alone:
            return ""
        names = "; ".join(x.describe() for x in self.left_alone)
        return (f"paymon's sweep left {len(self.left_alone)} test issue(s)/incident(s) of other runs open, "
                f"younger than delivery.sweep_after ({self.min_age_s / 60:g} min) and so maybe still in flight: "
                f"{names}")


def own_markers(run_id: str) -> tuple[str, ...]:
    """This run's own markers (its test events' and its drill's): never swept."""
    token = run_marker(run_id).removeprefix(MARKER_PREFIX)
    return tuple(f"{marker}{token}" for marker in MARKERS)


def _stamp(value) -> float | None:
    try:
        return parse_iso(value) if value else None
    except (TypeError, ValueError):
        return None


def _age(now: float, *stamps) -> float | None:
    """Seconds since the latest readable stamp; None if none can be read."""
    seen = [s for s in map(_stamp, stamps) if s is not None]
    return now - max(seen) if seen else None


def _old_enough(leftover: Leftover, min_age_s: float) -> bool:
    return leftover.age_s is not None and leftover.age_s >= min_age_s


def sweep_sentry(client, *, run_id: str, now: float, min_age_s: float, result: Sweep) -> None:
    issues = client.paginate(client.org_path("issues"), {
        "query": f"is:unresolved test:true has:paymon_run !paymon_run:{run_id}", "limit": 100})
    old = []
    for issue in issues:
        title = issue.get("title") or ""
        if not carries_marker(title):
            continue  # tagged like paymon's but not titled so: not provably paymon's, never touched
        leftover = Leftover("sentry", str(issue["id"]), issue.get("shortId") or str(issue["id"]), title,
                            _age(now, issue.get("lastSeen")))
        (old if _old_enough(leftover, min_age_s) else result.left_alone).append(leftover)
    if old:
        client.put(client.org_path("issues"), {"status": "resolved"}, params={"id": [x.id for x in old]})
        result.resolved.extend(old)


def sweep_pagerduty(client, service_id: str, *, run_id: str, now: float, min_age_s: float, result: Sweep) -> None:
    own = own_markers(run_id)
    for incident in client.incidents(since=iso(now - SWEEP_LOOKBACK_S), service_id=service_id,
                                     statuses=("triggered", "acknowledged")):
        title = incident.get("title") or ""
        if not carries_marker(title) or any(marker in title for marker in own):
            continue
        leftover = Leftover("pagerduty", incident["id"], f"#{incident.get('incident_number') or incident['id']}",
                            title, _age(now, incident.get("created_at"), incident.get("last_status_change_at")))
        if not _old_enough(leftover, min_age_s):
            result.left_alone.append(leftover)
            continue
        # Only paymon's alerts on it: someone's real alert grouped onto the incident stays open.
        own = {a["id"] for a in client.incident_alerts(incident["id"]) if carries_marker(a.get("summary") or "")}
        resolve_own_alerts(client, incident["id"], own, "paymon: leftover test incident of an interrupted run "
                                                        f"(older than {min_age_s / 60:g} min), auto-resolved")
        result.resolved.append(leftover)


def sweep(sentry_client, pagerduty=None, *, run_id: str, now: float, min_age_s: float) -> Sweep:
    """Before firing: resolve other runs' leftovers older than `min_age_s` (at `now`, the services'
    clock), list the younger ones. Best effort: what cannot be swept is logged and put in
    `problems`, and the run goes on (the delivery checks do not depend on it: every run uses a
    fresh fingerprint)."""
    result = Sweep(min_age_s)
    try:
        sweep_sentry(sentry_client, run_id=run_id, now=now, min_age_s=min_age_s, result=result)
    except PaymonError as exc:
        result.problems.append(f"could not sweep old Sentry test issues: {exc}")
    if pagerduty is not None:
        client, service_id = pagerduty
        try:
            sweep_pagerduty(client, service_id, run_id=run_id, now=now, min_age_s=min_age_s, result=result)
        except PaymonError as exc:
            result.problems.append(f"could not sweep old PagerDuty test incidents: {exc}")
    for problem in result.problems:
        log.warning("%s", problem)
    if result.left_alone:
        log.warning("%s", result.summary())
    return result
