"""The emulated Sentry API behaves like Sentry: pagination, auth, errors, rate limits, faults.

Driven over real HTTP (SandboxServer + httpx), asserting exact status codes, bodies and headers
from sentry-api.md §1.
"""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

import httpx
import pytest
import yaml

from paymon.errors import ConfigError
from paymon.sandbox.faults import FAULTS, apply_fault
from paymon.sandbox.server import SandboxServer, build_app
from paymon.sandbox.world import GENERATIONS, dump_world, golden_world, load_world

REPO = Path(__file__).resolve().parent.parent
ORG = "towerofbabel"
PROJECT = "towerofbabel-web"
O = f"/api/0/organizations/{ORG}"
P = f"/api/0/projects/{ORG}/{PROJECT}"
RATE_LIMIT_HEADERS = ("X-Sentry-Rate-Limit-Limit", "X-Sentry-Rate-Limit-Remaining", "X-Sentry-Rate-Limit-Reset",
                      "X-Sentry-Rate-Limit-ConcurrentLimit", "X-Sentry-Rate-Limit-ConcurrentRemaining")
NOT_FOUND = {"detail": "The requested resource does not exist"}
LINK = re.compile(
    r'^<(?P<prev_url>[^>]*)>; rel="previous"; results="(?P<prev_results>true|false)"; cursor="(?P<prev_cursor>[^"]+)", '
    r'<(?P<next_url>[^>]*)>; rel="next"; results="(?P<next_results>true|false)"; cursor="(?P<next_cursor>[^"]+)"$'
)


def _world(generation: str = "both", **knobs) -> dict:
    world = golden_world(generation)
    world["sentry"]["knobs"].update(knobs)
    return world


def _client(server: SandboxServer, token: str | None = None) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token or server.sentry_token}"}
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=10)


@pytest.fixture(scope="module")
def both():
    with SandboxServer(_world("both")) as server, _client(server) as client:
        yield server, client


# --- server lifecycle ----------------------------------------------------------------------------

def _mounted(world: dict) -> set[str]:
    """The backends a world mounts: one per service, and with the payment app its Lemon Squeezy
    account's API (paymon/sandbox/lemonsqueezy serves the app's own rows, no world key of its own)."""
    return set(world) | ({"lemonsqueezy"} if "app" in world else set())


def test_server_starts_serves_and_stops_cleanly():
    server = SandboxServer(golden_world("workflow")).start()  # how fast: bench/sandbox_speed.py
    try:
        assert server.base_url == f"http://127.0.0.1:{server.port}"
        info = server.describe()
        assert {k: info[k] for k in ("base_url", "token", "org", "project")} == {
            "base_url": server.base_url, "token": server.sentry_token, "org": ORG, "project": PROJECT}
        assert info["dsn"].endswith(f"@127.0.0.1:{server.port}/{server.sentry.projects[0]['id']}")
        assert server.backend("sentry") is server.sentry and set(server.backends) == _mounted(golden_world("workflow"))
        with _client(server) as client:
            assert client.get(f"{O}/projects/").status_code == 200
    finally:
        server.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", server.port), timeout=0.5)


def test_build_app_mounts_only_services_present():
    world = golden_world("legacy")
    assert set(build_app(world).state.backends) == _mounted(world)
    assert set(build_app({"sentry": world["sentry"]}).state.backends) == {"sentry"}
    assert build_app({}).state.backends == {}


# --- pagination ----------------------------------------------------------------------------------

LIST_PATHS = [f"{O}/projects/", f"{O}/members/", f"{O}/teams/", f"{P}/rules/", f"{O}/alert-rules/",
              f"{O}/detectors/", f"{O}/workflows/", f"{O}/dashboards/", f"{O}/monitors/",
              f"{O}/monitors/reconciliation-daily/checkins/", f"{P}/monitors/reconciliation-daily/checkins/",
              f"{O}/integrations/"]


def _walk(client: httpx.Client, url: str) -> tuple[list, list[dict]]:
    items, links = [], []
    response = client.get(url)
    while True:
        assert response.status_code == 200, response.text
        items += response.json()
        link = LINK.match(response.headers["Link"])
        assert link, response.headers["Link"]
        links.append(link.groupdict())
        if link["next_results"] == "false":
            return items, links
        response = client.get(link["next_url"])
        assert len(links) < 100


@pytest.mark.parametrize("path", LIST_PATHS)
def test_small_page_size_paginates_every_list(path, both):
    _server, full_client = both
    everything = full_client.get(path).json()
    with SandboxServer(_world("both", page_size=2)) as server, _client(server) as client:
        items, links = _walk(client, path)
    assert items == everything
    assert len(links) == max(1, -(-len(everything) // 2))
    assert all(len(page) <= 2 for page in [everything[i:i + 2] for i in range(0, len(everything), 2)])


def test_link_header_format_is_sentrys(both):
    with SandboxServer(_world("workflow", page_size=2)) as server, _client(server) as client:
        first = client.get(f"{O}/detectors/")
        base = f"{server.base_url}{O}/detectors/"
        assert first.headers["Link"] == (
            f'<{base}?&cursor=0:0:1>; rel="previous"; results="false"; cursor="0:0:1", '
            f'<{base}?&cursor=0:2:0>; rel="next"; results="true"; cursor="0:2:0"'
        )
        second = client.get(f"{O}/detectors/", params={"query": "type:metric_issue", "cursor": "0:2:0"})
        assert second.headers["Link"] == (
            f'<{base}?query=type%3Ametric_issue&cursor=0:0:1>; rel="previous"; results="true"; cursor="0:0:1", '
            f'<{base}?query=type%3Ametric_issue&cursor=0:4:0>; rel="next"; results="true"; cursor="0:4:0"'
        )
        items, links = _walk(client, f"{O}/detectors/")
        assert links[-1]["next_results"] == "false" and links[0]["prev_results"] == "false"
        # 12 of towerofbabel-web, 3 each of towerofbabel-staging and growth-site (org-level list)
        assert len(items) == len(server.sentry.detectors) == 18


def test_per_page_and_cursor_are_honoured(both):
    _server, client = both
    page = client.get(f"{O}/detectors/", params={"per_page": 3, "cursor": "0:3:0"})
    all_ids = [d["id"] for d in client.get(f"{O}/detectors/").json()]
    assert [d["id"] for d in page.json()] == all_ids[3:6]


def test_metric_alert_rules_default_to_25_per_page():
    world = _world("legacy")
    rules = world["sentry"]["metric_alert_rules"]
    world["sentry"]["metric_alert_rules"] = [{**rules[0], "id": str(8000 + i)} for i in range(30)]
    with SandboxServer(world) as server, _client(server) as client:
        response = client.get(f"{O}/alert-rules/")
        assert len(response.json()) == 25 and 'rel="next"; results="true"' in response.headers["Link"]


def test_bad_pagination_parameters_are_400s(both):
    _server, client = both
    too_big = client.get(f"{O}/detectors/", params={"per_page": 101})
    assert (too_big.status_code, too_big.json()) == (400, {"detail": "Invalid per_page value. Cannot exceed 100."})
    bad_cursor = client.get(f"{O}/detectors/", params={"cursor": "nope"})
    assert (bad_cursor.status_code, bad_cursor.json()) == (400, {"detail": "Invalid cursor parameter."})


# --- auth ----------------------------------------------------------------------------------------

def test_missing_header_is_401_not_authenticated(both):
    server, _client_ = both
    response = httpx.get(f"{server.base_url}{O}/detectors/")
    assert response.status_code == 401
    assert response.json() == {"detail": "Authentication credentials were not provided."}
    assert response.headers["WWW-Authenticate"] == 'xBasic realm="api"'


def test_unknown_token_is_401_invalid_token(both):
    server, _client_ = both
    response = httpx.get(f"{server.base_url}{O}/detectors/", headers={"Authorization": "Bearer sntryu_nope"})
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid token"})
    empty = httpx.get(f"{server.base_url}{O}/detectors/", headers={"Authorization": "Bearer"})
    assert (empty.status_code, empty.json()) == (401, {"detail": "Invalid token header. No credentials provided."})


@pytest.mark.parametrize(("scopes", "path", "status"), [
    (["org:read"], f"{O}/members/", 403),            # members need member:read
    (["member:read"], f"{O}/detectors/", 403),       # detectors need alerts:read or org:read
    (["member:read"], f"{P}/rules/", 403),
    (["alerts:write"], f"{P}/rules/", 200),          # write implies read
    (["org:admin"], f"{O}/dashboards/", 200),
    (["project:read"], f"{O}/monitors/reconciliation-daily/", 200),
    (["project:read"], f"{O}/monitors/", 403),
    (["org:integrations"], f"{O}/integrations/", 200),
])
def test_scopes(scopes, path, status):
    world = _world("both")
    world["sentry"]["tokens"].append({"token": "narrow", "scopes": scopes})
    with SandboxServer(world) as server, _client(server, token="narrow") as client:
        response = client.get(path)
    assert response.status_code == status
    if status == 403:
        assert response.json() == {"detail": "You do not have permission to perform this action."}


# --- 404s ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("path", [
    "/api/0/organizations/acme/detectors/", "/api/0/projects/towerofbabel/nope/rules/",
    f"{O}/detectors/999/", f"{O}/workflows/999/", f"{O}/dashboards/999/", f"{O}/monitors/nope/",
    f"{O}/integrations/1/", f"{P}/rules/1/", f"{O}/alert-rules/1/", "/api/0/no-such-endpoint/",
])
def test_unknown_objects_are_404(path, both):
    _server, client = both
    response = client.get(path)
    assert (response.status_code, response.json()) == (404, NOT_FOUND)


@pytest.mark.parametrize("path", [f"{P}/rules/", f"{P}/rules/611206/", f"{O}/alert-rules/", f"{O}/alert-rules/7101/"])
def test_legacy_endpoints_are_gone_in_the_workflow_generation(path):
    with SandboxServer(golden_world("workflow")) as server, _client(server) as client:
        response = client.get(path)
        assert (response.status_code, response.json()) == (404, NOT_FOUND)
    with SandboxServer(golden_world("legacy")) as server, _client(server) as client:
        assert client.get(path).status_code == 200


def test_org_and_project_by_id_or_slug(both):
    _server, client = both
    assert client.get("/api/0/organizations/4507005475160064/teams/").status_code == 200
    assert client.get(f"/api/0/projects/{ORG}/4507005480140800/rules/").status_code == 200


# --- rate limits and injected failures ------------------------------------------------------------

def test_every_response_carries_rate_limit_headers(both):
    _server, client = both
    for response in (client.get(f"{O}/teams/"), client.get(f"{O}/detectors/999/"), httpx.get(f"{_server.base_url}{O}/teams/")):
        assert all(h in response.headers for h in RATE_LIMIT_HEADERS), response.headers


def test_exceeding_the_rate_limit_is_a_429_with_headers():
    with SandboxServer(_world("both", rate_limit={"limit": 3, "window": 60})) as server, _client(server) as client:
        remaining = [int(client.get(f"{O}/teams/").headers["X-Sentry-Rate-Limit-Remaining"]) for _ in range(3)]
        assert remaining == [2, 1, 0]
        limited = client.get(f"{O}/teams/")
        assert limited.status_code == 429
        assert json.loads(limited.text) == {
            "detail": "You are attempting to use this endpoint too frequently. Limit is 3 requests in 60 seconds"}
        assert limited.headers["X-Sentry-Rate-Limit-Limit"] == "3"
        assert limited.headers["X-Sentry-Rate-Limit-Remaining"] == "0"
        reset = int(limited.headers["X-Sentry-Rate-Limit-Reset"])
        assert time.time() < reset <= time.time() + 61
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        # Limits are per caller and endpoint: another endpoint still answers.
        assert client.get(f"{O}/members/").status_code == 200


def test_injected_failures_from_the_world_then_recovery():
    fail = [{"path": "/detectors/$", "status": 503, "times": 2}, {"status": 429, "times": 1, "path": "/teams/"}]
    with SandboxServer(_world("workflow", fail=fail)) as server, _client(server) as client:
        statuses = [client.get(f"{O}/detectors/").status_code for _ in range(3)]
        assert statuses == [503, 503, 200]
        assert client.get(f"{O}/workflows/").status_code == 200  # the regex only matched detectors
        limited = client.get(f"{O}/teams/")
        assert limited.status_code == 429 and "Retry-After" in limited.headers
        assert all(h in limited.headers for h in RATE_LIMIT_HEADERS)
        assert client.get(f"{O}/teams/").status_code == 200
        assert server.sentry.request_count(r"/detectors/$") == 3
        assert server.sentry.request_count(r"/detectors/$", status=503) == 2
        assert [r.status for r in server.sentry.requests][:3] == [503, 503, 200]


def test_inject_failure_helper_and_reset():
    with SandboxServer(golden_world("workflow")) as server, _client(server) as client:
        server.sentry.inject_failure(500, path="/workflows/", times=1)
        failed = client.get(f"{O}/workflows/")
        assert failed.status_code == 500 and set(failed.json()) == {"detail", "errorId"}
        server.sentry.inject_failure(502, times=None)
        assert client.get(f"{O}/teams/").status_code == 502
        assert client.get(f"{O}/teams/").status_code == 502
        server.sentry.reset()
        assert client.get(f"{O}/teams/").status_code == 200
        assert server.sentry.request_count() == 1


def test_error_rate_is_seeded():
    def statuses():
        with SandboxServer(_world("workflow", error_rate=0.5, seed=7)) as server, _client(server) as client:
            return [client.get(f"{O}/teams/").status_code for _ in range(12)]

    first = statuses()
    assert first == statuses() and {503, 200} == set(first)


# --- filters -------------------------------------------------------------------------------------

def test_detector_filters(both):
    _server, client = both
    metric = client.get(f"{O}/detectors/", params={"query": "type:metric_issue"}).json()
    # 9 of towerofbabel-web, staging's copy of alert 1, the growth team's Signup Error Spike
    assert len(metric) == 11 and {d["type"] for d in metric} == {"metric_issue"}
    by_name = client.get(f"{O}/detectors/", params={"query": "Webhook"}).json()
    assert {d["name"] for d in by_name} == {"Webhook Processing Failure", "Webhook Signature Verification Failure Spike",
                                            "Webhook Processing p95 Latency"}
    assert [d["id"] for d in client.get(f"{O}/detectors/", params={"id": ["5801003", "5801004"]}).json()] == [
        "5801003", "5801004"]
    assert len(client.get(f"{O}/detectors/", params={"project": "4507005480140800"}).json()) == 12
    assert client.get(f"{O}/detectors/", params={"project": "999"}).status_code == 403


def test_integration_filters_and_config(both):
    _server, client = both
    pagerduty = client.get(f"{O}/integrations/", params={"providerKey": "pagerduty"}).json()
    assert [i["id"] for i in pagerduty] == ["187264"]
    assert pagerduty[0]["configData"]["service_table"][0]["id"] == 22451
    without = client.get(f"{O}/integrations/", params={"providerKey": "pagerduty", "includeConfig": "0"}).json()
    assert "integration_key" not in json.dumps(without)


def test_dashboard_list_starts_with_the_prebuilt_general(both):
    _server, client = both
    listed = client.get(f"{O}/dashboards/").json()
    assert [(d["id"], d["title"]) for d in listed] == [("default-overview", "General"), ("71842", "Payment Monitoring")]
    assert "widgets" not in listed[1] and len(listed[1]["widgetDisplay"]) == 5
    assert len(client.get(f"{O}/dashboards/71842/").json()["widgets"]) == 5


def test_checkins_newest_first(both):
    _server, client = both
    checkins = client.get(f"{O}/monitors/reconciliation-daily/checkins/").json()
    assert [c["dateCreated"] for c in checkins] == sorted((c["dateCreated"] for c in checkins), reverse=True)


# --- worlds and faults ---------------------------------------------------------------------------

def _alert_names() -> list[str]:
    spec = yaml.safe_load((REPO / "monitoring.yaml").read_text())
    return [a["name"] for a in spec["alerts"]] + [b["name"] for b in spec["performance"]["budgets"]]


def _legacy_names(sentry: dict) -> set[str]:
    issue = {r["name"] for rules in sentry["issue_rules"].values() for r in rules}
    return issue | {r["name"] for r in sentry["metric_alert_rules"]}


def _engine_names(sentry: dict) -> set[str]:
    return {d["name"] for d in sentry["detectors"] if d["type"] == "metric_issue"} | {w["name"] for w in sentry["workflows"]}


@pytest.mark.parametrize("generation", GENERATIONS)
def test_golden_world_holds_every_named_alert(generation):
    sentry = golden_world(generation)["sentry"]
    names = set(_alert_names())
    if generation in ("legacy", "both"):
        assert names <= _legacy_names(sentry)
    if generation in ("workflow", "both"):
        assert names - {"Test Mode Detected in Production"} <= _engine_names(sentry)
        assert "Test Mode Detected in Production" in {w["name"] for w in sentry["workflows"]}


def test_generations_differ_as_documented():
    legacy, workflow, both_ = (golden_world(g)["sentry"] for g in GENERATIONS)
    assert {d["type"] for d in legacy["detectors"]} == {"error", "issue_stream", "monitor_check_in_failure"}
    assert legacy["workflows"] == [] and all(d["workflowIds"] == [] for d in legacy["detectors"])
    # alert 6 and paymon's two synthetic-check alerts; no unfaithful 15m copy of alert 2
    assert [r["id"] for r in legacy["issue_rules"][PROJECT]] == ["611206", "611301", "611302"]
    assert workflow["legacy_alerts"] == "removed" and legacy["legacy_alerts"] == both_["legacy_alerts"] == "present"
    # towerofbabel-web's 9 + staging's copy of alert 1 + growth-site's Signup Error Spike (org-level lists)
    assert len(both_["metric_alert_rules"]) == 11 and len(both_["detectors"]) == 18 and len(both_["workflows"]) == 11
    for sentry in (legacy, workflow, both_):
        assert {m["user"]["email"]: m["user"]["id"] for m in sentry["members"]} == {
            "dana@towerofbabel.com": "3984210", "ops@towerofbabel.com": "3984213", "exec@towerofbabel.com": "3984214"}
        assert {t["slug"]: t["id"] for t in sentry["teams"]} == {"on-call": "4509876", "security": "4509877",
                                                                 "growth": "4509880"}


@pytest.mark.parametrize("generation", GENERATIONS)
@pytest.mark.parametrize("fault", sorted(FAULTS))
def test_every_fault_changes_every_generation(fault, generation):
    golden = golden_world(generation)
    before = json.dumps(golden, sort_keys=True)
    broken = apply_fault(golden, fault)
    assert json.dumps(golden, sort_keys=True) == before, "apply_fault must not mutate its input"
    assert broken != golden


def test_fault_details():
    legacy = apply_fault(golden_world("legacy"), "rule-disabled")["sentry"]
    assert next(r for r in legacy["metric_alert_rules"] if r["name"].startswith("Webhook Signature"))["status"] == 5
    workflow = apply_fault(golden_world("workflow"), "window")["sentry"]
    detector = next(d for d in workflow["detectors"] if d["name"] == "Webhook Processing Failure")
    assert detector["dataSources"][0]["queryObj"]["snubaQuery"]["timeWindow"] == 900
    per_issue = apply_fault(golden_world("both"), "per-issue")["sentry"]
    assert "Payment Failure Rate Spike" not in {r["name"] for r in per_issue["metric_alert_rules"]
                                                if PROJECT in r["projects"]}
    rule = next(r for r in per_issue["issue_rules"][PROJECT] if r["name"] == "Payment Failure Rate Spike")
    assert rule["conditions"][0]["interval"] == "5m" and rule["conditions"][0]["value"] == 10
    flow = next(w for w in per_issue["workflows"] if w["name"] == "Payment Failure Rate Spike"
                and w["id"] != "9302000")  # not staging's copy
    assert flow["detectorIds"] == ["5801001"]
    assert flow["triggers"]["conditions"][0]["comparison"] == {"value": 10, "interval": "5m"}


def test_unknown_fault_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown fault"):
        apply_fault(golden_world("legacy"), "nope")


def test_world_files_round_trip_and_bad_files_are_one_line_errors(tmp_path):
    path = tmp_path / "world.json"
    path.write_text(dump_world(golden_world("both")))
    assert load_world(path) == golden_world("both")
    for content, message in [("{", "not valid JSON"), ("[]", "JSON object"), ('{"sentry": {}}', "sentry.organization")]:
        path.write_text(content)
        with pytest.raises(ConfigError, match=message) as error:
            load_world(path)
        assert "\n" not in str(error.value)
    with pytest.raises(ConfigError, match="not found"):
        load_world(tmp_path / "missing.json")
    with pytest.raises(ConfigError):
        golden_world("modern")
