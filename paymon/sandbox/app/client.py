"""Calling the sandbox payment app from another process (`paymon sandbox reconcile`)."""

from __future__ import annotations

import os

import httpx

from paymon.errors import AuthError, SettingsError, TargetUnavailable
from paymon.sandbox.app.models import DEFAULT_KNOBS, RECONCILE


def app_url(url: str) -> str:
    """The app's base URL from the sandbox's base_url or the app's own (`.../app`)."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise SettingsError(f"{url!r} is not an http(s) URL: pass the base_url `paymon sandbox serve` printed")
    return url if url.endswith("/app") else url + "/app"


def run_reconciliation(url: str, cron_secret: str | None = None, timeout: float = 30.0,
                       monitor_slug: str | None = None) -> dict:
    """POST the app's cron route, as Vercel's cron does: {"status", "discrepancies", ["error"]}.
    `monitor_slug`: the cron monitor the job checks in to (monitoring.yaml's cron.slug)."""
    secret = cron_secret or os.environ.get("CRON_SECRET") or DEFAULT_KNOBS["cron_secret"]
    target = app_url(url) + RECONCILE
    try:
        response = httpx.post(target, headers={"Authorization": f"Bearer {secret}"}, timeout=timeout,
                              json={"monitor_slug": monitor_slug} if monitor_slug else None)
    except httpx.TransportError as exc:
        raise TargetUnavailable(f"{target}: {type(exc).__name__}: {exc} (is `paymon sandbox serve` running?)") from None
    if response.status_code == 401:
        raise AuthError(f"{target} refused the cron secret (401): pass the app's --cron-secret "
                        "(`paymon sandbox serve` prints it as app.cron_secret)")
    if response.status_code == 404:
        raise TargetUnavailable(f"{target}: 404 — no payment app there (a world without 'app'?)")
    if response.status_code != 200:
        raise TargetUnavailable(f"{target} answered {response.status_code}")
    return response.json()
