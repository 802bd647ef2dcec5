"""Keeping tokens out of everything paymon writes: Allure attachments and results,
environment.properties, JUnit properties, the verdict and the terminal.

The known secrets are the values of SECRET_VARIABLES in the environment (CI variables), in the
spellings they take inside the files written: raw, JSON-escaped, XML-escaped and URL-quoted.
`paymon.config.settings.redact` also catches anything shaped like a Sentry token.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import quote, urlsplit

from paymon.config.settings import redact

SECRET_VARIABLES = (
    "SENTRY_AUTH_TOKEN",
    "SLACK_BOT_TOKEN",
    "PAGERDUTY_API_TOKEN",
    "PAGERDUTY_ROUTING_KEY",
    "SENTRY_DSN",
    "LEMONSQUEEZY_WEBHOOK_SECRET",
    "LEMONSQUEEZY_API_KEY",
    "CRON_SECRET",
    "PAYMON_RUNBOOK_TOKEN",
)

# Files above this size are not rewritten (Allure never writes such text files for paymon).
_MAX_SCRUB_BYTES = 20 * 1024 * 1024


def _spellings(secret: str) -> set[str]:
    spellings = {secret, json.dumps(secret)[1:-1], html.escape(secret), quote(secret, safe="")}
    # A DSN's public key (its user part) is the part that authorises sending events.
    key = urlsplit(secret).username if "://" in secret else None
    if key:
        spellings.add(key)
    return {s for s in spellings if s}


def known_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    environ = os.environ if environ is None else environ
    values = {environ.get(name, "").strip() for name in SECRET_VARIABLES}
    spellings: set[str] = set()
    for value in values - {""}:
        spellings |= _spellings(value)
    # Longest first, so a secret is replaced whole before any part of it is.
    return sorted(spellings, key=len, reverse=True)


def scrub(text: str, environ: Mapping[str, str] | None = None) -> str:
    return redact(str(text), known_secrets(environ))


def scrub_files(paths: Iterable[Path], environ: Mapping[str, str] | None = None) -> list[Path]:
    """Redact secrets in place in every text file under `paths`; returns the files changed.

    The last line of defence: whatever a check, allure-pytest or junitxml put into a message,
    the files that leave the machine as CI artifacts do not hold a token."""
    secrets = known_secrets(environ)
    changed = []
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else []
        for path in files:
            if path.stat().st_size > _MAX_SCRUB_BYTES:
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue  # binary attachments: paymon writes none
            clean = redact(text, secrets)
            if clean != text:
                path.write_text(clean, encoding="utf-8")
                changed.append(path)
    return changed
