"""The reconciliation cron monitor: compare Sentry's monitor with monitoring.yaml."""

from __future__ import annotations

from paymon.findings.model import Finding
from paymon.config.spec import CronSpec


def _normalise_schedule(schedule: object) -> str:
    if isinstance(schedule, str):
        return " ".join(schedule.split())
    return str(schedule)


def compare_monitor(spec: CronSpec, monitor: dict | None) -> list[Finding]:
    if monitor is None:
        return [Finding(spec.name, "cron monitor", f"slug {spec.slug!r}", "missing", "field", "monitors",
                        "create it in Crons, or let the job's first check-in upsert it")]
    source = f"monitor {monitor.get('slug')}"
    config = monitor.get("config") or {}
    findings = []
    if monitor.get("status") != "active":
        findings.append(Finding(spec.name, "status", "active", str(monitor.get("status")), "field", source))
    if monitor.get("isMuted"):
        findings.append(Finding(spec.name, "muted", "false", "true", "field", source,
                                "a muted monitor opens no issue when the job stops running"))
    if config.get("schedule_type") != "crontab":
        findings.append(Finding(spec.name, "schedule type", "crontab", str(config.get("schedule_type")),
                                "field", source))
    actual_schedule = _normalise_schedule(config.get("schedule"))
    if actual_schedule != _normalise_schedule(spec.schedule):
        findings.append(Finding(spec.name, "schedule", spec.schedule, actual_schedule, "field", source))
    if (config.get("timezone") or "UTC") != spec.timezone:
        findings.append(Finding(spec.name, "timezone", spec.timezone, str(config.get("timezone")),
                                "field", source))
    if spec.environment:
        envs = [e.get("name") for e in monitor.get("environments") or [] if isinstance(e, dict)]
        # A monitor that has never checked in has no environments yet; that is not drift.
        if envs and spec.environment not in envs:
            findings.append(Finding(spec.name, "environment", spec.environment, ", ".join(envs), "field",
                                    source))
    return findings
