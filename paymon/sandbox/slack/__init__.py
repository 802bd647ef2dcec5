"""The emulated Slack Web API (moto layout: models / responses / urls / exceptions).

Served under `/slack` (slack-sdk: `WebClient(base_url=f"{sandbox.base_url}/slack/api/")`).
`SERVICE` is the entry for `paymon.sandbox.server.SERVICES` (the server imports the services, not
the reverse).
"""

from __future__ import annotations


from paymon.sandbox.core import Service
from paymon.sandbox.slack.models import SlackBackend
from paymon.sandbox.slack.world import golden_slack_world

__all__ = ["SERVICE", "SlackBackend", "build_slack_app", "golden_slack_world"]


def build_slack_app(backend: SlackBackend):
    """A Starlette app serving `backend` on Slack's paths (`/api/<method>`)."""
    from starlette.applications import Starlette

    from paymon.sandbox.slack.responses import SlackResponse
    from paymon.sandbox.slack.urls import build_routes

    app = Starlette(routes=build_routes(SlackResponse(backend)))
    app.state.backend = backend
    return app


SERVICE = Service("/slack", lambda part, hub: SlackBackend(part, hub=hub), build_slack_app)
