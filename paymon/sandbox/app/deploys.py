"""The app's deploys and the payment failures around them: part of the world's history, replayed
into Sentry when the sandbox starts (paymon's post-deployment watch reads them back).

`world["app"]["history"]`:

    deploys         [{"version", "environment", "hours_ago", "name"?, "url"?}]   each recorded in
                    Sentry as the app's CI records it (`sentry-cli releases new` / `deploys new`:
                    paymon.sandbox.sentry.releases), `hours_ago` before the sandbox's clock
    payment_errors  {"per_hour": n, "over": "8h", "after_deploy": factor}   checkout failures
                    (captured as the app's payment route captures them: level error, tag
                    payment_flow=checkout, which §1 Alert 1's filter counts), evenly spread over
                    `over` with a little jitter; after the latest production deploy the rate is
                    multiplied by `after_deploy` (1: the deploy changed nothing)

Each failure is sent through the app's SDK at its own time (`telemetry.at`), oldest first, so the
events are stored at the moments they happened and Sentry's alert engine judges them as it would
have. Deterministic from the app's seed.
"""

from __future__ import annotations

import random

HOUR = 3600.0
PAYMENT_FAILURE = "Payment failed: card declined at checkout"


def _seconds(value, default: float) -> float:
    from paymon.config.spec import parse_duration

    return float(parse_duration(value)) if value is not None else default


def replay_deploys(app, history: dict, now: float) -> None:
    sentry = app.telemetry.sentry
    if sentry is None:
        return
    deploys = history.get("deploys") or []
    releases = getattr(sentry, "releases", None)
    for deploy in deploys:
        if releases is None:
            break
        finished = now - float(deploy["hours_ago"]) * HOUR
        releases.record_deploy(deploy["version"], deploy["environment"], finished,
                               started=finished - 180, name=deploy.get("name"), url=deploy.get("url"))
    errors = history.get("payment_errors") or {}
    per_hour = float(errors.get("per_hour") or 0)
    if per_hour <= 0:
        return
    rng = random.Random(f"payment-errors-{app.knobs.get('seed', 0)}")
    production = [now - float(d["hours_ago"]) * HOUR for d in deploys if d["environment"] == app.environment]
    deployed = max(production) if production else None
    factor = float(errors.get("after_deploy", 1.0))
    moments, at = [], now - _seconds(errors.get("over"), 8 * HOUR)
    while True:
        rate = per_hour * (factor if deployed is not None and at >= deployed else 1.0)
        at += HOUR / rate
        if at >= now - 60:
            break
        moments.append(at + rng.uniform(-0.2, 0.2) * HOUR / rate)
    for moment in sorted(moments):
        with app.telemetry.at(moment):
            app.report(PAYMENT_FAILURE, "error", {"payment_flow": "checkout"})
