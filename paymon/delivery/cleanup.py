"""Leave nothing behind: resolve paymon's own test issues and incidents, and sweep what an earlier,
interrupted run left open (recognised by the `PAYMON-TEST-` marker and the `test:true` tag)."""

from __future__ import annotations

import logging

from paymon.errors import PaymonError

log = logging.getLogger(__name__)
MARKER_PREFIX = "PAYMON-TEST-"


def resolve_sentry_test_issues(client, query: str) -> list[str]:
    """Resolve the unresolved issues matching `query` (always narrowed to test events)."""
    issues = client.paginate(client.org_path("issues"),
                             {"query": f"is:unresolved test:true {query}".strip(), "limit": 100})
    ids = [issue["id"] for issue in issues]
    if ids:
        client.put(client.org_path("issues"), {"status": "resolved"}, params={"id": ids})
    return ids


def resolve_pagerduty_leftovers(client, service_id: str, since: str, keep_marker: str | None = None) -> list[str]:
    """Resolve open incidents on the service whose title carries paymon's marker (but not this run's)."""
    resolved = []
    for incident in client.incidents(since=since, service_id=service_id, statuses=("triggered", "acknowledged")):
        title = incident.get("title") or ""
        if MARKER_PREFIX in title and not (keep_marker and keep_marker in title):
            client.resolve(incident["id"], "paymon: leftover synthetic test incident from an interrupted run")
            resolved.append(incident["id"])
    return resolved


def sweep(sentry_client, pagerduty=None, *, run_id: str, since: str) -> dict[str, list[str]]:
    """Best effort before firing: what cannot be swept is logged, and the run goes on (the delivery
    checks do not depend on it, because every run uses a fresh fingerprint)."""
    swept: dict[str, list[str]] = {"sentry": [], "pagerduty": []}
    try:
        swept["sentry"] = resolve_sentry_test_issues(sentry_client, f"has:paymon_run !paymon_run:{run_id}")
    except PaymonError as exc:
        log.warning("could not sweep old Sentry test issues: %s", exc)
    if pagerduty is not None:
        client, service_id = pagerduty
        try:
            swept["pagerduty"] = resolve_pagerduty_leftovers(client, service_id, since)
        except PaymonError as exc:
            log.warning("could not sweep old PagerDuty test incidents: %s", exc)
    return swept
