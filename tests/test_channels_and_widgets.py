"""§3 channel members and purposes, §4 widget details (issue 15 item 4): the emulated
users.lookupByEmail, the on-call member check against PagerDuty, and widgets paymon apply writes
pass the checks that read them."""

from __future__ import annotations

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from paymon.clients.pagerduty import PagerDutyClient
from paymon.clients.slack import SlackReader
from paymon.config.settings import PagerDutySettings, SlackSettings
from paymon.config.spec import load_spec
from paymon.findings.channels import on_call_member_findings, purpose_findings
from paymon.findings.dashboards import compare_widget
from paymon.remedy import render_dashboard
from paymon.sandbox.faults import apply_fault
from paymon.sandbox.server import SandboxServer
from paymon.sandbox.world import golden_world
from tests.conftest import REPO

SPEC = load_spec(REPO / "monitoring.yaml")


@pytest.fixture(scope="module")
def server():
    with SandboxServer(golden_world("workflow")) as running:
        yield running


def _reader(server) -> SlackReader:
    info = server.describe()["slack"]
    return SlackReader(SlackSettings(token=info["token"], base_url=info["base_url"]))


def test_lookup_by_email_finds_a_person_case_insensitively(server):
    user = _reader(server).user_by_email("Ada.Okonkwo@TowerOfBabel.example")
    assert user["id"] == "U07ADAOKNW" and user["profile"]["email"] == "ada.okonkwo@towerofbabel.example"
    assert _reader(server).user_by_email("nobody@towerofbabel.example") is None


def test_lookup_by_email_needs_its_scope(server):
    # Sentry's bot token has users:read but not users:read.email
    client = WebClient(token="sandbox-slack-sentry-bot", base_url=server.describe()["slack"]["base_url"])
    with pytest.raises(SlackApiError) as caught:
        client.users_lookupByEmail(email="ada.okonkwo@towerofbabel.example")
    assert caught.value.response.data["error"] == "missing_scope"
    assert caught.value.response.data["needed"] == "users:read.email"


def _pagerduty(server) -> PagerDutyClient:
    info = server.describe()["pagerduty"]
    return PagerDutyClient(PagerDutySettings(token=info["token"], base_url=info["base_url"]))


def test_on_call_engineer_found_in_the_golden_channel(server):
    with _pagerduty(server) as pagerduty:
        assert on_call_member_findings("#payments-alerts", _reader(server), pagerduty, "TowerOfBabel Payments") == []


@pytest.mark.parametrize("fault, expected", [
    ("on-call-not-in-channel", "expected Ada Okonkwo (ada.okonkwo@towerofbabel.example) (Slack U07ADAOKNW) a member, "
                               "actual not a member"),
])
def test_on_call_engineer_outside_the_channel_is_named(fault, expected):
    with SandboxServer(apply_fault(golden_world("workflow"), fault)) as broken, _pagerduty(broken) as pagerduty:
        findings = on_call_member_findings("#payments-alerts", _reader(broken), pagerduty, "TowerOfBabel Payments")
    assert len(findings) == 1 and expected in findings[0].line()


def test_on_call_engineer_without_a_slack_account_is_named():
    world = golden_world("workflow")
    for user in world["slack"]["users"]:
        if user["id"] == "U07ADAOKNW":
            user["profile"]["email"] = "ada@personal.example"
    with SandboxServer(world) as broken, _pagerduty(broken) as pagerduty:
        findings = on_call_member_findings("#payments-alerts", _reader(broken), pagerduty, "TowerOfBabel Payments")
    assert [f.actual for f in findings] == ["no Slack user with that e-mail"]


def test_purpose_is_matched_as_a_phrase_case_and_spacing_aside(server):
    channel = next(c for c in SPEC.channels if c.name == "#payments-alerts")
    assert purpose_findings(channel, _reader(server)) == []
    changed = channel.model_copy(update={"purpose": "ALL payment-related   alerts"})
    assert purpose_findings(changed, _reader(server)) == []


def test_widgets_paymon_apply_writes_pass_the_widget_checks():
    widgets = [render_dashboard.widget(w, i, str(i)) for i, w in enumerate(SPEC.dashboard.widgets)]
    board = render_dashboard.dashboard(SPEC.dashboard, widgets, "1")
    for spec_widget, body in zip(SPEC.dashboard.widgets, widgets):
        assert compare_widget(spec_widget, SPEC.dashboard.title, body, board) == [], spec_widget.title


def test_threshold_markers_stored_on_the_widget_count_too():
    spec_widget = next(w for w in SPEC.dashboard.widgets if w.thresholds)
    body = render_dashboard.widget(spec_widget, 0, "1")
    body["description"] = None
    body["thresholds"] = {"max_values": {"max1": 1000, "max2": 2000}, "unit": "millisecond"}
    assert compare_widget(spec_widget, "d", body, {"period": "7d"}) == []
    body["thresholds"]["max_values"]["max2"] = 3000
    assert [f.field for f in compare_widget(spec_widget, "d", body, {"period": "7d"})] == ["threshold markers"]
