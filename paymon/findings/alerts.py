"""What monitoring.yaml declares vs what Sentry holds, as one-line findings.

Only declared fields are compared, after normalising what the server adds or coerces: "80" vs 80,
5.0 vs 5, channel names vs ids (resolved in normalise), reordered filters and actions (compared as
parsed predicates and sets).

    compare_alert(spec, actual, spec_root)            field findings for one of the six alerts
    semantic_findings(spec, actual, spec_root)        "configured, but will not do what the guide means"
    compare_performance(budget, perf_spec, actual)    one p95 budget
    routing_findings(spec, route, actual, spec_root)  §3 severity routing
    differences(preferred, other)                     two copies of one alert that disagree
"""

from __future__ import annotations

from collections.abc import Iterable

from paymon.rules import query as q
from paymon.rules.model import Action, Alert
from paymon.rules.normalise import INTERVAL_SECONDS, ISSUE_ALERT_INTERVALS, AlertSet, normalise_aggregate
from paymon.config.spec import ActionSpec, AlertSpec, PerformanceBudget, PerformanceSpec, RouteSpec, Spec
from paymon.findings.model import Finding

# Issue alerts are evaluated on error-ish events, i.e. every error and every message (default).
_ISSUE_ALERT_EVENT_TYPES = frozenset({"error", "default"})
_LEVEL_ORDER = ["fatal", "error", "warning", "info", "debug"]


# --- formatting ------------------------------------------------------------------------------------


def _number(value: float | None) -> str:
    return "none" if value is None else f"{value:g}"


def _seconds(value: int | None) -> str:
    return "none" if value is None else f"{value}s"


def _types(types: Iterable[str] | None) -> str:
    return "all" if types is None else ", ".join(sorted(types)) or "none"


def _levels(levels: Iterable[str]) -> str:
    ordered = sorted(levels, key=lambda l: _LEVEL_ORDER.index(l) if l in _LEVEL_ORDER else 99)
    return ", ".join(ordered) or "all levels"


def _query(pred: q.Predicate) -> str:
    return q.render(pred) or "(no filter)"


def _environment(env: str | None) -> str:
    return env or "all environments"


def _action_list(keys: Iterable[tuple]) -> str:
    return "[" + ", ".join(sorted(_describe_key(k) for k in keys)) + "]" if keys else "[]"


# --- actions as comparable keys --------------------------------------------------------------------

ActionKey = tuple  # (kind, target, severity, resolved)


def _action_key(action: Action) -> ActionKey:
    severity = action.severity if action.kind == "pagerduty" else None
    return (action.kind, action.target, severity, action.resolved)


def _describe_key(key: ActionKey) -> str:
    kind, target, severity, resolved = key
    return Action(kind, target, severity=severity, resolved=resolved).describe()


def recipient_key(name: str, spec_root: Spec | None) -> str:
    """`email: on-call` → "team:on-call" through monitoring.yaml's `recipients`."""
    if spec_root is not None and name in spec_root.recipients:
        return spec_root.recipients[name].key
    return name if ":" in name else f"member:{name}"


def expected_action_key(action: ActionSpec, spec_root: Spec | None) -> ActionKey:
    if action.slack:
        return ("slack", action.slack, None, True)
    if action.pagerduty:
        return ("pagerduty", action.pagerduty.service, action.pagerduty.severity, True)
    return ("email", recipient_key(action.email, spec_root), None, True)


def _actions_finding(name: str, field: str, expected: set, actual: set, source: str) -> list[Finding]:
    if expected == actual:
        return []
    parts = []
    if expected - actual:
        parts.append("missing " + ", ".join(sorted(_describe_key(k) for k in expected - actual)))
    if actual - expected:
        parts.append("unexpected " + ", ".join(sorted(_describe_key(k) for k in actual - expected)))
    return [Finding(name, field, _action_list(expected), _action_list(actual), "field", source,
                    "; ".join(parts))]


# --- the six alerts --------------------------------------------------------------------------------


def _effective_types(alert: Alert) -> frozenset[str]:
    return _ISSUE_ALERT_EVENT_TYPES if alert.event_types is None else alert.event_types


def _spec_filter(spec: AlertSpec) -> tuple[frozenset[str], q.Predicate]:
    """(levels, filter) the spec means: `events.levels` AND any level terms in its filter."""
    filter_levels, rest = q.extract_levels(q.parse(spec.filter))
    declared = frozenset(spec.events.levels)
    if declared and filter_levels:
        return declared & filter_levels, rest
    return declared or filter_levels, rest


def compare_alert(spec: AlertSpec, actual: Alert, spec_root: Spec | None = None) -> list[Finding]:
    name, source = spec.name, actual.source
    findings: list[Finding] = []

    def differ(field: str, expected: object, got: object, hint: str = "") -> None:
        findings.append(Finding(name, field, expected, got, "field", source, hint))

    if not actual.enabled:
        differ("enabled", "true", "false")
    if spec.environment != actual.environment:
        differ("environment", _environment(spec.environment), _environment(actual.environment))
    if frozenset(spec.events.types) != _effective_types(actual):
        differ("event types", _types(spec.events.types), _types(_effective_types(actual)))
    try:
        levels, expected_filter = _spec_filter(spec)
    except ValueError as exc:
        differ("filter", repr(spec.filter), _query(actual.filter), f"monitoring.yaml: {exc}")
    else:
        if levels != actual.levels:
            differ("levels", _levels(levels), _levels(actual.levels))
        if expected_filter != actual.filter:
            differ("filter", _query(expected_filter), _query(actual.filter))
    if normalise_aggregate(spec.aggregate) != actual.aggregate:
        differ("aggregate", spec.aggregate, actual.aggregate)
    if spec.comparator != actual.comparator:
        differ("comparator", spec.comparator, actual.comparator)
    if actual.threshold is None or float(spec.threshold) != actual.threshold:
        differ("threshold", _number(spec.threshold), _number(actual.threshold))
    if not spec.any_occurrence:
        if spec.window != actual.window_seconds:
            differ("window", _seconds(spec.window), _seconds(actual.window_seconds))
        if spec.count != actual.counting:
            differ("counting", spec.count, actual.counting)
    expected_actions = {expected_action_key(a, spec_root) for a in spec.actions}
    findings += _actions_finding(name, "actions", expected_actions,
                                 {_action_key(a) for a in actual.actions}, source)
    return findings


def _window_text(seconds: int | None) -> str:
    if seconds is None:
        return "no window"
    for label, value in INTERVAL_SECONDS.items():
        if value == seconds:
            return label
    return f"{seconds}s"


def semantic_findings(spec: AlertSpec, actual: Alert, spec_root: Spec | None = None) -> list[Finding]:
    """Ways an alert can look configured and still not do what the guide means, each with why and
    how to fix it."""
    name, source = spec.name, actual.source
    findings: list[Finding] = []

    def problem(field: str, expected: str, got: str, why: str, fix: str) -> None:
        findings.append(Finding(name, field, expected, got, "semantic", source, f"{why} Fix: {fix}"))

    window = _window_text(spec.window)
    if not spec.any_occurrence and spec.count == "across_events" and actual.counting == "per_issue":
        problem("counting", f"> {spec.threshold:g} matching events in {window}, across all issues",
                f"per-issue: > {_number(actual.threshold)} events of one issue in "
                f"{_window_text(actual.window_seconds)}",
                "an issue alert's frequency condition counts the events of the single issue an event "
                "is grouped into, so matching errors spread over several issues never fire it.",
                f"use a metric alert / metric monitor: count() over the query, {window} window.")
    if (not spec.any_occurrence and actual.counting == "per_issue" and spec.window is not None
            and spec.window not in {INTERVAL_SECONDS[i] for i in ISSUE_ALERT_INTERVALS}):
        problem("window", window, _window_text(actual.window_seconds),
                f"issue alerts offer only {', '.join(ISSUE_ALERT_INTERVALS)} intervals, so {window} "
                "cannot be expressed as an issue alert.",
                f"use a metric alert (timeWindow {spec.window // 60} min) or a metric monitor "
                f"(timeWindow {spec.window} s).")
    if ("default" in spec.events.types and actual.event_types is not None
            and "default" not in actual.event_types):
        problem("event types", _types(spec.events.types), _types(actual.event_types),
                "captureMessage events have type `default`; without it the alert never counts "
                "messages such as the guide's log-style failures.",
                "select both error and default events (event.type:[error,default]).")
    if spec.any_occurrence and not (actual.comparator == ">" and actual.threshold == 0):
        problem("threshold", "> 0 (any occurrence)", f"{actual.comparator} {_number(actual.threshold)}",
                "Sentry's thresholds are strict, so only `> 0` fires on the first matching event; "
                "anything else waits for more events and misses the first.",
                "set the threshold to 0 with 'above' (count() > 0).")
    findings += _email_problems(spec, actual, spec_root)
    if actual.filter_match == "any" and q.contains_key(actual.filter, "level"):
        problem("filter", "the level ANDed with the other filters",
                f"level inside the OR: {_query(actual.filter)}",
                "with filterMatch 'any' every filter is ORed, so the LevelFilter widens the alert to "
                "every event of that level instead of restricting it.",
                "issue rules cannot AND a level with an OR group; use a metric alert such as "
                "`level:x (a OR b)`.")
    return findings


def _email_problems(spec: AlertSpec, actual: Alert, spec_root: Spec | None) -> list[Finding]:
    expected = {recipient_key(a.email, spec_root): a.email for a in spec.actions if a.email}
    emails = [a for a in actual.actions if a.kind == "email"]
    strays = [a for a in emails if not a.resolved or a.target not in expected]
    findings = []
    for key, recipient in expected.items():
        if any(a.target == key and a.resolved for a in emails) or not strays:
            continue  # reached, or simply absent (the actions finding reports that)
        got = ", ".join(a.describe() for a in strays)
        why = ("the action's user/team id is not a member or team of the organisation, so Sentry "
               "e-mails nobody." if any(not a.resolved for a in strays)
               else f"the e-mail action goes to {got}, not to {key}.")
        findings.append(Finding(spec.name, "email", f"{recipient} ({key})", got, "semantic",
                                actual.source, f"{why} Fix: choose {key} as the e-mail target."))
    return findings


# --- performance budgets ---------------------------------------------------------------------------


def compare_performance(budget: PerformanceBudget, perf_spec: PerformanceSpec, actual: Alert,
                        spec_root: Spec | None = None) -> list[Finding]:
    name, source = budget.name, actual.source
    findings: list[Finding] = []

    def differ(field: str, expected: object, got: object) -> None:
        findings.append(Finding(name, field, expected, got, "field", source))

    if not actual.enabled:
        differ("enabled", "true", "false")
    if normalise_aggregate(perf_spec.aggregate) != actual.aggregate:
        differ("aggregate", perf_spec.aggregate, actual.aggregate)
    expected_filter = q.Term("transaction", "eq", budget.transaction)
    if all_levels_filter(actual) != expected_filter:
        differ("transaction", f"transaction:{budget.transaction}", _query(all_levels_filter(actual)))
    if perf_spec.environment != actual.environment:
        differ("environment", _environment(perf_spec.environment), _environment(actual.environment))
    if perf_spec.window != actual.window_seconds:
        differ("window", _seconds(perf_spec.window), _seconds(actual.window_seconds))
    if actual.comparator != ">":
        differ("comparator", ">", actual.comparator)
    for level in ("warning", "critical"):
        expected = float(getattr(budget, level))
        if actual.thresholds.get(level) != expected:
            differ(f"{level} threshold", _number(expected), _number(actual.thresholds.get(level)))
        declared = getattr(perf_spec.actions, level)
        findings += _actions_finding(
            name, f"{level} actions", {expected_action_key(a, spec_root) for a in declared},
            {_action_key(a) for a in actual.actions if a.fires_at == level}, source)
    return findings


def all_levels_filter(alert: Alert) -> q.Predicate:
    """The alert's filter with its level restriction put back (levels are kept apart for alerts)."""
    if not alert.levels:
        return alert.filter
    return q.all_of([q.any_of(q.Term("level", "eq", l) for l in alert.levels), alert.filter])


# --- §3 severity routing ---------------------------------------------------------------------------


def routing_findings(spec_alert: AlertSpec, route: RouteSpec, actual: Alert,
                     spec_root: Spec | None = None) -> list[Finding]:
    name, source, severity = spec_alert.name, actual.source, spec_alert.severity
    channels = sorted({a.target for a in actual.actions if a.kind == "slack" and a.resolved})
    emails = {a.target for a in actual.actions if a.kind == "email" and a.resolved}
    findings: list[Finding] = []

    def violation(field: str, expected: str, got: str) -> None:
        findings.append(Finding(name, field, expected, got, "routing", source,
                                f"§3 routes {severity} alerts this way"))

    for channel in _required_channels(spec_alert, route):
        if channel not in channels:
            violation("slack route", channel, ", ".join(channels) or "no Slack action")
    if not route.slack and channels:
        violation("slack route", "no Slack notification (weekly digest e-mail)", ", ".join(channels))
    if route.on_call:
        on_call = recipient_key("on-call", spec_root)
        if on_call not in emails:
            violation("on-call route", f"email {on_call}", ", ".join(sorted(emails)) or "no e-mail action")
    if route.pagerduty:
        service = (spec_root.integrations.pagerduty.service
                   if spec_root is not None and spec_root.integrations.pagerduty else None)
        pages = [a for a in actual.actions if a.kind == "pagerduty" and a.resolved
                 and (service is None or a.target == service)]
        if not pages:
            got = ", ".join(a.describe() for a in actual.actions if a.kind == "pagerduty")
            violation("pagerduty route", f"pagerduty {service or 'service'}", got or "no PagerDuty action")
    return findings


def _required_channels(spec_alert: AlertSpec, route: RouteSpec) -> list[str]:
    """The route's channels, unless the guide gives the alert a dedicated channel instead (alert 3
    posts to #security-alerts): then that channel is where the route's Slack post must land."""
    declared = [a.slack for a in spec_alert.actions if a.slack]
    if not route.slack:
        return []
    return [c for c in route.slack if c in declared] or declared or list(route.slack)


# --- two generations of one alert ------------------------------------------------------------------


def _any_occurrence(alert: Alert) -> bool:
    return alert.comparator == ">" and alert.threshold == 0


def differences(preferred: Alert, other: Alert) -> list[Finding]:
    """Where `other` (usually the legacy copy) differs from the preferred record. Sentry runs both
    copies, so a stale copy notifies on its own terms."""
    source = f"{other.source} vs {preferred.source}"
    hint = "the copies in the two alerting generations disagree; fix or delete the stale one"
    pairs = [
        ("enabled", preferred.enabled, other.enabled, lambda v: str(v).lower()),
        ("environment", preferred.environment, other.environment, _environment),
        ("event types", _effective_types(preferred), _effective_types(other), _types),
        ("levels", preferred.levels, other.levels, _levels),
        ("filter", preferred.filter, other.filter, _query),
        ("aggregate", preferred.aggregate, other.aggregate, str),
        ("comparator", preferred.comparator, other.comparator, str),
    ]
    for level in sorted(set(preferred.thresholds) | set(other.thresholds)):
        pairs.append((f"{level} threshold", preferred.thresholds.get(level),
                      other.thresholds.get(level), _number))
    if not (_any_occurrence(preferred) and _any_occurrence(other)):
        pairs += [("window", preferred.window_seconds, other.window_seconds, _seconds),
                  ("counting", preferred.counting, other.counting, str)]
    findings = [Finding(preferred.name, field, show(mine), show(theirs), "field", source, hint)
                for field, mine, theirs, show in pairs if mine != theirs]
    findings += _actions_finding(preferred.name, "actions", {_action_key(a) for a in preferred.actions},
                                 {_action_key(a) for a in other.actions}, source)
    return findings


def disagreements(alerts: AlertSet) -> list[Finding]:
    """Findings where a copy of an alert differs from the preferred record of the same name."""
    return [finding for preferred, others in alerts.copies() for other in others
            for finding in differences(preferred, other)]
