"""The emulated PagerDuty behaves like PagerDuty: events -> incidents -> paging, dedup, resolving,
maintenance/disabled services, auth, pagination, rate limits, and time as a setting.

Driven over real HTTP (SandboxServer + httpx), asserting exact status codes and bodies from
pagerduty-api.md; the sandbox clock is moved instead of sleeping.
"""

from __future__ import annotations

import pytest
import httpx

from paymon.sandbox import server as sandbox_server
from paymon.sandbox.pagerduty import SERVICE, PagerDutyBackend, golden_pagerduty_world
from paymon.sandbox.pagerduty.exceptions import EventsUnavailable, EventThrottled, InvalidEvent
from paymon.sandbox.pagerduty.models import iso
from paymon.sandbox.hub import SandboxClock
from paymon.sandbox.server import SandboxServer, build_app
from paymon.sandbox.world import golden_world

ROUTING_KEY = "3f9c1e7a2b6d4c08a5e1f7b9d2c4a6e8"  # Sentry's service_table row 22451
TOKEN = "sandbox-pagerduty-token"
READ_TOKEN = "sandbox-pagerduty-read-token"
USER_TOKEN = "sandbox-pagerduty-user-token"
BOT_EMAIL = "paymon-bot@towerofbabel.example"
SERVICE_ID, ONCALL, SECONDARY, BOT = "PTOWPAY", "PUONCAL", "PUSECND", "PUPAYBT"
ACCEPT = "application/vnd.pagerduty+json;version=2"
AUTH_FAILED = {"error": {"message": "Authentication failed", "code": 2006}}
FROM_REQUIRED = {"error": {"message": "You must specify a user's email address in the \"From\" header to "
                                      "perform this action", "code": 2016}}
RESOLVE = {"incident": {"type": "incident_reference", "status": "resolved", "resolution": "paymon cleanup"}}


def _world(**knobs) -> dict:
    part = golden_pagerduty_world()
    part["knobs"].update(knobs)
    return {"pagerduty": part}


def _event(summary="PAYMON-TEST-1 checkout failed", severity="error", dedup_key="PAYMENTS-API-3F",
           action="trigger", routing_key=ROUTING_KEY, **extra) -> dict:
    event = {"routing_key": routing_key, "event_action": action, "dedup_key": dedup_key, **extra}
    if action == "trigger":
        event["payload"] = {"summary": summary, "severity": severity, "source": "app.payments.webhooks",
                            "custom_details": {"eventID": "9f2c1e0b5a7d4c3e8b6a1f0e2d3c4b5a"}}
        event["links"] = [{"href": "https://sentry.example/issues/1/", "text": "View Sentry Issue Details"}]
    return event


@pytest.fixture(autouse=True)
def registered(monkeypatch):
    """The lead registers PagerDuty in SERVICES; until then these tests do it themselves."""
    monkeypatch.setitem(sandbox_server.SERVICES, "pagerduty", SERVICE)


class Sandbox:
    def __init__(self, server: SandboxServer):
        self.server = server
        self.backend: PagerDutyBackend = server.backend("pagerduty")
        self.base = f"{server.base_url}/pagerduty"
        headers = {"Authorization": f"Token token={TOKEN}", "Accept": ACCEPT}
        self.rest = httpx.Client(base_url=self.base, headers=headers, timeout=10)
        self.events = httpx.Client(base_url=self.base, timeout=10)

    def enqueue(self, event) -> httpx.Response:
        return self.events.post("/v2/enqueue", json=event)

    def advance(self, seconds: float) -> None:
        self.server.clock.advance(seconds)

    def incidents(self, **params) -> list[dict]:
        response = self.rest.get("/incidents", params={"date_range": "all", **params})
        assert response.status_code == 200, response.text
        return response.json()["incidents"]

    def only_incident(self) -> dict:
        incidents = self.incidents()
        assert len(incidents) == 1, incidents
        return incidents[0]

    def log_entries(self, incident_id: str) -> list[dict]:
        response = self.rest.get(f"/incidents/{incident_id}/log_entries")
        assert response.status_code == 200, response.text
        return response.json()["log_entries"]

    def close(self):
        self.rest.close()
        self.events.close()


@pytest.fixture
def sandbox(request):
    knobs = getattr(request, "param", {})
    # Frozen: time moves only when a test advances it, so whole-second stamps are exact whatever
    # the machine's load (a wall-clock second could tick between sending and reading).
    with SandboxServer(_world(**knobs), clock=SandboxClock(frozen=True)) as server:
        box = Sandbox(server)
        yield box
        box.close()


def with_knobs(**knobs):
    return pytest.mark.parametrize("sandbox", [knobs], indirect=True)


# --- the golden world -------------------------------------------------------------------------------

def test_routing_key_is_the_one_sentrys_integration_sends_to():
    integrations = golden_world("workflow")["sentry"]["integrations"]
    pagerduty = next(i for i in integrations if i["provider"]["key"] == "pagerduty")
    row = next(r for r in pagerduty["configData"]["service_table"] if r["id"] == 22451)
    part = golden_pagerduty_world()
    service = next(s for s in part["services"] if s["name"] == row["service"])
    integration = next(i for i in part["integrations"] if i["service"]["id"] == service["id"])
    assert integration["integration_key"] == row["integration_key"] == ROUTING_KEY
    assert integration["type"] == "events_api_v2_inbound_integration"
    assert service["incident_urgency_rule"] == {"type": "constant", "urgency": "severity_based"}
    assert all(not t["token"].startswith(("u+", "y_")) and len(t["token"]) != 20 for t in part["tokens"])
    assert PagerDutyBackend(part).default_from_email == BOT_EMAIL


def test_build_app_mounts_pagerduty_next_to_sentry():
    app = build_app({**golden_world("workflow"), **_world()})
    assert {"sentry", "pagerduty"} <= set(app.state.backends)
    assert app.state.hub.backends["pagerduty"] is app.state.backends["pagerduty"]


# --- events -> incident -> paging -------------------------------------------------------------------

def test_trigger_opens_a_high_urgency_incident_assigned_and_paged_to_the_on_call(sandbox):
    sent_at = sandbox.server.clock.now()
    response = sandbox.enqueue(_event())
    assert response.status_code == 202
    assert response.json() == {"status": "success", "message": "Event processed", "dedup_key": "PAYMENTS-API-3F"}
    assert sandbox.incidents() == []  # 202 only means queued: delivery_delay is 2 s in the golden world

    sandbox.advance(2)
    incident = sandbox.only_incident()
    assert incident["title"] == "PAYMON-TEST-1 checkout failed"
    assert incident["summary"] == f"[#1] {incident['title']}"
    assert incident["urgency"] == "high" and incident["status"] == "triggered"
    assert incident["service"]["id"] == SERVICE_ID and incident["escalation_policy"]["id"] == "PEPPAYM"
    assert incident["created_at"] == iso(sent_at + 2) and incident["resolved_at"] is None
    assert [a["assignee"]["id"] for a in incident["assignments"]] == [ONCALL]
    assert incident["alert_counts"] == {"all": 1, "triggered": 1, "resolved": 0}
    assert incident["incident_key"] == "PAYMENTS-API-3F"

    entries = sandbox.log_entries(incident["id"])
    assert [e["type"] for e in entries] == ["assign_log_entry", "trigger_log_entry"]  # notifications lag
    assign = entries[0]
    assert [u["id"] for u in assign["assignees"]] == [ONCALL] and assign["agent"]["id"] == SERVICE_ID
    assert entries[1]["channel"]["type"] == "api" and entries[1]["channel"]["details"]["eventID"]

    sandbox.advance(3)  # notify_delay
    entries = sandbox.log_entries(incident["id"])
    notified = [e for e in entries if e["type"] == "notify_log_entry"]
    assert {e["user"]["id"] for e in notified} == {ONCALL}
    assert {e["channel"]["notification"]["type"] for e in notified} == {"push_notification", "sms_notification"}
    assert all(e["channel"]["notification"]["status"] == "success" for e in notified)
    sms = next(e for e in notified if e["channel"]["notification"]["type"] == "sms_notification")
    assert sms["channel"]["notification"]["address"] == "+1 5555550142"
    assert [e["created_at"] for e in entries] == sorted((e["created_at"] for e in entries), reverse=True)

    alerts = sandbox.rest.get(f"/incidents/{incident['id']}/alerts").json()["alerts"]
    assert [(a["alert_key"], a["severity"], a["status"]) for a in alerts] == [("PAYMENTS-API-3F", "error", "triggered")]
    assert alerts[0]["body"]["details"] == {"eventID": "9f2c1e0b5a7d4c3e8b6a1f0e2d3c4b5a"}
    assert alerts[0]["body"]["contexts"] == [{"type": "link", "href": "https://sentry.example/issues/1/",
                                              "text": "View Sentry Issue Details"}]


@pytest.mark.parametrize(("severity", "urgency"), [("critical", "high"), ("error", "high"),
                                                   ("warning", "low"), ("info", "low")])
def test_severity_based_urgency(severity, urgency):
    backend = PagerDutyBackend(golden_pagerduty_world())
    backend.enqueue(_event(severity=severity), visible_at=backend.now())
    assert backend.incidents[0].urgency == urgency


@with_knobs(delivery_delay=0, notify_delay=0)
def test_low_urgency_pages_by_email_only(sandbox):
    sandbox.enqueue(_event(severity="warning"))
    incident = sandbox.only_incident()
    notified = [e for e in sandbox.log_entries(incident["id"]) if e["type"] == "notify_log_entry"]
    assert [e["channel"]["notification"]["type"] for e in notified] == ["email_notification"]


@with_knobs(delivery_delay=0)
def test_trigger_with_the_dedup_key_of_an_open_alert_adds_to_it(sandbox):
    first = sandbox.enqueue(_event(summary="first"))
    second = sandbox.enqueue(_event(summary="second"))
    assert first.json()["dedup_key"] == second.json()["dedup_key"] == "PAYMENTS-API-3F"
    incident = sandbox.only_incident()
    assert incident["title"] == "first" and incident["alert_counts"]["all"] == 1
    triggers = [e for e in sandbox.log_entries(incident["id"]) if e["type"] == "trigger_log_entry"]
    assert len(triggers) == 2
    assert [r.outcome for r in sandbox.backend.events] == ["incident_created", "deduplicated"]

    # Once resolved, the same key opens a new incident.
    assert sandbox.enqueue(_event(action="resolve")).status_code == 202
    assert sandbox.rest.get(f"/incidents/{incident['id']}").json()["incident"]["status"] == "resolved"
    sandbox.enqueue(_event(summary="third"))
    assert [i["title"] for i in sandbox.incidents()] == ["first", "third"]


@with_knobs(delivery_delay=0)
def test_trigger_without_dedup_key_gets_a_generated_one(sandbox):
    event = _event()
    del event["dedup_key"]
    key = sandbox.enqueue(event).json()["dedup_key"]
    assert len(key) == 32 and sandbox.only_incident()["incident_key"] == key


@with_knobs(delivery_delay=0)
def test_acknowledge_and_resolve_events_by_dedup_key(sandbox):
    sandbox.enqueue(_event())
    sandbox.enqueue(_event(action="acknowledge"))
    incident = sandbox.only_incident()
    assert incident["status"] == "acknowledged"
    assert incident["acknowledgements"][0]["acknowledger"]["id"] == SERVICE_ID
    sandbox.enqueue(_event(action="resolve"))
    incident = sandbox.only_incident()
    assert incident["status"] == "resolved" and incident["assignments"] == []
    assert incident["alert_counts"] == {"all": 1, "triggered": 0, "resolved": 1}
    # Resolving an unknown key is accepted and does nothing (processing is asynchronous).
    assert sandbox.enqueue(_event(action="resolve", dedup_key="NOPE")).status_code == 202
    assert sandbox.backend.events[-1].outcome == "no_open_alert"


# --- resolving through the REST API -----------------------------------------------------------------

@with_knobs(delivery_delay=0)
def test_resolve_needs_a_valid_from_header(sandbox):
    sandbox.enqueue(_event())
    incident_id = sandbox.only_incident()["id"]

    missing = sandbox.rest.put(f"/incidents/{incident_id}", json=RESOLVE)
    assert (missing.status_code, missing.json()) == (400, FROM_REQUIRED)
    unknown = sandbox.rest.put(f"/incidents/{incident_id}", json=RESOLVE, headers={"From": "nobody@example.com"})
    assert (unknown.status_code, unknown.json()) == (400, {"error": {"message": "Requester User Not Found",
                                                                     "code": 1008}})
    read_only = sandbox.rest.put(f"/incidents/{incident_id}", json=RESOLVE,
                                 headers={"From": BOT_EMAIL, "Authorization": f"Token token={READ_TOKEN}"})
    assert (read_only.status_code, read_only.json()) == (403, {"error": {"message": "Access Denied", "code": 2010}})
    assert sandbox.only_incident()["status"] == "triggered"

    resolved = sandbox.rest.put(f"/incidents/{incident_id}", json=RESOLVE, headers={"From": BOT_EMAIL})
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()["incident"]
    assert body["status"] == "resolved" and body["assignments"] == [] and body["resolved_at"]
    assert body["last_status_change_by"]["id"] == BOT
    resolve_entry = sandbox.log_entries(incident_id)[0]
    assert resolve_entry["type"] == "resolve_log_entry" and resolve_entry["note"] == "paymon cleanup"
    assert resolve_entry["agent"]["id"] == BOT

    again = sandbox.rest.put(f"/incidents/{incident_id}", json=RESOLVE, headers={"From": BOT_EMAIL})
    assert (again.status_code, again.json()) == (400, {"error": {"message": "Incident Already Resolved", "code": 1001}})


@with_knobs(delivery_delay=0)
def test_user_level_key_writes_without_from_and_acknowledges(sandbox):
    sandbox.enqueue(_event())
    incident_id = sandbox.only_incident()["id"]
    ack = sandbox.rest.put(f"/incidents/{incident_id}", headers={"Authorization": f"Token token={USER_TOKEN}"},
                           json={"incident": {"type": "incident_reference", "status": "acknowledged"}})
    assert ack.status_code == 200 and ack.json()["incident"]["acknowledgements"][0]["acknowledger"]["id"] == BOT
    services = sandbox.rest.get("/services", params={"query": "Payments"}).json()["services"]
    assert services[0]["status"] == "warning"


@with_knobs(delivery_delay=0)
def test_bulk_resolve(sandbox):
    for key in ("A", "B"):
        sandbox.enqueue(_event(dedup_key=key))
    ids = [i["id"] for i in sandbox.incidents()]
    body = {"incidents": [{"id": i, "type": "incident_reference", "status": "resolved"} for i in ids]}
    assert sandbox.rest.put("/incidents", json=body).json() == FROM_REQUIRED
    response = sandbox.rest.put("/incidents", json=body, headers={"From": BOT_EMAIL})
    assert response.status_code == 200
    assert [i["status"] for i in response.json()["incidents"]] == ["resolved", "resolved"]
    assert sandbox.incidents(**{"statuses[]": ["triggered", "acknowledged"]}) == []


# --- disabled services, maintenance -----------------------------------------------------------------

@with_knobs(delivery_delay=0)
def test_disabled_service_accepts_events_but_opens_nothing(sandbox):
    sandbox.backend.disable_service("TowerOfBabel Payments")
    assert sandbox.enqueue(_event()).status_code == 202
    assert sandbox.incidents() == []
    assert sandbox.backend.events[-1].outcome == "dropped_service_disabled"
    assert sandbox.rest.get(f"/services/{SERVICE_ID}").json()["service"]["status"] == "disabled"


@with_knobs(delivery_delay=0)
def test_maintenance_window_accepts_events_but_opens_nothing(sandbox):
    window = sandbox.backend.start_maintenance(SERVICE_ID, duration=600)
    assert sandbox.enqueue(_event()).status_code == 202
    assert sandbox.incidents() == [] and sandbox.backend.events[-1].outcome == "dropped_maintenance"
    assert sandbox.rest.get(f"/services/{SERVICE_ID}").json()["service"]["status"] == "maintenance"
    ongoing = sandbox.rest.get("/maintenance_windows", params={"filter": "ongoing", "service_ids[]": SERVICE_ID})
    assert [w["id"] for w in ongoing.json()["maintenance_windows"]] == [window["id"]]
    everything = sandbox.rest.get("/maintenance_windows").json()["maintenance_windows"]
    assert [w["id"] for w in everything] == ["PMWPAST", window["id"]]

    sandbox.advance(600)  # the window ends; the next trigger opens an incident
    sandbox.enqueue(_event())
    assert len(sandbox.incidents()) == 1


@with_knobs(delivery_delay=0, maintenance=["TowerOfBabel Payments"])
def test_maintenance_knob(sandbox):
    sandbox.enqueue(_event())
    assert sandbox.incidents() == []


# --- invalid events ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("event", "errors"), [
    (_event(routing_key="c0ffee00c0ffee00c0ffee00c0ffee01"), ["Invalid routing key"]),
    (_event(routing_key="e+23rschqsESqk9Q6_-g"), ["Length of 'routing_key' is incorrect (should be 32 characters)",
                                                  "'routing_key' cannot contain non-alphanumeric characters."]),
    ({**_event(), "payload": {"severity": "error", "source": "x"}}, ["'payload.summary' is missing or blank"]),
    ({**_event(), "payload": {"summary": "s", "source": "x", "severity": "fatal"}},
     ["'payload.severity' must be one of critical, error, warning or info"]),
    ({**_event(), "event_action": "snooze"}, ["'event_action' must be one of trigger, acknowledge or resolve"]),
    (_event(action="resolve", dedup_key=None), ["'dedup_key' is missing or blank"]),
])
def test_invalid_events_are_400s(sandbox, event, errors):
    response = sandbox.enqueue(event)
    assert response.status_code == 400
    assert response.json() == {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
    with pytest.raises(InvalidEvent):
        sandbox.backend.enqueue(event)
    assert sandbox.backend.events == []


def test_unparseable_event(sandbox):
    response = sandbox.events.post("/v2/enqueue", content=b"{nope", headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (400, {
        "status": "Unrecognized object", "message": "Event object format is unrecognized",
        "errors": ["JSON parse error"]})


# --- time -------------------------------------------------------------------------------------------

def test_in_process_enqueue_with_delayed_visibility(sandbox):
    now = sandbox.server.clock.now()
    body = sandbox.backend.enqueue(_event(), visible_at=now + 300)
    assert body == {"status": "success", "message": "Event processed", "dedup_key": "PAYMENTS-API-3F"}
    sandbox.advance(299)
    assert sandbox.incidents() == [] and sandbox.backend.incidents == []
    sandbox.advance(1)
    incident = sandbox.only_incident()
    assert incident["created_at"] == iso(now + 300)
    assert sandbox.backend.events[0].via == "in-process"
    # The since filter sees creation time, not the time the event was sent.
    assert sandbox.rest.get("/incidents", params={"since": iso(now + 301)}).json()["incidents"] == []
    assert len(sandbox.rest.get("/incidents", params={"since": iso(now + 299)}).json()["incidents"]) == 1


# --- lists: pagination and filters ------------------------------------------------------------------

@with_knobs(delivery_delay=0, page_limit=3)
def test_offset_pagination(sandbox):
    for n in range(7):
        sandbox.enqueue(_event(dedup_key=f"K{n}", summary=f"incident {n}"))
        sandbox.advance(1)  # one a second: "newest" is then well defined
    seen, offset, pages = [], 0, 0
    while True:
        page = sandbox.rest.get("/incidents", params={"offset": offset, "limit": 100, "total": "true"}).json()
        assert page["limit"] == 3 and page["offset"] == offset and page["total"] == 7
        seen += [i["title"] for i in page["incidents"]]
        pages += 1
        if not page["more"]:
            break
        offset += len(page["incidents"])
    assert seen == [f"incident {n}" for n in range(7)] and pages == 3
    assert sandbox.rest.get("/incidents").json()["total"] is None
    too_far = sandbox.rest.get("/incidents", params={"offset": 9999, "limit": 3})
    assert too_far.status_code == 400 and too_far.json()["error"]["code"] == 2001
    newest = sandbox.rest.get("/incidents", params={"sort_by": "created_at:desc", "limit": 1}).json()
    assert newest["incidents"][0]["incident_number"] == 7 and newest["more"] is True


@with_knobs(delivery_delay=0)
def test_incident_filters(sandbox):
    sandbox.enqueue(_event(dedup_key="HIGH", severity="critical"))
    sandbox.enqueue(_event(dedup_key="LOW", severity="info"))
    sandbox.enqueue(_event(dedup_key="WEB", routing_key="0badc0de0badc0de0badc0de0badc0de"))

    def titles_keys(**params):
        return sorted(i["incident_key"] for i in sandbox.incidents(**params))

    assert titles_keys(**{"urgencies[]": "low"}) == ["LOW"]
    assert titles_keys(**{"service_ids[]": SERVICE_ID}) == ["HIGH", "LOW"]
    assert titles_keys(incident_key="WEB") == ["WEB"]
    assert titles_keys(**{"user_ids[]": SECONDARY}) == ["WEB"]
    # Array filters count only in their bracketed form, as on the real API.
    assert len(sandbox.incidents(service_ids=SERVICE_ID)) == 3
    bad = sandbox.rest.get("/incidents", params={"statuses[]": "open"})
    assert (bad.status_code, bad.json()) == (400, {"error": {
        "message": "Invalid Input Provided", "code": 2001,
        "errors": ["Status must be a list of triggered, acknowledged, or resolved."]}})
    assert sandbox.rest.get("/incidents", params={"since": "yesterday"}).status_code == 400


def test_default_window_is_the_last_month(sandbox):
    sandbox.backend.enqueue(_event(), visible_at=sandbox.server.clock.now())
    sandbox.advance(31 * 86400)
    assert sandbox.rest.get("/incidents").json()["incidents"] == []
    assert len(sandbox.incidents()) == 1  # date_range=all


def test_oncalls_services_policies_users(sandbox):
    oncalls = sandbox.rest.get("/oncalls", params={"escalation_policy_ids[]": "PEPPAYM"}).json()["oncalls"]
    assert [(o["escalation_level"], o["user"]["id"]) for o in oncalls] == [(1, ONCALL), (2, SECONDARY)]
    primary, secondary = oncalls
    assert primary["schedule"]["id"] == "PSCHPAY"
    assert primary["start"] < iso(sandbox.server.clock.now()) < primary["end"]
    assert (secondary["schedule"], secondary["start"], secondary["end"]) == (None, None, None)

    services = sandbox.rest.get("/services", params={"include[]": "integrations"}).json()["services"]
    payments = next(s for s in services if s["id"] == SERVICE_ID)
    assert payments["status"] == "active" and payments["last_incident_timestamp"] is None
    assert payments["integrations"][0]["integration_key"] == ROUTING_KEY
    integration = sandbox.rest.get(f"/services/{SERVICE_ID}/integrations/PINTSEN").json()["integration"]
    assert integration["integration_key"] == ROUTING_KEY

    policy = sandbox.rest.get("/escalation_policies/PEPPAYM").json()["escalation_policy"]
    assert [t["id"] for r in policy["escalation_rules"] for t in r["targets"]] == ["PSCHPAY", SECONDARY]
    assert [s["id"] for s in policy["services"]] == [SERVICE_ID]
    users = sandbox.rest.get("/users", params={"query": "paymon-bot"}).json()["users"]
    assert [u["id"] for u in users] == [BOT]


@with_knobs(delivery_delay=0)
def test_self_links_point_at_the_sandbox_and_can_be_followed(sandbox):
    sandbox.enqueue(_event())
    incident = sandbox.only_incident()
    assert incident["self"] == f"{sandbox.base}/incidents/{incident['id']}"
    followed = sandbox.rest.get(incident["service"]["self"])
    assert followed.status_code == 200 and followed.json()["service"]["name"] == "TowerOfBabel Payments"
    assert sandbox.rest.get(incident["self"]).json()["incident"]["id"] == incident["id"]


# --- auth, errors, rate limits, failures ------------------------------------------------------------

@pytest.mark.parametrize("authorization", [None, "Bearer sandbox-pagerduty-token", "Token token=wrong",
                                           "Token sandbox-pagerduty-token"])
def test_bad_credentials_are_401(sandbox, authorization):
    headers = {"Accept": ACCEPT}
    if authorization:
        headers["Authorization"] = authorization
    response = httpx.get(f"{sandbox.base}/incidents", headers=headers)
    assert (response.status_code, response.json()) == (401, AUTH_FAILED)


def test_unknown_objects_and_paths_are_404(sandbox):
    not_found = {"error": {"message": "Not Found", "code": 2100}}
    for path in ("/incidents/QNOTHERE", "/services/PNOPE", "/services/TowerOfBabel Payments", "/teams"):
        response = sandbox.rest.get(path)
        assert (response.status_code, response.json()) == (404, not_found), path


@with_knobs(rate_limit={"limit": 3, "window": 60})
def test_rest_rate_limit_is_a_429_with_retry_after(sandbox):
    statuses = [sandbox.rest.get("/services").status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = sandbox.rest.get("/services")
    assert limited.json() == {"error": {"message": "Rate Limit Exceeded", "code": 2020}}
    assert 1 <= int(limited.headers["Retry-After"]) <= 60 and limited.headers["ratelimit-remaining"] == "0"
    assert limited.headers["ratelimit-limit"] == "3"
    sandbox.advance(60)
    recovered = sandbox.rest.get("/services")
    assert recovered.status_code == 200 and recovered.headers["ratelimit-remaining"] == "2"


@with_knobs(events_rate_limit={"limit": 2, "window": 60})
def test_events_rate_limit_per_routing_key(sandbox):
    assert [sandbox.enqueue(_event(dedup_key=f"E{n}")).status_code for n in range(3)] == [202, 202, 429]
    limited = sandbox.enqueue(_event())
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    with pytest.raises(EventThrottled):
        sandbox.backend.enqueue(_event())
    other_key = _event(routing_key="0badc0de0badc0de0badc0de0badc0de")
    assert sandbox.enqueue(other_key).status_code == 202
    sandbox.advance(60)
    assert sandbox.enqueue(_event()).status_code == 202


@with_knobs(fail=[{"path": "/incidents$", "status": 503, "times": 2},
                  {"path": "/v2/enqueue", "status": 429, "times": 1}])
def test_injected_failures(sandbox):
    assert [sandbox.rest.get("/incidents").status_code for _ in range(3)] == [503, 503, 200]
    throttled = sandbox.enqueue(_event())
    assert throttled.status_code == 429 and throttled.headers["Retry-After"]
    assert sandbox.enqueue(_event()).status_code == 202
    sandbox.backend.inject_failure(500, path="/v2/enqueue")
    with pytest.raises(EventsUnavailable):
        sandbox.backend.enqueue(_event())
    assert sandbox.backend.request_count(r"/incidents$", method="GET", status=503) == 2
    sandbox.backend.reset()
    assert sandbox.backend.requests == [] and sandbox.backend.events == []


# --- people and grouping (issue 12 item 2, issue 13 item 7) ------------------------------------------

def test_notification_rules_default_to_high_urgency(sandbox):
    """verified-2026-12 §12: without `urgency` only the high-urgency rules come back."""
    def rules(**params):
        response = sandbox.rest.get(f"/users/{ONCALL}/notification_rules", params=params)
        assert response.status_code == 200, response.text
        return response.json()["notification_rules"]

    assert {r["urgency"] for r in rules()} == {"high"} and len(rules()) == 2
    assert {r["urgency"] for r in rules(urgency="all")} == {"high", "low"}
    low = rules(urgency="low", **{"include[]": "contact_methods"})
    assert [(r["contact_method"]["type"], r["contact_method"]["address"]) for r in low] == [
        ("email_contact_method_reference", "ada.okonkwo@towerofbabel.example")]
    assert sandbox.rest.get(f"/users/{BOT}/notification_rules").json() == {"notification_rules": []}
    assert sandbox.rest.get(f"/users/{ONCALL}/notification_rules", params={"urgency": "urgent"}).status_code == 400


def test_the_on_call_person_acknowledges_a_page_after_the_knob_delay(sandbox):
    sandbox.enqueue(_event(severity="critical"))
    sandbox.advance(2 + 3)  # delivery_delay, notify_delay
    incident = sandbox.only_incident()
    assert incident["status"] == "triggered"
    sandbox.advance(89)
    assert sandbox.only_incident()["status"] == "triggered"
    sandbox.advance(1)
    incident = sandbox.only_incident()
    assert incident["status"] == "acknowledged"
    assert [a["acknowledger"]["id"] for a in incident["acknowledgements"]] == [ONCALL]
    ack = next(e for e in sandbox.log_entries(incident["id"]) if e["type"] == "acknowledge_log_entry")
    assert ack["agent"]["id"] == ONCALL and ack["channel"]["type"] in ("mobile", "sms")
    assert ack["created_at"] == iso(sandbox.server.clock.now())


def test_nobody_acknowledges_low_urgency_or_a_resolved_incident(sandbox):
    sandbox.enqueue(_event(severity="warning", dedup_key="LOW"))
    sandbox.enqueue(_event(severity="critical", dedup_key="HIGH"))
    sandbox.advance(5)
    high = next(i for i in sandbox.incidents() if i["incident_key"] == "HIGH")
    assert sandbox.rest.put(f"/incidents/{high['id']}", json=RESOLVE, headers={"From": BOT_EMAIL}).status_code == 200
    sandbox.advance(600)
    assert {i["incident_key"]: i["status"] for i in sandbox.incidents()} == {"LOW": "triggered", "HIGH": "resolved"}
    assert sandbox.backend.acknowledgements_due == []


@with_knobs(acknowledge_after=None)
def test_knob_nobody_acknowledges(sandbox):
    sandbox.enqueue(_event(severity="critical"))
    sandbox.advance(3600)
    assert sandbox.only_incident()["status"] == "triggered"


def _grouping(sandbox, parameters: dict) -> None:
    sandbox.backend.get_service(SERVICE_ID)["alert_grouping_parameters"] = parameters


def test_no_grouping_by_default_each_alert_its_own_incident(sandbox):
    sandbox.enqueue(_event(summary="Real page", dedup_key="REAL"))
    sandbox.advance(2)
    sandbox.enqueue(_event(summary="PAYMON-TEST-X synthetic", dedup_key="PAYMON"))
    sandbox.advance(2)
    assert sorted(i["title"] for i in sandbox.incidents()) == ["PAYMON-TEST-X synthetic", "Real page"]


def test_time_grouping_merges_into_the_open_incident_which_keeps_its_title(sandbox):
    _grouping(sandbox, {"type": "time", "config": {"timeout": 10}})
    sandbox.enqueue(_event(summary="Real page", dedup_key="REAL"))
    sandbox.advance(60)
    sandbox.enqueue(_event(summary="PAYMON-TEST-X synthetic", dedup_key="PAYMON", severity="warning"))
    sandbox.advance(2)
    incident = sandbox.only_incident()
    assert incident["title"] == "Real page" and incident["alert_counts"]["all"] == 2
    alerts = sandbox.rest.get(f"/incidents/{incident['id']}/alerts", params={"alert_key": "PAYMON"}).json()["alerts"]
    assert [a["summary"] for a in alerts] == ["PAYMON-TEST-X synthetic"]
    assert alerts[0]["integration"]["id"] == "PINTSEN"
    # Past the timeout a new incident opens; a resolved incident never grows.
    sandbox.advance(600)
    sandbox.enqueue(_event(summary="later", dedup_key="LATER"))
    sandbox.advance(2)
    assert len(sandbox.incidents()) == 2


def test_resolving_paymons_alert_leaves_the_grouped_real_incident_open(sandbox):
    _grouping(sandbox, {"type": "time", "config": {"timeout": 0}})
    sandbox.enqueue(_event(summary="Real page", dedup_key="REAL"))
    sandbox.advance(2)
    sandbox.enqueue(_event(summary="PAYMON-TEST-X synthetic", dedup_key="PAYMON"))
    sandbox.advance(2)
    incident = sandbox.only_incident()
    ours = sandbox.rest.get(f"/incidents/{incident['id']}/alerts", params={"alert_key": "PAYMON"}).json()["alerts"][0]
    body = {"alert": {"type": "alert", "status": "resolved"}}
    response = sandbox.rest.put(f"/incidents/{incident['id']}/alerts/{ours['id']}", json=body,
                                headers={"From": BOT_EMAIL})
    assert response.status_code == 200 and response.json()["alert"]["status"] == "resolved"
    assert sandbox.only_incident()["status"] != "resolved"


def test_content_based_grouping_compares_the_declared_fields(sandbox):
    _grouping(sandbox, {"type": "content_based", "config": {"aggregate": "all", "fields": ["source"],
                                                             "time_window": 300}})
    sandbox.enqueue(_event(summary="Real page", dedup_key="REAL"))
    sandbox.advance(2)
    sandbox.enqueue(_event(summary="same source", dedup_key="SAME"))
    other = _event(summary="other source", dedup_key="OTHER")
    other["payload"]["source"] = "paymon"
    sandbox.enqueue(other)
    sandbox.advance(2)
    assert sorted(i["alert_counts"]["all"] for i in sandbox.incidents()) == [1, 2]


def test_intelligent_grouping_is_emulated_at_its_most_eager(sandbox):
    _grouping(sandbox, {"type": "intelligent", "config": {"time_window": 300}})
    sandbox.enqueue(_event(summary="Real page", dedup_key="REAL"))
    sandbox.advance(100)
    sandbox.enqueue(_event(summary="unrelated", dedup_key="UNRELATED"))
    sandbox.advance(2)
    assert sandbox.only_incident()["alert_counts"]["all"] == 2


def test_a_notification_not_yet_sent_is_cancelled_by_resolving(sandbox):
    sandbox.enqueue(_event(severity="critical"))
    sandbox.advance(2)  # the incident opens; the page is 3 s away (notify_delay)
    incident = sandbox.only_incident()
    assert sandbox.rest.put(f"/incidents/{incident['id']}", json=RESOLVE, headers={"From": BOT_EMAIL}).status_code == 200
    sandbox.advance(60)
    assert "notify_log_entry" not in {e["type"] for e in sandbox.log_entries(incident["id"])}
