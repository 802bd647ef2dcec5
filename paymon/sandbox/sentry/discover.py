"""`GET O/events/`: the Discover/Explore table over stored events (sentry-api.md §8.1).

    table = EventsTable.build(dataset, fields, query)     # ValueError -> 400
    rows = table.rows(events)                             # grouped by the plain fields
    meta = table.meta()

Datasets: `errors` (error + default events), `transactions`, `discover` (both), `spans` with
`is_transaction:true` (each transaction is its segment span; `span.duration` is the transaction's
duration). Functions: count(), count_unique(x), p50/p75/p90/p95/p99/p100(duration),
percentile(duration,q), avg/min/max/sum(duration), failure_rate(), last_seen(). Row keys are the
literal field strings, durations are float milliseconds, as the server answers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from paymon.rules import query as q
from paymon.sandbox.sentry.events import StoredEvent, exceptions_of, message_of, title_of
from paymon.sandbox.sentry.ingest import iso

DATASET_TYPES = {"errors": frozenset({"error", "default"}), "transactions": frozenset({"transaction"}),
                 "discover": frozenset({"error", "default", "transaction"}),
                 "spans": frozenset({"transaction"})}
_PERCENTILES = {"p50": 0.5, "p75": 0.75, "p90": 0.9, "p95": 0.95, "p99": 0.99, "p100": 1.0}
_DURATIONS = {"transaction.duration", "span.duration"}
_FUNCTION = re.compile(r"^(\w+)\((.*)\)$")
# transaction.status values that are not failures (Sentry's failure_rate()).
_NON_FAILURE_STATUSES = {"ok", "cancelled", "unknown"}
# Discover's `timestamp.to_hour` / `timestamp.to_day`: the event time truncated, as a date.
_TRUNCATED_TIMESTAMPS = {"timestamp.to_hour": 3600, "timestamp.to_day": 86400}


def _percentile(sorted_values: list[float], quantile: float) -> float | None:
    """Linear interpolation between closest ranks (ClickHouse `quantile` behaves this way)."""
    if not sorted_values:
        return None
    position = (len(sorted_values) - 1) * quantile
    low, high = math.floor(position), math.ceil(position)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def _duration(event: StoredEvent) -> float | None:
    return event.duration_ms


def _transaction_status(event: StoredEvent) -> str:
    return str(((event.data.get("contexts") or {}).get("trace") or {}).get("status") or "unknown")


def plain_value(event: StoredEvent, name: str, project_slugs: dict[str, str]):
    data = event.data
    if name in ("id", "event_id"):
        return event.event_id
    if name in ("project", "project.name"):
        return project_slugs.get(event.project_id, event.project_id)
    if name == "project.id":
        return int(event.project_id)
    if name == "timestamp":
        return iso(data["timestamp"])
    if name == "title":
        return title_of(data)
    if name == "message":
        return message_of(data) or title_of(data)
    if name == "event.type":
        return event.type
    if name == "issue.id":
        return int(event.group_id) if event.group_id else None
    if name in _DURATIONS:
        return event.duration_ms
    if name == "error.type":
        excs = exceptions_of(data)
        return str(excs[-1].get("type")) if excs and excs[-1].get("type") else None
    if name in _TRUNCATED_TIMESTAMPS:
        step = _TRUNCATED_TIMESTAMPS[name]
        return iso(float(data["timestamp"]) // step * step)
    if name == "transaction.status":
        return _transaction_status(event)
    if name in ("transaction", "environment", "release", "level", "platform", "culprit", "dist"):
        value = data.get(name)
        return None if value in (None, "") else str(value)
    if name.startswith("user."):
        return (data.get("user") or {}).get(name[5:])
    key = q.canonical_key(name[4:-1] if name.startswith("tag[") else name)
    return (data.get("tags") or {}).get(key)


@dataclass(frozen=True)
class Column:
    field: str
    kind: str  # "plain" | "aggregate"
    compute: Callable | None = None
    type: str = "string"
    unit: str | None = None


def aggregate_column(field: str, dataset: str) -> Column:
    """A function field (`count()`, `p95(transaction.duration)`, ...) as a column; ValueError if
    the dataset cannot compute it. Shared with the alert engine, so alerts and Discover agree."""
    match = _FUNCTION.match(field.replace(" ", ""))
    if not match:
        raise ValueError(f"Unknown field: {field}")
    name, argument = match.group(1), match.group(2)
    args = [a for a in argument.split(",") if a]
    target = args[0] if args else ""
    needs_duration = name in _PERCENTILES or name in ("percentile", "avg", "min", "max", "sum")
    if needs_duration and target not in _DURATIONS:
        raise ValueError(f"{name}: unsupported argument {target!r}")
    if needs_duration and dataset == "errors":
        raise ValueError(f"{field} is not supported on the errors dataset")

    def durations(events):
        return sorted(d for d in map(_duration, events) if d is not None)

    if name == "count":
        return Column(field, "aggregate", len, "integer")
    if name == "count_unique":
        return Column(field, "aggregate",
                      lambda events: len({v for e in events
                                          if (v := plain_value(e, target, {})) not in (None, "")}), "integer")
    if name in _PERCENTILES:
        quantile = _PERCENTILES[name]
        return Column(field, "aggregate", lambda events: _percentile(durations(events), quantile),
                      "duration", "millisecond")
    if name == "percentile":
        quantile = float(args[1]) if len(args) > 1 else 0.5
        return Column(field, "aggregate", lambda events: _percentile(durations(events), quantile),
                      "duration", "millisecond")
    if name in ("avg", "min", "max", "sum"):
        reducer = {"avg": lambda v: sum(v) / len(v), "min": min, "max": max, "sum": sum}[name]
        return Column(field, "aggregate", lambda events: reducer(durations(events)) if durations(events) else None,
                      "duration", "millisecond")
    if name == "failure_rate":
        def failure_rate(events):
            transactions = [e for e in events if e.type == "transaction"]
            if not transactions:
                return 0.0
            failed = sum(1 for e in transactions if _transaction_status(e) not in _NON_FAILURE_STATUSES)
            return failed / len(transactions)
        return Column(field, "aggregate", failure_rate, "percentage")
    if name == "last_seen":
        # No matching event: Sentry answers null (an aggregate-only query still has its one row).
        return Column(field, "aggregate",
                      lambda events: iso(max(e.data["timestamp"] for e in events)) if events else None, "date")
    raise ValueError(f"Unknown function: {name}")


_PLAIN_TYPES = {"timestamp": "date", "timestamp.to_hour": "date", "timestamp.to_day": "date",
                "project.id": "integer", "issue.id": "integer",
                "transaction.duration": "duration", "span.duration": "duration"}


@dataclass
class EventsTable:
    dataset: str
    columns: list[Column]
    predicate: object
    event_types: frozenset[str]

    @classmethod
    def build(cls, dataset: str, fields: list[str], query: str) -> EventsTable:
        if dataset not in DATASET_TYPES:
            raise ValueError(f"dataset must be one of: {', '.join(sorted(DATASET_TYPES))}")
        if not fields:
            raise ValueError("No columns selected")
        if len(fields) > 20:
            raise ValueError("You can view up to 20 fields at a time. Please delete some and try again.")
        try:
            predicate = q.parse(query or "")
        except ValueError as exc:
            raise ValueError(f"Parse error: {exc}") from None
        event_types = DATASET_TYPES[dataset]
        if dataset == "spans":
            # Span queries select transactions with is_transaction:true; other spans are not stored.
            is_transaction, predicate = q.extract_field(predicate, "is_transaction")
            if is_transaction != frozenset({"true"}):
                raise ValueError("only segment spans (is_transaction:true) are stored in the sandbox")
        columns = []
        for field in fields:
            if "(" in field and not field.startswith("tags["):
                columns.append(aggregate_column(field, dataset))
            else:
                unit = "millisecond" if field in _DURATIONS else None
                columns.append(Column(field, "plain", None, _PLAIN_TYPES.get(field, "string"), unit))
        return cls(dataset, columns, predicate, event_types)

    def select(self, events: list[StoredEvent]) -> list[StoredEvent]:
        test = q.matcher(self.predicate)
        return [e for e in events if e.type in self.event_types and test(e.data)]

    def rows(self, events: list[StoredEvent], project_slugs: dict[str, str]) -> list[dict]:
        chosen = self.select(events)
        plain = [c for c in self.columns if c.kind == "plain"]
        aggregates = [c for c in self.columns if c.kind == "aggregate"]
        if not aggregates:
            return [{c.field: plain_value(e, c.field, project_slugs) for c in plain} for e in reversed(chosen)]
        groups: dict[tuple, list[StoredEvent]] = {}
        for event in chosen:
            key = tuple(plain_value(event, c.field, project_slugs) for c in plain)
            groups.setdefault(key, []).append(event)
        if not plain and not groups:
            groups[()] = []  # an aggregate-only query always answers one row
        rows = []
        for key, members in groups.items():
            row = {c.field: value for c, value in zip(plain, key)}
            for column in aggregates:
                row[column.field] = column.compute(members)
            rows.append(row)
        return rows

    def meta(self) -> dict:
        return {
            "fields": {c.field: c.type for c in self.columns},
            "units": {c.field: c.unit for c in self.columns},
            "isMetricsData": False,
            "isMetricsExtractedData": False,
            "tips": {},
            "datasetReason": "unchanged",
            "dataset": self.dataset,
        }


def sort_rows(rows: list[dict], sort: str | None, fields: list[str]) -> list[dict]:
    if not sort:
        return rows
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in fields:
        raise ValueError(f"Cannot sort by a field that is not selected: {key}")
    present = [r for r in rows if r.get(key) is not None]
    missing = [r for r in rows if r.get(key) is None]
    return sorted(present, key=lambda r: r[key], reverse=descending) + missing
