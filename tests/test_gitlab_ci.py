"""`.gitlab-ci.yml` is valid GitLab CI (GitLab's own schema, vendored in check-jsonschema: no
network) and says what the README promises: the gate blocks the deploy, the synthetic run is
scheduled, the drill runs only when asked, the report keeps its history, secrets stay unprinted."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

CI_FILE = Path(__file__).resolve().parent.parent / ".gitlab-ci.yml"


@pytest.fixture(scope="module")
def ci() -> dict:
    return yaml.safe_load(CI_FILE.read_text())


def _check_jsonschema() -> list[str]:
    exe = shutil.which("check-jsonschema", path=str(Path(sys.executable).parent))
    return [exe] if exe else [sys.executable, "-m", "check_jsonschema"]


def test_validates_against_gitlabs_schema():
    done = subprocess.run([*_check_jsonschema(), "--builtin-schema", "vendor.gitlab-ci", str(CI_FILE)],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def _script(job: dict) -> str:
    return "\n".join(job.get("script", []))


def _rules(job: dict) -> str:
    return "\n".join(str(rule) for rule in job.get("rules", []))


def test_verify_gates_the_deploy(ci):
    verify = ci["verify"]
    assert ci["stages"].index(verify["stage"]) < ci["stages"].index("deploy")
    assert verify["allow_failure"] is False
    assert "pytest --target live -n auto" in _script(verify)
    assert "schedule" in _rules(verify) and "'when': 'never'" in _rules(verify)


def test_synthetic_run_is_scheduled_with_a_documented_interval(ci):
    assert '$CI_PIPELINE_SOURCE == "schedule"' in _rules(ci["synthetic"])
    assert ci["variables"]["PAYMON_SYNTHETIC_INTERVAL"].count(" ") == 4  # a cron expression


def test_drill_runs_only_when_asked(ci):
    drill = ci["drill"]
    assert "pytest --target live --drill" in _script(drill)
    for rule in drill["rules"]:
        assert rule.get("when") == "manual" or '$PAYMON_DRILL == "true"' in rule["if"]


def test_results_are_kept_and_junit_reported(ci):
    template = ci[".paymon"]
    assert template["artifacts"]["reports"]["junit"] == "reports/junit.xml"
    assert "reports/allure-results/" in template["artifacts"]["paths"]
    assert template["artifacts"]["when"] == "always"
    for job in ("verify", "synthetic", "drill"):
        assert ci[job]["extends"] == ".paymon"


def test_pages_carries_history_from_the_previous_report(ci):
    pages = ci["pages"]
    script = _script(pages)
    assert script.index("history.jsonl") < script.index("paymon report --output public")
    assert "jobs/artifacts/$CI_DEFAULT_BRANCH/raw/public/$file?job=pages" in script
    assert pages["artifacts"]["paths"] == ["public"]
    assert {n["job"] for n in pages["needs"]} == {"verify", "synthetic"}


def test_own_merge_requests_run_both_suites(ci):
    selftest = ci["selftest"]
    assert "merge_request_event" in _rules(selftest)
    assert [line.split("#")[0].strip() for line in selftest["script"]] == ["python tests/run.py", "pytest"]


def test_no_job_prints_the_environment(ci):
    commands = "\n".join(line for job in ci.values() if isinstance(job, dict)
                         for key in ("before_script", "script", "after_script") for line in job.get(key, []))
    for forbidden in ("set -x", "printenv", "env |", "echo $SENTRY", "echo $SLACK", "echo $PAGERDUTY"):
        assert forbidden not in commands
    assert "CI_DEBUG_TRACE" not in ci["variables"]
