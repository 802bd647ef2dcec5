"""Slack readers count only what is paymon's (issue 13 item 2) and stop as soon as a delivery
certainly cannot come (issue 14 item 6, Slack part).

The channel here is what a real alert channel holds during a run: Sentry's post, PagerDuty's app
("Triggered: ..."), a person asking about the alert by name or quoting the marker, and a real firing
of the same alert threaded under an older incident. Only Sentry's app's post (matched on app_id,
verified-2026-12 §11) carrying the run's marker delivers; the drill counts Sentry's posts naming
the alert, never a reply in an older thread.
"""

from __future__ import annotations

import pytest

from paymon.clients.slack import SentryApp, app_of
from paymon.delivery import cleanup
from paymon.delivery.drill import Expected, Readback, counts_as_sentrys_post
from paymon.delivery.endtoend import Delivery, SlackChannelWatcher, slack_delivery_blocked
from paymon.errors import TargetUnavailable

ALERT = "Payment Failure Rate Spike"
MARKER = "PAYMON-TEST-RUN1-SLACK"
SENTRY = {"user": "U07SENTRYBT", "bot_id": "B07SENTRY01", "app_id": "A07SENTRYAP",
          "bot_profile": {"id": "B07SENTRY01", "app_id": "A07SENTRYAP", "name": "Sentry"}}
PAGERDUTY = {"user": "U07PGRDUTYB", "bot_id": "B07PGRDUTY1", "app_id": "A07PGRDUTYA",
             "bot_profile": {"id": "B07PGRDUTY1", "app_id": "A07PGRDUTYA", "name": "PagerDuty"}}
PERSON = {"user": "U07ONCALL01"}
T0 = 1_800_000_000.0


def _message(who: dict, text: str, at: float, **extra) -> dict:
    return {"type": "message", "text": text, "ts": f"{at:.6f}", **who, **extra}


def _other_voices(at: float) -> list[dict]:
    """Everything but Sentry's own post for this run, all naming the alert or quoting the marker."""
    return [
        _message(PAGERDUTY, f"Triggered: <https://x|[#42] Critical: {ALERT}>", at + 1),
        _message(PERSON, f"is anyone looking at *Critical: {ALERT}*?", at + 2),
        _message(PERSON, f"what is {MARKER}? ignore?", at + 3),
        # Sentry's app, but a real incident that opened before the run, escalating in its thread.
        _message(SENTRY, f"<https://x|*Critical: {ALERT}*>", at + 4, thread_ts=f"{at - 600:.6f}",
                 subtype="thread_broadcast"),
        # Sentry's app, another run's synthetic post.
        _message(SENTRY, "[web] PAYMON-TEST-OTHER-SLACK synthetic delivery check", at + 5),
    ]


class FakeReader:
    """A SlackReader's answers: a channel's history (newest first), its info and members."""

    def __init__(self, messages: list[dict], *, archived=False, private=False, members=("U07SENTRYBT",)):
        self.messages = messages
        self.info = {"id": "C07PAYM3NT5", "name": "payments-alerts", "is_archived": archived, "is_private": private}
        self._members = list(members)
        self.history_calls = 0

    def history(self, channel_id: str, oldest: float) -> list[dict]:
        self.history_calls += 1
        return sorted((m for m in self.messages if float(m["ts"]) > oldest), key=lambda m: -float(m["ts"]))

    def channel_info(self, channel_id: str) -> dict:
        return dict(self.info)

    def members(self, channel_id: str) -> list[str]:
        return list(self._members)

    def channels(self) -> list[dict]:
        return [dict(self.info)]


class Clock:
    def __init__(self, now: float):
        self.now = now

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _watch(reader, *, sentry=None, blocked=None, deadline=60.0):
    clock = Clock(T0 + 1)
    watcher = SlackChannelWatcher(reader, "C07PAYM3NT5", since=T0, clock=clock, sleep=clock.sleep,
                                  sentry=sentry or SentryApp(bot_user="U07SENTRYBT"), blocked=blocked)
    [delivery] = watcher.wait_for([Delivery(MARKER, T0, deadline)])
    return delivery, clock, watcher


# --- who posted ----------------------------------------------------------------------------------

def test_sentry_is_known_by_its_app_learnt_from_its_bot_user():
    app = SentryApp(bot_user="U07SENTRYBT")
    app.learn([_message(PERSON, "hi", T0), _message(SENTRY, "x", T0)])
    assert app.app_id == "A07SENTRYAP"
    assert app.posted(_message(SENTRY, "x", T0))
    assert not app.posted(_message(PAGERDUTY, "x", T0)) and not app.posted(_message(PERSON, "x", T0))
    # A classic integration's bot_message (no app) is not Sentry's app either.
    assert not app.posted({"type": "message", "subtype": "bot_message", "bot_id": "B1", "text": "x", "ts": "1.0"})
    assert app_of({"bot_profile": {"app_id": "A1"}}) == "A1"


# --- the delivery check --------------------------------------------------------------------------

def test_only_sentrys_post_with_this_runs_marker_delivers():
    reader = FakeReader(_other_voices(T0) + [_message(SENTRY, f"[web] {MARKER} synthetic delivery check", T0 + 7)])
    delivery, _clock, _watcher = _watch(reader)
    assert delivery.seconds == pytest.approx(7.0) and delivery.evidence["app_id"] == "A07SENTRYAP"


def test_other_voices_quoting_the_marker_never_deliver_it():
    delivery, clock, watcher = _watch(FakeReader(_other_voices(T0)))
    assert delivery.arrived_at is None and delivery.impossible is None
    assert clock.now >= T0 + 60  # it waited out the deadline: nothing said it could not come


def test_without_sentrys_bot_user_the_check_cannot_tell_and_says_so():
    with pytest.raises(TargetUnavailable, match="sentry_bot_user"):
        _watch(FakeReader([]), sentry=SentryApp())


@pytest.mark.parametrize("reader, reason", [
    (FakeReader([], archived=True), "#payments-alerts is archived"),
    (FakeReader([], private=True, members=()), "not a member of #payments-alerts (a private channel)"),
], ids=["archived", "bot-not-in-private-channel"])
def test_a_delivery_that_cannot_come_stops_at_once_naming_why(reader, reason):
    app = SentryApp(bot_user="U07SENTRYBT")
    delivery, clock, watcher = _watch(reader, sentry=app,
                                      blocked=lambda: slack_delivery_blocked(reader, "C07PAYM3NT5", app))
    assert reason in delivery.impossible
    assert watcher.polls == 1 and clock.now < T0 + 2  # no deadline waited out


def test_the_reason_is_named_even_when_the_first_poll_comes_after_the_deadline():
    """A run's delivery checks come last: the watcher's first poll may already be past the deadline."""
    reader = FakeReader([], archived=True)
    app = SentryApp(bot_user="U07SENTRYBT")
    clock = Clock(T0 + 300)
    watcher = SlackChannelWatcher(reader, "C07PAYM3NT5", since=T0, clock=clock, sleep=clock.sleep, sentry=app,
                                  blocked=lambda: slack_delivery_blocked(reader, "C07PAYM3NT5", app))
    [delivery] = watcher.wait_for([Delivery(MARKER, T0, 4.0)])
    assert "is archived" in delivery.impossible and watcher.polls == 1


def test_a_bot_outside_a_public_channel_is_only_certain_without_chat_write_public():
    reader = FakeReader([], members=())
    app = SentryApp(bot_user="U07SENTRYBT")
    assert slack_delivery_blocked(reader, "C07PAYM3NT5", app) is None  # chat:write.public: Sentry still posts
    assert "lacks chat:write.public" in slack_delivery_blocked(reader, "C07PAYM3NT5", app, sentry_posts_publicly=False)


def test_a_post_already_there_wins_over_a_later_archive():
    reader = FakeReader([_message(SENTRY, f"[web] {MARKER} synthetic", T0 + 2)], archived=True)
    app = SentryApp(bot_user="U07SENTRYBT")
    delivery, _clock, _watcher = _watch(reader, sentry=app,
                                        blocked=lambda: slack_delivery_blocked(reader, "C07PAYM3NT5", app))
    assert delivery.seconds == pytest.approx(2.0) and delivery.impossible is None


# --- the drill -----------------------------------------------------------------------------------

def test_the_drill_counts_sentrys_post_naming_the_alert_and_nothing_else():
    app = SentryApp(bot_user="U07SENTRYBT", app_id="A07SENTRYAP")
    for message in _other_voices(T0):
        assert not counts_as_sentrys_post(message, ALERT, "PAYMON-DRILL-RUN1-1", app, T0), message["text"]
    assert counts_as_sentrys_post(_message(SENTRY, f"<https://x|*Critical: {ALERT}*>", T0 + 3), ALERT,
                                  "PAYMON-DRILL-RUN1-1", app, T0)
    # Names match as everywhere: case and spacing do not count (paymon/rules/names.py).
    assert counts_as_sentrys_post(_message(SENTRY, "<https://x|*Critical: payment  failure rate SPIKE*>", T0 + 3),
                                  ALERT, "PAYMON-DRILL-RUN1-1", app, T0)
    # A broadcast escalation in the thread of the drill's own post counts; a resolution never does.
    own = _message(SENTRY, f"<https://x|*Critical: {ALERT}*>", T0 + 9, thread_ts=f"{T0 + 3:.6f}",
                   subtype="thread_broadcast")
    assert counts_as_sentrys_post(own, ALERT, "PAYMON-DRILL-RUN1-1", app, T0)
    assert not counts_as_sentrys_post(_message(SENTRY, f"*Resolved: {ALERT}*", T0 + 9), ALERT, "X", app, T0)


def test_a_broken_route_while_others_talk_about_the_alert_fails_the_drill():
    reader = FakeReader(_other_voices(T0))
    clock = Clock(T0)
    readback = Readback(slack_reader=reader, clock=clock, sleep=clock.sleep, drift=0.5,
                        sentry=SentryApp(bot_user="U07SENTRYBT"))
    [item] = readback.wait([Expected(ALERT, "slack", "#payments-alerts", "PAYMON-DRILL-RUN1-1", T0, 60.0)], {})
    assert item.arrived_at is None
    assert item.failure().startswith(f"{ALERT}: slack #payments-alerts expected a notification within 60s")


def test_the_drill_fails_at_once_on_an_archived_channel():
    reader = FakeReader(_other_voices(T0), archived=True)
    clock = Clock(T0)
    app = SentryApp(bot_user="U07SENTRYBT")
    readback = Readback(slack_reader=reader, clock=clock, sleep=clock.sleep, sentry=app,
                        slack_blocked=lambda channel: slack_delivery_blocked(reader, channel, app))
    [item] = readback.wait([Expected(ALERT, "slack", "#payments-alerts", "PAYMON-DRILL-RUN1-1", T0, 60.0)], {})
    assert "is archived" in item.failure() and clock.now < T0 + 5


# --- cleanup -------------------------------------------------------------------------------------

class FakeSentry:
    def __init__(self, issues):
        self.issues, self.resolved = issues, []

    def org_path(self, *parts):
        return "/".join(parts)

    def paginate(self, path, params):
        return list(self.issues)

    def put(self, path, body, params):
        self.resolved += params["id"]


def test_cleanup_resolves_only_issues_titled_with_paymons_marker(caplog):
    client = FakeSentry([{"id": "1", "title": "PAYMON-DRILL-RUN1-1 checkout failed (paymon alert drill, ignore)"},
                         {"id": "2", "shortId": "WEB-9", "title": "Checkout failed for a real customer"}])
    assert cleanup.resolve_sentry_test_issues(client, "paymon_run:run1", markers=("PAYMON-DRILL-RUN1-",)) == ["1"]
    assert client.resolved == ["1"] and "WEB-9" in caplog.text


# --- the reviews ---------------------------------------------------------------------------------

def test_the_alert_review_counts_sentrys_posts_only():
    from paymon.reviews.notifications import slack_posts

    reader = FakeReader(_other_voices(T0) + [_message(SENTRY, f"<https://x|*Critical: {ALERT}*>", T0 + 7)])
    posts = slack_posts(reader, ["#payments-alerts"], [ALERT], T0 - 1, SentryApp(bot_user="U07SENTRYBT"))
    # Sentry's own post and its real firing's broadcast (both Sentry's app); never PagerDuty's or a person's.
    assert sorted(p.at for p in posts) == [T0 + 4, T0 + 7]
    assert len(slack_posts(reader, ["#payments-alerts"], [ALERT], T0 - 1)) == 4  # unknown app: everything naming it
