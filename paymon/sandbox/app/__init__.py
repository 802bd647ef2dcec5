"""The reference payment app (TowerOfBabel's Next.js payment routes, as a stand-in), served under
`/app`: checkout and PAYG creation through an in-process Lemon Squeezy stand-in, the signed
webhook endpoint, PAYG usage reporting and the reconciliation job (`POST /api/cron/reconcile`,
`paymon sandbox reconcile`). Its subscriptions and usage live in SQLite (`db.py`); it is
instrumented with the real sentry-sdk (`telemetry.py`: errors, transactions tagged payment_flow,
cron check-ins), and replays the world's recent past into Sentry at start. Knobs make it slow,
flaky, test-mode, careless about signatures, silent, untraced or failing to report usage, so
paymon's checks can be shown to fail on each."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

from paymon.sandbox.app.models import (
    AppBackend,
    lemonsqueezy_signature,
    verify_signature,
)

__all__ = ["AppBackend", "build_app_app", "golden_app_world", "lemonsqueezy_signature", "verify_signature"]

WORLD_FILE = Path(__file__).resolve().parent.parent / "worlds" / "app.json"


@cache
def _read() -> dict:
    return json.loads(WORLD_FILE.read_text())


def golden_app_world() -> dict:
    """The app as it should be in production: fast, live mode, verifying signatures."""
    return copy.deepcopy(_read())


def build_app_app(backend: AppBackend):
    """A Starlette app serving `backend` on the app's paths (`/api/...`)."""
    from starlette.applications import Starlette

    from paymon.sandbox.app.responses import AppResponse
    from paymon.sandbox.app.urls import build_routes

    app = Starlette(routes=build_routes(AppResponse(backend)))
    app.state.backend = backend
    return app
