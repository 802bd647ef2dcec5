"""§3 "Test Alert Delivery" and §5 "Test PagerDuty Integration", proven end to end: a test event
goes through the real rules (the synthetic-check alerts) and is read back where people see it.

§9: "Test alerts delivered to Slack within 1 minute", "On-call engineer confirmed PagerDuty page
received". Delivery time is the service's own stamp (Slack `ts`, PagerDuty `created_at`) minus
the moment the event was sent.
"""

import pytest

pytestmark = pytest.mark.delivery


@pytest.mark.criterion("Test alerts delivered to Slack within 1 minute")
def test_slack_delivery(fired_events, slack_deliveries, spec, record_property):
    channel, deadline = spec.delivery.slack.channel, spec.delivery.slack.deadline
    for event in (e for e in fired_events if e.route == "slack"):
        delivery = slack_deliveries[event.marker]
        record_property("slack_delivery_seconds", delivery.seconds)
        if delivery.seconds is None:
            pytest.fail(f"Slack delivery: test event {event.marker} (event {event.event_id}) not in {channel} "
                        f"within {deadline}s (polled {delivery.polls}x, "
                        f"{delivery.waited_for_rate_limit_s:.0f}s waiting on Slack rate limits)", pytrace=False)
        if not delivery.on_time:
            pytest.fail(f"Slack delivery: {event.marker} reached {channel} after {delivery.seconds:.1f}s, "
                        f"deadline {deadline}s", pytrace=False)


@pytest.mark.criterion("On-call engineer confirmed PagerDuty page received")
def test_pagerduty_delivery(fired_events, pagerduty_delivery, on_call_user_ids, spec, record_property, real_alerts):
    from paymon.delivery.endtoend import page_evidence
    from paymon.reporting.measurements import MEASUREMENT_PROPERTY, encode

    # The weekly review's "alerts that fired for real": what else paged the team over the last day.
    for real in real_alerts:
        record_property(MEASUREMENT_PROPERTY, encode(real))

    delivery, incident, entries = pagerduty_delivery
    service, deadline = spec.delivery.pagerduty.service, spec.delivery.pagerduty.deadline
    record_property("pagerduty_delivery_seconds", delivery.seconds)
    if incident is None:
        pytest.fail(f"PagerDuty delivery: no incident for {delivery.marker} on {service!r} within {deadline}s "
                    f"(polled {delivery.polls}x)", pytrace=False)
    problems = []
    if not delivery.on_time:
        problems.append(f"incident {incident['id']} opened after {delivery.seconds:.1f}s, deadline {deadline}s")
    if incident.get("urgency") != spec.delivery.pagerduty.urgency:
        problems.append(f"urgency expected {spec.delivery.pagerduty.urgency}, actual {incident.get('urgency')}")
    if not on_call_user_ids:
        problems.append("nobody is on call at escalation level 1, so nobody was paged")
    for what, seen in page_evidence(entries, on_call_user_ids).items():
        if not seen:
            entry = {"assigned": "assign_log_entry", "notified": "notify_log_entry"}[what]
            problems.append(f"no {entry} for the on-call user ({', '.join(sorted(on_call_user_ids)) or 'none'})")
    if problems:
        pytest.fail(f"PagerDuty delivery ({delivery.marker}): " + "; ".join(problems), pytrace=False)
