"""The start-of-run sweep (paymon.delivery.cleanup) resolves only what an interrupted earlier run left
open, never a run still in flight: leftovers younger than `delivery.sweep_after` are listed and left
alone, and nothing without paymon's marker is touched. Then the whole story: two `pytest --target
live` runs against one served sandbox at the same time both pass and leave nothing open.

The sweep tests run on a frozen sandbox clock, moved instead of waited on."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import yaml

from paymon.clients.pagerduty import PagerDutyClient
from paymon.clients.sentry.client import SentryClient
from paymon.config.spec import load_spec, parse_spec
from paymon.config.target import Target
from paymon.delivery import cleanup
from paymon.delivery.endtoend import TestEvent as PlannedEvent
from paymon.delivery.endtoend import fire, iso, late_grace, plan_test_events, run_marker
from paymon.errors import ConfigError
from paymon.sandbox.hub import SandboxClock
from paymon.sandbox.server import SandboxServer
from paymon.sandbox.world import golden_world

from conftest import REPO, SuiteRun, live_run, spec_with_deadlines

START = 1_780_000_000.0  # 2026-05-28T20:26:40Z
SERVICE = "TowerOfBabel Payments"
ROUTING_KEY = "3f9c1e7a2b6d4c08a5e1f7b9d2c4a6e8"  # the sandbox service's Events API integration
THIRTY_MIN = 30 * 60


# --- the setting ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load((REPO / "monitoring.yaml").read_text())


def test_sweep_after_is_declared_and_outlives_a_run(raw):
    spec = load_spec(REPO / "monitoring.yaml")
    assert spec.delivery.sweep_after == THIRTY_MIN
    # A live run keeps its test issues open through two delivery waits (its own, then the drill's).
    longest = spec.delivery.pagerduty.deadline
    assert spec.delivery.sweep_after > 2 * (longest + late_grace(longest))
    without = {**raw, "delivery": {k: v for k, v in raw["delivery"].items() if k != "sweep_after"}}
    assert parse_spec(yaml.safe_dump(without)).delivery.sweep_after == THIRTY_MIN  # the default


@pytest.mark.parametrize("value,message", [
    ("10m", "monitoring.yaml: delivery.sweep_after: 600s is too soon: it must be longer than two delivery "
            "waits (2 x (deadline + grace) = 660s), or a run still in flight may be swept"),
    ("soon", "monitoring.yaml: delivery.sweep_after: expected a duration like 5m or 60s, got 'soon'"),
])
def test_a_sweep_sooner_than_a_run_is_refused_in_one_line(raw, value, message):
    data = {**raw, "delivery": {**raw["delivery"], "sweep_after": value}}
    with pytest.raises(ConfigError) as failure:
        parse_spec(yaml.safe_dump(data))
    assert str(failure.value) == message


# --- the sweep, in the sandbox ---------------------------------------------------------------------------


@pytest.fixture
def sandbox():
    with SandboxServer(golden_world(), clock=SandboxClock(start=START, frozen=True)) as server:
        target = Target("sandbox", sandbox=server.describe())
        with SentryClient(target.sentry(), deadline=5) as sentry, \
                PagerDutyClient(target.pagerduty(), deadline=5) as pagerduty:
            service = pagerduty.find_service(SERVICE)
            yield server, target, sentry, pagerduty, service["id"]


def _open_issues(sentry) -> dict[str, str]:
    """title -> id of the unresolved test issues."""
    issues = sentry.paginate(sentry.org_path("issues"), {"query": "is:unresolved test:true", "limit": 100})
    return {issue["title"]: issue["id"] for issue in issues}


def _open_incidents(pagerduty, service_id, now: float = START) -> dict[str, str]:
    """title -> id of the service's triggered or acknowledged incidents of the last day."""
    return {i["title"]: i["id"] for i in pagerduty.incidents(since=iso(now - 86400), service_id=service_id,
                                                              statuses=("triggered", "acknowledged"))}


def _titled(titles, marker: str) -> list[str]:
    return sorted(t for t in titles if marker in t)


def test_sweep_resolves_an_old_leftover_and_leaves_a_run_in_flight_alone(sandbox):
    server, target, sentry, pagerduty, service_id = sandbox
    old, fresh, me = "interrupted01", "inflight0002", "thisrun00003"
    fire(plan_test_events(old), target.dsn(), "production")  # a run killed before its cleanup
    server.clock.advance(40 * 60)
    fire(plan_test_events(fresh), target.dsn(), "production")  # another run, still waiting for them
    server.clock.advance(60)  # long enough for its incident to open
    issues, incidents = _open_issues(sentry), _open_incidents(pagerduty, service_id)
    assert len(_titled(issues, run_marker(old))) == len(_titled(issues, run_marker(fresh))) == 2
    assert len(_titled(incidents, run_marker(old))) == len(_titled(incidents, run_marker(fresh))) == 1

    swept = cleanup.sweep(sentry, (pagerduty, service_id), run_id=me, now=server.clock.now(), min_age_s=THIRTY_MIN)

    assert swept.problems == []
    issues_after, incidents_after = _open_issues(sentry), _open_incidents(pagerduty, service_id)
    # The old run's two issues and its incident: resolved.
    assert _titled(issues_after, run_marker(old)) == [] and _titled(incidents_after, run_marker(old)) == []
    assert sorted(swept.ids("sentry")) == sorted(issues[t] for t in _titled(issues, run_marker(old)))
    assert swept.ids("pagerduty") == [incidents[t] for t in _titled(incidents, run_marker(old))]
    # The run in flight: untouched, and named.
    assert _titled(issues_after, run_marker(fresh)) == _titled(issues, run_marker(fresh))
    assert _titled(incidents_after, run_marker(fresh)) == _titled(incidents, run_marker(fresh))
    assert {(x.service, x.title) for x in swept.left_alone} == (
        {("sentry", t) for t in _titled(issues, run_marker(fresh))}
        | {("pagerduty", t) for t in _titled(incidents, run_marker(fresh))})
    summary = swept.summary()
    assert "younger than delivery.sweep_after (30 min)" in summary and "1 min old" in summary
    assert summary.count(run_marker(fresh)) == 3 and run_marker(old) not in summary
    # The swept incident says why it was resolved.
    (old_incident,) = swept.ids("pagerduty")
    resolution = [e for e in pagerduty.log_entries(old_incident) if e["type"] == "resolve_log_entry"]
    assert len(resolution) == 1 and "leftover test incident of an interrupted run" in str(resolution[0])

    # Half an hour on, the in-flight run's leftovers are old enough too (its run was interrupted).
    server.clock.advance(THIRTY_MIN)
    later = cleanup.sweep(sentry, (pagerduty, service_id), run_id=me, now=server.clock.now(), min_age_s=THIRTY_MIN)
    assert len(later.resolved) == 3 and later.left_alone == [] and later.summary() == ""
    assert _titled(_open_issues(sentry), "PAYMON-TEST-") == [] and _open_incidents(pagerduty, service_id) == {}


def test_sweep_touches_only_what_carries_paymons_marker(sandbox):
    server, target, sentry, pagerduty, service_id = sandbox
    # Tagged like paymon's test events, but not titled with its marker: someone else's test event.
    stranger = PlannedEvent("slack", "", "nightly smoke check from the payments team", "info",
                         {"test": "true", "paymon_run": "otherteam001"}, ["other-team", "smoke"])
    fire([stranger], target.dsn(), "production")
    # An incident on the same service that paymon did not open.
    real = {"routing_key": ROUTING_KEY, "event_action": "trigger", "dedup_key": "PAYMENTS-API-REAL",
            "payload": {"summary": "Payment Failure Rate Spike", "severity": "critical", "source": "app.payments"}}
    assert httpx.post(f"{target.sandbox['pagerduty']['base_url']}/v2/enqueue", json=real).status_code == 202
    # This run's own drill, from an earlier attempt of the same run id: not a leftover of another run.
    me = "thisrun00003"
    own = PlannedEvent("slack", "", f"PAYMON-DRILL-{run_marker(me).removeprefix('PAYMON-TEST-')}-1 drill", "info",
                    {"test": "true", "paymon_run": me}, ["paymon", me, "drill"])
    fire([own], target.dsn(), "production")
    server.clock.advance(60)
    issues, incidents = _open_issues(sentry), _open_incidents(pagerduty, service_id)
    assert stranger.message in issues and "Payment Failure Rate Spike" in incidents and own.message in issues

    server.clock.advance(2 * 3600)
    swept = cleanup.sweep(sentry, (pagerduty, service_id), run_id=me, now=server.clock.now(), min_age_s=THIRTY_MIN)

    assert swept.resolved == [] and swept.left_alone == [] and swept.problems == []
    assert _open_issues(sentry) == issues and _open_incidents(pagerduty, service_id) == incidents


class _Issues:
    """A Sentry client answering the sweep's issue search with `issues`, recording writes."""

    def __init__(self, issues):
        self.issues, self.writes = issues, []

    def org_path(self, tail):
        return f"/organizations/o/{tail}/"

    def paginate(self, path, params):
        return list(self.issues)

    def put(self, path, body, params):
        self.writes.append(params["id"])


def test_a_leftover_of_unknown_age_is_not_provably_old():
    client = _Issues([{"id": "1", "shortId": "P-1", "title": "PAYMON-TEST-X-SLACK synthetic", "lastSeen": None},
                      {"id": "2", "shortId": "P-2", "title": "PAYMON-TEST-Y-SLACK synthetic", "lastSeen": "garbage"},
                      {"id": "3", "shortId": "P-3", "title": "PAYMON-TEST-Z-SLACK synthetic",
                       "lastSeen": iso(START - 3600)}])
    swept = cleanup.sweep(client, run_id="me", now=START, min_age_s=THIRTY_MIN)
    assert client.writes == [["3"]]
    assert [x.name for x in swept.left_alone] == ["P-1", "P-2"]
    assert "(age unknown)" in swept.summary()


# --- two live runs against one served sandbox ------------------------------------------------------------


@pytest.fixture(scope="module")
def live_spec(tmp_path_factory):
    """monitoring.yaml with deadlines a test can afford (a run ends as soon as its page is seen)."""
    return spec_with_deadlines(tmp_path_factory.mktemp("spec"), slack="30s", pagerduty="60s")


def _live_delivery_run(server, spec, junit) -> SuiteRun:
    """`pytest --target live checks/test_delivery.py` (no drill), as a user runs it."""
    return live_run(server, junit, "-rA", "-W", "default", "--no-drill", f"--spec={spec}",
                    "checks/test_delivery.py", env={"PAYMON_API_DEADLINE": "10"}, timeout=240)


def _wait_for_open_test_incident(pagerduty, service_id, timeout: float = 60.0) -> str:
    give_up = time.monotonic() + timeout
    while time.monotonic() < give_up:
        titles = [t for t in _open_incidents(pagerduty, service_id, time.time()) if "PAYMON-TEST-" in t]
        if titles:
            return titles[0]
        time.sleep(0.2)
    raise AssertionError("the first run's test incident never opened")


@pytest.mark.parametrize("start", ["together", "second-while-first-in-flight"])
def test_two_live_runs_against_one_served_sandbox_both_pass_and_leave_nothing_open(start, live_spec, tmp_path):
    world = golden_world()
    if start != "together":
        # Sentry's Slack post comes 20 s after the event: the first run waits on Slack (its PagerDuty
        # incident is resolved only after), so it stays in flight, its issues and incident open,
        # while the second one starts and sweeps.
        world["sentry"]["knobs"].setdefault("delivery_delay", {})["slack"] = 20.0
    with SandboxServer(world) as server, ThreadPoolExecutor(2) as pool:
        info = server.describe()
        target = Target("sandbox", sandbox=info)
        with PagerDutyClient(target.pagerduty(), deadline=10) as pagerduty, \
                SentryClient(target.sentry(), deadline=10) as sentry:
            service_id = pagerduty.find_service(SERVICE)["id"]
            first = pool.submit(_live_delivery_run, server, live_spec, tmp_path / "first.xml")
            in_flight = None
            if start != "together":
                in_flight = _wait_for_open_test_incident(pagerduty, service_id).split("-PAGE")[0]
            second = pool.submit(_live_delivery_run, server, live_spec, tmp_path / "second.xml")
            runs = [first.result(), second.result()]

            for run in runs:
                assert run.returncode == 0, run.output
                assert run.passed == {"test_slack_delivery", "test_pagerduty_delivery"}, run.output
            # Nothing left open: no test issue, no PAYMON-TEST incident.
            assert [t for t in _open_issues(sentry) if "PAYMON-TEST-" in t] == []
            assert [t for t in _open_incidents(pagerduty, service_id, time.time()) if "PAYMON-TEST-" in t] == []
            # Each run's incident was resolved by that run, never by the other's sweep.
            ours = [i for i in pagerduty.incidents(since=iso(time.time() - 3600), service_id=service_id)
                    if "PAYMON-TEST-" in (i.get("title") or "")]
            assert len(ours) == 2
            for incident in ours:
                marker = incident["title"].split(" ")[0]
                (resolved,) = [e for e in pagerduty.log_entries(incident["id"]) if e["type"] == "resolve_log_entry"]
                assert f"synthetic test incident {marker}, auto-resolved" in str(resolved), resolved
            if in_flight is not None:
                # The second run's sweep saw the first run's issues and incident, and named them.
                assert "maybe still in flight" in runs[1].output, runs[1].output
                assert runs[1].output.count(in_flight) >= 3, runs[1].output
