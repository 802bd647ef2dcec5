"""Routes of the emulated Sentry web API: path -> handler, the scopes that grant it, pagination.

Scopes come from the endpoint map in sentry-api.md §0 (any one listed scope grants; the matching
`:write`/`:admin` scopes do too). Paths keep Sentry's trailing slash.
"""

from __future__ import annotations

from dataclasses import dataclass

O = "/api/0/organizations/{organization_id_or_slug}"
P = "/api/0/projects/{organization_id_or_slug}/{project_id_or_slug}"

ORG_READ = ("org:read",)
ALERTS_ORG = ("alerts:read", "org:read")
ALERTS_PROJECT = ("alerts:read", "project:read")


@dataclass(frozen=True)
class Endpoint:
    path: str
    handler: str  # method name on SentryResponse
    scopes: tuple[str, ...]
    paginated: bool = False
    default_per_page: int = 100
    legacy: bool = False  # a deprecated alert endpoint: 404 when the world's legacy_alerts is "removed"


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


def build_routes(responder) -> list:
    """Starlette routes dispatching every endpoint through `responder.dispatch`."""
    from starlette.routing import Route

    def bind(endpoint: Endpoint):
        async def view(request):
            return await responder.dispatch(request, endpoint)

        view.__name__ = endpoint.handler
        return view

    routes = [Route(e.path, bind(e), methods=["GET"]) for e in url_paths]
    # Anything else under /api/0/ is an unknown endpoint: Sentry's catch-all answers 404.
    routes.append(Route("/api/0/{rest:path}", responder.not_found,
                        methods=["GET", "POST", "PUT", "DELETE", "PATCH"]))
    return routes
