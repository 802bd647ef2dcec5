"""§3 "Test Alert Delivery" and §5 "Test PagerDuty Integration", proven end to end: a test event
goes through the real rules (the synthetic-check alerts) and is read back where people see it.

§9: "Test alerts delivered to Slack within 1 minute", "PagerDuty integration tested (if
applicable)": a low-urgency synthetic incident, assigned to the on-call and resolved at once, so a
gate or scheduled run pages nobody ("On-call engineer confirmed PagerDuty page received" is the
drill's: checks/test_drill.py). Delivery time is the service's own stamp (Slack `ts`, PagerDuty
the alert's `created_at`) minus the moment the event was sent; also recorded from the moment Sentry
fired (the synthetic alerts are issue alerts: the test issue's `firstSeen`), so a slow Sentry and a
slow Slack or PagerDuty are told apart (`*_delivery_seconds_from_sentry`).
Slack: only a post of Sentry's app carrying the run's marker delivers (never a person or another app
quoting it); an archived channel, or a Sentry bot that cannot post there, fails at once, naming why.
"""

import warnings

import pytest

pytestmark = pytest.mark.delivery


def _seconds_from_sentry(sentry, spec, route: str, run_id: str, delivery) -> float | None:
    """From Sentry firing (the route's synthetic alert, an issue alert: its issue's firstSeen) to
    the delivery's own stamp; None when either is unknown."""
    from paymon.delivery.fired import sentry_fired_at
    from paymon.errors import TargetUnavailable

    alert = next((a for a in spec.synthetic_checks if f"paymon_check:{route}" in a.filter), None)
    if delivery.arrived_at is None or alert is None:
        return None
    try:
        fired = sentry_fired_at(sentry.client, sentry.alert(alert.name), delivery.fired_at,
                                project_id=str(sentry.project["id"]),
                                issue_query=f"paymon_check:{route} paymon_run:{run_id}")
    except TargetUnavailable:
        return None
    return None if fired is None else delivery.arrived_at - fired


@pytest.mark.criterion("Test alerts delivered to Slack within 1 minute")
def test_slack_delivery(fired_events, slack_deliveries, spec, record_property, sentry, run_id):
    channel, deadline = spec.delivery.slack.channel, spec.delivery.slack.deadline
    for event in (e for e in fired_events if e.route == "slack"):
        delivery = slack_deliveries[event.marker]
        record_property("slack_delivery_seconds", delivery.seconds)
        record_property("slack_delivery_seconds_from_sentry",
                        _seconds_from_sentry(sentry, spec, "slack", run_id, delivery))
        if delivery.seconds is None and delivery.impossible:
            pytest.fail(f"Slack delivery: test event {event.marker} (event {event.event_id}) cannot reach {channel}: "
                        f"{delivery.impossible} (stopped after {delivery.polls} poll(s) instead of waiting out "
                        f"the {deadline}s deadline)", pytrace=False)
        if delivery.seconds is None:
            pytest.fail(f"Slack delivery: test event {event.marker} (event {event.event_id}) not in {channel} "
                        f"within {deadline}s (polled {delivery.polls}x, "
                        f"{delivery.waited_for_rate_limit_s:.0f}s waiting on Slack rate limits)", pytrace=False)
        if not delivery.on_time:
            pytest.fail(f"Slack delivery: {event.marker} reached {channel} after {delivery.seconds:.1f}s, "
                        f"deadline {deadline}s", pytrace=False)


@pytest.mark.criterion("PagerDuty integration tested (if applicable)")
def test_pagerduty_delivery(fired_events, pagerduty_delivery, on_call_user_ids, spec, record_property, real_alerts,
                            sentry, run_id):
    """Sentry -> PagerDuty on the production service, without waking anyone: the synthetic alert
    sends PagerDuty severity `warning`, which the service's urgency rule makes low (monitoring.yaml
    synthetic_checks); the incident must be assigned to the level-1 on-call per the escalation
    policy, and paymon resolves it as soon as it is seen. The real page is the drill's
    (checks/test_drill.py); that a page would reach a person, checks/test_integrations.py."""
    from paymon.reporting.measurements import MEASUREMENT_PROPERTY, encode

    # The weekly review's "alerts that fired for real": what else paged the team over the last day.
    for real in real_alerts:
        record_property(MEASUREMENT_PROPERTY, encode(real))

    watch = pagerduty_delivery
    delivery, incident = watch.delivery, watch.incident
    service, deadline = spec.delivery.pagerduty.service, spec.delivery.pagerduty.deadline
    record_property("pagerduty_delivery_seconds", delivery.seconds)
    record_property("pagerduty_delivery_seconds_from_sentry",
                    _seconds_from_sentry(sentry, spec, "pagerduty", run_id, delivery))
    if watch.cannot_arrive and watch.alert is None:
        pytest.fail(f"PagerDuty delivery ({delivery.marker}): cannot arrive, stopped after {delivery.polls} poll(s): "
                    f"{watch.cannot_arrive}", pytrace=False)
    if watch.alert is None:
        pytest.fail(f"PagerDuty delivery: no incident for {delivery.marker} on {service!r} within {deadline}s: no alert "
                    f"of Sentry's integration carries it (polled {delivery.polls}x)", pytrace=False)
    problems = []
    where = f"incident #{incident.get('incident_number')} ({incident['id']})"
    if not delivery.on_time:
        problems.append(f"alert {watch.alert['id']} opened after {delivery.seconds:.1f}s, deadline {deadline}s")
    if watch.grouped:
        # Grouping put it into an incident someone else's alert opened: its urgency and assignees are
        # that incident's. Delivery is proven by the alert; say so rather than judge them.
        record_property("pagerduty_grouped_into", f"{where} {incident.get('title')!r}")
        warnings.warn(f"PagerDuty delivery ({delivery.marker}): grouped into {where} {incident.get('title')!r}, "
                      "which paymon did not open; its alert was resolved, the incident left as it is", stacklevel=1)
    else:
        expected = spec.delivery.pagerduty.urgency
        if incident.get("urgency") != expected:
            paged = watch.notified_high()
            problems.append(f"{where}: urgency expected {expected} (a synthetic check must not page), actual "
                            f"{incident.get('urgency')}" + (f": it paged {', '.join(paged)}" if paged else "")
                            + " — the service's urgency rule must make PagerDuty severity warning low")
        if watch.cannot_arrive:
            problems.append(watch.cannot_arrive)
        elif not watch.assigned(on_call_user_ids):
            problems.append(f"{where}: assign_log_entry expected to the level-1 on-call "
                            f"({', '.join(sorted(on_call_user_ids)) or 'nobody'}), actual none")
    if problems:
        pytest.fail(f"PagerDuty delivery ({delivery.marker}): " + "; ".join(problems), pytrace=False)
