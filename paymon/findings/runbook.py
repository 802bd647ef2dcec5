"""§6 "Operations Runbook" as a checked document: its sections, its review date, and the links the
alerts carry to it.

- Documented with response procedures (§9): a section for every alert's `runbook:` anchor and every
  procedure monitoring.yaml lists (§6's five), each with numbered steps.
- Reviewed by team (§7 pre-deployment): the runbook's own "Last reviewed: YYYY-MM-DD" line is at
  most `runbook.reviewed_within` old, judged on the run's clock (the serving side's `Date`).
- Each alert links to its section where Sentry carries text with the alert. An issue alert's Slack
  action has `notes`, which Sentry renders into the Slack message; a metric alert's (or metric
  detector's) `description` is shown on the alert's page in Sentry, which the Slack message links
  to, but does not reach Slack itself (the block behind `organizations:slack-metric-alert-
  description` is gone from `message_builder/incidents.py`). So: notes for issue alerts, the
  description for metric alerts. The alert's name stays the guide's: every check and the drill
  find alerts by name.

Anchors are GitLab's heading ids (docs.gitlab.com/user/markdown/#heading-ids-and-links): lower case,
everything but letters, digits, spaces, hyphens and underscores dropped, spaces to hyphens, runs of
hyphens to one; a repeated heading gets -1, -2.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

from paymon.config.spec import AlertSpec, RunbookSpec, Spec
from paymon.findings.model import Finding
from paymon.rules.model import Alert

_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_STEP = re.compile(r"^ {0,3}(\d{1,3})[.)]\s+\S")
_REVIEWED = re.compile(r"last\s+reviewed\b(.*)", re.IGNORECASE)
_ISO_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")


def heading_anchor(title: str) -> str:
    text = re.sub(r"<[^>]+>", "", title).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    text = text.replace(" ", "-")
    return re.sub(r"-{2,}", "-", text)


@dataclass
class Section:
    title: str
    anchor: str
    level: int
    lines: list[str] = field(default_factory=list)
    start: int = 0
    """Index of its heading line in the document; its lines follow it."""
    steps: int = 0
    """Numbered list items in the section (its sub-sections included; not inside code blocks)."""


@dataclass
class Runbook:
    sections: dict[str, Section]
    last_reviewed: date | None
    reviewed_text: str | None
    """The line that says when it was last reviewed, for messages."""


def parse_runbook(text: str) -> Runbook:
    sections: dict[str, Section] = {}
    open_sections: list[Section] = []
    seen: dict[str, int] = {}
    in_fence = False
    last_reviewed, reviewed_text = None, None
    for number, line in enumerate(text.splitlines()):
        if _FENCE.match(line):
            in_fence = not in_fence
        heading = None if in_fence else _HEADING.match(line)
        if heading:
            level, title = len(heading.group(1)), heading.group(2)
            anchor = base = heading_anchor(title)
            if base in seen:
                seen[base] += 1
                anchor = f"{base}-{seen[base]}"
            else:
                seen[base] = 0
            section = Section(title, anchor, level, start=number)
            sections[anchor] = section
            open_sections = [s for s in open_sections if s.level < level] + [section]
            continue
        step = not in_fence and _STEP.match(line)
        for section in open_sections:
            section.lines.append(line)
            section.steps += bool(step)
        match = None if in_fence else _REVIEWED.search(line)
        if match and last_reviewed is None:
            reviewed_text = line.strip()
            when = _ISO_DATE.search(match.group(1))
            try:
                last_reviewed = date.fromisoformat(when.group(1)) if when else None
            except ValueError:  # 2026-02-30
                pass
    return Runbook(sections, last_reviewed, reviewed_text)


def anchors_owed(spec: Spec) -> dict[str, list[str]]:
    """Every anchor the runbook must hold -> who needs it (alerts by name, "§6 procedure")."""
    owed: dict[str, list[str]] = {}
    for alert in spec.alerts:
        if alert.runbook.startswith("#"):
            owed.setdefault(alert.runbook, []).append(alert.name)
    for anchor in spec.runbook.procedures:
        owed.setdefault(anchor, []).append("§6 procedure")
    return owed


def procedure_findings(spec: Spec, runbook: Runbook, where: str) -> list[Finding]:
    """§9 "Operations runbook documented with response procedures"."""
    findings = []
    present = ", ".join(f"#{a}" for a, s in runbook.sections.items() if s.level >= 2) or "none"
    for anchor, owners in anchors_owed(spec).items():
        section = runbook.sections.get(anchor.lstrip("#"))
        who = f"runbook {anchor} (for {', '.join(owners)})"
        if section is None:
            findings.append(Finding(who, "section", "present", f"missing (sections: {present})", "field", where,
                                    "add a heading whose id is the anchor, with the numbered response steps"))
        elif section.steps == 0:
            findings.append(Finding(who, "numbered steps", "at least 1", "0", "field", where,
                                    f"section {section.title!r} has no numbered list (1. ... 2. ...)"))
    return findings


def review_findings(spec: RunbookSpec, runbook: Runbook, now: float, where: str) -> list[Finding]:
    """§7 "Operations runbook reviewed by team": its own last-reviewed line, within the period."""
    limit_days = spec.reviewed_within / 86400
    if runbook.last_reviewed is None:
        actual = f"unreadable ({runbook.reviewed_text!r})" if runbook.reviewed_text else "no such line"
        return [Finding("runbook", "'Last reviewed: YYYY-MM-DD' line", f"within {limit_days:g} days", actual,
                        "field", where, "the team records each review in the runbook itself")]
    today = datetime.fromtimestamp(now, timezone.utc).date()
    age = (today - runbook.last_reviewed).days
    if age > limit_days:
        return [Finding("runbook", "last reviewed", f"within {limit_days:g} days (since "
                        f"{date.fromordinal(today.toordinal() - int(limit_days)).isoformat()})",
                        f"{runbook.last_reviewed.isoformat()}, {age} days before {today.isoformat()}", "field",
                        where, "review it with the team and update the line")]
    if age < -1:  # a day of slack for time zones
        return [Finding("runbook", "last reviewed", f"on or before {today.isoformat()}",
                        f"{runbook.last_reviewed.isoformat()} (in the future)", "field", where)]
    return []


def link_findings(alert_spec: AlertSpec, alert: Alert, raw: dict, spec: Spec) -> list[Finding]:
    """The alert carries its runbook link where Sentry keeps text with it (see the module's note)."""
    if not alert_spec.runbook:
        return []
    link = spec.runbook_link(alert_spec.runbook)
    ids = set(alert.raw_ids)
    kind = alert.source.split(" ", 1)[0]
    if kind == "metric_alert":
        places = [("description", r.get("description"), f"metric_alert {r.get('id')}")
                  for r in raw.get("metric_rules") or [] if str(r.get("id")) in ids]
        hint = _DESCRIPTION_HINT
    elif kind == "detector":
        places = [("description", d.get("description"), f"detector {d.get('id')}")
                  for d in raw.get("detectors") or [] if str(d.get("id")) in ids]
        hint = _DESCRIPTION_HINT
    elif kind == "issue_rule":
        places = [("Slack notes", a.get("notes"), f"issue_rule {r.get('id')}")
                  for rules in _rule_lists(raw.get("issue_rules")) for r in rules if str(r.get("id")) in ids
                  for a in r.get("actions") or [] if str(a.get("id", "")).endswith("SlackNotifyServiceAction")]
        hint = _NOTES_HINT
    else:  # a workflow on the project's issue detectors: an issue alert
        places = [("Slack notes", (a.get("data") or {}).get("notes"), f"workflow {w.get('id')}")
                  for w in raw.get("workflows") or [] if str(w.get("id")) in ids
                  for group in w.get("actionFilters") or [] for a in group.get("actions") or []
                  if a.get("type") == "slack"]
        hint = _NOTES_HINT
    if not places:
        return [Finding(alert_spec.name, "runbook link", link, "nowhere to carry it (no Slack action)", "field",
                        alert.source, hint)]
    return [Finding(alert_spec.name, f"runbook link in {field_name}", link, repr(text or ""), "field", source, hint)
            for field_name, text, source in places if link not in (text or "")]


_DESCRIPTION_HINT = ("a metric alert's description is shown on its Sentry page, which the Slack message links to "
                     "(Sentry does not put it into the Slack message)")
_NOTES_HINT = "an issue alert's Slack notes are rendered into the Slack message"


def _rule_lists(issue_rules) -> list[list[dict]]:
    if isinstance(issue_rules, dict):
        return list(issue_rules.values())
    return [issue_rules or []]


# --- §7 Ongoing "Update runbook as new issues discovered" -------------------------------------------

def section_changed_at(section: Section, line_stamps: list[float]) -> float | None:
    """When the section (heading and body, sub-sections included) last changed, from per-line history."""
    stamps = line_stamps[section.start:section.start + 1 + len(section.lines)]
    return max(stamps) if stamps else None


RUNBOOK_UNLEARNT = "runbook_unlearnt"
"""The measurement kind the weekly page lists: an alert that fired since its runbook section changed."""


@dataclass(frozen=True)
class UnlearntAlert:
    alert: str
    anchor: str
    changed_at: float
    fired_at: list[float]

    def measurement(self) -> dict:
        return {"kind": RUNBOOK_UNLEARNT, "alert": self.alert, "anchor": self.anchor,
                "section_changed_at": round(self.changed_at), "firings": len(self.fired_at),
                "last_fired_at": round(self.fired_at[-1]) if self.fired_at else None}


def update_findings(spec: Spec, runbook: Runbook, line_stamps: list[float], firings: dict[str, list[float] | None],
                    after_firings: int) -> tuple[list[str], list[UnlearntAlert]]:
    """Alerts that fired at least `after_firings` times since their runbook section last changed:
    what happened is not in the runbook yet. `firings`: alert -> when it fired (None: not known,
    e.g. an issue alert, which keeps no incident log)."""
    lines, listed = [], []
    for alert in spec.alerts:
        section = runbook.sections.get(alert.runbook.lstrip("#"))
        fired = firings.get(alert.name)
        if section is None or fired is None:
            continue
        changed = section_changed_at(section, line_stamps)
        since = sorted(t for t in fired if changed is None or t > changed)
        if since:
            listed.append(UnlearntAlert(alert.name, alert.runbook, changed or 0.0, since))
        if len(since) >= after_firings:
            lines.append(f"{alert.name}: fired {len(since)} time(s) since its runbook section {alert.runbook} last "
                         f"changed ({_date(changed)}), last on {_date(since[-1])}: add what was learnt")
    return lines, listed


def _date(epoch: float | None) -> str:
    return "never" if epoch is None else datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
