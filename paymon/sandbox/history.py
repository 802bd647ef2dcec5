"""A realistic past for the sandbox: what the reviews and the backtest read, deterministic from a seed.

    items = generate_history(seed=7, days=7, end=clock.now())   # a list of HistoryItem, oldest first
    summary = load_history(hub.backends, items)                  # through Sentry's store_events

The week (`days`) holds payment errors: a background of card declines and gateway errors that
follows the day (busy afternoons, quiet nights, UTC), a checkout failure burst, a webhook outage, a
burst of invalid webhook signatures, a few usage-reporting failures that stay under their alert,
and one reconciliation discrepancy at the 02:00 run. The quarter (`transaction_days`, default 91)
holds the payment endpoints' transactions (the kept 10%), with a deploy `deploy_days_ago` that made
checkout slower, and a slow drift in webhook processing time. Events go through
`SentryBackend.store_events` with their own receive times, oldest first, so the sandbox's alert
engine fires on them as Sentry would have, and Slack and PagerDuty hold the notifications. After
loading, on-call people acknowledge most PagerDuty incidents a few minutes after they opened
(`ack_share`), as the history of a real service would show.

Every number is drawn from `random.Random(seed)`; the same seed and end time give the same history.
"""

from __future__ import annotations

import math
import random
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field

DAY = 86400
HOUR = 3600
PAYMENT_ERRORS = ("CardDeclinedError", "GatewayTimeoutError", "InsufficientFundsError", "FraudSuspectedError")
ERROR_SHARE = (0.55, 0.2, 0.2, 0.05)
TRANSACTIONS = {
    # transaction: (median ms, log-sigma, kept transactions per busy hour)
    "/api/checkout/pro": (180.0, 0.3, 4),
    "/api/checkout/payg": (170.0, 0.3, 4),
    "/api/webhooks/lemonsqueezy": (380.0, 0.3, 6),
    "/api/subscription/payg/create": (100.0, 0.3, 2),
}
CHECKOUT = ("/api/checkout/pro", "/api/checkout/payg")


@dataclass(frozen=True)
class HistoryItem:
    at: float
    item_type: str  # "event" | "transaction"
    payload: dict
    kind: str
    """What it stands for: "payment_error", "checkout_burst", "webhook_outage", "signature_burst",
    "usage_failure", "reconciliation", "transaction"."""


@dataclass
class HistorySummary:
    events: int = 0
    transactions: int = 0
    by_kind: dict = field(default_factory=dict)
    firings: int = 0
    incidents: int = 0
    acknowledged: int = 0
    start: float = 0.0
    end: float = 0.0


def activity(at: float) -> float:
    """Traffic relative to the busiest hour: a day curve (UTC), low at night, less at weekends."""
    hour = (at % DAY) / HOUR
    day_curve = 0.08 + 0.92 * max(0.0, math.sin(math.pi * (hour - 6) / 16)) if 6 <= hour <= 22 else 0.08
    weekday = int(at // DAY + 4) % 7  # 1970-01-01 was a Thursday: 0 = Monday
    return day_curve * (0.6 if weekday >= 5 else 1.0)


def _error(at: float, error_type: str, rng: random.Random, kind: str) -> HistoryItem:
    value = {"CardDeclinedError": "Your card was declined.", "GatewayTimeoutError": "Lemon Squeezy checkout timed out",
             "InsufficientFundsError": "Insufficient funds", "FraudSuspectedError": "Payment blocked by fraud check"}
    payload = {"event_id": uuid.UUID(int=rng.getrandbits(128)).hex, "level": "error", "environment": "production",
               "platform": "node", "tags": {"payment_flow": "checkout"}, "transaction": rng.choice(CHECKOUT),
               "exception": {"values": [{"type": error_type, "value": value[error_type],
                                         "mechanism": {"type": "generic", "handled": True}}]},
               "timestamp": at}
    return HistoryItem(at, "event", payload, kind)


def _message(at: float, message: str, level: str, tags: dict, rng: random.Random, kind: str) -> HistoryItem:
    payload = {"event_id": uuid.UUID(int=rng.getrandbits(128)).hex, "message": message, "level": level,
               "environment": "production", "platform": "node", "tags": tags, "timestamp": at}
    return HistoryItem(at, "event", payload, kind)


def transaction(at: float, name: str, duration_ms: float, rng: random.Random, status: str = "ok") -> HistoryItem:
    payload = {"event_id": uuid.UUID(int=rng.getrandbits(128)).hex, "type": "transaction", "transaction": name,
               "environment": "production", "platform": "node", "start_timestamp": at - duration_ms / 1000.0,
               "timestamp": at, "tags": {"payment_flow": "true"},
               "contexts": {"trace": {"op": "http.server", "status": status,
                                      "trace_id": uuid.UUID(int=rng.getrandbits(128)).hex,
                                      "span_id": uuid.UUID(int=rng.getrandbits(128)).hex[:16]}}}
    return HistoryItem(at, "transaction", payload, "transaction")


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method: small means only (per-hour counts).
    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count


def generate_history(seed: int = 7, days: int = 7, end: float | None = None, *, transaction_days: int = 91,
                     deploy_days_ago: float = 3.0, errors_per_busy_hour: float = 3.0,
                     recent_failure_factor: float = 1.0, deploy_slowdown: float = 1.6) -> list[HistoryItem]:
    """The items of the history ending at `end` (default: the next whole hour before now), oldest first.

    `recent_failure_factor` multiplies the background payment failures of the last 7 days (a week
    worse than the ones before, for the failure-trend review); `deploy_slowdown` is how much slower
    checkout is after the deploy (2.5 puts its p95 over the 500 ms warning budget)."""
    import time

    rng = random.Random(seed)
    end = float(end if end is not None else time.time())
    start = end - days * DAY
    items: list[HistoryItem] = []

    # Background payment failures, hour by hour.
    hour = math.floor(start / HOUR) * HOUR
    while hour < end:
        factor = recent_failure_factor if hour >= end - 7 * DAY else 1.0
        for _ in range(_poisson(rng, errors_per_busy_hour * factor * activity(hour + HOUR / 2))):
            at = hour + rng.uniform(0, HOUR)
            if start < at < end:
                items.append(_error(at, rng.choices(PAYMENT_ERRORS, ERROR_SHARE)[0], rng, "payment_error"))
        hour += HOUR

    today = math.floor(end / DAY) * DAY

    def at_day(days_ago: int, hours: float) -> float:
        """`hours` past midnight (UTC) `days_ago` days before the last day: the same moments
        whatever the history's length, so a longer history holds the week's incidents too."""
        return today - days_ago * DAY + hours * HOUR

    # A checkout failure burst (the payment provider's gateway failed for four minutes).
    burst = at_day(4, 13.2)
    for i in range(24):
        items.append(_error(burst + i * 10 + rng.uniform(0, 5), "GatewayTimeoutError", rng, "checkout_burst"))
    # A webhook outage: processing failures for six minutes.
    outage = at_day(2, 9.0)
    for i in range(9):
        items.append(_message(outage + i * 40, "Webhook processing failed: subscription_updated handler threw",
                              "error", {"webhook": "true"}, rng, "webhook_outage"))
    # Invalid webhook signatures: someone replaying old webhooks, seven in three minutes.
    replay = at_day(3, 21.5)
    for i in range(7):
        items.append(_message(replay + i * 25, "Invalid webhook signature", "warning", {"webhook": "signature"},
                              rng, "signature_burst"))
    # Usage reporting: three failures in ten minutes (alert 4 wants more than five).
    usage = at_day(1, 15.0)
    for i in range(3):
        items.append(_message(usage + i * 180, "Usage reporting failed", "error", {"usage_reporting": "error"},
                              rng, "usage_failure"))
    # One reconciliation discrepancy, at the 02:00 run.
    items.append(_message(at_day(5, 2.02), "reconciliation discrepancies detected", "warning",
                          {"reconciliation": "true", "discrepancy_types": "status_mismatch"}, rng, "reconciliation"))

    # The quarter's transactions: a deploy made checkout slower; webhooks drift up over the quarter.
    t_start = end - transaction_days * DAY
    deploy = end - deploy_days_ago * DAY
    hour = math.floor(t_start / HOUR) * HOUR
    while hour < end:
        level = activity(hour + HOUR / 2)
        for name, (median, sigma, per_hour) in TRANSACTIONS.items():
            for _ in range(_poisson(rng, per_hour * max(level, 0.25))):
                at = hour + rng.uniform(0, HOUR)
                if not t_start < at < end:
                    continue
                scale = 1.0
                if name in CHECKOUT and at >= deploy:
                    scale = deploy_slowdown
                if name == "/api/webhooks/lemonsqueezy":
                    scale = 1.0 + 0.25 * (at - t_start) / (end - t_start)
                duration = median * scale * math.exp(rng.gauss(0.0, sigma))
                items.append(transaction(at, name, round(duration, 1), rng))
        hour += HOUR

    items.sort(key=lambda item: (item.at, item.payload["event_id"]))
    return [i for i in items if start - (transaction_days - days) * DAY < i.at < end]


def load_history(backends: dict, items: list[HistoryItem], *, seed: int = 7, ack_share: float = 0.8,
                 ack_minutes: tuple[float, float] = (0.5, 6.0)) -> HistorySummary:
    """Store the items in the sandbox's Sentry (errors and transactions, each in time order), then
    let on-call acknowledge PagerDuty's incidents of that past. The sandbox clock must be past them."""
    sentry = backends["sentry"]
    summary = HistorySummary(start=items[0].at if items else 0.0, end=items[-1].at if items else 0.0)
    before = len(sentry.alert_firings)
    for item_type in ("event", "transaction"):
        chosen = [i for i in items if i.item_type == item_type]
        if chosen:
            sentry.store_events([i.payload for i in chosen], item_type=item_type, received=[i.at for i in chosen])
    for item in items:
        summary.by_kind[item.kind] = summary.by_kind.get(item.kind, 0) + 1
    summary.transactions = summary.by_kind.get("transaction", 0)
    summary.events = len(items) - summary.transactions
    summary.firings = len([f for f in sentry.alert_firings[before:] if f.level != "resolved"])
    pagerduty = backends.get("pagerduty")
    if pagerduty is not None and items:
        summary.incidents, summary.acknowledged = acknowledge_incidents(
            pagerduty, since=summary.start, until=summary.end, seed=seed, share=ack_share, minutes=ack_minutes)
    return summary


def acknowledge_incidents(pagerduty, *, since: float, until: float, seed: int, share: float,
                          minutes: tuple[float, float]) -> tuple[int, int]:
    """The on-call person of each incident opened in [since, until] acknowledges it after a few
    minutes (a `share` of them, and only if it had not resolved by then)."""
    rng = random.Random(f"acks-{seed}")
    # Sentry judges metric alerts lazily, on its subscription updates: let it page first.
    pagerduty.hub.settle()
    incidents = [i for i in pagerduty.incidents if since <= i.created_at <= until + HOUR]
    acknowledged = 0
    for index, incident in enumerate(sorted(incidents, key=lambda i: i.created_at)):
        if math.ceil((index + 1) * share) == math.ceil(index * share):
            continue  # nobody acknowledged this one: (1 - share) of them, spread evenly
        at = incident.created_at + 60.0 * rng.uniform(*minutes)
        resolved_at = incident.resolved_at
        assigned = [e for e in incident.log_entries if e.type == "assign_log_entry"]
        user = (assigned[0].extra.get("assignees") or [None])[0] if assigned else None
        agent = ("user", user) if user else ("service", incident.service_id)
        if resolved_at is not None and at >= resolved_at:
            continue  # it resolved before anyone looked
        if incident.status == "triggered":
            pagerduty._acknowledge(incident, at, agent, {"type": "web_ui"})
        else:  # resolved since: the acknowledgement still happened, before the resolution
            pagerduty._log(incident, "acknowledge_log_entry", at, {"type": "web_ui"}, agent,
                           "Acknowledged (history)")
        acknowledged += 1
    return len(incidents), acknowledged


def load_sandbox_history(server, *, days: int, seed: int, transaction_days: int = 91, **shape) -> HistorySummary:
    """`days` of generated history ending a minute before the server's clock, loaded into it
    (`shape`: generate_history's keywords, e.g. recent_failure_factor)."""
    items = generate_history(seed=seed, days=days, end=server.clock.now() - 60, transaction_days=transaction_days,
                             **shape)
    return load_history(server.backends, items, seed=seed)


@contextmanager
def sandbox_with_history(*, days: int, seed: int, generation: str = "workflow", world: dict | None = None):
    """A fresh sandbox server (golden world of `generation`, or `world`) holding `days` of history:
    what the reviews read in the sandbox. Yields (server, HistorySummary)."""
    from paymon.sandbox.server import SandboxServer
    from paymon.sandbox.world import golden_world

    world = world or golden_world(generation)
    # The history scripts who acknowledged what and when (acknowledge_incidents); the on-call
    # stand-in that acknowledges every high-urgency page after `acknowledge_after` would answer first.
    world.setdefault("pagerduty", {}).setdefault("knobs", {})["acknowledge_after"] = None
    with SandboxServer(world) as server:
        yield server, load_sandbox_history(server, days=days, seed=seed)
