"""What the reviews read from Sentry's events API: counts per minute, and Discover tables.

    minute_counts(client, alert, project_id, start, end)         -> {minute start: count}
    minute_counts_per_issue(client, alert, project_id, start, end) -> {issue id: {minute start: count}}
    table(client, params)                                          -> every row of `O/events/`, all pages

Per-minute counts come from `GET O/events-timeseries/` (2026-08 spec) with `interval=60`: one
bucket per minute, never one row per event. The server refuses more than 10 000 buckets in one
request, so a range is read in chunks of CHUNK_SECONDS (6 days = 8640 buckets): a 7-day backtest
is two requests per alert. Per-issue counts group the series by `issue.id` with `topEvents=10`
(the endpoint's maximum) per chunk: an alert with more than ten busy issues in one chunk is
reported as truncated. Tables follow the `Link` cursors (SentryClient.paginate). Rate limits and
5xx are the client's: it retries within its deadline.
"""

from __future__ import annotations


from paymon.rules import query as q
from paymon.rules import semantics
from paymon.rules.model import Alert
from paymon.clients.sentry.api import discover_time as iso

MINUTE = 60
CHUNK_SECONDS = 6 * 86400
TOP_EVENTS = 10


def alert_query(alert: Alert) -> tuple[str, str]:
    """(dataset, search query) selecting the events the alert counts: its levels AND filter, and
    its event types where the dataset does not already imply them."""
    types = alert.event_types
    if types is not None and types <= {"transaction"}:
        dataset = "transactions"
    else:
        dataset = "errors"
    query = q.render(semantics.predicate(alert))
    if dataset == "errors" and types is not None and types != {"error", "default"}:
        wanted = sorted(types & {"error", "default"})
        type_term = f"event.type:[{','.join(wanted)}]" if len(wanted) > 1 else f"event.type:{wanted[0]}"
        query = f"{type_term} {query}".strip() if wanted else query
    return dataset, query


def _chunks(start: float, end: float):
    first = int(start // MINUTE) * MINUTE
    while first < end:
        last = min(end, first + CHUNK_SECONDS)
        yield first, last
        first = last


def _series_params(alert: Alert, project_id: str | int | None, start: float, end: float) -> dict:
    dataset, query = alert_query(alert)
    params = {"dataset": dataset, "yAxis": "count()", "interval": MINUTE, "query": query,
              "start": iso(start), "end": iso(end)}
    if project_id is not None:
        params["project"] = project_id
    if alert.environment:
        params["environment"] = alert.environment
    return params


def _values(series: dict) -> dict[int, int]:
    out = {}
    for point in series.get("values") or []:
        value = point.get("value") or 0
        if value:
            out[int(point["timestamp"] // 1000)] = int(value)
    return out


def minute_counts(client, alert: Alert, project_id, start: float, end: float) -> dict[int, int]:
    counts: dict[int, int] = {}
    for first, last in _chunks(start, end):
        body = client.get(client.org_path("events-timeseries"), params=_series_params(alert, project_id, first, last))
        for series in body.get("timeSeries") or []:
            for minute, value in _values(series).items():
                counts[minute] = counts.get(minute, 0) + value
    return counts


def minute_counts_per_issue(client, alert: Alert, project_id, start: float, end: float
                            ) -> tuple[dict[str, dict[int, int]], bool]:
    """({issue id: {minute: count}}, truncated): truncated when a chunk had more busy issues than
    the endpoint returns."""
    per_issue: dict[str, dict[int, int]] = {}
    truncated = False
    for first, last in _chunks(start, end):
        params = {**_series_params(alert, project_id, first, last), "groupBy": "issue.id",
                  "topEvents": TOP_EVENTS, "sort": "-count()", "excludeOther": 1}
        body = client.get(client.org_path("events-timeseries"), params=params)
        series_list = body.get("timeSeries") or []
        truncated = truncated or len(series_list) >= TOP_EVENTS
        for series in series_list:
            if (series.get("meta") or {}).get("isOther"):
                continue
            group = {g.get("key"): g.get("value") for g in series.get("groupBy") or []}
            issue = str(group.get("issue.id"))
            bucket = per_issue.setdefault(issue, {})
            for minute, value in _values(series).items():
                bucket[minute] = bucket.get(minute, 0) + value
    return per_issue, truncated


def table(client, dataset: str, fields: list[str], query: str, environment: str | None, start: float,
          end: float, project_id=None, sort: str | None = None) -> list[dict]:
    params = {"dataset": dataset, "field": fields, "query": query, "start": iso(start), "end": iso(end),
              "per_page": 100}
    if environment:
        params["environment"] = environment
    if project_id is not None:
        params["project"] = project_id
    if sort:
        params["sort"] = sort
    return client.paginate(client.org_path("events"), params=params, key="data")
