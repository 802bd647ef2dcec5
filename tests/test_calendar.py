"""No test and no check depends on today's date or the time of day: the date-sensitive parts run
with the sandbox clock started just before and after midnight, a month's end, a year's end, a
leap day and the reconciliation job's own minute (02:00 UTC), and give the same answers.

(A test once assumed the last three days share a month and failed on the 1st and 2nd of every
month; this file is where such an assumption now fails every day.)
"""

from __future__ import annotations

import datetime as dt
import itertools
import math

import pytest

from paymon.clients.sentry.client import SentryClient
from paymon.config.spec import load_spec
from paymon.config.target import Target
from paymon.findings import production
from paymon.reviews.failures import review_failures
from paymon.sandbox.history import generate_history
from paymon.sandbox.hub import SandboxClock
from paymon.sandbox.server import SandboxServer
from paymon.sandbox.world import golden_world
from tests.conftest import REPO

SPEC = load_spec(REPO / "monitoring.yaml")
DAY = 86400

INSTANTS = {
    "before midnight": "2026-09-15T23:59:30Z",
    "after midnight": "2026-09-16T00:00:30Z",
    "last of the month": "2026-11-30T23:59:30Z",
    "first of the month": "2026-12-01T00:00:30Z",
    "second of the month": "2026-12-02T01:00:00Z",
    "new year's eve": "2026-12-31T23:59:30Z",
    "new year": "2027-01-01T00:00:30Z",
    "leap day": "2028-02-29T12:00:00Z",
    "the cron job's minute": "2026-12-01T02:00:30Z",
}


def _epoch(text: str) -> float:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


@pytest.fixture(params=list(INSTANTS.values()), ids=list(INSTANTS))
def at(request) -> float:
    return _epoch(request.param)


def _client(server: SandboxServer) -> SentryClient:
    target = Target("sandbox", sandbox=server.describe(), org=SPEC.organization, project=SPEC.project)
    return SentryClient(target.sentry(), deadline=5)


def _failure(at: float, error_type: str) -> dict:
    return {"message": f"Checkout failed: {error_type}", "level": "error", "environment": "production",
            "tags": {"payment_flow": "checkout"}, "exception": {"values": [{"type": error_type}]}, "timestamp": at}


def test_failure_review_buckets_by_calendar_day(at):
    world = golden_world("workflow")
    world["app"]["history"] = {}
    with SandboxServer(world, clock=SandboxClock(start=at)) as server:
        now = server.clock.now()
        today = math.floor(now / DAY) * DAY
        times = [today - 2 * DAY + 3600, today - 2 * DAY + 7200, today - DAY + 600]
        server.sentry.store_events([_failure(t, "CardDeclinedError") for t in times], received=times)
        with _client(server) as client:
            trend = review_failures(client, SPEC, weeks=1, now=now)
    dates = [dt.date.fromisoformat(day) for day in trend.days]
    assert [b - a for a, b in itertools.pairwise(dates)] == [dt.timedelta(days=1)] * (len(dates) - 1)
    assert dates[-1] == dt.datetime.fromtimestamp(now, dt.UTC).date()
    assert trend.counts["CardDeclinedError"][-3:] == [2, 1, 0]


def test_reconciliation_run_and_production_health_pass_on_the_golden_world(at):
    with SandboxServer(golden_world("workflow"), clock=SandboxClock(start=at)) as server, _client(server) as client:
        now = server.clock.now()
        newest = server.sentry.list_checkins(server.sentry.monitors[0], ["production"])[0]
        created = dt.datetime.fromisoformat(newest["dateCreated"].replace("Z", "+00:00"))
        assert (created.hour, created.minute) == (2, 0) and 0 <= now - created.timestamp() < DAY + 120
        assert production.reconciliation_findings(client, SPEC, now=now) == []
        assert production.usage_reporting_findings(client, SPEC)[0] == []
        assert production.test_mode_findings(client, SPEC) == []


def test_generated_history_covers_each_day_up_to_the_end(at):
    items = generate_history(seed=7, days=3, end=at, transaction_days=3)
    errors = [item.at for item in items if item.kind != "transaction"]
    assert errors and max(errors) < at and min(errors) >= at - 3 * DAY
    days = {dt.datetime.fromtimestamp(t, dt.UTC).date() for t in errors}
    assert len(days) >= 3
