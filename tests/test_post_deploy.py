"""The post-deployment watch (paymon.findings.post_deploy) against the sandbox: the latest deploy found
through Sentry's releases (both deploy listings), a regression named with its counts, no deploy as
"could not check", paymon's own firings told apart from production's; and the releases emulator's
answers validated against the 2026-08 spec. The daily dashboard review (paymon.findings.dashboard_review)
too: every widget per day since the deploy, an empty whole day and a p95 past the critical marker
named with day and value, widget 4's trace metrics, skipped after the first week."""

from __future__ import annotations

import re

import httpx
import jsonschema
import pytest
from openapi_support import load_spec, missing_specs, to_jsonschema

from paymon.clients.sentry.client import SentryClient
from paymon.config.spec import load_spec as load_monitoring_spec
from paymon.config.target import Target
from paymon.errors import TargetUnavailable
from paymon.findings.post_deploy import findings, latest_deploy, watch
from paymon.findings.snapshot import SentrySnapshot
from paymon.sandbox.faults import apply_fault
from paymon.sandbox.server import SandboxServer
from paymon.sandbox.world import golden_world

SPEC = load_monitoring_spec("monitoring.yaml")
SPEC_08 = "sentry-openapi-2026-08.json"
HOUR = 3600


def _client(server) -> SentryClient:
    target = Target("sandbox", sandbox=server.describe(), org=SPEC.organization, project=SPEC.project)
    return SentryClient(target.sentry(), deadline=5)


def _watch(server):
    client = _client(server)
    snapshot = SentrySnapshot(client, SPEC)
    return watch(client, SPEC, {a.name: snapshot.alert(a.name) for a in SPEC.alerts}, server.clock.now())


@pytest.mark.parametrize("generation", ["workflow", "legacy"])
def test_golden_world_watches_the_production_deploy_and_finds_nothing(generation):
    with SandboxServer(golden_world(generation)) as server:
        report = _watch(server)
    # The newest release (2026.12.2) went to staging only; the production deploy is 2.5 h old.
    assert report.deploy.version == "towerofbabel-web@2026.12.1"
    assert report.deploy.environment == "production" and report.deploy.name == "production #2330"
    assert report.hours == pytest.approx(2.5, abs=0.01)
    spike = next(a for a in report.alerts if a.name == "Payment Failure Rate Spike")
    assert 3 <= spike.before <= 7 and 3 <= spike.after <= 7  # 2 an hour on both sides
    assert findings(report, SPEC) == ([], [])
    assert not any(a.firings for a in report.alerts)


def test_regression_names_the_alert_its_query_and_both_counts():
    with SandboxServer(apply_fault(golden_world("workflow"), "post-deploy-regression")) as server:
        report = _watch(server)
    failures, warnings = findings(report, SPEC)
    assert [f.alert for f in failures] == ["Payment Failure Rate Spike"] and not warnings
    spike = next(a for a in report.alerts if a.name == "Payment Failure Rate Spike")
    line = failures[0].line()
    assert f"before {spike.before}, after {spike.after}" in line and "payment_flow:checkout" in line
    assert spike.after >= 5 * spike.before >= 15


def test_no_deploy_recorded_could_not_check():
    with SandboxServer(apply_fault(golden_world("workflow"), "no-deploy-recorded")) as server:
        with pytest.raises(TargetUnavailable, match="no deploy to production recorded in Sentry"):
            _watch(server)


def test_a_stale_deploy_is_not_watched():
    with SandboxServer(golden_world("workflow")) as server:
        server.clock.advance(30 * HOUR)
        with pytest.raises(TargetUnavailable, match=r"is 32\.5 h old, past post_deploy.watch_for \(26 h\)"):
            _watch(server)


@pytest.mark.parametrize("listing", ["last_per_environment", "all"])
def test_a_rollback_to_an_older_release_is_the_latest_deploy_in_both_listings(listing):
    world = golden_world("workflow")
    world["sentry"]["knobs"]["deploys_listing"] = listing
    with SandboxServer(world) as server:
        now = server.clock.now()
        releases = server.sentry.releases
        # 2026.11.3 is redeployed an hour ago (a rollback), then 2026.12.1 again to staging.
        releases.record_deploy("towerofbabel-web@2026.11.3", "production", now - HOUR, name="rollback")
        releases.record_deploy("towerofbabel-web@2026.12.1", "staging", now - 600)
        client = _client(server)
        deploy = latest_deploy(client, "production", 25)
        listed = client.get(client.org_path("releases", "towerofbabel-web@2026.11.3", "deploys"))
    assert (deploy.version, deploy.name) == ("towerofbabel-web@2026.11.3", "rollback")
    production = [d for d in listed if d["environment"] == "production"]
    # The newest code keeps one deploy per project and environment; older servers list each.
    assert len(production) == (1 if listing == "last_per_environment" else 2)
    assert production[0]["name"] == "rollback"


def _store(server, message: str, tags: dict, count: int, at: float) -> None:
    server.sentry.store_events([{"message": message, "level": "error", "environment": "production",
                                 "tags": tags} for _ in range(count)], received=[at + i for i in range(count)])


def test_a_critical_alert_that_fired_since_the_deploy_fails_and_a_drill_firing_does_not():
    with SandboxServer(golden_world("workflow")) as server:
        now = server.clock.now()
        # A drill's test-tagged events trip alert 2 an hour ago; production's own do 30 minutes ago.
        _store(server, "Webhook processing failed (drill)", {"webhook": "true", "test": "true"}, 7, now - HOUR)
        server.clock.advance(1)
        report = _watch(server)
        drill = next(a for a in report.alerts if a.name == "Webhook Processing Failure")
        assert drill.firings and not drill.fired and report.notes  # paymon's own: listed, not judged
        assert findings(report, SPEC) == ([], [])
        _store(server, "Webhook processing failed", {"webhook": "true"}, 7, now - HOUR / 2)
        server.clock.advance(1)
        report = _watch(server)
    failures, _ = findings(report, SPEC)
    fired = [f for f in failures if f.field.startswith("fired since the deploy")]
    assert [f.alert for f in fired] == ["Webhook Processing Failure"]
    assert "severity critical" in fired[0].line()


def test_releases_and_deploys_answers_match_the_08_spec():
    missing = missing_specs(SPEC_08)
    if missing:
        pytest.fail(missing, pytrace=False)
    spec = load_spec(SPEC_08)
    o = "/api/0/organizations/{organization_id_or_slug}"

    def validator(path):
        schema = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
        return jsonschema.Draft7Validator(to_jsonschema(schema))

    releases_schema, deploys_schema = validator(f"{o}/releases/"), validator(f"{o}/releases/{{version}}/deploys/")
    world = golden_world("workflow")
    world["sentry"]["knobs"]["page_size"] = 2  # every page validated
    with SandboxServer(world) as server, httpx.Client(
            base_url=server.base_url, headers={"Authorization": f"Bearer {server.sentry_token}"}) as http:
        base = f"/api/0/organizations/{server.org}"
        bodies, url = [], f"{base}/releases/"
        while url:
            response = http.get(url)
            assert response.status_code == 200, response.text
            bodies.append(response.json())
            following = [part for part in response.headers["link"].split(", ") if 'results="true"' in part
                         and 'rel="next"' in part]
            url = following[0].split(";")[0].strip("<>") if following else None
        releases = [r for body in bodies for r in body]
        assert len(releases) == 4 and len(bodies) == 2
        problems = [e.message for body in bodies for e in releases_schema.iter_errors(body)]
        for release in releases:
            deploys = http.get(f"{base}/releases/{release['version']}/deploys/")
            assert deploys.status_code == 200
            problems += [e.message for e in deploys_schema.iter_errors(deploys.json())]
        assert http.get(f"{base}/releases/nope@1/deploys/").status_code == 404
        only_production = http.get(f"{base}/releases/", params={"environment": "production"}).json()
    assert not problems, problems[:5]
    assert "towerofbabel-web@2026.12.2" not in {r["version"] for r in only_production}  # staging only


@pytest.mark.parametrize("generation", ["workflow", "legacy"])
def test_the_fatal_alert_fired_since_the_deploy_fails_in_either_generation(generation):
    """Alert 6 ("any occurrence") is per-issue in both worlds (an issue rule, an issue workflow):
    it keeps no incident, so its firing is a new issue of its selection since the deploy."""
    world = golden_world(generation)
    world["app"]["history"]["test_mode_hours_ago"] = [1]  # the start-up guard fired after the deploy
    with SandboxServer(world) as server:
        report = _watch(server)
    failures, _ = findings(report, SPEC)
    assert [f.alert for f in failures] == ["Test Mode Detected in Production"]
    assert "new issue" in failures[0].line() and "severity fatal" in failures[0].line()


def test_a_high_severity_alert_that_fired_since_the_deploy_is_a_warning():
    with SandboxServer(golden_world("workflow")) as server:
        now = server.clock.now()
        server.sentry.store_events([{"message": "Lemon Squeezy signature verification failed", "level": "warning",
                                     "environment": "production", "tags": {"webhook": "signature"}}
                                    for _ in range(7)], received=[now - HOUR / 2 + i for i in range(7)])
        server.clock.advance(1)
        report = _watch(server)
    failures, warnings = findings(report, SPEC)
    assert not failures
    assert [w.alert for w in warnings] == ["Webhook Signature Verification Failure Spike"]
    assert "severity high" in warnings[0].line()


def test_the_report_attaches_its_table_and_draws_its_chart_only_when_asked():
    from paymon.reporting.charts import PNG_SIGNATURE
    from paymon.reporting.post_deploy_charts import attachments

    with SandboxServer(apply_fault(golden_world("workflow"), "post-deploy-regression")) as server:
        report = _watch(server)
    table_only = attachments(report, draw=False)
    assert [a.kind for a in table_only] == ["csv"]
    table = table_only[0].body
    assert "towerofbabel-web@2026.12.1 (production #2330) to production" in table
    spike = next(a for a in report.alerts if a.name == "Payment Failure Rate Spike")
    assert f"Payment Failure Rate Spike,high,{spike.before},{spike.after},x" in table
    drawn = attachments(report, draw=True)
    assert [a.kind for a in drawn] == ["png", "csv"] and drawn[0].body.startswith(PNG_SIGNATURE)


# --- §7 "Review payment dashboard metrics daily for first week" (paymon.findings.dashboard_review) --

DAY = 86400


def _review(server):
    from paymon.findings import dashboard_review

    client = _client(server)
    now = server.clock.now()
    deploy, not_now = dashboard_review.deploy_to_review(client, SPEC, now)
    assert not_now is None
    return dashboard_review.review(client, SPEC, deploy, now)


def _two_days_in():
    from paymon.sandbox.faults import _Changes, dashboard_review_two_days_in

    world = golden_world("workflow")
    dashboard_review_two_days_in(world, _Changes("two days in"))
    return world


def test_golden_world_reviews_every_widget_on_the_days_since_the_deploy():
    from paymon.findings.dashboard_review import findings as review_findings

    with SandboxServer(golden_world("workflow")) as server:
        review = _review(server)
    widgets = {w.title: w for w in review.widgets}
    assert list(widgets) == [w.title for w in SPEC.dashboard.widgets]
    # 2.5 h since the deploy: the deploy's day and today, never a whole day (nothing judged empty).
    assert all(not day.complete for w in review.widgets for day in w.days)
    assert sum(d.count for d in widgets["Daily Successful Payments"].days) > 0
    assert widgets["Webhook Processing Time"].source.startswith("dashboard ")
    assert max(d.values["p95(transaction.duration)"] for d in widgets["Webhook Processing Time"].days) < 1000
    assert widgets["Payment Failure Rate"].dataset == "errors"
    assert review_findings(review, SPEC) == ([], [])


def test_two_days_after_the_deploy_every_whole_day_has_data():
    from paymon.findings.dashboard_review import findings as review_findings

    with SandboxServer(_two_days_in()) as server:
        review = _review(server)
    whole = [d for d in review.widgets[0].days if d.complete]
    assert len(whole) in (1, 2)  # yesterday, and the day before when the run is past 02:00 UTC
    assert review_findings(review, SPEC) == ([], [])


def test_a_day_without_usage_reports_fails_naming_the_widget_and_the_day():
    from paymon.findings.dashboard_review import day_label, findings as review_findings

    with SandboxServer(apply_fault(golden_world("workflow"), "dashboard-day-without-usage-reports")) as server:
        yesterday = day_label((int(server.clock.now() // DAY) - 1) * DAY)
        review = _review(server)
    failures, warnings = review_findings(review, SPEC)
    assert [f.alert for f in failures] == ["Usage Reporting Success Rate"] and not warnings
    assert f"events on {yesterday} (UTC, a whole day since the deploy" in failures[0].line()
    assert "expected > 0, actual 0 (no data)" in failures[0].line()


def test_webhook_p95_past_the_critical_marker_fails_naming_the_day_and_the_value():
    from paymon.findings.dashboard_review import findings as review_findings

    with SandboxServer(apply_fault(golden_world("workflow"), "dashboard-webhook-p95-over-critical")) as server:
        review = _review(server)
    failures, warnings = review_findings(review, SPEC)
    # The slow hour is today's, or straddles midnight when the run is just past it: a failure per day.
    assert failures and {f.alert for f in failures} == {"Webhook Processing Time"} and not warnings
    for failure in failures:
        day = next(d for d in review.widgets[2].days if f" on {d.label} " in failure.field)
        value = day.values["p95(transaction.duration)"]
        assert value > 2000 and not day.complete
        assert (f"p95(transaction.duration) on {day.label} (UTC, part of the day) expected at most 2000 ms "
                f"(critical marker), actual {value:.0f} ms") in failure.line()


def _one_widget_review(title: str, days: list):
    from paymon.findings.dashboard_review import DashboardReview, WidgetReview
    from paymon.findings.post_deploy import Deploy

    widget = WidgetReview(title, "transactions", "q", [], [], "dashboard 1", days=days)
    return DashboardReview(Deploy("v1", "production", 10 * DAY - HOUR), 13 * DAY + HOUR, [widget])


def test_review_rules_warning_marker_partial_days_and_widgets_that_may_be_empty():
    from paymon.findings.dashboard_review import Day, findings as review_findings

    p95 = "p95(transaction.duration)"
    review = _one_widget_review("Webhook Processing Time", [
        Day(9 * DAY, False, 3, {p95: 1500.0}),      # the deploy's day: warning marker crossed
        Day(10 * DAY, True, 40, {p95: 900.0}),
        Day(11 * DAY, True, 0, {p95: 0.0}),         # a whole day without data: fails
        Day(12 * DAY, True, 40, {p95: 1000.0}),     # on the warning marker, not past it
        Day(13 * DAY, False, 0, {p95: 0.0}),        # today, an hour in: not judged empty
    ])
    failures, warnings = review_findings(review, SPEC)
    assert [f.field for f in failures] == ["events on 1970-01-12 (UTC, a whole day since the deploy v1 to "
                                           "production at 1970-01-10 23:00 UTC)"]
    assert [f.line() for f in warnings] == [
        "Webhook Processing Time: p95(transaction.duration) on 1970-01-10 (UTC, part of the day) expected at most "
        "1000 ms (warning marker), actual 1500 ms (dashboard 1; dataset transactions, query 'q')"]
    empty = _one_widget_review("Payment Failure Rate", [Day(11 * DAY, True, 0, {})])
    assert review_findings(empty, SPEC) == ([], [])  # monitoring.yaml: a day without payment errors is a good day


def test_the_review_is_skipped_after_the_first_week():
    from paymon.findings import dashboard_review

    with SandboxServer(golden_world("workflow")) as server:
        server.clock.advance(7 * DAY)
        deploy, not_now = dashboard_review.deploy_to_review(_client(server), SPEC, server.clock.now())
    assert deploy.version == "towerofbabel-web@2026.12.1"
    assert not_now.startswith("the latest deploy (towerofbabel-web@2026.12.1 (production #2330) to production at ")
    assert "is 7.1 days old: past the first 7 days" in not_now


def test_the_review_attaches_a_table_per_widget_and_draws_only_when_asked():
    from paymon.reporting.charts import PNG_SIGNATURE
    from paymon.reporting.post_deploy_charts import review_attachments

    with SandboxServer(_two_days_in()) as server:
        review = _review(server)
    table_only = review_attachments(review, SPEC, draw=False)
    assert [a.kind for a in table_only] == ["csv"] * len(SPEC.dashboard.widgets)
    assert "day (UTC),complete day,events,p50(transaction.duration)" in table_only[2].body
    drawn = review_attachments(review, SPEC, draw=True)
    assert [a.kind for a in drawn] == ["png", "csv"] * len(SPEC.dashboard.widgets)
    assert drawn[0].body.startswith(PNG_SIGNATURE)


def test_widget_4_reads_the_apps_gauge_per_tier_and_a_refused_metric_query_is_could_not_check():
    from paymon.clients.sentry.api import configured_project_id
    from paymon.findings.dashboard_review import WidgetReview, findings as review_findings, review_widget

    with SandboxServer(golden_world("workflow")) as server:
        review = _review(server)
        tiers = review.widgets[3]
        assert tiers.dataset == "tracemetrics" and not tiers.unchecked
        today = tiers.days[-1].values
        assert today == {"max(value,subscriptions.active,gauge,-) [payg]": 1.0,
                         "max(value,subscriptions.active,gauge,-) [pro]": 1.0}
        # Sentry refuses a metric type it does not know (trace_metrics/aggregates.py): that widget
        # could not be checked, a warning; the rest of the review stands.
        bogus = WidgetReview("Active Subscriptions by Tier", "tracemetrics", "", ["max(value,subscriptions.active,"
                                                                                  "timer,-)"], ["tier"], "dashboard 1")
        client = _client(server)
        review.widgets[3] = review_widget(client, bogus, configured_project_id(client), "production",
                                          review.deploy.finished, server.clock.now())
    failures, warnings = review_findings(review, SPEC)
    assert not failures and len(warnings) == 1
    assert warnings[0].line().startswith("Active Subscriptions by Tier: daily review expected checked, actual could "
                                         "not check: Sentry refused its tracemetrics query")
    assert "timer is not one of counter, gauge, distribution" in warnings[0].line()


@pytest.mark.parametrize("old,new,message", [
    ("may_be_empty: [Payment Failure Rate]", "may_be_empty: [Payment Failures]",
     "post_deploy.dashboard_review: 'Payment Failures' is not one of the dashboard's widgets"),
    ("Webhook Processing Time: p95(transaction.duration)", "Webhook Processing Time: p90(transaction.duration)",
     "thresholds_on: widget 'Webhook Processing Time' needs thresholds and the aggregate 'p90(transaction.duration)'"),
])
def test_dashboard_review_settings_name_real_widgets(old, new, message):
    from pathlib import Path

    from paymon.config.spec import parse_spec
    from paymon.errors import ConfigError

    text = Path("monitoring.yaml").read_text()
    assert old in text
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_spec(text.replace(old, new))
