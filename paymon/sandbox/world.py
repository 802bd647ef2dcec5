"""The sandbox *world*: one JSON document holding everything the emulated services serve.

Top-level keys are services (`"sentry"` today; `"slack"`, `"pagerduty"`, `"app"` later). Each
service's part holds exactly the JSON the real API returns, plus `knobs` for the emulator itself
(page size, rate limits, injected failures). Shape of `world["sentry"]`:

    organization        {"id", "slug", "name"}
    projects            [ProjectSummary]                 (O/projects/)
    tokens              [{"token", "scopes": [...]}]     bearer tokens the API accepts
    members, teams      [OrganizationMember], [Team]
    legacy_alerts       "present" | "removed"            removed: P/rules/ and O/alert-rules/ answer 404
    issue_rules         {project slug: [Rule]}           legacy issue alert rules
    metric_alert_rules  [AlertRule]                      legacy metric alert rules
    detectors, workflows [Detector], [Workflow]          the workflow engine
    dashboards          [DashboardDetailsModel]          the list endpoint derives summaries
    monitors            [Monitor]; monitor_checkins {monitor slug: [CheckIn], newest first}
    integrations        [OrganizationIntegrationResponse]
    releases            [Release + "deploys": [Deploy]]  older releases (sentry/releases.py); the app's
                                       recent deploys come from its history, relative to the clock
    knobs               page_size      largest page any list serves, even if the client asks
                                       for more per_page (small values force pagination)
                        rate_limit     {"limit", "window" (s), "concurrent_limit"} per token+endpoint
                        fail           [{"path": regex?, "method"?, "status", "times"?}]: the next
                                       `times` matching requests answer `status` (no times: all)
                        error_rate     fraction of requests answering 503, drawn from Random(seed)

The golden worlds are built from the JSON files in `worlds/` (copied from real-shaped examples; the
sandbox ships with paymon and never reads anything outside the package).
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path

from paymon.errors import ConfigError

GENERATIONS = ("legacy", "workflow", "both")
WORLDS_DIR = Path(__file__).with_name("worlds")

DEFAULT_KNOBS = {
    "page_size": 100,
    # Sentry's default per-caller, per-endpoint limit is tens of requests per second.
    "rate_limit": {"limit": 40, "window": 1, "concurrent_limit": 25},
    "fail": [],
    "error_rate": 0.0,
    "seed": 0,
}

# Detector types that exist in every org whatever alerting generation it uses: one `error` and one
# `issue_stream` detector per project (created with the project) and one per cron monitor.
_ALWAYS_PRESENT_DETECTOR_TYPES = {"error", "issue_stream", "monitor_check_in_failure"}


@cache
def _read(name: str):
    return json.loads((WORLDS_DIR / name).read_text())


def _data(name: str):
    return copy.deepcopy(_read(name))


def golden_world(generation: str = "workflow") -> dict:
    """The guide's setup, correct, in one alerting API generation.

    legacy   – metric alert rules (alerts 1-5, four p95) + one issue rule (alert 6); the detectors
               endpoint only shows the per-project and cron detectors; no workflows.
    workflow – detectors + workflows; the legacy endpoints are removed (404).
    both     – dual-written, as Sentry's migration leaves a 2026 org: everything in both.
    """
    if generation not in GENERATIONS:
        raise ConfigError(f"unknown sandbox generation {generation!r}; expected one of {', '.join(GENERATIONS)}")
    org = _data("organization.json")
    project_slug = org["projects"][0]["slug"]
    legacy = generation in ("legacy", "both")
    engine = generation in ("workflow", "both")

    detectors = _data("detectors.json")
    workflows = _data("workflows.json") if engine else []
    if not engine:
        detectors = [d for d in detectors if d["type"] in _ALWAYS_PRESENT_DETECTOR_TYPES]
        for detector in detectors:
            detector["workflowIds"] = []

    sentry = {
        **org,
        "legacy_alerts": "present" if legacy else "removed",
        "issue_rules": {project_slug: _data("issue-rules.json") if legacy else []},
        "metric_alert_rules": _data("metric-alert-rules.json") if legacy else [],
        "detectors": detectors,
        "workflows": workflows,
        "dashboards": _data("dashboards.json"),
        "monitors": _data("monitors.json"),
        "monitor_checkins": _data("monitor-checkins.json"),
        "integrations": _data("integrations.json"),
        "releases": _data("releases.json"),
        "knobs": copy.deepcopy(DEFAULT_KNOBS),
    }
    from paymon.sandbox.app import golden_app_world
    from paymon.sandbox.pagerduty import golden_pagerduty_world
    from paymon.sandbox.slack import golden_slack_world
    from paymon.sandbox.gitlab import golden_gitlab_world

    return {"sentry": sentry, "slack": golden_slack_world(), "pagerduty": golden_pagerduty_world(),
            "app": golden_app_world(), "gitlab": golden_gitlab_world()}


_REQUIRED_SENTRY_KEYS = ("organization", "projects", "tokens")


def load_world(path: str | Path) -> dict:
    """Read a world file; a bad file is a ConfigError with one line saying what is wrong."""
    path = Path(path)
    try:
        world = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: world file not found") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read world file ({exc.strerror})") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(world, dict):
        raise ConfigError(f"{path}: a world is a JSON object keyed by service, got {type(world).__name__}")
    sentry = world.get("sentry")
    if sentry is not None:
        if not isinstance(sentry, dict):
            raise ConfigError(f"{path}: sentry must be an object")
        missing = [key for key in _REQUIRED_SENTRY_KEYS if key not in sentry]
        if missing:
            raise ConfigError(f"{path}: sentry.{missing[0]} is missing")
        legacy = sentry.get("legacy_alerts", "present")
        if legacy not in ("present", "removed"):
            raise ConfigError(f"{path}: sentry.legacy_alerts must be 'present' or 'removed', got {legacy!r}")
    return world


def dump_world(world: dict) -> str:
    return json.dumps(world, indent=2, sort_keys=False)
