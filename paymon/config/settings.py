"""Where paymon finds Sentry and with which token, and how it keeps that token out of output.

`SentrySettings.from_env()` reads

    SENTRY_AUTH_TOKEN   required; a token with the read scopes in READ_SCOPES
    SENTRY_ORG          organisation slug (default: monitoring.yaml's organization)
    SENTRY_PROJECT      project slug (default: monitoring.yaml's project)
    SENTRY_BASE_URL     https://sentry.io (default), https://us.sentry.io, https://de.sentry.io
                        or a self-hosted URL; a trailing "/" or "/api/0" is dropped
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from pydantic import SecretStr

from paymon.errors import SettingsError

DEFAULT_BASE_URL = "https://sentry.io"
READ_SCOPES = ("org:read", "project:read", "alerts:read", "event:read", "member:read")
SLACK_DEFAULT_BASE_URL = "https://slack.com/api/"
SLACK_READ_SCOPES = "channels:read, groups:read, channels:history, groups:history, users:read, users:read.email"
PAGERDUTY_DEFAULT_BASE_URL = "https://api.pagerduty.com"

REDACTED = "[redacted]"
# Tokens recognisable by their shape are redacted even when paymon was not told the value (a token
# pasted into monitoring.yaml, echoed back by a proxy, or cut short by pytest's 240-character reprs:
# the prefix and a few characters are enough).
_TOKEN_PATTERN = re.compile(
    r"\bsntry[usa]_[A-Za-z0-9_=+/-]{8,}"            # Sentry user, organisation and auth tokens
    r"|\bxox[abeprs]-[A-Za-z0-9-]{4,}"              # Slack bot, user and app tokens
    r"|\bxapp-[A-Za-z0-9-]{8,}"                     # Slack app-level tokens
    r"|(?<![A-Za-z0-9])u\+[A-Za-z0-9_+-]{12,}"      # PagerDuty user API keys
    r"|\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_.-]{10,}"  # JWTs: Lemon Squeezy API keys
    r"|\bglpat-[A-Za-z0-9_-]{8,}"                  # GitLab personal access tokens (the runbook's)
)
# Credentials in a URL (`https://user:password@host`, a DSN's key): whatever the variable it came from.
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s:@'\"]+(?::[^/\s@'\"]*)?@")


def redact(text: str, secrets: Iterable[str | SecretStr | None] = ()) -> str:
    """`text` with every given secret, anything shaped like a Sentry, Slack, PagerDuty or Lemon
    Squeezy token, and the credentials of any URL, replaced."""
    for secret in secrets:
        value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
        # Very short values would redact ordinary words; real tokens are long.
        if value and len(value) >= 4:
            text = text.replace(value, REDACTED)
    text = _URL_USERINFO.sub(lambda m: f"{m.group(1)}{REDACTED}@", text)
    return _TOKEN_PATTERN.sub(REDACTED, text)


def normalise_base_url(url: str) -> str:
    """'https://de.sentry.io/api/0/' -> 'https://de.sentry.io'; paths below /api/0 are the client's."""
    url = url.strip().rstrip("/")
    if url.endswith("/api/0"):
        url = url[: -len("/api/0")].rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(
            f"SENTRY_BASE_URL must be an http(s) URL such as {DEFAULT_BASE_URL} or https://de.sentry.io, "
            f"not {redact(url)!r}"
        )
    return url


API_DEADLINE_ENV = "PAYMON_API_DEADLINE"
DEFAULT_API_DEADLINE = 30.0


def seconds_setting(text: str, name: str) -> float:
    """A finite number of seconds > 0, or SettingsError naming the setting: `nan` or `inf` would
    retry for ever, `abc` would crash at start-up."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise SettingsError(f"{name}={text!r}: expected a number of seconds > 0") from None
    if not math.isfinite(value) or value <= 0:
        raise SettingsError(f"{name}={text!r}: expected a finite number of seconds > 0")
    return value


def api_deadline(option: str | float | None, environ: Mapping[str, str] = os.environ) -> float:
    """How long one API read may keep retrying: `--api-deadline`, else PAYMON_API_DEADLINE, else 30 s."""
    if option is not None:
        return seconds_setting(option, "--api-deadline")
    return seconds_setting(environ.get(API_DEADLINE_ENV, str(DEFAULT_API_DEADLINE)), API_DEADLINE_ENV)


@dataclass(frozen=True)
class SentrySettings:
    """One Sentry organisation and project, the API host and the token to read them with.

    `token` is a pydantic `SecretStr`: str() and repr() show asterisks, so the settings can be
    printed, logged or shown in a pytest failure without leaking it.
    """

    token: SecretStr
    org: str
    project: str
    base_url: str = DEFAULT_BASE_URL

    def __post_init__(self) -> None:
        token = self.token if isinstance(self.token, SecretStr) else SecretStr(str(self.token).strip())
        object.__setattr__(self, "token", token)
        object.__setattr__(self, "base_url", normalise_base_url(self.base_url))

    @property
    def api_url(self) -> str:
        return f"{self.base_url}/api/0/"

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] = os.environ,
        *,
        org: str | None = None,
        project: str | None = None,
    ) -> SentrySettings:
        """Settings from the environment; `org`/`project` (from monitoring.yaml) fill in unset variables."""
        token = environ.get("SENTRY_AUTH_TOKEN", "").strip()
        if not token:
            raise SettingsError(
                "SENTRY_AUTH_TOKEN is not set: set it to a Sentry auth token with the read scopes "
                + ", ".join(READ_SCOPES)
            )
        org = _setting(environ, "SENTRY_ORG", org, "organization")
        project = _setting(environ, "SENTRY_PROJECT", project, "project")
        base_url = environ.get("SENTRY_BASE_URL", "").strip() or DEFAULT_BASE_URL
        return cls(token=SecretStr(token), org=org, project=project, base_url=base_url)


def _setting(environ: Mapping[str, str], variable: str, default: str | None, yaml_key: str) -> str:
    value = environ.get(variable, "").strip() or (default or "").strip()
    if not value:
        raise SettingsError(f"{variable} is not set and monitoring.yaml names no {yaml_key}: set one of them")
    return value


@dataclass(frozen=True)
class SlackSettings:
    token: SecretStr
    base_url: str = SLACK_DEFAULT_BASE_URL

    def __post_init__(self):
        if isinstance(self.token, str):
            object.__setattr__(self, "token", SecretStr(self.token))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> SlackSettings:
        token = environ.get("SLACK_BOT_TOKEN", "").strip()
        if not token:
            raise SettingsError(f"SLACK_BOT_TOKEN is not set: set it to a bot token with {SLACK_READ_SCOPES}")
        return cls(token=SecretStr(token), base_url=environ.get("SLACK_BASE_URL") or SLACK_DEFAULT_BASE_URL)


@dataclass(frozen=True)
class PagerDutySettings:
    token: SecretStr
    from_email: str | None = None
    """The PagerDuty user e-mail sent as `From` on writes (resolving paymon's test incident)."""
    base_url: str = PAGERDUTY_DEFAULT_BASE_URL

    def __post_init__(self):
        if isinstance(self.token, str):
            object.__setattr__(self, "token", SecretStr(self.token))
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> PagerDutySettings:
        token = environ.get("PAGERDUTY_API_TOKEN", "").strip()
        if not token:
            raise SettingsError("PAGERDUTY_API_TOKEN is not set: set it to a PagerDuty REST API key "
                                "(read access; write access to resolve paymon's test incidents)")
        return cls(token=SecretStr(token), from_email=environ.get("PAGERDUTY_FROM_EMAIL") or None,
                   base_url=environ.get("PAGERDUTY_BASE_URL") or PAGERDUTY_DEFAULT_BASE_URL)


RUNBOOK_TOKEN_ENV = "PAYMON_RUNBOOK_TOKEN"
RUNBOOK_BASE_URL_ENV = "PAYMON_RUNBOOK_BASE_URL"


@dataclass(frozen=True)
class RunbookSettings:
    """Where paymon reads the runbook's markdown (monitoring.yaml `runbook`): a URL, with
    PAYMON_RUNBOOK_TOKEN sent as `token_header` when set (a private GitLab project), or a file."""

    url: str | None = None
    path: str | None = None
    token: SecretStr | None = None
    token_header: str = "PRIVATE-TOKEN"

    def __post_init__(self):
        if isinstance(self.token, str):
            object.__setattr__(self, "token", SecretStr(self.token) if self.token else None)

    @property
    def where(self) -> str:
        """For messages: the file or the URL (never the token)."""
        return self.path or redact(self.url or "")


LEMONSQUEEZY_DEFAULT_BASE_URL = "https://api.lemonsqueezy.com"


@dataclass(frozen=True)
class LemonSqueezySettings:
    """Lemon Squeezy's API, read-only: the webhook probe reads the synthetic subscription's stored
    state back (`GET /v1/subscriptions/{id}`) to replay it. LEMONSQUEEZY_API_KEY is a live-mode key
    (a test key sees only test data); LEMONSQUEEZY_BASE_URL for a proxy or the sandbox."""

    api_key: SecretStr
    base_url: str = LEMONSQUEEZY_DEFAULT_BASE_URL

    def __post_init__(self):
        if isinstance(self.api_key, str):
            object.__setattr__(self, "api_key", SecretStr(self.api_key))
        url = self.base_url.strip().rstrip("/")
        if url.endswith("/v1"):
            url = url[: -len("/v1")]
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc:
            raise SettingsError(f"LEMONSQUEEZY_BASE_URL must be an http(s) URL such as "
                                f"{LEMONSQUEEZY_DEFAULT_BASE_URL}, not {redact(url)!r}")
        object.__setattr__(self, "base_url", url)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> LemonSqueezySettings:
        key = environ.get("LEMONSQUEEZY_API_KEY", "").strip()
        if not key:
            raise SettingsError("LEMONSQUEEZY_API_KEY is not set: the webhook probe reads the synthetic "
                                "subscription's stored state from Lemon Squeezy (GET /v1/subscriptions/{id}, "
                                "a live-mode API key) to replay exactly that")
        return cls(api_key=SecretStr(key),
                   base_url=environ.get("LEMONSQUEEZY_BASE_URL", "").strip() or LEMONSQUEEZY_DEFAULT_BASE_URL)
