"""Routes of the emulated Sentry web API: path -> handler, the scopes that grant it, pagination.

Scopes come from the endpoint map in sentry-api.md §0 (any one listed scope grants; the matching
`:write`/`:admin` scopes do too). Paths keep Sentry's trailing slash.
"""

from __future__ import annotations

from paymon.sandbox.sentry.endpoints import Endpoint
from paymon.sandbox.sentry.write_responses import INDEX_PATH, write_paths

O = "/api/0/organizations/{organization_id_or_slug}"
P = "/api/0/projects/{organization_id_or_slug}/{project_id_or_slug}"

ORG_READ = ("org:read",)
ALERTS_ORG = ("alerts:read", "org:read")
ALERTS_PROJECT = ("alerts:read", "project:read")


url_paths: list[Endpoint] = [
    Endpoint(f"{O}/projects/", "list_projects", ORG_READ, paginated=True),
    Endpoint(f"{O}/members/", "list_members", ("member:read",), paginated=True),
    Endpoint(f"{O}/teams/", "list_teams", ORG_READ, paginated=True),
    Endpoint(f"{P}/rules/", "list_issue_rules", ALERTS_PROJECT, paginated=True, legacy=True),
    Endpoint(f"{P}/rules/{{rule_id}}/", "get_issue_rule", ALERTS_PROJECT, legacy=True),
    # OrganizationAlertRuleIndexEndpoint paginates with default_per_page=25.
    Endpoint(f"{O}/alert-rules/", "list_metric_alert_rules", ALERTS_ORG, paginated=True, default_per_page=25,
             legacy=True),
    Endpoint(f"{O}/alert-rules/{{alert_rule_id}}/", "get_metric_alert_rule", ALERTS_ORG, legacy=True),
    Endpoint(f"{O}/detectors/", "list_detectors", ALERTS_ORG, paginated=True),
    Endpoint(f"{O}/detectors/{{detector_id}}/", "get_detector", ALERTS_ORG),
    Endpoint(f"{O}/workflows/", "list_workflows", ALERTS_ORG, paginated=True),
    Endpoint(f"{O}/workflows/{{workflow_id}}/", "get_workflow", ALERTS_ORG),
    Endpoint(f"{O}/dashboards/", "list_dashboards", ORG_READ, paginated=True),
    Endpoint(f"{O}/dashboards/{{dashboard_id}}/", "get_dashboard", ORG_READ),
    Endpoint(f"{O}/monitors/", "list_monitors", ALERTS_ORG, paginated=True),
    Endpoint(f"{O}/monitors/{{monitor_id_or_slug}}/", "get_monitor", ALERTS_PROJECT),
    Endpoint(f"{O}/monitors/{{monitor_id_or_slug}}/checkins/", "list_checkins", ALERTS_PROJECT, paginated=True),
    Endpoint(f"{P}/monitors/{{monitor_id_or_slug}}/", "get_monitor", ALERTS_PROJECT),
    Endpoint(f"{P}/monitors/{{monitor_id_or_slug}}/checkins/", "list_checkins", ALERTS_PROJECT, paginated=True),
    Endpoint(f"{O}/integrations/", "list_integrations", ("org:read", "org:integrations"), paginated=True),
    Endpoint(f"{O}/integrations/{{integration_id}}/", "get_integration", ("org:read", "org:integrations")),
]


# Keys, events and issues (sentry-api.md §0, §8). Kept apart from `url_paths`, whose conformance
# tests/test_conformance.py walks; these are walked and validated by tests/test_sandbox_ingest.py.
# Scopes as the server's permission classes map them: bulk/single issue PUT needs event:write,
# DELETE event:admin (OrganizationEventPermission / GroupPermission scope maps).
EVENT_WRITE = ("event:write", "event:admin")
event_paths: list[Endpoint] = [
    Endpoint(f"{P}/keys/", "list_project_keys", ("project:read",), paginated=True),
    Endpoint(f"{P}/events/{{event_id}}/", "get_event", ("project:read", "event:read")),
    Endpoint(f"{O}/eventids/{{event_id}}/", "lookup_event_id", ORG_READ),
    Endpoint(f"{O}/issues/", "list_issues", ("event:read",), paginated=True, page_param="limit"),
    Endpoint(f"{O}/issues/", "update_issues", EVENT_WRITE, method="PUT"),
    Endpoint(f"{O}/issues/", "delete_issues", ("event:admin",), method="DELETE"),
    Endpoint(f"{O}/issues/{{issue_id}}/", "update_issue", EVENT_WRITE, method="PUT"),
    Endpoint(f"{O}/issues/{{issue_id}}/", "delete_issue", ("event:admin",), method="DELETE"),
    Endpoint(f"{O}/events/", "list_events", ORG_READ, paginated=True, default_per_page=50),
    Endpoint(f"{O}/events-timeseries/", "events_timeseries", ORG_READ),
]

# When an alert fired (verified-2026-12.md §8): legacy incidents (`dateDetected`) and workflow-engine
# open periods. Neither is in the public OpenAPI document (incidents: publish status unknown; open
# periods: private), so they are kept apart from `url_paths`. Incidents: IncidentPermission's GET.
incident_paths: list[Endpoint] = [
    Endpoint(f"{O}/incidents/", "list_incidents", ("org:read", "alerts:read"), paginated=True, default_per_page=25),
    Endpoint(f"{O}/open-periods/", "list_open_periods", ALERTS_ORG, paginated=True),
]

# Releases and deploys (verified-2026-12.md §7; releases.py): where paymon finds the latest deploy.
# Kept apart from `url_paths` and validated against the 2026-08 spec by tests/test_post_deploy.py.
RELEASES = ("project:read", "project:releases", "org:ci")
release_paths: list[Endpoint] = [
    Endpoint(f"{O}/releases/", "list_releases", RELEASES, paginated=True, default_per_page=25),
    Endpoint(f"{O}/releases/{{version}}/deploys/", "list_release_deploys", RELEASES, paginated=True),
]

# SDK ingestion (Relay), authenticated by DSN key rather than bearer token.
INGEST_PATHS = {"/api/{project_id}/envelope/": "envelope", "/api/{project_id}/store/": "store"}


def build_routes(responder) -> list:
    """Starlette routes dispatching every endpoint through `responder.dispatch`."""
    from starlette.routing import Route

    def bind(endpoint: Endpoint):
        async def view(request):
            return await responder.dispatch(request, endpoint)

        view.__name__ = endpoint.handler
        return view

    routes = [Route(e.path, bind(e), methods=[e.method]) for e in [*url_paths, *event_paths, *incident_paths]]

    routes += [Route(e.path, bind(e), methods=[e.method]) for e in release_paths]

    def bind_ingest(kind: str):
        async def ingest_view(request):
            return await responder.ingest(request, kind)

        ingest_view.__name__ = f"ingest_{kind}"
        return ingest_view

    routes += [Route(path, bind_ingest(kind), methods=["POST"]) for path, kind in INGEST_PATHS.items()]
    # The write side (create/update/delete) and the API index: paymon.sandbox.sentry.write_responses.
    routes += [Route(e.path, bind(e), methods=[e.method]) for e in write_paths]
    routes.append(Route(INDEX_PATH, responder.api_index, methods=["GET"]))
    # Anything else under /api/0/ is an unknown endpoint: Sentry's catch-all answers 404.
    routes.append(Route("/api/0/{rest:path}", responder.not_found,
                        methods=["GET", "POST", "PUT", "DELETE", "PATCH"]))
    return routes
