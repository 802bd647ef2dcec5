"""The sandbox's PagerDuty answers validate against PagerDuty's published OpenAPI specs.

A scenario (triggers of every severity, a deduplicated trigger, an event-acknowledged incident, a
REST-acknowledged, a REST-resolved and a bulk-resolved one, a maintenance window) is played over
real HTTP; then every REST endpoint is called, with its `include[]` variants, every page of every
list walked (page_limit 2), and each body validated against the operation's 200 schema of
`pagerduty-rest-openapi-2026-08.json`, error bodies against the spec's error responses, and Events
API answers against `pagerduty-events-v2-openapi-2026-08.json`.

The REST spec is 2.7 MB: it is read once per module, corrected with paymon's overlay (places where
the published schema contradicts the real API), and only the components the validated schemas reach
are converted from OpenAPI 3.0 to JSON Schema.

The specs and the overlay are part of the repository, in tests/apis/ (see its README.md). If a spec
is missing these tests fail (never skip): conformance that was not checked must not look green.
"""

from __future__ import annotations

import httpx
import jsonschema
import pytest
from openapi_support import apply_patches, load_spec, missing_specs, to_jsonschema

from paymon.sandbox import server as sandbox_server
from paymon.sandbox.pagerduty import SERVICE, golden_pagerduty_world
from paymon.sandbox.pagerduty.urls import url_paths
from paymon.sandbox.server import SandboxServer

REST_SPEC = "pagerduty-rest-openapi-2026-08.json"
EVENTS_SPEC = "pagerduty-events-v2-openapi-2026-08.json"
ROUTING_KEY = "3f9c1e7a2b6d4c08a5e1f7b9d2c4a6e8"
BOT_EMAIL = "paymon-bot@towerofbabel.example"


def _pointer(*parts: str) -> str:
    return "/" + "/".join(p.replace("~", "~0").replace("/", "~1") for p in parts)


def _resolve(doc, pointer: str):
    node = doc
    for raw in pointer.lstrip("/").split("/"):
        key = raw.replace("~1", "/").replace("~0", "~")
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


apply_overlay = apply_patches


class SpecBook:
    """One spec, corrected; validators per schema pointer, built from only the components reached."""

    def __init__(self, spec: dict):
        self.spec = spec
        self._validators: dict[str, jsonschema.Draft4Validator] = {}

    def _reached_components(self, schema) -> dict:
        """components/<section>/<name> entries reachable from `schema` through `$ref`s, converted."""
        components: dict = {}
        pending = [schema]
        while pending:
            node = pending.pop()
            if isinstance(node, list):
                pending.extend(node)
            elif isinstance(node, dict):
                ref = node.get("$ref")
                if isinstance(ref, str) and ref.startswith("#/components/"):
                    section, name = ref[len("#/components/"):].split("/")[:2]
                    name = name.replace("~1", "/").replace("~0", "~")
                    if name not in components.setdefault(section, {}):
                        components[section][name] = self.spec["components"][section][name]
                        pending.append(components[section][name])
                pending.extend(node.values())
        return {section: {name: to_jsonschema(value) for name, value in entries.items()}
                for section, entries in components.items()}

    def errors(self, pointer: str, instance) -> list[str]:
        if pointer not in self._validators:
            schema = _resolve(self.spec, pointer)
            # Draft 4: a root $ref replaces its siblings, which stay resolvable by pointer.
            root = {"components": self._reached_components(schema), "target": to_jsonschema(schema),
                    "$ref": "#/target"}
            self._validators[pointer] = jsonschema.Draft4Validator(root)
        found = sorted(self._validators[pointer].iter_errors(instance), key=lambda e: list(e.absolute_path))
        return [f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message[:200]}" for e in found]


def response_schema(path: str, method: str = "get", status: str = "200") -> str:
    return _pointer("paths", path, method, "responses", status, "content", "application/json", "schema")


ERROR_SCHEMA = {400: "ArgumentError", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 429: "TooManyRequests"}


@pytest.fixture(scope="module")
def specs():
    """Both specs, loaded once; a string (the reason) when a spec is missing, so tests fail."""
    missing = missing_specs(REST_SPEC, EVENTS_SPEC)
    if missing:
        return missing
    return SpecBook(load_spec(REST_SPEC)), SpecBook(load_spec(EVENTS_SPEC, overlay=False))


def _require(specs) -> tuple[SpecBook, SpecBook]:
    if isinstance(specs, str):
        pytest.fail(specs, pytrace=False)
    return specs


# --- the scenario ------------------------------------------------------------------------------------

def _event(dedup_key: str, severity: str = "error", action: str = "trigger") -> dict:
    event = {"routing_key": ROUTING_KEY, "event_action": action, "dedup_key": dedup_key}
    if action == "trigger":
        event.update(payload={"summary": f"PAYMON-TEST {dedup_key}", "severity": severity, "source": "checkout",
                              "component": "payments-api", "custom_details": {"eventID": dedup_key.lower()}},
                     client="sentry", client_url="https://sentry.example/issues/1/",
                     links=[{"href": "https://sentry.example/issues/1/", "text": "View Sentry Issue Details"}])
    return event


@pytest.fixture(scope="module")
def played():
    """A sandbox after the scenario: (server, REST client, Events answers [(status, body, request)])."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setitem(sandbox_server.SERVICES, "pagerduty", SERVICE)
        part = golden_pagerduty_world()
        part["knobs"].update(page_limit=2, delivery_delay=0, notify_delay=0)
        # A service that groups alerts (verified §13): its settings render as the spec's Service says.
        next(x for x in part["services"] if x["id"] == "PTOWWEB")["alert_grouping_parameters"] = {
            "type": "content_based", "config": {"aggregate": "all", "fields": ["source"], "time_window": 300}}
        with SandboxServer({"pagerduty": part}) as server:
            base = f"{server.base_url}/pagerduty"
            rest = httpx.Client(base_url=base, timeout=10, headers={
                "Authorization": "Token token=sandbox-pagerduty-token",
                "Accept": "application/vnd.pagerduty+json;version=2", "From": BOT_EMAIL})
            answers = []

            def send(event):
                response = httpx.post(f"{base}/v2/enqueue", json=event, timeout=10)
                answers.append((response.status_code, response.json(), event))

            for n, severity in enumerate(("critical", "error", "warning", "info", "error", "error")):
                send(_event(f"KEY-{n}", severity))
            send(_event("KEY-0", "critical"))               # deduplicated
            send(_event("KEY-1", action="acknowledge"))
            send(_event("NOT-OPEN", action="resolve"))
            send({**_event("BAD"), "payload": {"severity": "error"}})  # 400
            server.clock.advance(1)
            incidents = _all(rest, "/incidents", "incidents")
            assert len(incidents) == 6, incidents
            rest.put(f"/incidents/{incidents[2]['id']}",
                     json={"incident": {"type": "incident_reference", "status": "acknowledged"}}).raise_for_status()
            rest.put(f"/incidents/{incidents[3]['id']}",
                     json={"incident": {"type": "incident_reference", "status": "resolved",
                                        "resolution": "paymon cleanup"}}).raise_for_status()
            server.backend("pagerduty").start_maintenance("PTOWWEB", duration=3600)
            yield server, rest, answers
            rest.close()


def _walk(client: httpx.Client, path: str, key: str, params: dict | None = None) -> list[httpx.Response]:
    pages, offset = [], 0
    while True:
        response = client.get(path, params={**(params or {}), "offset": offset})
        pages.append(response)
        if response.status_code != 200 or not response.json().get("more"):
            return pages
        offset += len(response.json()[key])
        assert len(pages) < 50, "pagination does not end"


def _all(client: httpx.Client, path: str, key: str) -> list[dict]:
    return [item for page in _walk(client, path, key) for item in page.json()[key]]


def _calls(server: SandboxServer, rest: httpx.Client) -> list[tuple[str, str, str | None, dict]]:
    """(spec path, concrete path, list key or None, params) for every REST GET."""
    incidents = _all(rest, "/incidents", "incidents")
    calls = [("/incidents", "/incidents", "incidents", {}),
             ("/incidents", "/incidents", "incidents",
              {"include[]": ["services", "escalation_policies", "first_trigger_log_entries", "assignees"],
               "total": "true", "statuses[]": ["triggered", "acknowledged", "resolved"]}),
             ("/services", "/services", "services", {}),
             ("/services", "/services", "services", {"include[]": "integrations"}),
             ("/escalation_policies", "/escalation_policies", "escalation_policies", {}),
             ("/oncalls", "/oncalls", "oncalls", {}),
             ("/users", "/users", "users", {}),
             ("/maintenance_windows", "/maintenance_windows", "maintenance_windows", {})]
    for incident in incidents:
        iid = incident["id"]
        calls += [("/incidents/{id}", f"/incidents/{iid}", None, {}),
                  ("/incidents/{id}", f"/incidents/{iid}", None, {"include[]": ["services", "assignees"]}),
                  ("/incidents/{id}/log_entries", f"/incidents/{iid}/log_entries", "log_entries", {}),
                  ("/incidents/{id}/alerts", f"/incidents/{iid}/alerts", "alerts", {})]
    backend = server.backend("pagerduty")
    for service in backend.services:
        calls.append(("/services/{id}", f"/services/{service['id']}", None, {}))
        for integration in service["integrations"]:
            calls.append(("/services/{id}/integrations/{integration_id}",
                          f"/services/{service['id']}/integrations/{integration['id']}", None, {}))
    calls += [("/escalation_policies/{id}", f"/escalation_policies/{p['id']}", None, {})
              for p in backend.escalation_policies]
    calls += [("/users/{id}", f"/users/{u['id']}", None, {}) for u in backend.users]
    for user in backend.users:
        for params in ({}, {"urgency": "all"}, {"urgency": "low", "include[]": "contact_methods"}):
            calls.append(("/users/{id}/notification_rules", f"/users/{user['id']}/notification_rules", None, params))
    calls += [("/maintenance_windows/{id}", f"/maintenance_windows/{w['id']}", None, {})
              for w in backend.maintenance_windows]
    return calls


def test_every_rest_get_matches_the_spec(played, specs):
    rest_book, _events_book = _require(specs)
    server, rest, _answers = played
    problems, validated = [], 0
    for spec_path, path, key, params in _calls(server, rest):
        responses = _walk(rest, path, key, params) if key else [rest.get(path, params=params)]
        for response in responses:
            if response.status_code != 200:
                problems.append(f"GET {path} {params}: status {response.status_code} {response.text[:120]}")
                continue
            validated += 1
            problems += [f"GET {path} {params}: {e}"
                         for e in rest_book.errors(response_schema(spec_path), response.json())[:5]]
    assert not problems, f"{len(problems)} conformance problems:\n" + "\n".join(problems)
    assert validated >= 50


def test_log_entries_cover_paging_and_every_status_change(played):
    """The scenario really produced what the validation above covered."""
    server, rest, _answers = played
    types = set()
    for incident in _all(rest, "/incidents", "incidents"):
        for page in _walk(rest, f"/incidents/{incident['id']}/log_entries", "log_entries"):
            types |= {e["type"] for e in page.json()["log_entries"]}
    assert types == {"trigger_log_entry", "assign_log_entry", "notify_log_entry", "acknowledge_log_entry",
                     "resolve_log_entry"}


def test_writes_match_the_spec(played, specs):
    rest_book, _events_book = _require(specs)
    server, rest, _answers = played
    server.backend("pagerduty").enqueue(_event("WRITE-1"), visible_at=server.clock.now())
    server.backend("pagerduty").enqueue(_event("WRITE-2"), visible_at=server.clock.now())
    new = [i for i in _all(rest, "/incidents", "incidents") if i["incident_key"].startswith("WRITE-")]
    single = {"incident": {"type": "incident_reference", "status": "resolved", "resolution": "paymon cleanup"}}
    bulk = {"incidents": [{"id": new[1]["id"], "type": "incident_reference", "status": "resolved"}]}
    problems = rest_book.errors(_pointer("paths", "/incidents/{id}", "put", "requestBody", "content",
                                         "application/json", "schema"), single)
    problems += rest_book.errors(_pointer("paths", "/incidents", "put", "requestBody", "content",
                                          "application/json", "schema"), bulk)
    one = rest.put(f"/incidents/{new[0]['id']}", json=single)
    many = rest.put("/incidents", json=bulk)
    assert (one.status_code, many.status_code) == (200, 200)
    problems += rest_book.errors(response_schema("/incidents/{id}", "put"), one.json())
    problems += rest_book.errors(response_schema("/incidents", "put"), many.json())
    # One alert resolved on its own (paymon's, grouped into an incident it did not open).
    server.backend("pagerduty").enqueue(_event("WRITE-3"), visible_at=server.clock.now())
    third = next(i for i in _all(rest, "/incidents", "incidents") if i["incident_key"] == "WRITE-3")
    alert = rest.get(f"/incidents/{third['id']}/alerts").json()["alerts"][0]
    body = {"alert": {"type": "alert", "status": "resolved", "incident": {"id": third["id"], "type": "incident_reference"}}}
    problems += rest_book.errors(_pointer("paths", "/incidents/{id}/alerts/{alert_id}", "put", "requestBody", "content",
                                          "application/json", "schema"), body)
    resolved = rest.put(f"/incidents/{third['id']}/alerts/{alert['id']}", json=body)
    assert resolved.status_code == 200 and resolved.json()["alert"]["status"] == "resolved", resolved.text
    problems += rest_book.errors(response_schema("/incidents/{id}/alerts/{alert_id}", "put"), resolved.json())
    assert rest.get(f"/incidents/{third['id']}").json()["incident"]["status"] == "resolved"
    assert not problems, "\n".join(problems)


def test_error_bodies_match_the_spec(played, specs):
    rest_book, _events_book = _require(specs)
    server, rest, _answers = played
    incident_id = rest.get("/incidents", params={"limit": 1}).json()["incidents"][0]["id"]
    unauthenticated = httpx.Client(base_url=rest.base_url, timeout=10)
    cases = [
        (400, rest.get("/incidents", params={"statuses[]": "open"})),
        (400, rest.put(f"/incidents/{incident_id}", headers={"From": ""},
                       json={"incident": {"type": "incident_reference", "status": "resolved"}})),
        (401, unauthenticated.get("/incidents")),
        (403, rest.put(f"/incidents/{incident_id}",
                       headers={"Authorization": "Token token=sandbox-pagerduty-read-token"},
                       json={"incident": {"type": "incident_reference", "status": "resolved"}})),
        (404, rest.get("/incidents/QNOTHERE")),
    ]
    backend = server.backend("pagerduty")
    backend.inject_failure(429, path="/services$", times=1)
    cases.append((429, rest.get("/services")))
    unauthenticated.close()
    problems = []
    for status, response in cases:
        assert response.status_code == status, (status, response.text)
        pointer = _pointer("components", "responses", ERROR_SCHEMA[status], "content", "application/json", "schema")
        problems += [f"{status}: {e}" for e in rest_book.errors(pointer, response.json())]
        assert set(response.json()) == {"error"} and isinstance(response.json()["error"]["code"], int)
    assert not problems, "\n".join(problems)


def test_events_answers_match_the_events_spec(played, specs):
    _rest_book, events_book = _require(specs)
    _server, _rest, answers = played
    request = _pointer("paths", "/enqueue", "post", "requestBody", "content", "application/json", "schema")
    success = _pointer("components", "responses", "Success", "content", "application/json", "schema")
    # The spec documents 400/429 without a schema; `Error` (used for 5XX) is the shape they have.
    error = _pointer("components", "responses", "Error", "content", "application/json", "schema")
    problems, statuses = [], set()
    for status, body, event in answers:
        statuses.add(status)
        if status == 202:
            problems += [f"request {event.get('dedup_key')}: {e}" for e in events_book.errors(request, event)]
            problems += [f"202: {e}" for e in events_book.errors(success, body)]
            assert body["status"] == "success" and body["message"] == "Event processed" and body["dedup_key"]
        else:
            problems += [f"{status}: {e}" for e in events_book.errors(error, body)]
    assert statuses == {202, 400}
    assert not problems, "\n".join(problems)


def test_every_route_is_covered_by_conformance(played):
    server, rest, _answers = played
    covered = {spec_path for spec_path, *_ in _calls(server, rest)}
    covered |= {"/v2/enqueue"}  # validated by test_events_answers_match_the_events_spec
    gets = {e.path for e in url_paths if e.method == "GET"}
    assert gets <= covered, gets - covered
    puts = {e.path for e in url_paths if e.method == "PUT"}
    # validated by test_writes_match_the_spec
    assert puts == {"/incidents", "/incidents/{id}", "/incidents/{id}/alerts/{alert_id}"}


def test_validation_is_not_vacuous(played, specs):
    """The corrected spec still rejects what the real API never sends."""
    rest_book, _events_book = _require(specs)
    _server, rest, _answers = played
    body = rest.get("/incidents", params={"limit": 1}).json()
    body["incidents"][0]["status"] = "open"
    body["incidents"][0]["urgency"] = "urgent"
    errors = rest_book.errors(response_schema("/incidents"), body)
    assert any("'open' is not one of" in e for e in errors) and any("'urgent'" in e for e in errors), errors
    entries = rest.get(f"/incidents/{body['incidents'][0]['id']}/log_entries").json()
    entries["log_entries"][0]["type"] = "page_log_entry"
    assert rest_book.errors(response_schema("/incidents/{id}/log_entries"), entries)


def test_overlay_ops():
    doc = {"a": {"b": 1}, "c": {"d": 2}}
    apply_overlay(doc, [{"op": "add", "path": "/a/e", "value": 3}, {"op": "replace", "path": "/c/d", "value": 4},
                        {"op": "move", "from": "/c/d", "path": "/a/f"}, {"op": "remove", "path": "/a/b"}])
    assert doc == {"a": {"e": 3, "f": 4}, "c": {}}
    with pytest.raises(KeyError):
        apply_overlay(doc, [{"op": "replace", "path": "/a/zz", "value": 1}])
