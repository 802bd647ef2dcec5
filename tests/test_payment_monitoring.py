"""The payment app's database, usage reporting, reconciliation job and Sentry instrumentation, and
paymon.findings.production's readings of what Sentry saw (the new checks' logic)."""

from __future__ import annotations

from types import SimpleNamespace

import copy
import sqlite3
from datetime import datetime

import httpx
import pytest

from paymon import cli
from paymon.findings import production as pm
from paymon.sandbox.app.db import AppDB
from paymon.sandbox.app.models import find_discrepancies
from paymon.sandbox.faults import apply_fault
from paymon.sandbox.server import SandboxServer
from paymon.sandbox.world import golden_world
from paymon.clients.sentry.client import SentryClient
from paymon.config.spec import load_spec
from paymon.config.target import Target
from tests.conftest import REPO

SPEC = load_spec(REPO / "monitoring.yaml")


def _world(fault: str | None = None, **knobs) -> dict:
    world = apply_fault(golden_world(), fault) if fault else golden_world()
    world["app"]["knobs"].update(copy.deepcopy(knobs))
    return world


def _client(server: SandboxServer) -> SentryClient:
    target = Target("sandbox", sandbox=server.describe(), org=SPEC.organization, project=SPEC.project)
    return SentryClient(target.sentry(), deadline=5)


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _events(server: SandboxServer, message: str) -> list:
    server.backend("app").telemetry.flush()
    return [e for e in server.sentry.events.visible_events(float("inf")) if e.data.get("message") == message]


# --- the database ------------------------------------------------------------------------------------

def test_db_round_trips_subscriptions_usage_and_processed_webhooks():
    db = AppDB()
    db.upsert_subscription({"id": 1, "user_id": "u", "tier": "payg", "status": "active", "variant_id": 5,
                            "subscription_item_id": 7, "is_usage_based": True, "updated_at": "2026-01-01"})
    db.upsert_subscription({"id": "1", "status": "cancelled", "user_id": "u", "tier": "payg", "variant_id": 5,
                            "subscription_item_id": 7, "is_usage_based": True, "updated_at": "2026-01-02"})
    assert db.subscriptions() == [{"id": "1", "user_id": "u", "tier": "payg", "status": "cancelled", "variant_id": 5,
                                   "subscription_item_id": 7, "is_usage_based": True, "updated_at": "2026-01-02"}]
    db.add_usage(7, 2, 10.0)
    db.add_usage(7, 3, 11.0)
    assert db.usage_totals() == {7: 5}
    db.mark_processed("w1", "subscription_updated", "1")
    db.mark_processed("w1", "subscription_updated", "1")  # idempotent
    assert db.processed("w1") and not db.processed("w2")
    assert db.processed_webhooks() == {"w1": {"event_name": "subscription_updated", "subscription_id": "1"}}


def test_file_db_knob_keeps_the_app_tables_in_a_sqlite_file():
    with SandboxServer(_world(db="file")) as server:
        app = server.backend("app")
        assert app.db.path.endswith(".sqlite3")
        httpx.post(f"{server.base_url}/app/api/subscription/payg/create", json={"user_id": "u9"}, timeout=10)
        with sqlite3.connect(app.db.path) as other:
            rows = other.execute("SELECT id, status FROM subscriptions WHERE user_id = 'u9'").fetchall()
        assert rows == [("pending-u9", "pending")]


# --- reconciliation ----------------------------------------------------------------------------------

def test_reconciliation_flags_each_kind_of_discrepancy():
    app_rows = [
        {"id": "1", "status": "active", "subscription_item_id": 11, "is_usage_based": False},
        {"id": "2", "status": "active", "subscription_item_id": 22, "is_usage_based": True},
        {"id": "3", "status": "active", "subscription_item_id": 33, "is_usage_based": False},
        {"id": "pending-u", "status": "pending", "subscription_item_id": None, "is_usage_based": True},
    ]
    ls_rows = {"1": {"status": "cancelled"}, "2": {"status": "active"}, "4": {"status": "active"}}
    found = find_discrepancies(app_rows, {22: 5}, ls_rows, {22: 3})
    assert found == [
        {"kind": "status mismatch", "subscription_id": "1", "app": "active", "lemonsqueezy": "cancelled"},
        {"kind": "usage mismatch", "subscription_id": "2", "app": 5, "lemonsqueezy": 3},
        {"kind": "orphaned subscription", "subscription_id": "3", "app": "active", "lemonsqueezy": "missing"},
        {"kind": "orphaned subscription", "subscription_id": "4", "app": "missing", "lemonsqueezy": "active"},
    ]
    assert find_discrepancies(app_rows[:1], {}, {"1": {"status": "active"}}, {}) == []


def test_golden_world_has_last_nights_ok_run_and_no_discrepancy():
    with SandboxServer(golden_world()) as server:
        checkins = server.sentry.list_checkins(server.sentry.monitors[0], ["production"])
        newest = checkins[0]
        assert newest["status"] == "ok" and newest["duration"] == 48000
        created = datetime.fromisoformat(newest["dateCreated"].replace("Z", "+00:00"))
        assert (created.hour, created.minute) == (2, 0)  # the guide's 02:00 UTC
        assert server.clock.now() - created.timestamp() < 24 * 3600
        assert not _events(server, "reconciliation discrepancies detected")
        with _client(server) as client:
            assert pm.reconciliation_findings(client, SPEC) == []


def test_reconcile_route_checks_in_and_reports_discrepancies():
    with SandboxServer(_world("reconciliation-issue-open")) as server:
        url = f"{server.base_url}/app/api/cron/reconcile"
        assert httpx.post(url, timeout=10).status_code == 401
        assert httpx.post(url, headers={"Authorization": "Bearer wrong"}, timeout=10).status_code == 401
        before = len(_events(server, "reconciliation discrepancies detected"))
        response = httpx.post(url, headers={"Authorization": "Bearer sandbox-cron-secret"}, timeout=10)
        assert response.status_code == 200
        assert response.json()["discrepancies"] == [
            {"kind": "status mismatch", "subscription_id": "1287450", "app": "active", "lemonsqueezy": "cancelled"}]
        events = _events(server, "reconciliation discrepancies detected")
        assert len(events) == before + 1
        assert events[-1].data["tags"]["reconciliation"] == "true" and events[-1].data["level"] == "warning"
        [newest, *_] = server.sentry.list_checkins(server.sentry.monitors[0], ["production"])
        assert newest["status"] == "ok" and newest["dateInProgress"] is not None  # in_progress, then ok


def test_cli_reconcile_against_a_running_sandbox(capsys):
    with SandboxServer(golden_world()) as server:
        assert cli.main(["sandbox", "reconcile", server.base_url, f"--spec={REPO / 'monitoring.yaml'}"]) == 0
        assert "no discrepancies (check-in: ok)" in capsys.readouterr().out
        [newest, *_] = server.sentry.list_checkins(server.sentry.monitors[0], ["production"])  # monitoring.yaml's slug
        assert newest["status"] == "ok" and server.clock.now() - _epoch(newest["dateCreated"]) < 60
        assert cli.main(["sandbox", "reconcile", server.base_url, "--cron-secret", "nope"]) == 3
        assert "refused the cron secret (401)" in capsys.readouterr().err
    with SandboxServer(_world("reconciliation-issue-open")) as server:
        assert cli.main(["sandbox", "reconcile", f"{server.base_url}/app", "--json"]) == 1
        assert '"kind": "status mismatch"' in capsys.readouterr().out
    assert cli.main(["sandbox", "reconcile", server.base_url, "--timeout", "2"]) == 3  # stopped
    assert "could not check" in capsys.readouterr().err


# --- usage reporting ---------------------------------------------------------------------------------

def test_usage_reporting_failure_sends_the_tagged_error():
    with SandboxServer(_world(usage_error_rate=1.0, traces_sample_rate=1.0)) as server:
        app = server.backend("app")
        before = len(_events(server, "Usage reporting failed"))
        assert app.report_usage(2401231, 3) is False
        [*_, event] = _events(server, "Usage reporting failed")
        assert len(_events(server, "Usage reporting failed")) == before + 1
        assert event.data["level"] == "error" and event.data["tags"]["usage_reporting"] == "error"
        assert app.db.usage_totals()[2401231] > app.lemonsqueezy.usage.get(2401231, 0)  # recorded, never billed


def test_usage_reporting_success_reaches_lemonsqueezy_and_is_traced():
    with SandboxServer(_world(traces_sample_rate=1.0)) as server:
        app = server.backend("app")
        billed = app.lemonsqueezy.usage[2401231]
        assert app.report_usage(2401231, 2) is True
        assert app.lemonsqueezy.usage[2401231] == billed + 2
        app.telemetry.flush()
        rows, _ = server.sentry.events_table(server.sentry.projects, "spans", ["count()"],
                                             "is_transaction:true transaction:usage-report", ["production"],
                                             server.clock.now() - 60, server.clock.now() + 1, None)
        assert rows == [{"count()": 1}]


def test_golden_usage_history_is_within_the_limit_and_the_fault_is_not():
    with SandboxServer(golden_world()) as server, _client(server) as client:
        findings, rate = pm.usage_reporting_findings(client, SPEC)
        assert findings == [] and rate.failures == 0 and rate.reports == pytest.approx(100)
    with SandboxServer(_world("usage-failures")) as server, _client(server) as client:
        findings, rate = pm.usage_reporting_findings(client, SPEC)
        assert rate.failures > 0.01 * rate.reports
        assert findings[0].field == "failure rate over 24h" and findings[0].expected == "<= 1.00%"


def test_usage_rate_arithmetic():
    assert pm.UsageRate(2, 20, 0.1).rate == pytest.approx(0.01)
    assert pm.UsageRate(0, 0, 0.1).rate is None  # no usage at all: nothing to judge
    assert pm.UsageRate(3, 0, 0.1).rate == 1.0   # failures but no report traced: all failed
    assert pm.UsageRate(50, 1, 1.0).rate == 1.0  # capped


# --- transactions --------------------------------------------------------------------------------------

def test_probed_requests_are_traced_and_tagged_like_the_guide():
    with SandboxServer(_world(traces_sample_rate=1.0)) as server:
        for path in ("/api/checkout/pro", "/api/webhooks/lemonsqueezy"):
            httpx.post(f"{server.base_url}/app{path}", content=b"{}", timeout=10)
        server.backend("app").telemetry.flush()
        now = server.clock.now()
        rows, _ = server.sentry.events_table(
            server.sentry.projects, "spans", ["transaction", "transaction.status", "payment_flow", "count()"],
            "is_transaction:true", ["production"], now - 30, now + 1, None)
        assert {(r["transaction"], r["transaction.status"], r["payment_flow"]) for r in rows} == {
            ("/api/checkout/pro", "ok", "true"), ("/api/webhooks/lemonsqueezy", "unauthenticated", "true")}


def test_slow_endpoint_history_fails_sentry_p95_against_the_budget():
    world = _world(latency_ms={"default": {"p50": 4, "p95": 8}, "/api/checkout/pro": {"p50": 1200, "p95": 1600}})
    with SandboxServer(world) as server, _client(server) as client:
        pro = next(b for b in SPEC.performance.budgets if b.transaction == "/api/checkout/pro")
        [finding] = pm.transaction_findings(client, SPEC, pro)
        assert finding.field == "Sentry p95(span.duration)" and finding.expected == "<= critical 1000 ms"
        assert float(finding.actual.split()[0]) > 1000
        payg = next(b for b in SPEC.performance.budgets if b.transaction == "/api/checkout/payg")
        assert pm.transaction_findings(client, SPEC, payg) == []


def test_a_sentry_p95_between_the_budgets_passes_with_a_warning():
    world = _world(latency_ms={"default": {"p50": 4, "p95": 8}, "/api/checkout/pro": {"p50": 500, "p95": 700}})
    with SandboxServer(world) as server, _client(server) as client:
        pro = next(b for b in SPEC.performance.budgets if b.transaction == "/api/checkout/pro")
        stats = pm.transaction_stats(client, SPEC, pro)
        assert pm.transaction_findings(client, SPEC, pro, stats) == []
        assert pm.transaction_warning(stats, pro).startswith("warning: /api/checkout/pro: Sentry p95(span.duration)")
        payg = next(b for b in SPEC.performance.budgets if b.transaction == "/api/checkout/payg")
        assert pm.transaction_warning(pm.transaction_stats(client, SPEC, payg), payg) is None


def test_events_without_match_answer_null_last_seen():
    with SandboxServer(golden_world()) as server, _client(server) as client:
        rows = pm.events_table(client, "errors", ["count()", "last_seen()"], 'message:"*nothing like this*"',
                               "production", period_s=3600)
        assert rows == [{"count()": 0, "last_seen()": None}]


# --- polling -------------------------------------------------------------------------------------------

class _FakeCounts:
    settings = SimpleNamespace(org="org", project="web")

    def __init__(self, counts):
        self.counts = list(counts)
        self.calls = []

    def org_path(self, *parts):
        return "/".join(parts)

    def paginate(self, path, params=None, key=None):
        return [{"id": "1", "slug": "web"}]

    def get(self, path, params=None):
        self.calls.append(params)
        value = self.counts.pop(0) if len(self.counts) > 1 else self.counts[0]
        return {"data": [{"count()": value}], "meta": {}}


def test_wait_for_events_stops_when_enough_arrived_or_at_the_deadline():
    ticks = iter(range(100))
    client = _FakeCounts([0, 1, 3])
    seen, waited = pm.wait_for_events(client, "q", "production", 1_800_000_000.0, 2, 10, clock=lambda: next(ticks),
                                      sleep=lambda s: None)
    assert (seen, waited) == (3, 3)
    assert client.calls[0]["start"] == "2027-01-15T08:00:00" and "end" in client.calls[0]
    ticks = iter(range(100))
    seen, waited = pm.wait_for_events(_FakeCounts([0]), "q", None, 0.0, 1, 3, clock=lambda: next(ticks),
                                      sleep=lambda s: None)
    assert (seen, waited) == (0, 3)


def test_alert_query_joins_levels_and_filter():
    assert pm.alert_query(SPEC.alert("Test Mode Detected in Production")) == \
        'level:fatal (message:"*Test mode detected in production*")'
    assert pm.alert_query(SPEC.alert("Reconciliation Discrepancy Detected")).startswith("level:[error,warning] (")


def test_or_terms_split_only_top_level_ors():
    assert pm.or_terms('reconciliation:true OR message:"*a OR b*"') == ["reconciliation:true", 'message:"*a OR b*"']
    assert pm.or_terms("a:b (c OR d) OR e") == ["a:b (c OR d)", "e"]
    assert pm.or_terms("x:y") == ["x:y"]


# --- paymon's own test events are not production's ------------------------------------------------

@pytest.mark.parametrize("message, findings_of", [
    ("Test mode detected in production", pm.test_mode_findings),
    ("reconciliation discrepancies detected", lambda client, spec: [
        f for f in pm.reconciliation_findings(client, spec) if f.alert.startswith("issue ")]),
])
def test_test_tagged_events_are_not_counted_but_real_ones_are(message, findings_of):
    """A drill fires these on purpose (tagged test:true); the next gate must not fail on them."""
    level = "fatal" if "Test mode" in message else "error"
    with SandboxServer(golden_world()) as server, _client(server) as client:
        server.sentry.store_event({"level": level, "environment": "production", "message": message,
                                   "tags": {"test": "true", "paymon_drill": "x"}, "fingerprint": ["drill"]})
        assert findings_of(client, SPEC) == []
        server.sentry.store_event({"level": level, "environment": "production", "message": message,
                                   "fingerprint": ["real"]})
        assert len(findings_of(client, SPEC)) == 1


def test_test_tagged_usage_failures_are_not_counted():
    with SandboxServer(golden_world()) as server, _client(server) as client:
        before = pm.usage_rate(client, SPEC).failures
        server.sentry.store_events([{"level": "error", "environment": "production",
                                     "message": "Usage reporting failed", "tags": {"usage_reporting": "error",
                                                                                  "test": "true"}}] * 6)
        assert pm.usage_rate(client, SPEC).failures == before



def test_every_query_names_the_project_and_another_projects_events_do_not_count():
    """Org-level events and issues lists answer for every project the token sees; a fatal "Test
    mode detected in production" in another team's app (its own production) is not ours."""
    world = golden_world()
    world["sentry"]["projects"].append({**world["sentry"]["projects"][0], "id": "4507005480140999",
                                        "slug": "towerofbabel-marketing", "name": "towerofbabel-marketing"})
    with SandboxServer(world) as server, _client(server) as client:
        server.sentry.store_event({"message": "Test mode detected in production", "level": "fatal",
                                   "environment": "production"}, project="towerofbabel-marketing")
        assert pm.test_mode_findings(client, SPEC) == []
        assert pm.count(client, "errors", 'message:"*Test mode detected*"', "production", period_s=3600) == 0
        server.sentry.store_event({"message": "Test mode detected in production", "level": "fatal",
                                   "environment": "production"})
        assert len(pm.test_mode_findings(client, SPEC)) == 1


def test_a_token_that_sees_no_such_project_cannot_check():
    from paymon.errors import TargetUnavailable

    import dataclasses

    with SandboxServer(golden_world()) as server:
        settings = Target("sandbox", sandbox=server.describe()).sentry()
        with SentryClient(dataclasses.replace(settings, project="towerofbabel-api"), deadline=5) as client:
            with pytest.raises(TargetUnavailable, match="no project 'towerofbabel-api' visible to the token"):
                pm.test_mode_findings(client, SPEC)


def test_no_usage_reports_at_all_is_could_not_check_not_a_pass():
    """A token that sees no transactions, or tracing off, answers 0 failures of 0 reports: that is
    no rate at all, and the check says it could not judge one."""
    from paymon.errors import TargetUnavailable

    with SandboxServer(_world("no-transactions")) as server, _client(server) as client:
        with pytest.raises(TargetUnavailable, match="no 'usage-report' transaction and no 'Usage Reporting Failure "
                                                    "Rate' event in project towerofbabel-web"):
            pm.usage_reporting_findings(client, SPEC)
