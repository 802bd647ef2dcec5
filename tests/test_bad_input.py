"""Bad input gets one clear line and exit 2, never a traceback, a wrong verdict or an unbounded
wait (issue 14 item 3): a corpus of broken monitoring.yaml values and settings, each tried through
`paymon spec check`, the suite (`pytest`) and a command that reads the setting."""

from __future__ import annotations

import pytest
import yaml

from paymon import cli
from paymon.config.settings import api_deadline
from paymon.errors import SettingsError
from tests.conftest import REPO


def _spec_with(tmp_path, change) -> str:
    data = yaml.safe_load((REPO / "monitoring.yaml").read_text())
    change(data)
    path = tmp_path / "monitoring.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(path)


def _set(path: str, value):
    def change(data):
        *parents, leaf = path.split(".")
        node = data
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        node[int(leaf) if leaf.isdigit() else leaf] = value
    return change


BAD_SPECS = {
    "an infinite deadline": (_set("delivery.pagerduty.deadline", float("inf")), "delivery.pagerduty.deadline"),
    "a zero window": (_set("alerts.1.window", "0m"), "alerts[1].window"),
    "a negative duration": (_set("cron.last_checkin_within", -3600), "cron.last_checkin_within"),
    "a nan threshold": (_set("alerts.0.threshold", float("nan")), "alerts[0].threshold"),
    "an infinite limit": (_set("usage_reporting.max_failure_rate", float("inf")), "usage_reporting.max_failure_rate"),
    "a word for a duration": (_set("delivery.slack.deadline", "soon"), "delivery.slack.deadline"),
    "a javascript: runbook": (_set("runbook.url", "javascript:alert(1)//"), "runbook.url"),
    "a file: runbook": (_set("runbook.url", "file:///etc/passwd#"), "runbook.url"),
    "an unknown signature alert": (_set("webhook_security.alert", "Signature Spike (renamed)"),
                                   "webhook_security.alert"),
}


@pytest.mark.parametrize("name", sorted(BAD_SPECS))
def test_a_bad_monitoring_yaml_value_is_one_line_and_exit_2(name, tmp_path, capsys):
    change, where = BAD_SPECS[name]
    assert cli.main(["spec", "check", _spec_with(tmp_path, change)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and where in lines[0] and "Traceback" not in lines[0], lines


def test_the_suite_stops_on_a_bad_value_with_the_same_line(tmp_path, run_suite):
    spec = _spec_with(tmp_path, BAD_SPECS["an infinite deadline"][0])
    suite = run_suite(f"--spec={spec}", "checks/test_cron.py")
    assert suite.returncode == 2 and "delivery.pagerduty.deadline" in suite.output, suite.output
    assert "Traceback" not in suite.output


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "abc", "0", "-5", ""])
def test_a_bad_api_deadline_is_refused(value):
    with pytest.raises(SettingsError, match=r"expected a (finite )?number of seconds > 0"):
        api_deadline(None, {"PAYMON_API_DEADLINE": value})
    with pytest.raises(SettingsError, match="--api-deadline"):
        api_deadline(value)
    assert api_deadline(None, {}) == 30.0 and api_deadline("2.5") == 2.5


@pytest.mark.parametrize("value", ["nan", "abc"])
def test_a_bad_api_deadline_is_one_line_and_exit_2(value, run_suite, monkeypatch, capsys):
    suite = run_suite("checks/test_cron.py", env={"PAYMON_API_DEADLINE": value})
    assert suite.returncode == 2, suite.output
    assert "PAYMON_API_DEADLINE" in suite.output and "Traceback" not in suite.output
    monkeypatch.setenv("PAYMON_API_DEADLINE", value)
    assert cli.main(["review", "thresholds"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "PAYMON_API_DEADLINE" in err[0]


@pytest.mark.parametrize("value", ["nan", "inf", "0"])
def test_review_periods_must_be_finite(value, capsys):
    with pytest.raises(SystemExit) as stopped:
        cli.main(["backtest", "--days", value])
    assert stopped.value.code == 2 and "expected a finite positive number" in capsys.readouterr().err
