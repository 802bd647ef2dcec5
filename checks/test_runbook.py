"""§6 "Operations Runbook": the runbook is a document paymon reads (monitoring.yaml `runbook`: a
file in the repository, or a URL such as GitLab's raw-file API with PAYMON_RUNBOOK_TOKEN) and checks.

- §7 Pre-Deployment "Operations runbook reviewed by team": its own "Last reviewed: YYYY-MM-DD"
  line is at most `runbook.reviewed_within` old on the run's clock (the sandbox's in a sandbox run).
- §9 "Operations runbook documented with response procedures": a section for every alert's
  `runbook:` anchor and every §6 procedure, each with numbered steps; and every alert carries its
  section's link where Sentry keeps text with the alert (an issue alert's Slack notes, which reach
  Slack; a metric alert's description, shown on the alert's page the Slack message links to).
"""

import time

import pytest

from fixtures.outcome import fail_with


@pytest.fixture(scope="module")
def runbook_read(spec, paymon_target, pytestconfig, sandbox, sandbox_server):
    """(the parsed runbook, where it was read, the run's clock now)."""
    from fixtures.drill import _sandbox_control
    from fixtures.plugin import _spec_path
    from paymon.clients.runbook import read_runbook
    from paymon.findings.runbook import parse_runbook

    settings = paymon_target.runbook(spec.runbook, str(_spec_path(pytestconfig).parent))
    document = read_runbook(settings)
    if sandbox is not None:
        control = _sandbox_control(sandbox_server, sandbox)
        now = control.now()
        if hasattr(control, "close"):  # the control API's client, under xdist
            control.close()
    else:
        now = document.served_at or time.time()
    return parse_runbook(document.text), document.where, now


@pytest.mark.criterion("Operations runbook reviewed by team")
def test_runbook_reviewed_recently(runbook_read, spec):
    from paymon.findings.runbook import review_findings

    runbook, where, now = runbook_read
    fail_with(review_findings(spec.runbook, runbook, now, where))


@pytest.mark.criterion("Operations runbook documented with response procedures")
def test_runbook_has_every_response_procedure(runbook_read, spec):
    from paymon.findings.runbook import procedure_findings

    runbook, where, _ = runbook_read
    fail_with(procedure_findings(spec, runbook, where))


@pytest.mark.criterion("Operations runbook documented with response procedures")
def test_alert_links_to_its_runbook_section(routed_alert_spec, sentry, spec):
    fail_with(sentry.runbook_link_findings(routed_alert_spec))
