"""The sandbox's Sentry answers validate against Sentry's published OpenAPI specs.

Every endpoint is called over real HTTP (a running SandboxServer, httpx) in each golden world
generation, every page of every list is walked, and each 200 body is validated against the
endpoint's inline response schema of the 2026-08 spec and, where the endpoint exists there too, the
2026-05 spec (the only one with the legacy `rules`/`alert-rules`). Both specs are first corrected
with paymon's overlays (places where the published schema disagrees with what the server returns).

The specs and overlays are part of the repository, in tests/apis/ (see its README.md). If a spec is
missing these tests fail (never skip): conformance that was not checked must not look green.
"""

from __future__ import annotations

import re

import httpx
from openapi_support import apply_patches, load_spec, missing_specs, to_jsonschema
import jsonschema
import pytest

from paymon.sandbox.server import SandboxServer
from paymon.sandbox.sentry.urls import url_paths
from paymon.sandbox.world import golden_world

SPEC_08 = "sentry-openapi-2026-08.json"
SPEC_05 = "sentry-openapi-2026-05-with-deprecated-alerts.json"
O = "/api/0/organizations/{organization_id_or_slug}"
P = "/api/0/projects/{organization_id_or_slug}/{project_id_or_slug}"
GENERATIONS = ["legacy", "workflow", "both"]

# The prebuilt "General" dashboard is a Python dict the list endpoint passes through unserialised
# (`createdBy: ""`, no environment/filters/lastVisited/prebuiltId), so it cannot match the list
# schema; its shape is asserted separately in test_prebuilt_dashboard_is_served_as_the_server_does.
PREBUILT_DASHBOARD_ID = "default-overview"


# --- preparing the specs -------------------------------------------------------------------------

class SpecBook:
    """Both specs, corrected, with validators built lazily per (spec, path)."""

    def __init__(self):
        self.specs = {name: load_spec(name) for name in (SPEC_08, SPEC_05)}
        self._validators: dict[tuple[str, str], jsonschema.Draft7Validator] = {}

    def has(self, spec_name: str, path: str) -> bool:
        return "get" in self.specs[spec_name]["paths"].get(path, {})

    def errors(self, spec_name: str, path: str, body) -> list[str]:
        key = (spec_name, path)
        if key not in self._validators:
            schema = self.specs[spec_name]["paths"][path]["get"]["responses"]["200"]["content"][
                "application/json"]["schema"]
            self._validators[key] = jsonschema.Draft7Validator(to_jsonschema(schema))
        found = sorted(self._validators[key].iter_errors(body), key=lambda e: list(e.path))
        return [f"{'/'.join(map(str, e.path)) or '<root>'}: {e.message[:200]}" for e in found]


@pytest.fixture(scope="module")
def spec_book():
    """Loaded once per module; a string (the reason) when a spec is missing, so tests fail."""
    return missing_specs(SPEC_08, SPEC_05) or SpecBook()


def _require(spec_book) -> SpecBook:
    if isinstance(spec_book, str):
        pytest.fail(spec_book, pytrace=False)
    return spec_book


# --- the calls -----------------------------------------------------------------------------------

@pytest.fixture(scope="module", params=GENERATIONS)
def served(request):
    world = golden_world(request.param)
    world["sentry"]["knobs"]["page_size"] = 3  # every page of every list gets validated
    with SandboxServer(world) as server:
        with httpx.Client(base_url=server.base_url, timeout=10,
                          headers={"Authorization": f"Bearer {server.sentry_token}"}) as client:
            yield request.param, server, client


def _walk(client: httpx.Client, url: str) -> list[httpx.Response]:
    pages = [client.get(url)]
    while pages[-1].status_code == 200:
        match = re.search(r'<([^>]+)>; rel="next"; results="true"', pages[-1].headers["link"])
        if not match:
            break
        pages.append(client.get(match.group(1)))
        assert len(pages) < 50, "pagination does not end"
    return pages


def _calls(server: SandboxServer, client: httpx.Client) -> list[tuple[str, str, bool]]:
    """(spec path, concrete URL, paginated) for every endpoint, objects taken from the lists."""
    org, project = server.org, server.project
    o, p = f"/api/0/organizations/{org}", f"/api/0/projects/{org}/{project}"
    calls = [(f"{O}/projects/", f"{o}/projects/", True), (f"{O}/members/", f"{o}/members/", True),
             (f"{O}/teams/", f"{o}/teams/", True)]

    def list_and_details(spec_list, url_list, spec_detail, detail_url, key="id", exclude=()):
        calls.append((spec_list, url_list, True))
        for response in _walk(client, url_list):
            if response.status_code != 200:
                return
            for item in response.json():
                if str(item[key]) not in exclude:
                    calls.append((spec_detail, detail_url(item[key]), False))

    list_and_details(f"{P}/rules/", f"{p}/rules/", f"{P}/rules/{{rule_id}}/", lambda i: f"{p}/rules/{i}/")
    list_and_details(f"{O}/alert-rules/", f"{o}/alert-rules/", f"{O}/alert-rules/{{alert_rule_id}}/",
                     lambda i: f"{o}/alert-rules/{i}/")
    list_and_details(f"{O}/detectors/", f"{o}/detectors/", f"{O}/detectors/{{detector_id}}/",
                     lambda i: f"{o}/detectors/{i}/")
    list_and_details(f"{O}/workflows/", f"{o}/workflows/", f"{O}/workflows/{{workflow_id}}/",
                     lambda i: f"{o}/workflows/{i}/")
    list_and_details(f"{O}/dashboards/", f"{o}/dashboards/", f"{O}/dashboards/{{dashboard_id}}/",
                     lambda i: f"{o}/dashboards/{i}/", exclude=(PREBUILT_DASHBOARD_ID,))
    list_and_details(f"{O}/monitors/", f"{o}/monitors/", f"{O}/monitors/{{monitor_id_or_slug}}/",
                     lambda s: f"{o}/monitors/{s}/", key="slug")
    for monitor in server.sentry.monitors:
        slug = monitor["slug"]
        own = f"/api/0/projects/{org}/{monitor['project']['slug']}"  # under the monitor's own project
        calls += [
            (f"{O}/monitors/{{monitor_id_or_slug}}/checkins/", f"{o}/monitors/{slug}/checkins/", True),
            (f"{P}/monitors/{{monitor_id_or_slug}}/", f"{own}/monitors/{slug}/", False),
            (f"{P}/monitors/{{monitor_id_or_slug}}/checkins/", f"{own}/monitors/{slug}/checkins/", True),
        ]
    list_and_details(f"{O}/integrations/", f"{o}/integrations/", f"{O}/integrations/{{integration_id}}/",
                     lambda i: f"{o}/integrations/{i}/")
    calls.append((f"{O}/integrations/", f"{o}/integrations/?providerKey=pagerduty&includeConfig=0", True))
    return calls


LEGACY_PATHS = {f"{P}/rules/", f"{P}/rules/{{rule_id}}/", f"{O}/alert-rules/", f"{O}/alert-rules/{{alert_rule_id}}/"}


def _expected_specs(path: str) -> list[str]:
    # sentry-api.md §0: the legacy alert endpoints are only in the 05 spec, the rest in both.
    return [SPEC_05] if path in LEGACY_PATHS else [SPEC_08, SPEC_05]


def test_every_200_body_matches_the_spec(served, spec_book):
    book = _require(spec_book)
    generation, server, client = served
    problems, validated = [], 0
    for spec_path, url, paginated in _calls(server, client):
        responses = _walk(client, url) if paginated else [client.get(url)]
        legacy_gone = spec_path in LEGACY_PATHS and generation == "workflow"
        for response in responses:
            if legacy_gone:
                assert response.status_code == 404, url
                continue
            if response.status_code != 200:
                problems.append(f"GET {url}: status {response.status_code} {response.text[:120]}")
                continue
            body = response.json()
            if spec_path == f"{O}/dashboards/":
                body = [d for d in body if d["id"] != PREBUILT_DASHBOARD_ID]
            for spec_name in _expected_specs(spec_path):
                if not book.has(spec_name, spec_path):
                    problems.append(f"{spec_name} has no GET {spec_path}")
                    continue
                validated += 1
                problems += [f"GET {url} vs {spec_name}: {e}" for e in book.errors(spec_name, spec_path, body)[:5]]
    assert not problems, f"{len(problems)} conformance problems ({generation}):\n" + "\n".join(problems)
    assert validated >= 30


def test_every_route_is_covered_by_conformance():
    """Across the three golden worlds, every route of urls.py gets called (and so validated)."""
    covered = set()
    for generation in GENERATIONS:
        with SandboxServer(golden_world(generation)) as server, httpx.Client(
                base_url=server.base_url, headers={"Authorization": f"Bearer {server.sentry_token}"}) as client:
            covered |= {spec_path for spec_path, _url, _paginated in _calls(server, client)}
    assert {e.path for e in url_paths} <= covered, {e.path for e in url_paths} - covered


def test_prebuilt_dashboard_is_served_as_the_server_does(served):
    _generation, server, client = served
    first = client.get(f"/api/0/organizations/{server.org}/dashboards/").json()[0]
    assert first["id"] == PREBUILT_DASHBOARD_ID and first["title"] == "General"
    assert first["createdBy"] == "" and first["dateCreated"] == ""
    assert "widgets" not in first and len(first["widgetDisplay"]) == len(first["widgetPreview"]) > 0
    assert all(preview["layout"] is None for preview in first["widgetPreview"])


def test_overlay_ops_add_replace_remove_move():
    doc = {"a": {"b": [1, 2]}, "c": {"d": 1}}
    apply_patches(doc, [
        {"op": "add", "path": "/a/b/1", "value": 9},
        {"op": "add", "path": "/a/b/-", "value": 3},
        {"op": "replace", "path": "/c/d", "value": 2},
        {"op": "move", "from": "/c/d", "path": "/a/e"},
        {"op": "remove", "path": "/a/b/0"},
    ])
    assert doc == {"a": {"b": [9, 2, 3], "e": 2}, "c": {}}
