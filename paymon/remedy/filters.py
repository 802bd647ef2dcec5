"""monitoring.yaml's filter (a query predicate) as the filter list of a per-issue alert.

Issue alerts (legacy issue rules and issue-alert workflows) have no query: they have a flat list of
filters — tag equals, message contains, level — combined all-or-any. `issue_filters()` turns a
predicate into such a list, or raises `Unexpressible` naming what the form cannot say (an OR group
ANDed with a level, nested groups, wildcards other than "contains").
"""

from __future__ import annotations

from dataclasses import dataclass

from paymon.rules import query as q

LEVEL_NUMBERS = {"fatal": 50, "error": 40, "warning": 30, "info": 20, "debug": 10}
_LEVEL_ORDER = ["debug", "info", "warning", "error", "fatal"]


class Unexpressible(ValueError):
    """The alert cannot be written in this form; the message says why."""


@dataclass(frozen=True)
class IssueFilter:
    kind: str
    """"tagged_event", "event_attribute" or "level"."""
    params: dict


def _term_filter(term: q.Term) -> IssueFilter:
    if term.key == "message" and term.op == "contains":
        return IssueFilter("event_attribute", {"attribute": "message", "match": "nc" if term.negated else "co",
                                               "value": term.value})
    if term.op == "eq" and term.key not in ("message", "level", "event.type"):
        return IssueFilter("tagged_event", {"key": term.key, "match": "ne" if term.negated else "eq",
                                            "value": term.value})
    if term.op == "has":
        return IssueFilter("tagged_event", {"key": term.key, "match": "ns" if term.negated else "is", "value": ""})
    raise Unexpressible(f"an issue alert filter cannot say {q.render(term)!r}")


def level_filter(levels: frozenset[str]) -> IssueFilter | None:
    if not levels:
        return None
    chosen = sorted(levels, key=_LEVEL_ORDER.index)
    if len(chosen) == 1:
        return IssueFilter("level", {"match": "eq", "level": LEVEL_NUMBERS[chosen[0]]})
    low, high = _LEVEL_ORDER.index(chosen[0]), _LEVEL_ORDER.index(chosen[-1])
    if chosen == _LEVEL_ORDER[low:high + 1] and chosen[-1] == "fatal":
        return IssueFilter("level", {"match": "gte", "level": LEVEL_NUMBERS[chosen[0]]})
    if chosen == _LEVEL_ORDER[low:high + 1] and chosen[0] == "debug":
        return IssueFilter("level", {"match": "lte", "level": LEVEL_NUMBERS[chosen[-1]]})
    raise Unexpressible(f"a level filter cannot select exactly {', '.join(chosen)}")


def issue_filters(levels: frozenset[str], pred: q.Predicate) -> tuple[str, list[IssueFilter]]:
    """(filterMatch "all"/"any", filters) meaning `levels AND pred`."""
    level = level_filter(levels)
    if pred is None:
        return "all", [level] if level else []
    if isinstance(pred, q.Term):
        return "all", [f for f in (level, _term_filter(pred)) if f]
    if any(not isinstance(item, q.Term) for item in pred.items):
        raise Unexpressible(f"issue alert filters are one flat all/any list; {q.render(pred)!r} nests groups")
    filters = [_term_filter(item) for item in pred.items]
    if isinstance(pred, q.And):
        return "all", [f for f in (level, *filters) if f]
    if level is not None:
        raise Unexpressible("an issue alert cannot AND a level with an OR group (filterMatch 'any' ORs the "
                            "level too)")
    return "any", filters
