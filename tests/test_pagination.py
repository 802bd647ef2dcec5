"""Every pagination loop is bounded: a cursor Slack has already given, a list that never ends, or a
PagerDuty list past classic pagination's 10,000 items stops with an error naming what happened,
instead of looping (issue 14 item 3)."""

from __future__ import annotations

import pytest

from paymon.clients import pagerduty, slack
from paymon.config.settings import PagerDutySettings, SlackSettings
from paymon.errors import ServiceError


def _slack_reader(monkeypatch, pages):
    reader = slack.SlackReader(SlackSettings(token="xoxb-test"))
    calls = []

    def call(method, **params):
        calls.append(params.get("cursor"))
        return pages(len(calls))

    monkeypatch.setattr(reader, "_call", call)
    return reader, calls


def test_slack_follows_cursors_to_the_end(monkeypatch):
    reader, calls = _slack_reader(monkeypatch, lambda n: {
        "channels": [{"id": f"C{n}"}], "response_metadata": {"next_cursor": f"c{n}" if n < 3 else ""}})
    assert [c["id"] for c in reader.channels()] == ["C1", "C2", "C3"]
    assert calls == [None, "c1", "c2"]


def test_a_repeated_slack_cursor_stops(monkeypatch):
    reader, calls = _slack_reader(monkeypatch, lambda n: {"members": ["U1"],
                                                          "response_metadata": {"next_cursor": "same"}})
    with pytest.raises(ServiceError, match="cursor it had already given: stopped after 2 pages"):
        reader.members("C1")
    assert len(calls) == 2


def test_an_endless_slack_list_stops(monkeypatch):
    reader, calls = _slack_reader(monkeypatch, lambda n: {"messages": [], "has_more": True,
                                                          "response_metadata": {"next_cursor": f"c{n}"}})
    with pytest.raises(ServiceError, match=f"did not end within {slack.MAX_PAGES} pages"):
        reader.history("C1", 0.0)
    assert len(calls) == slack.MAX_PAGES


def test_a_pagerduty_list_past_classic_pagination_stops(monkeypatch):
    client = pagerduty.PagerDutyClient(PagerDutySettings(token="u+test"))
    offsets = []

    def get(path, params=None):
        offsets.append(params["offset"])
        return {"incidents": [{"id": str(params["offset"] + i)} for i in range(params["limit"])], "more": True}

    monkeypatch.setattr(client, "get", get)
    with pytest.raises(ServiceError, match="still says more after 10000 items"):
        list(client.paginate("/incidents", "incidents"))
    assert offsets[-1] == 9900 and len(offsets) == 100
