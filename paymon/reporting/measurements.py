"""What a run measured, kept in its summary (verdict.json, then runs.jsonl) for the weekly page's
trends: each p95 against its budgets, each delivery against its deadline, and the failures by
category.

A measurement is taken where the check ran (an xdist worker) and travels to the controller as one
JSON user property (MEASUREMENT_PROPERTY), which JUnit keeps too.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable

from paymon.reporting.results_files import CATEGORIES
from paymon.reporting.timeline import Timeline

MEASUREMENT_PROPERTY = "paymon_measurement"
P95, DELIVERY = "p95", "delivery"
UNCATEGORISED = "Other"


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def p95_measurement(endpoint: str, report) -> dict:
    low, high = report.p95_ci_ms
    budget = report.budget
    return {"kind": P95, "endpoint": endpoint, "p95_ms": _round(report.p95_ms), "ci_low_ms": _round(low),
            "ci_high_ms": _round(high), "samples": report.samples, "verdict": report.verdict,
            "warning_ms": budget.warning_ms if budget else None,
            "critical_ms": budget.critical_ms if budget else None,
            # The samples themselves (finite: a timeout is not a latency), for later runs to pool.
            "values_ms": [round(v, 1) for v in report.sorted_ms if math.isfinite(v)]}


def delivery_measurement(route: str, timeline: Timeline) -> dict:
    """The first step is the delivery the check judges (Slack message, PagerDuty incident)."""
    return {"kind": DELIVERY, "route": route, "deadline_s": timeline.deadline_s,
            "seconds": _round(timeline.steps[0].seconds) if timeline.steps else None,
            "steps": {s.what: _round(s.seconds) for s in timeline.steps}}


def encode(measurement: dict) -> str:
    return json.dumps(measurement, separators=(",", ":"))


def decode(value: object) -> dict | None:
    try:
        measurement = json.loads(value) if isinstance(value, str) else None
    except ValueError:
        return None
    return measurement if isinstance(measurement, dict) and "kind" in measurement else None


def category_of(message: str) -> str:
    """The failure's Allure category (results_files.CATEGORIES, first match wins), by its message."""
    for category in CATEGORIES:
        if re.search(category.pattern, message or ""):
            return category.name
    return UNCATEGORISED


def failures_by_category(failure_messages: Iterable[str]) -> dict[str, int]:
    return dict(Counter(category_of(m) for m in failure_messages))
