"""What sits on an alert's way out and that `paymon apply` cannot change through Sentry's API.

    Sentry's Slack / PagerDuty integrations    installed and active (Sentry: Settings → Integrations)
    the Slack channels                         exist, not archived, Sentry's bot a member (Slack)
    the PagerDuty service                      enabled, not in maintenance, someone on call, urgency
    the routing key in Sentry's service table  known to the PagerDuty service (else events go nowhere)

Each is one line for the plan's "problems apply cannot fix". Slack and PagerDuty are read only when
their settings are there (SLACK_BOT_TOKEN, PAGERDUTY_API_TOKEN, as for `pytest --target live`);
otherwise the plan notes what it did not look at.
"""

from __future__ import annotations

from paymon.findings import integrations
from paymon.errors import PaymonError
from paymon.findings.readiness import pagerduty_service_findings, slack_channel_findings
from paymon.config.spec import Spec


def integration_problems(spec: Spec, installed: list[dict]) -> list[str]:
    findings = integrations.compare_slack(spec.integrations.slack, installed)
    if spec.integrations.pagerduty is not None:
        findings += integrations.compare_pagerduty(spec.integrations.pagerduty, installed)
    return [f"{f.line()} — Sentry: Settings → Integrations" for f in findings]


def slack_problems(spec: Spec, reader) -> list[str]:
    problems = []
    for channel in spec.channels:
        try:
            findings = slack_channel_findings(channel.name, reader, spec.integrations.slack.sentry_bot_user)
        except PaymonError as exc:
            return [f"Slack: could not check the channels: {exc}"]
        problems += [f"Slack {f.line()}" for f in findings]
    return problems


def pagerduty_problems(spec: Spec, client, installed: list[dict]) -> list[str]:
    if spec.delivery.pagerduty is None:
        return []
    try:
        problems = [f"PagerDuty {f.line()}" for f in pagerduty_service_findings(spec.delivery.pagerduty, client)]
        problems += routing_key_problems(spec, client, installed)
    except PaymonError as exc:
        return [f"PagerDuty: could not check the service: {exc}"]
    return problems


def routing_key_problems(spec: Spec, client, installed: list[dict]) -> list[str]:
    """Sentry sends a PagerDuty alert with the integration key in its service table; a key the
    service no longer has (a rotated or deleted integration) makes every page vanish."""
    name = spec.delivery.pagerduty.service
    service = client.find_service(name)
    if service is None:
        return []
    detail = client.get(f"services/{service['id']}", params={"include[]": "integrations"}).get("service") or {}
    keys = {i.get("integration_key") for i in detail.get("integrations") or () if i.get("integration_key")}
    problems = []
    for integration in integrations.integrations_of(installed, "pagerduty"):
        for row in (integration.get("configData") or {}).get("service_table") or ():
            if (row.get("service") or "").casefold() == name.casefold() and row.get("integration_key") not in keys:
                problems.append(f"PagerDuty service {name}: the integration key in Sentry's service table (row "
                                f"{row.get('id')}) is not an integration of the PagerDuty service — pages go "
                                "nowhere; re-add the service in Sentry's PagerDuty integration with a current key")
    return problems
