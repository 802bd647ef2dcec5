"""Raw Sentry alert JSON (both generations) → `Alert`s that can be compared with monitoring.yaml.

    normalise_issue_rule(rule, directory)                  legacy `P/rules/` item
    normalise_metric_alert(rule, directory)                legacy `O/alert-rules/` item
    normalise_detector(detector, workflows, directory)     metric detector + its connected workflows
    normalise_workflow(workflow, detectors_by_id, dir.)    issue-alert workflow (error/issue_stream)
    read_alerts(issue_rules, metric_rules, detectors, workflows, directory) -> AlertSet

Ids are resolved through a `Directory` (members, teams, integrations). The migration to the workflow
engine dual-wrote every alert, so one alert usually appears in both generations: `AlertSet.by_name`
prefers the workflow-engine record and `paymon.findings.alerts.disagreements` reports where the copies differ.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from paymon.rules import query as q
from paymon.rules.names import name_key
from paymon.rules.model import Action, Alert

# --- ids → names -----------------------------------------------------------------------------------

_SLACK_CHANNEL_ID = re.compile(r"^[CGD][A-Z0-9]{6,}$")


@dataclass
class Directory:
    """The organisation's members, teams and integrations, as `O/members/`, `O/teams/` and
    `O/integrations/` return them. Every id is compared as a string: the API mixes int and str."""

    members: list[dict] = field(default_factory=list)
    teams: list[dict] = field(default_factory=list)
    integrations: list[dict] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._emails_by_user_id: dict[str, str] = {}
        self._emails_by_member_id: dict[str, str] = {}
        for member in self.members or ():
            user = member.get("user") or {}
            email = member.get("email") or user.get("email")
            if not email:
                continue
            if user.get("id") is not None:
                self._emails_by_user_id[str(user["id"])] = email
            if member.get("id") is not None:
                self._emails_by_member_id[str(member["id"])] = email
        self._team_slugs = {str(t.get("id")): t.get("slug") for t in self.teams or () if t.get("slug")}

    def _integrations(self, provider: str) -> list[dict]:
        return [i for i in self.integrations or () if (i.get("provider") or {}).get("key") == provider]

    def email_target(self, target_type: object, identifier: object) -> tuple[str, bool]:
        """("member:<email>" | "team:<slug>" | "issue_owners", resolved). E-mail actions store
        user ids (legacy "Member", new "user") and team ids, never addresses."""
        kind = str(target_type or "").lower().replace("_", "")
        ident = "" if identifier is None else str(identifier)
        if kind == "issueowners":
            return "issue_owners", True
        if kind in ("member", "user"):
            # Actions store the user id; some worlds only know the member id, so try both.
            email = self._emails_by_user_id.get(ident) or self._emails_by_member_id.get(ident)
            return (f"member:{email}", True) if email else (f"user:{ident}", False)
        if kind == "team":
            slug = self._team_slugs.get(ident)
            return (f"team:{slug}", True) if slug else (f"team:{ident}", False)
        return f"{kind or 'unknown'}:{ident}", False

    def slack_channel(self, names: tuple[object, ...], channel_id: object,
                      integration_id: object) -> tuple[str, bool]:
        """The channel's display name with a leading '#'. Sentry keeps the name next to the id
        (`channel`, `targetIdentifier` or `targetDisplay`); a bare id cannot be named offline."""
        name = next((str(n) for n in names if n and not _SLACK_CHANNEL_ID.match(str(n))), None)
        resolved = self._integration_known("slack", integration_id)
        if name:
            return ("#" + name.lstrip("#")), resolved
        return f"slack:{channel_id or '?'}", False

    def pagerduty_service(self, row_id: object, integration_id: object,
                          display: object = None) -> tuple[str, bool]:
        """Service name from the PagerDuty integration's `configData.service_table` (actions store
        the row id, not PagerDuty's own service id nor the name)."""
        row = "" if row_id is None else str(row_id)
        for integration in self._integrations("pagerduty"):
            if integration_id is not None and str(integration.get("id")) != str(integration_id):
                continue
            for service in (integration.get("configData") or {}).get("service_table") or ():
                if str(service.get("id")) == row:
                    return str(service.get("service")), True
        # A removed service row leaves the action pointing nowhere even if a name is cached.
        return (str(display) if display else f"service:{row}"), False

    def _integration_known(self, provider: str, integration_id: object) -> bool:
        installed = self._integrations(provider)
        if integration_id is None or not self.integrations:
            return True  # nothing to check against: do not invent a problem
        return any(str(i.get("id")) == str(integration_id) for i in installed)


def _slack(names, channel_id, integration_id, directory, fires_at, raw_id) -> Action:
    target, resolved = directory.slack_channel(names, channel_id, integration_id)
    return Action("slack", target, fires_at, None, _str(integration_id), _str(channel_id) or _str(raw_id),
                  resolved)


def _pagerduty(row_id, integration_id, severity, directory, fires_at, display=None) -> Action:
    target, resolved = directory.pagerduty_service(row_id, integration_id, display)
    return Action("pagerduty", target, fires_at, str(severity or "default"), _str(integration_id),
                  _str(row_id), resolved)


def _email(target_type, identifier, directory, fires_at) -> Action:
    target, resolved = directory.email_target(target_type, identifier)
    return Action("email", target, fires_at, None, None, _str(identifier), resolved)


def _str(value: object) -> str | None:
    return None if value is None else str(value)


# --- filters shared by issue rules and issue workflows ---------------------------------------------

_LEVEL_NUMBERS = {"0": "sample", "10": "debug", "20": "info", "30": "warning", "40": "error",
                  "50": "fatal"}
_LEVEL_ORDER = ["debug", "info", "warning", "error", "fatal"]
_ATTRIBUTE_KEYS = {"message": "message", "type": "event.type", "exception.type": "error.type",
                   "exception.value": "error.value"}
INTERVAL_SECONDS = {"1m": 60, "5m": 300, "10m": 600, "15m": 900, "30m": 1800, "1h": 3600,
                    "1d": 86400, "1w": 604800, "30d": 2592000}
ISSUE_ALERT_INTERVALS = ("1m", "5m", "15m", "1h", "1d", "1w", "30d")


def _match_predicate(key: str, match: str, value: object) -> q.Predicate:
    """A legacy/workflow filter `{key|attribute, match, value}` as a query predicate. The server
    compares these case-insensitively; message terms are lower-cased like the query form."""
    text = "" if value is None else str(value)
    if key in ("message", "level", "event.type"):
        text = text.lower()
    escaped = text.replace("*", "\\*")
    positive = {
        "eq": lambda: q.Term(key, "eq", text),
        "co": lambda: (q.Term(key, "contains", text) if key == "message"
                       else q.Term(key, "glob", f"*{escaped}*")),
        "sw": lambda: q.Term(key, "glob", f"{escaped}*"),
        "ew": lambda: q.Term(key, "glob", f"*{escaped}"),
        "is": lambda: q.Term(key, "has"),
        "in": lambda: q.any_of(q.Term(key, "eq", v.strip()) for v in text.split(",")),
    }
    negative = {"ne": "eq", "nc": "co", "nsw": "sw", "new": "ew", "ns": "is", "nin": "in"}
    if match in positive:
        return positive[match]()
    if match in negative:
        return negate(positive[negative[match]]())
    if match in ("gt", "gte", "lt", "lte"):
        return q.Term(key, match, text)
    return q.Term(key, f"match:{match}", text)


def negate(pred: q.Predicate) -> q.Predicate:
    """De Morgan over canonical predicates (for `filterMatch: none`)."""
    if isinstance(pred, q.Term):
        return q.Term(pred.key, pred.op, pred.value, not pred.negated)
    if isinstance(pred, q.And):
        return q.any_of(negate(i) for i in pred.items)
    if isinstance(pred, q.Or):
        return q.all_of(negate(i) for i in pred.items)
    return pred


def _level_predicate(level: object, match: str) -> q.Predicate:
    name = _LEVEL_NUMBERS.get(str(level), str(level).lower())
    if name not in _LEVEL_ORDER:
        return q.Term("level", "eq", name)
    index = _LEVEL_ORDER.index(name)
    chosen = {"gte": _LEVEL_ORDER[index:], "lte": _LEVEL_ORDER[: index + 1]}.get(match, [name])
    return q.any_of(q.Term("level", "eq", n) for n in chosen)


def filter_predicate(kind: str, params: dict) -> q.Predicate:
    """One filter (`tagged_event`, `event_attribute`, `level`, or anything else) as a predicate.
    Unknown filters become an opaque term, so they show in comparisons instead of vanishing."""
    if kind == "tagged_event":
        return _match_predicate(q.canonical_key(str(params.get("key"))), params.get("match", "eq"),
                                params.get("value"))
    if kind == "event_attribute":
        attribute = str(params.get("attribute"))
        return _match_predicate(_ATTRIBUTE_KEYS.get(attribute, attribute), params.get("match", "eq"),
                                params.get("value"))
    if kind == "level":
        return _level_predicate(params.get("level"), params.get("match", "eq"))
    opaque = {k: v for k, v in params.items() if k not in ("id", "name", "uuid")}
    return q.Term(f"filter:{kind}", "eq", json.dumps(opaque, sort_keys=True, default=str))


def combine(preds: list[q.Predicate], logic: str | None) -> q.Predicate:
    logic = (logic or "all").replace("-short", "")
    if not preds:
        return None
    if logic == "any":
        return q.any_of(preds)
    if logic == "none":
        return q.all_of(negate(p) for p in preds)
    return q.all_of(preds)


@dataclass(frozen=True)
class _Frequency:
    threshold: float
    window_seconds: int | None
    aggregate: str = "count()"
    comparator: str = ">"


_NO_FREQUENCY = _Frequency(0.0, None)


def _frequency(kind: str, params: dict) -> _Frequency:
    window = INTERVAL_SECONDS.get(str(params.get("interval")))
    value = float(params.get("value") or 0)
    if kind == "unique_user":
        return _Frequency(value, window, "count_unique(user)")
    if kind == "percent" or params.get("comparisonType") == "percent":
        # "% more than {comparisonInterval} ago": a relative threshold, not an event count.
        return _Frequency(value, window, "count()", f"> {value:g}% vs {params.get('comparisonInterval')}")
    return _Frequency(value, window)


# --- legacy issue rules ----------------------------------------------------------------------------

_LEGACY_FILTER_KINDS = {
    "TaggedEventFilter": "tagged_event", "TaggedEventCondition": "tagged_event",
    "EventAttributeFilter": "event_attribute", "EventAttributeCondition": "event_attribute",
    "LevelFilter": "level", "LevelCondition": "level",
}
_LEGACY_FREQUENCY_KINDS = {
    "EventFrequencyCondition": "count", "EventUniqueUserFrequencyCondition": "unique_user",
    "EventFrequencyPercentCondition": "percent",
}


def _class_name(item: dict) -> str:
    return str(item.get("id") or "").rsplit(".", 1)[-1]


def _legacy_filter(item: dict) -> q.Predicate:
    name = _class_name(item)
    return filter_predicate(_LEGACY_FILTER_KINDS.get(name, name), item)


def _legacy_issue_action(raw: dict, directory: Directory) -> Action:
    name = _class_name(raw)
    if name == "SlackNotifyServiceAction":
        return _slack((raw.get("channel"),), raw.get("channel_id"), raw.get("workspace"), directory,
                      "critical", None)
    if name == "PagerDutyNotifyServiceAction":
        return _pagerduty(raw.get("service"), raw.get("account"), raw.get("severity"), directory,
                          "critical")
    if name == "NotifyEmailAction":
        return _email(raw.get("targetType"), raw.get("targetIdentifier"), directory, "critical")
    return Action("other", name or "unknown", "critical", target_id=_str(raw.get("uuid")))


def normalise_issue_rule(rule: dict, directory: Directory) -> Alert:
    """A legacy issue rule counts the events of one issue (per_issue) of every event type.
    Filters combine by `filterMatch`: with `all` a LevelFilter becomes `levels`; with `any` it stays
    inside the OR, where it widens rather than restricts (see compare.semantic_findings)."""
    frequency = _NO_FREQUENCY
    condition_filters = []
    for condition in rule.get("conditions") or ():
        name = _class_name(condition)
        if name in _LEGACY_FREQUENCY_KINDS and frequency is _NO_FREQUENCY:
            frequency = _frequency(_LEGACY_FREQUENCY_KINDS[name], condition)
        elif name in _LEGACY_FILTER_KINDS:
            condition_filters.append(_legacy_filter(condition))
    filters = combine([_legacy_filter(f) for f in rule.get("filters") or ()], rule.get("filterMatch"))
    whole = q.all_of([filters, combine(condition_filters, rule.get("actionMatch"))])
    levels, rest = q.extract_levels(whole)
    return Alert(
        name=str(rule.get("name") or ""),
        source=f"issue_rule {rule.get('id')}",
        generation="legacy",
        enabled=(rule.get("status") or "active") == "active" and not rule.get("snooze"),
        environment=rule.get("environment"),
        event_types=None,
        levels=levels,
        filter=rest,
        query=q.render(whole),
        aggregate=frequency.aggregate,
        comparator=frequency.comparator,
        thresholds={"critical": frequency.threshold},
        window_seconds=frequency.window_seconds,
        counting="per_issue",
        actions=tuple(_legacy_issue_action(a, directory) for a in rule.get("actions") or ()),
        repeat_minutes=rule.get("frequency"),
        dataset="issues",
        filter_match=rule.get("filterMatch") or "all",
        raw_ids=(str(rule.get("id")),),
    )


# --- metric queries (legacy metric alerts and metric detectors) ------------------------------------

_PERFORMANCE_DATASETS = {"transactions", "generic_metrics", "events_analytics_platform", "spans"}
_PERCENTILE = re.compile(r"^percentile\((?P<column>[^,]+),0?\.(?P<digits>\d+)\)$")
_SPAN_DURATION = re.compile(r"\(span\.duration\)")


def normalise_aggregate(aggregate: str) -> str:
    """`percentile(x,0.95)` → `p95(x)`; whitespace dropped."""
    compact = re.sub(r"\s+", "", aggregate or "")
    match = _PERCENTILE.match(compact)
    if match and len(match.group("digits")) <= 2:
        compact = f"p{match.group('digits').ljust(2, '0')}({match.group('column')})"
    return compact


@dataclass(frozen=True)
class _MetricQuery:
    aggregate: str
    levels: frozenset[str]
    filter: q.Predicate
    event_types: frozenset[str] | None
    dataset: str | None


def _metric_query(query: str, aggregate: str, event_types, dataset: str | None) -> _MetricQuery:
    """Read a metric query into comparable parts. Span-based alerts select transactions with
    `is_transaction:true` and measure `span.duration`; that is the transaction alert
    `p95(transaction.duration)` on the transactions dataset, so it is rewritten to that form."""
    pred = q.parse(query or "")
    levels, pred = q.extract_levels(pred)
    types = frozenset(str(t) for t in event_types) if event_types else None
    queried_types, pred = q.extract_field(pred, "event.type")
    if queried_types is not None:
        types = queried_types if types is None else types & queried_types
    aggregate = normalise_aggregate(aggregate)
    is_transaction, rest = q.extract_field(pred, "is_transaction")
    if is_transaction == frozenset({"true"}):
        pred = rest
        aggregate = _SPAN_DURATION.sub("(transaction.duration)", aggregate)
        if aggregate == "count(transaction.duration)":
            aggregate = "count()"
        types = frozenset({"transaction"})
    if dataset in _PERFORMANCE_DATASETS and "transaction.duration" in aggregate:
        dataset = "transactions"
    return _MetricQuery(aggregate, levels, pred, types, dataset)


# --- legacy metric alerts --------------------------------------------------------------------------

# AlertRuleStatus in sentry/incidents/models/alert_rule.py: PENDING = 0 is the normal, running
# state; SNAPSHOT = 4 (an old copy), DISABLED = 5 and NOT_ENOUGH_DATA = 6 (a dynamic alert that
# cannot fire yet) all mean "will not alert now". A snoozed (muted) rule does not notify either.
_ALERT_RULE_RUNNING = 0


def _metric_trigger_action(raw: dict, label: str, directory: Directory) -> Action:
    kind = raw.get("type")
    if kind == "slack":
        return _slack((raw.get("targetIdentifier"),), raw.get("inputChannelId") or raw.get("targetIdentifier"),
                      raw.get("integrationId"), directory, label, raw.get("id"))
    if kind == "pagerduty":
        # A trigger's PagerDuty action without a priority sends the trigger's own level.
        return _pagerduty(raw.get("targetIdentifier"), raw.get("integrationId"),
                          raw.get("priority") or label, directory, label)
    if kind == "email":
        return _email(raw.get("targetType"), raw.get("targetIdentifier"), directory, label)
    return Action("other", str(kind), label, target_id=_str(raw.get("targetIdentifier")))


def _trigger_level(label: object) -> str:
    return "warning" if str(label).lower() == "warning" else "critical"


def normalise_metric_alert(rule: dict, directory: Directory) -> Alert:
    parts = _metric_query(rule.get("query"), rule.get("aggregate"), rule.get("eventTypes"),
                          rule.get("dataset"))
    thresholds: dict[str, float] = {}
    actions: list[Action] = []
    for trigger in rule.get("triggers") or ():
        level = _trigger_level(trigger.get("label"))
        if trigger.get("alertThreshold") is not None:
            thresholds[level] = float(trigger["alertThreshold"])
        actions += [_metric_trigger_action(a, level, directory) for a in trigger.get("actions") or ()]
    window = rule.get("timeWindow")
    return Alert(
        name=str(rule.get("name") or ""),
        source=f"metric_alert {rule.get('id')}",
        generation="legacy",
        enabled=rule.get("status", 0) == _ALERT_RULE_RUNNING and not rule.get("snooze"),
        environment=rule.get("environment"),
        event_types=parts.event_types,
        levels=parts.levels,
        filter=parts.filter,
        query=rule.get("query") or "",
        aggregate=parts.aggregate,
        comparator="<" if rule.get("thresholdType") == 1 else ">",
        thresholds=thresholds,
        window_seconds=None if window is None else int(round(float(window) * 60)),
        counting="across_events",
        actions=tuple(actions),
        dataset=parts.dataset,
        raw_ids=(str(rule.get("id")),),
    )


# --- workflow engine -------------------------------------------------------------------------------

_METRIC_DETECTOR_TYPES = {"metric_issue", "metric_alert_fire"}
_ISSUE_DETECTOR_TYPES = {"error", "issue_stream"}
_PRIORITY_LEVELS = {75: "critical", 50: "warning"}
_CONDITION_COMPARATORS = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_WORKFLOW_FREQUENCY_KINDS = {"event_frequency_count": "count",
                             "event_unique_user_frequency_count": "unique_user",
                             "event_frequency_percent": "percent"}
_PRIORITY_CONDITIONS = {"issue_priority_greater_or_equal", "issue_priority_equals"}


def _workflow_action(raw: dict, fires_at: str, directory: Directory) -> Action:
    kind = raw.get("type")
    config, data = raw.get("config") or {}, raw.get("data") or {}
    if kind == "slack":
        return _slack((config.get("targetDisplay"), config.get("targetIdentifier")),
                      config.get("targetIdentifier"), raw.get("integrationId"), directory, fires_at, None)
    if kind == "pagerduty":
        return _pagerduty(config.get("targetIdentifier"), raw.get("integrationId"),
                          data.get("priority") or data.get("severity"), directory, fires_at,
                          config.get("targetDisplay"))
    if kind == "email":
        return _email(config.get("targetType"), config.get("targetIdentifier"), directory, fires_at)
    return Action("other", str(kind), fires_at, target_id=_str(config.get("targetIdentifier")))


def _group_fires_at(group: dict, lowest: str) -> str:
    """Priority a group's actions need: 75 critical, 50 warning; no priority condition = any."""
    for condition in group.get("conditions") or ():
        if condition.get("type") in _PRIORITY_CONDITIONS:
            try:
                priority = int(condition.get("comparison"))
            except (TypeError, ValueError):
                continue
            return "critical" if priority >= 75 else "warning"
    return lowest


def _snuba_query(detector: dict) -> dict:
    for source in detector.get("dataSources") or ():
        if source.get("type") == "snuba_query_subscription":
            return (source.get("queryObj") or {}).get("snubaQuery") or {}
    return {}


def _connected(detector: dict, workflows: list[dict]) -> list[dict]:
    ids = {str(i) for i in detector.get("workflowIds") or ()}
    did = str(detector.get("id"))
    return [w for w in workflows or ()
            if str(w.get("id")) in ids or did in {str(d) for d in w.get("detectorIds") or ()}]


def _provenance(first: str, first_id: object, second: str, second_ids: list) -> str:
    if not second_ids:
        return f"{first} {first_id} (no {second})"
    plural = "s" if len(second_ids) > 1 else ""
    return f"{first} {first_id} + {second}{plural} {', '.join(map(str, second_ids))}"


def normalise_detector(detector: dict, workflows: list[dict], directory: Directory) -> Alert | None:
    """A metric detector with the workflows that notify for it; None for other detector types."""
    if detector.get("type") not in _METRIC_DETECTOR_TYPES:
        return None
    snuba = _snuba_query(detector)
    parts = _metric_query(snuba.get("query"), snuba.get("aggregate"), snuba.get("eventTypes"),
                          snuba.get("dataset"))
    thresholds: dict[str, float] = {}
    comparator = ">"
    for condition in (detector.get("conditionGroup") or {}).get("conditions") or ():
        level = _PRIORITY_LEVELS.get(condition.get("conditionResult"))
        if condition.get("type") == "anomaly_detection":
            comparator = "anomaly"
        elif level and condition.get("type") in _CONDITION_COMPARATORS:
            thresholds[level] = float(condition.get("comparison"))
            if level == "critical" or "critical" not in thresholds:
                comparator = _CONDITION_COMPARATORS[condition["type"]]
    connected = _connected(detector, workflows)
    lowest = "warning" if "warning" in thresholds else "critical"
    actions = [_workflow_action(action, _group_fires_at(group, lowest), directory)
               for workflow in connected
               for group in workflow.get("actionFilters") or ()
               for action in group.get("actions") or ()]
    window = snuba.get("timeWindow")
    frequency = next(((w.get("config") or {}).get("frequency") for w in connected
                      if (w.get("config") or {}).get("frequency") is not None), None)
    return Alert(
        name=str(detector.get("name") or ""),
        source=_provenance("detector", detector.get("id"), "workflow", [w.get("id") for w in connected]),
        generation="workflow",
        enabled=bool(detector.get("enabled", True)) and all(w.get("enabled", True) for w in connected),
        environment=snuba.get("environment") or next(
            (w.get("environment") for w in connected if w.get("environment")), None),
        event_types=parts.event_types,
        levels=parts.levels,
        filter=parts.filter,
        query=snuba.get("query") or "",
        aggregate=parts.aggregate,
        comparator=comparator,
        thresholds=thresholds,
        window_seconds=None if window is None else int(window),
        counting="across_events",
        actions=tuple(actions),
        repeat_minutes=frequency,
        dataset=parts.dataset,
        raw_ids=(str(detector.get("id")), *(str(w.get("id")) for w in connected)),
    )


def _workflow_conditions(conditions: list[dict] | None) -> tuple[list[q.Predicate], _Frequency | None]:
    """(filter predicates, the per-issue frequency condition if any) of one condition list."""
    preds, frequency = [], None
    for condition in conditions or ():
        kind = condition.get("type")
        comparison = condition.get("comparison")
        params = comparison if isinstance(comparison, dict) else {"value": comparison}
        if kind in _WORKFLOW_FREQUENCY_KINDS:
            frequency = frequency or _frequency(_WORKFLOW_FREQUENCY_KINDS[kind], params)
        elif kind not in _PRIORITY_CONDITIONS:
            preds.append(filter_predicate(str(kind), params))
    return preds, frequency


def normalise_workflow(workflow: dict, detectors_by_id: dict[str, dict],
                       directory: Directory) -> Alert | None:
    """An issue-alert workflow: connected to the project's `error`/`issue_stream` detector, with
    filters (and per-issue frequency) in `actionFilters`. None when it only serves metric detectors.
    Frequency conditions are read from `triggers` too (where the early migration put them). Each
    action-filter group runs its actions when its own conditions pass, so groups combine with OR."""
    detectors = [detectors_by_id.get(str(d)) for d in workflow.get("detectorIds") or ()]
    issue_detectors = [d for d in detectors if d and d.get("type") in _ISSUE_DETECTOR_TYPES]
    if not issue_detectors:
        return None
    # Trigger conditions (first_seen_event, …) say *when* to evaluate, not which events qualify;
    # only a frequency condition there matters.
    _, frequency = _workflow_conditions((workflow.get("triggers") or {}).get("conditions"))
    group_preds, actions, logic = [], [], None
    for group in workflow.get("actionFilters") or ():
        preds, group_frequency = _workflow_conditions(group.get("conditions"))
        frequency = frequency or group_frequency
        if preds:
            logic = logic or group.get("logicType")
        group_preds.append(combine(preds, group.get("logicType")))
        actions += [_workflow_action(a, "critical", directory) for a in group.get("actions") or ()]
    whole = q.any_of(group_preds) if group_preds else None
    levels, rest = q.extract_levels(whole)
    frequency = frequency or _NO_FREQUENCY
    return Alert(
        name=str(workflow.get("name") or ""),
        source=_provenance("workflow", workflow.get("id"), "detector", [d.get("id") for d in issue_detectors]),
        generation="workflow",
        enabled=bool(workflow.get("enabled", True)) and all(d.get("enabled", True) for d in issue_detectors),
        environment=workflow.get("environment"),
        event_types=None,
        levels=levels,
        filter=rest,
        query=q.render(whole),
        aggregate=frequency.aggregate,
        comparator=frequency.comparator,
        thresholds={"critical": frequency.threshold},
        window_seconds=frequency.window_seconds,
        counting="per_issue",
        actions=tuple(actions),
        repeat_minutes=(workflow.get("config") or {}).get("frequency"),
        dataset="issues",
        filter_match=(logic or "all").replace("-short", ""),
        raw_ids=(str(workflow.get("id")), *(str(d.get("id")) for d in issue_detectors)),
    )


# --- everything together ---------------------------------------------------------------------------


def _preference(alert: Alert) -> tuple:
    """Workflow engine first (it is what runs after the migration); then aggregate alerts, the
    faithful form of "N events in M minutes", before issue rules; then by id for determinism."""
    return (alert.generation != "workflow", alert.counting != "across_events", alert.source)


@dataclass
class AlertSet:
    all: list[Alert]

    def named(self, name: str) -> list[Alert]:
        """Every record of that alert, preferred first."""
        wanted = name_key(name)
        return sorted((a for a in self.all if name_key(a.name) == wanted), key=_preference)

    def by_name(self, name: str) -> Alert | None:
        records = self.named(name)
        return records[0] if records else None

    def copies(self) -> list[tuple[Alert, list[Alert]]]:
        """Each alert's preferred record with the other records of the same name (copies in the
        other generation); `paymon.findings.alerts.disagreements` says where they differ."""
        groups = []
        for name in dict.fromkeys(name_key(a.name) for a in self.all):
            preferred, *others = self.named(name)
            groups.append((preferred, others))
        return groups


def read_alerts(issue_rules: list[dict] | None, metric_rules: list[dict] | None,
                detectors: list[dict] | None, workflows: list[dict] | None,
                directory: Directory) -> AlertSet:
    alerts = [normalise_issue_rule(r, directory) for r in issue_rules or ()]
    alerts += [normalise_metric_alert(r, directory) for r in metric_rules or ()]
    detectors_by_id = {str(d.get("id")): d for d in detectors or ()}
    for detector in detectors or ():
        alert = normalise_detector(detector, workflows or [], directory)
        if alert is not None:
            alerts.append(alert)
    for workflow in workflows or ():
        alert = normalise_workflow(workflow, detectors_by_id, directory)
        if alert is not None:
            alerts.append(alert)
    return AlertSet(alerts)
