"""Cron check-ins from the SDK (`capture_checkin`, `@monitor`) applied to monitors (sentry-api.md §6).

    apply_checkin(monitors, checkins_by_slug, item, project, now) -> the stored check-in or None

What the monitors consumer does, in the API's units: ingest `duration` seconds -> `duration`
milliseconds; 32-hex `check_in_id` -> dashed UUID `id`; `monitor_config.schedule {type, value}` ->
`config.schedule_type` + `config.schedule`; a `monitor_config` upserts the monitor (created with
name = slug); an all-zero `check_in_id` updates the latest in-progress check-in; a check-in for an
unknown monitor without config is dropped, as Sentry drops it.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from paymon.sandbox.sentry.ingest import iso

_ZERO_ID = "0" * 32
_CONFIG_DEFAULTS = {"checkin_margin": 1, "max_runtime": 30, "timezone": "UTC", "failure_issue_threshold": 1,
                    "recovery_threshold": 1, "alert_rule_id": None}
_INTERVAL_UNITS = {"minute": 60, "hour": 3600, "day": 86400, "week": 604800, "month": 2592000, "year": 31536000}


def dashed(check_in_id: str | None) -> str:
    try:
        return str(uuid.UUID(hex=str(check_in_id)))
    except (ValueError, TypeError):
        return str(uuid.uuid4())


def api_config(ingest_config: dict, previous: dict | None = None) -> dict:
    """The SDK's `monitor_config` in the API's `config` shape."""
    config = {**_CONFIG_DEFAULTS, **(previous or {})}
    schedule = ingest_config.get("schedule") or {}
    if schedule:
        kind = schedule.get("type", "crontab")
        config["schedule_type"] = kind
        value = schedule.get("value")
        config["schedule"] = [int(value), str(schedule.get("unit", "day"))] if kind == "interval" else str(value)
    for key in ("checkin_margin", "max_runtime", "timezone", "failure_issue_threshold", "recovery_threshold"):
        if ingest_config.get(key) is not None:
            config[key] = ingest_config[key]
    return config


# --- schedules -------------------------------------------------------------------------------------


def _cron_field(text: str, low: int, high: int) -> set[int]:
    values: set[int] = set()
    for part in text.split(","):
        step = 1
        if "/" in part:
            part, step_text = part.split("/", 1)
            step = int(step_text)
        if part in ("*", ""):
            start, end = low, high
        elif "-" in part:
            start, end = (int(x) for x in part.split("-", 1))
        else:
            start = end = int(part)
            if step != 1:
                end = high
        values.update(range(start, end + 1, step))
    return values


def _cron_matches(fields, moment: datetime) -> bool:
    minutes, hours, days, months, weekdays, day_restricted, weekday_restricted = fields
    if moment.minute not in minutes or moment.hour not in hours or moment.month not in months:
        return False
    day_ok = moment.day in days
    weekday_ok = (moment.isoweekday() % 7) in weekdays
    if day_restricted and weekday_restricted:  # cron's rule: either day field may match
        return day_ok or weekday_ok
    return day_ok and weekday_ok


def _parse_crontab(expression: str):
    parts = expression.split()
    if len(parts) != 5:
        raise ValueError(f"not a 5-field crontab: {expression!r}")
    weekdays = {d % 7 for d in _cron_field(parts[4], 0, 7)}
    return (_cron_field(parts[0], 0, 59), _cron_field(parts[1], 0, 23), _cron_field(parts[2], 1, 31),
            _cron_field(parts[3], 1, 12), weekdays, parts[2] != "*", parts[4] != "*")


def schedule_tick(config: dict, now: float, direction: int) -> float | None:
    """The latest scheduled time <= now (direction -1) or the next one > now (+1), in UTC
    (the monitor's `timezone` is assumed UTC, like every monitor of the golden world)."""
    schedule = config.get("schedule")
    if config.get("schedule_type") == "interval" and isinstance(schedule, list) and len(schedule) == 2:
        period = int(schedule[0]) * _INTERVAL_UNITS.get(str(schedule[1]).rstrip("s"), 86400)
        floor = (now // period) * period
        return floor if direction < 0 else floor + period
    try:
        fields = _parse_crontab(str(schedule))
    except ValueError:
        return None
    moment = datetime.fromtimestamp(now, tz=timezone.utc).replace(second=0, microsecond=0)
    if direction > 0:
        moment += timedelta(minutes=1)
    step = timedelta(minutes=direction)
    for _ in range(60 * 24 * 366):  # a year of minutes at most
        if _cron_matches(fields, moment):
            return moment.timestamp()
        moment += step
    return None


# --- applying a check-in ---------------------------------------------------------------------------


def _environment(monitor: dict, name: str, now: float) -> dict:
    for env in monitor.setdefault("environments", []):
        if env.get("name") == name:
            return env
    env = {"name": name, "status": "active", "isMuted": False, "dateCreated": iso(now), "lastCheckIn": None,
           "nextCheckIn": None, "nextCheckInLatest": None, "activeIncident": None}
    monitor["environments"].append(env)
    return env


def _new_monitor(slug: str, project: dict, config: dict, now: float) -> dict:
    return {"id": str(uuid.uuid4()), "name": slug, "slug": slug, "status": "active", "isMuted": False,
            "isUpserting": True, "config": config, "dateCreated": iso(now), "project": project,
            "environments": [], "owner": None}


def apply_checkin(monitors: list[dict], checkins_by_slug: dict[str, list[dict]], item: dict,
                  project: dict, now: float) -> dict | None:
    slug = str(item.get("monitor_slug") or "")
    if not slug:
        return None
    monitor = next((m for m in monitors if m.get("slug") == slug
                    and str(m["project"]["id"]) == str(project["id"])), None)
    ingest_config = item.get("monitor_config") if isinstance(item.get("monitor_config"), dict) else None
    if monitor is None:
        if ingest_config is None:
            return None  # unknown monitor, nothing to upsert it from: the consumer drops it
        monitor = _new_monitor(slug, project, api_config(ingest_config), now)
        monitors.append(monitor)
    elif ingest_config is not None:
        monitor["config"] = api_config(ingest_config, monitor.get("config"))

    environment = str(item.get("environment") or "production")
    env = _environment(monitor, environment, now)
    status = str(item.get("status") or "unknown")
    duration = item.get("duration")
    duration_ms = None if duration is None else int(round(float(duration) * 1000))
    checkins = checkins_by_slug.setdefault(slug, [])
    raw_id = str(item.get("check_in_id") or "").replace("-", "").lower()

    existing = None
    if raw_id == _ZERO_ID:
        existing = max((c for c in checkins if c["status"] == "in_progress" and c["environment"] == environment),
                       key=lambda c: c["dateCreated"], default=None)
    elif raw_id:
        existing = next((c for c in checkins if c["id"] == dashed(raw_id)), None)

    config = dict(monitor["config"])
    if existing is not None and existing["status"] == "in_progress":
        existing["status"] = status
        existing["dateUpdated"] = iso(now)
        if duration_ms is None and status != "in_progress":
            started = existing.get("_started", now)
            duration_ms = int(round((now - started) * 1000))
        existing["duration"] = duration_ms
        checkin = existing
    else:
        expected = schedule_tick(config, now + 60 * float(config.get("checkin_margin") or 0), -1)
        checkin = {
            "id": dashed(raw_id if raw_id and raw_id != _ZERO_ID else None),
            "environment": environment,
            "status": status,
            "duration": duration_ms,
            "dateCreated": iso(now),
            "dateAdded": iso(now),
            "dateUpdated": iso(now),
            "dateInProgress": iso(now) if status == "in_progress" else None,
            "dateClock": iso(int(now // 60) * 60, micro=False),
            "expectedTime": iso(expected, micro=False),
            "monitorConfig": config,
            "_started": now,
        }
        checkins.append(checkin)

    if status in ("ok", "error"):
        env["status"] = status
    elif env.get("status") in (None, "active"):
        env["status"] = "active"
    env["lastCheckIn"] = iso(now)
    following = schedule_tick(config, now, +1)
    env["nextCheckIn"] = iso(following, micro=False)
    margin = float(config.get("checkin_margin") or 0) * 60
    env["nextCheckInLatest"] = iso(following + margin, micro=False) if following is not None else None
    return checkin


def public_checkin(checkin: dict) -> dict:
    """The check-in without the consumer's private bookkeeping."""
    return {k: v for k, v in checkin.items() if not k.startswith("_")}
