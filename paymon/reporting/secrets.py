"""Keeping tokens out of everything paymon writes: Allure attachments and results,
environment.properties, JUnit properties, the verdict and the terminal.

The known secrets are the values of SECRET_VARIABLES in the environment (CI variables), in the
spellings they take inside the files written: raw, JSON-escaped, XML-escaped and URL-quoted, and
what is left of one cut short at an ellipsis (pytest's 240-character reprs).
`paymon.config.settings.redact` also catches anything shaped like a Sentry, Slack, PagerDuty or Lemon
Squeezy token, and URL credentials. fixtures/redaction.py applies `scrub` at every exit of a pytest
run; `paymon scrub` to the files a killed run left behind.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import quote, urlsplit

from paymon.config.settings import REDACTED, redact

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
    secrets = known_secrets(environ)
    return _redact_cut_secrets(redact(str(text), secrets), secrets)


# Where a text was cut: pytest's reprs (`-l` locals, assertion values) keep a long string's head and
# tail around "..." (_pytest/_io/saferepr.py), paymon's one-line reasons end in "…".
_CUTS = ("...", "…")
# A fragment this short could be anything; one this long is worth hiding.
_MIN_FRAGMENT = 6


def _redact_cut_secrets(text: str, secrets: list[str]) -> str:
    """Parts of a known secret that a cut left: its head just before an ellipsis or at the end of
    the text, its tail just after an ellipsis or at the start. Exact matching misses them, and a
    tail carries no prefix for redaction by shape to see."""
    # A DSN or URL is public but for its credentials, which are a spelling of their own: only
    # those count as cut secrets (a text starting "o12.ingest.sentry.io/4507" is no leak).
    secrets = [s for s in secrets if "://" not in s and "%3A%2F%2F" not in s]
    if not secrets:
        return text
    grams = {secret[i:i + _MIN_FRAGMENT] for secret in secrets for i in range(len(secret) - _MIN_FRAGMENT + 1)}
    cuts = [i for cut in _CUTS for i in _positions(text, cut)]
    # Only where the few characters beside a cut belong to some secret is it worth looking closer.
    ends = [end for end in {len(text), *cuts} if text[max(0, end - _MIN_FRAGMENT):end] in grams]
    starts = [start for start in {0, *(i + len(cut) for cut in _CUTS for i in _positions(text, cut))}
              if text[start:start + _MIN_FRAGMENT] in grams]
    spans = []
    for secret in secrets:
        for end in ends:
            k = next((k for k in range(min(len(secret) - 1, end), _MIN_FRAGMENT - 1, -1)
                      if text.endswith(secret[:k], 0, end)), 0)
            if k:
                spans.append((end - k, end))
        for start in starts:
            k = next((k for k in range(min(len(secret) - 1, len(text) - start), _MIN_FRAGMENT - 1, -1)
                      if text.startswith(secret[-k:], start)), 0)
            if k:
                spans.append((start, start + k))
    merged: list[list[int]] = []
    for begin, end in sorted(spans):
        if merged and begin <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    for begin, end in reversed(merged):
        text = text[:begin] + REDACTED + text[end:]
    return text


def _positions(text: str, part: str):
    at = text.find(part)
    while at != -1:
        yield at
        at = text.find(part, at + 1)


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
            clean = _redact_cut_secrets(redact(text, secrets), secrets)
            if clean != text:
                path.write_text(clean, encoding="utf-8")
                changed.append(path)
    return changed
