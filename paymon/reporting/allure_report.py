"""`paymon report`: the HTML report from reports/allure-results, built by Allure Report 3.

Allure 3 is the `allure` package on npm (Node.js 20+). paymon runs, in this order of preference,
an `allure` on PATH that is Allure 3 (`npm install -g allure`), else `npx --yes allure@3`, which
fetches it on first use. An `allure` on PATH that is Allure 2 (the Java CLI) is passed over:
it reads neither the config nor the history file below.

History: Allure 3 keeps the trend of earlier runs in one JSON-lines file (`historyPath`), not in
Allure 2's `history/` directory. paymon keeps it at reports/history.jsonl and copies it into the
report, so CI can carry it from the published report to the next run (.gitlab-ci.yml, `pages`).
The run's verdict.json is appended to reports/runs.jsonl the same way, for the weekly page.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from paymon.errors import PaymonError, SettingsError
from paymon.reporting.results_files import allure3_categories

ALLURE_NPM_SPEC = "allure@3"


class ReportToolMissing(SettingsError):
    """Node.js / Allure 3 is not installed (a setup problem: `paymon` exits 2); the message is
    the one line to show."""


class ReportFailed(PaymonError):
    pass


Runner = Callable[..., subprocess.CompletedProcess]


def allure_command(which: Callable[[str], str | None] = shutil.which, run: Runner = subprocess.run) -> list[str]:
    """The command that runs Allure 3 here, or ReportToolMissing naming how to get it."""
    installed = which("allure")
    if installed and _is_allure3(installed, run):
        return [installed]
    npx = which("npx")
    if npx:
        return [npx, "--yes", ALLURE_NPM_SPEC]
    raise ReportToolMissing(
        "paymon report needs Allure Report 3, which runs on Node.js: install Node.js 20+ "
        "(https://nodejs.org) and then `npm install -g allure`, or just Node.js to let paymon use npx"
    )


def _is_allure3(executable: str, run: Runner) -> bool:
    try:
        done = run([executable, "--version"], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0 and done.stdout.strip().startswith("3.")


@dataclass(frozen=True)
class ReportPaths:
    results: Path
    output: Path
    history: Path
    runs: Path
    verdict: Path

    @classmethod
    def under(cls, reports: Path, results: Path | None = None, output: Path | None = None) -> ReportPaths:
        return cls(results=results or reports / "allure-results", output=output or reports / "allure-report",
                   history=reports / "history.jsonl", runs=reports / "runs.jsonl", verdict=reports / "verdict.json")


def allure_config(paths: ReportPaths, name: str) -> dict:
    """A static (JSON) Allure 3 config: works with a global install, needs no JavaScript."""
    return {
        "name": name,
        "output": str(paths.output.resolve()),
        "historyPath": str(paths.history.resolve()),
        "categories": allure3_categories(),
        # The tree a reviewer walks is the guide's: phase (epic) > section (feature) > criterion
        # (story), then the checks; not the checks' file paths.
        "plugins": {"awesome": {"options": {"reportName": name, "groupBy": ["epic", "feature", "story"],
                                            "appendTitlePath": False}}},
    }


def record_run(paths: ReportPaths) -> bool:
    """Append this run's verdict.json to runs.jsonl, once (a second `paymon report` of the same
    run does not count it twice)."""
    if not paths.verdict.is_file():
        return False
    run = json.loads(paths.verdict.read_text(encoding="utf-8"))
    if paths.runs.is_file():
        for line in paths.runs.read_text(encoding="utf-8").splitlines():
            if line.strip() and json.loads(line).get("started") == run.get("started"):
                return False
    paths.runs.parent.mkdir(parents=True, exist_ok=True)
    with paths.runs.open("a", encoding="utf-8") as out:
        out.write(json.dumps(run, separators=(",", ":")) + "\n")
    return True


def _clear_previous_report(output: Path) -> None:
    """Allure writes into the output directory without emptying it, and lifts its single plugin's
    directory to the top only when it is the only directory there: a previous report's `data/`
    would leave this one in `awesome/` behind a stale index.html. History lives outside it."""
    if not output.exists():
        return
    if output.is_dir() and ((output / "index.html").is_file() or not any(output.iterdir())):
        shutil.rmtree(output)
        return
    raise ReportFailed(f"{output} exists and is not an Allure report: choose another --output")


def build_report(paths: ReportPaths, name: str = "paymon: payment monitoring", *,
                 command: Sequence[str] | None = None, run: Runner = subprocess.run) -> Path:
    """Generate the report into paths.output; returns the index.html."""
    if not paths.results.is_dir() or not any(paths.results.glob("*-result.json")):
        raise ReportFailed(f"no Allure results in {paths.results}: run `pytest` first")
    command = list(command) if command is not None else allure_command(run=run)
    _clear_previous_report(paths.output)
    paths.history.parent.mkdir(parents=True, exist_ok=True)
    config = paths.history.parent / "allurerc.json"
    config.write_text(json.dumps(allure_config(paths, name), indent=2) + "\n", encoding="utf-8")
    done = run([*command, "generate", str(paths.results), "--config", str(config), "--output", str(paths.output)],
               capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        raise ReportFailed(f"allure generate failed: {last[0]}")
    # Publish the history with the report: the next CI run fetches it from there.
    if paths.history.is_file():
        shutil.copy2(paths.history, paths.output / "history.jsonl")
    return paths.output / "index.html"
