"""Where the reviews read from: the live services, or a sandbox of their own with a generated past.

    with review_session("sandbox", spec, history_days=30, seed=7) as session:
        session.sentry       # SentryClient
        session.slack()      # SlackReader or None (live: only when SLACK_BOT_TOKEN is set)
        session.pagerduty()  # PagerDutyClient or None
        session.now

The sandbox is a fresh golden world (never the suite's shared sandbox, whose last 24 hours the
configuration checks judge) with `paymon.sandbox.history` loaded: `history_days` of payment errors
ending a minute ago and a quarter of transactions. `--target live` reads the same settings as the
live suite (SENTRY_AUTH_TOKEN etc.); Slack and PagerDuty are read only if their tokens are set.
"""

from __future__ import annotations

import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from paymon.errors import SettingsError
from paymon.target import Target


@dataclass
class ReviewSession:
    target: Target
    sentry: object
    now: float
    history: object | None = None
    """The sandbox history's HistorySummary (None live)."""
    _clients: list = field(default_factory=list)

    def slack(self):
        from paymon.slack import SlackReader

        return self._optional_client(self.target.slack, SlackReader)

    def pagerduty(self):
        from paymon.pagerduty import PagerDutyClient

        return self._optional_client(self.target.pagerduty,
                                     lambda settings: PagerDutyClient(settings, deadline=self.sentry.deadline))

    def _optional_client(self, settings_of, build):
        """A client for the service, or None live when its token is not set (the review then
        says what it could not read); in the sandbox every service is there, so that is an error."""
        try:
            settings = settings_of()
        except SettingsError:
            if self.target.name == "live":
                return None
            raise
        client = build(settings)
        self._clients.append(client)
        return client

    def api_calls(self) -> int:
        return self.sentry.request_count + sum(c.request_count for c in self._clients)


def load_sandbox_history(server, *, days: int, seed: int, transaction_days: int = 91):
    from paymon.sandbox.history import generate_history, load_history

    items = generate_history(seed=seed, days=days, end=server.clock.now() - 60, transaction_days=transaction_days)
    return load_history(server.backends, items, seed=seed)


@contextmanager
def review_session(target_name: str, spec, *, history_days: int = 30, seed: int = 7, deadline: float = 30.0,
                   generation: str = "workflow", environ=None, world: dict | None = None):
    from paymon.sentry.client import SentryClient

    environ = dict(os.environ if environ is None else environ)
    if target_name == "live":
        target = Target("live", environ=environ, org=spec.organization, project=spec.project)
        client = SentryClient(target.sentry(), deadline=deadline)
        session = ReviewSession(target, client, time.time())
        try:
            yield session
        finally:
            client.close()
            for other in session._clients:
                getattr(other, "close", lambda: None)()
        return
    from paymon.sandbox.server import SandboxServer
    from paymon.sandbox.world import golden_world

    with SandboxServer(world or golden_world(generation)) as server:
        summary = load_sandbox_history(server, days=history_days, seed=seed)
        target = Target("sandbox", sandbox=server.describe())
        client = SentryClient(target.sentry(), deadline=deadline)
        session = ReviewSession(target, client, server.clock.now(), summary)
        try:
            yield session
        finally:
            client.close()
            for other in session._clients:
                getattr(other, "close", lambda: None)()
