"""monitoring.yaml: the real file loads, and broken files give one line naming the key path."""

import subprocess
import sys

import pytest
import yaml

from paymon.errors import ConfigError
from paymon.config.spec import load_spec, parse_duration, parse_spec

from conftest import REPO


@pytest.fixture(scope="module")
def raw():
    return yaml.safe_load((REPO / "monitoring.yaml").read_text())


def test_monitoring_yaml_holds_the_whole_guide():
    spec = load_spec(REPO / "monitoring.yaml")
    assert [a.name for a in spec.alerts] == [
        "Payment Failure Rate Spike",
        "Webhook Processing Failure",
        "Webhook Signature Verification Failure Spike",
        "Usage Reporting Failure Rate",
        "Reconciliation Discrepancy Detected",
        "Test Mode Detected in Production",
    ]
    assert {(b.transaction, b.warning, b.critical) for b in spec.performance.budgets} == {
        ("/api/checkout/pro", 500, 1000),
        ("/api/checkout/payg", 500, 1000),
        ("/api/webhooks/lemonsqueezy", 1000, 2000),
        ("/api/subscription/payg/create", 300, 500),
    }
    assert spec.alert("Webhook Processing Failure").window == 600
    assert spec.alert("Test Mode Detected in Production").any_occurrence
    assert len(spec.dashboard.widgets) == 5
    assert (spec.cron.schedule, spec.cron.timezone) == ("0 2 * * *", "UTC")
    assert spec.delivery.slack.deadline == 60 and spec.delivery.pagerduty.deadline == 300
    assert {c.name for c in spec.channels} == {"#payments-alerts", "#security-alerts", "#exec-alerts"}


@pytest.mark.parametrize("text,seconds", [("5m", 300), ("60s", 60), ("1h", 3600), (90, 90), ("10 min", 600)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


def _broken(raw, mutate):
    import copy

    data = copy.deepcopy(raw)
    mutate(data)
    return yaml.safe_dump(data)


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda d: d["alerts"][2].__setitem__("threshold", "lots"),
         "alerts[2].threshold (Webhook Signature Verification Failure Spike): Input should be a valid number"),
        (lambda d: d["alerts"][0].__setitem__("window", "soon"),
         "alerts[0].window (Payment Failure Rate Spike): expected a duration like 5m or 60s"),
        (lambda d: d["alerts"][1]["actions"].append({"email": "nobody"}),
         "e-mail recipient 'nobody' is not listed under recipients"),
        (lambda d: d["alerts"][0]["actions"].append({"slack": "payments-alerts"}),
         "slack channel must start with '#'"),
        (lambda d: d.pop("cron"), "cron: Field required"),
        (lambda d: d["performance"]["budgets"][0].__setitem__("warning", 2000),
         "performance.budgets[0]: warning must be below critical"),
        (lambda d: d["alerts"][0].__setitem__("colour", "red"),
         "alerts[0].colour (Payment Failure Rate Spike): Extra inputs are not permitted"),
        (lambda d: d["usage_reporting"].__setitem__("max_failure_rate", 5),
         "usage_reporting.max_failure_rate: Input should be less than or equal to 1"),
        (lambda d: d["usage_reporting"].__setitem__("alert", "Usage Alert"),
         "usage_reporting.alert: 'Usage Alert' is not one of the alerts"),
        (lambda d: d["cron"].__setitem__("last_checkin_within", "a day"),
         "cron.last_checkin_within: expected a duration like 5m or 60s"),
    ],
)
def test_broken_file_names_the_key_path(raw, mutate, message):
    with pytest.raises(ConfigError) as err:
        parse_spec(_broken(raw, mutate))
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_not_yaml_is_one_line():
    with pytest.raises(ConfigError, match=r"line 1, column 6: not valid YAML"):
        parse_spec("a: [b")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_spec(tmp_path / "nope.yaml")


def test_cli_spec_check_exit_codes(tmp_path, raw):
    ok = subprocess.run([sys.executable, "-m", "paymon.cli", "spec", "check", str(REPO / "monitoring.yaml")],
                        capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert "6 alerts, 4 performance budgets" in ok.stdout
    bad = tmp_path / "monitoring.yaml"
    bad.write_text(_broken(raw, lambda d: d["alerts"][1].__setitem__("comparator", "more")))
    run = subprocess.run([sys.executable, "-m", "paymon.cli", "spec", "check", str(bad)],
                         capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert "alerts[1].comparator (Webhook Processing Failure)" in run.stderr


def test_suite_refuses_a_broken_spec_with_exit_2(tmp_path, raw, run_suite):
    bad = tmp_path / "monitoring.yaml"
    bad.write_text(_broken(raw, lambda d: d["alerts"][3].pop("actions")))
    result = run_suite(f"--spec={bad}")
    assert result.returncode == 2
    assert "alerts[3].actions (Usage Reporting Failure Rate): Field required" in result.output
    assert "Traceback" not in result.output
