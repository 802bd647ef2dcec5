"""Where the reviews read from: a `Target` (the live services, or a sandbox the edge started).

    with review_session(target, now=server.clock.now()) as session:
        session.sentry       # SentryClient
        session.slack()      # SlackReader or None (live: only when SLACK_BOT_TOKEN is set)
        session.pagerduty()  # PagerDutyClient or None
        session.now

Live, the session reads the same settings as the live suite (SENTRY_AUTH_TOKEN etc.); Slack and
PagerDuty are read only if their tokens are set. In the sandbox the edges (`paymon review`, the
`reviews` fixture: `paymon.cli.review.open_review_session`) start a fresh golden world with a
generated history (`paymon.sandbox.history.sandbox_with_history`), never the suite's shared
sandbox, whose last 24 hours the configuration checks judge.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from paymon.errors import SettingsError
from paymon.config.target import Target


@dataclass
class ReviewSession:
    target: Target
    sentry: object
    now: float
    history: object | None = None
    """The sandbox history's HistorySummary (None live)."""
    _clients: list = field(default_factory=list)

    def slack(self):
        from paymon.clients.slack import SlackReader

        return self._optional_client(self.target.slack, SlackReader)

    def pagerduty(self):
        from paymon.clients.pagerduty import PagerDutyClient

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


@contextmanager
def review_session(target: Target, *, now: float | None = None, history: object | None = None,
                   deadline: float = 30.0):
    """A session on `target` (live, or a sandbox the caller started: only the edges start one).
    `now` defaults to the wall clock; a sandbox passes its own clock's time."""
    from paymon.clients.sentry.client import SentryClient

    client = SentryClient(target.sentry(), deadline=deadline)
    session = ReviewSession(target, client, time.time() if now is None else now, history)
    try:
        yield session
    finally:
        client.close()
        for other in session._clients:
            getattr(other, "close", lambda: None)()
