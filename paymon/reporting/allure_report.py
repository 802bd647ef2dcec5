"""`paymon report`: the HTML report from reports/allure-results, built by Allure Report 3.

Allure 3 is the `allure` package on npm (Node.js 20+). paymon runs, in this order of preference,
an `allure` on PATH that is Allure 3 (`npm install -g allure`), else `npx --yes allure@3.18.0` (pinned), which
fetches it on first use. An `allure` on PATH that is Allure 2 (the Java CLI) is passed over:
it reads neither the config nor the history file below.

History: Allure 3 keeps the trend of earlier runs in one JSON-lines file (`historyPath`), not in
Allure 2's `history/` directory. paymon keeps it at reports/history.jsonl and copies it into the
report, so CI can carry it from the published report to the next run (.gitlab-ci.yml, `pages`).
The run's verdict.json is appended to reports/runs.jsonl the same way, for the weekly page.

Carried histories are merged, never replaced (`merge_history`, `paymon report --merge-history`):
every run of every source is kept once, runs by their start stamp, Allure's entries by uuid. So two
publishers that each started from an older copy lose nothing when the later one merges both.
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

ALLURE_NPM_SPEC = "allure@3.18.0"  # pinned, as .gitlab-ci.yml installs it


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


def run_key(run: dict) -> str:
    """A run's identity in runs.jsonl: its start stamp, which every verdict.json carries (the whole
    line for one that lacks it)."""
    started = run.get("started")
    return f"started:{started!r}" if started is not None else json.dumps(run, sort_keys=True)


def _history_key(entry: dict) -> str:
    """An Allure 3 history entry's identity: its uuid (the whole line for one that lacks it)."""
    uuid = entry.get("uuid")
    return f"uuid:{uuid}" if uuid else json.dumps(entry, sort_keys=True)


def read_jsonl(path: Path) -> list[dict]:
    """The JSON objects of a JSON-lines file; ValueError naming the line when it is not one (for
    example an HTML sign-in page fetched in place of a private Pages site's file)."""
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise ValueError(f"line {number} is not JSON") from None
        if not isinstance(record, dict):
            raise ValueError(f"line {number} is not a JSON object")
        records.append(record)
    return records


def _merge_file(target: Path, sources: Sequence[Path], key: Callable[[dict], str], when: str) -> list[str]:
    """Merge `sources` into `target` (which counts as a source too): each record once, by `key`,
    ordered by the `when` field (records without it keep their place, first). Returns one note per
    source file: merged (with how many records it added) or skipped."""
    merged: dict[str, dict] = {}
    notes = []
    added = 0
    for number, path in enumerate([target, *sources]):
        if not path.is_file():
            continue
        try:
            records = read_jsonl(path)
        except ValueError as exc:
            if not number:  # the history itself: never overwritten with less
                return [f"{path}: not a history file ({exc}): left as it is, nothing merged into it"]
            notes.append(f"{path}: not a history file ({exc}): skipped")
            continue
        before = len(merged)
        for record in records:
            merged.setdefault(key(record), record)
        if number:
            added += len(merged) - before
            notes.append(f"{path}: merged, {len(merged) - before} new of {len(records)}")
    if not added:
        return notes  # nothing new: the history stays as it is, byte for byte
    def stamp(record: dict) -> tuple[bool, float]:
        value = record.get(when)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        return number, value if number else 0

    ordered = sorted(merged.values(), key=stamp)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    partial.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in ordered), encoding="utf-8")
    partial.replace(target)
    return notes


def merge_history(paths: ReportPaths, sources: Sequence[Path]) -> list[str]:
    """Merge earlier published histories into paths.runs and paths.history, keeping every run.

    Each source is a directory holding `runs.jsonl` and/or `history.jsonl` (a published report, or
    where CI fetched them); a missing file is no history, a file that is not JSON lines is skipped
    with a note. Returns one line per source file used or skipped, for the job's log."""
    notes = []
    for name, target, key, when in (("runs.jsonl", paths.runs, run_key, "started"),
                                    ("history.jsonl", paths.history, _history_key, "timestamp")):
        notes += _merge_file(target, [Path(source) / name for source in sources], key, when)
    return notes


def record_run(paths: ReportPaths) -> bool:
    """Append this run's verdict.json to runs.jsonl, once (a second `paymon report` of the same
    run, or a history that already holds it, does not count it twice)."""
    if not paths.verdict.is_file():
        return False
    run = json.loads(paths.verdict.read_text(encoding="utf-8"))
    if paths.runs.is_file():
        for line in paths.runs.read_text(encoding="utf-8").splitlines():
            if line.strip() and run_key(json.loads(line)) == run_key(run):
                return False
    paths.runs.parent.mkdir(parents=True, exist_ok=True)
    with paths.runs.open("a", encoding="utf-8") as out:
        out.write(json.dumps(run, separators=(",", ":")) + "\n")
    return True


MARKER = ".paymon-report"
"""Written into every report directory paymon makes: the only directories it will ever replace."""


def _check_replaceable(output: Path) -> None:
    """Allure writes into the output directory without emptying it, and lifts its single plugin's
    directory to the top only when it is the only directory there: a previous report's `data/`
    would leave this one in `awesome/` behind a stale index.html. So a previous report goes first,
    but only one paymon made (its marker file): never `--output .`, a home directory or a web root
    that happens to hold an index.html. Checked before anything else is done."""
    if not output.exists() or (output.is_dir() and ((output / MARKER).is_file() or not any(output.iterdir()))):
        return
    raise ReportFailed(f"{output} is not a report paymon made (no {MARKER} in it): refusing to replace it; "
                       "choose another --output, or empty it yourself")


def _clear_previous_report(output: Path) -> None:
    _check_replaceable(output)
    if output.is_dir() and (output / MARKER).is_file():
        shutil.rmtree(output)


def build_report(paths: ReportPaths, name: str = "paymon: payment monitoring", *,
                 command: Sequence[str] | None = None, run: Runner = subprocess.run) -> Path:
    """Generate the report into paths.output; returns the index.html."""
    if not paths.results.is_dir() or not any(paths.results.glob("*-result.json")):
        raise ReportFailed(f"no Allure results in {paths.results}: run `pytest` first")
    _check_replaceable(paths.output)
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
    (paths.output / MARKER).write_text("made by `paymon report`, which may replace this directory\n",
                                       encoding="utf-8")
    # Publish the history with the report: the next CI run fetches it from there.
    if paths.history.is_file():
        shutil.copy2(paths.history, paths.output / "history.jsonl")
    return paths.output / "index.html"
