"""One reader per Sentry endpoint paymon reads (reference §0), on top of `SentryClient`.

Readers return Sentry's JSON as is; `paymon.rules.normalise` and friends interpret it. Lists are
read to the end (every page). Errors are the client's (`paymon.errors`), except where a reader
documents that "not there" is an answer (`None`) rather than a failure to check.
"""

from __future__ import annotations

import weakref

from datetime import datetime, timezone
from typing import Any

from paymon.errors import EndpointMissing
from paymon.clients.sentry.client import SentryClient

# The prebuilt dashboard Sentry lists first; it has a string id and no detail worth reading.
_PREBUILT_DASHBOARD_ID = "default-overview"


def discover_time(epoch: float) -> str:
    """`start`/`end` as the events endpoints take them: UTC, to the second, no zone suffix."""
    return datetime.fromtimestamp(epoch, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


# --- organisation directory ----------------------------------------------------------------------

def list_projects(client: SentryClient) -> list[dict]:
    return client.paginate(client.org_path("projects"))


def get_project(client: SentryClient, slug: str) -> dict:
    """The project summary (id, slug, …) of `slug`, found in the organisation's project list.

    Raises EndpointMissing when the token cannot see such a project, naming those it can see.
    """
    projects = list_projects(client)
    for project in projects:
        if project.get("slug") == slug or str(project.get("id")) == str(slug):
            return project
    visible = ", ".join(sorted(str(p.get("slug")) for p in projects)) or "none"
    raise EndpointMissing(
        f"Sentry organisation {client.settings.org!r} has no project {slug!r} visible to the token "
        f"(projects: {visible}) — check SENTRY_PROJECT or monitoring.yaml's project",
        status=404,
    )


def project_id(client: SentryClient, slug: str) -> str:
    """The numeric id (as a string) of the project `slug`; detectors are filtered by it."""
    return str(get_project(client, slug)["id"])


_CONFIGURED_PROJECT_IDS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def configured_project_id(client: SentryClient) -> str:
    """The configured project's id, read once per client. Every org-level events or issues query
    names it: without `project=` Sentry answers for every project the token sees (staging, other
    teams' apps), and a token that sees no project would answer an empty "nothing happened"."""
    if client not in _CONFIGURED_PROJECT_IDS:
        _CONFIGURED_PROJECT_IDS[client] = project_id(client, client.settings.project)
    return _CONFIGURED_PROJECT_IDS[client]


def list_members(client: SentryClient) -> list[dict]:
    return client.paginate(client.org_path("members"))


def list_teams(client: SentryClient) -> list[dict]:
    return client.paginate(client.org_path("teams"))


# --- alerts: legacy generation (may be gone) -----------------------------------------------------

def list_issue_rules(client: SentryClient, project: str) -> list[dict] | None:
    """Legacy issue alert rules of `project`, or None when the endpoint is gone (404/410).

    A 404 cannot tell "endpoint removed" from "no such project", so check the project exists first
    (`get_project`); the snapshot does.
    """
    return _legacy(client, client.project_path("rules", project=project))


def list_metric_alert_rules(client: SentryClient) -> list[dict] | None:
    """Legacy metric alert rules of the organisation, or None when the endpoint is gone (404/410)."""
    return _legacy(client, client.org_path("alert-rules"))


def _legacy(client: SentryClient, path: str, params: dict[str, Any] | None = None) -> list[dict] | None:
    # Sentry is removing the legacy alert endpoints; their rules live on as detectors/workflows,
    # so a missing endpoint means "nothing to read here", not "could not check".
    try:
        return client.paginate(path, params)
    except EndpointMissing:
        return None


# --- when an alert fired (verified-2026-12.md §8) -------------------------------------------------

def list_incidents(client: SentryClient, alert_rule_id: str | int, project_id: str | int, start: float
                   ) -> list[dict] | None:
    """The legacy metric alert rule's incidents not closed before `start` (`O/incidents/`, newest
    first). `dateDetected` is the subscription update that tripped the rule: when Sentry fired.
    None when the endpoint is gone (404/410)."""
    return _legacy(client, client.org_path("incidents"),
                   {"alertRule": str(alert_rule_id), "project": str(project_id), "start": discover_time(start)})


def list_open_periods(client: SentryClient, detector_id: str | int, start: float, end: float) -> list[dict] | None:
    """A metric detector's open periods overlapping [start, end] (`O/open-periods/`, newest first;
    a private endpoint: None when this Sentry does not serve it). `start` is when Sentry fired."""
    try:
        return client.paginate(client.org_path("open-periods"),
                               {"detectorId": str(detector_id), "start": discover_time(start),
                                "end": discover_time(end)})
    except EndpointMissing:
        return None


# --- alerts: workflow engine ---------------------------------------------------------------------

def list_detectors(client: SentryClient, project_id: str | int | None) -> list[dict]:
    """Detectors ("Monitors" in the UI) of one project, by numeric project id (None: of every
    project the token sees)."""
    return client.paginate(client.org_path("detectors"), {} if project_id is None else {"project": str(project_id)})


def list_workflows(client: SentryClient) -> list[dict]:
    """Workflows ("Alerts" in the UI) of the organisation."""
    return client.paginate(client.org_path("workflows"))


# --- dashboards ----------------------------------------------------------------------------------

def list_dashboards(client: SentryClient) -> list[dict]:
    """Dashboard summaries (no widgets); the first is usually the prebuilt 'default-overview'."""
    return client.paginate(client.org_path("dashboards"))


def get_dashboard(client: SentryClient, dashboard_id: str | int) -> dict:
    """One dashboard with its widgets."""
    return client.get(client.org_path("dashboards", dashboard_id))


def find_dashboard(client: SentryClient, title: str) -> dict | None:
    """The detail of the dashboard titled `title`, or None if there is none.

    Titles are matched exactly first, then ignoring case and surrounding space; the prebuilt
    entry is skipped since it cannot be the one monitoring.yaml describes.
    """
    summaries = [d for d in list_dashboards(client) if str(d.get("id")) != _PREBUILT_DASHBOARD_ID]
    wanted = title.strip().casefold()
    match = next((d for d in summaries if d.get("title") == title), None) or next(
        (d for d in summaries if str(d.get("title", "")).strip().casefold() == wanted), None
    )
    return None if match is None else get_dashboard(client, match["id"])


# --- crons ---------------------------------------------------------------------------------------

def list_monitors(client: SentryClient) -> list[dict]:
    return client.paginate(client.org_path("monitors"))


def get_monitor(client: SentryClient, slug: str, project: str | None = None) -> dict | None:
    """The cron monitor `slug` of the project (the configured one unless given), or None if it
    has none by that slug (404). Read through the project's path: the organisation's
    `O/monitors/<slug>/` would answer another project's monitor of the same slug."""
    try:
        return client.get(client.project_path("monitors", slug, project=project))
    except EndpointMissing:
        return None


def list_monitor_checkins(client: SentryClient, slug: str, params: dict[str, Any] | None = None) -> list[dict]:
    """Check-ins of the cron monitor `slug`, newest first (Sentry applies a recent window by default)."""
    return client.paginate(client.org_path("monitors", slug, "checkins"), params)


# --- integrations --------------------------------------------------------------------------------

def list_integrations(client: SentryClient, include_config: bool = True) -> list[dict]:
    """Installed integrations (Slack, PagerDuty, …).

    With config, PagerDuty integration keys are in `configData`: redact before showing it.
    """
    return client.paginate(client.org_path("integrations"), {"includeConfig": 1 if include_config else 0})
