"""The emulated Lemon Squeezy API (moto layout: models / responses / urls), served under
`/lemonsqueezy` by the sandbox server: the account the sandbox payment app creates checkouts and
reports usage in, and which paymon reads the synthetic subscription from (`GET /v1/subscriptions/{id}`).

It has no world entry of its own: the account is the app's (`world["app"]`, its `lemonsqueezy`
part), one state for both clients, so what the app does and what paymon reads never disagree.
"""

from __future__ import annotations

from paymon.sandbox.core import Service
from paymon.sandbox.lemonsqueezy.models import DEFAULT_API_KEY, LemonSqueezyBackend

__all__ = ["DEFAULT_API_KEY", "SERVICE", "LemonSqueezyBackend", "build_lemonsqueezy_app"]


def build_lemonsqueezy_app(backend: LemonSqueezyBackend):
    """A Starlette app serving `backend` on Lemon Squeezy's API paths (`/v1/...`)."""
    from starlette.applications import Starlette

    from paymon.sandbox.lemonsqueezy.responses import LemonSqueezyResponse
    from paymon.sandbox.lemonsqueezy.urls import build_routes

    app = Starlette(routes=build_routes(LemonSqueezyResponse(backend)))
    app.state.backend = backend
    return app


def _account_of_the_app(part: dict, hub) -> LemonSqueezyBackend:
    # The app's backend is built first (SERVICES lists it before this one) and holds the account.
    return hub.backends["app"].lemonsqueezy


SERVICE = Service("/lemonsqueezy", _account_of_the_app, build_lemonsqueezy_app, world_part="app")
