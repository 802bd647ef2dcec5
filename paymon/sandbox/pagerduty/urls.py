"""Routes of the emulated PagerDuty: the REST API v2 and the Events API v2, under one prefix.

The real APIs live on two hosts (`api.pagerduty.com`, `events.pagerduty.com/v2/enqueue`); the sandbox
serves both under `/pagerduty` (mounted by the server), so a REST base URL is
`<sandbox>/pagerduty` and Sentry's events go to `<sandbox>/pagerduty/v2/enqueue`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Endpoint:
    path: str
    handler: str  # method name on PagerDutyResponse
    method: str = "GET"
    events_api: bool = False  # no token; the Events API's own error shape


url_paths: list[Endpoint] = [
    Endpoint("/v2/enqueue", "enqueue_event", "POST", events_api=True),
    Endpoint("/incidents", "list_incidents"),
    Endpoint("/incidents", "update_incidents", "PUT"),
    Endpoint("/incidents/{id}", "get_incident"),
    Endpoint("/incidents/{id}", "update_incident", "PUT"),
    Endpoint("/incidents/{id}/log_entries", "list_log_entries"),
    Endpoint("/incidents/{id}/alerts", "list_alerts"),
    Endpoint("/incidents/{id}/alerts/{alert_id}", "update_alert", "PUT"),
    Endpoint("/services", "list_services"),
    Endpoint("/services/{id}", "get_service"),
    Endpoint("/services/{id}/integrations/{integration_id}", "get_integration"),
    Endpoint("/escalation_policies", "list_escalation_policies"),
    Endpoint("/escalation_policies/{id}", "get_escalation_policy"),
    Endpoint("/oncalls", "list_oncalls"),
    Endpoint("/users", "list_users"),
    Endpoint("/users/{id}", "get_user"),
    Endpoint("/users/{id}/notification_rules", "list_notification_rules"),
    Endpoint("/maintenance_windows", "list_maintenance_windows"),
    Endpoint("/maintenance_windows/{id}", "get_maintenance_window"),
]


def build_routes(responder) -> list:
    """Starlette routes dispatching every endpoint through `responder.dispatch`. Two endpoints on
    one path (GET and PUT /incidents) are two routes: Starlette keeps looking for the method."""
    from starlette.routing import Route

    def bind(endpoint: Endpoint):
        async def view(request):
            return await responder.dispatch(request, endpoint)

        view.__name__ = endpoint.handler
        return view

    routes = [Route(e.path, bind(e), methods=[e.method]) for e in url_paths]
    # Anything else is an unknown resource: the REST API's 404 body.
    routes.append(Route("/{rest:path}", responder.not_found, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]))
    return routes
