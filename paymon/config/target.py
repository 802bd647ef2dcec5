"""Where the checks point: every service's settings, from the environment (live) or a sandbox.

Each part is read when first needed, so a run that only checks Sentry's configuration does not
demand Slack or PagerDuty tokens; a part that is needed but missing raises `SettingsError` (the
check says "could not check" and names the variable).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from paymon.errors import SettingsError
from urllib.parse import urlsplit

from paymon.config.settings import (RUNBOOK_BASE_URL_ENV, RUNBOOK_TOKEN_ENV, PagerDutySettings, RunbookSettings,
                                     SentrySettings, SlackSettings, redact)


@dataclass
class Target:
    name: str
    """"sandbox" or "live"."""
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ), repr=False)
    """Never in the repr: it is the whole environment, tokens included."""
    sandbox: dict | None = field(default=None, repr=False)
    """What the sandbox server describes (base URL, tokens, DSN) when the target is the sandbox."""
    org: str | None = None
    project: str | None = None

    def sentry(self) -> SentrySettings:
        if self.sandbox is not None:
            return SentrySettings(base_url=self.sandbox["base_url"], token=self.sandbox["token"],
                                  org=self.sandbox["org"], project=self.sandbox["project"])
        return SentrySettings.from_env(self.environ, org=self.org, project=self.project)

    def dsn(self) -> str:
        if self.sandbox is not None:
            return self.sandbox["dsn"]
        dsn = self.environ.get("SENTRY_DSN", "").strip()
        if not dsn:
            raise SettingsError("SENTRY_DSN is not set: set it to the DSN of the project paymon fires its "
                                "test events into (the production project, so the real rules see them)")
        return dsn

    def slack(self) -> SlackSettings:
        if self.sandbox is not None:
            part = self._sandbox_part("slack")
            return SlackSettings(token=part["token"], base_url=part["base_url"])
        return SlackSettings.from_env(self.environ)

    def pagerduty(self) -> PagerDutySettings:
        if self.sandbox is not None:
            part = self._sandbox_part("pagerduty")
            return PagerDutySettings(token=part["token"], base_url=part["base_url"],
                                     from_email=part.get("from_email"))
        return PagerDutySettings.from_env(self.environ)

    def runbook(self, runbook, spec_dir: str | None = None) -> RunbookSettings:
        """Where the runbook is read (`runbook`: monitoring.yaml's RunbookSpec). A file in the
        repository is read alike for every target; a URL is, in the sandbox, its path on the
        sandbox's GitLab (the run's own copy of the document)."""
        if runbook.path is not None:
            from pathlib import Path

            return RunbookSettings(path=str(Path(spec_dir or ".") / runbook.path), token_header=runbook.token_header)
        url = runbook.source or runbook.url
        if self.sandbox is not None:
            part = self._sandbox_part("runbook")
            parts = urlsplit(url)
            return RunbookSettings(url=part["base_url"] + parts.path + (f"?{parts.query}" if parts.query else ""),
                                   token=part.get("token"), token_header=runbook.token_header)
        base = self.environ.get(RUNBOOK_BASE_URL_ENV, "").strip().rstrip("/")
        if base:  # a proxy or mirror of the GitLab that holds the runbook (or a served sandbox's)
            if urlsplit(base).scheme not in ("http", "https") or not urlsplit(base).netloc:
                raise SettingsError(f"{RUNBOOK_BASE_URL_ENV} must be an http(s) URL, not {redact(base)!r}")
            parts = urlsplit(url)
            url = base + parts.path + (f"?{parts.query}" if parts.query else "")
        return RunbookSettings(url=url, token=self.environ.get(RUNBOOK_TOKEN_ENV, "").strip() or None,
                               token_header=runbook.token_header)

    def _sandbox_part(self, service: str) -> dict:
        if service not in self.sandbox:
            raise SettingsError(f"the sandbox world has no {service!r} service: add it to the world file")
        return self.sandbox[service]

    def secrets(self) -> list[str]:
        """Every secret value this target knows, for redacting output."""
        values = [self.environ.get(k, "") for k in (
            "SENTRY_AUTH_TOKEN", "SENTRY_DSN", "SLACK_BOT_TOKEN", "PAGERDUTY_API_TOKEN",
            "PAGERDUTY_ROUTING_KEY", "LEMONSQUEEZY_WEBHOOK_SECRET", "LEMONSQUEEZY_API_KEY", "CRON_SECRET",
            RUNBOOK_TOKEN_ENV)]
        if self.sandbox is not None:
            values += [self.sandbox.get("token", ""), (self.sandbox.get("slack") or {}).get("token", ""),
                       (self.sandbox.get("pagerduty") or {}).get("token", ""),
                       (self.sandbox.get("runbook") or {}).get("token", "")]
        return [v for v in values if v]
