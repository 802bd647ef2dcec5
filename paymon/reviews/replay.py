"""Replaying one alert over counts per minute: when it would have fired, and how high it got.

Semantics are paymon.rules.semantics (shared with the sandbox's alert engine); time is Sentry's
for metric alerts: the subscription is evaluated once a minute over the window that ends at that
minute, so the counts are per minute and the window rolls by a minute.

* across events (`count()` over the window, any issue): at each minute boundary t the value is the
  count in [t - window, t); a notification goes out when the level rises (ok -> warning ->
  critical) — that is a firing; dropping back to ok is a resolution, not a firing. "Any occurrence"
  alerts without a window use one minute.
* per issue: for each issue, at each minute it had events, the value is its count in the window
  ending with that minute (just that minute without a window); crossing the threshold fires unless
  the action interval (`repeat_minutes`) has not passed since that issue's last firing.

Per-issue counts are the issue's events that match the alert's filter (Sentry's frequency
condition counts all the issue's events; an issue groups events of one kind, so they rarely differ).
Per-issue timing is at minute resolution too: two events 4m50s apart in minutes five apart pass a
5-minute action interval here, not in Sentry.

A burst is therefore counted wherever it falls: split across two fixed 5-minute blocks it still
fills one rolling window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from paymon.rules import semantics
from paymon.rules.model import Alert

MINUTE = 60


@dataclass(frozen=True)
class Firing:
    at: float
    level: str
    value: float
    issue: str | None = None


@dataclass
class Replay:
    firings: list[Firing] = field(default_factory=list)
    resolutions: int = 0
    peak: float = 0.0
    peak_at: float | None = None
    matching_events: int = 0


def window_of(alert: Alert) -> int:
    return int(alert.window_seconds or MINUTE)


def replay_across_events(alert: Alert, counts: dict[int, int]) -> Replay:
    """`counts`: {minute start (epoch s): events}. Evaluates only where the value changes."""
    window = window_of(alert)
    result = Replay(matching_events=sum(counts.values()))
    changes: dict[int, int] = {}
    for minute, count in counts.items():
        if not count:
            continue
        changes[minute + MINUTE] = changes.get(minute + MINUTE, 0) + count          # enters the window
        changes[minute + MINUTE + window] = changes.get(minute + MINUTE + window, 0) - count  # leaves it
    state = semantics.IncidentState()
    value = 0
    for moment in sorted(changes):
        value += changes[moment]
        if value > result.peak:
            result.peak, result.peak_at = float(value), float(moment)
        transition = state.step(semantics.level_for(alert, value))
        if transition is None:
            continue
        previous, level = transition
        if level == "ok":
            result.resolutions += 1
        elif semantics.LEVEL_RANK[level] > semantics.LEVEL_RANK[previous]:
            result.firings.append(Firing(float(moment), level, float(value)))
    return result


def replay_per_issue(alert: Alert, per_issue: dict[str, dict[int, int]]) -> Replay:
    window = alert.window_seconds
    result = Replay(matching_events=sum(sum(c.values()) for c in per_issue.values()))
    interval = semantics.ActionInterval(alert.repeat_minutes)
    moments = sorted((minute, issue) for issue, counts in per_issue.items() for minute, n in counts.items() if n)
    for minute, issue in moments:
        counts = per_issue[issue]
        if window:
            value = sum(n for m, n in counts.items() if minute - window < m <= minute)
        else:
            value = counts[minute]
        if value > result.peak:
            result.peak, result.peak_at = float(value), float(minute)
        if semantics.crosses(alert, value) and interval.allow(issue, float(minute)):
            result.firings.append(Firing(float(minute), "critical", float(value), issue))
    return result
