"""HTTP side of the emulated PagerDuty: parse the request, ask the backend, serialise the answer.

REST requests go through `PagerDutyResponse.dispatch` in this order: injected failures (standing in
for the infrastructure), authentication (`Authorization: Token token=...`, 401), the per-key rate
limit (429 + `Retry-After`), the endpoint, classic offset pagination. Every authenticated REST answer
carries `ratelimit-limit/-remaining/-reset`. The `Accept: application/vnd.pagerduty+json;version=2`
header is accepted and not required, as on the real API.

`POST /v2/enqueue` (Events API v2) takes no token: the routing key in the body is the credential.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from paymon.sandbox.pagerduty.exceptions import (
    AuthenticationFailed,
    EventsAPIError,
    EventsUnavailable,
    EventThrottled,
    IncidentAlreadyResolved,
    InternalError,
    InvalidEvent,
    InvalidInput,
    NotFound,
    PagerDutyAPIError,
    RateLimitExceeded,
    UnrecognizedEvent,
)
from paymon.sandbox.pagerduty.models import (
    INCIDENT_STATUSES,
    URGENCIES,
    Incident,
    PagerDutyBackend,
    parse_time,
)
from paymon.sandbox.pagerduty.urls import Endpoint

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
MAX_OFFSET_PLUS_LIMIT = 10_000  # classic pagination stops here (docs: 09-Pagination)
DEFAULT_WINDOW = 30 * 86400     # GET /incidents without since/until: the last month
MAX_WINDOW = 183 * 86400        # ... and at most six months
ALERT_STATUSES = ("triggered", "resolved")
INCIDENT_SORT_FIELDS = ("incident_number", "created_at", "resolved_at", "urgency")
# is_overview=true keeps only the entries that change the incident, not the notifications.
OVERVIEW_TYPES = frozenset({"trigger_log_entry", "acknowledge_log_entry", "unacknowledge_log_entry",
                            "resolve_log_entry", "assign_log_entry", "escalate_log_entry"})


@dataclass
class ApiCall:
    """One authenticated REST request as the handlers see it."""

    params: QueryParams
    path_params: dict[str, str]
    token: dict
    headers: dict[str, str]
    body: object = None

    def values(self, name: str) -> list[str]:
        """An array filter. Only the bracketed form counts (`statuses[]=a&statuses[]=b`): the
        real API ignores `statuses=a`, so the sandbox does too."""
        return [v for v in self.params.getlist(f"{name}[]") if v != ""]

    def flag(self, name: str) -> bool:
        return self.params.get(name, "").lower() == "true"

    def include(self) -> frozenset[str]:
        return frozenset(self.values("include"))


class PagerDutyResponse:
    def __init__(self, backend: PagerDutyBackend):
        self.backend = backend

    # --- the request pipeline ------------------------------------------------------------------------

    async def dispatch(self, request: Request, endpoint: Endpoint) -> Response:
        status = 500
        try:
            if endpoint.events_api:
                response = await self._event(request)
            else:
                response = await self._rest(request, endpoint)
            status = response.status_code
            return response
        finally:
            self.backend.record_request(request.method, request.url.path, request.url.query, status)

    async def _rest(self, request: Request, endpoint: Endpoint) -> Response:
        headers: dict[str, str] = {}
        try:
            injected = self.backend.take_failure(request.method, request.url.path)
            if injected is not None:
                return self._injected(injected)
            token = self._authenticate(request)
            rate = self.backend.rest_rate_limit(token["token"])
            headers = rate.headers()
            if rate.exceeded:
                raise RateLimitExceeded(headers={"Retry-After": str(rate.reset_in)})
            body = None
            if request.method in ("PUT", "POST"):
                body = await self._json_body(request)
            call = ApiCall(request.query_params, dict(request.path_params), token,
                           {k.lower(): v for k, v in request.headers.items()}, body)
            return _json(getattr(self, endpoint.handler)(call), 200, headers)
        except PagerDutyAPIError as error:
            return _json(error.body(), error.status, {**headers, **error.headers})

    def _authenticate(self, request: Request) -> dict:
        header = request.headers.get("authorization", "").strip()
        scheme, _, credentials = header.partition(" ")
        name, _, token = credentials.strip().partition("=")
        if scheme.lower() != "token" or name.strip() != "token" or not token.strip():
            raise AuthenticationFailed()
        entry = self.backend.token_entry(token.strip())
        if entry is None:
            raise AuthenticationFailed()
        return entry

    @staticmethod
    async def _json_body(request: Request):
        raw = await request.body()
        if not raw.strip():
            raise InvalidInput("Request body is missing")
        try:
            return json.loads(raw)
        except ValueError:
            raise InvalidInput("Request body is not valid JSON") from None

    def _injected(self, status: int) -> Response:
        if status == 429:
            # What the real API occasionally does, and what clients must survive: a 429 with the
            # error body; Retry-After because paymon's rule is "a 429 says when to come back".
            error = RateLimitExceeded(headers={"Retry-After": "1"})
            return _json(error.body(), 429, error.headers)
        if status >= 500:
            error = InternalError(status)
            return _json(error.body(), status, {})
        error = InvalidInput(f"Injected failure {status}")
        return _json(error.body(), status, {})

    async def not_found(self, request: Request) -> Response:
        self.backend.record_request(request.method, request.url.path, request.url.query, 404)
        return _json(NotFound().body(), 404, {})

    # --- Events API v2 -------------------------------------------------------------------------------

    async def _event(self, request: Request) -> Response:
        try:
            injected = self.backend.take_failure(request.method, request.url.path)
            if injected == 429:
                raise EventThrottled(headers={"Retry-After": "30"})
            if injected is not None and injected >= 500:
                raise EventsUnavailable(injected)
            if injected is not None:
                raise InvalidEvent(f"Injected failure {injected}")
            try:
                event = json.loads(await request.body())
            except ValueError:
                raise UnrecognizedEvent("JSON parse error") from None
            return _json(self.backend.accept_event(event, via="http"), 202, {})
        except EventsAPIError as error:
            return _json(error.body(), error.status, error.headers)

    # --- pagination ----------------------------------------------------------------------------------

    def _page(self, call: ApiCall, key: str, items: list, render: Callable) -> dict:
        """Classic pagination: `limit` (default 25, at most 100 and the world's `page_limit`),
        `offset`, `more`, and `total` only when asked with `total=true` (null otherwise)."""
        limit = _int_param(call, "limit", DEFAULT_LIMIT)
        offset = _int_param(call, "offset", 0)
        if limit < 1:
            raise InvalidInput("Limit must be greater than 0")
        if offset < 0:
            raise InvalidInput("Offset must be greater than or equal to 0")
        limit = min(limit, MAX_LIMIT, self.backend.page_limit)
        if offset + limit > MAX_OFFSET_PLUS_LIMIT:
            raise InvalidInput(f"Offset must be less than or equal to {MAX_OFFSET_PLUS_LIMIT - limit}")
        page = items[offset:offset + limit]
        return {key: [render(item) for item in page], "limit": limit, "offset": offset,
                "more": offset + len(page) < len(items), "total": len(items) if call.flag("total") else None}

    # --- incidents -----------------------------------------------------------------------------------

    def list_incidents(self, call: ApiCall) -> dict:
        incidents = self.backend.incidents
        if call.params.get("date_range") != "all":
            since, until = self._window(call)
            incidents = [i for i in incidents if since <= i.created_at < until]
        statuses = _choices(call, "statuses", INCIDENT_STATUSES,
                            "Status must be a list of triggered, acknowledged, or resolved.")
        urgencies = _choices(call, "urgencies", URGENCIES, "Urgencies must be a list of high or low.")
        if statuses:
            incidents = [i for i in incidents if i.status in statuses]
        if urgencies:
            incidents = [i for i in incidents if i.urgency in urgencies]
        if service_ids := call.values("service_ids"):
            incidents = [i for i in incidents if i.service_id in service_ids]
        if team_ids := call.values("team_ids"):
            incidents = [i for i in incidents
                         if {t["id"] for t in self.backend.get_service(i.service_id).get("teams", [])} & set(team_ids)]
        if user_ids := call.values("user_ids"):
            # Only open incidents are assigned to anyone.
            incidents = [i for i in incidents if i.is_open and {u for _at, u in i.assignments} & set(user_ids)]
        if key := call.params.get("incident_key"):
            # Matches the incident's key and the keys of its alerts (an alert-grouped incident).
            incidents = [i for i in incidents if i.incident_key == key
                         or any(a.alert_key == key for a in self.backend.alerts_of(i))]
        incidents = self._sorted(call, incidents)
        include = call.include()
        return self._page(call, "incidents", incidents, lambda i: self._incident(i, include))

    def _window(self, call: ApiCall) -> tuple[float, float]:
        zone = self.backend.account.get("time_zone", "Etc/UTC")
        now = self.backend.now()
        try:
            until = parse_time(call.params["until"], zone) if call.params.get("until") else now + 1
            since = parse_time(call.params["since"], zone) if call.params.get("since") else until - DEFAULT_WINDOW
        except ValueError:
            raise InvalidInput("Invalid time values in 'since' and/or 'until' parameters") from None
        if since > until:
            raise InvalidInput("'since' must be before 'until'")
        if until - since > MAX_WINDOW:
            raise InvalidInput("The date range between 'since' and 'until' must not exceed 6 months")
        return since, until

    @staticmethod
    def _sorted(call: ApiCall, incidents: list[Incident]) -> list[Incident]:
        raw = call.params.get("sort_by") or call.params.get("sort_by[]") or "created_at:asc"
        fields = [f.strip() for f in raw.split(",") if f.strip()]
        if len(fields) > 2:
            raise InvalidInput("sort_by accepts at most two fields")
        ordered = sorted(incidents, key=lambda i: i.number)
        for spec in reversed(fields):  # stable sorts: the first field decides last
            name, _, direction = spec.partition(":")
            if name not in INCIDENT_SORT_FIELDS or direction not in ("", "asc", "desc"):
                raise InvalidInput(f"Invalid sort_by value: {spec}")
            key = {"incident_number": lambda i: i.number, "created_at": lambda i: i.created_at,
                   "resolved_at": lambda i: i.resolved_at or 0.0,
                   "urgency": lambda i: URGENCIES.index(i.urgency)}[name]
            ordered.sort(key=key, reverse=direction == "desc")
        return ordered

    def _incident(self, incident: Incident, include: frozenset[str] = frozenset()) -> dict:
        body = self.backend.render_incident(incident)
        if "services" in include:
            body["service"] = self.backend.render_service(self.backend.get_service(incident.service_id))
        if "escalation_policies" in include:
            body["escalation_policy"] = self.backend.render_escalation_policy(
                self.backend.get_escalation_policy(incident.escalation_policy_id))
        if "first_trigger_log_entries" in include:
            body["first_trigger_log_entry"] = self.backend.render_log_entry(incident.first_trigger())
        if "assignees" in include:
            for assignment in body["assignments"]:
                assignment["assignee"] = self.backend.render_user(self.backend.get_user(assignment["assignee"]["id"]))
        return body

    def get_incident(self, call: ApiCall) -> dict:
        incident = self.backend.get_incident(call.path_params["id"])
        return {"incident": self._incident(incident, call.include())}

    def update_incident(self, call: ApiCall) -> dict:
        requester = self.backend.requester_for_write(call.token, call.headers.get("from"))
        if not isinstance(call.body, dict) or not isinstance(call.body.get("incident"), dict):
            raise InvalidInput("incident must be an object")
        incident = self.backend.update_incident(call.path_params["id"], call.body["incident"], requester)
        return {"incident": self._incident(incident)}

    def update_incidents(self, call: ApiCall) -> dict:
        """Bulk update; all-or-nothing: every id must exist and none may already be resolved when
        the request resolves it (error 1001 names the first)."""
        requester = self.backend.requester_for_write(call.token, call.headers.get("from"))
        items = call.body.get("incidents") if isinstance(call.body, dict) else None
        if not isinstance(items, list) or not items:
            raise InvalidInput("incidents must be a non-empty array")
        targets = []
        for item in items:
            if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                raise InvalidInput("Each incident must have an id")
            incident = self.backend.get_incident(item["id"])
            if item.get("status") == "resolved" and incident.status == "resolved":
                raise IncidentAlreadyResolved()
            targets.append(item)
        updated = [self.backend.update_incident(item["id"], item, requester) for item in targets]
        return {"incidents": [self._incident(i) for i in updated], "limit": len(updated), "offset": 0,
                "more": False, "total": None}

    def list_log_entries(self, call: ApiCall) -> dict:
        incident = self.backend.get_incident(call.path_params["id"])
        entries = self.backend.visible_log_entries(incident)
        if call.params.get("since") or call.params.get("until"):
            zone = self.backend.account.get("time_zone", "Etc/UTC")
            try:
                since = parse_time(call.params["since"], zone) if call.params.get("since") else float("-inf")
                until = parse_time(call.params["until"], zone) if call.params.get("until") else float("inf")
            except ValueError:
                raise InvalidInput("Invalid time values in 'since' and/or 'until' parameters") from None
            entries = [e for e in entries if since <= e.at < until]
        if call.flag("is_overview"):
            entries = [e for e in entries if e.type in OVERVIEW_TYPES]
        return self._page(call, "log_entries", entries, self.backend.render_log_entry)

    def list_alerts(self, call: ApiCall) -> dict:
        incident = self.backend.get_incident(call.path_params["id"])
        alerts = self.backend.alerts_of(incident)
        statuses = _choices(call, "statuses", ALERT_STATUSES, "Statuses must be a list of triggered or resolved.")
        if statuses:
            alerts = [a for a in alerts if a.status in statuses]
        if key := call.params.get("alert_key"):
            alerts = [a for a in alerts if a.alert_key == key]
        return self._page(call, "alerts", alerts, self.backend.render_alert)

    def update_alert(self, call: ApiCall) -> dict:
        """Resolve one alert of an incident (paymon's own, when it was grouped into someone else's)."""
        requester = self.backend.requester_for_write(call.token, call.headers.get("from"))
        if not isinstance(call.body, dict) or not isinstance(call.body.get("alert"), dict):
            raise InvalidInput("alert must be an object")
        alert = self.backend.update_alert(call.path_params["id"], call.path_params["alert_id"], call.body["alert"],
                                          requester)
        return {"alert": self.backend.render_alert(alert)}

    # --- services, policies, people ------------------------------------------------------------------

    def list_services(self, call: ApiCall) -> dict:
        services = sorted(self.backend.services, key=lambda s: s["name"].casefold())
        if query := call.params.get("query"):
            services = [s for s in services if query.casefold() in s["name"].casefold()]
        if name := call.params.get("name"):
            services = [s for s in services if s["name"] == name]
        if team_ids := call.values("team_ids"):
            services = [s for s in services if {t["id"] for t in s.get("teams", [])} & set(team_ids)]
        include = call.include()
        return self._page(call, "services", services, lambda s: self.backend.render_service(s, include))

    def get_service(self, call: ApiCall) -> dict:
        service = self.backend.get_service(call.path_params["id"])
        if service["id"] != call.path_params["id"]:
            raise NotFound()  # get_service also matches names; the URL takes ids only
        return {"service": self.backend.render_service(service, call.include())}

    def get_integration(self, call: ApiCall) -> dict:
        integration = self.backend.get_integration(call.path_params["integration_id"])
        if integration["service"]["id"] != call.path_params["id"]:
            raise NotFound()
        return {"integration": self.backend.render_integration(integration)}

    def list_escalation_policies(self, call: ApiCall) -> dict:
        policies = sorted(self.backend.escalation_policies, key=lambda p: p["name"].casefold())
        if query := call.params.get("query"):
            policies = [p for p in policies if query.casefold() in p["name"].casefold()]
        if user_ids := call.values("user_ids"):
            policies = [p for p in policies if set(user_ids) & self._policy_users(p)]
        if team_ids := call.values("team_ids"):
            policies = [p for p in policies if {t["id"] for t in p.get("teams", [])} & set(team_ids)]
        return self._page(call, "escalation_policies", policies, self.backend.render_escalation_policy)

    def _policy_users(self, policy: dict) -> set[str]:
        users = set()
        for rule in policy.get("escalation_rules", []):
            for target in rule.get("targets", []):
                if target["type"].startswith("user"):
                    users.add(target["id"])
                else:
                    schedule = self.backend.get_schedule(target["id"])
                    users |= {u["user"]["id"] for layer in schedule.get("schedule_layers", [])
                              for u in layer.get("users", [])}
        return users

    def get_escalation_policy(self, call: ApiCall) -> dict:
        policy = self.backend.get_escalation_policy(call.path_params["id"])
        return {"escalation_policy": self.backend.render_escalation_policy(policy)}

    def list_oncalls(self, call: ApiCall) -> dict:
        zone = self.backend.account.get("time_zone", "Etc/UTC")
        now = self.backend.now()
        try:
            since = parse_time(call.params["since"], zone) if call.params.get("since") else now
            until = parse_time(call.params["until"], zone) if call.params.get("until") else since
        except ValueError:
            raise InvalidInput("Invalid time values in 'since' and/or 'until' parameters") from None
        if since > until:
            raise InvalidInput("'since' must be before 'until'")
        oncalls = self.backend.oncalls(
            since, until, policy_ids=call.values("escalation_policy_ids"),
            schedule_ids=call.values("schedule_ids"), user_ids=call.values("user_ids"),
            earliest=call.flag("earliest"))
        return self._page(call, "oncalls", oncalls, self.backend.render_oncall)

    def list_users(self, call: ApiCall) -> dict:
        users = sorted(self.backend.users, key=lambda u: u["name"].casefold())
        if query := call.params.get("query"):
            wanted = query.casefold()
            users = [u for u in users if wanted in u["name"].casefold() or wanted in u["email"].casefold()]
        if team_ids := call.values("team_ids"):
            users = [u for u in users if {t["id"] for t in u.get("teams", [])} & set(team_ids)]
        return self._page(call, "users", users, self.backend.render_user)

    def get_user(self, call: ApiCall) -> dict:
        return {"user": self.backend.render_user(self.backend.get_user(call.path_params["id"]))}

    def list_notification_rules(self, call: ApiCall) -> dict:
        """`urgency` high (the default: "If not specified, defaults to high", verified-2026-12 §12),
        low or all; `include[]=contact_methods`. Not paginated."""
        urgency = call.params.get("urgency") or "high"
        if urgency not in ("high", "low", "all"):
            raise InvalidInput("Urgency must be one of high, low or all.")
        user = self.backend.get_user(call.path_params["id"])
        expand = "contact_methods" in call.include()
        return {"notification_rules": [self.backend.render_notification_rule(user, rule, expand)
                                       for rule in self.backend.notification_rules(user["id"], urgency)]}

    def list_maintenance_windows(self, call: ApiCall) -> dict:
        """`filter`: past / future / ongoing / open (ongoing + future) / all (default)."""
        wanted = call.params.get("filter", "all")
        states = {"past": {"past"}, "future": {"future"}, "ongoing": {"ongoing"}, "open": {"ongoing", "future"},
                  "all": {"past", "ongoing", "future"}}.get(wanted)
        if states is None:
            raise InvalidInput("Filter must be one of past, future, ongoing, open or all")
        now = self.backend.now()
        windows = [w for w in self.backend.maintenance_windows if self.backend.window_state(w, now) in states]
        if service_ids := call.values("service_ids"):
            windows = [w for w in windows if {s["id"] for s in w.get("services", [])} & set(service_ids)]
        if team_ids := call.values("team_ids"):
            windows = [w for w in windows if {t["id"] for t in w.get("teams", [])} & set(team_ids)]
        if query := call.params.get("query"):
            windows = [w for w in windows if query.casefold() in (w.get("description") or "").casefold()]
        return self._page(call, "maintenance_windows", windows, self.backend.render_maintenance_window)

    def get_maintenance_window(self, call: ApiCall) -> dict:
        window = self.backend.get_maintenance_window(call.path_params["id"])
        return {"maintenance_window": self.backend.render_maintenance_window(window)}


def _json(body, status: int, headers: dict[str, str]) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


def _int_param(call: ApiCall, name: str, default: int) -> int:
    raw = call.params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"{name.capitalize()} must be an integer") from None


def _choices(call: ApiCall, name: str, allowed: tuple[str, ...], message: str) -> list[str]:
    values = call.values(name)
    if any(v not in allowed for v in values):
        raise InvalidInput(message)
    return values

