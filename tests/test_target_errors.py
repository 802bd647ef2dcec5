"""A wrong token, an unreachable API or a missing token: every check says so in one line, no
traceback, and the token never appears in the output."""

import json
import shlex
import socket
import subprocess
import sys

import pytest

from conftest import REPO


@pytest.fixture(scope="module")
def served_sandbox(tmp_path_factory):
    """`paymon sandbox serve --env-file F` as the README shows it: the JSON line, and in F the
    documented variables a user sources before `pytest --target live`."""
    env_file = tmp_path_factory.mktemp("served") / "sandbox.env"
    proc = subprocess.Popen([sys.executable, "-m", "paymon.cli", "sandbox", "serve", "--env-file", str(env_file)],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line, proc.stderr.read()
        info = json.loads(line)
        info["env"] = dict(shlex.split(row.removeprefix("export "))[0].split("=", 1)
                           for row in env_file.read_text().splitlines())
        assert oct(env_file.stat().st_mode & 0o777) == "0o600"  # it holds the sandbox's tokens
        yield info
    finally:
        proc.terminate()
        proc.wait(timeout=10)


SENTRY_CONFIG_CHECKS = ["checks/test_alert_rules.py", "checks/test_performance_alerts.py",
                        "checks/test_dashboard.py", "checks/test_integrations.py", "checks/test_cron.py",
                        # the checks in those files that read PagerDuty, not Sentry
                        "-k", "not (service_ready or would_reach or urgency_per or escalation_path)"]


def _live_env(info, **overrides):
    """The environment a user sets for --target live, pointed at a served sandbox (its env file)."""
    return {**info["env"], "PAYMON_API_DEADLINE": "2", **overrides}


def test_serve_prints_one_json_line(served_sandbox):
    assert set(served_sandbox) >= {"base_url", "token", "org", "project"}
    assert served_sandbox["base_url"].startswith("http://127.0.0.1:")


@pytest.mark.wall_time  # --target live times the served app's real latency
def test_live_target_against_a_served_sandbox_passes(served_sandbox, run_suite):
    # The gate's defaults: its profile's canary probe (3 samples each), which warns "inconclusive".
    result = run_suite("--target=live", env=_live_env(served_sandbox))
    assert result.returncode == 0, result.output
    assert "test_slack_delivery" in result.passed and "test_pagerduty_delivery" in result.passed
    for secret in (served_sandbox["token"], served_sandbox["slack"]["token"], served_sandbox["pagerduty"]["token"]):
        assert secret not in result.output


def test_wrong_token_is_one_clear_line_per_check(served_sandbox, run_suite):
    bad = "sntryu_" + "0" * 64
    result = run_suite("--target=live", *SENTRY_CONFIG_CHECKS, env=_live_env(served_sandbox, SENTRY_AUTH_TOKEN=bad))
    assert result.returncode == 3  # could not check
    assert result.failures
    for message in result.failures.values():
        assert "could not check: " in message and "401" in message and "SENTRY_AUTH_TOKEN" in message
    assert "Traceback" not in result.output
    assert bad not in result.output


def test_unreachable_api_is_one_clear_line(run_suite):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again when the block ends: nothing listens there
    env = {"SENTRY_BASE_URL": f"http://127.0.0.1:{port}", "SENTRY_AUTH_TOKEN": "sntryu_" + "1" * 64,
           "PAYMON_API_DEADLINE": "1"}
    result = run_suite("--target=live", *SENTRY_CONFIG_CHECKS, env=env)
    assert result.returncode == 3  # could not check
    for message in result.failures.values():
        assert "could not check: " in message and "cannot reach" in message
    assert "Traceback" not in result.output
    assert "1" * 64 not in result.output


def test_missing_token_says_which_variable(run_suite):
    result = run_suite("--target=live", *SENTRY_CONFIG_CHECKS, env={})
    assert result.returncode == 3  # could not check
    for message in result.failures.values():
        assert "could not check: " in message and "SENTRY_AUTH_TOKEN" in message


def test_missing_slack_and_pagerduty_settings_name_their_variables(run_suite):
    result = run_suite("--target=live", "checks/test_channels.py", "checks/test_integrations.py", env={})
    assert result.returncode == 3
    assert "SLACK_BOT_TOKEN is not set" in result.failures["test_slack_channel_ready[#payments-alerts]"]
    assert "PAGERDUTY_API_TOKEN is not set" in result.failures["test_pagerduty_service_ready"]
