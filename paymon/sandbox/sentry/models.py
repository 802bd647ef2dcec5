"""State and behaviour of the emulated Sentry organisation; never sees an HTTP request.

`SentryBackend(world["sentry"])` holds the world's objects (the JSON the real API returns) and the
emulator's own state: injected failures, rate-limit windows and a log of the requests served.

Internal API for tests (moto style):

    backend.inject_failure(503, path=r"/detectors/", times=2)   # next 2 matching requests fail
    backend.requests                                             # [RecordedRequest(method, path, query, status)]
    backend.request_count(r"/alert-rules/")                      # how many calls hit that path
    backend.metric_alert_rules[0]["name"]                        # objects, mutable in place
    backend.reset()                                              # back to the world it was built from
"""

from __future__ import annotations

import copy
import math
import random
import re
import shlex
import threading
import time
from dataclasses import dataclass

from paymon.sandbox.sentry.exceptions import PermissionDenied, ResourceDoesNotExist

DEFAULT_RATE_LIMIT = {"limit": 40, "window": 1, "concurrent_limit": 25}


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    status: int


@dataclass
class InjectedFailure:
    status: int
    path: re.Pattern | None = None
    method: str | None = None
    times: int | None = 1  # None: every matching request, until reset()

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return self.path is None or self.path.search(path) is not None


@dataclass(frozen=True)
class RateLimitState:
    """What the rate-limit middleware knows about one caller+endpoint at one request."""

    limit: int
    window: int
    remaining: int
    reset: int  # epoch seconds when the window resets
    concurrent_limit: int
    concurrent_remaining: int
    exceeded: bool = False
    concurrency_exceeded: bool = False

    def headers(self) -> dict[str, str]:
        return {
            "X-Sentry-Rate-Limit-Limit": str(self.limit),
            "X-Sentry-Rate-Limit-Remaining": str(self.remaining),
            "X-Sentry-Rate-Limit-Reset": str(self.reset),
            "X-Sentry-Rate-Limit-ConcurrentLimit": str(self.concurrent_limit),
            "X-Sentry-Rate-Limit-ConcurrentRemaining": str(self.concurrent_remaining),
        }

    def retry_after(self, now: float) -> int:
        return max(1, math.ceil(self.reset - now))


def _id_or_slug_matches(obj: dict, id_or_slug: str) -> bool:
    return str(obj.get("id")) == str(id_or_slug) or obj.get("slug") == id_or_slug


class SentryBackend:
    def __init__(self, world_sentry: dict, hub=None):
        from paymon.sandbox.hub import Hub

        self.hub = hub if hub is not None else Hub()
        self._world = copy.deepcopy(world_sentry)
        self._lock = threading.Lock()
        self.reset()

    # --- lifecycle -------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget every change, injected failure, rate-limit window and logged request."""
        world = copy.deepcopy(self._world)
        self.organization: dict = world["organization"]
        self.projects: list[dict] = world.get("projects", [])
        self.tokens: list[dict] = world.get("tokens", [])
        self.members: list[dict] = world.get("members", [])
        self.teams: list[dict] = world.get("teams", [])
        self.legacy_alerts: str = world.get("legacy_alerts", "present")
        self.issue_rules: dict[str, list[dict]] = world.get("issue_rules", {})
        self.metric_alert_rules: list[dict] = world.get("metric_alert_rules", [])
        self.detectors: list[dict] = world.get("detectors", [])
        self.workflows: list[dict] = world.get("workflows", [])
        self.dashboards: list[dict] = world.get("dashboards", [])
        self.monitors: list[dict] = world.get("monitors", [])
        self.monitor_checkins: dict[str, list[dict]] = world.get("monitor_checkins", {})
        self.integrations: list[dict] = world.get("integrations", [])
        knobs = world.get("knobs", {})
        self.page_size: int = int(knobs.get("page_size", 100))
        self.rate_limit: dict = {**DEFAULT_RATE_LIMIT, **knobs.get("rate_limit", {})}
        self.error_rate: float = float(knobs.get("error_rate", 0.0))
        self._rng = random.Random(knobs.get("seed", 0))
        self._failures: list[InjectedFailure] = []
        for entry in knobs.get("fail", []):
            self.inject_failure(entry["status"], path=entry.get("path"), method=entry.get("method"),
                                times=entry.get("times"))
        self._windows: dict[tuple, tuple[int, int]] = {}  # key -> (window start, count)
        self._in_flight: dict[tuple, int] = {}
        self._requests: list[RecordedRequest] = []

    # --- auth and directory ----------------------------------------------------------------------

    def scopes_for(self, token: str) -> frozenset[str] | None:
        """The token's scopes, or None for an unknown token."""
        for entry in self.tokens:
            if entry["token"] == token:
                return frozenset(entry.get("scopes", []))
        return None

    @property
    def default_token(self) -> str:
        return self.tokens[0]["token"]

    def get_organization(self, id_or_slug: str) -> dict:
        if _id_or_slug_matches(self.organization, id_or_slug):
            return self.organization
        raise ResourceDoesNotExist()

    def get_project(self, id_or_slug: str) -> dict:
        for project in self.projects:
            if _id_or_slug_matches(project, id_or_slug):
                return project
        raise ResourceDoesNotExist()

    def resolve_projects(self, requested: list[str]) -> list[dict]:
        """`project=` filter values (ids or slugs; none or -1 = all). Sentry answers 403 when a
        requested project is not accessible, which includes ones that do not exist."""
        if not requested or "-1" in requested:
            return list(self.projects)
        found = []
        for value in requested:
            matches = [p for p in self.projects if _id_or_slug_matches(p, value)]
            if not matches:
                raise PermissionDenied()
            found.extend(matches)
        return found

    # --- legacy alert rules ----------------------------------------------------------------------

    @property
    def legacy_removed(self) -> bool:
        return self.legacy_alerts == "removed"

    def list_issue_rules(self, project: dict) -> list[dict]:
        # The endpoint lists the project's active rules, newest (highest id) first.
        rules = self.issue_rules.get(project["slug"], [])
        return sorted(rules, key=lambda r: int(r["id"]), reverse=True)

    def get_issue_rule(self, project: dict, rule_id: str) -> dict:
        return _by_id(self.issue_rules.get(project["slug"], []), rule_id)

    def list_metric_alert_rules(self, projects: list[dict] | None = None) -> list[dict]:
        if projects is None:
            return list(self.metric_alert_rules)
        slugs = {p["slug"] for p in projects}
        return [r for r in self.metric_alert_rules if slugs & set(r.get("projects", []))]

    def get_metric_alert_rule(self, rule_id: str) -> dict:
        return _by_id(self.metric_alert_rules, rule_id)

    # --- workflow engine -------------------------------------------------------------------------

    def list_detectors(self, projects: list[dict], ids: list[str], query: str) -> list[dict]:
        project_ids = {str(p["id"]) for p in projects}
        found = [d for d in self.detectors if str(d.get("projectId")) in project_ids]
        if ids:
            found = [d for d in found if str(d["id"]) in set(ids)]
        return _search(found, query, {"name": "name", "type": "type"})

    def get_detector(self, detector_id: str) -> dict:
        return _by_id(self.detectors, detector_id)

    def list_workflows(self, projects: list[dict] | None, ids: list[str], query: str) -> list[dict]:
        found = list(self.workflows)
        if projects is not None:
            # A workflow belongs to the projects of the detectors it is connected to.
            detector_ids = {str(d["id"]) for d in self.list_detectors(projects, [], "")}
            found = [w for w in found if detector_ids & {str(i) for i in w.get("detectorIds", [])}]
        if ids:
            found = [w for w in found if str(w["id"]) in set(ids)]
        return _search(found, query, {"name": "name"})

    def get_workflow(self, workflow_id: str) -> dict:
        return _by_id(self.workflows, workflow_id)

    # --- dashboards ------------------------------------------------------------------------------

    def list_dashboard_summaries(self) -> list[dict]:
        """What `GET O/dashboards/` returns: the prebuilt General dashboard first, then the org's
        dashboards by title, without widgets (server: `ChainPaginator([prebuilt, dashboards])`)."""
        summaries = [_prebuilt_summary()]
        for dashboard in sorted(self.dashboards, key=lambda d: d["title"]):
            widgets = dashboard.get("widgets", [])
            summaries.append({
                "id": str(dashboard["id"]),
                "title": dashboard["title"],
                "dateCreated": dashboard["dateCreated"],
                "createdBy": dashboard.get("createdBy"),
                "widgetDisplay": [w["displayType"] for w in widgets],
                "widgetPreview": [{"displayType": w["displayType"], "layout": w.get("layout")} for w in widgets],
                "permissions": dashboard.get("permissions"),
                "isFavorited": dashboard.get("isFavorited", False),
                "projects": dashboard.get("projects", []),
                "environment": dashboard.get("environment", []),
                "filters": dashboard.get("filters", {}),
                "lastVisited": dashboard.get("lastVisited", dashboard["dateCreated"]),
                "prebuiltId": dashboard.get("prebuiltId"),
            })
        return summaries

    def get_dashboard(self, dashboard_id: str) -> dict:
        if dashboard_id == PREBUILT_GENERAL["id"]:
            return copy.deepcopy(PREBUILT_GENERAL)
        return _by_id(self.dashboards, dashboard_id)

    # --- crons -----------------------------------------------------------------------------------

    def list_monitors(self, projects: list[dict], environments: list[str]) -> list[dict]:
        project_ids = {str(p["id"]) for p in projects}
        found = [m for m in self.monitors if str(m["project"]["id"]) in project_ids]
        if environments:
            found = [m for m in found if {e["name"] for e in m.get("environments", [])} & set(environments)]
        return found

    def get_monitor(self, id_or_slug: str, project: dict | None = None) -> dict:
        for monitor in self.monitors:
            if _id_or_slug_matches(monitor, id_or_slug):
                if project is None or str(monitor["project"]["id"]) == str(project["id"]):
                    return monitor
        raise ResourceDoesNotExist()

    def list_checkins(self, monitor: dict, environments: list[str]) -> list[dict]:
        # Newest first, as the endpoint orders by -date_added.
        checkins = sorted(self.monitor_checkins.get(monitor["slug"], []),
                          key=lambda c: c["dateCreated"], reverse=True)
        if environments:
            checkins = [c for c in checkins if c.get("environment") in environments]
        return checkins

    # --- integrations ----------------------------------------------------------------------------

    def list_integrations(self, provider_key: str | None, features: list[str]) -> list[dict]:
        found = list(self.integrations)
        if provider_key:
            found = [i for i in found if i["provider"]["key"] == provider_key]
        if features:
            found = [i for i in found if set(features) & set(i["provider"].get("features", []))]
        return found

    def get_integration(self, integration_id: str) -> dict:
        return _by_id(self.integrations, integration_id)

    # --- injected failures -----------------------------------------------------------------------

    def inject_failure(self, status: int, path: str | None = None, method: str | None = None,
                       times: int | None = 1) -> None:
        """Make the next `times` requests whose path matches the regex `path` (None: any) answer
        `status` (429 comes with the rate-limit headers; times=None: until reset())."""
        with self._lock:
            self._failures.append(InjectedFailure(int(status), re.compile(path) if path else None,
                                                  method, None if times is None else int(times)))

    def take_failure(self, method: str, path: str) -> int | None:
        """The status an injected failure or the random `error_rate` imposes on this request."""
        with self._lock:
            for failure in self._failures:
                if failure.matches(method, path):
                    if failure.times is not None:
                        failure.times -= 1
                        if failure.times <= 0:
                            self._failures.remove(failure)
                    return failure.status
            if self.error_rate and self._rng.random() < self.error_rate:
                return 503
        return None

    # --- rate limits -----------------------------------------------------------------------------

    def enter_rate_limit(self, caller: str, endpoint: str, now: float | None = None) -> RateLimitState:
        """Count one request of `caller` on `endpoint` in the current fixed window (Sentry limits
        per caller *and* endpoint) and take a concurrency slot; call `leave_rate_limit` after."""
        now = time.time() if now is None else now
        limit, window = int(self.rate_limit["limit"]), max(1, int(self.rate_limit["window"]))
        concurrent_limit = int(self.rate_limit["concurrent_limit"])
        key = (caller, endpoint)
        window_start = int(now // window) * window
        with self._lock:
            start, count = self._windows.get(key, (window_start, 0))
            if start != window_start:
                count = 0
            count += 1
            self._windows[key] = (window_start, count)
            in_flight = self._in_flight.get(key, 0) + 1
            self._in_flight[key] = in_flight
        return RateLimitState(
            limit=limit, window=window, remaining=max(limit - count, 0), reset=window_start + window,
            concurrent_limit=concurrent_limit, concurrent_remaining=max(concurrent_limit - in_flight, 0),
            exceeded=count > limit, concurrency_exceeded=in_flight > concurrent_limit,
        )

    def leave_rate_limit(self, caller: str, endpoint: str) -> None:
        with self._lock:
            key = (caller, endpoint)
            self._in_flight[key] = max(self._in_flight.get(key, 1) - 1, 0)

    # --- request log -----------------------------------------------------------------------------

    def record_request(self, method: str, path: str, query: str, status: int) -> None:
        with self._lock:
            self._requests.append(RecordedRequest(method, path, query, status))

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def request_count(self, path: str | None = None, method: str | None = None, status: int | None = None) -> int:
        """How many requests were served whose path matches the regex `path` (and method/status)."""
        pattern = re.compile(path) if path else None
        return sum(
            1 for r in self.requests
            if (pattern is None or pattern.search(r.path))
            and (method is None or r.method == method.upper())
            and (status is None or r.status == status)
        )


def _by_id(objects: list[dict], object_id: str) -> dict:
    for obj in objects:
        if str(obj.get("id")) == str(object_id):
            return obj
    raise ResourceDoesNotExist()


def _search(objects: list[dict], query: str, keys: dict[str, str]) -> list[dict]:
    """The small part of Sentry's search syntax the detector/workflow lists accept: `key:value`
    (with `!` negation and `[a,b]` lists) on the given keys; free text matches the name."""
    if not query.strip():
        return objects
    try:
        tokens = shlex.split(query)
    except ValueError:
        tokens = query.split()
    for token in tokens:
        negate = token.startswith("!")
        key, sep, value = token.lstrip("!").partition(":")
        if sep and key in keys:
            values = {v.strip().lower() for v in value.strip("[]").split(",")}
            field = keys[key]
            objects = [o for o in objects if (str(o.get(field, "")).lower() in values) != negate]
        elif not sep:
            objects = [o for o in objects if token.lower() in str(o.get("name", "")).lower()]
        # Other keys (assignee:, ...) are accepted and, having no data here, filter nothing.
    return objects


def _prebuilt_summary() -> dict:
    cloned = copy.deepcopy(PREBUILT_GENERAL)
    widgets = cloned.pop("widgets")
    cloned["widgetDisplay"] = [w["displayType"] for w in widgets]
    cloned["widgetPreview"] = [{"displayType": w["displayType"], "layout": None} for w in widgets]
    return cloned


def _prebuilt_widget(title: str, display: str, widget_type: str, fields: list[str], columns: list[str],
                     conditions: str = "", orderby: str = "", name: str = "") -> dict:
    aggregates = [f for f in fields if f not in columns]
    return {"title": title, "displayType": display, "interval": "5m", "widgetType": widget_type,
            "queries": [{"name": name, "conditions": conditions, "fields": fields, "aggregates": aggregates,
                         "columns": columns, "orderby": orderby}]}


# Sentry's prebuilt "General" dashboard (`get_prebuilt_dashboards` in models/dashboard.py): served
# first in every org's list unless tombstoned. `dateCreated`/`createdBy` really are empty strings.
PREBUILT_GENERAL = {
    "id": "default-overview",
    "title": "General",
    "dateCreated": "",
    "createdBy": "",
    "permissions": {"isEditableByEveryone": True, "teamsWithEditAccess": []},
    "isFavorited": False,
    "projects": [],
    "widgets": [
        _prebuilt_widget("Number of Errors", "big_number", "error-events", ["count()"], []),
        _prebuilt_widget("Number of Issues", "big_number", "error-events", ["count_unique(issue)"], []),
        _prebuilt_widget("Events", "line", "error-events", ["count()"], [], name="Events"),
        _prebuilt_widget("Affected Users", "line", "error-events", ["count_unique(user)"], [],
                         conditions="has:user.email", name="Known Users"),
        _prebuilt_widget("Handled vs. Unhandled", "line", "error-events", ["count()"], [],
                         conditions="error.handled:true", name="Handled"),
        _prebuilt_widget("Errors by Country", "table", "error-events",
                         ["geo.country_code", "geo.region", "count()"], ["geo.country_code", "geo.region"],
                         conditions="has:geo.country_code", orderby="-count()", name="Error counts"),
        _prebuilt_widget("Errors by Browser", "table", "error-events", ["browser.name", "count()"],
                         ["browser.name"], conditions="has:browser.name", orderby="-count()"),
        _prebuilt_widget("High Throughput Transactions", "table", "transaction-like", ["count()", "transaction"],
                         ["transaction"], orderby="-count()"),
        _prebuilt_widget("Overall User Misery", "big_number", "transaction-like", ["user_misery(300)"], []),
        _prebuilt_widget("High Throughput Transactions", "top_n", "transaction-like", ["transaction", "count()"],
                         ["transaction"], orderby="-count()"),
        _prebuilt_widget("Issues Assigned to Me or My Teams", "table", "issue", ["assignee", "issue", "title"],
                         ["assignee", "issue", "title"], conditions="assigned_or_suggested:me is:unresolved",
                         orderby="trends"),
        _prebuilt_widget("Transactions Ordered by Misery", "table", "transaction-like",
                         ["transaction", "user_misery(300)"], ["transaction"], orderby="-user_misery(300)"),
    ],
}
