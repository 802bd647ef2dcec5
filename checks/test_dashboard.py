"""§4 Option A: the "Payment Monitoring" dashboard and its five widgets."""

import pytest

from fixtures.outcome import fail_with

pytestmark = pytest.mark.criterion("Payment dashboard created (Sentry or custom)")


def test_dashboard_exists(sentry, spec):
    fail_with(sentry.dashboard_findings())


def test_dashboard_widget(widget_spec, sentry, spec):
    fail_with(sentry.widget_findings(widget_spec))
