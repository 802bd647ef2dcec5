"""Slack and PagerDuty integrations installed in the Sentry organisation."""

from __future__ import annotations

from paymon.findings.model import Finding
from paymon.config.spec import PagerDutyIntegrationSpec, SlackIntegrationSpec


def integrations_of(integrations: list[dict], provider: str) -> list[dict]:
    return [i for i in integrations if (i.get("provider") or {}).get("key") == provider]


def _health(name: str, integration: dict) -> list[Finding]:
    source = f"integration {integration.get('id')}"
    findings = []
    for field in ("status", "organizationIntegrationStatus"):
        if integration.get(field) != "active":
            findings.append(Finding(name, field, "active", str(integration.get(field)), "field", source,
                                    "alerts through a disabled integration are silently dropped"))
    if "alert-rule" not in ((integration.get("provider") or {}).get("features") or ["alert-rule"]):
        findings.append(Finding(name, "features", "alert-rule", "missing", "field", source))
    return findings


def compare_slack(spec: SlackIntegrationSpec, integrations: list[dict]) -> list[Finding]:
    name = f"Slack workspace {spec.workspace}"
    slack = integrations_of(integrations, "slack")
    match = [i for i in slack if (i.get("name") or "").casefold() == spec.workspace.casefold()]
    if not match:
        installed = ", ".join(repr(i.get("name")) for i in slack) or "none"
        return [Finding(name, "installed", spec.workspace, f"not installed (Slack workspaces: {installed})",
                        "field", "integrations", "Settings -> Integrations -> Slack -> Add Workspace")]
    return _health(name, match[0])


def compare_pagerduty(spec: PagerDutyIntegrationSpec, integrations: list[dict]) -> list[Finding]:
    name = f"PagerDuty service {spec.service}"
    pagerduty = integrations_of(integrations, "pagerduty")
    if not pagerduty:
        return [Finding(name, "installed", "PagerDuty integration", "not installed", "field", "integrations",
                        "Settings -> Integrations -> PagerDuty")]
    for integration in pagerduty:
        table = (integration.get("configData") or {}).get("service_table") or []
        if any((row.get("service") or "").casefold() == spec.service.casefold() for row in table):
            return _health(name, integration)
    services = sorted({row.get("service") for i in pagerduty
                       for row in (i.get("configData") or {}).get("service_table") or []})
    return [Finding(name, "service", spec.service,
                    f"not in the integration's service table ({', '.join(map(repr, services)) or 'empty'})",
                    "field", f"integration {pagerduty[0].get('id')}")]
