"""Names in monitoring.yaml → the ids Sentry stores in alert actions.

    Slack channel "#payments-alerts"  → the Slack integration's id + the channel id "C…" (learnt from
                                        the org's existing alerts or Slack's conversations.list; when
                                        neither knows it, Sentry looks the name up when it saves)
    PagerDuty service "X"             → the PagerDuty integration's id + the row id in its
                                        `configData.service_table` (not PagerDuty's own service id)
    e-mail "on-call" / "ops@x.com"    → monitoring.yaml's recipients → team id / member's user id

What cannot be resolved is collected in `problems` (one line each) and the action is left out, so
the plan can say which alert it cannot complete and why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from paymon.findings.integrations import integrations_of
from paymon.config.spec import ActionSpec, Spec

_CHANNEL_ID = re.compile(r"^[CG][A-Z0-9]{6,}$")


@dataclass(frozen=True)
class SlackTarget:
    integration_id: str
    channel: str
    """"#payments-alerts"."""
    channel_id: str | None


@dataclass(frozen=True)
class PagerDutyTarget:
    integration_id: str
    row_id: str
    service: str
    severity: str


@dataclass(frozen=True)
class EmailTarget:
    kind: str
    """"team" or "user"."""
    identifier: str
    label: str


Target = SlackTarget | PagerDutyTarget | EmailTarget


@dataclass
class Resolver:
    spec: Spec
    members: list[dict]
    teams: list[dict]
    integrations: list[dict]
    known_channels: dict[str, str] = field(default_factory=dict)
    """"#name" → "C…", from existing alerts and (when configured) Slack."""
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    # --- integrations ----------------------------------------------------------------------------

    def slack_integration(self) -> dict | None:
        slack = integrations_of(self.integrations, "slack")
        wanted = self.spec.integrations.slack.workspace.casefold()
        return next((i for i in slack if (i.get("name") or "").casefold() == wanted), None) or (
            slack[0] if len(slack) == 1 else None)

    def _problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def _note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    # --- one action ------------------------------------------------------------------------------

    def action(self, action: ActionSpec, where: str) -> Target | None:
        if action.slack:
            return self.slack(action.slack, where)
        if action.pagerduty:
            return self.pagerduty(action.pagerduty.service, action.pagerduty.severity, where)
        return self.email(action.email, where)

    def actions(self, actions: list[ActionSpec], where: str) -> tuple[list[Target], bool]:
        """(resolved targets, whether every action resolved)."""
        targets = [self.action(a, where) for a in actions]
        return [t for t in targets if t is not None], all(t is not None for t in targets)

    def slack(self, channel: str, where: str) -> SlackTarget | None:
        integration = self.slack_integration()
        if integration is None:
            self._problem(f"{where}: Slack {channel}: no Slack integration for workspace "
                          f"{self.spec.integrations.slack.workspace!r} is installed in Sentry "
                          "(Settings → Integrations → Slack)")
            return None
        name = "#" + channel.lstrip("#")
        channel_id = self.known_channels.get(name)
        if channel_id is None:
            self._note(f"Slack {name}: channel id not known to paymon; Sentry looks it up by name when saving")
        return SlackTarget(str(integration["id"]), name, channel_id)

    def pagerduty(self, service: str, severity: str, where: str) -> PagerDutyTarget | None:
        pagerduty = integrations_of(self.integrations, "pagerduty")
        for integration in pagerduty:
            for row in (integration.get("configData") or {}).get("service_table") or ():
                if (row.get("service") or "").casefold() == service.casefold():
                    return PagerDutyTarget(str(integration["id"]), str(row["id"]), row["service"], severity)
        if not pagerduty:
            self._problem(f"{where}: PagerDuty {service!r}: no PagerDuty integration is installed in Sentry "
                          "(Settings → Integrations → PagerDuty)")
        else:
            self._problem(f"{where}: PagerDuty {service!r}: not a row of the PagerDuty integration's service "
                          "table (add the service in the integration's configuration)")
        return None

    def email(self, recipient: str, where: str) -> EmailTarget | None:
        entry = self.spec.recipients.get(recipient)
        if entry is None:
            team, member = None, recipient if "@" in recipient else None
            if member is None:
                self._problem(f"{where}: e-mail {recipient!r}: not in monitoring.yaml's recipients")
                return None
        else:
            team, member = entry.team, entry.member
        if team is not None:
            found = next((t for t in self.teams if t.get("slug") == team), None)
            if found is None:
                self._problem(f"{where}: e-mail {recipient!r}: Sentry has no team {team!r}")
                return None
            return EmailTarget("team", str(found["id"]), f"team:{team}")
        for m in self.members:
            user = m.get("user") or {}
            if (m.get("email") or user.get("email") or "").casefold() == member.casefold():
                if m.get("pending") or not user.get("id"):
                    self._problem(f"{where}: e-mail {recipient!r}: {member} has not accepted the invitation to "
                                  "Sentry yet (no user id)")
                    return None
                return EmailTarget("user", str(user["id"]), f"member:{member}")
        self._problem(f"{where}: e-mail {recipient!r}: {member} is not a member of the Sentry organisation "
                      "(Sentry e-mails members and teams only; invite them)")
        return None


def channels_from_alerts(issue_rules, metric_rules, workflows) -> dict[str, str]:
    """"#name" → "C…" pairs the org's existing alert actions already store."""
    pairs: dict[str, str] = {}

    def add(name, channel_id):
        if name and channel_id and _CHANNEL_ID.match(str(channel_id)) and not _CHANNEL_ID.match(str(name)):
            pairs.setdefault("#" + str(name).lstrip("#"), str(channel_id))

    for rule in issue_rules or ():
        for action in rule.get("actions") or ():
            add(action.get("channel"), action.get("channel_id"))
    for rule in metric_rules or ():
        for trigger in rule.get("triggers") or ():
            for action in trigger.get("actions") or ():
                if action.get("type") == "slack":
                    add(action.get("targetIdentifier"), action.get("inputChannelId"))
    for workflow in workflows or ():
        for group in workflow.get("actionFilters") or ():
            for action in group.get("actions") or ():
                if action.get("type") == "slack":
                    config = action.get("config") or {}
                    add(config.get("targetDisplay"), config.get("targetIdentifier"))
    return pairs


def channels_from_slack(reader) -> dict[str, str]:
    return {"#" + c["name"]: c["id"] for c in reader.channels() if c.get("name") and c.get("id")}
