"""`GET O/events-timeseries/`: an aggregate bucketed over time (2026-08 spec, sentry-api.md §8.1).

    body = timeseries(backend, projects, params)      # ValueError -> 400

Parameters as the spec lists them: `dataset`, `yAxis` (one aggregate, default `count()`),
`interval` (seconds; buckets start at multiples of it, as Snuba rounds them), `query`,
`environment`, `start`/`end` or `statsPeriod`, `groupBy` + `topEvents` (1..10) + `sort`, and
`excludeOther`. Like the server, it refuses more than MAX_BUCKETS buckets in one request, so a
client asking for a week at one minute must split the range. Aggregates are the Discover table's
(`aggregate_column`), so the table, the alert engine and this endpoint agree. Timestamps are epoch
milliseconds; `meta.interval` is the bucket size in milliseconds.
"""

from __future__ import annotations

from paymon.sandbox.sentry.trace_metrics import timeseries_body
from paymon.sandbox.sentry.discover import (
    DATASET_TYPES,
    EventsTable,
    aggregate_column,
    plain_value,
)

MAX_BUCKETS = 10_000
"""Sentry's MAX_ROLLUP_POINTS: more buckets than this in one request is a 400."""
MAX_TOP_EVENTS = 10


def bucket_starts(start: float, end: float, interval: int) -> list[int]:
    first = int(start // interval) * interval
    return list(range(first, int(end), interval)) or [first]


def build_timeseries(events: list, project_slugs: dict[str, str], *, dataset: str, y_axis: str, query: str,
                     start: float, end: float, interval: int, group_by: list[str], top_events: int | None,
                     exclude_other: bool) -> dict:
    if dataset not in DATASET_TYPES:
        raise ValueError(f"dataset must be one of: {', '.join(sorted(DATASET_TYPES))}")
    if interval < 1:
        raise ValueError("Invalid interval")
    starts = bucket_starts(start, end, interval)
    if len(starts) > MAX_BUCKETS:
        raise ValueError(f"Your interval and date range would create too many results. Use a larger interval, "
                         f"or a smaller date range. ({len(starts)} > {MAX_BUCKETS} buckets)")
    column = aggregate_column(y_axis, dataset)
    table = EventsTable.build(dataset, [y_axis], query)
    chosen = [e for e in table.select(events) if start < e.received <= end]
    if group_by and top_events is None:
        raise ValueError("topEvents is required with groupBy")
    if top_events is not None and not 1 <= top_events <= MAX_TOP_EVENTS:
        raise ValueError(f"topEvents must be between 1 and {MAX_TOP_EVENTS}")
    groups: dict[tuple, list] = {}
    if group_by:
        for event in chosen:
            groups.setdefault(tuple(plain_value(event, g, project_slugs) for g in group_by), []).append(event)
        ranked = sorted(groups.items(), key=lambda item: (-len(item[1]), str(item[0])))
        top = ranked[:top_events]
        rest = [e for _, members in ranked[top_events:] for e in members]
        series = [(key, members, False) for key, members in top]
        if rest and not exclude_other:
            series.append((None, rest, True))
    else:
        series = [(None, chosen, False)]
    first = starts[0]
    value_type = column.type if column.type != "duration" else "duration"
    out = []
    for order, (key, members, is_other) in enumerate(series):
        buckets: dict[int, list] = {}
        for event in members:
            index = int((event.received - first) // interval)
            buckets.setdefault(index, []).append(event)
        values = []
        for index, bucket_start in enumerate(starts):
            value = column.compute(buckets.get(index, []))
            values.append({"timestamp": bucket_start * 1000, "value": 0 if value is None else value,
                           "incomplete": bucket_start + interval > end})
        entry = {"yAxis": y_axis, "values": values,
                 "meta": {"interval": interval * 1000, "valueType": value_type, "valueUnit": column.unit,
                          "order": order, "isOther": is_other}}
        if group_by:
            entry["groupBy"] = ([] if key is None else
                                [{"key": g, "value": v} for g, v in zip(group_by, key)])
        out.append(entry)
    return {"timeSeries": out, "meta": {"dataset": dataset, "start": start * 1000, "end": end * 1000}}


def timeseries(backend, projects: list[dict], params, start: float, end: float) -> dict:
    """The handler's work: select the visible events of the projects and environments, bucket them."""
    try:
        interval = int(params.get("interval") or 3600)
        top = params.get("topEvents")
        top_events = int(top) if top not in (None, "") else None
    except ValueError:
        raise ValueError("interval and topEvents must be integers") from None
    now = backend.sync()
    project_ids = {str(p["id"]) for p in projects}
    environments = params.getlist("environment") if hasattr(params, "getlist") else params.get("environment") or []
    if params.get("dataset") == "tracemetrics":  # the SDK's metrics, not events (trace_metrics.py)
        starts = bucket_starts(start, end, interval)
        group_by = params.getlist("groupBy") if hasattr(params, "getlist") else []
        if interval < 1 or len(starts) > MAX_BUCKETS:
            raise ValueError(f"Your interval and date range would create too many results. Use a larger interval, "
                             f"or a smaller date range. ({len(starts)} > {MAX_BUCKETS} buckets)")
        if group_by and top_events is None:
            raise ValueError("topEvents is required with groupBy")
        if top_events is not None and not 1 <= top_events <= MAX_TOP_EVENTS:
            raise ValueError(f"topEvents must be between 1 and {MAX_TOP_EVENTS}")
        return timeseries_body(backend.trace_metrics, project_ids, environments, params, start, end, starts,
                               interval, group_by, top_events,
                               str(params.get("excludeOther", "")).lower() in ("1", "true"))
    with backend._data_lock:
        events = [e for e in backend.events.visible_events(now, start, end)
                  if e.project_id in project_ids and (not environments or e.environment in environments)]
        slugs = {str(p["id"]): p["slug"] for p in backend.projects}
    group_by = params.getlist("groupBy") if hasattr(params, "getlist") else []
    return build_timeseries(events, slugs, dataset=params.get("dataset") or "errors",
                            y_axis=params.get("yAxis") or "count()", query=params.get("query") or "",
                            start=start, end=end, interval=interval, group_by=group_by, top_events=top_events,
                            exclude_other=str(params.get("excludeOther", "")).lower() in ("1", "true"))
