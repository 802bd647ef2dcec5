"""Bad input gets one clear line and exit 2, never a traceback, a wrong verdict or an unbounded
wait (issue 14 item 3): a corpus of broken monitoring.yaml values and settings, each tried through
`paymon spec check`, the suite (`pytest`) and a command that reads the setting."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

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
}


@pytest.mark.parametrize("name", sorted(BAD_SPECS))
def test_a_bad_monitoring_yaml_value_is_one_line_and_exit_2(name, tmp_path, run_suite):
    change, where = BAD_SPECS[name]
    spec = _spec_with(tmp_path, change)
    checked = subprocess.run([sys.executable, "-m", "paymon.cli", "spec", "check", spec], cwd=REPO,
                             capture_output=True, text=True)
    assert checked.returncode == 2, checked.stdout + checked.stderr
    lines = checked.stderr.strip().splitlines()
    assert len(lines) == 1 and where in lines[0] and "Traceback" not in checked.stderr, checked.stderr
    suite = run_suite(f"--spec={spec}", "checks/test_cron.py")
    assert suite.returncode == 2 and where in suite.output and "Traceback" not in suite.output, suite.output


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "abc", "0", "-5", ""])
def test_a_bad_api_deadline_is_one_line_and_exit_2(value, run_suite):
    suite = run_suite("checks/test_cron.py", env={"PAYMON_API_DEADLINE": value} if value else {},
                      *([] if value else ["--api-deadline="]))
    assert suite.returncode == 2, suite.output
    assert "expected a" in suite.output and "seconds > 0" in suite.output and "Traceback" not in suite.output
    review = subprocess.run([sys.executable, "-m", "paymon.cli", "review", "thresholds"], cwd=REPO,
                            env={"PATH": "/usr/bin:/bin", "PAYMON_API_DEADLINE": value or "nope"},
                            capture_output=True, text=True)
    assert review.returncode == 2, review.stdout + review.stderr
    assert review.stderr.strip().count("\n") == 0 and "PAYMON_API_DEADLINE" in review.stderr


@pytest.mark.parametrize("value", ["nan", "inf", "0"])
def test_review_periods_must_be_finite(value):
    done = subprocess.run([sys.executable, "-m", "paymon.cli", "backtest", "--days", value], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "expected a finite positive number" in done.stderr
