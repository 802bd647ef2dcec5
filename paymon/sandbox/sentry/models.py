"""State and behaviour of the emulated Sentry organisation; never sees an HTTP request.

`SentryBackend(world["sentry"])` holds the world's objects (the JSON the real API returns) and the
emulator's own state: injected failures, rate-limit windows and a log of the requests served.

Internal API for tests (moto style):

    backend.dsn()                                                # http://<key>@<host>/<project id>
    backend.store_event({"message": "x", "level": "error"})      # in-process ingestion (no HTTP)
    backend.alert_firings, backend.outbox                        # what the alert engine did
    backend.limit_ingestion(retry_after=60)                      # envelopes answer 429

    backend.inject_failure(503, path=r"/detectors/", times=2)   # next 2 matching requests fail
    backend.requests                                             # [RecordedRequest(method, path, query, status)]
    backend.request_count(r"/alert-rules/")                      # how many calls hit that path
    backend.metric_alert_rules[0]["name"]                        # objects, mutable in place
    backend.reset()                                              # back to the world it was built from
"""

from __future__ import annotations

import copy
import hashlib
import math
import random
import shlex
import threading
import time
from dataclasses import dataclass

from paymon.rules import query as q
from paymon.sandbox.core import HttpFaults, InjectedFailure, RecordedRequest  # noqa: F401 - re-exported
from paymon.sandbox.sentry import ingest
from paymon.sandbox.sentry.checkins import apply_checkin, public_checkin
from paymon.sandbox.sentry.discover import EventsTable, sort_rows
from paymon.sandbox.sentry.engine import DEFAULT_DELIVERY_DELAY, AlertEngine, AlertFiring
from paymon.sandbox.sentry.events import EventStore, Issue, StoredEvent, normalise, serialize_event, serialize_issue
from paymon.sandbox.sentry.releases import LAST_PER_ENVIRONMENT, ReleaseStore
from paymon.sandbox.sentry.trace_metrics import TraceMetricStore
from paymon.sandbox.sentry.exceptions import (
    IngestRateLimited,
    IngestRejected,
    BadRequest,
    PermissionDenied,
    ResourceDoesNotExist,
)

DEFAULT_RATE_LIMIT = {"limit": 40, "window": 1, "concurrent_limit": 25}


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


class SentryBackend(HttpFaults):
    def __init__(self, world_sentry: dict, hub=None):
        from paymon.sandbox.hub import Hub

        self.hub = hub if hub is not None else Hub()
        self._world = copy.deepcopy(world_sentry)
        self._lock = threading.Lock()
        self.reset()
        # The alert engine judges metric alerts lazily (on their subscription updates): anything
        # reading Slack or PagerDuty first brings it up to the clock (Hub.settle).
        self.hub.settlers.append(self.sync)

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
        # --- ingestion, events, issues, alerting (sentry-api.md §6, §8, §9) ---
        self.project_keys: list[dict] = world.get("project_keys") or [
            _default_project_key(self.organization, p) for p in self.projects]
        self.ingest_delay: float = float(knobs.get("ingest_delay", 0.0))
        """Seconds (sandbox clock) between accepting an event and it showing in the API."""
        self.ingest_rate_limit: dict | None = knobs.get("ingest_rate_limit")
        self.delivery_delay: dict = {**DEFAULT_DELIVERY_DELAY, **knobs.get("delivery_delay", {})}
        self.dual_written_alerts: str = knobs.get("dual_written_alerts", "workflow")
        # Sentry's Slack threading of repeat notifications (org options, on by default): engine._slack.
        self.slack_threads: dict = {"issue_alerts": True, "metric_alerts": True, **knobs.get("slack_threads", {})}
        # When metric alerts and metric detectors are judged (engine.py's docstring has the source):
        # "real" = on their query subscription's cadence (1 min for windows under 30 min, ...);
        # a number of seconds = every alert that often. `detector_cadence` "new_api" (detectors
        # every minute) or "migrated" (the legacy table); `evaluation_phase` "spread" (each
        # subscription at its own offset) or seconds (every subscription at that offset).
        self.evaluation_cadence = knobs.get("evaluation_cadence", "real")
        self.detector_cadence: str = knobs.get("detector_cadence", "new_api")
        self.evaluation_phase = knobs.get("evaluation_phase", "spread")
        # Releases and deploys (releases.py): `deploys_listing` "last_per_environment" (the newest
        # code: one deploy per project and environment) or "all" (older servers).
        self.releases = ReleaseStore(world.get("releases", []), self.projects,
                                     listing=knobs.get("deploys_listing", LAST_PER_ENVIRONMENT))
        self.events = EventStore(first_short_id=int(knobs.get("first_short_id", 42)))
        self.trace_metrics = TraceMetricStore()  # the SDK's metrics (dataset tracemetrics)
        self._alert_firings: list[AlertFiring] = []
        self._outbox: list[dict] = []
        self._data_lock = threading.RLock()
        self.engine = AlertEngine(self)

    # --- auth and directory ----------------------------------------------------------------------

    def scopes_for(self, token: str) -> frozenset[str] | None:
        """The token's scopes, or None for an unknown token."""
        for entry in self.tokens:
            if entry["token"] == token:
                return frozenset(entry.get("scopes", []))
        return None

    def projects_for(self, token: str) -> list[dict] | None:
        """The projects a token sees: None = all (an internal integration, an admin); a world token
        with `projects: [slugs]` sees only those (a member's token sees its teams' projects when
        the organisation's open membership is off; org-level lists and `project=` follow)."""
        for entry in self.tokens:
            if entry["token"] == token and entry.get("projects") is not None:
                wanted = set(entry["projects"])
                return [p for p in self.projects if p["slug"] in wanted or str(p["id"]) in wanted]
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

    def resolve_projects(self, requested: list[str], visible: list[dict] | None = None) -> list[dict]:
        """`project=` filter values (ids or slugs; none or -1 = all the token sees). Sentry answers
        403 when a requested project is not accessible, which includes ones that do not exist."""
        accessible = self.projects if visible is None else visible
        if not requested or "-1" in requested:
            return list(accessible)
        found = []
        for value in requested:
            matches = [p for p in accessible if _id_or_slug_matches(p, value)]
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

    # --- when alerts fired: incidents and open periods (verified-2026-12.md §8) -------------------

    def list_incidents(self, projects: list[dict], alert_rule: str | None, start: float | None,
                       status: str | None) -> list[dict]:
        """`O/incidents/` (OrganizationIncidentIndexEndpoint): legacy metric alert incidents of the
        projects, newest `dateStarted` first; `alertRule` one rule's, `start` drops those closed
        before it, `status` open | warning | critical | closed."""
        self.sync()
        slugs = {p["slug"] for p in projects}
        found = [i for i in self.engine.incidents if slugs & set(i["projects"])]
        if alert_rule is not None:
            found = [i for i in found if i["ruleId"] == str(alert_rule)]
        if start is not None:
            found = [i for i in found if i["dateClosed"] is None or i["dateClosed"] >= start]
        if status is not None:
            wanted = {"open": lambda i: i["dateClosed"] is None, "closed": lambda i: i["dateClosed"] is not None,
                      "warning": lambda i: i["status"] == "warning", "critical": lambda i: i["status"] == "critical"}
            found = [i for i in found if wanted.get(status, lambda i: True)(i)]
        return [self._serialize_incident(i) for i in sorted(found, key=lambda i: -i["dateStarted"])]

    def _serialize_incident(self, incident: dict) -> dict:
        # IncidentSerializer; IncidentStatus OPEN 1, CLOSED 2, WARNING 10, CRITICAL 20;
        # IncidentType ALERT_TRIGGERED 2; IncidentStatusMethod RULE_TRIGGERED 3.
        status = {"closed": 2, "warning": 10, "critical": 20}[incident["status"]]
        rule = next((r for r in self.metric_alert_rules if str(r.get("id")) == incident["ruleId"]), None)
        return {"id": incident["identifier"], "identifier": incident["identifier"],
                "organizationId": str(self.organization["id"]), "projects": list(incident["projects"]),
                "alertRule": copy.deepcopy(rule), "activities": None, "seenBy": None, "hasSeen": False,
                "status": status, "statusMethod": 3, "type": 2, "title": incident["title"],
                "dateStarted": ingest.iso(incident["dateStarted"]), "dateDetected": ingest.iso(incident["dateDetected"]),
                "dateCreated": ingest.iso(incident["dateCreated"]),
                "dateClosed": None if incident["dateClosed"] is None else ingest.iso(incident["dateClosed"])}

    def list_open_periods(self, projects: list[dict], detector_id: str | None, start: float | None,
                          end: float | None) -> list[dict]:
        """`O/open-periods/?detectorId=` (OrganizationOpenPeriodsEndpoint, publish status private):
        a metric detector's open periods, newest first; `start` = the period's date_started
        (bucketSize 0)."""
        self.sync()
        project_ids = {str(p["id"]) for p in projects}
        found = [o for o in self.engine.open_periods if o["projectId"] in project_ids
                 and (detector_id is None or o["detectorId"] == str(detector_id))]
        if start is not None:
            found = [o for o in found if o["end"] is None or o["end"] >= start]
        if end is not None:
            found = [o for o in found if o["start"] <= end]
        return [{"id": o["id"], "start": ingest.iso(o["start"]),
                 "end": None if o["end"] is None else ingest.iso(o["end"]), "isOpen": o["end"] is None,
                 "activities": [{**a, "dateCreated": ingest.iso(a["dateCreated"])} for a in o["activities"]]}
                for o in sorted(found, key=lambda o: -o["start"])]

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
        return [public_checkin(c) for c in checkins]

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


    # --- project keys and ingestion (Relay) ------------------------------------------------------

    @property
    def web_base(self) -> str:
        """Where links in notifications point: the sandbox when served, else Sentry's SaaS form."""
        return self.hub.base_url or f"https://{self.organization['slug']}.sentry.io"

    def list_project_keys(self, project: dict) -> list[dict]:
        return [_serialize_key(k, project, self.hub.base_url) for k in self.project_keys
                if str(k["projectId"]) == str(project["id"])]

    def dsn(self, project: dict | str | None = None) -> str:
        """The DSN of the project's first active key, for `sentry_sdk.init(dsn=...)`."""
        project = self.get_project(project) if isinstance(project, str) else (project or self.projects[0])
        for key in self.list_project_keys(project):
            if key["isActive"]:
                return key["dsn"]["public"]
        raise ResourceDoesNotExist()

    def limit_ingestion(self, retry_after: int = 60, categories: tuple[str, ...] = (), scope: str = "organization",
                        reason: str = "usage_exceeded", times: int | None = None) -> None:
        """Make envelopes answer 429 (all of them when `categories` is empty, else only items of
        those categories are refused), `times` times or until `ingest_rate_limit = None`."""
        self.ingest_rate_limit = {"retry_after": retry_after, "categories": list(categories), "scope": scope,
                                  "reason": reason, "times": times}

    def _authenticate_ingest(self, project_id: str, public_key: str) -> dict:
        """Relay's checks: the key must exist, be active and belong to the project in the URL."""
        project = next((p for p in self.projects if str(p["id"]) == str(project_id)), None)
        key = next((k for k in self.project_keys if k["public"] == public_key), None)
        if key is None:
            raise IngestRejected(401, "invalid authorization: unknown public key")
        if project is None or str(key["projectId"]) != str(project["id"]):
            raise IngestRejected(403, "event submission rejected with_reason: ProjectId")
        if not key.get("isActive", True):
            raise IngestRejected(403, "event submission rejected with_reason: DisabledKey")
        return project

    def _rate_limited_categories(self) -> set[str] | None:
        """None when ingestion is not limited, else the limited categories (empty = all)."""
        limit = self.ingest_rate_limit
        if not limit:
            return None
        return set(limit.get("categories") or ())

    def _consume_rate_limit(self) -> IngestRateLimited:
        limit = self.ingest_rate_limit
        error = IngestRateLimited(int(limit.get("retry_after", 60)), list(limit.get("categories") or ()),
                                  str(limit.get("scope", "organization")), str(limit.get("reason", "usage_exceeded")))
        if limit.get("times") is not None:
            limit["times"] = int(limit["times"]) - 1
            if limit["times"] <= 0:
                self.ingest_rate_limit = None
        return error

    def ingest(self, project_id: str, body: bytes, headers, query, endpoint: str = "envelope",
               received: float | None = None) -> tuple[dict, dict[str, str]]:
        """Accept one SDK request the way Relay does; returns (response body, extra headers).
        `headers` is any case-insensitive mapping with lower-case lookups, `query` a mapping.
        `received` (in-process callers replaying a past, e.g. the sandbox app's history) overrides
        the sandbox clock as the time Relay received the envelope.
        Raises IngestRejected with Relay's status for anything it refuses."""
        data = ingest.decode_body(body, headers.get("content-encoding"))
        try:
            public_key = ingest.public_key_from(headers, query)
            envelope = None
        except IngestRejected:
            # The envelope header may carry the DSN instead (browser SDKs, tunnels).
            envelope = self._parse(data, endpoint)
            public_key = ingest.public_key_from(headers, query, envelope.headers)
        project = self._authenticate_ingest(project_id, public_key)
        envelope = envelope or self._parse(data, endpoint)
        for item in envelope.items:
            ingest.check_item_size(item)
        limited = self._rate_limited_categories()
        extra_headers: dict[str, str] = {}
        items = [i for i in envelope.items if i.type in ingest.STORED_ITEM_TYPES]
        if limited is not None:
            if not limited or (items and all(i.category in limited for i in items)):
                raise self._consume_rate_limit()
            # Partially limited: drop those items, accept the rest, and tell the SDK (200 + header).
            error = self._consume_rate_limit()
            extra_headers["X-Sentry-Rate-Limits"] = error.headers["X-Sentry-Rate-Limits"]
            items = [i for i in items if i.category not in limited]
        event_id = envelope.event_id
        with self._data_lock:
            now = self.hub.clock.now() if received is None else received
            self.engine.refresh()
            for item in items:
                payload = item.json()  # unknown item types never get here: skipped, not rejected
                if item.type == "check_in":
                    apply_checkin(self.monitors, self.monitor_checkins, payload, project, now)
                    continue
                if item.type == "trace_metric":
                    self.trace_metrics.add(payload, str(project["id"]), now)
                    continue
                if self._is_own_telemetry(payload):
                    continue
                stored = self._store(payload, project, item.type, now, event_id, len(item.payload))
                event_id = event_id or stored.event_id
        return ({"id": event_id} if event_id else {}), extra_headers

    def record_checkin(self, item: dict, project: dict | str | None = None, received: float | None = None
                       ) -> dict | None:
        """Apply one check-in in-process (the SDK's `check_in` item payload), as if received at
        `received`: for a world's history, e.g. the `missed` check-in the monitor records itself."""
        project = self.get_project(project) if isinstance(project, str) else (project or self.projects[0])
        with self._data_lock:
            now = self.hub.clock.now() if received is None else received
            return apply_checkin(self.monitors, self.monitor_checkins, item, project, now)

    def _is_own_telemetry(self, payload: dict) -> bool:
        """An SDK initialised in the process serving the sandbox instruments the sandbox itself
        (the Starlette integration traces every request, including the envelope POSTs), and each
        such transaction would be sent back here: a feedback loop real Sentry never sees. Events
        describing a request to the sandbox's own address are accepted and dropped."""
        base = self.hub.base_url
        url = str((payload.get("request") or {}).get("url") or "") if isinstance(payload.get("request"), dict) else ""
        # The reference payment app (mounted at /app) is a monitored service, not the sandbox itself.
        return bool(base) and url.startswith(base + "/") and not url.startswith(base + "/app/")

    @staticmethod
    def _parse(data: bytes, endpoint: str) -> ingest.Envelope:
        if endpoint == "store":
            return ingest.envelope_from_store_body(data)
        return ingest.parse_envelope(data)

    def store_event(self, payload: dict, project: dict | str | None = None, item_type: str = "event",
                    received: float | None = None) -> StoredEvent:
        """Ingest one event in-process (no HTTP, no auth): for tests, backtests and bulk loads.
        `received` defaults to the sandbox clock; item_type "transaction" for transactions."""
        return self.store_events([payload], project, item_type, received)[0]

    def store_events(self, payloads: list[dict], project: dict | str | None = None, item_type: str = "event",
                     received: float | list[float] | None = None) -> list[StoredEvent]:
        """`received` may be one time per payload (a history, oldest first: the engine sees it in order)."""
        project = self.get_project(project) if isinstance(project, str) else (project or self.projects[0])
        with self._data_lock:
            self.engine.refresh()  # once per batch: bulk loads stay fast
            now = self.hub.clock.now() if received is None else received
            times = list(now) if isinstance(now, (list, tuple)) else [now] * len(payloads)
            return [self._store(p, project, item_type, t, None, 0) for p, t in zip(payloads, times)]

    def _store(self, payload: dict, project: dict, item_type: str, received: float, envelope_event_id: str | None,
               size: int) -> StoredEvent:
        data = normalise(payload, item_type, envelope_event_id, received)
        stored, issue, _created = self.events.add(data, project, received, received + self.ingest_delay, size)
        self.engine.on_event(stored, issue, project)
        return stored

    # --- reading events and issues ---------------------------------------------------------------

    def sync(self) -> float:
        """Bring lazily evaluated state (alert windows expiring) up to the clock; returns now."""
        with self._data_lock:
            now = self.hub.clock.now()
            self.engine.refresh()
            self.engine.advance(now)
            return now

    @property
    def alert_firings(self) -> list[AlertFiring]:
        self.sync()
        return self._alert_firings

    @property
    def outbox(self) -> list[dict]:
        """E-mails Sentry sent: {to, target, subject, alert, level, body, issue_id, sent_at, visible_at}."""
        self.sync()
        return self._outbox

    def record_firing(self, firing: AlertFiring) -> None:
        self._alert_firings.append(firing)

    def send_email(self, message: dict) -> None:
        self._outbox.append(message)

    def _visible(self, event_id: str, now: float) -> StoredEvent:
        stored = self.events.by_id.get(ingest.normalise_event_id(event_id) or "")
        if stored is None or stored.visible_at > now:
            raise ResourceDoesNotExist()
        return stored

    def get_event(self, project: dict, event_id: str) -> dict:
        now = self.sync()
        with self._data_lock:
            stored = self._visible(event_id, now)
            if stored.project_id != str(project["id"]):
                raise ResourceDoesNotExist()
            neighbours = [e for e in self.events.visible_events(now) if e.project_id == stored.project_id]
            index = next(i for i, e in enumerate(neighbours) if e is stored)
            previous = neighbours[index - 1].event_id if index > 0 else None
            following = neighbours[index + 1].event_id if index + 1 < len(neighbours) else None
            return serialize_event(stored, project, previous, following)

    def lookup_event(self, event_id: str) -> dict:
        now = self.sync()
        with self._data_lock:
            stored = self._visible(event_id, now)
            project = self.get_project(stored.project_id)
            if stored.group_id is None:
                raise ResourceDoesNotExist()  # the lookup answers for grouped events only
            return {"organizationSlug": self.organization["slug"], "projectSlug": project["slug"],
                    "groupId": stored.group_id, "eventId": stored.event_id,
                    "event": serialize_event(stored, project)}

    def issue_permalink(self, issue: Issue) -> str:
        return f"{self.web_base}/organizations/{self.organization['slug']}/issues/{issue.id}/"

    def _matching_issues(self, projects: list[dict], query: str, environments: list[str], start: float | None,
                         end: float | None, now: float) -> list[tuple[Issue, list[StoredEvent]]]:
        """Issues with at least one visible event in the range matching the event-level part of
        the query; issue-level keys (`is:`, `issue:`) are applied to the issue itself."""
        try:
            predicate = q.parse(query)
        except ValueError as exc:
            raise BadRequest(f"Error parsing search query: {exc}") from None
        statuses, predicate = q.extract_field(predicate, "is")
        short_ids, predicate = q.extract_field(predicate, "issue")
        test = q.matcher(predicate)
        project_ids = {str(p["id"]) for p in projects}
        wanted_status = {s for s in statuses or () if s in ("resolved", "unresolved", "ignored", "archived")}
        found = []
        for issue in self.events.issues.values():
            if str(issue.project["id"]) not in project_ids:
                continue
            if wanted_status and issue.status not in {"ignored" if s == "archived" else s for s in wanted_status}:
                continue
            if short_ids is not None and not ({issue.short_id.lower(), issue.id} & {s.lower() for s in short_ids}):
                continue
            events = [e for e in issue.visible_events(now)
                      if (start is None or e.received > start) and (end is None or e.received <= end)
                      and (not environments or e.environment in environments) and test(e.data)]
            if events:
                found.append((issue, events))
        return found

    def search_issues(self, projects: list[dict], query: str, environments: list[str], start: float | None,
                      end: float | None, sort: str = "date") -> list[dict]:
        now = self.sync()
        with self._data_lock:
            found = self._matching_issues(projects, query, environments, start, end, now)
            keys = {"date": lambda f: max(e.received for e in f[1]), "new": lambda f: f[0].first_seen,
                    "freq": lambda f: len(f[1]), "user": lambda f: len(f[1])}
            found.sort(key=keys.get(sort, keys["date"]), reverse=True)
            return [serialize_issue(issue, now, self.issue_permalink(issue), events) for issue, events in found]

    def get_issue(self, issue_id: str) -> Issue:
        issue = self.events.issues.get(str(issue_id))
        if issue is None:
            # Short ids work wherever an issue id does.
            issue = next((i for i in self.events.issues.values() if i.short_id == str(issue_id).upper()), None)
        if issue is None or not issue.visible_events(self.hub.clock.now()):
            raise ResourceDoesNotExist()
        return issue

    def serialize_issue(self, issue: Issue) -> dict:
        now = self.sync()
        return serialize_issue(issue, now, self.issue_permalink(issue))

    def select_issues(self, projects: list[dict], ids: list[str], query: str | None, environments: list[str]
                      ) -> list[Issue]:
        """The issues a bulk PUT/DELETE acts on: `?id=` values, else the query's matches."""
        now = self.sync()
        with self._data_lock:
            if ids:
                chosen = []
                for issue_id in ids:
                    try:
                        chosen.append(self.get_issue(issue_id))
                    except ResourceDoesNotExist:
                        continue
                return chosen
            return [issue for issue, _ in self._matching_issues(
                projects, "is:unresolved" if query is None else query, environments, None, None, now)]

    def update_issues(self, issues: list[Issue], changes: dict) -> dict:
        """Apply `{"status": "resolved"|"unresolved"|"ignored"}`; returns the applied changes as
        the bulk endpoint echoes them."""
        status = changes.get("status")
        if status not in ("resolved", "unresolved", "ignored", "resolvedInNextRelease", "muted", None):
            raise BadRequest(f'"{status}" is not a valid choice.')
        stored = {"resolvedInNextRelease": "resolved", "muted": "ignored"}.get(status, status)
        with self._data_lock:
            for issue in issues:
                if stored is not None:
                    issue.status = stored
                    issue.substatus = {"unresolved": "ongoing", "ignored": "archived_forever"}.get(stored)
        result = {}
        if status is not None:
            result = {"status": stored, "statusDetails": changes.get("statusDetails") or {}, "inbox": False}
        return result

    def delete_issues(self, issues: list[Issue]) -> None:
        with self._data_lock:
            for issue in issues:
                self.events.delete_issue(issue)

    def events_table(self, projects: list[dict], dataset: str, fields: list[str], query: str,
                     environments: list[str], start: float | None, end: float | None, sort: str | None
                     ) -> tuple[list[dict], dict]:
        """`GET O/events/`: (rows, meta). ValueError for a query the endpoint would reject (400)."""
        now = self.sync()
        table = EventsTable.build(dataset, fields, query)
        project_ids = {str(p["id"]) for p in projects}
        with self._data_lock:
            events = [e for e in self.events.visible_events(now, start, end)
                      if e.project_id in project_ids and (not environments or e.environment in environments)]
            rows = table.rows(events, {str(p["id"]): p["slug"] for p in self.projects})
        return sort_rows(rows, sort, fields), table.meta()

    # --- e-mail recipients -----------------------------------------------------------------------

    def email_recipients(self, target: str) -> tuple[list[str], str | None]:
        """Addresses for an e-mail action target ("member:x@y", "team:<slug>"): a team's members are
        the org members whose `teams` list its slug. ([], reason) when nobody can be reached."""
        kind, _, ident = target.partition(":")
        if kind == "member":
            return [ident], None
        if kind == "team":
            if not any("teams" in m for m in self.members):
                return [], f"team {ident}: the world's members carry no `teams`, membership unknown"
            emails = [m.get("email") or (m.get("user") or {}).get("email") for m in self.members
                      if ident in (m.get("teams") or ())]
            emails = [e for e in emails if e]
            return (emails, None) if emails else ([], f"team {ident} has no members")
        return [], f"e-mail target {target} cannot be resolved"

    # injected failures (inject_failure, take_failure) and the request log: HttpFaults

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


def _default_project_key(organization: dict, project: dict) -> dict:
    """A stable DSN key per project for worlds that list none (derived, so every run agrees)."""
    digest = hashlib.sha256(f"{organization['id']}:{project['id']}".encode()).hexdigest()
    return {"id": digest[40:48], "name": "Default", "label": "Default", "public": digest[:32],
            "secret": digest[32:64], "projectId": int(project["id"]), "isActive": True, "rateLimit": None,
            "dateCreated": project.get("dateCreated")}


def _serialize_key(key: dict, project: dict, base_url: str) -> dict:
    """`ProjectKey` as `GET P/keys/` returns it, the DSNs built for wherever the sandbox is served."""
    base = base_url or "https://o0.ingest.sentry.io"
    scheme, _, host = base.partition("://")
    pid, public, secret = project["id"], key["public"], key["secret"]
    endpoint = f"{base}/api/{pid}"
    return {
        "id": str(key["id"]),
        "name": key.get("name", "Default"),
        "label": key.get("label", key.get("name", "Default")),
        "public": public,
        "secret": secret,
        "projectId": int(pid),
        "isActive": bool(key.get("isActive", True)),
        "rateLimit": key.get("rateLimit"),
        "dsn": {
            "secret": f"{scheme}://{public}:{secret}@{host}/{pid}",
            "public": f"{scheme}://{public}@{host}/{pid}",
            "csp": f"{endpoint}/csp-report/?sentry_key={public}",
            "security": f"{endpoint}/security/?sentry_key={public}",
            "minidump": f"{endpoint}/minidump/?sentry_key={public}",
            "nel": f"{endpoint}/nel/?sentry_key={public}",
            "unreal": f"{endpoint}/unreal/{public}/",
            "crons": f"{endpoint}/cron/___MONITOR_SLUG___/{public}/",
            "cdn": f"{base}/js-sdk-loader/{public}.min.js",
            "playstation": f"{endpoint}/playstation/?sentry_key={public}",
            "integration": f"{base}/",
            "otlp_traces": f"{endpoint}/integration/otlp/v1/traces",
            "otlp_logs": f"{endpoint}/integration/otlp/v1/logs",
        },
        "browserSdkVersion": "9.x",
        "browserSdk": {"choices": [["latest", "latest"], ["9.x", "9.x"], ["8.x", "8.x"], ["7.x", "7.x"]]},
        "dateCreated": key.get("dateCreated"),
        "dynamicSdkLoaderOptions": {"hasReplay": True, "hasPerformance": True, "hasDebug": False,
                                    "hasFeedback": False, "hasLogsAndMetrics": False},
        "useCase": key.get("useCase", "user"),
    }


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
