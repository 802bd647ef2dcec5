"""Secrets are redacted by value and by shape: a token paymon was never told, or one cut short (as
pytest's 240-character reprs cut it), URL credentials, and settings objects whose repr would hold
the whole environment (issue 14 item 2, in part)."""

from __future__ import annotations

import pytest

from paymon.config.settings import REDACTED, redact
from paymon.config.target import Target
from paymon.reporting.secrets import known_secrets, scrub

SHAPES = {
    "Sentry user token": "sntryu_" + "a1" * 32,
    "Sentry org token, cut short": "sntrys_eyJpYXQiOjE3",
    "Slack bot token": "xoxb-2048-4096-abcdefGHIJKLmnop",
    "Slack user token, cut short": "xoxp-2048-40",
    "Slack app token": "xapp-1-A07-123-abcdef",
    "PagerDuty API key": "u+AbCdEfGhIjKlMnOpQr",
    "Lemon Squeezy API key (a JWT)": "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.eyJhdWQiOiIxIiwianRpIjoi",
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_a_token_paymon_was_not_told_is_redacted_by_its_shape(name):
    token = SHAPES[name]
    text = redact(f"answer: {{'token': '{token}'}} …")
    assert token not in text and REDACTED in text


@pytest.mark.parametrize("url, kept", [
    ("https://paymon:hunter2@sentry.example.com/api/0/", "sentry.example.com/api/0/"),
    ("https://0123456789abcdef@o12.ingest.sentry.io/4507", "o12.ingest.sentry.io/4507"),
    ("http://user@app.internal:8080/api/checkout/pro", "app.internal:8080/api/checkout/pro"),
])
def test_url_credentials_are_redacted_whatever_variable_they_came_from(url, kept):
    text = redact(f"SENTRY_BASE_URL is {url}, could not reach it")
    assert "hunter2" not in text and "paymon:" not in text and "0123456789abcdef" not in text
    assert f"://{REDACTED}@{kept}" in text


def test_ordinary_text_is_left_alone():
    text = "p95 1,944 ms (u+2 samples) at https://sentry.io/organizations/acme/issues/?query=is:unresolved"
    assert redact(text) == text


def test_every_secret_variable_is_known(monkeypatch):
    for name, value in {"CRON_SECRET": "cron-0123456789", "LEMONSQUEEZY_API_KEY": "ls-key-0123456789"}.items():
        monkeypatch.setenv(name, value)
        assert value in known_secrets()
        assert value not in scrub(f"the {name} is {value}")


def test_a_target_never_shows_the_environment_in_its_repr():
    environ = {"SENTRY_AUTH_TOKEN": "sntryu_" + "b2" * 32, "SLACK_BOT_TOKEN": "xoxb-1-2-secretsecret",
               "PAYMON_APP_URL": "https://u:pw@app.example"}
    target = Target("live", environ=environ, org="acme", project="web")
    shown = repr(target)
    assert all(value not in shown for value in environ.values()) and "acme" in shown
    assert "secretsecret" not in repr(Target("sandbox", sandbox={"token": "xoxb-1-2-secretsecret"}))


# --- every exit of a run (issue 14 item 2): a run that leaks two secrets everywhere it can ----------

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests import forked_pytest

REPO = Path(__file__).resolve().parent.parent
SECRETS = {
    "SENTRY_AUTH_TOKEN": "sntryu_" + "7f3a9c2e51d84b06" * 4,  # shaped like a token
    "CRON_SECRET": "cron-Zq8WvX2pLm4TnR7Ks9YbHc3J",          # no shape: found by value only
}
LEAKY_TESTS = '''
import logging, os, pathlib, sys, time, warnings

import allure
import pytest


@pytest.mark.criterion("paymon's redaction: a check that leaks")  # so the run writes a verdict too
def test_leaks_everywhere():
    for name in ("SENTRY_AUTH_TOKEN", "CRON_SECRET"):
        token = os.environ[name]
        print("stdout:", token)
        sys.stderr.write(f"stderr: {token}\\n")
        logging.getLogger("httpx").debug("HTTP Request: GET https://sentry.io/api/0/ %r", {"authorization": f"Bearer {token}"})
        logging.getLogger("sentry_sdk.errors").debug("[Tracing] sending envelope with %s", token)
        warnings.warn(f"deprecated: {token}")
        allure.attach(f"response {token}", name=f"{name} body")
    # -l shows both locals cut at 240 characters, each cut through the middle of its secret.
    long_value = "x" * 100 + os.environ["SENTRY_AUTH_TOKEN"] + "y" * 100
    other = "p" * 110 + os.environ["CRON_SECRET"] + "q" * 110
    assert long_value == other, os.environ["CRON_SECRET"]


def test_waits_for_a_delivery():
    print("waiting for the page, token", os.environ["SENTRY_AUTH_TOKEN"])
    logging.getLogger("httpx").debug("polling with %s", os.environ["CRON_SECRET"])
    pathlib.Path(os.environ["LEAK_READY"]).write_text("waiting")
    deadline = time.monotonic() + 120  # GitLab's timeout comes first: the test below sends SIGTERM
    while time.monotonic() < deadline:
        time.sleep(0.05)
'''


def _pieces(secret: str, size: int = 8) -> set[str]:
    return {secret[i:i + size] for i in range(len(secret) - size + 1)}


def _leaks(text: str) -> list[str]:
    """Which secrets show, whole or any 8 characters of them."""
    return [name for name, secret in SECRETS.items() if any(piece in text for piece in _pieces(secret))]


def _files_with_leaks(root: Path) -> dict[str, list[str]]:
    found = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        leaked = _leaks(path.read_text(encoding="utf-8", errors="replace"))
        if leaked:
            found[str(path.relative_to(root))] = leaked
    return found


def _env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SENTRY_", "PAYMON_", "PYTEST_"))}
    return {**env, **SECRETS, "LEAK_READY": str(tmp_path / "ready")}


def test_a_secret_cut_at_an_ellipsis_leaves_no_part_of_it(monkeypatch):
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    for secret in SECRETS.values():
        for cut in (10, len(secret) // 2, len(secret) - 8):
            text = f"'{'x' * 50}{secret[:cut]}...{secret[cut - 3:]}{'y' * 50}' and, at the end, {secret[:cut]}"
            assert not _leaks(scrub(text)), scrub(text)
    assert scrub("p95 … within budget ... 3 samples") == "p95 … within budget ... 3 samples"


@pytest.mark.parametrize("workers", [[], ["-n", "2"], ["-s", "-o", "log_cli=true", "-o", "log_cli_level=DEBUG"]],
                         ids=["one process", "xdist", "nothing captured, live logs"])
def test_every_exit_of_a_run_is_scrubbed(workers, tmp_path):
    """Terminal (captured stdout/stderr/log of a failing test, -l locals, the warnings summary; with
    -s the prints and live logs themselves), JUnit and Allure results: no secret, whole or in part."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "test_leaky.py").write_text(LEAKY_TESTS)
    reports = tmp_path / "reports"
    proc = forked_pytest.run(
        [str(tmp_path / "run" / "test_leaky.py"), "-k", "everywhere", "-p", "no:cacheprovider", "-l", "-rA",
         "-o", "log_level=DEBUG", f"--junitxml={reports / 'junit.xml'}", f"--alluredir={reports / 'allure'}",
         *workers], cwd=REPO, env=_env(tmp_path), timeout=120)
    assert proc.returncode == 1, proc.stdout[-3000:]
    # The run did show what it leaked, redacted: the test is not passing by printing nothing.
    assert "stdout: [redacted]" in proc.stdout and "warnings summary" in proc.stdout, proc.stdout[-3000:]
    assert "Bearer [redacted]" in proc.stdout, proc.stdout[-3000:]
    assert not _leaks(proc.stdout), proc.stdout
    assert _files_with_leaks(reports) == {}


@pytest.mark.parametrize("stop", ["SIGTERM", "SIGKILL"])
def test_a_run_stopped_mid_wait_leaves_no_secret_in_its_reports(stop, tmp_path):
    """GitLab stops a job while a check waits (a delivery): SIGTERM, SIGKILL after a grace period.
    On SIGTERM the run ends as interrupted and still writes JUnit and the verdict, scrubbed; killed
    outright it writes neither, and the Allure results written so far are what gets uploaded."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "test_leaky.py").write_text(LEAKY_TESTS)
    reports = tmp_path / "reports"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pytest", str(tmp_path / "run" / "test_leaky.py"), "-p", "no:cacheprovider", "-l",
         "-o", "log_level=DEBUG", f"--junitxml={reports / 'junit.xml'}", f"--alluredir={reports / 'allure'}"],
        cwd=REPO, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        for _ in range(1200):  # until the second test waits (a check waiting for a delivery)
            if (tmp_path / "ready").exists() or proc.poll() is not None:
                break
            try:
                proc.wait(0.1)
            except subprocess.TimeoutExpired:
                pass
        assert (tmp_path / "ready").exists(), "the run never reached its wait"
        proc.send_signal(getattr(signal, stop))
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    results = sorted(p.name for p in (reports / "allure").iterdir())
    assert any(name.endswith("-result.json") for name in results), results  # the first test's result is there
    assert any(name.endswith("-attachment.txt") for name in results), results  # and its captured output
    if stop == "SIGTERM":
        assert proc.returncode == 2, output  # pytest's "interrupted"
        assert (reports / "junit.xml").is_file() and (reports / "verdict.json").is_file(), output
        assert "run did not complete" in output, output
    else:
        assert proc.returncode == -signal.SIGKILL, output
        assert not (reports / "junit.xml").exists()
    assert _files_with_leaks(reports) == {}
    assert not _leaks(output), output


def test_paymon_scrub_redacts_what_a_killed_run_left(tmp_path):
    """CI's after_script (`paymon scrub reports/`) for files pytest never finished: a JUnit file, a
    verdict, any text file; one line, never a secret, in its own output."""
    reports = tmp_path / "reports"
    (reports / "allure-results").mkdir(parents=True)
    (reports / "junit.xml").write_text(f"<failure message=\"{SECRETS['CRON_SECRET']}\"/>")
    (reports / "allure-results" / "x-attachment.txt").write_text(f"...{SECRETS['SENTRY_AUTH_TOKEN'][20:]}")
    (reports / "chart.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff")
    env = _env(tmp_path)
    done = subprocess.run([sys.executable, "-m", "paymon.cli", "scrub", str(reports)], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "scrub: 2 file(s) held a secret and were redacted\n", done
    assert _files_with_leaks(reports) == {}
    assert (reports / "chart.png").read_bytes() == b"\x89PNG\r\n\x1a\n\x00\xff"
    missing = subprocess.run([sys.executable, "-m", "paymon.cli", "scrub", str(tmp_path / "nothing")], env=env,
                             capture_output=True, text=True, timeout=60)
    assert missing.returncode == 2 and missing.stderr.count("\n") == 1 and "Traceback" not in missing.stderr


def test_an_internal_error_shows_no_secret(tmp_path):
    """pytest prints an INTERNALERROR traceback itself, outside any report: the terminal's own
    stream is scrubbed."""
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "test_nothing.py").write_text("def test_nothing():\n    pass\n")
    (tmp_path / "run" / "conftest.py").write_text(
        "import os\n\ndef pytest_collection_modifyitems(items):\n    raise RuntimeError(os.environ['CRON_SECRET'])\n")
    proc = forked_pytest.run([str(tmp_path / "run"), "-p", "no:cacheprovider", f"--junitxml={tmp_path / 'j.xml'}",
                              f"--alluredir={tmp_path / 'allure'}"], cwd=REPO, env=_env(tmp_path), timeout=60)
    assert proc.returncode == 3 and "INTERNALERROR" in proc.stdout and "[redacted]" in proc.stdout, proc.stdout
    assert not _leaks(proc.stdout), proc.stdout
