"""monitoring.yaml: the expected setup as data, loaded and validated with pydantic.

`load_spec(path)` returns a `Spec` or raises `ConfigError` whose message is one line naming the key
path and what is wrong, e.g. ``monitoring.yaml: alerts[2].threshold: Input should be a valid number``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from urllib.parse import urlsplit
from typing import Annotated, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from paymon.config.profiles import ProfilesSpec
from paymon.errors import ConfigError

DEFAULT_SPEC_PATH = Path("monitoring.yaml")

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|d)?\s*$")
_UNIT_SECONDS = {None: 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> int:
    """'5m' -> 300, '60s' -> 60, 90 -> 90 (plain numbers are seconds). A duration is finite and at
    least a second: `.inf` would wait for ever, `0m` would judge nothing."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 5m or 60s")
    if isinstance(value, (int, float)):
        seconds = value
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ValueError(f"expected a duration like 5m or 60s, got {value!r}")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not math.isfinite(seconds) or seconds < 1:
        raise ValueError(f"expected a finite duration of at least 1s, like 5m or 60s, got {value!r}")
    return int(seconds)


Seconds = Annotated[int, BeforeValidator(parse_duration)]
Severity = Literal["fatal", "critical", "high", "error", "warning", "medium", "low"]
Level = Literal["fatal", "error", "warning", "info", "debug"]
EventType = Literal["error", "default", "transaction"]
Comparator = Literal[">", ">=", "<", "<="]


class _Model(BaseModel):
    # No inf/nan anywhere: a threshold of .nan compares false with everything, silently.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class Recipient(_Model):
    """A Sentry e-mail target: a team (by slug) or a member (by e-mail)."""

    team: str | None = None
    member: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "Recipient":
        if (self.team is None) == (self.member is None):
            raise ValueError("give exactly one of team or member")
        return self

    @property
    def key(self) -> str:
        return f"team:{self.team}" if self.team else f"member:{self.member}"


class PagerDutyTarget(_Model):
    service: str
    severity: Literal["critical", "error", "warning", "info", "default"] = "critical"


class ActionSpec(_Model):
    """One of: ``slack: "#channel"``, ``pagerduty: {service, severity}``, ``email: <recipient name>``."""

    slack: str | None = None
    pagerduty: PagerDutyTarget | None = None
    email: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> "ActionSpec":
        given = [k for k in ("slack", "pagerduty", "email") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError("an action is exactly one of slack, pagerduty or email")
        if self.slack is not None and not self.slack.startswith("#"):
            raise ValueError(f"slack channel must start with '#', got {self.slack!r}")
        return self

    @property
    def kind(self) -> str:
        return "slack" if self.slack else "pagerduty" if self.pagerduty else "email"


class EventSelection(_Model):
    levels: list[Level] = Field(default_factory=list)
    types: list[EventType] = Field(default_factory=lambda: ["error", "default"])


class AlertSpec(_Model):
    name: str
    guide: str = ""
    severity: Severity
    environment: str | None = None
    events: EventSelection = Field(default_factory=EventSelection)
    filter: str = ""
    aggregate: str = "count()"
    comparator: Comparator = ">"
    threshold: float
    window: Seconds | None = None
    count: Literal["across_events", "per_issue"] = "across_events"
    actions: list[ActionSpec]
    runbook: str = ""
    incident_log: Literal["sentry"] | None = None
    """The guide's "Create incident log entry": "sentry" = Sentry's own incident record of each
    firing (a metric alert's incident / a metric detector's open period), which only a metric alert
    leaves (monitoring.yaml says why)."""

    @property
    def any_occurrence(self) -> bool:
        """'Any occurrence': the count is > 0, so window and per-issue counting do not matter."""
        return self.comparator == ">" and self.threshold == 0

    @model_validator(mode="after")
    def _window_unless_any_occurrence(self) -> "AlertSpec":
        if self.window is None and not self.any_occurrence:
            raise ValueError("window is required unless the alert fires on any occurrence (> 0)")
        return self


class PerformanceBudget(_Model):
    name: str
    transaction: str
    warning: float
    critical: float

    @model_validator(mode="after")
    def _ordered(self) -> "PerformanceBudget":
        if self.warning >= self.critical:
            raise ValueError("warning must be below critical")
        return self


class PerformanceActions(_Model):
    critical: list[ActionSpec]
    warning: list[ActionSpec] = Field(default_factory=list)


class PerformanceSpec(_Model):
    aggregate: str = "p95(transaction.duration)"
    window: Seconds
    environment: str | None = None
    actions: PerformanceActions
    budgets: list[PerformanceBudget]
    # How far back "recent transactions" reach when checking that Sentry receives each payment
    # transaction, tagged payment_flow, with a p95 inside its budget (monitoring.yaml says why).
    recent: Seconds = 24 * 3600
    traces_sample_rate: float = Field(default=0.1, gt=0, le=1)
    # How far back a canary probe pools earlier runs' samples (monitoring.yaml says why).
    probe_pool: Seconds = 7 * 86400


class WidgetThresholds(_Model):
    warning: float
    critical: float
    unit: str = "ms"


class WidgetSpec(_Model):
    title: str
    display: list[str]
    query: str = ""
    aggregates: list[str]
    group_by: list[str] = Field(default_factory=list)
    interval: Seconds | None = None
    """The widget's bucket (`interval`), e.g. 1d for "Daily"."""
    period: Seconds | None = None
    """The span shown ("7-day trend"): Sentry sets it on the dashboard (`period`), for every widget."""
    thresholds: WidgetThresholds | None = None
    """Threshold markers: the widget's `thresholds` where Sentry draws them, else its description."""
    equation: str | None = None
    """A formula the widget must show (an `equation|…` aggregate), spaces aside."""

    @field_validator("display")
    @classmethod
    def _not_empty(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("list at least one accepted display type")
        return v


class DashboardSpec(_Model):
    title: str
    environment: str | None = None
    widgets: list[WidgetSpec]


class CronSpec(_Model):
    name: str
    slug: str
    schedule: str
    timezone: str = "UTC"
    environment: str | None = None
    last_checkin_within: Seconds = 26 * 3600
    """The newest check-in must be `ok` and at most this old."""

    @field_validator("schedule")
    @classmethod
    def _five_fields(cls, v: str) -> str:
        if len(v.split()) != 5:
            raise ValueError(f"expected a 5-field crontab schedule, got {v!r}")
        return v


class UsageReportingSpec(_Model):
    """§1 Alert 4 / §4 Widget 5: the share of PAYG usage reports that fail, over `window`."""

    alert: str = "Usage Reporting Failure Rate"
    """The alert whose filter selects the failures (its events and environment too)."""
    transaction: str = "usage-report"
    """The app's usage-reporting transaction (every report, sampled at performance.traces_sample_rate)."""
    window: Seconds = 24 * 3600
    max_failure_rate: float = Field(default=0.01, ge=0, le=1)


class WebhookSecuritySpec(_Model):
    """§1 Alert 3: the alert the webhook check's mis-signed probes feed, by name (never hard-coded:
    a renamed alert is renamed here, not a KeyError in a check)."""

    alert: str = "Webhook Signature Verification Failure Spike"


class SyntheticUserSpec(_Model):
    """Who the synthetic subscription must belong to, as Lemon Squeezy's subscription object says."""

    user_id: str = "paymon-synthetic"
    """The app's user id, sent as meta.custom_data.user_id in the replayed delivery."""
    email: str
    """attributes.user_email: the checkout's e-mail address."""
    store_id: int
    """attributes.store_id: the production store."""

    @field_validator("email")
    @classmethod
    def _an_address(cls, value: str) -> str:
        if "@" not in value.strip("@") or value != value.strip():
            raise ValueError(f"expected an e-mail address, got {value!r}")
        return value


class WebhookProbeSpec(_Model):
    """Issue 12 item 6: the webhook probes replay the synthetic subscription's stored state and stop
    after a few failed deliveries, well before the webhook-failure alert could fire."""

    synthetic_user: SyntheticUserSpec
    alert: str = "Webhook Processing Failure"
    """The alert that counts the errors a failed delivery makes the app log."""
    stop_after_failures: int = Field(default=2, ge=1)
    """The webhook p95 probe stops at this many non-2xx answers."""


class TestModeSpec(_Model):
    """§1 Alert 6 ("SHOULD NEVER FIRE"): the gate fails while an issue of its events is unresolved."""

    __test__ = False  # not a pytest class
    alert: str = "Test Mode Detected in Production"


class BacktestSpec(_Model):
    """§7 "Verify no false positives from alert rules" and the monthly alert-effectiveness review."""

    noisy_firings_per_week: float = Field(default=5, ge=0)
    """An alert that would have fired more often than this per week (pro rata) is noisy."""
    blind_ratio: float = Field(default=0.5, gt=0, le=1)
    """An alert whose peak stayed under this share of its threshold while events it matches
    occurred is blind."""


class FailureTrendRule(_Model):
    """§7 "Weekly review of payment failure trends": the finding is payment failures (the dashboard's
    failure widget) of the last 7 complete days above `max_ratio` times the 7 days before, with at
    least `min_failures` in the last week (a rise from 2 to 5 is not a trend)."""

    max_ratio: float = Field(default=1.5, gt=1)
    min_failures: int = Field(default=20, ge=1)
    outcome: Literal["fail", "warn"] = "fail"


class BudgetFitRule(_Model):
    """§7 "Quarterly review of performance thresholds": the finding is a budget whose weekly p95
    breached `level` in more than `max_breached_share` of the quarter's weeks that had data."""

    level: Literal["warning", "critical"] = "warning"
    max_breached_share: float = Field(default=0.25, ge=0, lt=1)
    outcome: Literal["fail", "warn"] = "fail"


class ReviewsSpec(_Model):
    failure_trend: FailureTrendRule = Field(default_factory=FailureTrendRule)
    budgets: BudgetFitRule = Field(default_factory=BudgetFitRule)


class ErrorIncreaseSpec(_Model):
    """When a payment error count after a deploy is a regression: more than `ratio` times the count
    of the same hours just before it, and at least `min_after` (so 1 -> 3 is not one)."""

    ratio: float = Field(default=2.0, gt=1)
    min_after: int = Field(default=10, ge=1)


class DashboardReviewSpec(_Model):
    """§7 Post-Deployment "Review payment dashboard metrics daily for first week": each dashboard
    widget's own query, per day since the latest deploy (checks/test_post_deploy.py)."""

    first_days: Seconds = 7 * 86400
    """How long after the latest deploy the daily review runs; later the check is skipped."""
    may_be_empty: list[str] = Field(default_factory=list)
    """Widgets (titles) whose query may rightly find nothing on a day (a day without payment
    errors is a good day); every other widget's empty complete day fails."""
    thresholds_on: dict[str, str] = Field(default_factory=dict)
    """Widget title -> the aggregate its `thresholds` (dashboard section) are judged on per day."""


class PostDeploySpec(_Model):
    """§7 Post-Deployment "Monitor alerts for first 24 hours (T+1hr, T+4hr, T+24hr)": what the
    post-deploy profile's runs judge about the hours since the latest deploy (checks/test_post_deploy.py)."""

    watch_for: Seconds = 26 * 3600
    """A latest deploy older than this is no deploy to watch: the check could not check."""
    releases_read: int = Field(default=25, ge=1, le=100)
    """How many of the newest releases' deploys are read to find the latest deploy (a rollback
    to an older release among them is found too)."""
    error_increase: ErrorIncreaseSpec = Field(default_factory=ErrorIncreaseSpec)
    fail_on_fired: list[Severity] = Field(default_factory=lambda: ["fatal", "critical"])
    """An alert of these severities that fired since the deploy fails the watch; any other warns."""
    dashboard_review: DashboardReviewSpec = Field(default_factory=DashboardReviewSpec)
    """The daily review of the dashboard's widgets in the first week after the deploy."""


class SlackIntegrationSpec(_Model):
    workspace: str
    sentry_bot_user: str | None = None


class EscalationLevel(_Model):
    """One level of §8's escalation path, as the PagerDuty escalation policy must hold it."""

    name: str
    targets: list[str] = Field(default_factory=list)
    """PagerDuty schedule or user names this level notifies (empty: not checked)."""
    escalate_after: Seconds | None = None
    """How long the level waits before escalating to the next (escalation_delay_in_minutes)."""


class PagerDutyIntegrationSpec(_Model):
    service: str
    urgency: dict[Literal["fatal", "critical", "error", "warning", "info", "debug"], Literal["high", "low"]] = Field(
        default_factory=dict
    )
    escalation: list[EscalationLevel] = Field(default_factory=list)


class IntegrationsSpec(_Model):
    slack: SlackIntegrationSpec
    pagerduty: PagerDutyIntegrationSpec | None = None


class ChannelSpec(_Model):
    name: str
    purpose: str = ""
    on_call_members: bool = False
    """§3 "Members: ... on-call rotation": the people on call now (PagerDuty, level 1) are members."""


class RouteSpec(_Model):
    slack: list[str] = Field(default_factory=list)
    on_call: bool = False
    pagerduty: bool = False


class SlackDelivery(_Model):
    channel: str
    deadline: Seconds


class PagerDutyDelivery(_Model):
    service: str
    urgency: Literal["high", "low"] = "low"
    """The synthetic check's incident: low, so a gate or scheduled run pages nobody."""
    deadline: Seconds
    acknowledge_within: Seconds = 10 * 60
    """The drill's page counts as confirmed once a level-1 on-call user acknowledged it this soon."""


class EvaluationStep(_Model):
    """One row of Sentry's evaluation cadence: alerts whose window is under `window_under` (none:
    any longer window) are judged every `every` (one query subscription update)."""

    window_under: Seconds | None = None
    every: Seconds


def delivery_grace(deadline_s: float) -> float:
    """How long past a deadline the delivery watchers keep looking (paymon.delivery.endtoend.late_grace)."""
    return max(2.0, min(30.0, deadline_s * 0.5))


class DeliverySpec(_Model):
    slack: SlackDelivery
    pagerduty: PagerDutyDelivery | None = None
    sweep_after: Seconds = 30 * 60
    """The start-of-run sweep resolves a leftover test issue or incident of another run only once it
    is this old: younger, it may be a run still in flight (paymon.delivery.cleanup)."""
    evaluation: list[EvaluationStep] = Field(default_factory=lambda: [EvaluationStep(every=60)])
    """How often Sentry judges an alert counted across events, by its window (monitoring.yaml has
    the source): a correct setup fires up to one update after the threshold is crossed."""

    def evaluation_allowance(self, window_s: float | None, counting: str) -> float:
        """Seconds a delivery deadline counted from the event sent allows for Sentry's evaluation
        cadence: one update for an alert counted across events, none for a per-issue one (issue
        alerts are judged on each event)."""
        if counting != "across_events":
            return 0.0
        for step in self.evaluation:
            if step.window_under is None or (window_s or 0) < step.window_under:
                return float(step.every)
        return float(self.evaluation[-1].every) if self.evaluation else 0.0

    @field_validator("evaluation")
    @classmethod
    def _cadence_in_order(cls, value: list[EvaluationStep]) -> list[EvaluationStep]:
        bounds = [s.window_under for s in value]
        if not value or bounds[-1] is not None or None in bounds[:-1] or bounds[:-1] != sorted(bounds[:-1]):
            raise ValueError("list rows by window_under, shortest first, and end with a row without "
                             "window_under (every longer window)")
        return value

    @property
    def longest_wait(self) -> float:
        """The longest a run waits for one delivery: the latest deadline plus its grace."""
        return _longest_wait(self.slack, self.pagerduty)

    @field_validator("sweep_after")
    @classmethod
    def _sweep_outlives_a_run(cls, value: int, info) -> int:
        # A run's test issues and incident stay open while it waits for them and then for the drill's
        # deliveries: two waits. A sweep any sooner could resolve a run that is still waiting.
        if "slack" not in info.data:
            return value  # slack itself is invalid: that error is the one to show
        floor = 2 * _longest_wait(info.data["slack"], info.data.get("pagerduty"))
        if value <= floor:
            raise ValueError(f"{value}s is too soon: it must be longer than two delivery waits "
                             f"(2 x (deadline + grace) = {floor:g}s), or a run still in flight may be swept")
        return value


def _longest_wait(slack: SlackDelivery, pagerduty: PagerDutyDelivery | None) -> float:
    deadlines = [slack.deadline] + ([pagerduty.deadline] if pagerduty else [])
    return max(d + delivery_grace(d) for d in deadlines)


class RunbookSpec(_Model):
    """§6 "Operations Runbook": where people follow it (`url`) and where paymon reads it."""

    url: str
    source: str | None = None
    """The markdown itself over HTTP (a GitLab raw-file API URL; a private project's web `blob`/`raw`
    pages redirect to sign-in). Default: `url`. PAYMON_RUNBOOK_TOKEN, if set, is sent as `token_header`."""
    path: str | None = None
    """Or a file in this repository, relative to monitoring.yaml (then nothing is fetched)."""
    token_header: str = "PRIVATE-TOKEN"
    procedures: list[str] = Field(default_factory=list)
    """Anchors of §6's response procedures: each must be a section with numbered steps."""
    reviewed_within: Seconds = 31 * 86400
    """The runbook's own "Last reviewed: YYYY-MM-DD" line must be at most this old."""
    update_after_firings: int = Field(default=1, ge=1)
    """§7 "Update runbook as new issues discovered": an alert that fired this often since its
    section last changed (the file's history) is a finding of the scheduled review."""
    update_outcome: Literal["fail", "warn"] = "warn"

    @field_validator("url", "source")
    @classmethod
    def _http_only(cls, value: str | None) -> str | None:
        # It becomes a link in every alert's report entry: `javascript:` or `file:` must never.
        if value is not None and (urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).netloc):
            raise ValueError(f"expected an http(s) URL, got {value!r}")
        return value

    @field_validator("path")
    @classmethod
    def _inside_the_repository(cls, value: str | None) -> str | None:
        if value is not None and (Path(value).is_absolute() or ".." in Path(value).parts or not value.strip()):
            raise ValueError(f"expected a path inside the repository (relative, no '..'), got {value!r}")
        return value

    @field_validator("procedures")
    @classmethod
    def _anchors(cls, value: list[str]) -> list[str]:
        for anchor in value:
            if not anchor.startswith("#") or len(anchor) < 2:
                raise ValueError(f"a procedure is an anchor like '#payment-failure-spike', got {anchor!r}")
        return value

    @model_validator(mode="after")
    def _one_place(self) -> "RunbookSpec":
        if self.source is not None and self.path is not None:
            raise ValueError("give source (a URL) or path (a file in the repository), not both")
        return self


class InterpretationSpec(_Model):
    """A value monitoring.yaml pins that the guide does not give (issue 15 item 6): a mismatch is a
    warning naming the interpretation, unless `required`."""

    says: str
    """What is pinned and why, in a line: the warning quotes it."""
    required: bool = False


# The values paymon pins beyond the guide, by key; `channels[<name>].purpose` for each channel too.
INTERPRETATION_KEYS = {
    "performance.window": "the p95 alerts' window",
    "performance.actions": "the p95 alerts' warning and critical actions",
    "usage_reporting.max_failure_rate": "the usage-reporting failure-rate limit",
    "test_mode.checkout_answer": "the checkout answer's test_mode field",
}


class Spec(_Model):
    version: Literal[1]
    organization: str
    project: str
    environment: str = "production"
    runbook: RunbookSpec
    integrations: IntegrationsSpec
    channels: list[ChannelSpec]
    recipients: dict[str, Recipient]
    severity_routing: dict[Severity, RouteSpec]
    alerts: list[AlertSpec]
    synthetic_checks: list[AlertSpec] = Field(default_factory=list)
    performance: PerformanceSpec
    dashboard: DashboardSpec
    cron: CronSpec
    delivery: DeliverySpec
    usage_reporting: UsageReportingSpec = Field(default_factory=UsageReportingSpec)
    test_mode: TestModeSpec = Field(default_factory=TestModeSpec)
    webhook_security: WebhookSecuritySpec = Field(default_factory=WebhookSecuritySpec)
    webhook_probe: WebhookProbeSpec
    backtest: BacktestSpec = Field(default_factory=BacktestSpec)
    reviews: ReviewsSpec = Field(default_factory=ReviewsSpec)
    post_deploy: PostDeploySpec = Field(default_factory=PostDeploySpec)
    interpretations: dict[str, InterpretationSpec] = Field(default_factory=dict)
    profiles: ProfilesSpec

    @model_validator(mode="after")
    def _references_resolve(self) -> "Spec":
        names = [a.name for a in self.all_alerts] + [b.name for b in self.performance.budgets]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"alert names must be unique, repeated: {', '.join(dupes)}")
        perf_actions = self.performance.actions.critical + self.performance.actions.warning
        for where, actions in [(a.name, a.actions) for a in self.all_alerts] + [("performance", perf_actions)]:
            for action in actions:
                if action.email is not None and action.email not in self.recipients:
                    raise ValueError(
                        f"{where}: e-mail recipient {action.email!r} is not listed under recipients"
                    )
        for alert in self.all_alerts:
            if alert.severity not in self.severity_routing:
                raise ValueError(f"{alert.name}: severity {alert.severity!r} has no severity_routing entry")
        known = {a.name for a in self.alerts}
        for where, name in (("usage_reporting", self.usage_reporting.alert), ("test_mode", self.test_mode.alert),
                            ("webhook_security", self.webhook_security.alert)):
            if name not in known:
                raise ValueError(f"{where}.alert: {name!r} is not one of the alerts")
        self._webhook_probe_stays_below_its_alert()
        return self

    @model_validator(mode="after")
    def _dashboard_review_names_widgets(self) -> "Spec":
        """post_deploy.dashboard_review names dashboard widgets; a typo would silently judge nothing."""
        review = self.post_deploy.dashboard_review
        widgets = {w.title: w for w in self.dashboard.widgets}
        for title in review.may_be_empty + list(review.thresholds_on):
            if title not in widgets:
                raise ValueError(f"post_deploy.dashboard_review: {title!r} is not one of the dashboard's widgets")
        for title, aggregate in review.thresholds_on.items():
            if widgets[title].thresholds is None or aggregate not in widgets[title].aggregates:
                raise ValueError(f"post_deploy.dashboard_review.thresholds_on: widget {title!r} needs thresholds "
                                 f"and the aggregate {aggregate!r}")
        return self

    def _webhook_probe_stays_below_its_alert(self) -> None:
        """One run's failed deliveries (the p95 probe's, plus the signature check's one signed
        delivery) must be at most half of the events that fire the webhook-failure alert: the other
        half is left for real failures, another run in the window, and the mis-signed probes'
        warnings, which its filter matches too."""
        probe = self.webhook_probe
        names = {a.name for a in self.alerts}
        if probe.alert not in names:
            raise ValueError(f"webhook_probe.alert: {probe.alert!r} is not one of the alerts")
        alert = self.alert(probe.alert)
        if alert.comparator not in (">", ">="):
            raise ValueError(f"webhook_probe.alert: {probe.alert!r} fires on {alert.comparator} "
                             f"{alert.threshold:g}, not on a count of failures")
        fires_at = math.floor(alert.threshold) + 1 if alert.comparator == ">" else math.ceil(alert.threshold)
        per_run = probe.stop_after_failures + 1
        if 2 * per_run > fires_at:
            raise ValueError(
                f"webhook_probe.stop_after_failures: {probe.stop_after_failures} is too many: with the "
                f"signature check's signed delivery one run may cause {per_run} failed deliveries, more than "
                f"half of the {fires_at} events that fire {probe.alert!r} ({alert.comparator} "
                f"{alert.threshold:g} in {alert.window}s); at most {max(0, fires_at // 2 - 1)}")

    @model_validator(mode="after")
    def _interpretations_name_values(self) -> "Spec":
        known = set(INTERPRETATION_KEYS) | {f"channels[{c.name}].purpose" for c in self.channels}
        unknown = sorted(set(self.interpretations) - known)
        if unknown:
            raise ValueError(f"interpretations: unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})")
        return self

    def interpretation(self, key: str) -> InterpretationSpec | None:
        """The interpretation pinned at `key`, if monitoring.yaml declares one."""
        return self.interpretations.get(key)

    @property
    def all_alerts(self) -> list[AlertSpec]:
        """The guide's six alerts and paymon's synthetic-check alerts, checked alike."""
        return [*self.alerts, *self.synthetic_checks]

    def alert(self, name: str) -> AlertSpec:
        for alert in self.all_alerts:
            if alert.name == name:
                return alert
        raise KeyError(name)

    def runbook_link(self, anchor: str) -> str:
        return self.runbook.url + anchor if anchor.startswith("#") else anchor

    def recipient(self, name: str) -> Recipient:
        return self.recipients[name]


def _key_path(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def _first_error(exc: ValidationError, data: object) -> str:
    err = exc.errors()[0]
    loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    # Name the alert instead of its index where the index points at a named alert.
    path = _key_path(loc)
    if len(loc) >= 2 and loc[0] == "alerts" and isinstance(loc[1], int) and isinstance(data, dict):
        try:
            path += f" ({data['alerts'][loc[1]]['name']})"
        except (KeyError, IndexError, TypeError):
            pass
    msg = err["msg"].removeprefix("Value error, ")
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{path}: {msg}{more}"


def load_spec(path: str | Path = DEFAULT_SPEC_PATH) -> Spec:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    return parse_spec(text, source=str(path))


def parse_spec(text: str, source: str = "monitoring.yaml") -> Spec:
    try:
        # libyaml's safe loader where PyYAML has it: the same documents, ~10x faster (every run, every
        # worker). A broken file is parsed again by the pure-Python loader, whose marks are exact.
        try:
            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError:
            data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{source}:{where}: not valid YAML ({problem})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level")
    try:
        return Spec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {_first_error(exc, data)}") from None
