"""The emulated Sentry web API (moto layout: models / responses / urls / exceptions)."""

from __future__ import annotations

from paymon.sandbox.sentry.models import SentryBackend

__all__ = ["SentryBackend", "build_sentry_app"]


def build_sentry_app(backend: SentryBackend):
    """A Starlette app serving `backend` on Sentry's paths (`/api/0/...`)."""
    from starlette.applications import Starlette

    from paymon.sandbox.sentry.responses import SentryResponse
    from paymon.sandbox.sentry.urls import build_routes

    app = Starlette(routes=build_routes(SentryResponse(backend)))
    app.state.backend = backend
    return app
