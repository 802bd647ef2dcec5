"""Trace metrics ("Application Metrics"): what the SDK's `sentry_sdk.metrics.count/gauge/distribution`
send (envelope item `trace_metric`, `{"version": 2, "items": [...]}`: sentry-sdk
`_metrics_batcher.py`), stored per project, and served by `GET O/events-timeseries/` with
`dataset=tracemetrics`.

    store.add(payload, project_id, received)          # one envelope item's metrics
    timeseries_body(store, project_ids, environments, params, starts, ...)   # ValueError -> 400
    (called by timeseries.py, which checks the bucket count and topEvents as for events)

Sources (getsentry/sentry): `tests/snuba/api/endpoints/test_organization_events_timeseries_trace_metrics.py`
(the endpoint with `dataset=tracemetrics`, `yAxis=sum(value)` with `query=metric.name:foo`, or
grouped by an attribute with `topEvents`; `valueType` "number"); `src/sentry/search/eap/trace_metrics/
aggregates.py` (each aggregate takes the value and then the metric's name, type and unit:
`max(value,subscriptions.active,gauge,-)`; type one of counter, gauge, distribution);
`src/sentry/search/eap/trace_metrics/config.py` (one metric per query: "Cannot aggregate multiple
metrics in 1 query.").

Emulated loosely: a metric is stored at the time Relay received it (the SDK batches for up to 5 s,
which no hourly or daily bucket can tell); `query` may be empty or `metric.name:<name>`; the unit
`-` (none) matches any unit; environment is the `sentry.environment` attribute the SDK sets.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

METRIC_TYPES = ("counter", "gauge", "distribution")
_AGGREGATE = re.compile(r"^(count|sum|avg|min|max|p50|p75|p90|p95|p99)\((.*)\)$")


@dataclass(frozen=True)
class TraceMetric:
    project_id: str
    received: float
    name: str
    type: str
    value: float
    unit: str | None
    attributes: dict


def _attribute(value) -> object:
    return value.get("value") if isinstance(value, dict) else value


class TraceMetricStore:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.metrics: list[TraceMetric] = []

    def add(self, payload: dict, project_id: str, received: float) -> int:
        added = []
        for item in payload.get("items") or []:
            if item.get("type") not in METRIC_TYPES or not item.get("name"):
                continue  # Relay drops an invalid metric, the rest of the batch stays
            attributes = {k: _attribute(v) for k, v in (item.get("attributes") or {}).items()}
            added.append(TraceMetric(str(project_id), received, str(item["name"]), item["type"],
                                     float(item.get("value") or 0), item.get("unit"), attributes))
        with self._lock:
            self.metrics.extend(added)
        return len(added)


def _parse_aggregate(y_axis: str) -> tuple[str, str | None, str | None, str | None]:
    match = _AGGREGATE.match(y_axis.replace(" ", ""))
    if not match:
        raise ValueError(f"{y_axis} is not a valid function")
    function, args = match.group(1), [a for a in match.group(2).split(",")] if match.group(2) else []
    if args and args[0] != "value":
        raise ValueError(f"{y_axis}: the first argument must be value")
    name, kind, unit = (args[1:] + ["", "", ""])[:3]
    if kind and kind not in METRIC_TYPES:
        raise ValueError(f"{y_axis}: {kind} is not one of counter, gauge, distribution")
    return function, name or None, kind or None, (None if unit in ("", "-") else unit)


def _compute(function: str, values: list[float]) -> float:
    if function == "count":
        return float(len(values))
    if not values:
        return 0.0
    if function == "sum":
        return sum(values)
    if function == "avg":
        return sum(values) / len(values)
    if function == "min":
        return min(values)
    if function == "max":
        return max(values)
    ordered = sorted(values)
    quantile = int(function[1:]) / 100
    return ordered[min(len(ordered) - 1, int(quantile * len(ordered)))]


def timeseries_body(store: TraceMetricStore, project_ids: set[str], environments: list[str], params,
                    start: float, end: float, starts: list[int], interval: int, group_by: list[str],
                    top_events: int | None, exclude_other: bool) -> dict:
    y_axis = params.get("yAxis") or "count()"
    function, name, kind, unit = _parse_aggregate(y_axis)
    query = (params.get("query") or "").strip()
    if query:
        named = re.fullmatch(r"metric\.name:(\S+)", query)
        if not named:
            raise ValueError("the sandbox's tracemetrics dataset filters on metric.name:<name> only")
        if name and named.group(1) != name:
            raise ValueError("Cannot aggregate multiple metrics in 1 query.")
        name = named.group(1)
    with store._lock:
        chosen = [m for m in store.metrics
                  if m.project_id in project_ids and start < m.received <= end
                  and (not environments or m.attributes.get("sentry.environment") in environments)
                  and (name is None or m.name == name) and (kind is None or m.type == kind)
                  and (unit is None or m.unit == unit)]
    groups: dict[tuple, list[TraceMetric]] = {}
    if group_by:
        for metric in chosen:
            key = tuple(str(metric.attributes.get(g, "")) for g in group_by)
            groups.setdefault(key, []).append(metric)
        ranked = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
        series = [(key, members, False) for key, members in ranked[:top_events]]
        rest = [m for _, members in ranked[top_events:] for m in members]
        if rest and not exclude_other:
            series.append((None, rest, True))
    else:
        series = [(None, chosen, False)]
    first = starts[0]
    out = []
    for order, (key, members, is_other) in enumerate(series):
        buckets: dict[int, list[float]] = {}
        for metric in members:
            buckets.setdefault(int((metric.received - first) // interval), []).append(metric.value)
        values = [{"timestamp": s * 1000, "value": _compute(function, buckets.get(i, [])),
                   "incomplete": s + interval > end} for i, s in enumerate(starts)]
        entry = {"yAxis": y_axis, "values": values,
                 "meta": {"interval": interval * 1000, "valueType": "integer" if function == "count" else "number",
                          "valueUnit": None, "dataScanned": "full", "order": order, "isOther": is_other}}
        if group_by:
            entry["groupBy"] = [] if key is None else [{"key": g, "value": v} for g, v in zip(group_by, key)]
        out.append(entry)
    return {"timeSeries": out, "meta": {"dataset": "tracemetrics", "start": start * 1000, "end": end * 1000}}
