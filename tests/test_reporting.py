"""The users' side of a run: the one-screen verdict and exit codes, the Allure results (labels,
links, attachments, environment.properties, categories.json), no secret in any file, and
`paymon report`.

The suite runs in a subprocess the way users run it. It runs the config checks (the modules in
CONFIG_CHECKS), which judge the sandbox's Sentry setup alone: enough to exercise every verdict
and every file, and independent of the delivery checks' own machinery.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from paymon.findings.model import Finding
from paymon.reporting import config_diff, guide, verdict
from paymon.reporting.charts import PNG_SIGNATURE
from paymon.reporting.allure_report import (
    ReportFailed,
    ReportPaths,
    ReportToolMissing,
    allure_command,
    build_report,
    record_run,
)
from paymon.reporting.results_files import CATEGORIES, categories_json, environment_properties
from paymon.reporting.secrets import known_secrets, scrub, scrub_files
from paymon.reporting.weekly import render_weekly
from paymon.sandbox.faults import apply_fault
from paymon.sandbox.world import golden_world

REPO = Path(__file__).resolve().parent.parent
CONFIG_CHECKS = [
    "checks/test_alert_rules.py",
    "checks/test_performance_alerts.py",
    "checks/test_dashboard.py",
    "checks/test_cron.py",
    "checks/test_integrations.py",
]
RUNBOOK = "https://gitlab.com/towerofbabel/payments/-/blob/main/docs/payment-monitoring.md"

# Values shaped like the real thing, so a leak would be obvious; the routing key doubles as the
# organisation slug so that it really flows into URLs, messages and environment.properties.
SECRETS = {
    "SENTRY_AUTH_TOKEN": "sntryu_5f0c1e2d3b4a59687766554433221100aabbccddeeff",
    "SLACK_BOT_TOKEN": "xoxb-1111111111-2222222222-SlackSecretValue",
    "PAGERDUTY_API_TOKEN": "u+PdApiTokenSecret_Zz9",
    "PAGERDUTY_ROUTING_KEY": "R0utingKeySecret0123456789abcdef",
    "SENTRY_DSN": "https://d5nPublicKeySecret42@o1.ingest.sentry.io/4242",
    "LEMONSQUEEZY_WEBHOOK_SECRET": "whsec-LemonSqueezySecret",
}


# --- running the suite --------------------------------------------------------------------------------


def _results(alluredir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in alluredir.glob("*-result.json")]


def _labels(result: dict, name: str) -> list[str]:
    return [label["value"] for label in result["labels"] if label["name"] == name]


def _by_name(results: list[dict], name: str) -> dict:
    return next(r for r in results if r["name"] == name)


@pytest.fixture
def suite(run_suite, tmp_path):
    """Run the config checks; returns (run, allure results dir, verdict.json contents)."""

    def run(*args: str, **kwargs):
        alluredir = tmp_path / f"allure-{len(list(tmp_path.iterdir()))}"
        result = run_suite(*CONFIG_CHECKS, f"--alluredir={alluredir}", *args, **kwargs)
        verdict_file = tmp_path / "verdict.json"
        return result, alluredir, json.loads(verdict_file.read_text()) if verdict_file.exists() else None

    return run


def test_golden_sandbox_passes_with_exit_0_and_labelled_results(suite):
    run, alluredir, summary = suite()
    assert run.returncode == 0, run.output
    assert "paymon verdict: profile sandbox · sandbox, not production" in run.output
    assert re.search(r"^PASS\s+(\d+)/\1\s+All 6 Sentry alert rules configured$", run.output, re.M)
    assert re.search(r"^\d+ criteria: \d+ pass, \d+ not covered -> exit 0 \(every criterion checked holds; "
                     r"not covered: not proven by this run\)$", run.output, re.M)
    # Every line of the guide's checklists is on the screen: run here, or not covered with the reason.
    assert re.search(r"^NOT COVERED\s+–\s+Weekly review of payment failure trends$", run.output, re.M)
    assert summary["exit_code"] == 0 and {c["status"] for c in summary["criteria"]} - {"not covered"} == {"pass"}

    results = _results(alluredir)
    alert = _by_name(results, "test_alert_configured[Test Mode Detected in Production]")
    assert _labels(alert, "epic") == ["Pre-Deployment"]
    assert _labels(alert, "feature") == ["§1 Sentry Alert Rules Configuration"]
    assert _labels(alert, "story") == ["All 6 Sentry alert rules configured"]
    assert _labels(alert, "severity") == ["blocker"]  # fatal
    assert {"type": "link", "url": f"{RUNBOOK}#test-mode-in-production",
            "name": "Runbook: test-mode-in-production"} in alert["links"]
    high = _by_name(results, "test_alert_semantics[Payment Failure Rate Spike]")
    assert _labels(high, "severity") == ["critical"]
    routing = _by_name(results, "test_alert_severity_routing[Webhook Processing Failure]")
    assert _labels(routing, "feature") == ["§3 Slack Integration Setup"]
    cron = _by_name(results, "test_reconciliation_monitor")
    assert _labels(cron, "epic") == ["Post-Deployment"]

    properties = dict(line.split("=", 1) for line in (alluredir / "environment.properties").read_text().splitlines())
    assert properties["target"] == "sandbox"
    assert properties["org"] == "towerofbabel" and properties["project"] == "towerofbabel-web"
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", properties["commit"])
    assert properties["paymon.version"]
    names = [c["name"] for c in json.loads((alluredir / "categories.json").read_text())]
    assert names == ["Could not check", "Delivery failure", "Security", "Latency budget", "Config drift"]


def test_commit_comes_from_ci_when_set(suite):
    run, alluredir, _ = suite("-k", "cron", env={"CI_COMMIT_SHA": "c0ffee" * 6 + "abcd"})
    assert "commit=" + "c0ffee" * 6 + "abcd" in (alluredir / "environment.properties").read_text()


def test_one_fault_fails_its_criterion_with_exit_1_and_a_config_diff(suite):
    run, alluredir, summary = suite(world=apply_fault(golden_world("workflow"), "threshold"))
    assert run.returncode == 1, run.output
    assert re.search(r"^FAIL\s+1/\d+\s+All 6 Sentry alert rules configured$", run.output, re.M)
    assert re.search(r"^\s+Payment Failure Rate Spike: threshold expected 10, actual 20", run.output, re.M)
    assert re.search(r"^PASS\s+(\d+)/\1\s+Performance monitoring enabled for payment endpoints", run.output, re.M)
    assert "-> exit 1 (a criterion failed)" in run.output
    failed = [c for c in summary["criteria"] if c["status"] == "fail"]
    assert [c["criterion"] for c in failed] == ["All 6 Sentry alert rules configured"]

    result = _by_name(_results(alluredir), "test_alert_configured[Payment Failure Rate Spike]")
    assert result["status"] == "failed"
    (attachment,) = result["attachments"]
    assert attachment["type"] == "text/csv"
    table = (alluredir / attachment["source"]).read_text().splitlines()
    assert table[0] == "alert,field,expected,actual,where,hint"
    assert table[1].startswith("Payment Failure Rate Spike,threshold,10,20,")
    # The failure lands in "Config drift", the way Allure 2 matches (whole message, Java regex).
    assert _category_of(result["statusDetails"]["message"]) == "Config drift"


def test_could_not_check_gives_exit_3_under_xdist(suite):
    run, alluredir, summary = suite("--target=live", "-n", "2")
    assert run.returncode == 3, run.output
    assert re.search(r"^COULD NOT CHECK\s+\d+/\d+\s+All 6 Sentry alert rules configured", run.output, re.M)
    assert re.search(r"^\s+could not check: SENTRY_AUTH_TOKEN is not set", run.output, re.M)
    assert "-> exit 3 (could not check every criterion)" in run.output
    assert {c["status"] for c in summary["criteria"]} - {"not covered"} == {"could not check"}
    results = _results(alluredir)
    assert results and all(_labels(r, "verdict") == ["could not check"] for r in results)
    assert _category_of(results[0]["statusDetails"]["message"]) == "Could not check"
    assert "target=live" in (alluredir / "environment.properties").read_text()


def test_no_secret_reaches_any_file_or_the_terminal(suite, tmp_path):
    # Sentry unreachable: every check "could not check", with the organisation (= a secret) in
    # each message's URL and in environment.properties.
    env = {**SECRETS, "SENTRY_BASE_URL": "http://127.0.0.1:9", "SENTRY_ORG": SECRETS["PAGERDUTY_ROUTING_KEY"]}
    run, alluredir, _ = suite("--target=live", "--api-deadline=1", "-k", "cron or integration", env=env)
    assert run.returncode == 3, run.output
    assert "[redacted]" in (alluredir / "environment.properties").read_text()
    leaks = [(path, name) for path in tmp_path.rglob("*") if path.is_file() and "world" not in path.name
             for name, value in SECRETS.items() if value in path.read_text(errors="replace")]
    assert not leaks
    assert not [name for name, value in SECRETS.items() if value in run.output], run.output


def _category_of(message: str) -> str | None:
    """The first category whose messageRegex matches the whole message (Allure 2 semantics)."""
    return next((c["name"] for c in categories_json() if re.fullmatch(c["messageRegex"], message)), None)


# --- the pieces -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("finding", [
    Finding("Webhook Processing Failure", "window", "600s", "900s", source="detector 5801004 + workflow 9301001"),
    Finding("Payment Failure Rate Spike", "actions", "[email team:on-call, slack #payments-alerts]",
            "[slack #payments-alerts]", source="metric alert 7", hint="missing email team:on-call"),
    Finding("Checkout p95 Latency (/api/checkout/pro)", "critical threshold", "1000", "none"),
])
def test_config_diff_rows_round_trip_finding_lines(finding):
    (row,) = config_diff.parse_rows(f"summary line\n  - {finding.line()}")
    assert (row.alert, row.field, row.expected) == (finding.alert, finding.field, str(finding.expected))
    assert (row.actual, row.where, row.hint) == (str(finding.actual), finding.source, finding.hint)


def test_verdict_precedence_and_exit_codes():
    def checks(*statuses):
        return [verdict.CheckResult(f"t{n}", "C", s, f"reason {s}") for n, s in enumerate(statuses)]

    assert verdict.exit_code(verdict.judge(checks("pass", "warning"))) == 0
    assert verdict.exit_code(verdict.judge(checks("pass", "could not check"))) == 3
    (judged,) = verdict.judge(checks("could not check", "fail", "pass"))
    assert (judged.status, judged.reason, judged.counted) == ("fail", "reason fail", "1/3")
    assert verdict.exit_code([judged]) == 1
    assert verdict.first_reason("X: 1 mismatch (window)\n  - X: window expected 1, actual 2") == \
        "X: window expected 1, actual 2"
    assert verdict.first_reason("Failed: could not check: no token") == "could not check: no token"


def test_guide_placement_and_severity():
    assert guide.placement("Sentry Slack integration configured").feature == "§3 Slack Integration Setup"
    unknown = guide.placement("Something new", "§5 PagerDuty: the service")
    assert (unknown.epic, unknown.feature) == ("Pre-Deployment", "§5 PagerDuty Integration")
    assert [guide.alert_severity(s) for s in ("fatal", "critical", "high", "error", "medium", "low")] == \
        ["blocker", "blocker", "critical", "normal", "minor", "trivial"]


@pytest.mark.parametrize("message, category", [
    ("Failed: could not check: SENTRY_AUTH_TOKEN is not set", "Could not check"),
    ("Failed: Slack delivery: test event m-1 not in #payments-alerts within 60s", "Delivery failure"),
    ("Failed: Webhook Signature Verification Failure Spike: 1 mismatch (enabled)\n  - x", "Security"),
    ("Failed: Checkout p95 Latency (/api/checkout/pro): 1 mismatch (critical threshold)\n  - y", "Latency budget"),
    ("Failed: Payment Failure Rate Spike: 1 mismatch (threshold)\n  - P: threshold expected 10, actual 20", "Config drift"),
])
def test_categories_sort_failures_by_kind(message, category):
    assert _category_of(message) == category
    # Allure 3 tests the same patterns with JavaScript's RegExp.test: no inline flags allowed.
    assert all("(?s" not in c.message_regex and "(?i" not in c.message_regex for c in CATEGORIES)


def test_scrub_catches_escaped_spellings_and_the_dsn_key(tmp_path):
    env = {"SLACK_BOT_TOKEN": 'xoxb-with"quote/slash', "SENTRY_DSN": SECRETS["SENTRY_DSN"]}
    assert "xoxb" not in scrub(json.dumps({"m": 'xoxb-with"quote/slash'}), env)
    assert "d5nPublicKeySecret42" not in scrub("key d5nPublicKeySecret42 leaked", env)
    assert "d5nPublicKeySecret42" in known_secrets(env)
    assert scrub("no secret here", {}) == "no secret here"
    leaked = tmp_path / "r" / "x-result.json"
    leaked.parent.mkdir()
    leaked.write_text(json.dumps({"message": 'token xoxb-with"quote/slash'}))
    assert scrub_files([tmp_path / "r"], env) == [leaked]
    assert "xoxb" not in leaked.read_text()


def test_environment_properties_are_one_line_each_and_scrubbed(monkeypatch):
    monkeypatch.setenv("PAGERDUTY_API_TOKEN", "pd-secret-value")
    text = environment_properties({"a": "x\ny", "b": "uses pd-secret-value"})
    assert text == "a=x\\ny\nb=uses [redacted]\n"


def test_selftest_runs_write_under_reports_selftest():
    from fixtures.reporting import _redirect_selftest_outputs

    def config(*args):
        option = SimpleNamespace(allure_report_dir="reports/allure-results", xmlpath="reports/junit.xml")
        return SimpleNamespace(rootpath=REPO, args=list(args), invocation_params=SimpleNamespace(dir=REPO),
                               option=option)

    own = config("tests", "tests/test_query.py::test_x")
    _redirect_selftest_outputs(own)
    assert (own.option.allure_report_dir, own.option.xmlpath) == \
        ("reports/selftest/allure-results", "reports/selftest/junit.xml")
    for args in [("checks",), ("tests", "checks")]:
        mixed = config(*args)
        _redirect_selftest_outputs(mixed)
        assert mixed.option.allure_report_dir == "reports/allure-results"


# --- paymon report ---------------------------------------------------------------------------------------


def test_report_fails_with_one_line_without_node(tmp_path):
    with pytest.raises(ReportToolMissing, match="npm install -g allure"):
        allure_command(which=lambda name: None)
    (tmp_path / "allure-results").mkdir()
    (tmp_path / "allure-results" / "1-result.json").write_text("{}")
    done = subprocess.run([sys.executable, "-m", "paymon.cli", "report", "--reports", str(tmp_path)],
                          env={"PATH": str(tmp_path / "nothing-here")}, capture_output=True, text=True)
    assert done.returncode == 2
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("paymon: paymon report needs Allure Report 3")


def test_allure2_on_path_is_passed_over_for_npx():
    def run(cmd, **kwargs):
        return subprocess.CompletedProcess(cmd, 0, stdout="2.32.0\n", stderr="")

    command = allure_command(which=lambda name: f"/usr/bin/{name}", run=run)
    assert command == ["/usr/bin/npx", "--yes", "allure@3.18.0"]


def test_report_generates_with_history_and_records_the_run(tmp_path):
    reports = tmp_path / "reports"
    (reports / "allure-results").mkdir(parents=True)
    (reports / "allure-results" / "1-result.json").write_text("{}")
    (reports / "verdict.json").write_text(json.dumps({"started": 1.0, "exit_code": 0, "criteria": []}))
    paths = ReportPaths.under(reports)
    calls = []

    def fake_allure(cmd, **kwargs):
        calls.append(cmd)
        config = json.loads(Path(cmd[cmd.index("--config") + 1]).read_text())
        Path(config["historyPath"]).write_text('{"uuid": "run-1"}\n')  # what Allure 3 appends
        output = Path(cmd[cmd.index("--output") + 1])
        output.mkdir(parents=True)
        (output / "index.html").write_text("<html></html>")
        return subprocess.CompletedProcess(cmd, 0, "", "")

    assert record_run(paths) and not record_run(paths)  # a run is recorded once
    index = build_report(paths, command=["allure"], run=fake_allure)
    (cmd,) = calls
    assert cmd[:3] == ["allure", "generate", str(paths.results)]
    config = json.loads((reports / "allurerc.json").read_text())
    assert config["historyPath"] == str(paths.history.resolve())
    assert [r["name"] for r in config["categories"]["rules"]][0] == "Could not check"
    assert index.exists() and (paths.output / "history.jsonl").read_text() == '{"uuid": "run-1"}\n'
    assert config["plugins"]["awesome"]["options"]["groupBy"] == ["epic", "feature", "story"]
    # A second report replaces the first (a stale data/ would keep Allure from flattening its output).
    (paths.output / "data").mkdir()
    build_report(paths, command=["allure"], run=fake_allure)
    assert not (paths.output / "data").exists()


def test_report_refuses_to_overwrite_a_directory_that_is_not_a_report(tmp_path):
    reports = tmp_path / "reports"
    (reports / "allure-results").mkdir(parents=True)
    (reports / "allure-results" / "1-result.json").write_text("{}")
    elsewhere = tmp_path / "my-notes"
    elsewhere.mkdir()
    (elsewhere / "todo.txt").write_text("keep me")
    with pytest.raises(ReportFailed, match="is not a report paymon made"):
        build_report(ReportPaths.under(reports, output=elsewhere), command=["allure"], run=None)
    assert (elsewhere / "todo.txt").exists()


@pytest.mark.parametrize("layout", ["a web root", "the current directory", "a previous report of someone else"])
def test_report_replaces_only_a_directory_it_made(tmp_path, monkeypatch, capsys, layout):
    """An index.html is not enough (issue 14 item 4): `--output .` or a web root would be deleted."""
    from paymon import cli

    reports = tmp_path / "reports"
    (reports / "allure-results").mkdir(parents=True)
    (reports / "allure-results" / "1-result.json").write_text("{}")
    target = {"a web root": tmp_path / "www", "the current directory": tmp_path,
              "a previous report of someone else": tmp_path / "allure-report"}[layout]
    target.mkdir(exist_ok=True)
    (target / "index.html").write_text("<html>keep me</html>")
    (target / "data").mkdir(exist_ok=True)
    monkeypatch.chdir(tmp_path)
    code = cli.main(["report", "--reports", str(reports), "--output", "." if target == tmp_path else str(target)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "is not a report paymon made" in err[0] and "Traceback" not in err[0]
    assert (target / "index.html").read_text() == "<html>keep me</html>" and (target / "data").is_dir()


def test_weekly_page_summarises_stored_runs():
    day = 24 * 3600
    runs = [
        {"started": 10 * day, "exit_code": 1, "criteria": [
            {"criterion": "All 6 Sentry alert rules configured", "status": "fail", "reason": "X: window expected 1, actual 2"}]},
        {"started": 11 * day, "exit_code": 0, "criteria": [
            {"criterion": "All 6 Sentry alert rules configured", "status": "pass", "reason": ""}]},
        {"started": 1 * day, "exit_code": 3, "criteria": []},  # older than a week: left out
    ]
    page = render_weekly(runs)
    assert "2 runs: 1 fail, 1 pass" in page
    assert "X: window expected 1, actual 2 (1x)" in page and "<svg" in page and "1/2" in page


# --- measuring checks: latency histogram, delivery timeline, the warning's text ------------------------

MEASURING_CHECKS = ["checks/test_payment_endpoints.py", "checks/test_delivery.py"]


def test_measuring_checks_attach_png_and_table_with_no_secret(run_suite, tmp_path):
    alluredir = tmp_path / "allure-measured"
    # The known secrets are set, and the sandbox app verifies webhooks with the webhook secret: the
    # p95 probe of the webhook signs every request with it.
    env = {k: v for k, v in SECRETS.items() if k != "SENTRY_DSN"}
    run = run_suite(*MEASURING_CHECKS, f"--alluredir={alluredir}", env=env)
    assert run.returncode == 0, run.output
    results = _results(alluredir)
    for path in ("/api/checkout/pro", "/api/checkout/payg", "/api/webhooks/lemonsqueezy",
                 "/api/subscription/payg/create"):
        attached = {a["name"]: a for a in _by_name(results, f"test_endpoint_p95[{path}]")["attachments"]}
        assert attached["latency histogram"]["type"] == "image/png"
        assert (alluredir / attached["latency histogram"]["source"]).read_bytes().startswith(PNG_SIGNATURE)
        table = (alluredir / attached["latency statistics"]["source"]).read_text().splitlines()
        assert table[0] == "statistic,value" and f"endpoint,{path}" in table and "verdict,pass" in table
    slack = {a["name"]: a for a in _by_name(results, "test_slack_delivery")["attachments"]}
    page = {a["name"]: a for a in _by_name(results, "test_pagerduty_delivery")["attachments"]}
    for attached in (slack, page):
        assert (alluredir / attached["delivery timeline"]["source"]).read_bytes().startswith(PNG_SIGNATURE)
    rows = (alluredir / page["delivery timeline (table)"]["source"]).read_text().splitlines()
    assert rows[0] == "step,at (UTC),seconds since firing,deadline (s),status,detail"
    assert [r.split(",")[0] for r in rows[1:]] == ["test event fired", "alert created", "assigned to on-call"]
    assert all(",300,on time," in r for r in rows[2:])
    assert any(r.startswith("seen in Slack #payments-alerts,") and ",60,on time," in r for r in
               (alluredir / slack["delivery timeline (table)"]["source"]).read_text().splitlines())
    # verdict.json carries the numbers for the weekly trends.
    measured = json.loads((tmp_path / "verdict.json").read_text())["measurements"]
    assert sorted(m.get("endpoint") or m["route"] for m in measured) == sorted(
        ["/api/checkout/pro", "/api/checkout/payg", "/api/webhooks/lemonsqueezy", "/api/subscription/payg/create",
         "Slack", "PagerDuty"])
    leaks = [(path.name, name) for path in tmp_path.rglob("*") if path.is_file() and "world" not in path.name
             for name, value in SECRETS.items() if value.encode() in path.read_bytes()]
    assert not leaks


def test_charts_draw_only_scrubbed_text(monkeypatch):
    from paymon.delivery.endtoend import Delivery
    from paymon.probes.latency import Budget, summarize
    from paymon.reporting import attachments, charts, timeline

    monkeypatch.setenv("SLACK_BOT_TOKEN", SECRETS["SLACK_BOT_TOKEN"])
    secret_endpoint = f"/api/x?token={SECRETS['SLACK_BOT_TOKEN']}"
    report = summarize([], rate=10, budget=Budget(500, 1000))
    figure = charts.latency_histogram(report, secret_endpoint)
    texts = [t.get_text() for ax in figure.axes for t in (ax.title, ax.xaxis.label)] + \
        [t.get_text() for legend in figure.legends for t in legend.get_texts()]
    assert not any(SECRETS["SLACK_BOT_TOKEN"] in t for t in texts) and any("[redacted]" in t for t in texts)
    (png, table) = attachments.latency_attachments(report, secret_endpoint)
    assert png.body.startswith(PNG_SIGNATURE) and SECRETS["SLACK_BOT_TOKEN"] not in table.body
    line = timeline.slack_timeline(Delivery(f"M {SECRETS['SLACK_BOT_TOKEN']}", 100.0, 60), "#payments-alerts")
    figure = charts.delivery_timeline(line)
    assert SECRETS["SLACK_BOT_TOKEN"] not in figure.axes[0].title.get_text()
    assert line.outcome == "seen in Slack #payments-alerts: missing"
    assert all(SECRETS["SLACK_BOT_TOKEN"] not in a.body for a in attachments.delivery_attachments(line)
               if isinstance(a.body, str))


def test_pagerduty_timeline_reads_log_entries_at_the_end_of_their_second():
    from paymon.delivery.endtoend import Delivery
    from paymon.reporting.timeline import LATE, MISSING, ON_TIME, pagerduty_timeline

    delivery = Delivery("PAYMON-TEST-X-PAGE", 1000.2, 300, arrived_at=1012.999)
    entries = [{"type": "assign_log_entry", "created_at": "1970-01-01T00:16:52Z", "assignees": [{"id": "U1"}]},
               {"type": "notify_log_entry", "created_at": "1970-01-01T00:23:00Z", "user": {"id": "U2"}}]
    line = pagerduty_timeline(delivery, {"id": "Q1", "urgency": "low"}, entries, {"U1"})
    assert [(s.what, s.status(300)) for s in line.steps] == [("alert created", ON_TIME), ("assigned to on-call", ON_TIME)]
    assert round(line.steps[1].seconds, 3) == 12.799  # stamped 1012, happened before 1013
    only_u2 = pagerduty_timeline(delivery, {"id": "Q1", "urgency": "low"}, entries, {"U2"})
    assert only_u2.steps[1].status(300) == MISSING  # assigned, but not to the on-call user
    never = pagerduty_timeline(Delivery("PAYMON-TEST-Y-PAGE", 1000.0, 300, polls=4), None, [], set())
    assert [s.status(300) for s in never.steps] == [MISSING] * 2 and LATE not in never.outcome
    assert never.steps[0].detail == "polled 4x"


def test_a_p95_warning_shows_its_reason_on_the_verdict_screen(run_suite, tmp_path):
    import yaml

    spec = yaml.safe_load((REPO / "monitoring.yaml").read_text())
    for budget in spec["performance"]["budgets"]:
        if budget["transaction"] == "/api/checkout/payg":
            budget["warning"], budget["critical"] = 10, 200  # the sandbox's payg p95 lands between
    scaled = tmp_path / "scaled-monitoring.yaml"
    scaled.write_text(yaml.safe_dump(spec, sort_keys=False))
    world = golden_world()
    world["app"]["knobs"]["latency_ms"] = {"default": {"p50": 3, "p95": 6}, "/api/checkout/payg": 25}
    run = run_suite("checks/test_payment_endpoints.py", f"--spec={scaled}", "-k", "p95", world=world)
    assert run.returncode == 0, run.output
    # (The screen is 80 columns in a subprocess: long lines end in "…".)
    assert re.search(r"^WARNING\s+1/4\s+Performance monitoring enabled for payment endpoints",
                     run.output, re.M), run.output
    assert re.search(r"^\s+warning: /api/checkout/payg: p95 [0-9.]+ ms", run.output, re.M), run.output
    summary = json.loads((tmp_path / "verdict.json").read_text())
    (criterion,) = [c for c in summary["criteria"] if c["status"] != "not covered"]
    assert criterion["status"] == "warning" and criterion["reason"].startswith("warning: /api/checkout/payg: p95")


def test_weekly_page_plots_the_stored_measurements():
    day = 24 * 3600
    runs = [{"started": n * day, "exit_code": 0, "criteria": [], "failures_by_category": {"Config drift": n},
             "measurements": [
                 {"kind": "delivery", "route": "Slack", "deadline_s": 60, "seconds": 10.0 * n},
                 {"kind": "p95", "endpoint": "/api/checkout/pro", "p95_ms": 100.0 + n, "ci_low_ms": 90.0,
                  "ci_high_ms": 120.0, "verdict": "pass", "warning_ms": 500, "critical_ms": 1000},
                 {"kind": "real_alert", "alert": "Payment Failure Rate Spike", "source": "Slack", "id": "a1",
                  "at": n * day}]} for n in (1, 2, 3, 7)]
    page = render_weekly(runs)
    assert page.count('<img class="plot"') == 4
    assert "<td>Slack</td><td>4</td><td>25.0 s</td><td>70.0 s</td><td>60 s</td><td>1</td>" in page
    assert "<td>/api/checkout/pro</td><td>4</td><td>107.0 ms</td>" in page
    assert "<td>Config drift</td><td>13</td>" in page
    # Overlapping runs report the same firing: counted once.
    assert "<td>Payment Failure Rate Spike</td><td>Slack</td><td>1</td>" in page


def test_a_first_run_draws_its_trends_without_a_warning():
    """One stored run: matplotlib widens a single date to years and warns; the page gives it a day."""
    import warnings

    run = {"started": 1_790_000_000, "exit_code": 0, "criteria": [], "failures_by_category": {},
           "measurements": [{"kind": "delivery", "route": "Slack", "deadline_s": 60, "seconds": 1.0},
                            {"kind": "p95", "endpoint": "/api/checkout/pro", "p95_ms": 20.0, "ci_low_ms": 15.0,
                             "ci_high_ms": 30.0, "verdict": "pass", "warning_ms": 500, "critical_ms": 1000}]}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        page = render_weekly([run], now=run["started"] + 60)
    assert page.count('<img class="plot"') >= 2


@pytest.mark.parametrize("title", ["Charge $x^$ failed", "Refund of $5 and $6 failed", "a lone $ sign"])
def test_dollar_signs_in_drawn_text_stay_text(title):
    """Incident titles and error types are data: matplotlib's mathtext once parsed them as formulas
    and "Charge $x^$ failed" raised ValueError, taking the weekly page down (issue 14 item 5)."""
    from paymon.reporting import charts

    figure = charts.category_bars(["2026-12-01", "2026-12-02"], {title: [1, 2]}, {}, "firings",
                                  f"Alerts that fired for real: {title}")
    assert charts.png_bytes(figure).startswith(b"\x89PNG")
    axes = figure.axes[0]
    assert axes.get_title() == f"Alerts that fired for real: {title}"
    assert not axes.title.get_parse_math()
