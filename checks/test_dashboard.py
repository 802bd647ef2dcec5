"""§4 Option A: the "Payment Monitoring" dashboard and its five widgets, with §4's details: widget 1
daily over a 7-day trend, widget 3's 1000/2000 ms threshold markers, widget 5's success rate
"(successful / total) x 100" (monitoring.yaml says how each is read in Sentry's terms)."""

import pytest

from fixtures.outcome import fail_with

pytestmark = pytest.mark.criterion("Payment dashboard created (Sentry or custom)")


def test_dashboard_exists(sentry, spec):
    fail_with(sentry.dashboard_findings())


def test_dashboard_widget(widget_spec, sentry, spec):
    fail_with(sentry.widget_findings(widget_spec))
