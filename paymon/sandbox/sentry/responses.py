"""HTTP side of the emulated Sentry API: parse the request, ask the backend, serialise the answer.

Every request goes through `SentryResponse.dispatch`, in the order Sentry's stack applies:
rate-limit middleware (and injected failures, which stand in for the infrastructure), URL
resolution (removed legacy endpoints 404 here), authentication (401), organisation/project lookup
(404), scope check (403), the endpoint, then pagination (`Link` header). Every API response carries
the five `X-Sentry-Rate-Limit-*` headers.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from paymon.sandbox.sentry.exceptions import (
    BadRequest,
    ConcurrencyLimited,
    IngestRejected,
    InternalError,
    InvalidCursor,
    InvalidPerPage,
    InvalidToken,
    InvalidTokenHeader,
    NotAuthenticated,
    PermissionDenied,
    RateLimited,
    ResourceDoesNotExist,
    SentryAPIError,
    UpstreamUnavailable,
)
from paymon.sandbox.sentry.models import RateLimitState, SentryBackend
from paymon.sandbox.sentry.releases import ReleaseResponses
from paymon.sandbox.sentry.urls import Endpoint
from paymon.sandbox.sentry.write_responses import SentryWriteResponses

MAX_PER_PAGE = 100


@dataclass
class ApiCall:
    """One authenticated, resolved request as the handlers see it."""

    params: QueryParams
    path_params: dict[str, str]
    organization: dict
    project: dict | None = None
    scopes: frozenset[str] = field(default_factory=frozenset)
    body: bytes = b""
    visible: list[dict] | None = None
    """The projects the token may see (None: every project; world `tokens[].projects`)."""

    def values(self, name: str) -> list[str]:
        """A repeatable parameter (`?project=1&project=2`)."""
        return [v for v in self.params.getlist(name) if v != ""]

    def json(self) -> dict:
        if not self.body.strip():
            return {}
        try:
            value = json.loads(self.body)
        except ValueError:
            raise BadRequest("JSON parse error") from None
        if not isinstance(value, dict):
            raise BadRequest("Invalid data. Expected a dictionary.")
        return value


@dataclass
class Table:
    """A paginated body that is not a bare list (`O/events/`: `{"data": rows, "meta": ...}`)."""

    rows: list
    meta: dict

    def page(self, rows: list) -> dict:
        return {"data": rows, "meta": self.meta}


_PERIOD = re.compile(r"^(\d+)([smhdw]?)$")
_PERIOD_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "": 1}


def time_range(params: QueryParams, now: float, default_period: str | None) -> tuple[float | None, float | None]:
    """(start, end) epoch seconds from `statsPeriod` (wins) or `start`/`end` (ISO 8601)."""
    period = params.get("statsPeriod") or (None if params.get("start") or params.get("end") else default_period)
    if period:
        match = _PERIOD.match(period.strip())
        if not match:
            raise BadRequest(f"Invalid statsPeriod: {period!r}")
        return now - int(match.group(1)) * _PERIOD_SECONDS[match.group(2)], now
    bounds = []
    for name in ("start", "end"):
        raw = params.get(name)
        if not raw:
            bounds.append(None)
            continue
        try:
            moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise BadRequest(f"{name} is not a valid ISO 8601 date") from None
        bounds.append((moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp())
    if (bounds[0] is None) != (bounds[1] is None):
        raise BadRequest("start and end are both required")
    return bounds[0], bounds[1]


def _moment(raw: str | None, name: str) -> float | None:
    """One ISO 8601 bound (the incidents endpoint takes `start` alone, unlike the events ones)."""
    if not raw:
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{name} is not a valid ISO 8601 date") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def has_scope(granted: frozenset[str], required: tuple[str, ...]) -> bool:
    """Any one required scope grants; `x:write`/`x:admin` imply `x:read`."""
    for scope in required:
        if scope in granted:
            return True
        resource, _, level = scope.partition(":")
        if level == "read" and ({f"{resource}:write", f"{resource}:admin"} & granted):
            return True
    return False


class SentryResponse(SentryWriteResponses, ReleaseResponses):  # writes: write_responses.py; releases: releases.py
    def __init__(self, backend: SentryBackend):
        self.backend = backend

    # --- the request pipeline --------------------------------------------------------------------

    async def dispatch(self, request: Request, endpoint: Endpoint) -> Response:
        caller = request.headers.get("authorization") or (request.client.host if request.client else "-")
        rate = self.backend.enter_rate_limit(caller, endpoint.path)
        status = 500
        body = await request.body() if endpoint.method in ("PUT", "POST") else b""
        try:
            response = self._respond(request, endpoint, rate, body)
            status = response.status_code
            return response
        finally:
            self.backend.leave_rate_limit(caller, endpoint.path)
            self.backend.record_request(request.method, request.url.path, request.url.query, status)

    def _respond(self, request: Request, endpoint: Endpoint, rate: RateLimitState, body: bytes = b"") -> Response:
        headers = rate.headers()
        try:
            injected = self.backend.take_failure(request.method, request.url.path)
            if injected is not None:
                return self._injected(injected, rate)
            if rate.exceeded:
                raise RateLimited(rate.limit, rate.window, {**headers, "Retry-After": str(rate.retry_after(time.time()))})
            if rate.concurrency_exceeded:
                raise ConcurrencyLimited(rate.concurrent_limit, {**headers, "Retry-After": "1"})
            if endpoint.legacy and self.backend.legacy_removed:
                raise ResourceDoesNotExist()
            call = self._authorize(request, endpoint)
            call.body = body
            result = getattr(self, endpoint.handler)(call)
            if isinstance(result, Response):  # handlers that answer without a body (202/204)
                result.headers.update(headers)
                return result
            if endpoint.paginated:
                page, link = self._paginate(request, endpoint, result)
                return JSONResponse(page, headers={**headers, "Link": link})
            return JSONResponse(result, headers=headers)
        except SentryAPIError as error:
            return self._error(error, headers)

    def _authorize(self, request: Request, endpoint: Endpoint) -> ApiCall:
        header = request.headers.get("authorization")
        if header is None:
            raise NotAuthenticated()
        scheme, _, credentials = header.strip().partition(" ")
        if scheme.lower() != "bearer":
            # Sentry also accepts other schemes (DSN, Basic API keys); none is valid here.
            raise InvalidToken()
        if not credentials.strip():
            raise InvalidTokenHeader()
        scopes = self.backend.scopes_for(credentials.strip())
        if scopes is None:
            raise InvalidToken()
        path_params = dict(request.path_params)
        organization = self.backend.get_organization(path_params.pop("organization_id_or_slug"))
        visible = self.backend.projects_for(credentials.strip())
        project = None
        if "project_id_or_slug" in path_params:
            project = self.backend.get_project(path_params.pop("project_id_or_slug"))
            if visible is not None and project not in visible:
                raise PermissionDenied()  # a project of a team the token's user is not on
        if not has_scope(scopes, endpoint.scopes):
            raise PermissionDenied()
        return ApiCall(request.query_params, path_params, organization, project, scopes, visible=visible)

    def _projects(self, call: ApiCall, requested: list[str]) -> list[dict]:
        """`project=` values resolved among the projects the token sees (none: all of those)."""
        return self.backend.resolve_projects(requested, call.visible)

    def _injected(self, status: int, rate: RateLimitState) -> Response:
        if status == 429:
            exhausted = RateLimitState(rate.limit, rate.window, 0, rate.reset, rate.concurrent_limit,
                                       rate.concurrent_remaining, exceeded=True)
            headers = {**exhausted.headers(), "Retry-After": str(exhausted.retry_after(time.time()))}
            return self._error(RateLimited(rate.limit, rate.window), headers)
        if status in UpstreamUnavailable.REASONS:
            error = UpstreamUnavailable(status)
            return HTMLResponse(error.html(), status_code=status)
        if status >= 500:
            return self._error(InternalError(uuid.uuid4().hex), rate.headers())
        error = SentryAPIError(f"Injected failure {status}")
        error.status = status
        return self._error(error, rate.headers())

    @staticmethod
    def _error(error: SentryAPIError, headers: dict[str, str]) -> Response:
        body = json.dumps(error.body(), separators=(",", ":"))
        merged = {**headers, **error.headers}
        if isinstance(error, (RateLimited, ConcurrencyLimited)):
            # The middleware builds a bare Django HttpResponse: JSON text, text/html content type.
            return Response(body, status_code=error.status, headers=merged, media_type="text/html")
        return Response(body, status_code=error.status, headers=merged, media_type="application/json")

    async def not_found(self, request: Request) -> Response:
        self.backend.record_request(request.method, request.url.path, request.url.query, 404)
        return self._error(ResourceDoesNotExist(), {})

    # --- pagination ------------------------------------------------------------------------------

    def _paginate(self, request: Request, endpoint: Endpoint, items: list) -> tuple[list, str]:
        """Slice like Sentry's paginators and build the two-entry `Link` header.

        The world's `page_size` knob caps the page even when the client asks for more, so a small
        value proves a client follows `rel="next"`."""
        raw = request.query_params.get(endpoint.page_param)
        per_page = endpoint.default_per_page
        if raw is not None:
            try:
                per_page = int(raw)
            except ValueError:
                raise BadRequest(f"Invalid {endpoint.page_param} parameter.") from None
            if per_page > MAX_PER_PAGE:
                if endpoint.page_param != "per_page":
                    per_page = MAX_PER_PAGE  # the issue index clamps `limit` instead of refusing it
                else:
                    raise InvalidPerPage(MAX_PER_PAGE)
            if per_page < 1:
                raise BadRequest(f"Invalid {endpoint.page_param} parameter.")
        size = max(1, min(per_page, self.backend.page_size))
        offset = _cursor_offset(request.query_params.get("cursor"))
        table = items if isinstance(items, Table) else None
        if table is not None:
            items = table.rows
        page = items[offset:offset + size]
        previous = _Cursor(max(offset - size, 0), is_prev=True, has_results=offset > 0)
        following = _Cursor(offset + size, is_prev=False, has_results=offset + size < len(items))
        base = _link_base(request)
        link = ", ".join([previous.link(base, "previous"), following.link(base, "next")])
        return (table.page(page) if table is not None else page), link

    # --- handlers: organisation directory --------------------------------------------------------

    def list_projects(self, call: ApiCall) -> list:
        return self.backend.projects if call.visible is None else call.visible

    def list_members(self, call: ApiCall) -> list:
        return self.backend.members

    def list_teams(self, call: ApiCall) -> list:
        return self.backend.teams

    # --- handlers: legacy alert rules ------------------------------------------------------------

    def list_issue_rules(self, call: ApiCall) -> list:
        return self.backend.list_issue_rules(call.project)

    def get_issue_rule(self, call: ApiCall) -> dict:
        return self.backend.get_issue_rule(call.project, call.path_params["rule_id"])

    def list_metric_alert_rules(self, call: ApiCall) -> list:
        requested = call.values("project")
        projects = self._projects(call, requested) if requested or call.visible is not None else None
        return self.backend.list_metric_alert_rules(projects)

    def get_metric_alert_rule(self, call: ApiCall) -> dict:
        return self.backend.get_metric_alert_rule(call.path_params["alert_rule_id"])

    # --- handlers: when alerts fired (incidents, open periods) -----------------------------------

    def list_incidents(self, call: ApiCall) -> list:
        projects = self._projects(call, call.values("project"))
        start = _moment(call.params.get("start"), "start")
        return self.backend.list_incidents(projects, call.params.get("alertRule"), start, call.params.get("status"))

    def list_open_periods(self, call: ApiCall) -> list:
        projects = self._projects(call, call.values("project"))
        return self.backend.list_open_periods(projects, call.params.get("detectorId"),
                                              _moment(call.params.get("start"), "start"),
                                              _moment(call.params.get("end"), "end"))

    # --- handlers: workflow engine ---------------------------------------------------------------

    def list_detectors(self, call: ApiCall) -> list:
        projects = self._projects(call, call.values("project"))
        return self.backend.list_detectors(projects, call.values("id"), call.params.get("query", ""))

    def get_detector(self, call: ApiCall) -> dict:
        return self.backend.get_detector(call.path_params["detector_id"])

    def list_workflows(self, call: ApiCall) -> list:
        requested = call.values("project")
        projects = self._projects(call, requested) if requested or call.visible is not None else None
        return self.backend.list_workflows(projects, call.values("id"), call.params.get("query", ""))

    def get_workflow(self, call: ApiCall) -> dict:
        return self.backend.get_workflow(call.path_params["workflow_id"])

    # --- handlers: dashboards, crons, integrations -----------------------------------------------

    def list_dashboards(self, call: ApiCall) -> list:
        summaries = self.backend.list_dashboard_summaries()
        title = call.params.get("query", "").strip().lower()
        return [s for s in summaries if title in s["title"].lower()] if title else summaries

    def get_dashboard(self, call: ApiCall) -> dict:
        return self.backend.get_dashboard(call.path_params["dashboard_id"])

    def list_monitors(self, call: ApiCall) -> list:
        projects = self._projects(call, call.values("project"))
        return self.backend.list_monitors(projects, call.values("environment"))

    def get_monitor(self, call: ApiCall) -> dict:
        return self.backend.get_monitor(call.path_params["monitor_id_or_slug"], call.project)

    def list_checkins(self, call: ApiCall) -> list:
        monitor = self.backend.get_monitor(call.path_params["monitor_id_or_slug"], call.project)
        return self.backend.list_checkins(monitor, call.values("environment"))

    def list_integrations(self, call: ApiCall) -> list:
        # The server still reads the legacy snake_case spelling too.
        provider = call.params.get("providerKey") or call.params.get("provider_key")
        found = self.backend.list_integrations(provider, call.values("features"))
        if call.params.get("includeConfig", "1").lower() in ("0", "false"):
            # Without config the PagerDuty integration keys stay out of the response.
            found = [{**i, "configData": {}, "configOrganization": []} for i in found]
        return found

    def get_integration(self, call: ApiCall) -> dict:
        return self.backend.get_integration(call.path_params["integration_id"])

    # --- handlers: project keys, events, issues (sentry-api.md §8) -------------------------------

    def list_project_keys(self, call: ApiCall) -> list:
        return self.backend.list_project_keys(call.project)

    def get_event(self, call: ApiCall) -> dict:
        return self.backend.get_event(call.project, call.path_params["event_id"])

    def lookup_event_id(self, call: ApiCall) -> dict:
        return self.backend.lookup_event(call.path_params["event_id"])

    def list_issues(self, call: ApiCall) -> list:
        projects = self._projects(call, call.values("project"))
        # Without `query` the endpoint searches `is:unresolved`; `query=` (empty) means everything.
        query = call.params.get("query")
        start, end = time_range(call.params, self.backend.hub.clock.now(), "14d")
        return self.backend.search_issues(projects, "is:unresolved" if query is None else query,
                                          call.values("environment"), start, end, call.params.get("sort", "date"))

    def _selected_issues(self, call: ApiCall) -> list:
        projects = self._projects(call, call.values("project"))
        return self.backend.select_issues(projects, call.values("id"), call.params.get("query"),
                                          call.values("environment"))

    def update_issues(self, call: ApiCall):
        issues = self._selected_issues(call)
        if not issues:
            return Response(status_code=204)
        return self.backend.update_issues(issues, call.json())

    def delete_issues(self, call: ApiCall):
        self.backend.delete_issues(self._selected_issues(call))
        return Response(status_code=204)

    def update_issue(self, call: ApiCall) -> dict:
        issue = self.backend.get_issue(call.path_params["issue_id"])
        self.backend.update_issues([issue], call.json())
        return self.backend.serialize_issue(issue)

    def delete_issue(self, call: ApiCall):
        self.backend.delete_issues([self.backend.get_issue(call.path_params["issue_id"])])
        return Response(status_code=202)  # deletion is scheduled, as the server answers

    def list_events(self, call: ApiCall) -> Table:
        dataset = call.params.get("dataset") or "discover"
        projects = self._projects(call, call.values("project"))
        start, end = time_range(call.params, self.backend.hub.clock.now(), "14d")
        try:
            rows, meta = self.backend.events_table(
                projects, dataset, call.values("field"), call.params.get("query", ""), call.values("environment"),
                start, end, call.params.get("sort"))
        except ValueError as exc:
            raise BadRequest(str(exc)) from None
        return Table(rows, meta)

    def events_timeseries(self, call: ApiCall) -> dict:
        """`GET O/events-timeseries/` (paymon.sandbox.sentry.timeseries)."""
        from paymon.sandbox.sentry.timeseries import timeseries

        projects = self._projects(call, call.values("project"))
        start, end = time_range(call.params, self.backend.hub.clock.now(), "24h")
        try:
            return timeseries(self.backend, projects, call.params, start, end)
        except ValueError as exc:
            raise BadRequest(str(exc)) from None

    # --- SDK ingestion (Relay) -------------------------------------------------------------------

    async def ingest(self, request: Request, kind: str) -> Response:
        """`POST /api/{project_id}/envelope/` and `/store/`: 200 `{"id": ...}` or Relay's error."""
        body = await request.body()
        status = 500
        try:
            result, headers = self.backend.ingest(request.path_params["project_id"], body, request.headers,
                                                  request.query_params, kind)
            status = 200
            return JSONResponse(result, headers=headers)
        except IngestRejected as error:
            status = error.status
            return self._error(error, {})
        finally:
            self.backend.record_request(request.method, request.url.path, request.url.query, status)


@dataclass(frozen=True)
class _Cursor:
    """Sentry's `value:offset:is_prev` cursor; the sandbox keeps value 0 and offsets by item."""

    offset: int
    is_prev: bool
    has_results: bool

    def __str__(self) -> str:
        return f"0:{self.offset}:{int(self.is_prev)}"

    def link(self, base: str, rel: str) -> str:
        # LINK_HEADER in sentry/api/base.py; the cursor is appended unencoded after "&".
        return (f'<{base}&cursor={self}>; rel="{rel}"; '
                f'results="{"true" if self.has_results else "false"}"; cursor="{self}"')


def _cursor_offset(raw: str | None) -> int:
    if raw is None or raw == "":
        return 0
    parts = raw.split(":")
    if len(parts) != 3:
        raise InvalidCursor()
    try:
        _value, offset, _is_prev = int(parts[0]), int(parts[1]), int(parts[2])
    except ValueError:
        raise InvalidCursor() from None
    if offset < 0:
        raise InvalidCursor()
    return offset


def _link_base(request: Request) -> str:
    """Absolute URL of this request with every parameter but `cursor`, ending in `?…`."""
    kept = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    url = request.url
    return f"{url.scheme}://{url.netloc}{url.path}?{urlencode(kept)}"
