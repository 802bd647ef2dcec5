"""Helpers for paymon's own tests: run the suite the way users do, in a subprocess."""

from __future__ import annotations

import json
import os
import sys
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import forked_pytest

REPO = Path(__file__).resolve().parent.parent


@dataclass
class SuiteRun:
    returncode: int
    output: str
    failures: dict[str, str] = field(default_factory=dict)
    """test id (e.g. 'test_alert_configured[Payment Failure Rate Spike]') -> failure message."""
    passed: set[str] = field(default_factory=set)

    @property
    def failed(self) -> set[str]:
        return set(self.failures)


def _read_junit(path: Path) -> tuple[dict[str, str], set[str]]:
    failures, passed = {}, set()
    if not path.exists():
        return failures, passed
    for case in ET.parse(path).getroot().iter("testcase"):
        name = case.get("name")
        if name.rfind("@") > name.rfind("]"):
            name = name.rsplit("@", 1)[0]  # xdist --dist=loadgroup's group suffix
        problem = case.find("failure")
        if problem is None:
            problem = case.find("error")
        if problem is not None:
            failures[name] = (problem.get("message") or "") + "\n" + (problem.text or "")
        elif case.find("skipped") is None:
            passed.add(name)
    return failures, passed


@pytest.fixture
def run_suite(tmp_path):
    """Run `pytest <args>` on the checks in a fresh process (tests/forked_pytest.py: forked from one
    that has done the heavy imports); return outcome per check."""

    def run(*args: str, env: dict | None = None, world: dict | None = None, timeout: float = 240) -> SuiteRun:
        junit = tmp_path / f"junit-{len(list(tmp_path.iterdir()))}.xml"
        extra = []
        if world is not None:
            world_file = tmp_path / f"world-{len(list(tmp_path.iterdir()))}.json"
            world_file.write_text(json.dumps(world))
            extra = [f"--sandbox-world={world_file}"]
        cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-o", "addopts=",
               "-q", "-rf", f"--junitxml={junit}", *extra, *args]
        # PYTHONDONTWRITEBYTECODE off: each run would otherwise re-compile and re-rewrite every module.
        full_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("SENTRY_", "PAYMON_")) and k != "PYTHONDONTWRITEBYTECODE"}
        full_env.update(env or {})
        proc = forked_pytest.run(cmd[3:], cwd=REPO, env=full_env, timeout=timeout)
        failures, passed = _read_junit(junit)
        return SuiteRun(proc.returncode, proc.stdout, failures, passed)

    return run


def spec_with_deadlines(directory: Path, slack: str, pagerduty: str) -> Path:
    """monitoring.yaml with delivery deadlines a test can afford to wait out (a missing page
    otherwise costs the real 5 minutes), written into `directory`."""
    import yaml

    data = yaml.safe_load((REPO / "monitoring.yaml").read_text())
    data["delivery"]["slack"]["deadline"] = slack
    data["delivery"]["pagerduty"]["deadline"] = pagerduty
    path = directory / "monitoring.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def live_run(server, junit: Path, *args: str, env: dict | None = None, timeout: float = 300) -> SuiteRun:
    """`pytest --target live <args>` against a running sandbox `server`, configured as a user would:
    only the documented variables (`SandboxServer.live_environment()`, what `paymon sandbox serve
    --env-file` writes), none inherited from this process; `env` adds to them."""
    inherited = {k: v for k, v in os.environ.items()
                 if not k.startswith(("SENTRY_", "PAYMON_", "SLACK_", "PAGERDUTY_", "LEMONSQUEEZY_", "CRON_"))
                 and k != "PYTHONDONTWRITEBYTECODE"}
    proc = forked_pytest.run(["-p", "no:cacheprovider", "-o", "addopts=", "-q", f"--junitxml={junit}",
                              "--target=live", *args], cwd=REPO,
                             env={**inherited, **server.live_environment(), **(env or {})}, timeout=timeout)
    failures, passed = _read_junit(junit)
    return SuiteRun(proc.returncode, proc.stdout, failures, passed)

