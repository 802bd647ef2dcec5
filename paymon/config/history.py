"""Earlier runs' summaries (runs.jsonl: one verdict.json per line, the history the `pages` job
carries), read for what a run needs of them: the day's spent budgets (paymon.delivery.actions) and
the probe samples pooled into one p95 per endpoint (paymon.probes.latency.pooled_p95)."""

from __future__ import annotations

import json
from pathlib import Path

from paymon.errors import ConfigError


def read_runs(path: str | Path | None) -> tuple[list[dict], str | None]:
    """The runs recorded at `path` (runs.jsonl, or a directory: every runs.jsonl under it, each run
    once by its start stamp) and where they came from; ([], None) when there is no such file. Lines that are not a JSON object are skipped, as the
    weekly page skips them: one torn write must not stop a gate."""
    if not path:
        return [], None
    path = Path(path)
    files = sorted(path.rglob("runs.jsonl")) if path.is_dir() else [path]
    runs: dict[float, dict] = {}  # copies of one history (the artifact's, the site's) hold a run once
    found = []
    for file in files:
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"PAYMON_HISTORY: cannot read {file} ({getattr(exc, 'strerror', None) or exc})") from None
        found.append(str(file))
        for line in lines:
            try:
                run = json.loads(line)
            except ValueError:
                continue
            if isinstance(run, dict) and isinstance(run.get("started"), (int, float)):
                runs.setdefault(run["started"], run)
    if not found:
        return [], None
    return list(runs.values()), ", ".join(found)


def same_target(run: dict, target: str, org: str) -> bool:
    env = run.get("environment") or {}
    return env.get("target") == target and env.get("org") == org


def pooled_samples(runs: list[dict], endpoint: str, *, since: float, until: float, target: str,
                   org: str) -> tuple[list[float], int]:
    """Every successful probe sample of `endpoint` that earlier runs against the same target and
    org recorded between `since` and `until`, and how many runs they came from."""
    values: list[float] = []
    count = 0
    for run in runs:
        if not (since <= run["started"] <= until and same_target(run, target, org)):
            continue
        found = False
        for m in run.get("measurements") or []:
            if isinstance(m, dict) and m.get("kind") == "p95" and m.get("endpoint") == endpoint:
                samples = [v for v in m.get("values_ms") or [] if isinstance(v, (int, float)) and v >= 0]
                values += samples
                found = found or bool(samples)
        count += found
    return values, count
