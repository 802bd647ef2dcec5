"""The two run-wide files of an Allure results directory: environment.properties (what was
checked, with which paymon, at which commit) and categories.json (failures sorted by kind).

Allure 2 and Allure 3's classic report read both from the results directory; Allure 3's default
("awesome") report takes categories from its config, which `paymon report` writes from the same
CATEGORIES (see allure3_categories), so the two never disagree.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from paymon.reporting.secrets import scrub

# `[\s\S]*` instead of `.*`: Allure 2 full-matches the message with Java regexes (where `.` stops
# at a newline and paymon's messages are multi-line) and Allure 3 searches with JavaScript
# regexes (no inline (?s) flag); this spelling means "anything" to both.
_ANY = r"[\s\S]*"


@dataclass(frozen=True)
class Category:
    name: str
    pattern: str
    """Alternatives searched for in the failure message (regex, case as written)."""
    labels: Mapping[str, str] | None = None
    """Allure 3 only: labels that also put a result here (e.g. the verdict label)."""

    @property
    def message_regex(self) -> str:
        return f"{_ANY}(?:{self.pattern}){_ANY}"


# First match wins in Allure 3, so the most specific kinds come first: a could-not-check message
# may well mention a token, a late delivery is not a security problem, and a latency finding is
# also a config difference. Delivery messages are those of checks/test_delivery.py.
CATEGORIES = (
    Category("Could not check", r"could not check:", labels={"verdict": "could not check"}),
    Category("Delivery failure", r"Slack delivery|PagerDuty delivery|not delivered|did not arrive"),
    Category("Security", r"[Ss]ignature|[Ss]ecurity|[Ss]ecret|[Tt]oken"),
    Category("Latency budget", r"p\d\d\b|[Ll]atency|transaction\.duration"),
    Category("Config drift", r"mismatch|expected .*, actual"),
)


def categories_json() -> list[dict]:
    """Allure 2 format (also read by Allure 3's classic/allure2 plugins)."""
    return [{"name": c.name, "matchedStatuses": ["failed", "broken"], "messageRegex": c.message_regex}
            for c in CATEGORIES]


def allure3_categories() -> dict:
    """Allure 3 config format; a result lands in a category by its message or its labels."""
    rules = []
    for c in CATEGORIES:
        matchers = [{"statuses": ["failed", "broken"], "message": c.message_regex}]
        if c.labels:
            matchers.append({"labels": dict(c.labels)})
        rules.append({"id": c.name.lower().replace(" ", "-"), "name": c.name, "matchers": matchers})
    return {"rules": rules}


def current_commit(cwd: Path, environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    if environ.get("CI_COMMIT_SHA"):
        return environ["CI_COMMIT_SHA"]
    try:
        done = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return done.stdout.strip() if done.returncode == 0 and done.stdout.strip() else "unknown"


def _escape_property(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def environment_properties(values: Mapping[str, object]) -> str:
    """`.properties` text, every value scrubbed of secrets."""
    return "".join(f"{key}={_escape_property(scrub(str(value)))}\n" for key, value in values.items())


def write_results_files(results_dir: Path, environment: Mapping[str, object]) -> None:
    results_dir.mkdir(parents=True, exist_ok=True)
    (results_dir / "environment.properties").write_text(environment_properties(environment), encoding="utf-8")
    (results_dir / "categories.json").write_text(json.dumps(categories_json(), indent=2) + "\n", encoding="utf-8")
