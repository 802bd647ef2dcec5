"""HTTP handlers and routes of the emulated Sentry API's write side (create/update/delete).

Routes follow the 2026-08 spec (detectors, workflows, dashboards, cron monitors) and the 2026-05
spec (legacy issue rules and metric alert rules, which answer 404 once the world's legacy alerts
are removed). Scopes: any one listed grants; they are the write scopes of sentry-api.md's endpoint
map (`alerts:write`, or the `org:`/`project:` write and admin scopes), except dashboards, which the
spec (and the server) let any member with `org:read` create and edit.

Also `GET /api/0/`: Sentry's API index, which tells a token's holder its scopes (`auth.scopes`), so
a client can say "this token is read-only" before it tries to write.
"""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from paymon.sandbox.sentry.endpoints import Endpoint
from paymon.sandbox.sentry.writes import SentryWrites

O = "/api/0/organizations/{organization_id_or_slug}"
P = "/api/0/projects/{organization_id_or_slug}/{project_id_or_slug}"

ALERTS_WRITE_ORG = ("alerts:write", "org:write", "org:admin")
ALERTS_WRITE_PROJECT = ("alerts:write", "project:write", "project:admin")
DASHBOARDS_WRITE = ("org:read", "org:write", "org:admin")

write_paths: list[Endpoint] = [
    Endpoint(f"{O}/projects/{{project_id_or_slug}}/detectors/", "create_detector", ALERTS_WRITE_PROJECT,
             method="POST"),
    Endpoint(f"{O}/detectors/{{detector_id}}/", "update_detector", ALERTS_WRITE_ORG, method="PUT"),
    Endpoint(f"{O}/detectors/{{detector_id}}/", "delete_detector", ALERTS_WRITE_ORG, method="DELETE"),
    Endpoint(f"{O}/workflows/", "create_workflow", ALERTS_WRITE_ORG, method="POST"),
    Endpoint(f"{O}/workflows/{{workflow_id}}/", "update_workflow", ALERTS_WRITE_ORG, method="PUT"),
    Endpoint(f"{O}/workflows/{{workflow_id}}/", "delete_workflow", ALERTS_WRITE_ORG, method="DELETE"),
    Endpoint(f"{P}/rules/", "create_issue_rule", ALERTS_WRITE_PROJECT, method="POST", legacy=True),
    Endpoint(f"{P}/rules/{{rule_id}}/", "update_issue_rule", ALERTS_WRITE_PROJECT, method="PUT", legacy=True),
    Endpoint(f"{P}/rules/{{rule_id}}/", "delete_issue_rule", ALERTS_WRITE_PROJECT, method="DELETE", legacy=True),
    Endpoint(f"{O}/alert-rules/", "create_metric_alert_rule", ALERTS_WRITE_ORG, method="POST", legacy=True),
    Endpoint(f"{O}/alert-rules/{{alert_rule_id}}/", "update_metric_alert_rule", ALERTS_WRITE_ORG, method="PUT",
             legacy=True),
    Endpoint(f"{O}/alert-rules/{{alert_rule_id}}/", "delete_metric_alert_rule", ALERTS_WRITE_ORG,
             method="DELETE", legacy=True),
    Endpoint(f"{O}/dashboards/", "create_dashboard", DASHBOARDS_WRITE, method="POST"),
    Endpoint(f"{O}/dashboards/{{dashboard_id}}/", "update_dashboard", DASHBOARDS_WRITE, method="PUT"),
    Endpoint(f"{O}/monitors/", "create_monitor", ALERTS_WRITE_ORG, method="POST"),
    Endpoint(f"{O}/monitors/{{monitor_id_or_slug}}/", "update_monitor", ALERTS_WRITE_PROJECT, method="PUT"),
    Endpoint(f"{P}/monitors/{{monitor_id_or_slug}}/", "update_monitor", ALERTS_WRITE_PROJECT, method="PUT"),
]

INDEX_PATH = "/api/0/"


class SentryWriteResponses:
    """Mixed into `SentryResponse`: handlers get an authorised `ApiCall` and return JSON or a
    Response (201 for creations, 202/204 for deletions, as the server answers)."""

    @property
    def writes(self) -> SentryWrites:
        backend = self.backend
        writes = getattr(backend, "_writes", None)
        if writes is None or writes.backend is not backend:
            writes = backend._writes = SentryWrites(backend)
        return writes

    @staticmethod
    def _created(body: dict) -> Response:
        return JSONResponse(body, status_code=201)

    # --- workflow engine -------------------------------------------------------------------------

    def create_detector(self, call) -> Response:
        return self._created(self.writes.create_detector(call.project, call.json()))

    def update_detector(self, call) -> dict:
        return self.writes.update_detector(call.path_params["detector_id"], call.json())

    def delete_detector(self, call) -> Response:
        self.writes.delete_detector(call.path_params["detector_id"])
        return Response(status_code=204)

    def create_workflow(self, call) -> Response:
        return self._created(self.writes.create_workflow(call.json()))

    def update_workflow(self, call) -> dict:
        return self.writes.update_workflow(call.path_params["workflow_id"], call.json())

    def delete_workflow(self, call) -> Response:
        self.writes.delete_workflow(call.path_params["workflow_id"])
        return Response(status_code=204)

    # --- legacy alert rules ----------------------------------------------------------------------

    def create_issue_rule(self, call) -> Response:
        return self._created(self.writes.create_issue_rule(call.project, call.json()))

    def update_issue_rule(self, call) -> dict:
        return self.writes.update_issue_rule(call.project, call.path_params["rule_id"], call.json())

    def delete_issue_rule(self, call) -> Response:
        self.writes.delete_issue_rule(call.project, call.path_params["rule_id"])
        return Response(status_code=202)

    def create_metric_alert_rule(self, call) -> Response:
        return self._created(self.writes.create_metric_alert_rule(call.json()))

    def update_metric_alert_rule(self, call) -> dict:
        return self.writes.update_metric_alert_rule(call.path_params["alert_rule_id"], call.json())

    def delete_metric_alert_rule(self, call) -> Response:
        self.writes.delete_metric_alert_rule(call.path_params["alert_rule_id"])
        return Response(status_code=202)

    # --- dashboards, crons -----------------------------------------------------------------------

    def create_dashboard(self, call) -> Response:
        return self._created(self.writes.create_dashboard(call.json()))

    def update_dashboard(self, call) -> dict:
        return self.writes.update_dashboard(call.path_params["dashboard_id"], call.json())

    def create_monitor(self, call) -> Response:
        return self._created(self.writes.create_monitor(call.json()))

    def update_monitor(self, call) -> dict:
        return self.writes.update_monitor(call.path_params["monitor_id_or_slug"], call.json(), call.project)

    # --- the API index -----------------------------------------------------------------------------

    async def api_index(self, request) -> Response:
        """`GET /api/0/`: `{"version": "0", "auth": {"scopes": [...]}, "user": null}` for a valid
        token (internal-integration tokens have no user), `auth: null` without one."""
        header = (request.headers.get("authorization") or "").strip()
        scheme, _, token = header.partition(" ")
        scopes = self.backend.scopes_for(token.strip()) if scheme.lower() == "bearer" else None
        auth = None if scopes is None else {"scopes": sorted(scopes)}
        self.backend.record_request("GET", request.url.path, request.url.query, 200)
        return JSONResponse({"version": "0", "auth": auth, "user": None})
