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
