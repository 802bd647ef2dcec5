"""The emulated PagerDuty: REST API v2 + Events API v2 (moto layout: models / responses / urls /
exceptions), served under `/pagerduty` by the sandbox server."""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

from paymon.sandbox.core import Service
from paymon.sandbox.pagerduty.models import PagerDutyBackend

__all__ = ["SERVICE", "PagerDutyBackend", "build_pagerduty_app", "golden_pagerduty_world"]

_WORLD_FILE = Path(__file__).resolve().parent.parent / "worlds" / "pagerduty.json"


def build_pagerduty_app(backend: PagerDutyBackend):
    """A Starlette app serving `backend` on PagerDuty's paths (`/incidents`, `/v2/enqueue`, ...)."""
    from starlette.applications import Starlette

    from paymon.sandbox.pagerduty.responses import PagerDutyResponse
    from paymon.sandbox.pagerduty.urls import build_routes

    app = Starlette(routes=build_routes(PagerDutyResponse(backend)))
    app.state.backend = backend
    return app


@cache
def _golden() -> dict:
    return json.loads(_WORLD_FILE.read_text())


def golden_pagerduty_world() -> dict:
    """`world["pagerduty"]` as the guide wants it: the "TowerOfBabel Payments" service, its Events
    API v2 integration keyed with Sentry's integration key, severity-based urgency, an escalation
    policy whose level 1 is a schedule with the on-call engineer (level 2: the secondary)."""
    return copy.deepcopy(_golden())


SERVICE = Service("/pagerduty", lambda part, hub: PagerDutyBackend(part, hub=hub), build_pagerduty_app)
