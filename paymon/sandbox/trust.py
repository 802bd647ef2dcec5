"""A *faulty but healthy* world: every transient fault a real run meets, none that breaks the setup.

`noisy_world(base_world, seed=...)` returns a deep copy of a world (golden or one of your own) with
noise that a trustworthy gate must absorb without a false failure. Nothing in it changes what the
guide asks for: every alert, channel, integration and on-call rotation stays exactly as it was, and
every delivery still lands inside its deadline. A run against it must pass, every time; a failure
is a flaky gate (a bug in paymon), not a finding.

It is tuned for the *short test spec* paymon's own tests use (`TRUST_DEADLINES`: Slack 6 s,
PagerDuty 10 s); pass other deadlines to keep "just inside" true for a different spec.

The noise, per service (each knob is documented where its emulator reads it):

Slack (`world["slack"]["knobs"]`, paymon/sandbox/slack/models.py)
    fail                 the next `SLACK_429_TIMES` `conversations.history` calls answer HTTP 429
                         `ratelimited` with `Retry-After: 1` - Slack's answer to a burst. The
                         delivery poller must wait the second it is asked to and poll again.
    history_limit_mode   "non_marketplace": since 2025-05-29 a commercially distributed app outside
                         the Slack Marketplace may call conversations.history once a minute, with
                         at most 15 messages per call. The poller must get its answer from the first
                         successful call (after the injected 429s, which Slack does not count).
    voices               the alert channel is not Sentry's alone (issue 13 item 1; paymon/sandbox/
                         slack/models.py knob `voices`), and every voice speaks inside the delivery
                         window: PagerDuty's Slack app posts "Triggered: [#n] <title>" a second after
                         the run's page opens (its title carries the PAGE marker); the on-call asks
                         about every firing by name `PEOPLE_DELAY` s after it, pasting the issue's
                         title (the SLACK marker included); Sentry's app posts a real firing of
                         "Payment Failure Rate Spike" `REAL_FIRING_AFTER` s after start and every
                         `REAL_FIRING_EVERY` s, escalating in its thread (a broadcast reply) and
                         resolving there (a reply history never shows). None of them is the run's
                         delivery; a reader that counted them would pass a broken route, and one
                         thrown by them (threads, other apps, more messages under the 15-per-call
                         limit) would fail a healthy one.

Sentry (`world["sentry"]["knobs"]`, paymon/sandbox/sentry/models.py)
    error_rate, seed     20 % of API requests answer 503, drawn from Random(seed): every read and
                         the cleanup PUT must retry within `--api-deadline`. (Ingestion - the SDK's
                         envelope POSTs - is not affected: the emulator applies injected failures
                         to the web API only.)
    ingest_delay         an accepted event shows in the API (event/issue reads) `INGEST_DELAY` s
                         later, as Sentry's pipeline does; the alert engine still sees it at once.
    delivery_delay       {"pagerduty": deadline - 2 s}: Sentry's page reaches PagerDuty just inside
                         the PagerDuty deadline. (Sentry's alert engine hands PagerDuty an explicit
                         `visible_at`, so this is the knob that delays the incident; PagerDuty's own
                         `delivery_delay` only applies to events POSTed over HTTP.)

PagerDuty (`world["pagerduty"]["knobs"]`, paymon/sandbox/pagerduty/models.py)
    notify_delay         the on-call engineer is notified `NOTIFY_DELAY` s after the incident is
                         assigned: the incident shows first, its notify_log_entry later. The
                         watcher must keep reading the log entries until the page is out (the
                         incident at deadline - 2 s plus this stays inside the watcher's grace).
    open_incidents       a real page ("Critical: Payment Failure Rate Spike", Sentry's integration,
                         high urgency) opened `REAL_PAGE_OPENED_BEFORE` s before the run and still
                         open: the watcher must not take it for the run's page, and cleanup must
                         leave it open (tests/test_pagerduty_paging.py checks a run leaves it open).
    alert_grouping_parameters (on the service Sentry's integration feeds) time-based, 2 minutes:
                         alerts close together share an incident (the drill's pages may be one
                         page, which its check reports as a warning); the older real page stays
                         apart.
"""

from __future__ import annotations

import copy

TRUST_DEADLINES = {"slack": 6.0, "pagerduty": 10.0}
"""Delivery deadlines (seconds) of the short test spec the noise is tuned for."""

SLACK_429_TIMES = 2
SLACK_RETRY_AFTER = 1
SENTRY_ERROR_RATE = 0.2
PAGERDUTY_MARGIN = 2.0
"""The page reaches PagerDuty this many seconds before its deadline."""
INGEST_DELAY = 2.0
NOTIFY_DELAY = 3.0
PEOPLE_DELAY = 0.5
REAL_FIRING_AFTER = 3.0
REAL_FIRING_EVERY = 600.0
REAL_PAGE_OPENED_BEFORE = 300.0
GROUPING_MINUTES = 2


def _service_id(integration: dict) -> str | None:
    service = integration.get("service")
    return service.get("id") if isinstance(service, dict) else service


def noisy_world(base_world: dict, *, seed: int, deadlines: dict[str, float] | None = None) -> dict:
    """A deep copy of `base_world` with the transient faults described in the module docstring.

    `seed` drives every random draw (Sentry's 503s; Slack's generated block ids), so a failing run
    can be replayed with the same seed. `deadlines` ({"slack", "pagerduty"} in seconds) default to
    `TRUST_DEADLINES`."""
    deadlines = {**TRUST_DEADLINES, **(deadlines or {})}
    if deadlines["pagerduty"] <= PAGERDUTY_MARGIN:
        raise ValueError(f"a PagerDuty deadline of {deadlines['pagerduty']:g}s leaves no room for a delivery "
                         f"{PAGERDUTY_MARGIN:g}s inside it")
    world = copy.deepcopy(base_world)

    slack = world["slack"].setdefault("knobs", {})
    slack["fail"] = [*slack.get("fail", []),
                     {"method": r"^conversations\.history$", "status": 429, "retry_after": SLACK_RETRY_AFTER,
                      "times": SLACK_429_TIMES}]
    slack["history_limit_mode"] = "non_marketplace"
    slack["seed"] = seed
    slack["voices"] = {
        "pagerduty_app": {"bot": "pagerduty", "services": {"PTOWPAY": ["#payments-alerts"]}, "delay": 1.0},
        "people": {"user": "U07ONCALL01", "channels": ["#payments-alerts"], "delay": PEOPLE_DELAY, "alerts": None,
                   "quote_issue": True},
        "real_firings": [{"alert": "Payment Failure Rate Spike", "channel": "#payments-alerts",
                          "every": REAL_FIRING_EVERY, "first_after": REAL_FIRING_AFTER, "escalate_after": 1.0,
                          "resolve_after": 2.0}],
    }

    sentry = world["sentry"].setdefault("knobs", {})
    sentry["error_rate"] = SENTRY_ERROR_RATE
    sentry["seed"] = seed
    sentry["ingest_delay"] = INGEST_DELAY
    sentry.setdefault("delivery_delay", {})["pagerduty"] = deadlines["pagerduty"] - PAGERDUTY_MARGIN

    pagerduty = world["pagerduty"].setdefault("knobs", {})
    pagerduty["notify_delay"] = NOTIFY_DELAY
    # A real page is already open on the payments service, sent by Sentry's own integration (the
    # same routing key as paymon's synthetic alert): it is neither paymon's delivery nor its to resolve.
    sentry_key = next(i["integration_key"] for i in world["pagerduty"]["integrations"] if i["name"] == "Sentry")
    # ... and the service groups alerts (time-based, `GROUPING_MINUTES`: verified §13), so alerts
    # arriving close together share one incident: the drill's pages, fired together, may become one
    # page (a warning, not a failure), and the watcher must find its page by its alert. (Grouped
    # "until resolved", the real page would swallow every page of the run: a drill then cannot page
    # anyone, which its check reports as "could not check", and a healthy world must not do that.)
    for service in world["pagerduty"]["services"]:
        if any(i["name"] == "Sentry" and _service_id(i) == service["id"] for i in world["pagerduty"]["integrations"]):
            service["alert_grouping_parameters"] = {"type": "time", "config": {"timeout": GROUPING_MINUTES}}
    pagerduty["open_incidents"] = [*pagerduty.get("open_incidents", []),
                                   {"summary": "Critical: Payment Failure Rate Spike", "routing_key": sentry_key,
                                    "dedup_key": "incident_7101_real", "severity": "critical",
                                    "opened_before": REAL_PAGE_OPENED_BEFORE}]
    return world


def late_world(base_world: dict, *, deadlines: dict[str, float] | None = None, past_by: float = 2.0) -> dict:
    """The control for `noisy_world`: no noise, but Sentry's page reaches PagerDuty `past_by` s
    *after* its deadline. A gate that passes this world cannot fail at all."""
    deadlines = {**TRUST_DEADLINES, **(deadlines or {})}
    world = copy.deepcopy(base_world)
    sentry = world["sentry"].setdefault("knobs", {})
    sentry.setdefault("delivery_delay", {})["pagerduty"] = deadlines["pagerduty"] + past_by
    return world
