"""`.gitlab-ci.yml` is valid GitLab CI (GitLab's own schema, vendored in check-jsonschema: no
network) and says what the README promises: the gate blocks the deploy, the synthetic run is
scheduled, the drill runs only when asked, the report keeps its history, secrets stay unprinted;
and runs never interfere: the jobs that act on production run one at a time, only the drill job
drills, and `pages` merges the histories it fetches run by run, one job at a time."""

from __future__ import annotations

import json
import os
import shlex
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
    verify = _resolved(ci, "verify")
    assert ci["stages"].index(verify["stage"]) < ci["stages"].index("deploy")
    assert verify["allow_failure"] is False
    assert "pytest --target live -n auto --profile gate" in _script(verify)
    assert "schedule" in _rules(verify) and "'when': 'never'" in _rules(verify)


def test_synthetic_run_is_scheduled_with_a_documented_interval(ci):
    assert '$CI_PIPELINE_SOURCE == "schedule"' in _rules(ci["synthetic"])
    assert ci["variables"]["PAYMON_SYNTHETIC_INTERVAL"].count(" ") == 4  # a cron expression


def test_drill_runs_only_when_asked(ci):
    drill = ci["drill"]
    assert "pytest --target live --profile drill" in _script(drill)
    for rule in drill["rules"]:
        assert rule.get("when") == "manual" or '$PAYMON_PROFILE == "drill"' in rule["if"]


def test_each_live_job_runs_its_profile(ci):
    """Every job acting on production names one run profile of monitoring.yaml on its command line
    (a pipeline variable may pick the job, never widen it); post-deploy runs at T+1h, 4h, 24h."""
    from paymon.config.spec import load_spec

    profiles = load_spec(CI_FILE.parent / "monitoring.yaml").profiles.profiles
    named = {}
    for name, job in _live_jobs(ci).items():
        command = _pytest_command(job)
        named[name] = command[command.index("--profile") + 1]
        assert named[name] in profiles, (name, named[name])
    assert named == {"verify": "gate", "synthetic": "synthetic", "review": "review", "drill": "drill",
                     "post-deploy-1h": "post-deploy", "post-deploy-4h": "post-deploy",
                     "post-deploy-24h": "post-deploy", "dashboard-review": "post-deploy"}
    # §7 "Review payment dashboard metrics daily for first week": a daily schedule's pipeline.
    assert ci["dashboard-review"]["rules"] == [
        {"if": '$CI_PIPELINE_SOURCE == "schedule" && $PAYMON_PROFILE == "post-deploy"'}]
    # only the review: the T+24h watch's "could not check" on later days would fail the daily job
    review_command = _pytest_command(_resolved(ci, "dashboard-review"))
    assert review_command[review_command.index("-k") + 1] == "test_dashboard_metrics_reviewed_daily_in_the_first_week"
    delays = {name: [r for r in ci[name]["rules"] if r.get("when") == "delayed"][0]["start_in"]
              for name in ("post-deploy-1h", "post-deploy-4h", "post-deploy-24h")}
    assert delays == {"post-deploy-1h": "1 hour", "post-deploy-4h": "4 hours", "post-deploy-24h": "24 hours"}
    assert ci["stages"].index("deploy") < ci["stages"].index("post-deploy")
    # Each live job reads the run history the pages job publishes (the day's budgets, pooled p95).
    for job in _live_jobs(ci).values():
        assert "runs.jsonl" in "\n".join(job["before_script"]) and job["variables"]["PAYMON_HISTORY"]


def test_results_are_kept_and_junit_reported(ci):
    template = ci[".paymon"]
    assert template["artifacts"]["reports"]["junit"] == "reports/junit.xml"
    assert "reports/allure-results/" in template["artifacts"]["paths"]
    assert template["artifacts"]["when"] == "always"
    assert ci[".paymon-live"]["extends"] == ".paymon"
    for job in ("verify", "synthetic", "drill", "review"):
        assert ci[job]["extends"] == ".paymon-live"


def test_pages_carries_history_from_the_previous_report(ci):
    pages = ci["pages"]
    script = _script(pages)
    assert script.index("history.jsonl") < script.index("paymon report --output public")
    assert "jobs/artifacts/$CI_DEFAULT_BRANCH/raw/public/$file?job=pages" in script
    assert pages["artifacts"]["paths"] == ["public"]
    assert {n["job"] for n in pages["needs"]} == {"verify", "synthetic", "review", "drill", "dashboard-review"}


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


# --- runs that never interfere (issue 12, item 5) ----------------------------------------------------

def _resolved(ci, name: str) -> dict:
    """A job with what it `extends` merged in (GitLab merges hashes deeply; lists and scalars of
    the job win), hidden templates included."""
    job = ci[name]
    if "extends" not in job:
        return job
    base = _resolved(ci, job["extends"])
    merged = {**base, **job}
    for key in ("variables",):
        if isinstance(base.get(key), dict) or isinstance(job.get(key), dict):
            merged[key] = {**base.get(key, {}), **job.get(key, {})}
    return merged


def _live_jobs(ci) -> dict[str, dict]:
    """The jobs (not templates) whose script runs paymon against the live services: they act on production."""
    return {name: _resolved(ci, name) for name, job in ci.items()
            if isinstance(job, dict) and not name.startswith(".") and "--target live" in _script(_resolved(ci, name))}


def test_jobs_that_act_on_production_share_one_resource_group(ci):
    live = _live_jobs(ci)
    assert set(live) == {"verify", "synthetic", "review", "drill", "post-deploy-1h", "post-deploy-4h",
                         "post-deploy-24h", "dashboard-review"}
    groups = {job.get("resource_group") for job in live.values()}
    assert groups == {"paymon-production"}, groups
    # Only they: paymon's own tests and the report must not wait behind a production run.
    others = {name for name, job in ci.items() if isinstance(job, dict) and not name.startswith(".")
              and _resolved(ci, name).get("resource_group") in groups}
    assert others == set(live)


def _pytest_command(job: dict) -> list[str]:
    (line,) = [line.split("#")[0] for line in job["script"] if line.strip().startswith("pytest")]
    return shlex.split(line)


@pytest.mark.parametrize("job", ["verify", "synthetic"])
def test_verify_and_synthetic_never_drill_whatever_paymon_profile_says(ci, job):
    command = _pytest_command(ci[job])
    assert "--drill" not in command
    # What the job's own command line collects on a pipeline where PAYMON_PROFILE=drill: no drill
    # check (the option wins over the variable). `-n auto` dropped: collection is the same on one process.
    args = [a for a in command[1:] if a not in ("-n", "auto")]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "PAYMON_"))}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=",
                           *args, "--collect-only", "-q"], cwd=CI_FILE.parent, capture_output=True, text=True,
                          env={**env, "PAYMON_PROFILE": "drill"}, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    collected = [line for line in done.stdout.splitlines() if "::" in line]
    assert any("test_delivery.py::test_pagerduty_delivery" in line for line in collected), done.stdout
    assert not [line for line in collected if "test_drill" in line], done.stdout


def test_the_drill_job_drills(ci):
    command = _pytest_command(ci["drill"])
    assert command[command.index("--profile") + 1] == "drill"


def test_pages_runs_one_at_a_time_apart_from_production(ci):
    pages = ci["pages"]
    assert pages["resource_group"] == "paymon-pages"
    assert pages["resource_group"] not in {job.get("resource_group") for job in _live_jobs(ci).values()}


def _report_command(pages: dict) -> list[str]:
    (line,) = [line for line in pages["script"] if "paymon report" in line]
    return shlex.split(line)


def test_pages_merges_every_fetched_history_instead_of_replacing_it(ci):
    pages = ci["pages"]
    script = _script(pages)
    command = _report_command(pages)
    merged = [command[i + 1] for i, arg in enumerate(command) if arg == "--merge-history"]
    # Both places the history is fetched from are merged, and nothing is fetched into reports/ itself
    # (where a fetched file would replace the history instead of joining it).
    assert merged == ["previous/artifact", "previous/site"]
    assert '--output "previous/artifact/$file"' in script and '--output "previous/site/$file"' in script
    assert '"$CI_PAGES_URL/$file"' in script
    assert "reports/$file" not in script
    assert script.index("previous/site/$file") < script.index("paymon report")


def _runs(*started: float) -> str:
    return "".join(json.dumps({"started": s, "exit_code": 0, "criteria": []}) + "\n" for s in started)


def test_two_pages_jobs_from_one_history_lose_no_run(ci, tmp_path, monkeypatch):
    """Two pages jobs started from the same history H each published H + their own run (the race a
    resource group prevents, and what a pipeline whose gate failed leaves: its run only on the site).
    The next pages job, run with the CI file's own `paymon report` command line, keeps all of them."""
    from paymon import cli
    from paymon.reporting import allure_report

    (tmp_path / "previous" / "artifact").mkdir(parents=True)
    (tmp_path / "previous" / "site").mkdir(parents=True)
    (tmp_path / "previous" / "artifact" / "runs.jsonl").write_text(_runs(1.0, 2.0, 3.5))  # H + run 3.5
    (tmp_path / "previous" / "site" / "runs.jsonl").write_text(_runs(1.0, 2.0, 3.0))      # H + run 3.0
    (tmp_path / "previous" / "artifact" / "history.jsonl").write_text('{"uuid":"a","timestamp":1}\n')
    (tmp_path / "previous" / "site" / "history.jsonl").write_text(
        '{"uuid":"a","timestamp":1}\n{"uuid":"b","timestamp":2}\n')
    (tmp_path / "reports").mkdir()
    (tmp_path / "reports" / "verdict.json").write_text(json.dumps({"started": 4.0, "exit_code": 1, "criteria": []}))

    def fake_build_report(paths, name="", **_):  # Allure itself is not what is tested here
        paths.output.mkdir(parents=True, exist_ok=True)
        if paths.history.is_file():
            (paths.output / "history.jsonl").write_text(paths.history.read_text())
        return paths.output / "index.html"

    monkeypatch.setattr(allure_report, "build_report", fake_build_report)
    monkeypatch.chdir(tmp_path)
    command = _report_command(ci["pages"])
    assert command[0].endswith("paymon")
    assert cli.main(command[1:]) == 0

    published = [json.loads(line)["started"] for line in (tmp_path / "public" / "runs.jsonl").read_text().splitlines()]
    assert published == [1.0, 2.0, 3.0, 3.5, 4.0]  # every run once, in order, this one last
    history = [json.loads(line)["uuid"] for line in (tmp_path / "public" / "history.jsonl").read_text().splitlines()]
    assert history == ["a", "b"]


def test_a_history_that_is_not_json_lines_is_skipped_not_merged(tmp_path):
    """A private Pages site answers the fetch with a sign-in page: it is no history, and nothing is lost."""
    from paymon.reporting.allure_report import ReportPaths, merge_history

    paths = ReportPaths.under(tmp_path / "reports")
    paths.runs.parent.mkdir(parents=True)
    paths.runs.write_text(_runs(1.0, 2.0))
    site = tmp_path / "site"
    site.mkdir()
    (site / "runs.jsonl").write_text("<!DOCTYPE html>\n<html><body>Sign in</body></html>\n")
    notes = merge_history(paths, [site, tmp_path / "missing"])
    assert notes == [f"{site / 'runs.jsonl'}: not a history file (line 1 is not JSON): skipped"]
    assert paths.runs.read_text() == _runs(1.0, 2.0)


# --- a job GitLab stops mid-run uploads no secret (issue 14 item 2) -----------------------------------

def _extended(ci, name: str) -> dict:
    """A job with its `extends` chain merged in (hashes deeply, as GitLab merges them)."""
    job = ci[name]
    if "extends" not in job:
        return job
    base = _extended(ci, job["extends"])
    return {**base, **job, **{key: {**base[key], **job[key]} for key in job
                               if isinstance(job[key], dict) and isinstance(base.get(key), dict)}}


def _minutes(duration: str) -> int:
    number, unit = int(duration[:-1]), duration[-1]
    return number * {"m": 1, "h": 60}[unit]


def test_a_stopped_job_scrubs_its_reports_before_they_upload(ci, tmp_path):
    """Cancel or a timeout kills pytest before it writes and scrubs JUnit and the verdict; artifacts
    `when: always` then uploads them. after_script runs `paymon scrub` first, with the time to do
    so: the script's own timeout ends it before the job's."""
    live = {name: _extended(ci, name) for name, job in ci.items()
            if isinstance(job, dict) and not name.startswith(".") and "--target live" in _script(_extended(ci, name))}
    assert live
    for name, job in live.items():
        (line,) = [line for line in job.get("after_script", []) if "paymon scrub" in line]
        assert all(path.startswith("reports/") for path in job["artifacts"]["paths"]), name
        variables = job.get("variables", {})
        assert _minutes(variables["RUNNER_SCRIPT_TIMEOUT"]) + _minutes(variables["RUNNER_AFTER_SCRIPT_TIMEOUT"]) \
            < _minutes(job["timeout"]), name
    # The line itself, as GitLab runs it (a fresh shell in the project directory, the job's variables set).
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "paymon").symlink_to(Path(sys.executable).parent / "paymon")
    (tmp_path / "reports").mkdir()
    secret = "cron-Zq8WvX2pLm4TnR7Ks9YbHc3J"
    (tmp_path / "reports" / "junit.xml").write_text(f'<failure message="CRON_SECRET {secret}"/>')
    env = {**{k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "PAYMON_"))}, "CRON_SECRET": secret}
    done = subprocess.run(["bash", "-ec", line], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert secret not in (tmp_path / "reports" / "junit.xml").read_text() and secret not in done.stdout


def test_only_the_jobs_that_act_on_production_get_its_tokens(ci):
    """The production tokens are scoped to the environment `production-checks` (README): the live
    jobs run in it without recording a deployment; paymon's own tests and the report get none."""
    for name, job in _live_jobs(ci).items():
        assert job["environment"] == {"name": "production-checks", "action": "verify"}, name
    for name in ("selftest", "pages"):
        assert "environment" not in _resolved(ci, name), name

