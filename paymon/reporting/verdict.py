"""The one-screen verdict: each guide criterion with pass / warning / fail / could not check, a
one-line reason, and the exit code of the run.

A criterion is judged from all its checks (the tests carrying its `criterion` marker):

    fail             a check failed: the setup differs from monitoring.yaml
    could not check  no check failed, but one could not run (token, scope, API down)
    warning          everything that ran passed, but a check was skipped or xfailed, or marked
                     itself ("verdict", "warning") — nothing is wrong, someone should look
    pass             every check passed
    not covered      a line of the guide's checklists no check of this run proves: none exists, or
                     the run's profile does not run it (the reason names the profiles that do)

Exit codes: 0 every criterion passed (warnings included), 1 a criterion failed, 3 no criterion
failed but at least one could not be checked. A failure wins over "could not check": the gate
has already found something wrong, whatever it could not see.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from paymon.reporting.guide import CHECKLIST, sort_key

PASS, WARNING, FAIL, COULD_NOT_CHECK = "pass", "warning", "fail", "could not check"
NOT_COVERED = "not covered"
# Not covered never moves the exit code: which criteria a run proves is its profile's choice, and
# the verdict says so line by line; the gate's exit code judges what it ran.
_RANK = {NOT_COVERED: -1, PASS: 0, WARNING: 1, COULD_NOT_CHECK: 2, FAIL: 3}

EXIT_OK, EXIT_FAILED, EXIT_COULD_NOT_CHECK = 0, 1, 3

GENERIC_WARNING = "the check reported a warning"
"""A warning's reason until the check's own warning text arrives (fixtures/reporting.py)."""

NO_CRITERION = "(no criterion)"
"""Where a check without a `criterion` marker is counted, so a failure never goes unreported."""


def worst(statuses: Iterable[str]) -> str:
    return max(statuses, key=_RANK.__getitem__, default=PASS)


def first_reason(text: str) -> str:
    """The line that says why: the first finding ("  - alert: field expected x, actual y") of a
    failure message, else its first non-empty line without pytest's "Failed: " prefix."""
    lines = [line.strip() for line in (text or "").splitlines() if line.strip()]
    for line in lines:
        if line.startswith("- "):
            return line[2:]
    return lines[0].removeprefix("Failed: ").removeprefix("E   ") if lines else ""


@dataclass
class CheckResult:
    """One check (test) with the worst outcome of its setup, call and teardown."""

    nodeid: str
    criterion: str
    status: str = PASS
    reason: str = ""

    def record(self, status: str, reason: str = "") -> None:
        if _RANK[status] > _RANK[self.status]:
            self.status, self.reason = status, reason


@dataclass
class CriterionVerdict:
    criterion: str
    checks: list[CheckResult] = field(default_factory=list)
    uncovered: str = ""
    """Why no check of this run proves the criterion (only when it has none)."""

    @property
    def status(self) -> str:
        return worst(c.status for c in self.checks) if self.checks else NOT_COVERED

    @property
    def reason(self) -> str:
        if not self.checks:
            return self.uncovered
        return next((c.reason for c in self.checks if c.status == self.status and c.reason), "")

    @property
    def counted(self) -> str:
        bad = sum(1 for c in self.checks if c.status == self.status)
        total = len(self.checks)
        if not total:
            return "–"
        return f"{bad}/{total}"


def judge(checks: Iterable[CheckResult], uncovered: dict[str, str] | None = None) -> list[CriterionVerdict]:
    """One verdict per criterion that had checks; then, for each line of the guide's checklists
    (`guide.CHECKLIST`) none of whose proving criteria had a check, a "not covered" verdict whose
    reason is `uncovered[line]` (the caller knows why: a profile, or no check at all)."""
    by_criterion: dict[str, CriterionVerdict] = {}
    for check in checks:
        by_criterion.setdefault(check.criterion, CriterionVerdict(check.criterion)).checks.append(check)
    if uncovered is not None:
        for line, proven_by in CHECKLIST.items():
            if not any(c in by_criterion for c in proven_by):
                by_criterion[line] = CriterionVerdict(line, uncovered=uncovered.get(line, NO_CHECK))
    return sorted(by_criterion.values(), key=lambda v: sort_key(v.criterion))


NO_CHECK = "no check of paymon proves it"


def exit_code(verdicts: Iterable[CriterionVerdict]) -> int:
    overall = worst(v.status for v in verdicts)
    return {FAIL: EXIT_FAILED, COULD_NOT_CHECK: EXIT_COULD_NOT_CHECK}.get(overall, EXIT_OK)


LABEL_WIDTH = len(COULD_NOT_CHECK)
COUNT_WIDTH = len("16/16")


def render(verdicts: list[CriterionVerdict], width: int = 80) -> list[str]:
    """Per criterion one line (status, how many of its checks gave it, criterion) and, unless it
    passed, one indented line with the reason; then the overall line. The status and the count come
    first, so a narrow CI log (80 columns) cuts a long criterion's last words, never the counts:
    `WARNING          1/4  Performance monitoring enabled for payment endpoints`."""
    lines = []
    for v in verdicts:
        lines.append(_fit(f"{v.status.upper():<{LABEL_WIDTH}}  {v.counted:>{COUNT_WIDTH}}  {v.criterion}", width))
        if v.status != PASS and v.reason:
            lines.append(_fit(f"{'':<{LABEL_WIDTH}}  {v.reason}", width))
    lines.append(overall_line(verdicts))
    return lines


def overall_line(verdicts: list[CriterionVerdict]) -> str:
    code = exit_code(verdicts)
    tally = {s: sum(1 for v in verdicts if v.status == s)
             for s in (PASS, WARNING, FAIL, COULD_NOT_CHECK, NOT_COVERED)}
    summary = ", ".join(f"{n} {s}" for s, n in tally.items() if n)
    meaning = {EXIT_OK: "all criteria hold", EXIT_FAILED: "a criterion failed",
               EXIT_COULD_NOT_CHECK: "could not check every criterion"}[code]
    if code == EXIT_OK and tally[NOT_COVERED]:
        meaning = "every criterion checked holds; not covered: not proven by this run"
    noun = "criterion" if len(verdicts) == 1 else "criteria"
    return f"{len(verdicts)} {noun}: {summary} -> exit {code} ({meaning})"


def _fit(line: str, width: int) -> str:
    return line if len(line) <= width else line[: width - 1] + "…"


def as_json(verdicts: list[CriterionVerdict]) -> dict:
    """The run's summary as stored for the weekly review (see weekly.py)."""
    return {
        "exit_code": exit_code(verdicts),
        "criteria": [
            {"criterion": v.criterion, "status": v.status, "reason": v.reason,
             "checks": len(v.checks), "failing": sum(1 for c in v.checks if c.status in (FAIL, COULD_NOT_CHECK))}
            for v in verdicts
        ],
    }
