"""An alert's name matches the same way for every reader: a rule the configuration checks accept
(case-folded, whitespace-collapsed) is one the drill and the reviews recognise."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from paymon.delivery.drill import incident_names_alert, slack_names_alert
from paymon.reviews.notifications import alert_named
from paymon.rules.names import mentions, name_key
from paymon.rules.normalise import AlertSet

DECLARED = "Payment Failure Rate Spike"  # monitoring.yaml's spelling
AS_TYPED = "payment failure  rate spike"  # what someone typed into Sentry


def test_the_configuration_checks_drill_and_reviews_agree_on_a_retyped_name():
    alert = SimpleNamespace(name=AS_TYPED, source="detector 1", generation="workflow", counting="across_events")
    assert AlertSet([alert]).by_name(DECLARED) is alert
    post = {"text": f"<https://sentry.example/alerts/1|*Critical: {AS_TYPED}*>"}
    assert slack_names_alert(post, DECLARED, "PAYMON-DRILL-X")
    assert incident_names_alert({"title": f"Critical: {AS_TYPED}"}, DECLARED, "PAYMON-DRILL-X")
    assert alert_named(f"Critical: {AS_TYPED}", [DECLARED, "Webhook Processing Failure"]) == DECLARED


@pytest.mark.parametrize("text, name, expected", [
    ("Critical: Payment  Failure Rate Spike", "payment failure rate spike", True),
    ("Resolved: Webhook Processing Failure", "Webhook Processing Failure", True),
    ("Payment Failure Rate", "Payment Failure Rate Spike", False),
    ("anything", "   ", False),
])
def test_mentions(text, name, expected):
    assert mentions(text, name) is expected
    assert name_key("  A\tB  ") == "a b"


def test_a_resolved_post_is_not_a_firing_whatever_the_case():
    assert not slack_names_alert({"text": f"Resolved: {AS_TYPED}"}, DECLARED, "PAYMON-DRILL-X")
